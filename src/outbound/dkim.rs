//! DKIM signing of relayed mail (SPEC §8, RFC 6376, RFC 8463): the keys of
//! `[dkim]` loaded (or created) once, the signing domain chosen from the
//! From header (its domain, else the nearest listed parent), and one
//! `DKIM-Signature` per configured algorithm prepended to each recipient's
//! final bytes, relaxed/relaxed, with From/Subject/To/Date over-signed.
//! Signing happens last, just before a copy goes to the outbound client;
//! DSNs rebound writes itself and routes in `dkim.skip_routes` go unsigned.

pub mod keys;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mail_auth::common::crypto::DkimKey;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

use crate::address::normalise_domain;
use crate::config::{Config, DkimAlgorithm};
use crate::relay::Relay;
use crate::store::queue::MessageRecord;

pub use keys::{KeyError, LoadedKey};

/// RFC 6376 §5.4.1's recommended header fields, and the MIME fields.
pub const SIGNED_HEADERS: &[&str] = &[
    "From", "Reply-To", "Subject", "Date", "To", "Cc",
    "Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc", "Resent-Message-ID",
    "In-Reply-To", "References",
    "List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post", "List-Owner", "List-Archive", "List-Unsubscribe-Post",
    "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
];

/// Signed once more than present, so a copy with one added is refused.
pub const OVERSIGNED: &[&str] = &["From", "Subject", "To", "Date"];

/// The `h=` template: mail-auth signs every occurrence of a listed name and
/// then each name again as absent when listed a second time.
pub fn header_list() -> Vec<String> {
    SIGNED_HEADERS.iter().chain(OVERSIGNED).map(|h| h.to_string()).collect()
}

/// Why a signer could not be built or a message signed.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("DKIM key for {domain}: {source}")]
    Key { domain: String, source: KeyError },
    #[error("DKIM signing as {domain}: {source}")]
    Sign { domain: String, source: mail_auth::Error },
}

/// One domain's key for one algorithm.
struct DomainKey {
    algorithm: DkimAlgorithm,
    signer: DkimSigner<DkimKey, Done>,
}

/// All keys of a `[dkim]` section, ready to sign. Cheap to share.
pub struct Signer {
    /// Normalised signing domains, each with one key per algorithm.
    keys: HashMap<String, Vec<DomainKey>>,
    /// Per key, for the start-up log and `rebound dns`.
    records: Vec<Published>,
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
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("domains", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

impl Signer {
    /// Loads (creating when absent) every key; `None` when signing is off.
    pub fn from_config(cfg: &Config) -> Result<Option<Signer>, DkimError> {
        let d = &cfg.dkim;
        if d.domains.is_empty() {
            return Ok(None);
        }
        let dir = d.key_dir(&cfg.server.data_dir);
        let mut signer = Signer { keys: HashMap::new(), records: Vec::new() };
        for domain in d.domains.iter().map(|x| normalise_domain(x)) {
            for &alg in &d.algorithms {
                let selector = alg.dns_selector(&d.selector);
                let loaded = keys::load_or_create(&dir, &domain, &d.selector, alg).map_err(|source| DkimError::Key { domain: domain.clone(), source })?;
                signer.records.push(Published {
                    name: format!("{selector}._domainkey.{domain}"),
                    value: loaded.txt_value(),
                    zone_line: loaded.zone_line(&selector, &domain),
                    key_file: loaded.path.clone(),
                });
                let built = DkimSigner::from_key(loaded.key)
                    .domain(domain.clone())
                    .selector(selector)
                    .headers(header_list())
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed);
                signer.keys.entry(domain.clone()).or_default().push(DomainKey { algorithm: alg, signer: built });
            }
        }
        Ok(Some(signer))
    }

    /// The TXT record of each key.
    pub fn records(&self) -> &[Published] {
        &self.records
    }

    /// The signing domain for a From domain: itself, else its nearest listed parent.
    pub fn choose(&self, from_domain: &str) -> Option<&str> {
        choose_domain(from_domain, |d| self.keys.contains_key(d)).and_then(|d| self.keys.get_key_value(d.as_str()).map(|(k, _)| k.as_str()))
    }

    /// `message` with its DKIM-Signature headers prepended; `None` when no listed domain matches its From.
    pub fn sign(&self, message: &[u8]) -> Result<Option<Vec<u8>>, DkimError> {
        let Some(from) = from_domain(message) else { return Ok(None) };
        let Some(domain) = self.choose(&from) else { return Ok(None) };
        let mut headers = Vec::new();
        for k in &self.keys[domain] {
            let sig = k.signer.sign(message).map_err(|source| DkimError::Sign { domain: domain.to_string(), source })?;
            headers.push(sig.to_header());
        }
        let mut out = Vec::with_capacity(message.len() + headers.iter().map(String::len).sum::<usize>());
        headers.iter().for_each(|h| out.extend_from_slice(h.as_bytes()));
        out.extend_from_slice(message);
        Ok(Some(out))
    }

    /// The algorithms configured for `domain`, in signing order.
    pub fn algorithms(&self, domain: &str) -> Vec<DkimAlgorithm> {
        self.keys.get(domain).map(|v| v.iter().map(|k| k.algorithm).collect()).unwrap_or_default()
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
    format!("{:?}|{}", cfg.dkim, cfg.dkim.key_dir(&cfg.server.data_dir).display())
}

/// Builds the signer for `cfg` now (keys loaded or created) and logs each TXT record to publish.
/// Meant for daemon start; [`sign_copy`] does it on first use otherwise.
pub fn prepare(cfg: &Config) -> Result<Option<Arc<Signer>>, DkimError> {
    let key = registry_key(cfg);
    // Held while keys are made, so two starts never create the same file at once.
    let mut signers = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = signers.get(&key) {
        return Ok(found.clone());
    }
    let signer = Signer::from_config(cfg)?.map(Arc::new);
    for r in signer.iter().flat_map(|s| s.records()) {
        tracing::info!(key = %r.key_file.display(), "DKIM key ready; publish: {}", r.zone_line);
    }
    signers.insert(key, signer.clone());
    Ok(signer)
}

/// The signer for `cfg`; a failure is logged once and leaves signing off for this process.
fn signer_for(cfg: &Config) -> Option<Arc<Signer>> {
    if cfg.dkim.domains.is_empty() {
        return None;
    }
    prepare(cfg).unwrap_or_else(|e| {
        tracing::error!(error = %e, "DKIM signing is off: the keys could not be loaded");
        registry().lock().unwrap_or_else(|e| e.into_inner()).insert(registry_key(cfg), None);
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
        .or_else(|| cfg.delivery.relayhost.as_ref().map(|_| "relayhost".to_string()));
    route.is_some_and(|r| skip.iter().any(|s| (if s == "*" { s.clone() } else { normalise_domain(s) }) == r))
}

/// Runs CPU-bound `f` (an RSA signature is ~0.7 ms) without stalling the other tasks
/// of a multi-thread runtime's worker; inline elsewhere.
fn off_the_workers<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// One recipient's final copy for `domain`, signed unless it is a DSN, its route opts out,
/// signing is off, or its From domain is not listed (counted).
pub fn sign_copy(relay: &Relay, rec: &MessageRecord, domain: &str, body: Arc<Vec<u8>>) -> Arc<Vec<u8>> {
    if rec.is_dsn || route_skips(&relay.cfg, domain) {
        return body;
    }
    let Some(signer) = signer_for(&relay.cfg) else { return body };
    match off_the_workers(|| signer.sign(&body)) {
        Ok(Some(signed)) => {
            SIGNED.fetch_add(1, Ordering::Relaxed);
            Arc::new(signed)
        }
        Ok(None) => {
            UNSIGNED.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(queue_id = rec.id, "not DKIM-signed: From domain not in dkim.domains");
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
        assert_eq!(choose_domain("school.example", listed).as_deref(), Some("school.example"));
        assert_eq!(choose_domain("Mail.School.Example.", listed).as_deref(), Some("school.example"));
        assert_eq!(choose_domain("x.y.mail.school.example", listed).as_deref(), Some("school.example"));
        assert_eq!(choose_domain("x.deep.a.example", listed).as_deref(), Some("deep.a.example"));
        assert_eq!(choose_domain("a.example", listed), None);
        assert_eq!(choose_domain("badschool.example", listed), None);
        assert_eq!(choose_domain("example", |_| false), None);
        // Never walks up to a bare TLD, even if one were listed.
        assert_eq!(choose_domain("school.example", |d| d == "example"), None);
    }

    #[test]
    fn header_list_covers_rfc6376_and_oversigns() {
        let h = header_list();
        for name in ["From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-From", "In-Reply-To", "References", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"] {
            assert!(h.iter().any(|x| x == name), "{name} not signed");
        }
        for name in OVERSIGNED {
            assert_eq!(h.iter().filter(|x| x == name).count(), 2, "{name} not over-signed");
        }
        assert!(!h.iter().any(|x| x.eq_ignore_ascii_case("Received") || x.eq_ignore_ascii_case("Return-Path")));
    }

    #[test]
    fn from_domain_of_display_name_forms() {
        assert_eq!(from_domain(b"From: \"A, B\" <a@Mail.School.Example>\r\nTo: x@y\r\n\r\nhi\r\n").as_deref(), Some("mail.school.example"));
        assert_eq!(from_domain(b"From: a@b.test\r\n\r\n").as_deref(), Some("b.test"));
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
        assert!(text.contains("d=school.example") && text.contains("s=rb1-ed25519;") && text.contains("a=ed25519-sha256"), "{text}");
        assert_eq!(s.records()[0].name, "rb1-ed25519._domainkey.school.example");
        assert!(text.contains("c=relaxed/relaxed"), "{text}");
        assert!(text.ends_with(std::str::from_utf8(msg).unwrap()));
        assert!(s.sign(b"From: a@elsewhere.test\r\n\r\nx\r\n").unwrap().is_none());
        assert!(Signer::from_config(&Config::default()).unwrap().is_none());
    }

    #[test]
    fn skip_routes_match_the_route_in_use() {
        let mut c = Config::default();
        c.delivery.routes.insert("Gmail.test".into(), "127.0.0.1:25".into());
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
