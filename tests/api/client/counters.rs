//! `counters.rs`: drawing and reading counters.

use super::*;

#[tokio::test]
async fn counter_calls_round_trip() {
    let app = spawn_app().await;
    let client = client_of(&app);
    let name = counter_name();

    let next = Next {
        count: Some(3),
        tz: Some("Europe/Paris".to_owned()),
        format: Some("CASE-{date}-{seq:05}".to_owned()),
        ..Next::default()
    };
    let draw = client.next_counter(&name, &next).await.expect("draw");
    assert_eq!(draw.values, [1, 2, 3]);
    let day = draw.period.clone().expect("a day");
    let compact = day.replace('-', "");
    assert_eq!(
        draw.ids,
        [1, 2, 3].map(|n| format!("CASE-{compact}-{n:05}"))
    );
    let read = client
        .get_counter(&name, &CounterPeriod::Date(day.clone()))
        .await
        .expect("read");
    assert_eq!((read.period, read.value), (Some(day), 3));
    let today = client
        .get_counter(
            &name,
            &CounterPeriod::Today(Some("Europe/Paris".to_owned())),
        )
        .await
        .expect("read today");
    assert!(today.value == 3 || today.value == 0, "{today:?}");

    let whole = Next {
        period: Some(Period::None),
        ..Next::default()
    };
    let draw = client.next_counter(&name, &whole).await.expect("draw");
    assert_eq!(
        (draw.period, draw.values, draw.ids.len()),
        (None, vec![1], 0)
    );
    let read = client
        .get_counter(&name, &CounterPeriod::Whole)
        .await
        .expect("read");
    assert_eq!(read.value, 1);
}
