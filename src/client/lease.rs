//! [`Lease`]: a granted lease that keeps itself alive while its holder works.
//!
//! Like Redisson's lock watchdog, a task renews the lease at a third of its time, so two
//! renewals can fail before it runs out. The task stops, and [`Lease::lost`] resolves, as
//! soon as the lease is no longer the holder's: the service refused a renewal (the item was
//! reassigned, requeued, deleted or had expired), or no renewal succeeded before the lease
//! time ran out (by the contract, a lease is lost the instant its time has passed). The
//! holder's clock decides the second case, counted from when the claim or renewal was
//! *sent*, so it errs on the early side.
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
    /// what the claim asked for, `None` for the pool's lease time; `sent_at` is when the
    /// claim was first sent.
    pub(super) fn start(
        client: Client,
        pool: &str,
        info: LeaseInfo,
        lease_ms: Option<u64>,
        sent_at: Instant,
    ) -> Lease {
        let shared = Arc::new(Shared {
            lost: watch::Sender::new(None),
            latest: Mutex::new(info.clone()),
        });
        let renewer = local_expiry(&info, lease_ms, sent_at).map(|expires| {
            let renewal = Renewal {
                client: client.clone(),
                pool: pool.to_owned(),
                id: info.id.clone(),
                holder: info.holder.clone(),
                token: info.token,
                lease_ms,
                shared: shared.clone(),
            };
            tokio::spawn(renewal.run(sent_at, expires))
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
    let expires_at = info.lease_expires_at.as_deref()?;
    if let Some(ms) = lease_ms.filter(|ms| *ms > 0) {
        return Some(sent_at + Duration::from_millis(ms));
    }
    let expires_at: jiff::Timestamp = expires_at.parse().ok()?;
    let left = expires_at.duration_since(jiff::Timestamp::now());
    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
    Some(Instant::now() + left)
}

/// The renewing task's view of the lease.
struct Renewal {
    client: Client,
    pool: String,
    id: String,
    holder: String,
    token: u64,
    lease_ms: Option<u64>,
    shared: Arc<Shared>,
}

impl Renewal {
    /// Renews at a third of each lease period until the lease is lost (or the task is
    /// aborted). `granted` is when the current period began (the request was sent),
    /// `expires` when it ends.
    async fn run(self, mut granted: Instant, mut expires: Instant) {
        loop {
            tokio::time::sleep_until(granted + expires.saturating_duration_since(granted) / 3)
                .await;
            loop {
                let now = Instant::now();
                if now >= expires {
                    self.lose(Lost::Expired);
                    return;
                }
                let mut policy = self.client.retry_policy().clone();
                policy.max_elapsed = expires - now;
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
                                (granted, expires) = (now, next);
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
                        let left = expires.saturating_duration_since(Instant::now());
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
