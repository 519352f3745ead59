//! rebound: a mail relay that knows what became of every recipient.
//!
//! # The stages, in data-flow order
//!
//! ```text
//! app ─SMTP─► inbound ─► records::enqueue ─► store (sled, group commit) ─► 250
//!                                               │
//!             delivery::scheduler (due index) ◄─┘
//!                  │
//!                  ▼
//!             delivery::outbound (route / MX, MTA-STS, STARTTLS, DKIM, shaping) ─► a Reply per recipient
//!                  │
//!                  ▼
//!             classify ─► records::disposition ─► status, event, suppression, webhook outbox
//!
//! remote MTA ─DSN/ARF─► inbound ─► feedback::returned: bounce (parse) + verp (signed tag?)
//!                                     ├─ tied to a recipient ─► records::disposition (report_effect)
//!                                     └─ not tied ─► daemon::state::record_unverified (security log)
//! operator ─► cli ─HTTP─► api (JSON, console) ─► admin ─► store / records
//! ```
//!
//! Every module, by stage:
//!
//! - [`model`]: the product's words ([`model::Status`], [`model::Class`], [`model::Reason`],
//!   [`model::Event`], [`model::Reply`]) and its primitives: [`model::time`] (timestamps,
//!   durations, the injectable [`model::time::Clock`]), [`model::address`],
//!   [`model::dsn_request`] (RFC 3461 NOTIFY/RET), [`model::headers`],
//!   [`model::constant_time`].
//! - [`config`]: the typed configuration, its defaults and checks; [`config::users`] (console users).
//! - [`store`]: sled trees, group commit ([`store::Committer`]), storage health, the queue
//!   record, the event log, the current-status index, the security log, the MTA-STS cache.
//! - [`daemon`]: `rebound serve` ([`daemon::serve`], [`daemon::start`]) and the shared state
//!   every task holds ([`daemon::state::Daemon`]: config, store, committer, clock, VERP signer,
//!   wake-ups, counters).
//! - [`inbound`]: the SMTP listener ([`inbound::session`], [`inbound::commands`],
//!   [`inbound::data`], [`inbound::auth`], [`inbound::tls`], [`inbound::anvil`],
//!   [`inbound::body`]); what a session asks of the queue ([`inbound::intake`]) and its
//!   implementation over the store ([`inbound::accept`]).
//! - [`delivery`]: [`delivery::scheduler`], the retry plan ([`delivery::retry`]), the SMTP
//!   client and everything on the way out ([`delivery::outbound`]), and the DSNs rebound sends
//!   to original senders ([`delivery::sender_dsn`]).
//! - [`classify`]: pure: an SMTP reply to a class and reason (the rules table,
//!   [`classify::enhanced_codes`]).
//! - [`bounce`]: pure: a returned message (DSN, NDR, ARF, auto-reply) to a report.
//! - [`feedback`]: [`feedback::returned`] (ties a report to a recipient, never on a
//!   Message-ID alone), [`feedback::verp`] (signed envelope senders and report tokens),
//!   [`feedback::unsubscribe`] (RFC 8058 one-click and mailto).
//! - [`records`]: the one writer of outcomes ([`records::disposition`]), new messages into
//!   the queue ([`records::enqueue`]), the webhook sender ([`records::webhooks`] over
//!   [`records::http_client`]), [`records::metrics`], [`records::retention`].
//! - [`admin`]: the operations behind the CLI, API and console (queue, reports, resend,
//!   suppressions, export/import, purge).
//! - [`api`]: the admin listener: the JSON API, `POST /v1/ingest` and `/metrics`, and the
//!   web console under `/ui/` ([`api::console`]).
//! - [`cli`]: the `rebound` command line (a client of the API, plus `serve`, `check-config`,
//!   `dns`, `dkim`, `ingest`).
//!
//! # One message, from `250` to `delivered` or `bounced`
//!
//! 1. [`inbound::session`] reads the envelope; at the end of DATA/BDAT `inbound::data`
//!    hands a [`inbound::intake::Submission`] to [`inbound::intake::Intake::submit`].
//! 2. [`inbound::accept::QueueIntake`] splits the recipients (suppressed ones are `dropped`)
//!    and [`records::enqueue::queue_message`] writes the record, its `queued` events and its
//!    schedule entry into one write set (after
//!    [`records::enqueue::complete_headers`] added Message-ID and Date when missing).
//! 3. [`store::Committer::commit`] waits for the group commit's fsync; only then does
//!    the session answer `250`.
//! 4. [`delivery::scheduler::run`] takes the message from the due index and runs one attempt:
//!    recipients grouped by domain go to `Deliverer::deliver` in [`delivery::outbound`],
//!    which resolves the route or MX, checks MTA-STS, waits on the destination's shaping
//!    gate, opens a connection (STARTTLS), DKIM-signs the copy and returns one
//!    [`model::Reply`] per recipient.
//! 5. [`records::disposition::apply_attempt`] turns each reply, through
//!    [`records::disposition::decide`] and [`classify::classify_reply`], into a status
//!    (`delivered`, `deferred` with the next due time from [`delivery::retry`], `bounced`,
//!    `failed`), an event, a suppression for a hard failure, and a webhook in the outbox, all
//!    in one write set, committed before anything else happens. A recipient deferred past
//!    `delivery.max_age` is `expired` ([`records::disposition::expire_pending`]).
//! 6. [`delivery::sender_dsn::maybe_notify`] queues a DSN to the original sender when
//!    `bounces.notify_sender` and its NOTIFY ask for one; [`records::webhooks::run`] posts the
//!    outbox.
//!
//! # One returned report, to a suppression
//!
//! 1. A DSN arrives at the bounce domain (SMTP, `rebound ingest` or `POST /v1/ingest`);
//!    [`inbound::accept::QueueIntake`] sends it to [`feedback::returned::ingest`].
//! 2. [`bounce::parse`] reads it into a report: per recipient a class, reason, status code
//!    and action.
//! 3. `feedback::returned` looks for a signed VERP tag in the envelope recipient or a signed
//!    report token ([`feedback::verp`]) naming the queue id and recipient; without one the
//!    report goes to the security log ([`daemon::state::record_unverified`]) and changes
//!    nothing.
//! 4. With one, [`records::disposition::report_effect`] and
//!    [`records::disposition::apply_effect`] set the recipient's status (a final `failed`
//!    report turns `delivered` into `bounced`) and [`records::disposition::suppress`] adds
//!    the address to the suppression list for a hard bounce or a complaint, in one write
//!    set; the next message to it is `dropped`.

pub mod admin;
pub mod api;
pub mod bounce;
pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod feedback;
pub mod inbound;
pub mod model;
pub mod records;
pub mod store;

/// The layout the crate docs promise, checked on the source tree itself.
#[cfg(test)]
mod layout_tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// `delivery/outbound/mod.rs` -> `delivery::outbound`; test files are left out.
    fn module_of(file: &Path) -> Option<String> {
        let rel = file.strip_prefix(src()).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        (parts.last().map(String::as_str) != Some("tests")).then(|| parts.join("::"))
    }

    /// The modules a file's code (not its comments, not its test module) names.
    fn imports(text: &str, me: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let parent = me.rsplit_once("::").map_or("", |(p, _)| p);
        let mut out = BTreeSet::new();
        for (prefix, base) in [("crate::", String::new()), ("super::", parent.to_string())] {
            for (at, _) in code.match_indices(prefix) {
                if prefix == "crate::"
                    && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                {
                    continue;
                }
                let rest: String = code[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut path: Vec<&str> = rest.split("::").filter(|s| !s.is_empty()).collect();
                while !path.is_empty() {
                    let candidate = if base.is_empty() {
                        path.join("::")
                    } else {
                        format!("{base}::{}", path.join("::"))
                    };
                    if known.contains(&candidate) {
                        if candidate != me && !me.starts_with(&format!("{candidate}::")) {
                            out.insert(candidate);
                        }
                        break;
                    }
                    path.pop();
                }
            }
        }
        out
    }

    #[test]
    fn at_most_fifteen_entries_at_the_top_of_src() {
        let n = std::fs::read_dir(src()).unwrap().count();
        assert!(n <= 15, "src/ has {n} entries");
    }

    #[test]
    fn every_file_says_what_it_holds_and_cites_only_files_in_the_repository() {
        let mut files = Vec::new();
        rust_files(&src(), &mut files);
        assert!(files.len() > 50, "{} files", files.len());
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(
                text.starts_with("//!"),
                "{} does not open with a //! comment",
                f.display()
            );
            assert!(
                !text.contains(concat!("SPEC ", "§")),
                "{} cites a SPEC section (point at the README)",
                f.display()
            );
        }
    }

    #[test]
    fn no_import_cycle_between_files() {
        let mut files = Vec::new();
        rust_files(&src(), &mut files);
        let mods: BTreeMap<String, PathBuf> = files
            .iter()
            .filter_map(|f| Some((module_of(f)?, f.clone())))
            .collect();
        let known: BTreeSet<String> = mods.keys().cloned().collect();
        let graph: BTreeMap<&str, BTreeSet<String>> = mods
            .iter()
            .map(|(m, f)| {
                (
                    m.as_str(),
                    imports(&std::fs::read_to_string(f).unwrap(), m, &known),
                )
            })
            .collect();
        assert!(
            graph["inbound::accept"].contains("records::enqueue"),
            "the import reader finds nothing"
        );
        // Depth-first search; a module met again while still on the path closes a cycle.
        fn visit<'a>(
            m: &'a str,
            g: &'a BTreeMap<&str, BTreeSet<String>>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) {
            if done.contains(m) {
                return;
            }
            if let Some(at) = path.iter().position(|p| *p == m) {
                panic!("import cycle: {} -> {m}", path[at..].join(" -> "));
            }
            path.push(m);
            for d in g.get(m).into_iter().flatten() {
                visit(d, g, path, done);
            }
            path.pop();
            done.insert(m);
        }
        let mut done = BTreeSet::new();
        for m in graph.keys() {
            visit(m, &graph, &mut Vec::new(), &mut done);
        }
    }
}
