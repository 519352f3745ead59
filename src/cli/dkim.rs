//! `rebound dkim rotate DOMAIN` and `rebound dkim status [DOMAIN...]` (README "Sending to Gmail and Outlook"): key
//! rotation without a failed signature. `rotate` creates the next selector's keys
//! (`KEY_DIR/DOMAIN/SELECTOR.{rsa,ed25519}.key`, 0600), records the pending rotation in
//! `KEY_DIR/DOMAIN/rotation.json` and prints the records to publish; the running daemon
//! keeps signing with the current selector until every new record resolves through its
//! resolver, then switches (see `outbound::dkim::rotation`). `status` prints where each
//! domain stands, resolving its records, and lists replaced selectors whose records may
//! be removed once `dkim.rotation_grace` has passed. Offline: no daemon needed.

use clap::Subcommand;

use crate::config::Config;
use crate::delivery::outbound::dkim::rotation::{self, RotationState};
use crate::delivery::outbound::dkim::{DkimError, Published, Signer, keys};
use crate::model::address::normalise_domain;
use crate::model::time::{Timestamp, format_duration};

#[derive(Debug, Subcommand)]
pub enum DkimCmd {
    /// Create the next selector's keys (rb1 -> rb2) and print its DNS records. The daemon
    /// keeps signing with the current selector until the new records resolve, then switches.
    /// Run it as the user `serve` runs as (the keys are private to it).
    Rotate {
        /// A domain of dkim.domains.
        domain: String,
    },
    /// Each domain's selector in use, a pending rotation (are its records visible yet?),
    /// and replaced selectors whose records may be removed.
    Status {
        /// Domains of dkim.domains (default: all).
        #[arg(value_name = "DOMAIN")]
        domains: Vec<String>,
    },
}

/// Runs a `rebound dkim` command; returns the exit code.
pub fn run(cfg: &Config, cmd: DkimCmd) -> i32 {
    let res = match cmd {
        DkimCmd::Rotate { domain } => rotate(cfg, &domain),
        DkimCmd::Status { domains } => status(cfg, &domains),
    };
    res.unwrap_or_else(|(code, e)| {
        eprintln!("rebound: {e}");
        code
    })
}

type CmdResult = Result<i32, (i32, String)>;

fn usage(e: impl std::fmt::Display) -> (i32, String) {
    (2, e.to_string())
}

fn failed(e: impl std::fmt::Display) -> (i32, String) {
    (1, e.to_string())
}

/// The normalised `domain` when `dkim.domains` lists it.
fn listed(cfg: &Config, domain: &str) -> Result<String, (i32, String)> {
    if cfg.dkim.domains.is_empty() {
        return Err(usage("DKIM signing is off: dkim.domains is empty"));
    }
    let d = normalise_domain(domain.trim_end_matches('.'));
    if !cfg
        .dkim
        .domains
        .iter()
        .any(|x| normalise_domain(x.trim_end_matches('.')) == d)
    {
        return Err(usage(format!(
            "{d} is not in dkim.domains ({})",
            cfg.dkim.domains.join(", ")
        )));
    }
    Ok(d)
}

/// The records of `selector`'s keys for every configured algorithm, created when absent.
fn records_of(cfg: &Config, domain: &str, selector: &str) -> Result<Vec<Published>, DkimError> {
    let dir = cfg.dkim.key_dir(&cfg.server.data_dir);
    let mut out = Vec::new();
    for &alg in &cfg.dkim.algorithms {
        let loaded =
            keys::load_or_create(&dir, domain, selector, alg).map_err(|source| DkimError::Key {
                domain: domain.to_string(),
                source,
            })?;
        let dns = alg.dns_selector(selector);
        out.push(Published {
            name: format!("{dns}._domainkey.{domain}"),
            value: loaded.txt_value(),
            zone_line: loaded.zone_line(&dns, domain),
            key_file: loaded.path.clone(),
            selector: selector.to_string(),
            algorithm: alg,
        });
    }
    Ok(out)
}

fn rotate(cfg: &Config, domain: &str) -> CmdResult {
    let domain = listed(cfg, domain)?;
    let dir = cfg.dkim.key_dir(&cfg.server.data_dir);
    let _lock = rotation::lock(&dir, &domain).map_err(failed)?;
    let state = RotationState::effective(
        rotation::load(&dir, &domain).map_err(failed)?,
        &cfg.dkim.selector,
    );
    let every = format_duration(cfg.dkim.rotation_check.0);
    if let Some(p) = &state.pending {
        let records = records_of(cfg, &domain, &p.selector).map_err(failed)?;
        println!(
            "; {domain}: the rotation {} -> {} is already pending (since {}); publish these records,",
            state.current, p.selector, p.since
        );
        println!(
            "; signing switches once they resolve (checked every {every}). `rebound dkim status {domain}` shows where it stands."
        );
        records.iter().for_each(|r| println!("{}", r.zone_line));
        return Ok(0);
    }
    records_of(cfg, &domain, &state.current).map_err(failed)?; // the current keys exist before the next ones
    let next = state.begin(Timestamp::now());
    let Some(selector) = next.pending.as_ref().map(|p| p.selector.clone()) else {
        return Err(failed("no selector to rotate to"));
    };
    let records = records_of(cfg, &domain, &selector).map_err(failed)?;
    rotation::save(&dir, &domain, &next).map_err(|e| {
        failed(format!(
            "{e}; nothing changed: {domain} is still signed with {}",
            state.current
        ))
    })?;
    println!(
        "; {domain}: DKIM rotation {} -> {selector}. Publish these records; rebound keeps signing with",
        state.current
    );
    println!(
        "; {} until every one resolves through its resolver (checked every {every}), then switches.",
        state.current
    );
    println!(
        "; `rebound dkim status {domain}` shows where it stands. Keys: {}",
        records
            .iter()
            .map(|r| r.key_file.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    records.iter().for_each(|r| println!("{}", r.zone_line));
    Ok(0)
}

/// `rebound dkim status`: per domain the selector signing, its records resolved, a
/// pending rotation and the replaced selectors.
fn status(cfg: &Config, domains: &[String]) -> CmdResult {
    let wanted = status_domains(cfg, domains)?;
    let signer = Signer::from_config(cfg)
        .map_err(failed)?
        .ok_or_else(|| usage("DKIM signing is off: dkim.domains is empty"))?;
    let lookups = Lookups::new(cfg)?;
    let now = Timestamp::now();
    for domain in wanted.iter().filter(|d| signer.domains().contains(d)) {
        let Some(state) = signer.state(domain) else {
            continue;
        };
        let since = state
            .retired
            .last()
            .map(|r| format!(" since {}", r.switched))
            .unwrap_or_default();
        println!("{domain}: signing with selector {}{since}", state.current);
        let current: Vec<Published> = signer
            .records()
            .into_iter()
            .filter(|r| r.name.ends_with(&format!("._domainkey.{domain}")))
            .collect();
        lookups.print_checks(&current, "current");
        if let Some(p) = &state.pending {
            print_pending(cfg, &signer, &lookups, domain, p);
        }
        for r in &state.retired {
            print_retired(cfg, domain, r, now);
        }
    }
    Ok(0)
}

/// The domains `dkim status` reports on: those named (each must be in `dkim.domains`),
/// else all of `dkim.domains`.
fn status_domains(cfg: &Config, domains: &[String]) -> Result<Vec<String>, (i32, String)> {
    if domains.is_empty() {
        Ok(cfg
            .dkim
            .domains
            .iter()
            .map(|d| normalise_domain(d.trim_end_matches('.')))
            .collect())
    } else {
        domains.iter().map(|d| listed(cfg, d)).collect()
    }
}

/// The DNS lookups of `dkim status`, on a runtime of their own; without a resolver each
/// record is printed as not checked.
struct Lookups {
    /// Declared first, so it is dropped before the runtime it was made on.
    resolver: Option<hickory_resolver::TokioResolver>,
    rt: tokio::runtime::Runtime,
}

impl Lookups {
    fn new(cfg: &Config) -> Result<Lookups, (i32, String)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(failed)?;
        let resolver = rt.block_on(async {
            crate::delivery::outbound::resolver(
                &cfg.delivery.nameservers,
                cfg.delivery.command_timeout.0,
            )
            .ok()
        });
        Ok(Lookups { resolver, rt })
    }

    fn print_checks(&self, records: &[Published], what: &str) {
        self.rt
            .block_on(print_checks(self.resolver.as_ref(), records, what));
    }
}

/// A pending rotation: since when, whether its records resolve yet, and what to publish.
fn print_pending(
    cfg: &Config,
    signer: &Signer,
    lookups: &Lookups,
    domain: &str,
    p: &rotation::Pending,
) {
    let every = format_duration(cfg.dkim.rotation_check.0);
    println!(
        "{domain}: rotation to {} pending since {}; signing switches once every record below resolves (checked every {every})",
        p.selector, p.since
    );
    let pending: Vec<Published> = signer
        .pending_records()
        .into_iter()
        .filter(|r| r.selector == p.selector && r.name.ends_with(&format!("._domainkey.{domain}")))
        .collect();
    lookups.print_checks(&pending, "pending");
    pending
        .iter()
        .for_each(|r| println!("    publish: {}", r.zone_line));
}

/// A replaced selector: its records, to keep until the grace period ends or to remove after.
fn print_retired(cfg: &Config, domain: &str, r: &rotation::Retired, now: Timestamp) {
    let until = RotationState::retire_after(r, cfg.dkim.rotation_grace.0);
    let lines = retired_lines(cfg, domain, &r.selector);
    if now >= until {
        println!(
            "{domain}: {} replaced {}, retire-able since {until}; you may remove:",
            r.selector, r.switched
        );
    } else {
        println!(
            "{domain}: {} replaced {}; keep its records until {until} (mail signed before the switch may still be in transit):",
            r.selector, r.switched
        );
    }
    lines.iter().for_each(|l| println!("    {l}"));
}

/// The zone lines of a replaced selector's keys still on disk (the name alone when a key file is gone).
pub fn retired_lines(cfg: &Config, domain: &str, selector: &str) -> Vec<String> {
    let dir = cfg.dkim.key_dir(&cfg.server.data_dir);
    cfg.dkim
        .algorithms
        .iter()
        .map(|&alg| {
            let dns = alg.dns_selector(selector);
            match keys::load_existing(&dir, domain, selector, alg) {
                Ok(Some(k)) => k.zone_line(&dns, domain),
                _ => format!("{dns}._domainkey.{domain}. IN TXT ... ; key file gone"),
            }
        })
        .collect()
}

async fn print_checks(
    resolver: Option<&hickory_resolver::TokioResolver>,
    records: &[Published],
    what: &str,
) {
    for r in records {
        match resolver {
            None => println!("  ? {} ({what}): not checked (no DNS resolver)", r.name),
            Some(res) => match rotation::verify_published(res, r).await {
                Ok(()) => println!("  ✓ {} ({what})", r.name),
                Err(found) => println!("  ✗ {} ({what}): {found}", r.name),
            },
        }
    }
}
