//! CSRF tokens: 32 random bytes, hex. Each session has one, put in every form it
//! is shown (`csrf` field) and compared in constant time on every POST; the
//! sign-in form uses a double-submit token (a `SameSite=Strict` cookie and the
//! same value in the form), since no session exists yet.

/// The form field every console POST carries.
pub const FIELD: &str = "csrf";

/// A fresh random token (64 hex digits).
pub fn new_token() -> String {
    crate::store::hex(&rand::random::<[u8; 32]>())
}

/// True when `presented` is the `expected` token (constant time; empty never matches).
pub fn matches(expected: &str, presented: Option<&str>) -> bool {
    match presented {
        Some(p) if !p.is_empty() && !expected.is_empty() => crate::model::constant_time::eq(
            crate::model::constant_time::sha256(p.as_bytes()).as_ref(),
            crate::model::constant_time::sha256(expected.as_bytes()).as_ref(),
        ),
        _ => false,
    }
}
