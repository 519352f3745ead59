//! Intake on the queue: the [`Intake`] implementation SMTP sessions use. It
//! splits a submission into relay recipients (queued, or `dropped` when
//! suppressed) and bounce-domain recipients (returned mail, handed to
//! [`crate::returned`]), stores record, body, schedule entry and events in one
//! write set, and resolves only once the group commit has flushed them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::address::Address;
use crate::config::OnSuppressed;
use crate::intake::{Intake, IntakeError, RcptDecision, Receipt, Submission};
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
        let (ws, events, id) = build_submission(&relay, sub).map_err(storage)?;
        relay.commit(ws, &events).await.map_err(storage)?;
        relay.wake.notify_one();
        Ok(Receipt { queue_id: id })
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

/// Builds the write set for one submission; returns it with its events and the reply id.
fn build_submission(relay: &Relay, sub: Submission) -> Result<(WriteSet, Vec<Event>, String), StoreError> {
    let now = relay.now();
    let mut ws = WriteSet::new();
    let mut events = Vec::new();
    let (returned, outgoing): (Vec<_>, Vec<_>) = sub.recipients.iter().partition(|r| is_bounce_domain(relay, &r.address));
    for r in &returned {
        events.extend(crate::returned::ingest(relay, &sub.body, Some(r.address.as_str()), &mut ws)?);
    }
    if outgoing.is_empty() {
        let id = format!("R{}", now.millis());
        return Ok((ws, events, id));
    }
    let id = new_queue_id(&relay.store, now)?;
    let (body, message_id) = ensure_message_id(sub.body, id, now, &relay.cfg.server.hostname);
    let mut rec = MessageRecord {
        id,
        received: now,
        sender: sub.sender.map(|a| a.to_string()).unwrap_or_default(),
        message_id: Some(message_id.clone()),
        env_id: sub.env_id,
        ret: sub.ret,
        client: sub.session.peer.ip().to_string(),
        auth_user: sub.session.auth_user,
        recipients: Vec::with_capacity(outgoing.len()),
        attempts: 0,
        next_attempt: None,
        resent_from: None,
        size: body.len() as u64,
        is_dsn: false,
    };
    for r in &outgoing {
        let status = match relay.store.suppression(r.address.as_str())? {
            Some(s) => {
                let mut ev = base_event(EventKind::Dropped, now, &rec, r.address.as_str());
                ev.diagnostic = Some(format!("suppressed ({}) since {}", s.reason, s.time));
                events.push(relay.record(&mut ws, ev)?);
                Status::Dropped
            }
            None => {
                events.push(relay.record(&mut ws, base_event(EventKind::Queued, now, &rec, r.address.as_str()))?);
                Status::Queued
            }
        };
        rec.recipients.push(RcptRecord { address: r.address.to_string(), orcpt: r.orcpt.clone(), notify: r.notify, status, attempts: 0, last_diagnostic: None });
    }
    if !rec.is_finished() {
        rec.next_attempt = Some(now);
    }
    ws.put_message(&rec, None);
    ws.insert(TreeId::Bodies, id.to_be_bytes().to_vec(), body);
    ws.insert(TreeId::MsgIds, message_id.into_bytes(), id.to_be_bytes().to_vec());
    Ok((ws, events, format_queue_id(id)))
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

/// Returns the body with a `Message-ID` (added at the top when missing) and that id.
pub fn ensure_message_id(body: Vec<u8>, id: u64, now: crate::time::Timestamp, host: &str) -> (Vec<u8>, String) {
    if let Some(mid) = header_value(&body, "message-id") {
        let mid = mid.trim().to_string();
        if !mid.is_empty() {
            return (body, mid);
        }
    }
    let mid = format!("<{}.{}@{}>", format_queue_id(id), now.millis(), host);
    let mut out = Vec::with_capacity(body.len() + mid.len() + 16);
    out.extend_from_slice(format!("Message-ID: {mid}\r\n").as_bytes());
    out.extend_from_slice(&body);
    (out, mid)
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

    #[test]
    fn message_id_is_kept_or_added() {
        let (b, m) = ensure_message_id(b"Subject: x\r\nMessage-Id: <a@b>\r\n\r\nhi\r\n".to_vec(), 1, crate::time::Timestamp(0), "h");
        assert_eq!(m, "<a@b>");
        assert!(b.starts_with(b"Subject"));
        let (b, m) = ensure_message_id(b"Subject: x\r\n\r\nMessage-ID: <not-a-header>\r\n".to_vec(), 0xAB, crate::time::Timestamp(5), "relay.example");
        assert_eq!(m, "<AB.5@relay.example>");
        assert!(b.starts_with(b"Message-ID: <AB.5@relay.example>\r\nSubject"));
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
