//! `lib.rs`: the client's own settings, such as a caller-chosen idempotency key.

use super::*;

#[tokio::test]
async fn a_caller_chosen_idempotency_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let name = counter_name();
    let invocation = client.with_idempotency_key(uuid::Uuid::new_v4().to_string());

    let next = Next {
        count: Some(2),
        ..Next::default()
    };
    let first = invocation.next_counter(&name, &next).await.expect("draw");
    let replay = invocation.next_counter(&name, &next).await.expect("replay");
    assert_eq!(first.values, [1, 2]);
    assert_eq!(replay.values, first.values, "the same key, the same answer");
    let other = client.next_counter(&name, &next).await.expect("draw");
    assert_eq!(other.values, [3, 4], "a fresh key is a new draw");

    let reused = invocation.next_counter(&name, &Next::default()).await;
    assert_eq!(code_of(reused), ProblemCode::IdempotencyKeyReused);
}
