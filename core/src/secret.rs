//! Secrets (tokens, passwords): a type that never prints.
pub use secrecy::{ExposeSecret, SecretString};

/// Whether two secrets are equal, taking the same time wherever they differ (a token
/// check must not tell an attacker how many leading bytes were right).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What is wrong with `token` as a bearer token, if anything: at least 16 characters,
/// all visible ASCII (it travels in an HTTP header).
pub fn token_problem(token: &str) -> Option<&'static str> {
    if token.len() < 16 {
        Some("must be at least 16 characters")
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be visible ASCII characters only (no spaces or control characters)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_secret_compares_whole_values() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(same_secret(b"", b""));
    }

    #[test]
    fn tokens_must_be_long_visible_ascii() {
        assert_eq!(token_problem("0123456789abcdef"), None);
        assert!(token_problem("short").unwrap().contains("16"));
        assert!(token_problem("0123456789 abcdef")
            .unwrap()
            .contains("visible"));
        assert!(token_problem("0123456789abcdef\n")
            .unwrap()
            .contains("visible"));
        assert!(token_problem("0123456789abcdéf")
            .unwrap()
            .contains("visible"));
    }
}
