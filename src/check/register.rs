//! The version-checked register checker: per-key linearizability of reads and conditional
//! writes (`If-Match`), found by a Wing–Gong search with Lowe's and Porcupine's
//! memoization, and the final check that no acknowledged increment was lost.
//!
//! # The model
//!
//! Each key is a register whose state is `(version, value)`, starting at
//! [`INITIAL_STATE`] `(1, 0)` (a new item has version 1). A [`Op::Cas`] with `expected`
//! applies iff the version is `expected`, making `(version + 1, value)`; an Ok one must
//! report `new_version == version + 1`; a failed one (412/409) is legal only where the
//! version is not `expected`. An Ok [`Op::Read`] sees the state exactly. An unknown Cas
//! may take effect at any point after its call — even after the history ends — or never.
//! Failed and unknown reads say nothing and are skipped.
//!
//! # The search
//!
//! History entries (calls and returns, a call before a return at the same microsecond, so
//! that touching operations count as concurrent) sit in a doubly linked list. The search
//! linearizes one operation at a time among those whose call precedes the earliest
//! pending return, lifting it out of the list, and backtracks when that earliest return is
//! reached with its operation still pending. Two reductions keep it fast on
//! the histories the harness makes (64 clients, most writes refused):
//!
//! - *Operations that leave the state alone are taken at once, without a choice point*:
//!   a read that matches, a failed Cas whose version does not match, an unknown Cas whose
//!   version has passed. Taking one as early as possible can never hurt (it changes no
//!   state and nothing pending must come before it), so only state-changing operations
//!   are branched on.
//! - *Memoization*: a configuration (set of linearized operations, state) that was already
//!   explored is not explored again. The set is hashed incrementally (Zobrist: a random
//!   128-bit word per operation, XORed in and out); two different sets sharing a hash is a
//!   chance of about 2^-128 per pair, which would at worst report a false anomaly.
//!
//! The search stops at a step budget and then says `undecided`, never hangs.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::history::{Event, Op, Outcome};
use super::{Anomaly, Finals};

const CHECKER: &str = "registers";

/// The state of every register before the first operation: a new item's `(version, value)`.
pub const INITIAL_STATE: (u64, u64) = (1, 0);

/// Steps per key before the search gives up with `undecided`. A history of 64 clients ×
/// 300 operations on one key (19,200 operations, a few hundred unknown) takes well under
/// a tenth of this (see `a_large_contended_history_is_decided_within_budget`); the cap
/// bounds the time and the memo table (at most one entry of 32 bytes per step) of a
/// pathological history to a few seconds and a few hundred MB.
pub const DEFAULT_STEP_BUDGET: u64 = 5_000_000;

/// What the search made of one key's operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations, consistent with real time, explains every answer.
    Linearizable { steps: u64 },
    /// No order does; `detail` names the operation the search could not place.
    NotLinearizable { detail: String },
    /// The budget ran out first.
    Undecided { steps: u64 },
}

/// [`check_registers_with_budget`] with [`DEFAULT_STEP_BUDGET`].
pub fn check_registers(events: &[Event], finals: &Finals) -> Vec<Anomaly> {
    check_registers_with_budget(events, finals, DEFAULT_STEP_BUDGET)
}

/// Checks every key's reads and Cas operations in `events`:
///
/// - `not_linearizable`: no order of the key's operations, each taking effect at one
///   instant between its call and its return, explains what the clients saw (a read of a
///   value never written, a Cas that succeeded against the wrong version, a stale read, a
///   refused Cas although the version matched, …).
/// - `undecided`: the search used `budget` steps without an answer.
/// - `lost_write`: the key's final value (from `finals.registers`) is not between the
///   number of Ok Cas and that plus the number of unknown Cas on that key. This assumes
///   that **every Cas writes the value it read plus one** (a read-modify-write increment),
///   so each write that happened adds exactly one; the harness must keep to that. A key
///   absent from `finals.registers` is not checked at the end.
pub fn check_registers_with_budget(events: &[Event], finals: &Finals, budget: u64) -> Vec<Anomaly> {
    let mut per_key: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    // Per key: (Ok Cas, unknown Cas).
    let mut writes: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for event in events {
        let key = match &event.op {
            Op::Read { key, .. } => key,
            Op::Cas { key, .. } => {
                let counts = writes.entry(key.as_str()).or_default();
                match event.outcome {
                    Outcome::Ok => counts.0 += 1,
                    Outcome::Unknown => counts.1 += 1,
                    Outcome::Fail => {}
                }
                key
            }
            _ => continue,
        };
        per_key.entry(key.as_str()).or_default().push(event);
    }

    let mut anomalies = Vec::new();
    for (key, ops) in &per_key {
        match linearize(ops, INITIAL_STATE, budget) {
            Verdict::Linearizable { .. } => {}
            Verdict::NotLinearizable { detail } => anomalies.push(Anomaly {
                checker: CHECKER,
                kind: "not_linearizable",
                detail: format!("key {key}: {detail}"),
            }),
            Verdict::Undecided { steps } => anomalies.push(Anomaly {
                checker: CHECKER,
                kind: "undecided",
                detail: format!(
                    "key {key}: {} operations not decided within {steps} steps",
                    ops.len()
                ),
            }),
        }
    }

    let keys: BTreeSet<&str> = finals
        .registers
        .keys()
        .map(String::as_str)
        .chain(writes.keys().copied())
        .collect();
    for key in keys {
        let Some(&(_, value)) = finals.registers.get(key) else {
            continue;
        };
        let (ok, unknown) = writes.get(key).copied().unwrap_or_default();
        if value < ok || value > ok.saturating_add(unknown) {
            anomalies.push(Anomaly {
                checker: CHECKER,
                kind: "lost_write",
                detail: format!(
                    "key {key}: final value {value}, but {ok} acknowledged and {unknown} \
                     unknown increments allow only {ok}..={}",
                    ok.saturating_add(unknown)
                ),
            });
        }
    }
    anomalies
}

/// One operation as the search sees it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Read {
        version: u64,
        value: u64,
    },
    CasOk {
        expected: u64,
        value: u64,
        new_version: u64,
    },
    CasFail {
        expected: u64,
    },
    CasUnknown {
        expected: u64,
        value: u64,
    },
}

/// What an operation can do in a given state.
enum Move {
    /// Legal and leaves the state alone: take it now, no choice point.
    Forced,
    /// Legal and makes this state: a choice point.
    Apply((u64, u64)),
    /// Not legal here (yet).
    No,
}

impl Kind {
    fn of(event: &Event) -> Option<Self> {
        match (&event.op, event.outcome) {
            (Op::Read { version, value, .. }, Outcome::Ok) => Some(Kind::Read {
                version: *version,
                value: *value,
            }),
            (
                Op::Cas {
                    expected,
                    value,
                    new_version,
                    ..
                },
                outcome,
            ) => Some(match outcome {
                Outcome::Ok => Kind::CasOk {
                    expected: *expected,
                    value: *value,
                    new_version: *new_version,
                },
                Outcome::Fail => Kind::CasFail {
                    expected: *expected,
                },
                Outcome::Unknown => Kind::CasUnknown {
                    expected: *expected,
                    value: *value,
                },
            }),
            _ => None,
        }
    }

    fn known(self) -> bool {
        !matches!(self, Kind::CasUnknown { .. })
    }

    fn step(self, (version, current): (u64, u64)) -> Move {
        match self {
            Kind::Read { version: v, value } if (v, value) == (version, current) => Move::Forced,
            Kind::CasFail { expected } if expected != version => Move::Forced,
            // Versions only grow, so a passed version can never match again: "never".
            Kind::CasUnknown { expected, .. } if expected < version => Move::Forced,
            Kind::CasUnknown { expected, value } if expected == version => version
                .checked_add(1)
                .map_or(Move::No, |next| Move::Apply((next, value))),
            Kind::CasOk {
                expected,
                value,
                new_version,
            } if expected == version && version.checked_add(1) == Some(new_version) => {
                Move::Apply((new_version, value))
            }
            _ => Move::No,
        }
    }
}

/// A small, seedable generator (SplitMix64) for the Zobrist words and the tests: the
/// same history always gets the same hashes, so a run can be replayed exactly.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0), close enough to uniform for tests.
    #[cfg(test)]
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const NIL: usize = usize::MAX;

/// A decision on the search stack: undone on backtracking.
struct Frame {
    op: usize,
    state: (u64, u64),
    hash: u128,
    forced: bool,
}

/// The list of history entries with the operations linearized so far lifted out of it
/// ("dancing links": a lifted node keeps its neighbours, so it is put back in O(1), in
/// the reverse order of lifting, which a depth-first search guarantees).
struct Entries {
    /// Per node: its operation, and whether it is that operation's return.
    op: Vec<usize>,
    is_return: Vec<bool>,
    next: Vec<usize>,
    prev: Vec<usize>,
    call_node: Vec<usize>,
    return_node: Vec<usize>,
}

impl Entries {
    /// The head sentinel's index.
    fn head(&self) -> usize {
        self.op.len()
    }

    fn new(ops: &[&Event], kinds: &[Kind]) -> Self {
        let mut nodes: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, event) in ops.iter().enumerate() {
            nodes.push((event.call_us, false, i));
            // An unknown operation never returned: nothing forces it to have happened.
            if kinds[i].known() {
                nodes.push((event.return_us.max(event.call_us), true, i));
            }
        }
        nodes.sort_unstable();
        let n = nodes.len();
        // Nodes 0..n in time order, then the head sentinel at index n.
        let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NIL } else { i }).collect();
        next.push(if n == 0 { NIL } else { 0 });
        let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { n } else { i - 1 }).collect();
        prev.push(NIL);
        let mut entries = Entries {
            op: nodes.iter().map(|&(_, _, op)| op).collect(),
            is_return: nodes.iter().map(|&(_, r, _)| r).collect(),
            next,
            prev,
            call_node: vec![NIL; ops.len()],
            return_node: vec![NIL; ops.len()],
        };
        for (node, &(_, is_return, op)) in nodes.iter().enumerate() {
            if is_return {
                entries.return_node[op] = node;
            } else {
                entries.call_node[op] = node;
            }
        }
        entries
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        if self.return_node[op] != NIL {
            self.unlink(self.return_node[op]);
        }
    }

    fn unlift(&mut self, op: usize) {
        if self.return_node[op] != NIL {
            self.relink(self.return_node[op]);
        }
        self.relink(self.call_node[op]);
    }
}

/// Decides whether one key's operations (events of other kinds are ignored; the caller
/// partitions by key) are linearizable from `initial`, within `budget` steps (a step: one
/// look at one history entry).
pub fn linearize(ops: &[&Event], initial: (u64, u64), budget: u64) -> Verdict {
    let kinds: Vec<Kind> = ops.iter().filter_map(|e| Kind::of(e)).collect();
    let ops: Vec<&Event> = ops
        .iter()
        .copied()
        .filter(|e| Kind::of(e).is_some())
        .collect();
    let total_known = kinds.iter().filter(|k| k.known()).count();
    let mut rng = SplitMix64(0x6c65_6173_6568_6f6c);
    let zobrist: Vec<u128> = (0..ops.len())
        .map(|_| (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()))
        .collect();
    let mut entries = Entries::new(&ops, &kinds);
    let head = entries.head();

    let mut search = Search {
        kinds: &kinds,
        zobrist: &zobrist,
        state: initial,
        hash: 0,
        done_known: 0,
        stack: Vec::new(),
        steps: 0,
    };
    let mut memo: HashSet<(u128, u64, u64)> = HashSet::new();
    // The furthest the search got: (known operations placed, state, the op it could not place).
    let mut furthest: (usize, (u64, u64), usize) = (0, initial, NIL);

    search.saturate(&mut entries);
    let mut cursor = entries.next[head];
    loop {
        if search.done_known == total_known {
            return Verdict::Linearizable {
                steps: search.steps,
            };
        }
        if search.steps >= budget {
            return Verdict::Undecided {
                steps: search.steps,
            };
        }
        search.steps += 1;
        if cursor == NIL || entries.is_return[cursor] {
            // The earliest pending return: its operation had to be placed by now.
            if search.done_known >= furthest.0 && cursor != NIL {
                furthest = (search.done_known, search.state, entries.op[cursor]);
            }
            match search.backtrack(&mut entries) {
                Some(op) => cursor = entries.next[entries.call_node[op]],
                None => {
                    return Verdict::NotLinearizable {
                        detail: not_linearizable(&ops, total_known, furthest),
                    };
                }
            }
            continue;
        }
        let op = entries.op[cursor];
        if let Move::Apply(next) = kinds[op].step(search.state) {
            let hash = search.hash ^ zobrist[op];
            if memo.insert((hash, next.0, next.1)) {
                search.take(&mut entries, op, next, false);
                search.saturate(&mut entries);
                cursor = entries.next[head];
                continue;
            }
        }
        cursor = entries.next[cursor];
    }
}

struct Search<'a> {
    kinds: &'a [Kind],
    zobrist: &'a [u128],
    state: (u64, u64),
    hash: u128,
    done_known: usize,
    stack: Vec<Frame>,
    steps: u64,
}

impl Search<'_> {
    fn take(&mut self, entries: &mut Entries, op: usize, next: (u64, u64), forced: bool) {
        self.stack.push(Frame {
            op,
            state: self.state,
            hash: self.hash,
            forced,
        });
        entries.lift(op);
        self.state = next;
        self.hash ^= self.zobrist[op];
        if self.kinds[op].known() {
            self.done_known += 1;
        }
    }

    /// Takes every operation in the window that is legal and leaves the state alone. One
    /// pass is enough: the state does not change, and lifting an operation's return only
    /// widens the window further along the list.
    fn saturate(&mut self, entries: &mut Entries) {
        let mut node = entries.next[entries.head()];
        while node != NIL && !entries.is_return[node] {
            self.steps += 1;
            let op = entries.op[node];
            if let Move::Forced = self.kinds[op].step(self.state) {
                let prev = entries.prev[node];
                self.take(entries, op, self.state, true);
                node = entries.next[prev];
            } else {
                node = entries.next[node];
            }
        }
    }

    /// Undoes decisions up to and including the latest choice point and returns its
    /// operation (the search goes on after it), or None when no choice is left. Forced
    /// steps are undone without trying anything else in their place: if a configuration
    /// after a forced step has no linearization, neither has the one before it.
    fn backtrack(&mut self, entries: &mut Entries) -> Option<usize> {
        while let Some(frame) = self.stack.pop() {
            entries.unlift(frame.op);
            self.state = frame.state;
            self.hash = frame.hash;
            if self.kinds[frame.op].known() {
                self.done_known -= 1;
            }
            if !frame.forced {
                return Some(frame.op);
            }
        }
        None
    }
}

fn not_linearizable(
    ops: &[&Event],
    total_known: usize,
    (placed, (version, value), stuck): (usize, (u64, u64), usize),
) -> String {
    let which = ops
        .get(stuck)
        .map_or_else(|| "an operation".to_owned(), |e| e.to_string());
    format!(
        "no order of its {} operations explains what clients saw; at best {placed} of {} \
         acknowledged ones fit, and then the register was (version {version}, value \
         {value}) when this one had to take effect: {which}",
        ops.len(),
        total_known
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::History;
    use std::collections::{BinaryHeap, HashMap};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    fn read(call: u64, ret: u64, version: u64, value: u64) -> Event {
        Event {
            client: 0,
            call_us: call,
            return_us: ret,
            outcome: Outcome::Ok,
            op: Op::Read {
                key: "k".into(),
                version,
                value,
            },
        }
    }

    fn cas(call: u64, ret: u64, outcome: Outcome, expected: u64, value: u64) -> Event {
        let new_version = if outcome == Outcome::Ok {
            expected + 1
        } else {
            0
        };
        Event {
            client: 1,
            call_us: call,
            return_us: ret,
            outcome,
            op: Op::Cas {
                key: "k".into(),
                expected,
                value,
                new_version,
            },
        }
    }

    fn final_value(version: u64, value: u64) -> Finals {
        let mut finals = Finals::default();
        finals.registers.insert("k".into(), (version, value));
        finals
    }

    fn kinds(anomalies: &[Anomaly]) -> Vec<&'static str> {
        anomalies.iter().map(|a| a.kind).collect()
    }

    fn check(events: &[Event], finals: &Finals) -> Vec<Anomaly> {
        check_registers(events, finals)
    }

    #[test]
    fn a_sequential_history_of_increments_passes() {
        let events = vec![
            read(0, 1, 1, 0),
            cas(2, 3, Outcome::Ok, 1, 1),
            read(4, 5, 2, 1),
            cas(6, 7, Outcome::Fail, 1, 1),
            cas(8, 9, Outcome::Ok, 2, 2),
            read(10, 11, 3, 2),
        ];
        let anomalies = check(&events, &final_value(3, 2));
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // Both reads overlap the write and each other: the one that started first may see
        // the write, the other not.
        let events = vec![
            cas(0, 100, Outcome::Ok, 1, 1),
            read(10, 40, 2, 1),
            read(20, 30, 1, 0),
            // A refused Cas overlapping the write: legal once it has taken effect.
            cas(50, 60, Outcome::Fail, 1, 1),
        ];
        let anomalies = check(&events, &final_value(2, 1));
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn an_unknown_cas_that_did_happen_is_accepted() {
        let events = vec![
            cas(0, 10, Outcome::Unknown, 1, 1),
            read(20, 30, 2, 1),
            cas(40, 50, Outcome::Ok, 2, 2),
        ];
        let anomalies = check(&events, &final_value(3, 2));
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn an_unknown_cas_that_did_not_happen_is_accepted() {
        let events = vec![
            cas(0, 10, Outcome::Unknown, 1, 1),
            read(20, 30, 1, 0),
            cas(40, 50, Outcome::Ok, 1, 1),
            read(60, 70, 2, 1),
        ];
        let anomalies = check(&events, &final_value(2, 1));
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn an_unknown_cas_may_take_effect_long_after_its_call() {
        let events = vec![
            cas(0, 10, Outcome::Unknown, 2, 2),
            read(20, 30, 1, 0),
            cas(40, 50, Outcome::Ok, 1, 1),
            read(60, 70, 2, 1),
            read(80, 90, 3, 2),
        ];
        let anomalies = check(&events, &final_value(3, 2));
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn a_read_of_a_value_never_written_is_flagged() {
        let events = vec![cas(0, 10, Outcome::Ok, 1, 1), read(20, 30, 2, 5)];
        assert_eq!(
            kinds(&check(&events, &final_value(2, 1))),
            vec!["not_linearizable"]
        );
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_flagged() {
        let events = vec![cas(0, 10, Outcome::Ok, 1, 1), read(20, 30, 1, 0)];
        assert_eq!(
            kinds(&check(&events, &final_value(2, 1))),
            vec!["not_linearizable"]
        );
    }

    #[test]
    fn a_cas_that_succeeded_against_the_wrong_version_is_flagged() {
        // Both "succeeded" If-Match 1: the second one should have been refused.
        let events = vec![
            cas(0, 10, Outcome::Ok, 1, 1),
            cas(20, 30, Outcome::Ok, 1, 1),
        ];
        let anomalies = check(&events, &Finals::default());
        assert_eq!(kinds(&anomalies), vec!["not_linearizable"]);
        assert!(anomalies[0].detail.contains("if-match 1"), "{anomalies:?}");
    }

    #[test]
    fn a_cas_reporting_the_wrong_new_version_is_flagged() {
        let mut bad = cas(0, 10, Outcome::Ok, 1, 1);
        if let Op::Cas { new_version, .. } = &mut bad.op {
            *new_version = 3;
        }
        assert_eq!(
            kinds(&check(&[bad], &Finals::default())),
            vec!["not_linearizable"]
        );
    }

    #[test]
    fn a_cas_refused_although_its_version_matched_is_flagged() {
        let events = vec![cas(0, 10, Outcome::Fail, 1, 1)];
        assert_eq!(
            kinds(&check(&events, &Finals::default())),
            vec!["not_linearizable"]
        );
    }

    #[test]
    fn a_lost_write_is_flagged() {
        let events = vec![
            cas(0, 10, Outcome::Ok, 1, 1),
            cas(20, 30, Outcome::Ok, 2, 2),
            cas(40, 50, Outcome::Ok, 3, 3),
        ];
        assert_eq!(
            kinds(&check(&events, &final_value(4, 2))),
            vec!["lost_write"]
        );
    }

    #[test]
    fn a_final_value_above_every_write_is_flagged() {
        let events = vec![cas(0, 10, Outcome::Ok, 1, 1)];
        assert_eq!(
            kinds(&check(&events, &final_value(3, 2))),
            vec!["lost_write"]
        );
        // A key nobody wrote must still hold its initial value.
        let mut finals = final_value(2, 1);
        finals.registers.insert("untouched".into(), (1, 4));
        assert_eq!(kinds(&check(&events, &finals)), vec!["lost_write"]);
    }

    #[test]
    fn a_final_value_may_count_unknown_writes_or_not() {
        let events = vec![
            cas(0, 10, Outcome::Ok, 1, 1),
            cas(20, 30, Outcome::Unknown, 2, 2),
        ];
        assert!(check(&events, &final_value(2, 1)).is_empty());
        assert!(check(&events, &final_value(3, 2)).is_empty());
    }

    #[test]
    fn a_key_with_only_unknown_or_failed_reads_passes() {
        let mut lost = read(0, 10, 7, 7);
        lost.outcome = Outcome::Unknown;
        let mut refused = read(0, 10, 7, 7);
        refused.outcome = Outcome::Fail;
        assert!(check(&[lost, refused], &Finals::default()).is_empty());
        assert!(check(&[cas(0, 10, Outcome::Unknown, 5, 5)], &Finals::default()).is_empty());
    }

    #[test]
    fn keys_are_checked_separately() {
        let mut other = cas(0, 10, Outcome::Ok, 1, 1);
        if let Op::Cas { key, .. } = &mut other.op {
            *key = "other".into();
        }
        let events = vec![cas(0, 10, Outcome::Ok, 1, 1), other];
        assert!(check(&events, &Finals::default()).is_empty());
    }

    #[test]
    fn an_exhausted_budget_is_reported_as_undecided() {
        let events: Vec<Event> = (0..50)
            .map(|i| cas(i * 10, i * 10 + 5, Outcome::Ok, i + 1, i + 1))
            .collect();
        assert!(check_registers_with_budget(&events, &Finals::default(), 1_000_000).is_empty());
        assert_eq!(
            kinds(&check_registers_with_budget(
                &events,
                &Finals::default(),
                10
            )),
            vec!["undecided"]
        );
    }

    /// Changes the value of the first Ok Cas (in `events`' order) whose version some Ok
    /// read saw, so that read can no longer be explained. False when there is none.
    fn corrupt_an_observed_write<'e>(events: impl Iterator<Item = &'e mut Event>) -> bool {
        let mut events: Vec<&mut Event> = events.collect();
        let seen: HashSet<u64> = events
            .iter()
            .filter(|e| e.outcome == Outcome::Ok)
            .filter_map(|e| match e.op {
                Op::Read { version, .. } => Some(version),
                _ => None,
            })
            .collect();
        for event in events.iter_mut().filter(|e| e.outcome == Outcome::Ok) {
            if let Op::Cas {
                value, new_version, ..
            } = &mut event.op
                && seen.contains(new_version)
            {
                *value += 1000;
                return true;
            }
        }
        false
    }

    /// Clients of a correct in-process register: each reads, then writes value + 1
    /// If-Match the version it read. Some answers are "lost" (Unknown), whether or not the
    /// write happened, and some requests never reach the register at all.
    fn threaded_history(seed: u64, threads: usize, rounds: usize) -> (Vec<Event>, (u64, u64)) {
        let register = Arc::new(Mutex::new(INITIAL_STATE));
        let history = Arc::new(History::new());
        let workers: Vec<_> = (0..threads)
            .map(|client| {
                let register = Arc::clone(&register);
                let history = Arc::clone(&history);
                std::thread::spawn(move || {
                    let clock = history.start();
                    let mut rng = SplitMix64(seed ^ (client as u64).wrapping_mul(0x9E37));
                    let key = || "k".to_owned();
                    for _ in 0..rounds {
                        let call_us = clock.now_us();
                        let (version, value) = *register.lock().expect("register lock");
                        history.record(Event {
                            client,
                            call_us,
                            return_us: clock.now_us(),
                            outcome: Outcome::Ok,
                            op: Op::Read {
                                key: key(),
                                version,
                                value,
                            },
                        });
                        if rng.below(3) == 0 {
                            std::thread::yield_now();
                        }
                        let call_us = clock.now_us();
                        let dice = rng.below(20);
                        let (outcome, new_version) = if dice == 0 {
                            // Never reached the register.
                            (Outcome::Unknown, 0)
                        } else {
                            let mut state = register.lock().expect("register lock");
                            let outcome = if state.0 == version {
                                *state = (version + 1, value + 1);
                                Outcome::Ok
                            } else {
                                Outcome::Fail
                            };
                            drop(state);
                            // The answer was lost on the way back.
                            let outcome = if dice == 1 { Outcome::Unknown } else { outcome };
                            (outcome, version + 1)
                        };
                        history.record(Event {
                            client,
                            call_us,
                            return_us: clock.now_us(),
                            outcome,
                            op: Op::Cas {
                                key: key(),
                                expected: version,
                                value: value + 1,
                                new_version,
                            },
                        });
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a client thread panicked");
        }
        let last = *register.lock().expect("register lock");
        (history.events(), last)
    }

    #[test]
    fn a_real_concurrent_history_passes_and_a_changed_write_is_flagged() {
        for seed in [1, 2, 3] {
            let (mut events, last) = threaded_history(seed, 8, 150);
            let finals = final_value(last.0, last.1);
            let anomalies = check(&events, &finals);
            assert!(anomalies.is_empty(), "seed {seed}: {anomalies:?}");
            assert!(
                corrupt_an_observed_write(events.iter_mut()),
                "seed {seed}: no write was read"
            );
            let anomalies = check(&events, &finals);
            assert_eq!(kinds(&anomalies), vec!["not_linearizable"], "seed {seed}");
        }
    }

    /// A deterministic simulation of `clients` clients on one hot key, each operation
    /// taking effect at a random instant inside its call..return interval: heavier overlap
    /// than real threads on two cores give. 1 in 20 Cas answers are lost (half of them
    /// after the write happened).
    fn simulated_history(seed: u64, clients: usize, rounds: usize) -> (Vec<Event>, (u64, u64)) {
        simulated_history_with(seed, clients, rounds, 500, 40)
    }

    /// Like [`simulated_history`], with call-to-effect and effect-to-return times below
    /// `latency` microseconds and 2 in `lost` Cas answers lost.
    fn simulated_history_with(
        seed: u64,
        clients: usize,
        rounds: usize,
        latency: u64,
        lost: u64,
    ) -> (Vec<Event>, (u64, u64)) {
        let mut rng = SplitMix64(seed);
        let mut state = INITIAL_STATE;
        // (Reverse(effect time), client, call time, is_cas)
        let mut pending = BinaryHeap::new();
        let mut last_read: HashMap<usize, (u64, u64)> = HashMap::new();
        let mut done = vec![0usize; clients];
        for client in 0..clients {
            let call = rng.below(1000);
            pending.push((
                std::cmp::Reverse(call + rng.below(latency)),
                client,
                call,
                false,
            ));
        }
        let mut events = Vec::new();
        while let Some((std::cmp::Reverse(at), client, call, is_cas)) = pending.pop() {
            let ret = at + rng.below(latency);
            let (outcome, op) = if is_cas {
                let (version, value) = last_read[&client];
                let dice = rng.below(lost);
                let applied = state.0 == version && dice != 0;
                if applied {
                    state = (version + 1, value + 1);
                }
                let outcome = match (applied, dice) {
                    (_, 0 | 1) => Outcome::Unknown,
                    (true, _) => Outcome::Ok,
                    (false, _) => Outcome::Fail,
                };
                let op = Op::Cas {
                    key: "hot".into(),
                    expected: version,
                    value: value + 1,
                    new_version: version + 1,
                };
                (outcome, op)
            } else {
                last_read.insert(client, state);
                let op = Op::Read {
                    key: "hot".into(),
                    version: state.0,
                    value: state.1,
                };
                (Outcome::Ok, op)
            };
            events.push(Event {
                client,
                call_us: call,
                return_us: ret,
                outcome,
                op,
            });
            done[client] += 1;
            if done[client] < rounds {
                let next_call = ret + rng.below(50);
                let effect = next_call + rng.below(latency);
                pending.push((std::cmp::Reverse(effect), client, next_call, !is_cas));
            }
        }
        (events, state)
    }

    #[test]
    fn histories_with_many_lost_answers_are_decided_both_ways() {
        // (clients, latency bound in us, 2 in `lost` Cas answers are lost)
        for (clients, latency, lost) in [(128, 20_000, 6), (64, 500, 3), (16, 100_000, 4)] {
            let (mut events, last) = simulated_history_with(11, clients, 300, latency, lost);
            let mut finals = Finals::default();
            finals.registers.insert("hot".into(), last);
            let anomalies = check(&events, &finals);
            assert!(anomalies.is_empty(), "{clients} clients: {anomalies:?}");
            // The last write that someone read: the search must get far before failing.
            assert!(corrupt_an_observed_write(events.iter_mut().rev()));
            let anomalies = check(&events, &finals);
            assert_eq!(
                kinds(&anomalies),
                vec!["not_linearizable"],
                "{clients} clients"
            );
        }
    }

    #[test]
    fn a_large_contended_history_is_decided_within_budget() {
        let (mut events, last) = simulated_history(7, 64, 300);
        assert_eq!(events.len(), 64 * 300);
        let refs: Vec<&Event> = events.iter().collect();
        let started = Instant::now();
        let verdict = linearize(&refs, INITIAL_STATE, DEFAULT_STEP_BUDGET);
        let took = started.elapsed();
        println!("64 clients x 300 ops: {verdict:?} in {took:?}");
        let Verdict::Linearizable { steps } = verdict else {
            panic!("{verdict:?}");
        };
        assert!(steps < DEFAULT_STEP_BUDGET / 10, "{steps} steps");
        let mut finals = Finals::default();
        finals.registers.insert("hot".into(), last);
        assert!(check(&events, &finals).is_empty());

        assert!(corrupt_an_observed_write(events.iter_mut()));
        let started = Instant::now();
        let anomalies = check(&events, &finals);
        println!(
            "the same, corrupted: {anomalies:?} in {:?}",
            started.elapsed()
        );
        assert_eq!(kinds(&anomalies), vec!["not_linearizable"]);
    }
}
