//! The `rebound` binary: a thin wrapper around the library's CLI.
fn main() {
    // Temporary until the CLI lands: `rebound serve [--config PATH]`.
    let args: Vec<String> = std::env::args().collect();
    let path = args.iter().position(|a| a == "--config").and_then(|i| args.get(i + 1)).map(std::path::PathBuf::from);
    let (cfg, path) = match rebound::config::Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rebound: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = rebound::daemon::serve(cfg, path) {
        eprintln!("rebound: {e}");
        std::process::exit(1);
    }
}
