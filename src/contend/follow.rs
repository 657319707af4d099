//! The run's follower of its pool's live event stream: one task that keeps what each
//! message said and when it came, for the event checker ([`crate::check::events`]).
//!
//! Each connection goes to the next URL, so a run over several replicas follows each of
//! them in turn; after a cut (a replica killed, a connection reset, an answer that never
//! came), the next connection resumes after the last event received (`Last-Event-ID`), as
//! any careful follower does. It starts from the oldest event kept.

use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use reqwest::Method;
use tokio::sync::oneshot;

use super::http::Request;
use super::workload::Workload;
use crate::check::{Delivered, Delivery};
use crate::client;

/// How long to wait before connecting again after a connection that brought nothing (or
/// could not be opened), so a service that keeps refusing is not called in a tight loop.
const PAUSE: Duration = Duration::from_millis(200);

/// What the follower received.
#[derive(Debug, Default)]
pub struct Received {
    /// Every message, in the order received.
    pub deliveries: Vec<Delivery>,
    /// How many connections were opened.
    pub connections: usize,
}

impl Received {
    /// How many events were delivered (not counting `trimmed` notices).
    pub fn events(&self) -> usize {
        self.deliveries
            .iter()
            .filter(|d| matches!(d.delivered, Delivered::Event(_)))
            .count()
    }
}

/// Follows the run's pool until `stop` fires (or its sender is dropped).
pub async fn follow(work: Arc<Workload>, stop: oneshot::Receiver<()>) -> Received {
    let mut follower = Follower {
        work,
        last: None,
        received: Received::default(),
    };
    tokio::select! {
        _ = stop => {}
        () = follower.follow() => {}
    }
    follower.received
}

struct Follower {
    work: Arc<Workload>,
    /// The id of the last event received: where the next connection resumes.
    last: Option<String>,
    received: Received,
}

impl Follower {
    /// Connects, reads until the connection ends, and connects again, for ever.
    async fn follow(&mut self) {
        loop {
            let before = self.received.deliveries.len();
            self.connect().await;
            if self.received.deliveries.len() == before {
                tokio::time::sleep(PAUSE).await;
            }
        }
    }

    /// One connection, to the next URL, until it ends or breaks.
    async fn connect(&mut self) {
        let base = self.received.connections;
        self.received.connections += 1;
        let mut headers = vec![("accept", "text/event-stream".to_owned())];
        if let Some(last) = &self.last {
            headers.push(("last-event-id", last.clone()));
        }
        let request = Request {
            method: Method::GET,
            path: format!("/v1/pools/{}/events/stream", self.work.pool),
            body: None,
            headers,
        };
        let response = match self.work.http.open_stream(base, &request).await {
            Ok(response) => response,
            Err(reply) => {
                tracing::debug!(?reply, "cannot open the event stream");
                return;
            }
        };
        let mut messages = response.bytes_stream().eventsource();
        while let Some(message) = messages.next().await {
            match message {
                Ok(message) => self.take(message),
                Err(e) => {
                    tracing::debug!(error = %e, "the event stream broke");
                    return;
                }
            }
        }
    }

    /// Keeps what one message said, with when it came.
    fn take(&mut self, message: eventsource_stream::Event) {
        let received_us = self.work.history.now_us();
        let delivered = if message.event == "trimmed" {
            Delivered::Trimmed
        } else {
            match serde_json::from_str::<client::Event>(&message.data) {
                Ok(event) => Delivered::Event(event),
                Err(_) => Delivered::Unreadable {
                    id: message.id.clone(),
                    data: message.data,
                },
            }
        };
        if !message.id.is_empty() {
            self.last = Some(message.id);
        }
        self.received.deliveries.push(Delivery {
            received_us,
            delivered,
        });
    }
}
