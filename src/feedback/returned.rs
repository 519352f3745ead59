//! Returned mail: DSNs, NDRs, ARF complaints and auto-replies that come back to
//! the bounce domain (by SMTP, `rebound ingest` or `POST /v1/ingest`). The bounce
//! domain faces the Internet, so a report changes a recipient only when it is tied
//! to that (message, recipient) by something an attacker cannot forge:
//!
//! 1. the signed VERP tag of the envelope address it was sent to (or of a
//!    `bounces+…` address quoted in it), or
//! 2. the signed report token (`X-Rebound-Token:`) rebound writes into every copy,
//!    found in the returned original or the headers an ARF report embeds.
//!
//! A Message-ID alone is never enough, unless `bounces.trust_message_id` is set and
//! the report came from an authenticated caller (`rebound ingest`, `POST /v1/ingest`).
//! What is applied goes through [`crate::records::disposition`]; a report already applied,
//! or about a copy sent before the address's last manual removal, changes nothing.
//! Everything else is kept in the bounded security log (`rebound events
//! --unverified`), never in a recipient's communications log, never by webhook.

use ring::digest;

use crate::bounce::{BounceReport, RecipientReport};
use crate::daemon::state::{Daemon, record_unverified};
use crate::feedback::verp::{TOKEN_HEADER, VerpError, VerpTag};
use crate::model::address::suppression_key;
use crate::model::{Action, Class, Event, EventKind, Source};
use crate::records::disposition::{Finding, apply_effect, effect};
use crate::store::queue::MessageRecord;
use crate::store::{StoreError, WriteSet};

/// At most this many recipients of one report are acted on (a report naming
/// thousands of addresses must not empty the list by itself).
pub const MAX_RECIPIENTS_PER_REPORT: usize = 100;
/// Longest diagnostic text kept from a report (the rest is cut, with a mark).
pub const MAX_DIAGNOSTIC: usize = 2000;
/// At most this many candidate tags or tokens are checked per report.
const MAX_CANDIDATES: usize = 8;
/// Only this much of a report is searched for `bounces+…` addresses and tokens.
const SEARCH_LIMIT: usize = 256 * 1024;

/// How the report reached rebound.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// By SMTP to these bounce-domain recipients, from `peer` (anyone on the Internet).
    Smtp { rcpts: &'a [&'a str], peer: &'a str },
    /// From an authenticated caller of the admin API (`rebound ingest`).
    Api,
}

/// One report being handled: the shared state, what it says and how it came.
#[derive(Clone, Copy)]
struct Job<'a> {
    daemon: &'a Daemon,
    report: &'a BounceReport,
    origin: Origin<'a>,
}

/// What one report did.
#[derive(Debug, Default)]
pub struct Returned {
    /// Events for the communications log (already in the write set).
    pub events: Vec<Event>,
    /// Messages in which a recipient newly failed for good (for sender DSNs).
    pub failed: Vec<MessageRecord>,
    /// Entries written to the security log.
    pub unverified: u64,
}

/// Parses `raw` and applies what it says; everything it writes goes into `ws`.
pub fn ingest(
    daemon: &Daemon,
    raw: &[u8],
    origin: Origin<'_>,
    ws: &mut WriteSet,
) -> Result<Returned, StoreError> {
    let mut out = Returned::default();
    if let Origin::Smtp { rcpts, .. } = origin {
        for rcpt in rcpts {
            if let Some(events) =
                crate::feedback::unsubscribe::by_mail(daemon, raw, Some(rcpt), ws)?
            {
                out.events.extend(events);
                return Ok(out);
            }
        }
    } else if let Some(events) = crate::feedback::unsubscribe::by_mail(daemon, raw, None, ws)? {
        out.events = events;
        return Ok(out);
    }
    let report = crate::bounce::parse(raw);
    let job = Job {
        daemon,
        report: &report,
        origin,
    };
    match authenticate(daemon, raw, &report, origin)? {
        Ok(targets) => apply_all(job, targets, ws, &mut out)?,
        Err(why) => untrusted(job, None, &why, ws, &mut out)?,
    }
    Ok(out)
}

/// Who an authentic report is about.
enum Targets {
    /// Recipients proved by signed tags or tokens.
    Signed(Vec<(MessageRecord, usize)>),
    /// The message a Message-ID names (only with `trust_message_id`, from the API).
    ByMessageId(MessageRecord),
}

/// The recipients the report is cryptographically tied to, or why it is not trusted.
fn authenticate(
    daemon: &Daemon,
    raw: &[u8],
    report: &BounceReport,
    origin: Origin<'_>,
) -> Result<Result<Targets, String>, StoreError> {
    let (tags, problem) = signed_tags(daemon, raw, report, origin);
    let mut targets: Vec<(MessageRecord, usize)> = Vec::new();
    for tag in tags {
        let idx = tag.rcpt_index as usize;
        match daemon.store.message(tag.queue_id)? {
            Some(rec) if idx < rec.recipients.len() => {
                if !targets.iter().any(|(r, i)| r.id == rec.id && *i == idx) {
                    targets.push((rec, idx));
                }
            }
            _ => return Ok(Err("the signed tag names a message no longer kept".into())),
        }
    }
    if !targets.is_empty() {
        return Ok(Ok(Targets::Signed(targets)));
    }
    if let Some(why) = problem {
        return Ok(Err(why));
    }
    let mid = report
        .original_message_id
        .clone()
        .or_else(|| report.original.message_id.clone());
    let trusted_caller = matches!(origin, Origin::Api) && daemon.cfg.bounces.trust_message_id;
    match (mid, trusted_caller) {
        (Some(mid), true) => match daemon
            .store
            .message_by_message_id(&mid)?
            .map(|id| daemon.store.message(id))
            .transpose()?
            .flatten()
        {
            Some(rec) => Ok(Ok(Targets::ByMessageId(rec))),
            None => Ok(Err(format!(
                "no message of ours has Message-ID {}",
                clip(&mid, 200)
            ))),
        },
        (Some(_), false) => Ok(Err(
            "no signed VERP tag or report token; a Message-ID alone proves nothing".into(),
        )),
        (None, _) => Ok(Err("no signed VERP tag or report token".into())),
    }
}

/// Valid tags from the envelope recipients, `bounces+…` addresses and report tokens in the
/// report, with the first problem seen when some did not verify.
fn signed_tags(
    daemon: &Daemon,
    raw: &[u8],
    report: &BounceReport,
    origin: Origin<'_>,
) -> (Vec<VerpTag>, Option<String>) {
    let validity = daemon.cfg.bounces.tag_validity.0;
    let now = daemon.now();
    let envelope: &[&str] = match origin {
        Origin::Smtp { rcpts, .. } => rcpts,
        Origin::Api => &[],
    };
    // Both searches read the same lower-cased head of the report.
    let text = String::from_utf8_lossy(&raw[..raw.len().min(SEARCH_LIMIT)]).to_ascii_lowercase();
    let addresses = envelope
        .iter()
        .map(|s| s.to_string())
        .chain(verp_addresses(&text, daemon.verp.domain()));
    let (mut tags, mut problem) = (Vec::new(), None);
    for addr in addresses.take(MAX_CANDIDATES) {
        match daemon.verp.verify(&addr, now, validity) {
            Ok(tag) => tags.push(tag),
            Err(VerpError::NotOurs) => {}
            Err(e) => problem = Some(format!("VERP tag rejected: {e}")),
        }
    }
    for token in report_tokens(&text, report)
        .into_iter()
        .take(MAX_CANDIDATES)
    {
        match daemon.verp.verify_report_token(&token, now, validity) {
            Ok(tag) => tags.push(tag),
            Err(e) => problem = Some(format!("report token rejected: {e}")),
        }
    }
    (tags, problem)
}

/// `bounces+…@<domain>` addresses found anywhere in `text` (the report's lower-cased head:
/// headers of the report, the embedded Return-Path ...), in order, without duplicates.
fn verp_addresses(text: &str, domain: &str) -> Vec<String> {
    let suffix = format!("@{domain}");
    let mut out: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("bounces+") {
        let start = from + i;
        let tail = &text[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "+.-_@".contains(c)))
            .unwrap_or(tail.len());
        let cand = &tail[..end];
        if let Some(cut) = cand.find(&suffix) {
            let addr = cand[..cut + suffix.len()].to_string();
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        from = start + 8;
        if out.len() >= MAX_CANDIDATES {
            break;
        }
    }
    out
}

/// Report tokens: the parsed original's `X-Rebound-Token` fields, then any such header line
/// in `text` (the report's lower-cased head: an original quoted as plain text), without
/// duplicates.
fn report_tokens(text: &str, report: &BounceReport) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    fn push(out: &mut Vec<String>, t: &str) {
        let t = t.trim().to_ascii_lowercase();
        if !t.is_empty() && t.len() <= 64 && !out.contains(&t) {
            out.push(t);
        }
    }
    for (name, value) in &report.original.rebound_headers {
        if name.eq_ignore_ascii_case(TOKEN_HEADER) {
            push(&mut out, value);
        }
    }
    let needle = format!("{}:", TOKEN_HEADER.to_ascii_lowercase());
    let mut from = 0;
    while let Some(i) = text[from..].find(&needle) {
        let start = from + i + needle.len();
        let value = text[start..].split(['\r', '\n']).next().unwrap_or("");
        push(&mut out, value);
        from = start;
        if out.len() >= MAX_CANDIDATES {
            break;
        }
    }
    out
}

fn apply_all(
    job: Job<'_>,
    targets: Targets,
    ws: &mut WriteSet,
    out: &mut Returned,
) -> Result<(), StoreError> {
    match targets {
        Targets::Signed(list) => {
            for (mut rec, idx) in list {
                apply_signed(job, &mut rec, idx, ws, out)?;
            }
        }
        Targets::ByMessageId(mut rec) => {
            let lines: Vec<(usize, RecipientReport)> = job
                .report
                .recipients
                .iter()
                .take(MAX_RECIPIENTS_PER_REPORT)
                .filter_map(|r| position_of(&rec, r).map(|i| (i, r.clone())))
                .collect();
            if lines.is_empty() {
                let why = format!(
                    "Message-ID matches {} but no reported recipient was one of its recipients",
                    rec.queue_id()
                );
                return untrusted(job, Some(&rec), &why, ws, out);
            }
            let before = out.events.len();
            for (idx, line) in &lines {
                apply_line(job, &mut rec, *idx, line, ws, out)?;
            }
            finish(&mut rec, ws, out, before)?;
        }
    }
    Ok(())
}

/// A report tied to recipient `idx` of `rec`: the line about that recipient (or the only
/// line, when the report names nobody) is applied; a report that names only other
/// addresses is not about this copy.
fn apply_signed(
    job: Job<'_>,
    rec: &mut MessageRecord,
    idx: usize,
    ws: &mut WriteSet,
    out: &mut Returned,
) -> Result<(), StoreError> {
    let report = job.report;
    let ours = suppression_key(&rec.recipients[idx].address);
    let claimed: Vec<&RecipientReport> = report
        .recipients
        .iter()
        .filter(|r| r.recipient.is_some())
        .collect();
    let line = match claimed.iter().find(|r| keys_of(r).contains(&ours)) {
        Some(r) => (*r).clone(),
        None if claimed.is_empty() => report
            .recipients
            .first()
            .cloned()
            .unwrap_or_else(RecipientReport::blank),
        None => {
            let named: Vec<String> = claimed
                .iter()
                .take(5)
                .filter_map(|r| r.recipient.clone())
                .collect();
            let why = format!(
                "signed for {} but the report names {}",
                rec.recipients[idx].address,
                named.join(", ")
            );
            return untrusted(job, Some(rec), &why, ws, out);
        }
    };
    if line.class == Class::Unclassified {
        let why = format!(
            "signed for {} but not a bounce ({} format)",
            rec.recipients[idx].address, report.format
        );
        return untrusted(job, Some(rec), &why, ws, out);
    }
    let before = out.events.len();
    apply_line(job, rec, idx, &line, ws, out)?;
    finish(rec, ws, out, before)
}

/// Writes the record back when a line changed it; remembers it for a sender DSN when a
/// recipient newly failed for good.
fn finish(
    rec: &mut MessageRecord,
    ws: &mut WriteSet,
    out: &mut Returned,
    events_before: usize,
) -> Result<(), StoreError> {
    let new = &out.events[events_before..];
    if new.is_empty() {
        return Ok(());
    }
    let old = rec.next_attempt;
    if rec.is_finished() {
        rec.next_attempt = None;
    }
    ws.put_message(rec, old)?;
    if new
        .iter()
        .any(|e| matches!(e.status, EventKind::Bounced | EventKind::Failed))
    {
        out.failed.push(rec.clone());
    }
    Ok(())
}

/// Applies one authenticated line to recipient `idx`, unless it was applied before or is
/// about a copy sent before the address's last manual removal (both go to the security log).
fn apply_line(
    job: Job<'_>,
    rec: &mut MessageRecord,
    idx: usize,
    line: &RecipientReport,
    ws: &mut WriteSet,
    out: &mut Returned,
) -> Result<(), StoreError> {
    let daemon = job.daemon;
    let action = line
        .action
        .as_deref()
        .and_then(Action::parse)
        .unwrap_or(match line.class {
            Class::Delivered => Action::Delivered,
            _ => Action::Failed,
        });
    let opt_out = line.feedback_type.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("opt-out") || t.eq_ignore_ascii_case("unsubscribe")
    });
    let effect = effect(Finding::Report {
        class: line.class,
        action,
        opt_out,
    });
    let address = rec.recipients[idx].address.clone();
    let digest = evidence_digest(rec.id, idx, action, line);
    if let Some(at) = daemon.store.applied_at(&digest)? {
        let why = format!(
            "a replay: this report about {address} was already applied at {at}; nothing changes"
        );
        return untrusted(job, Some(rec), &why, ws, out);
    }
    if effect.status.is_some()
        && let Some(at) = daemon.store.unblocked_at(&address)?
        && rec.received <= at
    {
        let why = format!(
            "about a copy sent before {address} was removed from the suppression list at {at}; nothing changes"
        );
        return untrusted(job, Some(rec), &why, ws, out);
    }
    let mut ev = Event::new(effect.event, daemon.now());
    describe(&mut ev, line, job.report, action);
    if apply_effect(daemon, rec, idx, effect, ev, ws, &mut out.events)?.is_some() {
        ws.mark_applied(&digest, daemon.now());
    }
    Ok(())
}

/// What identifies one report's verdict on one copy: the same verdict arriving again
/// (a replayed or regenerated DSN) has the same digest.
fn evidence_digest(queue_id: u64, idx: usize, action: Action, line: &RecipientReport) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&queue_id.to_be_bytes());
    ctx.update(&(idx as u64).to_be_bytes());
    for part in [action.as_str(), line.class.as_str(), line.reason.as_str()] {
        ctx.update(part.as_bytes());
        ctx.update(b"\0");
    }
    ctx.update(
        line.status
            .map(|s| s.to_string())
            .unwrap_or_default()
            .as_bytes(),
    );
    ctx.update(b"\0");
    ctx.update(line.diagnostic.as_deref().unwrap_or("").as_bytes());
    ctx.update(b"\0");
    ctx.update(line.feedback_type.as_deref().unwrap_or("").as_bytes());
    ctx.finish().as_ref().to_vec()
}

fn position_of(rec: &MessageRecord, r: &RecipientReport) -> Option<usize> {
    let keys = keys_of(r);
    rec.recipients
        .iter()
        .position(|x| keys.contains(&suppression_key(&x.address)))
}

fn keys_of(r: &RecipientReport) -> Vec<Option<String>> {
    let strip = |s: &String| s.rsplit(';').next().unwrap_or(s).trim().to_string();
    [r.recipient.as_ref(), r.original_recipient.as_ref()]
        .into_iter()
        .flatten()
        .map(|s| suppression_key(&strip(s)))
        .filter(Option::is_some)
        .collect()
}

fn describe(ev: &mut Event, r: &RecipientReport, report: &BounceReport, action: Action) {
    ev.source = Some(if r.class == Class::Complaint {
        Source::Arf
    } else {
        Source::Dsn
    });
    ev.class = Some(r.class);
    ev.reason = Some(r.reason);
    ev.rule = Some(format!("{}:{}", report.format, r.rule));
    ev.reply_code = r.reply_code;
    ev.enhanced_status = r.status.map(|s| s.to_string());
    ev.diagnostic = r.diagnostic.as_deref().map(|d| clip(d, MAX_DIAGNOSTIC));
    ev.remote_host = r.remote_mta.as_deref().map(|h| clip(h, 255));
    ev.feedback_type = r.feedback_type.as_deref().map(|t| clip(t, 64));
    ev.action = (r.class != Class::Complaint && r.class != Class::Autoreply).then_some(action);
}

/// `s` cut to at most `max` bytes on a character boundary, with a mark when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [cut]", &s[..end])
}

/// Adds one entry to the security log: what the report claimed, where it came from and
/// why it was not trusted. Changes no recipient.
fn untrusted(
    job: Job<'_>,
    rec: Option<&MessageRecord>,
    why: &str,
    ws: &mut WriteSet,
    out: &mut Returned,
) -> Result<(), StoreError> {
    let Job {
        daemon,
        report,
        origin,
    } = job;
    let first = report
        .recipients
        .first()
        .cloned()
        .unwrap_or_else(RecipientReport::blank);
    let action = first
        .action
        .as_deref()
        .and_then(Action::parse)
        .unwrap_or(Action::Failed);
    let mut ev = Event::new(EventKind::Unverified, daemon.now());
    describe(&mut ev, &first, report, action);
    ev.recipient = first.recipient.as_deref().map(|r| clip(r, 320));
    if let Some(rec) = rec {
        ev.queue_id = Some(rec.queue_id());
        ev.message_id = rec.message_id.clone();
    }
    let via = match origin {
        Origin::Smtp { peer, .. } => format!("SMTP from {peer}"),
        Origin::Api => "the admin API".to_string(),
    };
    let summary = first
        .diagnostic
        .as_deref()
        .map(|d| format!(": {}", clip(d, 300)))
        .unwrap_or_default();
    ev.diagnostic = Some(format!(
        "{why} (via {via}); parsed as {} {} ({}){summary}",
        report.format,
        first.class.as_str(),
        first.reason
    ));
    tracing::warn!(reason = why, via = %via, "returned message not trusted; kept in the security log");
    record_unverified(daemon, ws, ev)?;
    out.unverified += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_verp_addresses_in_raw_text() {
        let raw = b"To: Bounces+ABCdef234@Bounces.Example.com\r\nX: <bounces+zzz@other.example>\r\n\r\nReturn-Path: <bounces+abcdef234@bounces.example.com>\r\n";
        let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
        assert_eq!(
            verp_addresses(&text, "bounces.example.com"),
            vec!["bounces+abcdef234@bounces.example.com".to_string()]
        );
    }

    #[test]
    fn finds_report_tokens_in_quoted_headers() {
        let raw = b"Subject: bounce\r\n\r\n> X-Rebound-Token: AbC234\r\nx-rebound-token:abc234\r\nX-Rebound-Token: zz7\r\n";
        let report = crate::bounce::parse(raw);
        let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
        assert_eq!(
            report_tokens(&text, &report),
            vec!["abc234".to_string(), "zz7".to_string()]
        );
    }

    #[test]
    fn clip_keeps_short_text_and_cuts_on_a_char_boundary() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("ééé", 3), "é [cut]");
    }
}
