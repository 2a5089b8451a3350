//! Integration tests of strata-context: .dockerignore rules, COPY/ADD into
//! a fake root filesystem, and checksums.

mod checksum;
mod common;
mod copy;
mod ignore;
mod props;
