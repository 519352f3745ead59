//! Signed VERP envelope senders: `bounces+<tag>@<bounces.domain>`, where the tag
//! encodes the queue id, the recipient's index in that message and the day it
//! was issued, authenticated by an 80-bit truncated HMAC-SHA256. A bounce whose
//! tag does not verify (forged, tampered, expired) is never trusted.
//!
//! The same payload, MACed under its own domain-separation prefix, is the report
//! token rebound writes into every copy it sends (`X-Rebound-Token:`): a feedback
//! loop sends complaints to a registered address rather than the VERP sender, and
//! the token in the embedded original is what ties such a report to one recipient.

use ring::hmac;

use crate::model::time::Timestamp;

/// Days are counted from 2020-01-01 so they fit in 16 bits until 2199.
const EPOCH_2020_MS: i64 = 1_577_836_800_000;
const DAY_MS: i64 = 86_400_000;
/// Length of the truncated MAC in tags and tokens (80 bits).
pub const MAC_LEN: usize = 10;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Domain separation for report tokens: MACed as `REPORT_CONTEXT ‖ payload`.
const REPORT_CONTEXT: &[u8] = b"rebound-report-v1\0";
/// The header carrying the report token in every copy rebound sends.
pub const TOKEN_HEADER: &str = "X-Rebound-Token";

/// What a valid tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerpTag {
    pub queue_id: u64,
    pub rcpt_index: u16,
    /// The day the tag was issued (ms precision is not kept).
    pub issued: Timestamp,
}

/// Why a tag was not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerpError {
    #[error("not a VERP address of ours")]
    NotOurs,
    #[error("malformed tag")]
    Malformed,
    #[error("bad signature")]
    BadMac,
    #[error("tag expired")]
    Expired,
}

/// Issues and verifies tags with one key.
#[derive(Clone)]
pub struct Verp {
    key: hmac::Key,
    domain: String,
}

impl std::fmt::Debug for Verp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verp({})", self.domain)
    }
}

impl Verp {
    pub fn new(secret: &[u8], domain: &str) -> Verp {
        Verp {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            domain: domain.to_ascii_lowercase(),
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The envelope sender for one recipient of one message.
    pub fn address(&self, tag: &VerpTag) -> String {
        let mut payload = payload(tag).to_vec();
        let mac = hmac::sign(&self.key, &payload);
        payload.extend_from_slice(&mac.as_ref()[..MAC_LEN]);
        format!("bounces+{}@{}", base32(&payload), self.domain)
    }

    /// The report token for one recipient's copy (see the module docs).
    pub fn report_token(&self, tag: &VerpTag) -> String {
        let mut bytes = payload(tag).to_vec();
        bytes.extend_from_slice(&self.mac(REPORT_CONTEXT, &bytes));
        base32(&bytes)
    }

    /// Verifies a report token (any case); `max_age` bounds how old it may be.
    pub fn verify_report_token(
        &self,
        token: &str,
        now: Timestamp,
        max_age: std::time::Duration,
    ) -> Result<VerpTag, VerpError> {
        if token.len() > 64 {
            return Err(VerpError::Malformed);
        }
        let bytes = unbase32(&token.trim().to_ascii_lowercase()).ok_or(VerpError::Malformed)?;
        if bytes.len() != 12 + MAC_LEN {
            return Err(VerpError::Malformed);
        }
        let (p, mac) = bytes.split_at(12);
        if !crate::model::constant_time::eq(&self.mac(REPORT_CONTEXT, p), mac) {
            return Err(VerpError::BadMac);
        }
        decode_payload(p, now, max_age)
    }

    /// A truncated HMAC over `context ‖ payload` with the VERP key, for other signed
    /// tokens (unsubscribe links). `context` is a distinct prefix per use, so a token
    /// made for one purpose never verifies for another.
    pub fn mac(&self, context: &[u8], payload: &[u8]) -> [u8; MAC_LEN] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(context);
        ctx.update(payload);
        let tag = ctx.sign();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
        out
    }

    /// Verifies a VERP address (any case); `max_age` bounds how old a tag may be.
    pub fn verify(
        &self,
        address: &str,
        now: Timestamp,
        max_age: std::time::Duration,
    ) -> Result<VerpTag, VerpError> {
        let (local, domain) = address.rsplit_once('@').ok_or(VerpError::NotOurs)?;
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return Err(VerpError::NotOurs);
        }
        let lower = local.to_ascii_lowercase();
        let tag = lower.strip_prefix("bounces+").ok_or(VerpError::NotOurs)?;
        let bytes = unbase32(tag).ok_or(VerpError::Malformed)?;
        if bytes.len() != 12 + MAC_LEN {
            return Err(VerpError::Malformed);
        }
        let (payload, mac) = bytes.split_at(12);
        let full = hmac::sign(&self.key, payload);
        // Constant-time comparison of the truncated MAC.
        if !crate::model::constant_time::eq(&full.as_ref()[..MAC_LEN], mac) {
            return Err(VerpError::BadMac);
        }
        decode_payload(payload, now, max_age)
    }
}

/// `queue id ‖ recipient index ‖ issue day`, big-endian.
fn payload(tag: &VerpTag) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[..8].copy_from_slice(&tag.queue_id.to_be_bytes());
    p[8..10].copy_from_slice(&tag.rcpt_index.to_be_bytes());
    p[10..].copy_from_slice(&day_of(tag.issued).to_be_bytes());
    p
}

/// Reads a verified payload; refuses one older than `max_age` (plus the day's rounding).
fn decode_payload(
    p: &[u8],
    now: Timestamp,
    max_age: std::time::Duration,
) -> Result<VerpTag, VerpError> {
    let queue_id = u64::from_be_bytes(
        p.get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(VerpError::Malformed)?,
    );
    let rcpt_index = u16::from_be_bytes([p[8], p[9]]);
    let issued = day_start(u16::from_be_bytes([p[10], p[11]]));
    if now.since(issued) > max_age + std::time::Duration::from_millis(DAY_MS as u64) {
        return Err(VerpError::Expired);
    }
    Ok(VerpTag {
        queue_id,
        rcpt_index,
        issued,
    })
}

/// The day number (since 2020-01-01) a tag or token records for `t`.
pub fn day_of(t: Timestamp) -> u16 {
    ((t.millis() - EPOCH_2020_MS).max(0) / DAY_MS).min(u16::MAX as i64) as u16
}

/// The start of day number `day`.
pub fn day_start(day: u16) -> Timestamp {
    Timestamp(EPOCH_2020_MS + day as i64 * DAY_MS)
}

/// Lower-case RFC 4648 base32 without padding (safe in local parts and URL paths).
pub fn base32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 8 / 5 + 1);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes [`base32`] (lower case only); `None` on any other character.
pub fn unbase32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const DAY: Duration = Duration::from_secs(86400);

    #[test]
    fn round_trip_and_rejections() {
        let v = Verp::new(b"k1", "bounces.example.com");
        let now = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
        let tag = VerpTag {
            queue_id: 0x1234_5678_9abc,
            rcpt_index: 3,
            issued: now,
        };
        let addr = v.address(&tag);
        assert!(
            addr.len() < 90 && addr.split('@').next().unwrap().len() <= 64,
            "{addr}"
        );
        let got = v.verify(&addr.to_uppercase(), now, 30 * DAY).unwrap();
        assert_eq!((got.queue_id, got.rcpt_index), (tag.queue_id, 3));
        assert_eq!(
            v.verify(&addr, now.plus(60 * DAY), 30 * DAY),
            Err(VerpError::Expired)
        );
        let other = Verp::new(b"k2", "bounces.example.com");
        assert_eq!(other.verify(&addr, now, 30 * DAY), Err(VerpError::BadMac));
        let mut tampered = addr.clone().into_bytes();
        tampered[9] = if tampered[9] == b'a' { b'b' } else { b'a' };
        assert!(
            v.verify(std::str::from_utf8(&tampered).unwrap(), now, 30 * DAY)
                .is_err()
        );
        assert_eq!(
            v.verify("bounces@bounces.example.com", now, 30 * DAY),
            Err(VerpError::NotOurs)
        );
        assert_eq!(
            v.verify("bounces+abc@elsewhere.example", now, 30 * DAY),
            Err(VerpError::NotOurs)
        );
        assert_eq!(
            v.verify("bounces+!!!@bounces.example.com", now, 30 * DAY),
            Err(VerpError::Malformed)
        );
    }

    #[test]
    fn report_tokens_round_trip_and_are_not_verp_tags() {
        let v = Verp::new(b"k1", "bounces.example.com");
        let now = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
        let tag = VerpTag {
            queue_id: 77,
            rcpt_index: 4,
            issued: now,
        };
        let tok = v.report_token(&tag);
        let got = v
            .verify_report_token(&tok.to_uppercase(), now, 30 * DAY)
            .unwrap();
        assert_eq!((got.queue_id, got.rcpt_index), (77, 4));
        assert_eq!(
            v.verify_report_token(&tok, now.plus(60 * DAY), 30 * DAY),
            Err(VerpError::Expired)
        );
        assert_eq!(
            Verp::new(b"k2", "bounces.example.com").verify_report_token(&tok, now, 30 * DAY),
            Err(VerpError::BadMac)
        );
        // The VERP tag for the same recipient is not a report token, nor the reverse.
        let addr = v.address(&tag);
        let verp_tag = addr
            .trim_start_matches("bounces+")
            .split('@')
            .next()
            .unwrap();
        assert_eq!(
            v.verify_report_token(verp_tag, now, 30 * DAY),
            Err(VerpError::BadMac)
        );
        assert_eq!(
            v.verify(&format!("bounces+{tok}@bounces.example.com"), now, 30 * DAY),
            Err(VerpError::BadMac)
        );
    }

    #[test]
    fn random_keys_never_accept_foreign_tags() {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        let now = Timestamp::now();
        for _ in 0..200 {
            let k1: [u8; 16] = rng.r#gen();
            let k2: [u8; 16] = rng.r#gen();
            let a = Verp::new(&k1, "b.example").address(&VerpTag {
                queue_id: rng.r#gen(),
                rcpt_index: rng.r#gen(),
                issued: now,
            });
            assert!(Verp::new(&k2, "b.example").verify(&a, now, DAY).is_err());
        }
    }
}
