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
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rebound: cannot start: {e}");
            return 1;
        }
    };
    let result = rt.block_on(async {
        let api = ApiClient::new(cfg)?;
        let mut stdout = std::io::stdout().lock();
        let mut out = Out { json, w: &mut stdout };
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
        Cmd::Report(ReportCmd::Undelivered { days, status }) => undelivered(api, out, days, status).await,
        Cmd::Suppressions(s) => suppressions(api, out, s).await,
        Cmd::Resend { id, to } => {
            let v = api.call(Method::POST, &format!("/v1/messages/{}/resend", encode(&id)), Some(json!({ "to": to }))).await?;
            print_or(out, &v, || format!("queued {} (resent from {}) to {}", cell(&v["queue_id"]), cell(&v["resent_from"]), cell(&v["recipients"])));
            Ok(())
        }
        Cmd::Erase { address } => {
            let v = api.call(Method::POST, "/v1/erase", Some(json!({ "address": address }))).await?;
            let kept = if v["suppression_kept"] == true { "; suppression entry kept (reason and date only)" } else { "" };
            print_or(out, &v, || format!("erased {}: {} events, {} messages, {} bodies{kept}", cell(&v["address"]), v["events"], v["messages"], v["bodies"]));
            Ok(())
        }
        Cmd::Ingest { files } => ingest(api, out, files).await,
        Cmd::Serve | Cmd::CheckConfig | Cmd::Parse { .. } => Ok(()),
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

const MSG_COLS: [(&str, &str); 5] = [("QUEUE ID", "queue_id"), ("RECEIVED", "received"), ("SENDER", "sender"), ("NEXT ATTEMPT", "next_attempt"), ("RECIPIENTS", "rcpts")];
const EVENT_COLS: [(&str, &str); 5] = [("TIME", "time"), ("STATUS", "status"), ("RECIPIENT", "recipient"), ("QUEUE ID", "queue_id"), ("DIAGNOSTIC", "diagnostic")];

/// Adds a `rcpts` summary (`a@x (queued), b@y (deferred)`) for the table.
fn with_rcpts(mut m: Value) -> Value {
    let s: Vec<String> = m["recipients"].as_array().map(|a| a.iter().map(|r| format!("{} ({})", cell(&r["address"]), cell(&r["status"]))).collect()).unwrap_or_default();
    m["rcpts"] = Value::String(s.join(", "));
    m
}

async fn queue(api: &ApiClient, out: &mut Out<'_>, q: QueueCmd) -> Res {
    match q {
        QueueCmd::List { all, limit, cursor } => {
            let v = api.get(&format!("/v1/queue{}", query(&[("all", all.then(|| "true".into())), ("limit", limit.map(|n| n.to_string())), ("cursor", cursor)]))).await?;
            if out.json {
                out.json_lines(&items(&v));
            } else {
                out.table(&MSG_COLS, &items(&v).into_iter().map(with_rcpts).collect::<Vec<_>>());
            }
            more(&v);
        }
        QueueCmd::Show { id } => {
            let v = api.get(&format!("/v1/messages/{}", encode(&id))).await?;
            out.object(&v, &["queue_id", "received", "sender", "message_id", "client", "size", "attempts", "next_attempt", "finished", "body_kept", "resent_from"]);
            if !out.json {
                out.line("");
                out.table(&[("RECIPIENT", "address"), ("STATUS", "status"), ("ATTEMPTS", "attempts"), ("LAST DIAGNOSTIC", "last_diagnostic")], &v["recipients"].as_array().cloned().unwrap_or_default());
                out.line("");
                out.table(&EVENT_COLS, &v["events"].as_array().cloned().unwrap_or_default());
            }
        }
        QueueCmd::Retry { id } => {
            let v = api.call(Method::POST, &format!("/v1/messages/{}/retry", encode(&id)), None).await?;
            print_or(out, &v, || format!("{} is due now", cell(&v["queue_id"])));
        }
        QueueCmd::Delete { id } => {
            let v = api.call(Method::DELETE, &format!("/v1/messages/{}", encode(&id)), None).await?;
            let n = v["events"].as_array().map(Vec::len).unwrap_or(0);
            print_or(out, &v, || format!("deleted {} ({n} pending recipient(s) dropped)", cell(&v["deleted"])));
        }
    }
    Ok(())
}

async fn events(api: &ApiClient, out: &mut Out<'_>, a: EventsArgs) -> Res {
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

async fn undelivered(api: &ApiClient, out: &mut Out<'_>, days: Option<u32>, status: Option<String>) -> Res {
    let v = api.get(&format!("/v1/reports/undelivered{}", query(&[("days", days.map(|d| d.to_string())), ("status", status)]))).await?;
    if out.json {
        out.json_lines(&items(&v));
        out.json_lines(&[json!({"summary": v["summary"], "total": v["total"], "since": v["since"], "until": v["until"]})]);
        return Ok(());
    }
    let cols = [("RECIPIENT", "recipient"), ("STATUS", "status"), ("TIME", "time"), ("QUEUE ID", "queue_id"), ("REASON", "reason"), ("DIAGNOSTIC", "diagnostic")];
    out.table(&cols, &items(&v));
    out.line("");
    out.line(&format!("{} undelivered from {} to {}", v["total"], cell(&v["since"]), cell(&v["until"])));
    if let Some(m) = v["summary"].as_object() {
        for (k, n) in m {
            out.line(&format!("  {k:<13} {n}"));
        }
    }
    Ok(())
}

async fn suppressions(api: &ApiClient, out: &mut Out<'_>, s: SuppressionsCmd) -> Res {
    match s {
        SuppressionsCmd::List { reason, limit, cursor } => {
            let v = api.get(&format!("/v1/suppressions{}", query(&[("reason", reason), ("limit", limit.map(|n| n.to_string())), ("cursor", cursor)]))).await?;
            out.table(&[("ADDRESS", "address"), ("REASON", "reason"), ("TIME", "time"), ("DIAGNOSTIC", "diagnostic")], &items(&v));
            more(&v);
        }
        SuppressionsCmd::Add { address, reason, diagnostic } => {
            let v = api.call(Method::PUT, &format!("/v1/suppressions/{}", encode(&address)), Some(json!({"reason": reason, "diagnostic": diagnostic}))).await?;
            print_or(out, &v, || format!("{} suppressed ({})", cell(&v["address"]), cell(&v["reason"])));
        }
        SuppressionsCmd::Remove { address, force } => {
            let q = if force { "?force=true" } else { "" };
            let v = api.call(Method::DELETE, &format!("/v1/suppressions/{}{q}", encode(&address)), None).await?;
            print_or(out, &v, || format!("{} removed from the suppression list (was {})", cell(&v["removed"]["address"]), cell(&v["removed"]["reason"])));
        }
        SuppressionsCmd::Import { file, format } => import(api, out, file, format).await?,
        SuppressionsCmd::Export { format } => {
            let a = api.send(Method::GET, &format!("/v1/suppressions/export{}", query(&[("format", Some(format))])), None).await?;
            let _ = out.w.write_all(&a.body);
        }
    }
    Ok(())
}

async fn import(api: &ApiClient, out: &mut Out<'_>, file: std::path::PathBuf, format: Option<String>) -> Res {
    let data = std::fs::read(&file).map_err(|e| ClientError::Api { status: 400, code: "io".into(), message: format!("{}: {e}", file.display()) })?;
    let jsonl = match format.as_deref() {
        Some(f) => matches!(f, "jsonl" | "json" | "ndjson"),
        None => file.extension().is_some_and(|e| e == "jsonl" || e == "ndjson" || e == "json"),
    };
    let ct = if jsonl { "application/x-ndjson" } else { "text/csv" };
    let v = api.send(Method::POST, "/v1/suppressions/import", Some((ct, data))).await?.json()?;
    for e in v["errors"].as_array().into_iter().flatten() {
        eprintln!("{}: {}", file.display(), cell(e));
    }
    print_or(out, &v, || format!("added {}, unchanged {}, refused {}", v["added"], v["unchanged"], v["errors"].as_array().map(Vec::len).unwrap_or(0)));
    Ok(())
}

async fn ingest(api: &ApiClient, out: &mut Out<'_>, files: Vec<std::path::PathBuf>) -> Res {
    let mut failed = None;
    for f in files {
        let data = match std::fs::read(&f) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("rebound: {}: {e}", f.display());
                failed = Some(ClientError::Api { status: 400, code: "io".into(), message: format!("{}: cannot read", f.display()) });
                continue;
            }
        };
        let a = api.send(Method::POST, "/v1/ingest", Some(("message/rfc822", data))).await?;
        let v: Value = serde_json::from_slice(&a.body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&a.body).into_owned()));
        let v = json!({"file": f.display().to_string(), "result": v});
        print_or(out, &v, || format!("{}: {}", f.display(), cell(&v["result"])));
    }
    failed.map_or(Ok(()), Err)
}
