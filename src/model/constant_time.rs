//! Comparisons of secrets (MACs, passwords, tokens) that take the same time
//! however much of the input matches.

/// Equality without an early exit; different lengths are simply unequal.
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Equality of two secrets of any length: both are hashed with SHA-256 first, so
/// neither the content nor the length of the expected secret leaks.
pub fn secrets_eq(a: &[u8], b: &[u8]) -> bool {
    eq(sha256(a).as_ref(), sha256(b).as_ref())
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_only_when_equal() {
        assert!(super::eq(b"abc", b"abc"));
        assert!(!super::eq(b"abc", b"abd"));
        assert!(!super::eq(b"abc", b"abcd"));
        assert!(super::secrets_eq(b"hunter2", b"hunter2"));
        assert!(!super::secrets_eq(b"hunter2", b"hunter3"));
        assert!(!super::secrets_eq(b"", b"x"));
    }
}
