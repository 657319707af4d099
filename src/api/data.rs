//! An item's data as the caller sent it: JSON whose every number keeps its value.
//!
//! Data is kept as JSON text and answered as kept. A number that a 64-bit integer or a
//! double cannot hold exactly (`123456789012345678901234567890`, or a decimal with more
//! digits than a double keeps) would come back changed, so it is refused with 400 naming
//! the field: send such a number as a string. Data (and a merge patch of it) is a JSON
//! object; anything else is refused with 400 before any precondition is looked at.

use serde::de::{self, Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// An item's `data` (or a merge patch of it), every number in it exact.
#[derive(Debug, Clone)]
pub struct Data(pub Value);

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        if let Some(number) = inexact_number(raw.get()) {
            return Err(de::Error::custom(format!(
                "the number {number} cannot be kept exactly (whole numbers must fit in 64 bits, others in a double without rounding): send it as a string"
            )));
        }
        match serde_json::from_str(raw.get()).map_err(de::Error::custom)? {
            Value::Object(fields) => Ok(Data(Value::Object(fields))),
            _ => Err(de::Error::custom("must be a JSON object")),
        }
    }
}

impl PartialSchema for Data {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The item's data: a JSON object of at most 64 KiB as compact JSON; a number must be exact in 64 bits or a double (else send it as a string)",
            ))
            .into()
    }
}

impl ToSchema for Data {}

/// The first number in the JSON `text` that would not read back with the same value.
fn inexact_number(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'-' | b'0'..=b'9' if !in_string => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let number = &text[start..i];
                if !exact(number) {
                    return Some(number);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether a JSON number keeps its value: a whole number within `i64` or `u64`, or a
/// decimal whose nearest double prints back as the same value.
fn exact(number: &str) -> bool {
    if !number.contains(['.', 'e', 'E']) {
        return number.parse::<i64>().is_ok() || number.parse::<u64>().is_ok();
    }
    match number.parse::<f64>() {
        Ok(double) if double.is_finite() => decimal(number) == decimal(&format!("{double:e}")),
        _ => false,
    }
}

/// A decimal's value as (negative, significant digits, exponent of the first digit): the
/// same for every spelling of one value (`0.10`, `1e-1`, `1.0E-1`).
fn decimal(number: &str) -> (bool, String, i64) {
    let (negative, unsigned) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_matches('0').to_owned();
    if significant.is_empty() {
        return (false, String::new(), 0);
    }
    let first = whole.len() as i64 - leading as i64 - 1 + exponent;
    (negative, significant, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_keep_their_value_pass_and_others_are_named() {
        for ok in [
            "0",
            "-0",
            "42",
            "-9223372036854775808",
            "18446744073709551615",
            "0.1",
            "0.10",
            "1e2",
            "1.5E-3",
            "-2.5",
            "1e308",
            "3.141592653589793",
            "0.0",
            "-0.0",
        ] {
            assert!(exact(ok), "{ok}");
        }
        for changed in [
            "123456789012345678901234567890",
            "18446744073709551616",
            "-9223372036854775809",
            "0.1000000000000000055511151231257827",
            "3.14159265358979323846",
            "1e400",
            // One double, two equally short forms: answered as the other one (…987.3).
            "-2108371602823987.2",
        ] {
            assert!(!exact(changed), "{changed}");
        }
        assert_eq!(
            inexact_number(
                r#"{"a":"123456789012345678901234567890","b":[1,2.5,123456789012345678901234567890]}"#
            ),
            Some("123456789012345678901234567890")
        );
        assert_eq!(inexact_number(r#"{"s":"a \" 99999999999999999999"}"#), None);
    }

    #[test]
    fn data_reads_through_serde_path_to_error_and_names_the_field() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[allow(dead_code)]
            data: Data,
        }
        let text = r#"{"data":{"n":123456789012345678901234567890}}"#;
        let mut de = serde_json::Deserializer::from_str(text);
        let error = match serde_path_to_error::deserialize::<_, Body>(&mut de) {
            Ok(_) => panic!("an inexact number was taken"),
            Err(error) => error,
        };
        assert_eq!(error.path().to_string(), "data");
        assert!(
            error
                .inner()
                .to_string()
                .contains("123456789012345678901234567890")
        );

        let text = r#"{"data":{"n":1.5,"big":"123456789012345678901234567890"}}"#;
        let mut de = serde_json::Deserializer::from_str(text);
        let body: Body = serde_path_to_error::deserialize(&mut de).expect("exact data");
        assert_eq!(body.data.0["n"], serde_json::json!(1.5));
    }
}
