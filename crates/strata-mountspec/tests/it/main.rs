//! Table-driven tests of Docker's mount grammar: one `check` helper and one
//! table per parser, each row the input and the full expected spec or the
//! exact error message.

mod mount;
mod names;
mod props;
mod size;
mod support;
mod tmpfs;
mod unique;
mod volume;
