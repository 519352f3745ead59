//! The classification rules as data: text-pattern entries and basic reply-code fallbacks, each
//! with an id (the enhanced-status entries are in [`super::enhanced_codes`]).

use crate::model::Reason::{self, *};

/// The enhanced-status entries live with the registry they come from.
pub use super::enhanced_codes::{CODE_RULES, CodeRule, Strength};

/// One text-pattern entry: a case-insensitive regular expression over the diagnostic text.
#[derive(Debug, Clone, Copy)]
pub struct TextRule {
    pub id: &'static str,
    pub pattern: &'static str,
    pub reason: Reason,
}

const fn text(id: &'static str, reason: Reason, pattern: &'static str) -> TextRule {
    TextRule {
        id,
        pattern,
        reason,
    }
}

/// Diagnostic-text patterns, in priority order: the first match wins.
pub static TEXT_RULES: &[TextRule] = &[
    text("text.greylist", RateLimited, r"gr[ae]y-?list"),
    text(
        "text.notcompliantrfc",
        NotCompliantRfc,
        r"\brfc ?(5322|2822|822|5321|2821|1123)|not (rfc|standards?)[- ]?compliant|multiple .*header|duplicate (header|message-id)|missing .*header|header.*(malformed|invalid|missing)|malformed .*header|bare (lf|linefeed|cr)|invalid (header|message-id)|message-id.*(missing|invalid)",
    ),
    text(
        "text.spam-verdict",
        SpamDetected,
        r"spam classification|(classified|rejected|identified|detected) as spam|rejected due to spam",
    ),
    text(
        "text.uri-blocklist",
        SpamDetected,
        r"black ?listed (url|link|uri|domain in (the )?message)|\buribl\b|\bsurbl\b|url (is )?(black ?listed|block ?listed)",
    ),
    text(
        "text.authfailure",
        AuthFailure,
        r"\b(spf|dkim|dmarc)\b|sender policy framework|unauthenticated (e-?mail|message)|authentication (check|checks) fail|not pass (spf|dkim|dmarc)|authentication information|fails to pass|failed (spf|dkim|dmarc)",
    ),
    text("text.orange-spam", SpamDetected, r"\b(ofr|lpn)\d*_506\b"),
    text(
        "text.virus",
        VirusDetected,
        r"virus|malware|\binfected\b|trojan",
    ),
    // Before the block lists: "blocked because it contains a banned attachment" is about the content.
    text(
        "text.attachment",
        ContentError,
        r"(banned|prohibited|forbidden|dangerous|unsafe|blocked|disallowed) (attachment|file type|file extension)|attachment (type )?(is |was )?(not allowed|prohibited|blocked|banned|forbidden)",
    ),
    text(
        "text.mailboxfull",
        MailboxFull,
        r"mail ?box (is )?(full|over)|over ?quota|quota (exceeded|full)|exceed(s|ed)? .*quota|\bquota\b|insufficient (space|storage)|disk quota|storage (limit|full)|full mail ?box|mail ?box (size )?(limit )?(exceed|has exceeded)|mail ?box size limit|exceeds? (its |the )?mail ?box|user.*(is )?over the limit|not enough (space|storage)|mailbox is full|mail ?folder.*full",
    ),
    text(
        "text.mesgtoobig",
        MesgTooBig,
        r"message (is )?too (big|large|long)|(message|mail) size exceeds|exceeds? (the )?(maximum|max|allowed|fixed) (message )?size|size (limit )?exceeded|message (length|size) exceeds|too large for|larger than .*(limit|allowed)",
    ),
    text(
        "text.systemfull",
        SystemFull,
        r"insufficient system (storage|resources)|insufficient disk space|mail system full|system (is )?full|disk (is )?full|out of disk space",
    ),
    text(
        "text.speeding",
        Speeding,
        r"receiving mail at a rate|too fast|too quickly|\bspeeding\b",
    ),
    text(
        "text.ratelimited",
        RateLimited,
        r"rate limit|rate-limit|too many (messages|e-?mails|mails)|sending rate|(unusual|high) (rate|volume)|throttl|too much (mail|traffic)|try again later.*(rate|volume)|messages? per",
    ),
    text(
        "text.exceedlimit",
        ExceedLimit,
        r"exceeds? (the )?(recipient )?limit|limit exceeded",
    ),
    text(
        "text.toomanyconn",
        TooManyConn,
        r"too many (recipients|connections|concurrent|sessions|simultaneous|open)|connection limit|too many hosts",
    ),
    text(
        "text.suspend",
        Suspend,
        r"(mail ?box|account|address|user|recipient) (is |has been )?(currently )?(disabled|inactive|suspended|deactivated|locked|frozen|blocked for|expired|closed|not active)|(disabled|inactive|suspended|deactivated) (mail ?box|account|address|user)|temporarily disabled|temporar(y|ily) locked|account.*(has been|is) (disabled|suspended)|mailbox unavailable.*disabled|due to inactivity|for inactivity",
    ),
    text(
        "text.hasmoved",
        HasMoved,
        r"has (been )?moved|address (has )?changed|no longer (valid|in use|available|active|accepts)|not (valid|in use) any ?more",
    ),
    text(
        "text.norelaying",
        NoRelaying,
        r"not configured to relay|insecure (mail )?relay|relay(ing)? (access )?(is )?(denied|not permitted|not allowed|prohibited|refused)|not permitted to relay|unable to relay|relay not permitted|we do not relay|not a gateway|no relaying|open relay|relay access|cannot relay|not allowed to relay|relaying (is )?(denied|not)|allowed rcpthosts|control/rcpthosts",
    ),
    text(
        "text.no-mx",
        NotAccept,
        r"no mx found|(doesn.t|does not) receive e?-?mail|find a mail exchanger|no mail exchanger|does not accept (any )?mail|not accept(ing)? (any )?(e-?)?mail|accepts no mail|not accepting (network )?messages",
    ),
    text(
        "text.invalid-from",
        Rejected,
        r"provide a valid from|\bfrom:? (header )?domain is invalid|invalid from (header|address|domain)",
    ),
    text(
        "text.hostunknown",
        HostUnknown,
        r"host unknown|unknown host|domain (name )?(not found|does not exist|unknown|doesn't exist|is not valid)|no such domain|nxdomain|host not found|host or domain name not found|name or service not known|unrouteable|unroutable|no (mx|a) record|null mx|domain has no|unknown domain|invalid domain|host \S+ not found|domain (is )?not reachable|domain may not exist|point to non-?existent hosts",
    ),
    text(
        "text.recipient-access-denied",
        UserUnknown,
        r"recipient address rejected: access denied",
    ),
    // A reply naming only the recipient address and "rejected": the address itself was refused.
    text(
        "text.address-rejected",
        UserUnknown,
        r"^(?:[45][0-9]{2}[ -])?\s*<?[^\s<>@]+@[^\s<>@]+>?:?\s+rejected\.?$",
    ),
    text(
        "text.userunknown.unknown-user",
        UserUnknown,
        r"user unknown|unknown user|no such user|user not exist|user (not found|doesn't exist|does not exist)",
    ),
    text(
        "text.userunknown",
        UserUnknown,
        r"user unknown|unknown user|no such (user|mailbox|recipient|address|account|person|local user)|user (not found|doesn't exist|does not exist)|mailbox (not found|does not exist|doesn't exist|unavailable|not available)|invalid (recipient|mailbox|address|user|e-?mail)|(address|recipient|account|user|mailbox|addressee) (does not|doesn't|did not) exist|does not exist|doesn't exist|not a valid (mailbox|recipient|user|address)|(recipient|mailbox|user) (address )?(is )?not valid|recipient not found|unknown (recipient|local|address|mailbox|alias|account)|not our customer|bad destination|no mailbox|not a known user|unknown or illegal alias|recipient unknown|address (is )?(unknown|invalid)|doesn.t have an? .*account|wasn.t found|was not found at|not found at the destination|undeliverable address|no longer exists|not listed in|user not exist|unknown in relay recipient|cannot be found|couldn't be found|could not be found|no valid recipients|mailbox name not allowed|not have an account|user invalid|dosn't exist|unknown receiver|invalid final delivery|recipient name is not recognized",
    ),
    text(
        "text.requireptr",
        RequirePtr,
        r"mismatches client ip|reverse (dns|lookup|hostname|name|dns lookup)|\bptr\b|\brdns\b|cannot find your hostname|cannot resolve your|can't resolve your|(no|without) reverse|unresolvable|client host .* (not|cannot) .*resolv|hostname.*(not|doesn't|does not) (match|resolve)|ip name lookup failed|dns(bl)? lookup of your",
    ),
    text(
        "text.badreputation",
        BadReputation,
        r"reputation|user complaints|sender score|ip (address )?is (on|in) .*(list)",
    ),
    text(
        "text.address-blacklisted",
        Rejected,
        r"(an|e-?mail|sender|from) address (that )?(has been|is) (black ?listed|banned|blocked)",
    ),
    text(
        "text.blocked",
        Blocked,
        r"blocked using|blocked by|\brbl\b|spamhaus|spamcop|dnsbl|black ?list|block ?list|listed (in|on|at|by)|\bbarracuda|sorbs|\b(ip|client host|client|your host|host)( address)?( \[?[\w.:\-]+\]?)? (is |was |has been )?(blocked|banned|blacklisted|refused|rejected|not allowed)|blacklisted|banned|not accepting connections|invalid ip|service refused|smtp server of your isp|your isp|service unavailable.*(client|host)|your (ip|network|server)|dynamic ip|dial-?up|residential|\bsc-00[1-4]\b|unwanted messages|the ip you.re using|not authori[sz]ed to send (e-?mail )?directly|messages from [\d.:a-f]+ weren.t sent|\(bl\)",
    ),
    text(
        "text.spam",
        SpamDetected,
        r"\bspam\b|message content rejected|\bube\b|spammy|junk mail|bulk (e-?)?mail|spam[- ]?(like|score|filter|content)|considered (as )?(unsolicited|spam)|unsolicited|looks like spam|classified as spam|message (was )?(identified|detected|marked) as spam|content (filter|scan).*reject|high probability of being",
    ),
    text(
        "text.policy-reasons",
        PolicyViolation,
        r"for policy reasons|policy violation|violates? .*policy",
    ),
    text(
        "text.rejected",
        Rejected,
        r"sender (address )?(rejected|denied|blocked|invalid|unknown|verify|not allowed|domain)|sender (email )?address|domain of sender|from address|mail from.*(rejected|denied|refused)|envelope sender|bad sender|return.?path|sender is (not|on)|rejected (the )?sender|sender was rejected|access denied|sender verification|invalid sender|unknown sender|sender mismatch",
    ),
    text(
        "text.filtered",
        Filtered,
        r"filtered|content filter|rejected by (the )?(recipient|user)|refused by (the )?recipient|not authori[sz]ed to (receive|send)|does not (receive|accept) mail from|recipient.*rejects|blocked by (the )?recipient|message filter|not accepted by the recipient|restricted",
    ),
    text(
        "text.failedstarttls",
        FailedStartTls,
        r"tls (handshake|negotiation|error|failed|failure)|starttls (failed|failure|error)|handshake fail",
    ),
    text(
        "text.securityerror",
        SecurityError,
        r"authentication (is )?required|delivery not authori[sz]ed|unauthenticated senders?|must (issue|use) (a )?starttls|(tls|encryption|ssl) (is )?required|requires? (tls|encryption|authentication)|certificate|insecure|password|not authenticated|authentication (failed|failure)|auth required|security|starttls",
    ),
    text(
        "text.contenterror",
        ContentError,
        r"content (not accepted|error)|media error|illegal (header|attachment|character)|attachment.*(not allowed|prohibited|blocked)|message content|prohibited attachment|8-?bit",
    ),
    text(
        "text.policy",
        PolicyViolation,
        r"policy|prohibited|not (allowed|permitted)|violat|administrative|forbidden|rejected due to|refused due to",
    ),
    text(
        "text.dns-failure",
        NetworkError,
        r"dns (query|lookup) (failed|failure|timed out)|temporary dns",
    ),
    text(
        "text.expired",
        Expired,
        r"retry timeout|delivery time expired|message expired|giving up(?:[.,;!]|\s*$)|gave up|could not be delivered for|has been delayed|retry time|queue(d)? (too long|time|lifetime)|too long in (the )?queue|not delivered within|undeliverable within|maximum time|time limit|expired|retry period|could not deliver.*(days|hours)|will be retried|(cannot|could not|can.t) send message for|still undeliver|retried for|requests to connect|failed \d+ attempts|aborted after [\d.]+ ?(hour|day|minute)",
    ),
    text(
        "text.networkerror",
        NetworkError,
        r"connection (refused|timed out|reset|closed|lost|dropped|failed)|timed out|time-?out|no route to host|network (is )?unreachable|could not connect|couldn't connect|unable to connect|connect(ion)? to .* failed|lost connection|host (is )?unreachable|dns (lookup|error|failure|problem)|temporary (dns|lookup|name) failure|mail loop|too many hops|loops? back|routing loop|hop count|no answer|not reachable|could not be reached|network error|name service error",
    ),
    text(
        "text.notaccept",
        NotAccept,
        r"no mail accepted|mail is not accepted",
    ),
    text(
        "text.syntaxerror",
        SyntaxError,
        r"syntax error|malformed (recipient |sender )?address|command unrecognized|unrecognized command|bad sequence|invalid command|line too long|command not (implemented|recognized)|parameter.*not (implemented|recognized)",
    ),
    text(
        "text.mailererror",
        MailerError,
        r"x-unix|command (died|failed)|pipe to|procmail|mailer error|exited with|program (error|failed)|unknown mailer|command output|mailer.*(error|failed)",
    ),
    text(
        "text.systemerror",
        SystemError,
        r"system (error|failure|problem)|internal (server )?error|server error|temporary (local )?(failure|problem|error)|local error|configuration error|server (is )?(busy|unavailable)|service (is )?(currently )?unavailable|try again later|out of memory|resources temporarily|i/o error|local problem|not available|transaction failed",
    ),
    text(
        "text.recipient-rejected",
        UserUnknown,
        r"(recipient )?address rejected",
    ),
];

/// Wordings that say more than any enhanced code next to them (a provider that sends 5.1.1 for
/// a recipient's own filter): checked before the strong code entries.
pub static OVERRIDE_RULES: &[TextRule] = &[text(
    "text.recipient-preferences",
    Filtered,
    r"due to (the )?recipient'?s? (privacy )?preferences",
)];

/// Fallback by the basic reply code when neither the enhanced code nor the text decided.
pub static REPLY_RULES: &[(u16, Reason, &str)] = &[
    (421, SystemError, "reply.421"),
    (450, OnHold, "reply.450"),
    (451, SystemError, "reply.451"),
    (452, MailboxFull, "reply.452"),
    (500, SyntaxError, "reply.500"),
    (501, SyntaxError, "reply.501"),
    (502, SyntaxError, "reply.502"),
    (503, SyntaxError, "reply.503"),
    (504, SyntaxError, "reply.504"),
    (521, NotAccept, "reply.521"),
    (530, SecurityError, "reply.530"),
    (550, OnHold, "reply.550"),
    (551, HasMoved, "reply.551"),
    (552, MailboxFull, "reply.552"),
    (553, UserUnknown, "reply.553"),
    (554, OnHold, "reply.554"),
    (556, NotAccept, "reply.556"),
];
