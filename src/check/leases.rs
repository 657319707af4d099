//! The leases and fencing checker: tokens handed to one holder only, never going back per
//! item, never accepted once a newer lease was granted; and [`FencedResource`], the
//! harness-owned downstream system that refuses writes carrying an old token.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use super::Anomaly;
use super::history::{Clock, Event, Op, Outcome};

const CHECKER: &str = "leases";

/// An Ok grant or an Ok use of a lease, with the fields the checks compare.
struct Seen<'a> {
    item: &'a str,
    holder: &'a str,
    token: u64,
    event: &'a Event,
}

/// Checks every Ok grant and every Ok use of a lease in `events`:
///
/// - `token_reused`: one token (per pool) granted to two different (item, holder) pairs.
///   The same holder claiming its own item again gets the same token: that is allowed.
/// - `token_went_back`: per item, a grant that started after another had returned carries
///   a lower token than it (tokens strictly increase over every grant in a pool).
/// - `stale_lease_accepted`: a renew/release/complete/write accepted with token t1 although
///   it started after a grant of the same item with a token t2 > t1 had returned: a lease
///   is over before a newer one is granted, so its token must never be accepted again.
/// - `foreign_token_accepted`: a use accepted with a token that the Ok grants gave to
///   another holder or another item.
///
/// Failed and unknown operations prove nothing here and are skipped: an unknown grant's
/// token was never seen, and an unknown use may have been refused.
pub fn check_leases(events: &[Event]) -> Vec<Anomaly> {
    // Per pool, then per item (BTreeMap: anomalies come out in a stable order).
    let mut grants: BTreeMap<&str, BTreeMap<&str, Vec<Seen>>> = BTreeMap::new();
    let mut uses: BTreeMap<&str, BTreeMap<&str, Vec<Seen>>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.outcome == Outcome::Ok) {
        let (pool, seen, into) = match &event.op {
            Op::Grant {
                pool,
                item,
                holder,
                token,
            } => (pool, Seen::new(item, holder, *token, event), &mut grants),
            Op::UseLease {
                pool,
                item,
                holder,
                token,
                ..
            } => (pool, Seen::new(item, holder, *token, event), &mut uses),
            _ => continue,
        };
        into.entry(pool.as_str())
            .or_default()
            .entry(seen.item)
            .or_default()
            .push(seen);
    }

    let mut anomalies = Vec::new();
    for (pool, items) in &grants {
        tokens_reused(pool, items, &mut anomalies);
        for (item, item_grants) in items {
            tokens_went_back(pool, item, item_grants, &mut anomalies);
            if let Some(item_uses) = uses.get(pool).and_then(|u| u.get(item)) {
                stale_leases_accepted(pool, item, item_grants, item_uses, &mut anomalies);
            }
        }
    }
    for (pool, items) in &uses {
        let owners = token_owners(grants.get(pool));
        for use_ in items.values().flatten() {
            let foreign = owners
                .get(&use_.token)
                .filter(|pairs| !pairs.contains(&(use_.item, use_.holder)));
            if let Some(pairs) = foreign {
                anomalies.push(Anomaly {
                    checker: CHECKER,
                    kind: "foreign_token_accepted",
                    detail: format!(
                        "pool {pool}: token {} was granted to {pairs:?}, yet accepted from \
                         {}: {}",
                        use_.token, use_.holder, use_.event
                    ),
                });
            }
        }
    }
    anomalies
}

impl<'a> Seen<'a> {
    fn new(item: &'a str, holder: &'a str, token: u64, event: &'a Event) -> Self {
        Self {
            item,
            holder,
            token,
            event,
        }
    }
}

/// Per token, the distinct (item, holder) pairs it was granted to in one pool.
fn token_owners<'a>(
    items: Option<&BTreeMap<&'a str, Vec<Seen<'a>>>>,
) -> BTreeMap<u64, Vec<(&'a str, &'a str)>> {
    let mut owners: BTreeMap<u64, Vec<(&str, &str)>> = BTreeMap::new();
    for grant in items.into_iter().flat_map(|items| items.values()).flatten() {
        let pairs = owners.entry(grant.token).or_default();
        if !pairs.contains(&(grant.item, grant.holder)) {
            pairs.push((grant.item, grant.holder));
        }
    }
    owners
}

fn tokens_reused(pool: &str, items: &BTreeMap<&str, Vec<Seen>>, out: &mut Vec<Anomaly>) {
    for (token, pairs) in token_owners(Some(items)) {
        if pairs.len() > 1 {
            out.push(Anomaly {
                checker: CHECKER,
                kind: "token_reused",
                detail: format!(
                    "pool {pool}: token {token} granted to {} (item, holder) pairs: {pairs:?}",
                    pairs.len()
                ),
            });
        }
    }
}

/// Grants of one item sorted by return time, swept against grants sorted by call time: the
/// highest token among grants that returned before a grant started must not exceed it.
fn tokens_went_back(pool: &str, item: &str, grants: &[Seen], out: &mut Vec<Anomaly>) {
    for (later, earlier) in sweep_max_before(grants, grants) {
        if earlier.token > later.token {
            out.push(Anomaly {
                checker: CHECKER,
                kind: "token_went_back",
                detail: format!(
                    "{pool}/{item}: {} returned before {} started",
                    earlier.event, later.event
                ),
            });
        }
    }
}

fn stale_leases_accepted(
    pool: &str,
    item: &str,
    grants: &[Seen],
    uses: &[Seen],
    out: &mut Vec<Anomaly>,
) {
    for (use_, grant) in sweep_max_before(grants, uses) {
        if grant.token > use_.token {
            out.push(Anomaly {
                checker: CHECKER,
                kind: "stale_lease_accepted",
                detail: format!(
                    "{pool}/{item}: {} was accepted although {} had returned before it \
                     started",
                    use_.event, grant.event
                ),
            });
        }
    }
}

/// For each of `laters`, the grant with the highest token among `grants` that returned
/// strictly before it was called (when there is one). O((g + l) log(g + l)).
fn sweep_max_before<'s, 'a>(
    grants: &'s [Seen<'a>],
    laters: &'s [Seen<'a>],
) -> Vec<(&'s Seen<'a>, &'s Seen<'a>)> {
    let mut by_return: Vec<&Seen> = grants.iter().collect();
    by_return.sort_by_key(|g| g.event.return_us);
    let mut by_call: Vec<&Seen> = laters.iter().collect();
    by_call.sort_by_key(|l| l.event.call_us);
    let mut pairs = Vec::new();
    let mut next = 0;
    let mut best: Option<&Seen> = None;
    for later in by_call {
        while next < by_return.len() && by_return[next].event.return_us < later.event.call_us {
            if best.is_none_or(|b| by_return[next].token > b.token) {
                best = Some(by_return[next]);
            }
            next += 1;
        }
        if let Some(best) = best {
            pairs.push((later, best));
        }
    }
    pairs
}

/// One write the [`FencedResource`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencedWrite {
    pub pool: String,
    pub item: String,
    pub holder: String,
    pub token: u64,
    /// When it was accepted, by the resource's clock (microseconds).
    pub at_us: u64,
}

/// The "protected resource" of a fencing test: a downstream system that, like a storage
/// service honouring fencing tokens, accepts a write for an item only when its token is at
/// least the highest it has seen for that item. It keeps every write it accepted, so that
/// [`FencedResource::anomalies`] can say whether two holders ever got through with the
/// same token (the service handed one token out twice) or out of order.
#[derive(Debug)]
pub struct FencedResource {
    clock: Clock,
    state: Mutex<FencedState>,
}

#[derive(Debug, Default)]
struct FencedState {
    /// Per (pool, item), the highest token seen.
    highest: HashMap<(String, String), u64>,
    accepted: Vec<FencedWrite>,
    rejected: usize,
}

impl FencedResource {
    /// A resource with its own clock.
    pub fn new() -> Self {
        Self::with_clock(Clock::new())
    }

    /// A resource whose write times share the run's clock ([`super::History::start`]).
    pub fn with_clock(clock: Clock) -> Self {
        Self {
            clock,
            state: Mutex::new(FencedState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FencedState> {
        // A panicking client must not hide what the resource accepted from the checker.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepts the write (and returns true) only when `token` is at least the highest
    /// token seen so far for `(pool, item)`.
    pub fn write(&self, pool: &str, item: &str, holder: &str, token: u64) -> bool {
        let mut state = self.lock();
        let key = (pool.to_owned(), item.to_owned());
        let highest = state.highest.get(&key).copied();
        if highest.is_some_and(|h| token < h) {
            state.rejected += 1;
            return false;
        }
        state.highest.insert(key, token);
        let at_us = self.clock.now_us();
        state.accepted.push(FencedWrite {
            pool: pool.to_owned(),
            item: item.to_owned(),
            holder: holder.to_owned(),
            token,
            at_us,
        });
        true
    }

    /// Every accepted write, in the order accepted.
    pub fn writes(&self) -> Vec<FencedWrite> {
        self.lock().accepted.clone()
    }

    /// How many writes were refused for carrying an old token.
    pub fn rejected(&self) -> usize {
        self.lock().rejected
    }

    /// `token_shared`: two accepted writes on one item with the same token from different
    /// holders. `token_fenced_late`: an accepted write whose token is lower than one already
    /// accepted from another holder (the resource's own rule forbids it; checked anyway, so
    /// that the log, not the code, is the evidence).
    pub fn anomalies(&self) -> Vec<Anomaly> {
        let state = self.lock();
        let mut per_item: BTreeMap<(&str, &str), Vec<&FencedWrite>> = BTreeMap::new();
        for write in &state.accepted {
            per_item
                .entry((write.pool.as_str(), write.item.as_str()))
                .or_default()
                .push(write);
        }
        let mut anomalies = Vec::new();
        for ((pool, item), writes) in per_item {
            let mut holder_of: BTreeMap<u64, &FencedWrite> = BTreeMap::new();
            let mut shared: Vec<u64> = Vec::new();
            // The highest token accepted so far, and from whom.
            let mut top: Option<&FencedWrite> = None;
            for &write in &writes {
                match holder_of.get(&write.token) {
                    Some(first) if first.holder != write.holder => {
                        if !shared.contains(&write.token) {
                            shared.push(write.token);
                            anomalies.push(Anomaly {
                                checker: "fenced_resource",
                                kind: "token_shared",
                                detail: format!(
                                    "{pool}/{item}: token {} accepted from {} at {}us and \
                                     from {} at {}us",
                                    write.token,
                                    first.holder,
                                    first.at_us,
                                    write.holder,
                                    write.at_us
                                ),
                            });
                        }
                    }
                    Some(_) => {}
                    None => {
                        holder_of.insert(write.token, write);
                    }
                }
                let late = top.filter(|t| write.token < t.token && write.holder != t.holder);
                if let Some(top) = late {
                    anomalies.push(Anomaly {
                        checker: "fenced_resource",
                        kind: "token_fenced_late",
                        detail: format!(
                            "{pool}/{item}: token {} from {} accepted at {}us after token {} \
                             from {} at {}us",
                            write.token,
                            write.holder,
                            write.at_us,
                            top.token,
                            top.holder,
                            top.at_us
                        ),
                    });
                }
                if top.is_none_or(|t| write.token > t.token) {
                    top = Some(write);
                }
            }
        }
        anomalies
    }

    /// Puts a write into the log without the token rule, to prove that
    /// [`Self::anomalies`] reads the log rather than trusting [`Self::write`].
    #[cfg(test)]
    fn force_accept(&self, pool: &str, item: &str, holder: &str, token: u64) {
        let at_us = self.clock.now_us();
        self.lock().accepted.push(FencedWrite {
            pool: pool.to_owned(),
            item: item.to_owned(),
            holder: holder.to_owned(),
            token,
            at_us,
        });
    }
}

impl Default for FencedResource {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::LeaseAction;
    use std::sync::Arc;

    fn grant(client: usize, call: u64, ret: u64, item: &str, holder: &str, token: u64) -> Event {
        Event {
            client,
            call_us: call,
            return_us: ret,
            outcome: Outcome::Ok,
            op: Op::Grant {
                pool: "p".into(),
                item: item.into(),
                holder: holder.into(),
                token,
            },
        }
    }

    fn use_lease(call: u64, ret: u64, item: &str, holder: &str, token: u64) -> Event {
        Event {
            client: 9,
            call_us: call,
            return_us: ret,
            outcome: Outcome::Ok,
            op: Op::UseLease {
                pool: "p".into(),
                item: item.into(),
                holder: holder.into(),
                token,
                action: LeaseAction::Renew,
            },
        }
    }

    fn with(mut event: Event, outcome: Outcome) -> Event {
        event.outcome = outcome;
        event
    }

    fn kinds(anomalies: &[Anomaly]) -> Vec<&'static str> {
        anomalies.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn a_correct_history_with_renewals_reclaims_and_unknowns_passes() {
        let events = vec![
            grant(0, 0, 10, "a", "h0", 1),
            grant(1, 0, 10, "b", "h1", 2),
            use_lease(20, 30, "a", "h0", 1),
            // h0 claims its own item again: same token.
            grant(0, 40, 50, "a", "h0", 1),
            use_lease(60, 70, "a", "h0", 1),
            // a's lease ends; h2 gets it with a higher token; concurrent use by h0 may win.
            grant(2, 80, 100, "a", "h2", 5),
            use_lease(85, 90, "a", "h0", 1),
            use_lease(110, 120, "a", "h2", 5),
            // A stale use refused, and unknown ones, prove nothing.
            with(use_lease(130, 140, "a", "h0", 1), Outcome::Fail),
            with(use_lease(130, 140, "a", "h0", 1), Outcome::Unknown),
            with(grant(3, 150, 160, "a", "h3", 2), Outcome::Unknown),
            with(grant(3, 150, 160, "a", "h3", 0), Outcome::Fail),
        ];
        let anomalies = check_leases(&events);
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn two_holders_with_the_same_token_are_flagged() {
        let events = vec![
            grant(0, 0, 10, "a", "h0", 4),
            grant(1, 20, 30, "b", "h1", 4),
        ];
        assert_eq!(kinds(&check_leases(&events)), vec!["token_reused"]);
        let events = vec![
            grant(0, 0, 10, "a", "h0", 4),
            grant(1, 20, 30, "a", "h1", 4),
        ];
        assert_eq!(kinds(&check_leases(&events)), vec!["token_reused"]);
    }

    #[test]
    fn the_same_token_in_two_pools_is_not_a_reuse() {
        let mut other = grant(1, 0, 10, "a", "h1", 4);
        if let Op::Grant { pool, .. } = &mut other.op {
            *pool = "q".into();
        }
        let events = vec![grant(0, 0, 10, "a", "h0", 4), other];
        assert!(check_leases(&events).is_empty());
    }

    #[test]
    fn a_token_going_back_on_an_item_is_flagged() {
        let events = vec![
            grant(0, 0, 10, "a", "h0", 7),
            grant(1, 20, 30, "a", "h1", 6),
        ];
        assert_eq!(kinds(&check_leases(&events)), vec!["token_went_back"]);
    }

    #[test]
    fn concurrent_grants_may_return_in_any_token_order() {
        // Overlapping in time: no real-time order between them, so no token order either.
        let events = vec![
            grant(0, 0, 30, "a", "h0", 7),
            grant(1, 10, 20, "a", "h1", 6),
        ];
        let anomalies = check_leases(&events);
        assert!(anomalies.is_empty(), "{anomalies:?}");
    }

    #[test]
    fn a_stale_lease_accepted_after_a_newer_grant_is_flagged() {
        let events = vec![
            grant(0, 0, 10, "a", "h0", 3),
            grant(1, 20, 30, "a", "h1", 8),
            use_lease(40, 50, "a", "h0", 3),
        ];
        assert_eq!(kinds(&check_leases(&events)), vec!["stale_lease_accepted"]);
    }

    #[test]
    fn a_token_of_another_holder_accepted_is_flagged() {
        let events = vec![
            grant(0, 0, 10, "a", "h0", 3),
            use_lease(20, 30, "a", "intruder", 3),
        ];
        assert_eq!(
            kinds(&check_leases(&events)),
            vec!["foreign_token_accepted"]
        );
    }

    #[test]
    fn fenced_resource_accepts_equal_or_higher_tokens_and_refuses_lower() {
        let resource = FencedResource::new();
        assert!(resource.write("p", "a", "h0", 3));
        assert!(resource.write("p", "a", "h0", 3));
        assert!(resource.write("p", "a", "h1", 5));
        assert!(!resource.write("p", "a", "h0", 3));
        assert!(
            resource.write("p", "b", "h0", 1),
            "items are fenced separately"
        );
        assert_eq!(resource.writes().len(), 4);
        assert_eq!(resource.rejected(), 1);
        assert!(resource.anomalies().is_empty());
    }

    #[test]
    fn fenced_resource_flags_one_token_accepted_from_two_holders() {
        let resource = FencedResource::new();
        assert!(resource.write("p", "a", "h0", 3));
        assert!(resource.write("p", "a", "h1", 3));
        assert!(resource.write("p", "a", "h1", 3));
        assert_eq!(kinds(&resource.anomalies()), vec!["token_shared"]);
    }

    #[test]
    fn fenced_resource_flags_a_lower_token_in_its_log() {
        let resource = FencedResource::new();
        assert!(resource.write("p", "a", "h1", 5));
        resource.force_accept("p", "a", "h0", 3);
        assert_eq!(kinds(&resource.anomalies()), vec!["token_fenced_late"]);
    }

    #[test]
    fn fenced_resource_is_shared_by_threads() {
        let resource = Arc::new(FencedResource::new());
        let threads: Vec<_> = (0..4u64)
            .map(|n| {
                let resource = Arc::clone(&resource);
                std::thread::spawn(move || {
                    (0..100)
                        .filter(|i| resource.write("p", "a", &format!("h{n}"), i * 4 + n))
                        .count()
                })
            })
            .collect();
        let accepted: usize = threads
            .into_iter()
            .map(|t| t.join().expect("a writer thread panicked"))
            .sum();
        assert_eq!(accepted, resource.writes().len());
        assert!(resource.anomalies().is_empty());
        let tokens: Vec<u64> = resource.writes().iter().map(|w| w.token).collect();
        assert!(tokens.windows(2).all(|w| w[0] <= w[1]), "{tokens:?}");
    }
}
