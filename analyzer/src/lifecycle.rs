//! The alert lifecycle, one state machine per (rule, series): pure, with `now` passed
//! in, so tests never sleep.
//!
//! ```text
//!   ok ──breach──▶ pending ──held `for`──▶ firing ──clear for `clear_for`──▶ resolved ──▶ ok
//!                     │                      ▲  │
//!                     └──clear──▶ ok         │  └──breach again within clear_for: stays firing
//! ```
//! One notification per transition (firing, resolved), a reminder every
//! `repeat_interval` while firing, and flapping held: an alert that changed state more
//! than `flap_threshold` times within `flap_window` is marked flapping and sends
//! nothing until it has been stable for a `flap_window`.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Timing of one rule's alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// A breach must hold this long before firing.
    pub for_: Duration,
    /// A firing alert resolves only after being clear this long.
    pub clear_for: Duration,
    /// Remind about a firing alert this often; zero: never.
    pub repeat_interval: Duration,
    /// Transitions within `flap_window` above which the alert counts as flapping.
    pub flap_threshold: usize,
    pub flap_window: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            for_: Duration::ZERO,
            clear_for: Duration::ZERO,
            repeat_interval: Duration::from_secs(4 * 3600),
            flap_threshold: 6,
            flap_window: Duration::from_secs(3600),
        }
    }
}

/// Where an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Pending,
    Firing,
}

/// What the caller must do after an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Send "firing".
    Fire,
    /// Send "resolved".
    Resolve,
    /// Send a reminder: still firing.
    Remind,
}

/// The state of one alert, persisted between runs (times in unix ms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub state: State,
    /// When the current breach began (pending or firing).
    pub breach_since_ms: Option<i64>,
    /// When the alert fired.
    pub fired_at_ms: Option<i64>,
    /// While firing: since when the condition has been clear.
    pub clear_since_ms: Option<i64>,
    /// When the last notification (fire or reminder) was sent.
    pub notified_at_ms: Option<i64>,
    /// Recent state changes (firing/resolved), for flap detection.
    pub transitions_ms: VecDeque<i64>,
    pub flapping: bool,
    /// Whether the "firing" notification was held back (flapping): then "resolved" is
    /// held too.
    pub fire_sent: bool,
}

impl Default for Alert {
    fn default() -> Self {
        Alert {
            state: State::Ok,
            breach_since_ms: None,
            fired_at_ms: None,
            clear_since_ms: None,
            notified_at_ms: None,
            transitions_ms: VecDeque::new(),
            flapping: false,
            fire_sent: false,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Alert {
    /// Feed one evaluation: whether the condition is breached at `now_ms`.
    pub fn observe(&mut self, breached: bool, now_ms: i64, t: &Timing) -> Action {
        self.prune_transitions(now_ms, t);
        match (self.state, breached) {
            (State::Ok, false) => Action::Nothing,
            (State::Ok, true) => {
                self.breach_since_ms = Some(now_ms);
                self.state = State::Pending;
                self.maybe_fire(now_ms, t)
            }
            (State::Pending, true) => self.maybe_fire(now_ms, t),
            (State::Pending, false) => {
                self.state = State::Ok;
                self.breach_since_ms = None;
                Action::Nothing
            }
            (State::Firing, true) => {
                self.clear_since_ms = None;
                let due = t.repeat_interval > Duration::ZERO
                    && self
                        .notified_at_ms
                        .is_some_and(|n| now_ms - n >= ms(t.repeat_interval));
                if due && self.fire_sent && !self.flapping {
                    self.notified_at_ms = Some(now_ms);
                    Action::Remind
                } else if !self.fire_sent && !self.is_flapping(t) {
                    // It was held while flapping and has since calmed down: send it now.
                    self.flapping = false;
                    self.fire_sent = true;
                    self.notified_at_ms = Some(now_ms);
                    Action::Fire
                } else {
                    Action::Nothing
                }
            }
            (State::Firing, false) => {
                let since = *self.clear_since_ms.get_or_insert(now_ms);
                if now_ms - since < ms(t.clear_for) {
                    return Action::Nothing;
                }
                self.state = State::Ok;
                self.breach_since_ms = None;
                self.fired_at_ms = None;
                self.clear_since_ms = None;
                self.transitions_ms.push_back(now_ms);
                self.flapping = self.is_flapping(t);
                let was_sent = self.fire_sent;
                self.fire_sent = false;
                if was_sent {
                    Action::Resolve
                } else {
                    Action::Nothing
                }
            }
        }
    }

    fn maybe_fire(&mut self, now_ms: i64, t: &Timing) -> Action {
        let since = self.breach_since_ms.unwrap_or(now_ms);
        if now_ms - since < ms(t.for_) {
            return Action::Nothing;
        }
        self.state = State::Firing;
        self.fired_at_ms = Some(now_ms);
        self.clear_since_ms = None;
        self.transitions_ms.push_back(now_ms);
        self.flapping = self.is_flapping(t);
        if self.flapping {
            self.fire_sent = false;
            return Action::Nothing;
        }
        self.fire_sent = true;
        self.notified_at_ms = Some(now_ms);
        Action::Fire
    }

    fn is_flapping(&self, t: &Timing) -> bool {
        t.flap_threshold > 0 && self.transitions_ms.len() > t.flap_threshold
    }

    fn prune_transitions(&mut self, now_ms: i64, t: &Timing) {
        while self
            .transitions_ms
            .front()
            .is_some_and(|x| now_ms - x > ms(t.flap_window))
        {
            self.transitions_ms.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    fn timing(for_s: u64, clear_s: u64) -> Timing {
        Timing {
            for_: Duration::from_secs(for_s),
            clear_for: Duration::from_secs(clear_s),
            repeat_interval: Duration::from_secs(600),
            flap_threshold: 4,
            flap_window: Duration::from_secs(3600),
        }
    }

    /// Feed (second, breached) pairs; return the actions that were not Nothing.
    fn run(t: &Timing, steps: &[(i64, bool)]) -> Vec<(i64, Action)> {
        let mut a = Alert::default();
        steps
            .iter()
            .map(|(s, b)| (*s, a.observe(*b, s * S, t)))
            .filter(|(_, act)| *act != Action::Nothing)
            .collect()
    }

    #[test]
    fn for_must_hold_before_firing() {
        let t = timing(120, 0);
        let steps: Vec<(i64, bool)> = (0..10).map(|i| (i * 30, true)).collect();
        assert_eq!(run(&t, &steps), vec![(120, Action::Fire)]);
        // A breach that clears before `for` never fires.
        assert_eq!(
            run(&t, &[(0, true), (60, true), (90, false), (120, true)]),
            vec![]
        );
    }

    #[test]
    fn resolves_only_after_clear_for_and_notifies_once_per_transition() {
        let t = timing(0, 90);
        let got = run(
            &t,
            &[
                (0, true),
                (30, true),
                (60, false),
                (90, true),
                (120, false),
                (150, false),
                (180, false),
                (210, false),
                (240, false),
            ],
        );
        assert_eq!(got, vec![(0, Action::Fire), (210, Action::Resolve)]);
    }

    #[test]
    fn reminders_while_firing() {
        let t = timing(0, 0);
        let steps: Vec<(i64, bool)> = (0..=25).map(|i| (i * 60, true)).collect();
        assert_eq!(
            run(&t, &steps),
            vec![
                (0, Action::Fire),
                (600, Action::Remind),
                (1200, Action::Remind)
            ]
        );
    }

    #[test]
    fn flapping_is_held_and_marked() {
        let t = timing(0, 0);
        // Fire/resolve every minute: after the threshold, nothing more is sent.
        let steps: Vec<(i64, bool)> = (0..20).map(|i| (i * 60, i % 2 == 0)).collect();
        let got = run(&t, &steps);
        let fires = got.iter().filter(|(_, a)| *a == Action::Fire).count();
        let resolves = got.iter().filter(|(_, a)| *a == Action::Resolve).count();
        assert!(fires <= 3 && resolves <= 3, "{got:?}");
        assert_eq!(fires, resolves, "every sent fire gets its resolve: {got:?}");
        let mut a = Alert::default();
        for (s, b) in &steps {
            a.observe(*b, s * S, &t);
        }
        assert!(a.flapping);
    }

    #[test]
    fn state_survives_a_restart() {
        let t = timing(60, 0);
        let mut a = Alert::default();
        assert_eq!(a.observe(true, 0, &t), Action::Nothing);
        assert_eq!(a.observe(true, 60 * S, &t), Action::Fire);
        let saved = serde_json::to_string(&a).unwrap();
        let mut b: Alert = serde_json::from_str(&saved).unwrap();
        assert_eq!(
            b.observe(true, 90 * S, &t),
            Action::Nothing,
            "no duplicate after a restart"
        );
        assert_eq!(
            b.observe(false, 120 * S, &t),
            Action::Resolve,
            "resolution still sent"
        );
    }
}
