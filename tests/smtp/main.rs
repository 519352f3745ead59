//! The SMTP listener alone (an in-memory intake behind a real `SmtpServer` on loopback):
//! the session and its replies, DATA and BDAT, limits and timeouts, STARTTLS and AUTH, and
//! clients nobody here wrote (Python's smtplib, swaks).
//! `cargo test --test smtp`; one test: `cargo test --test smtp session::early_talker_is_refused`.

#[path = "../support/mod.rs"]
mod support;

mod clients;
mod data;
mod limits;
mod session;
mod tls;
