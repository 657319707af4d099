//! Validated names: pools, counters, tenants, item ids and holders.
//!
//! Every name that reaches a Redis key passes through here first ("parse, don't
//! validate"): code past the HTTP edge cannot hold a name that could forge a hash tag or
//! another key's name, because none of `{`, `}`, `/`, `:`-led prefixes or spaces survive.

use std::fmt;

/// A value that broke its field's rule: the field, and the rule in words (such as
/// `must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`). At the HTTP edge it is a 400
/// `invalid_request` naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {detail}")]
pub struct Invalid {
    pub field: String,
    pub detail: String,
}

impl Invalid {
    pub fn new(field: &str, detail: impl Into<String>) -> Self {
        Invalid {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }
}

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

/// A name that does not match its pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must match {pattern}")]
pub struct Unmatched {
    pub pattern: String,
}

fn check(value: &str, alphabet: Alphabet, max: usize) -> Result<(), Unmatched> {
    let bytes = value.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= max
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|&c| alphabet.allows(c));
    if valid {
        Ok(())
    } else {
        Err(Unmatched {
            pattern: alphabet.pattern(max),
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $alphabet:expr, $max:expr, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `value` against the pattern; `field` names it in the error.
            pub fn parse(field: &str, value: &str) -> Result<Self, Invalid> {
                check(value, $alphabet, $max).map_err(|e| Invalid::new(field, e.to_string()))?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The longest accepted value, in bytes (every accepted byte is ASCII).
            pub const MAX_LEN: usize = $max;

            /// The contract's pattern for this name, as error messages and the API
            /// description state it.
            pub fn pattern() -> String {
                $alphabet.pattern($max)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Unmatched;

            fn try_from(value: String) -> Result<Self, Unmatched> {
                check(&value, $alphabet, $max)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        #[cfg(feature = "utoipa")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some($name::pattern()))
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .description(Some($description))
                    .into()
            }
        }

        #[cfg(feature = "utoipa")]
        impl utoipa::ToSchema for $name {}
    };
}

name_type!(
    /// A tenant: the isolation boundary, always taken from the API key.
    Tenant,
    Alphabet::Name,
    64,
    "A tenant: the isolation boundary, taken from the API key"
);
name_type!(
    /// A pool of items to share out.
    PoolName,
    Alphabet::Name,
    64,
    "A pool's name"
);
name_type!(
    /// A named sequence of a tenant.
    CounterName,
    Alphabet::Name,
    64,
    "A counter's name"
);
name_type!(
    /// An item's id within its pool.
    ItemId,
    Alphabet::Id,
    128,
    "An item's id, unique within its pool"
);
name_type!(
    /// Who holds a lease: a caller-chosen string such as a user id.
    Holder,
    Alphabet::Id,
    128,
    "Who holds a lease: a caller-chosen string such as a user id"
);

/// Strategies for property tests: valid names and ids, and hostile strings (braces,
/// colons, slashes, spaces, control characters, unicode, over-long text, and valid names
/// with one bad character slipped in).
#[cfg(any(test, feature = "arbitrary"))]
pub mod arbitrary {
    use proptest::prelude::*;

    /// A name matching the pool/counter/tenant pattern.
    pub fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
    }

    /// An id matching the item id/holder pattern.
    pub fn id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}"
    }

    /// Characters that must never reach a key from a name.
    const BAD: &[char] = &[
        '{', '}', '/', ':', '@', ' ', '\t', '\n', '\0', '%', '*', '?', '[', ']', '\\', '"', 'é',
        'ｐ', '\u{200b}', '\u{7f}',
    ];

    /// Strings an attacker might send where a name is expected.
    pub fn hostile() -> impl Strategy<Value = String> {
        let inserted = (
            name(),
            any::<prop::sample::Index>(),
            prop::sample::select(BAD),
        )
            .prop_map(|(name, at, bad)| {
                let mut chars: Vec<char> = name.chars().collect();
                chars.insert(at.index(chars.len() + 1), bad);
                chars.into_iter().collect()
            });
        prop_oneof![
            2 => name(),
            2 => id(),
            4 => inserted,
            // Short strings over the name alphabet plus the separators of the key layout.
            2 => "[a-c0-9._:@{}/ -]{0,12}",
            // Long strings, valid and not.
            1 => "[a-z]{60,300}",
            1 => "[a-z{}:/]{60,300}",
            // Anything at all, unicode and control characters included.
            1 => any::<String>(),
            1 => "\\PC{1,20}",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    /// The contract's patterns, written independently of `check`: a first ASCII letter or
    /// digit, then at most `max - 1` characters of the alphabet (`extra` beyond `._-`).
    fn matches_contract(value: &str, extra: &str, max: usize) -> bool {
        let mut chars = value.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        first_ok
            && value.chars().count() <= max
            && chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(c))
    }

    /// What no accepted name may hold: a hash-tag brace, the tag's `/` separator,
    /// whitespace, control or non-ASCII characters.
    fn is_key_safe(value: &str) -> bool {
        value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '{' | '}' | '/'))
    }

    proptest! {
        #[test]
        fn names_are_accepted_exactly_when_they_match_the_contract(value in arbitrary::hostile()) {
            let expected = matches_contract(&value, "", 64);
            prop_assert_eq!(PoolName::parse("pool", &value).is_ok(), expected);
            prop_assert_eq!(CounterName::parse("name", &value).is_ok(), expected);
            prop_assert_eq!(Tenant::parse("tenant", &value).is_ok(), expected);
        }

        #[test]
        fn ids_are_accepted_exactly_when_they_match_the_contract(value in arbitrary::hostile()) {
            let expected = matches_contract(&value, ":@", 128);
            prop_assert_eq!(ItemId::parse("id", &value).is_ok(), expected);
            prop_assert_eq!(Holder::parse("holder", &value).is_ok(), expected);
        }

        #[test]
        fn an_accepted_name_is_key_safe_and_kept_as_given(value in arbitrary::hostile()) {
            if let Ok(pool) = PoolName::parse("pool", &value) {
                prop_assert!(is_key_safe(pool.as_str()), "{:?}", pool);
                prop_assert!(!pool.as_str().contains([':', '@']), "{:?}", pool);
                prop_assert_eq!(pool.as_str(), value.as_str());
            }
            if let Ok(id) = ItemId::parse("id", &value) {
                prop_assert!(is_key_safe(id.as_str()), "{:?}", id);
                prop_assert_eq!(id.as_str(), value.as_str());
            }
        }

        #[test]
        fn a_refusal_names_its_field(value in arbitrary::hostile()) {
            match PoolName::parse("pool", &value) {
                Ok(_) => {}
                Err(Invalid { field, detail }) => {
                    prop_assert_eq!(field, "pool");
                    prop_assert!(detail.contains("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"), "{}", detail);
                }
            }
        }
    }

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
