//! The minimal Redis user of `deploy/leasehold.acl`. Every test of the contract suite
//! already runs the app as that user, against a Redis with the default user off (see
//! `helpers::redis`); these tests check that this is so, that the user can reach nothing
//! else, and that a right missing from the list does fail requests.

use crate::helpers::*;
use leasehold::store::ConnectionMode;
use redis::Commands;
use serde_json::json;

/// The clients connected as `user`, from `CLIENT LIST`.
fn clients_of(redis: &mut impl redis::ConnectionLike, user: &str) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(redis)
        .expect("CLIENT LIST");
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == format!("user={user}")))
        .count()
}

/// The ACL LOG entries (refused commands or keys) of `user`.
fn refusals_of(redis: &mut impl redis::ConnectionLike, user: &str) -> Vec<String> {
    let entries: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .arg(1000)
        .query(redis)
        .expect("ACL LOG");
    entries
        .into_iter()
        .map(|entry| format!("{entry:?}"))
        .filter(|entry| entry.contains(&format!("\"{user}\"")))
        .collect()
}

/// Every kind of call the API makes, once: pools, items, leases, counters, listings,
/// events.
pub async fn every_kind_of_call(app: &TestApp) {
    let pool = pool_name();
    app.put(&format!("/v1/pools/{pool}"), json!({"lease_ms": 60_000}))
        .await
        .expect(201);
    app.add_items(&pool, &["a", "b", "c"]).await;
    let lease = app.claim(&pool, "worker").await.expect("a lease");
    let renew = action_path(&pool, lease["id"].as_str().expect("id"), "renew");
    app.post(&renew, json!({"holder": "worker", "token": lease["token"]}))
        .await
        .expect(200);
    complete(app, &pool, &lease).await;
    let b = claim_item(app, &pool, "b", "other").await;
    release(app, &pool, &b, json!({})).await;
    app.put(
        &format!("/v1/pools/{pool}/items/d"),
        json!({"data": {"n": 1}}),
    )
    .await
    .expect(201);
    app.patch(&format!("/v1/pools/{pool}/items/d"), json!({"n": 2}))
        .await
        .expect(200);
    app.get(&format!("/v1/pools/{pool}/items?state=available"))
        .await
        .expect(200);
    app.get(&format!("/v1/pools/{pool}/leases?holder=other"))
        .await
        .expect(200);
    app.get("/v1/pools").await.expect(200);
    app.post("/v1/counters/cases/next", json!({"period": "day"}))
        .await
        .expect(200);
    app.get("/v1/counters/cases").await.expect(200);
    let events = app
        .get(&format!("/v1/pools/{pool}/events?limit=5"))
        .await
        .expect(200);
    assert_eq!(events["events"].as_array().map(Vec::len), Some(5));
    // The live stream: its first event, then hang up.
    let mut stream = app
        .request(
            reqwest::Method::GET,
            &format!("/v1/pools/{pool}/events/stream"),
        )
        .send()
        .await
        .expect("the stream");
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.expect("a chunk").expect("an event");
    assert!(String::from_utf8_lossy(&first).contains("event: added"));
    drop(stream);
    app.delete(&format!("/v1/pools/{pool}/items/d")).await;
    app.delete(&format!("/v1/pools/{pool}")).await;
    assert_eq!(app.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn the_suite_runs_the_app_as_the_minimal_user_and_redis_refuses_it_nothing() {
    let Backend::Single(_) = redis() else {
        return; // The Cluster the suite can also run on has no ACL users.
    };
    for connections in [ConnectionMode::Shared, ConnectionMode::Pooled] {
        let app = spawn_app_with(Options {
            connections: Some(connections),
            ..Options::default()
        })
        .await;
        every_kind_of_call(&app).await;
    }
    let mut admin = redis().connection();
    assert!(
        clients_of(&mut admin, "leasehold") > 0,
        "the app is connected as the leasehold user"
    );
    assert_eq!(
        clients_of(&mut admin, "default"),
        0,
        "nobody is connected as the default user"
    );
    assert_eq!(
        refusals_of(&mut admin, "leasehold"),
        Vec::<String>::new(),
        "Redis refused the leasehold user nothing"
    );
}

#[test]
fn the_default_user_is_off_and_the_leasehold_user_reaches_only_its_own_keys() {
    let redis = RedisProcess::start_locked(&[]);
    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port))
        .expect("client")
        .get_connection()
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    let refused = anonymous.expect_err("PING without a user is refused");
    assert!(
        refused.to_string().contains("NOAUTH") || refused.to_string().contains("WRONGPASS"),
        "{refused}"
    );

    let mut app = redis::Client::open(redis.app_url())
        .expect("client")
        .get_connection()
        .expect("the leasehold user logs in");
    let own: Option<String> = app.get("lh:{t}:anything").expect("its own keys");
    assert_eq!(own, None);
    let denied: [(&str, redis::Cmd); 9] = [
        (
            "CONFIG GET of a secret",
            redis::cmd("CONFIG").arg("GET").arg("masterauth").clone(),
        ),
        (
            "CONFIG GET of a path",
            redis::cmd("CONFIG").arg("GET").arg("dir").clone(),
        ),
        ("another key", redis::cmd("GET").arg("session:42").clone()),
        ("a key write", redis::cmd("SET").arg("x").arg(1).clone()),
        ("KEYS", redis::cmd("KEYS").arg("*").clone()),
        ("FLUSHALL", redis::cmd("FLUSHALL").clone()),
        (
            "CONFIG SET",
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory-policy")
                .arg("allkeys-lru")
                .clone(),
        ),
        (
            "EVAL of its own script",
            redis::cmd("EVAL")
                .arg("return redis.call('GET', KEYS[1])")
                .arg(1)
                .arg("lh:{t}:x")
                .clone(),
        ),
        (
            "PUBLISH",
            redis::cmd("PUBLISH").arg("news").arg("x").clone(),
        ),
    ];
    for (what, command) in denied {
        let refused = command
            .query::<redis::Value>(&mut app)
            .expect_err(&format!("{what} is refused"));
        assert!(
            refused.to_string().to_uppercase().contains("NOPERM"),
            "{what}: {refused}"
        );
    }
    // A function the user may call still cannot reach a key outside lh:*.
    let mut admin = redis.connection();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(
            "#!lua name=acl_probe\n\
             redis.register_function('acl_probe_get', function(keys) return redis.call('GET', keys[1]) end)",
        )
        .query(&mut admin)
        .expect("FUNCTION LOAD");
    let refused = redis::cmd("FCALL")
        .arg("acl_probe_get")
        .arg(1)
        .arg("session:42")
        .query::<redis::Value>(&mut app)
        .expect_err("a key outside lh:* is refused inside a function");
    assert!(
        refused.to_string().to_uppercase().contains("NOPERM"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_right_missing_from_the_list_fails_requests_cleanly_until_it_is_given_back() {
    let (redis, app) = app_on_own_redis().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let mut admin = redis.connection();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("leasehold")
        .arg("-zadd")
        .query(&mut admin)
        .expect("ACL SETUSER");

    let refused = app
        .post(
            &format!("/v1/pools/{pool}/items"),
            json!({"items": [{"id": "b"}]}),
        )
        .await;
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    let body = refused.body.to_string();
    refused.expect_problem(503, "backend_unavailable");
    assert!(
        !body.to_uppercase().contains("NOPERM") && !body.to_lowercase().contains("zadd"),
        "no Redis error reaches the body: {body}"
    );
    assert_eq!(
        refusals_of(&mut admin, "leasehold").len(),
        1,
        "Redis logged the one refusal"
    );

    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("leasehold")
        .arg("+zadd")
        .query(&mut admin)
        .expect("ACL SETUSER");
    app.add_items(&pool, &["b"]).await;
    assert_eq!(app.item(&pool, "b").await["state"], "available");
}

#[test]
fn every_command_a_script_calls_is_in_the_documented_list() {
    let acl = include_str!("../../deploy/leasehold.acl")
        .lines()
        .find(|line| line.starts_with("user leasehold "))
        .expect("the user line");
    let allowed: Vec<&str> = acl
        .split(' ')
        .filter_map(|rule| rule.strip_prefix('+'))
        .collect();
    let lua = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lua");
    let mut files = vec![];
    for dir in [lua.clone(), lua.join("lib")] {
        for entry in std::fs::read_dir(dir).expect("lua/") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "lua") {
                files.push(path);
            }
        }
    }
    let mut called = std::collections::BTreeSet::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read");
        for (at, _) in text.match_indices("call('") {
            let word = |from: &str| -> String {
                from.chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect()
            };
            let name = word(&text[at + 6..]).to_lowercase();
            // A literal second word is a subcommand (XINFO STREAM), which the list may
            // name alone (+xinfo|stream).
            let sub = text[at + 6 + name.len()..]
                .strip_prefix("', '")
                .map(|rest| word(rest).to_lowercase())
                .filter(|sub| !sub.is_empty());
            called.insert((name, sub));
        }
    }
    assert!(called.len() > 10, "found the scripts' commands: {called:?}");
    let missing: Vec<String> = called
        .iter()
        .filter(|(name, sub)| {
            let whole = sub.as_ref().map(|sub| format!("{name}|{sub}"));
            !allowed.contains(&name.as_str())
                && whole.is_none_or(|w| !allowed.contains(&w.as_str()))
        })
        .map(|(name, sub)| match sub {
            Some(sub) => format!("{name}|{sub}"),
            None => name.clone(),
        })
        .collect();
    assert!(
        missing.is_empty(),
        "not in deploy/leasehold.acl: {missing:?}"
    );
}

/// Through Sentinel, the servers the sentinels name may require a user too: the app logs
/// in to the primary as the minimal user with `auth` (`--sentinel-auth`), and Redis refuses
/// it nothing; without it, the app does not start.
#[tokio::test]
async fn through_sentinel_the_app_logs_in_to_the_primary_as_the_minimal_user() {
    if skipped_on_topology_rerun("it starts its own primary and sentinel") {
        return;
    }
    let primary = RedisProcess::start_locked(&[]);
    let (admin, app_password) = primary.passwords().expect("ACL users");
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "leasehold-sentinel-{port}-{}",
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).expect("sentinel dir");
    let config = dir.join("sentinel.conf");
    std::fs::write(
        &config,
        format!(
            "sentinel monitor acl 127.0.0.1 {} 1\n\
             sentinel auth-user acl admin\n\
             sentinel auth-pass acl {admin}\n",
            primary.port
        ),
    )
    .expect("sentinel.conf");
    let sentinel = RedisProcess::start_with_config(&config, port, &dir, &["--sentinel"]);
    let topology = |auth: Option<&str>| {
        Some(leasehold::store::Topology::Sentinel {
            urls: vec![sentinel.url()],
            master: "acl".to_owned(),
            auth: auth.map(|a| a.parse().expect("user:password")),
        })
    };

    let (settings, _) = settings_for(
        Options {
            topology: topology(None),
            ..Options::default()
        },
        leasehold::auth::Auth::anonymous(),
    );
    let refused = leasehold::app::build(&settings)
        .await
        .err()
        .expect("no login, no start");
    assert!(
        refused.to_string().contains("NOAUTH") || refused.to_string().contains("auth"),
        "{refused}"
    );

    let auth = format!("leasehold:{app_password}");
    let app = spawn_app_with(Options {
        topology: topology(Some(&auth)),
        ..Options::default()
    })
    .await;
    every_kind_of_call(&app).await;
    let mut admin = primary.connection();
    assert!(clients_of(&mut admin, "leasehold") > 0);
    assert_eq!(
        refusals_of(&mut admin, "leasehold"),
        Vec::<String>::new(),
        "Redis refused the leasehold user nothing"
    );
}

/// The README lists the user's commands: the same as the file's, none more, none fewer.
#[test]
fn the_readme_lists_exactly_the_commands_of_the_user() {
    let acl = include_str!("../../deploy/leasehold.acl")
        .lines()
        .find(|line| line.starts_with("user leasehold "))
        .expect("the user line");
    let mut allowed: Vec<String> = acl
        .split(' ')
        .filter_map(|rule| rule.strip_prefix('+'))
        .map(str::to_uppercase)
        .collect();
    allowed.sort();
    let readme = include_str!("../../README.md");
    let section = readme
        .split("**A Redis user with only what it needs**")
        .nth(1)
        .and_then(|rest| rest.split("no `CONFIG`").next())
        .expect("the README's Redis user");
    let mut listed: Vec<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| {
            quoted
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '|' || c.is_whitespace())
        })
        .flat_map(|quoted| {
            quoted
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    listed.sort();
    assert_eq!(listed, allowed);
}
