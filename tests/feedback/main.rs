//! What comes back: returned reports (DSNs, ARF complaints) parsed from fixtures and
//! applied to the whole daemon (forged, replayed and co-recipient reports change nothing),
//! unsubscribes, suppression while queued, DSNs rebound sends to the app, and webhooks.
//! `cargo test --test feedback`; one test: `cargo test --test feedback bounces::a_co_recipient_cannot_report_for_another`.

#[path = "../support/mod.rs"]
mod support;

mod bounce_fixtures;
mod bounces;
mod notify;
mod suppression;
mod unsubscribe;
mod webhooks;
