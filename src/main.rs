//! The `rebound` binary: a thin wrapper around the library's CLI.

#![deny(unsafe_code)]
fn main() {
    std::process::exit(rebound::cli::main());
}
