//! Sessions in memory: a random 256-bit id maps to the user and the session's CSRF
//! token, until an absolute expiry `session_ttl` after login. Expired sessions are
//! pruned on every login, and the map never holds more than [`MAX_SESSIONS`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::RngCore;

/// The most sessions kept at once; past it, the ones closest to expiry go first.
pub const MAX_SESSIONS: usize = 10_000;

/// One login.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user's name.
    pub user: String,
    /// The value `X-CSRF-Token` must carry on state-changing requests.
    pub csrf_token: String,
    /// When the session ends.
    pub expires: Instant,
}

/// The session map.
#[derive(Debug)]
pub(crate) struct SessionStore {
    sessions: Mutex<HashMap<String, Session>>,
    ttl: Duration,
}

impl SessionStore {
    pub(crate) fn new(ttl: Duration) -> Self {
        SessionStore {
            sessions: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new session for `user`: its id and the session.
    pub(crate) fn create(&self, user: &str, now: Instant) -> (String, Session) {
        let id = random_hex();
        let session = Session {
            user: user.to_owned(),
            csrf_token: random_hex(),
            expires: now + self.ttl,
        };
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        while sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => sessions.remove(&id),
                None => break,
            };
        }
        sessions.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session with this id; an expired one is removed.
    pub(crate) fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let mut sessions = self.lock();
        match sessions.get(id) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    /// End a session.
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// 256 random bits from the thread-local CSPRNG (ChaCha, seeded by the OS), as hex.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn sessions_expire_and_are_pruned() {
        let store = SessionStore::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (id, s) = store.create("admin", t0);
        assert_eq!(id.len(), 64);
        assert_eq!(s.csrf_token.len(), 64);
        assert_ne!(id, s.csrf_token);
        assert_eq!(
            store.get(&id, t0 + Duration::from_secs(59)).unwrap().user,
            "admin"
        );
        assert!(store.get(&id, t0 + Duration::from_secs(60)).is_none());
        assert_eq!(
            store.len(),
            0,
            "an expired session is removed when looked up"
        );

        let (a, _) = store.create("a", t0);
        let (b, _) = store.create("b", t0 + Duration::from_secs(61));
        assert!(store.get(&a, t0 + Duration::from_secs(61)).is_none());
        assert_eq!(store.len(), 1, "creating a session prunes expired ones");
        store.remove(&b);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn ids_are_unique() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| random_hex()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
