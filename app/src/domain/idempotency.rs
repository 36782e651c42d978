//! Client-supplied idempotency keys for order submission.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use super::describe_char;

/// Longest accepted key, in characters.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// 1–255 printable ASCII characters (0x21..=0x7E): no spaces, tabs, line
/// breaks, control characters or non-ASCII. Compared exactly (case matters).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct IdempotencyKey(String);

/// Why an idempotency key was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdempotencyKeyError {
    #[error("idempotency key is empty")]
    Empty,
    #[error("idempotency key is {len} characters long; the maximum is {MAX_IDEMPOTENCY_KEY_LEN}")]
    TooLong { len: usize },
    #[error("idempotency key contains {description} at position {position}; only printable ASCII characters without spaces are allowed")]
    InvalidCharacter {
        /// 1-based character position.
        position: usize,
        description: String,
    },
}

impl IdempotencyKey {
    /// Accepts the key exactly as given (nothing is trimmed).
    pub fn parse(input: &str) -> Result<IdempotencyKey, IdempotencyKeyError> {
        Self::check(input)?;
        Ok(IdempotencyKey(input.to_owned()))
    }

    fn check(input: &str) -> Result<(), IdempotencyKeyError> {
        if input.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if let Some((i, c)) = input
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, '\x21'..='\x7E'))
        {
            return Err(IdempotencyKeyError::InvalidCharacter {
                position: i + 1,
                description: describe_char(c),
            });
        }
        // Only ASCII remains, so bytes == characters.
        if input.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(IdempotencyKeyError::TooLong { len: input.len() });
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IdempotencyKey {
    type Err = IdempotencyKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdempotencyKey::parse(s)
    }
}

impl TryFrom<&str> for IdempotencyKey {
    type Error = IdempotencyKeyError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        IdempotencyKey::parse(s)
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = IdempotencyKeyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        IdempotencyKey::check(&s)?;
        Ok(IdempotencyKey(s))
    }
}

impl AsRef<str> for IdempotencyKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for IdempotencyKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        IdempotencyKey::try_from(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::super::serde_support::{from_str, to_value, Value};
    use super::*;
    use proptest::prelude::*;

    fn invalid(input: &str) -> (usize, String) {
        match IdempotencyKey::parse(input) {
            Err(IdempotencyKeyError::InvalidCharacter {
                position,
                description,
            }) => (position, description),
            other => panic!("{input:?}: expected InvalidCharacter, got {other:?}"),
        }
    }

    #[test]
    fn accepts_printable_ascii_as_given() {
        let key = IdempotencyKey::parse("order-2024-05-01/ABC_123").unwrap();
        assert_eq!(key.as_str(), "order-2024-05-01/ABC_123");
        assert_eq!(key.to_string(), "order-2024-05-01/ABC_123");
        let every_printable: String = ('\x21'..='\x7E').collect();
        assert!(IdempotencyKey::parse(&every_printable).is_ok());
        assert_eq!(IdempotencyKey::parse("!").unwrap().as_str(), "!");
        assert_ne!(
            IdempotencyKey::parse("Abc").unwrap(),
            IdempotencyKey::parse("abc").unwrap()
        );
    }

    #[test]
    fn length_boundaries() {
        assert_eq!(IdempotencyKey::parse(""), Err(IdempotencyKeyError::Empty));
        assert_eq!(
            IdempotencyKeyError::Empty.to_string(),
            "idempotency key is empty"
        );
        assert!(IdempotencyKey::parse("k").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        let err = IdempotencyKey::parse(&"k".repeat(256)).unwrap_err();
        assert_eq!(err, IdempotencyKeyError::TooLong { len: 256 });
        assert_eq!(
            err.to_string(),
            "idempotency key is 256 characters long; the maximum is 255"
        );
    }

    #[test]
    fn rejects_each_bad_class_with_position() {
        assert_eq!(invalid(" abc"), (1, "a space".to_owned()));
        assert_eq!(invalid("abc "), (4, "a space".to_owned()));
        assert_eq!(invalid("a b"), (2, "a space".to_owned()));
        assert_eq!(invalid("a\tb"), (2, "a tab".to_owned()));
        assert_eq!(invalid("ab\n"), (3, "a line break (U+000A)".to_owned()));
        assert_eq!(invalid("\r"), (1, "a line break (U+000D)".to_owned()));
        assert_eq!(
            invalid("a\u{0}"),
            (2, "a control character (U+0000)".to_owned())
        );
        assert_eq!(
            invalid("a\u{7f}"),
            (2, "a control character (U+007F)".to_owned())
        );
        assert_eq!(
            invalid("café"),
            (4, "the non-ASCII character 'é' (U+00E9)".to_owned())
        );
        assert_eq!(
            invalid("x\u{a0}"),
            (2, "a whitespace character (U+00A0)".to_owned())
        );
        // Position counts characters, not bytes.
        assert_eq!(invalid("éé ").0, 1);
        assert_eq!(
            IdempotencyKey::parse("a b").unwrap_err().to_string(),
            "idempotency key contains a space at position 2; only printable ASCII characters without spaces are allowed"
        );
    }

    #[test]
    fn bad_character_beats_length() {
        let long_with_space = format!("{} ", "k".repeat(300));
        assert_eq!(invalid(&long_with_space).0, 301);
    }

    #[test]
    fn conversions_and_serde_go_through_parse() {
        let key = IdempotencyKey::try_from("abc".to_owned()).unwrap();
        assert_eq!(key, "abc".parse().unwrap());
        assert_eq!(key.clone().into_string(), "abc");
        assert!(IdempotencyKey::try_from(String::new()).is_err());
        assert_eq!(to_value(&key).unwrap(), Value::Str("abc".to_owned()));
        assert_eq!(from_str::<IdempotencyKey>("abc").unwrap(), key);
        let err = from_str::<IdempotencyKey>("a b").unwrap_err().to_string();
        assert!(err.contains("a space at position 2"), "{err}");
        assert!(from_str::<IdempotencyKey>("").is_err());
    }

    proptest! {
        #[test]
        fn valid_keys_round_trip(input in "[!-~]{1,255}") {
            let key = IdempotencyKey::parse(&input).unwrap();
            prop_assert_eq!(key.as_str(), input.as_str());
        }

        #[test]
        fn anything_else_is_rejected(input in "\\PC{0,40}") {
            let ok = !input.is_empty() && input.bytes().all(|b| (0x21..=0x7E).contains(&b));
            prop_assert_eq!(IdempotencyKey::parse(&input).is_ok(), ok);
        }
    }
}
