//! Command handlers: parsing a command line with smtp-proto, then EHLO/HELO (our
//! own EHLO reply), MAIL (parameters, SIZE, SMTPUTF8, `accepting()`), RCPT (relay
//! control, suppression, recipient limit) and the small verbs.

use smtp_proto::{
    MAIL_BODY_BINARYMIME, MAIL_BY_NOTIFY, MAIL_BY_RETURN, MAIL_CONPERM, MAIL_REQUIRETLS,
    MAIL_RET_FULL, MAIL_RET_HDRS, MAIL_SMTPUTF8, MailFrom, RCPT_CONNEG, RCPT_NOTIFY_DELAY,
    RCPT_NOTIFY_FAILURE, RCPT_NOTIFY_NEVER, RCPT_NOTIFY_SUCCESS, RCPT_RRVS_CONTINUE,
    RCPT_RRVS_REJECT, RcptTo, Request,
};

use super::session::{End, Envelope, Session};
use crate::inbound::intake::{Intake, RcptDecision, RecipientSpec};
use crate::model::address::Address;
use crate::model::dsn_request::{DsnNotify, DsnRet};

/// Commands that take no argument; anything after them is a syntax error.
const BARE_VERBS: [&str; 4] = ["STARTTLS", "DATA", "RSET", "QUIT"];

/// A refusal: `(code, enhanced, text)`.
type Refusal = (u16, &'static str, String);

impl<I: Intake> Session<I> {
    /// Handles one complete command line; `input` is what follows it in the current batch.
    pub(super) async fn command(&mut self, line: &[u8], input: &mut &[u8]) -> Result<(), End> {
        if let Some((code, enhanced, text)) = self.refused_unparsed(line) {
            return self.error(code, enhanced, text);
        }
        let host = self.server.cfg.server.hostname.clone();
        let rewritten = local_postmaster(line, &host);
        let line = rewritten.as_deref().unwrap_or(line);
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r.into_owned(),
            Err(e) => return self.parse_error(e),
        };
        self.dispatch(request, input).await
    }

    /// What the raw line alone earns a refusal for: an argument to a bare verb, a source
    /// route, or a SIZE above `smtp.max_message_size`.
    fn refused_unparsed(&self, line: &[u8]) -> Option<Refusal> {
        if let Some(verb) = bare_verb_with_argument(line) {
            return Some((
                501,
                "5.5.4",
                format!("Syntax error: {verb} takes no arguments"),
            ));
        }
        if has_source_route(line) {
            return Some((553, "5.1.3", "Source routes are not accepted".into()));
        }
        let max = self.server.cfg.smtp.max_message_size.0;
        if size_param_exceeds(line, max) {
            return Some((
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size ({max} octets)"),
            ));
        }
        None
    }

    /// Runs one parsed command.
    async fn dispatch(&mut self, request: Request<String>, input: &mut &[u8]) -> Result<(), End> {
        match request {
            Request::Ehlo { host } => self.hello(&host, true),
            Request::Helo { host } => self.hello(&host, false),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to),
            Request::Data => self.data_command(!input.is_empty()),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat_command(chunk_size, is_last).await,
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth_command(mechanism, &initial_response),
            Request::StartTls => self.start_tls(input).await,
            Request::Rset => {
                self.envelope = None;
                self.data_clock = None;
                self.reply(250, "2.0.0", "OK");
                Ok(())
            }
            Request::Noop { .. } => {
                self.reply(250, "2.0.0", "OK");
                Ok(())
            }
            Request::Quit => {
                let host = self.server.cfg.server.hostname.clone();
                self.reply(221, "2.0.0", format!("{host} Bye"));
                Err(End::Quit)
            }
            Request::Vrfy { .. } => {
                self.reply(
                    252,
                    "2.5.0",
                    "Cannot VRFY user, but will accept message and attempt delivery",
                );
                Ok(())
            }
            Request::Expn { .. } => self.error(502, "5.5.1", "EXPN not supported"),
            Request::Help { .. } => {
                self.reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
                Ok(())
            }
            Request::Lhlo { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.error(502, "5.5.1", "Command not implemented"),
        }
    }

    fn parse_error(&mut self, e: smtp_proto::Error) -> Result<(), End> {
        use smtp_proto::Error as E;
        match e {
            E::UnknownCommand => self.error(500, "5.5.1", "Unknown command"),
            E::InvalidSenderAddress | E::InvalidRecipientAddress => {
                self.error(501, "5.1.3", "Bad address syntax")
            }
            E::SyntaxError { syntax } => self.error(501, "5.5.2", format!("Syntax: {syntax}")),
            E::InvalidParameter { param } => {
                self.error(501, "5.5.4", format!("Invalid {param} parameter"))
            }
            E::UnsupportedParameter { param } => self.error(
                555,
                "5.5.4",
                format!("Unsupported parameter {}", printable(&param, 40)),
            ),
            E::ResponseTooLong => self.error(500, "5.5.2", "Line too long"),
            E::NeedsMoreData { .. } | E::InvalidResponse { .. } => {
                self.error(500, "5.5.2", "Syntax error")
            }
        }
    }

    fn hello(&mut self, host: &str, extended: bool) -> Result<(), End> {
        let helo = printable(host, 255);
        let me = self.server.cfg.server.hostname.clone();
        let ip = self.peer.ip();
        self.envelope = None;
        self.data_clock = None;
        self.helo = Some(helo.clone());
        self.esmtp = extended;
        if !extended {
            self.reply(250, "", format!("{me} Hello {helo} [{ip}]"));
            return Ok(());
        }
        let lines = self.ehlo_lines(format!("{me} Hello {helo} [{ip}]"));
        self.reply_lines(250, &lines);
        Ok(())
    }

    fn ehlo_lines(&self, first: String) -> Vec<String> {
        let mut lines = vec![
            first,
            "PIPELINING".to_string(),
            format!("SIZE {}", self.server.cfg.smtp.max_message_size.0),
        ];
        for ext in [
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "CHUNKING",
            "DSN",
        ] {
            lines.push(ext.to_string());
        }
        if self.server.tls.is_some() && !self.stream.is_tls() {
            lines.push("STARTTLS".to_string());
        }
        if self.stream.is_tls() && !self.server.cfg.smtp.users.is_empty() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        lines
    }

    fn mail(&mut self, from: MailFrom<String>) -> Result<(), End> {
        if self.helo.is_none() {
            return self.error(503, "5.5.1", "Send EHLO/HELO first");
        }
        if self.envelope.is_some() {
            return self.error(503, "5.5.1", "Nested MAIL command");
        }
        if let Err(e) = self.server.intake.accepting() {
            let (code, enhanced, text) = e.smtp_reply();
            self.reply(code, enhanced, text);
            return Ok(());
        }
        match self.open_envelope(from) {
            Ok(env) => {
                let shown = env
                    .sender
                    .as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                self.envelope = Some(env);
                self.reply(250, "2.1.0", format!("Sender <{shown}> OK"));
                Ok(())
            }
            Err((code, enhanced, text)) => self.error(code, enhanced, text),
        }
    }

    fn open_envelope(&self, from: MailFrom<String>) -> Result<Envelope, Refusal> {
        let unsupported =
            MAIL_BODY_BINARYMIME | MAIL_REQUIRETLS | MAIL_CONPERM | MAIL_BY_NOTIFY | MAIL_BY_RETURN;
        if from.flags & unsupported != 0
            || from.mtrk.is_some()
            || from.hold_for != 0
            || from.hold_until != 0
            || from.solicit.is_some()
        {
            return Err((555, "5.5.4", "Unsupported MAIL parameter".into()));
        }
        let max = self.server.cfg.smtp.max_message_size.0;
        if from.size as u64 > max {
            return Err((
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size ({max} octets)"),
            ));
        }
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        let sender = if from.address.is_empty() {
            None
        } else {
            Some(parse_address(&from.address, smtputf8)?)
        };
        let env_id = match from.env_id {
            Some(id) if id.is_empty() || id.len() > 100 || id.chars().any(|c| c.is_control()) => {
                return Err((501, "5.5.4", "Invalid ENVID parameter".into()));
            }
            other => other,
        };
        let ret = match (
            from.flags & MAIL_RET_FULL != 0,
            from.flags & MAIL_RET_HDRS != 0,
        ) {
            (true, true) => return Err((501, "5.5.4", "Invalid RET parameter".into())),
            (true, false) => Some(DsnRet::Full),
            (false, true) => Some(DsnRet::Headers),
            (false, false) => None,
        };
        Ok(Envelope {
            sender,
            smtputf8,
            env_id,
            ret,
            recipients: Vec::new(),
            chunked: None,
        })
    }

    fn rcpt(&mut self, to: RcptTo<String>) -> Result<(), End> {
        let Some(env) = &self.envelope else {
            return self.error(503, "5.5.1", "Need MAIL command before RCPT");
        };
        if env.chunked.is_some() {
            return self.error(503, "5.5.1", "RCPT not allowed during BDAT transfer");
        }
        if env.recipients.len() >= self.server.cfg.smtp.max_recipients {
            self.reply(452, "4.5.3", "Too many recipients");
            return Ok(());
        }
        if env.sender.is_none() && !env.recipients.is_empty() {
            return self.error(
                550,
                "5.5.3",
                "Null sender (bounce) mail must have exactly one recipient",
            );
        }
        let spec = match recipient_spec(to, env.smtputf8) {
            Ok(spec) => spec,
            Err((code, enhanced, text)) => return self.error(code, enhanced, text),
        };
        match self.server.intake.check_recipient(&spec.address) {
            RcptDecision::BounceIntake => {}
            RcptDecision::Relay if self.relay_allowed() => {}
            // RFC 5321 §4.5.1: the postmaster is reachable from anyone.
            RcptDecision::Relay
                if is_local_postmaster(&spec.address, &self.server.cfg.server.hostname) => {}
            RcptDecision::Relay => {
                tracing::info!(peer = %self.peer, rcpt = %spec.address, "smtp: relaying denied");
                return self.error(550, "5.7.1", "Relaying denied");
            }
            RcptDecision::RejectSuppressed(reason) => {
                return self.error(
                    550,
                    "5.1.1",
                    format!("<{}>: recipient is suppressed ({reason})", spec.address),
                );
            }
        }
        let shown = spec.address.to_string();
        if let Some(env) = self.envelope.as_mut() {
            env.recipients.push(spec);
        }
        self.reply(250, "2.1.5", format!("Recipient <{shown}> OK"));
        Ok(())
    }
}

/// `RCPT TO:<postmaster>` (no domain, any case) rewritten to `postmaster@<hostname>`: RFC 5321
/// §4.5.1 requires accepting it, and the parser wants a domain.
fn local_postmaster(line: &[u8], host: &str) -> Option<Vec<u8>> {
    const PREFIX: &[u8] = b"rcpt to:<postmaster>";
    if line.len() < PREFIX.len() || !line[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let mut out = b"RCPT TO:<postmaster@".to_vec();
    out.extend_from_slice(host.as_bytes());
    out.push(b'>');
    out.extend_from_slice(&line[PREFIX.len()..]);
    Some(out)
}

/// The postmaster of this host, which any client may mail.
fn is_local_postmaster(a: &Address, host: &str) -> bool {
    a.as_str()
        .eq_ignore_ascii_case(&format!("postmaster@{host}"))
}

/// True when `line` is a MAIL command whose `SIZE=` declares more than `max` octets, read
/// from the digits themselves (any length), so a value past `u64` cannot wrap to a small one.
fn size_param_exceeds(line: &[u8], max: u64) -> bool {
    if line.len() < 5 || !line[..5].eq_ignore_ascii_case(b"MAIL ") {
        return false;
    }
    let Some(gt) = line.iter().position(|&b| b == b'>') else {
        return false;
    };
    line[gt + 1..]
        .split(|b| b.is_ascii_whitespace())
        .any(|param| {
            let Some(value) = param
                .get(5..)
                .filter(|_| param.len() > 5 && param[..5].eq_ignore_ascii_case(b"SIZE="))
            else {
                return false;
            };
            if !value.iter().all(u8::is_ascii_digit) {
                return false;
            }
            let digits = value.iter().skip_while(|&&b| b == b'0').count();
            digits > 19
                || std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none_or(|n| n > max)
        })
}

/// Validates an envelope address: non-ASCII needs SMTPUTF8, then [`Address::parse`].
pub fn parse_address(raw: &str, smtputf8: bool) -> Result<Address, Refusal> {
    if !raw.is_ascii() && !smtputf8 {
        return Err((553, "5.6.7", "Non-ASCII address requires SMTPUTF8".into()));
    }
    Address::parse(raw).map_err(|e| {
        (
            553,
            "5.1.3",
            format!("Bad address <{}>: {e}", printable(raw, 100)),
        )
    })
}

fn recipient_spec(to: RcptTo<String>, smtputf8: bool) -> Result<RecipientSpec, Refusal> {
    if to.flags & (RCPT_CONNEG | RCPT_RRVS_REJECT | RCPT_RRVS_CONTINUE) != 0 || to.rrvs != 0 {
        return Err((555, "5.5.4", "Unsupported RCPT parameter".into()));
    }
    if to.address.is_empty() {
        return Err((501, "5.1.3", "Empty recipient address".into()));
    }
    let address = parse_address(&to.address, smtputf8)?;
    let orcpt = match to.orcpt {
        Some(o) if o.len() > 500 || o.chars().any(|c| c.is_control()) => {
            return Err((501, "5.5.4", "Invalid ORCPT parameter".into()));
        }
        // smtp-proto keeps only the address; the type it accepts is always rfc822.
        other => other.map(|o| format!("rfc822;{o}")),
    };
    let notify_bits = to.flags
        & (RCPT_NOTIFY_NEVER | RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE | RCPT_NOTIFY_DELAY);
    if notify_bits & RCPT_NOTIFY_NEVER != 0 && notify_bits != RCPT_NOTIFY_NEVER {
        return Err((501, "5.5.4", "NOTIFY=NEVER cannot be combined".into()));
    }
    let notify = (notify_bits != 0).then_some(DsnNotify {
        never: notify_bits & RCPT_NOTIFY_NEVER != 0,
        success: notify_bits & RCPT_NOTIFY_SUCCESS != 0,
        failure: notify_bits & RCPT_NOTIFY_FAILURE != 0,
        delay: notify_bits & RCPT_NOTIFY_DELAY != 0,
    });
    Ok(RecipientSpec {
        address,
        orcpt,
        notify,
    })
}

/// `STARTTLS x`, `DATA x`, ...: smtp-proto ignores such arguments; we refuse them.
fn bare_verb_with_argument(line: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(line)
        .ok()?
        .trim_end_matches(['\r', '\n']);
    let (verb, rest) = text.split_once([' ', '\t'])?;
    if rest.trim().is_empty() {
        return None;
    }
    BARE_VERBS
        .into_iter()
        .find(|v| v.eq_ignore_ascii_case(verb))
}

/// `MAIL FROM:<@hop:a@b>` / `RCPT TO:<@hop:a@b>`: smtp-proto drops the route silently;
/// a relay must not let a hidden hop through, so the command is refused.
fn has_source_route(line: &[u8]) -> bool {
    let verb = line.get(..4).unwrap_or_default();
    if !verb.eq_ignore_ascii_case(b"MAIL") && !verb.eq_ignore_ascii_case(b"RCPT") {
        return false;
    }
    match memchr::memchr(b'<', line) {
        Some(i) => line.get(i + 1) == Some(&b'@'),
        None => false,
    }
}

/// Client-supplied text made safe for replies, headers and logs: printable ASCII only, bounded.
pub fn printable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod size_tests {
    use super::size_param_exceeds;

    #[test]
    fn declared_sizes_are_compared_without_overflow() {
        assert!(size_param_exceeds(
            b"MAIL FROM:<a@b> SIZE=50000000000000000000000",
            1000
        ));
        assert!(size_param_exceeds(
            b"mail FROM:<a@b> BODY=8BITMIME size=1001",
            1000
        ));
        assert!(!size_param_exceeds(b"MAIL FROM:<a@b> SIZE=1000", 1000));
        assert!(!size_param_exceeds(
            b"MAIL FROM:<a@b> SIZE=00000000000000000000001000",
            1000
        ));
        assert!(
            !size_param_exceeds(b"MAIL FROM:<a@b> SIZE=12ab", 1000),
            "left to the parser's syntax error"
        );
        assert!(!size_param_exceeds(b"RCPT TO:<a@b> SIZE=5000", 1000));
    }

    #[test]
    fn the_bare_postmaster_gets_this_hosts_domain() {
        use super::local_postmaster;
        assert_eq!(
            local_postmaster(b"RCPT TO:<Postmaster> NOTIFY=NEVER", "relay.test").as_deref(),
            Some(&b"RCPT TO:<postmaster@relay.test> NOTIFY=NEVER"[..])
        );
        assert_eq!(
            local_postmaster(b"RCPT TO:<postmaster@example.com>", "relay.test"),
            None
        );
        assert_eq!(
            local_postmaster(b"MAIL FROM:<postmaster>", "relay.test"),
            None
        );
    }
}
