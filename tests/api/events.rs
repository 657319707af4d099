//! The event log: `GET /v1/pools/{pool}/events` pages through every change to a pool's
//! items (what it left the item as, who it concerned, when), and
//! `GET /v1/pools/{pool}/events/stream` follows it live as Server-Sent Events, on any
//! replica, resuming after `Last-Event-ID`. The tests that count Redis's work, or take a
//! right away from the app's Redis user, have a redis-server of their own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::helpers::*;
use leasehold::names::PoolName;
use reqwest::Method;
use serde_json::{Value, json};

/// Long enough for anything here to happen (a shared reader looks every 500 ms).
const WAIT: Duration = Duration::from_secs(15);

/// A lease short enough to expire within a test.
const SHORT_LEASE_MS: u64 = 150;

/// How many events a pool keeps by default (`max_events`), and how many more it may hold
/// for a while: the oldest go 1% of the cap at a time (`event` in `lua/lib/pool.lua`).
const KEPT: u64 = 10_000;
const KEPT_SLACK: u64 = 100;

// ---------------------------------------------------------------------------------------
// Reading the log

fn events_path(pool: &str, query: &str) -> String {
    if query.is_empty() {
        format!("/v1/pools/{pool}/events")
    } else {
        format!("/v1/pools/{pool}/events?{query}")
    }
}

/// One page of `GET /events?{query}` (asserts 200).
async fn page(app: &TestApp, pool: &str, query: &str) -> Value {
    app.get(&events_path(pool, query)).await.expect(200)
}

fn events_of(page: &Value) -> Vec<Value> {
    page["events"].as_array().expect("events").clone()
}

fn id_of(event: &Value) -> String {
    event["id"].as_str().expect("an event id").to_owned()
}

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(id_of).collect()
}

/// Every event after `after` (from the oldest kept if none), following `next_after` page
/// by page with `limit`, until a page comes back empty; asserts what each page says of
/// `next_after` and that nothing was trimmed.
async fn read_all(app: &TestApp, pool: &str, after: Option<&str>, limit: u64) -> Vec<Value> {
    let mut after = after.map(str::to_owned);
    let mut all = Vec::new();
    loop {
        let query = match &after {
            Some(after) => format!("after={after}&limit={limit}"),
            None => format!("limit={limit}"),
        };
        let page = page(app, pool, &query).await;
        assert_eq!(page["trimmed"], false, "{page:#?}");
        let events = events_of(&page);
        assert!(events.len() as u64 <= limit, "{} > {limit}", events.len());
        let Some(last) = events.last() else {
            assert_eq!(
                page["next_after"],
                json!(after),
                "an empty page echoes after"
            );
            return all;
        };
        assert_eq!(page["next_after"], last["id"], "next_after is the last id");
        after = Some(id_of(last));
        all.extend(events);
    }
}

/// Reads a pool's log step by step: each call answers the events since the previous one.
struct Log<'a> {
    app: &'a TestApp,
    pool: String,
    after: Option<String>,
}

impl<'a> Log<'a> {
    fn new(app: &'a TestApp, pool: &str) -> Log<'a> {
        Log {
            app,
            pool: pool.to_owned(),
            after: None,
        }
    }

    async fn since_last(&mut self) -> Vec<Value> {
        let events = read_all(self.app, &self.pool, self.after.as_deref(), 1000).await;
        if let Some(last) = events.last() {
            self.after = Some(id_of(last));
        }
        events
    }

    /// The one event the last step made.
    async fn one(&mut self) -> Value {
        let events = self.since_last().await;
        assert_eq!(events.len(), 1, "one change, one event: {events:#?}");
        events[0].clone()
    }
}

/// The milliseconds of an event id (`<ms>-<seq>`).
fn id_ms(id: &str) -> i64 {
    id.split_once('-')
        .and_then(|(ms, _)| ms.parse().ok())
        .unwrap_or_else(|| panic!("not an event id: {id}"))
}

/// An id as two numbers, to compare ids by the order of the log.
fn id_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id
        .split_once('-')
        .unwrap_or_else(|| panic!("not an event id: {id}"));
    (
        ms.parse().expect("ms digits"),
        seq.parse().expect("seq digits"),
    )
}

/// A time as the API writes it (RFC 3339), in ms since the epoch.
fn time_ms(time: &Value) -> i64 {
    time.as_str()
        .unwrap_or_else(|| panic!("not a time: {time}"))
        .parse::<jiff::Timestamp>()
        .expect("RFC 3339")
        .as_millisecond()
}

fn at_ms(event: &Value) -> i64 {
    time_ms(&event["at"])
}

/// Asserts that `event` says `kind` happened to `item` and left it as `item` shows it
/// (state and version), naming `holder` and `token`; and that it has exactly the fields
/// the contract names, `at` being the time of its id.
#[track_caller]
fn assert_event(event: &Value, kind: &str, item: &Value, holder: Option<&str>, token: Option<u64>) {
    let fields: Vec<&str> = event
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "id",
            "type",
            "item",
            "state",
            "version",
            "holder",
            "token",
            "at",
            "lease_expires_at"
        ],
        "{event:#?}"
    );
    assert_eq!(event["type"], kind, "{event:#?}");
    assert_eq!(event["item"], item["id"], "{event:#?}");
    assert_eq!(event["state"], item["state"], "{event:#?} vs {item:#?}");
    assert_eq!(event["version"], item["version"], "{event:#?} vs {item:#?}");
    assert_eq!(event["holder"], json!(holder), "{event:#?}");
    assert_eq!(event["token"], json!(token), "{event:#?}");
    if kind == "expired" || kind == "delay_over" {
        // The moment of the fact, recorded when it was applied.
        assert!(at_ms(event) <= id_ms(&id_of(event)), "{event:#?}");
        if kind == "expired" {
            assert_eq!(event["lease_expires_at"], event["at"], "{event:#?}");
        }
    } else {
        assert_eq!(at_ms(event), id_ms(&id_of(event)), "{event:#?}");
        let expires = if item["state"] == "leased" {
            item["lease_expires_at"].clone()
        } else {
            Value::Null
        };
        assert_eq!(
            event["lease_expires_at"], expires,
            "{event:#?} vs {item:#?}"
        );
    }
}

fn token(lease: &Value) -> u64 {
    lease["token"].as_u64().expect("a numeric token")
}

fn item_path(pool: &str, id: &str) -> String {
    format!("/v1/pools/{pool}/items/{id}")
}

/// Claims the named item for `holder` with a lease of `lease_ms`.
async fn claim_for(app: &TestApp, pool: &str, id: &str, holder: &str, lease_ms: u64) -> Value {
    app.post(
        &action_path(pool, id, "claim"),
        json!({ "holder": holder, "lease_ms": lease_ms }),
    )
    .await
    .expect(200)
}

/// Waits until Redis's clock, the one leases and delays end by, is past `ms`.
async fn wait_for_redis_clock_past(ms: i64) {
    eventually(WAIT, "Redis's clock", async || redis_now_ms() > ms).await;
}

fn events_key(app: &TestApp, pool: &str) -> String {
    leasehold::store::keys::pool_events(&app.tenant, &PoolName::parse("pool", pool).expect("pool"))
}

/// Sends `method path` as the second tenant.
async fn as_other(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.other_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    app.send(request).await
}

// ---------------------------------------------------------------------------------------
// Server-Sent Events, parsed here

/// One Server-Sent Event as a client gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

/// A client of a `text/event-stream`: blocks of `field: value` lines, a blank line ending
/// each; `:` lines are comments (keep-alives); `data` lines are joined by newlines.
pub struct SseClient {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl SseClient {
    /// The next event; `None` once the server has ended the stream.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("SSE is UTF-8");
                match parse_sse_block(&block) {
                    Some(event) => return Some(event),
                    None => continue,
                }
            }
            match self.response.chunk().await.expect("the stream reads") {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => {
                    assert!(
                        self.buffer.iter().all(u8::is_ascii_whitespace),
                        "the stream ended inside an event: {:?}",
                        String::from_utf8_lossy(&self.buffer)
                    );
                    return None;
                }
            }
        }
    }

    /// The next event, which must come within `WAIT`.
    pub async fn expect_event(&mut self) -> Sse {
        tokio::time::timeout(WAIT, self.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
    }

    /// The next `count` events.
    async fn expect_events(&mut self, count: usize) -> Vec<Sse> {
        let mut events = Vec::new();
        for _ in 0..count {
            events.push(self.expect_event().await);
        }
        events
    }
}

/// One block of lines; `None` for a block with no data (only comments).
fn parse_sse_block(block: &str) -> Option<Sse> {
    let (mut id, mut event, mut data) = (None, None, Vec::new());
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value),
            other => panic!("an SSE field this API does not send: {other:?} in {block:?}"),
        }
    }
    if data.is_empty() {
        return None;
    }
    Some(Sse {
        id,
        event: event.unwrap_or_else(|| "message".to_owned()),
        data: data.join("\n"),
    })
}

/// `GET /events/stream` with `?after=` and `Last-Event-ID` when given.
fn stream_request(
    app: &TestApp,
    pool: &str,
    after: Option<&str>,
    last_event_id: Option<&str>,
) -> reqwest::RequestBuilder {
    let path = match after {
        Some(after) => format!("/v1/pools/{pool}/events/stream?after={after}"),
        None => format!("/v1/pools/{pool}/events/stream"),
    };
    let mut request = app
        .request(Method::GET, &path)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request
}

/// Opens the pool's stream on `app` (asserts 200 and the content type).
pub async fn follow(
    app: &TestApp,
    pool: &str,
    after: Option<&str>,
    last_event_id: Option<&str>,
) -> SseClient {
    let response = stream_request(app, pool, after, last_event_id)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(content_type, "text/event-stream");
    SseClient {
        response,
        buffer: Vec::new(),
    }
}

/// Asserts that an SSE event carries `event` of the log: its id, its type as the event
/// name, and the event itself as the data.
#[track_caller]
fn assert_sse_is(sse: &Sse, event: &Value) {
    assert_eq!(sse.id.as_deref(), event["id"].as_str(), "{sse:#?}");
    assert_eq!(sse.event, event["type"].as_str().expect("type"), "{sse:#?}");
    let data: Value = serde_json::from_str(&sse.data).expect("the data is JSON");
    assert_eq!(&data, event, "{sse:#?}");
}

// ---------------------------------------------------------------------------------------
// What the log records

#[tokio::test]
async fn every_change_to_an_item_is_one_event_saying_what_it_left() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    let mut log = Log::new(&app, p);

    // Added by the bulk add, in the order given.
    app.add_items(p, &["a", "b"]).await;
    let added = log.since_last().await;
    assert_eq!(added.len(), 2, "{added:#?}");
    assert_event(&added[0], "added", &app.item(p, "a").await, None, None);
    assert_event(&added[1], "added", &app.item(p, "b").await, None, None);

    // Added by a PUT that creates; written by a PUT and a PATCH of an existing item.
    app.put(&item_path(p, "c"), json!({"data": {"n": 1}}))
        .await
        .expect(201);
    assert_event(
        &log.one().await,
        "added",
        &app.item(p, "c").await,
        None,
        None,
    );
    app.put(&item_path(p, "c"), json!({"data": {"n": 2}}))
        .await
        .expect(200);
    assert_event(
        &log.one().await,
        "written",
        &app.item(p, "c").await,
        None,
        None,
    );
    app.patch(&item_path(p, "c"), json!({"data": {"m": 3}}))
        .await
        .expect(200);
    assert_event(
        &log.one().await,
        "written",
        &app.item(p, "c").await,
        None,
        None,
    );

    // Claimed, with the lease's token; a renewal keeps it.
    let lease = claim_item(&app, p, "a", "alice").await;
    let t1 = token(&lease);
    let claimed = log.one().await;
    assert_event(
        &claimed,
        "claimed",
        &app.item(p, "a").await,
        Some("alice"),
        Some(t1),
    );
    app.post(
        &action_path(p, "a", "renew"),
        json!({"holder": "alice", "token": t1}),
    )
    .await
    .expect(200);
    let renewed = log.one().await;
    assert_event(
        &renewed,
        "renewed",
        &app.item(p, "a").await,
        Some("alice"),
        Some(t1),
    );

    // Released into a delay: the event names who released; the delay's end is an event.
    let released = release(&app, p, &lease, json!({"delay_ms": 1000})).await;
    assert_eq!(released["state"], "delayed");
    let event = log.one().await;
    assert_event(&event, "released", &released, Some("alice"), Some(t1));
    wait_for_redis_clock_past(id_ms(&id_of(&event)) + 1000).await;
    let undelayed = app.item(p, "a").await;
    assert_eq!(undelayed["state"], "available");
    assert_event(&log.one().await, "delay_over", &undelayed, None, None);

    // Claimed again (a new token), completed.
    let lease = claim_item(&app, p, "a", "bob").await;
    let t2 = token(&lease);
    assert!(t2 > t1);
    assert_event(
        &log.one().await,
        "claimed",
        &app.item(p, "a").await,
        Some("bob"),
        Some(t2),
    );
    let done = complete(&app, p, &lease).await;
    assert_eq!(done["state"], "done");
    assert_event(
        &log.one().await,
        "completed",
        &app.item(p, "a").await,
        Some("bob"),
        Some(t2),
    );

    // Requeued from done.
    app.post(&action_path(p, "a", "requeue"), json!({}))
        .await
        .expect(200);
    assert_event(
        &log.one().await,
        "requeued",
        &app.item(p, "a").await,
        None,
        None,
    );

    // Assigned (a grant: the new holder and token), then unassigned (names who had it).
    let assigned = app
        .put(&action_path(p, "a", "holder"), json!({"holder": "carol"}))
        .await
        .expect(200);
    let t3 = token(&assigned);
    assert!(t3 > t2);
    assert_event(
        &log.one().await,
        "assigned",
        &app.item(p, "a").await,
        Some("carol"),
        Some(t3),
    );
    app.put(&action_path(p, "a", "holder"), json!({"holder": null}))
        .await
        .expect(200);
    assert_event(
        &log.one().await,
        "unassigned",
        &app.item(p, "a").await,
        Some("carol"),
        Some(t3),
    );

    // Expired: once Redis's clock has passed the lease, the first look at the item ends it.
    let short = claim_for(&app, p, "b", "dave", SHORT_LEASE_MS).await;
    let t4 = token(&short);
    // (Compared with the lease: a look at the item may already find it expired.)
    let leased = json!({
        "id": "b",
        "state": "leased",
        "version": short["version"],
        "lease_expires_at": short["lease_expires_at"],
    });
    assert_event(&log.one().await, "claimed", &leased, Some("dave"), Some(t4));
    let expires = time_ms(&short["lease_expires_at"]);
    wait_for_redis_clock_past(expires).await;
    let expired = app.item(p, "b").await;
    assert_eq!(expired["state"], "available");
    assert_event(
        &log.one().await,
        "expired",
        &expired,
        Some("dave"),
        Some(t4),
    );

    // Deleted: the state and version it had.
    let before = app.item(p, "c").await;
    app.delete(&item_path(p, "c")).await.expect(204);
    assert_event(&log.one().await, "deleted", &before, None, None);

    // The whole log, in the order of the changes, ids ascending.
    let all = read_all(&app, p, None, 1000).await;
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or(""),
                e["item"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("added", "a"),
            ("added", "b"),
            ("added", "c"),
            ("written", "c"),
            ("written", "c"),
            ("claimed", "a"),
            ("renewed", "a"),
            ("released", "a"),
            ("delay_over", "a"),
            ("claimed", "a"),
            ("completed", "a"),
            ("requeued", "a"),
            ("assigned", "a"),
            ("unassigned", "a"),
            ("claimed", "b"),
            ("expired", "b"),
            ("deleted", "c"),
        ]
    );
    assert!(
        all.windows(2)
            .all(|w| id_key(&id_of(&w[0])) < id_key(&id_of(&w[1]))),
        "ids ascend: {:?}",
        ids(&all)
    );
}

#[tokio::test]
async fn an_item_out_of_attempts_dies_and_the_log_says_so() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    app.put(&format!("/v1/pools/{p}"), json!({"max_attempts": 1}))
        .await
        .expect(201);
    app.add_items(p, &["x", "y"]).await;
    let mut log = Log::new(&app, p);
    log.since_last().await;

    // Released after its only attempt.
    let lease = claim_item(&app, p, "x", "alice").await;
    log.one().await;
    let dead = release(&app, p, &lease, json!({})).await;
    assert_eq!(dead["state"], "dead");
    assert_event(
        &log.one().await,
        "released",
        &app.item(p, "x").await,
        Some("alice"),
        Some(token(&lease)),
    );

    // Its only lease ran out.
    let short = claim_for(&app, p, "y", "bob", SHORT_LEASE_MS).await;
    log.one().await;
    let expires = time_ms(&short["lease_expires_at"]);
    wait_for_redis_clock_past(expires).await;
    let dead = app.item(p, "y").await;
    assert_eq!(dead["state"], "dead");
    assert_event(
        &log.one().await,
        "expired",
        &dead,
        Some("bob"),
        Some(token(&short)),
    );
}

#[tokio::test]
async fn who_held_an_item_and_when_is_answered_from_the_log() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    app.add_items(p, &["case-1", "other"]).await;

    // alice's lease runs out; bob takes it and gives it back; carol is assigned it and
    // finishes it. Someone else works on another item meanwhile.
    let from = redis_now_ms();
    let alice = claim_for(&app, p, "case-1", "alice", SHORT_LEASE_MS).await;
    let zed = claim_item(&app, p, "other", "zed").await;
    let expires = time_ms(&alice["lease_expires_at"]);
    wait_for_redis_clock_past(expires).await;
    let bob = claim_item(&app, p, "case-1", "bob").await;
    release(&app, p, &bob, json!({})).await;
    complete(&app, p, &zed).await;
    let carol = app
        .put(
            &action_path(p, "case-1", "holder"),
            json!({"holder": "carol"}),
        )
        .await
        .expect(200);
    app.post(
        &action_path(p, "case-1", "complete"),
        json!({"holder": "carol", "token": carol["token"]}),
    )
    .await
    .expect(200);
    let to = redis_now_ms();

    // Each hold of case-1: who, with which token, from when to when, and how it ended.
    let mut holds: Vec<(String, u64, i64, i64, String)> = Vec::new();
    for event in read_all(&app, p, None, 1000).await {
        if event["item"] != "case-1" {
            continue;
        }
        let holder = event["holder"].as_str().unwrap_or_default().to_owned();
        let token = event["token"].as_u64().unwrap_or_default();
        match event["type"].as_str().expect("type") {
            "claimed" | "assigned" => holds.push((holder, token, at_ms(&event), 0, String::new())),
            "released" | "completed" | "expired" | "unassigned" => {
                let hold = holds.last_mut().expect("a hold that ends was granted");
                assert_eq!((&hold.0, hold.1), (&holder, token), "{event:#?}");
                hold.3 = at_ms(&event);
                hold.4 = event["type"].as_str().unwrap_or_default().to_owned();
            }
            _ => {}
        }
    }
    let who: Vec<(&str, u64, &str)> = holds
        .iter()
        .map(|(holder, token, _, _, end)| (holder.as_str(), *token, end.as_str()))
        .collect();
    assert_eq!(
        who,
        [
            ("alice", token(&alice), "expired"),
            ("bob", token(&bob), "released"),
            ("carol", token(&carol), "completed"),
        ]
    );
    // Each hold starts and ends within the test, one after the other; alice's ended when
    // something first looked at case-1 after her expiry (bob's claim), not before expiry.
    let mut previous_end = from;
    for (holder, _, start, end, _) in &holds {
        assert!(
            previous_end <= *start && start <= end && *end <= to,
            "{holder}: {start}..{end} within {from}..{to}, after {previous_end}"
        );
        previous_end = *end;
    }
    assert!(
        holds[0].3 >= expires,
        "alice's lease ended after its expiry"
    );
}

#[tokio::test]
async fn a_replayed_write_adds_no_event() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    for _ in 0..2 {
        app.send(
            app.request(Method::POST, &format!("/v1/pools/{p}/items"))
                .header("Idempotency-Key", "add-once")
                .json(&json!({"items": [{"id": "a"}]})),
        )
        .await
        .expect(200);
    }
    let lease = app.claim(p, "alice").await.expect("a lease");
    for _ in 0..2 {
        app.send(
            app.request(Method::POST, &action_path(p, "a", "complete"))
                .header("Idempotency-Key", "complete-once")
                .json(&json!({"holder": "alice", "token": lease["token"]})),
        )
        .await
        .expect(200);
    }
    let kinds: Vec<Value> = read_all(&app, p, None, 1000)
        .await
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(
        kinds,
        [json!("added"), json!("claimed"), json!("completed")]
    );
}

// ---------------------------------------------------------------------------------------
// Paging

#[tokio::test]
async fn following_next_after_gives_every_event_once_in_order_whatever_the_limit() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    let names: Vec<String> = (0..30).map(|n| format!("i{n:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    app.add_items(p, &names).await;
    app.post(
        &format!("/v1/pools/{p}/claim"),
        json!({"holder": "alice", "count": 10}),
    )
    .await
    .expect(200);

    let whole = events_of(&page(&app, p, "limit=1000").await);
    assert_eq!(whole.len(), 40);
    let items: Vec<&str> = whole[..30]
        .iter()
        .map(|e| e["item"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(items, names, "added in the order given");
    assert!(whole[30..].iter().all(|e| e["type"] == "claimed"));
    assert!(
        whole
            .windows(2)
            .all(|w| id_key(&id_of(&w[0])) < id_key(&id_of(&w[1]))),
        "{:?}",
        ids(&whole)
    );
    for limit in [1, 3, 7, 39, 40, 1000] {
        let paged = read_all(&app, p, None, limit).await;
        assert_eq!(paged, whole, "pages of {limit}");
    }
    // From the middle: exactly what follows.
    let from_middle = read_all(&app, p, Some(&id_of(&whole[16])), 5).await;
    assert_eq!(from_middle, whole[17..]);
    // Without a limit: 100 at most.
    let first = page(&app, p, "").await;
    assert_eq!(events_of(&first), whole);
}

#[tokio::test]
async fn the_default_page_is_100_events() {
    let app = spawn_app().await;
    let pool = pool_name();
    let names: Vec<String> = (0..150).map(|n| format!("i{n:03}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    app.add_items(&pool, &names).await;
    let first = page(&app, &pool, "").await;
    let events = events_of(&first);
    assert_eq!(events.len(), 100);
    assert_eq!(events[99]["item"], "i099");
    assert_eq!(first["next_after"], events[99]["id"]);
    let next = page(&app, &pool, &format!("after={}", id_of(&events[99]))).await;
    assert_eq!(events_of(&next).len(), 50);
}

#[tokio::test]
async fn an_empty_page_gives_back_the_after_it_was_given() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    // A pool with no events yet.
    app.put(&format!("/v1/pools/{p}"), json!({}))
        .await
        .expect(201);
    assert_eq!(
        page(&app, p, "").await,
        json!({"events": [], "next_after": null, "trimmed": false})
    );
    assert_eq!(
        page(&app, p, "after=0-0").await,
        json!({"events": [], "next_after": "0-0", "trimmed": false})
    );
    app.add_items(p, &["a"]).await;
    let first = page(&app, p, "").await;
    let id = first["next_after"].as_str().expect("an id").to_owned();
    assert_eq!(
        page(&app, p, &format!("after={id}")).await,
        json!({"events": [], "next_after": id, "trimmed": false})
    );
    // An id past anything there is, up to the largest one may give.
    for after in [
        "99999999999999-0",
        "9999999999999999999-9999999999999999999",
    ] {
        assert_eq!(
            page(&app, p, &format!("after={after}")).await,
            json!({"events": [], "next_after": after, "trimmed": false})
        );
    }
    // Polling again with the same next_after finds what came since.
    app.add_items(p, &["b"]).await;
    let next = events_of(&page(&app, p, &format!("after={id}")).await);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["item"], "b");
}

#[tokio::test]
async fn a_limit_outside_1_to_1000_is_refused() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    for limit in ["0", "1001", "-1"] {
        let problem = app
            .get(&events_path(&pool, &format!("limit={limit}")))
            .await
            .expect_problem(400, "invalid_request");
        assert_eq!(problem["field"], "limit", "limit={limit}: {problem:#?}");
    }
    for limit in ["1", "1000"] {
        page(&app, &pool, &format!("limit={limit}")).await;
    }
}

#[tokio::test]
async fn an_after_that_is_no_event_id_is_refused() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    for after in [
        "",
        "5",
        "5-",
        "-5",
        "-",
        "x-1",
        "1-x",
        "1-2-3",
        "+",
        "%2B1-0",
        "1.5-0",
        "%201-0",
        "10000000000000000000-0",
        "1-10000000000000000000",
        "%EF%BC%91-0",
    ] {
        let problem = app
            .get(&events_path(&pool, &format!("after={after}")))
            .await
            .expect_problem(400, "invalid_request");
        assert_eq!(problem["field"], "after", "after={after}: {problem:#?}");
    }
    // Nineteen digits each is still an id.
    page(&app, &pool, "after=9999999999999999999-9999999999999999999").await;
}

#[tokio::test]
async fn unknown_query_fields_are_refused() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    for query in ["cursor=1.0", "from=0-0", "after=0-0&before=9-0"] {
        app.get(&events_path(&pool, query))
            .await
            .expect_problem(400, "invalid_request");
    }
    app.send(app.request(
        Method::GET,
        &format!("/v1/pools/{pool}/events/stream?limit=5"),
    ))
    .await
    .expect_problem(400, "invalid_request");
}

#[tokio::test]
async fn the_log_of_a_pool_that_does_not_exist_is_404() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.get(&events_path(&pool, ""))
        .await
        .expect_problem(404, "not_found");
    app.get(&events_path(&pool, "after=1-0&limit=5"))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn deleting_a_pool_deletes_its_log() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    app.add_items(p, &["a", "b"]).await;
    let key = events_key(&app, p);
    let mut redis = redis().connection();
    let exists = |redis: &mut TestConnection| -> bool {
        redis::cmd("EXISTS")
            .arg(&key)
            .query::<i64>(redis)
            .expect("EXISTS")
            == 1
    };
    assert!(exists(&mut redis), "the log is the stream {key}");
    let old = read_all(&app, p, None, 1000).await;

    app.delete(&format!("/v1/pools/{p}")).await.expect(204);
    app.get(&events_path(p, ""))
        .await
        .expect_problem(404, "not_found");
    assert!(!exists(&mut redis), "{key} is gone with its pool");

    // A pool made again under the name starts a log of its own.
    app.add_items(p, &["c"]).await;
    let new = read_all(&app, p, None, 1000).await;
    assert_eq!(new.len(), 1, "{new:#?}");
    assert_eq!(new[0]["item"], "c");
    assert!(id_key(&id_of(&new[0])) > id_key(&id_of(old.last().expect("events"))));
}

// ---------------------------------------------------------------------------------------
// The cap

/// Adds 10,500 items to a new pool, 1,000 a request: more changes than the log keeps.
/// Answers the id of the very first event, read before the cap dropped it.
async fn overflow(app: &TestApp, pool: &str) -> String {
    const ITEMS: usize = 10_500;
    let mut first = None;
    for start in (0..ITEMS).step_by(1000) {
        let items: Vec<Value> = (start..(start + 1000).min(ITEMS))
            .map(|n| json!({"id": format!("i{n:05}")}))
            .collect();
        app.post(&format!("/v1/pools/{pool}/items"), json!({"items": items}))
            .await
            .expect(200);
        if first.is_none() {
            let page = events_of(&page(app, pool, "limit=1").await);
            assert_eq!(page[0]["item"], "i00000");
            first = Some(id_of(&page[0]));
        }
    }
    first.expect("a first event")
}

#[tokio::test]
async fn the_log_keeps_about_the_last_10000_events_and_says_when_some_were_missed() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    let first = overflow(&app, p).await;

    let length: u64 = redis::cmd("XLEN")
        .arg(events_key(&app, p))
        .query(&mut redis().connection())
        .expect("XLEN");
    assert!(
        (KEPT..=KEPT + KEPT_SLACK).contains(&length),
        "{length} events kept"
    );

    // From the start: the oldest kept, nothing said missing (there is nothing before).
    let all = read_all(&app, p, None, 1000).await;
    assert_eq!(all.len() as u64, length);
    let oldest = &all[0];
    assert_ne!(oldest["item"], "i00000", "the first event was dropped");
    assert_eq!(all.last().expect("events")["item"], "i10499");
    let names: Vec<String> = all
        .iter()
        .map(|e| e["item"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (10_500 - all.len()..10_500)
        .map(|n| format!("i{n:05}"))
        .collect();
    assert_eq!(names, expected, "the newest are kept, in order");

    // After the first event, which is gone: events were missed, and the page starts at
    // the oldest kept.
    let missed = page(&app, p, &format!("after={first}&limit=5")).await;
    assert_eq!(missed["trimmed"], true, "{missed:#?}");
    let events = events_of(&missed);
    assert_eq!(&events[0], oldest);
    assert_eq!(events, all[..5]);
    // Reading on from there misses nothing more.
    let next = page(&app, p, &format!("after={}&limit=5", id_of(&events[4]))).await;
    assert_eq!(next["trimmed"], false);
    assert_eq!(events_of(&next), all[5..10]);
    // After the oldest kept: nothing missed.
    let kept = page(&app, p, &format!("after={}&limit=1", id_of(oldest))).await;
    assert_eq!(kept["trimmed"], false);
    assert_eq!(events_of(&kept), all[1..2]);
}

/// Adds `count` items named `<prefix><n>` in one request: one event each.
async fn add_batch(app: &TestApp, pool: &str, prefix: &str, count: usize) {
    let items: Vec<Value> = (0..count)
        .map(|n| json!({"id": format!("{prefix}{n:03}")}))
        .collect();
    app.post(&format!("/v1/pools/{pool}/items"), json!({"items": items}))
        .await
        .expect(200);
}

fn items_of(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["item"].as_str().expect("an item").to_owned())
        .collect()
}

/// `max_events` sets the cap: a pool of 20 keeps its last 20 events (a cap that small
/// trims at every change), and a reader that had seen one dropped is told so.
#[tokio::test]
async fn a_pool_keeps_as_many_events_as_its_max_events_says() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    let created = app
        .put(&format!("/v1/pools/{p}"), json!({"max_events": 20}))
        .await
        .expect(201);
    assert_eq!(created["config"]["max_events"], 20);
    app.add_items(p, &["first"]).await;
    let first = id_of(&events_of(&page(&app, p, "").await)[0]);
    add_batch(&app, p, "i", 50).await;

    let kept = read_all(&app, p, None, 1000).await;
    let expected: Vec<String> = (30..50).map(|n| format!("i{n:03}")).collect();
    assert_eq!(items_of(&kept), expected);
    let length: u64 = redis::cmd("XLEN")
        .arg(events_key(&app, p))
        .query(&mut redis().connection())
        .expect("XLEN");
    assert_eq!(length, 20);
    let missed = page(&app, p, &format!("after={first}")).await;
    assert_eq!(missed["trimmed"], true, "{missed:#?}");
    assert_eq!(events_of(&missed), kept);
}

/// Lowering `max_events` trims the log at once; 0 keeps none (and long-poll claims, which
/// do not read the log, still wake); raising it again starts keeping events again. On a
/// redis-server of its own, to tell when the waiting claim has tried.
#[tokio::test]
async fn lowering_max_events_trims_at_once_and_zero_keeps_no_log() {
    let (redis, app) = app_on_own_redis().await;
    let pool = pool_name();
    let p = pool.as_str();
    add_batch(&app, p, "i", 30).await;
    let all = read_all(&app, p, None, 1000).await;
    assert_eq!(all.len(), 30);

    let changed = app
        .put(&format!("/v1/pools/{p}"), json!({"max_events": 5}))
        .await
        .expect(200);
    assert_eq!(changed["config"]["max_events"], 5);
    assert_eq!(read_all(&app, p, None, 1000).await, all[25..]);
    let missed = page(&app, p, &format!("after={}", id_of(&all[0]))).await;
    assert_eq!(missed["trimmed"], true);

    app.put(&format!("/v1/pools/{p}"), json!({"max_events": 0}))
        .await
        .expect(200);
    assert!(read_all(&app, p, None, 1000).await.is_empty());
    let taken = app
        .post(
            &format!("/v1/pools/{p}/claim"),
            json!({"holder": "w", "count": 100}),
        )
        .await
        .expect(200);
    assert_eq!(taken["leases"].as_array().expect("leases").len(), 30);
    let before = scripts_run(&redis);
    let waiter = tokio::spawn({
        let (client, url, key) = (
            app.client.clone(),
            app.url(&format!("/v1/pools/{p}/claim")),
            app.key.clone(),
        );
        async move {
            let body: Value = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"holder": "w", "wait_ms": 20_000}))
                .send()
                .await
                .expect("answer")
                .json()
                .await
                .expect("json");
            body
        }
    });
    let deadline = Instant::now() + WAIT;
    while scripts_run(&redis) == before {
        assert!(Instant::now() < deadline, "the waiter never tried");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let added = Instant::now();
    app.add_items(p, &["late"]).await;
    let body = waiter.await.expect("the waiter");
    assert_eq!(body["leases"][0]["id"], "late", "{body:#?}");
    assert!(
        added.elapsed() < Duration::from_secs(3),
        "woken {:?} after the add, as by a timed retry",
        added.elapsed()
    );
    assert!(
        read_all(&app, p, None, 1000).await.is_empty(),
        "claims and adds wrote no event"
    );
    assert_eq!(
        app.get(&format!("/v1/pools/{p}")).await.expect(200)["config"]["max_events"],
        0
    );

    app.put(&format!("/v1/pools/{p}"), json!({"max_events": 10}))
        .await
        .expect(200);
    app.add_items(p, &["after"]).await;
    assert_eq!(items_of(&read_all(&app, p, None, 1000).await), ["after"]);
}

#[tokio::test]
async fn max_events_out_of_range_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    app.put(&format!("/v1/pools/{p}"), json!({"max_events": 7}))
        .await
        .expect(201);
    for bad in [-1, 100_001] {
        let problem = app
            .put(&format!("/v1/pools/{p}"), json!({"max_events": bad}))
            .await
            .expect_problem(400, "invalid_request");
        assert_eq!(problem["field"], "max_events", "{bad}: {problem:#?}");
    }
    for not_a_count in [json!(1.5), json!("10")] {
        app.put(
            &format!("/v1/pools/{p}"),
            json!({"max_events": not_a_count}),
        )
        .await
        .expect_problem(400, "invalid_request");
    }
    let pool = app.get(&format!("/v1/pools/{p}")).await.expect(200);
    assert_eq!(pool["config"]["max_events"], 7);
}

#[tokio::test]
async fn a_stream_resuming_from_a_dropped_event_says_trimmed_first() {
    let app = spawn_app().await;
    let replica = replica_of(&app, Options::default()).await;
    let pool = pool_name();
    let p = pool.as_str();
    let first = overflow(&app, p).await;
    let oldest = events_of(&page(&app, p, "limit=2").await);

    let mut stream = follow(&replica, p, None, Some(&first)).await;
    let trimmed = stream.expect_event().await;
    assert_eq!(
        trimmed,
        Sse {
            id: None,
            event: "trimmed".to_owned(),
            data: "{}".to_owned()
        }
    );
    let next = stream.expect_events(2).await;
    assert_sse_is(&next[0], &oldest[0]);
    assert_sse_is(&next[1], &oldest[1]);
}

// ---------------------------------------------------------------------------------------
// Tenants

#[tokio::test]
async fn another_tenant_cannot_read_a_pools_events() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    as_other(&app, Method::GET, &events_path(&pool, ""), None)
        .await
        .expect_problem(404, "not_found");
    let stream = app
        .client
        .get(app.url(&format!("/v1/pools/{pool}/events/stream")))
        .bearer_auth(&app.other_key);
    app.send(stream).await.expect_problem(404, "not_found");
}

#[tokio::test]
async fn the_same_pool_name_in_two_tenants_keeps_two_logs() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    app.add_items(p, &["mine"]).await;
    as_other(
        &app,
        Method::POST,
        &format!("/v1/pools/{p}/items"),
        Some(json!({"items": [{"id": "theirs"}, {"id": "also-theirs"}]})),
    )
    .await
    .expect(200);
    app.claim(p, "alice").await.expect("a lease");

    let mine: Vec<(Value, Value)> = read_all(&app, p, None, 1000)
        .await
        .iter()
        .map(|e| (e["type"].clone(), e["item"].clone()))
        .collect();
    assert_eq!(
        mine,
        [
            (json!("added"), json!("mine")),
            (json!("claimed"), json!("mine"))
        ]
    );
    let theirs = as_other(&app, Method::GET, &events_path(p, ""), None)
        .await
        .expect(200);
    let items: Vec<&Value> = theirs["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| &e["item"])
        .collect();
    assert_eq!(items, [&json!("theirs"), &json!("also-theirs")]);
}

// ---------------------------------------------------------------------------------------
// Following live, across replicas

#[tokio::test]
async fn a_follower_gets_the_backlog_then_live_events_and_resumes_on_another_replica() {
    let a = spawn_app().await;
    let b = replica_of(&a, Options::default()).await;
    let c = replica_of(&a, Options::default()).await;
    let pool = pool_name();
    let p = pool.as_str();

    // Changes through A; a follower on B gets them as backlog.
    a.add_items(p, &["x", "y", "z"]).await;
    let mut on_b = follow(&b, p, None, None).await;
    let mut seen = on_b.expect_events(3).await;
    assert_eq!(
        seen.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["added", "added", "added"]
    );

    // Then live, as they happen.
    let lease = a.claim(p, "alice").await.expect("a lease");
    seen.push(on_b.expect_event().await);
    complete(&a, p, &lease).await;
    seen.push(on_b.expect_event().await);
    assert_eq!(seen[3].event, "claimed");
    assert_eq!(seen[4].event, "completed");

    // B's follower goes away; changes go on meanwhile; a follower on C that gives the last
    // id it saw gets exactly what came after, then live again.
    drop(on_b);
    let last = seen.last().and_then(|e| e.id.clone()).expect("an id");
    a.add_items(p, &["w"]).await;
    let lease = a.claim(p, "bob").await.expect("a lease");
    let mut on_c = follow(&c, p, None, Some(&last)).await;
    seen.extend(on_c.expect_events(2).await);
    release(&a, p, &lease, json!({})).await;
    seen.push(on_c.expect_event().await);
    a.delete(&item_path(p, "z")).await.expect(204);
    seen.push(on_c.expect_event().await);

    // What the followers saw is the log, each event once, in order.
    let log = read_all(&a, p, None, 1000).await;
    assert_eq!(seen.len(), log.len(), "{seen:#?}");
    for (sse, event) in seen.iter().zip(&log) {
        assert_sse_is(sse, event);
    }
    // And nothing is sent twice: the next event is the next change.
    a.add_items(p, &["v"]).await;
    let next = on_c.expect_event().await;
    let newest = read_all(&a, p, Some(&id_of(log.last().expect("events"))), 1000).await;
    assert_eq!(newest.len(), 1);
    assert_sse_is(&next, &newest[0]);
}

#[tokio::test]
async fn last_event_id_takes_precedence_over_after() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    app.add_items(p, &["a", "b", "c"]).await;
    let log = read_all(&app, p, None, 1000).await;
    let (first, second) = (id_of(&log[0]), id_of(&log[1]));

    let mut by_after = follow(&app, p, Some(&second), None).await;
    assert_sse_is(&by_after.expect_event().await, &log[2]);
    let mut by_header = follow(&app, p, Some(&second), Some(&first)).await;
    assert_sse_is(&by_header.expect_event().await, &log[1]);
    assert_sse_is(&by_header.expect_event().await, &log[2]);
    // Without either: from the oldest kept; an empty Last-Event-ID is none.
    let mut from_start = follow(&app, p, None, None).await;
    assert_sse_is(&from_start.expect_event().await, &log[0]);
    let mut empty_header = follow(&app, p, None, Some("")).await;
    assert_sse_is(&empty_header.expect_event().await, &log[0]);
    let mut empty_header_after = follow(&app, p, Some(&first), Some("")).await;
    assert_sse_is(&empty_header_after.expect_event().await, &log[1]);
}

#[tokio::test]
async fn a_bad_last_event_id_or_after_is_refused_before_streaming() {
    let app = spawn_app().await;
    let pool = pool_name();
    let p = pool.as_str();
    app.add_items(p, &["a"]).await;
    for (after, header, field) in [
        (None, Some("nope"), "Last-Event-ID"),
        (None, Some("1-2-3"), "Last-Event-ID"),
        (Some("1-0"), Some("x"), "Last-Event-ID"),
        (Some("x"), None, "after"),
        (Some("10000000000000000000-0"), None, "after"),
    ] {
        let problem = app
            .send(stream_request(&app, p, after, header))
            .await
            .expect_problem(400, "invalid_request");
        assert_eq!(
            problem["field"], field,
            "{after:?} {header:?}: {problem:#?}"
        );
    }
}

#[tokio::test]
async fn the_stream_of_a_pool_that_does_not_exist_is_404() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.send(stream_request(&app, &pool, None, None))
        .await
        .expect_problem(404, "not_found");
    app.send(stream_request(&app, &pool, Some("1-0"), Some("2-0")))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn a_follower_sees_leases_expire_and_delays_end_with_nobody_touching_the_items() {
    let app = spawn_app().await;
    let replica = replica_of(&app, Options::default()).await;
    let pool = pool_name();
    let p = pool.as_str();
    app.add_items(p, &["a", "b"]).await;
    // Long enough to open the stream first; the ends then come while it is open.
    let lease = claim_for(&app, p, "a", "w1", 1500).await;
    let b = claim_for(&app, p, "b", "w2", 60_000).await;
    release(&app, p, &b, json!({"delay_ms": 1500})).await;
    let mut stream = follow(&replica, p, None, None).await;
    let backlog = stream.expect_events(5).await;
    let kinds: Vec<&str> = backlog.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["added", "added", "claimed", "claimed", "released"]);
    // Nothing but the stream asks anything: the ends still come, by Redis's clock.
    let mut ended = stream.expect_events(2).await;
    ended.sort_by(|x, y| x.event.cmp(&y.event));
    let data = |sse: &Sse| -> Value { serde_json::from_str(&sse.data).expect("JSON data") };
    let (delay_over, expired) = (data(&ended[0]), data(&ended[1]));
    assert_eq!(ended[0].event, "delay_over");
    assert_eq!(delay_over["item"], "b");
    assert_eq!(delay_over["state"], "available");
    assert_eq!(ended[1].event, "expired");
    assert_eq!(expired["item"], "a");
    assert_eq!(expired["holder"], "w1");
    assert_eq!(expired["token"], lease["token"]);
    assert_eq!(expired["state"], "available");
}

#[tokio::test]
async fn the_stream_ends_when_the_pool_is_deleted() {
    let app = spawn_app().await;
    let replica = replica_of(&app, Options::default()).await;
    let pool = pool_name();
    let p = pool.as_str();
    app.add_items(p, &["a"]).await;
    let mut stream = follow(&replica, p, None, None).await;
    stream.expect_event().await;
    // A live event first: the follower is on the replica's shared reader.
    app.add_items(p, &["b"]).await;
    assert_eq!(stream.expect_event().await.event, "added");

    app.delete(&format!("/v1/pools/{p}")).await.expect(204);
    let end = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("the stream ends in time");
    assert_eq!(end, None, "the stream ends");
}

// ---------------------------------------------------------------------------------------
// Many followers, one reader

/// Fifty followers of one pool on one replica: Redis reads the pool's log about once per
/// poll interval (500 ms), not once per follower, and every follower still gets every
/// event once, in order.
///
/// Checked failing: with `Feeds::feed` (src/store/events.rs) changed to start a new reader
/// for every follower instead of handing out the pool's running one, this test fails on
/// the bound: 200 reads in 2 s (fifty per interval).
#[tokio::test]
async fn fifty_followers_on_one_replica_share_one_reader() {
    const FOLLOWERS: usize = 50;
    const CHANGES: usize = 4;
    let (redis, app) = app_on_own_redis().await;
    let pool = pool_name();
    let p = pool.as_str();
    app.add_items(p, &["first"]).await;

    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<(usize, Sse)>();
    let mut followers = tokio::task::JoinSet::new();
    for n in 0..FOLLOWERS {
        let mut stream = follow(&app, p, None, None).await;
        let sender = sender.clone();
        followers.spawn(async move {
            while let Some(event) = stream.next().await {
                if sender.send((n, event)).is_err() {
                    break;
                }
            }
        });
    }
    let mut seen: BTreeMap<usize, Vec<Sse>> = BTreeMap::new();
    let mut take = async |count: usize, seen: &mut BTreeMap<usize, Vec<Sse>>| {
        for _ in 0..count {
            let (n, event) = tokio::time::timeout(WAIT, received.recv())
                .await
                .expect("every follower's event in time")
                .expect("followers run");
            seen.entry(n).or_default().push(event);
        }
    };
    // Every follower has read its backlog itself.
    take(FOLLOWERS, &mut seen).await;

    // From now on, Redis runs the writes and the shared reader's reads.
    let before = scripts_run(&redis);
    let started = Instant::now();
    for change in 0..CHANGES {
        app.add_items(p, &[&format!("item-{change}")]).await;
        take(FOLLOWERS, &mut seen).await;
    }
    let elapsed = started.elapsed();
    let reads = scripts_run(&redis) - before - CHANGES as u64;
    let intervals = elapsed.as_millis() as u64 / 500 + 1;
    assert!(
        reads <= 2 * intervals + 2,
        "{reads} reads of the log in {elapsed:?} ({intervals} poll intervals) for \
         {FOLLOWERS} followers: they do not share a reader"
    );

    let log = read_all(&app, p, None, 1000).await;
    assert_eq!(log.len(), CHANGES + 1);
    assert_eq!(seen.len(), FOLLOWERS);
    for (n, events) in &seen {
        assert_eq!(events.len(), log.len(), "follower {n}: {events:#?}");
        for (sse, event) in events.iter().zip(&log) {
            assert_sse_is(sse, event);
        }
    }
    followers.abort_all();
}

/// Makes the shared reader of `pool` on `app` fall behind the cap: its reads fail (the
/// app's Redis user is refused XREVRANGE, which only the log's reads use) while 10,500
/// changes are made, then work again.
async fn make_the_reader_fall_behind(redis: &RedisProcess, app: &TestApp, pool: &str) {
    let mut admin = redis.connection();
    let acl = |rule: &str, admin: &mut redis::Connection| {
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("leasehold")
            .arg(rule)
            .query::<()>(admin)
            .expect("ACL SETUSER");
    };
    acl("-xrevrange", &mut admin);
    app.get(&events_path(pool, ""))
        .await
        .expect_problem(503, "backend_unavailable");
    for start in (0..10_500).step_by(1000) {
        let items: Vec<Value> = (start..start + 1000)
            .map(|n| json!({"id": format!("i{n:05}")}))
            .collect();
        app.post(&format!("/v1/pools/{pool}/items"), json!({"items": items}))
            .await
            .expect(200);
    }
    acl("+xrevrange", &mut admin);
}

/// A pool's shared reader can itself fall behind the cap (its reads fail for a while, or
/// more than the cap comes between two of its reads): a follower it feeds is told
/// `trimmed` before the events after the gap, as one reading alone would be.
#[tokio::test]
async fn a_follower_is_told_when_its_shared_reader_fell_behind_the_cap() {
    let (redis, app) = app_on_own_redis().await;
    let pool = pool_name();
    let p = pool.as_str();
    app.add_items(p, &["first"]).await;
    let mut stream = follow(&app, p, None, None).await;
    assert_eq!(stream.expect_event().await.event, "added");
    // A live one: the follower takes the shared reader's events now.
    app.add_items(p, &["second"]).await;
    let second = stream.expect_event().await;

    make_the_reader_fall_behind(&redis, &app, p).await;
    let oldest = events_of(&page(&app, p, "limit=1").await);
    assert_ne!(oldest[0]["item"], "i00000", "the cap dropped events");
    let next = stream.expect_event().await;
    assert_eq!(
        (next.id.as_deref(), next.event.as_str()),
        (None, "trimmed"),
        "after {second:?}, the events before {} were dropped: {next:?}",
        id_of(&oldest[0])
    );
    assert_sse_is(&stream.expect_event().await, &oldest[0]);
}

/// The same for a follower that began before the pool had any event: it has missed the
/// events the cap dropped too.
#[tokio::test]
async fn a_follower_from_before_the_first_event_is_told_what_the_cap_dropped() {
    let (redis, app) = app_on_own_redis().await;
    let pool = pool_name();
    let p = pool.as_str();
    app.put(&format!("/v1/pools/{p}"), json!({}))
        .await
        .expect(201);
    let mut stream = follow(&app, p, None, None).await;

    make_the_reader_fall_behind(&redis, &app, p).await;
    let oldest = events_of(&page(&app, p, "limit=1").await);
    assert_ne!(oldest[0]["item"], "i00000", "the cap dropped events");
    let next = stream.expect_event().await;
    assert_eq!(
        (next.id.as_deref(), next.event.as_str()),
        (None, "trimmed"),
        "{next:?}"
    );
    assert_sse_is(&stream.expect_event().await, &oldest[0]);
}

// ---------------------------------------------------------------------------------------
// What ends a live stream: its key revoked, its longest lifetime

/// The pool's stream opened with `key` (another tenant's, say).
async fn follow_as(app: &TestApp, pool: &str, key: &str) -> SseClient {
    let response = app
        .client
        .get(app.url(&format!("/v1/pools/{pool}/events/stream")))
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), 200);
    SseClient {
        response,
        buffer: Vec::new(),
    }
}

/// Adds item `id` to `pool` as the holder of `key`.
async fn add_as(app: &TestApp, pool: &str, key: &str, id: &str) {
    let reply = app
        .send(
            app.client
                .post(app.url(&format!("/v1/pools/{pool}/items")))
                .bearer_auth(key)
                .json(&json!({"items": [{"id": id}]})),
        )
        .await;
    reply.expect(200);
}

/// A stream opened with a key that a reload of the key file then revokes ends at the
/// reload (the key's 401 would otherwise not reach what it has open); another tenant's
/// stream goes on.
#[tokio::test]
async fn a_revoked_keys_stream_ends_at_the_reload_and_other_keys_streams_go_on() {
    let app = spawn_app().await;
    let (mine, theirs) = (pool_name(), pool_name());
    add_as(&app, &mine, &app.key, "a").await;
    add_as(&app, &theirs, &app.other_key, "x").await;
    let mut revoked = follow_as(&app, &mine, &app.key).await;
    let mut kept = follow_as(&app, &theirs, &app.other_key).await;
    assert_eq!(revoked.expect_event().await.event, "added");
    assert_eq!(kept.expect_event().await.event, "added");

    // Revoke the first tenant's key: keep only the other tenant's entry.
    let file = std::fs::read_to_string(&app.key_file).expect("key file");
    let others: Vec<&str> = file.lines().skip(1).collect();
    std::fs::write(&app.key_file, others.join("\n")).expect("rewrite the key file");
    assert_eq!(app.auth.reload(), Ok(1));

    let ended = tokio::time::timeout(WAIT, revoked.next()).await;
    assert_eq!(
        ended.expect("the revoked key's stream ends"),
        None,
        "the revoked key's stream went on"
    );
    add_as(&app, &theirs, &app.other_key, "y").await;
    let next = kept.expect_event().await;
    let data: Value = serde_json::from_str(&next.data).expect("JSON");
    assert_eq!((next.event.as_str(), &data["item"]), ("added", &json!("y")));
}

/// A stream ends cleanly after its longest lifetime (`--stream-max-secs`), and one opened
/// again with `Last-Event-ID` goes on from the last event received.
#[tokio::test]
async fn a_stream_ends_after_its_longest_lifetime_and_resumes_from_its_last_event() {
    let app = spawn_app_with(Options {
        stream_max_secs: Some(1),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let opened = tokio::time::Instant::now();
    let mut stream = follow(&app, &pool, None, None).await;
    let first = stream.expect_event().await;
    let ended = tokio::time::timeout(WAIT, stream.next()).await;
    assert_eq!(ended.expect("the stream ends"), None);
    assert!(
        opened.elapsed() >= Duration::from_secs(1),
        "ended after {:?}, before its lifetime",
        opened.elapsed()
    );

    app.add_items(&pool, &["b"]).await;
    let mut resumed = follow(&app, &pool, None, first.id.as_deref()).await;
    let next = resumed.expect_event().await;
    let data: Value = serde_json::from_str(&next.data).expect("JSON");
    assert_eq!(data["item"], json!("b"), "{next:?}");
}

/// An expiry and a delay's end are logged at the moment they happened, whenever they are
/// applied: here seconds later, by a read of the log.
#[tokio::test]
async fn an_expiry_and_a_delays_end_are_logged_at_the_moment_they_happened() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;
    let lease = claim_for(&app, &pool, "a", "bob", 200).await;
    let ended = time_ms(&lease["lease_expires_at"]);
    let b = claim_for(&app, &pool, "b", "carol", 60_000).await;
    let released = app
        .post(
            &action_path(&pool, "b", "release"),
            json!({"holder": "carol", "token": b["token"], "delay_ms": 300}),
        )
        .await
        .expect(200);
    assert_eq!(released["state"], "delayed");
    let delay_ends = time_ms(&released["available_at"]);
    wait_for_redis_clock_past(ended.max(delay_ends) + 1000).await;

    let events = read_all(&app, &pool, None, 1000).await;
    let of = |kind: &str, item: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind && e["item"] == item)
            .unwrap_or_else(|| panic!("no {kind} of {item}: {events:#?}"))
            .clone()
    };
    let claimed = of("claimed", "a");
    assert_eq!(claimed["lease_expires_at"], lease["lease_expires_at"]);
    let expired = of("expired", "a");
    assert_eq!(expired["at"], lease["lease_expires_at"], "{expired:#}");
    assert_eq!(expired["lease_expires_at"], lease["lease_expires_at"]);
    assert!(
        id_ms(&id_of(&expired)) >= ended + 1000,
        "recorded when applied, later: {expired:#}"
    );
    assert_eq!(at_ms(&of("delay_over", "b")), delay_ends);
    // (Compared with the release's answer, not its event: an event's id is taken when it
    // is appended, which may be a millisecond past the script's clock.)
    let over = of("delay_over", "b");
    assert!(id_ms(&id_of(&over)) >= at_ms(&over) + 1000, "{over:#}");
    // The log stays in the order of recording.
    let keys: Vec<(u64, u64)> = events.iter().map(|e| id_key(&id_of(e))).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

/// The `expired` events of `pool` as Redis holds them, read without the API (whose reads
/// would apply the expiry themselves): each one's recording time (its id's ms).
fn expired_in_redis(app: &TestApp, pool: &str) -> Vec<i64> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(events_key(app, pool))
        .arg("-")
        .arg("+")
        .query(&mut redis().connection())
        .expect("XRANGE");
    entries
        .iter()
        .filter(|(_, fields)| fields.iter().any(|(f, v)| f == "type" && v == "expired"))
        .map(|(id, _)| id_ms(id))
        .collect()
}

/// With nobody calling on the pool, a lease that ends is applied within the expiry lag
/// (1 s here) by the replica that granted it: its `expired` event is recorded then. A
/// replica without prompt sweeps (lag 0) leaves it for the next call.
#[tokio::test]
async fn an_ended_lease_is_applied_within_the_lag_with_nobody_calling() {
    if skipped_on_topology_rerun("it reads the pools' streams from the shared Redis directly") {
        return;
    }
    let prompt = spawn_app_with(Options {
        expiry_lag_ms: Some(1000),
        ..Options::default()
    })
    .await;
    let lazy = spawn_app().await;
    let (a, b) = (pool_name(), pool_name());
    prompt.add_items(&a, &["x"]).await;
    lazy.add_items(&b, &["x"]).await;
    let lease = claim_for(&prompt, &a, "x", "bob", 300).await;
    claim_for(&lazy, &b, "x", "bob", 300).await;
    let ended = time_ms(&lease["lease_expires_at"]);
    eventually(
        Duration::from_secs(10),
        "the expiry applied with nobody calling",
        async || !expired_in_redis(&prompt, &a).is_empty(),
    )
    .await;
    let recorded = expired_in_redis(&prompt, &a)[0];
    println!("applied {} ms after the lease ended", recorded - ended);
    assert!(
        recorded - ended <= 2000,
        "applied {} ms after the lease ended, past the 1 s lag and a second of slack",
        recorded - ended
    );
    assert!(
        expired_in_redis(&lazy, &b).is_empty(),
        "without prompt sweeps, nothing applied it yet"
    );
    // The log says the lease ended when it did, whoever applied it.
    let events = read_all(&prompt, &a, None, 100).await;
    let expired = events
        .iter()
        .find(|e| e["type"] == "expired")
        .expect("the expired event");
    assert_eq!(expired["at"], lease["lease_expires_at"]);
}
