//! The admin subcommands: each one API call (or a few), printed as a table
//! or JSON lines.

use hyper::Method;
use serde_json::{Value, json};

use super::client::{ApiClient, ClientError, encode, query};
use super::output::{Out, cell};
use super::{Cmd, EventsArgs, QueueCmd, ReportCmd, SuppressionsCmd};
use crate::config::Config;

type Res = Result<(), ClientError>;

/// Runs one admin command against the daemon; returns the exit code.
pub fn run(cfg: &Config, json: bool, cmd: Cmd) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rebound: cannot start: {e}");
            return 1;
        }
    };
    let result = rt.block_on(async {
        let api = ApiClient::new(cfg)?;
        let mut stdout = std::io::stdout().lock();
        let mut out = Out {
            json,
            w: &mut stdout,
        };
        dispatch(&api, &mut out, cmd).await
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rebound: {e}");
            e.exit_code()
        }
    }
}

async fn dispatch(api: &ApiClient, out: &mut Out<'_>, cmd: Cmd) -> Res {
    match cmd {
        Cmd::Queue(q) => queue(api, out, q).await,
        Cmd::Events(a) => events(api, out, a).await,
        Cmd::Report(ReportCmd::Undelivered { days, status }) => {
            undelivered(api, out, days, status).await
        }
        Cmd::Suppressions(s) => suppressions(api, out, s).await,
        Cmd::Resend { id, to } => {
            let v = api
                .call(
                    Method::POST,
                    &format!("/v1/messages/{}/resend", encode(&id)),
                    Some(json!({ "to": to })),
                )
                .await?;
            print_or(out, &v, || {
                format!(
                    "queued {} (resent from {}) to {}",
                    cell(&v["queue_id"]),
                    cell(&v["resent_from"]),
                    cell(&v["recipients"])
                )
            });
            Ok(())
        }
        Cmd::Erase { address } => {
            let v = api
                .call(
                    Method::POST,
                    "/v1/erase",
                    Some(json!({ "address": address })),
                )
                .await?;
            let kept = if v["suppression_kept"] == true {
                "; suppression entry kept (reason and date only)"
            } else {
                ""
            };
            print_or(out, &v, || {
                format!(
                    "erased {}: {} events, {} messages, {} bodies{kept}",
                    cell(&v["address"]),
                    v["events"],
                    v["messages"],
                    v["bodies"]
                )
            });
            Ok(())
        }
        Cmd::Ingest { files } => ingest(api, out, files).await,
        Cmd::Serve
        | Cmd::CheckConfig
        | Cmd::Parse { .. }
        | Cmd::Sink { .. }
        | Cmd::Dns { .. }
        | Cmd::Dkim(_)
        | Cmd::Console(_) => Ok(()),
    }
}

fn print_or(out: &mut Out<'_>, v: &Value, human: impl FnOnce() -> String) {
    if out.json {
        out.json_lines(std::slice::from_ref(v));
    } else {
        out.line(&human());
    }
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn more(v: &Value) {
    if let Some(c) = v["next_cursor"].as_str() {
        eprintln!("(more: --cursor {c})");
    }
}

const MSG_COLS: [(&str, &str); 5] = [
    ("QUEUE ID", "queue_id"),
    ("RECEIVED", "received"),
    ("SENDER", "sender"),
    ("NEXT ATTEMPT", "next_attempt"),
    ("RECIPIENTS", "rcpts"),
];
const EVENT_COLS: [(&str, &str); 5] = [
    ("TIME", "time"),
    ("STATUS", "status"),
    ("RECIPIENT", "recipient"),
    ("QUEUE ID", "queue_id"),
    ("DIAGNOSTIC", "diagnostic"),
];

/// Adds a `rcpts` summary (`a@x (queued), b@y (deferred)`) for the table.
fn with_rcpts(mut m: Value) -> Value {
    let s: Vec<String> = m["recipients"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| format!("{} ({})", cell(&r["address"]), cell(&r["status"])))
                .collect()
        })
        .unwrap_or_default();
    m["rcpts"] = Value::String(s.join(", "));
    m
}

async fn queue(api: &ApiClient, out: &mut Out<'_>, q: QueueCmd) -> Res {
    match q {
        QueueCmd::List { all, limit, cursor } => queue_list(api, out, all, limit, cursor).await,
        QueueCmd::Show { id } => queue_show(api, out, &id).await,
        QueueCmd::Retry { id } => {
            let v = api
                .call(
                    Method::POST,
                    &format!("/v1/messages/{}/retry", encode(&id)),
                    None,
                )
                .await?;
            print_or(out, &v, || format!("{} is due now", cell(&v["queue_id"])));
            Ok(())
        }
        QueueCmd::Delete { id } => {
            let v = api
                .call(
                    Method::DELETE,
                    &format!("/v1/messages/{}", encode(&id)),
                    None,
                )
                .await?;
            let n = v["events"].as_array().map(Vec::len).unwrap_or(0);
            print_or(out, &v, || {
                format!(
                    "deleted {} ({n} pending recipient(s) dropped)",
                    cell(&v["deleted"])
                )
            });
            Ok(())
        }
    }
}

/// `rebound queue list`: one page of queued messages, a row each.
async fn queue_list(
    api: &ApiClient,
    out: &mut Out<'_>,
    all: bool,
    limit: Option<u32>,
    cursor: Option<String>,
) -> Res {
    let v = api
        .get(&format!(
            "/v1/queue{}",
            query(&[
                ("all", all.then(|| "true".into())),
                ("limit", limit.map(|n| n.to_string())),
                ("cursor", cursor)
            ])
        ))
        .await?;
    if out.json {
        out.json_lines(&items(&v));
    } else {
        out.table(
            &MSG_COLS,
            &items(&v).into_iter().map(with_rcpts).collect::<Vec<_>>(),
        );
    }
    more(&v);
    Ok(())
}

/// `rebound queue show ID`: the message, then (as text) its recipients and its events.
async fn queue_show(api: &ApiClient, out: &mut Out<'_>, id: &str) -> Res {
    let v = api.get(&format!("/v1/messages/{}", encode(id))).await?;
    out.object(
        &v,
        &[
            "queue_id",
            "received",
            "sender",
            "message_id",
            "client",
            "size",
            "attempts",
            "next_attempt",
            "finished",
            "body_kept",
            "resent_from",
        ],
    );
    if !out.json {
        out.line("");
        out.table(
            &[
                ("RECIPIENT", "address"),
                ("STATUS", "status"),
                ("ATTEMPTS", "attempts"),
                ("LAST DIAGNOSTIC", "last_diagnostic"),
            ],
            &v["recipients"].as_array().cloned().unwrap_or_default(),
        );
        out.line("");
        out.table(
            &EVENT_COLS,
            &v["events"].as_array().cloned().unwrap_or_default(),
        );
    }
    Ok(())
}

async fn events(api: &ApiClient, out: &mut Out<'_>, a: EventsArgs) -> Res {
    if a.unverified {
        let q = query(&[
            ("limit", a.limit.map(|n| n.to_string())),
            ("cursor", a.cursor),
        ]);
        let v = api.get(&format!("/v1/unverified{q}")).await?;
        let cols = [
            ("TIME", "time"),
            ("CLAIMED RECIPIENT", "recipient"),
            ("QUEUE ID", "queue_id"),
            ("WHY NOT TRUSTED", "diagnostic"),
        ];
        out.table(&cols, &items(&v));
        more(&v);
        return Ok(());
    }
    let q = query(&[
        ("recipient", a.recipient),
        ("status", a.status),
        ("message", a.message),
        ("since", a.since.or(a.from)),
        ("until", a.to),
        ("limit", a.limit.map(|n| n.to_string())),
        ("cursor", a.cursor),
    ]);
    let v = api.get(&format!("/v1/events{q}")).await?;
    out.table(&EVENT_COLS, &items(&v));
    more(&v);
    Ok(())
}

async fn undelivered(
    api: &ApiClient,
    out: &mut Out<'_>,
    days: Option<u32>,
    status: Option<String>,
) -> Res {
    let v = api
        .get(&format!(
            "/v1/reports/undelivered{}",
            query(&[("days", days.map(|d| d.to_string())), ("status", status)])
        ))
        .await?;
    if out.json {
        out.json_lines(&items(&v));
        out.json_lines(&[json!({"summary": v["summary"], "total": v["total"], "resolved": v["resolved"], "since": v["since"], "until": v["until"]})]);
        return Ok(());
    }
    let cols = [
        ("RECIPIENT", "recipient"),
        ("STATUS", "status"),
        ("TIME", "time"),
        ("QUEUE ID", "queue_id"),
        ("REASON", "reason"),
        ("DIAGNOSTIC", "diagnostic"),
    ];
    out.table(&cols, &items(&v));
    out.line("");
    out.line(&format!(
        "{} undelivered from {} to {}",
        v["total"],
        cell(&v["since"]),
        cell(&v["until"])
    ));
    if let Some(m) = v["summary"].as_object() {
        for (k, n) in m {
            out.line(&format!("  {k:<13} {n}"));
        }
    }
    if let Some(n) = v["resolved"].as_u64().filter(|n| *n > 0) {
        out.line(&format!("({n} resolved by a delivered resend, not listed)"));
    }
    Ok(())
}

async fn suppressions(api: &ApiClient, out: &mut Out<'_>, s: SuppressionsCmd) -> Res {
    match s {
        SuppressionsCmd::List {
            reason,
            limit,
            cursor,
        } => suppressions_list(api, out, reason, limit, cursor).await,
        SuppressionsCmd::Add {
            address,
            reason,
            diagnostic,
        } => {
            let v = api
                .call(
                    Method::PUT,
                    &format!("/v1/suppressions/{}", encode(&address)),
                    Some(json!({"reason": reason, "diagnostic": diagnostic})),
                )
                .await?;
            print_or(out, &v, || {
                format!(
                    "{} suppressed ({})",
                    cell(&v["address"]),
                    cell(&v["reason"])
                )
            });
            Ok(())
        }
        SuppressionsCmd::Remove { address, force } => {
            suppressions_remove(api, out, &address, force).await
        }
        SuppressionsCmd::Import { file, format } => import(api, out, file, format).await,
        SuppressionsCmd::Export { format } => {
            let a = api
                .send(
                    Method::GET,
                    &format!(
                        "/v1/suppressions/export{}",
                        query(&[("format", Some(format))])
                    ),
                    None,
                )
                .await?;
            let _ = out.w.write_all(&a.body);
            Ok(())
        }
    }
}

/// `rebound suppressions list`: one page of the suppression list.
async fn suppressions_list(
    api: &ApiClient,
    out: &mut Out<'_>,
    reason: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
) -> Res {
    let v = api
        .get(&format!(
            "/v1/suppressions{}",
            query(&[
                ("reason", reason),
                ("limit", limit.map(|n| n.to_string())),
                ("cursor", cursor)
            ])
        ))
        .await?;
    out.table(
        &[
            ("ADDRESS", "address"),
            ("REASON", "reason"),
            ("TIME", "time"),
            ("DIAGNOSTIC", "diagnostic"),
        ],
        &items(&v),
    );
    more(&v);
    Ok(())
}

/// `rebound suppressions remove ADDRESS [--force]`.
async fn suppressions_remove(
    api: &ApiClient,
    out: &mut Out<'_>,
    address: &str,
    force: bool,
) -> Res {
    let q = if force { "?force=true" } else { "" };
    let v = api
        .call(
            Method::DELETE,
            &format!("/v1/suppressions/{}{q}", encode(address)),
            None,
        )
        .await?;
    print_or(out, &v, || {
        format!(
            "{} removed from the suppression list (was {})",
            cell(&v["removed"]["address"]),
            cell(&v["removed"]["reason"])
        )
    });
    Ok(())
}

async fn import(
    api: &ApiClient,
    out: &mut Out<'_>,
    file: std::path::PathBuf,
    format: Option<String>,
) -> Res {
    let data = std::fs::read(&file).map_err(|e| ClientError::Api {
        status: 400,
        code: "io".into(),
        message: format!("{}: {e}", file.display()),
    })?;
    let jsonl = is_jsonl(&file, format.as_deref());
    let ct = if jsonl {
        "application/x-ndjson"
    } else {
        "text/csv"
    };
    let chunks = import_chunks(&data, jsonl);
    let total_lines = data.iter().filter(|&&b| b == b'\n').count().max(1);
    let mut tally = ImportTally::default();
    for chunk in &chunks {
        let v = api
            .send(
                Method::POST,
                "/v1/suppressions/import",
                Some((ct, chunk.body.clone())),
            )
            .await?
            .json()?;
        tally.add(&v, chunk);
        if chunks.len() > 1 {
            eprintln!(
                "{}: {}/{} lines imported",
                file.display(),
                chunk.last_line.min(total_lines),
                total_lines
            );
        }
    }
    tally.report(out, &file);
    Ok(())
}

/// Whether an import file is JSON lines (`--format`, else its extension) rather than CSV.
fn is_jsonl(file: &std::path::Path, format: Option<&str>) -> bool {
    match format {
        Some(f) => matches!(f, "jsonl" | "json" | "ndjson"),
        None => file
            .extension()
            .is_some_and(|e| e == "jsonl" || e == "ndjson" || e == "json"),
    }
}

/// What the import requests answered, summed over the chunks.
#[derive(Default)]
struct ImportTally {
    added: u64,
    unchanged: u64,
    /// Refused records, each naming its line in the file.
    errors: Vec<String>,
    /// Refused records the answers counted but did not list.
    more: u64,
}

impl ImportTally {
    fn add(&mut self, v: &Value, chunk: &Chunk) {
        self.added += v["added"].as_u64().unwrap_or(0);
        self.unchanged += v["unchanged"].as_u64().unwrap_or(0);
        self.more += v["more_errors"].as_u64().unwrap_or(0);
        self.errors.extend(
            v["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| chunk.file_line(&cell(e))),
        );
    }

    /// The refused records on stderr, the totals on stdout.
    fn report(&self, out: &mut Out<'_>, file: &std::path::Path) {
        let ImportTally {
            added,
            unchanged,
            errors,
            more,
        } = self;
        for e in errors {
            eprintln!("{}: {e}", file.display());
        }
        if *more > 0 {
            eprintln!(
                "{}: and {more} more refused records (only the first of each request are listed)",
                file.display()
            );
        }
        let v =
            json!({"added": added, "unchanged": unchanged, "errors": errors, "more_errors": more});
        print_or(out, &v, || {
            format!(
                "added {added}, unchanged {unchanged}, refused {}",
                errors.len() as u64 + more
            )
        });
    }
}

/// One request's worth of an import file, and where it sits in the file.
struct Chunk {
    body: Vec<u8>,
    /// File line of the chunk's first record, minus one; and whether a header line was repeated on top.
    offset: usize,
    header: bool,
    last_line: usize,
}

impl Chunk {
    /// Rewrites the server's `line N: ...` (counted in the chunk) to the file's line.
    fn file_line(&self, e: &str) -> String {
        let Some((n, rest)) = e.strip_prefix("line ").and_then(|r| r.split_once(':')) else {
            return e.to_string();
        };
        match n.parse::<usize>() {
            Ok(n) => format!("line {}:{rest}", self.offset + n - usize::from(self.header)),
            Err(_) => e.to_string(),
        }
    }
}

/// Records per request when importing, so long imports show progress.
const IMPORT_CHUNK_LINES: usize = 5_000;

/// Splits an import file on line boundaries (JSON lines, or CSV without quoted cells, where a
/// line is a record), repeating a CSV header line on every chunk; anything else is one chunk.
fn import_chunks(data: &[u8], jsonl: bool) -> Vec<Chunk> {
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    if lines.len() <= IMPORT_CHUNK_LINES || (!jsonl && data.contains(&b'"')) {
        return vec![Chunk {
            body: data.to_vec(),
            offset: 0,
            header: false,
            last_line: lines.len(),
        }];
    }
    let header = !jsonl
        && lines.first().is_some_and(|l| {
            String::from_utf8_lossy(l)
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("address")
        });
    let start = usize::from(header);
    lines[start..]
        .chunks(IMPORT_CHUNK_LINES)
        .enumerate()
        .map(|(i, part)| {
            let mut body = if header {
                lines[0].to_vec()
            } else {
                Vec::new()
            };
            part.iter().for_each(|l| body.extend_from_slice(l));
            let offset = start + i * IMPORT_CHUNK_LINES;
            Chunk {
                body,
                offset,
                header,
                last_line: offset + part.len(),
            }
        })
        .collect()
}

async fn ingest(api: &ApiClient, out: &mut Out<'_>, files: Vec<std::path::PathBuf>) -> Res {
    let (mut events, mut unverified, mut failed) = (Vec::new(), 0u64, None);
    for f in &files {
        let data = match std::fs::read(f) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("rebound: {}: {e}", f.display());
                failed = Some(ClientError::Api {
                    status: 400,
                    code: "io".into(),
                    message: format!("{}: cannot read", f.display()),
                });
                continue;
            }
        };
        let v = api
            .send(Method::POST, "/v1/ingest", Some(("message/rfc822", data)))
            .await?
            .json()?;
        let file = Value::String(f.display().to_string());
        events.extend(
            v["events"]
                .as_array()
                .into_iter()
                .flatten()
                .cloned()
                .map(|mut e| {
                    e["file"] = file.clone();
                    e
                }),
        );
        unverified += v["unverified"].as_u64().unwrap_or(0);
    }
    print_ingested(out, &events, unverified, files.len());
    failed.map_or(Ok(()), Err)
}

/// The events the reports caused (one table, or JSON lines and a summary line), and how many
/// reports were not trusted.
fn print_ingested(out: &mut Out<'_>, events: &[Value], unverified: u64, files: usize) {
    if out.json {
        out.json_lines(events);
        out.json_lines(&[
            json!({"summary": {"files": files, "events": events.len(), "unverified": unverified}}),
        ]);
        return;
    }
    let cols = [
        ("FILE", "file"),
        ("STATUS", "status"),
        ("RECIPIENT", "recipient"),
        ("QUEUE ID", "queue_id"),
        ("REASON", "reason"),
        ("DIAGNOSTIC", "diagnostic"),
    ];
    out.table(&cols, events);
    if unverified > 0 {
        out.line(&format!(
            "{unverified} report(s) not trusted: see `rebound events --unverified`"
        ));
    }
}

#[cfg(test)]
mod import_tests {
    use super::*;

    #[test]
    fn chunks_repeat_the_header_and_map_lines_back_to_the_file() {
        let mut csv = String::from("address,reason\n");
        for i in 0..12_000 {
            csv.push_str(&format!("u{i}@example.com,manual\n"));
        }
        let chunks = import_chunks(csv.as_bytes(), false);
        assert_eq!(chunks.len(), 3);
        assert!(
            chunks
                .iter()
                .all(|c| c.body.starts_with(b"address,reason\n"))
        );
        // Chunk 2's line 2 (after its repeated header) is file line 2 + 5000.
        assert_eq!(
            chunks[1].file_line("line 2: bad address"),
            "line 5002: bad address"
        );
        assert_eq!(chunks[0].file_line("line 2: x"), "line 2: x");
        assert_eq!(chunks[2].last_line, 12_001);
        // Quoted CSV (a cell may hold a newline) is never split.
        assert_eq!(
            import_chunks(b"\"a\nb\"@x.com\n".repeat(6000).as_slice(), false).len(),
            1
        );
    }
}
