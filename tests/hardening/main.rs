//! The whole daemon under stress and attack: kill -9 loops, failing and full disks, poison
//! records, flush-failure storms, hostile next hops, open-relay probes, SMTP smuggling, idle
//! and slow clients by the thousand. Most run `rebound serve` as a child process.
//! `cargo test --test hardening`; one test: `cargo test --test hardening crash::kill9_loop_loses_no_acknowledged_message`.

#[path = "../support/mod.rs"]
mod support;

mod crash;
mod disk;
mod hostile_mx;
mod limits;
mod relay;
mod smuggling;
mod storm;
