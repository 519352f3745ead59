//! Outbound mail: the outbound client against scripted MX hosts (replies per recipient,
//! pipelining, STARTTLS, hostile servers, MX lookup, shaping, MTA-STS), DKIM signing and key
//! rotation, `rebound dns`, and the whole daemon's delivery lifecycle, restart and real
//! Postfix and Exim as next hops.
//! `cargo test --test delivery`; one test: `cargo test --test delivery outbound_mx::null_mx_is_permanent_556`.

#[path = "../support/mod.rs"]
mod support;

mod dkim;
mod dkim_rotate;
mod dns_command;
mod lifecycle;
mod mta_sts;
mod outbound;
mod outbound_hostile;
mod outbound_mx;
mod real_mta;
mod restart;
mod shaping;
