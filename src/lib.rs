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

// No unsafe code but the few libc calls, each in a function marked
// `#[allow(unsafe_code)]`, each unsafe block with its own `// SAFETY:` comment.
#![deny(unsafe_code)]
#![deny(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]
// No bare `unwrap()` outside tests: handle the error, or say with `expect` why it cannot
// happen.
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

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

    /// Most lines a function outside tests may take after `cargo fmt`, from its `fn` line to
    /// its closing brace.
    const MAX_FN_LINES: usize = 60;

    /// `text` with its comments, string literals and char literals turned into spaces
    /// (newlines kept, so line numbers stay), so braces and words inside them do not count.
    fn code_only(text: &str) -> String {
        let c: Vec<char> = text.chars().collect();
        let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
        let mut out = String::with_capacity(text.len());
        let blank = |out: &mut String, span: &[char]| {
            out.extend(span.iter().map(|&ch| if ch == '\n' { '\n' } else { ' ' }));
        };
        let mut i = 0;
        while i < c.len() {
            let start = i;
            let before = if i == 0 { ' ' } else { c[i - 1] };
            if c[i] == '/' && c.get(i + 1) == Some(&'/') {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            } else if c[i] == 'r'
                && (!ident(before) || (before == 'b' && (i < 2 || !ident(c[i - 2]))))
                && matches!(c.get(i + 1), Some('"' | '#'))
            {
                // r"..." or r#"..."#: ends at a quote followed by as many hashes.
                let hashes = c[i + 1..].iter().take_while(|&&ch| ch == '#').count();
                if c.get(i + 1 + hashes) != Some(&'"') {
                    out.push(c[i]);
                    i += 1;
                    continue;
                }
                i += hashes + 2;
                while i < c.len() {
                    if c[i] == '"'
                        && c[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == '#')
                            .count()
                            == hashes
                    {
                        i += 1 + hashes;
                        break;
                    }
                    i += 1;
                }
            } else if c[i] == '"' {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            } else if c[i] == '\'' && c.get(i + 1) == Some(&'\\') {
                // '\n', '\'', '\u{7d}': the quote, the backslash and the escaped character.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                out.push(c[i]);
                i += 1;
                continue;
            }
            blank(&mut out, &c[start..i.min(c.len())]);
        }
        out
    }

    /// The index of the `}` closing the `{` at `open` (the end of `code` when unbalanced).
    fn closing_brace(code: &[u8], open: usize) -> usize {
        let mut depth = 0usize;
        for (at, &b) in code.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return at;
                    }
                }
                _ => {}
            }
        }
        code.len()
    }

    /// The first `{` or `;` after `from` outside parentheses and brackets: `Some` index of
    /// the `{` that opens an item's body, `None` when the item ends at a `;` first.
    fn body_start(code: &[u8], from: usize) -> Option<usize> {
        let mut depth = 0i32;
        for (at, &b) in code.iter().enumerate().skip(from) {
            match b {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b';' if depth == 0 => return None,
                b'{' if depth == 0 => return Some(at),
                _ => {}
            }
        }
        None
    }

    /// The byte ranges of `code` that only tests compile: the item after each `#[cfg(test)]`
    /// or `#[test]`, and every `mod tests { ... }`.
    fn test_regions(code: &str) -> Vec<(usize, usize)> {
        let bytes = code.as_bytes();
        let mut regions = Vec::new();
        for marker in ["#[cfg(test)]", "#[test]", "mod tests {"] {
            for (at, _) in code.match_indices(marker) {
                // From the `{` of `mod tests {`, from after the `]` of an attribute.
                let from = at + marker.trim_end_matches('{').len();
                if let Some(open) = body_start(bytes, from) {
                    regions.push((at, closing_brace(bytes, open)));
                }
            }
        }
        regions
    }

    /// Every function of `text` outside test code: (name, line of `fn`, lines long).
    fn functions(text: &str) -> Vec<(String, usize, usize)> {
        let code = code_only(text);
        let bytes = code.as_bytes();
        let tests = test_regions(&code);
        let line_of = |at: usize| code[..at].matches('\n').count() + 1;
        let mut out = Vec::new();
        for (at, _) in code.match_indices("fn ") {
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            if tests.iter().any(|&(lo, hi)| (lo..=hi).contains(&at)) {
                continue;
            }
            let name: String = code[at + 3..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                continue;
            }
            if let Some(open) = body_start(bytes, at) {
                let close = closing_brace(bytes, open);
                out.push((name, line_of(at), line_of(close) - line_of(at) + 1));
            }
        }
        out
    }

    /// Files only tests compile: those a `#[cfg(test)] mod NAME;` declares.
    fn test_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        for f in files {
            let code = code_only(&std::fs::read_to_string(f).unwrap());
            let dir = match f.file_stem().and_then(|s| s.to_str()) {
                Some("mod" | "lib" | "main") => f.parent().unwrap().to_path_buf(),
                _ => f.with_extension(""),
            };
            for (at, _) in code.match_indices("#[cfg(test)]") {
                let rest = code[at + "#[cfg(test)]".len()..].trim_start();
                let rest = rest.strip_prefix("pub(crate) ").unwrap_or(rest);
                let Some(decl) = rest.strip_prefix("mod ") else {
                    continue;
                };
                let name: String = decl
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if decl[name.len()..].trim_start().starts_with(';') {
                    out.insert(dir.join(format!("{name}.rs")));
                    out.insert(dir.join(&name).join("mod.rs"));
                }
            }
        }
        out
    }

    /// Every function outside tests over [`MAX_FN_LINES`], as (`file::name`, `file:line`, lines).
    fn long_functions() -> Vec<(String, String, usize)> {
        let mut files = Vec::new();
        rust_files(&src(), &mut files);
        files.sort();
        let skip = test_files(&files);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut long = Vec::new();
        for f in files.iter().filter(|f| !skip.contains(*f)) {
            let rel = f.strip_prefix(root).unwrap().display().to_string();
            for (name, line, len) in functions(&std::fs::read_to_string(f).unwrap()) {
                if len > MAX_FN_LINES {
                    long.push((format!("{rel}::{name}"), format!("{rel}:{line}"), len));
                }
            }
        }
        long
    }

    #[test]
    fn the_function_scanner_reads_past_strings_chars_comments_and_tests() {
        let text = r##"
fn counted<'a>(x: &'a str) -> [u8; 2] {
    let _ = ("}", '}', '\'', b'{', r#"}"#, '\u{7d}');
    // }
    /* } /* } */ } */
    [0; 2]
}
trait T { fn declared(&self); }
#[cfg(test)]
mod tests {
    fn hidden() {}
}
"##;
        let found = functions(text);
        assert_eq!(
            found,
            vec![("counted".to_string(), 2, 6)],
            "{}",
            code_only(text)
        );
        let start = functions(&std::fs::read_to_string(src().join("daemon/mod.rs")).unwrap());
        assert!(
            start
                .iter()
                .any(|(name, _, len)| name == "start" && *len > 10),
            "the scanner does not find daemon::start: {start:?}"
        );
        let mut files = Vec::new();
        rust_files(&src(), &mut files);
        assert!(test_files(&files).contains(&src().join("admin/tests.rs")));
    }

    #[test]
    fn no_function_outside_tests_is_over_sixty_lines() {
        let long = long_functions();
        let too_long: Vec<String> = long
            .iter()
            .map(|(id, at, len)| {
                let name = id.rsplit("::").next().unwrap();
                format!("{at} fn {name}: {len} lines")
            })
            .collect();
        assert!(
            too_long.is_empty(),
            "functions over {MAX_FN_LINES} lines (split them into named steps):\n{}",
            too_long.join("\n")
        );
    }
}
