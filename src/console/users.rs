//! Console users (`[[api.users]]`): a name, an argon2 password hash in PHC form
//! (`$argon2id$v=19$...`, made by `rebound console hash-password`) and a role.
//! Signing in with the API token gives the `operator` role as `api-token`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Secret};

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
    #[error("api.users.{0}: password_hash is not an argon2 hash in PHC form ($argon2id$v=19$...): make one with `rebound console hash-password`")]
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

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// True when `password` matches the PHC `hash` (false for any malformed hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A hash no password matches, checked for unknown names so a wrong name costs what a
/// wrong password does.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$yw3lQkCPiZ5kDdjq5d0SqG9qI7mAhjJxs9w7Y2ZbB6E";

/// The configured users and the API token, for sign-in.
pub struct Users {
    users: Vec<ConsoleUser>,
    token: crate::api::Guard,
}

impl Users {
    pub fn new(cfg: &Config) -> Users {
        Users { users: cfg.api.users.clone(), token: crate::api::Guard::new(cfg) }
    }

    /// Who `name`/`secret` signs in as: an empty name means `secret` is the API token.
    /// Slow on purpose (argon2): call it off the async workers.
    pub fn check(&self, name: &str, secret: &str) -> Option<(String, Role)> {
        let name = name.trim();
        if name.is_empty() || name.eq_ignore_ascii_case(TOKEN_USER) {
            return self.token.token_ok(secret.trim()).then(|| (TOKEN_USER.to_string(), Role::Operator));
        }
        match self.users.iter().find(|u| u.name.trim().eq_ignore_ascii_case(name)) {
            Some(u) => verify_password(u.password_hash.expose(), secret).then(|| (u.name.trim().to_string(), u.role)),
            None => {
                let _ = verify_password(DUMMY_HASH, secret);
                None
            }
        }
    }
}
