//! Which daemon an admin command talks to. A config file (`--config`,
//! `$REBOUND_CONFIG`, `/etc/rebound/rebound.toml`) always wins; without one, the
//! running-daemon pointer that `rebound serve` leaves (see
//! [`crate::daemon::pointer`]) names the API and the token file; failing that,
//! the built-in default `./rebound-data/api.token` in the current directory.
//! When none is found the error lists every place looked at.

use std::path::Path;

use super::client::ClientError;
use crate::config::{Config, Secret};
use crate::daemon::pointer::{self, DaemonPointer};

/// The config to reach the daemon with; `from_file` is whether a config file was loaded.
pub fn admin_config(cfg: Config, from_file: bool) -> Result<Config, ClientError> {
    if from_file || cfg.api.token.is_some() {
        return Ok(cfg);
    }
    let at = pointer::path();
    let note = match DaemonPointer::read(&at) {
        Ok(Some(p)) if p.is_alive() => return from_pointer(cfg, p, &at),
        Ok(Some(p)) => format!(" (stale: pid {} is not running)", p.pid),
        Ok(None) => String::new(),
        Err(e) => format!(" (unusable: {e})"),
    };
    let default_token = cfg.server.data_dir.join("api.token");
    if default_token.exists() {
        return Ok(cfg);
    }
    Err(ClientError::Setup(nothing_found(
        &at,
        &note,
        &default_token,
    )))
}

fn nothing_found(at: &Path, note: &str, default_token: &Path) -> String {
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "the current directory".into());
    format!(
        "no config given; looked for /etc/rebound/rebound.toml, $REBOUND_CONFIG, the running-daemon pointer at {}{note}, and {} relative to {cwd}; none found. \
         Start the daemon with `rebound serve` (admin commands then find it from any directory), or pass --config PATH (or set REBOUND_CONFIG) naming the daemon's config file",
        at.display(),
        default_token.display()
    )
}

/// The pointer's API URL and data_dir, and the token from its token file (or the daemon's config).
fn from_pointer(mut cfg: Config, p: DaemonPointer, at: &Path) -> Result<Config, ClientError> {
    cfg.api.url = Some(p.api_url.clone());
    cfg.server.data_dir = p.data_dir.clone();
    cfg.api.token = Some(match (&p.token_file, &p.config) {
        (Some(file), _) => read_token(file, at)?,
        (None, Some(conf)) => config_token(conf, &p)?,
        (None, None) => {
            return Err(ClientError::Setup(format!(
                "the running-daemon pointer at {} names no token file; pass --config with the daemon's config",
                at.display()
            )));
        }
    });
    Ok(cfg)
}

fn read_token(file: &Path, at: &Path) -> Result<Secret, ClientError> {
    let setup = |why: String| {
        ClientError::Setup(format!(
            "no API token: {} (named by the running-daemon pointer at {}) {why}; run as the daemon's user or pass --config",
            file.display(),
            at.display()
        ))
    };
    match std::fs::read_to_string(file) {
        Ok(t) if !t.trim().is_empty() => Ok(Secret(t.trim().to_string())),
        Ok(_) => Err(setup("is empty".into())),
        Err(e) => Err(setup(format!("cannot be read ({e})"))),
    }
}

/// `api.token` from the config the daemon was started with.
fn config_token(conf: &Path, p: &DaemonPointer) -> Result<Secret, ClientError> {
    let setup = |why: String| {
        ClientError::Setup(format!(
            "the daemon at {} has its API token in {conf}, {why}; pass --config {conf} as a user who can read it",
            p.api_url,
            conf = conf.display()
        ))
    };
    match Config::from_file(conf) {
        Ok(c) => c
            .api
            .token
            .ok_or_else(|| setup("which no longer sets api.token".into())),
        Err(e) => Err(setup(format!("which cannot be loaded ({e})"))),
    }
}
