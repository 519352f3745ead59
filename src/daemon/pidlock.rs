//! `data_dir/rebound.pid`: an exclusive `flock` held for the daemon's life, taken
//! before the database is opened, so a second daemon on the same data_dir is told
//! who holds it (`another rebound is running on DATA_DIR (pid N)`) instead of
//! getting sled's raw lock error. The lock goes with the file descriptor: it is
//! released when the [`PidLock`] is dropped or the process dies, however it dies.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PidLockError {
    #[error("another rebound is running on {data_dir} (pid {pid})")]
    Held { data_dir: String, pid: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct PidLock {
    file: File,
    path: PathBuf,
}

/// Creates `data_dir` if needed and locks `data_dir/rebound.pid`, writing this process's pid.
pub fn acquire(data_dir: &Path) -> Result<PidLock, PidLockError> {
    let path = data_dir.join("rebound.pid");
    let io = |source| PidLockError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|source| PidLockError::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    if let Err(e) = try_lock(&file) {
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(io(e));
        }
        return Err(PidLockError::Held {
            data_dir: data_dir.display().to_string(),
            pid: holder(&mut file),
        });
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush())
        .map_err(io)?;
    Ok(PidLock { file, path })
}

#[allow(unsafe_code)] // libc::flock: each unsafe block has its SAFETY comment
fn try_lock(file: &File) -> std::io::Result<()> {
    // SAFETY: a valid, open descriptor; flock has no other preconditions.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The pid the holder wrote (it writes just after locking, so an empty file is retried briefly).
fn holder(file: &mut File) -> String {
    for _ in 0..10 {
        let mut s = String::new();
        if file.rewind().is_ok() && file.read_to_string(&mut s).is_ok() && !s.trim().is_empty() {
            return s.trim().to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    "unknown".into()
}

impl Drop for PidLock {
    fn drop(&mut self) {
        // Still holding the lock: nobody else can be writing. Closing the file releases it.
        if let Err(e) = self.file.set_len(0) {
            tracing::debug!(path = %self.path.display(), error = %e, "could not clear the pid file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_the_pid_and_the_lock_goes_with_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = acquire(&data).unwrap();
        let err = acquire(&data).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "another rebound is running on {} (pid {})",
                data.display(),
                std::process::id()
            )
        );
        drop(first);
        assert_eq!(
            std::fs::read_to_string(data.join("rebound.pid")).unwrap(),
            ""
        );
        let again = acquire(&data).unwrap();
        assert_eq!(
            std::fs::read_to_string(data.join("rebound.pid"))
                .unwrap()
                .trim(),
            std::process::id().to_string()
        );
        drop(again);
    }
}
