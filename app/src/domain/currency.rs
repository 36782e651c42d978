//! ISO 4217 currencies that have a defined minor unit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use super::excerpt;

/// Active ISO 4217 codes with their minor unit (decimal places), sorted by
/// code. Codes whose minor unit is "N.A." (metals, XDR, XXX, XTS, ...) are
/// deliberately absent: they cannot carry an amount in minor units.
#[rustfmt::skip]
const TABLE: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BOV", 2),
    ("BRL", 2), ("BSD", 2), ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2),
    ("CAD", 2), ("CDF", 2), ("CHE", 2), ("CHF", 2), ("CHW", 2), ("CLF", 4),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("COU", 2), ("CRC", 2), ("CUP", 2),
    ("CVE", 2), ("CZK", 2), ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2),
    ("EGP", 2), ("ERN", 2), ("ETB", 2), ("EUR", 2), ("FJD", 2), ("FKP", 2),
    ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2), ("GNF", 0),
    ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2), ("HUF", 2),
    ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0),
    ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2),
    ("KMF", 0), ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2),
    ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3),
    ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2), ("MNT", 2),
    ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2),
    ("MXV", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2),
    ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2),
    ("PGK", 2), ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2),
    ("RON", 2), ("RSD", 2), ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2),
    ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2), ("SLE", 2),
    ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2), ("SYP", 2),
    ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2),
    ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0),
    ("USD", 2), ("USN", 2), ("UYI", 0), ("UYU", 2), ("UYW", 4), ("UZS", 2),
    ("VED", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0),
    ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2),
    ("ZMW", 2), ("ZWG", 2),
];

/// ISO 4217 codes that exist but have no minor unit ("N.A."), so they get a
/// clearer error than "unknown".
const NO_MINOR_UNIT: &[&str] = &[
    "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX",
];

/// An ISO 4217 currency with a defined minor unit, e.g. USD (2), JPY (0),
/// KWD (3). Ordered by code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    /// Index into [`TABLE`]; the table is sorted, so index order is code order.
    index: u8,
}

/// Why a currency code was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CurrencyError {
    #[error("currency code is empty")]
    Empty,
    #[error("currency code {input:?} must be exactly three letters A–Z, like USD")]
    InvalidFormat { input: String },
    #[error("{code} has no minor unit in ISO 4217 and cannot be used for amounts")]
    NoMinorUnit { code: String },
    #[error("{code:?} is not a recognised ISO 4217 currency code")]
    Unknown { code: String },
}

/// Compile-time friendly binary search over [`TABLE`].
const fn find(code: &[u8]) -> Option<usize> {
    if code.len() != 3 {
        return None;
    }
    let (mut lo, mut hi) = (0, TABLE.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let probe = TABLE[mid].0.as_bytes();
        let mut i = 0;
        let mut ord = 0i8;
        while i < 3 && ord == 0 {
            if probe[i] < code[i] {
                ord = -1;
            } else if probe[i] > code[i] {
                ord = 1;
            }
            i += 1;
        }
        match ord {
            0 => return Some(mid),
            -1 => lo = mid + 1,
            _ => hi = mid,
        }
    }
    None
}

impl Currency {
    pub const USD: Currency = Currency::known("USD");
    pub const EUR: Currency = Currency::known("EUR");
    pub const GBP: Currency = Currency::known("GBP");
    pub const CAD: Currency = Currency::known("CAD");
    pub const AUD: Currency = Currency::known("AUD");
    pub const JPY: Currency = Currency::known("JPY");
    pub const KWD: Currency = Currency::known("KWD");
    pub const CLF: Currency = Currency::known("CLF");

    /// For constants only: fails to compile if `code` is not in the table.
    const fn known(code: &str) -> Currency {
        match find(code.as_bytes()) {
            Some(index) => Currency { index: index as u8 },
            None => panic!("currency code missing from the ISO 4217 table"),
        }
    }

    /// Parses an ISO 4217 alphabetic code, case-insensitively ("usd" → USD).
    /// Nothing is trimmed: " USD" is an error.
    pub fn parse(input: &str) -> Result<Currency, CurrencyError> {
        if input.is_empty() {
            return Err(CurrencyError::Empty);
        }
        if input.len() != 3 || !input.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(CurrencyError::InvalidFormat {
                input: excerpt(input),
            });
        }
        let upper = input.to_ascii_uppercase();
        match find(upper.as_bytes()) {
            Some(index) => Ok(Currency { index: index as u8 }),
            None if NO_MINOR_UNIT.contains(&upper.as_str()) => {
                Err(CurrencyError::NoMinorUnit { code: upper })
            }
            None => Err(CurrencyError::Unknown { code: upper }),
        }
    }

    /// The uppercase three-letter code, e.g. "USD".
    pub fn code(&self) -> &'static str {
        TABLE[self.index as usize].0
    }

    /// Number of decimal places of the minor unit: USD 2, JPY 0, KWD 3, CLF 4.
    pub fn exponent(&self) -> u8 {
        TABLE[self.index as usize].1
    }

    /// Every supported currency, in code order (e.g. for a picker).
    pub fn all() -> impl Iterator<Item = Currency> {
        (0..TABLE.len()).map(|index| Currency { index: index as u8 })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl TryFrom<&str> for Currency {
    type Error = CurrencyError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::super::serde_support::{from_str, to_value, Value};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        for (code, exponent) in TABLE {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
            assert!(matches!(exponent, 0 | 2 | 3 | 4), "{code}");
            assert_eq!(find(code.as_bytes()).map(|i| TABLE[i].0), Some(*code));
        }
        assert!((155..=180).contains(&TABLE.len()), "{}", TABLE.len());
        assert!(TABLE.len() <= u8::MAX as usize);
        for code in NO_MINOR_UNIT {
            assert_eq!(find(code.as_bytes()), None, "{code}");
        }
    }

    #[test]
    fn exponents_follow_iso_4217() {
        let cases = [
            ("USD", 2),
            ("EUR", 2),
            ("GBP", 2),
            ("CHF", 2),
            ("MGA", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("VND", 0),
            ("CLP", 0),
            ("ISK", 0),
            ("PYG", 0),
            ("UGX", 0),
            ("XAF", 0),
            ("XOF", 0),
            ("XPF", 0),
            ("UYI", 0),
            ("KWD", 3),
            ("BHD", 3),
            ("OMR", 3),
            ("JOD", 3),
            ("TND", 3),
            ("IQD", 3),
            ("LYD", 3),
            ("CLF", 4),
            ("UYW", 4),
        ];
        for (code, exponent) in cases {
            assert_eq!(
                Currency::parse(code).unwrap().exponent(),
                exponent,
                "{code}"
            );
        }
    }

    #[test]
    fn constants_match_parse() {
        assert_eq!(Currency::USD, Currency::parse("USD").unwrap());
        assert_eq!(Currency::JPY.code(), "JPY");
        assert_eq!(Currency::KWD.exponent(), 3);
        assert_eq!(Currency::CLF.exponent(), 4);
        assert_eq!(Currency::EUR.to_string(), "EUR");
        assert_eq!(format!("{:?}", Currency::GBP), "Currency(GBP)");
    }

    #[test]
    fn parse_is_case_insensitive_and_normalizes() {
        for input in ["usd", "Usd", "uSd", "USD"] {
            let c = Currency::parse(input).unwrap();
            assert_eq!(c, Currency::USD);
            assert_eq!(c.code(), "USD");
        }
        assert_eq!("eur".parse::<Currency>().unwrap(), Currency::EUR);
        assert_eq!(Currency::try_from("jpy").unwrap(), Currency::JPY);
    }

    #[test]
    fn parse_rejects_bad_shapes_without_trimming() {
        assert_eq!(Currency::parse(""), Err(CurrencyError::Empty));
        for input in [" USD", "USD ", "US", "USDX", "U5D", "US-", "ÜSD", "$"] {
            let err = Currency::parse(input).unwrap_err();
            assert!(
                matches!(err, CurrencyError::InvalidFormat { .. }),
                "{input}"
            );
            assert!(err.to_string().contains("three letters"), "{err}");
        }
        assert_eq!(
            Currency::parse(" USD").unwrap_err().to_string(),
            "currency code \" USD\" must be exactly three letters A–Z, like USD"
        );
    }

    #[test]
    fn parse_rejects_unknown_and_withdrawn_codes_naming_them() {
        for code in ["ABC", "zzz", "HRK", "ZWL", "DEM"] {
            let err = Currency::parse(code).unwrap_err();
            let upper = code.to_ascii_uppercase();
            assert_eq!(
                err,
                CurrencyError::Unknown {
                    code: upper.clone()
                }
            );
            assert_eq!(
                err.to_string(),
                format!("\"{upper}\" is not a recognised ISO 4217 currency code")
            );
        }
    }

    #[test]
    fn parse_rejects_codes_without_minor_unit() {
        for code in [
            "XAU", "xag", "XDR", "XXX", "XTS", "XPT", "XPD", "XSU", "XUA",
        ] {
            let err = Currency::parse(code).unwrap_err();
            assert!(matches!(err, CurrencyError::NoMinorUnit { .. }), "{code}");
            assert!(err.to_string().contains("has no minor unit"), "{err}");
        }
    }

    #[test]
    fn all_lists_every_currency_in_code_order() {
        let all: Vec<Currency> = Currency::all().collect();
        assert_eq!(all.len(), TABLE.len());
        assert!(all
            .windows(2)
            .all(|w| w[0] < w[1] && w[0].code() < w[1].code()));
    }

    #[test]
    fn serde_uses_the_code_string() {
        assert_eq!(
            to_value(&Currency::KWD).unwrap(),
            Value::Str("KWD".to_owned())
        );
        assert_eq!(from_str::<Currency>("usd").unwrap(), Currency::USD);
        let err = from_str::<Currency>("XYZ").unwrap_err().to_string();
        assert!(err.contains("\"XYZ\" is not a recognised"), "{err}");
        assert!(from_str::<Currency>(" USD").is_err());
    }

    proptest! {
        #[test]
        fn code_round_trips_in_any_case(index in 0..TABLE.len(), lower in any::<bool>()) {
            let code = TABLE[index].0;
            let input = if lower { code.to_ascii_lowercase() } else { code.to_owned() };
            let c = Currency::parse(&input).unwrap();
            prop_assert_eq!(c.code(), code);
            prop_assert_eq!(Currency::parse(&c.to_string()).unwrap(), c);
        }

        #[test]
        fn parse_never_panics(input in "\\PC{0,6}") {
            let _ = Currency::parse(&input);
        }
    }
}
