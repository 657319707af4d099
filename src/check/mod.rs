//! The history checkers: given what many concurrent clients saw ([`history`]), decide
//! whether Leasehold kept its promises — no token handed to two holders or going back
//! ([`leases`]), version-checked writes that are linearizable and never lost
//! ([`register`]), no counter value handed out twice nor read before it was taken back
//! ([`counters`]), and a live event stream that sends nothing a failover takes back,
//! twice, out of order or not at all ([`events`]).
//!
//! They are plain functions over a recorded history, so the chaos tests, `leasehold
//! contend` and the unit tests (which feed them hand-made bad histories, to prove that
//! they can fail) all run the same code. An operation whose outcome is
//! [`Outcome::Unknown`] may or may not have happened; the checkers accept both.

use std::collections::HashMap;

pub mod counters;
pub mod events;
pub mod history;
pub mod leases;
pub mod register;

pub use counters::check_counters;
pub use events::{Delivered, Delivery, EventLog, check_events};
pub use history::{Clock, Event, History, LeaseAction, Op, Outcome};
pub use leases::{FencedResource, FencedWrite, check_leases};
pub use register::{check_registers, check_registers_with_budget};

/// One broken promise found in a history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Anomaly {
    /// Which checker found it: `leases`, `fenced_resource`, `registers`, `counters`,
    /// `events`.
    pub checker: &'static str,
    /// A stable name for what broke (e.g. `token_reused`, `lost_write`).
    pub kind: &'static str,
    /// The operations involved, in words.
    pub detail: String,
}

impl std::fmt::Display for Anomaly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}: {}", self.checker, self.kind, self.detail)
    }
}

/// What the checkers made of one history: the figures a fault test prints on one line.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub operations: usize,
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
    pub anomalies: Vec<Anomaly>,
}

impl Report {
    /// Whether no checker found anything.
    pub fn is_clean(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// Adds anomalies found elsewhere (e.g. [`FencedResource::anomalies`]).
    pub fn add(&mut self, anomalies: impl IntoIterator<Item = Anomaly>) {
        self.anomalies.extend(anomalies);
    }
}

impl std::fmt::Display for Report {
    /// The one-line summary, then one line per anomaly.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "operations {} ok {} fail {} unknown {} anomalies {}",
            self.operations,
            self.ok,
            self.fail,
            self.unknown,
            self.anomalies.len()
        )?;
        for anomaly in &self.anomalies {
            write!(f, "\n  {anomaly}")?;
        }
        Ok(())
    }
}

/// Values read once the run is over, after every client stopped.
#[derive(Debug, Default, Clone)]
pub struct Finals {
    /// Per register key, its final `(version, value)`.
    pub registers: HashMap<String, (u64, u64)>,
    /// Per `(counter, period)`, its final value (the last one issued; 0 if none).
    pub counters: HashMap<(String, Option<String>), u64>,
    /// The followed pool's event log (`None`: no pool was followed).
    pub event_log: Option<EventLog>,
}

/// Runs every checker over `events` and the event stream's `deliveries`, and counts the
/// outcomes.
pub fn check_all(events: &[Event], deliveries: &[Delivery], finals: &Finals) -> Report {
    let mut report = Report {
        operations: events.len(),
        ..Report::default()
    };
    for event in events {
        match event.outcome {
            Outcome::Ok => report.ok += 1,
            Outcome::Fail => report.fail += 1,
            Outcome::Unknown => report.unknown += 1,
        }
    }
    report.add(check_leases(events));
    report.add(check_registers(events, finals));
    report.add(check_counters(events, finals));
    if let Some(log) = &finals.event_log {
        report.add(check_events(deliveries, log, events));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(client: usize, call_us: u64, return_us: u64, outcome: Outcome, op: Op) -> Event {
        Event {
            client,
            call_us,
            return_us,
            outcome,
            op,
        }
    }

    #[test]
    fn check_all_counts_outcomes_and_passes_a_good_history() {
        let events = vec![
            ev(
                0,
                0,
                10,
                Outcome::Ok,
                Op::Grant {
                    pool: "p".into(),
                    item: "a".into(),
                    holder: "h0".into(),
                    token: 1,
                },
            ),
            ev(
                1,
                0,
                10,
                Outcome::Ok,
                Op::Cas {
                    key: "k".into(),
                    expected: 1,
                    value: 1,
                    new_version: 2,
                },
            ),
            ev(
                2,
                20,
                30,
                Outcome::Fail,
                Op::Cas {
                    key: "k".into(),
                    expected: 1,
                    value: 1,
                    new_version: 0,
                },
            ),
            ev(
                3,
                20,
                30,
                Outcome::Unknown,
                Op::Counter {
                    counter: "c".into(),
                    period: None,
                    values: vec![],
                },
            ),
        ];
        let mut finals = Finals::default();
        finals.registers.insert("k".into(), (2, 1));
        let report = check_all(&events, &[], &finals);
        assert!(report.is_clean(), "{report}");
        assert_eq!(
            (report.operations, report.ok, report.fail, report.unknown),
            (4, 2, 1, 1)
        );
        assert!(
            report
                .to_string()
                .starts_with("operations 4 ok 2 fail 1 unknown 1 anomalies 0")
        );
    }

    #[test]
    fn check_all_reports_every_checkers_anomalies() {
        let grant = |holder: &str| Op::Grant {
            pool: "p".into(),
            item: "a".into(),
            holder: holder.into(),
            token: 7,
        };
        let draw = Op::Counter {
            counter: "c".into(),
            period: Some("2026-01-10".into()),
            values: vec![1],
        };
        let events = vec![
            ev(0, 0, 10, Outcome::Ok, grant("h0")),
            ev(1, 0, 10, Outcome::Ok, grant("h1")),
            ev(2, 0, 10, Outcome::Ok, draw.clone()),
            ev(3, 20, 30, Outcome::Ok, draw),
            ev(
                4,
                40,
                50,
                Outcome::Ok,
                Op::Read {
                    key: "k".into(),
                    version: 3,
                    value: 9,
                },
            ),
        ];
        // An event sent live that the final log no longer holds.
        let sent = crate::client::Event {
            id: "100-0".into(),
            kind: crate::client::EventKind::Claimed,
            item: Some("a".into()),
            state: Some(crate::client::ItemState::Leased),
            version: Some(2),
            holder: Some("h0".into()),
            token: Some(7),
            at: "2026-01-10T09:30:00.100Z".into(),
            lease_expires_at: None,
        };
        let deliveries = [Delivery {
            received_us: 60,
            delivered: Delivered::Event(sent),
        }];
        let finals = Finals {
            event_log: Some(EventLog {
                pool: "p".into(),
                events: Vec::new(),
            }),
            ..Finals::default()
        };
        let report = check_all(&events, &deliveries, &finals);
        let kinds: Vec<_> = report.anomalies.iter().map(|a| a.kind).collect();
        assert!(kinds.contains(&"token_reused"), "{report}");
        assert!(kinds.contains(&"value_reused"), "{report}");
        assert!(kinds.contains(&"not_linearizable"), "{report}");
        assert!(kinds.contains(&"event_taken_back"), "{report}");
    }
}
