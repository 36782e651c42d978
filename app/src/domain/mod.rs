//! Pure domain layer of giftrecon: currencies, exact money, idempotency keys,
//! GL states and vendor status mappings, vendor identities, roles and usernames.
//!
//! Everything here is plain Rust with no I/O, no clock, no randomness and no
//! feature gates, so it compiles for the server and for wasm32 alike. Each type
//! has private fields and is only reachable through `parse` / `TryFrom`, so a
//! value that exists is valid ("parse, don't validate"). Error messages are
//! written for finance users and name the offending input.

pub mod currency;
pub mod gl;
pub mod idempotency;
pub mod journal;
pub mod matching;
pub mod money;
pub mod order;
pub mod poll;
pub mod queue;
pub mod role;
pub mod vendor;

pub use currency::{Currency, CurrencyError};
pub use gl::{GlState, GlStateError, StatusMapping, StatusMappingError};
pub use idempotency::{IdempotencyKey, IdempotencyKeyError};
pub use money::{Money, MoneyError, MoneyParseError};
pub use order::{parse_reference, FieldError, OrderRequest};
pub use poll::{PollInterval, PollIntervalError};
pub use role::{Role, RoleError, Username, UsernameError};
pub use vendor::{VendorId, VendorIdError, VendorKind, VendorKindError};

/// Longest slice of user input quoted back in an error message.
const EXCERPT_CHARS: usize = 40;

/// Copies `input` for an error message, shortened to [`EXCERPT_CHARS`]
/// characters (with "…") so a huge bad value cannot flood logs or the UI.
pub fn excerpt(input: &str) -> String {
    match input.char_indices().nth(EXCERPT_CHARS) {
        None => input.to_owned(),
        Some((cut, _)) => format!("{}…", &input[..cut]),
    }
}

/// Describes a character for an error message, e.g. "a space",
/// "a tab", "the non-ASCII character 'é' (U+00E9)".
pub(crate) fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\t' => "a tab".to_owned(),
        '\n' | '\r' => format!("a line break (U+{:04X})", c as u32),
        c if c.is_whitespace() => format!("a whitespace character (U+{:04X})", c as u32),
        c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
        c if !c.is_ascii() => format!("the non-ASCII character '{c}' (U+{:04X})", c as u32),
        c if c.is_ascii_uppercase() => format!("the uppercase letter '{c}'"),
        c => format!("the character '{c}'"),
    }
}

/// Test-only serde helpers over serde_json, shaped for the domain's values (strings, and maps
/// of string to string), keeping duplicate map keys so conflict handling can be tested.
#[cfg(test)]
pub(crate) mod serde_support {
    use serde::de::DeserializeOwned;
    use serde::Serialize;

    /// What a value serialized to: a string or a map of string to string.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Value {
        Str(String),
        Map(Vec<(String, String)>),
    }

    pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, serde_json::Error> {
        Ok(match serde_json::to_value(value)? {
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Object(map) => Value::Map(
                map.into_iter()
                    .map(|(k, v)| (k, v.as_str().expect("string values").to_owned()))
                    .collect(),
            ),
            other => panic!("not a string or a map of strings: {other}"),
        })
    }

    pub fn from_str<T: DeserializeOwned>(s: &str) -> Result<T, serde_json::Error> {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
    }

    /// Deserializes a JSON object written from `pairs` in order, duplicates included.
    pub fn from_map<T: DeserializeOwned>(pairs: &[(&str, &str)]) -> Result<T, serde_json::Error> {
        let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
            .collect();
        serde_json::from_str(&format!("{{{}}}", body.join(",")))
    }

    pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, serde_json::Error> {
        match value {
            Value::Str(s) => from_str(s),
            Value::Map(pairs) => {
                let pairs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                from_map(&pairs)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_input_and_shortens_long_input() {
        assert_eq!(excerpt("12.505"), "12.505");
        let long = "x".repeat(100);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        // Multi-byte characters are cut on a character boundary.
        assert_eq!(excerpt(&"é".repeat(50)).chars().count(), EXCERPT_CHARS + 1);
    }

    #[test]
    fn describe_char_names_each_class() {
        assert_eq!(describe_char(' '), "a space");
        assert_eq!(describe_char('\t'), "a tab");
        assert_eq!(describe_char('\n'), "a line break (U+000A)");
        assert_eq!(describe_char('\u{a0}'), "a whitespace character (U+00A0)");
        assert_eq!(describe_char('\u{7}'), "a control character (U+0007)");
        assert_eq!(describe_char('é'), "the non-ASCII character 'é' (U+00E9)");
        assert_eq!(describe_char('A'), "the uppercase letter 'A'");
        assert_eq!(describe_char('#'), "the character '#'");
    }
}
