//! Events: `GET /events` pages through a pool's change log; `GET /events/stream` follows
//! it live as Server-Sent Events, resuming after `Last-Event-ID`.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{LastEventId, PathParams, QueryParams};
use super::reply;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::model::{self, EventPage};
use crate::names::{PoolName, Tenant};
use crate::state::AppState;
use crate::store::{EventId, Followed};
use leasehold_wire::numbers::PageLimit;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Start after this event: an event's `id`, or the previous page's `next_after`.
    /// Without it, from the oldest event kept.
    after: Option<EventId>,
    /// Default 100.
    limit: Option<PageLimit>,
}

/// A page of the pool's events, oldest first: every change to one of its items, with the
/// state and version it left and the holder and token it concerned. The audit trail
/// ("who held case X, and when"). The pool keeps about its last `max_events` (10,000 by
/// default); deleting the pool deletes them.
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}/events",
    tag = "events",
    params(("pool" = PoolName, Path), EventsQuery),
    responses(
        (status = 200, description = "A page of events; an empty page means none newer yet (poll again with the same `next_after`)", body = EventPage),
        (status = 404, description = "`not_found`: no such pool"),
    )
)]
pub async fn list_events(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<PoolName>,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Response, ApiError> {
    let after = query.after;
    let page = app
        .store()
        .pool(&tenant, &pool)
        .list_events(after, query.limit.unwrap_or_default().get())
        .await?;
    let next_after = page.events.last().map(|e| e.id).or(after);
    let events = EventPage {
        events: page.events.iter().map(model::event).collect(),
        next_after: next_after.map(|id| id.to_string()),
        trimmed: page.trimmed,
    };
    Ok(reply(StatusCode::OK, &events, false))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this event; `Last-Event-ID` takes precedence. Without either, from the
    /// oldest event kept.
    after: Option<EventId>,
}

/// The pool's events, live, as Server-Sent Events (`text/event-stream`): first those
/// after `Last-Event-ID` (or `after`), then each new one as it happens (within about half
/// a second). Each SSE event has the event's `id`, its `type` as the event name, and the
/// event as JSON data, so a browser's `EventSource` resumes where it left off by itself.
/// An SSE event named `trimmed` (no id, data `{}`) says events were dropped by the cap
/// before they could be sent. A comment every 15 s keeps idle connections open; the
/// stream ends when the pool is deleted, when the server stops, when its key is revoked
/// (at the reload of the key file), and after at most `--stream-max-secs` (an hour by
/// default): resume with `Last-Event-ID`.
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}/events/stream",
    tag = "events",
    params(
        ("pool" = PoolName, Path),
        StreamQuery,
        ("Last-Event-ID" = Option<EventId>, Header, description = "The id of the last event received: resume after it (empty: none)"),
    ),
    responses(
        (status = 200, description = "A stream of events that does not end by itself", content_type = "text/event-stream", body = String),
        (status = 404, description = "`not_found`: no such pool"),
    )
)]
pub async fn stream_events(
    State(app): State<AppState>,
    caller: Caller,
    PathParams(pool): PathParams<PoolName>,
    QueryParams(query): QueryParams<StreamQuery>,
    LastEventId(resume): LastEventId,
) -> Result<Response, ApiError> {
    let after = resume.or(query.after);
    let follower = app
        .store()
        .pool(&caller.tenant, &pool)
        .follow_events(after)
        .await?;
    // A live stream never ends by itself: end it when the process stops (so that it
    // can), when its key is revoked, and after its longest lifetime.
    let stopped = app.store().stopped_waiting();
    let lifetime = app.stream_max();
    let end = async move {
        tokio::select! {
            () = stopped => {}
            () = app.auth().revoked(&caller) => {}
            () = tokio::time::sleep(lifetime) => {}
        }
    };
    let events = futures::stream::unfold(follower, |mut follower| async move {
        let next = follower.next().await?;
        Some((Ok::<_, Infallible>(sse_event(next)), follower))
    })
    .take_until(end);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn sse_event(next: Followed) -> SseEvent {
    match next {
        Followed::Trimmed => SseEvent::default().event("trimmed").data("{}"),
        Followed::Event(record) => {
            let event = SseEvent::default()
                .id(record.id.to_string())
                .event(record.kind.as_str());
            match serde_json::to_string(&model::event(&record)) {
                Ok(json) => event.data(json),
                Err(_) => event.comment("unencodable event"),
            }
        }
    }
}
