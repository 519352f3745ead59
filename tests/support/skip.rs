//! Skipping a check for want of a tool or privilege. Outside CI a skip prints a loud
//! `SKIPPED` line and the test returns (and reports `ok`); with `CI=true` a skip is a
//! failure, so a CI run cannot pass on checks that never ran.

/// True when the environment variable `CI` is `true`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The check `what` cannot run because `missing` is missing; `install` says how to get it.
/// Under `CI=true` this panics (fails the test); otherwise it prints `SKIPPED` and the caller
/// returns.
#[track_caller]
pub fn skip(what: &str, missing: &str, install: &str) {
    if in_ci() {
        panic!(
            "{what} did not run: {missing} is missing (CI=true, so this fails instead of skipping); {install}"
        );
    }
    eprintln!(
        "!!!!! SKIPPED {what}: {missing} is missing; this check did not run ({install}) !!!!!"
    );
}

/// True when Python's dkimpy and PyNaCl (ed25519) can be imported; otherwise [`skip`]s
/// `what` (a failure under `CI=true`).
#[track_caller]
pub fn dkimpy_ready(what: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import dkim, nacl"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(
            what,
            "python3 module dkim (dkimpy) or nacl (PyNaCl)",
            "python3 -m pip install --user dkimpy pynacl",
        );
    }
    ok
}
