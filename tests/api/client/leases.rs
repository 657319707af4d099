//! `leases.rs`: claims (at once and waiting), renewals, releases, completions and
//! assignments, and what a refused one answers.

use super::*;

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

/// The client's side of scheduled and paused pools: items added with a delay, a snooze,
/// a claim that waits for a pool not yet created, events telling a lease's end.
#[tokio::test]
async fn scheduled_items_a_snooze_and_a_claim_that_waits_for_its_pool() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    let missing = client.claim_next(&pool, &Claim::new("alice")).await;
    assert_eq!(code_of(missing), ProblemCode::NotFound);
    let none = client
        .claim_next(&pool, &Claim::new("alice").create(true))
        .await
        .expect("an empty claim");
    assert!(none.is_empty());
    client
        .add_items(
            &pool,
            &[NewItem::new("later").delay_ms(60_000), NewItem::new("now")],
        )
        .await
        .expect("add");
    let later = client.get_item(&pool, "later").await.expect("get");
    assert_eq!(later.state, ItemState::Delayed);
    assert!(later.available_at.is_some());
    let snoozed = client.snooze(&pool, "now", 60_000).await.expect("snooze");
    assert_eq!(snoozed.state, ItemState::Delayed);
    let granted = client
        .claim_next(&pool, &Claim::new("alice"))
        .await
        .expect("claim");
    assert!(granted.is_empty(), "both are delayed");
}

#[tokio::test]
async fn a_claim_says_when_the_pool_is_paused() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    client
        .add_items(&pool, &[NewItem::new("a")])
        .await
        .expect("add");
    let pause = |paused| PoolSettings {
        paused: Some(paused),
        ..PoolSettings::default()
    };
    let (paused, _) = client.put_pool(&pool, &pause(true)).await.expect("pause");
    assert!(paused.config.paused);
    let claimed = client
        .claim(&pool, &Claim::new("alice"))
        .await
        .expect("claim");
    assert!(claimed.paused && claimed.leases.is_empty());
    client.put_pool(&pool, &pause(false)).await.expect("resume");
    let claimed = client
        .claim(&pool, &Claim::new("alice"))
        .await
        .expect("claim");
    assert!(!claimed.paused);
    assert_eq!(claimed.leases.len(), 1);
}
