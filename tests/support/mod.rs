//! What the integration tests share, one of each: the config builder (`config`), the daemon
//! launcher in-process and as a child process (`daemon`), the API rig on a manual clock
//! (`rig`), the SMTP listener alone (`listener`), the SMTP client (`smtp`), the HTTP client
//! (`http`), the scripted MX and DNS server (`mx`), skipping for want of a tool (`skip`), and
//! the locks of the crate's process-global counters (`counters`).
//! Each area's `main.rs` includes it with `#[path = "../support/mod.rs"] mod support;`.
// Each area binary uses part of it.
#![allow(dead_code)]

pub mod config;
pub mod counters;
pub mod daemon;
pub mod http;
pub mod listener;
pub mod mx;
pub mod rig;
pub mod skip;
pub mod smtp;

/// What most whole-daemon tests use: `use crate::support::prelude::*;`.
#[allow(unused_imports)]
pub mod prelude {
    pub use super::config::*;
    pub use super::daemon::*;
    pub use super::http::{Resp, api_request, raw};
    pub use super::mx::{Script, ScriptedMx};
    pub use super::smtp::{python_send, python_send_from};
}
