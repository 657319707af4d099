//! `/v1/counters/{name}/next` and `/v1/counters/{name}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{PathParams, QueryParams, Write};
use super::openapi::{DrawCount, IdFormat, Period, TimeZoneName};
use super::{check_range, reply};
use crate::error::ApiError;
use crate::model::{CounterDraw, CounterValue};
use crate::names::{CounterName, Tenant};
use crate::state::AppState;
use crate::store::{CounterFormat, PeriodKind, date_in};

/// The most values one draw takes.
pub(super) const MAX_COUNT: i64 = 1000;

fn time_zone(name: Option<&str>) -> Result<TimeZone, ApiError> {
    let name = name.unwrap_or("UTC");
    TimeZone::get(name)
        .map_err(|_| ApiError::invalid("tz", "must be an IANA time zone such as Europe/Paris"))
}

/// What an id format may hold: text without braces, `{date}`, `{seq}` and `{seq:0N}`
/// with N from 1 to 20 (as `CounterFormat::parse` reads N: a `+` and leading zeros pass).
pub(super) const FORMAT_PATTERN: &str =
    r"^([^{}]|\{date\}|\{seq\}|\{seq:0\+?0*([1-9]|1[0-9]|20)\})*$";

/// How to draw: the period, its time zone, how many values, and an id format.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NextBody {
    /// `day` (default): values start again at 1 each day in `tz`; `none`: never.
    period: Option<PeriodKind>,
    /// Which day it is is decided in this time zone (default UTC), by Redis's clock.
    #[schema(value_type = Option<TimeZoneName>)]
    tz: Option<String>,
    /// Default 1.
    #[schema(value_type = Option<DrawCount>)]
    #[serde(default, deserialize_with = "super::whole::optional")]
    count: Option<i64>,
    /// Answer `ids` rendered with this format (`{date}` needs period `day`).
    #[schema(value_type = Option<IdFormat>)]
    format: Option<String>,
}

/// Draws the next values of a counter (created on first use): a contiguous batch, from 1
/// in each period and tenant.
#[utoipa::path(
    post,
    path = "/v1/counters/{name}/next",
    tag = "counters",
    params(("name" = CounterName, Path)),
    request_body(content = Option<NextBody>, description = "Optional: one value of today's (UTC) sequence by default"),
    responses((status = 200, description = "The values drawn", body = CounterDraw))
)]
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
    let body = CounterDraw {
        name: name.to_string(),
        period: draw.period,
        values,
        ids,
    };
    Ok(reply(StatusCode::OK, &body, answer.replayed))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CounterQuery {
    /// A day (`YYYY-MM-DD`), or `none` for a counter without periods (default: today in
    /// `tz`, by Redis's clock).
    #[param(value_type = Option<Period>)]
    period: Option<String>,
    /// The time zone that decides which day today is (default UTC).
    #[param(value_type = Option<TimeZoneName>)]
    tz: Option<String>,
}

/// The last value a counter issued in a period (0 if none).
#[utoipa::path(
    get,
    path = "/v1/counters/{name}",
    tag = "counters",
    params(("name" = CounterName, Path), CounterQuery),
    responses((status = 200, description = "The counter's last value", body = CounterValue))
)]
pub async fn get_counter(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<CounterQuery>,
) -> Result<Response, ApiError> {
    let name = CounterName::parse("name", &name)?;
    // Checked even where a period makes it unused, so a bad zone is never passed over.
    let tz = time_zone(query.tz.as_deref())?;
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
            let now = app.store().redis_time_ms().await?;
            Some(date_in(&tz, Some(now))?.to_string())
        }
    };
    let value = app
        .store()
        .counter_value(&tenant, &name, period.as_deref())
        .await?;
    let body = CounterValue {
        name: name.to_string(),
        period,
        value,
    };
    Ok(reply(StatusCode::OK, &body, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use regex_automata::meta::Regex;

    /// Text and placeholders, well-formed and not.
    fn format() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-zA-Z0-9 é:_-]{0,4}",
            Just("{date}".to_owned()),
            Just("{seq}".to_owned()),
            "[{]seq:[0+]{0,3}[0-9]{0,3}[}]",
            "[{}]",
            "[{][a-z:0-9]{0,6}[}]",
        ];
        proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn a_format_is_accepted_exactly_when_its_description_allows_it(
            format in format(),
            day in any::<bool>(),
        ) {
            let pattern = Regex::new(FORMAT_PATTERN).expect("the pattern compiles");
            let kind = if day { PeriodKind::Day } else { PeriodKind::None };
            // The description: the pattern, and (its `if`/`then`) no `{date}` without days.
            let described = pattern.is_match(&format) && (day || !format.contains("{date}"));
            prop_assert_eq!(CounterFormat::parse(&format, kind).is_ok(), described, "{:?}", format);
        }
    }

    #[test]
    fn a_format_is_at_most_128_characters_however_many_bytes() {
        let longest = "é".repeat(CounterFormat::MAX_CHARS);
        assert!(CounterFormat::parse(&longest, PeriodKind::Day).is_ok());
        assert!(CounterFormat::parse(&format!("{longest}a"), PeriodKind::Day).is_err());
    }
}
