//! Running one call on Redis: a script (or a plain command) on a connection of the
//! backend, bounded by the request timeout, with the chosen durability (`WAIT` for N
//! replicas, so that no answer leaves before they have what it reflects); Redis faults
//! become `StoreError`s, and a connection that met one is not used again.

use std::time::{Duration, Instant};

use redis::{ErrorKind, RedisError, ServerErrorKind};
use serde::de::DeserializeOwned;

use super::backend::Handle;
use super::scripts::Function;
use super::{Durability, Outcome, RateLimit, Store, StoreError, decode, keys};
use crate::metrics::Metrics;
use crate::names::Tenant;

/// A client's write, or a read (which may apply expired leases, as any call does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Write,
    Read,
}

/// A request's `Idempotency-Key` and the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

impl Store {
    pub(super) fn idempotency_args(&self, idempotency: Option<&Idempotency>) -> [String; 2] {
        match idempotency {
            Some(i) => [
                format!("{} {}", keys::answer_field(&i.key), i.fingerprint),
                self.inner.settings.idempotency_ttl.as_millis().to_string(),
            ],
            None => [String::new(), String::new()],
        }
    }

    /// Runs one script under the request timeout and decodes its tagged reply.
    ///
    /// Under `replicas:N`, no answer leaves before N replicas have everything it could
    /// reflect: a write only once they have it (else 503 `durability_timeout`), and a read
    /// (or a replayed answer) only once they have all the state it read (else 503
    /// `backend_unavailable`). A primary Sentinel has replaced, still believing it is primary,
    /// has lost its replicas: it answers nothing, instead of state a failover takes back.
    pub(super) async fn run<T: DeserializeOwned>(
        &self,
        access: Access,
        script: &Function,
        keys: &[String],
        head: &[String],
        args: &[String],
    ) -> Result<Outcome<T>, StoreError> {
        let started = Instant::now();
        let (json, replayed) = self
            .with_connection(async |conn: &mut Handle<'_>| {
                let mut invocation = script.prepare_invoke();
                for key in keys {
                    invocation.key(key);
                }
                for arg in head.iter().chain(args) {
                    invocation.arg(arg);
                }
                let reply: (String, bool) =
                    invocation.invoke_async(conn).await.map_err(backend_error)?;
                // A write that asks for its pool's name to be reserved wrote nothing.
                if reply.0 != super::reply::RESERVE_REPLY {
                    self.acknowledged(conn, access, &keys[0]).await?;
                }
                Ok(reply)
            })
            .await?;
        let name = script.name();
        self.inner.metrics.record(|| {
            metrics::histogram!(crate::metrics::REDIS_SECONDS, "script" => name)
                .record(started.elapsed().as_secs_f64());
        });
        decode(&json, replayed, &self.inner.metrics, |due| {
            self.inner.due.schedule(keys, due);
        })
    }

    /// Under `replicas:N`, waits until N replicas have everything the primary holding
    /// `key` had when the call on `conn` before this ran; fewer in time is an error.
    /// Elsewhere, nothing to wait for.
    ///
    /// `WAIT` counts a connection's own last write: after a call that wrote nothing (a
    /// read, an answer replayed, a claim that found nothing) it would count an older write,
    /// or none, and pass at once. So a tiny write to `key`'s slot goes first (in the same
    /// round trip): the replicas that have it have every write before it, and the primary
    /// that holds the slot, whichever node that is, is the one asked.
    async fn acknowledged(
        &self,
        conn: &mut Handle<'_>,
        access: Access,
        key: &str,
    ) -> Result<(), StoreError> {
        let Durability::Replicas(wanted) = self.durability() else {
            return Ok(());
        };
        let wait_ms = (self.inner.settings.timeout / 2).as_millis() as u64;
        // A WAIT that fails (a primary mid-failover, a demoted one refusing the write) has
        // confirmed nothing.
        let acked = redis::pipe()
            .cmd("SET")
            .arg(keys::ack(key))
            .arg(1)
            .arg("PX")
            .arg(ACK_KEY_TTL_MS)
            .ignore()
            .cmd("WAIT")
            .arg(wanted)
            .arg(wait_ms)
            .query_async::<(u32,)>(conn)
            .await
            .map_or(0, |(acked,)| acked);
        if acked >= wanted {
            return Ok(());
        }
        let cause = format!("{acked} of {wanted} replicas acknowledged within {wait_ms} ms");
        Err(match access {
            Access::Write => StoreError::Unacknowledged(cause),
            Access::Read => StoreError::Unavailable(cause),
        })
    }

    /// Admits one request of `tenant` under `limit`, or refuses it with 429 and when to
    /// come back. The limiter's state is in Redis, so the limit holds for all replicas
    /// together. It is not waited on under `replicas:N`: losing it in a failover only
    /// forgets some of the tenant's recent requests.
    pub async fn admit(&self, tenant: &Tenant, limit: RateLimit) -> Result<(), StoreError> {
        let script = &self.scripts().rate_limit;
        let key = keys::rate_limit(tenant);
        let started = Instant::now();
        let (admitted, wait_us): (bool, u64) = self
            .with_connection(async |conn: &mut Handle<'_>| {
                script
                    .key(&key)
                    .arg(limit.interval_us())
                    .arg(limit.burst)
                    .invoke_async(conn)
                    .await
                    .map_err(backend_error)
            })
            .await?;
        self.inner.metrics.record(|| {
            metrics::histogram!(crate::metrics::REDIS_SECONDS, "script" => "rate_limit")
                .record(started.elapsed().as_secs_f64());
        });
        if admitted {
            Ok(())
        } else {
            Err(StoreError::RateLimited {
                retry_after: Duration::from_micros(wait_us),
            })
        }
    }

    /// Redis's clock, in milliseconds since the epoch: the one clock every replica agrees on.
    pub async fn redis_time_ms(&self) -> Result<i64, StoreError> {
        let (secs, micros): (i64, i64) = self.query(redis::cmd("TIME")).await?;
        Ok(secs * 1000 + micros / 1000)
    }

    /// Runs a plain command under the request timeout, for what need not be acknowledged
    /// by replicas: Redis's clock, the pool index's upkeep.
    pub(super) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, StoreError> {
        self.with_connection(async |conn: &mut Handle<'_>| {
            cmd.query_async(conn).await.map_err(backend_error)
        })
        .await
    }

    /// Runs a plain read of `key` (no script needed) under the request timeout; under
    /// `replicas:N`, answered only once N replicas have the state it read.
    pub(super) async fn read_query<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
        key: &str,
    ) -> Result<T, StoreError> {
        self.with_connection(async |conn: &mut Handle<'_>| {
            let value = cmd.query_async(conn).await.map_err(backend_error)?;
            self.acknowledged(conn, Access::Read, key).await?;
            Ok(value)
        })
        .await
    }

    /// Runs `work` on a pooled connection, bounded by the request timeout: a stalled Redis
    /// answers 503 fast instead of hanging.
    ///
    /// A connection that met a fault (it timed out, failed, was refused as a replica's, or
    /// its replicas did not acknowledge), or that was open when Sentinel switched primaries,
    /// is closed rather than used again: the next call connects afresh, to the primary the
    /// sentinels name now. A primary that was replaced but still believes it is primary
    /// answers its old connections without error, until they are dropped.
    pub(super) async fn with_connection<R>(
        &self,
        work: impl AsyncFnOnce(&mut Handle<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _in_flight = InFlight::start(&self.inner.metrics);
        let timeout = self.inner.settings.timeout;
        let result = async {
            let mut conn = self
                .bounded(self.inner.backend.get())
                .await?
                .map_err(backend_error)?;
            let result = tokio::time::timeout(timeout, work(&mut conn))
                .await
                .unwrap_or_else(|_| Err(StoreError::Unavailable(TIMED_OUT.to_owned())));
            let faulted = matches!(
                result,
                Err(StoreError::Unavailable(_) | StoreError::Unacknowledged(_))
            );
            if faulted {
                self.inner.backend.fault();
            }
            let switched = self.inner.backend.switched_since(&conn);
            if faulted || switched {
                conn.discard();
            }
            match result {
                // The primary was switched, or its failover began, while the call ran on
                // it: what it acknowledged may be taken back by the failover.
                Ok(_) if switched && self.inner.settings.fence_failovers => {
                    Err(StoreError::Unavailable(SWITCHED.to_owned()))
                }
                result => result,
            }
        }
        .await;
        if let Err(error) = &result {
            let kind = match error {
                StoreError::Unavailable(cause) if cause == TIMED_OUT => "timeout",
                StoreError::Unavailable(_) => "unavailable",
                StoreError::Unacknowledged(_) => "unacknowledged",
                _ => "internal",
            };
            self.inner.metrics.record(|| {
                metrics::counter!(crate::metrics::REDIS_ERRORS, "kind" => kind).increment(1);
            });
        }
        result
    }

    /// Sets the connection gauges (called when metrics are scraped).
    pub fn record_connection_gauges(&self) {
        let (open, idle) = self.inner.backend.status();
        self.inner.metrics.record(|| {
            metrics::gauge!(crate::metrics::REDIS_CONNECTIONS, "state" => "open").set(open as f64);
            if let Some(idle) = idle {
                metrics::gauge!(crate::metrics::REDIS_CONNECTIONS, "state" => "idle")
                    .set(idle as f64);
            }
        });
    }

    /// Every Redis call is bounded: a stalled Redis answers 503 fast instead of hanging.
    pub(super) async fn bounded<F: Future>(&self, work: F) -> Result<F::Output, StoreError> {
        tokio::time::timeout(self.inner.settings.timeout, work)
            .await
            .map_err(|_| StoreError::Unavailable(TIMED_OUT.to_owned()))
    }
}

/// How long the key a read writes before `WAIT` (see [`Store::acknowledged`]) stays.
const ACK_KEY_TTL_MS: u64 = 60_000;

/// Why a call that took longer than the request timeout failed.
const TIMED_OUT: &str = "Redis call timed out";
/// Why a call that the primary answered is answered 503 all the same.
const SWITCHED: &str = "the primary was switched or its failover began during the call";

/// Counts a Redis call in the in-flight gauge while it lives.
struct InFlight<'a>(&'a Metrics);

impl InFlight<'_> {
    fn start(metrics: &Metrics) -> InFlight<'_> {
        metrics.record(|| metrics::gauge!(crate::metrics::REDIS_IN_FLIGHT).increment(1.0));
        InFlight(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .record(|| metrics::gauge!(crate::metrics::REDIS_IN_FLIGHT).decrement(1.0));
    }
}

/// Whether Redis refused the user a command or key inside a script (an ACL without a
/// right that `deploy/leasehold.acl` lists): Redis's setup, not a bug of the script. Redis 7
/// answers that with a plain `ERR`, so only the message tells.
fn lacks_a_right(e: &RedisError) -> bool {
    e.detail()
        .is_some_and(|detail| detail.contains("The user executing the script can't"))
}

/// Redis faults become 503 (retry with the same Idempotency-Key), except errors raised by
/// a script itself, which are bugs of ours (500). Neither carries Redis's text to clients.
fn backend_error(e: RedisError) -> StoreError {
    let script_fault = matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::ResponseError)
            | ErrorKind::UnexpectedReturnType
            | ErrorKind::Parse
    ) && !matches!(
        e.code(),
        Some(
            "OOM"
                | "BUSY"
                | "LOADING"
                | "READONLY"
                | "MASTERDOWN"
                | "CLUSTERDOWN"
                | "TRYAGAIN"
                | "NOREPLICAS"
                | "NOPERM"
        )
    ) && !lacks_a_right(&e)
        // Still missing after the reload (a node the reload did not reach): Redis's state.
        && !super::scripts::is_missing_function(&e);
    if script_fault {
        StoreError::Internal(e.to_string())
    } else {
        StoreError::Unavailable(e.to_string())
    }
}
