//! The event checker: what a follower of a pool's live event stream was sent, held to the
//! pool's event log as read once the run was over. Nothing sent may be taken back by a
//! failover, sent twice, sent out of order or skipped without a `trimmed` notice; and every
//! event names the holder and item of the grant that made its fencing token.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use super::Anomaly;
use super::history::{Event, Op, Outcome};
use crate::client;
use crate::store::EventId;

const CHECKER: &str = "events";

/// What one message of the stream said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// An event of the pool's log.
    Event(client::Event),
    /// Events were dropped by the log's cap before they could be sent: the next event may
    /// come after a gap.
    Trimmed,
    /// A message whose data is not an event (`id` is the message's own id, maybe empty).
    Unreadable { id: String, data: String },
}

/// One message of the stream, with when the follower received it (microseconds on the
/// run's [`Clock`](super::Clock)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub received_us: u64,
    pub delivered: Delivered,
}

/// A pool's event log as read once the run was over: the truth deliveries are held to.
#[derive(Debug, Default, Clone)]
pub struct EventLog {
    /// The pool it belongs to (grants of other pools say nothing of its tokens).
    pub pool: String,
    /// Its events, oldest first.
    pub events: Vec<client::Event>,
}

/// Checks the `deliveries` of one follower, in the order it received them, against the
/// final `log` and the grants recorded in `history`:
///
/// - `event_taken_back`: a delivered event at or after the oldest one in the final log that
///   is missing from it, or differs from it (type, item, state, version, holder or token).
///   A log whose cap is above 0 always keeps its latest events, so an empty final log
///   takes back every event delivered.
/// - `event_delivered_twice`: an id delivered again.
/// - `events_out_of_order`: an id below one delivered before it (ids only grow).
/// - `event_missed`: events of the final log between two deliveries (or before the first:
///   the follower starts from the oldest event kept) that were never sent, with no
///   `trimmed` notice in between to say they were dropped.
/// - `event_disagrees_with_grant`: an event (of the final log, or delivered and not in it)
///   whose token an Ok grant of the same pool handed out, but to another item or holder.
/// - `event_unreadable`: a message (or an event of the log) that is not an event, or whose
///   id is not one.
///
/// Everything after the last delivery is left alone: the follower stopped before it.
pub fn check_events(deliveries: &[Delivery], log: &EventLog, history: &[Event]) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    let logged = index(log, &mut anomalies);
    let mut follower = Follower::new(&logged);
    for delivery in deliveries {
        follower.take(delivery, &mut anomalies);
    }
    anomalies.extend(disagreements(log, &logged, deliveries, history));
    anomalies
}

fn anomaly(kind: &'static str, detail: String) -> Anomaly {
    Anomaly {
        checker: CHECKER,
        kind,
        detail,
    }
}

/// One event in a line, as the service sent it.
fn describe(event: &client::Event) -> String {
    serde_json::to_string(event).unwrap_or_else(|_| format!("{event:?}"))
}

/// The final log by id; an event whose id is not one is flagged and left out.
fn index<'a>(
    log: &'a EventLog,
    anomalies: &mut Vec<Anomaly>,
) -> BTreeMap<EventId, &'a client::Event> {
    let mut logged = BTreeMap::new();
    for event in &log.events {
        match EventId::parse(&event.id) {
            Some(id) => {
                logged.insert(id, event);
            }
            None => anomalies.push(anomaly(
                "event_unreadable",
                format!(
                    "the final log holds an event without a valid id: {}",
                    describe(event)
                ),
            )),
        }
    }
    logged
}

/// Whether two events record the same change (their `at` is their id's time).
fn same_change(a: &client::Event, b: &client::Event) -> bool {
    a.kind == b.kind
        && a.item == b.item
        && a.state == b.state
        && a.version == b.version
        && a.holder == b.holder
        && a.token == b.token
}

/// The follower's deliveries so far, checked one at a time.
struct Follower<'a> {
    logged: &'a BTreeMap<EventId, &'a client::Event>,
    /// The newest id delivered (none yet: the follower started from the oldest kept).
    newest: Option<EventId>,
    /// A `trimmed` notice came since the newest delivery: the next may follow a gap.
    gap_allowed: bool,
    seen: BTreeSet<EventId>,
}

impl<'a> Follower<'a> {
    fn new(logged: &'a BTreeMap<EventId, &'a client::Event>) -> Self {
        Follower {
            logged,
            newest: None,
            gap_allowed: false,
            seen: BTreeSet::new(),
        }
    }

    fn take(&mut self, delivery: &Delivery, anomalies: &mut Vec<Anomaly>) {
        let received = delivery.received_us;
        let event = match &delivery.delivered {
            Delivered::Trimmed => {
                self.gap_allowed = true;
                return;
            }
            Delivered::Unreadable { id, data } => {
                anomalies.push(anomaly(
                    "event_unreadable",
                    format!("message {id:?} received at {received}us is not an event: {data}"),
                ));
                return;
            }
            Delivered::Event(event) => event,
        };
        let Some(id) = EventId::parse(&event.id) else {
            anomalies.push(anomaly(
                "event_unreadable",
                format!(
                    "received at {received}us without a valid id: {}",
                    describe(event)
                ),
            ));
            return;
        };
        let sent = format!("{} received at {received}us", describe(event));
        if !self.seen.insert(id) {
            anomalies.push(anomaly("event_delivered_twice", sent.clone()));
        } else if self.newest.is_some_and(|newest| id < newest) {
            anomalies.push(anomaly(
                "events_out_of_order",
                format!("{sent}, after {}", self.newest.unwrap_or(id)),
            ));
        } else {
            if !self.gap_allowed {
                anomalies.extend(self.missed_before(id, &sent));
            }
            self.newest = Some(id);
            self.gap_allowed = false;
        }
        anomalies.extend(self.taken_back(id, event, &sent));
    }

    /// The logged events between the newest delivery and `id`, which should have come
    /// first: one anomaly for the whole gap.
    fn missed_before(&self, id: EventId, sent: &str) -> Option<Anomaly> {
        let from = self.newest.map_or(Bound::Unbounded, Bound::Excluded);
        let mut missed = self.logged.range((from, Bound::Excluded(id)));
        let (_, first) = missed.next()?;
        let more = missed.count();
        Some(anomaly(
            "event_missed",
            format!(
                "{} and {more} more logged event(s) never sent before {sent}",
                describe(first)
            ),
        ))
    }

    /// Whether the final log contradicts a delivered event it should still hold.
    fn taken_back(&self, id: EventId, event: &client::Event, sent: &str) -> Option<Anomaly> {
        let oldest = self.logged.keys().next();
        if oldest.is_some_and(|oldest| id < *oldest) {
            return None;
        }
        match self.logged.get(&id) {
            None => Some(anomaly(
                "event_taken_back",
                format!("{sent} is missing from the final log"),
            )),
            Some(kept) if !same_change(kept, event) => Some(anomaly(
                "event_taken_back",
                format!("{sent} differs from the final log's {}", describe(kept)),
            )),
            Some(_) => None,
        }
    }
}

/// Events whose token an Ok grant of the log's pool handed out to another item or holder:
/// those of the final log, and those delivered that it does not hold.
fn disagreements(
    log: &EventLog,
    logged: &BTreeMap<EventId, &client::Event>,
    deliveries: &[Delivery],
    history: &[Event],
) -> Vec<Anomaly> {
    // Per token, the (item, holder) of every Ok grant of it: more than one only when
    // tokens were reused, which the lease checker reports.
    let mut grants: HashMap<u64, Vec<&Event>> = HashMap::new();
    for event in history.iter().filter(|e| e.outcome == Outcome::Ok) {
        if let Op::Grant { pool, token, .. } = &event.op
            && *pool == log.pool
            && *token > 0
        {
            grants.entry(*token).or_default().push(event);
        }
    }
    let delivered_only = deliveries.iter().filter_map(|d| match &d.delivered {
        Delivered::Event(event) => EventId::parse(&event.id)
            .is_none_or(|id| !logged.contains_key(&id))
            .then_some(event),
        _ => None,
    });
    let mut anomalies = Vec::new();
    for event in log.events.iter().chain(delivered_only) {
        let (Some(token), Some(holder)) = (event.token, event.holder.as_deref()) else {
            continue;
        };
        let Some(granted) = grants.get(&token) else {
            continue;
        };
        let agrees = granted.iter().any(|grant| {
            matches!(&grant.op, Op::Grant { item, holder: to, .. } if Some(item) == event.item.as_ref() && to == holder)
        });
        if !agrees {
            anomalies.push(anomaly(
                "event_disagrees_with_grant",
                format!(
                    "{} names token {token}, granted by {}",
                    describe(event),
                    granted[0]
                ),
            ));
        }
    }
    anomalies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{EventKind, ItemState};

    const POOL: &str = "p";

    fn event(
        id: &str,
        kind: EventKind,
        item: &str,
        holder: Option<&str>,
        token: u64,
    ) -> client::Event {
        client::Event {
            id: id.to_owned(),
            kind,
            item: Some(item.to_owned()),
            state: Some(if holder.is_some() {
                ItemState::Leased
            } else {
                ItemState::Available
            }),
            version: Some(1),
            holder: holder.map(str::to_owned),
            token: holder.map(|_| token),
            at: "2026-01-10T09:30:00.000Z".to_owned(),
            lease_expires_at: None,
        }
    }

    fn added(id: &str, item: &str) -> client::Event {
        event(id, EventKind::Added, item, None, 0)
    }

    fn claimed(id: &str, item: &str, holder: &str, token: u64) -> client::Event {
        event(id, EventKind::Claimed, item, Some(holder), token)
    }

    fn delivered(events: &[client::Event]) -> Vec<Delivery> {
        events
            .iter()
            .enumerate()
            .map(|(n, event)| Delivery {
                received_us: n as u64 * 10,
                delivered: Delivered::Event(event.clone()),
            })
            .collect()
    }

    fn log(events: &[client::Event]) -> EventLog {
        EventLog {
            pool: POOL.to_owned(),
            events: events.to_vec(),
        }
    }

    fn grant(item: &str, holder: &str, token: u64) -> Event {
        Event {
            client: 0,
            call_us: 0,
            return_us: 10,
            outcome: Outcome::Ok,
            op: Op::Grant {
                pool: POOL.to_owned(),
                item: item.to_owned(),
                holder: holder.to_owned(),
                token,
            },
        }
    }

    fn kinds(anomalies: &[Anomaly]) -> Vec<&'static str> {
        anomalies.iter().map(|a| a.kind).collect()
    }

    fn the_log() -> Vec<client::Event> {
        vec![
            added("100-0", "a"),
            added("100-1", "b"),
            claimed("105-0", "a", "h0", 1),
            claimed("107-0", "b", "h1", 2),
        ]
    }

    #[test]
    fn a_follower_that_saw_the_log_in_order_passes() {
        let history = [grant("a", "h0", 1), grant("b", "h1", 2)];
        let all = the_log();
        // It stopped before the last event: what came after it is not its to see.
        let anomalies = check_events(&delivered(&all[..3]), &log(&all), &history);
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn a_gap_after_a_trimmed_notice_and_events_older_than_the_log_pass() {
        let all = the_log();
        let mut deliveries = delivered(&[added("90-0", "z"), all[0].clone()]);
        deliveries.push(Delivery {
            received_us: 50,
            delivered: Delivered::Trimmed,
        });
        deliveries.extend(delivered(&all[3..]));
        // 90-0 was trimmed from the final log by the cap: it is older than the oldest kept.
        let anomalies = check_events(&deliveries, &log(&all), &[]);
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn an_event_missing_from_the_final_log_is_flagged() {
        let all = the_log();
        let mut deliveries = all.clone();
        deliveries.push(claimed("108-0", "a", "h2", 3));
        assert_eq!(
            kinds(&check_events(&delivered(&deliveries), &log(&all), &[])),
            vec!["event_taken_back"]
        );
    }

    #[test]
    fn an_event_that_differs_from_the_final_log_is_flagged() {
        let all = the_log();
        let mut deliveries = all.clone();
        // The log holds another change under the same id: the first was taken back.
        deliveries[2] = claimed("105-0", "a", "h9", 1);
        assert_eq!(
            kinds(&check_events(&delivered(&deliveries), &log(&all), &[])),
            vec!["event_taken_back"]
        );
    }

    #[test]
    fn an_empty_final_log_takes_back_what_was_delivered() {
        let all = the_log();
        assert_eq!(
            kinds(&check_events(&delivered(&all[..1]), &log(&[]), &[])),
            vec!["event_taken_back"]
        );
    }

    #[test]
    fn an_event_delivered_twice_is_flagged() {
        let all = the_log();
        let deliveries = [&all[..3], &all[2..]].concat();
        assert_eq!(
            kinds(&check_events(&delivered(&deliveries), &log(&all), &[])),
            vec!["event_delivered_twice"]
        );
    }

    #[test]
    fn events_out_of_order_are_flagged() {
        let all = the_log();
        let deliveries = [
            all[0].clone(),
            all[2].clone(),
            all[1].clone(),
            all[3].clone(),
        ];
        let found = kinds(&check_events(&delivered(&deliveries), &log(&all), &[]));
        // 100-1 came late: first missed, then out of order.
        assert_eq!(found, vec!["event_missed", "events_out_of_order"]);
    }

    #[test]
    fn a_gap_without_a_trimmed_notice_is_flagged() {
        let all = the_log();
        let deliveries = [all[0].clone(), all[3].clone()];
        let anomalies = check_events(&delivered(&deliveries), &log(&all), &[]);
        assert_eq!(kinds(&anomalies), vec!["event_missed"]);
        assert!(anomalies[0].detail.contains("and 1 more"), "{anomalies:?}");
        // Also before the first delivery: the follower starts from the oldest kept.
        assert_eq!(
            kinds(&check_events(&delivered(&all[1..]), &log(&all), &[])),
            vec!["event_missed"]
        );
    }

    #[test]
    fn an_event_naming_another_holder_than_its_tokens_grant_is_flagged() {
        let all = the_log();
        // Token 2 went to h1 for b, as logged; token 1 went to h3, not h0.
        let history = [grant("a", "h3", 1), grant("b", "h1", 2)];
        let anomalies = check_events(&delivered(&all), &log(&all), &history);
        assert_eq!(kinds(&anomalies), vec!["event_disagrees_with_grant"]);
        assert!(anomalies[0].detail.contains("h3"), "{anomalies:?}");
    }

    #[test]
    fn an_unreadable_message_is_flagged() {
        let deliveries = [Delivery {
            received_us: 5,
            delivered: Delivered::Unreadable {
                id: "100-0".to_owned(),
                data: "{}".to_owned(),
            },
        }];
        assert_eq!(
            kinds(&check_events(&deliveries, &log(&the_log()), &[])),
            vec!["event_unreadable"]
        );
    }
}
