//! AUTH PLAIN and AUTH LOGIN (RFC 4954) against `smtp.users`: only over TLS
//! (`538 5.7.11` in clear), `*` cancels, bad base64 is `501 5.5.2`, wrong
//! credentials `535 5.7.8` (sent only after `smtp.auth_failure_delay`), and the
//! third failure closes the session with `421`. An address with
//! `smtp.auth_max_failures` recent failures gets `454 4.7.0` for `smtp.auth_lockout`
//! (see [`super::anvil`]), whatever the credentials.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN};

use std::time::Instant;

use super::SmtpStats;
use super::session::AuthStep;
use super::session::{End, Phase, Session};
use crate::config::SmtpUser;
use crate::inbound::intake::Intake;
use crate::model::constant_time::secrets_eq;

/// Failed attempts before the session is closed.
const MAX_AUTH_FAILURES: u32 = 3;
/// The reply text to a locked-out address.
const LOCKED_OUT: &str = "Too many failed authentication attempts, try again later";

impl<I: Intake> Session<I> {
    pub(super) fn auth_command(&mut self, mechanism: u64, initial: &str) -> Result<(), End> {
        if !self.stream.is_tls() {
            return self.error(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
        }
        if self.server.cfg.smtp.users.is_empty() {
            return self.error(502, "5.5.1", "AUTH not available");
        }
        if !self.esmtp {
            return self.error(503, "5.5.1", "Send EHLO first");
        }
        if self.auth_user.is_some() {
            return self.error(503, "5.5.1", "Already authenticated");
        }
        if self.envelope.is_some() {
            return self.error(503, "5.5.1", "AUTH not allowed during a mail transaction");
        }
        if self.locked_out() {
            return self.error(454, "4.7.0", LOCKED_OUT);
        }
        match (mechanism, initial) {
            (AUTH_PLAIN, "") => self.challenge(AuthStep::PlainResponse, ""),
            (AUTH_PLAIN, response) => self.plain_response(response),
            (AUTH_LOGIN, "") => self.challenge(AuthStep::LoginUser, "VXNlcm5hbWU6"),
            (AUTH_LOGIN, response) => self.login_user(response),
            _ => self.error(504, "5.5.4", "Unrecognized authentication mechanism"),
        }
    }

    /// The client's answer to a `334` challenge.
    pub(super) fn auth_response(&mut self, line: &[u8]) -> Result<(), End> {
        let step = match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::Auth(step) => step,
            other => {
                self.phase = other;
                return Ok(());
            }
        };
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text == "*" {
            return self.error(501, "5.7.0", "Authentication cancelled");
        }
        match step {
            AuthStep::PlainResponse => self.plain_response(text),
            AuthStep::LoginUser => self.login_user(text),
            AuthStep::LoginPassword { user } => self.login_password(&user, text),
        }
    }

    fn challenge(&mut self, step: AuthStep, text: &str) -> Result<(), End> {
        self.phase = Phase::Auth(step);
        self.reply(334, "", text);
        Ok(())
    }

    fn plain_response(&mut self, b64: &str) -> Result<(), End> {
        let Some(raw) = self.decode(b64) else {
            return Ok(());
        };
        let mut parts = raw.split(|&b| b == 0);
        let (Some(authzid), Some(user), Some(pass), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return self.error(501, "5.5.2", "Malformed PLAIN response");
        };
        if !authzid.is_empty() && authzid != user {
            return self.auth_failed();
        }
        let user = String::from_utf8_lossy(user).into_owned();
        self.verify(&user, pass)
    }

    fn login_user(&mut self, b64: &str) -> Result<(), End> {
        let Some(raw) = self.decode(b64) else {
            return Ok(());
        };
        let user = String::from_utf8_lossy(&raw).into_owned();
        self.challenge(AuthStep::LoginPassword { user }, "UGFzc3dvcmQ6")
    }

    fn login_password(&mut self, user: &str, b64: &str) -> Result<(), End> {
        let Some(pass) = self.decode(b64) else {
            return Ok(());
        };
        self.verify(user, &pass)
    }

    /// Decodes base64; on failure replies `501 5.5.2` and returns `None`.
    fn decode(&mut self, b64: &str) -> Option<Vec<u8>> {
        let b64 = if b64 == "=" { "" } else { b64 };
        match STANDARD.decode(b64.trim()) {
            Ok(v) => Some(v),
            Err(_) => {
                let _ = self.error(501, "5.5.2", "Cannot decode base64 response");
                None
            }
        }
    }

    fn verify(&mut self, user: &str, pass: &[u8]) -> Result<(), End> {
        if self.locked_out() {
            return self.error(454, "4.7.0", LOCKED_OUT);
        }
        if credentials_match(&self.server.cfg.smtp.users, user, pass) {
            tracing::info!(peer = %self.peer, user, "smtp: authenticated");
            self.auth_user = Some(user.to_string());
            self.server.anvil.auth_succeeded(self.peer.ip());
            self.reply(235, "2.7.0", "Authentication successful");
            Ok(())
        } else {
            self.auth_failed()
        }
    }

    /// The peer's address is locked out of AUTH (logged at debug: the lockout itself was logged).
    fn locked_out(&self) -> bool {
        let locked = self
            .server
            .anvil
            .auth_locked(self.peer.ip(), Instant::now());
        if locked {
            tracing::debug!(peer = %self.peer, "smtp: AUTH from a locked-out address");
        }
        locked
    }

    /// Waits `smtp.auth_failure_delay` if a failed AUTH was just answered (shutdown cuts it short).
    pub(super) async fn auth_failure_pause(&mut self) -> Result<(), End> {
        if !std::mem::take(&mut self.auth_pause) {
            return Ok(());
        }
        let delay = self.server.cfg.smtp.auth_failure_delay.0;
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = self.shutdown.cancelled() => Ok(()),
        }
    }

    fn auth_failed(&mut self) -> Result<(), End> {
        self.auth_failures += 1;
        self.auth_pause = true;
        tracing::warn!(peer = %self.peer, failures = self.auth_failures, "smtp: authentication failed");
        if self
            .server
            .anvil
            .auth_failed(self.peer.ip(), Instant::now())
        {
            SmtpStats::bump(&self.server.stats.auth_lockouts);
            let s = &self.server.cfg.smtp;
            tracing::warn!(ip = %self.peer.ip(), failures = s.auth_max_failures, lockout = ?s.auth_lockout.0, "smtp: too many failed AUTH attempts, locking the address out");
        }
        self.reply(535, "5.7.8", "Authentication credentials invalid");
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.reply(
                421,
                "4.7.0",
                "Too many authentication failures, closing connection",
            );
            return Err(End::Protocol);
        }
        Ok(())
    }
}

/// Checks every configured user in constant time per comparison (no early exit on the name).
pub fn credentials_match(users: &[SmtpUser], user: &str, pass: &[u8]) -> bool {
    let mut found = false;
    for u in users {
        let name_ok = secrets_eq(u.name.as_bytes(), user.as_bytes());
        let pass_ok = secrets_eq(u.password.expose().as_bytes(), pass);
        found |= name_ok & pass_ok;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn credentials_need_both_name_and_password() {
        let users = vec![SmtpUser {
            name: "app".into(),
            password: Secret("s3cret".into()),
        }];
        assert!(credentials_match(&users, "app", b"s3cret"));
        assert!(!credentials_match(&users, "app", b"s3cre"));
        assert!(!credentials_match(&users, "ap", b"s3cret"));
        assert!(!credentials_match(&[], "app", b"s3cret"));
    }
}
