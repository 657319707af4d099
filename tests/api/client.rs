//! `leasehold::client` against the real app: every typed call round-trips, every refusal
//! comes back as its problem code, retries happen exactly where they should (and with one
//! `Idempotency-Key`, so a retried write is applied once), and the `Lease` guard renews,
//! reports a lost lease, and releases on drop unless completed.
//!
//! Faults are real: a redis-server of the test's own stopped with SIGSTOP (the app answers
//! 503 with `Retry-After`), a rate-limited app (429 with `Retry-After`), and the harness's
//! TCP proxy resetting connections. A recording front, forwarding every request unchanged
//! to the app, shows how many attempts a call made and what each carried.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use futures::StreamExt;
use leasehold::client::{
    Assign, Claim, Client, CounterPeriod, Error, Event, EventKind, EventStream, Followed,
    ItemFilter, ItemState, Lost, NewItem, Next, Period, PoolSettings, Preconditions, ProblemCode,
    PutItem, Release, RetryPolicy,
};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::fixtures::proxy::{Mode, Proxy};
use crate::helpers::*;

// ---------------------------------------------------------------------------------------
// The harness

/// A client of `app` as its default tenant, with the default retry policy.
fn client_of(app: &TestApp) -> Client {
    client_at(&app.url(""), app)
}

fn client_at(base_url: &str, app: &TestApp) -> Client {
    Client::builder(base_url)
        .api_key(Some(app.key.clone()))
        .build()
        .expect("a client")
}

/// The code of a failed call.
#[track_caller]
fn code_of<T: std::fmt::Debug>(result: Result<T, Error>) -> ProblemCode {
    let error = result.expect_err("the call is refused");
    error
        .code()
        .unwrap_or_else(|| panic!("not a problem answer: {error:?}"))
}

/// One request as the recording front saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    idempotency_key: Option<String>,
    status: u16,
    arrived: Instant,
    answered: Instant,
}

/// A recording front for an app: forwards every request unchanged and remembers each.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Clone)]
struct Front {
    target: SocketAddr,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    async fn start(app: &TestApp) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let front = Front {
            target: app.addr,
            http: reqwest::Client::new(),
            seen: seen.clone(),
        };
        let router = axum::Router::new().fallback(forward).with_state(front);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the recorder");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Recorder { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests whose path ends with `suffix` (query excluded), in arrival order.
    fn to(&self, suffix: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("the record")
            .iter()
            .filter(|s| s.path.ends_with(suffix))
            .cloned()
            .collect()
    }
}

async fn forward(
    State(front): State<Front>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the request body");
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = front
        .http
        .request(
            parts.method.clone(),
            format!("http://{}{path_and_query}", front.target),
        )
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    let answer = out.send().await.expect("the app answers");
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = answer.bytes().await.expect("the answer body");
    front.seen.lock().expect("the record").push(Seen {
        path: parts.uri.path().to_owned(),
        idempotency_key: parts
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        status: status.as_u16(),
        arrived,
        answered: Instant::now(),
    });
    let mut reply = axum::response::Response::new(axum::body::Body::from(body));
    *reply.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            reply.headers_mut().insert(name, value.clone());
        }
    }
    reply
}

/// An app of its own over a redis-server of its own, which a test may stop: the app
/// gives up on Redis after 300 ms and answers 503 with `Retry-After`.
async fn app_over_own_redis() -> (RedisProcess, TestApp) {
    app_on_own_redis_with(Options {
        redis_timeout_ms: Some(300),
        ..Options::default()
    })
    .await
}

fn counter_name() -> String {
    format!("c-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

// ---------------------------------------------------------------------------------------
// Every typed call round-trips

#[tokio::test]
async fn pool_calls_round_trip() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();

    let settings = PoolSettings {
        lease_ms: Some(5000),
        max_attempts: Some(3),
        ..PoolSettings::default()
    };
    let (created, was_created) = client.put_pool(&pool, &settings).await.expect("put");
    assert!(was_created);
    assert_eq!(created.config.lease_ms, 5000);
    assert_eq!(created.config.max_attempts, 3);
    assert!(!created.config.require_if_match);
    assert_eq!(created.config.max_events, 10_000);

    let settings = PoolSettings {
        require_if_match: Some(true),
        max_events: Some(0),
        ..PoolSettings::default()
    };
    let (changed, was_created) = client.put_pool(&pool, &settings).await.expect("put");
    assert!(!was_created);
    assert!(changed.config.require_if_match);
    assert_eq!(changed.config.max_events, 0);
    assert_eq!(changed.config.lease_ms, 5000, "unchanged settings are kept");

    client
        .add_items(&pool, &[NewItem::new("a"), NewItem::new("b")])
        .await
        .expect("add");
    let read = client.get_pool(&pool).await.expect("get");
    assert_eq!(read.name, pool);
    assert_eq!(read.counts.available, 2);
    assert_eq!(read.stats.claims, 0);

    let pools = client.list_pools().await.expect("list");
    let listed = pools.iter().find(|p| p.name == pool).expect("listed");
    assert_eq!(listed.counts.available, 2);

    client.delete_pool(&pool).await.expect("delete");
    assert_eq!(code_of(client.get_pool(&pool).await), ProblemCode::NotFound);
    let pools = client.list_pools().await.expect("list");
    assert!(pools.iter().all(|p| p.name != pool));
}

#[tokio::test]
async fn item_calls_round_trip_with_their_preconditions() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();

    let added = client
        .add_items(
            &pool,
            &[
                NewItem::new("a").priority(5).data(json!({"client": "Ann"})),
                NewItem::new("b"),
            ],
        )
        .await
        .expect("add");
    assert_eq!(added.created, ["a", "b"]);
    let again = client
        .add_items(&pool, &[NewItem::new("a"), NewItem::new("c")])
        .await
        .expect("add");
    assert_eq!(
        (again.created, again.existing),
        (vec!["c".to_owned()], vec!["a".to_owned()])
    );

    let a = client.get_item(&pool, "a").await.expect("get");
    assert_eq!(
        (a.state, a.priority, a.version),
        (ItemState::Available, 5, 1)
    );
    assert_eq!(a.data, json!({"client": "Ann"}));
    assert_eq!(a.holder, None);

    // PUT: create only if absent, replace only at a version.
    let put = client
        .put_item(
            &pool,
            "d",
            &PutItem::new(json!({"n": 1})),
            &Preconditions::if_none_match_any(),
        )
        .await
        .expect("create");
    assert!(put.created);
    assert_eq!(put.item.version, 1);
    let put = client
        .put_item(
            &pool,
            "d",
            &PutItem::new(json!({"n": 2})),
            &Preconditions::if_match(1),
        )
        .await
        .expect("replace");
    assert!(!put.created);
    assert_eq!(
        (put.item.version, put.item.data.clone()),
        (2, json!({"n": 2}))
    );
    let mut with_version = PutItem::new(json!({"n": 3}));
    with_version.expected_version = Some(2);
    with_version.priority = Some(9);
    let put = client
        .put_item(&pool, "d", &with_version, &Preconditions::default())
        .await
        .expect("replace at a version");
    assert_eq!((put.item.version, put.item.priority), (3, 9));

    let patched = client
        .patch_item(
            &pool,
            "d",
            &json!({"m": true, "n": null}),
            &Preconditions::if_match(3),
        )
        .await
        .expect("patch");
    assert_eq!((patched.version, patched.data), (4, json!({"m": true})));

    client
        .delete_item(&pool, "d", &Preconditions::if_match(4))
        .await
        .expect("delete");
    assert_eq!(
        code_of(client.get_item(&pool, "d").await),
        ProblemCode::NotFound
    );

    // Listing: a filter, and paging by cursor.
    let leased = client
        .claim_item(&pool, "b", "bob", Some(60_000))
        .await
        .expect("claim");
    let by_holder = client
        .list_items(
            &pool,
            &ItemFilter {
                holder: Some("bob".to_owned()),
                ..ItemFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(by_holder.items.len(), 1);
    assert_eq!(by_holder.items[0].id, "b");
    let available = client
        .list_items(
            &pool,
            &ItemFilter {
                state: Some(ItemState::Available),
                ..ItemFilter::default()
            },
        )
        .await
        .expect("list");
    let mut ids: Vec<String> = available.items.into_iter().map(|i| i.id).collect();
    ids.sort();
    assert_eq!(ids, ["a", "c"]);

    let first = client
        .list_items(
            &pool,
            &ItemFilter {
                limit: Some(2),
                ..ItemFilter::default()
            },
        )
        .await
        .expect("a page");
    assert_eq!(first.items.len(), 2);
    assert!(first.next_cursor.is_some());
    let all = client
        .list_all_items(
            &pool,
            &ItemFilter {
                limit: Some(1),
                ..ItemFilter::default()
            },
        )
        .await
        .expect("every page");
    let mut ids: Vec<String> = all.into_iter().map(|i| i.id).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b", "c"]);
    leased.release(&Release::default()).await.expect("release");
}

#[tokio::test]
async fn lease_calls_round_trip() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    client
        .add_items(
            &pool,
            &[
                NewItem::new("low"),
                NewItem::new("high").priority(10),
                NewItem::new("mid").priority(5),
                NewItem::new("named"),
            ],
        )
        .await
        .expect("add");

    // Best first, two at a time.
    let leases = client
        .claim_next(&pool, &Claim::new("alice").count(2).lease_ms(60_000))
        .await
        .expect("claim");
    let ids: Vec<&str> = leases.iter().map(|l| l.id()).collect();
    assert_eq!(ids, ["high", "mid"]);
    assert!(leases[1].token() > leases[0].token());
    assert!(
        leases
            .iter()
            .all(|l| l.holder() == "alice" && l.pool() == pool)
    );

    // A named item; the same holder claiming it again gets the same lease.
    let named = client
        .claim_item(&pool, "named", "alice", Some(60_000))
        .await
        .expect("claim");
    let again = client
        .claim_item(&pool, "named", "alice", Some(60_000))
        .await
        .expect("claim again");
    assert_eq!(again.token(), named.token());

    // Renew keeps the token; the holder's leases list them, a page at a time.
    let renewed = client
        .renew(&pool, "named", "alice", named.token(), Some(120_000))
        .await
        .expect("renew");
    assert_eq!(renewed.token, named.token());
    assert!(renewed.version > named.info().version);
    let page = client
        .list_leases(&pool, "alice", Some(2), None)
        .await
        .expect("leases");
    assert_eq!(page.leases.len(), 2);
    let cursor = page.next_cursor.expect("a second page");
    let rest = client
        .list_leases(&pool, "alice", Some(2), Some(&cursor))
        .await
        .expect("leases");
    assert_eq!(rest.leases.len(), 1);
    assert!(rest.next_cursor.is_none());

    // Release with a delay and a new priority; complete with data.
    let mut leases = leases.into_iter();
    let high = leases.next().expect("high");
    let mid = leases.next().expect("mid");
    let released = high
        .release(&Release {
            delay_ms: Some(60_000),
            priority: Some(-3),
        })
        .await
        .expect("release");
    assert_eq!(
        (released.state, released.priority),
        (ItemState::Delayed, -3)
    );
    let done = mid
        .complete(Some(json!({"outcome": "resolved"})))
        .await
        .expect("complete");
    assert_eq!(
        (done.state, done.data),
        (ItemState::Done, json!({"outcome": "resolved"}))
    );

    // Requeue a done item.
    let requeued = client
        .requeue(&pool, "mid", Some(7))
        .await
        .expect("requeue");
    assert_eq!(
        (requeued.state, requeued.priority),
        (ItemState::Available, 7)
    );

    // Assign on someone's behalf (with a token for them), then unassign.
    let low = client.get_item(&pool, "low").await.expect("get");
    let assigned = client
        .assign(
            &pool,
            "low",
            "bob",
            &Assign {
                lease_ms: Some(60_000),
                expected_version: Some(low.version),
                ..Assign::default()
            },
        )
        .await
        .expect("assign");
    assert_eq!(assigned.holder.as_deref(), Some("bob"));
    assert!(assigned.token.is_some());
    let unassigned = client
        .unassign(
            &pool,
            "low",
            &Assign {
                if_match: Some(assigned.version),
                ..Assign::default()
            },
        )
        .await
        .expect("unassign");
    assert_eq!(
        (unassigned.state, unassigned.holder),
        (ItemState::Available, None)
    );
    named.complete(None).await.expect("complete");
}

#[tokio::test]
async fn counter_calls_round_trip() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let name = counter_name();

    let next = Next {
        count: Some(3),
        tz: Some("Europe/Paris".to_owned()),
        format: Some("CASE-{date}-{seq:05}".to_owned()),
        ..Next::default()
    };
    let draw = client.counter_next(&name, &next).await.expect("draw");
    assert_eq!(draw.values, [1, 2, 3]);
    let day = draw.period.clone().expect("a day");
    let compact = day.replace('-', "");
    assert_eq!(
        draw.ids,
        [1, 2, 3].map(|n| format!("CASE-{compact}-{n:05}"))
    );
    let read = client
        .get_counter(&name, &CounterPeriod::Date(day.clone()))
        .await
        .expect("read");
    assert_eq!((read.period, read.value), (Some(day), 3));
    let today = client
        .get_counter(
            &name,
            &CounterPeriod::Today(Some("Europe/Paris".to_owned())),
        )
        .await
        .expect("read today");
    assert!(today.value == 3 || today.value == 0, "{today:?}");

    let whole = Next {
        period: Some(Period::None),
        ..Next::default()
    };
    let draw = client.counter_next(&name, &whole).await.expect("draw");
    assert_eq!(
        (draw.period, draw.values, draw.ids.len()),
        (None, vec![1], 0)
    );
    let read = client
        .get_counter(&name, &CounterPeriod::Whole)
        .await
        .expect("read");
    assert_eq!(read.value, 1);
}

#[tokio::test]
async fn a_caller_chosen_idempotency_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let name = counter_name();
    let invocation = client.with_idempotency_key(uuid::Uuid::new_v4().to_string());

    let next = Next {
        count: Some(2),
        ..Next::default()
    };
    let first = invocation.counter_next(&name, &next).await.expect("draw");
    let replay = invocation.counter_next(&name, &next).await.expect("replay");
    assert_eq!(first.values, [1, 2]);
    assert_eq!(replay.values, first.values, "the same key, the same answer");
    let other = client.counter_next(&name, &next).await.expect("draw");
    assert_eq!(other.values, [3, 4], "a fresh key is a new draw");

    let reused = invocation.counter_next(&name, &Next::default()).await;
    assert_eq!(code_of(reused), ProblemCode::IdempotencyKeyReused);
}

// ---------------------------------------------------------------------------------------
// Every refusal comes back as its problem code

#[tokio::test]
async fn lease_refusals_come_back_as_their_codes() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    client
        .add_items(&pool, &[NewItem::new("a"), NewItem::new("b")])
        .await
        .expect("add");
    let lease = client
        .claim_item(&pool, "a", "alice", Some(60_000))
        .await
        .expect("claim");

    let error = client
        .claim_item(&pool, "a", "bob", Some(60_000))
        .await
        .expect_err("held by alice");
    assert_eq!(error.code(), Some(ProblemCode::AlreadyLeased));
    assert_eq!(error.problem().expect("a problem").status, 409);
    let current = error.current().expect("the current state");
    assert_eq!(current.holder.as_deref(), Some("alice"));
    assert!(!error.outcome_unknown());

    let stale = client
        .renew(&pool, "a", "alice", lease.token() + 1, None)
        .await;
    assert_eq!(code_of(stale), ProblemCode::LeaseLost);

    let token = lease.token();
    lease.complete(None).await.expect("complete");
    assert_eq!(
        code_of(client.complete(&pool, "a", "alice", token, None).await),
        ProblemCode::LeaseLost
    );
    assert_eq!(
        code_of(client.claim_item(&pool, "a", "bob", None).await),
        ProblemCode::InvalidState
    );
}

#[tokio::test]
async fn write_refusals_carry_the_items_current_state() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    client
        .put_item(
            &pool,
            "a",
            &PutItem::new(json!({})),
            &Preconditions::default(),
        )
        .await
        .expect("create");

    let stale_if_match = client
        .put_item(
            &pool,
            "a",
            &PutItem::new(json!({"n": 1})),
            &Preconditions::if_match(7),
        )
        .await
        .expect_err("a stale If-Match");
    assert_eq!(stale_if_match.code(), Some(ProblemCode::PreconditionFailed));
    assert_eq!(stale_if_match.current().map(|c| c.version), Some(1));

    let mut stale = PutItem::new(json!({"n": 1}));
    stale.expected_version = Some(7);
    let conflict = client
        .put_item(&pool, "a", &stale, &Preconditions::default())
        .await
        .expect_err("a stale expected_version");
    assert_eq!(conflict.code(), Some(ProblemCode::VersionConflict));
    let current = conflict.current().expect("the current state");
    assert_eq!(
        (current.version, current.state.as_deref()),
        (1, Some("available"))
    );

    let exists = client
        .put_item(
            &pool,
            "a",
            &PutItem::new(json!({})),
            &Preconditions::if_none_match_any(),
        )
        .await;
    assert_eq!(code_of(exists), ProblemCode::PreconditionFailed);
    let not_leased = client
        .patch_item(&pool, "a", &json!({"n": 2}), &Preconditions::lease_token(1))
        .await;
    assert_eq!(code_of(not_leased), ProblemCode::LeaseLost);
    assert_eq!(
        code_of(
            client
                .delete_item(&pool, "missing", &Preconditions::default())
                .await
        ),
        ProblemCode::NotFound
    );

    let strict = pool_name();
    client
        .put_pool(
            &strict,
            &PoolSettings {
                require_if_match: Some(true),
                ..PoolSettings::default()
            },
        )
        .await
        .expect("a strict pool");
    let unguarded = client
        .put_item(
            &strict,
            "a",
            &PutItem::new(json!({})),
            &Preconditions::default(),
        )
        .await;
    assert_eq!(code_of(unguarded), ProblemCode::PreconditionRequired);
}

#[tokio::test]
async fn a_holder_at_capacity_is_told_its_limit() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    client
        .put_pool(
            &pool,
            &PoolSettings {
                max_leases_per_holder: Some(1),
                ..PoolSettings::default()
            },
        )
        .await
        .expect("pool");
    client
        .add_items(&pool, &[NewItem::new("a"), NewItem::new("b")])
        .await
        .expect("add");
    let _held = client
        .claim_item(&pool, "a", "alice", Some(60_000))
        .await
        .expect("claim");
    let error = client
        .claim_item(&pool, "b", "alice", Some(60_000))
        .await
        .expect_err("over the limit");
    assert_eq!(error.code(), Some(ProblemCode::HolderAtCapacity));
    assert_eq!(error.problem().and_then(|p| p.limit), Some(1));
}

#[tokio::test]
async fn bad_input_a_wrong_key_and_a_large_body_come_back_as_their_codes() {
    let app = spawn_app_with(Options {
        max_body_bytes: Some(4096),
        ..Options::default()
    })
    .await;
    let client = client_of(&app);
    let pool = pool_name();

    let error = client
        .claim_next(&pool, &Claim::new("alice").count(0))
        .await
        .expect_err("count 0");
    assert_eq!(error.code(), Some(ProblemCode::InvalidRequest));
    assert_eq!(
        error.problem().and_then(|p| p.field.as_deref()),
        Some("count")
    );
    let bad_name = client.get_pool("no/such name").await;
    assert_eq!(code_of(bad_name), ProblemCode::InvalidRequest);

    let stranger = Client::builder(app.url(""))
        .api_key(Some("lh_not-a-key".to_owned()))
        .build()
        .expect("a client");
    let error = stranger.list_pools().await.expect_err("a wrong key");
    assert_eq!(error.code(), Some(ProblemCode::Unauthorized));
    assert_eq!(error.problem().map(|p| p.status), Some(401));

    let large = NewItem::new("a").data(json!({"text": "x".repeat(8192)}));
    assert_eq!(
        code_of(client.add_items(&pool, &[large]).await),
        ProblemCode::PayloadTooLarge
    );
}

// ---------------------------------------------------------------------------------------
// Retries: where, how often, with which key

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_answered_503_is_retried_with_one_key_and_applied_once() {
    let (redis, app) = app_over_own_redis().await;
    let front = Recorder::start(&app).await;
    let client = client_at(&front.url(), &app);
    let name = counter_name();

    redis.signal("STOP");
    let draw = tokio::spawn({
        let client = client.clone();
        let name = name.clone();
        async move { client.counter_next(&name, &Next::default()).await }
    });
    eventually(
        Duration::from_secs(10),
        "a 503 while Redis is stopped",
        || async { front.to("/next").iter().any(|s| s.status == 503) },
    )
    .await;
    redis.signal("CONT");
    let draw = draw
        .await
        .expect("the task")
        .expect("the draw, once Redis is back");

    let attempts = front.to("/next");
    assert!(attempts.len() >= 2, "{attempts:#?}");
    assert_eq!(attempts[0].status, 503);
    assert_eq!(attempts.last().map(|s| s.status), Some(200));
    let key = attempts[0]
        .idempotency_key
        .clone()
        .expect("an Idempotency-Key");
    assert!(
        attempts
            .iter()
            .all(|s| s.idempotency_key.as_ref() == Some(&key)),
        "every attempt carries the first one's key: {attempts:#?}"
    );
    // The 503 said Retry-After: 1.
    let waited = attempts[1].arrived - attempts[0].answered;
    assert!(
        waited >= Duration::from_secs(1),
        "retried after only {waited:?}"
    );

    // Applied once: the first attempt may have run in Redis once it resumed; the retry
    // then got its answer replayed instead of drawing again.
    assert_eq!(draw.values, [1]);
    let value = client
        .get_counter(&name, &CounterPeriod::Today(None))
        .await
        .expect("read");
    assert_eq!(value.value, 1, "the draw was applied exactly once");
    assert!(client.retries() >= 1);
}

#[tokio::test]
async fn refusals_are_never_retried() {
    let app = spawn_app().await;
    let front = Recorder::start(&app).await;
    let client = client_at(&front.url(), &app);
    let pool = pool_name();
    client
        .add_items(&pool, &[NewItem::new("a")])
        .await
        .expect("add");
    let _held = client
        .claim_item(&pool, "a", "alice", Some(60_000))
        .await
        .expect("claim");

    let refused = [
        code_of(client.claim_item(&pool, "a", "bob", None).await),
        code_of(client.renew(&pool, "a", "alice", 999, None).await),
        code_of(client.claim_next(&pool, &Claim::new("bob").count(0)).await),
        code_of(client.get_item(&pool, "missing").await),
        code_of(
            client
                .put_item(
                    &pool,
                    "b",
                    &PutItem::new(json!({})),
                    &Preconditions::if_match(3),
                )
                .await,
        ),
    ];
    assert_eq!(
        refused,
        [
            ProblemCode::AlreadyLeased,
            ProblemCode::LeaseLost,
            ProblemCode::InvalidRequest,
            ProblemCode::NotFound,
            ProblemCode::PreconditionFailed,
        ]
    );
    let stranger = Client::builder(front.url())
        .api_key(Some("lh_not-a-key".to_owned()))
        .build()
        .expect("a client");
    assert_eq!(
        code_of(stranger.list_pools().await),
        ProblemCode::Unauthorized
    );

    for (suffix, status) in [
        ("/a/claim", 409),
        ("/a/renew", 409),
        ("/claim", 400),
        ("/items/missing", 404),
        ("/items/b", 412),
        ("/v1/pools", 401),
    ] {
        let refused: Vec<Seen> = front
            .to(suffix)
            .into_iter()
            .filter(|s| s.status == status)
            .collect();
        assert_eq!(refused.len(), 1, "{suffix}: {refused:#?}");
    }
    assert_eq!(client.retries() + stranger.retries(), 0);
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_and_not_before() {
    let app = spawn_app_with(Options {
        rate_limit: Some(1),
        rate_burst: Some(1),
        ..Options::default()
    })
    .await;
    let front = Recorder::start(&app).await;
    // A backoff far below Retry-After: only honouring the header gets through.
    let policy = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(10),
    };
    let client = Client::builder(front.url())
        .api_key(Some(app.key.clone()))
        .retry_policy(policy)
        .build()
        .expect("a client");
    let name = counter_name();

    let first = client
        .counter_next(&name, &Next::default())
        .await
        .expect("within the rate");
    let second = client
        .counter_next(&name, &Next::default())
        .await
        .expect("admitted after waiting");
    assert_eq!((first.values, second.values), (vec![1], vec![2]));

    let attempts = front.to("/next");
    let statuses: Vec<u16> = attempts.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [200, 429, 200], "{attempts:#?}");
    let waited = attempts[2].arrived - attempts[1].answered;
    assert!(
        waited >= Duration::from_secs(1),
        "retried after only {waited:?}"
    );
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
}

#[tokio::test]
async fn a_retry_after_past_the_time_left_gives_up_at_once() {
    let app = spawn_app_with(Options {
        rate_limit: Some(1),
        rate_burst: Some(1),
        ..Options::default()
    })
    .await;
    let client = Client::builder(app.url(""))
        .api_key(Some(app.key.clone()))
        .retry_policy(RetryPolicy {
            max_elapsed: Duration::from_millis(500),
            ..RetryPolicy::default()
        })
        .build()
        .expect("a client");
    let name = counter_name();
    client
        .counter_next(&name, &Next::default())
        .await
        .expect("within the rate");

    let started = Instant::now();
    let error = client
        .counter_next(&name, &Next::default())
        .await
        .expect_err("over the rate");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let Error::GaveUp {
        attempts,
        outcome_unknown,
        ..
    } = &error
    else {
        panic!("not given up: {error:?}");
    };
    assert_eq!((*attempts, *outcome_unknown), (1, false));
    assert_eq!(error.code(), Some(ProblemCode::RateLimited));
    assert_eq!(
        error.problem().and_then(|p| p.retry_after),
        Some(Duration::from_secs(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_are_retried_until_the_service_answers() {
    let app = spawn_app().await;
    let proxy = Proxy::start(app.addr, 1).await;
    proxy.set_mode(Mode::Reset);
    let client = Client::builder(format!("http://{}", proxy.addr()))
        .api_key(Some(app.key.clone()))
        .retry_policy(RetryPolicy {
            max_attempts: 50,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_elapsed: Duration::from_secs(20),
        })
        .build()
        .expect("a client");
    let name = counter_name();

    let draw = tokio::spawn({
        let client = client.clone();
        let name = name.clone();
        async move { client.counter_next(&name, &Next::default()).await }
    });
    eventually(
        Duration::from_secs(10),
        "the client to retry twice",
        || async { client.retries() >= 2 },
    )
    .await;
    proxy.set_mode(Mode::Pass);
    let draw = draw
        .await
        .expect("the task")
        .expect("the draw, once connections pass");
    assert_eq!(draw.values, [1]);
    let value = client
        .get_counter(&name, &CounterPeriod::Today(None))
        .await
        .expect("read");
    assert_eq!(value.value, 1);
}

#[tokio::test]
async fn retries_stop_after_the_policys_attempts() {
    let app = spawn_app().await;
    let proxy = Proxy::start(app.addr, 2).await;
    proxy.set_mode(Mode::Reset);
    let client = Client::builder(format!("http://{}", proxy.addr()))
        .retry_policy(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_elapsed: Duration::from_secs(10),
        })
        .build()
        .expect("a client");

    let error = client
        .counter_next(&counter_name(), &Next::default())
        .await
        .expect_err("nothing gets through");
    match &error {
        Error::GaveUp {
            attempts,
            outcome_unknown,
            last,
            ..
        } => {
            assert_eq!(*attempts, 3);
            assert!(*outcome_unknown, "no answer: the write may have happened");
            assert!(matches!(**last, Error::Transport(_)), "{last:?}");
        }
        other => panic!("not given up: {other:?}"),
    }
    assert!(error.outcome_unknown());
    assert_eq!(client.retries(), 2);
}

// ---------------------------------------------------------------------------------------
// The Lease guard

const LEASE_MS: u64 = 600;

/// A pool with one item, a recording front and a client through it.
async fn one_item() -> (TestApp, Recorder, Client, String) {
    let app = spawn_app().await;
    let front = Recorder::start(&app).await;
    let client = client_at(&front.url(), &app);
    let pool = pool_name();
    client
        .add_items(&pool, &[NewItem::new("a")])
        .await
        .expect("add");
    (app, front, client, pool)
}

/// Waits until the item has been renewed `times` times since `version` and more than three
/// lease times have passed since `since`.
async fn renewed(client: &Client, pool: &str, version: u64, times: u64, since: Instant) {
    eventually(
        Duration::from_secs(10),
        "renewals past three lease times",
        || async {
            let item = client.get_item(pool, "a").await.expect("get");
            item.version >= version + times && since.elapsed() > Duration::from_millis(3 * LEASE_MS)
        },
    )
    .await;
}

/// Waits for `renewed`, then completes the lease, which must still be the holder's.
async fn completes_after_renewals(
    client: &Client,
    pool: &str,
    lease: leasehold::client::Lease,
    times: u64,
    since: Instant,
) {
    renewed(client, pool, lease.info().version, times, since).await;
    assert!(!lease.is_lost());
    lease
        .complete(None)
        .await
        .expect("still ours after 3 lease times");
}

#[tokio::test]
async fn a_lease_guard_renews_past_several_lease_times() {
    let (_app, front, client, pool) = one_item().await;
    let claimed = Instant::now();
    let lease = client
        .claim_item(&pool, "a", "alice", Some(LEASE_MS))
        .await
        .expect("claim");
    renewed(&client, &pool, lease.info().version, 6, claimed).await;

    assert!(!lease.is_lost());
    let item = client.get_item(&pool, "a").await.expect("get");
    assert_eq!(
        (item.state, item.holder.as_deref()),
        (ItemState::Leased, Some("alice"))
    );
    let held = client
        .list_leases(&pool, "alice", None, None)
        .await
        .expect("leases");
    assert_eq!(
        held.leases[0].token,
        lease.token(),
        "renewal keeps the token"
    );
    assert!(
        lease.info().version > 1,
        "the guard keeps the latest renewal"
    );
    assert!(front.to("/a/renew").iter().all(|s| s.status == 200));
    let done = lease
        .complete(None)
        .await
        .expect("still ours after 3 lease times");
    assert_eq!(done.state, ItemState::Done);
}

#[tokio::test]
async fn a_lease_guard_renews_at_the_pools_lease_time_when_the_claim_names_none() {
    let (_app, _front, client, pool) = one_item().await;
    client
        .put_pool(
            &pool,
            &PoolSettings {
                lease_ms: Some(LEASE_MS),
                ..PoolSettings::default()
            },
        )
        .await
        .expect("pool");
    let claimed = Instant::now();
    let mut leases = client
        .claim_next(&pool, &Claim::new("alice"))
        .await
        .expect("claim");
    let lease = leases.pop().expect("a lease");
    completes_after_renewals(&client, &pool, lease, 6, claimed).await;
}

#[tokio::test]
async fn a_lease_guard_reports_lost_when_the_item_is_reassigned_and_stops_renewing() {
    let (_app, front, client, pool) = one_item().await;
    let lease = client
        .claim_item(&pool, "a", "alice", Some(LEASE_MS))
        .await
        .expect("claim");
    let lost = lease.lost();
    client
        .assign(&pool, "a", "bob", &Assign::default())
        .await
        .expect("reassigned to bob");

    let reason = tokio::time::timeout(Duration::from_secs(3), lost)
        .await
        .expect("reported within a lease time or so");
    match &reason {
        Lost::Refused(problem) => assert_eq!(problem.code, ProblemCode::LeaseLost),
        Lost::Expired => panic!("the service said so: {reason}"),
    }
    assert!(lease.is_lost());

    let renewals = front.to("/a/renew").len();
    drop(lease);
    // Three renewal periods: a renewer still running would have tried again.
    tokio::time::sleep(Duration::from_millis(LEASE_MS)).await;
    assert_eq!(front.to("/a/renew").len(), renewals, "renewing stopped");
    assert!(
        front.to("/a/release").is_empty(),
        "a lost lease is not released"
    );
    let item = client.get_item(&pool, "a").await.expect("get");
    assert_eq!(item.holder.as_deref(), Some("bob"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_guard_reports_lost_when_no_renewal_succeeds_in_time() {
    let (redis, app) = app_over_own_redis().await;
    let client = client_of(&app);
    let pool = pool_name();
    client
        .add_items(&pool, &[NewItem::new("a")])
        .await
        .expect("add");
    let lease = client
        .claim_item(&pool, "a", "alice", Some(LEASE_MS))
        .await
        .expect("claim");
    let token = lease.token();

    redis.signal("STOP");
    let stopped = Instant::now();
    let reason = tokio::time::timeout(Duration::from_secs(5), lease.lost())
        .await
        .expect("reported once the lease time ran out");
    assert!(matches!(reason, Lost::Expired), "{reason}");
    assert!(
        stopped.elapsed() <= Duration::from_millis(2 * LEASE_MS),
        "reported {:?} after Redis stopped",
        stopped.elapsed()
    );
    redis.signal("CONT");

    // It really was over: someone else can have the item, under a newer token.
    let taken = Arc::new(Mutex::new(None));
    eventually(Duration::from_secs(10), "bob to claim the item", || {
        let client = client.clone();
        let pool = pool.clone();
        let taken = taken.clone();
        async move {
            match client.claim_item(&pool, "a", "bob", Some(60_000)).await {
                Ok(lease) => {
                    *taken.lock().expect("taken") = Some(lease.token());
                    lease.complete(None).await.expect("complete");
                    true
                }
                Err(_) => false,
            }
        }
    })
    .await;
    let bobs = taken.lock().expect("taken").expect("a token");
    assert!(bobs > token);
}

/// The whole process stalls past the lease time (a long pause, a stopped VM): when it
/// resumes, the guard reports the lease lost by its own clock at once, without asking the
/// service first. (The test and the app share one thread, so both stall.)
#[tokio::test]
async fn a_lease_guard_stalled_past_its_lease_time_reports_it_expired_when_it_resumes() {
    let (_app, _front, client, pool) = one_item().await;
    let lease = client
        .claim_item(&pool, "a", "alice", Some(LEASE_MS))
        .await
        .expect("claim");
    let version = lease.info().version;
    eventually(Duration::from_secs(5), "a renewal", || async {
        lease.info().version > version
    })
    .await;
    std::thread::sleep(Duration::from_millis(LEASE_MS + 200));
    let lost = tokio::time::timeout(Duration::from_millis(LEASE_MS), lease.lost())
        .await
        .expect("reported once it resumed");
    assert!(matches!(lost, Lost::Expired), "{lost}");
}

#[tokio::test]
async fn a_dropped_lease_guard_releases_its_item() {
    let (_app, front, client, pool) = one_item().await;
    let lease = client
        .claim_item(&pool, "a", "alice", Some(60_000))
        .await
        .expect("claim");
    drop(lease);
    eventually(
        Duration::from_secs(5),
        "the item to be available again",
        || async { client.get_item(&pool, "a").await.expect("get").state == ItemState::Available },
    )
    .await;
    let releases = front.to("/a/release");
    assert_eq!(releases.len(), 1, "{releases:#?}");
    assert_eq!(releases[0].status, 200);
}

#[tokio::test]
async fn a_completed_lease_guard_neither_renews_nor_releases() {
    let (_app, front, client, pool) = one_item().await;
    let lease = client
        .claim_item(&pool, "a", "alice", Some(LEASE_MS))
        .await
        .expect("claim");
    let done = lease.complete(None).await.expect("complete");
    assert_eq!(done.state, ItemState::Done);
    let renewals = front.to("/a/renew").len();
    // Three renewal periods: a renewer still running would have tried again.
    tokio::time::sleep(Duration::from_millis(LEASE_MS)).await;
    assert_eq!(front.to("/a/renew").len(), renewals);
    assert!(
        front.to("/a/release").is_empty(),
        "completed, so nothing to release"
    );
    assert_eq!(
        client.get_item(&pool, "a").await.expect("get").state,
        ItemState::Done
    );
}

#[tokio::test]
async fn a_lease_without_expiry_is_not_renewed_but_is_released_on_drop() {
    let (_app, front, client, pool) = one_item().await;
    let lease = client
        .claim_item(&pool, "a", "alice", Some(0))
        .await
        .expect("claim");
    assert_eq!(lease.info().lease_expires_at, None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(front.to("/a/renew").is_empty());
    assert!(!lease.is_lost());
    drop(lease);
    eventually(
        Duration::from_secs(5),
        "the item to be available again",
        || async { client.get_item(&pool, "a").await.expect("get").state == ItemState::Available },
    )
    .await;
}

/// A claim made under a fixed key (a serverless invocation's id) gives a guard whose own
/// calls carry fresh keys: renewing and completing are not refused as a reuse of the
/// claim's key. The key still replays the claim, as a guard of unknown age that asks the
/// service at once and learns the lease is over.
#[tokio::test]
async fn a_lease_claimed_under_a_fixed_key_renews_and_completes_under_fresh_keys() {
    let (_app, front, client, pool) = one_item().await;
    let once = client.with_idempotency_key("invocation-7");
    let claim = Claim::new("alice").lease_ms(LEASE_MS);
    let claimed = Instant::now();
    let lease = once
        .claim_next(&pool, &claim)
        .await
        .expect("claim")
        .pop()
        .expect("a lease");
    let token = lease.token();
    renewed(&client, &pool, lease.info().version, 3, claimed).await;
    assert!(!lease.is_lost());
    assert!(front.to("/a/renew").iter().all(|s| s.status == 200));
    let done = lease
        .complete(None)
        .await
        .expect("completed under its own key");
    assert_eq!(done.state, ItemState::Done);

    let replayed = once
        .claim_next(&pool, &claim)
        .await
        .expect("the claim replayed")
        .pop()
        .expect("the same lease");
    assert_eq!(replayed.token(), token);
    let lost = tokio::time::timeout(Duration::from_secs(3), replayed.lost())
        .await
        .expect("found lost at once, not after a third of the lease");
    match &lost {
        Lost::Refused(problem) => assert_eq!(problem.code, ProblemCode::LeaseLost),
        Lost::Expired => panic!("the service said so: {lost}"),
    }
}

/// A long-poll claim granted after more than its lease time of waiting: the guard cannot
/// count the lease from when the claim was sent, so it renews at once, and keeps it.
#[tokio::test]
async fn a_long_poll_claim_granted_after_its_lease_time_is_kept() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    client
        .put_pool(&pool, &PoolSettings::default())
        .await
        .expect("pool");
    let waiting = tokio::spawn({
        let (client, pool) = (client.clone(), pool.clone());
        async move {
            let claim = Claim::new("alice").lease_ms(LEASE_MS).wait_ms(20_000);
            client.claim_next(&pool, &claim).await
        }
    });
    // The scenario itself: the wait outlasts the lease time before anything comes.
    tokio::time::sleep(Duration::from_millis(2 * LEASE_MS)).await;
    assert!(!waiting.is_finished(), "nothing to claim yet: it waits");
    client
        .add_items(&pool, &added_items(&["a"]))
        .await
        .expect("add");
    let granted = Instant::now();
    let lease = waiting
        .await
        .expect("the task")
        .expect("the claim")
        .pop()
        .expect("a lease");
    completes_after_renewals(&client, &pool, lease, 3, granted).await;
}

/// Leases held for most of their time already (by a process that has since restarted):
/// claimed again by their holder, the lease runs again from the claim; adopted from the
/// holder's list, the guard renews it at once. Either way it outlives the time it had,
/// where a guard counting a lease time from its own start would renew too late.
#[tokio::test]
async fn a_lease_held_already_is_kept_when_claimed_again_or_adopted() {
    const HELD_MS: u64 = 6000;
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    client
        .add_items(&pool, &added_items(&["a", "b"]))
        .await
        .expect("add");
    let mut first = Vec::new();
    for id in ["a", "b"] {
        let lease = app
            .post(
                &action_path(&pool, id, "claim"),
                json!({"holder": "alice", "lease_ms": HELD_MS}),
            )
            .await
            .expect(200);
        first.push(lease);
    }
    let held = Instant::now();
    // The scenario itself: past two thirds of the lease time.
    tokio::time::sleep(Duration::from_millis(HELD_MS * 3 / 4)).await;

    let again = client
        .claim_item(&pool, "a", "alice", Some(HELD_MS))
        .await
        .expect("claimed again by its holder");
    assert_eq!(again.token(), first[0]["token"]);
    let expires = |lease: &Value| lease["lease_expires_at"].as_str().map(str::to_owned);
    assert!(
        again.info().lease_expires_at > expires(&first[0]),
        "the claim ran the lease again: {:?} after {:?}",
        again.info().lease_expires_at,
        expires(&first[0])
    );

    let listed = client
        .list_leases(&pool, "alice", None, None)
        .await
        .expect("alice's leases");
    let b = listed
        .leases
        .into_iter()
        .find(|lease| lease.id == "b")
        .expect("b is alice's");
    let adopted = client.adopt(&pool, b, Some(HELD_MS));
    let adopted_version = adopted.info().version;
    eventually(
        Duration::from_millis(HELD_MS),
        "the adopted lease renewed",
        || async { adopted.info().version > adopted_version },
    )
    .await;
    assert!(
        held.elapsed() < Duration::from_millis(HELD_MS),
        "renewed {:?} after the claims, past their lease time",
        held.elapsed()
    );

    // Past the time they had: still theirs.
    tokio::time::sleep_until(held + Duration::from_millis(HELD_MS + 500)).await;
    assert!(!again.is_lost() && !adopted.is_lost());
    for id in ["a", "b"] {
        let item = client.get_item(&pool, id).await.expect("get");
        assert_eq!(
            (item.state, item.holder.as_deref()),
            (ItemState::Leased, Some("alice"))
        );
    }
}

// ---------------------------------------------------------------------------------------
// Long-poll claims, and the pool's event log: paged, and followed live across faults

/// Three replicas of one app over a redis-server of their own, so that `scripts_run`
/// counts only their work.
async fn three_replicas_over_own_redis() -> (RedisProcess, [TestApp; 3]) {
    let redis = RedisProcess::start(&[]);
    let options = || Options {
        redis_url: Some(redis.url()),
        ..Options::default()
    };
    let a = spawn_app_with(options()).await;
    let b = replica_of(&a, options()).await;
    let c = replica_of(&a, options()).await;
    (redis, [a, b, c])
}

#[tokio::test]
async fn a_waiting_claim_gets_an_item_added_through_another_replica_well_before_its_wait_ends() {
    let (redis, [_a, b, c]) = three_replicas_over_own_redis().await;
    let (on_b, on_c) = (client_of(&b), client_of(&c));
    let pool = pool_name();
    on_c.put_pool(&pool, &PoolSettings::default())
        .await
        .expect("pool");

    let before = scripts_run(&redis);
    let waiting = tokio::spawn({
        let pool = pool.clone();
        async move {
            let claim = Claim::new("waiter").lease_ms(60_000).wait_ms(20_000);
            on_b.claim_next(&pool, &claim).await
        }
    });
    eventually(
        Duration::from_secs(10),
        "the waiter's first try on replica B",
        || async { scripts_run(&redis) > before },
    )
    .await;
    assert!(!waiting.is_finished(), "nothing to claim yet: it waits");

    let added = Instant::now();
    on_c.add_items(&pool, &[NewItem::new("late")])
        .await
        .expect("add through replica C");
    let leases = waiting.await.expect("the task").expect("the claim answers");
    let took = added.elapsed();
    let ids: Vec<&str> = leases.iter().map(|l| l.id()).collect();
    assert_eq!(ids, ["late"]);
    assert!(
        took < Duration::from_secs(3),
        "woken {took:?} after the add, as by a retry rather than the announcement"
    );
    assert_eq!(leases[0].holder(), "waiter");
}

#[tokio::test]
async fn a_waiting_claim_on_an_empty_pool_answers_empty_when_its_wait_is_over() {
    let app = spawn_app().await;
    // A per-attempt timeout shorter than the wait: the client adds the wait to it.
    let client = Client::builder(app.url(""))
        .api_key(Some(app.key.clone()))
        .timeout(Duration::from_millis(500))
        .build()
        .expect("a client");
    let pool = pool_name();
    client
        .put_pool(&pool, &PoolSettings::default())
        .await
        .expect("pool");

    let started = Instant::now();
    let leases = client
        .claim_next(&pool, &Claim::new("waiter").wait_ms(1500))
        .await
        .expect("an answer, not a timeout");
    let took = started.elapsed();
    assert!(leases.is_empty());
    assert!(
        took >= Duration::from_millis(1500),
        "answered after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    assert_eq!(
        client.retries(),
        0,
        "one attempt, not timed out and retried"
    );
}

#[tokio::test]
async fn list_events_pages_through_every_change_in_order() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    client
        .add_items(&pool, &[NewItem::new("a"), NewItem::new("b")])
        .await
        .expect("add");
    let lease = client
        .claim_item(&pool, "a", "alice", Some(60_000))
        .await
        .expect("claim");
    let token = lease.token();
    lease.complete(None).await.expect("complete");

    let mut events = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_events(&pool, after.as_deref(), Some(3))
            .await
            .expect("a page");
        assert!(!page.trimmed);
        assert!(page.events.len() <= 3);
        pages += 1;
        if page.events.is_empty() {
            assert_eq!(page.next_after, after, "an empty page keeps the place");
            break;
        }
        assert_eq!(
            page.next_after.as_deref(),
            page.events.last().map(|e| e.id.as_str())
        );
        after = page.next_after;
        events.extend(page.events);
    }
    assert_eq!(pages, 3, "3 + 1 events, then an empty page");
    /// What an event says: type, item, state, version, holder, token.
    type Said<'a> = (
        EventKind,
        &'a str,
        ItemState,
        u64,
        Option<&'a str>,
        Option<u64>,
    );
    let seen: Vec<Said> = events
        .iter()
        .map(|e| {
            (
                e.kind,
                e.item.as_str(),
                e.state,
                e.version,
                e.holder.as_deref(),
                e.token,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (EventKind::Added, "a", ItemState::Available, 1, None, None),
            (EventKind::Added, "b", ItemState::Available, 1, None, None),
            (
                EventKind::Claimed,
                "a",
                ItemState::Leased,
                2,
                Some("alice"),
                Some(token)
            ),
            (
                EventKind::Completed,
                "a",
                ItemState::Done,
                3,
                Some("alice"),
                Some(token)
            ),
        ]
    );
    assert!(events.iter().all(|e| e.at.ends_with('Z')));

    let whole = client
        .list_events(&pool, None, None)
        .await
        .expect("one page");
    assert_eq!(whole.events, events);
    assert_eq!(
        code_of(client.list_events(&pool_name(), None, None).await),
        ProblemCode::NotFound
    );
}

/// The next thing an event stream yields, within 10 s.
async fn next_followed(stream: &mut EventStream) -> Followed {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("something within 10 s")
        .expect("the stream goes on")
        .expect("not an error")
}

/// The next `count` events of a stream (no `Trimmed` among them).
async fn next_events(stream: &mut EventStream, count: usize) -> Vec<Event> {
    let mut events = Vec::new();
    while events.len() < count {
        match next_followed(stream).await {
            Followed::Event(event) => events.push(event),
            Followed::Trimmed => panic!("trimmed after {events:?}"),
        }
    }
    events
}

/// Every event of the pool, as the paged listing has them.
async fn all_events(client: &Client, pool: &str) -> Vec<Event> {
    let page = client
        .list_events(pool, None, Some(1000))
        .await
        .expect("the events");
    assert!(page.events.len() < 1000);
    page.events
}

fn added_items(ids: &[&str]) -> Vec<NewItem> {
    ids.iter().map(|id| NewItem::new(*id)).collect()
}

#[tokio::test]
async fn an_event_stream_yields_the_backlog_then_live_changes_from_other_replicas_and_ends_with_the_pool()
 {
    let a = spawn_app().await;
    let b = replica_of(&a, Options::default()).await;
    let c = replica_of(&a, Options::default()).await;
    let (on_a, on_b, on_c) = (client_of(&a), client_of(&b), client_of(&c));
    let pool = pool_name();
    on_c.add_items(&pool, &added_items(&["x", "y"]))
        .await
        .expect("add");

    let mut stream = on_a.follow_events(&pool, None);
    let backlog = next_events(&mut stream, 2).await;
    let items: Vec<&str> = backlog.iter().map(|e| e.item.as_str()).collect();
    assert_eq!(items, ["x", "y"]);

    let lease = on_b
        .claim_item(&pool, "x", "bob", Some(60_000))
        .await
        .expect("claim through B");
    let token = lease.token();
    lease.complete(None).await.expect("complete through B");
    let live = next_events(&mut stream, 2).await;
    let seen: Vec<(EventKind, &str, Option<u64>)> = live
        .iter()
        .map(|e| (e.kind, e.item.as_str(), e.token))
        .collect();
    assert_eq!(
        seen,
        [
            (EventKind::Claimed, "x", Some(token)),
            (EventKind::Completed, "x", Some(token))
        ]
    );
    let followed: Vec<Event> = backlog.into_iter().chain(live).collect();
    assert_eq!(followed, all_events(&on_c, &pool).await);
    assert_eq!(
        stream.last_event_id().as_deref(),
        followed.last().map(|e| e.id.as_str())
    );

    on_c.delete_pool(&pool).await.expect("delete through C");
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream ends within 10 s of the deletion");
    assert!(end.is_none(), "ended without an error: {end:?}");
    assert!(stream.next().await.is_none(), "and stays ended");
}

#[tokio::test]
async fn following_a_pool_that_does_not_exist_is_refused() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let mut stream = client.follow_events(&pool_name(), None);
    let first = stream.next().await.expect("an answer");
    assert_eq!(code_of(first), ProblemCode::NotFound);
    assert!(stream.next().await.is_none());
}

/// A retry policy that keeps trying for as long as a test's fault lasts.
fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 200,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_resumes_after_a_dropped_connection_without_losing_or_repeating_events() {
    let a = spawn_app().await;
    let b = replica_of(&a, Options::default()).await;
    let c = replica_of(&a, Options::default()).await;
    let proxy = Proxy::start(a.addr, 3).await;
    let through_proxy = Client::builder(format!("http://{}", proxy.addr()))
        .api_key(Some(a.key.clone()))
        .retry_policy(patient())
        .build()
        .expect("a client");
    let (on_b, on_c) = (client_of(&b), client_of(&c));
    let pool = pool_name();
    on_b.add_items(&pool, &added_items(&["a1", "a2", "a3"]))
        .await
        .expect("add");

    let mut stream = through_proxy.follow_events(&pool, None);
    let mut followed = next_events(&mut stream, 3).await;

    // Every connection to replica A is reset, and new ones are cut at once, while the
    // pool changes through B and C.
    proxy.set_mode(Mode::Reset);
    on_c.add_items(&pool, &added_items(&["b1", "b2"]))
        .await
        .expect("add");
    let lease = on_b
        .claim_item(&pool, "a1", "bob", Some(60_000))
        .await
        .expect("claim");
    let pending = tokio::spawn(async move {
        let next = next_events(&mut stream, 3).await;
        (stream, next)
    });
    eventually(
        Duration::from_secs(10),
        "the stream to try to reconnect and fail",
        || async { through_proxy.retries() >= 2 },
    )
    .await;
    assert!(!pending.is_finished(), "nothing gets through the reset");
    proxy.set_mode(Mode::Pass);

    let (mut stream, caught_up) = pending.await.expect("the task");
    followed.extend(caught_up);
    assert_eq!(
        followed,
        all_events(&on_c, &pool).await,
        "every event once, in order"
    );

    // Live again: the next event is the next change, not one sent before.
    lease.complete(None).await.expect("complete");
    let next = next_events(&mut stream, 1).await;
    assert_eq!(
        (next[0].kind, next[0].item.as_str()),
        (EventKind::Completed, "a1")
    );
    followed.extend(next);
    assert_eq!(followed, all_events(&on_c, &pool).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_reconnects_through_503s_while_redis_is_stopped() {
    let (redis, app) = app_over_own_redis().await;
    let proxy = Proxy::start(app.addr, 4).await;
    let client = Client::builder(format!("http://{}", proxy.addr()))
        .api_key(Some(app.key.clone()))
        .retry_policy(patient())
        .build()
        .expect("a client");
    let direct = client_of(&app);
    let pool = pool_name();
    direct
        .add_items(&pool, &added_items(&["a"]))
        .await
        .expect("add");
    let mut stream = client.follow_events(&pool, None);
    let mut followed = next_events(&mut stream, 1).await;

    let stream_503s = || async {
        let (_, metrics) = app.get_text("/metrics").await;
        metrics
            .lines()
            .filter(|line| {
                line.starts_with("leasehold_http_requests_total{")
                    && line.contains("route=\"/v1/pools/{pool}/events/stream\"")
                    && line.contains("status=\"503\"")
            })
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>()
    };
    let before = stream_503s().await;

    // Redis stops, the connection drops: reconnecting meets 503 with Retry-After.
    redis.signal("STOP");
    proxy.set_mode(Mode::Reset);
    let pending = tokio::spawn(async move {
        let next = next_events(&mut stream, 2).await;
        (stream, next)
    });
    eventually(
        Duration::from_secs(10),
        "the stream to notice the drop",
        || async { client.retries() >= 1 },
    )
    .await;
    proxy.set_mode(Mode::Pass);
    eventually(
        Duration::from_secs(10),
        "a reconnection answered 503",
        || async { stream_503s().await > before },
    )
    .await;
    redis.signal("CONT");

    direct
        .add_items(&pool, &added_items(&["b", "c"]))
        .await
        .expect("add once Redis is back");
    let (_stream, caught_up) = pending.await.expect("the task");
    followed.extend(caught_up);
    assert_eq!(followed, all_events(&direct, &pool).await);
}

#[tokio::test]
async fn events_dropped_by_the_cap_are_reported_as_trimmed() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    // The pool keeps about its last 10,000 events: 11,000 additions push the first out.
    let batch = |b: usize| -> Vec<NewItem> {
        (0..1000)
            .map(|n| NewItem::new(format!("i{b}-{n}")))
            .collect()
    };
    client.add_items(&pool, &batch(0)).await.expect("add");
    let first = client
        .list_events(&pool, None, Some(1))
        .await
        .expect("the first event");
    let seen_first = first.events[0].id.clone();
    for b in 1..11 {
        client.add_items(&pool, &batch(b)).await.expect("add");
    }
    let oldest = client
        .list_events(&pool, None, Some(1))
        .await
        .expect("the oldest kept");
    assert!(!oldest.trimmed, "no `after`: nothing was missed");
    let oldest = oldest.events[0].clone();
    assert_ne!(oldest.item, "i0-0", "the first events are gone");

    // A reader that had seen only the first event has missed some.
    let missed_from = seen_first.as_str();
    let page = client
        .list_events(&pool, Some(missed_from), Some(1))
        .await
        .expect("a page");
    assert!(page.trimmed);
    assert_eq!(page.events, std::slice::from_ref(&oldest));

    let mut stream = client.follow_events(&pool, Some(missed_from));
    assert_eq!(next_followed(&mut stream).await, Followed::Trimmed);
    assert_eq!(next_followed(&mut stream).await, Followed::Event(oldest));
}
