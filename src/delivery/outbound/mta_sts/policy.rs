//! The two texts MTA-STS reads from the network (RFC 8461): the `_mta-sts` TXT
//! record (`v=STSv1; id=...`, §3.1) and the policy file served over HTTPS
//! (`version`, `mode`, `mx`, `max_age`, §3.2), with the MX pattern match of §4.1.
//! Pure functions over untrusted bytes: they never panic (see `fuzz/`).

use serde::{Deserialize, Serialize};

/// Largest policy file accepted (RFC 8461 §3.3: 64 KB is plenty).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Largest `max_age` (RFC 8461 §3.2: about one year); larger values are capped to it.
pub const MAX_MAX_AGE: u64 = 31_557_600;
/// Most `mx` patterns kept from one policy; more makes the policy invalid.
pub const MAX_MX_PATTERNS: usize = 256;

/// A policy's mode (RFC 8461 §5), in increasing strictness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    None,
    Testing,
    Enforce,
}

impl PolicyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::None => "none",
            PolicyMode::Testing => "testing",
            PolicyMode::Enforce => "enforce",
        }
    }
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub mode: PolicyMode,
    /// Lower-case patterns: `mx.example.com` or `*.example.com` (one label).
    pub mx: Vec<String>,
    /// Seconds the policy may be cached, at most [`MAX_MAX_AGE`].
    pub max_age: u64,
}

/// Why a policy file or TXT record was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    #[error("the policy is not UTF-8 text")]
    NotText,
    #[error("line {0} is not \"key: value\"")]
    BadLine(usize),
    #[error("missing field {0:?}")]
    Missing(&'static str),
    #[error("version {0:?} is not STSv1")]
    Version(String),
    #[error("mode {0:?} is not enforce, testing or none")]
    Mode(String),
    #[error("max_age {0:?} is not a number of seconds")]
    MaxAge(String),
    #[error("mx {0:?} is not a host name or *.domain pattern")]
    Mx(String),
    #[error("more than {MAX_MX_PATTERNS} mx patterns")]
    TooManyMx,
    #[error("the TXT record is not v=STSv1 with an id")]
    Record,
}

impl Policy {
    /// True when `host` (any case, trailing dot or not) matches one of the `mx` patterns.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| pattern_matches(p, &host))
    }
}

/// RFC 8461 §4.1: exact match, or `*.` standing for exactly one leftmost label.
fn pattern_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == parent),
        None => pattern == host,
    }
}

/// The fields of a policy as read, before checking.
#[derive(Default)]
struct Fields<'a> {
    version: Option<&'a str>,
    mode: Option<&'a str>,
    max_age: Option<&'a str>,
    mx: Vec<&'a str>,
}

/// Parses a policy file (RFC 8461 §3.2). Lines end in LF or CRLF; unknown fields are
/// ignored; of a repeated field other than `mx` the first occurrence counts.
pub fn parse_policy(bytes: &[u8]) -> Result<Policy, PolicyError> {
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| PolicyError::NotText)?;
    let mut f = Fields::default();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim_matches([' ', '\t']).is_empty() {
            continue;
        }
        let (key, value) = line.split_once(':').ok_or(PolicyError::BadLine(i + 1))?;
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(PolicyError::BadLine(i + 1));
        }
        let value = value.trim_matches([' ', '\t']);
        match key {
            "version" => f.version = f.version.or(Some(value)),
            "mode" => f.mode = f.mode.or(Some(value)),
            "max_age" => f.max_age = f.max_age.or(Some(value)),
            "mx" if f.mx.len() >= MAX_MX_PATTERNS => return Err(PolicyError::TooManyMx),
            "mx" => f.mx.push(value),
            _ => {}
        }
    }
    checked(f)
}

fn checked(f: Fields<'_>) -> Result<Policy, PolicyError> {
    let version = f.version.ok_or(PolicyError::Missing("version"))?;
    if version != "STSv1" {
        return Err(PolicyError::Version(version.to_string()));
    }
    let mode = match f.mode.ok_or(PolicyError::Missing("mode"))? {
        "enforce" => PolicyMode::Enforce,
        "testing" => PolicyMode::Testing,
        "none" => PolicyMode::None,
        other => return Err(PolicyError::Mode(other.to_string())),
    };
    let age = f.max_age.ok_or(PolicyError::Missing("max_age"))?;
    if age.is_empty() || age.len() > 10 || !age.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PolicyError::MaxAge(age.to_string()));
    }
    let max_age = age
        .parse::<u64>()
        .map_err(|_| PolicyError::MaxAge(age.to_string()))?
        .min(MAX_MAX_AGE);
    let mut mx = Vec::with_capacity(f.mx.len());
    for p in f.mx {
        if !valid_pattern(p) {
            return Err(PolicyError::Mx(p.to_string()));
        }
        mx.push(p.trim_end_matches('.').to_ascii_lowercase());
    }
    if mx.is_empty() && mode != PolicyMode::None {
        return Err(PolicyError::Missing("mx"));
    }
    Ok(Policy { mode, mx, max_age })
}

/// `["*."] Domain` with LDH labels of 1 to 63 characters, at most 253 in all.
fn valid_pattern(p: &str) -> bool {
    let name = p.strip_prefix("*.").unwrap_or(p);
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The policy id of an `_mta-sts` TXT record (RFC 8461 §3.1): `v=STSv1` first, then
/// `;`-separated fields of which `id=` (1 to 32 letters and digits) is required.
pub fn parse_record(txt: &str) -> Result<String, PolicyError> {
    let mut parts = txt.split(';').map(|p| p.trim_matches([' ', '\t']));
    if parts.next() != Some("v=STSv1") {
        return Err(PolicyError::Record);
    }
    let mut id = None;
    for part in parts.filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').ok_or(PolicyError::Record)?;
        if name == "id" && id.is_none() {
            if value.is_empty()
                || value.len() > 32
                || !value.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(PolicyError::Record);
            }
            id = Some(value.to_string());
        } else if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(PolicyError::Record);
        }
    }
    id.ok_or(PolicyError::Record)
}

/// The id from the TXT records of `_mta-sts.DOMAIN`: records not starting with `v=STSv1`
/// are ignored, and anything but exactly one valid record means no policy (§3.1).
pub fn record_id<'a>(records: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let sts: Vec<&str> = records
        .into_iter()
        .filter(|r| r.starts_with("v=STSv1"))
        .collect();
    match sts.as_slice() {
        [one] => parse_record(one).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8461_example_policy() {
        let text = b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";
        let p = parse_policy(text).unwrap();
        assert_eq!(p.mode, PolicyMode::Enforce);
        assert_eq!(
            p.mx,
            ["mail.example.com", "*.example.net", "backupmx.example.com"]
        );
        assert_eq!(p.max_age, 604800);
        assert!(p.allows("mail.example.com") && p.allows("MAIL.Example.COM."));
        assert!(p.allows("mx1.example.net"));
        assert!(!p.allows("example.net"), "a wildcard needs one label");
        assert!(
            !p.allows("a.b.example.net"),
            "a wildcard stands for one label only"
        );
        assert!(!p.allows("mail.example.com.evil.test"));
        assert!(!p.allows("evilmail.example.com"));
    }

    #[test]
    fn lf_lines_unknown_fields_whitespace_and_first_occurrence() {
        let text = b"version: STSv1\nmode:testing  \nfoo-bar: whatever: colons\nmx: MX.Example.COM.\nmode: enforce\nmax_age:\t86400\t\n\n";
        let p = parse_policy(text).unwrap();
        assert_eq!((p.mode, p.max_age), (PolicyMode::Testing, 86400));
        assert_eq!(p.mx, ["mx.example.com"]);
        let none = parse_policy(b"version: STSv1\nmode: none\nmax_age: 0\n").unwrap();
        assert_eq!((none.mode, none.mx.len()), (PolicyMode::None, 0));
        let capped =
            parse_policy(b"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 9999999999\n")
                .unwrap();
        assert_eq!(capped.max_age, MAX_MAX_AGE);
    }

    #[test]
    fn malformed_policies_are_refused() {
        let base = |s: &str| parse_policy(s.as_bytes());
        assert_eq!(
            base("mode: enforce\nmx: a.test\nmax_age: 1\n"),
            Err(PolicyError::Missing("version"))
        );
        assert_eq!(
            base("version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n"),
            Err(PolicyError::Version("STSv2".into()))
        );
        assert_eq!(
            base("version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n"),
            Err(PolicyError::Mode("strict".into()))
        );
        assert_eq!(
            base("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n"),
            Err(PolicyError::MaxAge("-1".into()))
        );
        assert_eq!(
            base("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 12345678901\n"),
            Err(PolicyError::MaxAge("12345678901".into()))
        );
        assert_eq!(
            base("version: STSv1\nmode: enforce\nmax_age: 1\n"),
            Err(PolicyError::Missing("mx"))
        );
        assert_eq!(
            base("version: STSv1\nmode: enforce\nmx: a.test\n"),
            Err(PolicyError::Missing("max_age"))
        );
        for bad in [
            "*.*.a.test",
            "a..test",
            "*",
            "-a.test",
            "a_b.test",
            "mx.test/x",
            "ünï.test",
            "",
        ] {
            assert!(
                matches!(
                    base(&format!(
                        "version: STSv1\nmode: enforce\nmx: {bad}\nmax_age: 1\n"
                    )),
                    Err(PolicyError::Mx(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            base("version: STSv1\nthis line has no colon\n"),
            Err(PolicyError::BadLine(2))
        );
        assert_eq!(
            base("<html><body>Not found</body></html>"),
            Err(PolicyError::BadLine(1))
        );
        assert_eq!(
            parse_policy(b"version: STSv1\n\xff\xfe"),
            Err(PolicyError::NotText)
        );
        assert_eq!(
            parse_policy(&vec![b'a'; MAX_POLICY_BYTES + 1]),
            Err(PolicyError::TooLarge)
        );
        let many = format!(
            "version: STSv1\nmode: enforce\nmax_age: 1\n{}",
            "mx: a.test\n".repeat(MAX_MX_PATTERNS + 1)
        );
        assert_eq!(base(&many), Err(PolicyError::TooManyMx));
    }

    #[test]
    fn txt_records() {
        assert_eq!(
            parse_record("v=STSv1; id=20160831085700Z;").unwrap(),
            "20160831085700Z"
        );
        assert_eq!(parse_record("v=STSv1;id=abc").unwrap(), "abc");
        assert_eq!(parse_record("v=STSv1; ext=1; id=x9 ;").unwrap(), "x9");
        for bad in [
            "v=STSv1;",
            "v=STSv1; id=",
            "v=STSv1; id=a-b",
            "id=abc; v=STSv1",
            "v=STSv2; id=abc",
            "v=STSv1 id=abc",
            &format!("v=STSv1; id={}", "a".repeat(33)),
        ] {
            assert_eq!(parse_record(bad), Err(PolicyError::Record), "{bad}");
        }
        assert_eq!(
            record_id(["v=spf1 -all", "v=STSv1; id=one"]),
            Some("one".into())
        );
        assert_eq!(
            record_id(["v=STSv1; id=one", "v=STSv1; id=two"]),
            None,
            "two STS records: no policy"
        );
        assert_eq!(record_id(["v=spf1 -all"]), None);
    }
}
