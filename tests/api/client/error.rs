//! `error.rs`: every refusal comes back as its problem code.

use super::*;

#[tokio::test]
async fn bad_input_a_wrong_key_and_a_large_body_come_back_as_their_codes() {
    let app = spawn_app_with(Options {
        max_body_bytes: Some(4096),
        ..Options::default()
    })
    .await;
    let client = client_of(&app);
    let pool = pool_name();

    let error = client
        .claim_next(&pool, &Claim::new("alice").count(0))
        .await
        .expect_err("count 0");
    assert_eq!(error.code(), Some(ProblemCode::InvalidRequest));
    assert_eq!(
        error.problem().and_then(|p| p.field.as_deref()),
        Some("count")
    );
    let bad_name = client.get_pool("no/such name").await;
    assert_eq!(code_of(bad_name), ProblemCode::InvalidRequest);

    let stranger = Client::builder(app.url(""))
        .api_key(Some("lh_not-a-key".to_owned()))
        .build()
        .expect("a client");
    let error = stranger.list_pools().await.expect_err("a wrong key");
    assert_eq!(error.code(), Some(ProblemCode::Unauthorized));
    assert_eq!(error.problem().map(|p| p.status), Some(401));

    let large = NewItem::new("a").data(json!({"text": "x".repeat(8192)}));
    assert_eq!(
        code_of(client.add_items(&pool, &[large]).await),
        ProblemCode::PayloadTooLarge
    );
}
