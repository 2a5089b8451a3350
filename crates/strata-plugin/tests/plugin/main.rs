//! Strata's plugin client and server over real sockets: a fake plugin
//! for the client, an in-memory driver for the server.

mod client;
mod discovery;
mod fake;
mod server;
mod tls;
