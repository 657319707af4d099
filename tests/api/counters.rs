//! Counters: per-period sequences, batches, id formats, time zones, retention.

use crate::helpers::*;
use leasehold::names::CounterName;
use serde_json::{Value, json};

/// Draws from `name` and returns the answer body (asserting 200).
async fn next(app: &TestApp, name: &str, body: Value) -> Value {
    app.post(&format!("/v1/counters/{name}/next"), body)
        .await
        .expect(200)
}

fn values(draw: &Value) -> Vec<u64> {
    draw["values"]
        .as_array()
        .expect("values is a list")
        .iter()
        .map(|v| v.as_u64().expect("values are integers"))
        .collect()
}

fn period(draw: &Value) -> String {
    draw["period"].as_str().expect("a day period").to_owned()
}

/// The last value the API reports for `name` with this query string.
async fn value(app: &TestApp, name: &str, query: &str) -> Value {
    app.get(&format!("/v1/counters/{name}{query}"))
        .await
        .expect(200)
}

#[tokio::test]
async fn counter_values_start_at_one_and_increase() {
    let app = spawn_app().await;
    let mut drawn = Vec::new();
    for _ in 0..3 {
        drawn.extend(values(&next(&app, "cases", json!({})).await));
    }
    assert_eq!(drawn, [1, 2, 3]);
}

#[tokio::test]
async fn a_batch_is_contiguous() {
    let app = spawn_app().await;
    let first = next(&app, "cases", json!({"count": 5})).await;
    assert_eq!(values(&first), [1, 2, 3, 4, 5]);
    let second = next(&app, "cases", json!({"count": 3})).await;
    assert_eq!(values(&second), [6, 7, 8]);
}

#[tokio::test]
async fn format_renders_the_period_date_and_the_padded_value() {
    let app = spawn_app().await;
    let draw = next(
        &app,
        "cases",
        json!({"count": 2, "format": "CASE-{date}-{seq:05}"}),
    )
    .await;
    let period = period(&draw);
    assert_eq!(period.len(), 10, "period {period} is YYYY-MM-DD");
    let date = period.replace('-', "");
    assert_eq!(
        draw["ids"],
        json!([format!("CASE-{date}-00001"), format!("CASE-{date}-00002")])
    );
    assert_eq!(values(&draw), [1, 2]);
}

#[tokio::test]
async fn a_draw_without_format_has_no_ids() {
    let app = spawn_app().await;
    let draw = next(&app, "cases", json!({"count": 2})).await;
    assert_eq!(values(&draw), [1, 2]);
    assert!(draw.get("ids").is_none(), "unexpected ids: {draw:#?}");
}

#[tokio::test]
async fn period_none_has_no_period_and_is_independent_of_the_day_counter() {
    let app = spawn_app().await;
    let day = next(&app, "cases", json!({"count": 4})).await;
    assert_eq!(values(&day), [1, 2, 3, 4]);

    let undated = next(&app, "cases", json!({"period": "none", "count": 2})).await;
    assert_eq!(undated["period"], Value::Null);
    assert_eq!(values(&undated), [1, 2]);

    let day_again = next(&app, "cases", json!({})).await;
    assert_eq!(values(&day_again), [5]);
    let read = value(&app, "cases", "?period=none").await;
    assert_eq!(read["value"], 2);
    assert_eq!(read["period"], Value::Null);
}

#[tokio::test]
async fn time_zones_on_either_side_of_midnight_draw_from_different_periods() {
    let app = spawn_app().await;
    // UTC+14 and UTC-11 are 25 hours apart: their dates always differ.
    let east = next(
        &app,
        "cases",
        json!({"tz": "Pacific/Kiritimati", "count": 3}),
    )
    .await;
    let west = next(
        &app,
        "cases",
        json!({"tz": "Pacific/Pago_Pago", "count": 2}),
    )
    .await;
    assert_ne!(period(&east), period(&west));
    assert_eq!(values(&east), [1, 2, 3]);
    assert_eq!(values(&west), [1, 2]);

    let east_read = value(&app, "cases", &format!("?period={}", period(&east))).await;
    assert_eq!(east_read["value"], 3);
    assert_eq!(east_read["period"], period(&east).as_str());
    let west_read = value(&app, "cases", &format!("?period={}", period(&west))).await;
    assert_eq!(west_read["value"], 2);
    assert_eq!(west_read["period"], period(&west).as_str());
}

#[tokio::test]
async fn get_without_period_reads_today_in_the_time_zone() {
    let app = spawn_app().await;
    let draw = next(
        &app,
        "cases",
        json!({"tz": "Pacific/Kiritimati", "count": 4}),
    )
    .await;
    let read = value(&app, "cases", "?tz=Pacific/Kiritimati").await;
    assert_eq!(read["period"], period(&draw).as_str());
    assert_eq!(read["value"], 4);
}

#[tokio::test]
async fn an_unused_counter_reads_zero() {
    let app = spawn_app().await;
    assert_eq!(value(&app, "never-drawn", "").await["value"], 0);
    assert_eq!(value(&app, "never-drawn", "?period=none").await["value"], 0);
    assert_eq!(
        value(&app, "never-drawn", "?period=2026-01-10").await["value"],
        0
    );
}

/// Sends a draw that must be refused as 400 on `field`, then checks nothing was drawn.
async fn assert_refused(app: &TestApp, body: Value, field: &str) {
    let problem = app
        .post("/v1/counters/cases/next", body.clone())
        .await
        .expect_problem(400, "invalid_request");
    assert_eq!(problem["field"], field, "{body}: {problem:#?}");
    assert_eq!(value(app, "cases", "").await["value"], 0, "{body}");
    assert_eq!(
        value(app, "cases", "?period=none").await["value"],
        0,
        "{body}"
    );
}

#[tokio::test]
async fn an_unknown_time_zone_is_rejected() {
    let app = spawn_app().await;
    assert_refused(&app, json!({"tz": "Mars/Olympus_Mons"}), "tz").await;
    assert_refused(&app, json!({"tz": ""}), "tz").await;
}

#[tokio::test]
async fn malformed_formats_are_rejected() {
    let app = spawn_app().await;
    for format in [
        "{day}",
        "CASE-{seq:0}",
        "CASE-{seq",
        "CASE-seq}",
        "{seq:021}",
    ] {
        assert_refused(&app, json!({"format": format}), "format").await;
    }
}

#[tokio::test]
async fn date_placeholder_needs_a_day_period() {
    let app = spawn_app().await;
    assert_refused(
        &app,
        json!({"period": "none", "format": "CASE-{date}-{seq}"}),
        "format",
    )
    .await;
}

#[tokio::test]
async fn count_outside_one_to_a_thousand_is_rejected() {
    let app = spawn_app().await;
    assert_refused(&app, json!({"count": 0}), "count").await;
    assert_refused(&app, json!({"count": 1001}), "count").await;
    // The bounds themselves are accepted.
    assert_eq!(
        values(&next(&app, "edge", json!({"count": 1000})).await).len(),
        1000
    );
}

fn pttl(app: &TestApp, name: &str, period: Option<&str>) -> i64 {
    let name = CounterName::parse("name", name).expect("valid counter name");
    let key = leasehold::store::keys::counter(&app.tenant, &name, period);
    redis::cmd("PTTL")
        .arg(&key)
        .query(&mut redis().connection())
        .expect("PTTL")
}

#[tokio::test]
async fn a_day_counter_key_expires_after_its_retention() {
    let app = spawn_app().await;
    let draw = next(&app, "cases", json!({})).await;
    let ttl = pttl(&app, "cases", Some(&period(&draw)));
    assert!(ttl > 0, "day counter key has PTTL {ttl}");
}

#[tokio::test]
async fn an_undated_counter_key_never_expires() {
    let app = spawn_app().await;
    next(&app, "cases", json!({"period": "none"})).await;
    assert_eq!(pttl(&app, "cases", None), -1);
}

/// Two fixed-offset time zones where it is the same date now, by Redis's clock, whose days
/// end at different instants: (the zone whose day ends later, the one whose day ends first).
fn zones_sharing_todays_date() -> (String, String) {
    let now = jiff::Timestamp::from_millisecond(redis_now_ms()).expect("time");
    let zones: Vec<(String, jiff::civil::Date)> = (-12..=14)
        .map(|offset: i32| {
            let name = match offset {
                0 => "Etc/GMT".to_owned(),
                o if o > 0 => format!("Etc/GMT-{o}"),
                o => format!("Etc/GMT+{}", -o),
            };
            let tz = jiff::tz::TimeZone::get(&name).expect("zone");
            (name, now.to_zoned_datetime(tz).date())
        })
        .collect();
    // 27 zones over 26 hours are on at most two dates at once, so one date has two zones
    // or more: the west-most of them has its day end last, the east-most first.
    let group = |date: jiff::civil::Date| -> Vec<String> {
        zones
            .iter()
            .filter(|(_, d)| *d == date)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let mut shared = group(zones[0].1);
    if shared.len() < 2 {
        shared = group(zones[zones.len() - 1].1);
    }
    let west = shared.first().expect("a zone").clone();
    let east = shared.last().expect("a zone").clone();
    (west, east)
}

#[tokio::test]
async fn a_day_counter_shared_by_two_time_zones_lives_until_the_later_day_ends() {
    let app = spawn_app().await;
    let name = "shared-day";
    let (later, earlier) = zones_sharing_todays_date();
    let first = next(&app, name, json!({"tz": later})).await;
    let second = next(&app, name, json!({"tz": earlier})).await;
    assert_eq!(
        period(&first),
        period(&second),
        "{later} and {earlier} share the date"
    );
    assert_eq!(values(&second), [2]);

    let key = leasehold::store::keys::counter(
        &app.tenant,
        &CounterName::parse("name", name).expect("valid"),
        Some(&period(&first)),
    );
    let expires: i64 = redis::cmd("PEXPIRETIME")
        .arg(&key)
        .query(&mut redis().connection())
        .expect("PEXPIRETIME");
    let later_tz = jiff::tz::TimeZone::get(&later).expect("zone");
    let day: jiff::civil::Date = period(&first).parse().expect("a date");
    let later_end = day
        .tomorrow()
        .expect("a next day")
        .to_zoned_datetime(later_tz)
        .expect("midnight")
        .timestamp()
        .as_millisecond();
    assert!(
        expires >= later_end + 2 * 86_400_000,
        "the key expires at {expires}, before {later}'s day ends ({later_end}) plus retention"
    );
}
