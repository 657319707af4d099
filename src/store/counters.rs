//! Counters: contiguous batches of sequence numbers per tenant, optionally reset each day
//! in a time zone, the day decided by Redis's clock.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::StoreError;
use super::{Access, Answer, Idempotency, Outcome, Store, keys};
use crate::names::Invalid;
use crate::names::{CounterName, Tenant};

/// When a counter starts again at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    /// Every day at midnight in the request's time zone.
    Day,
    /// Never.
    None,
}

/// A batch drawn from a counter: `first..=last` in `period` (`None`: no periods).
#[derive(Debug, Clone, Deserialize)]
pub struct CounterDraw {
    #[serde(deserialize_with = "label")]
    pub period: Option<String>,
    pub first: u64,
    pub last: u64,
}

/// One piece of an id format such as `CASE-{date}-{seq:05}`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Date,
    Seq { width: usize },
}

/// A parsed id format: literal text, `{date}` (the period as `YYYYMMDD`), `{seq}` and
/// `{seq:0N}` (the value, zero-padded to N digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterFormat(Vec<Piece>);

/// How many times a draw is tried again when Redis's day is not the one expected.
const PERIOD_ATTEMPTS: usize = 3;

impl CounterFormat {
    /// The longest format, in characters (as JSON Schema's `maxLength` counts them, so the
    /// API description can state the limit exactly).
    pub const MAX_CHARS: usize = 128;

    pub fn parse(format: &str, kind: PeriodKind) -> Result<Self, Invalid> {
        let invalid = |detail: &str| Invalid::new("format", detail);
        if format.chars().count() > Self::MAX_CHARS {
            return Err(invalid("must be at most 128 characters"));
        }
        let mut pieces = Vec::new();
        let mut rest = format;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(invalid("has a '}' without '{'"));
            }
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| invalid("has a '{' without '}'"))?;
            let piece = match &rest[open + 1..open + close] {
                "date" if kind == PeriodKind::None => {
                    return Err(invalid("{date} needs period \"day\""));
                }
                "date" => Piece::Date,
                "seq" => Piece::Seq { width: 0 },
                spec => match spec.strip_prefix("seq:0").map(str::parse::<usize>) {
                    Some(Ok(width @ 1..=20)) => Piece::Seq { width },
                    _ => {
                        return Err(invalid(
                            "placeholders are {date}, {seq} and {seq:0N} (N 1..20)",
                        ));
                    }
                },
            };
            pieces.push(piece);
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(CounterFormat(pieces))
    }

    /// The id for `value` in `period` (`YYYY-MM-DD`, or none).
    pub fn render(&self, period: Option<&str>, value: u64) -> String {
        let mut id = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => id.push_str(text),
                Piece::Date => id.extend(period.unwrap_or_default().chars().filter(|c| *c != '-')),
                Piece::Seq { width } => id.push_str(&format!("{value:0width$}")),
            }
        }
        id
    }
}

/// A day in a time zone: its label and where it starts and ends, in ms since the epoch.
struct Day {
    label: String,
    start: i64,
    end: i64,
}

fn day(date: Date, tz: &TimeZone) -> Result<Day, StoreError> {
    let bad = |e: jiff::Error| StoreError::Internal(format!("period arithmetic: {e}"));
    let start = date
        .to_zoned_datetime(tz.clone())
        .map_err(bad)?
        .start_of_day()
        .map_err(bad)?;
    let next = date.tomorrow().map_err(bad)?;
    let end = next
        .to_zoned_datetime(tz.clone())
        .map_err(bad)?
        .start_of_day()
        .map_err(bad)?;
    Ok(Day {
        label: date.to_string(),
        start: start.timestamp().as_millisecond(),
        end: end.timestamp().as_millisecond(),
    })
}

/// Today in `tz` by this machine's clock, or at `at_ms` (Redis's clock) when given.
pub fn date_in(tz: &TimeZone, at_ms: Option<i64>) -> Result<Date, StoreError> {
    let now = match at_ms {
        Some(ms) => Timestamp::from_millisecond(ms)
            .map_err(|e| StoreError::Internal(format!("Redis time out of range: {e}")))?,
        None => Timestamp::now(),
    };
    Ok(now.to_zoned_datetime(tz.clone()).date())
}

fn label<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let label = String::deserialize(d)?;
    Ok(if label.is_empty() { None } else { Some(label) })
}

impl Store {
    /// Draws `count` contiguous values. The period is the one Redis's clock is in: the
    /// script takes the day this replica expects and the one after, and if Redis's time
    /// is in neither, it says what time it is and the draw is made again for that time.
    pub async fn counter_next(
        &self,
        tenant: &Tenant,
        name: &CounterName,
        idempotency: Option<&Idempotency>,
        kind: PeriodKind,
        tz: &TimeZone,
        count: u64,
    ) -> Result<Answer<CounterDraw>, StoreError> {
        let [answers, answer_exp] = keys::counter_answers(tenant, name);
        let head = self.idempotency_args(idempotency);
        let retention = self
            .inner
            .settings
            .counter_retention
            .as_millis()
            .to_string();
        let mut redis_now = None;
        for _ in 0..PERIOD_ATTEMPTS {
            // The period it is now and the one after (none for a counter without periods).
            let periods = match kind {
                PeriodKind::None => None,
                PeriodKind::Day => {
                    let today = date_in(tz, redis_now)?;
                    let next = today
                        .tomorrow()
                        .map_err(|e| StoreError::Internal(e.to_string()))?;
                    Some((day(today, tz)?, day(next, tz)?))
                }
            };
            let (a, b) = (
                periods.as_ref().map(|p| &p.0),
                periods.as_ref().map(|p| &p.1),
            );
            let keys = [
                keys::counter(tenant, name, a.map(|d| d.label.as_str())),
                keys::counter(tenant, name, b.or(a).map(|d| d.label.as_str())),
                answers.clone(),
                answer_exp.clone(),
            ];
            let text = |v: Option<String>| v.unwrap_or_default();
            let args = [
                count.to_string(),
                text(a.map(|d| d.start.to_string())),
                text(a.map(|d| d.end.to_string())),
                text(a.map(|d| d.label.clone())),
                text(b.map(|d| d.end.to_string())),
                text(b.map(|d| d.label.clone())),
                retention.clone(),
            ];
            let script = &self.scripts().counter_next;
            match self.run(Access::Write, script, &keys, &head, &args).await? {
                Outcome::Done(answer) => return Ok(answer),
                Outcome::Retry(now) => redis_now = Some(now as i64),
                Outcome::Reserve => {
                    return Err(StoreError::Internal(
                        "a counter asked for a pool's reservation".to_owned(),
                    ));
                }
            }
        }
        Err(StoreError::Internal(
            "Redis's day could not be settled".to_owned(),
        ))
    }

    /// The last value issued in a period (0 if none).
    pub async fn counter_value(
        &self,
        tenant: &Tenant,
        name: &CounterName,
        period: Option<&str>,
    ) -> Result<u64, StoreError> {
        let key = keys::counter(tenant, name, period);
        let value: Option<u64> = self
            .read_query(redis::cmd("GET").arg(&key).clone(), &key)
            .await?;
        Ok(value.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_render_dates_and_padded_values() {
        let format = CounterFormat::parse("CASE-{date}-{seq:05}", PeriodKind::Day).expect("valid");
        assert_eq!(format.render(Some("2026-01-10"), 7), "CASE-20260110-00007");
        assert_eq!(
            format.render(Some("2026-01-10"), 123456),
            "CASE-20260110-123456"
        );
        let plain = CounterFormat::parse("n{seq}", PeriodKind::None).expect("valid");
        assert_eq!(plain.render(None, 42), "n42");
    }

    #[test]
    fn formats_reject_unknown_placeholders() {
        for bad in ["{day}", "{seq:5}", "{seq:00}", "x{", "x}", "{seq:021}"] {
            assert!(CounterFormat::parse(bad, PeriodKind::Day).is_err(), "{bad}");
        }
        assert!(CounterFormat::parse("{date}", PeriodKind::None).is_err());
    }

    #[test]
    fn days_follow_the_time_zone() {
        let tz = TimeZone::get("Pacific/Kiritimati").expect("tz");
        let date = date_in(&tz, Some(1_768_003_200_000)).expect("date"); // 2026-01-10T00:00Z
        assert_eq!(date.to_string(), "2026-01-10");
        let d = day(date, &tz).expect("day");
        assert_eq!(d.end - d.start, 86_400_000);
        assert_eq!(d.start, 1_768_003_200_000 - 14 * 3_600_000);
    }
}
