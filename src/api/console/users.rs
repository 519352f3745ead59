//! Console users (`[[api.users]]`): a name, an argon2 password hash in PHC form
//! (`$argon2id$v=19$...`, made by `rebound console hash-password`) and a role.
//! Signing in with the API token gives the `operator` role as `api-token`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::config::Config;

pub use crate::config::users::{ConsoleUser, Role, TOKEN_USER, UsersError, check_users};

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// True when `password` matches the PHC `hash` (false for any malformed hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
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

/// The user names only; never the password hashes or the API token.
impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.users.iter().map(|u| u.name.as_str()).collect();
        f.debug_struct("Users")
            .field("users", &names)
            .finish_non_exhaustive()
    }
}

impl Users {
    pub fn new(cfg: &Config) -> Users {
        Users {
            users: cfg.api.users.clone(),
            token: crate::api::Guard::new(cfg),
        }
    }

    /// Who `name`/`secret` signs in as: an empty name means `secret` is the API token.
    /// Slow on purpose (argon2): call it off the async workers.
    pub fn check(&self, name: &str, secret: &str) -> Option<(String, Role)> {
        let name = name.trim();
        if name.is_empty() || name.eq_ignore_ascii_case(TOKEN_USER) {
            return self
                .token
                .token_ok(secret.trim())
                .then(|| (TOKEN_USER.to_string(), Role::Operator));
        }
        match self
            .users
            .iter()
            .find(|u| u.name.trim().eq_ignore_ascii_case(name))
        {
            Some(u) => verify_password(u.password_hash.expose(), secret)
                .then(|| (u.name.trim().to_string(), u.role)),
            None => {
                let _ = verify_password(DUMMY_HASH, secret);
                None
            }
        }
    }
}
