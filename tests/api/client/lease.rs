//! `lease.rs`: the `Lease` guard renews, reports a lost lease, and releases on drop
//! unless completed.

use super::*;

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
