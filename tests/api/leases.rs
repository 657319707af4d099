//! Leases: claim-next, claim-specific, renew, release, complete, assign, requeue, expiry.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn claim_next_grants_highest_priority_first_then_arrival_order() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [
            {"id": "low", "priority": -5},
            {"id": "first", "priority": 0},
            {"id": "urgent", "priority": 10},
            {"id": "second", "priority": 0},
        ]}),
    )
    .await
    .expect(200);
    let mut order = Vec::new();
    while let Some(lease) = app.claim(&pool, "alice").await {
        order.push(lease["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(order, ["urgent", "first", "second", "low"]);
}
