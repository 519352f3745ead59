//! DATA and BDAT: entering the body phase, feeding bytes to the [`BodyReceiver`],
//! and at the end either a precise refusal (nothing stored) or the `Received:`
//! header, `Intake::submit`, and `250 2.0.0 Ok: queued as <id>` once it resolved (`Ok: report received` when only returned reports were taken).

use tokio::time::Instant;

use super::SmtpStats;
use super::body::{BodyProblem, BodyReceiver, Framing};
use super::commands::printable;
use super::session::{End, Envelope, Phase, Session};
use crate::inbound::intake::{Intake, IntakeError, RcptDecision, Submission};
use crate::model::time::Timestamp;

impl<I: Intake> Session<I> {
    /// DATA; `pipelined_after` is true when more input followed it in the same batch.
    pub(super) fn data_command(&mut self, pipelined_after: bool) -> Result<(), End> {
        let Some(env) = &self.envelope else {
            return self.error(503, "5.5.1", "Need MAIL command");
        };
        if env.chunked.is_some() {
            return self.error(503, "5.5.1", "DATA not allowed after BDAT");
        }
        if env.recipients.is_empty() {
            return self.error(503, "5.5.1", "Need RCPT command");
        }
        if pipelined_after {
            tracing::info!(peer = %self.peer, "smtp: data sent before the 354 reply");
            self.reply(
                554,
                "5.5.0",
                "Error: SMTP protocol synchronization (DATA must end a pipelined group)",
            );
            return Err(End::Protocol);
        }
        let max = self.max_size();
        self.phase = Phase::Data(Box::new(BodyReceiver::new(Framing::Dot, max)));
        self.data_clock = Some((Instant::now(), 0));
        self.reply(354, "", "Start mail input; end with <CRLF>.<CRLF>");
        Ok(())
    }

    pub(super) async fn data_bytes(&mut self, input: &mut &[u8]) -> Result<(), End> {
        let Phase::Data(rx) = &mut self.phase else {
            return Ok(());
        };
        let (used, done) = rx.ingest(input);
        *input = &input[used..];
        if !done {
            return Ok(());
        }
        let Phase::Data(rx) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return Ok(());
        };
        self.finish_message(*rx).await
    }

    pub(super) async fn bdat_command(&mut self, size: usize, last: bool) -> Result<(), End> {
        let max = self.max_size();
        let refusal = match &mut self.envelope {
            None => Some((503, "5.5.1", "Need MAIL command".to_string())),
            Some(env) if env.recipients.is_empty() => {
                Some((503, "5.5.1", "Need RCPT command".to_string()))
            }
            Some(env) => {
                let rx = env
                    .chunked
                    .get_or_insert_with(|| Box::new(BodyReceiver::new(Framing::Chunked, max)));
                (rx.size().saturating_add(size as u64) > max as u64).then(|| {
                    (
                        552,
                        "5.3.4",
                        format!("Message size exceeds fixed maximum message size ({max} octets)"),
                    )
                })
            }
        };
        if self.data_clock.is_none() {
            self.data_clock = Some((Instant::now(), 0));
        }
        self.phase = Phase::Bdat {
            left: size,
            last,
            refusal,
        };
        if size == 0 {
            return self.chunk_done().await;
        }
        Ok(())
    }

    pub(super) async fn bdat_bytes(&mut self, input: &mut &[u8]) -> Result<(), End> {
        let Phase::Bdat { left, refusal, .. } = &mut self.phase else {
            return Ok(());
        };
        let take = (*left).min(input.len());
        let (chunk, rest) = input.split_at(take);
        *left -= take;
        let left_now = *left;
        if refusal.is_none()
            && let Some(rx) = self.envelope.as_mut().and_then(|e| e.chunked.as_mut())
        {
            rx.ingest(chunk);
        }
        *input = rest;
        if left_now == 0 {
            return self.chunk_done().await;
        }
        Ok(())
    }

    /// A whole BDAT chunk has been read: refuse, acknowledge, or finish the message.
    async fn chunk_done(&mut self) -> Result<(), End> {
        let Phase::Bdat { last, refusal, .. } = std::mem::replace(&mut self.phase, Phase::Command)
        else {
            return Ok(());
        };
        if let Some((code, enhanced, text)) = refusal {
            if code == 552 {
                self.envelope = None;
            }
            self.data_clock = None;
            return self.error(code, enhanced, text);
        }
        let rx = self.envelope.as_mut().and_then(|e| e.chunked.as_mut());
        let Some(rx) = rx else { return Ok(()) };
        if !last {
            let seen = rx.size();
            self.reply(250, "2.0.0", format!("{seen} octets received"));
            return Ok(());
        }
        rx.finish_chunked();
        let Some(rx) = self.envelope.as_mut().and_then(|e| e.chunked.take()) else {
            return Ok(());
        };
        self.finish_message(*rx).await
    }

    /// End of a message: check limits, then submit and acknowledge.
    async fn finish_message(&mut self, rx: BodyReceiver) -> Result<(), End> {
        self.data_clock = None;
        let max = self.max_size();
        let Some(env) = self.envelope.take() else {
            return Ok(());
        };
        let body = match rx.into_body() {
            Ok(body) => body,
            Err(problem) => {
                let (code, enhanced, text) = refusal_for(problem, max);
                self.reply(code, enhanced, text);
                return Ok(());
            }
        };
        self.submit(env, body).await
    }

    async fn submit(&mut self, env: Envelope, body: Vec<u8>) -> Result<(), End> {
        let trace_id = format!("{:016x}", rand::random::<u64>());
        let mut full = self.received_header(&env, &trace_id).into_bytes();
        full.extend_from_slice(&body);
        drop(body);
        let rcpts = env.recipients.len();
        let sub = Submission {
            session: self.info(),
            sender: env.sender,
            recipients: env.recipients,
            env_id: env.env_id,
            ret: env.ret,
            body: full,
        };
        match self.server.intake.submit(sub).await {
            Ok(receipt) => {
                SmtpStats::bump(&self.server.stats.messages_accepted);
                tracing::info!(peer = %self.peer, trace_id, queue_id = %receipt.queue_id, rcpts, "smtp: message accepted");
                self.reply(250, "2.0.0", receipt.reply_text());
                Ok(())
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, trace_id, error = %e, "smtp: submission failed");
                let (code, enhanced, text) = e.smtp_reply();
                self.reply(code, enhanced, text);
                if e == IntakeError::ShuttingDown {
                    Err(End::Shutdown)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The RFC 5321 §4.4 trace header, folded, without reverse DNS.
    fn received_header(&self, env: &Envelope, trace_id: &str) -> String {
        let helo = printable(self.helo.as_deref().unwrap_or("unknown"), 100);
        let ip = match self.peer.ip() {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("IPv6:{v6}"),
        };
        let host = &self.server.cfg.server.hostname;
        let proto = protocol_name(
            self.esmtp,
            env.smtputf8,
            self.stream.is_tls(),
            self.auth_user.is_some(),
        );
        let rcpt = match env.recipients.as_slice() {
            [one] => format!("\r\n\tfor <{}>", one.address),
            _ => String::new(),
        };
        let date = Timestamp::now().to_rfc5322();
        format!(
            "Received: from {helo} ([{ip}])\r\n\tby {host} (rebound) with {proto} id {trace_id}{rcpt};\r\n\t{date}\r\n"
        )
    }

    /// The size limit of this transaction: `smtp.max_message_size`, or the smaller
    /// `bounces.max_report_size` when every recipient is at the bounce domain (returned mail,
    /// which any host on the Internet may send).
    fn max_size(&self) -> usize {
        let cfg = &self.server.cfg;
        let all_returned = self.envelope.as_ref().is_some_and(|env| {
            !env.recipients.is_empty()
                && env.recipients.iter().all(|r| {
                    self.server.intake.check_recipient(&r.address) == RcptDecision::BounceIntake
                })
        });
        let max = if all_returned {
            cfg.smtp
                .max_message_size
                .0
                .min(cfg.bounces.max_report_size.0)
        } else {
            cfg.smtp.max_message_size.0
        };
        usize::try_from(max).unwrap_or(usize::MAX)
    }
}

/// `with` protocol names (RFC 3848, RFC 6531).
fn protocol_name(esmtp: bool, utf8: bool, tls: bool, auth: bool) -> String {
    let base = match (esmtp, utf8) {
        (false, _) => return "SMTP".to_string(),
        (true, true) => "UTF8SMTP",
        (true, false) => "ESMTP",
    };
    format!(
        "{base}{}{}",
        if tls { "S" } else { "" },
        if auth { "A" } else { "" }
    )
}

fn refusal_for(problem: BodyProblem, max: usize) -> (u16, &'static str, String) {
    match problem {
        BodyProblem::TooBig => (
            552,
            "5.3.4",
            format!("Message size exceeds fixed maximum message size ({max} octets)"),
        ),
        BodyProblem::HeaderLineTooLong => (
            500,
            "5.5.2",
            "Line too long (a header line exceeds 998 octets), message not accepted".to_string(),
        ),
        BodyProblem::Loop => (
            554,
            "5.4.6",
            "Too many Received headers: mail loop detected".to_string(),
        ),
    }
}
