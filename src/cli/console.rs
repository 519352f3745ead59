//! `rebound console hash-password`: reads a password from standard input (one
//! line; not echoed on a terminal) and prints its argon2id hash in PHC form, for
//! `password_hash` in an `[[api.users]]` entry of the web console. Offline: no
//! config, no daemon.

use std::io::{BufRead, Write};

use clap::Subcommand;

/// `rebound console ...`.
#[derive(Debug, Subcommand)]
pub enum ConsoleCmd {
    /// Read a password from stdin and print its argon2id hash, for `[[api.users]] password_hash`.
    HashPassword,
}

/// Runs a console subcommand; the exit code.
pub fn run(cmd: ConsoleCmd) -> i32 {
    match cmd {
        ConsoleCmd::HashPassword => hash_password(),
    }
}

fn hash_password() -> i32 {
    let password = match read_password() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rebound: cannot read the password: {e}");
            return 2;
        }
    };
    if password.is_empty() {
        eprintln!("rebound: the password is empty (give it on standard input, one line)");
        return 2;
    }
    match crate::api::console::hash_password(&password) {
        Ok(h) => {
            println!("{h}");
            0
        }
        Err(e) => {
            eprintln!("rebound: cannot hash the password: {e}");
            1
        }
    }
}

/// One line from stdin without its line end; on a terminal, prompted and not echoed.
#[allow(unsafe_code)] // libc::isatty, libc::tcsetattr: each unsafe block has its SAFETY comment
fn read_password() -> std::io::Result<String> {
    // SAFETY: isatty only inspects descriptor 0; it has no preconditions.
    let tty = unsafe { libc::isatty(0) } == 1;
    let saved = if tty { echo_off() } else { None };
    if tty {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    let res = std::io::stdin().lock().read_line(&mut line);
    if let Some(t) = saved {
        // SAFETY: restores the terminal settings read by echo_off on the same descriptor.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        eprintln!();
    }
    res?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns terminal echo off on stdin; the settings to restore.
#[allow(unsafe_code)] // libc::tcgetattr, libc::tcsetattr: each unsafe block has its SAFETY comment
fn echo_off() -> Option<libc::termios> {
    // SAFETY: termios is plain data (integers), for which all zero bytes are a valid value.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a writable termios; tcgetattr fills it for descriptor 0 or fails.
    if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
        return None;
    }
    let saved = t;
    t.c_lflag &= !libc::ECHO;
    // SAFETY: `t` is the settings tcgetattr read, with echo cleared.
    (unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) } == 0).then_some(saved)
}
