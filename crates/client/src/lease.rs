//! [`Lease`]: a granted lease that keeps itself alive while its holder works.
//!
//! Like Redisson's lock watchdog, a task renews the lease at a third of its time, so two
//! renewals can fail before it runs out. The task stops, and [`Lease::lost`] resolves, as
//! soon as the lease is no longer the holder's: the service refused a renewal (the item was
//! reassigned, requeued, deleted or had expired), or no renewal succeeded before the lease
//! time ran out (by the contract, a lease is lost the instant its time has passed). The
//! holder's clock decides the second case, counted from when the claim or renewal was
//! *sent*, so it errs on the early side. Where that count cannot be made (a lease adopted
//! after a restart, claimed again by its holder, or replayed from an earlier call), or has
//! run out before the guard began (a long-poll claim granted late in its wait), the guard
//! renews at once and that one answer decides.
//!
//! Completing or releasing consumes the guard. A guard dropped without either releases
//! its item in the background (best effort, if a Tokio runtime is still running), so an
//! early return or a panic gives the item back at once instead of at expiry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Client, Error, Item, LeaseInfo, Problem, Release};

/// Why a lease was lost.
#[derive(Debug, Clone)]
pub enum Lost {
    /// The service refused a renewal (`lease_lost`, or `not_found` for a deleted item, …):
    /// the item may be someone else's now.
    Refused(Box<Problem>),
    /// No renewal succeeded before the lease's time ran out (the service could not be
    /// reached, or kept failing): the lease is over by the contract, whatever the service
    /// may have recorded.
    Expired,
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Refused(problem) => write!(f, "lease lost: {problem}"),
            Lost::Expired => f.write_str("lease lost: it expired before a renewal succeeded"),
        }
    }
}

/// What the guard and its renewing task share.
#[derive(Debug)]
struct Shared {
    /// `Some` once the lease is lost.
    lost: watch::Sender<Option<Lost>>,
    /// The lease as last granted or renewed.
    latest: Mutex<LeaseInfo>,
}

/// A lease on one item, renewed in the background until it is completed, released,
/// dropped or lost. Returned by [`Client::claim_next`], [`Client::claim_item`] and
/// [`Client::adopt`].
#[derive(Debug)]
pub struct Lease {
    client: Client,
    pool: String,
    granted: LeaseInfo,
    shared: Arc<Shared>,
    renewer: Option<JoinHandle<()>>,
    /// Completed or released (or being): nothing to do on drop.
    settled: bool,
}

impl Lease {
    /// Starts the guard (and its renewing task, for a lease that expires). `lease_ms` is
    /// what the claim asked for, `None` for the pool's lease time. `granted_after` is when
    /// the call that granted it was first sent, or `None` for a lease of unknown age, which
    /// is renewed at once. The guard's calls carry fresh Idempotency-Keys, whatever key
    /// the claim was made with.
    pub(super) fn start(
        client: Client,
        pool: &str,
        info: LeaseInfo,
        lease_ms: Option<u64>,
        granted_after: Option<Instant>,
    ) -> Lease {
        let client = client.with_fresh_keys();
        let shared = Arc::new(Shared {
            lost: watch::Sender::new(None),
            latest: Mutex::new(info.clone()),
        });
        let period = match granted_after {
            Some(sent_at) => local_expiry(&info, lease_ms, sent_at).map(|end| Some((sent_at, end))),
            None => info.lease_expires_at.is_some().then_some(None),
        };
        let renewer = period.map(|period| {
            let renewal = Renewal {
                client: client.clone(),
                pool: pool.to_owned(),
                id: info.id.clone(),
                holder: info.holder.clone(),
                token: info.token,
                lease_ms,
                deciding: (lease_time(&info, lease_ms).unwrap_or_default() / 3).max(MIN_DECIDING),
                shared: shared.clone(),
            };
            tokio::spawn(renewal.run(period))
        });
        Lease {
            client,
            pool: pool.to_owned(),
            granted: info,
            shared,
            renewer,
            settled: false,
        }
    }

    /// The item's id.
    pub fn id(&self) -> &str {
        &self.granted.id
    }

    /// The fencing token: pass it to downstream systems, which refuse a token lower than
    /// one they have seen.
    pub fn token(&self) -> u64 {
        self.granted.token
    }

    pub fn holder(&self) -> &str {
        &self.granted.holder
    }

    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// The item's data when it was granted.
    pub fn data(&self) -> &Value {
        &self.granted.data
    }

    /// The lease as last granted or renewed (its version and expiry change with each
    /// renewal).
    pub fn info(&self) -> LeaseInfo {
        match self.shared.latest.lock() {
            Ok(latest) => latest.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the lease has been lost.
    pub fn is_lost(&self) -> bool {
        self.shared.lost.borrow().is_some()
    }

    /// Resolves when the lease is lost, with why; never, for a lease that is not (so it
    /// can race the work in `tokio::select!`). Owns what it needs: it may outlive `self`.
    pub fn lost(&self) -> impl Future<Output = Lost> + Send + 'static {
        let mut status = self.shared.lost.subscribe();
        async move {
            let lost = status
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|lost| lost.clone());
            match lost {
                Some(lost) => lost,
                None => std::future::pending().await,
            }
        }
    }

    /// Marks the item done (with new `data`, if given) and stops renewing. After this,
    /// whatever its answer, the guard releases nothing.
    pub async fn complete(mut self, data: Option<Value>) -> Result<Item, Error> {
        self.settle();
        let g = &self.granted;
        self.client
            .complete(&self.pool, &g.id, &g.holder, g.token, data)
            .await
    }

    /// Gives the item back (after `release.delay_ms`, with `release.priority`) and stops
    /// renewing.
    pub async fn release(mut self, release: &Release) -> Result<Item, Error> {
        self.settle();
        let g = &self.granted;
        self.client
            .release(&self.pool, &g.id, &g.holder, g.token, release)
            .await
    }

    /// Stops renewing; nothing is released on drop any more.
    fn settle(&mut self) {
        self.settled = true;
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if self.settled || self.is_lost() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.client.clone();
        let pool = self.pool.clone();
        let granted = self.granted.clone();
        runtime.spawn(async move {
            let released = client
                .release(
                    &pool,
                    &granted.id,
                    &granted.holder,
                    granted.token,
                    &Release::default(),
                )
                .await;
            if let Err(e) = released {
                tracing::debug!(pool, item = granted.id, error = %e, "releasing a dropped lease");
            }
        });
    }
}

/// When the lease runs out by the holder's clock: `lease_ms` after `sent_at` when the
/// claim named its lease time; else by the lease's expiry as Redis's clock put it (which
/// trusts the two clocks to agree). `None` for a lease without expiry.
fn local_expiry(info: &LeaseInfo, lease_ms: Option<u64>, sent_at: Instant) -> Option<Instant> {
    let time = lease_time(info, lease_ms)?;
    let from = if named(lease_ms).is_some() {
        sent_at
    } else {
        Instant::now()
    };
    Some(from + time)
}

/// The lease time: `lease_ms` when the claim named one, else what is left of the lease by
/// Redis's clock. `None` for a lease without expiry.
fn lease_time(info: &LeaseInfo, lease_ms: Option<u64>) -> Option<Duration> {
    let expires_at = info.lease_expires_at.as_deref()?;
    if let Some(ms) = named(lease_ms) {
        return Some(Duration::from_millis(ms));
    }
    let expires_at: jiff::Timestamp = expires_at.parse().ok()?;
    let left = expires_at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// A lease time the claim named (0 is none: the pool's).
fn named(lease_ms: Option<u64>) -> Option<u64> {
    lease_ms.filter(|ms| *ms > 0)
}

/// The renewing task's view of the lease.
struct Renewal {
    client: Client,
    pool: String,
    id: String,
    holder: String,
    token: u64,
    lease_ms: Option<u64>,
    /// How long the one renewal that decides a lease of unknown age may take, retries
    /// included: a third of its lease time, so that no answer is reported as lost soon.
    deciding: Duration,
    shared: Arc<Shared>,
}

/// The least time a deciding try gets.
const MIN_DECIDING: Duration = Duration::from_millis(100);

impl Renewal {
    /// Renews at a third of each lease period until the lease is lost (or the task is
    /// aborted). A period is when it began (the claim or renewal was sent) and when it
    /// ends by the holder's clock; `None` when that is not known: renew at once.
    async fn run(self, mut period: Option<(Instant, Instant)>) {
        // Whether `period` comes from this guard's own renewal, rather than the claim.
        let mut renewed_here = false;
        loop {
            if let Some((began, ends)) = period {
                tokio::time::sleep_until(began + ends.saturating_duration_since(began) / 3).await;
            }
            let mut tried = false;
            loop {
                let now = Instant::now();
                // Retries while the period lasts. Once it is over by this count: lost, if
                // a renewal was tried in it or it came from one; else (the claim's period
                // was over before the guard began, or never known) one renewal, with its
                // retries for up to `deciding`, whose answer decides.
                let mut policy = self.client.retry_policy().clone();
                let ends = period.map(|(_, ends)| ends).filter(|ends| now < *ends);
                match ends {
                    Some(ends) => policy.max_elapsed = ends - now,
                    None if tried || renewed_here => {
                        self.lose(Lost::Expired);
                        return;
                    }
                    None => policy.max_elapsed = self.deciding,
                }
                tried = true;
                let renewed = self
                    .client
                    .renew_under(
                        &policy,
                        &self.pool,
                        &self.id,
                        &self.holder,
                        self.token,
                        self.lease_ms,
                    )
                    .await;
                match renewed {
                    Ok(info) => {
                        let next = local_expiry(&info, self.lease_ms, now);
                        if let Ok(mut latest) = self.shared.latest.lock() {
                            *latest = info;
                        }
                        match next {
                            Some(next) => {
                                (period, renewed_here) = (Some((now, next)), true);
                                break;
                            }
                            None => return,
                        }
                    }
                    // A refusal: the lease is not ours any more (or never will be renewed).
                    Err(Error::Problem(problem)) if problem.status < 500 => {
                        self.lose(Lost::Refused(problem));
                        return;
                    }
                    // No answer, or retries given up: try again while there is time.
                    Err(e) => {
                        tracing::debug!(pool = self.pool, item = self.id, error = %e, "renewal failed");
                        let left = ends.map_or(Duration::ZERO, |ends| {
                            ends.saturating_duration_since(Instant::now())
                        });
                        let pause =
                            (left / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
                        tokio::time::sleep(pause.min(left)).await;
                    }
                }
            }
        }
    }

    fn lose(&self, lost: Lost) {
        tracing::debug!(pool = self.pool, item = self.id, %lost, "lease lost");
        self.shared.lost.send_replace(Some(lost));
    }
}
