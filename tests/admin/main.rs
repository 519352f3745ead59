//! What the operator touches: the admin API (routes, auth, limits), the CLI against the API
//! and against the whole daemon, `/metrics`, the web console in a real browser, the first
//! hour (serve, the running-daemon pointer, check-config, help), the README's quick start
//! run as written, and the shipped config file.
//! `cargo test --test admin`; one test: `cargo test --test admin quickstart::the_readme_quick_start_delivers_one_and_bounces_one`.

#[path = "../support/mod.rs"]
mod support;

mod api;
mod api_limits;
mod cli;
mod cli_daemon;
mod config_file;
mod console;
mod first_hour;
mod metrics;
mod quickstart;
