//! What time alone does to a pool (a lease runs out, a delay ends), applied promptly even
//! when nobody calls on the pool: every pool script that schedules such a thing answers
//! when the pool's next one is due, and the replica sweeps that pool then, rounded up to
//! the next multiple of the lag (`--expiry-lag-ms`), so what falls due within one lag is
//! applied by one call. Several replicas may know of one pool: the first sweep applies what
//! is due, the others find nothing left (a few reads). A replica that stops takes its
//! schedule with it; the periodic sweep of every pool still covers those.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Inner;
use super::call::Access;
use super::pools::SWEEP_LIMIT;

/// A pool's twelve keys (`keys::pool_keys`), as its scripts were run with.
type PoolKeys = Arc<[String]>;

/// When each pool with something due is to be swept.
pub(super) struct Due {
    /// Zero: not at all (what time does is applied by calls and the periodic sweep only).
    lag: Duration,
    state: Mutex<State>,
    changed: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct State {
    /// (when to sweep, ms since the epoch; the pool's first key).
    order: BTreeSet<(u64, String)>,
    /// The pool's first key → when it is to be swept, and its keys.
    pools: HashMap<String, (u64, PoolKeys)>,
}

/// The longest a schedule waits before looking again whether its store is still there.
const IDLE_CHECK: Duration = Duration::from_secs(10);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Due {
    pub fn new(lag: Duration) -> Due {
        Due {
            lag,
            state: Mutex::default(),
            changed: Arc::default(),
        }
    }

    /// The pool of `keys` has something due at `due` (ms): sweep it then (or earlier, if it
    /// is to be swept earlier already).
    pub fn schedule(&self, keys: &[String], due: u64) {
        let lag = self.lag.as_millis() as u64;
        if lag == 0 || keys.len() != 12 {
            return;
        }
        let at = due.div_ceil(lag) * lag;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((scheduled, _)) = state.pools.get(&keys[0]) {
            if *scheduled <= at {
                return;
            }
            let old = (*scheduled, keys[0].clone());
            state.order.remove(&old);
        }
        let first = state.order.first().is_none_or(|(t, _)| at < *t);
        state.order.insert((at, keys[0].clone()));
        state.pools.insert(keys[0].clone(), (at, keys.into()));
        drop(state);
        if first {
            self.changed.notify_one();
        }
    }

    /// The pools due by `now`, taken off the schedule; and when the next one is due.
    fn take(&self, now: u64) -> (Vec<PoolKeys>, Option<u64>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut due = Vec::new();
        while let Some((at, first)) = state.order.first().cloned() {
            if at > now {
                return (due, Some(at));
            }
            state.order.pop_first();
            if let Some((_, keys)) = state.pools.remove(&first) {
                due.push(keys);
            }
        }
        (due, None)
    }

    /// Sweeps each pool when it is due, for as long as the store lives.
    pub async fn run(store: Weak<Inner>) {
        loop {
            let Some(inner) = store.upgrade() else {
                return;
            };
            let (pools, next) = inner.due.take(now_ms());
            let store = super::Store { inner };
            for keys in pools {
                let head = store.idempotency_args(None);
                let script = &store.inner.scripts.sweep_pool;
                let swept = store
                    .run::<Swept>(
                        Access::Read,
                        script,
                        &keys,
                        &head,
                        &[SWEEP_LIMIT.to_string()],
                    )
                    .await;
                match swept {
                    // More is due than one call did: again at once.
                    Ok(super::Outcome::Done(answer)) if answer.value.more => {
                        store.inner.due.schedule(&keys, now_ms());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(pool = %keys[0], error = %e, "a prompt sweep failed");
                        // Tried again a lag later: what was due still is.
                        let lag = store.inner.due.lag.as_millis() as u64;
                        store.inner.due.schedule(&keys, now_ms() + lag);
                    }
                }
            }
            let wait = next
                .map(|at| Duration::from_millis(at.saturating_sub(now_ms())))
                .unwrap_or(IDLE_CHECK)
                .min(IDLE_CHECK);
            // A schedule made meanwhile leaves a permit: the wait then ends at once.
            let changed = Arc::clone(&store.inner.due.changed);
            drop(store);
            tokio::select! {
                () = changed.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct Swept {
    more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pool: &str) -> Vec<String> {
        (0..12).map(|i| format!("lh:{{t/{pool}}}:{i}")).collect()
    }

    #[test]
    fn pools_are_swept_at_their_earliest_due_time_rounded_up_to_the_lag() {
        let due = Due::new(Duration::from_millis(1000));
        due.schedule(&keys("a"), 10_500);
        due.schedule(&keys("b"), 10_999);
        due.schedule(&keys("a"), 30_000); // later: the earlier one stands
        due.schedule(&keys("c"), 9_000);
        due.schedule(&keys("c"), 20_001); // later: stands at 9,000
        let (now, next) = due.take(10_999);
        assert!(now.len() == 1 && now[0][0] == keys("c")[0]);
        assert_eq!(next, Some(11_000));
        let (now, next) = due.take(11_000);
        let mut names: Vec<&str> = now.iter().map(|k| k[0].as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, [keys("a")[0].as_str(), keys("b")[0].as_str()]);
        assert_eq!(next, None);
        let off = Due::new(Duration::ZERO);
        off.schedule(&keys("a"), 1);
        assert_eq!(off.take(u64::MAX).0.len(), 0);
    }
}
