//! Where a notice's own text ends and the returned original begins: the marker lines
//! ("----- Original message -----", "Content-Type: message/rfc822", ...) that the context
//! ([`super::context`]) and the recognisers ([`super::recognisers`]) both look for.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};

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

/// [`ORIGINAL_MARKERS`] in one automaton (leftmost match first), so that finding the first of
/// them in a lower-cased text is one pass (a SIMD prefilter over the markers' leading bytes),
/// not seventeen.
static ORIGINAL: LazyLock<AhoCorasick> = LazyLock::new(|| automaton(false));

/// The same markers in any case, for short lines of text that is not lower-cased.
static ORIGINAL_ANY_CASE: LazyLock<AhoCorasick> = LazyLock::new(|| automaton(true));

fn automaton(any_case: bool) -> AhoCorasick {
    AhoCorasick::builder()
        .ascii_case_insensitive(any_case)
        .match_kind(MatchKind::LeftmostFirst)
        .build(ORIGINAL_MARKERS)
        .expect("static markers")
}

/// Where the first original-message marker occurs in `lower` (an ASCII-lower-cased text) at or
/// after `from`.
pub(super) fn first_original(lower: &str, from: usize) -> Option<usize> {
    let hay = lower.as_bytes().get(from..)?;
    ORIGINAL.find(hay).map(|m| from + m.start())
}

/// True when `text` holds an original-message marker, in any case.
pub(super) fn holds_original_marker(text: &str) -> bool {
    ORIGINAL_ANY_CASE.is_match(text)
}

/// Where the first of `markers` or of the original-message markers occurs in `lower` (an
/// ASCII-lower-cased text) at or after `from`: the end of a notice's region.
pub(super) fn first_end(lower: &str, markers: &[&'static str], from: usize) -> Option<usize> {
    let own = first_marker(lower, markers.iter(), from);
    let original = first_original(lower, from);
    own.into_iter().chain(original).min()
}

/// The offset of the start of the line of `text` holding offset `at`.
pub(super) fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// Byte offset of the start of the first line carrying an original-message marker, given the
/// ASCII-lower-cased text.
pub(crate) fn marker_line(text: &str, lower: &str) -> Option<usize> {
    let at = first_original(lower, 0)?;
    text.is_char_boundary(at).then(|| line_start(text, at))
}
