//! Delivery status notifications to the original envelope sender
//! (`bounces.notify_sender`, RFC 3464 / RFC 3461). After each committed attempt,
//! the recipients that ended `failed`, `bounced` or `expired` in it (and asked for
//! failure notices: NOTIFY absent or FAILURE, never NEVER) get one
//! `multipart/report` DSN per message, queued with the null sender and
//! `is_dsn = true` so it is never answered by another DSN. Remote diagnostic text
//! is flattened to printable ASCII and bounded, so it cannot inject header lines.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;

use crate::daemon::state::Daemon;
use crate::model::address::Address;
use crate::model::dsn_request::{DsnNotify, DsnRet};
use crate::model::time::Timestamp;
use crate::model::{Event, EventKind, Source};
use crate::records::enqueue::{NewMessage, is_bounce_domain, queue_message};
use crate::store::queue::{MessageRecord, RcptRecord};
use crate::store::{StoreError, WriteSet};

/// Longest value written in a delivery-status field (well under the 998-octet line limit).
const MAX_FIELD: usize = 900;
/// Longest line of the original kept in a returned header block.
const MAX_LINE: usize = 998;

/// One recipient reported in a DSN.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    pub rcpt: &'a RcptRecord,
    pub event: &'a Event,
}

/// Queues the DSN for this attempt's failures, if one is due; returns its queue id.
pub async fn maybe_notify(
    daemon: &Daemon,
    rec: &MessageRecord,
    events: &[Event],
) -> Result<Option<u64>, StoreError> {
    let Some(new) = build(daemon, rec, events)? else {
        return Ok(None);
    };
    let (mut ws, mut queued) = (WriteSet::new(), Vec::new());
    let id = queue_message(daemon, new, &mut ws, &mut queued)?;
    daemon.commit(ws, &queued).await?;
    daemon.wake.notify_one();
    Ok(Some(id))
}

/// The DSN to queue for `events` (one attempt of `rec`), or `None` when none is due.
pub fn build(
    daemon: &Daemon,
    rec: &MessageRecord,
    events: &[Event],
) -> Result<Option<NewMessage>, StoreError> {
    if !daemon.cfg.bounces.notify_sender || rec.sender.is_empty() || rec.is_dsn {
        return Ok(None);
    }
    let Ok(sender) = Address::parse(&rec.sender) else {
        return Ok(None);
    };
    if is_bounce_domain(daemon, &sender) {
        return Ok(None);
    }
    let failed = failures(rec, events);
    if failed.is_empty() {
        return Ok(None);
    }
    let original = daemon.store.body(rec.id)?;
    let limit = daemon.cfg.smtp.max_message_size.0 as usize;
    let body = compose(
        &daemon.cfg.server.hostname,
        rec,
        &failed,
        original.as_deref(),
        limit,
        daemon.now(),
    );
    Ok(Some(NewMessage {
        sender: String::new(),
        recipients: vec![(sender.to_string(), None, None)],
        env_id: None,
        ret: None,
        client: "127.0.0.1".into(),
        auth_user: None,
        is_dsn: true,
        source: Source::Scheduler,
        body,
    }))
}

/// The recipients of `rec` that ended failed/bounced/expired in `events` and want to hear of it.
pub fn failures<'a>(rec: &'a MessageRecord, events: &'a [Event]) -> Vec<Failure<'a>> {
    let qid = rec.queue_id();
    let mut out: Vec<Failure<'_>> = Vec::new();
    for ev in events {
        if !matches!(
            ev.status,
            EventKind::Failed | EventKind::Bounced | EventKind::Expired
        ) || ev.queue_id.as_deref() != Some(qid.as_str())
        {
            continue;
        }
        let Some(rcpt) = rec
            .recipients
            .iter()
            .find(|r| Some(r.address.as_str()) == ev.recipient.as_deref())
        else {
            continue;
        };
        if wants_failure(rcpt.notify) && !out.iter().any(|f| std::ptr::eq(f.rcpt, rcpt)) {
            out.push(Failure { rcpt, event: ev });
        }
    }
    out
}

/// RFC 3461: no NOTIFY means failures only; NEVER means nothing.
pub fn wants_failure(n: Option<DsnNotify>) -> bool {
    n.is_none_or(|n| !n.never && n.failure)
}

/// The whole DSN message: headers, human-readable part, delivery-status, original.
pub fn compose(
    host: &str,
    rec: &MessageRecord,
    failed: &[Failure<'_>],
    original: Option<&[u8]>,
    full_limit: usize,
    now: Timestamp,
) -> Vec<u8> {
    let host = clean(host, 255);
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "us-ascii"),
                human_text(&host, rec, failed),
            ),
            MimePart::raw(format!(
                "Content-Type: message/delivery-status\r\n\r\n{}",
                status_fields(&host, rec, failed)
            )),
            original_part(rec.ret, original, full_limit),
        ],
    );
    MessageBuilder::new()
        .from((
            "Mail Delivery System",
            format!("MAILER-DAEMON@{host}").as_str(),
        ))
        .to(rec.sender.as_str())
        .subject("Delivery Status Notification (Failure)")
        .date(now.millis().div_euclid(1000))
        .message_id(format!("DSN.{}.{}@{host}", rec.queue_id(), now.millis()))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report)
        .write_to_vec()
        .unwrap_or_default()
}

fn human_text(host: &str, rec: &MessageRecord, failed: &[Failure<'_>]) -> String {
    let mut t = format!(
        "This is the mail system at host {host}.\r\n\r\nYour message could not be delivered to one or more recipients.\r\n"
    );
    if let Some(mid) = &rec.message_id {
        t.push_str(&format!("Message-ID: {}\r\n", clean(mid, 200)));
    }
    t.push_str("\r\n");
    for f in failed {
        let why = f
            .event
            .diagnostic
            .as_deref()
            .map(|d| clean(d, 300))
            .unwrap_or_else(|| "delivery failed".into());
        t.push_str(&format!("<{}>: {}\r\n", clean(&f.rcpt.address, 300), why));
    }
    t
}

/// The `message/delivery-status` body: the per-message group, then one group per recipient.
pub fn status_fields(host: &str, rec: &MessageRecord, failed: &[Failure<'_>]) -> String {
    let mut out = String::new();
    field(&mut out, "Reporting-MTA", &format!("dns; {host}"));
    if let Some(envid) = &rec.env_id {
        field(&mut out, "Original-Envelope-Id", envid);
    }
    field(&mut out, "Arrival-Date", &rec.received.to_rfc5322());
    for f in failed {
        out.push_str("\r\n");
        if let Some(orcpt) = &f.rcpt.orcpt {
            let v = if orcpt.contains(';') {
                orcpt.clone()
            } else {
                format!("rfc822;{orcpt}")
            };
            field(&mut out, "Original-Recipient", &v);
        }
        field(
            &mut out,
            "Final-Recipient",
            &format!("rfc822; {}", f.rcpt.address),
        );
        field(&mut out, "Action", "failed");
        field(&mut out, "Status", &status_code(f.event));
        if let Some(mta) = &f.event.remote_host {
            field(&mut out, "Remote-MTA", &format!("dns; {mta}"));
        }
        if let Some(d) = &f.event.diagnostic {
            field(
                &mut out,
                "Diagnostic-Code",
                &format!("{}; {d}", diagnostic_type(f.event)),
            );
        }
        field(&mut out, "Last-Attempt-Date", &f.event.time.to_rfc5322());
    }
    out
}

/// RFC 3464 §2.3.6 diagnostic-type: `smtp` only for a reply a remote SMTP server sent (the
/// event has a reply code); rebound's own text (expiry, DNS or connection failures) is `x-rebound`.
fn diagnostic_type(ev: &Event) -> &'static str {
    if ev.reply_code.is_some() {
        "smtp"
    } else {
        "x-rebound"
    }
}

/// The enhanced status of a failure: the reply's, else 4.4.7 for expiry, else from the reply class.
fn status_code(ev: &Event) -> String {
    if let Some(s) = ev
        .enhanced_status
        .as_deref()
        .and_then(crate::model::EnhancedCode::parse)
    {
        return s.to_string();
    }
    match (ev.status, ev.reply_code) {
        (EventKind::Expired, _) => "4.4.7".into(),
        (_, Some(c)) if (400..500).contains(&c) => "4.0.0".into(),
        _ => "5.0.0".into(),
    }
}

/// Appends `Name: value` with the value cleaned, bounded and folded at spaces.
fn field(out: &mut String, name: &str, value: &str) {
    let value = clean(value, MAX_FIELD);
    let mut col = name.len() + 1;
    out.push_str(name);
    out.push(':');
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if col + 1 + word.len() > 76 && col > name.len() + 1 {
            out.push_str("\r\n");
            col = 0;
        }
        out.push(' ');
        out.push_str(word);
        col += 1 + word.len();
    }
    out.push_str("\r\n");
}

/// Printable ASCII only (controls and line breaks become spaces, other bytes `?`),
/// runs of spaces squeezed, at most `max` bytes.
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let c = match c {
            ' '..='~' => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if out.len() >= max {
            break;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

/// `message/rfc822` with the whole original for RET=FULL (when it fits and has no
/// over-long line), else `text/rfc822-headers` with its header block.
fn original_part(
    ret: Option<DsnRet>,
    original: Option<&[u8]>,
    full_limit: usize,
) -> MimePart<'static> {
    let Some(body) = original else {
        return MimePart::raw("Content-Type: text/rfc822-headers\r\n\r\nX-Rebound-Note: the original message is no longer kept\r\n".to_string());
    };
    let fits =
        body.len() <= full_limit && body.split(|&b| b == b'\n').all(|l| l.len() <= MAX_LINE + 1);
    let mut part = Vec::with_capacity(body.len().min(full_limit) + 64);
    if ret == Some(DsnRet::Full) && fits {
        part.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        part.extend_from_slice(body);
        if !body.ends_with(b"\r\n") {
            part.extend_from_slice(b"\r\n");
        }
    } else {
        part.extend_from_slice(b"Content-Type: text/rfc822-headers\r\n\r\n");
        part.extend_from_slice(&header_block(body));
    }
    MimePart::raw(part)
}

/// The header block of `msg` (up to the blank line), lines cut at 998 octets, CRLF-terminated.
fn header_block(msg: &[u8]) -> Vec<u8> {
    let end = memchr::memmem::find(msg, b"\r\n\r\n")
        .map(|i| i + 2)
        .unwrap_or(msg.len());
    let mut out = Vec::with_capacity(end + 2);
    for line in msg[..end].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        out.extend_from_slice(&line[..line.len().min(MAX_LINE)]);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests;
