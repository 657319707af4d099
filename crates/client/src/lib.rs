//! A Rust client for Leasehold that does the careful parts for its caller.
//!
//! - **Typed**: a method per endpoint, typed bodies, and one [`Error`] whose problem
//!   [`code`](Error::code) is a [`ProblemCode`] — the very list the server answers from.
//! - **Safe to retry**: every write carries an `Idempotency-Key` (a UUID v4), the same on
//!   each of its retries, so the service applies it once and replays its answer.
//! - **Retried when it may help**: on no answer (connection refused, reset, timeout), 429,
//!   502, 503 and 504; never on another 4xx. Backoff is exponential with full jitter,
//!   capped, and bounded in attempts and total time ([`RetryPolicy`]); `Retry-After` is
//!   honoured.
//! - **Leases that keep themselves alive**: a claim returns [`Lease`] guards that renew in
//!   the background at a third of the lease time, report when the lease is lost, and give
//!   the item back when dropped without being completed.
//! - **Waiting for work without polling**: [`Claim::wait_ms`] makes a claim wait (up to
//!   30 s) until an item is available; the call's timeout and retry time grow by the wait.
//! - **Following a pool**: [`Client::list_events`] pages through a pool's change log
//!   ("who held item X, and when"), and [`Client::follow_events`] follows it live over
//!   Server-Sent Events, reconnecting by itself after the last event it yielded.
//!
//! ```no_run
//! use leasehold_client::{Claim, Client, NewItem, ProblemCode};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), leasehold_client::Error> {
//! let client = Client::builder("http://127.0.0.1:8080")
//!     .api_key(std::env::var("LEASEHOLD_KEY").ok())
//!     .build()?;
//! client.add_items("cases", &[NewItem::new("c1").priority(5)]).await?;
//!
//! for lease in client.claim_next("cases", &Claim::new("alice").lease_ms(30_000)).await? {
//!     // The lease is renewed in the background while the work runs.
//!     println!("working on {} with fencing token {}", lease.id(), lease.token());
//!     let lost = lease.lost();
//!     tokio::select! {
//!         reason = lost => println!("stopped: {reason}"),
//!         () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
//!             match lease.complete(Some(json!({"outcome": "resolved"}))).await {
//!                 Ok(item) => println!("{} is {:?}", item.id, item.state),
//!                 Err(e) if e.code() == Some(ProblemCode::LeaseLost) => println!("too late"),
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`transport`] is the sending core: `leasehold contend` sends through it too, and reads
//! its outcomes its own way (ok, refused, or unknown) for the history checkers.

mod counters;
mod error;
mod events;
mod items;
mod lease;
mod leases;
mod pools;
mod retry;
pub mod transport;
mod types;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

pub use error::{Current, Error, Problem, ProblemCode};
pub use events::{EventStream, Followed};
pub use lease::{Lease, Lost};
pub use leases::Claimed;
pub use retry::RetryPolicy;
use transport::{Answer, Call, Transport};
pub use types::*;

/// The longest a long-poll claim waits (`wait_ms` up to 30,000).
pub const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// A client of one Leasehold deployment. Cheap to clone: clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Set by [`Client::with_idempotency_key`]: the key every write of this handle carries.
    idempotency_key: Option<Arc<str>>,
}

#[derive(Debug)]
struct Inner {
    transport: Transport,
    policy: RetryPolicy,
}

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    policy: RetryPolicy,
}

impl ClientBuilder {
    /// The API key (`Authorization: Bearer`); `None` for `leasehold dev`, which needs none.
    pub fn api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key;
        self
    }

    /// How long one attempt may take, from connecting to the last byte (default 10 s).
    /// A long-poll claim gets its `wait_ms` on top. A connection may stay silent for this
    /// plus the longest wait, [`LONGEST_WAIT`], before it counts as broken: the bound on an
    /// event stream (see [`Client::follow_events`]), whose body does not end.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long connecting may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How requests are retried (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.timeout + LONGEST_WAIT)
            .user_agent(concat!("leasehold-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot build an HTTP client: {e}")))?;
        let transport = Transport::new(
            http,
            vec![self.base_url],
            self.api_key.as_deref(),
            self.timeout,
        )
        .map_err(Error::Invalid)?;
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                policy: self.policy,
            }),
            idempotency_key: None,
        })
    }
}

impl Client {
    /// A client of the deployment at `base_url` (such as `http://127.0.0.1:8080`).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            api_key: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            policy: RetryPolicy::default(),
        }
    }

    /// A client with the default settings and no API key.
    pub fn new(base_url: impl Into<String>) -> Result<Client, Error> {
        Client::builder(base_url).build()
    }

    /// A handle whose writes all carry `key` as their `Idempotency-Key`, instead of a fresh
    /// one per call: for a call that must be applied once even when the process making it
    /// is retried (a serverless function's invocation id, a job id). Use it for one call:
    /// the same key on a different request is refused with `idempotency_key_reused`.
    pub fn with_idempotency_key(&self, key: impl Into<String>) -> Client {
        Client {
            inner: self.inner.clone(),
            idempotency_key: Some(key.into().into()),
        }
    }

    /// This client with a fresh `Idempotency-Key` per write again (undoing
    /// [`Client::with_idempotency_key`]).
    pub(crate) fn with_fresh_keys(&self) -> Client {
        Client {
            inner: self.inner.clone(),
            idempotency_key: None,
        }
    }

    /// How many retries this client (and its clones) has made, over all calls.
    pub fn retries(&self) -> u64 {
        self.inner.transport.retries()
    }

    /// The client's retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// `GET /readyz`: whether the service can serve (Redis reachable, scripts loaded).
    pub async fn ready(&self) -> Result<(), Error> {
        self.send(Call::new(Method::GET, "/readyz"), &self.inner.policy)
            .await
            .map(|_| ())
    }

    /// Sends `call` under `policy`: the 2xx answer, or the error.
    async fn send(&self, mut call: Call, policy: &RetryPolicy) -> Result<Answer, Error> {
        if let (Some(key), true) = (&self.idempotency_key, call.is_write()) {
            call = call
                .header(transport::IDEMPOTENCY_KEY, key)
                .map_err(Error::Invalid)?;
        }
        let sent = self.inner.transport.send(&call, 0, policy).await;
        Error::check(sent)
    }

    /// Opens a streaming answer under `policy`: the 2xx response with its body unread, or
    /// the error.
    async fn open(&self, call: Call, policy: &RetryPolicy) -> Result<reqwest::Response, Error> {
        match self.inner.transport.open(&call, 0, policy).await {
            Ok(response) => Ok(response),
            Err(sent) => Err(Error::of_failed(sent)),
        }
    }

    /// Sends with the client's policy and reads the JSON answer.
    async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<T, Error> {
        let answer = self.send(call, &self.inner.policy).await?;
        decode(&answer)
    }
}

/// A JSON answer as `T`.
fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T, Error> {
    serde_json::from_slice(&answer.body).map_err(|e| Error::Unexpected {
        status: answer.status.as_u16(),
        detail: e.to_string(),
    })
}

/// Whether the answer was 201 Created.
fn created(answer: &Answer) -> bool {
    answer.status == StatusCode::CREATED
}

/// A path from its segments, each percent-encoded as one segment (so a name can never
/// reach another route, not even `..`), with a query.
fn path(segments: &[&str], query: &[(&str, String)]) -> String {
    let mut path = String::new();
    for segment in segments {
        path.push('/');
        let dots = segment.bytes().all(|b| b == b'.');
        for byte in segment.bytes() {
            let plain = byte.is_ascii_alphanumeric() || b"-_~:@".contains(&byte);
            if plain || (byte == b'.' && !dots) {
                path.push(char::from(byte));
            } else {
                path.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    if !query.is_empty() {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        path.push('?');
        path.push_str(&query);
    }
    path
}

/// A call with a JSON body.
fn json_call<T: serde::Serialize + ?Sized>(
    method: Method,
    path: String,
    body: &T,
) -> Result<Call, Error> {
    Call::new(method, path).json(body).map_err(Error::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_segment_each() {
        assert_eq!(
            path(&["v1", "pools", "a/b", "items"], &[]),
            "/v1/pools/a%2Fb/items"
        );
        assert_eq!(
            path(&["v1", "pools", "..", "x.y"], &[]),
            "/v1/pools/%2E%2E/x.y"
        );
        assert_eq!(
            path(&["v1", "pools", "p", "items", "u:1@x"], &[]),
            "/v1/pools/p/items/u:1@x"
        );
        assert_eq!(
            path(&["v1", "counters", "c"], &[("period", "2026-01-10".into())]),
            "/v1/counters/c?period=2026-01-10"
        );
        assert_eq!(
            path(
                &["v1", "pools", "p", "leases"],
                &[("holder", "a b&c".into())]
            ),
            "/v1/pools/p/leases?holder=a+b%26c"
        );
    }
}
