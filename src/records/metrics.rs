//! `GET /metrics`: the relay's counters and gauges in Prometheus text format
//! (messages by outcome, queue depth, oldest message age, attempt latency
//! histogram, SMTP sessions, webhook backlog, database size, storage faults).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::daemon::state::{ATTEMPT_BUCKETS_MS, Daemon};

/// Gauges the SMTP listener reports (sessions).
#[derive(Debug, Default, Clone, Copy)]
pub struct SmtpGauges {
    pub sessions_total: u64,
    pub sessions_active: u64,
    /// Connections refused by the global or per-IP caps.
    pub connections_refused: u64,
    pub connections_refused_per_ip: u64,
    pub auth_lockouts: u64,
}

/// Renders every metric.
pub fn render(daemon: &Daemon, smtp: SmtpGauges) -> String {
    let mut out = String::with_capacity(4096);
    outcomes(&mut out, daemon);
    queue(&mut out, daemon);
    smtp_listener(&mut out, &smtp);
    feedback(&mut out, daemon);
    signing(&mut out);
    storage(&mut out, daemon);
    destinations(&mut out, daemon);
    out
}

/// Recipients received and recorded outcomes, by status.
fn outcomes(out: &mut String, daemon: &Daemon) {
    let c = &daemon.counters;
    let received = c.received.load(Ordering::Relaxed);
    counter(
        out,
        "rebound_recipients_received_total",
        "Recipients accepted for delivery (one per recipient of each message).",
        received,
    );
    counter(
        out,
        "rebound_messages_received_total",
        "Deprecated alias of rebound_recipients_received_total (it counts recipients, not messages).",
        received,
    );
    let outcomes = [
        ("delivered", &c.delivered),
        ("deferred", &c.deferred),
        ("bounced", &c.bounced),
        ("failed", &c.failed),
        ("expired", &c.expired),
        ("dropped", &c.dropped),
        ("complained", &c.complained),
        ("unsubscribed", &c.unsubscribed),
    ];
    let _ = writeln!(
        out,
        "# HELP rebound_recipients_total Recipient outcomes recorded, by status.\n# TYPE rebound_recipients_total counter"
    );
    for (status, v) in outcomes {
        let _ = writeln!(
            out,
            "rebound_recipients_total{{status=\"{status}\"}} {}",
            v.load(Ordering::Relaxed)
        );
    }
}

/// The queue: its depth, the oldest due message and attempt latency.
fn queue(out: &mut String, daemon: &Daemon) {
    let stored = daemon.store.queue_len() as u64;
    gauge(
        out,
        "rebound_stored_messages",
        "Messages stored: waiting for delivery, and finished ones kept for resend.",
        stored,
    );
    gauge(
        out,
        "rebound_queue_messages",
        "Deprecated alias of rebound_stored_messages (it includes finished messages).",
        stored,
    );
    gauge(
        out,
        "rebound_queue_oldest_due_age_seconds",
        "Age of the oldest due schedule entry.",
        oldest_due_age(daemon),
    );
    histogram(out, daemon);
}

/// The SMTP listener's sessions, refusals and AUTH lockouts.
fn smtp_listener(out: &mut String, smtp: &SmtpGauges) {
    counter(
        out,
        "rebound_smtp_sessions_total",
        "SMTP sessions accepted.",
        smtp.sessions_total,
    );
    gauge(
        out,
        "rebound_smtp_sessions_active",
        "SMTP sessions open now.",
        smtp.sessions_active,
    );
    counter(
        out,
        "rebound_smtp_connections_refused_total",
        "SMTP connections refused with 421 4.7.0 (global or per-IP caps).",
        smtp.connections_refused,
    );
    counter(
        out,
        "rebound_smtp_connections_refused_per_ip_total",
        "SMTP connections refused by the per-IP connection or rate limit.",
        smtp.connections_refused_per_ip,
    );
    counter(
        out,
        "rebound_smtp_auth_lockouts_total",
        "Client addresses locked out of AUTH after too many failures.",
        smtp.auth_lockouts,
    );
}

/// The webhook backlog, the suppression list and the security log.
fn feedback(out: &mut String, daemon: &Daemon) {
    let c = &daemon.counters;
    gauge(
        out,
        "rebound_webhook_backlog",
        "Events waiting in the webhook outbox.",
        daemon.store.outbox_len() as u64,
    );
    gauge(
        out,
        "rebound_suppressed_addresses",
        "Entries on the suppression list.",
        daemon.store.suppression_count() as u64,
    );
    counter(
        out,
        "rebound_unverified_reports_total",
        "Returned reports not tied to a recipient by a signed tag or token (kept in the security log) since start.",
        c.unverified.load(Ordering::Relaxed),
    );
    gauge(
        out,
        "rebound_unverified_log_entries",
        "Entries in the security log of untrusted returned reports.",
        daemon.store.unverified_count() as u64,
    );
}

/// DKIM signing and MTA-STS.
fn signing(out: &mut String) {
    counter(
        out,
        "rebound_dkim_signed_total",
        "Recipient copies DKIM-signed since start.",
        crate::delivery::outbound::dkim::signed_total(),
    );
    counter(
        out,
        "rebound_dkim_unsigned_total",
        "Recipient copies sent unsigned while DKIM signing is on (From domain not in dkim.domains, or a signing error) since start.",
        crate::delivery::outbound::dkim::unsigned_total(),
    );
    let (hashed, reused) = crate::delivery::outbound::dkim::body_hash_counts();
    counter(
        out,
        "rebound_dkim_body_hashes_total",
        "DKIM body hashes computed since start (one per message body, not per copy).",
        hashed,
    );
    counter(
        out,
        "rebound_dkim_body_hash_reused_total",
        "Recipient copies signed with a body hash computed for an earlier copy since start.",
        reused,
    );
    counter(
        out,
        "rebound_dkim_rotation_checks_total",
        "DNS checks of a pending DKIM key rotation since start.",
        crate::delivery::outbound::dkim::rotation_checks(),
    );
    mta_sts(out);
}

/// The store: quarantined records, size on disk, flushes and faults.
fn storage(out: &mut String, daemon: &Daemon) {
    gauge(
        out,
        "rebound_quarantined_records",
        "Undecodable records moved aside.",
        daemon.store.quarantined() as u64,
    );
    gauge(
        out,
        "rebound_db_size_bytes",
        "Size of the sled database on disk.",
        daemon.store.size_on_disk(),
    );
    counter(
        out,
        "rebound_flushes_total",
        "Group-commit flushes (fsync) done.",
        daemon.committer.flush_count(),
    );
    let health = daemon.committer.health();
    gauge(
        out,
        "rebound_store_faulted",
        "1 while the store cannot record anything (a write or flush failed): intake refuses, deliveries pause.",
        u64::from(health.is_faulted()),
    );
    counter(
        out,
        "rebound_store_faults_total",
        "Storage faults (failed write or flush) since start.",
        health.faults_total(),
    );
}

/// Per-destination shaping: limits, throttling replies and recipients held back, for every
/// destination with a `[delivery.shaping]` entry or one that has throttled or is busy.
fn destinations(out: &mut String, daemon: &Daemon) {
    let Some(shaper) = daemon.shaping.get() else {
        return;
    };
    let stats = shaper.snapshot();
    type Pick = fn(&crate::delivery::outbound::shaping::GateStats) -> u64;
    let series: [(&str, &str, &str, Pick); 6] = [
        (
            "rebound_destination_connections_active",
            "gauge",
            "Deliveries running to the destination now.",
            |s| s.active as u64,
        ),
        (
            "rebound_destination_connection_limit",
            "gauge",
            "Deliveries allowed at once now (lowered after throttling, recovering with accepted mail).",
            |s| s.limit as u64,
        ),
        (
            "rebound_destination_connections_max",
            "gauge",
            "The configured connection limit of the destination.",
            |s| s.connections as u64,
        ),
        (
            "rebound_destination_throttled_total",
            "counter",
            "Throttling replies (421, rate limit, too many connections) from the destination.",
            |s| s.throttled,
        ),
        (
            "rebound_destination_held_back_total",
            "counter",
            "Recipients deferred without a connection while the destination was paused.",
            |s| s.held_back,
        ),
        (
            "rebound_destination_paused_seconds",
            "gauge",
            "Seconds until new connections to the destination resume (0: not paused).",
            |s| s.paused_for.as_secs(),
        ),
    ];
    for (name, kind, help, pick) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in &stats {
            let _ = writeln!(
                out,
                "{name}{{destination=\"{}\"}} {}",
                label(&s.name),
                pick(s)
            );
        }
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn oldest_due_age(daemon: &Daemon) -> u64 {
    match daemon.store.next_due() {
        Ok(Some(t)) => daemon.now().since(t).as_secs(),
        _ => 0,
    }
}

fn histogram(out: &mut String, daemon: &Daemon) {
    let c = &daemon.counters;
    let name = "rebound_delivery_attempt_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time taken by delivery attempts.\n# TYPE {name} histogram"
    );
    let mut cumulative = 0;
    for (i, le) in ATTEMPT_BUCKETS_MS.iter().enumerate() {
        cumulative += c.attempt_buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            *le as f64 / 1000.0
        );
    }
    cumulative += c.attempt_buckets[ATTEMPT_BUCKETS_MS.len()].load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(
        out,
        "{name}_sum {}",
        c.attempt_ms_sum.load(Ordering::Relaxed) as f64 / 1000.0
    );
    let _ = writeln!(out, "{name}_count {}", c.attempts.load(Ordering::Relaxed));
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

/// MTA-STS: what policies refused (enforce) or would have refused (testing), and fetches.
fn mta_sts(out: &mut String) {
    let name = "rebound_mta_sts_policy_failures_total";
    let _ = writeln!(
        out,
        "# HELP {name} MX hosts an MTA-STS policy refused (mode enforce) or would have refused (mode testing), by reason, since start.\n# TYPE {name} counter"
    );
    for (mode, reason, v) in crate::delivery::outbound::mta_sts::failure_counts() {
        let _ = writeln!(out, "{name}{{mode=\"{mode}\",reason=\"{reason}\"}} {v}");
    }
    let (fetched, failed) = crate::delivery::outbound::mta_sts::fetch_counts();
    let name = "rebound_mta_sts_fetches_total";
    let _ = writeln!(
        out,
        "# HELP {name} MTA-STS policy fetches since start, by result.\n# TYPE {name} counter\n{name}{{result=\"ok\"}} {fetched}\n{name}{{result=\"failed\"}} {failed}"
    );
}
