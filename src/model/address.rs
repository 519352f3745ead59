//! Email addresses as they cross the SMTP edge: validated once (no CR, LF, NUL,
//! `<`, `>` or other controls can ever reach the wire), split into local part
//! and domain, and normalised for the suppression list (domain lower-cased and
//! IDN-folded to its A-label; local part kept as given, compared case-insensitively).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an address string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("address is longer than 254 octets")]
    TooLong,
    #[error("address has no @domain")]
    NoDomain,
    #[error("local part is empty or longer than 64 octets")]
    BadLocalPart,
    #[error("domain is not a valid host name or address literal")]
    BadDomain,
    #[error("address contains a control character, space or angle bracket")]
    ForbiddenCharacter,
    #[error("address contains a source route, percent hack or bang path")]
    Routing,
}

/// A validated `local@domain` mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address {
    full: String,
    at: usize,
}

impl Address {
    /// Validates a mailbox. Routing tricks (`@a:b@c`, `a%b@c`, `a!b@c`, two unquoted `@`)
    /// are refused so no hidden host can be reached through us.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.len() > 254 {
            return Err(AddressError::TooLong);
        }
        if s.bytes()
            .any(|b| b < 0x21 || b == 0x7f || b == b'<' || b == b'>')
        {
            return Err(AddressError::ForbiddenCharacter);
        }
        if s.starts_with('@') {
            return Err(AddressError::Routing);
        }
        let at = s.rfind('@').ok_or(AddressError::NoDomain)?;
        let (local, domain) = (&s[..at], &s[at + 1..]);
        check_local(local)?;
        check_domain(domain)?;
        Ok(Address {
            full: s.to_string(),
            at,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }

    pub fn local_part(&self) -> &str {
        &self.full[..self.at]
    }

    pub fn domain(&self) -> &str {
        &self.full[self.at + 1..]
    }

    /// The domain lower-cased and, for internationalised names, as its ASCII A-label.
    pub fn domain_key(&self) -> String {
        normalise_domain(self.domain())
    }

    /// The suppression-list key: lower-cased local part @ normalised domain.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local_part().to_lowercase(), self.domain_key())
    }

    /// The display form with the domain normalised (local part kept as given).
    pub fn normalised(&self) -> String {
        format!("{}@{}", self.local_part(), self.domain_key())
    }
}

/// Lower-cases a domain and converts U-labels to A-labels (`bücher.example` → `xn--bcher-kva.example`).
pub fn normalise_domain(domain: &str) -> String {
    let d = domain.trim_end_matches('.');
    if d.starts_with('[') {
        return d.to_ascii_lowercase();
    }
    match idna::domain_to_ascii(d) {
        Ok(a) => a,
        Err(_) => d.to_lowercase(),
    }
}

fn check_local(local: &str) -> Result<(), AddressError> {
    if local.is_empty() || local.len() > 64 {
        return Err(AddressError::BadLocalPart);
    }
    if local.starts_with('"') {
        // Quoted local part: allowed, but no routing characters inside may hide another host.
        if !local.ends_with('"')
            || local.len() < 2
            || local[1..local.len() - 1].contains(['"', '\\'])
        {
            return Err(AddressError::BadLocalPart);
        }
        if local.contains(['@', '%', '!']) {
            return Err(AddressError::Routing);
        }
        return Ok(());
    }
    if local.contains(['@', '%', '!', ':']) {
        return Err(AddressError::Routing);
    }
    if local.contains(['"', '\\', '(', ')', ',', ';', '[', ']'])
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(AddressError::BadLocalPart);
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), AddressError> {
    if domain.is_empty() || domain.len() > 253 {
        return Err(AddressError::BadDomain);
    }
    if let Some(lit) = domain.strip_prefix('[') {
        let lit = lit.strip_suffix(']').ok_or(AddressError::BadDomain)?;
        let ip = lit.strip_prefix("IPv6:").unwrap_or(lit);
        return ip
            .parse::<std::net::IpAddr>()
            .map(|_| ())
            .map_err(|_| AddressError::BadDomain);
    }
    if domain.contains(['%', '!', '@', ':', '[', ']']) {
        return Err(AddressError::Routing);
    }
    let ascii = normalise_domain(domain);
    let labels: Vec<&str> = ascii.split('.').collect();
    let ok = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if ok {
        Ok(())
    } else {
        Err(AddressError::BadDomain)
    }
}

/// Normalises an address string for suppression lookups without full validation
/// (used for addresses found in bounces, which may be odd). Returns `None` without an `@`.
pub fn suppression_key(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches('<').trim_end_matches('>');
    let at = s.rfind('@')?;
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some(format!(
        "{}@{}",
        local.to_lowercase(),
        normalise_domain(domain)
    ))
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, AddressError> {
        Address::parse(&s)
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.full
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, AddressError> {
        Address::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_literal_addresses() {
        let a = Address::parse("Bob.Smith+tag@Example.COM").unwrap();
        assert_eq!(a.local_part(), "Bob.Smith+tag");
        assert_eq!(a.domain(), "Example.COM");
        assert_eq!(a.key(), "bob.smith+tag@example.com");
        assert!(Address::parse("a@[127.0.0.1]").is_ok());
        assert!(Address::parse("a@[IPv6:::1]").is_ok());
        assert!(Address::parse("\"john doe\"@example.com").is_err()); // space
        assert!(Address::parse("\"john.doe\"@example.com").is_ok());
    }

    #[test]
    fn refuses_relay_tricks_and_injection() {
        for bad in [
            "a%b@example.com",
            "@hop:a@example.com",
            "a!b@example.com",
            "a@b@example.com",
            "\"a@b\"@example.com",
            "a\r\nRCPT TO:<x@y>@example.com",
            "a\0@example.com",
            "a>@example.com",
            "a@exa mple.com",
            "a@-bad.com",
            "noatsign",
            "a@",
            "@example.com",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn idn_domains_fold_to_a_labels() {
        let u = Address::parse("hans@bücher.example").unwrap();
        let a = Address::parse("hans@xn--bcher-kva.example").unwrap();
        assert_eq!(u.key(), a.key());
        assert_eq!(suppression_key("<Hans@BÜCHER.example>").unwrap(), a.key());
    }
}
