//! Everything that speaks to Redis: the connection pool, running scripts with bounded
//! timeouts, decoding their tagged replies, and the start-up and readiness checks.
//!
//! Each public operation is one script (see `lua/`), named the same in three places:
//! `lua/claim_next.lua` ↔ [`Store::claim_next`] ↔ `POST /v1/pools/{pool}/claim`.

mod counters;
mod items;
pub mod keys;
mod leases;
mod pools;
pub mod scripts;

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime};
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Current, Refusal, RefusalCode};
use crate::names::{PoolName, Tenant};

pub use counters::{CounterDraw, CounterFormat, PeriodKind, date_in};
pub use items::{
    AddedItems, ItemRecord, ItemState, ListCursor, NewItem, Preconditions, PutItem, data_text,
};
pub use pools::{PoolConfig, PoolCounts, PoolSettings, PoolStats, PoolSummary, PoolView};
pub use scripts::Scripts;

/// How writes are made durable before they are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// Acknowledge once the script has run (Redis persists on its own schedule).
    Async,
    /// Require Redis to fsync its append-only file on every write.
    Fsync,
}

/// A request's `Idempotency-Key` and the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

/// A script's successful answer, and whether it was replayed from an earlier request.
#[derive(Debug)]
pub struct Answer<T> {
    pub value: T,
    pub replayed: bool,
}

/// What the store needs to know at start-up.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub url: String,
    pub pool_size: usize,
    pub timeout: Duration,
    pub idempotency_ttl: Duration,
    pub counter_retention: Duration,
}

/// Why the store refused to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use Redis at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error(
        "Redis maxmemory-policy is '{0}', but Leasehold needs 'noeviction' (an evicted lease is a second holder): run CONFIG SET maxmemory-policy noeviction, or set it in redis.conf"
    )]
    Eviction(String),
    #[error(
        "--durability fsync needs Redis with appendonly yes and appendfsync always (found appendonly {appendonly}, appendfsync {appendfsync})"
    )]
    NotFsync {
        appendonly: String,
        appendfsync: String,
    },
}

/// A cheap, cloneable handle on Redis and the scripts.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    scripts: Scripts,
    settings: StoreSettings,
}

/// The tagged reply every script returns: `ok`, a refusal (`err`), or `retry`.
#[derive(Deserialize)]
struct Reply<T> {
    ok: Option<T>,
    err: Option<RefusalCode>,
    current: Option<Current>,
    limit: Option<u64>,
    retry: Option<u64>,
}

/// A decoded reply before refusals become errors: scripts that can ask for a retry
/// answer `Retry` with the time Redis saw.
enum Outcome<T> {
    Done(Answer<T>),
    Retry(u64),
}

impl Store {
    /// Connects, checks the settings that correctness depends on, and loads the scripts.
    pub async fn connect(
        settings: StoreSettings,
        durability: Durability,
    ) -> Result<Self, StartError> {
        let url = redacted(&settings.url);
        let unreachable = |cause: String| StartError::Unreachable {
            url: url.clone(),
            cause,
        };
        let mut config = Config::from_url(settings.url.clone());
        let mut pool_config = deadpool_redis::PoolConfig::new(settings.pool_size);
        pool_config.timeouts.wait = Some(settings.timeout);
        pool_config.timeouts.create = Some(settings.timeout);
        pool_config.timeouts.recycle = Some(settings.timeout);
        config.pool = Some(pool_config);
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| unreachable(e.to_string()))?;
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                scripts: Scripts::new(),
                settings,
            }),
        };
        store
            .check_settings(durability)
            .await
            .map_err(|e| match e {
                SettingsProblem::Start(e) => e,
                SettingsProblem::Redis(e) => unreachable(e.to_string()),
            })?;
        store
            .load_scripts()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(store)
    }

    /// For `/readyz`: Redis answers, the settings still hold, the scripts are loaded.
    pub async fn ready(&self, durability: Durability) -> Result<(), String> {
        self.bounded(async {
            self.check_settings(durability).await.map_err(|e| match e {
                SettingsProblem::Start(e) => e.to_string(),
                SettingsProblem::Redis(e) => e.to_string(),
            })?;
            self.load_scripts().await.map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| "Redis did not answer in time".to_owned())?
    }

    async fn check_settings(&self, durability: Durability) -> Result<(), SettingsProblem> {
        let mut conn = self.inner.pool.get().await.map_err(pool_error)?;
        let policy = config_get(&mut conn, "maxmemory-policy").await?;
        if policy != "noeviction" {
            return Err(SettingsProblem::Start(StartError::Eviction(policy)));
        }
        if durability == Durability::Fsync {
            let appendonly = config_get(&mut conn, "appendonly").await?;
            let appendfsync = config_get(&mut conn, "appendfsync").await?;
            if appendonly != "yes" || appendfsync != "always" {
                return Err(SettingsProblem::Start(StartError::NotFsync {
                    appendonly,
                    appendfsync,
                }));
            }
        }
        Ok(())
    }

    async fn load_scripts(&self) -> Result<(), RedisError> {
        let mut conn = self.inner.pool.get().await.map_err(pool_error)?;
        let hashes: Vec<&str> = self
            .inner
            .scripts
            .all()
            .iter()
            .map(|s| s.get_hash())
            .collect();
        let loaded: Vec<bool> = redis::cmd("SCRIPT")
            .arg("EXISTS")
            .arg(&hashes)
            .query_async(&mut conn)
            .await?;
        for (script, loaded) in self.inner.scripts.all().iter().zip(loaded) {
            if !loaded {
                script.load_async(&mut conn).await?;
            }
        }
        Ok(())
    }

    fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }

    fn idempotency_args(&self, idempotency: Option<&Idempotency>) -> [String; 2] {
        match idempotency {
            Some(i) => [
                i.fingerprint.clone(),
                self.inner.settings.idempotency_ttl.as_millis().to_string(),
            ],
            None => [String::new(), String::new()],
        }
    }

    /// Runs one script under the request timeout and decodes its tagged reply.
    async fn run<T: DeserializeOwned>(
        &self,
        script: &Script,
        keys: &[String],
        head: &[String],
        args: &[String],
    ) -> Result<Outcome<T>, ApiError> {
        let (json, replayed): (String, bool) = self
            .bounded(async {
                let mut conn = self.inner.pool.get().await.map_err(pool_error)?;
                let mut invocation = script.prepare_invoke();
                for key in keys {
                    invocation.key(key);
                }
                for arg in head.iter().chain(args) {
                    invocation.arg(arg);
                }
                invocation.invoke_async(&mut conn).await
            })
            .await?
            .map_err(backend_error)?;
        decode(&json, replayed)
    }

    /// Redis's clock, in milliseconds since the epoch: the one clock every replica agrees on.
    pub async fn redis_time_ms(&self) -> Result<i64, ApiError> {
        let (secs, micros): (i64, i64) = self.query(redis::cmd("TIME")).await?;
        Ok(secs * 1000 + micros / 1000)
    }

    /// Runs a plain command (reads that need no script) under the request timeout.
    async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, ApiError> {
        self.bounded(async {
            let mut conn = self.inner.pool.get().await.map_err(pool_error)?;
            cmd.query_async(&mut conn).await
        })
        .await?
        .map_err(backend_error)
    }

    /// Every Redis call is bounded: a stalled Redis answers 503 fast instead of hanging.
    async fn bounded<F: Future>(&self, work: F) -> Result<F::Output, ApiError> {
        tokio::time::timeout(self.inner.settings.timeout, work)
            .await
            .map_err(|_| ApiError::BackendUnavailable("Redis call timed out".to_owned()))
    }
}

/// One pool of one tenant: every pool, item and lease operation hangs off this handle.
pub struct PoolRef<'a> {
    store: &'a Store,
    tenant: &'a Tenant,
    pool: &'a PoolName,
}

impl Store {
    pub fn pool<'a>(&'a self, tenant: &'a Tenant, pool: &'a PoolName) -> PoolRef<'a> {
        PoolRef {
            store: self,
            tenant,
            pool,
        }
    }
}

impl PoolRef<'_> {
    /// Runs a pool script with the pool's ten keys and the idempotency arguments first.
    async fn script<T: DeserializeOwned>(
        &self,
        script: &Script,
        idempotency: Option<&Idempotency>,
        args: &[String],
    ) -> Result<Outcome<T>, ApiError> {
        let keys = keys::pool_keys(self.tenant, self.pool, idempotency.map(|i| i.key.as_str()));
        let head = self.store.idempotency_args(idempotency);
        self.store.run(script, &keys, &head, args).await
    }

    fn scripts(&self) -> &Scripts {
        &self.store.inner.scripts
    }

    /// The answer stored for a request's Idempotency-Key, as the scripts' prelude
    /// (`lua/lib/idempotency.lua`) would replay it: for work done before the script runs,
    /// which a retry must not do again (PATCH merges, and may no longer fit, on a retry).
    async fn stored_answer<T: DeserializeOwned>(
        &self,
        idempotency: &Idempotency,
    ) -> Result<Option<Answer<T>>, ApiError> {
        let key = keys::pool_idempotency(self.tenant, self.pool, &idempotency.key);
        let stored: Option<String> = self.store.query(redis::cmd("GET").arg(key).clone()).await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        match stored.split_once('\n') {
            Some((fingerprint, json)) if fingerprint == idempotency.fingerprint => {
                decode(json, true)?.done().map(Some)
            }
            _ => Err(ApiError::refused(RefusalCode::IdempotencyKeyReused)),
        }
    }
}

enum SettingsProblem {
    Start(StartError),
    Redis(RedisError),
}

impl From<RedisError> for SettingsProblem {
    fn from(e: RedisError) -> Self {
        SettingsProblem::Redis(e)
    }
}

async fn config_get(
    conn: &mut deadpool_redis::Connection,
    name: &str,
) -> Result<String, SettingsProblem> {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(conn)
        .await?;
    Ok(pair.get(1).cloned().unwrap_or_default())
}

fn pool_error(e: deadpool_redis::PoolError) -> RedisError {
    match e {
        deadpool_redis::PoolError::Backend(e) => e,
        other => RedisError::from(std::io::Error::other(other.to_string())),
    }
}

/// Redis faults become 503 (retry with the same Idempotency-Key), except errors raised by
/// a script itself, which are bugs of ours (500). Neither carries Redis's text to clients.
fn backend_error(e: RedisError) -> ApiError {
    let script_fault = matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::ResponseError)
            | ErrorKind::UnexpectedReturnType
            | ErrorKind::Parse
    ) && !matches!(e.code(), Some("OOM" | "BUSY" | "LOADING" | "READONLY"));
    if script_fault {
        ApiError::Internal(e.to_string())
    } else {
        ApiError::BackendUnavailable(e.to_string())
    }
}

fn decode<T: DeserializeOwned>(json: &str, replayed: bool) -> Result<Outcome<T>, ApiError> {
    let reply: Reply<T> = serde_json::from_str(json)
        .map_err(|e| ApiError::Internal(format!("undecodable script reply: {e}: {json}")))?;
    if let Some(value) = reply.ok {
        return Ok(Outcome::Done(Answer { value, replayed }));
    }
    if let Some(now) = reply.retry {
        return Ok(Outcome::Retry(now));
    }
    match reply.err {
        Some(code) => Err(ApiError::Refused(Refusal {
            code,
            current: reply.current,
            limit: reply.limit,
            replayed,
        })),
        None => Err(ApiError::Internal(format!(
            "script reply without outcome: {json}"
        ))),
    }
}

impl<T> Outcome<T> {
    /// For scripts that never ask for a retry.
    fn done(self) -> Result<Answer<T>, ApiError> {
        match self {
            Outcome::Done(answer) => Ok(answer),
            Outcome::Retry(_) => Err(ApiError::Internal("unexpected retry reply".to_owned())),
        }
    }
}

/// Empty Lua tables encode as `{}`; lists in replies accept that as an empty list.
fn lua_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List<T> {
        Items(Vec<T>),
        Empty(serde::de::IgnoredAny),
    }
    Ok(match List::deserialize(deserializer)? {
        List::Items(items) => items,
        List::Empty(_) => Vec::new(),
    })
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
