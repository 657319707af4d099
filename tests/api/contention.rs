//! Contention: many parallel clients against one pool and one counter, through real HTTP.
//! Whatever the interleaving, every item is granted exactly once and every counter value
//! is handed out exactly once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::helpers::*;
use serde_json::{Value, json};

/// One grant seen by a client: which item, with which fencing token, to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    id: String,
    token: u64,
    holder: String,
}

/// Checks a history of grants against the pool's items: every item granted exactly once,
/// nothing granted that was not in the pool, and no token handed out twice. Returns every
/// violation found (empty when the history is correct).
fn exactly_once_violations(expected_ids: &[String], history: &[Grant]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut grants: HashMap<&str, Vec<&Grant>> = HashMap::new();
    for grant in history {
        grants.entry(grant.id.as_str()).or_default().push(grant);
    }
    for id in expected_ids {
        match grants.get(id.as_str()).map(Vec::len) {
            Some(1) => {}
            None => problems.push(format!("item {id} was never granted")),
            Some(n) => problems.push(format!(
                "item {id} was granted {n} times: {:?}",
                grants[id.as_str()]
            )),
        }
    }
    let known: HashSet<&str> = expected_ids.iter().map(String::as_str).collect();
    for grant in history {
        if !known.contains(grant.id.as_str()) {
            problems.push(format!("unknown item granted: {grant:?}"));
        }
    }
    let mut tokens: HashMap<u64, &Grant> = HashMap::new();
    for grant in history {
        if let Some(earlier) = tokens.insert(grant.token, grant) {
            problems.push(format!(
                "token {} granted twice: {earlier:?} and {grant:?}",
                grant.token
            ));
        }
    }
    problems
}

/// One client: claims batches and completes each lease until the pool has nothing left.
async fn drain(app: Arc<TestApp>, pool: String, client: usize) -> Vec<Grant> {
    let holder = format!("worker-{client}");
    let count = 1 + client % 7;
    let mut history = Vec::new();
    // Bounded: 2,000 items need at most 2,000 claims even from a single client.
    for _ in 0..2_000 {
        let body = app
            .post(
                &format!("/v1/pools/{pool}/claim"),
                json!({"holder": holder, "count": count, "lease_ms": 600_000}),
            )
            .await
            .expect(200);
        let leases = body["leases"].as_array().expect("leases").clone();
        if leases.is_empty() {
            return history;
        }
        for lease in leases {
            let grant = Grant {
                id: lease["id"].as_str().expect("id").to_owned(),
                token: lease["token"].as_u64().expect("token"),
                holder: lease["holder"].as_str().expect("holder").to_owned(),
            };
            assert_eq!(grant.holder, holder);
            app.post(
                &format!("/v1/pools/{pool}/items/{}/complete", grant.id),
                json!({"holder": holder, "token": grant.token}),
            )
            .await
            .expect(200);
            history.push(grant);
        }
    }
    panic!("{holder} was still being granted items after 2,000 claims");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_clients_draining_a_pool_get_every_item_exactly_once() {
    let app = Arc::new(spawn_app().await);
    let pool = pool_name();
    let ids: Vec<String> = (0..2_000).map(|i| format!("item-{i:04}")).collect();
    for chunk in ids.chunks(1_000) {
        let items: Vec<Value> = chunk.iter().map(|id| json!({"id": id})).collect();
        let added = app
            .post(&format!("/v1/pools/{pool}/items"), json!({"items": items}))
            .await
            .expect(200);
        assert_eq!(added["created"].as_array().expect("created").len(), 1_000);
    }

    let clients: Vec<_> = (0..64)
        .map(|client| tokio::spawn(drain(app.clone(), pool.clone(), client)))
        .collect();
    let mut history = Vec::new();
    for client in clients {
        history.extend(client.await.expect("client task finished"));
    }

    let violations = exactly_once_violations(&ids, &history);
    assert!(violations.is_empty(), "{violations:#?}");
    assert_eq!(history.len(), 2_000);
    let pool_view = app.get(&format!("/v1/pools/{pool}")).await.expect(200);
    assert_eq!(
        pool_view["counts"],
        json!({"available": 0, "leased": 0, "delayed": 0, "done": 2_000, "dead": 0})
    );
    assert_eq!(pool_view["stats"]["claims"], 2_000);
}

#[test]
fn exactly_once_checker_reports_a_duplicate_grant() {
    let ids = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    let grant = |id: &str, token: u64, holder: &str| Grant {
        id: id.to_owned(),
        token,
        holder: holder.to_owned(),
    };
    let correct = [grant("a", 1, "x"), grant("b", 2, "y"), grant("c", 3, "x")];
    assert!(exactly_once_violations(&ids, &correct).is_empty());

    let doubled = [
        grant("a", 1, "x"),
        grant("b", 2, "y"),
        grant("a", 3, "y"),
        grant("c", 4, "x"),
    ];
    let violations = exactly_once_violations(&ids, &doubled);
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0].contains("item a was granted 2 times"),
        "{violations:#?}"
    );

    let same_token = [grant("a", 1, "x"), grant("b", 1, "y"), grant("c", 3, "x")];
    let violations = exactly_once_violations(&ids, &same_token);
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0].contains("token 1 granted twice"),
        "{violations:#?}"
    );

    let missing = [grant("a", 1, "x"), grant("b", 2, "y")];
    assert_eq!(
        exactly_once_violations(&ids, &missing),
        ["item c was never granted"]
    );
}

/// Batch sizes that add up to 25, in an order that differs from client to client.
const BATCHES: [u64; 6] = [1, 4, 2, 7, 3, 8];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_counter_draws_hand_out_every_value_exactly_once() {
    let app = Arc::new(spawn_app().await);
    let clients: Vec<_> = (0..32)
        .map(|client| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut draws = Vec::new();
                for i in 0..BATCHES.len() {
                    let count = BATCHES[(client + i) % BATCHES.len()];
                    let draw = app
                        .post("/v1/counters/cases/next", json!({"count": count}))
                        .await
                        .expect(200);
                    let values: Vec<u64> = draw["values"]
                        .as_array()
                        .expect("values")
                        .iter()
                        .map(|v| v.as_u64().expect("integer"))
                        .collect();
                    assert_eq!(values.len() as u64, count, "{draw:#?}");
                    assert!(
                        values.windows(2).all(|w| w[1] == w[0] + 1),
                        "batch not contiguous: {values:?}"
                    );
                    let period = draw["period"].as_str().expect("period").to_owned();
                    draws.push((period, values));
                }
                draws
            })
        })
        .collect();

    // Grouped by period, so a run that happens to cross midnight is still checked exactly.
    let mut by_period: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for client in clients {
        for (period, values) in client.await.expect("client task finished") {
            by_period.entry(period).or_default().extend(values);
        }
    }
    let mut total = 0;
    for (period, mut values) in by_period {
        values.sort_unstable();
        let n = values.len() as u64;
        assert_eq!(values, (1..=n).collect::<Vec<_>>(), "period {period}");
        total += n;
    }
    assert_eq!(total, 800);
}
