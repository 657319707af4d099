//! The sending core every caller of Leasehold shares: one request, sent again while its
//! outcome is unknown or the service asks to come back later, always with the same
//! `Idempotency-Key`, so that the service applies a write at most once and answers every
//! retry with the first answer.
//!
//! It decides *when* to send again ([`RetryPolicy`]) and reports *what happened* on every
//! attempt ([`Sent`]); it does not decide what an answer means. [`crate::Client`]
//! turns a [`Sent`] into typed values and errors; `leasehold contend` turns the same
//! [`Sent`] into the ok / refused / unknown outcomes its history checkers need.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;

use super::retry::RetryPolicy;

/// The header that makes a retried write safe.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// One request to send (and perhaps send again), by path: the base URL is the transport's.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    /// The path and query, already percent-encoded, starting with `/`.
    pub path: String,
    /// The JSON body, serialized once so that every attempt sends the same bytes (the
    /// service fingerprints them to tell a retry from a reuse of the key).
    pub body: Option<Bytes>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How long one attempt may take, when not the transport's default (a long-poll
    /// claim waits on the server before it answers).
    pub timeout: Option<Duration>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Call {
            method,
            path: path.into(),
            body: None,
            headers: Vec::new(),
            timeout: None,
        }
    }

    /// The body, as JSON.
    pub fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Result<Self, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| format!("cannot encode the body: {e}"))?;
        self.body = Some(Bytes::from(bytes));
        Ok(self)
    }

    /// Adds a header; a name or value that HTTP does not allow is refused.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, String> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name}: not a valid header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("{name}: not a valid header value"))?;
        self.headers.push((name, value));
        Ok(self)
    }

    /// Whether the method changes state, and so carries an `Idempotency-Key`.
    pub fn is_write(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }

    fn idempotency_key(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name.as_str() == IDEMPOTENCY_KEY)
            .and_then(|(_, value)| value.to_str().ok())
    }
}

/// An HTTP answer, whatever its status, with the whole body read.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// `Retry-After` in seconds (the only form Leasehold sends).
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }

    /// The version an `ETag: "<version>"` names.
    pub fn etag_version(&self) -> Option<u64> {
        self.headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_start_matches("W/").trim_matches('"').parse().ok())
    }

    /// Whether the service replayed a stored answer (`Idempotent-Replayed: true`).
    pub fn replayed(&self) -> bool {
        self.headers
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes() == b"true")
    }
}

/// What one attempt came back with.
#[derive(Debug)]
pub enum Attempt {
    /// An answer, with any status.
    Answer(Answer),
    /// No answer: the connection failed, broke, or the attempt timed out. A write may
    /// have been applied.
    NoAnswer(reqwest::Error),
}

impl Attempt {
    /// Whether sending again may help: no answer, or 429, 502, 503, 504 (the service,
    /// or a load balancer in front of it, could not take the request now). Never any
    /// other 4xx: the same request would be refused again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Attempt::NoAnswer(_) => true,
            Attempt::Answer(answer) => matches!(
                answer.status,
                StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ),
        }
    }

    /// Whether a write may have been applied although this attempt does not say so: no
    /// answer, or a 5xx. (A 429 is answered before anything is done.)
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Attempt::NoAnswer(_) => true,
            Attempt::Answer(answer) => answer.status.is_server_error(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Attempt::Answer(answer) => answer.retry_after(),
            Attempt::NoAnswer(_) => None,
        }
    }
}

/// How a request ended, after every attempt it took: one operation, from the first
/// attempt's start to the last attempt's end.
#[derive(Debug)]
pub struct Sent {
    /// The last attempt.
    pub last: Attempt,
    /// How many attempts were made (1 when the first was final).
    pub attempts: u32,
    /// From the first attempt's start to the last one's end.
    pub elapsed: Duration,
    /// The last attempt could have been retried, but the policy's attempts or time ran
    /// out (or the service asked to wait past the time left).
    pub gave_up: bool,
    /// An attempt before the last had an unknown outcome (see
    /// [`Attempt::outcome_unknown`]): a write may have been applied even if the last
    /// attempt says nothing about it (a 429).
    pub earlier_unknown: bool,
    /// The `Idempotency-Key` every attempt carried (writes only).
    pub idempotency_key: Option<String>,
    /// When the latest attempt with an unknown outcome (no answer, or a 5xx) ended,
    /// retried or not, and what it got: how long the service was failing, as this call
    /// saw it.
    pub last_unknown: Option<(Instant, String)>,
}

impl Sent {
    /// Whether a write may have been applied without the caller knowing its answer.
    pub fn outcome_unknown(&self) -> bool {
        self.last.outcome_unknown() || (self.gave_up && self.earlier_unknown)
    }
}

/// An HTTP client bound to one deployment: its base URLs (an attempt goes to the next
/// one after a failure, as a load balancer moves on from a replica that died), the API
/// key, the per-attempt timeout. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Transport {
    http: reqwest::Client,
    bases: Arc<[String]>,
    key: Option<HeaderValue>,
    timeout: Duration,
    retries: Arc<AtomicU64>,
}

impl Transport {
    /// `bases` are URLs such as `http://127.0.0.1:8080` (a path prefix is kept);
    /// `timeout` bounds each attempt, from connecting to the last byte of the body.
    pub fn new(
        http: reqwest::Client,
        bases: Vec<String>,
        key: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, String> {
        if bases.is_empty() {
            return Err("at least one base URL is needed".to_owned());
        }
        let mut cleaned = Vec::with_capacity(bases.len());
        for base in bases {
            let url = url::Url::parse(&base).map_err(|e| format!("base URL {base}: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
                return Err(format!("base URL {base}: must be http(s) without a query"));
            }
            cleaned.push(base.trim_end_matches('/').to_owned());
        }
        let key = key
            .map(|k| {
                let mut value = HeaderValue::from_str(&format!("Bearer {k}"))
                    .map_err(|_| "the API key is not a valid header value".to_owned())?;
                value.set_sensitive(true);
                Ok::<_, String>(value)
            })
            .transpose()?;
        Ok(Transport {
            http,
            bases: cleaned.into(),
            key,
            timeout,
            retries: Arc::default(),
        })
    }

    /// How long one attempt may take, unless a call says otherwise.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many attempts were retries, over every request this transport (and its clones)
    /// sent.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Sends `call`, starting at the `start`-th base URL, and again under `policy` while
    /// the attempt is retryable. A write gets a fresh `Idempotency-Key` (UUID v4) unless
    /// the call already carries one; every attempt carries the same key.
    pub async fn send(&self, call: &Call, start: usize, policy: &RetryPolicy) -> Sent {
        let timeout = call.timeout.unwrap_or(self.timeout);
        let sent = self
            .retrying(call, start, policy, |request, remaining| async move {
                // Bounded by the call's timeout and by the time the policy has left.
                let timeout = timeout.min(remaining).max(Duration::from_millis(1));
                Err::<Infallible, _>(read(request.timeout(timeout).send().await).await)
            })
            .await;
        match sent {
            Ok(never) => match never {},
            Err(sent) => sent,
        }
    }

    /// Opens a streaming answer (Server-Sent Events): sends `call` as [`Transport::send`]
    /// does, again under `policy` while the attempt is retryable, and hands back the first
    /// 2xx response with its body unread; or, as a [`Sent`], how it failed. No total
    /// timeout applies, as the body does not end by itself: the HTTP client's read timeout
    /// bounds the wait for the answer and for each piece of the body.
    pub async fn open(
        &self,
        call: &Call,
        start: usize,
        policy: &RetryPolicy,
    ) -> Result<reqwest::Response, Sent> {
        self.retrying(call, start, policy, |request, _| async move {
            match request.send().await {
                Ok(response) if response.status().is_success() => Ok(response),
                answered => Err(read(answered).await),
            }
        })
        .await
    }

    /// The retry loop under every request: `attempt` sends the request it is given (with
    /// the time the policy has left) and ends the loop with `Ok`, or hands back what it
    /// got, which is tried again while it is retryable and the policy allows.
    async fn retrying<T, F, Fut>(
        &self,
        call: &Call,
        start: usize,
        policy: &RetryPolicy,
        mut attempt: F,
    ) -> Result<T, Sent>
    where
        F: FnMut(reqwest::RequestBuilder, Duration) -> Fut,
        Fut: Future<Output = Result<T, Attempt>>,
    {
        let started = Instant::now();
        let mut key = call.idempotency_key().map(str::to_owned);
        let mut added = None;
        if key.is_none() && call.is_write() {
            let fresh = uuid::Uuid::new_v4().to_string();
            added = HeaderValue::from_str(&fresh).ok();
            key = Some(fresh);
        }
        let mut attempts = 0;
        let mut earlier_unknown = false;
        let mut last_unknown = None;
        loop {
            let remaining = policy.max_elapsed.saturating_sub(started.elapsed());
            let request = self.request(call, start + attempts as usize, added.as_ref());
            let attempted = attempt(request, remaining).await;
            attempts += 1;
            let attempt = match attempted {
                Ok(done) => return Ok(done),
                Err(attempt) => attempt,
            };
            if attempt.outcome_unknown() {
                last_unknown = Some((Instant::now(), describe(&attempt)));
            }
            let done = |last: Attempt, gave_up: bool| Sent {
                last,
                attempts,
                elapsed: started.elapsed(),
                gave_up,
                earlier_unknown,
                idempotency_key: key.clone(),
                last_unknown: last_unknown.clone(),
            };
            if !attempt.is_retryable() {
                return Err(done(attempt, false));
            }
            if attempts >= policy.max_attempts {
                return Err(done(attempt, true));
            }
            let wait = policy.delay(attempts - 1, attempt.retry_after());
            if started.elapsed().saturating_add(wait) >= policy.max_elapsed {
                return Err(done(attempt, true));
            }
            earlier_unknown |= attempt.outcome_unknown();
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                method = %call.method,
                path = %call.path,
                attempt = attempts,
                wait_ms = wait.as_millis() as u64,
                cause = %describe(&attempt),
                "sending again"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// The request of one attempt, to the `base`-th base URL (round robin).
    fn request(
        &self,
        call: &Call,
        base: usize,
        added_key: Option<&HeaderValue>,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.bases[base % self.bases.len()], call.path);
        let mut request = self.http.request(call.method.clone(), url);
        if let Some(key) = &self.key {
            request = request.header(reqwest::header::AUTHORIZATION, key.clone());
        }
        for (name, value) in &call.headers {
            request = request.header(name.clone(), value.clone());
        }
        if let Some(key) = added_key {
            request = request.header(IDEMPOTENCY_KEY, key.clone());
        }
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        request
    }
}

/// What an attempt came back with, its whole body read.
async fn read(sent: Result<reqwest::Response, reqwest::Error>) -> Attempt {
    let response = match sent {
        Ok(response) => response,
        Err(e) => return Attempt::NoAnswer(e),
    };
    let status = response.status();
    let headers = response.headers().clone();
    match response.bytes().await {
        Ok(body) => Attempt::Answer(Answer {
            status,
            headers,
            body,
        }),
        Err(e) => Attempt::NoAnswer(e),
    }
}

/// An attempt in a few words, for logs.
fn describe(attempt: &Attempt) -> String {
    match attempt {
        Attempt::Answer(answer) => answer.status.to_string(),
        Attempt::NoAnswer(e) if e.is_timeout() => "timeout".to_owned(),
        Attempt::NoAnswer(e) => format!("no answer: {e}"),
    }
}
