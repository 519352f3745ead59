//! The bounce parser: a returned message (RFC 3464 DSN, a provider's plain-text NDR, an ARF
//! complaint, an auto-reply, or ordinary mail) in, one classified record per recipient out.
//! Pure: bytes in, [`BounceReport`] out, no I/O; must never panic (only mail-parser's panics are
//! caught, see [`parse`]).

pub mod arf;
pub mod autoreply;
pub mod command;
pub mod context;
pub mod dsn;
pub mod fields;
mod markers;
pub mod mbox;
mod opaque;
pub mod permanence;
pub mod recognisers;
mod report;

use crate::classify::find_reason;
use crate::model::{Action, Class, EnhancedCode, Reason};
pub use command::run_parse_command;
pub use context::Context;
use fields::{Field, field, find_address, find_enhanced, find_reply_code, squeeze};
pub use mbox::split_mbox;
pub use report::{BounceReport, OriginalHeaders, RecipientReport};

/// Most recipient records kept from one message; the rest of a giant report is dropped.
pub const MAX_RECIPIENTS: usize = 1000;
/// Above this many recipients the text around each one is not searched (that search is linear in
/// the body per recipient).
const MAX_TEXT_LOOKUPS: usize = 64;

/// Parses one returned message; a message that is not a bounce gives one record of class `none`
/// with no recipient.
///
/// Only the mail-parser call is guarded against panics (in [`Context::build`]; a panic there
/// reads the message by hand, `degraded`). There is no last-resort guard around rebound's own
/// code: a panic there is a bug for the hostile-input tests and the fuzz targets to find, and in
/// the daemon it ends only the SMTP session or API request that carried the message (nothing was
/// stored yet), where a guard would silently have turned the report into "not a bounce".
pub fn parse(raw: &[u8]) -> BounceReport {
    parse_unguarded(raw)
}

fn not_a_bounce() -> RecipientReport {
    RecipientReport {
        reason: Reason::Undefined,
        class: Class::Unclassified,
        rule: "none",
        ..RecipientReport::blank()
    }
}

/// What [`parse`] does, under the name the hostile-input tests and fuzz targets call: nothing but
/// the mail-parser call is guarded, so a panic in rebound's own code fails them.
#[doc(hidden)]
pub fn parse_unguarded(raw: &[u8]) -> BounceReport {
    let ctx = Context::build(raw);
    let mut report = BounceReport {
        degraded: ctx.degraded,
        ..BounceReport::default()
    };
    report.format = recognise(&ctx, &mut report);
    report.recipients.truncate(MAX_RECIPIENTS);
    if report.format != "dsn" {
        permanence::apply(&ctx, &mut report.recipients);
    }
    find_commands(&ctx, &mut report.recipients);
    fill_original(&ctx, &mut report);
    let evidence = Evidence {
        ctx: &ctx,
        says_unknown: std::cell::OnceCell::new(),
        recognised: report.format != "generic",
    };
    for r in &mut report.recipients {
        finalise(r, &evidence);
        hold_unexplained(r, evidence.recognised);
        r.action = infer_action(r);
    }
    if report.recipients.is_empty() {
        report.format = "none";
        report.recipients.push(not_a_bounce());
    }
    report
}

/// Runs the recognisers in order; returns the name of the one that understood the message.
fn recognise(ctx: &Context, report: &mut BounceReport) -> &'static str {
    if arf::recognise(ctx, report) {
        return "arf";
    }
    if !ctx.dsn.is_empty() && dsn::recognise(&ctx.dsn, report) {
        let lookups = if report.recipients.len() <= MAX_TEXT_LOOKUPS {
            report.recipients.len()
        } else {
            0
        };
        for r in report.recipients.iter_mut().take(lookups) {
            if r.diagnostic.as_deref().is_none_or(|d| d.trim().is_empty()) {
                r.diagnostic = recognisers::text_near(&ctx.body, r.recipient.as_deref());
            }
        }
        return "dsn";
    }
    if let Some((name, recipients)) = recognisers::run(ctx) {
        report.recipients = recipients;
        return name;
    }
    if autoreply::is_autoreply(ctx) && !recognisers::looks_like_bounce(ctx) {
        report.recipients = vec![autoreply::record(ctx)];
        return "autoreply";
    }
    if let Some(recipients) = recognisers::generic(ctx) {
        report.recipients = recipients;
        return "generic";
    }
    "none"
}

/// Which SMTP command each failure answered, unless its recogniser knew: from its diagnostic,
/// the text about it, or the whole notification when that names only one.
fn find_commands(ctx: &Context, recipients: &mut [RecipientReport]) {
    let text = ctx.notification();
    let whole = std::cell::OnceCell::new();
    let look_near = recipients.len() <= MAX_TEXT_LOOKUPS;
    for r in recipients.iter_mut().filter(|r| r.smtp_command.is_none()) {
        let near = || {
            r.recipient
                .as_deref()
                .and_then(|a| recognisers::near(text, a))
        };
        r.smtp_command = r
            .diagnostic
            .as_deref()
            .and_then(recognisers::smtp_command)
            .or_else(|| {
                if look_near {
                    near().and_then(recognisers::smtp_command)
                } else {
                    None
                }
            })
            .or_else(|| *whole.get_or_init(|| recognisers::smtp_command(text)));
    }
}

fn fill_original(ctx: &Context, report: &mut BounceReport) {
    let text_fields;
    let fields: &[Field] = match &ctx.original {
        Some(f) => f,
        None => {
            text_fields = recognisers::original_in_text(&ctx.body, ctx.marker);
            &text_fields
        }
    };
    let get = |n: &str| field(fields, n).map(str::to_string);
    let envelope_sender = report.original.envelope_sender.take();
    report.original = OriginalHeaders {
        envelope_sender,
        from: get("from"),
        to: get("to"),
        subject: get("subject"),
        message_id: get("message-id"),
        return_path: get("return-path"),
        rebound_headers: fields
            .iter()
            .filter(|f| context::is_rebound_field(&f.name))
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect(),
    };
    report.original_message_id = report.original.message_id.clone();
}

/// What the message as a whole says about its recipients' failures.
struct Evidence<'a> {
    ctx: &'a Context,
    says_unknown: std::cell::OnceCell<bool>,
    /// A recogniser (not the generic reader) understood the notice's format.
    recognised: bool,
}

impl Evidence<'_> {
    /// The reporting MTA's own notice says the address could not be found (looked for once,
    /// and only when a failure needs it).
    fn reporter_says_unknown(&self) -> bool {
        *self
            .says_unknown
            .get_or_init(|| recognisers::reporter_says_unknown(self.ctx))
    }
}

/// Fills in codes from the diagnostic and classifies a record a recogniser left unclassified:
/// the address and text tidied, the reply code and enhanced status read, the reason found (a
/// recogniser's own verdict is kept), the class derived from it.
fn finalise(r: &mut RecipientReport, evidence: &Evidence<'_>) {
    tidy(r);
    if matches!(r.class, Class::Complaint | Class::Autoreply) {
        return;
    }
    let taken = r.diagnostic.take();
    let whole = taken.as_deref().unwrap_or("");
    // When a relay quotes the remote server's reply, that reply is the one to read.
    let (quoted_code, diag) = match fields::quoted_reply(whole) {
        Some((code, text)) => (Some(code), text),
        None => (None, whole),
    };
    let success = is_success(r);
    fill_reply_code(r, quoted_code, diag, success);
    fill_status(r, diag, whole, success);
    (r.reason, r.rule) = reason_of(r, diag, evidence, success);
    r.diagnostic = taken;
    r.class = class_of(r);
}

/// The recipient as a bare address, the diagnostic with its white space squeezed.
fn tidy(r: &mut RecipientReport) {
    r.recipient = r.recipient.as_deref().and_then(find_address);
    if let Some(d) = r.diagnostic.as_mut() {
        *d = squeeze(d);
    }
}

/// The report says the message reached (or was passed on towards) the recipient.
fn is_success(r: &RecipientReport) -> bool {
    matches!(
        r.action.as_deref(),
        Some("delivered" | "relayed" | "expanded" | "deliverable")
    )
}

/// The basic reply code, when the report gave none: the quoted remote reply's, else the first in
/// the text (in a failure report a quoted 2xx, an earlier step of the transcript, is not it).
fn fill_reply_code(r: &mut RecipientReport, quoted: Option<u16>, diag: &str, success: bool) {
    if r.reply_code.is_some() {
        return;
    }
    r.reply_code = match quoted {
        Some(code) => Some(code),
        None if success => find_reply_code(diag),
        None => fields::find_failure_code(diag),
    };
}

/// The enhanced status: the remote server's own specific code in the text is more precise than
/// the reporting MTA's summary; a success code quoted in a failure text (a version number, a
/// relayed reply) is not a status.
fn fill_status(r: &mut RecipientReport, diag: &str, whole: &str, success: bool) {
    let is_specific = |e: &EnhancedCode| e.subject != 0 || e.detail != 0;
    // `find_enhanced` prefers a specific code, so one search of each text is enough.
    let in_diag = find_enhanced(diag);
    let specific = in_diag.filter(is_specific).or_else(|| {
        let quoted = diag.len() != whole.len();
        quoted
            .then(|| find_enhanced(whole))
            .flatten()
            .filter(is_specific)
    });
    match (r.status, specific) {
        (None, found) => r.status = found.or(in_diag),
        (Some(_), Some(found)) => r.status = Some(found),
        _ => {}
    }
    if r.status.is_some_and(|s| s.class == 2) && !success && r.reply_code.is_none_or(|c| c >= 300) {
        r.status = None;
    }
}

/// The reason and the rule that gave it: delivered for a success, the local program's failure
/// for `x-unix`, a recogniser's own verdict as it stands, else [`classify_failure`].
fn reason_of(
    r: &RecipientReport,
    diag: &str,
    evidence: &Evidence<'_>,
    success: bool,
) -> (Reason, &'static str) {
    if success {
        return (Reason::Delivered, "action.delivered");
    }
    let x_unix = r
        .diagnostic_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("x-unix"));
    if x_unix {
        return match crate::classify::match_text(diag) {
            Some((Reason::MailboxFull, rule)) => (Reason::MailboxFull, rule),
            _ => x_unix_by_status(r.status),
        };
    }
    if !r.rule.is_empty() {
        return (r.reason, r.rule);
    }
    classify_failure(r, diag, evidence)
}

/// A failure's reason from its codes and text ([`find_reason`]), then corrected in order by what
/// the report says around them: retries that ran out, a delay notice, the SMTP stage, a DNS
/// failure under a temporary status, unconfirmed "user unknown" words.
fn classify_failure(
    r: &RecipientReport,
    diag: &str,
    evidence: &Evidence<'_>,
) -> (Reason, &'static str) {
    let found = find_reason(r.reply_code, r.status, diag);
    let found = after_retries(r, diag, found);
    let found = delayed_vague(r, found);
    let found = by_stage(r.smtp_command, r.status, diag, found);
    let found = temporary_dns(r, found);
    unconfirmed(r, evidence, found)
}

/// A final report that gives up on a temporary failure (a timeout under a 4.x.x status, a network
/// failure under a 4xx reply): the retries ran out, `expired`.
fn after_retries(
    r: &RecipientReport,
    diag: &str,
    found: (Reason, &'static str),
) -> (Reason, &'static str) {
    let timed_out = fields::contains_ci(diag, "timed out") || fields::contains_ci(diag, "timeout");
    let final_report = matches!(r.action.as_deref(), Some("failed") | None);
    let temporary_status = r.status.is_some_and(|s| s.class == 4);
    let temporary_reply = r.reply_code.is_some_and(|c| (400..500).contains(&c));
    let gave_up =
        (temporary_status && timed_out) || (temporary_reply && found.0 == Reason::NetworkError);
    if final_report && gave_up {
        (Reason::Expired, "action.failed-after-retries")
    } else {
        found
    }
}

/// A delay notice whose only cause is a code class or a network failure: delivery is still being
/// retried, `expired` (the message is late).
fn delayed_vague(r: &RecipientReport, found: (Reason, &'static str)) -> (Reason, &'static str) {
    let vague =
        found.1.starts_with("reply.") || found.1.ends_with(".*") || found.0 == Reason::NetworkError;
    if r.action.as_deref() == Some("delayed") && vague {
        (Reason::Expired, "action.delayed")
    } else {
        found
    }
}

/// A DNS failure read from the text under a temporary status may clear: the MTA says so itself.
fn temporary_dns(r: &RecipientReport, found: (Reason, &'static str)) -> (Reason, &'static str) {
    if found.0 == Reason::HostUnknown
        && found.1.starts_with("text.")
        && r.status.is_some_and(|s| s.class == 4)
    {
        (Reason::NetworkError, "text.hostunknown.temporary")
    } else {
        found
    }
}

/// "User unknown" words that are a quoted remote reply, or come from a notice nobody recognised,
/// and that nothing confirms (see [`unconfirmed_unknown`]).
fn unconfirmed(
    r: &RecipientReport,
    evidence: &Evidence<'_>,
    found: (Reason, &'static str),
) -> (Reason, &'static str) {
    let remote_words = r.reply_code.is_some_and(|c| c >= 500);
    let unknown_words = r.reply_code.is_none() && !evidence.recognised;
    if r.smtp_command.is_some() || !(remote_words || unknown_words) {
        return found;
    }
    let changed = unconfirmed_unknown(r.status, found.0, found.1);
    if changed.0 != found.0 && !evidence.reporter_says_unknown() {
        changed
    } else {
        found
    }
}

/// The report's action in RFC 3464's words, never `None` for a bounce: as stated (case and
/// comments dropped), else from the class. A notice that is not a DSN states finality in its own
/// words ([`permanence`] marked those `failed` or `delayed` above), so any other failure notice
/// has given up (`failed`); a success report is `delivered`. Complaints, auto-replies and non-bounces have none.
fn infer_action(r: &RecipientReport) -> Option<String> {
    if let Some(a) = r.action.as_deref().and_then(Action::parse) {
        return Some(a.as_str().to_string());
    }
    let inferred = match r.class {
        Class::Delivered => Action::Delivered,
        Class::Hard | Class::Soft | Class::Block => Action::Failed,
        Class::Complaint | Class::Autoreply | Class::Unclassified => return None,
    };
    Some(inferred.as_str().to_string())
}

/// A local delivery program's failure (`x-unix`): its text is the program's (often just "input/
/// output error"), so a mailbox status (X.2.x, RFC 3463) the reporting MTA chose for it names
/// the cause (Postfix says 5.2.2 when a mailbox is over its size limit: "mailbox full"). Any
/// other status is the program's own guess (procmail's "no such user" under 5.1.1 is a failed
/// program, not a missing mailbox): a `mailererror`.
fn x_unix_by_status(status: Option<EnhancedCode>) -> (Reason, &'static str) {
    let specific = status.filter(|s| s.subject == 2 && s.detail != 0);
    match specific.map(|s| find_reason(None, Some(s), "")) {
        Some((reason, rule)) if !matches!(reason, Reason::Undefined | Reason::OnHold) => {
            (reason, rule)
        }
        _ => (Reason::MailerError, "dsn.x-unix"),
    }
}

/// A failure whose report gives a status or a recognised diagnostic, but no reason we can name, is
/// `onhold` (for a person to judge); `undefined` is kept for reports with nothing to go on (the
/// generic reader's diagnostic may be the notice's boilerplate).
fn hold_unexplained(r: &mut RecipientReport, recognised: bool) {
    let explained = r
        .diagnostic
        .as_deref()
        .is_some_and(|d| !d.trim().is_empty());
    if r.reason == Reason::Undefined && explained && (recognised || r.status.is_some()) {
        (r.reason, r.rule) = (Reason::OnHold, "unexplained");
    }
}

/// A recipient refused only after DATA was accepted at RCPT: the refusal is a filter. A failure
/// at MAIL FROM is about the sender; one at connection or greeting time is about the client.
/// A "user unknown" text under a code naming another cause, and not said in answer to RCPT, is
/// not proof the mailbox is gone: under X.2.1 ("mailbox disabled", RFC 3463) the mailbox exists
/// but is switched off, unless the words state outright that it does not exist ("no such user",
/// "doesn't have a ... account": qmail and Yahoo say so under X.2.1); under X.3.x (mail system)
/// or X.7.x (policy) a filter used the wording.
fn by_stage(
    command: Option<&str>,
    status: Option<EnhancedCode>,
    diag: &str,
    (reason, rule): (Reason, &'static str),
) -> (Reason, &'static str) {
    use Reason::*;
    if !rule.starts_with("text.") && !rule.starts_with("reply.") && rule != "none" {
        return (reason, rule);
    }
    match (command, reason) {
        (
            Some("CONN"),
            UserUnknown | HostUnknown | MailboxFull | OnHold | Undefined | SystemError | Rejected,
        ) => (Blocked, "stage.connect"),
        // Refused at HELO/EHLO, before any address was named: the client itself was refused.
        (Some("HELO"), OnHold | Undefined | SystemError | Rejected) => (Blocked, "stage.helo"),
        (Some("DATA"), UserUnknown) if rule == "text.userunknown.unknown-user" => {
            (Filtered, "stage.data")
        }
        (Some("MAIL"), UserUnknown | HostUnknown | MailboxFull) => (Rejected, "stage.mail"),
        (cmd, UserUnknown) if cmd != Some("RCPT") => match status.map(|s| (s.subject, s.detail)) {
            Some((2, 1)) if crate::classify::states_mailbox_missing(diag) => (reason, rule),
            Some((2, 1)) => (Suspend, "code.x.2.1.disabled"),
            Some((3 | 7, _)) => (Filtered, "code.x.3-7.filtered"),
            _ => (reason, rule),
        },
        _ => (reason, rule),
    }
}

/// "User unknown" words with no enhanced code naming the address (X.1.x), no sign that they
/// answered RCPT and no word from the reporting MTA that the address is gone are not proof the
/// mailbox does not exist: servers that refuse unknown mailboxes do so at RCPT and say 5.1.1, and
/// the same words after DATA come from a filter. The caller applies this where the words are a
/// quoted remote reply, or come from a notice whose format nobody recognised (whose words they
/// are cannot be told). Such a failure is `filtered` (block class): recorded, not suppressed.
fn unconfirmed_unknown(
    status: Option<EnhancedCode>,
    reason: Reason,
    rule: &'static str,
) -> (Reason, &'static str) {
    let no_address_code = status.is_none_or(|s| s.subject == 0);
    if reason == Reason::UserUnknown && rule.starts_with("text.userunknown") && no_address_code {
        (Reason::Filtered, "text.userunknown.unconfirmed")
    } else {
        (reason, rule)
    }
}

fn class_of(r: &RecipientReport) -> Class {
    let transient = r
        .status
        .map(|s| s.class == 4)
        .or(r.reply_code.map(|c| c < 500))
        .unwrap_or(false);
    match r.reason {
        Reason::Delivered => Class::Delivered,
        _ if r.action.as_deref() == Some("delayed") => Class::Soft,
        reason => reason.class(!transient),
    }
}

#[cfg(test)]
mod tests;
