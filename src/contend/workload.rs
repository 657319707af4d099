//! The clients: each one makes one request at a time, picks its next operation at random
//! from its own seeded generator, and records every operation in the shared history.
//!
//! The mix: claim-next in batches (then a write to the fenced resource, sometimes a renew
//! or a fenced write through the API, then complete or release), claims of a few hot
//! items, assignments with `expected_version`, read-modify-write increments of version-
//! checked registers with `If-Match`, counter draws, and reads of the counter in the
//! period of the client's last draw.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};

use super::http::{Http, Reply, Request};
use crate::check::{Event, FencedResource, History, LeaseAction, Op, Outcome};

/// What every client shares.
pub struct Workload {
    pub http: Http,
    pub pool: String,
    pub registers_pool: String,
    pub registers: Vec<String>,
    pub hot: Vec<String>,
    pub counter: String,
    pub batch: u32,
    pub lease_ms: u64,
    pub deadline: Instant,
    pub history: History,
    pub fenced: FencedResource,
    /// Operations recorded so far, for the progress bar.
    pub operations: AtomicU64,
}

/// Per operation kind: how many ended ok, refused or unknown, and the latencies of those
/// that were answered.
#[derive(Debug, Default, Clone)]
pub struct OpStats {
    pub ok: u64,
    pub refused: u64,
    pub unknown: u64,
    pub latencies_us: Vec<u64>,
}

/// What one client saw, merged into the report.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub ops: BTreeMap<&'static str, OpStats>,
    pub conflicts: BTreeMap<String, u64>,
    /// Why outcomes were unknown: a 5xx's status and code, `connection` or `timeout`.
    pub unknown_causes: BTreeMap<String, u64>,
}

impl ClientStats {
    fn count(&mut self, kind: &'static str, reply: &Reply, call_us: u64, return_us: u64) {
        let stats = self.ops.entry(kind).or_default();
        match reply {
            Reply::Ok { .. } => stats.ok += 1,
            Reply::Refused { code, .. } => {
                stats.refused += 1;
                *self.conflicts.entry(code.clone()).or_default() += 1;
            }
            Reply::Unknown { cause } => {
                stats.unknown += 1;
                *self.unknown_causes.entry(cause.clone()).or_default() += 1;
            }
        }
        if !matches!(reply, Reply::Unknown { .. }) {
            stats.latencies_us.push(return_us.saturating_sub(call_us));
        }
    }

    pub fn merge(&mut self, other: ClientStats) {
        for (kind, stats) in other.ops {
            let mine = self.ops.entry(kind).or_default();
            mine.ok += stats.ok;
            mine.refused += stats.refused;
            mine.unknown += stats.unknown;
            mine.latencies_us.extend(stats.latencies_us);
        }
        for (code, n) in other.conflicts {
            *self.conflicts.entry(code).or_default() += n;
        }
        for (cause, n) in other.unknown_causes {
            *self.unknown_causes.entry(cause).or_default() += n;
        }
    }
}

fn outcome(reply: &Reply) -> Outcome {
    match reply {
        Reply::Ok { .. } => Outcome::Ok,
        Reply::Refused { .. } => Outcome::Fail,
        Reply::Unknown { .. } => Outcome::Unknown,
    }
}

/// One client: `id` picks its replica (the base URL it starts from) and names its holder.
pub struct Client {
    id: usize,
    holder: String,
    rng: StdRng,
    work: Arc<Workload>,
    stats: ClientStats,
    /// The period of this client's last Ok draw: the one its counter reads ask about.
    period: Option<String>,
}

impl Client {
    pub fn new(id: usize, seed: u64, work: Arc<Workload>) -> Self {
        Client {
            id,
            holder: format!("c{id}"),
            rng: StdRng::seed_from_u64(seed.wrapping_add(id as u64)),
            work,
            stats: ClientStats::default(),
            period: None,
        }
    }

    pub async fn run(mut self) -> ClientStats {
        while Instant::now() < self.work.deadline {
            match self.rng.random_range(0..100) {
                0..45 => self.claim_work().await,
                45..55 => self.claim_hot().await,
                55..60 => self.assign_hot().await,
                60..80 => self.increment_register().await,
                80..94 => self.draw_counter().await,
                _ => self.read_counter().await,
            }
        }
        self.stats
    }

    fn pool_path(&self, path: &str) -> String {
        format!("/v1/pools/{}{path}", self.work.pool)
    }

    /// Sends a request (a write: with an Idempotency-Key, retried while unknown), counts
    /// it under `kind`, and returns it with its call and return times.
    async fn send(
        &mut self,
        kind: &'static str,
        request: Request<'_>,
        write: bool,
    ) -> (Reply, u64, u64) {
        let call = self.work.history.now_us();
        let reply = if write {
            self.work.http.write(self.id, request).await
        } else {
            self.work.http.once(self.id, &request).await
        };
        let ret = self.work.history.now_us();
        self.stats.count(kind, &reply, call, ret);
        (reply, call, ret)
    }

    fn record(&self, call_us: u64, return_us: u64, outcome: Outcome, op: Op) {
        self.work.operations.fetch_add(1, Ordering::Relaxed);
        self.work.history.record(Event {
            client: self.id,
            call_us,
            return_us,
            outcome,
            op,
        });
    }

    fn grant(&self, item: &str, token: u64) -> Op {
        Op::Grant {
            pool: self.work.pool.clone(),
            item: item.to_owned(),
            holder: self.holder.clone(),
            token,
        }
    }

    fn post(&self, path: String, body: Value) -> Request<'static> {
        Request {
            method: Method::POST,
            path,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    /// Claim-next a batch, then do the work under each lease.
    async fn claim_work(&mut self) {
        let body = json!({"holder": self.holder, "count": self.work.batch, "lease_ms": self.work.lease_ms});
        let request = self.post(self.pool_path("/claim"), body);
        let (reply, call, ret) = self.send("claim_next", request, true).await;
        let leases = match &reply {
            Reply::Ok { body, .. } => body["leases"].as_array().cloned().unwrap_or_default(),
            _ => {
                self.record(call, ret, outcome(&reply), self.grant("", 0));
                return;
            }
        };
        for lease in &leases {
            let (Some(item), Some(token)) = (lease["id"].as_str(), lease["token"].as_u64()) else {
                continue;
            };
            self.record(call, ret, Outcome::Ok, self.grant(item, token));
        }
        for lease in leases {
            let (Some(item), Some(token)) = (lease["id"].as_str(), lease["token"].as_u64()) else {
                continue;
            };
            let hot = self.work.hot.iter().any(|h| h == item);
            self.work_under_lease(item, token, !hot).await;
        }
    }

    /// What a holder does with a lease: write to the fenced resource, sometimes renew or
    /// write through the API under the lease, then finish: complete (when allowed: hot
    /// items are only ever released, so they stay hot) or release.
    async fn work_under_lease(&mut self, item: &str, token: u64, may_complete: bool) {
        let pool = self.work.pool.clone();
        self.work.fenced.write(&pool, item, &self.holder, token);
        if self.rng.random_bool(0.3) {
            let body =
                json!({"holder": self.holder, "token": token, "lease_ms": self.work.lease_ms});
            let request = self.post(self.pool_path(&format!("/items/{item}/renew")), body);
            self.use_lease(item, token, LeaseAction::Renew, request)
                .await;
        }
        if self.rng.random_bool(0.2) {
            let request = Request {
                method: Method::PATCH,
                path: self.pool_path(&format!("/items/{item}")),
                body: Some(json!({"worked_by": self.holder})),
                headers: vec![("lease-token", token.to_string())],
            };
            self.use_lease(item, token, LeaseAction::Write, request)
                .await;
        }
        let (action, path) = if may_complete && self.rng.random_bool(0.85) {
            (LeaseAction::Complete, "complete")
        } else {
            (LeaseAction::Release, "release")
        };
        let body = json!({"holder": self.holder, "token": token});
        let request = self.post(self.pool_path(&format!("/items/{item}/{path}")), body);
        self.use_lease(item, token, action, request).await;
    }

    async fn use_lease(
        &mut self,
        item: &str,
        token: u64,
        action: LeaseAction,
        request: Request<'_>,
    ) {
        let kind = match action {
            LeaseAction::Renew => "renew",
            LeaseAction::Release => "release",
            LeaseAction::Complete => "complete",
            LeaseAction::Write => "fenced_write",
        };
        let (reply, call, ret) = self.send(kind, request, true).await;
        let op = Op::UseLease {
            pool: self.work.pool.clone(),
            item: item.to_owned(),
            holder: self.holder.clone(),
            token,
            action,
        };
        self.record(call, ret, outcome(&reply), op);
    }

    fn pick_hot(&mut self) -> String {
        let n = self.rng.random_range(0..self.work.hot.len());
        self.work.hot[n].clone()
    }

    /// Claim one of the few hot items by name; on success work under it and release it,
    /// so it stays hot.
    async fn claim_hot(&mut self) {
        let item = self.pick_hot();
        let body = json!({"holder": self.holder, "lease_ms": self.work.lease_ms});
        let request = self.post(self.pool_path(&format!("/items/{item}/claim")), body);
        self.grant_and_work("claim_item", &item, request).await;
    }

    /// Assign a hot item to this client under a version check (read, then assign with
    /// `expected_version`): a lost race is a 409, never a silent overwrite.
    async fn assign_hot(&mut self) {
        let item = self.pick_hot();
        let read = Request {
            method: Method::GET,
            path: self.pool_path(&format!("/items/{item}")),
            body: None,
            headers: Vec::new(),
        };
        let (reply, _, _) = self.send("get_item", read, false).await;
        let Reply::Ok {
            etag: Some(version),
            ..
        } = reply
        else {
            return;
        };
        let request = Request {
            method: Method::PUT,
            path: self.pool_path(&format!("/items/{item}/holder")),
            body: Some(
                json!({"holder": self.holder, "expected_version": version, "lease_ms": self.work.lease_ms}),
            ),
            headers: Vec::new(),
        };
        self.grant_and_work("assign", &item, request).await;
    }

    /// Sends a request that grants one (hot) item, records the grant, and on success works
    /// under the lease and releases it.
    async fn grant_and_work(&mut self, kind: &'static str, item: &str, request: Request<'_>) {
        let (reply, call, ret) = self.send(kind, request, true).await;
        let token = match &reply {
            Reply::Ok { body, .. } => body["token"].as_u64().unwrap_or(0),
            _ => 0,
        };
        self.record(call, ret, outcome(&reply), self.grant(item, token));
        if token > 0 {
            self.work_under_lease(item, token, false).await;
        }
    }

    /// Read a register, then write it back plus one with If-Match: the lost-update test.
    async fn increment_register(&mut self) {
        let n = self.rng.random_range(0..self.work.registers.len());
        let key = self.work.registers[n].clone();
        let path = format!("/v1/pools/{}/items/{key}", self.work.registers_pool);
        let read = Request {
            method: Method::GET,
            path: path.clone(),
            body: None,
            headers: Vec::new(),
        };
        let (reply, call, ret) = self.send("read", read, false).await;
        let (version, value) = match &reply {
            Reply::Ok {
                etag: Some(version),
                body,
                ..
            } => (*version, body["data"]["n"].as_u64().unwrap_or(0)),
            _ => return,
        };
        let op = Op::Read {
            key: key.clone(),
            version,
            value,
        };
        self.record(call, ret, Outcome::Ok, op);

        let write = Request {
            method: Method::PUT,
            path,
            body: Some(json!({"data": {"n": value + 1}})),
            headers: vec![("if-match", format!("\"{version}\""))],
        };
        let (reply, call, ret) = self.send("write_if_match", write, true).await;
        let new_version = match &reply {
            Reply::Ok { etag, .. } => etag.unwrap_or(0),
            _ => 0,
        };
        let op = Op::Cas {
            key,
            expected: version,
            value: value + 1,
            new_version,
        };
        self.record(call, ret, outcome(&reply), op);
    }

    async fn draw_counter(&mut self) {
        let count = self.rng.random_range(1..=3);
        let request = self.post(
            format!("/v1/counters/{}/next", self.work.counter),
            json!({"count": count, "period": "day"}),
        );
        let (reply, call, ret) = self.send("counter_next", request, true).await;
        let (period, values) = match &reply {
            Reply::Ok { body, .. } => (
                body["period"].as_str().map(str::to_owned),
                body["values"]
                    .as_array()
                    .map(|v| v.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default(),
            ),
            _ => (None, Vec::new()),
        };
        if period.is_some() {
            self.period.clone_from(&period);
        }
        let op = Op::Counter {
            counter: self.work.counter.clone(),
            period,
            values,
        };
        self.record(call, ret, outcome(&reply), op);
    }

    /// Read the counter's last issued value in the period of this client's last draw
    /// (today in UTC before its first): no value a read shows may be issued again.
    async fn read_counter(&mut self) {
        let Some(period) = self.period.clone().or_else(today_in_utc) else {
            return;
        };
        let request = Request {
            method: Method::GET,
            path: format!("/v1/counters/{}?period={period}", self.work.counter),
            body: None,
            headers: Vec::new(),
        };
        let (reply, call, ret) = self.send("counter_read", request, false).await;
        let shown = match &reply {
            Reply::Ok { body, .. } => body["value"].as_u64(),
            _ => None,
        };
        // A read that showed nothing asserts nothing (an answer without a value too).
        let outcome = match (&reply, shown) {
            (_, Some(_)) => Outcome::Ok,
            (Reply::Ok { .. }, None) => Outcome::Unknown,
            _ => outcome(&reply),
        };
        let op = Op::CounterRead {
            counter: self.work.counter.clone(),
            period: Some(period),
            value: shown.unwrap_or(0),
        };
        self.record(call, ret, outcome, op);
    }
}

/// Today's period label in UTC (`2026-01-10`), as the service names a day's counter.
fn today_in_utc() -> Option<String> {
    crate::store::date_in(&jiff::tz::TimeZone::UTC, None)
        .ok()
        .map(|day| day.to_string())
}

/// How long the run has left, for the progress bar.
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
