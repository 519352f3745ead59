//! `rebound parse FILE... | -` (README "Bounces, complaints and unsubscribes"): one JSON line per recipient of every message read.

use std::io::{Read, Write};

use serde::Serialize;

use super::{RecipientReport, parse, split_mbox};
use crate::model::{Class, Reason};

/// One output line, keys in the order README "Bounces, complaints and unsubscribes" shows.
#[derive(Serialize)]
struct Line<'a> {
    file: &'a str,
    recipient: Option<&'a str>,
    action: Option<&'a str>,
    status: Option<String>,
    reply_code: Option<u16>,
    reason: Reason,
    class: Class,
    diagnostic: Option<&'a str>,
    remote_mta: Option<&'a str>,
    original_message_id: Option<&'a str>,
    feedback_type: Option<&'a str>,
}

impl<'a> Line<'a> {
    fn new(file: &'a str, r: &'a RecipientReport, original_message_id: Option<&'a str>) -> Self {
        Line {
            file,
            recipient: r.recipient.as_deref(),
            action: r.action.as_deref(),
            status: r.status.map(|s| s.to_string()),
            reply_code: r.reply_code,
            reason: r.reason,
            class: r.class,
            diagnostic: r.diagnostic.as_deref(),
            remote_mta: r.remote_mta.as_deref(),
            original_message_id,
            feedback_type: r.feedback_type.as_deref(),
        }
    }
}

/// Parses every file (`-` is standard input; mbox files are split) and writes the JSON lines to
/// `out`. Returns the exit code: 0 when every file was read, 2 when one could not be (after the
/// others were still processed) or when no file was named.
pub fn run_parse_command(
    paths: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    if paths.is_empty() {
        let _ = writeln!(
            err,
            "rebound parse: no input (name files, or - for standard input)"
        );
        return 2;
    }
    let mut code = 0;
    for path in paths {
        let raw = match read_input(path, stdin) {
            Ok(raw) => raw,
            Err(e) => {
                let _ = writeln!(err, "rebound parse: {path}: {e}");
                code = 2;
                continue;
            }
        };
        if let Err(e) = write_file(path, &raw, out) {
            let _ = writeln!(err, "rebound parse: writing output: {e}");
            return 1;
        }
    }
    code
}

fn read_input(path: &str, stdin: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    if path == "-" {
        let mut buf = Vec::new();
        stdin.read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path)
    }
}

fn write_file(path: &str, raw: &[u8], out: &mut dyn Write) -> std::io::Result<()> {
    for msg in split_mbox(raw) {
        let report = parse(msg);
        for r in &report.recipients {
            let line = Line::new(path, r, report.original_message_id.as_deref());
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_file_is_reported_and_others_still_processed() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("plain.eml");
        std::fs::write(
            &good,
            b"From: a@b.test\nTo: c@d.test\nSubject: hello\n\nhi\n",
        )
        .unwrap();
        let missing = dir.path().join("missing.eml");
        let paths = vec![missing.display().to_string(), good.display().to_string()];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_parse_command(&paths, &mut std::io::empty(), &mut out, &mut err);
        assert_eq!(code, 2);
        assert!(String::from_utf8_lossy(&err).contains("missing.eml"));
        let v: serde_json::Value =
            serde_json::from_slice(out.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(v["class"], "none");
        assert!(v["recipient"].is_null());
        assert_eq!(v["file"], paths[1]);
    }

    #[test]
    fn stdin_is_read_for_dash() {
        let msg = b"From: MAILER-DAEMON@q.test\nSubject: failure notice\n\nHi. This is the qmail-send program at q.test.\n\
            I'm afraid I wasn't able to deliver your message to the following addresses.\n\n<a@x.test>:\nRemote host said: 550 5.1.1 no mailbox\n";
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_parse_command(&["-".to_string()], &mut &msg[..], &mut out, &mut err);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
        let v: serde_json::Value = serde_json::from_slice(out.trim_ascii_end()).unwrap();
        assert_eq!(v["recipient"], "a@x.test");
        assert_eq!(v["status"], "5.1.1");
        assert_eq!(v["class"], "hard");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 11);
    }
}
