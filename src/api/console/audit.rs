//! The console's record of operator actions: who (user and role) did what to
//! which message or address, when, and whether it happened. One JSON line per
//! action appended to `data_dir/console-audit.log` (mode 0600), and the same as a
//! `rebound::api::console::audit` log line. The dashboard shows the latest.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::model::time::Timestamp;

/// The file's name in `data_dir`.
pub const FILE_NAME: &str = "console-audit.log";
/// Bytes read from the end of the file for [`Audit::recent`].
const TAIL: u64 = 64 * 1024;

/// One action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub time: Timestamp,
    pub user: String,
    pub role: String,
    /// `resend`, `retry`, `delete`, `unblock`, `unblock_with_consent`, `sign_in`, `sign_in_failed`, `sign_out`.
    pub action: String,
    /// A queue id or an address.
    pub target: String,
    /// `done`, or why it was refused.
    pub outcome: String,
}

/// The audit file.
#[derive(Debug)]
pub struct Audit {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Audit {
    pub fn new(path: PathBuf) -> Audit {
        Audit {
            path,
            lock: Mutex::new(()),
        }
    }

    /// Appends `e` (and logs it). A failure to write is logged, not returned: the action
    /// itself already happened (or was refused) and is in the communications log.
    pub fn record(&self, e: &Entry) {
        tracing::info!(target: "rebound::api::console::audit", user = %e.user, role = %e.role, action = %e.action, target_id = %e.target, outcome = %e.outcome, "console action");
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = self.append(e) {
            tracing::error!(error = %err, path = %self.path.display(), "cannot write the console audit log");
        }
    }

    fn append(&self, e: &Entry) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        f.write_all(&line)
    }

    /// The latest `n` entries, newest first (read from the file's last 64 KB).
    pub fn recent(&self, n: usize) -> Vec<Entry> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if f.seek(SeekFrom::Start(len.saturating_sub(TAIL))).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        let text = String::from_utf8_lossy(&buf);
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
            .take(n)
            .collect()
    }
}
