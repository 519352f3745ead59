//! DNS for delivery (RFC 5321 §5.1, RFC 7505) through hickory-resolver: MX hosts
//! in preference order (random among equals), implicit MX on NODATA, null MX and
//! NXDOMAIN as permanent failures, anything else temporary; and A/AAAA of hosts.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use rand::seq::SliceRandom;

use crate::delivery::outbound::reply::synthetic;
use crate::model::Reply;

/// Most MX hosts tried for one domain.
pub const MAX_MX_HOSTS: usize = 5;
/// Most addresses kept per host.
pub const MAX_ADDRS_PER_HOST: usize = 3;

/// Why a host name gave no address.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    #[error("{0}: no such host")]
    NotFound(String),
    #[error("{0}: DNS lookup failed: {1}")]
    Temporary(String, String),
}

/// A resolver on the system's configuration, or on `nameservers` (UDP and TCP) when given:
/// `timeout` per query, two attempts, IPv4 and IPv6 addresses. Delivery and `rebound dns`
/// both look names up through it.
pub fn resolver(nameservers: &[SocketAddr], timeout: Duration) -> Result<TokioResolver, NetError> {
    let mut builder = if nameservers.is_empty() {
        TokioResolver::builder_tokio()?
    } else {
        let servers = nameservers
            .iter()
            .map(|ns| {
                let mut udp = ConnectionConfig::udp();
                udp.port = ns.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = ns.port();
                NameServerConfig::new(ns.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    let opts = builder.options_mut();
    opts.timeout = timeout;
    opts.attempts = 2;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    builder.build()
}

/// The resolver used for MX and host lookups.
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// The system resolver, or `nameservers` (UDP and TCP) when given.
    pub fn new(nameservers: &[SocketAddr], timeout: Duration) -> Result<Dns, NetError> {
        Ok(Dns {
            resolver: resolver(nameservers, timeout)?,
        })
    }

    /// The mail hosts of `domain`, best first; `Err` is the reply for every recipient.
    pub async fn mx_hosts(&self, domain: &str) -> Result<Vec<String>, Reply> {
        if domain.starts_with('[') {
            return Ok(vec![domain.to_string()]);
        }
        let fqdn = fqdn(domain);
        let lookup = match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(l) => l,
            Err(e) if e.is_nx_domain() => {
                return Err(synthetic(
                    550,
                    (5, 1, 2),
                    format!("host unknown: domain {domain} does not exist (NXDOMAIN)"),
                ));
            }
            Err(e) if e.is_no_records_found() => return Ok(vec![domain.to_string()]),
            Err(e) => {
                return Err(synthetic(
                    451,
                    (4, 4, 3),
                    format!("MX lookup for {domain} failed: {e}"),
                ));
            }
        };
        let mut mx: Vec<(u16, String, bool)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(m) => Some((m.preference, m.exchange.to_ascii(), m.exchange.is_root())),
                _ => None,
            })
            .collect();
        order_mx(domain, &mut mx)
    }

    /// A/AAAA of `host` (or the IP itself, bracketed or not).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, AddrError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let bare = bare.strip_prefix("IPv6:").unwrap_or(bare);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match self.resolver.lookup_ip(fqdn(host).as_str()).await {
            Ok(l) => {
                let ips: Vec<IpAddr> = l.iter().take(MAX_ADDRS_PER_HOST).collect();
                if ips.is_empty() {
                    Err(AddrError::NotFound(host.to_string()))
                } else {
                    Ok(ips)
                }
            }
            Err(e) if e.is_no_records_found() => Err(AddrError::NotFound(host.to_string())),
            Err(e) => Err(AddrError::Temporary(host.to_string(), e.to_string())),
        }
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// Null MX check, then preference order with equal preferences shuffled.
fn order_mx(domain: &str, mx: &mut Vec<(u16, String, bool)>) -> Result<Vec<String>, Reply> {
    if mx.is_empty() {
        return Ok(vec![domain.to_string()]);
    }
    if mx.iter().all(|(_, _, root)| *root) {
        return Err(synthetic(
            556,
            (5, 1, 10),
            format!("domain {domain} accepts no mail (null MX)"),
        ));
    }
    mx.retain(|(_, _, root)| !root);
    mx.shuffle(&mut rand::thread_rng());
    mx.sort_by_key(|(pref, _, _)| *pref); // stable: equal preferences stay shuffled
    Ok(mx
        .iter()
        .take(MAX_MX_HOSTS)
        .map(|(_, name, _)| name.trim_end_matches('.').to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_mx_is_permanent_and_order_follows_preference() {
        let err = order_mx("d.test", &mut vec![(0, ".".into(), true)]).unwrap_err();
        assert_eq!(
            err.diagnostic(),
            "556 5.1.10 domain d.test accepts no mail (null MX)"
        );
        let mut mx = vec![
            (20, "b.".into(), false),
            (10, "a.".into(), false),
            (30, "c.".into(), false),
        ];
        assert_eq!(order_mx("d.test", &mut mx).unwrap(), vec!["a", "b", "c"]);
    }
}
