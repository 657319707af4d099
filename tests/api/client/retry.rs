//! `retry.rs` and the transport: retries happen exactly where they should, with one
//! `Idempotency-Key`, so a retried write is applied once.

use super::*;

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
        async move { client.next_counter(&name, &Next::default()).await }
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
        .next_counter(&name, &Next::default())
        .await
        .expect("within the rate");
    let second = client
        .next_counter(&name, &Next::default())
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
        .next_counter(&name, &Next::default())
        .await
        .expect("within the rate");

    let started = Instant::now();
    let error = client
        .next_counter(&name, &Next::default())
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
        async move { client.next_counter(&name, &Next::default()).await }
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
        .next_counter(&counter_name(), &Next::default())
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
