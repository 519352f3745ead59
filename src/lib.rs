//! rebound: a mail relay that knows what became of every recipient.

pub mod admin;
pub mod api;
pub mod bounce;
pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod feedback;
pub mod inbound;
pub mod model;
pub mod records;
pub mod store;
