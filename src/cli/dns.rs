//! `rebound dns [--check] [DOMAIN...]` (README "Sending to Gmail and Outlook"): the DNS records an operator publishes
//! for this config, as zone-file lines — DKIM TXT per domain and algorithm, SPF for each
//! sending domain and the bounce domain, a DMARC suggestion, the bounce domain's MX and
//! the PTR expected for the egress addresses. `--check` resolves each through the
//! configured resolver and prints ✓/✗; DKIM, SPF and the bounce MX are required (exit 1
//! when one is missing or differs), DMARC and PTR advisory. Offline: no daemon needed,
//! but the DKIM keys are loaded, and created when absent, exactly as `serve` would.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;

use crate::config::Config;
use crate::delivery::outbound::dkim::{self, Published, rotation::Retired};
use crate::model::address::normalise_domain;
use crate::model::time::Timestamp;

/// Longest wait for one DNS answer in `--check`.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why `rebound dns` could not run.
#[derive(Debug, thiserror::Error)]
pub enum DnsCmdError {
    #[error("no domains: list them after `rebound dns` or set dkim.domains")]
    NoDomains,
    #[error(transparent)]
    Dkim(#[from] crate::delivery::outbound::dkim::DkimError),
    #[error("cannot set up the DNS resolver: {0}")]
    Resolver(String),
}

/// What a record is for; decides how `--check` compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dkim,
    /// A replaced selector's key, still needed while its grace period runs.
    DkimOld,
    Spf,
    Dmarc,
    Mx,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Dkim | Kind::DkimOld => "DKIM",
            Kind::Spf => "SPF",
            Kind::Dmarc => "DMARC",
            Kind::Mx => "MX",
        }
    }

    /// Whether a missing or different record fails `--check`.
    fn required(self) -> bool {
        !matches!(self, Kind::Dmarc | Kind::DkimOld)
    }
}

/// One record the config needs.
#[derive(Debug, Clone)]
struct Wanted {
    kind: Kind,
    /// Owner name, no trailing dot.
    name: String,
    /// The TXT value unsplit, or the MX exchange host.
    value: String,
    zone_line: String,
}

/// The records for `domains` (none given: `dkim.domains`) under `cfg`, and the comment lines.
struct Plan {
    records: Vec<Wanted>,
    egress: Vec<IpAddr>,
    hostname: String,
    notes: Vec<String>,
}

/// Runs `rebound dns`; returns the exit code.
pub fn run(cfg: &Config, domains: &[String], egress: &[IpAddr], check: bool) -> i32 {
    let plan = match plan(cfg, domains, egress) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rebound: {e}");
            return 2;
        }
    };
    if !check {
        print!("{}", render(&plan));
        return 0;
    }
    match check_all(cfg, &plan) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("rebound: {e}");
            1
        }
    }
}

/// Per sending domain its DKIM keys (current, pending, replaced), SPF and DMARC; the
/// bounce domain's SPF (when it does not send) and MX.
fn plan(cfg: &Config, domains: &[String], egress: &[IpAddr]) -> Result<Plan, DnsCmdError> {
    let sending = sending_domains(cfg, domains)?;
    let hostname = normalise_domain(&cfg.server.hostname);
    let bounce = normalise_domain(&cfg.bounces.domain);
    let spf = spf_value(egress);
    let signer = dkim::prepare(cfg)?;
    let published = signer.as_ref().map(|s| s.records()).unwrap_or_default();
    let pending = signer
        .as_ref()
        .map(|s| s.pending_records())
        .unwrap_or_default();
    let now = Timestamp::now();
    let mut out = Plan {
        records: Vec::new(),
        egress: egress.to_vec(),
        hostname: hostname.clone(),
        notes: Vec::new(),
    };
    for d in &sending {
        out.add_dkim_keys(&published, &pending, d);
        let retired = signer
            .as_ref()
            .and_then(|s| s.state(d))
            .map(|st| st.retired)
            .unwrap_or_default();
        for r in retired {
            out.add_retired_selector(cfg, d, &r, now);
        }
        out.records.push(txt(Kind::Spf, d, &spf));
        out.records.push(txt(
            Kind::Dmarc,
            &format!("_dmarc.{d}"),
            &format!("v=DMARC1; p=none; rua=mailto:dmarc@{d}"),
        ));
    }
    if !sending.contains(&bounce) {
        out.records.push(txt(Kind::Spf, &bounce, &spf));
    }
    out.records.push(Wanted {
        kind: Kind::Mx,
        name: bounce.clone(),
        value: hostname.clone(),
        zone_line: format!("{bounce}. IN MX 10 {hostname}."),
    });
    Ok(out)
}

/// The sending domains: those listed, else `dkim.domains`; normalised, each once, in order.
fn sending_domains(cfg: &Config, domains: &[String]) -> Result<Vec<String>, DnsCmdError> {
    let listed: Vec<String> = if domains.is_empty() {
        cfg.dkim.domains.clone()
    } else {
        domains.to_vec()
    };
    let mut sending: Vec<String> = Vec::new();
    for d in listed.iter().map(|d| normalise_domain(d)) {
        if !sending.contains(&d) {
            sending.push(d);
        }
    }
    if sending.is_empty() {
        return Err(DnsCmdError::NoDomains);
    }
    Ok(sending)
}

impl Plan {
    /// The DKIM keys `d` signs with, and those of a rotation still pending; a note when
    /// `d` has no key at all.
    fn add_dkim_keys(&mut self, published: &[Published], pending: &[Published], d: &str) {
        let of_domain = |p: &&Published| p.name.ends_with(&format!("._domainkey.{d}"));
        let keys: Vec<_> = published.iter().filter(of_domain).collect();
        if keys.is_empty() {
            self.notes
                .push(format!("; {d}: no DKIM key (add it to dkim.domains)"));
        }
        for p in keys {
            self.records.push(Wanted {
                kind: Kind::Dkim,
                name: p.name.clone(),
                value: p.value.clone(),
                zone_line: p.zone_line.clone(),
            });
        }
        for p in pending.iter().filter(of_domain) {
            let zone_line = format!(
                "{} ; pending rotation to {}: signing switches once it resolves",
                p.zone_line, p.selector
            );
            self.records.push(Wanted {
                kind: Kind::Dkim,
                name: p.name.clone(),
                value: p.value.clone(),
                zone_line,
            });
        }
    }

    /// A selector rotation replaced: its keys stay wanted (advisory) while the grace period
    /// runs; after it, a note lists the lines the operator may remove.
    fn add_retired_selector(&mut self, cfg: &Config, d: &str, r: &Retired, now: Timestamp) {
        let until = dkim::RotationState::retire_after(r, cfg.dkim.rotation_grace.0);
        if now >= until {
            self.notes.push(format!(
                "; {d}: selector {} replaced {}, retire-able since {until}; you may remove:",
                r.selector, r.switched
            ));
            self.notes.extend(
                super::dkim::retired_lines(cfg, d, &r.selector)
                    .into_iter()
                    .map(|l| format!(";   {l}")),
            );
            return;
        }
        for &alg in &cfg.dkim.algorithms {
            let dir = cfg.dkim.key_dir(&cfg.server.data_dir);
            let dns = alg.dns_selector(&r.selector);
            if let Ok(Some(k)) = dkim::keys::load_existing(&dir, d, &r.selector, alg) {
                let zone_line = format!(
                    "{} ; replaced {}, keep until {until}",
                    k.zone_line(&dns, d),
                    r.switched
                );
                self.records.push(Wanted {
                    kind: Kind::DkimOld,
                    name: format!("{dns}._domainkey.{d}"),
                    value: k.txt_value(),
                    zone_line,
                });
            }
        }
    }
}

/// `v=spf1 ip4:A ip6:B -all` for known egress addresses, else the `a mx` fallback.
fn spf_value(egress: &[IpAddr]) -> String {
    if egress.is_empty() {
        return "v=spf1 a mx ~all".into();
    }
    let terms: Vec<String> = egress
        .iter()
        .map(|ip| {
            if ip.is_ipv4() {
                format!("ip4:{ip}")
            } else {
                format!("ip6:{ip}")
            }
        })
        .collect();
    format!("v=spf1 {} -all", terms.join(" "))
}

fn txt(kind: Kind, name: &str, value: &str) -> Wanted {
    Wanted {
        kind,
        name: name.to_string(),
        value: value.to_string(),
        zone_line: format!("{name}. IN TXT \"{value}\""),
    }
}

/// The zone-file text of print mode.
fn render(plan: &Plan) -> String {
    let mut out = String::from("; DNS records for rebound (rebound dns --check verifies them)\n");
    for n in &plan.notes {
        out.push_str(&format!("{n}\n"));
    }
    for r in &plan.records {
        let comment = if r.kind == Kind::Spf && plan.egress.is_empty() {
            " ; replace with your egress addresses"
        } else {
            ""
        };
        out.push_str(&format!("{}{comment}\n", r.zone_line));
    }
    let addrs = if plan.egress.is_empty() {
        "the egress address".to_string()
    } else {
        join(&plan.egress)
    };
    out.push_str(&format!(
        "; PTR: {addrs} should reverse-resolve to {}.\n",
        plan.hostname
    ));
    out
}

fn join(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves every record and prints a ✓/✗ line each; `Ok(false)` when a required one fails.
fn check_all(cfg: &Config, plan: &Plan) -> Result<bool, DnsCmdError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DnsCmdError::Resolver(e.to_string()))?;
    rt.block_on(async {
        let resolver = resolver(&cfg.delivery.nameservers)?;
        let mut ok = true;
        for r in &plan.records {
            let verdict = check_one(&resolver, r, &plan.egress).await;
            ok &= verdict.is_ok() || !r.kind.required();
            print_verdict(r.kind.label(), &r.name, r.kind.required(), &verdict);
        }
        check_ptr(&resolver, plan).await;
        Ok(ok)
    })
}

fn print_verdict(label: &str, name: &str, required: bool, verdict: &Result<String, String>) {
    let advisory = if required { "" } else { " (advisory)" };
    match verdict {
        Ok(note) if note.is_empty() => println!("✓ {label} {name}"),
        Ok(note) => println!("✓ {label} {name}: {note}"),
        Err(found) => println!("✗ {label} {name}{advisory}: {found}"),
    }
}

/// The system resolver, or `nameservers` (UDP and TCP) when set — as delivery resolves.
fn resolver(nameservers: &[std::net::SocketAddr]) -> Result<TokioResolver, DnsCmdError> {
    crate::delivery::outbound::resolver(nameservers, LOOKUP_TIMEOUT)
        .map_err(|e| DnsCmdError::Resolver(e.to_string()))
}

/// `Ok(note)` when the published record does the job, `Err(what was found)` otherwise.
async fn check_one(
    resolver: &TokioResolver,
    r: &Wanted,
    egress: &[IpAddr],
) -> Result<String, String> {
    if r.kind == Kind::Mx {
        let found = mx_hosts(resolver, &r.name).await?;
        return if found.contains(&r.value) {
            Ok(String::new())
        } else {
            Err(format!("found MX {}, want {}", found.join(", "), r.value))
        };
    }
    let found = crate::delivery::outbound::dkim::rotation::txt_values(resolver, &r.name).await?;
    match r.kind {
        Kind::Dkim | Kind::DkimOld => dkim_verdict(&r.value, &found),
        Kind::Spf => spf_verdict(&r.value, &found, egress),
        _ => dmarc_verdict(&found),
    }
}

async fn mx_hosts(resolver: &TokioResolver, name: &str) -> Result<Vec<String>, String> {
    let lookup = resolver
        .mx_lookup(format!("{name}."))
        .await
        .map_err(lookup_error)?;
    let hosts: Vec<String> = lookup
        .answers()
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::MX(m) => Some(normalise_domain(
                m.exchange.to_ascii().trim_end_matches('.'),
            )),
            _ => None,
        })
        .collect();
    if hosts.is_empty() {
        Err("no MX record found".into())
    } else {
        Ok(hosts)
    }
}

fn lookup_error(e: hickory_resolver::net::NetError) -> String {
    if e.is_nx_domain() {
        "nothing found (NXDOMAIN)".into()
    } else if e.is_no_records_found() {
        "nothing found".into()
    } else {
        format!("lookup failed: {e}")
    }
}

/// The `tag=value` pairs of a DKIM or DMARC record, whitespace removed.
fn tags(value: &str) -> BTreeMap<String, String> {
    value
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_lowercase(),
                v.chars().filter(|c| !c.is_whitespace()).collect(),
            )
        })
        .collect()
}

/// The key record matches when its `k=` (default rsa) and `p=` equal ours.
fn dkim_verdict(want: &str, found: &[String]) -> Result<String, String> {
    let w = tags(want);
    let same = |v: &String| {
        let f = tags(v);
        f.get("p") == w.get("p")
            && f.get("k").map_or("rsa", String::as_str) == w.get("k").map_or("rsa", String::as_str)
    };
    if found.iter().any(same) {
        Ok(String::new())
    } else {
        Err(format!("another key: found {}", quoted(found)))
    }
}

/// Exactly one SPF record, and it lists every known egress address (or equals the suggestion).
fn spf_verdict(want: &str, found: &[String], egress: &[IpAddr]) -> Result<String, String> {
    let spf: Vec<&String> = found
        .iter()
        .filter(|v| v.to_ascii_lowercase().starts_with("v=spf1"))
        .collect();
    let [record] = spf.as_slice() else {
        return Err(if spf.is_empty() {
            format!("no SPF record (found {})", quoted(found))
        } else {
            format!("{} SPF records (RFC 7208 allows one)", spf.len())
        });
    };
    if record.split_whitespace().eq(want.split_whitespace()) {
        return Ok(String::new());
    }
    if egress.is_empty() {
        return Ok(format!(
            "found \"{record}\" (give --egress to check its addresses)"
        ));
    }
    let terms: Vec<String> = record
        .split_whitespace()
        .map(|t| t.trim_start_matches('+').to_ascii_lowercase())
        .collect();
    let missing: Vec<String> = egress
        .iter()
        .map(|ip| ip.to_string())
        .filter(|ip| {
            !terms
                .iter()
                .any(|t| t.strip_prefix("ip4:").or(t.strip_prefix("ip6:")) == Some(ip))
        })
        .collect();
    if missing.is_empty() {
        Ok(format!("found \"{record}\""))
    } else {
        Err(format!(
            "found \"{record}\", which does not list {}",
            missing.join(", ")
        ))
    }
}

fn dmarc_verdict(found: &[String]) -> Result<String, String> {
    match found.iter().find(|v| {
        tags(v)
            .get("v")
            .is_some_and(|x| x.eq_ignore_ascii_case("DMARC1"))
    }) {
        Some(v) => Ok(format!("found \"{v}\"")),
        None => Err(format!("no DMARC record (found {})", quoted(found))),
    }
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Advisory: each egress address's PTR names the server hostname.
async fn check_ptr(resolver: &TokioResolver, plan: &Plan) {
    if plan.egress.is_empty() {
        println!(
            "- PTR: not checked (give --egress ADDR); the egress address should reverse-resolve to {}",
            plan.hostname
        );
    }
    for ip in &plan.egress {
        let verdict = match ptr_names(resolver, *ip).await {
            Ok(names) if names.contains(&plan.hostname) => Ok(String::new()),
            Ok(names) => Err(format!(
                "found {}, want {}",
                names.join(", "),
                plan.hostname
            )),
            Err(e) => Err(e),
        };
        print_verdict("PTR", &ip.to_string(), false, &verdict);
    }
}

async fn ptr_names(resolver: &TokioResolver, ip: IpAddr) -> Result<Vec<String>, String> {
    let lookup = resolver.reverse_lookup(ip).await.map_err(lookup_error)?;
    let names = lookup.answers().iter().filter_map(|r| match &r.data {
        RData::PTR(p) => Some(normalise_domain(p.0.to_ascii().trim_end_matches('.'))),
        _ => None,
    });
    Ok(names.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spf_lists_egress_or_falls_back() {
        assert_eq!(spf_value(&[]), "v=spf1 a mx ~all");
        let ips = ["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        assert_eq!(spf_value(&ips), "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all");
        let found = vec!["v=spf1 include:x.test ip4:192.0.2.1 ip6:2001:db8::1 ~all".to_string()];
        assert!(spf_verdict(&spf_value(&ips), &found, &ips).is_ok());
        assert!(spf_verdict(&spf_value(&ips), &found, &ips[..1]).is_ok());
        let other = vec!["v=spf1 ip4:198.51.100.7 -all".to_string()];
        assert!(
            spf_verdict(&spf_value(&ips), &other, &ips)
                .unwrap_err()
                .contains("192.0.2.1")
        );
        let two = vec!["v=spf1 a -all".to_string(), "v=spf1 mx -all".to_string()];
        assert!(spf_verdict("v=spf1 a mx ~all", &two, &[]).is_err());
    }

    #[test]
    fn dkim_compares_the_key_not_the_spacing() {
        let want = "v=DKIM1; k=ed25519; p=AAAA";
        assert!(dkim_verdict(want, &["v=DKIM1;k=ed25519;p=AA AA".into()]).is_ok());
        assert!(dkim_verdict(want, &["v=DKIM1; k=rsa; p=AAAA".into()]).is_err());
        assert!(dkim_verdict("v=DKIM1; k=rsa; p=B", &["v=DKIM1; p=B".into()]).is_ok());
    }
}
