//! `items.rs`: adding, reading, listing, writing and deleting items under their
//! preconditions, and the item a refused write carries.

use super::*;

#[tokio::test]
async fn item_calls_round_trip_with_their_preconditions() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();

    let added = client
        .add_items(
            &pool,
            &[
                NewItem::new("a").priority(5).data(json!({"client": "Ann"})),
                NewItem::new("b"),
            ],
        )
        .await
        .expect("add");
    assert_eq!(added.created, ["a", "b"]);
    let again = client
        .add_items(&pool, &[NewItem::new("a"), NewItem::new("c")])
        .await
        .expect("add");
    assert_eq!(
        (again.created, again.existing),
        (vec!["c".to_owned()], vec!["a".to_owned()])
    );

    let a = client.get_item(&pool, "a").await.expect("get");
    assert_eq!(
        (a.state, a.priority, a.version),
        (ItemState::Available, 5, 1)
    );
    assert_eq!(a.data, json!({"client": "Ann"}));
    assert_eq!(a.holder, None);

    // PUT: create only if absent, replace only at a version.
    let put = client
        .put_item(
            &pool,
            "d",
            &PutItem::new(json!({"n": 1})),
            &Preconditions::if_none_match_any(),
        )
        .await
        .expect("create");
    assert!(put.created);
    assert_eq!(put.item.version, 1);
    let put = client
        .put_item(
            &pool,
            "d",
            &PutItem::new(json!({"n": 2})),
            &Preconditions::if_match(1),
        )
        .await
        .expect("replace");
    assert!(!put.created);
    assert_eq!(
        (put.item.version, put.item.data.clone()),
        (2, json!({"n": 2}))
    );
    let mut with_version = PutItem::new(json!({"n": 3}));
    with_version.expected_version = Some(2);
    with_version.priority = Some(9);
    let put = client
        .put_item(&pool, "d", &with_version, &Preconditions::default())
        .await
        .expect("replace at a version");
    assert_eq!((put.item.version, put.item.priority), (3, 9));

    let patched = client
        .patch_item(
            &pool,
            "d",
            &json!({"m": true, "n": null}),
            &Preconditions::if_match(3),
        )
        .await
        .expect("patch");
    assert_eq!((patched.version, patched.data), (4, json!({"m": true})));

    client
        .delete_item(&pool, "d", &Preconditions::if_match(4))
        .await
        .expect("delete");
    assert_eq!(
        code_of(client.get_item(&pool, "d").await),
        ProblemCode::NotFound
    );

    // Listing: a filter, and paging by cursor.
    let leased = client
        .claim_item(&pool, "b", "bob", Some(60_000))
        .await
        .expect("claim");
    let by_holder = client
        .list_items(
            &pool,
            &ItemFilter {
                holder: Some("bob".to_owned()),
                ..ItemFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(by_holder.items.len(), 1);
    assert_eq!(by_holder.items[0].id, "b");
    let available = client
        .list_items(
            &pool,
            &ItemFilter {
                state: Some(ItemState::Available),
                ..ItemFilter::default()
            },
        )
        .await
        .expect("list");
    let mut ids: Vec<String> = available.items.into_iter().map(|i| i.id).collect();
    ids.sort();
    assert_eq!(ids, ["a", "c"]);

    let first = client
        .list_items(
            &pool,
            &ItemFilter {
                limit: Some(2),
                ..ItemFilter::default()
            },
        )
        .await
        .expect("a page");
    assert_eq!(first.items.len(), 2);
    assert!(first.next_cursor.is_some());
    let all = client
        .list_all_items(
            &pool,
            &ItemFilter {
                limit: Some(1),
                ..ItemFilter::default()
            },
        )
        .await
        .expect("every page");
    let mut ids: Vec<String> = all.into_iter().map(|i| i.id).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b", "c"]);
    leased.release(&Release::default()).await.expect("release");
}

#[tokio::test]
async fn write_refusals_carry_the_items_current_state() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let pool = pool_name();
    client
        .put_item(
            &pool,
            "a",
            &PutItem::new(json!({})),
            &Preconditions::default(),
        )
        .await
        .expect("create");

    let stale_if_match = client
        .put_item(
            &pool,
            "a",
            &PutItem::new(json!({"n": 1})),
            &Preconditions::if_match(7),
        )
        .await
        .expect_err("a stale If-Match");
    assert_eq!(stale_if_match.code(), Some(ProblemCode::PreconditionFailed));
    assert_eq!(stale_if_match.current().map(|c| c.version), Some(1));

    let mut stale = PutItem::new(json!({"n": 1}));
    stale.expected_version = Some(7);
    let conflict = client
        .put_item(&pool, "a", &stale, &Preconditions::default())
        .await
        .expect_err("a stale expected_version");
    assert_eq!(conflict.code(), Some(ProblemCode::VersionConflict));
    let current = conflict.current().expect("the current state");
    assert_eq!(
        (current.version, current.state.as_deref()),
        (1, Some("available"))
    );

    let exists = client
        .put_item(
            &pool,
            "a",
            &PutItem::new(json!({})),
            &Preconditions::if_none_match_any(),
        )
        .await;
    assert_eq!(code_of(exists), ProblemCode::PreconditionFailed);
    let not_leased = client
        .patch_item(&pool, "a", &json!({"n": 2}), &Preconditions::lease_token(1))
        .await;
    assert_eq!(code_of(not_leased), ProblemCode::LeaseLost);
    assert_eq!(
        code_of(
            client
                .delete_item(&pool, "missing", &Preconditions::default())
                .await
        ),
        ProblemCode::NotFound
    );

    let strict = pool_name();
    client
        .put_pool(
            &strict,
            &PoolSettings {
                require_if_match: Some(true),
                ..PoolSettings::default()
            },
        )
        .await
        .expect("a strict pool");
    let unguarded = client
        .put_item(
            &strict,
            "a",
            &PutItem::new(json!({})),
            &Preconditions::default(),
        )
        .await;
    assert_eq!(code_of(unguarded), ProblemCode::PreconditionRequired);
}
