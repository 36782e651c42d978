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
pub mod money;
pub mod order;
pub mod role;
pub mod vendor;

pub use currency::{Currency, CurrencyError};
pub use gl::{GlState, GlStateError, StatusMapping, StatusMappingError};
pub use idempotency::{IdempotencyKey, IdempotencyKeyError};
pub use money::{Money, MoneyError, MoneyParseError};
pub use order::{parse_reference, FieldError, OrderRequest};
pub use role::{Role, RoleError, Username, UsernameError};
pub use vendor::{VendorId, VendorIdError, VendorKind, VendorKindError};

/// Longest slice of user input quoted back in an error message.
const EXCERPT_CHARS: usize = 40;

/// Copies `input` for an error message, shortened to [`EXCERPT_CHARS`]
/// characters (with "…") so a huge bad value cannot flood logs or the UI.
pub(crate) fn excerpt(input: &str) -> String {
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

/// Test-only serde helpers: a tiny serializer to an inspectable value and
/// deserializers from strings and string maps (no serde_json needed).
#[cfg(test)]
pub(crate) mod serde_support {
    use serde::de::value::{Error, MapDeserializer, StrDeserializer};
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::{self, Impossible, Serialize};

    /// What a value serialized to: a string or a map of string to string.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Value {
        Str(String),
        Map(Vec<(String, String)>),
    }

    pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
        value.serialize(ValueSerializer)
    }

    pub fn from_str<T: DeserializeOwned>(s: &str) -> Result<T, Error> {
        T::deserialize(StrDeserializer::<Error>::new(s))
    }

    pub fn from_map<T: DeserializeOwned>(pairs: &[(&str, &str)]) -> Result<T, Error> {
        T::deserialize(MapDeserializer::<_, Error>::new(pairs.iter().copied()))
    }

    pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Error> {
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

    fn as_string(value: Value) -> Result<String, Error> {
        match value {
            Value::Str(s) => Ok(s),
            Value::Map(_) => Err(Error::custom("nested maps are not supported")),
        }
    }

    struct ValueSerializer;

    pub struct MapSerializer {
        pairs: Vec<(String, String)>,
        key: Option<String>,
    }

    macro_rules! unsupported {
        ($($name:ident($($arg:ty),*)),* $(,)?) => {$(
            fn $name(self, $(_: $arg),*) -> Result<Value, Error> {
                Err(<Error as ser::Error>::custom(concat!(stringify!($name), " is unsupported")))
            }
        )*};
    }

    impl ser::Serializer for ValueSerializer {
        type Ok = Value;
        type Error = Error;
        type SerializeSeq = Impossible<Value, Error>;
        type SerializeTuple = Impossible<Value, Error>;
        type SerializeTupleStruct = Impossible<Value, Error>;
        type SerializeTupleVariant = Impossible<Value, Error>;
        type SerializeMap = MapSerializer;
        type SerializeStruct = MapSerializer;
        type SerializeStructVariant = Impossible<Value, Error>;

        unsupported!(
            serialize_bool(bool),
            serialize_i8(i8),
            serialize_i16(i16),
            serialize_i32(i32),
            serialize_i64(i64),
            serialize_u8(u8),
            serialize_u16(u16),
            serialize_u32(u32),
            serialize_u64(u64),
            serialize_f32(f32),
            serialize_f64(f64),
            serialize_char(char),
            serialize_bytes(&[u8]),
            serialize_none(),
            serialize_unit(),
            serialize_unit_struct(&'static str),
        );

        fn serialize_str(self, v: &str) -> Result<Value, Error> {
            Ok(Value::Str(v.to_owned()))
        }
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, Error> {
            v.serialize(self)
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<Value, Error> {
            Ok(Value::Str(variant.to_owned()))
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<Value, Error> {
            v.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Value, Error> {
            Err(<Error as ser::Error>::custom(
                "newtype variants are unsupported",
            ))
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
            Err(<Error as ser::Error>::custom("sequences are unsupported"))
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
            Err(<Error as ser::Error>::custom("tuples are unsupported"))
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Error> {
            Err(<Error as ser::Error>::custom(
                "tuple structs are unsupported",
            ))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Error> {
            Err(<Error as ser::Error>::custom(
                "tuple variants are unsupported",
            ))
        }
        fn serialize_map(self, _: Option<usize>) -> Result<MapSerializer, Error> {
            Ok(MapSerializer {
                pairs: Vec::new(),
                key: None,
            })
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<MapSerializer, Error> {
            self.serialize_map(None)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Error> {
            Err(<Error as ser::Error>::custom(
                "struct variants are unsupported",
            ))
        }
    }

    impl ser::SerializeMap for MapSerializer {
        type Ok = Value;
        type Error = Error;
        fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
            self.key = Some(as_string(to_value(key)?)?);
            Ok(())
        }
        fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
            let key = self
                .key
                .take()
                .ok_or_else(|| Error::custom("value without key"))?;
            self.pairs.push((key, as_string(to_value(value)?)?));
            Ok(())
        }
        fn end(self) -> Result<Value, Error> {
            Ok(Value::Map(self.pairs))
        }
    }

    impl ser::SerializeStruct for MapSerializer {
        type Ok = Value;
        type Error = Error;
        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            value: &T,
        ) -> Result<(), Error> {
            self.pairs
                .push((key.to_owned(), as_string(to_value(value)?)?));
            Ok(())
        }
        fn end(self) -> Result<Value, Error> {
            Ok(Value::Map(self.pairs))
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
