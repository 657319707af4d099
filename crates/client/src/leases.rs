//! Leases: claim the best items or a named one (as [`Lease`] guards), renew, release,
//! complete, assign on someone's behalf, requeue, and list a holder's leases.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::transport::{Answer, Call};
use super::{
    Assign, Claim, Client, Error, Item, Lease, LeaseInfo, LeasePage, Release, RetryPolicy,
    json_call, path,
};

/// When a claim's leases began, at the earliest: when the call was first sent; not known
/// for a replayed answer, which may be of a claim made long before (under a key from
/// [`Client::with_idempotency_key`]).
fn granted_after(answer: &Answer, sent_at: Instant) -> Option<Instant> {
    (!answer.replayed()).then_some(sent_at)
}

/// What a claim of the next items got: its leases (possibly none), and whether the pool is
/// paused.
#[derive(Debug)]
pub struct Claimed {
    pub leases: Vec<Lease>,
    pub paused: bool,
}

fn item_path(pool: &str, id: &str, action: &str) -> String {
    path(&["v1", "pools", pool, "items", id, action], &[])
}

impl Client {
    /// `POST /v1/pools/{pool}/claim`: leases the best `count` available items (possibly
    /// none), each as a [`Lease`] guard that renews itself. With `wait_ms`, the call waits
    /// that much longer for its answer (and its retries get that much more time).
    pub async fn claim_next(&self, pool: &str, claim: &Claim) -> Result<Vec<Lease>, Error> {
        Ok(self.claim(pool, claim).await?.leases)
    }

    /// As [`Client::claim_next`], also saying whether the pool is paused (then it granted
    /// nothing, and grants again once resumed).
    pub async fn claim(&self, pool: &str, claim: &Claim) -> Result<Claimed, Error> {
        let sent_at = Instant::now();
        let mut call = json_call(
            Method::POST,
            path(&["v1", "pools", pool, "claim"], &[]),
            claim,
        )?;
        let mut policy = self.inner.policy.clone();
        if let Some(wait) = claim.wait_ms.filter(|ms| *ms > 0) {
            let wait = Duration::from_millis(wait);
            call.timeout = Some(self.inner.transport.timeout() + wait);
            policy.max_elapsed += wait;
        }
        let answer = self.send(call, &policy).await?;
        let leases: leasehold_wire::answers::Leases = super::decode(&answer)?;
        let granted_after = granted_after(&answer, sent_at);
        Ok(Claimed {
            paused: leases.paused,
            leases: leases
                .leases
                .into_iter()
                .map(|info| Lease::start(self.clone(), pool, info, claim.lease_ms, granted_after))
                .collect(),
        })
    }

    /// `POST /v1/pools/{pool}/items/{id}/claim`: leases the named item if it is available,
    /// or renews it if it is already this holder's (the same lease, the same token); 409
    /// `already_leased` if another holder has it.
    pub async fn claim_item(
        &self,
        pool: &str,
        id: &str,
        holder: &str,
        lease_ms: Option<u64>,
    ) -> Result<Lease, Error> {
        let sent_at = Instant::now();
        let body = json!({ "holder": holder, "lease_ms": lease_ms });
        let call = json_call(Method::POST, item_path(pool, id, "claim"), &strip(body))?;
        let answer = self.send(call, &self.inner.policy).await?;
        let info: LeaseInfo = super::decode(&answer)?;
        Ok(Lease::start(
            self.clone(),
            pool,
            info,
            lease_ms,
            granted_after(&answer, sent_at),
        ))
    }

    /// A guard for a lease this holder already has (from [`Client::list_leases`] after a
    /// restart): it renews it at once and from then on, and releases it if dropped.
    /// `lease_ms` as in [`Claim::lease_ms`].
    pub fn adopt(&self, pool: &str, lease: LeaseInfo, lease_ms: Option<u64>) -> Lease {
        Lease::start(self.clone(), pool, lease, lease_ms, None)
    }

    /// `POST .../items/{id}/renew`: extends the lease (by `lease_ms`, or the pool's lease
    /// time), keeping its token; 409 `lease_lost` if it is no longer current.
    pub async fn renew(
        &self,
        pool: &str,
        id: &str,
        holder: &str,
        token: u64,
        lease_ms: Option<u64>,
    ) -> Result<LeaseInfo, Error> {
        self.renew_under(&self.inner.policy, pool, id, holder, token, lease_ms)
            .await
    }

    /// `renew` under another retry policy (the guard's, bounded by the lease's time).
    pub(super) async fn renew_under(
        &self,
        policy: &RetryPolicy,
        pool: &str,
        id: &str,
        holder: &str,
        token: u64,
        lease_ms: Option<u64>,
    ) -> Result<LeaseInfo, Error> {
        let body = json!({ "holder": holder, "token": token, "lease_ms": lease_ms });
        let call = json_call(Method::POST, item_path(pool, id, "renew"), &strip(body))?;
        let answer = self.send(call, policy).await?;
        super::decode(&answer)
    }

    /// `POST .../items/{id}/release`: gives the item back, available at once or after
    /// `delay_ms`, optionally with a new priority.
    pub async fn release(
        &self,
        pool: &str,
        id: &str,
        holder: &str,
        token: u64,
        release: &Release,
    ) -> Result<Item, Error> {
        let mut body = json!({ "holder": holder, "token": token });
        merge(&mut body, release);
        self.call(json_call(
            Method::POST,
            item_path(pool, id, "release"),
            &body,
        )?)
        .await
    }

    /// `POST .../items/{id}/complete`: the item is done; `data`, if given, replaces its
    /// data.
    pub async fn complete(
        &self,
        pool: &str,
        id: &str,
        holder: &str,
        token: u64,
        data: Option<Value>,
    ) -> Result<Item, Error> {
        let body = json!({ "holder": holder, "token": token, "data": data });
        self.call(json_call(
            Method::POST,
            item_path(pool, id, "complete"),
            &strip(body),
        )?)
        .await
    }

    /// `PUT .../items/{id}/holder`: assigns the item to `holder` on their behalf (whoever
    /// had it loses it); the item, with the new holder's `token`.
    pub async fn assign(
        &self,
        pool: &str,
        id: &str,
        holder: &str,
        assign: &Assign,
    ) -> Result<Item, Error> {
        let body = json!({
            "holder": holder,
            "lease_ms": assign.lease_ms,
            "expected_version": assign.expected_version,
        });
        self.put_holder(pool, id, strip(body), assign).await
    }

    /// `PUT .../items/{id}/holder` with `null`: takes the item back from whoever has it.
    pub async fn unassign(&self, pool: &str, id: &str, assign: &Assign) -> Result<Item, Error> {
        let mut body = strip(json!({ "expected_version": assign.expected_version }));
        if let Some(body) = body.as_object_mut() {
            body.insert("holder".to_owned(), Value::Null);
        }
        self.put_holder(pool, id, body, assign).await
    }

    async fn put_holder(
        &self,
        pool: &str,
        id: &str,
        body: Value,
        assign: &Assign,
    ) -> Result<Item, Error> {
        let mut call = json_call(Method::PUT, item_path(pool, id, "holder"), &body)?;
        if let Some(version) = assign.if_match {
            call = call
                .header("if-match", &format!("\"{version}\""))
                .map_err(Error::Invalid)?;
        }
        self.call(call).await
    }

    /// `POST .../items/{id}/requeue`: a `done` or `dead` item back to `available`.
    pub async fn requeue(
        &self,
        pool: &str,
        id: &str,
        priority: Option<i64>,
    ) -> Result<Item, Error> {
        let body = strip(json!({ "priority": priority }));
        self.call(json_call(
            Method::POST,
            item_path(pool, id, "requeue"),
            &body,
        )?)
        .await
    }

    /// `POST .../items/{id}/requeue` with a time: the item is `delayed` for `delay_ms` (an
    /// available one snoozed, a delayed one rescheduled, a done or dead one back later).
    pub async fn snooze(&self, pool: &str, id: &str, delay_ms: u64) -> Result<Item, Error> {
        self.call(json_call(
            Method::POST,
            item_path(pool, id, "requeue"),
            &json!({ "delay_ms": delay_ms }),
        )?)
        .await
    }

    /// `GET /v1/pools/{pool}/leases?holder=`: one page of the leases `holder` has now, in
    /// id order (to recover after a restart; see [`Client::adopt`]).
    pub async fn list_leases(
        &self,
        pool: &str,
        holder: &str,
        limit: Option<u64>,
        cursor: Option<&str>,
    ) -> Result<LeasePage, Error> {
        let mut query = vec![("holder", holder.to_owned())];
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        self.call(Call::new(
            Method::GET,
            path(&["v1", "pools", pool, "leases"], &query),
        ))
        .await
    }
}

/// The object without its null fields (absent means "the default" to the service).
fn strip(mut body: Value) -> Value {
    if let Some(fields) = body.as_object_mut() {
        fields.retain(|_, v| !v.is_null());
    }
    body
}

/// Adds the fields of `extra` (a struct that serializes to an object) to `body`.
fn merge(body: &mut Value, extra: &impl serde::Serialize) {
    if let (Some(body), Ok(Value::Object(extra))) =
        (body.as_object_mut(), serde_json::to_value(extra))
    {
        body.extend(extra);
    }
}
