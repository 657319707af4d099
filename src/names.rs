//! Validated names: pools, counters, tenants, item ids and holders.
//!
//! Every name that reaches a Redis key passes through here first ("parse, don't
//! validate"): code past the HTTP edge cannot hold a name that could forge a hash tag or
//! another key's name, because none of `{`, `}`, `/`, `:`-led prefixes or spaces survive.

use std::fmt;

use crate::error::ApiError;

/// The characters allowed after the first (always ASCII alphanumeric) character.
#[derive(Clone, Copy)]
enum Alphabet {
    /// `[A-Za-z0-9._-]`: pools, counters, tenants.
    Name,
    /// `[A-Za-z0-9._:@-]`: item ids and holders.
    Id,
}

impl Alphabet {
    fn allows(self, c: u8) -> bool {
        c.is_ascii_alphanumeric()
            || matches!(c, b'.' | b'_' | b'-')
            || (matches!(self, Alphabet::Id) && matches!(c, b':' | b'@'))
    }

    fn pattern(self, max: usize) -> String {
        match self {
            Alphabet::Name => format!("^[A-Za-z0-9][A-Za-z0-9._-]{{0,{}}}$", max - 1),
            Alphabet::Id => format!("^[A-Za-z0-9][A-Za-z0-9._:@-]{{0,{}}}$", max - 1),
        }
    }
}

fn check(field: &str, value: &str, alphabet: Alphabet, max: usize) -> Result<(), ApiError> {
    let bytes = value.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= max
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|&c| alphabet.allows(c));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("must match {}", alphabet.pattern(max)),
        ))
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $alphabet:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks `value` against the pattern; `field` names it in the error.
            pub fn parse(field: &str, value: &str) -> Result<Self, ApiError> {
                check(field, value, $alphabet, $max)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A tenant: the isolation boundary, always taken from the API key.
    Tenant,
    Alphabet::Name,
    64
);
name_type!(
    /// A pool of items to share out.
    PoolName,
    Alphabet::Name,
    64
);
name_type!(
    /// A named sequence of a tenant.
    CounterName,
    Alphabet::Name,
    64
);
name_type!(
    /// An item's id within its pool.
    ItemId,
    Alphabet::Id,
    128
);
name_type!(
    /// Who holds a lease: a caller-chosen string such as a user id.
    Holder,
    Alphabet::Id,
    128
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract_patterns() {
        assert!(PoolName::parse("pool", "study-1.a_b").is_ok());
        assert!(PoolName::parse("pool", &"a".repeat(64)).is_ok());
        assert!(PoolName::parse("pool", &"a".repeat(65)).is_err());
        for bad in ["", "-a", "a b", "a{b", "a}b", "a/b", "a:b", "é", "a\nb"] {
            assert!(PoolName::parse("pool", bad).is_err(), "{bad:?} accepted");
        }
        assert!(ItemId::parse("id", "user:42@firm.example").is_ok());
        assert!(ItemId::parse("id", &"a".repeat(128)).is_ok());
        assert!(ItemId::parse("id", &"a".repeat(129)).is_err());
        for bad in ["{t}", "a/b", ":a", "a b", "a\u{0}"] {
            assert!(Holder::parse("holder", bad).is_err(), "{bad:?} accepted");
        }
    }
}
