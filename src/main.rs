//! The `rebound` binary: a thin wrapper around the library's CLI.
fn main() {
    std::process::exit(rebound::cli::main());
}
