//! `/v1/counters/{name}/next` and `/v1/counters/{name}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use utoipa::openapi::schema::{KnownFormat, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{ObjectBuilder, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::extract::{PathParams, QueryParams, Write};
use super::reply;
use crate::error::ApiError;
use crate::model::{CounterDraw, CounterValue};
use crate::names::{CounterName, Tenant};
use crate::state::AppState;
use crate::store::{CounterFormat, PeriodKind, date_in};
use leasehold_wire::numbers::DrawCount;

/// An IANA time zone, as the server's time zone database knows them (looked up without
/// regard to ASCII case).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct TimeZoneName(TimeZone);

impl TryFrom<String> for TimeZoneName {
    type Error = &'static str;

    fn try_from(name: String) -> Result<Self, &'static str> {
        TimeZone::get(&name)
            .map(TimeZoneName)
            .map_err(|_| "must be an IANA time zone such as Europe/Paris")
    }
}

impl TimeZoneName {
    /// The zone asked for, or UTC.
    fn or_utc(zone: Option<TimeZoneName>) -> TimeZone {
        zone.map_or(TimeZone::UTC, |zone| zone.0)
    }
}

impl PartialSchema for TimeZoneName {
    fn schema() -> RefOr<Schema> {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|name| name.as_str().to_owned())
            .collect();
        names.sort();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .description(Some(
                "An IANA time zone name (ASCII case does not matter), such as UTC or Europe/Paris",
            ))
            .into()
    }
}

impl ToSchema for TimeZoneName {}

/// A counter's id format, such as `CASE-{date}-{seq:05}`, read as written; whether it
/// fits the draw's period (`{date}` needs days) is the draw's to say.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct IdFormat(String);

impl TryFrom<String> for IdFormat {
    type Error = String;

    fn try_from(format: String) -> Result<Self, String> {
        match CounterFormat::parse(&format, PeriodKind::Day) {
            Ok(_) => Ok(IdFormat(format)),
            Err(invalid) => Err(invalid.detail),
        }
    }
}

impl PartialSchema for IdFormat {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(FORMAT_PATTERN))
            .max_length(Some(CounterFormat::MAX_CHARS))
            .description(Some(
                "Renders each value as an id: `{date}` is the period's YYYYMMDD (needs period `day`), `{seq}` the value, `{seq:0N}` the value zero-padded to N digits (N 1 to 20); other text is kept",
            ))
            .into()
    }
}

impl ToSchema for IdFormat {}

/// A counter `period` to read: a day, or `none` for a counter without periods.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub enum Period {
    Day(Date),
    None,
}

impl TryFrom<String> for Period {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Self, &'static str> {
        if text == "none" {
            return Ok(Period::None);
        }
        text.parse::<Date>()
            .ok()
            .filter(|day| day.to_string() == text)
            .map(Period::Day)
            .ok_or("must be a date YYYY-MM-DD or none")
    }
}

impl PartialSchema for Period {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
                    .pattern(Some("^[0-9]{4}-[0-9]{2}-[0-9]{2}$")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["none"])),
            )
            .description(Some("A day (YYYY-MM-DD) or `none`"))
            .into()
    }
}

impl ToSchema for Period {}

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
    tz: Option<TimeZoneName>,
    /// Default 1.
    count: Option<DrawCount>,
    /// Answer `ids` rendered with this format (`{date}` needs period `day`).
    format: Option<IdFormat>,
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
    PathParams(name): PathParams<CounterName>,
    write: Write<NextBody>,
) -> Result<Response, ApiError> {
    let body = write.body;
    let kind = body.period.unwrap_or(PeriodKind::Day);
    // The format was read as written; `{date}` also needs days.
    let format = body
        .format
        .map(|f| CounterFormat::parse(&f.0, kind))
        .transpose()?;
    let answer = app
        .store()
        .counter_next(
            &tenant,
            &name,
            write.idempotency.as_ref(),
            kind,
            &TimeZoneName::or_utc(body.tz),
            body.count.map_or(1, |c| u64::from(c.get())),
        )
        .await?;
    let draw = answer.value;
    let values: Vec<u64> = (draw.first..=draw.last).collect();
    let ids = format.map_or_else(Vec::new, |f| {
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
    period: Option<Period>,
    /// The time zone that decides which day today is (default UTC).
    tz: Option<TimeZoneName>,
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
    PathParams(name): PathParams<CounterName>,
    QueryParams(query): QueryParams<CounterQuery>,
) -> Result<Response, ApiError> {
    let period = match query.period {
        Some(Period::None) => None,
        Some(Period::Day(day)) => Some(day.to_string()),
        None => {
            let now = app.store().redis_time_ms().await?;
            Some(date_in(&TimeZoneName::or_utc(query.tz), Some(now))?.to_string())
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
