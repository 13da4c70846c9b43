//! paddock-supervisor: the `paddockd` daemon and the `paddock` client.
//!
//! This session's surface: `paddockd run` (one sandboxed command, one JSON
//! result) and `paddockd check` (validate policy files).

#![forbid(unsafe_code)]

pub mod check;
pub mod client;
pub mod conn;
pub mod daemon;
mod prepared;
pub mod protocol;
pub mod registry;
pub mod result_json;
pub mod run;
pub mod slots;
pub mod stats;
pub mod warm;
