//! The README's "Try it offline" quick start, run exactly as written: the two shell
//! blocks after `<!-- quickstart: terminal 1 -->` and `<!-- quickstart: terminal 2 -->`
//! are read from README.md (so the two cannot drift) and run with bash. Terminal 1 runs
//! in a scratch copy of the repository's `config/` (its data directory lands there, not
//! in the checkout); its `cargo install` line is the only one not run, because the test
//! already has the binary it would install, first on PATH. The quick start's fixed
//! ports (2525, 2526, 8025) must be free.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const README: &str = include_str!("../../README.md");

/// The lines of the first ```sh block after `marker`.
fn block(marker: &str) -> Vec<String> {
    let start = README
        .find(marker)
        .unwrap_or_else(|| panic!("README has no {marker}"));
    let rest = &README[start..];
    let open = rest.find("```sh\n").expect("a sh block after the marker") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the block ends");
    rest[open..open + close]
        .lines()
        .map(str::to_string)
        .collect()
}

/// The directory of the binary under test, for PATH.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_rebound"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn path_env() -> String {
    format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Terminal 1, left running in its own process group.
struct Terminal1(Child);

impl Drop for Terminal1 {
    fn drop(&mut self) {
        let pgid = self.0.id() as i32;
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn wait_listening(port: u16, within: Duration, t1: &mut Terminal1, log: &Path) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = t1.0.try_wait() {
            panic!(
                "terminal 1 ended ({status}) before port {port} listened:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port} after {within:?}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_readme_quick_start_delivers_one_and_bounces_one() {
    for port in [2525, 2526, 8025] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} is in use: the quick start needs it free"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("clone");
    std::fs::create_dir_all(work.join("config")).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        repo.join("config/quickstart.toml"),
        work.join("config/quickstart.toml"),
    )
    .unwrap();
    let runtime = dir.path().join("runtime");
    let t1_lines: Vec<String> = block("<!-- quickstart: terminal 1 -->")
        .into_iter()
        .filter(|l| !l.starts_with("cargo install"))
        .collect();
    assert_eq!(
        t1_lines.len(),
        2,
        "terminal 1 runs the sink and the daemon: {t1_lines:?}"
    );
    let log = dir.path().join("terminal1.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new("bash")
            .arg("-c")
            .arg(t1_lines.join("\n"))
            .current_dir(&work)
            .env("PATH", path_env())
            .env("REBOUND_RUNTIME_DIR", &runtime)
            .env_remove("REBOUND_CONFIG")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("bash runs")
    };
    let mut t1 = Terminal1(child);
    for port in [2526, 2525, 8025] {
        wait_listening(port, Duration::from_secs(30), &mut t1, &log);
    }
    let t2 = block("<!-- quickstart: terminal 2 -->");
    let res = Command::new("bash")
        .arg("-e")
        .arg("-c")
        .arg(t2.join("\n"))
        .current_dir(dir.path())
        .env("PATH", path_env())
        .env("REBOUND_RUNTIME_DIR", &runtime)
        .env_remove("REBOUND_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&res.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(
        res.status.success(),
        "terminal 2 failed ({}):\n{stdout}\n{stderr}",
        res.status
    );
    let has_line = |words: &[&str]| stdout.lines().any(|l| words.iter().all(|w| l.contains(w)));
    assert!(has_line(&["delivered", "parent@example.test"]), "{stdout}");
    assert!(
        has_line(&["bounced", "nobody@example.test", "550 5.1.1"]),
        "{stdout}"
    );
    assert!(
        has_line(&["suppression_added", "nobody@example.test"]),
        "{stdout}"
    );
    assert!(has_line(&["1 undelivered from"]), "{stdout}");
    assert!(!has_line(&["parent@example.test", "bounced"]), "{stdout}");
    drop(t1);
    let mut sink_log = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut sink_log)
        .unwrap();
    assert!(
        sink_log.contains("delivered: from <bounces+")
            && sink_log.contains("to <parent@example.test>"),
        "the sink printed the delivery:\n{sink_log}"
    );
}
