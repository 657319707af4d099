//! Leases: claim the next items or a named one, renew, release, complete, assign on
//! someone's behalf, requeue, and list a holder's leases.

use serde::Deserialize;

use std::time::{Duration, Instant};

use super::StoreError;
use super::{Answer, Idempotency, PoolRef, Quotas, lua_list};
use crate::names::{Holder, ItemId};

use super::{Available, ItemRecord};

#[derive(Deserialize, Default)]
struct Leases {
    #[serde(deserialize_with = "lua_list")]
    leases: Vec<ItemRecord>,
    /// For a waiting claim granted nothing: ms until the pool's first lease or delay ends
    /// (as text).
    #[serde(default, deserialize_with = "super::events::optional_number_text")]
    next_in: Option<u64>,
    /// The pool is paused: it grants nothing.
    #[serde(default)]
    paused: bool,
}

/// What a claim of the next items was granted, and whether the pool was paused.
#[derive(Debug, Default)]
pub struct Granted {
    pub leases: Vec<ItemRecord>,
    pub paused: bool,
}

#[derive(Deserialize)]
struct LeasePage {
    #[serde(deserialize_with = "lua_list")]
    leases: Vec<ItemRecord>,
    next: Option<String>,
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// What a claim of the next items asks for.
#[derive(Debug, Clone)]
pub struct NextClaim<'a> {
    pub holder: &'a Holder,
    /// How many items at most.
    pub count: u32,
    /// The lease time (`None`: the pool's).
    pub lease_ms: Option<u64>,
    /// How long to wait for an item when none is available (zero: answer at once).
    pub wait: Duration,
    /// A pool that does not exist is as good as an empty one (wait for it to be created),
    /// rather than `not_found`.
    pub create: bool,
}

impl PoolRef<'_> {
    /// Grants up to `count` of the best available items (priority, then arrival). With a
    /// `wait`, when there is nothing to grant, waits up to that long for items to become
    /// available (see `wakeups`) and answers with what it got then, possibly nothing. The
    /// wait ends early, answering nothing, when the store stops waiting or `give_up`
    /// resolves (the caller's key was revoked, say).
    pub async fn claim_next(
        &self,
        idempotency: Option<&Idempotency>,
        claim: &NextClaim<'_>,
        give_up: impl Future<Output = ()>,
    ) -> Result<Answer<Granted>, StoreError> {
        let wait = claim.wait;
        let args = |waiting: bool| {
            [
                claim.holder.to_string(),
                claim.count.to_string(),
                opt(claim.lease_ms),
                if waiting { "1" } else { "" }.to_owned(),
                if claim.create { "1" } else { "" }.to_owned(),
            ]
        };
        let claim = |waiting| async move {
            self.script::<Leases>(&self.scripts().claim_next, idempotency, &args(waiting))
                .await?
                .done()
        };
        if wait.is_zero() {
            let answer = claim(false).await?;
            return Ok(Answer {
                value: Granted {
                    leases: answer.value.leases,
                    paused: answer.value.paused,
                },
                replayed: answer.replayed,
            });
        }
        let deadline = Instant::now() + wait;
        let waiters = self.waiters();
        let mut waiting = waiters.join();
        let stopping = self.store.inner.wakeups.stopping.stopped();
        tokio::pin!(stopping);
        tokio::pin!(give_up);
        let answer = loop {
            // Listen before trying, so an announcement between the try and the wait counts.
            let woken = waiters.notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let answer = claim(true).await?;
            let now = Instant::now();
            if !answer.value.leases.is_empty() || now >= deadline {
                break answer;
            }
            let until = if waiting.watch() {
                let next_in = answer.value.next_in.map(Duration::from_millis);
                deadline.min(now + self.store.inner.wakeups.watch_for(next_in))
            } else {
                deadline
            };
            tokio::select! {
                () = &mut woken => waiting.woken(),
                () = tokio::time::sleep_until(until.into()) => {}
                () = &mut stopping => break Answer { value: Leases::default(), replayed: false },
                () = &mut give_up => break Answer { value: Leases::default(), replayed: false },
            }
        };
        Ok(Answer {
            value: Granted {
                leases: answer.value.leases,
                paused: answer.value.paused,
            },
            replayed: answer.replayed,
        })
    }

    pub async fn claim_item(
        &self,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        holder: &Holder,
        lease_ms: Option<u64>,
    ) -> Result<Answer<ItemRecord>, StoreError> {
        let args = [id.to_string(), holder.to_string(), opt(lease_ms)];
        self.script(&self.scripts().claim_item, idempotency, &args)
            .await?
            .done()
    }

    pub async fn renew(
        &self,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        holder: &Holder,
        token: u64,
        lease_ms: Option<u64>,
    ) -> Result<Answer<ItemRecord>, StoreError> {
        let args = [
            id.to_string(),
            holder.to_string(),
            token.to_string(),
            opt(lease_ms),
        ];
        self.script(&self.scripts().renew, idempotency, &args)
            .await?
            .done()
    }

    pub async fn release(
        &self,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        holder: &Holder,
        token: u64,
        delay_ms: Option<u64>,
        priority: Option<i64>,
    ) -> Result<Answer<ItemRecord>, StoreError> {
        let args = [
            id.to_string(),
            holder.to_string(),
            token.to_string(),
            opt(delay_ms),
            opt(priority),
        ];
        self.script(&self.scripts().release, idempotency, &args)
            .await?
            .done()
    }

    /// Finishes a leased item; `data` (JSON object text) replaces its data when given.
    pub async fn complete(
        &self,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        holder: &Holder,
        token: u64,
        data: Option<String>,
        quotas: &Quotas,
    ) -> Result<Answer<ItemRecord>, StoreError> {
        let args = [
            id.to_string(),
            holder.to_string(),
            token.to_string(),
            data.unwrap_or_default(),
            quotas.max_pool_bytes.to_string(),
        ];
        self.script(&self.scripts().complete, idempotency, &args)
            .await?
            .done()
    }

    /// Assigns an item to `holder` (or unassigns it, with `None`) under a version check.
    pub async fn assign(
        &self,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        holder: Option<&Holder>,
        lease_ms: Option<u64>,
        expected_version: Option<u64>,
        if_match: &str,
    ) -> Result<Answer<ItemRecord>, StoreError> {
        let args = [
            id.to_string(),
            opt(holder),
            opt(lease_ms),
            opt(expected_version),
            if_match.to_owned(),
        ];
        self.script(&self.scripts().assign, idempotency, &args)
            .await?
            .done()
    }

    pub async fn requeue(
        &self,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        priority: Option<i64>,
        available: Available,
    ) -> Result<Answer<ItemRecord>, StoreError> {
        let args = [id.to_string(), opt(priority), available.arg()];
        self.script(&self.scripts().requeue, idempotency, &args)
            .await?
            .done()
    }

    /// A page of the leases `holder` has now, after the id `after`; the last id of the
    /// page when there may be more.
    pub async fn list_leases(
        &self,
        holder: &Holder,
        after: Option<&ItemId>,
        limit: u64,
    ) -> Result<(Vec<ItemRecord>, Option<String>), StoreError> {
        let args = [holder.to_string(), opt(after), limit.to_string()];
        let page: LeasePage = self.read(&self.scripts().list_leases, &args).await?;
        Ok((page.leases, page.next))
    }
}
