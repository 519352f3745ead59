//! The shipped `config/rebound.toml` parses, matches the built-in defaults,
//! and documents every key the daemon knows.

use rebound::config::Config;

const SHIPPED: &str = include_str!("../../config/rebound.toml");

#[test]
fn shipped_file_parses_to_the_defaults() {
    let cfg = Config::from_str(SHIPPED, "config/rebound.toml").expect("shipped config parses");
    let mut def = Config::default();
    // Machine-dependent defaults are left commented out in the file.
    def.server.hostname = cfg.server.hostname.clone();
    def.bounces.domain = cfg.bounces.domain.clone();
    assert_eq!(cfg.to_masked_toml(), def.to_masked_toml());
}

#[test]
fn every_key_is_documented() {
    let value: toml::Value = toml::Value::try_from(Config::default()).unwrap();
    let mut missing = Vec::new();
    for (section, table) in value.as_table().unwrap() {
        assert!(
            SHIPPED.contains(&format!("[{section}]")),
            "section [{section}] missing"
        );
        for key in table
            .as_table()
            .map(|t| t.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let as_table = SHIPPED.contains(&format!("[{section}.{key}]"))
                || SHIPPED.contains(&format!("[[{section}.{key}]]"));
            if !SHIPPED.contains(&format!("{key} =")) && !as_table {
                missing.push(format!("{section}.{key}"));
            }
        }
    }
    for optional in [
        "tls_cert",
        "tls_key",
        "relayhost",
        "relayhost_user",
        "relayhost_password",
        "secret",
        "token",
        "url",
        "listen",
        "base_url",
    ] {
        assert!(
            SHIPPED.contains(&format!("{optional} =")),
            "{optional} undocumented"
        );
    }
    assert!(missing.is_empty(), "undocumented keys: {missing:?}");
}

#[test]
fn a_bad_file_names_the_key_and_line() {
    let bad = SHIPPED.replace(
        "max_recipients = 100",
        "max_recipients = 100\nmax_recipient = 5",
    );
    let err = Config::from_str(&bad, "rebound.toml")
        .unwrap_err()
        .to_string();
    let line = bad
        .lines()
        .position(|l| l.starts_with("max_recipient ="))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("line {line}")) && err.contains("max_recipient"),
        "{err}"
    );
}
