//! The running-daemon pointer: a small JSON file at a per-user location that
//! `rebound serve` writes once it listens (API URL, absolute data_dir, absolute
//! token file) and removes on a clean shutdown, so admin commands run from any
//! directory find the daemon without a config file.
//!
//! Location: `$REBOUND_RUNTIME_DIR/daemon.json` (tests), else
//! `$XDG_RUNTIME_DIR/rebound/daemon.json`, else `$HOME/.local/state/rebound/daemon.json`,
//! else `/tmp/rebound-$UID/daemon.json`. The file is mode 0600, its directory 0700.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a running daemon tells the CLI about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonPointer {
    pub pid: u32,
    /// Base URL of the admin API, e.g. `http://127.0.0.1:8025`.
    pub api_url: String,
    /// The daemon's data directory (absolute).
    pub data_dir: PathBuf,
    /// The generated API token file (absolute); `None` when `api.token` is set in the config.
    pub token_file: Option<PathBuf>,
    /// The config file the daemon was started with (absolute), if any.
    pub config: Option<PathBuf>,
}

/// Why the pointer could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PointerError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a rebound daemon pointer: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PointerError + '_ {
    move |source| PointerError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where the pointer lives for this user (see the module docs).
#[allow(unsafe_code)] // libc::getuid: each unsafe block has its SAFETY comment
pub fn path() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("REBOUND_RUNTIME_DIR") {
        return d.join("daemon.json");
    }
    if let Some(d) = var("XDG_RUNTIME_DIR") {
        return d.join("rebound/daemon.json");
    }
    if let Some(h) = var("HOME") {
        return h.join(".local/state/rebound/daemon.json");
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/tmp/rebound-{uid}/daemon.json"))
}

impl DaemonPointer {
    /// Writes the pointer atomically (temporary file, then rename), creating its directory 0700.
    pub fn write(&self, path: &Path) -> Result<(), PointerError> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
        }
        let tmp = path.with_extension(format!("json.{}.tmp", self.pid));
        let body = serde_json::to_vec_pretty(self).map_err(|source| PointerError::Json {
            path: path.display().to_string(),
            source,
        })?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(&body)
            .and_then(|()| f.write_all(b"\n"))
            .map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err(path))
    }

    /// Reads a pointer; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<DaemonPointer>, PointerError> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| PointerError::Json {
                    path: path.display().to_string(),
                    source,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Whether the process it names still exists (a daemon killed with SIGKILL leaves its pointer).
    #[allow(unsafe_code)] // libc::kill: each unsafe block has its SAFETY comment
    pub fn is_alive(&self) -> bool {
        let Ok(pid) = libc::pid_t::try_from(self.pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}

/// Removes the pointer at `path` if it still names `me` (another daemon may have replaced it).
pub fn remove_if_mine(path: &Path, me: &DaemonPointer) {
    match DaemonPointer::read(path) {
        Ok(Some(p)) if p.pid == me.pid && p.data_dir == me.data_dir => {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(pointer = %path.display(), error = %e, "could not remove the running-daemon pointer");
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_private_read_back_and_removed_only_by_its_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/daemon.json");
        let me = DaemonPointer {
            pid: std::process::id(),
            api_url: "http://127.0.0.1:1".into(),
            data_dir: "/d".into(),
            token_file: Some("/d/api.token".into()),
            config: None,
        };
        me.write(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert_eq!(DaemonPointer::read(&path).unwrap().as_ref(), Some(&me));
        assert!(me.is_alive());
        let other = DaemonPointer {
            pid: me.pid + 1,
            ..me.clone()
        };
        remove_if_mine(&path, &other);
        assert!(path.exists(), "a pointer naming another daemon stays");
        remove_if_mine(&path, &me);
        assert!(DaemonPointer::read(&path).unwrap().is_none());
    }
}
