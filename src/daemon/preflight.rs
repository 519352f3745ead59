//! What `rebound serve` loads before it creates a directory or opens the store, and
//! what `rebound check-config` checks beyond the file's syntax: the STARTTLS
//! certificate and key (readable, PEM, not swapped, matching), the delivery routes
//! and relayhost, and that no two listeners claim the same address.

use std::net::SocketAddr;

use crate::config::Config;
use crate::delivery::outbound::route::{BadHop, Router};
use crate::inbound::SmtpError;

/// A setting that parses but that `serve` could not use.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// `smtp.tls_cert` / `smtp.tls_key`: the message names the file at fault.
    #[error(transparent)]
    Tls(#[from] SmtpError),
    #[error(transparent)]
    Route(#[from] BadHop),
    #[error("{first} and {second} both listen on {addr}")]
    SharedListen {
        first: &'static str,
        second: &'static str,
        addr: SocketAddr,
    },
}

/// Loads and checks everything `serve` needs from the config, touching nothing on disk.
pub fn check(cfg: &Config) -> Result<(), PreflightError> {
    if let (Some(cert), Some(key)) = (&cfg.smtp.tls_cert, &cfg.smtp.tls_key) {
        crate::inbound::tls::load_acceptor(cert, key)?;
    }
    Router::new(&cfg.delivery)?;
    distinct_listeners(cfg)
}

/// Every listener with a fixed port must have an address of its own.
fn distinct_listeners(cfg: &Config) -> Result<(), PreflightError> {
    let mut all: Vec<(&'static str, SocketAddr)> = cfg
        .smtp
        .listen
        .iter()
        .map(|a| ("smtp.listen", *a))
        .collect();
    all.push(("api.listen", cfg.api.listen));
    all.extend(cfg.unsubscribe.listen.map(|a| ("unsubscribe.listen", a)));
    for (i, (first, a)) in all.iter().enumerate() {
        for (second, b) in &all[i + 1..] {
            if a.port() != 0 && overlap(*a, *b) {
                return Err(PreflightError::SharedListen {
                    first,
                    second,
                    addr: *b,
                });
            }
        }
    }
    Ok(())
}

/// Same port, and the same IP or a wildcard of the same family.
fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_on_one_address_and_bad_routes_are_refused() {
        let mut c = Config::default();
        check(&c).unwrap();
        c.api.listen = "0.0.0.0:2525".parse().unwrap();
        assert_eq!(
            check(&c).unwrap_err().to_string(),
            "smtp.listen and api.listen both listen on 0.0.0.0:2525"
        );
        c.api.listen = "127.0.0.1:0".parse().unwrap();
        c.smtp.listen = vec![
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ];
        check(&c).unwrap();
        c.delivery
            .routes
            .insert("example.test".into(), "mx example:25".into());
        assert!(
            check(&c)
                .unwrap_err()
                .to_string()
                .contains("delivery.routes")
        );
    }
}
