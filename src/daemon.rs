//! `rebound serve`: wiring of the running daemon (placeholder signature).
use std::path::PathBuf;

use crate::config::Config;

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Startup(String),
}

/// Runs the daemon until SIGTERM/SIGINT (blocking; builds its own runtime).
pub fn serve(cfg: Config, config_path: Option<PathBuf>) -> Result<(), DaemonError> {
    let _ = (cfg, config_path);
    Err(DaemonError::Startup("not wired yet".into()))
}
