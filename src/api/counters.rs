//! `/v1/counters/{name}/next` and `/v1/counters/{name}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::extract::{PathParams, QueryParams, Write};
use super::{check_range, reply};
use crate::app::AppState;
use crate::error::ApiError;
use crate::names::{CounterName, Tenant};
use crate::store::{CounterFormat, PeriodKind, date_in};

/// The most values one draw takes.
const MAX_COUNT: i64 = 1000;

fn time_zone(name: Option<&str>) -> Result<TimeZone, ApiError> {
    let name = name.unwrap_or("UTC");
    TimeZone::get(name)
        .map_err(|_| ApiError::invalid("tz", "must be an IANA time zone such as Europe/Paris"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextBody {
    period: Option<PeriodKind>,
    tz: Option<String>,
    count: Option<i64>,
    format: Option<String>,
}

#[derive(Serialize)]
struct Draw {
    name: String,
    period: Option<String>,
    values: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<String>>,
}

pub async fn counter_next(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(name): PathParams<String>,
    write: Write<NextBody>,
) -> Result<Response, ApiError> {
    let name = CounterName::parse("name", &name)?;
    let body = write.body;
    let kind = body.period.unwrap_or(PeriodKind::Day);
    let tz = time_zone(body.tz.as_deref())?;
    check_range("count", body.count, 1, MAX_COUNT)?;
    let format = body
        .format
        .as_deref()
        .map(|f| CounterFormat::parse(f, kind))
        .transpose()?;
    let answer = app
        .store()
        .counter_next(
            &tenant,
            &name,
            write.idempotency.as_ref(),
            kind,
            &tz,
            body.count.unwrap_or(1) as u64,
        )
        .await?;
    let draw = answer.value;
    let values: Vec<u64> = (draw.first..=draw.last).collect();
    let ids = format.map(|f| {
        values
            .iter()
            .map(|v| f.render(draw.period.as_deref(), *v))
            .collect()
    });
    let body = Draw {
        name: name.to_string(),
        period: draw.period,
        values,
        ids,
    };
    Ok(reply(StatusCode::OK, &body, answer.replayed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterQuery {
    period: Option<String>,
    tz: Option<String>,
}

/// `period` is a date (`2026-01-10`), `none` for a counter without periods, or absent for
/// today in `tz` (UTC by default) by Redis's clock.
pub async fn get_counter(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<CounterQuery>,
) -> Result<Response, ApiError> {
    let name = CounterName::parse("name", &name)?;
    let period = match query.period.as_deref() {
        Some("none") => None,
        Some(date) => Some(
            date.parse::<Date>()
                .ok()
                .filter(|d| d.to_string() == date)
                .ok_or_else(|| ApiError::invalid("period", "must be a date YYYY-MM-DD or none"))?
                .to_string(),
        ),
        None => {
            let tz = time_zone(query.tz.as_deref())?;
            let now = app.store().redis_time_ms().await?;
            Some(date_in(&tz, Some(now))?.to_string())
        }
    };
    let value = app
        .store()
        .counter_value(&tenant, &name, period.as_deref())
        .await?;
    Ok(reply(
        StatusCode::OK,
        &json!({"name": name.to_string(), "period": period, "value": value}),
        false,
    ))
}
