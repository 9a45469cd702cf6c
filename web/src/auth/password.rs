//! argon2id password hashes in PHC form (`$argon2id$v=19$m=19456,t=2,p=1$…`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// An empty password is never accepted.
    #[error("the password is empty")]
    Empty,
    /// The argon2 implementation refused (should not happen with the defaults).
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Hash `password` with argon2id and the crate's defaults, which are OWASP's
/// recommendation (m=19456 KiB, t=2, p=1), and a random 128-bit salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`, with the parameters the hash
/// names; the final comparison is constant-time. A malformed hash matches nothing.
/// This is slow on purpose: call it from `spawn_blocking`.
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether `phc` parses as an argon2 hash (checked once at startup, to log a user
/// who can never log in).
pub(crate) fn is_well_formed(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use argon2::{Algorithm, Params, Version};

    fn cheap_hash(password: &str) -> String {
        let params = Params::new(64, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn verify_uses_the_parameters_of_the_hash() {
        let hash = cheap_hash("secret");
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(verify_password(&hash, "secret"));
        assert!(!verify_password(&hash, "Secret"));
        assert!(!verify_password(&hash, ""));
        assert!(!verify_password("$argon2id$garbage", "secret"));
        assert!(is_well_formed(&hash));
        assert!(!is_well_formed("plain text"));
    }

    #[test]
    fn empty_password_is_refused() {
        assert!(matches!(hash_password(""), Err(PasswordError::Empty)));
    }
}
