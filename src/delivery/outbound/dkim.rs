//! DKIM signing of relayed mail (README "Sending to Gmail and Outlook", RFC 6376, RFC 8463): the keys of
//! `[dkim]` loaded (or created) once, the signing domain chosen from the
//! From header (its domain, else the nearest listed parent), and one
//! `DKIM-Signature` per configured algorithm prepended to each recipient's
//! final bytes, relaxed/relaxed, with From/Subject/To/Date over-signed.
//! Signing happens last, just before a copy goes to the outbound client;
//! DSNs rebound writes itself and routes in `dkim.skip_routes` go unsigned.

pub mod keys;
pub mod rotation;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use mail_auth::common::crypto::{DkimKey, SigningKey};
use mail_auth::common::headers::{HeaderStream, HeaderWriter, Writable, Writer};
use mail_auth::dkim::{Canonicalization, DkimSigner, Done, Signature};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DkimAlgorithm};
use crate::daemon::state::Daemon;
use crate::model::address::normalise_domain;
use crate::model::time::{SharedClock, Timestamp};
use crate::store::queue::MessageRecord;

pub use keys::{KeyError, LoadedKey};
pub use rotation::{RotationError, RotationState};

/// RFC 6376 §5.4.1's recommended header fields, and the MIME fields.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Resent-Date",
    "Resent-From",
    "Resent-Sender",
    "Resent-To",
    "Resent-Cc",
    "Resent-Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Help",
    "List-Unsubscribe",
    "List-Subscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
    "List-Unsubscribe-Post",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Signed once more than present, so a copy with one added is refused.
pub const OVERSIGNED: &[&str] = &["From", "Subject", "To", "Date"];

/// The `h=` template: mail-auth signs every occurrence of a listed name and
/// then each name again as absent when listed a second time.
pub fn header_list() -> Vec<String> {
    SIGNED_HEADERS
        .iter()
        .chain(OVERSIGNED)
        .map(|h| h.to_string())
        .collect()
}

/// Why a signer could not be built or a message signed.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("DKIM key for {domain}: {source}")]
    Key { domain: String, source: KeyError },
    #[error("DKIM signing as {domain}: {source}")]
    Sign {
        domain: String,
        source: mail_auth::Error,
    },
    #[error(transparent)]
    Rotation(#[from] RotationError),
}

/// One domain's key for one algorithm.
struct DomainKey {
    algorithm: DkimAlgorithm,
    signer: DkimSigner<DkimKey, Done>,
}

/// One domain's keys in use, and the records of a pending rotation.
struct DomainKeys {
    state: RotationState,
    keys: Vec<DomainKey>,
    records: Vec<Published>,
    pending: Vec<Published>,
}

/// All keys of a `[dkim]` section, ready to sign. Cheap to share; a rotation swaps a
/// domain's keys in place.
pub struct Signer {
    dir: PathBuf,
    /// `dkim.selector`, where every rotation chain starts.
    selector: String,
    algorithms: Vec<DkimAlgorithm>,
    /// Normalised signing domains in config order.
    order: Vec<String>,
    domains: HashMap<String, RwLock<Arc<DomainKeys>>>,
    /// Body hashes of recent messages, so the copies of one message hash its body once.
    bodies: Mutex<std::collections::VecDeque<CachedBody>>,
    /// Body hashes this signer computed (see [`body_hash_counts`]).
    hashed: AtomicU64,
}

/// One message's body hash, and the copy it was computed from (compared byte for byte
/// before the hash is reused: the cache key is only a hint).
struct CachedBody {
    key: u64,
    copy: Arc<Vec<u8>>,
    body_at: usize,
    canonicalization: Canonicalization,
    bh: Vec<u8>,
}

/// Most messages whose body hash is kept, and most bytes of copies they hold.
const BODY_CACHE_ENTRIES: usize = 32;
const BODY_CACHE_BYTES: usize = 64 << 20;

static BODY_HASHED: AtomicU64 = AtomicU64::new(0);
static BODY_REUSED: AtomicU64 = AtomicU64::new(0);

/// `(computed, reused)` body hashes since start: a body hash is computed once per message
/// (and shared by its RSA and Ed25519 signatures), reused for its other recipients' copies.
pub fn body_hash_counts() -> (u64, u64) {
    (
        BODY_HASHED.load(Ordering::Relaxed),
        BODY_REUSED.load(Ordering::Relaxed),
    )
}

/// The header fields and body of a message exactly as mail-auth 0.13.3 splits them when
/// it signs (its `HeaderIterator`, which is crate-private: the same scan, ported).
struct HeaderIterator<'x> {
    message: &'x [u8],
    pos: usize,
    start_pos: usize,
}

enum FieldScan {
    Named { colon: usize, end: usize },
    Unnamed { end: usize },
    End { pos: usize },
}

fn scan_field(message: &[u8], start_pos: usize, from: usize) -> FieldScan {
    let mut cur = from;
    while let Some(rest) = message.get(cur..) {
        let Some(offset) = rest.iter().position(|b| *b == b':' || *b == b'\n') else {
            break;
        };
        let (head, tail) = rest.split_at(offset);
        let pos = cur + offset;
        if tail.first() == Some(&b':') {
            return scan_value(message, pos);
        } else if head.last() == Some(&b'\r') || pos == start_pos {
            return FieldScan::End { pos: pos + 1 };
        }
        match message.get(pos + 1) {
            Some(b' ' | b'\t') => cur = pos + 1,
            _ => return FieldScan::Unnamed { end: pos + 1 },
        }
    }
    FieldScan::End { pos: message.len() }
}

fn scan_value(message: &[u8], colon: usize) -> FieldScan {
    let mut cur = colon + 1;
    while let Some(rest) = message.get(cur..) {
        let Some(offset) = rest.iter().position(|b| *b == b'\n') else {
            break;
        };
        let pos = cur + offset;
        match message.get(pos + 1) {
            Some(b' ' | b'\t') => cur = pos + 1,
            _ => {
                return FieldScan::Named {
                    colon,
                    end: pos + 1,
                };
            }
        }
    }
    FieldScan::End { pos: message.len() }
}

impl<'x> HeaderIterator<'x> {
    fn new(message: &'x [u8]) -> Self {
        HeaderIterator {
            message,
            pos: 0,
            start_pos: 0,
        }
    }
}

impl<'x> HeaderStream<'x> for HeaderIterator<'x> {
    fn next_header(&mut self) -> Option<(&'x [u8], &'x [u8])> {
        match scan_field(self.message, self.start_pos, self.pos) {
            FieldScan::Named { colon, end } => {
                let name = self.message.get(self.start_pos..colon).unwrap_or_default();
                let value = self.message.get(colon + 1..end).unwrap_or_default();
                (self.start_pos, self.pos) = (end, end);
                Some((name, value))
            }
            FieldScan::Unnamed { end } => {
                let name = self.message.get(self.start_pos..end).unwrap_or_default();
                (self.start_pos, self.pos) = (end, end);
                Some((name, b""))
            }
            FieldScan::End { pos } => {
                self.pos = pos;
                None
            }
        }
    }

    fn body(&mut self) -> &'x [u8] {
        if self.pos < self.message.len() {
            &self.message[self.pos..]
        } else {
            b""
        }
    }
}

/// Where the body of `message` starts, as mail-auth splits it.
fn body_offset(message: &[u8]) -> usize {
    let mut it = HeaderIterator::new(message);
    while it.next_header().is_some() {}
    it.pos.min(message.len())
}

/// What the key signs: the canonical headers, then the signature header without `b=`.
struct Signable<'a> {
    headers: mail_auth::dkim::canonicalize::CanonicalHeaders<'a>,
    signature: &'a Signature,
}

impl Writable for Signable<'_> {
    fn write(self, writer: &mut impl Writer) {
        self.headers.write(writer);
        self.signature.write(writer, false);
    }
}

/// mail-auth's `DkimSigner::sign` with the body hash `bh` given (computed when `None`,
/// then returned there) and `t=` from `now`.
fn sign_with_body_hash(
    signer: &DkimSigner<DkimKey, Done>,
    message: &[u8],
    bh: &mut Option<Vec<u8>>,
    now: u64,
) -> mail_auth::Result<Signature> {
    let (_, headers, signed, body) = signer.template.canonicalize(HeaderIterator::new(message));
    if signed.is_empty() {
        return Err(mail_auth::Error::NoHeadersFound);
    }
    let mut sig = signer.template.clone();
    sig.bh = match bh {
        Some(b) => b.clone(),
        None => {
            let h = signer.key.hash(body).as_ref().to_vec();
            *bh = Some(h.clone());
            h
        }
    };
    sig.t = now;
    sig.h = signed;
    sig.b = signer.key.sign(Signable {
        headers,
        signature: &sig,
    })?;
    Ok(sig)
}

/// The DNS record one key needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `SELECTOR._domainkey.DOMAIN` (no trailing dot).
    pub name: String,
    /// The TXT value, unsplit: `v=DKIM1; k=rsa; p=...`.
    pub value: String,
    /// The zone-file line (value split into 255-byte strings).
    pub zone_line: String,
    /// The private key file.
    pub key_file: std::path::PathBuf,
    /// The selector of the rotation chain (`rb2`; the Ed25519 key's DNS name is `rb2-ed25519`).
    pub selector: String,
    pub algorithm: DkimAlgorithm,
}

impl Published {
    fn of(loaded: &LoadedKey, selector: &str, domain: &str) -> Published {
        let dns = loaded.algorithm.dns_selector(selector);
        Published {
            name: format!("{dns}._domainkey.{domain}"),
            value: loaded.txt_value(),
            zone_line: loaded.zone_line(&dns, domain),
            key_file: loaded.path.clone(),
            selector: selector.to_string(),
            algorithm: loaded.algorithm,
        }
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("domains", &self.order)
            .finish()
    }
}

/// The keys of `state.current` (and of a pending selector), loaded or created.
fn load_domain(
    dir: &Path,
    domain: &str,
    algorithms: &[DkimAlgorithm],
    state: RotationState,
) -> Result<DomainKeys, DkimError> {
    let key_err = |source| DkimError::Key {
        domain: domain.to_string(),
        source,
    };
    let (mut keys, mut records, mut pending) = (Vec::new(), Vec::new(), Vec::new());
    for &alg in algorithms {
        let loaded = keys::load_or_create(dir, domain, &state.current, alg).map_err(key_err)?;
        records.push(Published::of(&loaded, &state.current, domain));
        let built = DkimSigner::from_key(loaded.key)
            .domain(domain.to_string())
            .selector(alg.dns_selector(&state.current))
            .headers(header_list())
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed);
        keys.push(DomainKey {
            algorithm: alg,
            signer: built,
        });
        if let Some(p) = &state.pending {
            let next = keys::load_or_create(dir, domain, &p.selector, alg).map_err(key_err)?;
            pending.push(Published::of(&next, &p.selector, domain));
        }
    }
    Ok(DomainKeys {
        state,
        keys,
        records,
        pending,
    })
}

/// Rotation checks run since start (each resolves a pending rotation's records once).
static ROTATION_CHECKS: AtomicU64 = AtomicU64::new(0);

/// How many times a pending rotation's records were looked up since start.
pub fn rotation_checks() -> u64 {
    ROTATION_CHECKS.load(Ordering::Relaxed)
}

impl Signer {
    /// Loads (creating when absent) every key; `None` when signing is off.
    pub fn from_config(cfg: &Config) -> Result<Option<Signer>, DkimError> {
        let d = &cfg.dkim;
        if d.domains.is_empty() {
            return Ok(None);
        }
        let dir = d.key_dir(&cfg.server.data_dir);
        let mut signer = Signer {
            dir,
            selector: d.selector.clone(),
            algorithms: d.algorithms.clone(),
            order: Vec::new(),
            domains: HashMap::new(),
            bodies: Mutex::default(),
            hashed: AtomicU64::new(0),
        };
        for domain in d.domains.iter().map(|x| normalise_domain(x)) {
            if signer.domains.contains_key(&domain) {
                continue;
            }
            let stored = rotation::load(&signer.dir, &domain)?;
            if let Some(s) = stored.as_ref().filter(|s| s.configured != d.selector) {
                tracing::warn!(domain, rotated_to = %s.current, selector = %d.selector, "dkim.selector is not the selector the rotation state started from: signing with dkim.selector");
            }
            let state = RotationState::effective(stored, &d.selector);
            let keys = load_domain(&signer.dir, &domain, &signer.algorithms, state)?;
            signer
                .domains
                .insert(domain.clone(), RwLock::new(Arc::new(keys)));
            signer.order.push(domain);
        }
        Ok(Some(signer))
    }

    fn keys_of(&self, domain: &str) -> Option<Arc<DomainKeys>> {
        self.domains
            .get(domain)
            .map(|k| k.read().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn each<T>(&self, f: impl Fn(&DomainKeys) -> Vec<T>) -> Vec<T> {
        self.order
            .iter()
            .filter_map(|d| self.keys_of(d))
            .flat_map(|k| f(&k))
            .collect()
    }

    /// The TXT record of each key signing now.
    pub fn records(&self) -> Vec<Published> {
        self.each(|k| k.records.clone())
    }

    /// The TXT records of pending rotations: publish them, and signing switches.
    pub fn pending_records(&self) -> Vec<Published> {
        self.each(|k| k.pending.clone())
    }

    /// The rotation state of `domain` in effect (a fresh one when never rotated).
    pub fn state(&self, domain: &str) -> Option<RotationState> {
        self.keys_of(&normalise_domain(domain))
            .map(|k| k.state.clone())
    }

    /// The signing domains, normalised, in config order.
    pub fn domains(&self) -> &[String] {
        &self.order
    }

    /// The key directory.
    pub fn key_dir(&self) -> &Path {
        &self.dir
    }

    /// The signing domain for a From domain: itself, else its nearest listed parent.
    pub fn choose(&self, from_domain: &str) -> Option<&str> {
        choose_domain(from_domain, |d| self.domains.contains_key(d)).and_then(|d| {
            self.domains
                .get_key_value(d.as_str())
                .map(|(k, _)| k.as_str())
        })
    }

    /// `message` with its DKIM-Signature headers prepended; `None` when no listed domain matches its From.
    pub fn sign(&self, message: &[u8]) -> Result<Option<Vec<u8>>, DkimError> {
        let now = u64::try_from(Timestamp::now().millis() / 1000).unwrap_or(0);
        self.sign_at(message, now, &mut None)
    }

    /// [`Signer::sign`] at `now` (Unix seconds, `t=`), with the body hash in `bh` (computed
    /// and stored there when `None`); every signature of the copy shares it.
    fn sign_at(
        &self,
        message: &[u8],
        now: u64,
        bh: &mut Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, DkimError> {
        let Some(from) = from_domain(message) else {
            return Ok(None);
        };
        let Some(domain) = self.choose(&from) else {
            return Ok(None);
        };
        let Some(keys) = self.keys_of(domain) else {
            return Ok(None);
        };
        let had = bh.is_some();
        let mut headers = Vec::new();
        let mut shared: Option<(Canonicalization, Option<Vec<u8>>)> = None;
        for k in &keys.keys {
            // One SHA-256 body hash serves every signature with the same body canonicalisation.
            let cb = k.signer.template.cb;
            let mut mine = match &shared {
                Some((c, h)) if *c == cb => h.clone(),
                None => bh.clone(),
                _ => None,
            };
            let sig =
                sign_with_body_hash(&k.signer, message, &mut mine, now).map_err(|source| {
                    DkimError::Sign {
                        domain: domain.to_string(),
                        source,
                    }
                })?;
            if shared.is_none() {
                *bh = mine.clone();
                shared = Some((cb, mine));
            }
            headers.push(sig.to_header());
        }
        if !had {
            BODY_HASHED.fetch_add(1, Ordering::Relaxed);
            self.hashed.fetch_add(1, Ordering::Relaxed);
        }
        let mut out =
            Vec::with_capacity(message.len() + headers.iter().map(String::len).sum::<usize>());
        headers
            .iter()
            .for_each(|h| out.extend_from_slice(h.as_bytes()));
        out.extend_from_slice(message);
        Ok(Some(out))
    }

    /// [`Signer::sign`] for one recipient's copy of message `key` (its queue id), at `now`:
    /// the body hash of an earlier copy of the same message is reused when the bodies are
    /// byte for byte the same (copies differ only in their headers).
    pub fn sign_copy_of(
        &self,
        key: u64,
        copy: &Arc<Vec<u8>>,
        now: u64,
    ) -> Result<Option<Vec<u8>>, DkimError> {
        let body_at = body_offset(copy);
        let canonicalization = Canonicalization::Relaxed;
        let mut bh = {
            let cache = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .iter()
                .find(|c| {
                    c.key == key
                        && c.canonicalization == canonicalization
                        && c.copy[c.body_at..] == copy[body_at..]
                })
                .map(|c| c.bh.clone())
        };
        let reused = bh.is_some();
        let signed = self.sign_at(copy, now, &mut bh)?;
        if reused {
            BODY_REUSED.fetch_add(1, Ordering::Relaxed);
        } else if let Some(bh) = bh.filter(|_| signed.is_some() && copy.len() <= BODY_CACHE_BYTES) {
            let mut cache = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
            cache.retain(|c| c.key != key);
            cache.push_back(CachedBody {
                key,
                copy: copy.clone(),
                body_at,
                canonicalization,
                bh,
            });
            while cache.len() > BODY_CACHE_ENTRIES
                || cache.iter().map(|c| c.copy.len()).sum::<usize>() > BODY_CACHE_BYTES
            {
                cache.pop_front();
            }
        }
        Ok(signed)
    }

    /// The algorithms configured for `domain`, in signing order.
    pub fn algorithms(&self, domain: &str) -> Vec<DkimAlgorithm> {
        self.keys_of(domain)
            .map(|k| k.keys.iter().map(|k| k.algorithm).collect())
            .unwrap_or_default()
    }

    /// Reads `domain`'s state file again and loads the keys it names when it changed
    /// (a `rebound dkim rotate` meanwhile). Blocking.
    pub fn refresh(&self, domain: &str) -> Result<bool, DkimError> {
        let Some(slot) = self.domains.get(domain) else {
            return Ok(false);
        };
        let state = RotationState::effective(rotation::load(&self.dir, domain)?, &self.selector);
        if self.keys_of(domain).is_some_and(|k| k.state == state) {
            return Ok(false);
        }
        let keys = load_domain(&self.dir, domain, &self.algorithms, state)?;
        if let Some(p) = &keys.state.pending {
            for r in &keys.pending {
                tracing::info!(domain, selector = %p.selector, "DKIM rotation pending; signing switches once this resolves: {}", r.zone_line);
            }
        }
        *slot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(true)
    }

    /// Makes `domain`'s pending selector the signing one, at `now`, when the state on disk
    /// still names the pending rotation in use: the new keys are loaded, then the state is
    /// written through `save`, and only once that succeeded are the keys swapped. Blocking.
    pub fn switch_with(
        &self,
        domain: &str,
        now: Timestamp,
        save: impl FnOnce(&Path, &str, &RotationState) -> Result<(), RotationError>,
    ) -> Result<bool, DkimError> {
        let Some(slot) = self.domains.get(domain) else {
            return Ok(false);
        };
        let _lock = rotation::lock(&self.dir, domain)?;
        let stored = RotationState::effective(rotation::load(&self.dir, domain)?, &self.selector);
        let in_use = self.keys_of(domain).map(|k| k.state.clone());
        if in_use.as_ref() != Some(&stored) {
            return Ok(false); // changed on disk meanwhile: the next refresh looks again
        }
        let Some(next) = stored.switched(now) else {
            return Ok(false);
        };
        let keys = load_domain(&self.dir, domain, &self.algorithms, next.clone())?;
        save(&self.dir, domain, &next)?;
        *slot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        let old = stored.current;
        tracing::info!(domain, selector = %next.current, previous = %old, "DKIM rotation: the new records resolve; signing with the new selector");
        Ok(true)
    }

    /// [`Signer::switch_with`] writing the state file.
    pub fn switch(&self, domain: &str, now: Timestamp) -> Result<bool, DkimError> {
        self.switch_with(domain, now, rotation::save)
    }

    /// One pass of the rotation watcher: each domain's state re-read, and each pending
    /// rotation whose every record resolves (through `nameservers`) to our keys switched.
    pub async fn check_rotations(
        self: &Arc<Self>,
        nameservers: &[SocketAddr],
        timeout: Duration,
        clock: &SharedClock,
    ) {
        for domain in self.order.clone() {
            let s = self.clone();
            let d = domain.clone();
            match tokio::task::spawn_blocking(move || s.refresh(&d)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(domain, error = %e, "DKIM rotation state not re-read");
                    continue;
                }
                Err(_) => continue,
            }
            let Some(keys) = self.keys_of(&domain) else {
                continue;
            };
            if keys.pending.is_empty() {
                continue;
            }
            ROTATION_CHECKS.fetch_add(1, Ordering::Relaxed);
            if !rotation::all_published(&keys.pending, nameservers, timeout).await {
                continue;
            }
            let s = self.clone();
            let d = domain.clone();
            let now = clock.now();
            match tokio::task::spawn_blocking(move || s.switch(&d, now)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(domain, error = %e, "DKIM rotation not switched: still signing with the current selector")
                }
                Err(e) => tracing::error!(domain, error = %e, "DKIM rotation not switched"),
            }
        }
    }
}

/// Checks the pending rotations of `cfg`'s signer (the one in the registry at each pass)
/// every `dkim.rotation_check` until `shutdown`, switching at `clock`'s time (the daemon's).
async fn watch(cfg: Arc<Config>, clock: SharedClock, shutdown: CancellationToken) {
    let (nameservers, timeout) = (
        cfg.delivery.nameservers.clone(),
        cfg.delivery.command_timeout.0,
    );
    loop {
        if let Some(signer) = signer_for(&cfg) {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = signer.check_rotations(&nameservers, timeout, &clock) => {}
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(cfg.dkim.rotation_check.0) => {}
        }
    }
}

/// `from_domain` or the nearest parent (walking up the labels, never to a bare TLD) that `listed` accepts.
pub fn choose_domain(from_domain: &str, listed: impl Fn(&str) -> bool) -> Option<String> {
    let mut d = normalise_domain(from_domain);
    loop {
        if listed(&d) {
            return Some(d);
        }
        match d.split_once('.') {
            Some((_, parent)) if parent.contains('.') => d = parent.to_string(),
            _ => return None,
        }
    }
}

/// The domain of the first From address.
pub fn from_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::new().parse_headers(message)?;
    let addr = parsed.from()?.first()?.address()?;
    let (_, domain) = addr.rsplit_once('@')?;
    Some(normalise_domain(domain)).filter(|d| !d.is_empty())
}

static SIGNED: AtomicU64 = AtomicU64::new(0);
static UNSIGNED: AtomicU64 = AtomicU64::new(0);

/// Copies signed since start (`rebound_dkim_signed_total`).
pub fn signed_total() -> u64 {
    SIGNED.load(Ordering::Relaxed)
}

/// Copies sent unsigned while signing is on: From domain not listed, or a signing error (`rebound_dkim_unsigned_total`).
pub fn unsigned_total() -> u64 {
    UNSIGNED.load(Ordering::Relaxed)
}

/// Signers by `[dkim]` settings and key directory (several daemons may share a process in tests).
type Registry = Mutex<HashMap<String, Option<Arc<Signer>>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Default::default)
}

fn registry_key(cfg: &Config) -> String {
    format!(
        "{:?}|{}",
        cfg.dkim,
        cfg.dkim.key_dir(&cfg.server.data_dir).display()
    )
}

/// Builds the signer for `cfg` now from disk (keys loaded or created, the rotation state
/// read) and logs each TXT record to publish. Meant for daemon start (which then starts
/// [`watch_rotations`]); [`sign_copy`] builds one on first use otherwise.
pub fn prepare(cfg: &Config) -> Result<Option<Arc<Signer>>, DkimError> {
    let key = registry_key(cfg);
    // Held while keys are made, so two starts never create the same file at once.
    let mut signers = registry().lock().unwrap_or_else(|e| e.into_inner());
    let signer = Signer::from_config(cfg)?.map(Arc::new);
    if let Some(s) = &signer {
        for r in s.records() {
            tracing::info!(key = %r.key_file.display(), "DKIM key ready; publish: {}", r.zone_line);
        }
        for r in s.pending_records() {
            tracing::info!(key = %r.key_file.display(), "DKIM rotation pending; signing switches once this resolves: {}", r.zone_line);
        }
    }
    signers.insert(key, signer.clone());
    Ok(signer)
}

/// Starts the rotation watcher for `cfg`'s signer (made by [`prepare`]): every
/// `dkim.rotation_check` it looks for the pending selectors' records through the configured
/// resolver, switching at `clock`'s time, until `shutdown`. `None` when nothing is signed.
pub fn watch_rotations(
    cfg: &Arc<Config>,
    clock: SharedClock,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    signer_for(cfg)?;
    Some(tokio::spawn(watch(cfg.clone(), clock, shutdown)))
}

/// The signer for `cfg`; a failure is logged once and leaves signing off for this process.
fn signer_for(cfg: &Config) -> Option<Arc<Signer>> {
    if cfg.dkim.domains.is_empty() {
        return None;
    }
    if let Some(found) = registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&registry_key(cfg))
    {
        return found.clone();
    }
    prepare(cfg).unwrap_or_else(|e| {
        tracing::error!(error = %e, "DKIM signing is off: the keys could not be loaded");
        registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(registry_key(cfg), None);
        None
    })
}

/// Whether mail for `domain` goes out through a route listed in `dkim.skip_routes`.
fn route_skips(cfg: &Config, domain: &str) -> bool {
    let skip = &cfg.dkim.skip_routes;
    if skip.is_empty() {
        return false;
    }
    let d = normalise_domain(domain);
    let routes = &cfg.delivery.routes;
    let route = routes
        .keys()
        .find(|k| normalise_domain(k) == d)
        .map(|k| normalise_domain(k))
        .or_else(|| routes.contains_key("*").then(|| "*".to_string()))
        .or_else(|| {
            cfg.delivery
                .relayhost
                .as_ref()
                .map(|_| "relayhost".to_string())
        });
    route.is_some_and(|r| {
        skip.iter().any(|s| {
            (if s == "*" {
                s.clone()
            } else {
                normalise_domain(s)
            }) == r
        })
    })
}

/// Runs CPU-bound `f` (an RSA signature is ~0.7 ms) without stalling the other tasks
/// of a multi-thread runtime's worker; inline elsewhere.
fn off_the_workers<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// One recipient's final copy for `domain`, signed unless it is a DSN, its route opts out,
/// signing is off, or its From domain is not listed (counted).
pub fn sign_copy(
    daemon: &Daemon,
    rec: &MessageRecord,
    domain: &str,
    body: Arc<Vec<u8>>,
) -> Arc<Vec<u8>> {
    if rec.is_dsn || route_skips(&daemon.cfg, domain) {
        return body;
    }
    let Some(signer) = signer_for(&daemon.cfg) else {
        return body;
    };
    let now = u64::try_from(daemon.now().millis() / 1000).unwrap_or(0);
    match off_the_workers(|| signer.sign_copy_of(rec.id, &body, now)) {
        Ok(Some(signed)) => {
            SIGNED.fetch_add(1, Ordering::Relaxed);
            Arc::new(signed)
        }
        Ok(None) => {
            UNSIGNED.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                queue_id = rec.id,
                "not DKIM-signed: From domain not in dkim.domains"
            );
            body
        }
        Err(e) => {
            UNSIGNED.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(queue_id = rec.id, error = %e, "sent unsigned");
            body
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_with(dir: &std::path::Path, algs: Vec<DkimAlgorithm>) -> Config {
        let mut c = Config::default();
        c.server.data_dir = dir.to_path_buf();
        c.dkim.domains = vec!["School.Example".into(), "other.test".into()];
        c.dkim.algorithms = algs;
        c
    }

    #[test]
    fn organisational_domain_walk() {
        let listed = |d: &str| ["school.example", "deep.a.example"].contains(&d);
        assert_eq!(
            choose_domain("school.example", listed).as_deref(),
            Some("school.example")
        );
        assert_eq!(
            choose_domain("Mail.School.Example.", listed).as_deref(),
            Some("school.example")
        );
        assert_eq!(
            choose_domain("x.y.mail.school.example", listed).as_deref(),
            Some("school.example")
        );
        assert_eq!(
            choose_domain("x.deep.a.example", listed).as_deref(),
            Some("deep.a.example")
        );
        assert_eq!(choose_domain("a.example", listed), None);
        assert_eq!(choose_domain("badschool.example", listed), None);
        assert_eq!(choose_domain("example", |_| false), None);
        // Never walks up to a bare TLD, even if one were listed.
        assert_eq!(choose_domain("school.example", |d| d == "example"), None);
    }

    #[test]
    fn header_list_covers_rfc6376_and_oversigns() {
        let h = header_list();
        for name in [
            "From",
            "Reply-To",
            "Subject",
            "Date",
            "To",
            "Cc",
            "Resent-From",
            "In-Reply-To",
            "References",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding",
        ] {
            assert!(h.iter().any(|x| x == name), "{name} not signed");
        }
        for name in OVERSIGNED {
            assert_eq!(
                h.iter().filter(|x| x == name).count(),
                2,
                "{name} not over-signed"
            );
        }
        assert!(
            !h.iter().any(
                |x| x.eq_ignore_ascii_case("Received") || x.eq_ignore_ascii_case("Return-Path")
            )
        );
    }

    #[test]
    fn from_domain_of_display_name_forms() {
        assert_eq!(
            from_domain(b"From: \"A, B\" <a@Mail.School.Example>\r\nTo: x@y\r\n\r\nhi\r\n")
                .as_deref(),
            Some("mail.school.example")
        );
        assert_eq!(
            from_domain(b"From: a@b.test\r\n\r\n").as_deref(),
            Some("b.test")
        );
        assert_eq!(from_domain(b"To: x@y\r\n\r\nhi\r\n"), None);
    }

    #[test]
    fn signs_listed_domains_with_each_algorithm_and_skips_others() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg_with(dir.path(), vec![DkimAlgorithm::Ed25519Sha256]);
        let s = Signer::from_config(&cfg).unwrap().unwrap();
        assert_eq!(s.records().len(), 2);
        let msg = b"From: a@news.school.example\r\nTo: b@c.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let signed = s.sign(msg).unwrap().unwrap();
        let text = String::from_utf8(signed).unwrap();
        assert!(text.starts_with("DKIM-Signature: "), "{text}");
        assert!(
            text.contains("d=school.example")
                && text.contains("s=rb1-ed25519;")
                && text.contains("a=ed25519-sha256"),
            "{text}"
        );
        assert_eq!(s.records()[0].name, "rb1-ed25519._domainkey.school.example");
        assert!(text.contains("c=relaxed/relaxed"), "{text}");
        assert!(text.ends_with(std::str::from_utf8(msg).unwrap()));
        assert!(
            s.sign(b"From: a@elsewhere.test\r\n\r\nx\r\n")
                .unwrap()
                .is_none()
        );
        assert!(Signer::from_config(&Config::default()).unwrap().is_none());
    }

    /// The `s=` of each DKIM-Signature header of `signed`.
    fn selectors(signed: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(signed)
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ");
        text.split("\r\n")
            .filter(|l| l.starts_with("DKIM-Signature:"))
            .map(|l| {
                l.split(';')
                    .find_map(|t| t.trim().strip_prefix("s="))
                    .unwrap()
                    .trim()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn a_rotation_switches_only_after_its_state_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = cfg_with(dir.path(), vec![DkimAlgorithm::Ed25519Sha256]);
        cfg.dkim.domains = vec!["school.example".into()];
        let s = Signer::from_config(&cfg).unwrap().unwrap();
        let msg = b"From: a@school.example\r\nTo: b@c.test\r\nSubject: hi\r\n\r\nbody\r\n";
        assert_eq!(selectors(&s.sign(msg).unwrap().unwrap()), ["rb1-ed25519"]);
        let keys = dir.path().join("dkim");
        // What `rebound dkim rotate` writes; the signer sees it at its next refresh.
        let pending = RotationState::fresh("rb1").begin(Timestamp(1_000));
        rotation::save(&keys, "school.example", &pending).unwrap();
        assert!(
            !s.switch("school.example", Timestamp(2_000)).unwrap(),
            "not switched before the refresh saw the rotation"
        );
        assert!(s.refresh("school.example").unwrap());
        assert!(!s.refresh("school.example").unwrap(), "nothing new");
        assert_eq!(
            s.pending_records()
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["rb2-ed25519._domainkey.school.example"]
        );
        assert_eq!(
            selectors(&s.sign(msg).unwrap().unwrap()),
            ["rb1-ed25519"],
            "pending: still the old key"
        );
        // A failed write: no switch, on disk or in use.
        let failing = |_: &Path, _: &str, _: &RotationState| {
            Err(RotationError::Write {
                path: "x".into(),
                source: std::io::Error::other("disk full"),
            })
        };
        assert!(
            s.switch_with("school.example", Timestamp(2_000), failing)
                .is_err()
        );
        assert_eq!(selectors(&s.sign(msg).unwrap().unwrap()), ["rb1-ed25519"]);
        assert_eq!(
            rotation::load(&keys, "school.example").unwrap(),
            Some(pending.clone())
        );
        assert_eq!(s.state("school.example").unwrap(), pending);
        // Written: switched, and a new signer from disk agrees.
        assert!(s.switch("school.example", Timestamp(2_000)).unwrap());
        assert_eq!(selectors(&s.sign(msg).unwrap().unwrap()), ["rb2-ed25519"]);
        assert!(s.pending_records().is_empty());
        assert_eq!(s.records()[0].name, "rb2-ed25519._domainkey.school.example");
        let fresh = Signer::from_config(&cfg).unwrap().unwrap();
        assert_eq!(fresh.records(), s.records());
        assert_eq!(
            fresh.state("school.example").unwrap().retired[0].selector,
            "rb1"
        );
        // Another dkim.selector in the config takes over from the rotation chain.
        cfg.dkim.selector = "manual1".into();
        assert_eq!(
            Signer::from_config(&cfg).unwrap().unwrap().records()[0].name,
            "manual1-ed25519._domainkey.school.example"
        );
    }

    #[test]
    fn signatures_are_mail_auths_own_and_copies_share_one_body_hash() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = cfg_with(
            dir.path(),
            vec![DkimAlgorithm::Ed25519Sha256, DkimAlgorithm::RsaSha256],
        );
        if keys::load_or_create(
            &dir.path().join("dkim"),
            "school.example",
            "rb1",
            DkimAlgorithm::RsaSha256,
        )
        .is_err()
        {
            cfg.dkim.algorithms = vec![DkimAlgorithm::Ed25519Sha256]; // no openssl here
        }
        let s = Signer::from_config(&cfg).unwrap().unwrap();
        let messages: [&[u8]; 6] = [
            b"From: a@school.example\r\nTo: b@c.test\r\nSubject: hi\r\n\r\nbody  with   spaces \r\n\r\n\r\n",
            b"From: a@school.example\r\nSubject: folded\r\n  over\r\n\tlines\r\nX-Odd\r\n\r\nx\r\n",
            b"From: a@school.example\r\nSubject: no body\r\n",
            b"From: a@school.example\r\nSubject: empty body\r\n\r\n",
            b"From: a@school.example\nSubject: bare LF\n\nbody\n",
            b"From: a@school.example\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\n\xc3\xa9t\xc3\xa9 8-bit\r\n",
        ];
        let keys = s.keys_of("school.example").unwrap();
        for m in messages {
            for k in &keys.keys {
                // Same t= as mail-auth's own signature: then the two must be identical
                // (RSA PKCS#1 v1.5 and Ed25519 signatures are deterministic).
                let theirs = k.signer.sign(m).unwrap();
                let mine = sign_with_body_hash(&k.signer, m, &mut None, theirs.t).unwrap();
                assert_eq!(
                    mine.to_header(),
                    theirs.to_header(),
                    "{}",
                    String::from_utf8_lossy(m)
                );
            }
        }
        // Two copies of one message differing in a header: the body is hashed once.
        let body = b"Subject: x\r\nFrom: a@school.example\r\n\r\nthe same body\r\n".to_vec();
        let copy = |token: &str| {
            Arc::new([format!("X-Token: {token}\r\n").into_bytes(), body.clone()].concat())
        };
        let (first, second) = (copy("one"), copy("two"));
        let hashed = |s: &Signer| s.hashed.load(Ordering::Relaxed);
        let (before, reused) = (hashed(&s), body_hash_counts().1);
        let a = s.sign_copy_of(77, &first, 1_800_000_000).unwrap().unwrap();
        assert_eq!(
            hashed(&s),
            before + 1,
            "one hash for every algorithm of the copy"
        );
        let b = s.sign_copy_of(77, &second, 1_800_000_000).unwrap().unwrap();
        assert_eq!(hashed(&s), before + 1, "the second copy reuses it");
        assert!(body_hash_counts().1 > reused);
        let theirs = s
            .sign_at(&second, 1_800_000_000, &mut None)
            .unwrap()
            .unwrap();
        assert_eq!(
            b, theirs,
            "a reused body hash gives the signature a fresh hash gives"
        );
        assert_ne!(a, b);
        // Same key, another body: hashed again, not reused.
        let other =
            Arc::new(b"X-Token: three\r\nFrom: a@school.example\r\n\r\nanother body\r\n".to_vec());
        let before = hashed(&s);
        let c = s.sign_copy_of(77, &other, 1_800_000_000).unwrap().unwrap();
        assert_eq!(hashed(&s), before + 1, "another body is hashed");
        assert_eq!(
            c,
            s.sign_at(&other, 1_800_000_000, &mut None)
                .unwrap()
                .unwrap()
        );
    }

    #[test]
    fn skip_routes_match_the_route_in_use() {
        let mut c = Config::default();
        c.delivery
            .routes
            .insert("Gmail.test".into(), "127.0.0.1:25".into());
        c.dkim.skip_routes = vec!["gmail.test".into()];
        assert!(route_skips(&c, "gmail.test."));
        assert!(!route_skips(&c, "other.test"));
        c.dkim.skip_routes = vec!["*".into()];
        assert!(!route_skips(&c, "other.test"));
        c.delivery.routes.insert("*".into(), "127.0.0.1:26".into());
        assert!(route_skips(&c, "other.test"));
        assert!(!route_skips(&c, "gmail.test"));
        let mut r = Config::default();
        r.delivery.relayhost = Some("smart.example:587".into());
        r.dkim.skip_routes = vec!["relayhost".into()];
        assert!(route_skips(&r, "any.test"));
    }
}
