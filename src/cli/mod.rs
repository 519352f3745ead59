//! The `rebound` command line (README "Configuration"): `serve`, `check-config`, `parse`, `dns`, and
//! the admin commands, which talk to the running daemon through its API (sled
//! allows one process per database). Exit codes: 0 ok, 2 bad usage or input,
//! 1 when the daemon cannot be reached or fails.

mod admin;
pub mod client;
mod console;
mod dkim;
mod dns;
mod locate;
mod output;
mod sink;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

/// A mail relay that knows what became of every recipient.
#[derive(Debug, Parser)]
#[command(name = "rebound", version, about)]
pub struct Cli {
    /// Config file (default: $REBOUND_CONFIG, else /etc/rebound/rebound.toml if it exists, else built-in defaults;
    /// admin commands without a config file find the running daemon through the pointer `rebound serve` leaves).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print one JSON object per line instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the daemon.
    Serve,
    /// Validate the config and print the effective settings (secrets masked).
    CheckConfig,
    /// A tiny SMTP server to try rebound out offline: accepts mail, prints a line per message,
    /// refuses the `--unknown` addresses with 550 5.1.1. Nothing is stored.
    Sink {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:2526")]
        listen: std::net::SocketAddr,
        /// A recipient to refuse as unknown (repeatable).
        #[arg(long, value_name = "ADDR")]
        unknown: Vec<String>,
    },
    /// Offline: parse bounce/complaint messages (`-` = stdin), one JSON line per recipient.
    Parse {
        /// Messages or mbox files to parse (`-` reads stdin).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
    },
    /// Offline: the DNS records this config needs, as zone-file lines (DKIM, SPF, DMARC, bounce MX, PTR).
    /// Loads the DKIM keys, creating any that are missing as `serve` would: run it as the user `serve` runs as.
    Dns {
        /// Resolve each record (through delivery.nameservers, else the system resolver) and print ✓/✗;
        /// exit 1 when DKIM, SPF or the bounce MX is missing or differs (DMARC and PTR are advisory).
        #[arg(long)]
        check: bool,
        /// An address rebound sends from, for SPF `ip4:`/`ip6:` and the PTR check (repeatable).
        #[arg(long, value_name = "IP")]
        egress: Vec<std::net::IpAddr>,
        /// Sending domains (default: dkim.domains).
        #[arg(value_name = "DOMAIN")]
        domains: Vec<String>,
    },
    /// DKIM key rotation: `rotate DOMAIN` makes the next selector's keys, `status` shows where it stands.
    #[command(subcommand)]
    Dkim(dkim::DkimCmd),
    /// The web console (`/ui/` on the admin listener): `hash-password` for `[[api.users]]`.
    #[command(subcommand)]
    Console(console::ConsoleCmd),
    /// Hand bounce/complaint messages to the daemon as if they had arrived by SMTP.
    Ingest {
        /// Returned messages (DSN, ARF complaint, auto-reply), one per file.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Inspect and manage the queue.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// The communications log, newest first.
    Events(EventsArgs),
    /// Reports.
    #[command(subcommand)]
    Report(ReportCmd),
    /// The suppression list.
    #[command(subcommand)]
    Suppressions(SuppressionsCmd),
    /// Send a stored message again (a new queue entry linked to the old one).
    Resend {
        /// Queue id or `<Message-ID>` of the stored message.
        id: String,
        /// A corrected recipient (default: the original recipients).
        #[arg(long)]
        to: Option<String>,
    },
    /// Erase every event and stored message naming an address (right to erasure).
    Erase {
        /// The address whose events and messages are erased.
        address: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// Messages waiting for delivery (`--all`: also finished ones kept for resend).
    List {
        /// Also list finished messages whose bodies are kept for resend.
        #[arg(long)]
        all: bool,
        /// Most messages to print (default 100, at most 1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after the cursor the previous page printed.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// A message, its recipients and its events.
    Show {
        /// Queue id or `<Message-ID>`.
        id: String,
    },
    /// Attempt delivery now.
    Retry {
        /// Queue id or `<Message-ID>`.
        id: String,
    },
    /// Remove a message from the queue.
    Delete {
        /// Queue id or `<Message-ID>`.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this recipient's events (any case).
    #[arg(long)]
    pub recipient: Option<String>,
    /// Comma-separated statuses (queued, deferred, delivered, bounced ...).
    #[arg(long)]
    pub status: Option<String>,
    /// Only this message's events: its queue id, or the `<Message-ID>` the app logged.
    #[arg(long, value_name = "ID")]
    pub message: Option<String>,
    /// How far back (7d, 12h) or an RFC 3339 time.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub since: Option<String>,
    /// Start of a date range (RFC 3339 time or YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// End of a date range (RFC 3339 time or YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Most events to print (default 100, at most 1000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue after the cursor the previous page printed.
    #[arg(long)]
    pub cursor: Option<String>,
    /// The security log instead: returned reports that no signed VERP tag or report
    /// token tied to a recipient (forged, expired, unmatched). They changed nothing.
    #[arg(long, conflicts_with_all = ["recipient", "status", "message", "since", "from", "to"])]
    pub unverified: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Recipients not delivered in the window, with a count per status.
    Undelivered {
        /// How many days back (default 30).
        #[arg(long)]
        days: Option<u32>,
        /// Comma-separated statuses to keep.
        #[arg(long)]
        status: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SuppressionsCmd {
    /// List entries (optionally of one reason).
    List {
        /// Only entries of this reason (hard_bounce, complaint, unsubscribe, manual).
        #[arg(long)]
        reason: Option<String>,
        /// Most entries to print (default 100, at most 1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after the cursor the previous page printed.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Add an address (reason: hard_bounce, complaint, unsubscribe or manual).
    Add {
        /// The address to suppress.
        address: String,
        /// hard_bounce, complaint, unsubscribe or manual.
        #[arg(long, default_value = "manual")]
        reason: String,
        /// A note kept with the entry (why it was added).
        #[arg(long)]
        diagnostic: Option<String>,
    },
    /// Remove an address; complaint and unsubscribe entries need --force (consent must exist).
    Remove {
        /// The address to remove.
        address: String,
        /// Also remove a complaint or unsubscribe entry (only with the recipient's consent).
        #[arg(long)]
        force: bool,
    },
    /// Import a CSV (address,reason,time,diagnostic) or JSON-lines file.
    Import {
        /// The file to import.
        file: PathBuf,
        /// csv or jsonl (default: from the file name, else csv).
        #[arg(long)]
        format: Option<String>,
    },
    /// Export the whole list to stdout.
    Export {
        /// csv or jsonl.
        #[arg(long, default_value = "csv")]
        format: String,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    run(cli)
}

/// Runs the daemon with umask 077: files it creates later (sled's new segments, keys) are
/// private too.
#[allow(unsafe_code)] // libc::umask: each unsafe block has its SAFETY comment
fn serve_private(cfg: Config, path: Option<PathBuf>) -> Result<(), crate::daemon::DaemonError> {
    // SAFETY: umask only sets the process file-creation mask; it cannot fail.
    unsafe { libc::umask(0o077) };
    crate::daemon::serve(cfg, path)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> i32 {
    if let Cmd::Sink { listen, unknown } = cli.cmd {
        return sink::run(listen, unknown);
    }
    if let Cmd::Console(c) = cli.cmd {
        return console::run(c);
    }
    if let Cmd::Parse { files } = &cli.cmd {
        let (mut i, mut o, mut e) = (
            std::io::stdin().lock(),
            std::io::stdout().lock(),
            std::io::stderr().lock(),
        );
        return crate::bounce::run_parse_command(files, &mut i, &mut o, &mut e);
    }
    let (cfg, path) = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rebound: {e}");
            return 2;
        }
    };
    match cli.cmd {
        Cmd::Serve => match serve_private(cfg, path) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rebound: {e}");
                1
            }
        },
        Cmd::CheckConfig => check_config(&cfg, path),
        Cmd::Dns {
            check,
            egress,
            domains,
        } => dns::run(&cfg, &domains, &egress, check),
        Cmd::Dkim(c) => dkim::run(&cfg, c),
        cmd => match locate::admin_config(cfg, path.is_some()) {
            Ok(cfg) => admin::run(&cfg, cli.json, cmd),
            Err(e) => {
                eprintln!("rebound: {e}");
                e.exit_code()
            }
        },
    }
}

/// Loads what `serve` would load (TLS files, routes, listeners), then prints the settings.
fn check_config(cfg: &Config, path: Option<PathBuf>) -> i32 {
    let label = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "built-in defaults".into());
    if let Err(e) = crate::daemon::preflight::check(cfg) {
        eprintln!("rebound: {label}: {e}");
        return 2;
    }
    if let Some(ca) = cfg
        .delivery
        .mta_sts_ca_file
        .as_deref()
        .filter(|_| cfg.delivery.mta_sts != crate::config::MtaStsMode::Off)
        && let Err(e) = crate::delivery::outbound::mta_sts::tls::check_ca_file(ca)
    {
        eprintln!("rebound: {label}: {e}");
        return 2;
    }
    println!("# {label}: OK");
    print!("{}", cfg.to_masked_toml());
    0
}
