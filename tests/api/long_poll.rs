//! Long-poll claims (`wait_ms`): a claim with nothing to grant waits until an item becomes
//! available (added, released, requeued, a lease expired, a delay over) or its time runs
//! out. Wake-ups travel by Redis pub/sub to every replica. Each test that counts Redis's
//! work has a redis-server of its own, so `INFO commandstats` counts only its calls.

use std::time::{Duration, Instant};

use crate::helpers::*;
use serde_json::{Value, json};

/// A private Redis and replicas of one app on it.
struct Deployment {
    redis: RedisProcess,
    replicas: Vec<TestApp>,
}

impl Deployment {
    async fn start(replicas: usize) -> Deployment {
        let (redis, first) = app_on_own_redis().await;
        let mut apps = vec![first];
        for _ in 1..replicas {
            let options = Options {
                redis_url: Some(redis.app_url()),
                ..Options::default()
            };
            apps.push(replica_of(&apps[0], options).await);
        }
        Deployment {
            redis,
            replicas: apps,
        }
    }

    /// A new, empty pool.
    async fn new_pool(&self) -> String {
        let pool = pool_name();
        self.replicas[0]
            .put(&format!("/v1/pools/{pool}"), json!({}))
            .await
            .expect(201);
        pool
    }

    /// How many scripts Redis has run (every claim try is one).
    fn scripts_run(&self) -> u64 {
        scripts_run(&self.redis)
    }

    /// Waits until Redis has run `count` more scripts than `before` (letting the waiters,
    /// which run on this test's runtime, go on meanwhile).
    async fn wait_for_scripts(&self, before: u64, count: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.scripts_run() < before + count {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A long-poll claim on `app`, answering the leases and how long it took.
async fn waiting_claim(
    app: &TestApp,
    pool: &str,
    holder: &str,
    wait_ms: u64,
) -> (Vec<Value>, Duration) {
    let started = Instant::now();
    let body = app
        .post(
            &format!("/v1/pools/{pool}/claim"),
            json!({"holder": holder, "wait_ms": wait_ms}),
        )
        .await
        .expect(200);
    let leases = body["leases"].as_array().expect("leases").clone();
    (leases, started.elapsed())
}

#[tokio::test]
async fn a_claim_with_items_available_answers_at_once_despite_wait_ms() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let (leases, took) = waiting_claim(&app, &pool, "alice", 30_000).await;
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0]["id"], "a");
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
}

#[tokio::test]
async fn a_claim_that_waits_in_vain_answers_empty_when_its_time_is_up() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let held = app.claim(&pool, "alice").await.expect("a lease");
    let (leases, took) = waiting_claim(&app, &pool, "bob", 400).await;
    assert!(leases.is_empty(), "{leases:?}");
    assert!(
        took >= Duration::from_millis(400),
        "answered after {took:?}"
    );
    assert_eq!(app.item(&pool, "a").await["holder"], held["holder"]);
}

#[tokio::test]
async fn wait_ms_out_of_range_is_refused() {
    let app = spawn_app().await;
    let pool = pool_name();
    for wait_ms in [-1, 30_001] {
        let problem = app
            .post(
                &format!("/v1/pools/{pool}/claim"),
                json!({"holder": "alice", "wait_ms": wait_ms}),
            )
            .await
            .expect_problem(400, "invalid_request");
        assert_eq!(problem["field"], "wait_ms");
    }
}

/// How a round makes an item available while a waiter waits on another replica: `setup`
/// runs before the waiter starts, `free` once it has tried and found nothing.
#[derive(Clone, Copy, Debug)]
enum Freed {
    Added,
    Released,
    Requeued,
    Expired,
    DelayOver,
}

/// Waiters on two replicas, every change made through a third. A change that a script
/// makes (add, release, requeue) wakes the waiter through pub/sub, well before its 5 s
/// safety retry; time's changes (an expiry, a delay's end) are found by the waiter that
/// watches the pool's clock.
#[tokio::test]
async fn waiters_on_other_replicas_get_items_added_released_requeued_expired_and_undelayed() {
    let deployment = Deployment::start(3).await;
    let writer = &deployment.replicas[0];
    let pool = pool_name();
    let p = pool.as_str();
    writer
        .put(&format!("/v1/pools/{p}"), json!({}))
        .await
        .expect(201);
    let rounds = [
        Freed::Added,
        Freed::Released,
        Freed::Requeued,
        Freed::Expired,
        Freed::DelayOver,
    ];
    for (round, freed) in rounds.into_iter().enumerate() {
        let waiter = &deployment.replicas[1 + round % 2];
        let id = format!("item-{round}");
        // Set up: the item exists but is not available (except for Added).
        match freed {
            Freed::Added => {}
            Freed::Released | Freed::Requeued | Freed::Expired | Freed::DelayOver => {
                writer.add_items(p, &[&id]).await;
                let lease_ms = if matches!(freed, Freed::Expired) {
                    1500
                } else {
                    0
                };
                let lease = writer
                    .post(
                        &action_path(p, &id, "claim"),
                        json!({"holder": "keeper", "lease_ms": lease_ms}),
                    )
                    .await
                    .expect(200);
                match freed {
                    Freed::Requeued => {
                        complete(writer, p, &lease).await;
                    }
                    Freed::DelayOver => {
                        release(writer, p, &lease, json!({"delay_ms": 1500})).await;
                    }
                    _ => {}
                }
            }
        }
        let before = deployment.scripts_run();
        let started = Instant::now();
        let waiting = waiting_claim(waiter, p, "waiter", 20_000);
        tokio::pin!(waiting);
        let answer = tokio::select! {
            answer = &mut waiting => Some(answer),
            () = deployment.wait_for_scripts(before, 1, "the waiter's first try") => None,
        };
        let (leases, took) = match answer {
            Some(answer) => answer,
            None => {
                let freeing = Instant::now();
                match freed {
                    Freed::Added => writer.add_items(p, &[&id]).await,
                    Freed::Released => {
                        let lease = &writer
                            .get(&format!("/v1/pools/{p}/leases?holder=keeper"))
                            .await
                            .expect(200)["leases"][0];
                        release(writer, p, lease, json!({})).await;
                    }
                    Freed::Requeued => {
                        writer
                            .post(&action_path(p, &id, "requeue"), json!({}))
                            .await
                            .expect(200);
                    }
                    Freed::Expired | Freed::DelayOver => {}
                }
                let (leases, _) = waiting.await;
                (leases, freeing.elapsed())
            }
        };
        assert_eq!(leases.len(), 1, "{freed:?}: the waiter got the item");
        assert_eq!(leases[0]["id"], id.as_str(), "{freed:?}");
        match freed {
            Freed::Added | Freed::Released | Freed::Requeued => assert!(
                took < Duration::from_secs(3),
                "{freed:?}: woken {took:?} after the change, as by its safety retry"
            ),
            Freed::Expired | Freed::DelayOver => assert!(
                (Duration::from_millis(1000)..Duration::from_secs(4)).contains(&started.elapsed()),
                "{freed:?}: got it {:?} after it began to wait (the item frees at 1.5 s)",
                started.elapsed()
            ),
        }
        complete(writer, p, &leases[0]).await;
    }
}

/// `count` long-poll claims of `wait_ms` on pool `p`, spread over `replicas` in turn. Each
/// answers how many leases it got and when.
fn crowd(
    replicas: &[TestApp],
    p: &str,
    count: usize,
    wait_ms: u64,
) -> tokio::task::JoinSet<(usize, Instant)> {
    let mut waiters = tokio::task::JoinSet::new();
    for n in 0..count {
        let app = &replicas[n % replicas.len()];
        let (client, url, key) = (
            app.client.clone(),
            app.url(&format!("/v1/pools/{p}/claim")),
            app.key.clone(),
        );
        waiters.spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"holder": format!("w{n}"), "wait_ms": wait_ms}))
                .send()
                .await
                .expect("answer");
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.expect("json");
            let leases = body["leases"].as_array().expect("leases").len();
            (leases, Instant::now())
        });
    }
    waiters
}

/// A thousand waiters on one pool over three replicas; one item comes back. Each replica
/// wakes one waiter per item announced, so Redis sees a handful of tries, not a
/// thousand.
#[tokio::test]
async fn one_item_coming_back_wakes_a_few_waiters_not_all() {
    const WAITERS: usize = 1000;
    let deployment = Deployment::start(3).await;
    let pool = deployment.new_pool().await;
    let p = pool.as_str();
    let before = deployment.scripts_run();
    let mut waiters = crowd(&deployment.replicas, p, WAITERS, 25_000);
    deployment
        .wait_for_scripts(before, WAITERS as u64, "every waiter's first try")
        .await;
    let added = deployment.scripts_run();
    deployment.replicas[0].add_items(p, &["one"]).await;
    let (granted, _) = waiters
        .join_next()
        .await
        .expect("a waiter")
        .expect("no panic");
    let tries = deployment.scripts_run() - added;
    assert_eq!(granted, 1, "the first waiter to answer got the item");
    assert!(
        tries <= 10,
        "{tries} scripts ran between the item's return and its grant: the waiters rushed"
    );
    waiters.abort_all();
}

/// A thousand waiters on one pool over three replicas, and nothing comes: each tries when
/// it arrives and once more when its time is up, and in between only one waiter per
/// replica tries on the safety timer, not every one of them every 5 s.
#[tokio::test]
async fn idle_waiters_leave_the_timed_tries_to_one_watcher_per_replica() {
    const WAITERS: u64 = 1000;
    let deployment = Deployment::start(3).await;
    let pool = deployment.new_pool().await;
    let p = pool.as_str();
    let before = deployment.scripts_run();
    // 11 s: two rounds of the 5 s safety retry fall inside every wait.
    let answers = crowd(&deployment.replicas, p, WAITERS as usize, 11_000)
        .join_all()
        .await;
    let tries = deployment.scripts_run() - before;
    assert!(answers.iter().all(|(leases, _)| *leases == 0));
    assert!(
        (2 * WAITERS + 3..=2 * WAITERS + 30).contains(&tries),
        "{tries} tries by {WAITERS} waiters: expected one on arrival and one at the end \
         each, and the watchers' few timed tries in between"
    );
}

/// A lost announcement (the replica's subscription is cut and cannot come back, so the
/// items added meanwhile wake nobody): the watcher's timed try finds one item and, leaving
/// with it, wakes the newest waiter to watch; that one, leaving with the next item, wakes
/// another, and so on: every waiter has its item soon after, not at the end of its wait.
#[tokio::test]
async fn items_whose_announcement_was_lost_reach_every_waiter_after_the_watchers_try() {
    const WAITERS: usize = 4;
    let deployment = Deployment::start(1).await;
    let pool = deployment.new_pool().await;
    let p = pool.as_str();
    let app = &deployment.replicas[0];
    let before = deployment.scripts_run();
    let waiters = crowd(&deployment.replicas, p, WAITERS, 25_000);
    deployment
        .wait_for_scripts(before, WAITERS as u64, "every waiter's first try")
        .await;

    let mut admin = deployment.redis.connection();
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query::<u64>(&mut admin)
        .expect("PUBSUB NUMPAT")
        == 0
    {
        assert!(Instant::now() < deadline, "the replica never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("leasehold")
        .arg("-psubscribe")
        .query(&mut admin)
        .expect("ACL SETUSER");
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut admin)
        .expect("CLIENT KILL");
    assert_eq!(killed, 1, "the replica's one subscription");
    let added = Instant::now();
    app.add_items(p, &["a", "b", "c", "d"]).await;

    let answers = waiters.join_all().await;
    assert!(
        answers.iter().all(|(leases, _)| *leases == 1),
        "{answers:?}"
    );
    let last = answers.iter().map(|(_, at)| *at).max().expect("answers");
    assert!(
        last - added < Duration::from_secs(10),
        "the last waiter got its item {:?} after the add (its wait ends at 25 s)",
        last - added
    );
}

/// Each app owns its stop: stopping one (as SIGTERM does) answers its long polls at once
/// with what they have, while another app's in the same process keep waiting.
#[tokio::test]
async fn stopping_one_app_ends_its_long_polls_and_not_another_apps() {
    let first = spawn_app().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopping = replica_until(&first, Options::default(), async {
        let _ = stopped.await;
    })
    .await;
    let pool = pool_name();
    first
        .put(&format!("/v1/pools/{pool}"), json!({}))
        .await
        .expect(201);
    let wait = |app: &TestApp, holder: &str| {
        app.request(reqwest::Method::POST, &format!("/v1/pools/{pool}/claim"))
            .json(&json!({"holder": holder, "wait_ms": 20_000}))
            .send()
    };
    let ended = tokio::spawn(wait(&stopping, "on-the-stopping-app"));
    let kept = tokio::spawn(wait(&first, "on-the-other-app"));
    // Each waits once its first try (a claim_next script, which only these requests run on
    // these apps) shows in that app's own metrics.
    for app in [&stopping, &first] {
        eventually(
            Duration::from_secs(10),
            "the long poll's first try",
            async || {
                let (_, metrics) = app.get_text("/metrics").await;
                metrics.contains("script=\"claim_next\"")
            },
        )
        .await;
    }
    let asked = Instant::now();
    stop.send(()).expect("the app is running");
    let answer = ended
        .await
        .expect("the request ran")
        .expect("the stopping app answers");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the long poll held up the stop for {:?}",
        asked.elapsed()
    );
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["leases"], json!([]));
    assert!(!kept.is_finished(), "the other app's long poll ended too");
    first.add_items(&pool, &["a"]).await;
    let granted: Value = kept
        .await
        .expect("the request ran")
        .expect("the other app answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(granted["leases"][0]["id"], "a", "{granted}");
}

/// How many times `claim_next` has run on `app`, from its own metrics.
async fn claim_next_runs(app: &TestApp) -> u64 {
    let (_, metrics) = app.get_text("/metrics").await;
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains("script=\"claim_next\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A long poll whose key a reload of the key file revokes ends at once with 401 (having
/// granted nothing); another tenant's long poll waits on and gets its item.
#[tokio::test]
async fn a_revoked_keys_long_poll_ends_with_401_and_another_tenants_waits_on() {
    let app = spawn_app().await;
    let (mine, theirs) = (pool_name(), pool_name());
    let wait = |pool: &str, key: &str| {
        app.client
            .post(app.url(&format!("/v1/pools/{pool}/claim")))
            .bearer_auth(key)
            .json(&json!({"holder": "waiter", "wait_ms": 20_000, "create": true}))
            .send()
    };
    let revoked = tokio::spawn(wait(&mine, &app.key));
    let kept = tokio::spawn(wait(&theirs, &app.other_key));
    // Both wait once their first tries (claim_next scripts, which only they run on this
    // app) show in the app's metrics.
    eventually(
        Duration::from_secs(10),
        "both long polls' first tries",
        async || claim_next_runs(&app).await >= 2,
    )
    .await;

    let file = std::fs::read_to_string(&app.key_file).expect("key file");
    let others: Vec<&str> = file.lines().skip(1).collect();
    std::fs::write(&app.key_file, others.join("\n")).expect("rewrite the key file");
    let asked = Instant::now();
    assert_eq!(app.auth.reload(), Ok(1));
    let answer = revoked.await.expect("the request ran").expect("an answer");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the revoked key's long poll waited on for {:?}",
        asked.elapsed()
    );
    assert_eq!(answer.status(), 401);
    assert!(
        !kept.is_finished(),
        "the other tenant's long poll ended too"
    );

    let add = app
        .client
        .post(app.url(&format!("/v1/pools/{theirs}/items")))
        .bearer_auth(&app.other_key)
        .json(&json!({"items": [{"id": "x"}]}));
    app.send(add).await.expect(200);
    let granted = kept.await.expect("the request ran").expect("an answer");
    assert_eq!(granted.status(), 200);
    let body: Value = granted.json().await.expect("JSON");
    assert_eq!(body["leases"][0]["id"], json!("x"), "{body:#}");
}
