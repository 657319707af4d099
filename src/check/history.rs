//! The history of a run: what each client asked, when, and what it saw, recorded from many
//! threads at once so that the checkers in [`crate::check`] can judge it afterwards.
//!
//! Times are microseconds since the run's [`Clock`] started. An operation spans from the
//! moment its client sent the first attempt (`call_us`) to the moment it gave up or got its
//! final answer (`return_us`): a request retried with the same `Idempotency-Key` is **one**
//! operation, so its `call_us` is that of the first attempt. Recording a replayed answer as
//! a new operation that started late would make a correct service look wrong.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How an operation ended, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The service answered that it did it.
    Ok,
    /// The service answered that it refused (a 409, a 412): it did not happen.
    Fail,
    /// A timeout, a dropped connection or a 5xx: it may or may not have happened, at any
    /// time after the call.
    Unknown,
}

/// What an operation made under a lease's token asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseAction {
    /// `POST .../renew`.
    Renew,
    /// `POST .../release`.
    Release,
    /// `POST .../complete`.
    Complete,
    /// A write carrying the token: `Lease-Token` on an item, or the protected resource.
    Write,
}

/// One operation, with what its client saw. Which fields matter depends on the outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A grant (claim-next, claim of one item, assignment). token is meaningful only when Ok.
    Grant {
        pool: String,
        item: String,
        holder: String,
        token: u64,
    },
    /// An operation made under a lease's token: Ok = the service accepted the token as current.
    UseLease {
        pool: String,
        item: String,
        holder: String,
        token: u64,
        action: LeaseAction,
    },
    /// A read of a version-checked register (an item whose data holds a number).
    Read {
        key: String,
        version: u64,
        value: u64,
    },
    /// A conditional write If-Match `expected` of `value`. Ok: new_version is the version it
    /// made; Fail: the precondition failed (412/409).
    Cas {
        key: String,
        expected: u64,
        value: u64,
        new_version: u64,
    },
    /// Counter values handed out (Ok) in a period (None: a counter without periods).
    Counter {
        counter: String,
        period: Option<String>,
        values: Vec<u64>,
    },
    /// A read of a counter's last issued value in a period (Ok: `value` is what it
    /// showed; otherwise it showed nothing).
    CounterRead {
        counter: String,
        period: Option<String>,
        value: u64,
    },
}

/// One recorded operation of one client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// Which client made it: one request in flight per client.
    pub client: usize,
    /// When the client sent it (the first attempt, if it was retried).
    pub call_us: u64,
    /// When the client had its final answer or gave up.
    pub return_us: u64,
    pub outcome: Outcome,
    pub op: Op,
}

impl std::fmt::Display for Event {
    /// One line that names the operation, for anomaly details.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcome = match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        };
        write!(
            f,
            "client {} [{}..{}us] {outcome} ",
            self.client, self.call_us, self.return_us
        )?;
        match &self.op {
            Op::Grant {
                pool,
                item,
                holder,
                token,
            } => write!(f, "grant {pool}/{item} to {holder} token {token}"),
            Op::UseLease {
                pool,
                item,
                holder,
                token,
                action,
            } => write!(f, "{action:?} {pool}/{item} by {holder} token {token}"),
            Op::Read {
                key,
                version,
                value,
            } => write!(f, "read {key} = (version {version}, value {value})"),
            Op::Cas {
                key,
                expected,
                value,
                new_version,
            } => write!(
                f,
                "cas {key} if-match {expected} value {value} new_version {new_version}"
            ),
            Op::Counter {
                counter,
                period,
                values,
            } => write!(
                f,
                "counter {counter} period {} values {values:?}",
                period.as_deref().unwrap_or("none")
            ),
            Op::CounterRead {
                counter,
                period,
                value,
            } => write!(
                f,
                "counter read {counter} period {} value {value}",
                period.as_deref().unwrap_or("none")
            ),
        }
    }
}

/// The run's clock: every thread reads the same origin, so times from different clients
/// can be compared (a monotonic `Instant`, never the wall clock, which can jump).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Microseconds since the clock started.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The moment `us` microseconds after the clock started: how a time in the history
    /// is compared with moments measured elsewhere (such as when a fault was injected).
    pub fn instant_at(&self, us: u64) -> Instant {
        self.origin + Duration::from_micros(us)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A thread-safe recorder of [`Event`]s, shared by every client of a run (put it in an `Arc`).
#[derive(Debug)]
pub struct History {
    clock: Clock,
    events: Mutex<Vec<Event>>,
}

impl History {
    /// An empty history whose clock starts now.
    pub fn new() -> Self {
        Self {
            clock: Clock::new(),
            events: Mutex::new(Vec::new()),
        }
    }

    /// The run's clock (a copy: cheap, and usable without touching the lock).
    pub fn start(&self) -> Clock {
        self.clock
    }

    /// Microseconds since the history was created.
    pub fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    /// Adds one finished operation. A client thread that panicked while holding the lock
    /// must not cost the other clients their history, so a poisoned lock is still used.
    pub fn record(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    /// Every event recorded so far, ordered by call time (then client).
    pub fn events(&self) -> Vec<Event> {
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        events.sort_by_key(|e| (e.call_us, e.client, e.return_us));
        events
    }

    /// How many events were recorded.
    pub fn len(&self) -> usize {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

/// Events as JSON lines, one event a line: written next to a failing run's seed so the
/// checkers can be replayed on exactly what the clients saw.
pub fn to_json_lines(events: &[Event]) -> String {
    let mut out = String::new();
    for event in events {
        out.push_str(&serde_json::to_string(event).expect("an Event has only string keys"));
        out.push('\n');
    }
    out
}

/// Reads what [`to_json_lines`] wrote (blank lines are skipped).
pub fn from_json_lines(text: &str) -> Result<Vec<Event>, serde_json::Error> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(serde_json::from_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn events_from_many_threads_are_all_kept_in_call_order() {
        let history = Arc::new(History::new());
        let threads: Vec<_> = (0..4)
            .map(|client| {
                let history = Arc::clone(&history);
                std::thread::spawn(move || {
                    let clock = history.start();
                    for _ in 0..50 {
                        let call_us = clock.now_us();
                        history.record(Event {
                            client,
                            call_us,
                            return_us: history.now_us(),
                            outcome: Outcome::Ok,
                            op: Op::Read {
                                key: "k".into(),
                                version: 1,
                                value: 0,
                            },
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a recording thread panicked");
        }
        let events = history.events();
        assert_eq!(events.len(), 200);
        assert_eq!(history.len(), 200);
        assert!(events.windows(2).all(|w| w[0].call_us <= w[1].call_us));
        assert!(events.iter().all(|e| e.call_us <= e.return_us));
    }

    #[test]
    fn a_time_in_the_history_maps_back_to_an_instant() {
        let clock = Clock::new();
        assert!(clock.instant_at(0) <= Instant::now());
        assert_eq!(
            clock.instant_at(1_500_000) - clock.instant_at(0),
            Duration::from_millis(1500)
        );
        let now_us = clock.now_us();
        assert!(clock.instant_at(now_us) <= Instant::now());
    }

    #[test]
    fn json_lines_round_trip_with_stable_field_names() {
        let events = vec![
            Event {
                client: 1,
                call_us: 5,
                return_us: 9,
                outcome: Outcome::Unknown,
                op: Op::UseLease {
                    pool: "p".into(),
                    item: "i".into(),
                    holder: "h".into(),
                    token: 3,
                    action: LeaseAction::Complete,
                },
            },
            Event {
                client: 2,
                call_us: 6,
                return_us: 7,
                outcome: Outcome::Ok,
                op: Op::Counter {
                    counter: "c".into(),
                    period: None,
                    values: vec![1, 2],
                },
            },
            Event {
                client: 3,
                call_us: 8,
                return_us: 12,
                outcome: Outcome::Ok,
                op: Op::CounterRead {
                    counter: "c".into(),
                    period: Some("2026-01-10".into()),
                    value: 2,
                },
            },
        ];
        let text = to_json_lines(&events);
        assert!(text.contains(r#""outcome":"unknown""#), "{text}");
        assert!(text.contains(r#""op":"use_lease""#), "{text}");
        assert!(text.contains(r#""action":"complete""#), "{text}");
        assert!(text.contains(r#""op":"counter_read""#), "{text}");
        assert_eq!(from_json_lines(&text).expect("valid JSON lines"), events);
    }
}
