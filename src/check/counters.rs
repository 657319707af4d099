//! The counter checker: no value handed out twice per (counter, period), batches that are
//! contiguous runs from 1 up, and a final value that never falls below what was handed out.

use std::collections::BTreeMap;

use super::history::{Event, Op, Outcome};
use super::{Anomaly, Finals};

const CHECKER: &str = "counters";

/// Checks every Ok counter draw in `events` against the others and against `finals`:
///
/// - `value_reused`: one value in two Ok draws (or twice in one) of the same
///   (counter, period) — a duplicate ID, the very bug counters exist to end.
/// - `bad_batch`: a draw whose values are not a contiguous ascending run starting at 1 or
///   more (the contract says a batch is contiguous and values start at 1).
/// - `counter_went_back`: the final value read at the end is below the largest value
///   handed out, so the next draw would hand out a value again (e.g. a failover that lost
///   acknowledged increments).
///
/// A (counter, period) absent from `finals.counters` is not checked against a final value.
/// Unknown draws handed out nothing that anyone saw, so they are skipped; the final value
/// may legitimately be above the largest value seen because of them.
pub fn check_counters(events: &[Event], finals: &Finals) -> Vec<Anomaly> {
    type Key<'a> = (&'a str, Option<&'a str>);
    // Per (counter, period): value -> the first draw that handed it out.
    let mut drawn: BTreeMap<Key, BTreeMap<u64, &Event>> = BTreeMap::new();
    let mut anomalies = Vec::new();
    for event in events.iter().filter(|e| e.outcome == Outcome::Ok) {
        let Op::Counter {
            counter,
            period,
            values,
        } = &event.op
        else {
            continue;
        };
        let contiguous = values.windows(2).all(|w| w[0].checked_add(1) == Some(w[1]));
        if !contiguous || values.first() == Some(&0) {
            anomalies.push(Anomaly {
                checker: CHECKER,
                kind: "bad_batch",
                detail: format!("values are not a contiguous run from 1 up: {event}"),
            });
        }
        let seen = drawn
            .entry((counter.as_str(), period.as_deref()))
            .or_default();
        for &value in values {
            if let Some(first) = seen.get(&value) {
                anomalies.push(Anomaly {
                    checker: CHECKER,
                    kind: "value_reused",
                    detail: format!(
                        "{counter} period {}: value {value} handed out by {first} and by \
                         {event}",
                        period.as_deref().unwrap_or("none")
                    ),
                });
            } else {
                seen.insert(value, event);
            }
        }
    }
    for ((counter, period), values) in &drawn {
        let key = (counter.to_string(), period.map(str::to_owned));
        let (Some(&last), Some((&largest, by))) =
            (finals.counters.get(&key), values.last_key_value())
        else {
            continue;
        };
        if last < largest {
            anomalies.push(Anomaly {
                checker: CHECKER,
                kind: "counter_went_back",
                detail: format!(
                    "{counter} period {}: final value {last} is below {largest}, handed out \
                     by {by}",
                    period.unwrap_or("none")
                ),
            });
        }
    }
    anomalies
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(client: usize, call: u64, period: Option<&str>, values: &[u64]) -> Event {
        Event {
            client,
            call_us: call,
            return_us: call + 10,
            outcome: Outcome::Ok,
            op: Op::Counter {
                counter: "cases".into(),
                period: period.map(str::to_owned),
                values: values.to_vec(),
            },
        }
    }

    fn finals(period: Option<&str>, value: u64) -> Finals {
        let mut finals = Finals::default();
        finals
            .counters
            .insert(("cases".into(), period.map(str::to_owned)), value);
        finals
    }

    fn kinds(anomalies: &[Anomaly]) -> Vec<&'static str> {
        anomalies.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn distinct_values_and_unknown_draws_pass() {
        let mut lost = draw(3, 5, Some("2026-01-10"), &[]);
        lost.outcome = Outcome::Unknown;
        let events = vec![
            draw(0, 0, Some("2026-01-10"), &[1, 2, 3]),
            draw(1, 0, Some("2026-01-10"), &[4]),
            draw(2, 0, None, &[1]),
            lost,
        ];
        // 5: the unknown draw took a value no one saw.
        let anomalies = check_counters(&events, &finals(Some("2026-01-10"), 5));
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn the_same_value_in_two_periods_is_not_a_reuse() {
        let events = vec![
            draw(0, 0, Some("2026-01-10"), &[1]),
            draw(1, 0, Some("2026-01-11"), &[1]),
            draw(2, 0, None, &[1]),
        ];
        assert!(check_counters(&events, &Finals::default()).is_empty());
    }

    #[test]
    fn a_reused_counter_value_is_flagged() {
        let events = vec![
            draw(0, 0, Some("2026-01-10"), &[1, 2]),
            draw(1, 30, Some("2026-01-10"), &[2, 3]),
        ];
        assert_eq!(
            kinds(&check_counters(&events, &finals(Some("2026-01-10"), 3))),
            vec!["value_reused"]
        );
    }

    #[test]
    fn a_final_value_below_what_was_handed_out_is_flagged() {
        let events = vec![draw(0, 0, None, &[1, 2, 3])];
        assert_eq!(
            kinds(&check_counters(&events, &finals(None, 2))),
            vec!["counter_went_back"]
        );
        assert!(check_counters(&events, &finals(None, 3)).is_empty());
    }

    #[test]
    fn a_batch_with_a_gap_or_a_zero_is_flagged() {
        let events = vec![draw(0, 0, None, &[1, 3]), draw(1, 0, None, &[0])];
        assert_eq!(
            kinds(&check_counters(&events, &Finals::default())),
            vec!["bad_batch", "bad_batch"]
        );
    }
}
