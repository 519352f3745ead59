//! Configuration (README "Configuration"): typed serde structs with `deny_unknown_fields`, built-in
//! defaults so `rebound serve` runs with no file, durations and sizes as strings,
//! secrets masked when printed, and one `validate` run at startup and by `check-config`.

pub mod users;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::time::{format_duration, parse_duration};

/// A configuration problem, with enough context to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}

/// A duration written as `"30s"`, `"5m"`, `"72h"`, `"30d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// A size in bytes, written as an integer or `"25MB"`, `"512KB"`, `"1GiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => parse_size(&s).map(Size).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// Parses `"25MB"`, `"512KB"`, `"1GiB"`, `"1000"` (bytes). KB/MB/GB are decimal, KiB/MiB/GiB binary.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..split]
        .parse()
        .map_err(|_| format!("bad size {s:?}: expected a number like \"25MB\""))?;
    let mult: u64 = match t[split..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "M" | "MB" => 1000 * 1000,
        "G" | "GB" => 1000 * 1000 * 1000,
        "KIB" => 1 << 10,
        "MIB" => 1 << 20,
        "GIB" => 1 << 30,
        other => {
            return Err(format!(
                "bad size {s:?}: unknown unit {other:?} (B, KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("bad size {s:?}: too large"))
}

/// A secret: never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("********")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub smtp: SmtpConfig,
    pub delivery: DeliveryConfig,
    pub bounces: BouncesConfig,
    pub suppression: SuppressionConfig,
    pub api: ApiConfig,
    pub webhooks: WebhooksConfig,
    pub retention: RetentionConfig,
    pub unsubscribe: UnsubscribeConfig,
    pub dkim: DkimConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// EHLO name and `Received:` host.
    pub hostname: String,
    /// The sled database directory.
    pub data_dir: PathBuf,
    /// How long SIGTERM waits for in-flight sessions and attempts.
    pub shutdown_timeout: Dur,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: default_hostname(),
            data_dir: PathBuf::from("./rebound-data"),
            shutdown_timeout: Dur(Duration::from_secs(20)),
        }
    }
}

fn default_hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.contains('.'))
        .unwrap_or_else(|| "localhost.localdomain".to_string())
}

/// One AUTH user (`[[smtp.users]]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpUser {
    pub name: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub listen: Vec<SocketAddr>,
    /// Clients allowed to relay without AUTH.
    pub relay_networks: Vec<IpNet>,
    pub max_message_size: Size,
    pub max_recipients: usize,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub users: Vec<SmtpUser>,
    /// Simultaneous SMTP connections in all; more get `421 4.7.0`.
    pub max_connections: usize,
    /// Closing an idle session (`421 4.4.2`).
    pub idle_timeout: Dur,
    /// Upper bound on a whole session.
    pub session_timeout: Dur,
    /// Free space on the data_dir filesystem below which MAIL gets `452 4.3.1`.
    pub min_free_space: Size,
    /// Simultaneous connections from one address outside `relay_networks` (0: no limit).
    pub max_connections_per_ip: u32,
    /// Connections one address outside `relay_networks` may open per `connection_rate_window` (0: no limit).
    pub max_connection_rate_per_ip: u32,
    /// The window of `max_connection_rate_per_ip`.
    pub connection_rate_window: Dur,
    /// The reply to a failed AUTH waits this long.
    pub auth_failure_delay: Dur,
    /// Failed AUTH attempts from one address before it is locked out (0: never).
    pub auth_max_failures: u32,
    /// How long a locked-out address gets `454 4.7.0` to AUTH (and the span failures are counted over).
    pub auth_lockout: Dur,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            relay_networks: vec![
                IpNet::new_assert(Ipv4Addr::new(127, 0, 0, 0).into(), 8),
                IpNet::from(IpAddr::from(Ipv6Addr::LOCALHOST)),
            ],
            max_message_size: Size(25 * 1000 * 1000),
            max_recipients: 100,
            tls_cert: None,
            tls_key: None,
            users: vec![],
            max_connections: 1000,
            idle_timeout: Dur(Duration::from_secs(300)),
            session_timeout: Dur(Duration::from_secs(1800)),
            min_free_space: Size(64 * 1000 * 1000),
            max_connections_per_ip: 20,
            max_connection_rate_per_ip: 100,
            connection_rate_window: Dur(Duration::from_secs(60)),
            auth_failure_delay: Dur(Duration::from_secs(1)),
            auth_max_failures: 5,
            auth_lockout: Dur(Duration::from_secs(15 * 60)),
        }
    }
}

/// Outbound TLS policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsPolicy {
    Opportunistic,
    Required,
    Disabled,
}

/// What MTA-STS (RFC 8461) does for MX-routed domains (`delivery.mta_sts`). The mode in
/// effect for a domain is the lower of this and its policy's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MtaStsMode {
    /// No policy lookups.
    Off,
    /// Look policies up, log and count what would fail, deliver as without them.
    Testing,
    /// Refuse MX hosts a policy does not list; require validated TLS to those it lists.
    Enforce,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    pub max_age: Dur,
    /// Delays between attempts; the last one repeats.
    pub retry: Vec<Dur>,
    pub concurrency: usize,
    pub per_domain_concurrency: usize,
    pub tls: TlsPolicy,
    /// MTA-STS for MX-routed domains: off, testing (log and count) or enforce.
    pub mta_sts: MtaStsMode,
    /// Extra trusted CA certificates (PEM) for MTA-STS, on top of the system's.
    pub mta_sts_ca_file: Option<PathBuf>,
    /// Port of the HTTPS policy servers (443; tests may point elsewhere).
    pub mta_sts_port: u16,
    pub nameservers: Vec<SocketAddr>,
    pub relayhost: Option<String>,
    pub relayhost_user: Option<String>,
    pub relayhost_password: Option<Secret>,
    /// Static next hop per recipient domain (`"*"` matches every domain).
    pub routes: BTreeMap<String, String>,
    /// Timeout for connect, greeting and each command.
    pub command_timeout: Dur,
    /// Timeout for sending the body and reading the final reply.
    pub data_timeout: Dur,
    /// Port used for MX hosts (25; tests may point elsewhere).
    pub mx_port: u16,
    /// How long new connections to a destination pause after it answered with a
    /// throttling reply (421, "rate limited", "too many connections"), unless its
    /// `shaping` entry says otherwise.
    pub throttle_backoff: Dur,
    /// Per-destination limits, keyed by a recipient domain or an MX host suffix
    /// (`"google.com"` also covers gmail.com, whose MX hosts end in google.com).
    pub shaping: BTreeMap<String, Shaping>,
}

/// Limits for one destination (`[delivery.shaping."DOMAIN"]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shaping {
    /// Most simultaneous connections (default: `delivery.per_domain_concurrency`).
    pub connections: Option<usize>,
    /// Most messages started per minute, spread evenly (default: no limit).
    pub messages_per_minute: Option<u32>,
    /// Pause after a throttling reply (default: `delivery.throttle_backoff`).
    pub backoff: Option<Dur>,
}

impl DeliveryConfig {
    /// The first invalid `shaping` entry: (config key, what is wrong).
    fn shaping_problem(&self) -> Option<(String, String)> {
        if self.throttle_backoff.0.is_zero() {
            return Some((
                "delivery.throttle_backoff".into(),
                "must be greater than zero".into(),
            ));
        }
        for (dest, s) in &self.shaping {
            let key = |k: &str| format!("delivery.shaping.\"{dest}\".{k}");
            if dest.is_empty() || dest.contains(['@', ' ', '/']) {
                return Some((
                    format!("delivery.shaping.\"{dest}\""),
                    "must be a domain or an MX host suffix".into(),
                ));
            }
            if s.connections == Some(0) {
                return Some((key("connections"), "must be at least 1".into()));
            }
            if s.messages_per_minute == Some(0) {
                return Some((
                    key("messages_per_minute"),
                    "must be at least 1 (leave it out for no limit)".into(),
                ));
            }
            if s.backoff.as_ref().is_some_and(|d| d.0.is_zero()) {
                return Some((key("backoff"), "must be greater than zero".into()));
            }
        }
        None
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let m = |s: u64| Dur(Duration::from_secs(s * 60));
        DeliveryConfig {
            max_age: Dur(Duration::from_secs(72 * 3600)),
            retry: vec![m(5), m(10), m(30), m(60), m(120), m(240)],
            concurrency: 100,
            per_domain_concurrency: 10,
            tls: TlsPolicy::Opportunistic,
            mta_sts: MtaStsMode::Testing,
            mta_sts_ca_file: None,
            mta_sts_port: 443,
            nameservers: vec![],
            relayhost: None,
            relayhost_user: None,
            relayhost_password: None,
            routes: BTreeMap::new(),
            command_timeout: Dur(Duration::from_secs(60)),
            data_timeout: Dur(Duration::from_secs(600)),
            mx_port: 25,
            throttle_backoff: Dur(Duration::from_secs(120)),
            shaping: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BouncesConfig {
    /// Envelope senders become signed VERP addresses at this domain; mail to it is bounce intake.
    pub domain: String,
    /// HMAC key for VERP tags (generated and kept in data_dir if unset).
    pub secret: Option<Secret>,
    /// Send an RFC 3464 DSN to the original envelope sender on failure/expiry.
    pub notify_sender: bool,
    /// How long a VERP tag (and a report token) stays valid.
    pub tag_validity: Dur,
    /// Let reports handed over by authenticated callers (`rebound ingest`, `POST /v1/ingest`)
    /// be matched by the original Message-ID alone. Off by default: a Message-ID is seen by
    /// every recipient of a message. Mail arriving by SMTP never gets this trust.
    pub trust_message_id: bool,
    /// Largest returned message (DSN, complaint) accepted when every recipient of the
    /// transaction is at the bounce domain.
    pub max_report_size: Size,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        BouncesConfig {
            domain: format!("bounces.{}", default_hostname()),
            secret: None,
            notify_sender: false,
            tag_validity: Dur(Duration::from_secs(90 * 86400)),
            trust_message_id: false,
            max_report_size: Size(2 * 1000 * 1000),
        }
    }
}

/// What happens to mail for a suppressed address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSuppressed {
    /// Accept, do not send, record `dropped`.
    Drop,
    /// `550 5.1.1` at RCPT.
    Reject,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuppressionConfig {
    pub on_suppressed: OnSuppressed,
}

impl Default for SuppressionConfig {
    fn default() -> Self {
        SuppressionConfig {
            on_suppressed: OnSuppressed::Drop,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Bearer token (generated and kept in data_dir, mode 0600, if unset).
    pub token: Option<Secret>,
    /// Base URL the CLI uses to reach the daemon (default: derived from `listen`).
    pub url: Option<String>,
    /// Also serve the API on this unix socket (mode 0600): file permissions are its only auth.
    pub socket: Option<PathBuf>,
    /// Simultaneous TCP connections; beyond it a few more are served `/healthz` only, the rest closed.
    pub max_connections: usize,
    /// A request's headers (and an idle keep-alive connection's next request) must arrive within this.
    pub header_timeout: Dur,
    /// A request's body must have arrived this long after its headers.
    pub body_timeout: Dur,
    /// Web console users (`[[api.users]]`: name, argon2 password_hash, role viewer|operator).
    pub users: Vec<crate::config::users::ConsoleUser>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
            token: None,
            url: None,
            socket: None,
            max_connections: 64,
            header_timeout: Dur(Duration::from_secs(10)),
            body_timeout: Dur(Duration::from_secs(60)),
            users: vec![],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub url: Option<String>,
    pub secret: Option<Secret>,
    /// Most events per POST.
    pub batch_size: usize,
    /// How long to wait to fill a batch.
    pub batch_wait: Dur,
    /// Give up on a batch after this long.
    pub max_age: Dur,
    /// Only these statuses are sent (empty = all).
    pub statuses: Vec<String>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            url: None,
            secret: None,
            batch_size: 100,
            batch_wait: Dur(Duration::from_millis(500)),
            max_age: Dur(Duration::from_secs(24 * 3600)),
            statuses: vec![],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    pub events: Dur,
    pub bodies: Dur,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            events: Dur(Duration::from_secs(90 * 86400)),
            bodies: Dur(Duration::from_secs(30 * 86400)),
        }
    }
}

/// RFC 8058 one-click unsubscribe.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnsubscribeConfig {
    /// Add `List-Unsubscribe` / `List-Unsubscribe-Post` headers to relayed mail.
    pub enabled: bool,
    /// Public HTTP listener for the one-click POST (off when unset).
    pub listen: Option<SocketAddr>,
    /// Public base URL of that listener, e.g. `https://relay.example.com`.
    pub base_url: Option<String>,
}

/// A DKIM signing algorithm (`dkim.algorithms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DkimAlgorithm {
    /// RSA 2048 with SHA-256: what every receiver verifies.
    RsaSha256,
    /// Ed25519 with SHA-256 (RFC 8463): a second, small signature.
    Ed25519Sha256,
}

impl DkimAlgorithm {
    /// The selector published for this algorithm: RSA uses `selector`, Ed25519
    /// `selector-ed25519`, since one DNS name holds one key record.
    pub fn dns_selector(self, selector: &str) -> String {
        match self {
            DkimAlgorithm::RsaSha256 => selector.to_string(),
            DkimAlgorithm::Ed25519Sha256 => format!("{selector}-ed25519"),
        }
    }

    /// The key file suffix: `SELECTOR.rsa.key` / `SELECTOR.ed25519.key`.
    pub fn file_tag(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa",
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
        }
    }
}

/// DKIM signing of relayed mail (README "Sending to Gmail and Outlook").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimConfig {
    /// From domains (organisational) that are signed; empty: signing off.
    pub domains: Vec<String>,
    pub selector: String,
    /// One signature per algorithm.
    pub algorithms: Vec<DkimAlgorithm>,
    /// Where keys live (`KEY_DIR/DOMAIN/SELECTOR.{rsa,ed25519}.key`); default `data_dir/dkim`.
    pub key_dir: Option<PathBuf>,
    /// Route keys of `[delivery.routes]` (a domain or `"*"`), or `"relayhost"`, whose mail is not signed.
    pub skip_routes: Vec<String>,
    /// How often the daemon looks up a pending rotation's new records (`rebound dkim rotate`).
    pub rotation_check: Dur,
    /// How long a replaced selector's record stays needed (mail in transit) before it is
    /// listed as retire-able.
    pub rotation_grace: Dur,
}

impl Default for DkimConfig {
    fn default() -> Self {
        DkimConfig {
            domains: Vec::new(),
            selector: "rb1".into(),
            algorithms: vec![DkimAlgorithm::RsaSha256],
            key_dir: None,
            skip_routes: Vec::new(),
            rotation_check: Dur(Duration::from_secs(300)),
            rotation_grace: Dur(Duration::from_secs(7 * 86400)),
        }
    }
}

impl DkimConfig {
    /// The key directory in effect for `data_dir`.
    pub fn key_dir(&self, data_dir: &Path) -> PathBuf {
        self.key_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("dkim"))
    }

    /// What is wrong with these settings, as (key, message).
    fn problem(&self) -> Option<(&'static str, String)> {
        let label_ok = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        };
        if !label_ok(&self.selector) {
            return Some((
                "dkim.selector",
                format!("{:?} is not a DNS label", self.selector),
            ));
        }
        if let Some(d) = self
            .domains
            .iter()
            .find(|d| !label_ok(d.trim_end_matches('.')))
        {
            return Some(("dkim.domains", format!("{d:?} is not a domain")));
        }
        if self.algorithms.is_empty() && !self.domains.is_empty() {
            return Some(("dkim.algorithms", "needs at least one algorithm".into()));
        }
        if self
            .algorithms
            .iter()
            .enumerate()
            .any(|(i, a)| self.algorithms[..i].contains(a))
        {
            return Some(("dkim.algorithms", "an algorithm is listed twice".into()));
        }
        if self.rotation_check.0.is_zero() {
            return Some(("dkim.rotation_check", "must be greater than zero".into()));
        }
        None
    }
}

impl Config {
    /// Parses TOML text; `path` only labels errors.
    pub fn from_str(text: &str, path: &str) -> Result<Config, ConfigError> {
        let cfg: Config = match toml::from_str(text) {
            Ok(c) => c,
            Err(e) => match route_tables_rewritten(text) {
                Some(rewritten) => rewritten.map_err(|e2| ConfigError::Parse {
                    path: path.to_string(),
                    message: e2.message().trim().to_string(),
                })?,
                None => {
                    return Err(ConfigError::Parse {
                        path: path.to_string(),
                        message: one_line(&e, text),
                    });
                }
            },
        };
        cfg.validate(path)?;
        Ok(cfg)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        Config::from_str(&text, &p)
    }

    /// Resolves README "Configuration": `--config`, else `$REBOUND_CONFIG`, else `/etc/rebound/rebound.toml`
    /// if it exists, else built-in defaults. Returns the config and the file used.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let chosen = explicit
            .map(Path::to_path_buf)
            .or_else(|| {
                std::env::var_os("REBOUND_CONFIG")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| Some(PathBuf::from("/etc/rebound/rebound.toml")).filter(|p| p.exists()));
        match chosen {
            Some(p) => Ok((Config::from_file(&p)?, Some(p))),
            None => {
                let c = Config::default();
                c.validate("<built-in defaults>")?;
                Ok((c, None))
            }
        }
    }

    /// Checks what serde cannot: cross-field rules and value ranges. The first setting
    /// that fails is reported.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        self.check_smtp_listener()
            .and_then(|()| self.check_api())
            .and_then(|()| self.check_message_size_and_delivery())
            .and_then(|()| self.check_feedback())
            .and_then(|()| self.check_dkim_and_smtp_users())
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_string(),
                key,
                message,
            })
    }

    /// `smtp.listen`, the TLS pair, `smtp.max_recipients` and the connection-rate window.
    fn check_smtp_listener(&self) -> Result<(), Problem> {
        if self.smtp.listen.is_empty() {
            return problem("smtp.listen", "at least one address is needed");
        }
        if self.smtp.tls_cert.is_some() != self.smtp.tls_key.is_some() {
            return problem("smtp.tls_cert", "tls_cert and tls_key must be set together");
        }
        if self.smtp.max_recipients == 0 {
            return problem("smtp.max_recipients", "must be at least 1");
        }
        if self.smtp.max_recipients > usize::from(u16::MAX) {
            // A recipient's index travels in its 16-bit VERP tag.
            return problem(
                "smtp.max_recipients",
                format!("must be at most {}", u16::MAX),
            );
        }
        if self.smtp.connection_rate_window.0.is_zero() {
            return problem("smtp.connection_rate_window", "must be greater than zero");
        }
        Ok(())
    }

    /// The admin listener's limits and timeouts, and the console users.
    fn check_api(&self) -> Result<(), Problem> {
        if self.api.max_connections == 0 {
            return problem("api.max_connections", "must be at least 1");
        }
        if self.api.header_timeout.0.is_zero() || self.api.body_timeout.0.is_zero() {
            return problem(
                "api.header_timeout",
                "API timeouts must be greater than zero",
            );
        }
        if let Err(e) = crate::config::users::check_users(&self.api.users) {
            return problem("api.users", e.to_string());
        }
        Ok(())
    }

    /// `smtp.max_message_size`, then `delivery`: retry delays, maximum age, concurrency,
    /// shaping, routes and relayhost.
    fn check_message_size_and_delivery(&self) -> Result<(), Problem> {
        if self.smtp.max_message_size.0 < 1024 {
            return problem("smtp.max_message_size", "must be at least 1KB");
        }
        if self.delivery.retry.is_empty() {
            return problem("delivery.retry", "needs at least one delay");
        }
        if self.delivery.retry.iter().any(|d| d.0.is_zero()) {
            return problem("delivery.retry", "delays must be greater than zero");
        }
        if self.delivery.max_age.0.is_zero() {
            return problem("delivery.max_age", "must be greater than zero");
        }
        if self.delivery.concurrency == 0 || self.delivery.per_domain_concurrency == 0 {
            return problem(
                "delivery.concurrency",
                "concurrency limits must be at least 1",
            );
        }
        if let Some((key, message)) = self.delivery.shaping_problem() {
            return problem(&key, message);
        }
        for (domain, hop) in &self.delivery.routes {
            if parse_host_port(hop, 25).is_none() {
                return problem(
                    &format!("delivery.routes.\"{domain}\""),
                    format!("{hop:?} is not host:port"),
                );
            }
        }
        if let Some(r) = &self.delivery.relayhost
            && parse_host_port(r, 25).is_none()
        {
            return problem("delivery.relayhost", format!("{r:?} is not host:port"));
        }
        Ok(())
    }

    /// Where feedback goes: `bounces.domain`, the webhook URL, batch size and statuses,
    /// and the unsubscribe listener's public URL.
    fn check_feedback(&self) -> Result<(), Problem> {
        if self.bounces.domain.is_empty() || self.bounces.domain.contains(['@', ' ']) {
            return problem(
                "bounces.domain",
                format!("{:?} is not a domain", self.bounces.domain),
            );
        }
        if let Some(u) = &self.webhooks.url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return problem(
                "webhooks.url",
                format!("{u:?} must start with http:// or https://"),
            );
        }
        if self.webhooks.batch_size == 0 {
            return problem("webhooks.batch_size", "must be at least 1");
        }
        if let Some(s) = self
            .webhooks
            .statuses
            .iter()
            .find(|s| !is_webhook_status(s))
        {
            return problem("webhooks.statuses", format!("unknown status {s:?}"));
        }
        if self.unsubscribe.listen.is_some() && self.unsubscribe.base_url.is_none() {
            return problem(
                "unsubscribe.base_url",
                "needed when unsubscribe.listen is set",
            );
        }
        Ok(())
    }

    /// The DKIM settings, then every SMTP AUTH user has a name and a password.
    fn check_dkim_and_smtp_users(&self) -> Result<(), Problem> {
        if let Some((key, message)) = self.dkim.problem() {
            return problem(key, message);
        }
        if self
            .smtp
            .users
            .iter()
            .any(|u| u.name.is_empty() || u.password.0.is_empty())
        {
            return problem("smtp.users", "every user needs a name and a password");
        }
        Ok(())
    }

    /// The effective settings as TOML, secrets masked (`rebound check-config`).
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
    }
}

/// A setting that fails a check: its key and what is wrong with it.
type Problem = (String, String);

/// `Err` naming `key` and `message`, for the checks of [`Config::validate`].
fn problem(key: &str, message: impl Into<String>) -> Result<(), Problem> {
    Err((key.to_string(), message.into()))
}

/// A word `webhooks.statuses` may name: a status, or an event that is not one.
fn is_webhook_status(s: &str) -> bool {
    crate::model::Status::ALL.iter().any(|st| st.as_str() == s)
        || [
            "delayed",
            "resent",
            "autoreply",
            "unverified",
            "suppression_added",
            "suppression_removed",
        ]
        .contains(&s)
}

/// README "Sending to Gmail and Outlook" route form `"d" = { host = "h:p", sign = false }`: each such route becomes
/// `"d" = "h:p"`, and `sign = false` adds `"d"` to `dkim.skip_routes`. `None` when the file
/// has no route written as a table (the first parse error stands).
fn route_tables_rewritten(text: &str) -> Option<Result<Config, toml::de::Error>> {
    let mut doc: toml::Table = toml::from_str(text).ok()?;
    let routes = doc
        .get_mut("delivery")?
        .as_table_mut()?
        .get_mut("routes")?
        .as_table_mut()?;
    let mut unsigned = Vec::new();
    let mut any = false;
    for (key, value) in routes.iter_mut() {
        let Some(t) = value.as_table() else { continue };
        any = true;
        if t.get("sign").and_then(toml::Value::as_bool) == Some(false) {
            unsigned.push(toml::Value::String(key.clone()));
        }
        match (t.get("host"), t.keys().all(|k| k == "host" || k == "sign")) {
            (Some(host @ toml::Value::String(_)), true) => *value = host.clone(),
            _ => {
                return Some(Err(serde::de::Error::custom(format!(
                    "delivery.routes.{key:?}: a route table takes host = \"host:port\" and sign = true|false"
                ))));
            }
        }
    }
    if !any {
        return None;
    }
    if !unsigned.is_empty() {
        let dkim = doc
            .entry("dkim")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let skip = dkim
            .as_table_mut()?
            .entry("skip_routes")
            .or_insert_with(|| toml::Value::Array(Vec::new()));
        skip.as_array_mut()?.extend(unsigned);
    }
    Some(toml::Value::Table(doc).try_into())
}

/// Renders a toml error as one line: `line 3, column 1: unknown field ...`.
fn one_line(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let upto = &text[..span.start.min(text.len())];
            let line = upto.matches('\n').count() + 1;
            let col = upto.len() - upto.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            format!("line {line}, column {col}: {msg}")
        }
        None => msg,
    }
}

/// Splits `host:port` / `[v6]:port` / `host` (with `default_port`).
pub fn parse_host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None => Some((s.to_string(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_loopback_only() {
        let c = Config::default();
        c.validate("defaults").unwrap();
        assert!(c.smtp.listen.iter().all(|a| a.ip().is_loopback()));
        assert!(c.api.listen.ip().is_loopback());
        assert_eq!(c.delivery.max_age.0, Duration::from_secs(72 * 3600));
        let parsed = |v: &[&str]| v.iter().map(|n| n.parse().unwrap()).collect::<Vec<IpNet>>();
        assert_eq!(c.smtp.relay_networks, parsed(&["127.0.0.0/8", "::1/128"]));
        assert_eq!(c.smtp.listen, vec!["127.0.0.1:2525".parse().unwrap()]);
        assert_eq!(c.api.listen, "127.0.0.1:8025".parse().unwrap());
    }

    #[test]
    fn max_recipients_fits_the_verp_tag() {
        let err = Config::from_str("[smtp]\nmax_recipients = 70000\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("smtp.max_recipients") && err.contains("65535"),
            "{err}"
        );
        assert!(Config::from_str("[smtp]\nmax_recipients = 65535\n", "x.toml").is_ok());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = Config::from_str("[smtp]\nmax_recipients = 5\nbogus = 1\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn durations_and_sizes_parse() {
        let c = Config::from_str("[smtp]\nmax_message_size = \"10MB\"\n[delivery]\nretry = [\"1s\", \"2s\"]\nmax_age = \"6s\"\n", "t").unwrap();
        assert_eq!(c.smtp.max_message_size.0, 10_000_000);
        assert_eq!(
            c.delivery.retry,
            vec![Dur(Duration::from_secs(1)), Dur(Duration::from_secs(2))]
        );
        let err = Config::from_str("[delivery]\nmax_age = \"6 parsecs\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn secrets_are_masked() {
        let c = Config::from_str("[api]\ntoken = \"hunter2\"\n[[smtp.users]]\nname = \"app\"\npassword = \"pw-secret\"\n", "t").unwrap();
        let shown = c.to_masked_toml();
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw-secret"),
            "{shown}"
        );
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn route_tables_opt_out_of_signing() {
        let text = "[delivery.routes]\n\"*\" = { host = \"smtp.provider.example:587\", sign = false }\n\"a.test\" = \"127.0.0.1:2526\"\n\"b.test\" = { host = \"127.0.0.1:2527\" }\n[dkim]\nskip_routes = [\"c.test\"]\n";
        let c = Config::from_str(text, "t").unwrap();
        assert_eq!(c.delivery.routes["*"], "smtp.provider.example:587");
        assert_eq!(c.delivery.routes["a.test"], "127.0.0.1:2526");
        assert_eq!(c.delivery.routes["b.test"], "127.0.0.1:2527");
        assert_eq!(
            c.dkim.skip_routes,
            vec!["c.test".to_string(), "*".to_string()]
        );
        let err = Config::from_str("[delivery.routes]\n\"*\" = { hots = \"x:1\" }\n", "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("delivery.routes") && err.contains("host"),
            "{err}"
        );
        // Without route tables, errors still name the line.
        let err = Config::from_str("[delivery.routes]\n\"*\" = 5\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("127.0.0.1:2526", 25),
            Some(("127.0.0.1".into(), 2526))
        );
        assert_eq!(
            parse_host_port("mx.example", 25),
            Some(("mx.example".into(), 25))
        );
        assert_eq!(parse_host_port("[::1]:26", 25), Some(("::1".into(), 26)));
        assert_eq!(parse_host_port("a:b:c", 25), None);
    }
}
