//! `pools.rs`: creating, changing, reading, listing and deleting pools.

use super::*;

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
