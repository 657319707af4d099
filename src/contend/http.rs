//! One request as a client of Leasehold makes it, sent through the client's sending core
//! ([`crate::client::transport`]): bounded in time, retried with the same
//! `Idempotency-Key` while its outcome is unknown, each attempt to the next URL; then
//! classified the way the history checkers need (ok, refused, or unknown: it may have
//! happened). A retried write is one operation, from its first call to its last return.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::client::RetryPolicy;
use crate::client::transport::{Attempt, Call, Sent, Transport};

/// How often a request whose outcome is unknown is sent in all (same Idempotency-Key).
const ATTEMPTS: u32 = 4;
/// The first backoff ceiling before sending again; it doubles each time (with full
/// jitter), unless the answer said Retry-After.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often a read at the end of a run is tried (over the replicas), and the pause.
const READ_ATTEMPTS: u32 = 20;
const READ_PAUSE: Duration = Duration::from_millis(200);
/// How long an event stream may stay silent before it counts as broken: longer than the
/// 15 s between the service's keep-alives.
const STREAM_SILENCE: Duration = Duration::from_secs(20);

/// How a request ended.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 2xx: the ETag version if any, and the JSON body.
    Ok { etag: Option<u64>, body: Value },
    /// 4xx: refused, with its problem `code`; nothing happened.
    Refused { status: StatusCode, code: String },
    /// A timeout, a dropped connection or a 5xx, after every retry: it may have happened.
    /// `cause` is the problem code of a 5xx, or `connection` / `timeout`.
    Unknown { cause: String },
}

impl Reply {
    /// What the checkers may conclude from a request's attempts.
    fn from_sent(sent: Sent) -> Reply {
        let answer = match sent.last {
            Attempt::Answer(answer) => answer,
            Attempt::NoAnswer(e) => {
                return Reply::Unknown {
                    cause: transport_cause(&e),
                };
            }
        };
        let status = answer.status;
        let body: Value = if answer.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&answer.body).unwrap_or(Value::Null)
        };
        if status.is_success() {
            Reply::Ok {
                etag: answer.etag_version(),
                body,
            }
        } else if status.is_server_error() {
            let code = body["code"].as_str().unwrap_or("server_error");
            let hint = if answer.retry_after().is_some() {
                ""
            } else {
                " without Retry-After"
            };
            Reply::Unknown {
                cause: format!("{} {code}{hint}", status.as_u16()),
            }
        } else if status == StatusCode::TOO_MANY_REQUESTS && sent.earlier_unknown {
            // A 429 is answered before the request is looked at: it says nothing about an
            // earlier attempt, which may have been applied.
            Reply::Unknown {
                cause: "429 rate_limited after an unknown outcome".to_owned(),
            }
        } else {
            Reply::Refused {
                status,
                code: body["code"].as_str().unwrap_or("unknown").to_owned(),
            }
        }
    }
}

/// A request to send (and maybe send again), by path: the base URL is the client's.
pub struct Request<'a> {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub headers: Vec<(&'a str, String)>,
}

impl Request<'_> {
    fn call(&self) -> Result<Call, String> {
        let mut call = Call::new(self.method.clone(), self.path.clone());
        if let Some(body) = &self.body {
            call = call.json(body)?;
        }
        for (name, value) in &self.headers {
            call = call.header(name, value)?;
        }
        Ok(call)
    }
}

fn transport_cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout"
    } else {
        "connection"
    }
    .to_owned()
}

/// A shared HTTP client with the deployment's base URLs, the caller's key and the
/// request timeout.
#[derive(Clone)]
pub struct Http {
    transport: Transport,
    /// The same, with a bound on silence instead of on the whole answer (event streams).
    streams: Transport,
    writes: RetryPolicy,
    reads_at_end: RetryPolicy,
    retries: Arc<AtomicU64>,
    /// When the latest attempt of any request failed with an unknown outcome, and how.
    last_failure: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Http {
    pub fn new(urls: Vec<String>, key: Option<String>, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let silence = reqwest::Client::builder()
            .read_timeout(timeout + STREAM_SILENCE)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let streams = Transport::new(silence, urls.clone(), key.as_deref(), timeout)?;
        let transport = Transport::new(client, urls, key.as_deref(), timeout)?;
        // Every attempt may take its whole timeout: the total only bounds the waits.
        let writes = RetryPolicy {
            max_attempts: ATTEMPTS,
            base_delay: FIRST_BACKOFF,
            max_delay: MAX_BACKOFF,
            max_elapsed: (timeout + MAX_BACKOFF) * ATTEMPTS,
        };
        let reads_at_end = RetryPolicy {
            max_attempts: READ_ATTEMPTS,
            base_delay: READ_PAUSE,
            max_delay: READ_PAUSE,
            max_elapsed: (timeout + READ_PAUSE) * READ_ATTEMPTS,
        };
        Ok(Http {
            transport,
            streams,
            writes,
            reads_at_end,
            retries: Arc::default(),
            last_failure: Arc::default(),
        })
    }

    /// When the latest attempt of any request (a write, a read, opening the stream)
    /// failed with an unknown outcome (no answer, or a 5xx), retried or not: the end of the
    /// window in which the deployment failed its callers.
    pub fn last_failure(&self) -> Option<(Instant, String)> {
        self.last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn note(&self, call: &Request<'_>, sent: &Sent) {
        if let Some((at, how)) = &sent.last_unknown {
            let at = at.into_std();
            let mut last = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_ref().is_none_or(|(latest, _)| *latest < at) {
                *last = Some((at, format!("{} {}: {how}", call.method, call.path)));
            }
        }
    }

    /// How many times a write was sent again (no answer, or a 429, 502, 503 or 504).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    async fn send(&self, base: usize, request: &Request<'_>, policy: &RetryPolicy) -> Option<Sent> {
        let call = request.call().ok()?;
        let sent = self.transport.send(&call, base, policy).await;
        self.note(request, &sent);
        Some(sent)
    }

    /// Sends once to the `base`-th URL (reads).
    pub async fn once(&self, base: usize, request: &Request<'_>) -> Reply {
        match self.send(base, request, &RetryPolicy::never()).await {
            Some(sent) => Reply::from_sent(sent),
            None => not_sent(),
        }
    }

    /// Sends a write with a fresh Idempotency-Key, and again with the same key while the
    /// outcome is unknown, each time to the next URL (as a load balancer would move on from
    /// a replica that died): the service applies it at most once, and answers a retry with
    /// the first answer.
    pub async fn write(&self, base: usize, request: Request<'_>) -> Reply {
        match self.send(base, &request, &self.writes).await {
            Some(sent) => {
                self.retries
                    .fetch_add(u64::from(sent.attempts - 1), Ordering::Relaxed);
                Reply::from_sent(sent)
            }
            None => not_sent(),
        }
    }

    /// Opens a streaming answer (Server-Sent Events), starting at the `base`-th URL and
    /// moving on to the next while there is no answer (as writes do): the response with
    /// its body unread, or how opening ended.
    pub async fn open_stream(
        &self,
        base: usize,
        request: &Request<'_>,
    ) -> Result<reqwest::Response, Reply> {
        let call = request.call().map_err(|_| not_sent())?;
        self.streams
            .open(&call, base, &self.writes)
            .await
            .map_err(|sent| {
                self.note(request, &sent);
                Reply::from_sent(sent)
            })
    }

    /// A read at the end of a run, from whichever replica answers (some may just have
    /// died), starting with the first.
    pub async fn read_anywhere(&self, request: &Request<'_>) -> Reply {
        match self.send(0, request, &self.reads_at_end).await {
            Some(sent) => Reply::from_sent(sent),
            None => not_sent(),
        }
    }
}

/// A request that could not be put on the wire (a header HTTP does not allow): refused
/// here, so nothing happened.
fn not_sent() -> Reply {
    Reply::Refused {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request".to_owned(),
    }
}
