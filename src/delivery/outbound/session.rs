//! One SMTP transaction on an open [`Connection`]: MAIL FROM, one RCPT per
//! recipient (pipelined when offered, each reply kept), DATA with our own body
//! encoding, or RSET when every recipient was refused or the transaction was
//! cut short; after a completed DATA the connection carries the next MAIL as is.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::delivery::outbound::Transaction;
use crate::delivery::outbound::body::encode_for_data;
use crate::delivery::outbound::client::{Connection, Settings};
use crate::delivery::outbound::reply::{connection_lost, synthetic, timed_out};
use crate::model::Reply;

/// The replies of one transaction, one per recipient, and whether the connection may be reused.
#[derive(Debug)]
pub struct TxResult {
    pub replies: Vec<Reply>,
    pub reusable: bool,
}

impl Connection {
    /// Writes `bytes` within `t`; a failure is the synthetic reply for everyone still waiting.
    async fn send(&mut self, bytes: &[u8], t: Duration, step: &str) -> Result<(), Reply> {
        let io = &mut self.io;
        match tokio::time::timeout(t, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(connection_lost(step, e)),
            Err(_) => Err(timed_out(step, t)),
        }
    }

    async fn reply(&mut self, t: Duration, step: &str) -> Result<Reply, Reply> {
        self.reader
            .read(&mut self.io, t)
            .await
            .map_err(|e| e.to_reply(step))
    }

    async fn command(&mut self, cmd: &str, t: Duration, step: &str) -> Result<Reply, Reply> {
        self.send(cmd.as_bytes(), t, step).await?;
        self.reply(t, step).await
    }

    /// RSET; true when the server answered 250 and nothing unexpected is buffered.
    pub async fn reset(&mut self, s: &Settings) -> bool {
        matches!(self.command("RSET\r\n", s.command_timeout, "RSET").await, Ok(r) if r.is_positive())
            && !self.reader.has_surplus()
    }

    /// QUIT and close, ignoring whatever happens.
    pub async fn quit(mut self, t: Duration) {
        let _ = self.command("QUIT\r\n", t, "QUIT").await;
        let _ = tokio::time::timeout(t, self.io.shutdown()).await;
    }

    /// Runs `tx`; never fails as a whole: failures become per-recipient replies.
    pub async fn run(&mut self, tx: &Transaction, s: &Settings) -> TxResult {
        let n = tx.recipients.len();
        if let Some(r) = self.cannot_send(tx) {
            return TxResult {
                replies: vec![r; n],
                reusable: true,
            };
        }
        let (mail, rcpts) = match self.envelope(tx, s).await {
            Ok(v) => v,
            Err(r) => {
                return TxResult {
                    replies: vec![r; n],
                    reusable: false,
                };
            }
        };
        if !mail.is_positive() {
            let reusable = mail.code != 421 && self.reset(s).await;
            return TxResult {
                replies: vec![mail; n],
                reusable,
            };
        }
        if !rcpts.iter().any(Reply::is_positive) {
            let reusable = !rcpts.iter().any(|r| r.code == 421) && self.reset(s).await;
            return TxResult {
                replies: rcpts,
                reusable,
            };
        }
        self.send_body(tx, s, rcpts).await
    }

    /// The permanent refusal for every recipient when `tx` cannot go on this connection at
    /// all: an unsafe envelope sender, or addresses that need SMTPUTF8 the server lacks.
    fn cannot_send(&self, tx: &Transaction) -> Option<Reply> {
        if !sender_is_safe(&tx.mail_from) {
            return Some(synthetic(
                553,
                (5, 1, 7),
                format!("invalid envelope sender {:?}", tx.mail_from),
            ));
        }
        if needs_smtputf8(tx) && !self.smtputf8 {
            // RFC 6531 §3.2: an internationalised address cannot be downgraded; it bounces.
            return Some(synthetic(
                553,
                (5, 6, 7),
                format!(
                    "{} does not support SMTPUTF8, which this message's addresses need",
                    self.host
                ),
            ));
        }
        None
    }

    /// DATA and the body after at least one accepted RCPT: each accepted recipient gets the
    /// reply to the body, each refused one keeps its RCPT reply.
    async fn send_body(&mut self, tx: &Transaction, s: &Settings, rcpts: Vec<Reply>) -> TxResult {
        let (data_reply, ok, completed) = match self.data(tx, s).await {
            Ok((r, completed)) => (r, true, completed),
            Err(r) => (r, false, false),
        };
        // The reply after the body ends the transaction (RFC 5321 §4.1.1.4): the next MAIL
        // needs no RSET, which saves a round trip per message on a reused connection.
        let reusable = ok
            && data_reply.code != 421
            && (completed || self.reset(s).await)
            && !self.reader.has_surplus();
        let replies = rcpts
            .into_iter()
            .map(|r| {
                if r.is_positive() {
                    data_reply.clone()
                } else {
                    r
                }
            })
            .collect();
        TxResult { replies, reusable }
    }

    /// MAIL and the RCPTs (one write when pipelining), with every reply in order.
    /// `Err` is a transport failure: the connection is gone.
    async fn envelope(
        &mut self,
        tx: &Transaction,
        s: &Settings,
    ) -> Result<(Reply, Vec<Reply>), Reply> {
        let t = s.command_timeout;
        let mut mail = format!("MAIL FROM:<{}>", wire_address(&tx.mail_from));
        if self.size > 0 {
            mail.push_str(&format!(" SIZE={}", tx.body.len()));
        }
        // RFC 6152: say so when the body is not 7-bit (a server without 8BITMIME gets it as is).
        if self.eight_bit_mime && !tx.body.is_ascii() {
            mail.push_str(" BODY=8BITMIME");
        }
        if self.smtputf8 && needs_smtputf8(tx) {
            mail.push_str(" SMTPUTF8");
        }
        mail.push_str("\r\n");
        // Domains go as A-labels; only an internationalised local part needs SMTPUTF8 (RFC 6531).
        let rcpt_cmds: Vec<String> = tx
            .recipients
            .iter()
            .map(|r| format!("RCPT TO:<{}>\r\n", wire_address(r.as_str())))
            .collect();
        if self.pipelining {
            let batch: String = std::iter::once(mail).chain(rcpt_cmds).collect();
            self.send(batch.as_bytes(), t, "MAIL FROM/RCPT TO").await?;
            let mail_reply = self.reply(t, "MAIL FROM").await?;
            let mut rcpts = Vec::with_capacity(tx.recipients.len());
            for _ in &tx.recipients {
                rcpts.push(self.reply(t, "RCPT TO").await?);
            }
            return Ok((mail_reply, rcpts));
        }
        let mail_reply = self.command(&mail, t, "MAIL FROM").await?;
        if !mail_reply.is_positive() {
            return Ok((mail_reply, Vec::new()));
        }
        let mut rcpts = Vec::with_capacity(rcpt_cmds.len());
        for cmd in &rcpt_cmds {
            rcpts.push(self.command(cmd, t, "RCPT TO").await?);
        }
        Ok((mail_reply, rcpts))
    }

    /// DATA, body, final reply. `Ok` is the server's reply (to DATA if not 354, else the
    /// final one) and whether the body was sent; `Err` a synthetic reply after a transport failure.
    async fn data(&mut self, tx: &Transaction, s: &Settings) -> Result<(Reply, bool), Reply> {
        let go = self.command("DATA\r\n", s.command_timeout, "DATA").await?;
        if go.code != 354 {
            return Ok((go, false));
        }
        let wire = encode_for_data(&tx.body);
        self.send(&wire, s.data_timeout, "the message body").await?;
        let done = self
            .reply(s.data_timeout, "end of data")
            .await
            .map_err(|r| {
                let text = format!(
                    "{} (the message may have been delivered; it will be retried)",
                    r.text
                );
                Reply { text, ..r }
            })?;
        Ok((done, true))
    }
}

/// True when an envelope address has a local part that is not ASCII (RFC 6531); a non-ASCII
/// domain alone goes as its A-label.
fn needs_smtputf8(tx: &Transaction) -> bool {
    let sender_local = tx
        .mail_from
        .rsplit_once('@')
        .map_or(tx.mail_from.as_str(), |(l, _)| l);
    !sender_local.is_ascii() || tx.recipients.iter().any(|r| !r.local_part().is_ascii())
}

/// An address as it goes on the wire: exactly as received, except that an internationalised
/// domain becomes its A-label when the local part is ASCII (no SMTPUTF8 needed then).
fn wire_address(addr: &str) -> String {
    match addr.rsplit_once('@') {
        Some((local, domain)) if local.is_ascii() && !domain.is_ascii() => {
            format!(
                "{local}@{}",
                crate::model::address::normalise_domain(domain)
            )
        }
        _ => addr.to_string(),
    }
}

/// The reverse path goes on the wire inside `<>`: no controls, spaces or brackets.
fn sender_is_safe(s: &str) -> bool {
    s.len() <= 512
        && !s
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || b == b'<' || b == b'>')
}
