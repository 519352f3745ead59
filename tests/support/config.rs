//! The one config builder of the integration tests: [`test_config`] (a daemon on a temp
//! dir, every listener on 127.0.0.1 port 0, second-scale retries) and the variants that
//! start from it: the SMTP listener alone ([`listener_config`]), a child `rebound serve`
//! ([`child`], written out by [`write`]), the outbound client alone ([`delivery`]) and the
//! CLI's view of a running daemon ([`cli_config`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rebound::config::{Config, DeliveryConfig, Dur, Secret, Size, SmtpUser, TlsPolicy};

/// The hostname every test daemon (and listener) announces.
pub const HOST: &str = "relay.test";
/// The bounce domain of every test daemon (and listener).
pub const BOUNCE_DOMAIN: &str = "bounces.relay.test";
/// The admin API bearer token of every test config.
pub const TOKEN: &str = "test-token";

/// A config for tests: loopback port 0 everywhere, second-scale retries, data in `dir/data`.
pub fn test_config(dir: &Path) -> Config {
    let mut c = Config::default();
    c.server.hostname = HOST.into();
    c.server.data_dir = dir.join("data");
    c.server.shutdown_timeout = Dur(Duration::from_secs(5));
    c.smtp.listen = vec!["127.0.0.1:0".parse().unwrap()];
    c.api.listen = "127.0.0.1:0".parse().unwrap();
    c.api.token = Some(Secret(TOKEN.into()));
    c.bounces.domain = BOUNCE_DOMAIN.into();
    c.bounces.secret = Some(Secret("verp-test-key".into()));
    c.delivery.retry = vec![Dur(Duration::from_millis(700))];
    c.delivery.max_age = Dur(Duration::from_secs(30));
    c.delivery.command_timeout = Dur(Duration::from_secs(3));
    c.delivery.data_timeout = Dur(Duration::from_secs(5));
    c.smtp.min_free_space = Size(0);
    c
}

/// Every domain routed to `to` (`delivery.routes."*"`).
pub fn route_all(c: &mut Config, to: SocketAddr) {
    c.delivery.routes.insert("*".into(), to.to_string());
}

/// Every domain routed to a closed port, retries an hour apart within 72 h:
/// a message stays deferred and waiting while the test looks at it.
pub fn hourly_retries_to_nowhere(dir: &Path) -> Config {
    let mut c = test_config(dir);
    route_all(&mut c, closed_port());
    c.delivery.retry = vec![Dur(Duration::from_secs(3600))];
    c.delivery.max_age = Dur(Duration::from_secs(72 * 3600));
    c
}

/// The SMTP listener alone (no daemon behind it): small limits so the tests can reach them.
pub fn listener_config() -> Config {
    let mut cfg = test_config(Path::new("/nonexistent"));
    cfg.smtp.max_message_size = Size(64 * 1024);
    cfg.smtp.max_recipients = 5;
    cfg
}

/// Adds the AUTH user `app` / `correct horse`.
pub fn with_user(cfg: &mut Config) {
    cfg.smtp.users = vec![SmtpUser {
        name: "app".into(),
        password: Secret("correct horse".into()),
    }];
}

/// A child `rebound serve` on `data_dir` with every domain routed to `route`: retries
/// every 500 ms within an hour (a kill loop or a full disk outlasts 30 s), 200 connections.
pub fn child(data_dir: &Path, route: SocketAddr) -> Config {
    let mut c = test_config(Path::new("/nonexistent"));
    c.server.data_dir = data_dir.to_path_buf();
    c.smtp.max_connections = 200;
    c.delivery.retry = vec![Dur(Duration::from_millis(500))];
    c.delivery.max_age = Dur(Duration::from_secs(3600));
    route_all(&mut c, route);
    c
}

/// Writes `cfg` as a TOML file at `path` (secrets in clear: the file is for a child daemon
/// or the CLI) and returns the path.
pub fn write(cfg: &Config, path: &Path) -> PathBuf {
    let mut table: toml::Table =
        toml::from_str(&toml::to_string(cfg).expect("config serialises")).expect("TOML");
    let mut set = |section: &str, key: &str, secret: &Option<Secret>| {
        let t = table[section].as_table_mut().expect("section");
        match secret {
            Some(s) => t.insert(key.into(), s.expose().into()),
            None => t.remove(key),
        };
    };
    set("api", "token", &cfg.api.token);
    set("bounces", "secret", &cfg.bounces.secret);
    set("webhooks", "secret", &cfg.webhooks.secret);
    set(
        "delivery",
        "relayhost_password",
        &cfg.delivery.relayhost_password,
    );
    if let Some(users) = table["smtp"]
        .get_mut("users")
        .and_then(|u| u.as_array_mut())
    {
        for (u, want) in users.iter_mut().zip(&cfg.smtp.users) {
            u.as_table_mut()
                .expect("user")
                .insert("password".into(), want.password.expose().into());
        }
    }
    let text = toml::to_string(&table).expect("TOML");
    assert!(
        !text.contains("********"),
        "a masked secret would be written: {text}"
    );
    std::fs::write(path, text).expect("config written");
    path.to_path_buf()
}

/// The outbound client's settings alone: short timeouts, STARTTLS opportunistic.
pub fn delivery() -> DeliveryConfig {
    DeliveryConfig {
        command_timeout: Dur(Duration::from_secs(2)),
        data_timeout: Dur(Duration::from_secs(2)),
        tls: TlsPolicy::Opportunistic,
        ..DeliveryConfig::default()
    }
}

/// [`delivery`] with every domain routed to `addr`.
pub fn routed_to(addr: SocketAddr) -> DeliveryConfig {
    let mut cfg = delivery();
    cfg.routes.insert("*".to_string(), addr.to_string());
    cfg
}

/// A config file for the CLI pointing at a running daemon's API.
pub fn cli_config(dir: &Path, api: SocketAddr) -> PathBuf {
    let p = dir.join("cli.toml");
    std::fs::write(
        &p,
        format!("[api]\nurl = \"http://{api}\"\ntoken = \"{TOKEN}\"\n"),
    )
    .expect("cli config written");
    p
}

/// A port with nothing listening on it.
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}
