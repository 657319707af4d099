//! The numbers of requests and answers: each a type that holds only values in its range,
//! checked while it is read ("parse, don't validate"), so code past the edge never checks
//! a range again.
//!
//! JSON has one kind of number, and JSON Schema (so the API description) counts `5.0` and
//! `5e0` as the integer 5: these types take a whole number however it is written, and
//! refuse a fraction.

use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};

/// The largest token, version or offset Leasehold can issue (scripts count in doubles):
/// anything larger cannot match and is refused as invalid.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A number outside its type's range, with the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be between {min} and {max}")]
pub struct OutOfRange {
    pub min: i128,
    pub max: i128,
}

/// Reads a whole number of any JSON spelling as an `i128` (wide enough for any `i64` or
/// `u64`); a fraction, a string or anything else is refused.
struct Whole;

impl Visitor<'_> for Whole {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<i128, E> {
        Ok(i128::from(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<i128, E> {
        Ok(i128::from(n))
    }

    fn visit_i128<E: de::Error>(self, n: i128) -> Result<i128, E> {
        Ok(n)
    }

    fn visit_u128<E: de::Error>(self, n: u128) -> Result<i128, E> {
        Ok(i128::try_from(n).unwrap_or(i128::MAX))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<i128, E> {
        // Beyond 2^100 the type's range is exceeded anyway; the cast saturates there.
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 2f64.powi(100) {
            Ok(f as i128)
        } else {
            Err(E::invalid_value(Unexpected::Float(f), &self))
        }
    }
}

/// Declares integer types that hold only values from `min` to `max`, with their schema.
macro_rules! bounded {
    ($($(#[$doc:meta])* $name:ident($inner:ty): $min:expr, $max:expr, $description:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name($inner);

        impl $name {
            pub const MIN: $inner = $min;
            pub const MAX: $inner = $max;

            /// The value, if it is in range.
            pub fn new(value: $inner) -> Result<Self, OutOfRange> {
                Self::from_whole(i128::from(value))
            }

            fn from_whole(value: i128) -> Result<Self, OutOfRange> {
                let (min, max) = (i128::from(Self::MIN), i128::from(Self::MAX));
                if (min..=max).contains(&value) {
                    // In range, so it fits.
                    Ok($name(value as $inner))
                } else {
                    Err(OutOfRange { min, max })
                }
            }

            pub fn get(self) -> $inner {
                self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // Asked for as an integer: JSON hands over any number (a string is
                // refused), a query string its text read as one.
                let whole = deserializer.deserialize_i64(Whole)?;
                $name::from_whole(whole).map_err(de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        #[cfg(feature = "utoipa")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(Self::MIN as f64))
                    .maximum(Some(Self::MAX as f64))
                    .description(Some($description))
                    .into()
            }
        }

        #[cfg(feature = "utoipa")]
        impl utoipa::ToSchema for $name {}
    )*};
}

/// The longest lease or delay: 30 days.
const MAX_DURATION_MS: u64 = 30 * 24 * 3_600_000;

bounded! {
    /// How long a lease lasts or a release delays, in milliseconds; a lease of 0 has no
    /// expiry.
    DurationMs(u64): 0, MAX_DURATION_MS,
        "Milliseconds, at most 30 days; a lease of 0 has no expiry";
    /// Higher is claimed first.
    Priority(i64): -1_000_000, 1_000_000,
        "Higher is claimed first; first in, first out within a priority";
    /// A fencing token as a grant returned it (Leasehold issues none above 2^53 - 1).
    Token(u64): 0, MAX_SAFE_INTEGER,
        "A fencing token, as a claim, renew or assignment returned it";
    /// An item's version (0: the item must not exist).
    Version(u64): 0, MAX_SAFE_INTEGER,
        "An item version (0: the item must not exist)";
    /// The most entries on one page of a listing.
    PageLimit(u64): 1, 1000, "The most entries on one page";
    /// A pool's limit on leases per holder or attempts per item.
    PoolLimit(u64): 0, 1_000_000, "0 = unlimited";
    /// How many events a pool's log keeps.
    EventLogSize(u64): 0, 100_000, "0 = no event log";
    /// How many items one claim leases at most.
    ClaimCount(u32): 1, 100, "How many items to lease at most";
    /// How long a claim waits for items when none is available (long-poll).
    WaitMs(u64): 0, 30_000,
        "How long to wait for items when none is available (long-poll); 0: answer at once";
    /// How many counter values one draw hands out, as one contiguous batch.
    DrawCount(u32): 1, 1000, "How many values to draw, as one contiguous batch";
}

/// A pool's `max_events` unless it sets another (`DEFAULT_MAX_EVENTS` in the scripts'
/// `lib/pool.lua`).
pub const DEFAULT_MAX_EVENTS: u64 = 10_000;

/// How long a pool keeps a done item unless it says otherwise: 7 days
/// (`DEFAULT_KEEP_DONE_MS` in `lib/pool.lua`).
pub const DEFAULT_KEEP_DONE_MS: u64 = 7 * 86_400_000;

/// How long a pool keeps a dead item unless it says otherwise: 30 days
/// (`DEFAULT_KEEP_DEAD_MS` in `lib/pool.lua`).
pub const DEFAULT_KEEP_DEAD_MS: u64 = 30 * 86_400_000;

impl PageLimit {
    /// The page size when none is asked for.
    pub const DEFAULT: PageLimit = PageLimit(100);
}

impl Default for PageLimit {
    fn default() -> Self {
        PageLimit::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_number_is_taken_however_it_is_written() {
        for text in ["5", "5.0", "5e0", "0.5e1"] {
            let count: ClaimCount = serde_json::from_str(text).expect(text);
            assert_eq!(count.get(), 5, "{text}");
        }
        for text in ["5.5", "\"x\"", "true", "null", "1e400"] {
            assert!(serde_json::from_str::<ClaimCount>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_number_out_of_range_names_the_range() {
        let error = serde_json::from_str::<ClaimCount>("101").expect_err("out of range");
        assert!(
            error.to_string().starts_with("must be between 1 and 100"),
            "{error}"
        );
        assert!(serde_json::from_str::<Priority>("-1000001").is_err());
        assert_eq!(
            serde_json::from_str::<Priority>("-1000000")
                .expect("the least priority")
                .get(),
            -1_000_000
        );
        assert!(serde_json::from_str::<Token>("9007199254740992").is_err());
        assert!(serde_json::from_str::<Token>("18446744073709551616").is_err());
    }

    #[test]
    fn a_number_reads_back_as_it_is_written() {
        let limit = PageLimit::new(250).expect("in range");
        assert_eq!(serde_json::to_string(&limit).expect("writes"), "250");
        assert_eq!(PageLimit::default().get(), 100);
        assert_eq!(DurationMs::MAX, 2_592_000_000);
    }
}
