//! Console users (`[[api.users]]`): a name, an argon2 password hash in PHC form and a
//! role, checked when the configuration is loaded. Sign-in itself is the console's
//! ([`crate::api::console`]).

use argon2::password_hash::PasswordHash;
use serde::{Deserialize, Serialize};

use super::Secret;

/// The name sessions signed in with the API token act under.
pub const TOKEN_USER: &str = "api-token";

/// What a signed-in person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads every page; cannot change anything.
    Viewer,
    /// Also resends, retries, deletes and removes blocks.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    pub fn can_act(self) -> bool {
        self == Role::Operator
    }
}

/// One `[[api.users]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUser {
    pub name: String,
    /// Argon2 PHC string (`rebound console hash-password`).
    pub password_hash: Secret,
    pub role: Role,
}

/// Why `[[api.users]]` is refused (config key and problem are in the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersError {
    #[error("api.users: an entry has an empty name")]
    EmptyName,
    #[error("api.users: {0:?} is reserved for sign-in with the API token")]
    Reserved(String),
    #[error("api.users: {0:?} is given more than once")]
    Duplicate(String),
    #[error(
        "api.users.{0}: password_hash is not an argon2 hash in PHC form ($argon2id$v=19$...): make one with `rebound console hash-password`"
    )]
    BadHash(String),
}

/// Checks every entry: names present and unique, hashes argon2 PHC strings.
pub fn check_users(users: &[ConsoleUser]) -> Result<(), UsersError> {
    let mut seen = std::collections::HashSet::new();
    for u in users {
        let name = u.name.trim();
        if name.is_empty() {
            return Err(UsersError::EmptyName);
        }
        if name.eq_ignore_ascii_case(TOKEN_USER) {
            return Err(UsersError::Reserved(name.to_string()));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(UsersError::Duplicate(name.to_string()));
        }
        if !is_argon2(u.password_hash.expose()) {
            return Err(UsersError::BadHash(name.to_string()));
        }
    }
    Ok(())
}

fn is_argon2(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}
