//! Scores the bounce parser against a labelled corpus (`manifest.tsv` + `samples/`, see the
//! corpus README): hard/soft, reason, status and recipient-count agreement with Sisimai's labels.
//!
//! `cargo run --release --example score_corpus -- /work/shared/bounce-corpus [--verbose] [--rules] [--crlf|--cr]`

use std::collections::BTreeMap;
use std::path::Path;

use rebound::bounce::{RecipientReport, parse};
use rebound::model::Class;

/// One labelled row of the manifest.
struct Row {
    rcpt: usize,
    status: String,
    reply: String,
    reason: String,
    hard: bool,
}

#[derive(Default)]
struct Tally {
    rows: usize,
    hard: usize,
    reason: usize,
    status: usize,
    messages: usize,
    count: usize,
    unreadable: usize,
    notes: Vec<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose" || a == "-v");
    let rules = args.iter().any(|a| a == "--rules");
    // `--crlf` / `--cr` re-encode every message's line ends first (the parser must not care).
    let ends = args.iter().find_map(|a| match a.as_str() {
        "--crlf" => Some("\r\n"),
        "--cr" => Some("\r"),
        _ => None,
    });
    let Some(dir) = args.iter().find(|a| !a.starts_with('-')) else {
        eprintln!("usage: score_corpus CORPUS_DIR [--verbose]");
        std::process::exit(2);
    };
    let manifest = match std::fs::read_to_string(Path::new(dir).join("manifest.tsv")) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("score_corpus: {dir}/manifest.tsv: {e}");
            std::process::exit(2);
        }
    };
    let mut tally = Tally::default();
    for (file, rows) in read_manifest(&manifest) {
        match std::fs::read(Path::new(dir).join("samples").join(&file)) {
            Ok(raw) => score_message(&file, &rows, &reencode(raw, ends), &mut tally, rules),
            Err(e) => {
                tally.unreadable += 1;
                tally.notes.push(format!("{file}: unreadable: {e}"));
            }
        }
    }
    print_summary(&tally, verbose);
}

/// The message with every line end replaced by `ends`, or unchanged.
fn reencode(raw: Vec<u8>, ends: Option<&str>) -> Vec<u8> {
    let Some(ends) = ends else { return raw };
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for line in raw.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.extend_from_slice(line);
        out.extend_from_slice(ends.as_bytes());
    }
    out
}

fn read_manifest(text: &str) -> BTreeMap<String, Vec<Row>> {
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() < 7 {
            continue;
        }
        let row = Row {
            rcpt: c[6].parse().unwrap_or(0),
            status: c[1].to_string(),
            reply: c[2].to_string(),
            reason: c[3].to_string(),
            hard: c[4] == "1",
        };
        out.entry(c[0].to_string()).or_default().push(row);
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| r.rcpt);
    }
    out
}

fn score_message(file: &str, rows: &[Row], raw: &[u8], t: &mut Tally, rules: bool) {
    // Like `rebound parse`: an mbox file is read message by message.
    let reports: Vec<_> = rebound::bounce::mbox::split_mbox(raw).into_iter().map(parse).collect();
    let ours: Vec<&RecipientReport> = reports
        .iter()
        .flat_map(|r| &r.recipients)
        .filter(|r| r.class != Class::None)
        .collect();
    let format = reports.first().map_or("none", |r| r.format);
    let expected = rows.iter().filter(|r| r.reason != "notbounce").count();
    t.messages += 1;
    if expected == ours.len() {
        t.count += 1;
    } else {
        t.notes.push(format!(
            "{file}: recipients: expected {expected}, got {} ({})",
            ours.len(),
            format
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        t.rows += 1;
        let got = ours.get(i).copied();
        let hard = got.is_some_and(|g| g.class == Class::Hard);
        let reason = got.map_or("notbounce", |g| g.reason.as_str());
        let status = got
            .and_then(|g| g.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        if rules {
            println!(
                "RULE\t{file}\t{}\t{}\t{}\t{status}\t{}",
                row.reason,
                reason,
                got.map_or("-", |g| g.rule),
                got.and_then(|g| g.smtp_command).unwrap_or("-")
            );
        }
        let what = |field: &str, want: &str, have: &str| {
            let (rule, diag) = got.map_or(("-", String::new()), |g| {
                (g.rule, g.diagnostic.clone().unwrap_or_default())
            });
            let diag: String = diag.chars().take(110).collect();
            format!(
                "{file}#{}: {field}: expected {want:?}, got {have:?} [{} {rule}] reply={} {diag}",
                row.rcpt, format, row.reply
            )
        };
        if hard == row.hard {
            t.hard += 1;
        } else {
            t.notes
                .push(what("hard", &row.hard.to_string(), &hard.to_string()));
        }
        if reason == row.reason {
            t.reason += 1;
        } else {
            t.notes.push(what("reason", &row.reason, reason));
        }
        if status_agrees(&row.status, &status) {
            t.status += 1;
        } else {
            t.notes.push(what("status", &row.status, &status));
        }
    }
}

/// Exact match, except that Sisimai's pseudo codes (`5.0.9xx`, meaning "the message carried no
/// usable code") agree with no status or any code of the same class.
fn status_agrees(want: &str, have: &str) -> bool {
    if want == have {
        return true;
    }
    let parts: Vec<&str> = want.split('.').collect();
    let pseudo =
        parts.len() == 3 && parts[1] == "0" && parts[2].len() == 3 && parts[2].starts_with('9');
    pseudo && (have.is_empty() || have.starts_with(parts[0]))
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

fn print_summary(t: &Tally, verbose: bool) {
    if verbose {
        for n in &t.notes {
            println!("{n}");
        }
        println!();
    }
    println!(
        "messages: {}  rows: {}  unreadable: {}",
        t.messages, t.rows, t.unreadable
    );
    println!(
        "hard/soft agreement:       {:6.2} % ({}/{})",
        pct(t.hard, t.rows),
        t.hard,
        t.rows
    );
    println!(
        "reason agreement:          {:6.2} % ({}/{})",
        pct(t.reason, t.rows),
        t.reason,
        t.rows
    );
    println!(
        "status agreement:          {:6.2} % ({}/{})",
        pct(t.status, t.rows),
        t.status,
        t.rows
    );
    println!(
        "recipient-count agreement: {:6.2} % ({}/{})",
        pct(t.count, t.messages),
        t.count,
        t.messages
    );
}
