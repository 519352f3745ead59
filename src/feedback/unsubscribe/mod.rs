//! One-click unsubscribe (RFC 8058, RFC 2369): signed per-recipient tokens, the
//! `List-Unsubscribe` / `List-Unsubscribe-Post` headers added to each delivery
//! transaction, and the state change (recipient `unsubscribed` + suppression)
//! shared by the public HTTP listener ([`http`]) and mail to
//! `unsubscribe+TOKEN@<bounces.domain>` ([`by_mail`]).
//!
//! A token is `queue id ‖ recipient index ‖ day` with an 80-bit HMAC made with the
//! VERP key under its own domain-separation prefix, so a VERP tag never passes
//! for an unsubscribe token or the reverse. It stays valid `bounces.tag_validity`.

pub mod http;

use std::sync::Arc;

use crate::daemon::state::Daemon;
use crate::feedback::verp::{MAC_LEN, Verp, base32, day_of, day_start, unbase32};
use crate::model::constant_time;
use crate::model::headers::header_value;
use crate::model::time::Timestamp;
use crate::model::{Event, EventKind, Source, Status};
use crate::records::disposition::{Finding, apply_effect, effect};
use crate::store::queue::MessageRecord;
use crate::store::{StoreError, WriteSet};

/// Domain separation: tokens are MACed as `CONTEXT ‖ payload`.
const CONTEXT: &[u8] = b"rebound-unsubscribe-v1\0";
const PAYLOAD_LEN: usize = 12;
/// Local-part prefix of the mailto address.
pub const MAILTO_PREFIX: &str = "unsubscribe+";

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsubToken {
    pub queue_id: u64,
    pub rcpt_index: u16,
    /// The day the token was issued.
    pub issued: Timestamp,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed unsubscribe token")]
    Malformed,
    #[error("unsubscribe token has a bad signature")]
    BadMac,
    #[error("unsubscribe token expired")]
    Expired,
}

/// The token for recipient `rcpt_index` of message `queue_id`, issued `now`.
pub fn token(verp: &Verp, queue_id: u64, rcpt_index: u16, now: Timestamp) -> String {
    let mut bytes = payload(queue_id, rcpt_index, day_of(now)).to_vec();
    bytes.extend_from_slice(&verp.mac(CONTEXT, &bytes));
    base32(&bytes)
}

fn payload(queue_id: u64, rcpt_index: u16, day: u16) -> [u8; PAYLOAD_LEN] {
    let mut p = [0u8; PAYLOAD_LEN];
    p[..8].copy_from_slice(&queue_id.to_be_bytes());
    p[8..10].copy_from_slice(&rcpt_index.to_be_bytes());
    p[10..].copy_from_slice(&day.to_be_bytes());
    p
}

/// Checks a token (any case); `max_age` bounds how old it may be.
pub fn verify_token(
    verp: &Verp,
    token: &str,
    now: Timestamp,
    max_age: std::time::Duration,
) -> Result<UnsubToken, TokenError> {
    if token.len() > 64 {
        return Err(TokenError::Malformed);
    }
    let bytes = unbase32(&token.to_ascii_lowercase()).ok_or(TokenError::Malformed)?;
    if bytes.len() != PAYLOAD_LEN + MAC_LEN {
        return Err(TokenError::Malformed);
    }
    let (p, mac) = bytes.split_at(PAYLOAD_LEN);
    if !constant_time::eq(&verp.mac(CONTEXT, p), mac) {
        return Err(TokenError::BadMac);
    }
    let queue_id = u64::from_be_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]]);
    let rcpt_index = u16::from_be_bytes([p[8], p[9]]);
    let issued = day_start(u16::from_be_bytes([p[10], p[11]]));
    if now.since(issued) > max_age + std::time::Duration::from_secs(86_400) {
        return Err(TokenError::Expired);
    }
    Ok(UnsubToken {
        queue_id,
        rcpt_index,
        issued,
    })
}

/// The header lines to add for recipient `index`, or `None` when unsubscribe is off
/// or the message is a DSN. With a usable `base_url` the HTTPS link comes first and
/// `List-Unsubscribe-Post` makes it one-click; without one only the mailto is offered.
pub fn header_block(
    daemon: &Daemon,
    rec: &MessageRecord,
    index: usize,
    now: Timestamp,
) -> Option<String> {
    let cfg = &daemon.cfg.unsubscribe;
    if !cfg.enabled || rec.is_dsn {
        return None;
    }
    let tok = token(&daemon.verp, rec.id, u16::try_from(index).ok()?, now);
    let mailto = format!("<mailto:{MAILTO_PREFIX}{tok}@{}>", daemon.verp.domain());
    let base = cfg
        .base_url
        .as_deref()
        .map(|b| b.trim_end_matches('/'))
        .filter(|b| usable_base(b));
    Some(match base {
        Some(base) => format!(
            "List-Unsubscribe: <{base}/u/{tok}>,\r\n {mailto}\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        ),
        None => format!("List-Unsubscribe: {mailto}\r\n"),
    })
}

/// A base URL that can go between angle brackets in a header.
fn usable_base(b: &str) -> bool {
    !b.is_empty()
        && b.len() < 512
        && b.bytes()
            .all(|c| c.is_ascii_graphic() && c != b'>' && c != b'<')
}

/// The body for one recipient's copy: `body` with that recipient's signed report token
/// (`X-Rebound-Token:`, see [`crate::feedback::verp`]) and the unsubscribe headers on top. The
/// unsubscribe headers are left out when unsubscribe is off or the app set its own
/// `List-Unsubscribe`; DSNs rebound generates get neither.
pub fn personalise(
    daemon: &Daemon,
    rec: &MessageRecord,
    index: usize,
    body: &Arc<Vec<u8>>,
    now: Timestamp,
) -> Arc<Vec<u8>> {
    let Ok(rcpt_index) = u16::try_from(index) else {
        return body.clone();
    };
    if rec.is_dsn {
        return body.clone();
    }
    let tag = crate::feedback::verp::VerpTag {
        queue_id: rec.id,
        rcpt_index,
        issued: now,
    };
    let mut head = format!(
        "{}: {}\r\n",
        crate::feedback::verp::TOKEN_HEADER,
        daemon.verp.report_token(&tag)
    );
    if let Some(h) = header_block(daemon, rec, index, now)
        .filter(|_| header_value(body, "list-unsubscribe").is_none())
    {
        head.push_str(&h);
    }
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    Arc::new(out)
}

/// What applying a valid token did.
#[derive(Debug)]
pub enum Applied {
    /// The recipient is now `unsubscribed` (events added to the write set).
    Done(Vec<Event>),
    /// It already was; nothing changed.
    Already,
    /// The message is no longer kept (or the index is out of range); nothing changed.
    Gone,
}

/// Marks the token's recipient `unsubscribed` and suppresses the address (reason `unsubscribe`).
pub fn apply(
    daemon: &Daemon,
    tok: &UnsubToken,
    via: &str,
    ws: &mut WriteSet,
) -> Result<Applied, StoreError> {
    let Some(mut rec) = daemon.store.message(tok.queue_id)? else {
        return Ok(Applied::Gone);
    };
    let idx = tok.rcpt_index as usize;
    let Some(r) = rec.recipients.get(idx) else {
        return Ok(Applied::Gone);
    };
    if r.status == Status::Unsubscribed {
        return Ok(Applied::Already);
    }
    let mut ev = Event::new(EventKind::Unsubscribed, daemon.now());
    ev.source = Some(Source::Unsubscribe);
    ev.rule = Some(format!("unsubscribe:{via}"));
    ev.diagnostic = Some(format!("recipient unsubscribed ({via})"));
    let old = rec.next_attempt;
    let mut events = Vec::new();
    if apply_effect(
        daemon,
        &mut rec,
        idx,
        effect(Finding::Unsubscribe),
        ev,
        ws,
        &mut events,
    )?
    .is_none()
    {
        return Ok(Applied::Already);
    }
    if rec.is_finished() {
        rec.next_attempt = None;
    }
    ws.put_message(&rec, old)?;
    Ok(Applied::Done(events))
}

/// Handles mail to the unsubscribe mailto address; `None` when `envelope_rcpt` (or, when
/// there is none, the `To:` header) is not one. A bad token gives one `unverified` event.
pub fn by_mail(
    daemon: &Daemon,
    raw: &[u8],
    envelope_rcpt: Option<&str>,
    ws: &mut WriteSet,
) -> Result<Option<Vec<Event>>, StoreError> {
    let target = match envelope_rcpt {
        Some(r) => Some(r.to_string()),
        None => header_value(raw, "to").map(|v| bracketed(&v)),
    };
    let Some(tok) = target
        .as_deref()
        .and_then(|a| mailto_token(daemon.verp.domain(), a))
    else {
        return Ok(None);
    };
    let validity = daemon.cfg.bounces.tag_validity.0;
    let events = match verify_token(&daemon.verp, &tok, daemon.now(), validity) {
        Ok(t) => match apply(daemon, &t, "mailto", ws)? {
            Applied::Done(events) => events,
            Applied::Already => Vec::new(),
            Applied::Gone => {
                unverified(
                    daemon,
                    "unsubscribe token names a message no longer kept",
                    ws,
                )?;
                Vec::new()
            }
        },
        Err(e) => {
            unverified(daemon, &e.to_string(), ws)?;
            Vec::new()
        }
    };
    Ok(Some(events))
}

/// The address inside `<...>`, or the whole trimmed value.
fn bracketed(v: &str) -> String {
    match v.split_once('<').and_then(|(_, r)| r.split_once('>')) {
        Some((a, _)) => a.trim().to_string(),
        None => v.trim().to_string(),
    }
}

/// The token of `unsubscribe+TOKEN@<domain>` (any case), if `addr` is such an address.
pub fn mailto_token(domain: &str, addr: &str) -> Option<String> {
    let (local, d) = addr.rsplit_once('@')?;
    if !d.eq_ignore_ascii_case(domain) {
        return None;
    }
    let lower = local.to_ascii_lowercase();
    lower.strip_prefix(MAILTO_PREFIX).map(str::to_string)
}

/// Keeps an untrusted unsubscribe mail in the security log; changes no recipient.
fn unverified(daemon: &Daemon, why: &str, ws: &mut WriteSet) -> Result<(), StoreError> {
    let mut ev = Event::new(EventKind::Unverified, daemon.now());
    ev.source = Some(Source::Unsubscribe);
    ev.diagnostic = Some(format!("unsubscribe mail not trusted: {why}"));
    tracing::warn!(
        reason = why,
        "unsubscribe mail not trusted; kept in the security log"
    );
    crate::daemon::state::record_unverified(daemon, ws, ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn tokens_round_trip_and_refuse_tampering_age_and_verp_tags() {
        let v = Verp::new(b"k1", "bounces.example.com");
        let now = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
        let t = token(&v, 0xABCD_1234, 2, now);
        assert!(
            t.len() <= 40 && (MAILTO_PREFIX.len() + t.len()) <= 64,
            "{t}"
        );
        let got = verify_token(&v, &t.to_uppercase(), now, 30 * DAY).unwrap();
        assert_eq!((got.queue_id, got.rcpt_index), (0xABCD_1234, 2));
        assert_eq!(
            verify_token(&v, &t, now.plus(60 * DAY), 30 * DAY),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_token(&Verp::new(b"k2", "bounces.example.com"), &t, now, 30 * DAY),
            Err(TokenError::BadMac)
        );
        let mut bad = t.clone().into_bytes();
        bad[3] = if bad[3] == b'a' { b'b' } else { b'a' };
        assert!(verify_token(&v, std::str::from_utf8(&bad).unwrap(), now, 30 * DAY).is_err());
        assert_eq!(
            verify_token(&v, "not!base32", now, 30 * DAY),
            Err(TokenError::Malformed)
        );
        // A VERP tag for the same message and index, same key, is not an unsubscribe token.
        let verp = v.address(&crate::feedback::verp::VerpTag {
            queue_id: 0xABCD_1234,
            rcpt_index: 2,
            issued: now,
        });
        let tag = verp
            .trim_start_matches("bounces+")
            .split('@')
            .next()
            .unwrap();
        assert_eq!(
            verify_token(&v, tag, now, 30 * DAY),
            Err(TokenError::BadMac)
        );
    }

    #[test]
    fn mailto_addresses_are_recognised() {
        assert_eq!(
            mailto_token("b.example", "Unsubscribe+ABC@B.Example").as_deref(),
            Some("abc")
        );
        assert_eq!(
            mailto_token("b.example", "unsubscribe+abc@other.example"),
            None
        );
        assert_eq!(mailto_token("b.example", "bounces+abc@b.example"), None);
        assert_eq!(
            bracketed("List <unsubscribe+x@b.example>"),
            "unsubscribe+x@b.example"
        );
    }

    #[test]
    fn base_urls_that_could_break_the_header_are_refused() {
        assert!(usable_base("https://relay.example.com"));
        assert!(!usable_base("https://x\r\nBcc: a@b"));
        assert!(!usable_base("https://x> <mailto:evil@x"));
        assert!(!usable_base(""));
    }
}
