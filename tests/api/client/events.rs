//! `events.rs`: the pool's event log, paged and followed live across faults.

use super::*;

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
                e.item.as_deref().unwrap_or_default(),
                e.state.expect("an item's event has a state"),
                e.version.expect("an item's event has a version"),
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
    let items: Vec<&str> = backlog
        .iter()
        .map(|e| e.item.as_deref().unwrap_or_default())
        .collect();
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
        .map(|e| (e.kind, e.item.as_deref().unwrap_or_default(), e.token))
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
        (next[0].kind, next[0].item.as_deref().unwrap_or_default()),
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
    assert_ne!(
        oldest.item.as_deref(),
        Some("i0-0"),
        "the first events are gone"
    );

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
