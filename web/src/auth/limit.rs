//! The login rate limit: at most `limit` failed logins per client per window (one
//! minute). The window starts at a client's first attempt; once `limit` attempts
//! failed in it, every further attempt is refused until it ends. An attempt counts
//! from the moment it starts (so parallel guesses cannot overrun the limit) and is
//! given back when it succeeds or was not a password guess at all.
//!
//! Clients are keyed by IPv4 address, or by IPv6 /64 (one host commonly has a whole
//! /64). At most [`MAX_CLIENTS`] windows are kept; expired ones are pruned first,
//! then the oldest.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The most client windows kept at once.
pub const MAX_CLIENTS: usize = 10_000;

/// The window of the login rate limit.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Who a login attempt is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// An IPv4 address, or an IPv4-mapped IPv6 one.
    V4([u8; 4]),
    /// The /64 prefix of an IPv6 address.
    V6Prefix([u8; 8]),
    /// No peer address was known (never in a server; fail closed: all share one window).
    Unknown,
}

impl ClientKey {
    pub(crate) fn of(ip: Option<IpAddr>) -> Self {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => ClientKey::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => ClientKey::V6Prefix(prefix64(v6)),
            None => ClientKey::Unknown,
        }
    }
}

fn prefix64(v6: Ipv6Addr) -> [u8; 8] {
    let o = v6.octets();
    [o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]]
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    attempts: u32,
}

/// Per-client windows of failed logins.
#[derive(Debug)]
pub(crate) struct LoginLimiter {
    windows: Mutex<HashMap<ClientKey, Window>>,
    limit: u32,
}

impl LoginLimiter {
    pub(crate) fn new(limit: u32) -> Self {
        LoginLimiter {
            windows: Mutex::new(HashMap::new()),
            limit: limit.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ClientKey, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Start an attempt for `key`: `Err(wait)` when the client must wait `wait`.
    pub(crate) fn begin(&self, key: ClientKey, now: Instant) -> Result<(), Duration> {
        let mut windows = self.lock();
        if !windows.contains_key(&key) && windows.len() >= MAX_CLIENTS {
            windows.retain(|_, w| now.saturating_duration_since(w.start) < WINDOW);
            while windows.len() >= MAX_CLIENTS {
                let oldest = windows.iter().min_by_key(|(_, w)| w.start).map(|(k, _)| *k);
                match oldest {
                    Some(k) => windows.remove(&k),
                    None => break,
                };
            }
        }
        let window = windows.entry(key).or_insert(Window {
            start: now,
            attempts: 0,
        });
        let age = now.saturating_duration_since(window.start);
        if age >= WINDOW {
            *window = Window {
                start: now,
                attempts: 0,
            };
        }
        if window.attempts >= self.limit {
            return Err(WINDOW.saturating_sub(now.saturating_duration_since(window.start)));
        }
        window.attempts += 1;
        Ok(())
    }

    /// Give back an attempt that succeeded or never checked a password.
    pub(crate) fn give_back(&self, key: ClientKey) {
        let mut windows = self.lock();
        if let Some(w) = windows.get_mut(&key) {
            w.attempts = w.attempts.saturating_sub(1);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Whole seconds to wait, rounded up, at least 1 (for `Retry-After`).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn key(s: &str) -> ClientKey {
        ClientKey::of(Some(s.parse().unwrap()))
    }

    #[test]
    fn trips_after_limit_failures_until_the_window_ends() {
        let l = LoginLimiter::new(3);
        let t0 = Instant::now();
        let a = key("192.0.2.1");
        for _ in 0..3 {
            assert!(l.begin(a, t0).is_ok());
        }
        let wait = l.begin(a, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(retry_after_secs(wait), 50);
        assert!(
            l.begin(key("192.0.2.2"), t0).is_ok(),
            "another client is unaffected"
        );
        assert!(l.begin(a, t0 + WINDOW).is_ok(), "a new window");
    }

    #[test]
    fn given_back_attempts_do_not_count() {
        let l = LoginLimiter::new(1);
        let t0 = Instant::now();
        let a = key("192.0.2.1");
        for _ in 0..5 {
            assert!(l.begin(a, t0).is_ok());
            l.give_back(a);
        }
        assert!(l.begin(a, t0).is_ok());
        assert!(l.begin(a, t0).is_err());
    }

    #[test]
    fn keys() {
        assert_eq!(key("::ffff:10.1.2.3"), key("10.1.2.3"));
        assert_eq!(key("2001:db8::1"), key("2001:db8::ffff:1"));
        assert_ne!(key("2001:db8:0:1::1"), key("2001:db8:0:2::1"));
        assert_eq!(ClientKey::of(None), ClientKey::Unknown);
    }

    #[test]
    fn memory_is_bounded() {
        let l = LoginLimiter::new(1);
        let t0 = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 100) {
            let ip = IpAddr::from(i.to_be_bytes());
            assert!(l.begin(ClientKey::of(Some(ip)), t0).is_ok());
        }
        assert_eq!(l.len(), MAX_CLIENTS);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
    }
}
