//! DKIM key rotation without a failed signature (`rebound dkim rotate DOMAIN`).
//!
//! Each signing domain may have a state file `KEY_DIR/DOMAIN/rotation.json`
//! (mode 0600, written to a temporary file, fsynced and renamed over the old one,
//! under an `flock` on `KEY_DIR/DOMAIN/.rotation.lock`):
//!
//! - `configured`: the `dkim.selector` the chain started from. When the config
//!   names another selector, the config wins and the file is ignored (the
//!   operator took over by hand);
//! - `current`: the selector mail is signed with;
//! - `pending`: the next selector, whose keys exist and whose records the
//!   operator was told to publish. The daemon checks through the configured
//!   resolver every `dkim.rotation_check` whether every pending record (one per
//!   algorithm) resolves to our public key; once they all do it writes the file
//!   with `current` = the pending selector, and only after that write succeeded
//!   signs with the new keys. A failed write keeps the old keys in use;
//! - `retired`: earlier selectors with the time they stopped signing. Their
//!   records stay needed for mail still in transit; after `dkim.rotation_grace`
//!   (7 days by default) they are listed as retire-able with the line to remove.
//!
//! Selector names count up: a trailing number is incremented (`rb1` -> `rb2`,
//! `s09` -> `s10`), a selector without one gets `2` appended (`rb2026a` ->
//! `rb2026a2`); a name already used in the chain is skipped.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::time::Timestamp;

/// The state file's name in `KEY_DIR/DOMAIN/`.
pub const STATE_FILE: &str = "rotation.json";
const LOCK_FILE: &str = ".rotation.lock";

/// One domain's rotation state, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationState {
    /// `dkim.selector` when the chain started.
    pub configured: String,
    /// The selector signing now.
    pub current: String,
    /// The next selector, waiting for its records to resolve.
    #[serde(default)]
    pub pending: Option<Pending>,
    /// Earlier selectors, oldest first.
    #[serde(default)]
    pub retired: Vec<Retired>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub selector: String,
    /// When `rebound dkim rotate` made it.
    pub since: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    pub selector: String,
    /// When signing switched away from it.
    pub switched: Timestamp,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("cannot read DKIM rotation state {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("DKIM rotation state {path} is damaged: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write DKIM rotation state {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RotationState {
    /// No rotation yet: signing with the configured selector.
    pub fn fresh(configured: &str) -> RotationState {
        RotationState {
            configured: configured.to_string(),
            current: configured.to_string(),
            pending: None,
            retired: Vec::new(),
        }
    }

    /// The state in effect: the stored one when it started from `configured`, else fresh.
    pub fn effective(stored: Option<RotationState>, configured: &str) -> RotationState {
        match stored {
            Some(s) if s.configured == configured => s,
            _ => RotationState::fresh(configured),
        }
    }

    /// Every selector this chain has used or will use.
    pub fn used(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.configured.as_str())
            .chain(std::iter::once(self.current.as_str()))
            .chain(self.pending.iter().map(|p| p.selector.as_str()))
            .chain(self.retired.iter().map(|r| r.selector.as_str()))
    }

    /// This state with a rotation to the next selector pending since `now`.
    pub fn begin(&self, now: Timestamp) -> RotationState {
        let selector = next_selector(&self.current, |s| self.used().any(|u| u == s));
        RotationState {
            pending: Some(Pending {
                selector,
                since: now,
            }),
            ..self.clone()
        }
    }

    /// This state with the pending selector signing since `now`, the old one retired.
    pub fn switched(&self, now: Timestamp) -> Option<RotationState> {
        let pending = self.pending.as_ref()?;
        let mut retired = self.retired.clone();
        retired.push(Retired {
            selector: self.current.clone(),
            switched: now,
        });
        Some(RotationState {
            configured: self.configured.clone(),
            current: pending.selector.clone(),
            pending: None,
            retired,
        })
    }

    /// When `r`'s record may be removed.
    pub fn retire_after(r: &Retired, grace: std::time::Duration) -> Timestamp {
        r.switched.plus(grace)
    }
}

/// The selector after `current`: its trailing number plus one (width kept), else `current2`;
/// one `taken` accepts is skipped.
pub fn next_selector(current: &str, taken: impl Fn(&str) -> bool) -> String {
    let digits = current.bytes().rev().take_while(u8::is_ascii_digit).count();
    let (stem, number) = current.split_at(current.len() - digits);
    let (mut n, width) = match number.parse::<u64>() {
        Ok(n) => (n.saturating_add(1), number.len()),
        Err(_) => (2, 1),
    };
    loop {
        let candidate = format!("{stem}{n:0width$}");
        if !taken(&candidate) {
            return candidate;
        }
        n = n.saturating_add(1);
    }
}

pub fn state_path(dir: &Path, domain: &str) -> PathBuf {
    dir.join(domain).join(STATE_FILE)
}

/// The stored state of `domain`; `None` when it has never been rotated.
pub fn load(dir: &Path, domain: &str) -> Result<Option<RotationState>, RotationError> {
    let path = state_path(dir, domain);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RotationError::Read { path, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| RotationError::Parse { path, source })
}

/// Writes `state` durably: temporary file (0600), fsync, rename, fsync of the directory.
pub fn save(dir: &Path, domain: &str, state: &RotationState) -> Result<(), RotationError> {
    let path = state_path(dir, domain);
    let write = || -> std::io::Result<()> {
        let parent = path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
        let tmp = parent.join(format!(".{STATE_FILE}.{}.tmp", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        text.push(b'\n');
        f.write_all(&text)?;
        f.sync_all()?;
        drop(f);
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::File::open(parent)?.sync_all()
    };
    write().map_err(|source| RotationError::Write {
        path: path.clone(),
        source,
    })
}

/// An exclusive lock on `domain`'s rotation state, held until dropped (the CLI and the
/// daemon never read-modify-write the file at the same time).
#[derive(Debug)]
pub struct StateLock(#[allow(dead_code)] std::fs::File);

#[allow(unsafe_code)] // libc::flock: each unsafe block has its SAFETY comment
pub fn lock(dir: &Path, domain: &str) -> Result<StateLock, RotationError> {
    let path = dir.join(domain).join(LOCK_FILE);
    let open = || -> std::io::Result<std::fs::File> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join(domain))?;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        // SAFETY: flock on a descriptor we own; it blocks until the other holder is done.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(f)
    };
    open()
        .map(StateLock)
        .map_err(|source| RotationError::Write {
            path: path.clone(),
            source,
        })
}

/// Whether one of the TXT values `found` at a key's name publishes the key of `want`
/// (`v=DKIM1; k=...; p=...`): same `k=` (default rsa) and same `p=`, spacing ignored.
pub fn record_matches(want: &str, found: &[String]) -> bool {
    let tags = |v: &str| -> std::collections::BTreeMap<String, String> {
        v.split(';')
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_lowercase(),
                    v.chars().filter(|c| !c.is_whitespace()).collect(),
                )
            })
            .collect()
    };
    let w = tags(want);
    found.iter().any(|v| {
        let f = tags(v);
        f.get("p").is_some_and(|p| !p.is_empty())
            && f.get("p") == w.get("p")
            && f.get("k").map_or("rsa", String::as_str) == w.get("k").map_or("rsa", String::as_str)
    })
}

/// The TXT values at `name` (each record's strings joined); `Err` says what was found instead.
pub async fn txt_values(
    resolver: &hickory_resolver::TokioResolver,
    name: &str,
) -> Result<Vec<String>, String> {
    use hickory_resolver::proto::rr::RData;
    let lookup = resolver
        .txt_lookup(format!("{}.", name.trim_end_matches('.')))
        .await
        .map_err(|e| {
            if e.is_nx_domain() {
                "nothing found (NXDOMAIN)".to_string()
            } else if e.is_no_records_found() {
                "nothing found".to_string()
            } else {
                format!("lookup failed: {e}")
            }
        })?;
    let values: Vec<String> = lookup
        .answers()
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    if values.is_empty() {
        Err("no TXT record found".into())
    } else {
        Ok(values)
    }
}

/// Whether `record` resolves to our key: `Ok(())`, or what was found instead.
pub async fn verify_published(
    resolver: &hickory_resolver::TokioResolver,
    record: &super::Published,
) -> Result<(), String> {
    let found = txt_values(resolver, &record.name).await?;
    if record_matches(&record.value, &found) {
        Ok(())
    } else {
        Err(format!(
            "another key: found {}",
            found
                .iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Whether every one of `records` resolves to our key, through `nameservers` (the system
/// resolver when empty). A fresh resolver each time: no cached NXDOMAIN hides a new record.
pub async fn all_published(
    records: &[super::Published],
    nameservers: &[std::net::SocketAddr],
    timeout: std::time::Duration,
) -> bool {
    let resolver = match crate::delivery::outbound::resolver(nameservers, timeout) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "DKIM rotation: cannot set up the DNS resolver");
            return false;
        }
    };
    for r in records {
        if let Err(found) = verify_published(&resolver, r).await {
            tracing::debug!(record = %r.name, found, "DKIM rotation: the new record is not visible yet");
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_count_up_and_skip_used_names() {
        let none = |_: &str| false;
        assert_eq!(next_selector("rb1", none), "rb2");
        assert_eq!(next_selector("rb9", none), "rb10");
        assert_eq!(next_selector("s09", none), "s10");
        assert_eq!(next_selector("rb2026a", none), "rb2026a2");
        assert_eq!(next_selector("rb2026a2", none), "rb2026a3");
        assert_eq!(next_selector("rb1", |s| s == "rb2"), "rb3");
        let s = RotationState {
            retired: vec![Retired {
                selector: "rb3".into(),
                switched: Timestamp(0),
            }],
            ..RotationState::fresh("rb2")
        };
        assert_eq!(s.begin(Timestamp(5)).pending.unwrap().selector, "rb4");
    }

    #[test]
    fn a_rotation_begins_switches_and_retires() {
        let s = RotationState::fresh("rb1").begin(Timestamp(1000));
        assert_eq!(
            s.pending,
            Some(Pending {
                selector: "rb2".into(),
                since: Timestamp(1000)
            })
        );
        assert_eq!(s.current, "rb1");
        let done = s.switched(Timestamp(2000)).unwrap();
        assert_eq!(
            (done.current.as_str(), done.pending.is_none()),
            ("rb2", true)
        );
        assert_eq!(
            done.retired,
            vec![Retired {
                selector: "rb1".into(),
                switched: Timestamp(2000)
            }]
        );
        assert!(
            done.switched(Timestamp(3000)).is_none(),
            "nothing pending, nothing to switch"
        );
        assert_eq!(
            RotationState::retire_after(&done.retired[0], std::time::Duration::from_secs(1)),
            Timestamp(3000)
        );
        // Another configured selector: the config wins.
        assert_eq!(
            RotationState::effective(Some(done.clone()), "other"),
            RotationState::fresh("other")
        );
        assert_eq!(RotationState::effective(Some(done.clone()), "rb1"), done);
    }

    #[test]
    fn state_round_trips_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), "a.test").unwrap(), None);
        let s = RotationState::fresh("rb1").begin(Timestamp(1_796_000_000_000));
        let _l = lock(dir.path(), "a.test").unwrap();
        save(dir.path(), "a.test", &s).unwrap();
        assert_eq!(load(dir.path(), "a.test").unwrap(), Some(s));
        let meta = std::fs::metadata(state_path(dir.path(), "a.test")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        std::fs::write(state_path(dir.path(), "a.test"), "{").unwrap();
        assert!(matches!(
            load(dir.path(), "a.test"),
            Err(RotationError::Parse { .. })
        ));
    }

    #[test]
    fn records_match_on_key_and_type() {
        let want = "v=DKIM1; k=ed25519; p=AAAA";
        assert!(record_matches(want, &["v=DKIM1;k=ed25519;p=AA AA".into()]));
        assert!(!record_matches(want, &["v=DKIM1; k=rsa; p=AAAA".into()]));
        assert!(record_matches(
            "v=DKIM1; k=rsa; p=B",
            &["x".into(), "v=DKIM1; p=B".into()]
        ));
        assert!(
            !record_matches("v=DKIM1; k=rsa; p=", &["v=DKIM1; p=".into()]),
            "a revoked key is not ours"
        );
    }
}
