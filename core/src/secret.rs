//! Secrets (tokens, passwords): a type that never prints.
pub use secrecy::{ExposeSecret, SecretString};
