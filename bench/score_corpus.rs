//! Scores the bounce parser against a labelled corpus (`manifest.tsv` + `samples/`, see the
//! corpus README): hard/soft, reason, status and recipient-count agreement with Sisimai's labels.
//!
//! `cargo run --release --example score_corpus -- /work/shared/bounce-corpus [--verbose] [--rules] [--crlf|--cr] [--split] [--sisimai FILE]`
//!
//! `--split` divides the corpus by a hash of each file's bytes (byte-identical files fall in the
//! same part): one file in five is the validation part. Disagreements are listed (`--verbose`)
//! for the other four fifths only, and the validation part's figures are printed beside them:
//! rules are written against the training part, the validation figure is the one to report.
//! A row labelled with a permanent status (5.x.x, RFC 3463: the report is final; Sisimai's pseudo
//! codes 5.0.9xx, its own guesses, excepted) also scores the action: it must be `failed`.
//! `--sisimai FILE` scores Sisimai's verdicts (from `bench/sisimai_rows.pl CORPUS > FILE`) by
//! the same rules instead of rebound's parser.

use std::collections::BTreeMap;
use std::path::Path;

use rebound::bounce::parse;
use rebound::model::Class;

/// One recipient's verdict, from rebound's parser or from Sisimai.
struct Got {
    hard: bool,
    reason: String,
    status: String,
    rule: String,
    command: String,
    diagnostic: String,
    /// The RFC 3464 action (`failed`, `delayed` ...), empty when none was given.
    action: String,
}

/// Sisimai's verdicts by file, in its recipient order.
type Sisimai = BTreeMap<String, Vec<Got>>;

fn read_sisimai(path: &str) -> Sisimai {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("score_corpus: {path}: {e}");
        std::process::exit(2);
    });
    let mut out: Sisimai = BTreeMap::new();
    for line in text.lines() {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() < 5 {
            continue;
        }
        let action = c.get(5).unwrap_or(&"").to_string();
        let got = Got {
            hard: c[3] == "1",
            reason: c[2].to_string(),
            status: c[4].to_string(),
            rule: "sisimai".into(),
            command: "-".into(),
            diagnostic: String::new(),
            action,
        };
        out.entry(c[0].to_string()).or_default().push(got);
    }
    out
}

/// Which part of a `--split` corpus a file belongs to: one in five is validation.
fn is_validation(raw: &[u8]) -> bool {
    ring::digest::digest(&ring::digest::SHA256, raw).as_ref()[0] % 5 == 0
}

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
    /// Rows labelled with a permanent (5.x.x) status: final failures, whose action must be `failed`.
    finals: usize,
    /// Of those, the rows given action `failed`.
    action: usize,
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
    let split = args.iter().any(|a| a == "--split");
    let sisimai = args
        .iter()
        .position(|a| a == "--sisimai")
        .and_then(|i| args.get(i + 1))
        .map(|p| read_sisimai(p));
    let (mut tally, mut validation) = (Tally::default(), Tally::default());
    for (file, rows) in read_manifest(&manifest) {
        match std::fs::read(Path::new(dir).join("samples").join(&file)) {
            Ok(raw) => {
                let t = if split && is_validation(&raw) {
                    &mut validation
                } else {
                    &mut tally
                };
                let got = match &sisimai {
                    Some(s) => s
                        .get(&file)
                        .map(|v| {
                            v.iter()
                                .map(|g| Got {
                                    rule: g.rule.clone(),
                                    reason: g.reason.clone(),
                                    status: g.status.clone(),
                                    command: g.command.clone(),
                                    diagnostic: String::new(),
                                    hard: g.hard,
                                    action: g.action.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    None => ours(&reencode(raw, ends)),
                };
                score_message(&file, &rows, got, t, rules)
            }
            Err(e) => {
                tally.unreadable += 1;
                tally.notes.push(format!("{file}: unreadable: {e}"));
            }
        }
    }
    let who = if sisimai.is_some() {
        "Sisimai"
    } else {
        "rebound"
    };
    if split {
        println!("== {who}, training part (4/5; disagreements listed with --verbose)");
        print_summary(&tally, verbose);
        println!("== {who}, validation part (1/5; write no rule from these files)");
        print_summary(&validation, false);
    } else {
        print_summary(&tally, verbose);
    }
}

/// rebound's verdicts on one corpus file, read like `rebound parse` (an mbox message by message).
fn ours(raw: &[u8]) -> Vec<Got> {
    rebound::bounce::mbox::split_mbox(raw)
        .into_iter()
        .map(parse)
        .flat_map(|r| r.recipients.into_iter().map(move |g| (r.format, g)))
        .filter(|(_, g)| g.class != Class::Unclassified)
        .map(|(format, g)| Got {
            hard: g.class == Class::Hard,
            reason: g.reason.as_str().to_string(),
            status: g.status.map(|s| s.to_string()).unwrap_or_default(),
            rule: format!("{format} {}", g.rule),
            command: g.smtp_command.unwrap_or("-").to_string(),
            diagnostic: g.diagnostic.unwrap_or_default(),
            action: g.action.unwrap_or_default(),
        })
        .collect()
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

fn score_message(file: &str, rows: &[Row], ours: Vec<Got>, t: &mut Tally, rules: bool) {
    let expected = rows.iter().filter(|r| r.reason != "notbounce").count();
    t.messages += 1;
    if expected == ours.len() {
        t.count += 1;
    } else {
        t.notes.push(format!(
            "{file}: recipients: expected {expected}, got {}",
            ours.len()
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        t.rows += 1;
        let got = ours.get(i);
        let hard = got.is_some_and(|g| g.hard);
        let reason = got.map_or("notbounce", |g| g.reason.as_str());
        let status = got.map(|g| g.status.as_str()).unwrap_or_default();
        if rules {
            println!(
                "RULE\t{file}\t{}\t{}\t{}\t{status}\t{}",
                row.reason,
                reason,
                got.map_or("-", |g| g.rule.as_str()),
                got.map_or("-", |g| g.command.as_str())
            );
        }
        let what = |field: &str, want: &str, have: &str| {
            let (rule, diag) = got.map_or(("-", String::new()), |g| {
                (g.rule.as_str(), g.diagnostic.chars().take(110).collect())
            });
            format!(
                "{file}#{}: {field}: expected {want:?}, got {have:?} [{rule}] reply={} {diag}",
                row.rcpt, row.reply
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
        if row.status.starts_with("5.") && !is_pseudo(&row.status) {
            t.finals += 1;
            let action = got.map_or("", |g| g.action.as_str());
            if action == "failed" {
                t.action += 1;
            } else {
                t.notes.push(what("action", "failed", action));
            }
        }
        if status_agrees(&row.status, status) {
            t.status += 1;
        } else {
            t.notes.push(what("status", &row.status, status));
        }
    }
}

/// Exact match, except that Sisimai's pseudo codes (`5.0.9xx`, meaning "the message carried no
/// usable code") agree with no status or any code of the same class.
fn status_agrees(want: &str, have: &str) -> bool {
    if want == have {
        return true;
    }
    is_pseudo(want) && (have.is_empty() || have.starts_with(&want[..1]))
}

/// One of Sisimai's pseudo codes (`5.0.9xx`): Sisimai's guess, not a status the report stated.
fn is_pseudo(code: &str) -> bool {
    let parts: Vec<&str> = code.split('.').collect();
    parts.len() == 3 && parts[1] == "0" && parts[2].len() == 3 && parts[2].starts_with('9')
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
        "final failures 'failed':   {:6.2} % ({}/{})",
        pct(t.action, t.finals),
        t.action,
        t.finals
    );
    println!(
        "recipient-count agreement: {:6.2} % ({}/{})",
        pct(t.count, t.messages),
        t.count,
        t.messages
    );
}
