//! Vendor identities and the kinds of vendor integrations.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use super::{describe_char, excerpt, GlState, StatusMapping};

/// Longest accepted vendor id, in characters.
pub const MAX_VENDOR_ID_LEN: usize = 64;

/// A vendor's stable id, e.g. "tremendous" or "acme-cards_2": 1–64 of
/// lowercase ASCII letters, digits, '-' and '_', starting with a letter or
/// digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct VendorId(String);

/// Why a vendor id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VendorIdError {
    #[error("vendor id is empty")]
    Empty,
    #[error("vendor id is {len} characters long; the maximum is {MAX_VENDOR_ID_LEN}")]
    TooLong { len: usize },
    #[error("vendor id {input:?} must start with a lowercase letter or digit, not {description}")]
    InvalidStart { input: String, description: String },
    #[error("vendor id {input:?} contains {description} at position {position}; use only lowercase letters a-z, digits, '-' and '_'")]
    InvalidCharacter {
        input: String,
        description: String,
        /// 1-based character position.
        position: usize,
    },
}

fn is_vendor_id_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

impl VendorId {
    pub fn parse(input: &str) -> Result<VendorId, VendorIdError> {
        Self::check(input)?;
        Ok(VendorId(input.to_owned()))
    }

    fn check(input: &str) -> Result<(), VendorIdError> {
        let Some(first) = input.chars().next() else {
            return Err(VendorIdError::Empty);
        };
        if let Some((i, c)) = input
            .chars()
            .enumerate()
            .find(|(_, c)| !is_vendor_id_char(*c))
        {
            return Err(VendorIdError::InvalidCharacter {
                input: excerpt(input),
                description: describe_char(c),
                position: i + 1,
            });
        }
        if !first.is_ascii_alphanumeric() {
            return Err(VendorIdError::InvalidStart {
                input: excerpt(input),
                description: describe_char(first),
            });
        }
        // Only ASCII remains, so bytes == characters.
        if input.len() > MAX_VENDOR_ID_LEN {
            return Err(VendorIdError::TooLong { len: input.len() });
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VendorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for VendorId {
    type Err = VendorIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VendorId::parse(s)
    }
}

impl TryFrom<&str> for VendorId {
    type Error = VendorIdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        VendorId::parse(s)
    }
}

impl TryFrom<String> for VendorId {
    type Error = VendorIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        VendorId::check(&s)?;
        Ok(VendorId(s))
    }
}

impl AsRef<str> for VendorId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for VendorId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for VendorId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        VendorId::try_from(s).map_err(serde::de::Error::custom)
    }
}

/// Which integration a vendor uses; decides its default status mapping.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum VendorKind {
    Generic,
    Tremendous,
    Runa,
}

/// Why a vendor kind name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VendorKindError {
    #[error("unknown vendor kind {input:?}; valid kinds are generic, tremendous, runa")]
    Unknown { input: String },
}

impl VendorKind {
    pub const ALL: [VendorKind; 3] = [
        VendorKind::Generic,
        VendorKind::Tremendous,
        VendorKind::Runa,
    ];

    /// Lowercase name: "generic", "tremendous", "runa".
    pub const fn as_str(&self) -> &'static str {
        match self {
            VendorKind::Generic => "generic",
            VendorKind::Tremendous => "tremendous",
            VendorKind::Runa => "runa",
        }
    }

    /// Case-insensitive ("Tremendous" is fine); nothing is trimmed.
    pub fn parse(input: &str) -> Result<VendorKind, VendorKindError> {
        VendorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(input))
            .ok_or_else(|| VendorKindError::Unknown {
                input: excerpt(input),
            })
    }

    /// The status mapping a new vendor of this kind starts with.
    pub fn default_status_mapping(&self) -> StatusMapping {
        let pairs: &[(&str, GlState)] = match self {
            VendorKind::Generic => return StatusMapping::generic_default(),
            // Order statuses from the Tremendous API.
            VendorKind::Tremendous => &[
                ("OPEN", GlState::Pending),
                ("PENDING APPROVAL", GlState::Pending),
                ("EXECUTED", GlState::Fulfilled),
                ("FAILED", GlState::Failed),
                ("CANCELED", GlState::Failed),
            ],
            // Order statuses from the Runa API.
            VendorKind::Runa => &[
                ("PROCESSING", GlState::Pending),
                ("COMPLETED", GlState::Fulfilled),
                ("FAILED", GlState::Failed),
            ],
        };
        StatusMapping::from_pairs(pairs.iter().copied())
            .expect("built-in vendor status mappings are valid")
    }
}

impl fmt::Display for VendorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VendorKind {
    type Err = VendorKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VendorKind::parse(s)
    }
}

impl TryFrom<&str> for VendorKind {
    type Error = VendorKindError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        VendorKind::parse(s)
    }
}

impl Serialize for VendorKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VendorKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        VendorKind::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::super::serde_support::{from_str, to_value, Value};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vendor_id_accepts_the_allowed_alphabet() {
        for input in ["a", "7", "tremendous", "acme-cards_2", "0-_", "a--b__"] {
            let id = VendorId::parse(input).unwrap();
            assert_eq!(id.as_str(), input);
            assert_eq!(id.to_string(), input);
        }
        assert!(VendorId::parse(&"v".repeat(64)).is_ok());
    }

    #[test]
    fn vendor_id_length_boundaries() {
        assert_eq!(VendorId::parse(""), Err(VendorIdError::Empty));
        assert_eq!(VendorIdError::Empty.to_string(), "vendor id is empty");
        let err = VendorId::parse(&"v".repeat(65)).unwrap_err();
        assert_eq!(err, VendorIdError::TooLong { len: 65 });
        assert_eq!(
            err.to_string(),
            "vendor id is 65 characters long; the maximum is 64"
        );
    }

    #[test]
    fn vendor_id_names_bad_characters_and_positions() {
        let err = VendorId::parse("Acme").unwrap_err();
        assert_eq!(
            err.to_string(),
            "vendor id \"Acme\" contains the uppercase letter 'A' at position 1; use only lowercase letters a-z, digits, '-' and '_'"
        );
        let cases = [
            ("acme cards", 5, "a space"),
            ("acme.cards", 5, "the character '.'"),
            ("acmé", 4, "the non-ASCII character 'é' (U+00E9)"),
            ("acme\n", 5, "a line break (U+000A)"),
            (" acme", 1, "a space"),
        ];
        for (input, position, description) in cases {
            match VendorId::parse(input).unwrap_err() {
                VendorIdError::InvalidCharacter {
                    position: p,
                    description: d,
                    ..
                } => {
                    assert_eq!((p, d.as_str()), (position, description), "{input:?}");
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn vendor_id_must_start_with_letter_or_digit() {
        for input in ["-acme", "_acme", "-"] {
            let err = VendorId::parse(input).unwrap_err();
            assert!(matches!(err, VendorIdError::InvalidStart { .. }), "{input}");
        }
        assert_eq!(
            VendorId::parse("-acme").unwrap_err().to_string(),
            "vendor id \"-acme\" must start with a lowercase letter or digit, not the character '-'"
        );
    }

    #[test]
    fn vendor_id_conversions_and_serde() {
        let id = VendorId::try_from("runa".to_owned()).unwrap();
        assert_eq!(id, "runa".parse().unwrap());
        assert!(VendorId::try_from("Runa".to_owned()).is_err());
        assert_eq!(to_value(&id).unwrap(), Value::Str("runa".to_owned()));
        assert_eq!(from_str::<VendorId>("runa").unwrap(), id);
        assert!(from_str::<VendorId>("Runa").is_err());
    }

    #[test]
    fn vendor_kind_names() {
        for kind in VendorKind::ALL {
            assert_eq!(VendorKind::parse(kind.as_str()), Ok(kind));
            assert_eq!(VendorKind::parse(&kind.as_str().to_uppercase()), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            assert_eq!(
                to_value(&kind).unwrap(),
                Value::Str(kind.as_str().to_owned())
            );
            assert_eq!(from_str::<VendorKind>(kind.as_str()).unwrap(), kind);
        }
        assert_eq!(VendorKind::parse("Tremendous"), Ok(VendorKind::Tremendous));
        let err = VendorKind::parse("giftbit").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown vendor kind \"giftbit\"; valid kinds are generic, tremendous, runa"
        );
        assert!(VendorKind::parse(" runa").is_err());
        assert!(VendorKind::parse("").is_err());
        assert!(from_str::<VendorKind>("giftbit").is_err());
    }

    #[test]
    fn default_mappings_per_kind() {
        assert_eq!(
            VendorKind::Generic.default_status_mapping(),
            StatusMapping::generic_default()
        );
        let tremendous = VendorKind::Tremendous.default_status_mapping();
        let cases = [
            ("OPEN", Some(GlState::Pending)),
            ("PENDING APPROVAL", Some(GlState::Pending)),
            ("pending approval", Some(GlState::Pending)),
            ("EXECUTED", Some(GlState::Fulfilled)),
            ("FAILED", Some(GlState::Failed)),
            ("CANCELED", Some(GlState::Failed)),
            ("CART", None),
            ("COMPLETED", None),
        ];
        for (status, state) in cases {
            assert_eq!(
                tremendous.gl_state_for(status),
                state,
                "tremendous {status}"
            );
        }
        assert_eq!(tremendous.len(), 5);
        let runa = VendorKind::Runa.default_status_mapping();
        let cases = [
            ("PROCESSING", Some(GlState::Pending)),
            ("Completed", Some(GlState::Fulfilled)),
            ("FAILED", Some(GlState::Failed)),
            ("EXECUTED", None),
            ("REFUNDED", None),
        ];
        for (status, state) in cases {
            assert_eq!(runa.gl_state_for(status), state, "runa {status}");
        }
        assert_eq!(runa.len(), 3);
    }

    proptest! {
        #[test]
        fn valid_ids_round_trip(input in "[a-z0-9][a-z0-9_-]{0,63}") {
            let id = VendorId::parse(&input).unwrap();
            prop_assert_eq!(id.as_str(), input.as_str());
        }

        #[test]
        fn parse_agrees_with_the_rule(input in "\\PC{0,70}") {
            let chars: Vec<char> = input.chars().collect();
            let ok = (1..=64).contains(&chars.len())
                && chars[0].is_ascii_alphanumeric()
                && chars.iter().all(|c| is_vendor_id_char(*c));
            prop_assert_eq!(VendorId::parse(&input).is_ok(), ok);
        }
    }
}
