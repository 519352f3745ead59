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
