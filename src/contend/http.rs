//! One request as a client of Leasehold makes it: bounded in time, retried with the same
//! `Idempotency-Key` while its outcome is unknown, and classified the way the history
//! checkers need (ok, refused, or unknown: it may have happened).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// How often a request whose outcome is unknown is sent again (same Idempotency-Key).
const ATTEMPTS: u32 = 4;
/// The first pause before sending again; it doubles each time, or follows Retry-After.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause a Retry-After may ask for.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

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

/// A request to send (and maybe send again), by path: the base URL is the client's.
pub struct Request<'a> {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub headers: Vec<(&'a str, String)>,
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
    client: reqwest::Client,
    urls: Vec<String>,
    key: Option<String>,
    retries: Arc<AtomicU64>,
}

impl Http {
    pub fn new(urls: Vec<String>, key: Option<String>, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Http {
            client,
            urls,
            key,
            retries: Arc::default(),
        })
    }

    /// How many times a write was sent again after an unknown outcome.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Sends once to the `base`-th URL (reads, and writes that need no retry).
    pub async fn once(&self, base: usize, request: &Request<'_>) -> Reply {
        let url = format!("{}{}", self.urls[base % self.urls.len()], request.path);
        let mut builder = self.client.request(request.method.clone(), url);
        if let Some(key) = &self.key {
            builder = builder.bearer_auth(key);
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => {
                return Reply::Unknown {
                    cause: transport_cause(&e),
                };
            }
        };
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_matches('"').parse().ok());
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body: Value = match response.bytes().await {
            Ok(bytes) if bytes.is_empty() => Value::Null,
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            Err(e) => {
                return Reply::Unknown {
                    cause: transport_cause(&e),
                };
            }
        };
        if status.is_success() {
            Reply::Ok { etag, body }
        } else if status.is_server_error() {
            let code = body["code"].as_str().unwrap_or("server_error");
            let hint = if retry_after.is_some() {
                ""
            } else {
                " without Retry-After"
            };
            Reply::Unknown {
                cause: format!("{} {code}{hint}", status.as_u16()),
            }
        } else {
            Reply::Refused {
                status,
                code: body["code"].as_str().unwrap_or("unknown").to_owned(),
            }
        }
    }

    /// Sends a write with a fresh Idempotency-Key, and again with the same key while the
    /// outcome is unknown, each time to the next URL (as a load balancer would move on from
    /// a replica that died): the service applies it at most once, and answers a retry with
    /// the first answer.
    pub async fn write(&self, base: usize, mut request: Request<'_>) -> Reply {
        request
            .headers
            .push(("idempotency-key", uuid::Uuid::new_v4().to_string()));
        let mut backoff = FIRST_BACKOFF;
        let mut reply = self.once(base, &request).await;
        for attempt in 1..ATTEMPTS {
            let Reply::Unknown { .. } = reply else {
                break;
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            reply = self.once(base + attempt as usize, &request).await;
        }
        reply
    }
}
