//! User roles and usernames.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use super::{describe_char, excerpt};

/// What a user may do in giftrecon.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Role {
    Admin,
    FinancePreparer,
    FinanceApprover,
    Support,
}

/// Why a role name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoleError {
    #[error("unknown role {input:?}; valid roles are admin, finance_preparer, finance_approver, support")]
    Unknown { input: String },
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::FinancePreparer,
        Role::FinanceApprover,
        Role::Support,
    ];

    /// Stored name: "admin", "finance_preparer", "finance_approver", "support".
    pub const fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::FinancePreparer => "finance_preparer",
            Role::FinanceApprover => "finance_approver",
            Role::Support => "support",
        }
    }

    /// Human label for the UI, e.g. "Finance preparer".
    pub const fn label(&self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::FinancePreparer => "Finance preparer",
            Role::FinanceApprover => "Finance approver",
            Role::Support => "Support",
        }
    }

    /// Exact stored names only ("Admin" is rejected).
    pub fn parse(input: &str) -> Result<Role, RoleError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == input)
            .ok_or_else(|| RoleError::Unknown {
                input: excerpt(input),
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
    }
}

impl TryFrom<&str> for Role {
    type Error = RoleError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Role::parse(s)
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Role::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Longest accepted username, in characters.
pub const MAX_USERNAME_LEN: usize = 64;

/// A login name: 1–64 of ASCII letters, digits, '.', '_', '-' and '@'.
/// Kept exactly as entered; compare [`Username::normalized`] for uniqueness.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Username(String);

/// Why a username was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsernameError {
    #[error("username is empty")]
    Empty,
    #[error("username is {len} characters long; the maximum is {MAX_USERNAME_LEN}")]
    TooLong { len: usize },
    #[error("username {input:?} contains {description} at position {position}; use only letters, digits, '.', '_', '-' and '@'")]
    InvalidCharacter {
        input: String,
        description: String,
        /// 1-based character position.
        position: usize,
    },
}

fn is_username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')
}

impl Username {
    pub fn parse(input: &str) -> Result<Username, UsernameError> {
        Self::check(input)?;
        Ok(Username(input.to_owned()))
    }

    fn check(input: &str) -> Result<(), UsernameError> {
        if input.is_empty() {
            return Err(UsernameError::Empty);
        }
        if let Some((i, c)) = input
            .chars()
            .enumerate()
            .find(|(_, c)| !is_username_char(*c))
        {
            return Err(UsernameError::InvalidCharacter {
                input: excerpt(input),
                description: describe_char(c),
                position: i + 1,
            });
        }
        // Only ASCII remains, so bytes == characters.
        if input.len() > MAX_USERNAME_LEN {
            return Err(UsernameError::TooLong { len: input.len() });
        }
        Ok(())
    }

    /// The username as entered (case preserved).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lowercase form, for case-insensitive uniqueness ("Ana" == "ana").
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Username {
    type Err = UsernameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Username::parse(s)
    }
}

impl TryFrom<&str> for Username {
    type Error = UsernameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Username::parse(s)
    }
}

impl TryFrom<String> for Username {
    type Error = UsernameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Username::check(&s)?;
        Ok(Username(s))
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Username {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Username::try_from(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::super::serde_support::{from_str, to_value, Value};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn role_names_labels_and_serde() {
        let expected = [
            (Role::Admin, "admin", "Admin"),
            (
                Role::FinancePreparer,
                "finance_preparer",
                "Finance preparer",
            ),
            (
                Role::FinanceApprover,
                "finance_approver",
                "Finance approver",
            ),
            (Role::Support, "support", "Support"),
        ];
        assert_eq!(Role::ALL.len(), expected.len());
        for (role, name, label) in expected {
            assert_eq!(role.as_str(), name);
            assert_eq!(role.label(), label);
            assert_eq!(role.to_string(), name);
            assert_eq!(Role::parse(name), Ok(role));
            assert_eq!(name.parse::<Role>(), Ok(role));
            assert_eq!(to_value(&role).unwrap(), Value::Str(name.to_owned()));
            assert_eq!(from_str::<Role>(name).unwrap(), role);
        }
    }

    #[test]
    fn role_parse_is_exact() {
        for bad in [
            "Admin",
            "ADMIN",
            " admin",
            "finance-preparer",
            "financepreparer",
            "",
        ] {
            assert!(Role::parse(bad).is_err(), "{bad:?}");
            assert!(from_str::<Role>(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Role::parse("Admin").unwrap_err().to_string(),
            "unknown role \"Admin\"; valid roles are admin, finance_preparer, finance_approver, support"
        );
    }

    #[test]
    fn username_keeps_case_and_normalizes_for_comparison() {
        let name = Username::parse("Ana.Lopez@Example-Corp_1").unwrap();
        assert_eq!(name.as_str(), "Ana.Lopez@Example-Corp_1");
        assert_eq!(name.to_string(), "Ana.Lopez@Example-Corp_1");
        assert_eq!(name.normalized(), "ana.lopez@example-corp_1");
        let other = Username::parse("ANA.LOPEZ@example-corp_1").unwrap();
        assert_ne!(name, other);
        assert_eq!(name.normalized(), other.normalized());
    }

    #[test]
    fn username_length_boundaries() {
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        assert_eq!(UsernameError::Empty.to_string(), "username is empty");
        assert!(Username::parse("a").is_ok());
        assert!(Username::parse(&"u".repeat(64)).is_ok());
        let err = Username::parse(&"u".repeat(65)).unwrap_err();
        assert_eq!(err, UsernameError::TooLong { len: 65 });
        assert_eq!(
            err.to_string(),
            "username is 65 characters long; the maximum is 64"
        );
    }

    #[test]
    fn username_names_bad_characters_and_positions() {
        let cases = [
            ("ana lopez", 4, "a space"),
            (" ana", 1, "a space"),
            ("ana+1", 4, "the character '+'"),
            ("josé", 4, "the non-ASCII character 'é' (U+00E9)"),
            ("ana\t", 4, "a tab"),
        ];
        for (input, position, description) in cases {
            match Username::parse(input).unwrap_err() {
                UsernameError::InvalidCharacter {
                    position: p,
                    description: d,
                    ..
                } => assert_eq!((p, d.as_str()), (position, description), "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
        assert_eq!(
            Username::parse("ana lopez").unwrap_err().to_string(),
            "username \"ana lopez\" contains a space at position 4; use only letters, digits, '.', '_', '-' and '@'"
        );
    }

    #[test]
    fn username_conversions_and_serde() {
        let name = Username::try_from("Ana".to_owned()).unwrap();
        assert_eq!(name, "Ana".parse().unwrap());
        assert!(Username::try_from("a b".to_owned()).is_err());
        assert_eq!(to_value(&name).unwrap(), Value::Str("Ana".to_owned()));
        assert_eq!(from_str::<Username>("Ana").unwrap(), name);
        assert!(from_str::<Username>("").is_err());
    }

    proptest! {
        #[test]
        fn valid_usernames_round_trip(input in "[A-Za-z0-9._@-]{1,64}") {
            let name = Username::parse(&input).unwrap();
            prop_assert_eq!(name.as_str(), input.as_str());
            prop_assert_eq!(name.normalized(), input.to_ascii_lowercase());
        }

        #[test]
        fn parse_agrees_with_the_rule(input in "\\PC{0,70}") {
            let ok = (1..=64).contains(&input.chars().count())
                && input.chars().all(is_username_char);
            prop_assert_eq!(Username::parse(&input).is_ok(), ok);
        }
    }
}
