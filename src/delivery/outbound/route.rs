//! Where mail for a domain goes next: a static route from `[delivery.routes]`
//! (exact domain, then `"*"`), else the relayhost, else the domain's MX hosts.

use crate::config::{DeliveryConfig, parse_host_port};
use crate::model::address::normalise_domain;

/// Default port of a route or relayhost written without one.
pub const DEFAULT_PORT: u16 = 25;

/// A next hop named in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Host name or IP literal (no brackets).
    pub host: String,
    pub port: u16,
}

impl Hop {
    /// The pool key and the name shown as `remote_host`.
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How a recipient domain is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `[delivery.routes]`: straight to this host.
    Static(Hop),
    /// Through the configured relayhost (AUTH if credentials are set).
    Relay(Hop),
    /// MX lookup of the domain, hosts contacted on `mx_port`.
    Mx,
}

/// A route or relayhost value that is not `host[:port]`.
#[derive(Debug, thiserror::Error)]
#[error("{what} {value:?} is not host[:port]")]
pub struct BadHop {
    pub what: String,
    pub value: String,
}

/// The parsed routing table.
#[derive(Debug, Clone)]
pub struct Router {
    /// (normalised domain or "*", hop)
    routes: Vec<(String, Hop)>,
    relayhost: Option<Hop>,
}

fn parse_hop(what: &str, value: &str) -> Result<Hop, BadHop> {
    let bad = || BadHop {
        what: what.to_string(),
        value: value.to_string(),
    };
    let (host, port) = parse_host_port(value, DEFAULT_PORT).ok_or_else(bad)?;
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(bad());
    }
    Ok(Hop { host, port })
}

impl Router {
    pub fn new(cfg: &DeliveryConfig) -> Result<Router, BadHop> {
        let mut routes = Vec::new();
        for (domain, value) in &cfg.routes {
            let key = if domain == "*" {
                "*".to_string()
            } else {
                normalise_domain(domain)
            };
            routes.push((
                key,
                parse_hop(&format!("delivery.routes.{domain:?}"), value)?,
            ));
        }
        let relayhost = cfg
            .relayhost
            .as_deref()
            .map(|r| parse_hop("delivery.relayhost", r))
            .transpose()?;
        Ok(Router { routes, relayhost })
    }

    /// The route for `domain`: exact static route, then `"*"`, then relayhost, then MX.
    pub fn route(&self, domain: &str) -> Route {
        let key = normalise_domain(domain);
        let find = |k: &str| {
            self.routes
                .iter()
                .find(|(d, _)| d == k)
                .map(|(_, h)| h.clone())
        };
        if let Some(hop) = find(&key).or_else(|| find("*")) {
            return Route::Static(hop);
        }
        match &self.relayhost {
            Some(hop) => Route::Relay(hop.clone()),
            None => Route::Mx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_route_then_star_then_relayhost_then_mx() {
        let mut cfg = DeliveryConfig::default();
        assert_eq!(Router::new(&cfg).unwrap().route("a.test"), Route::Mx);
        cfg.relayhost = Some("smart.example:587".into());
        let r = Router::new(&cfg).unwrap();
        assert_eq!(
            r.route("a.test"),
            Route::Relay(Hop {
                host: "smart.example".into(),
                port: 587
            })
        );
        cfg.routes.insert("*".into(), "127.0.0.1:2600".into());
        cfg.routes
            .insert("Example.TEST".into(), "[::1]:2526".into());
        let r = Router::new(&cfg).unwrap();
        assert_eq!(
            r.route("example.test"),
            Route::Static(Hop {
                host: "::1".into(),
                port: 2526
            })
        );
        assert_eq!(
            r.route("EXAMPLE.test."),
            Route::Static(Hop {
                host: "::1".into(),
                port: 2526
            })
        );
        assert_eq!(
            r.route("other.test"),
            Route::Static(Hop {
                host: "127.0.0.1".into(),
                port: 2600
            })
        );
        cfg.routes.insert("bad.test".into(), "a:b:c".into());
        assert!(Router::new(&cfg).is_err());
    }
}
