//! Integration tests of layer application, rebuilding and diffing on real
//! directories. They run as root (ownership, device nodes, trusted xattrs,
//! overlay mounts): `.ci/run` runs them all.

mod apply;
mod diff;
mod index;
mod props;
mod support;
mod whiteouts;
