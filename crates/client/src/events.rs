//! Events: a page of a pool's change log, and [`EventStream`], which follows it live over
//! Server-Sent Events and reconnects by itself.
//!
//! The stream resumes where it left off: every reconnection carries the id of the last
//! event it yielded as `Last-Event-ID`, so an event is yielded once, in order, whether the
//! connection broke, a replica stopped, or the service answered 503 for a while. It ends
//! when the service says the pool is not there (404), which is how a stream ended by the
//! pool's deletion shows: the next connection is refused.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::{Method, StatusCode};

use super::transport::Call;
use super::{Client, Error, Event, EventPage, ProblemCode, path};

/// What an [`EventStream`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// The next event.
    Event(Event),
    /// Events after the last one yielded were dropped by the pool's cap before they could
    /// be sent: what follows starts at the oldest event kept, and what came between is
    /// lost.
    Trimmed,
}

impl Client {
    /// `GET /v1/pools/{pool}/events`: up to `limit` (1 to 1000, default 100) of the pool's
    /// events after the one with id `after` (from the oldest kept if `None`), oldest
    /// first. Pass the page's `next_after` for the next page.
    pub async fn list_events(
        &self,
        pool: &str,
        after: Option<&str>,
        limit: Option<u64>,
    ) -> Result<EventPage, Error> {
        let mut query = Vec::new();
        if let Some(after) = after {
            query.push(("after", after.to_owned()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        self.call(Call::new(
            Method::GET,
            path(&["v1", "pools", pool, "events"], &query),
        ))
        .await
    }

    /// `GET /v1/pools/{pool}/events/stream`: the pool's events after the one with id
    /// `after` (from the oldest kept if `None`), then each new one as it happens (the
    /// service sends them within about half a second), for as long as the pool exists.
    ///
    /// The stream connects when first polled. A connection that breaks or ends is opened
    /// again at once, resuming after the last event yielded (`Last-Event-ID`); opening is
    /// retried under the client's [`RetryPolicy`](super::RetryPolicy) (no answer, 429,
    /// 502–504, with backoff and `Retry-After`), and connections that keep ending without
    /// an event are opened again after the same backoff. A connection silent for longer
    /// than the client's read timeout (its `timeout` plus 30 s; the service sends a
    /// keep-alive every 15 s) counts as broken.
    ///
    /// It yields `Err` and ends when the first connection is refused (404 `not_found` for
    /// a pool that does not exist, 401, …) or the retry policy gives up on reopening: call
    /// again with [`EventStream::last_event_id`] to go on. It ends without an error once a
    /// pool it was following is gone (deleted). An event this client cannot read (of a
    /// newer server's type) is yielded as `Err(Error::Unexpected)`, and the stream goes on.
    pub fn follow_events(&self, pool: &str, after: Option<&str>) -> EventStream {
        let last = Arc::new(Mutex::new(after.map(str::to_owned)));
        let following = Following {
            client: self.clone(),
            pool: pool.to_owned(),
            last: last.clone(),
            body: None,
            opened: false,
            idle_ends: 0,
            over: false,
        };
        let inner = futures::stream::unfold(following, |mut following| async move {
            let next = following.next().await?;
            Some((next, following))
        })
        .fuse();
        EventStream {
            inner: Box::pin(inner),
            last,
        }
    }
}

/// The live events of a pool; see [`Client::follow_events`].
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = Result<Followed, Error>> + Send>>,
    last: Arc<Mutex<Option<String>>>,
}

impl EventStream {
    /// The id of the last event yielded (or the `after` the stream started from): where
    /// a new stream goes on from this one.
    pub fn last_event_id(&self) -> Option<String> {
        match self.last.lock() {
            Ok(last) => last.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("last_event_id", &self.last_event_id())
            .finish_non_exhaustive()
    }
}

impl Stream for EventStream {
    type Item = Result<Followed, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The parsed body of one open connection.
type Body = Pin<
    Box<
        dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<reqwest::Error>>>
            + Send,
    >,
>;

/// The state behind an [`EventStream`].
struct Following {
    client: Client,
    pool: String,
    /// The id to resume after, shared with the [`EventStream`] for `last_event_id`.
    last: Arc<Mutex<Option<String>>>,
    /// The open connection, if any.
    body: Option<Body>,
    /// A connection has been opened: a 404 from now on means the pool has gone.
    opened: bool,
    /// Connections in a row that ended without yielding anything: the next one waits
    /// the retry policy's backoff first, so a service that keeps closing streams at once
    /// is not called in a tight loop.
    idle_ends: u32,
    /// Nothing more to yield.
    over: bool,
}

impl Following {
    async fn next(&mut self) -> Option<Result<Followed, Error>> {
        loop {
            if self.over {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                match self.open().await {
                    Ok(body) => {
                        self.opened = true;
                        self.body = Some(body);
                        continue;
                    }
                    Err(e) if self.opened && e.code() == Some(ProblemCode::NotFound) => {
                        self.over = true;
                        return None;
                    }
                    Err(e) => {
                        self.over = true;
                        return Some(Err(e));
                    }
                }
            };
            match body.next().await {
                Some(Ok(sse)) => {
                    if let Some(next) = self.read(sse) {
                        self.idle_ends = 0;
                        return Some(next);
                    }
                }
                // Broke (reset, timed out, cut mid-event) or ended (the pool was deleted,
                // or the replica is stopping): open again, after the last event yielded.
                Some(Err(e)) => {
                    tracing::debug!(pool = %self.pool, error = %e, "event stream broke");
                    self.ended();
                }
                None => self.ended(),
            }
        }
    }

    fn ended(&mut self) {
        self.body = None;
        self.idle_ends = self.idle_ends.saturating_add(1);
    }

    /// One SSE event as what it tells, if anything.
    fn read(&mut self, sse: eventsource_stream::Event) -> Option<Result<Followed, Error>> {
        if sse.event == "trimmed" {
            return Some(Ok(Followed::Trimmed));
        }
        let event = serde_json::from_str::<Event>(&sse.data);
        // Past this event whether or not it can be read, so it is not sent again.
        let id = match &event {
            Ok(event) => event.id.clone(),
            Err(_) => sse.id.clone(),
        };
        if !id.is_empty() {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
        }
        Some(match event {
            Ok(event) => Ok(Followed::Event(event)),
            Err(e) => Err(Error::Unexpected {
                status: StatusCode::OK.as_u16(),
                detail: format!("event {}: {e}", sse.id),
            }),
        })
    }

    /// Opens a connection that resumes after the last event yielded.
    async fn open(&mut self) -> Result<Body, Error> {
        let policy = self.client.retry_policy().clone();
        if self.idle_ends > 1 {
            tokio::time::sleep(policy.delay(self.idle_ends - 2, None)).await;
        }
        let mut call = Call::new(
            Method::GET,
            path(&["v1", "pools", &self.pool, "events", "stream"], &[]),
        )
        .header("accept", "text/event-stream")
        .map_err(Error::Invalid)?;
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(last) = last {
            call = call
                .header("last-event-id", &last)
                .map_err(Error::Invalid)?;
        }
        let response = self.client.open(call, &policy).await?;
        Ok(Box::pin(response.bytes_stream().eventsource()))
    }
}
