//! The Lua scripts called directly with redis-rs, for what HTTP cannot show: the order of
//! the available set, the bound on reclaim work, that rejected input writes nothing, and
//! that the store survives a flushed script cache.

use crate::helpers::*;
use leasehold::names::{PoolName, Tenant};
use leasehold::store::Scripts;
use leasehold::store::scripts::Function;
use serde_json::Value;

/// A fresh tenant and pool, and every key of that pool in the order the scripts take
/// them (no idempotency key). Tests index only the fixed head: 0 pool, 1 items, 2 avail,
/// 3 leased, 4 delayed, 5 done, 6 dead, 7 holders.
fn fresh_pool() -> (Tenant, PoolName, Vec<String>) {
    let tenant = Tenant::parse(
        "tenant",
        &format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
    )
    .expect("valid tenant");
    let pool = PoolName::parse("pool", &pool_name()).expect("valid pool");
    let keys = leasehold::store::keys::pool_keys(&tenant, &pool);
    assert!(keys.len() >= 9, "{keys:?}");
    (tenant, pool, keys)
}

/// Runs `script` with `keys` and ARGV = ['', ''] (no idempotency) followed by `args`; for
/// the scripts that take limits and may create the pool (`add_items`, `put_item`), with
/// the default limits and the pool's name reserved.
fn run(script: &Function, keys: &[String], args: &[&str]) -> redis::RedisResult<Value> {
    let scripts = Scripts::new();
    let quotas = leasehold::store::Quotas::default();
    let (max_items, max_bytes) = (
        quotas.max_items_per_pool.to_string(),
        quotas.max_pool_bytes.to_string(),
    );
    let mut args: Vec<&str> = args.to_vec();
    if script.name() == scripts.add_items.name() {
        // Items come as id, priority, data and when (here: now).
        args = args
            .chunks(3)
            .flat_map(|item| item.iter().copied().chain(std::iter::once("")))
            .collect();
        args.splice(0..0, [max_items.as_str(), max_bytes.as_str(), "1"]);
    } else if script.name() == scripts.put_item.name() {
        args.resize(9, "");
        args.extend([max_items.as_str(), max_bytes.as_str(), "1"]);
    }
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(key);
    }
    invocation.arg("").arg("");
    for arg in &args {
        invocation.arg(*arg);
    }
    let (json, replayed): (String, i64) = invocation.invoke(&mut redis().connection())?;
    assert_eq!(replayed, 0, "no idempotency key, so never a replay");
    Ok(serde_json::from_str(&json).expect("scripts reply with JSON"))
}

/// Runs a script that must succeed and returns its `ok` part.
#[track_caller]
fn ok(script: &Function, keys: &[String], args: &[&str]) -> Value {
    let reply = run(script, keys, args).expect("script ran");
    assert!(reply.get("ok").is_some(), "not ok: {reply:#?}");
    reply["ok"].clone()
}

fn lease_ids(reply: &Value) -> Vec<String> {
    reply["leases"]
        .as_array()
        .map(|leases| {
            leases
                .iter()
                .map(|l| l["id"].as_str().expect("id").to_owned())
                .collect()
        })
        .unwrap_or_default() // an empty Lua table encodes as {}
}

fn conn() -> TestConnection {
    redis().connection()
}

fn dump_all(keys: &[String]) -> Vec<Option<Vec<u8>>> {
    let mut conn = conn();
    keys.iter()
        .map(|key| redis::cmd("DUMP").arg(key).query(&mut conn).expect("DUMP"))
        .collect()
}

#[test]
fn claim_next_takes_highest_priority_first_then_arrival_order() {
    let scripts = Scripts::new();
    let (_, _, keys) = fresh_pool();
    ok(
        &scripts.add_items,
        &keys,
        &[
            "low", "-5", "{}", "first", "0", "{}", "urgent", "10", "{}", "second", "0", "{}",
            "top", "1000000", "{}", "third", "0", "{}",
        ],
    );
    ok(&scripts.add_items, &keys, &["later-urgent", "10", "{}"]);
    let reply = ok(&scripts.claim_next, &keys, &["alice", "100", ""]);
    assert_eq!(
        lease_ids(&reply),
        [
            "top",
            "urgent",
            "later-urgent",
            "first",
            "second",
            "third",
            "low"
        ]
    );
}

#[test]
fn claim_next_reclaims_a_bounded_number_of_expired_leases_per_call() {
    let scripts = Scripts::new();
    let (_, _, keys) = fresh_pool();
    let ids: Vec<String> = (0..150).map(|i| format!("item-{i:03}")).collect();
    let mut args: Vec<&str> = Vec::new();
    for id in &ids {
        args.extend([id.as_str(), "0", "{}"]);
    }
    ok(&scripts.add_items, &keys, &args);
    // Two calls (count is at most 100); the leases are long enough that none of the first
    // call's expires before the second call runs, and short enough to wait for.
    let first = ok(&scripts.claim_next, &keys, &["short", "100", "500"]);
    let second = ok(&scripts.claim_next, &keys, &["short", "100", "500"]);
    assert_eq!(lease_ids(&first).len() + lease_ids(&second).len(), 150);

    let mut conn = conn();
    let latest: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(&keys[3])
        .arg(-1)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut conn)
        .expect("ZRANGE");
    let last_expiry = latest.first().expect("leases").1 as u64;
    wait_for(
        std::time::Duration::from_secs(5),
        "Redis's clock to pass every lease's expiry",
        || redis_now_ms() > last_expiry as i64,
    );
    let expired = |conn: &mut TestConnection| -> u64 {
        redis::cmd("ZCOUNT")
            .arg(&keys[3])
            .arg("-inf")
            .arg(last_expiry)
            .query(conn)
            .expect("ZCOUNT")
    };
    assert_eq!(expired(&mut conn), 150);

    // Each call grants one lease without expiry (score +inf), so it never counts as expired.
    ok(&scripts.claim_next, &keys, &["steady", "1", "0"]);
    let left = expired(&mut conn);
    assert!(
        (150 - 64..150).contains(&left),
        "one claim reclaimed {} expired leases (at most 64 allowed)",
        150 - left
    );

    let mut calls = 1;
    while expired(&mut conn) > 0 {
        assert!(calls < 10, "expired leases still left after {calls} calls");
        ok(&scripts.claim_next, &keys, &["steady", "1", "0"]);
        calls += 1;
    }
    let stats: Option<u64> = redis::cmd("HGET")
        .arg(&keys[0])
        .arg("expired")
        .query(&mut conn)
        .expect("HGET");
    assert_eq!(stats, Some(150));
}

#[test]
fn add_items_with_a_bad_item_writes_nothing() {
    let scripts = Scripts::new();
    for bad in [
        ["third", "0", "not an object"],
        ["a/b", "0", "{}"],
        ["third", "1.5", "{}"],
    ] {
        let (_, _, keys) = fresh_pool();
        let mut args = vec!["first", "0", "{}", "second", "0", "{}"];
        args.extend(bad);
        let error = run(&scripts.add_items, &keys, &args).expect_err("bad item is refused");
        assert!(
            error.to_string().contains("leasehold: ARGV["),
            "{bad:?}: {error}"
        );
        let existing: u64 = redis::cmd("EXISTS")
            .arg(&keys)
            .query(&mut conn())
            .expect("EXISTS");
        assert_eq!(existing, 0, "{bad:?} left keys behind");
    }
}

#[test]
fn claim_next_with_a_count_out_of_range_changes_nothing() {
    let scripts = Scripts::new();
    let (_, _, keys) = fresh_pool();
    ok(&scripts.add_items, &keys, &["a", "0", "{}", "b", "1", "{}"]);
    ok(&scripts.claim_next, &keys, &["alice", "1", "60000"]);
    let before = dump_all(&keys);
    for count in ["0", "101", "-1", "x"] {
        let error =
            run(&scripts.claim_next, &keys, &["bob", count, ""]).expect_err("count refused");
        assert!(
            error.to_string().contains("ARGV[4]"),
            "count {count}: {error}"
        );
        assert_eq!(dump_all(&keys), before, "count {count} changed the pool");
    }
}

#[test]
fn put_item_with_a_failing_if_match_leaves_the_item_unchanged() {
    let scripts = Scripts::new();
    let (_, _, keys) = fresh_pool();
    ok(&scripts.add_items, &keys, &["a", "3", r#"{"v":1}"#]);
    let item_before = |conn: &mut TestConnection| -> Option<Vec<u8>> {
        redis::cmd("HGET")
            .arg(&keys[1])
            .arg("a")
            .query(conn)
            .expect("HGET")
    };
    let mut conn = conn();
    let before = item_before(&mut conn);
    assert!(before.is_some());
    let indexes_before = dump_all(&keys[2..8]);

    let reply = run(
        &scripts.put_item,
        &keys,
        &["a", r#"{"v":2}"#, "9", "7,8", "", "", "", ""],
    )
    .expect("a refusal is a reply, not an error");
    assert_eq!(reply["err"], "precondition_failed", "{reply:#?}");
    assert_eq!(reply["current"]["version"], 1, "{reply:#?}");

    assert_eq!(item_before(&mut conn), before);
    assert_eq!(dump_all(&keys[2..8]), indexes_before);
}

#[tokio::test]
async fn requests_still_work_after_the_function_library_is_flushed() {
    let (private, app) = app_on_own_redis().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;

    let mut conn = private.connection();
    let library = Scripts::new().library().name().to_owned();
    let loaded = |conn: &mut redis::Connection| {
        let listed: Vec<redis::Value> = redis::cmd("FUNCTION")
            .arg("LIST")
            .arg("LIBRARYNAME")
            .arg(&library)
            .query(conn)
            .expect("FUNCTION LIST");
        !listed.is_empty()
    };
    assert!(loaded(&mut conn), "the store loaded its library at start");
    let () = redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query(&mut conn)
        .expect("FUNCTION FLUSH");
    assert!(!loaded(&mut conn));

    let lease = app.claim(&pool, "alice").await.expect("a lease");
    assert_eq!(lease["id"], "a");
    assert!(loaded(&mut conn), "the store loaded its library again");
}

#[test]
fn arrival_order_holds_across_four_billion_arrivals() {
    let scripts = Scripts::new();
    let (_, _, keys) = fresh_pool();
    // Start the pool's arrival counter just below 2^32, where a 32-bit sequence would wrap.
    redis::cmd("HSET")
        .arg(&keys[0])
        .arg("seq")
        .arg(4_294_967_294_u64)
        .exec(&mut conn())
        .expect("HSET");
    ok(
        &scripts.add_items,
        &keys,
        &["first", "0", "{}", "second", "0", "{}", "third", "0", "{}"],
    );
    let order: Vec<String> = (0..3)
        .flat_map(|_| lease_ids(&ok(&scripts.claim_next, &keys, &["w", "1", ""])))
        .collect();
    assert_eq!(order, ["first", "second", "third"]);
}

#[test]
fn a_patch_based_on_an_item_deleted_and_created_again_is_asked_to_merge_again() {
    let scripts = Scripts::new();
    let (_, _, keys) = fresh_pool();
    let created_of = |reply: &Value| reply["item"]["created"].as_u64().expect("created");
    let first = ok(
        &scripts.put_item,
        &keys,
        &["a", "{}", "", "", "", "", "", ""],
    );
    ok(&scripts.delete_item, &keys, &["a", "", "", "", ""]);
    wait_for(
        std::time::Duration::from_secs(5),
        "the clock to move on",
        || redis_now_ms() > created_of(&first) as i64,
    );
    let again = ok(
        &scripts.put_item,
        &keys,
        &["a", "{}", "", "", "", "", "", ""],
    );
    assert_eq!(
        again["item"]["version"], first["item"]["version"],
        "versions start again at 1"
    );

    let stale_base = created_of(&first).to_string();
    let reply = run(
        &scripts.put_item,
        &keys,
        &[
            "a",
            r#"{"merged":true}"#,
            "",
            "",
            "",
            "",
            "",
            "1",
            &stale_base,
        ],
    )
    .expect("a retry is a reply");
    assert_eq!(reply["retry"], 0, "{reply:#?}");
    let current_base = created_of(&again).to_string();
    let reply = run(
        &scripts.put_item,
        &keys,
        &[
            "a",
            r#"{"merged":true}"#,
            "",
            "",
            "",
            "",
            "",
            "1",
            &current_base,
        ],
    )
    .expect("the write runs");
    assert_eq!(reply["ok"]["item"]["version"], 2, "{reply:#?}");
}

#[test]
fn prune_functions_removes_other_versions_libraries_and_nothing_else() {
    let private = RedisProcess::start(&[]);
    let mut conn = private.connection();
    let current = Scripts::new();
    let load = |conn: &mut redis::Connection, source: &str| {
        let _: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(source)
            .query(conn)
            .expect("FUNCTION LOAD");
    };
    // This version's library, an older version's, and someone else's.
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(current.library().source())
        .query(&mut conn)
        .expect("this version's library loads");
    load(
        &mut conn,
        "#!lua name=leasehold_000000000000\nredis.register_function('lh_000000000000_ping', function() return 1 end)",
    );
    load(
        &mut conn,
        "#!lua name=theirs\nredis.register_function('theirs_ping', function() return 1 end)",
    );
    let libraries = |conn: &mut redis::Connection| {
        let listed: Vec<Vec<redis::Value>> = redis::cmd("FUNCTION")
            .arg("LIST")
            .query(conn)
            .expect("FUNCTION LIST");
        let mut names: Vec<String> = listed
            .iter()
            .filter_map(|library| {
                library
                    .windows(2)
                    .find_map(|pair| match (&pair[0], &pair[1]) {
                        (redis::Value::BulkString(k), redis::Value::BulkString(v))
                            if k == b"library_name" =>
                        {
                            Some(String::from_utf8_lossy(v).into_owned())
                        }
                        _ => None,
                    })
            })
            .collect();
        names.sort();
        names
    };
    let all = {
        let mut all = vec![
            current.library().name().to_owned(),
            "leasehold_000000000000".to_owned(),
            "theirs".to_owned(),
        ];
        all.sort();
        all
    };
    assert_eq!(libraries(&mut conn), all);

    let prune = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leasehold"))
            .args(["prune-functions", "--redis", &private.url()])
            .args(extra)
            .output()
            .expect("leasehold runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dry = prune(&["--dry-run"]);
    assert!(dry.contains("would remove leasehold_000000000000"), "{dry}");
    assert_eq!(libraries(&mut conn), all, "a dry run removes nothing");

    let done = prune(&[]);
    assert!(done.contains("removed leasehold_000000000000"), "{done}");
    let mut left = vec![current.library().name().to_owned(), "theirs".to_owned()];
    left.sort();
    assert_eq!(libraries(&mut conn), left);
}

#[test]
fn every_operation_is_a_function_of_one_library_named_after_its_source() {
    let scripts = Scripts::new();
    let library = scripts.library();
    let version = library
        .name()
        .strip_prefix("leasehold_")
        .expect("named leasehold_<version>");
    assert_eq!(version.len(), 12);
    assert!(
        library
            .source()
            .starts_with(&format!("#!lua name={}\n", library.name()))
    );
    // Every lua/<op>.lua is a function, called by its name.
    for (name, function) in scripts.named() {
        assert_eq!(function.name(), name);
        assert_eq!(function.fcall_name(), format!("lh_{version}_{name}"));
        assert!(
            library
                .source()
                .contains(&format!("register('{name}', {name}, ")),
            "{name} is registered"
        );
    }
    // The library Redis holds has exactly those functions.
    let private = RedisProcess::start(&[]);
    let mut conn = private.connection();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(library.source())
        .query(&mut conn)
        .expect("the library loads");
    let dump: String = format!(
        "{:?}",
        redis::cmd("FUNCTION")
            .arg("LIST")
            .query::<redis::Value>(&mut conn)
            .expect("FUNCTION LIST")
    );
    for (_, function) in scripts.named() {
        assert!(
            dump.contains(function.fcall_name()),
            "{} is loaded",
            function.fcall_name()
        );
    }
}

#[tokio::test]
async fn two_versions_of_the_library_serve_one_pool_side_by_side() {
    let (private, app) = app_on_own_redis().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b", "c"]).await;

    // Another version of the library (here: the same operations, another source), loaded
    // beside this one, as a replica of another release would load it.
    let other = leasehold::store::scripts::Library::new(&format!(
        "{}-- another release\n",
        leasehold::store::scripts::BODY
    ));
    let current = Scripts::new();
    assert_ne!(other.name(), current.library().name());
    let mut conn = private.connection();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(other.source())
        .query(&mut conn)
        .expect("the other version loads beside this one");

    // The other version claims through its own function, this one over HTTP: one pool,
    // no item granted twice, tokens in one sequence.
    let tenant = app.tenant.clone();
    let pool_ref = PoolName::parse("pool", &pool).expect("pool");
    let mut call = redis::cmd("FCALL");
    call.arg(format!("lh_{}_claim_next", other.version()));
    let keys = leasehold::store::keys::pool_keys(&tenant, &pool_ref);
    call.arg(keys.len())
        .arg(&keys)
        .arg("")
        .arg("")
        .arg("old")
        .arg("1")
        .arg("")
        .arg("")
        .arg("");
    let (json, _): (String, i64) = call.query(&mut conn).expect("the other version's claim");
    let reply: Value = serde_json::from_str(&json).expect("JSON");
    let first = &reply["ok"]["leases"][0];
    assert_eq!(first["id"], "a", "{reply}");

    let lease = app.claim(&pool, "new").await.expect("a lease");
    assert_eq!(lease["id"], "b");
    assert!(lease["token"].as_u64() > first["token"].as_u64());
    let item = app.item(&pool, "a").await;
    assert_eq!(item["holder"], "old");
}
