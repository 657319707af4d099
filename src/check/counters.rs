//! The counter checker: no value handed out twice per (counter, period), batches that are
//! contiguous runs from 1 up, a final value that never falls below what was handed out,
//! and reads that agree with the draws around them.

use std::collections::BTreeMap;

use super::history::{Event, Op, Outcome};
use super::{Anomaly, Finals};

const CHECKER: &str = "counters";

/// A (counter, period) pair: the unit in which values are unique.
type Key<'a> = (&'a str, Option<&'a str>);

/// Checks every Ok counter draw and read in `events`, against each other and against
/// `finals`: see [`check_draws`] and [`check_reads`].
pub fn check_counters(events: &[Event], finals: &Finals) -> Vec<Anomaly> {
    let mut anomalies = check_draws(events, finals);
    anomalies.extend(check_reads(events, finals));
    anomalies
}

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
pub fn check_draws(events: &[Event], finals: &Finals) -> Vec<Anomaly> {
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

/// Checks every Ok counter read in `events` against the draws and the other reads of the
/// same (counter, period), treating the counter as one register whose value only grows.
/// With each operation spanning `[call_us, return_us]`:
///
/// - `stale_counter_read`: a read that started after an Ok draw returned shows a value
///   below that draw's largest value.
/// - `counter_read_went_back`: a read that started after another read returned shows a
///   smaller value.
/// - `counter_read_reissued`: an Ok draw that started after a read returned hands out a
///   value at or below the one the read showed, so that value is issued again (a client
///   that made an ID from the read now shares it).
/// - `counter_read_taken_back`: a read shows a value above the final one, so the value
///   it showed will be issued again.
///
/// Unknown draws may have raised the counter at any time after their call, which none of
/// these rules forbid, so they are skipped, as are reads that showed nothing. Sorting by
/// time and sweeping keeps this O(n log n).
pub fn check_reads(events: &[Event], finals: &Finals) -> Vec<Anomaly> {
    let mut timelines: BTreeMap<Key, Timeline> = BTreeMap::new();
    for event in events.iter().filter(|e| e.outcome == Outcome::Ok) {
        match &event.op {
            Op::Counter {
                counter,
                period,
                values,
            } if !values.is_empty() => timelines
                .entry((counter.as_str(), period.as_deref()))
                .or_default()
                .draws
                .push(event),
            Op::CounterRead {
                counter, period, ..
            } => timelines
                .entry((counter.as_str(), period.as_deref()))
                .or_default()
                .reads
                .push(event),
            _ => {}
        }
    }
    let mut anomalies = Vec::new();
    for (key, timeline) in &timelines {
        anomalies.extend(timeline.check(*key, finals));
    }
    anomalies
}

/// The Ok draws and reads of one (counter, period).
#[derive(Default)]
struct Timeline<'a> {
    draws: Vec<&'a Event>,
    reads: Vec<&'a Event>,
}

impl Timeline<'_> {
    fn check(&self, (counter, period): Key, finals: &Finals) -> Vec<Anomaly> {
        let mut anomalies = Vec::new();
        let mut flag = |kind: &'static str, detail: String| {
            anomalies.push(Anomaly {
                checker: CHECKER,
                kind,
                detail: format!("{counter} period {}: {detail}", period.unwrap_or("none")),
            });
        };
        for (read, draw) in largest_before(&self.draws, &self.reads) {
            if shown(read) < shown(draw) {
                flag(
                    "stale_counter_read",
                    format!("{read} started after {draw} returned"),
                );
            }
        }
        for (read, earlier) in largest_before(&self.reads, &self.reads) {
            if shown(read) < shown(earlier) {
                flag(
                    "counter_read_went_back",
                    format!("{read} started after {earlier} returned"),
                );
            }
        }
        for (draw, read) in largest_before(&self.reads, &self.draws) {
            if first_value(draw) <= shown(read) {
                flag(
                    "counter_read_reissued",
                    format!("{draw} started after {read} returned"),
                );
            }
        }
        let final_value = finals
            .counters
            .get(&(counter.to_owned(), period.map(str::to_owned)));
        if let Some(&last) = final_value {
            for read in self.reads.iter().filter(|read| shown(read) > last) {
                flag(
                    "counter_read_taken_back",
                    format!("{read} is above the final value {last}"),
                );
            }
        }
        anomalies
    }
}

/// The largest value an Ok draw handed out, or the value an Ok read showed.
fn shown(event: &Event) -> u64 {
    match &event.op {
        Op::Counter { values, .. } => values.iter().copied().max().unwrap_or(0),
        Op::CounterRead { value, .. } => *value,
        _ => 0,
    }
}

/// The smallest value an Ok draw handed out (a read's value, for a read).
fn first_value(event: &Event) -> u64 {
    match &event.op {
        Op::Counter { values, .. } => values.iter().copied().min().unwrap_or(0),
        _ => shown(event),
    }
}

/// Pairs each of `later` with the event of `earlier` that returned before it was called
/// and [`shown`] the largest value (those with none such are left out): one sort of each
/// list by time, then one sweep.
fn largest_before<'a>(earlier: &[&'a Event], later: &[&'a Event]) -> Vec<(&'a Event, &'a Event)> {
    let mut earlier = earlier.to_vec();
    earlier.sort_by_key(|e| e.return_us);
    let mut later = later.to_vec();
    later.sort_by_key(|e| e.call_us);
    let mut pairs = Vec::new();
    let mut largest: Option<&Event> = None;
    let mut returned = earlier.into_iter().peekable();
    for event in later {
        while let Some(done) = returned.next_if(|e| e.return_us < event.call_us) {
            if largest.is_none_or(|l| shown(done) > shown(l)) {
                largest = Some(done);
            }
        }
        if let Some(largest) = largest {
            pairs.push((event, largest));
        }
    }
    pairs
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

    fn read(client: usize, call: u64, period: Option<&str>, value: u64) -> Event {
        Event {
            client,
            call_us: call,
            return_us: call + 10,
            outcome: Outcome::Ok,
            op: Op::CounterRead {
                counter: "cases".into(),
                period: period.map(str::to_owned),
                value,
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

    const DAY: Option<&str> = Some("2026-01-10");

    #[test]
    fn reads_that_agree_with_the_draws_around_them_pass() {
        let mut lost = draw(1, 5, DAY, &[]);
        lost.outcome = Outcome::Unknown;
        let mut unanswered = read(2, 20, DAY, 0);
        unanswered.outcome = Outcome::Unknown;
        let events = vec![
            draw(0, 0, DAY, &[1, 2]),
            // Took 3, which no one saw handed out; a read may still show it.
            lost,
            unanswered,
            read(3, 20, DAY, 3),
            draw(0, 40, DAY, &[4]),
            // Overlaps the draw of 4: either value is right.
            read(4, 45, DAY, 3),
            // Equal to the final value.
            read(5, 60, DAY, 4),
            // A period no one drew in.
            read(6, 60, Some("2026-01-11"), 0),
        ];
        let anomalies = check_counters(&events, &finals(DAY, 4));
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn a_read_that_overlaps_a_draw_may_show_its_values() {
        let mut long_read = read(1, 0, DAY, 1);
        long_read.return_us = 100;
        let events = vec![long_read, draw(0, 50, DAY, &[1])];
        assert!(check_counters(&events, &finals(DAY, 1)).is_empty());
    }

    #[test]
    fn a_read_below_a_draw_that_returned_before_it_is_flagged() {
        let events = vec![draw(0, 0, DAY, &[1, 2, 3]), read(1, 20, DAY, 2)];
        assert_eq!(
            kinds(&check_counters(&events, &finals(DAY, 3))),
            vec!["stale_counter_read"]
        );
    }

    #[test]
    fn a_read_below_an_earlier_read_is_flagged() {
        let events = vec![read(0, 0, DAY, 5), read(1, 20, DAY, 4)];
        assert_eq!(
            kinds(&check_counters(&events, &finals(DAY, 5))),
            vec!["counter_read_went_back"]
        );
    }

    #[test]
    fn a_value_a_read_showed_and_a_later_draw_handed_out_again_is_flagged() {
        let events = vec![read(0, 0, DAY, 3), draw(1, 20, DAY, &[3, 4])];
        assert_eq!(
            kinds(&check_counters(&events, &finals(DAY, 4))),
            vec!["counter_read_reissued"]
        );
    }

    #[test]
    fn a_read_above_the_final_value_is_flagged() {
        let events = vec![draw(0, 0, DAY, &[1]), read(1, 20, DAY, 2)];
        assert_eq!(
            kinds(&check_counters(&events, &finals(DAY, 1))),
            vec!["counter_read_taken_back"]
        );
    }

    #[test]
    fn a_long_history_of_reads_is_checked_in_one_sweep() {
        // 50,000 draws, each followed by a read of its value: an O(n²) check would
        // compare 10^9 pairs.
        let events: Vec<Event> = (1..=50_000u64)
            .flat_map(|n| [draw(0, n * 100, DAY, &[n]), read(1, n * 100 + 20, DAY, n)])
            .collect();
        let started = std::time::Instant::now();
        let anomalies = check_counters(&events, &finals(DAY, 50_000));
        assert!(anomalies.is_empty(), "{:?}", anomalies.first());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
