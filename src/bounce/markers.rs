//! Where a notice's own text ends and the returned original begins: the marker lines
//! ("----- Original message -----", "Content-Type: message/rfc822", ...) that the context
//! ([`super::context`]) and the recognisers ([`super::recognisers`]) both look for.

/// Markers after which the returned original (or its headers) is quoted.
pub const ORIGINAL_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message follows",
    "----- original message -----",
    "message headers follow",
    "--- original message ---",
    "original message headers",
    "unsent message below",
    "-- the header and top 20 lines of the message follows --",
    "the header of the original message",
    "------ original message ------",
    "----- message header follows -----",
    "headers of the original message",
    "--- original message header ---",
    "copy of the original message",
    "unsent message follows",
    "------- returned message",
];

/// Where the first of `markers` (lower case) occurs in `lower` (an ASCII-lower-cased text) at or
/// after `from`.
pub(super) fn first_marker<'m>(
    lower: &str,
    markers: impl Iterator<Item = &'m &'static str>,
    from: usize,
) -> Option<usize> {
    let hay = lower.as_bytes().get(from..)?;
    markers
        .filter_map(|m| crate::bounce::fields::find_in_lower(hay, m))
        .min()
        .map(|at| from + at)
}

/// The offset of the start of the line of `text` holding offset `at`.
pub(super) fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// Byte offset of the start of the first line carrying an original-message marker, given the
/// ASCII-lower-cased text.
pub(crate) fn marker_line(text: &str, lower: &str) -> Option<usize> {
    let at = first_marker(lower, ORIGINAL_MARKERS.iter(), 0)?;
    text.is_char_boundary(at).then(|| line_start(text, at))
}
