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

    assert_eq!(created.config.keep_done_ms, Some(7 * 86_400_000));
    assert_eq!(created.config.keep_dead_ms, Some(30 * 86_400_000));
    let usage = created.usage.as_ref().expect("usage");
    assert_eq!((usage.items, usage.bytes), (0, 0));

    let settings = PoolSettings {
        require_if_match: Some(true),
        max_events: Some(0),
        keep_done_ms: Some(None),
        keep_dead_ms: Some(Some(1000)),
        ..PoolSettings::default()
    };
    let (changed, was_created) = client.put_pool(&pool, &settings).await.expect("put");
    assert!(!was_created);
    assert!(changed.config.require_if_match);
    assert_eq!(changed.config.max_events, 0);
    assert_eq!(changed.config.lease_ms, 5000, "unchanged settings are kept");
    assert_eq!(changed.config.keep_done_ms, None, "kept for ever");
    assert_eq!(changed.config.keep_dead_ms, Some(1000));

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

    let tenant = client.tenant().await.expect("tenant");
    assert_eq!(tenant.tenant, app.tenant.to_string());
    assert_eq!(tenant.pools, 1);
    assert_eq!(tenant.limits.max_pools_per_tenant, 10_000);

    client.delete_pool(&pool).await.expect("delete");
    assert_eq!(code_of(client.get_pool(&pool).await), ProblemCode::NotFound);
    let pools = client.list_pools().await.expect("list");
    assert!(pools.iter().all(|p| p.name != pool));
}

#[tokio::test]
async fn list_pools_follows_every_page() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let mut names: Vec<String> = (0..205).map(|_| pool_name()).collect();
    for name in &names {
        client
            .put_pool(name, &PoolSettings::default())
            .await
            .expect("put");
    }
    names.sort();
    let listed: Vec<String> = client
        .list_pools()
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        listed, names,
        "three pages of the default 100, in name order"
    );
    let page = client
        .list_pools_page(Some(&names[9]), Some(5))
        .await
        .expect("page");
    let page_names: Vec<&str> = page.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        page_names,
        names[10..15].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(page.next_after.as_deref(), Some(names[14].as_str()));
}
