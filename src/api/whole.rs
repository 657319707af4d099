//! Integer fields of request bodies. JSON has one kind of number, and JSON Schema (so the
//! API description) counts `5.0` and `5e0` as the integer 5: these fields take a whole
//! number however it is written, and refuse a fraction.

use serde::de::{Error, Unexpected};
use serde::{Deserialize, Deserializer};
use serde_json::Number;

/// A whole number as an `i128` (wide enough for any `i64` or `u64`); out of range for the
/// field is the caller's `TryFrom` to refuse.
fn whole<E: Error>(number: &Number) -> Result<i128, E> {
    if let Some(n) = number.as_i64() {
        return Ok(i128::from(n));
    }
    if let Some(n) = number.as_u64() {
        return Ok(i128::from(n));
    }
    let f = number.as_f64().unwrap_or(f64::NAN);
    // Beyond 2^100 the field's range is exceeded anyway; the cast below saturates there.
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 2f64.powi(100) {
        Ok(f as i128)
    } else {
        Err(E::invalid_value(Unexpected::Float(f), &"an integer"))
    }
}

fn fit<T: TryFrom<i128>, E: Error>(n: i128) -> Result<T, E> {
    T::try_from(n).map_err(|_| E::custom(format!("integer {n} is out of range")))
}

/// For a required integer field: `#[serde(deserialize_with = "whole::required")]`.
pub fn required<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    fit(whole(&Number::deserialize(deserializer)?)?)
}

/// For an optional one (missing or null is `None`):
/// `#[serde(default, deserialize_with = "whole::optional")]`.
pub fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    Option::<Number>::deserialize(deserializer)?
        .map(|n| fit(whole(&n)?))
        .transpose()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::required")]
        token: u64,
        #[serde(default, deserialize_with = "super::optional")]
        priority: Option<i64>,
    }

    fn parse(json: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn whole_numbers_are_taken_however_they_are_written() {
        for json in [
            r#"{"token": 7, "priority": -3}"#,
            r#"{"token": 7.0, "priority": -3.0}"#,
            r#"{"token": 7e0, "priority": -0.3e1}"#,
        ] {
            let body = parse(json).expect(json);
            assert_eq!((body.token, body.priority), (7, Some(-3)), "{json}");
        }
        let body = parse(r#"{"token": 1, "priority": null}"#).expect("null");
        assert_eq!(body.priority, None);
        let body = parse(r#"{"token": 1}"#).expect("missing");
        assert_eq!(body.priority, None);
    }

    #[test]
    fn fractions_strings_and_out_of_range_numbers_are_refused() {
        for json in [
            r#"{"token": 7.5}"#,
            r#"{"token": "7"}"#,
            r#"{"token": -1}"#,
            r#"{"token": -1.0}"#,
            r#"{"token": 1e300}"#,
            r#"{"token": 18446744073709551616}"#,
            r#"{"token": 1, "priority": 9223372036854775808}"#,
            r#"{"token": 1, "priority": true}"#,
            r#"{"token": null}"#,
            r#"{}"#,
        ] {
            assert!(parse(json).is_err(), "{json} was taken");
        }
    }
}
