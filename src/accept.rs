//! Intake on the queue: the [`Intake`] implementation SMTP sessions use. It
//! splits a submission into relay recipients (queued, or `dropped` when
//! suppressed) and bounce-domain recipients (returned mail, handed to
//! [`crate::returned`]), stores record, body, schedule entry and events in one
//! write set, and resolves only once the group commit has flushed them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::address::Address;
use crate::config::OnSuppressed;
use crate::intake::{Intake, IntakeError, Notify, RcptDecision, Receipt, Ret, Submission};
use crate::model::{Event, EventKind, Source, Status};
use crate::relay::Relay;
use crate::store::queue::{MessageRecord, RcptRecord, format_queue_id, new_queue_id};
use crate::store::{StoreError, TreeId, WriteSet};

/// The queue's side of SMTP intake.
#[derive(Debug, Clone)]
pub struct QueueIntake {
    pub relay: Arc<Relay>,
}

impl Intake for QueueIntake {
    fn accepting(&self) -> Result<(), IntakeError> {
        let r = &self.relay;
        if r.shutting_down.load(Ordering::SeqCst) {
            return Err(IntakeError::ShuttingDown);
        }
        if r.committer.is_poisoned() {
            return Err(IntakeError::StorageFailed("store poisoned after a failed flush".into()));
        }
        match free_space(&r.cfg.server.data_dir) {
            Some(free) if free < r.cfg.smtp.min_free_space.0 => Err(IntakeError::InsufficientStorage),
            _ => Ok(()),
        }
    }

    fn check_recipient(&self, rcpt: &Address) -> RcptDecision {
        let r = &self.relay;
        if is_bounce_domain(r, rcpt) {
            return RcptDecision::BounceIntake;
        }
        if r.cfg.suppression.on_suppressed == OnSuppressed::Reject
            && let Ok(Some(s)) = r.store.suppression(rcpt.as_str()) {
                return RcptDecision::RejectSuppressed(s.reason);
            }
        RcptDecision::Relay
    }

    async fn submit(&self, sub: Submission) -> Result<Receipt, IntakeError> {
        self.accepting()?;
        let relay = self.relay.clone();
        let built = build_submission(&relay, sub).map_err(storage)?;
        relay.commit(built.ws, &built.events).await.map_err(storage)?;
        relay.wake.notify_one();
        notify_late_failures(&relay, &built.late_failures, &built.events).await;
        Ok(built.id.map_or_else(Receipt::report_received, |queue_id| Receipt { queue_id }))
    }
}

fn storage(e: StoreError) -> IntakeError {
    tracing::error!(error = %e, "could not store a message");
    IntakeError::StorageFailed(e.to_string())
}

/// True for addresses at the bounce domain (returned mail, never relayed).
pub fn is_bounce_domain(relay: &Relay, a: &Address) -> bool {
    a.domain_key() == relay.verp.domain()
}

/// With `bounces.notify_sender`, tells the original senders of `failed` messages about the
/// recipients that a returned report showed to have failed for good (after the report's
/// effects were stored).
pub async fn notify_late_failures(relay: &Relay, failed: &[MessageRecord], events: &[Event]) {
    for rec in failed {
        if let Err(e) = crate::dsn::maybe_notify(relay, rec, events).await {
            tracing::error!(queue_id = %rec.queue_id(), error = %e, "could not queue the sender DSN for a late failure");
        }
    }
}

/// One submission's write set, its events, the queue id (none for returned reports only) and the messages a returned report
/// showed to have failed after delivery.
struct Built {
    ws: WriteSet,
    events: Vec<Event>,
    id: Option<String>,
    late_failures: Vec<MessageRecord>,
}

/// Builds the write set for one submission. Returned mail to any number of bounce-domain
/// recipients is parsed and stored once.
fn build_submission(relay: &Relay, sub: Submission) -> Result<Built, StoreError> {
    let mut ws = WriteSet::new();
    let (returned, outgoing): (Vec<_>, Vec<_>) = sub.recipients.iter().partition(|r| is_bounce_domain(relay, &r.address));
    let (mut events, mut late_failures) = (Vec::new(), Vec::new());
    if !returned.is_empty() {
        let rcpts: Vec<&str> = returned.iter().map(|r| r.address.as_str()).collect();
        let peer = sub.session.peer.ip().to_string();
        let origin = crate::returned::Origin::Smtp { rcpts: &rcpts, peer: &peer };
        let done = crate::returned::ingest(relay, &sub.body, origin, &mut ws)?;
        events = done.events;
        late_failures = done.failed;
    }
    if outgoing.is_empty() {
        return Ok(Built { ws, events, id: None, late_failures });
    }
    let new = NewMessage {
        sender: sub.sender.map(|a| a.to_string()).unwrap_or_default(),
        recipients: outgoing.iter().map(|r| (r.address.to_string(), r.orcpt.clone(), r.notify)).collect(),
        env_id: sub.env_id,
        ret: sub.ret,
        client: sub.session.peer.ip().to_string(),
        auth_user: sub.session.auth_user,
        is_dsn: false,
        source: Source::Smtp,
        body: sub.body,
    };
    let id = queue_message(relay, new, &mut ws, &mut events)?;
    Ok(Built { ws, events, id: Some(format_queue_id(id)), late_failures })
}

/// A message to put on the queue: from SMTP intake, or generated by rebound (a DSN).
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Envelope sender; empty for the null sender `<>`.
    pub sender: String,
    /// (address, ORCPT, NOTIFY) per recipient; addresses already validated.
    pub recipients: Vec<(String, Option<String>, Option<Notify>)>,
    pub env_id: Option<String>,
    pub ret: Option<Ret>,
    pub client: String,
    pub auth_user: Option<String>,
    /// True for a DSN rebound generated (never answered by another DSN).
    pub is_dsn: bool,
    /// Recorded on the `queued` / `dropped` events.
    pub source: Source,
    pub body: Vec<u8>,
}

/// Adds a new queue entry to `ws`: record, body, Message-ID index, schedule entry and one
/// `queued` (or `dropped`, when suppressed) event per recipient. Returns the queue id.
pub fn queue_message(relay: &Relay, new: NewMessage, ws: &mut WriteSet, events: &mut Vec<Event>) -> Result<u64, StoreError> {
    let now = relay.now();
    let id = new_queue_id(&relay.store, now)?;
    let (body, message_id) = complete_headers(new.body, &relay.cfg.server.hostname, now);
    let mut rec = MessageRecord {
        id,
        received: now,
        sender: new.sender,
        message_id: Some(message_id.clone()),
        env_id: new.env_id,
        ret: new.ret,
        client: new.client,
        auth_user: new.auth_user,
        recipients: Vec::with_capacity(new.recipients.len()),
        attempts: 0,
        next_attempt: None,
        resent_from: None,
        size: body.len() as u64,
        is_dsn: new.is_dsn,
    };
    for (address, orcpt, notify) in new.recipients {
        let status = match relay.store.suppression(&address)? {
            Some(s) => {
                let mut ev = base_event(EventKind::Dropped, now, &rec, &address);
                ev.source = Some(new.source);
                ev.diagnostic = Some(suppressed_since(&s));
                events.push(relay.record(ws, ev)?);
                Status::Dropped
            }
            None => {
                let mut ev = base_event(EventKind::Queued, now, &rec, &address);
                ev.source = Some(new.source);
                events.push(relay.record(ws, ev)?);
                Status::Queued
            }
        };
        rec.recipients.push(RcptRecord { address, orcpt, notify, status, attempts: 0, last_diagnostic: None });
    }
    if !rec.is_finished() {
        rec.next_attempt = Some(now);
    }
    ws.put_message(&rec, None);
    ws.insert(TreeId::Bodies, id.to_be_bytes().to_vec(), body);
    ws.insert(TreeId::MsgIds, message_id.into_bytes(), id.to_be_bytes().to_vec());
    Ok(id)
}

/// An event about one recipient of a queued message.
pub fn base_event(kind: EventKind, now: crate::time::Timestamp, rec: &MessageRecord, rcpt: &str) -> Event {
    let mut ev = Event::new(kind, now);
    ev.queue_id = Some(rec.queue_id());
    ev.message_id = rec.message_id.clone();
    ev.recipient = Some(rcpt.to_string());
    ev.source = Some(Source::Smtp);
    ev
}

/// The diagnostic of a `dropped` event: why the address is suppressed, and since when.
pub fn suppressed_since(s: &crate::model::Suppression) -> String {
    format!("suppressed ({}) since {}", s.reason, s.time)
}

/// Returns the body with the fields RFC 5322 §3.6 requires, and its Message-ID. A missing
/// `Message-ID` and `Date` (`received`, in RFC 5322 form) are added below the leading trace
/// fields (the `Received:` rebound prepended stays first); every other byte is kept. A
/// generated id is 128 random bits: nothing in it can be derived from the queue id, the clock
/// or another recipient's copy.
pub fn complete_headers(body: Vec<u8>, host: &str, received: crate::time::Timestamp) -> (Vec<u8>, String) {
    let kept = header_value(&body, "message-id").map(|m| m.trim().to_string()).filter(|m| !m.is_empty());
    let mut added = String::new();
    let mid = kept.unwrap_or_else(|| {
        let random: [u8; 16] = rand::random();
        let mid = format!("<{}@{}>", crate::verp::base32(&random), host);
        added.push_str(&format!("Message-ID: {mid}\r\n"));
        mid
    });
    if header_value(&body, "date").is_none() {
        added.push_str(&format!("Date: {}\r\n", received.to_rfc5322()));
    }
    if added.is_empty() {
        return (body, mid);
    }
    let at = trace_end(&body);
    let mut out = Vec::with_capacity(body.len() + added.len());
    out.extend_from_slice(&body[..at]);
    out.extend_from_slice(added.as_bytes());
    out.extend_from_slice(&body[at..]);
    (out, mid)
}

/// The offset just past the leading trace fields (`Received:`, `Return-Path:`, folded lines included).
fn trace_end(msg: &[u8]) -> usize {
    let is_trace = |line: &[u8]| {
        ["received:", "return-path:"].iter().any(|n| line.len() >= n.len() && line[..n.len()].eq_ignore_ascii_case(n.as_bytes()))
    };
    let mut at = 0;
    let mut in_trace = false;
    while at < msg.len() {
        let rest = &msg[at..];
        let line_end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let line = &rest[..line_end];
        let folded = in_trace && line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !folded && !is_trace(line) {
            break;
        }
        in_trace = true;
        at += line_end;
    }
    at
}

/// The (unfolded) value of the first header called `name` in the header block.
pub fn header_value(msg: &[u8], name: &str) -> Option<String> {
    let end = memchr::memmem::find(msg, b"\r\n\r\n").map(|i| i + 2).unwrap_or(msg.len());
    let head = &msg[..end];
    let mut value: Option<String> = None;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(v) = value.as_mut() {
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                v.push(' ');
                v.push_str(String::from_utf8_lossy(line).trim());
                continue;
            }
            return value;
        }
        if line.len() > name.len() && line[name.len()] == b':' && line[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            value = Some(String::from_utf8_lossy(&line[name.len() + 1..]).trim().to_string());
        }
    }
    value
}

/// Free bytes for unprivileged users on the filesystem holding `dir`.
pub fn free_space(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = if dir.exists() { dir.to_path_buf() } else { dir.parent()?.to_path_buf() };
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: crate::time::Timestamp = crate::time::Timestamp(1_795_000_000_000);

    #[test]
    fn message_id_is_kept_or_added() {
        let (b, m) = complete_headers(b"Subject: x\r\nMessage-Id: <a@b>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nhi\r\n".to_vec(), "h", T);
        assert_eq!(m, "<a@b>");
        assert_eq!(b, b"Subject: x\r\nMessage-Id: <a@b>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nhi\r\n");
        let (b, m) = complete_headers(b"Subject: x\r\nDate: d\r\n\r\nMessage-ID: <not-a-header>\r\n".to_vec(), "relay.example", T);
        assert!(m.starts_with('<') && m.ends_with("@relay.example>") && m.len() == "<@relay.example>".len() + 26, "{m}");
        assert_eq!(b, format!("Message-ID: {m}\r\nSubject: x\r\nDate: d\r\n\r\nMessage-ID: <not-a-header>\r\n").into_bytes());
        // Two generated ids share nothing guessable.
        let (_, m2) = complete_headers(b"Subject: x\r\n\r\n".to_vec(), "relay.example", T);
        assert_ne!(m, m2);
    }

    #[test]
    fn date_and_message_id_go_below_the_trace_fields() {
        let received = "Received: from app ([127.0.0.1])\r\n\tby relay.example (rebound) with ESMTP id 1;\r\n\tSun, 1 Nov 2026 00:00:00 +0000\r\n";
        let app = "From: a@app.test\r\nSubject: hi\r\n\r\nDate: not a header\r\n";
        let (b, m) = complete_headers(format!("{received}{app}").into_bytes(), "relay.example", T);
        let date = format!("Date: {}\r\n", T.to_rfc5322());
        assert_eq!(String::from_utf8(b).unwrap(), format!("{received}Message-ID: {m}\r\n{date}{app}"));
        // A Date the app set is kept, and only the Message-ID is added.
        let (b, m) = complete_headers(format!("{received}Date: Mon, 2 Nov 2026 09:00:00 +0100\r\n{app}").into_bytes(), "h", T);
        assert_eq!(String::from_utf8(b).unwrap(), format!("{received}Message-ID: {m}\r\nDate: Mon, 2 Nov 2026 09:00:00 +0100\r\n{app}"));
        // Return-Path and further Received fields are trace fields too.
        let (b, _) = complete_headers(b"Return-Path: <x@y>\r\nreceived: a\r\n b\r\nMessage-ID: <k@k>\r\n\r\n".to_vec(), "h", T);
        assert_eq!(String::from_utf8(b).unwrap(), format!("Return-Path: <x@y>\r\nreceived: a\r\n b\r\n{date}Message-ID: <k@k>\r\n\r\n"));
    }

    #[test]
    fn header_values_unfold() {
        let m = b"To: a@b\r\nSubject: one\r\n two\r\n\r\nbody";
        assert_eq!(header_value(m, "subject").as_deref(), Some("one two"));
        assert_eq!(header_value(m, "from"), None);
    }

    #[test]
    fn free_space_reads_the_filesystem() {
        assert!(free_space(std::path::Path::new("/")).is_some_and(|n| n > 0));
    }
}
