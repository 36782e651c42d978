//! Exact money: an `i64` count of minor units (cents, fils, yen) plus a
//! [`Currency`]. Floats are never used; parsing never rounds.

use std::cmp::Ordering;
use std::fmt;

use rust_decimal::Decimal;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use super::{describe_char, excerpt, Currency};

/// An exact amount of one currency, stored as minor units.
///
/// Deliberately has no `Add`/`Sub`/`PartialOrd`: amounts in different
/// currencies must never be combined silently, so use the `checked_*` methods.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

/// Why an amount string (or decimal) could not become [`Money`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyParseError {
    #[error("amount is empty")]
    Empty,
    #[error("amount {input:?} has leading or trailing whitespace; remove it")]
    SurroundingWhitespace { input: String },
    #[error("amount {input:?} contains {symbol:?}: currency symbols are not allowed (the currency is chosen separately)")]
    CurrencySymbol { input: String, symbol: String },
    #[error("amount {input:?} has the sign '{sign}': a sign is not allowed here")]
    Sign { input: String, sign: char },
    #[error("amount {input:?} uses {} as a separator: thousands separators are not allowed", describe_char(*.separator))]
    ThousandsSeparator { input: String, separator: char },
    #[error("amount {input:?} uses ',' as the decimal point; use '.' instead, e.g. 12.50")]
    DecimalComma { input: String },
    #[error("amount {input:?} uses exponent notation; write the number out in full, e.g. 1000 instead of 1e3")]
    ExponentNotation { input: String },
    #[error("amount {input:?} contains {description} at position {position}, which is not allowed in an amount")]
    InvalidCharacter {
        input: String,
        description: String,
        /// 1-based character position in the input.
        position: usize,
    },
    #[error("amount {input:?} has more than one decimal point")]
    MultipleDecimalPoints { input: String },
    #[error("amount {input:?} has no digits")]
    NoDigits { input: String },
    #[error(
        "amount {input:?} is missing digits before the decimal point; write 0.5 rather than .5"
    )]
    MissingIntegerDigits { input: String },
    #[error("amount {input:?} is missing digits after the decimal point; write 50 or 50.00 rather than 50.")]
    MissingFractionDigits { input: String },
    #[error("amount {input:?} has {} but {currency} allows {}", decimal_places(*.places), allowed_places(*.currency))]
    TooManyDecimals {
        input: String,
        /// Decimal places that carry a non-zero digit.
        places: usize,
        currency: Currency,
    },
    #[error("amount {input:?} is too large")]
    TooLarge { input: String },
}

/// Why arithmetic on [`Money`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("cannot add, subtract or compare {left} and {right} amounts: the currencies differ")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount is too large: the result is outside the supported range")]
    Overflow,
}

fn decimal_places(places: usize) -> String {
    match places {
        1 => "1 decimal place".to_owned(),
        n => format!("{n} decimal places"),
    }
}

fn allowed_places(currency: Currency) -> String {
    match currency.exponent() {
        0 => "none".to_owned(),
        n => n.to_string(),
    }
}

/// Currency signs outside the U+20A0..=U+20C0 "Currency Symbols" block.
const CURRENCY_SIGNS: &str = "$¢£¤¥֏؋৳฿៛﷼﹩＄￠￡￥￦";

/// Characters people use to group thousands.
const GROUP_SEPARATORS: &str = ", _'’\u{A0}\u{2009}\u{202F}";

fn is_currency_symbol(c: char) -> bool {
    ('\u{20A0}'..='\u{20C0}').contains(&c) || CURRENCY_SIGNS.contains(c)
}

/// `1,50`, `12,5` or `1.000,50`: a comma used as the decimal point.
fn looks_like_decimal_comma(body: &str) -> bool {
    let Some(comma) = body.rfind(',') else {
        return false;
    };
    if let Some(dot) = body.find('.') {
        return dot < comma;
    }
    let after = &body[comma + 1..];
    !after.is_empty() && after.len() != 3 && after.bytes().all(|b| b.is_ascii_digit())
}

/// Parses `body` (no sign) as `digits[.digits]` into a magnitude in minor units.
fn parse_magnitude(
    input: &str,
    body: &str,
    offset: usize,
    currency: Currency,
) -> Result<u64, MoneyParseError> {
    use MoneyParseError as E;
    let err_input = || excerpt(input);
    if body.is_empty() {
        return Err(E::NoDigits { input: err_input() });
    }
    if let Some(c @ ('-' | '+' | '\u{2212}')) = body.chars().next() {
        return Err(E::Sign {
            input: err_input(),
            sign: c,
        });
    }
    if looks_like_decimal_comma(body) {
        return Err(E::DecimalComma { input: err_input() });
    }
    let chars: Vec<char> = body.chars().collect();
    let digit_at = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    for (i, &c) in chars.iter().enumerate() {
        if GROUP_SEPARATORS.contains(c) && i > 0 && digit_at(i - 1) && digit_at(i + 1) {
            return Err(E::ThousandsSeparator {
                input: err_input(),
                separator: c,
            });
        }
        let after_number = i > 0 && (digit_at(i - 1) || chars[i - 1] == '.');
        let exponent_follows =
            digit_at(i + 1) || (matches!(chars.get(i + 1), Some('-' | '+')) && digit_at(i + 2));
        if matches!(c, 'e' | 'E') && after_number && exponent_follows {
            return Err(E::ExponentNotation { input: err_input() });
        }
    }
    if let Some((i, &c)) = chars
        .iter()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_digit() && **c != '.')
    {
        return Err(E::InvalidCharacter {
            input: err_input(),
            description: describe_char(c),
            position: offset + i + 1,
        });
    }
    let (int_part, frac_part) = match body.split_once('.') {
        None => (body, ""),
        Some((_, frac)) if frac.contains('.') => {
            return Err(E::MultipleDecimalPoints { input: err_input() })
        }
        Some(("", _)) => return Err(E::MissingIntegerDigits { input: err_input() }),
        Some((_, "")) => return Err(E::MissingFractionDigits { input: err_input() }),
        Some(parts) => parts,
    };
    // Exact value matters, not digit count: "12.500" is fine for USD.
    let significant = frac_part.trim_end_matches('0').as_bytes();
    let exponent = usize::from(currency.exponent());
    if significant.len() > exponent {
        return Err(E::TooManyDecimals {
            input: err_input(),
            places: significant.len(),
            currency,
        });
    }
    let minor_digits = (0..exponent).map(|i| significant.get(i).copied().unwrap_or(b'0'));
    int_part
        .bytes()
        .chain(minor_digits)
        .try_fold(0u64, |acc, d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or_else(|| E::TooLarge { input: err_input() })
}

impl Money {
    /// An amount of `minor` minor units (e.g. cents) of `currency`.
    pub const fn from_minor(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    pub const fn minor_units(&self) -> i64 {
        self.minor
    }

    pub const fn currency(&self) -> Currency {
        self.currency
    }

    pub const fn is_zero(&self) -> bool {
        self.minor == 0
    }

    pub const fn is_negative(&self) -> bool {
        self.minor < 0
    }

    pub const fn is_positive(&self) -> bool {
        self.minor > 0
    }

    /// Parses a non-negative amount in major units, exactly: "50", "50.0" and
    /// "50.00" are all 5000 USD cents; "12.500" is fine, "12.505" is an error
    /// (never rounded). Digits are required on both sides of a decimal point
    /// (".5" and "50." are rejected); leading zeros ("007.50") are accepted.
    /// Signs, whitespace, separators, symbols and exponents are all rejected.
    pub fn parse(input: &str, currency: Currency) -> Result<Money, MoneyParseError> {
        Self::parse_inner(input, currency, false)
    }

    /// Like [`Money::parse`] but allows one leading '-' (variances,
    /// adjustments). '+' is still rejected; "-0" is zero.
    pub fn parse_signed(input: &str, currency: Currency) -> Result<Money, MoneyParseError> {
        Self::parse_inner(input, currency, true)
    }

    fn parse_inner(
        input: &str,
        currency: Currency,
        allow_minus: bool,
    ) -> Result<Money, MoneyParseError> {
        use MoneyParseError as E;
        if input.trim().is_empty() {
            return Err(E::Empty);
        }
        if input.starts_with(char::is_whitespace) || input.ends_with(char::is_whitespace) {
            return Err(E::SurroundingWhitespace {
                input: excerpt(input),
            });
        }
        if let Some(c) = input.chars().find(|&c| is_currency_symbol(c)) {
            return Err(E::CurrencySymbol {
                input: excerpt(input),
                symbol: c.to_string(),
            });
        }
        if let Some(code) = input
            .split(|c: char| !c.is_ascii_alphabetic())
            .find(|run| run.len() == 3 && Currency::parse(run).is_ok())
        {
            return Err(E::CurrencySymbol {
                input: excerpt(input),
                symbol: code.to_owned(),
            });
        }
        let (negative, body, offset) = match input.strip_prefix('-') {
            Some(rest) if allow_minus => (true, rest, 1),
            _ => (false, input, 0),
        };
        let magnitude = parse_magnitude(input, body, offset, currency)?;
        let minor = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        match minor {
            Some(minor) => Ok(Money { minor, currency }),
            None => Err(E::TooLarge {
                input: excerpt(input),
            }),
        }
    }

    /// Major units with exactly the currency's decimal places: "50.00",
    /// "100" (JPY), "1.234" (KWD), "-0.05".
    pub fn amount_string(&self) -> String {
        decimal_string(i128::from(self.minor), self.currency)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// Same currency, new minor units; `None` means the arithmetic overflowed.
    fn with_minor(self, minor: Option<i64>) -> Result<Money, MoneyError> {
        minor
            .map(|minor| Money { minor, ..self })
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.with_minor(self.minor.checked_add(other.minor))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.with_minor(self.minor.checked_sub(other.minor))
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.with_minor(self.minor.checked_neg())
    }

    pub fn checked_abs(self) -> Result<Money, MoneyError> {
        self.with_minor(self.minor.checked_abs())
    }

    /// Orders two amounts of the same currency.
    pub fn checked_cmp(&self, other: &Money) -> Result<Ordering, MoneyError> {
        self.same_currency(*other)?;
        Ok(self.minor.cmp(&other.minor))
    }

    /// Adds up `amounts`, all of which must be in `currency`; empty gives zero.
    pub fn sum<I: IntoIterator<Item = Money>>(
        currency: Currency,
        amounts: I,
    ) -> Result<Money, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    /// The exact decimal value in major units, with scale = the exponent.
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, u32::from(self.currency.exponent()))
    }

    /// Exact conversion from a decimal in major units; fails rather than
    /// rounds if `value` has more non-zero decimal places than the currency.
    pub fn from_decimal(value: Decimal, currency: Currency) -> Result<Money, MoneyParseError> {
        let normalized = value.normalize();
        let exponent = u32::from(currency.exponent());
        if normalized.scale() > exponent {
            return Err(MoneyParseError::TooManyDecimals {
                input: excerpt(&value.to_string()),
                places: normalized.scale() as usize,
                currency,
            });
        }
        normalized
            .mantissa()
            .checked_mul(10i128.pow(exponent - normalized.scale()))
            .and_then(|minor| i64::try_from(minor).ok())
            .map(|minor| Money { minor, currency })
            .ok_or_else(|| MoneyParseError::TooLarge {
                input: excerpt(&value.to_string()),
            })
    }
}

impl fmt::Display for Money {
    /// "50.00 USD".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_string(), self.currency)
    }
}

impl Serialize for Money {
    /// `{"amount":"50.00","currency":"USD"}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("Money", 2)?;
        state.serialize_field("amount", &self.amount_string())?;
        state.serialize_field("currency", &self.currency)?;
        state.end()
    }
}

#[derive(Deserialize)]
#[serde(rename = "Money")]
struct MoneyRepr {
    amount: String,
    currency: Currency,
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = MoneyRepr::deserialize(deserializer)?;
        Money::parse_signed(&repr.amount, repr.currency).map_err(serde::de::Error::custom)
    }
}

/// `minor` units of `currency` in major units with exactly its decimal places, for sums wider
/// than one amount (control totals): "140.00", "5000" (JPY), "-1.234" (KWD).
pub fn decimal_string(minor: i128, currency: Currency) -> String {
    let exponent = u32::from(currency.exponent());
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{magnitude}");
    }
    let scale = 10u128.pow(exponent);
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = exponent as usize
    )
}

#[cfg(test)]
mod tests {
    use super::super::serde_support::{from_map, from_value, to_value, Value};
    use super::*;
    use proptest::prelude::*;

    const USD: Currency = Currency::USD;
    const JPY: Currency = Currency::JPY;
    const KWD: Currency = Currency::KWD;
    const CLF: Currency = Currency::CLF;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, USD)
    }

    /// Checks each input fails with the named error variant.
    fn assert_rejects(
        parse: fn(&str, Currency) -> Result<Money, MoneyParseError>,
        variant: &str,
        inputs: &[&str],
    ) {
        for input in inputs {
            let e = parse(input, USD).unwrap_err();
            assert!(format!("{e:?}").starts_with(variant), "{input:?}: {e:?}");
        }
    }

    #[test]
    fn accessors_and_predicates() {
        let m = usd(-5);
        assert_eq!((m.minor_units(), m.currency()), (-5, USD));
        assert!(m.is_negative() && !m.is_positive() && !m.is_zero());
        assert!(Money::zero(JPY).is_zero() && usd(1).is_positive());
    }

    #[test]
    fn parse_accepts_exact_values_regardless_of_trailing_zeros() {
        #[rustfmt::skip]
        let cases = [
            ("50", USD, 5000), ("50.0", USD, 5000), ("50.00", USD, 5000), ("050.000000", USD, 5000),
            ("12.500", USD, 1250), ("0.05", USD, 5), ("0", USD, 0), ("100", JPY, 100),
            ("100.0", JPY, 100), ("1.234", KWD, 1234), ("1.2345", CLF, 12345),
            ("92233720368547758.07", USD, i64::MAX), ("9223372036854775807", JPY, i64::MAX),
        ];
        for (input, currency, minor) in cases {
            assert_eq!(
                Money::parse(input, currency),
                Ok(Money::from_minor(minor, currency)),
                "{input}"
            );
        }
        let many_leading_zeros = format!("{}1", "0".repeat(40));
        assert_eq!(
            Money::parse(&many_leading_zeros, JPY),
            Ok(Money::from_minor(1, JPY))
        );
    }

    #[test]
    fn parse_rejects_each_bad_form() {
        #[rustfmt::skip]
        let cases: &[(&str, &[&str])] = &[
            ("Empty", &["", " ", "\t\n"]),
            ("SurroundingWhitespace", &[" 5", "5 ", "5\n", "\t5.00", "5\u{a0}"]),
            ("ThousandsSeparator", &["1,000.00", "1 000", "1_000", "1'000", "1,000", "1\u{a0}000", "1,00,000"]),
            ("DecimalComma", &["12,50", "1,5", "1.000,50", "0,0001"]),
            ("CurrencySymbol", &["$5", "5$", "€5", "£5.00", "¥100", "₹10", "US$5", "USD 5", "5 USD", "eur5"]),
            ("Sign", &["-5", "+5", "\u{2212}5", "-0"]),
            ("MultipleDecimalPoints", &["1.2.3", "1..2", "1.00.", "1.2."]),
            ("ExponentNotation", &["1e3", "1E3", "1.5e-3", "2e+2", "1.e5"]),
            ("MissingIntegerDigits", &[".5", "."]),
            ("MissingFractionDigits", &["50."]),
            ("InvalidCharacter", &["12a", "e5", "5-", "1,a", "5 x", "١٢"]),
            ("TooManyDecimals", &["12.505", "0.001", "1.0000001"]),
            ("TooLarge", &["92233720368547758.08", "99999999999999999999", "9223372036854775808"]),
        ];
        for (variant, inputs) in cases {
            assert_rejects(Money::parse, variant, inputs);
        }
        assert!(matches!(
            Money::parse("100.5", JPY),
            Err(MoneyParseError::TooManyDecimals { places: 1, .. })
        ));
    }

    #[test]
    fn parse_error_messages_name_the_problem() {
        #[rustfmt::skip]
        let cases = [
            ("12.505", USD, "amount \"12.505\" has 3 decimal places but USD allows 2"),
            ("1.23450", KWD, "amount \"1.23450\" has 4 decimal places but KWD allows 3"),
            ("100.5", JPY, "amount \"100.5\" has 1 decimal place but JPY allows none"),
            ("", USD, "amount is empty"),
            (" 5", USD, "amount \" 5\" has leading or trailing whitespace; remove it"),
            ("1 000", USD, "amount \"1 000\" uses a space as a separator: thousands separators are not allowed"),
            ("1,000.00", USD, "amount \"1,000.00\" uses the character ',' as a separator: thousands separators are not allowed"),
            ("12,50", USD, "amount \"12,50\" uses ',' as the decimal point; use '.' instead, e.g. 12.50"),
            ("$5", USD, "amount \"$5\" contains \"$\": currency symbols are not allowed (the currency is chosen separately)"),
            ("-5", USD, "amount \"-5\" has the sign '-': a sign is not allowed here"),
            (".5", USD, "amount \".5\" is missing digits before the decimal point; write 0.5 rather than .5"),
            ("50.", USD, "amount \"50.\" is missing digits after the decimal point; write 50 or 50.00 rather than 50."),
            ("1e3", USD, "amount \"1e3\" uses exponent notation; write the number out in full, e.g. 1000 instead of 1e3"),
            ("1.2.3", USD, "amount \"1.2.3\" has more than one decimal point"),
            ("12a", USD, "amount \"12a\" contains the character 'a' at position 3, which is not allowed in an amount"),
            ("١", USD, "amount \"١\" contains the non-ASCII character '١' (U+0661) at position 1, which is not allowed in an amount"),
            ("99999999999999999999", USD, "amount \"99999999999999999999\" is too large"),
        ];
        for (input, currency, message) in cases {
            assert_eq!(
                Money::parse(input, currency).unwrap_err().to_string(),
                message
            );
        }
        // Long input is quoted shortened, but positions still count the whole input.
        let message = Money::parse(&format!("{}x", "1".repeat(500)), USD)
            .unwrap_err()
            .to_string();
        assert!(
            message.len() < 200 && message.contains("position 501"),
            "{message}"
        );
    }

    #[test]
    fn parse_signed_allows_one_leading_minus() {
        assert_eq!(Money::parse_signed("-5", USD), Ok(usd(-500)));
        assert_eq!(Money::parse_signed("-0.05", USD), Ok(usd(-5)));
        assert_eq!(Money::parse_signed("12.50", USD), Ok(usd(1250)));
        let zero = Money::parse_signed("-0", USD).unwrap();
        assert!(zero.is_zero() && !zero.is_negative());
        assert_eq!(Money::parse_signed("-0.00", USD), Ok(usd(0)));
        assert_eq!(
            Money::parse_signed("-92233720368547758.08", USD),
            Ok(usd(i64::MIN))
        );
        #[rustfmt::skip]
        let cases: &[(&str, &[&str])] = &[
            ("Sign", &["+5", "--5", "-+5", "\u{2212}5"]),
            ("NoDigits", &["-"]),
            ("MissingIntegerDigits", &["-.5"]),
            ("InvalidCharacter { input: \"- 5\", description: \"a space\", position: 2", &["- 5"]),
            ("CurrencySymbol", &["-$5"]),
            ("TooManyDecimals", &["-12.505"]),
            ("ThousandsSeparator", &["-1,000"]),
            ("TooLarge", &["-92233720368547758.09"]),
        ];
        for (variant, inputs) in cases {
            assert_rejects(Money::parse_signed, variant, inputs);
        }
    }

    #[test]
    fn amount_string_uses_exactly_the_exponent() {
        #[rustfmt::skip]
        let cases = [
            (5000, USD, "50.00"), (0, USD, "0.00"), (-5, USD, "-0.05"), (100, JPY, "100"),
            (-100, JPY, "-100"), (1234, KWD, "1.234"), (1, CLF, "0.0001"),
            (i64::MIN, USD, "-92233720368547758.08"), (i64::MAX, USD, "92233720368547758.07"),
        ];
        for (minor, currency, text) in cases {
            assert_eq!(Money::from_minor(minor, currency).amount_string(), text);
        }
        assert_eq!(usd(5000).to_string(), "50.00 USD");
        assert_eq!(Money::from_minor(-1234, KWD).to_string(), "-1.234 KWD");
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(usd(150).checked_add(usd(250)), Ok(usd(400)));
        assert_eq!(usd(150).checked_sub(usd(250)), Ok(usd(-100)));
        assert_eq!(usd(150).checked_neg(), Ok(usd(-150)));
        assert_eq!(usd(-150).checked_abs(), Ok(usd(150)));
        assert_eq!(usd(1).checked_cmp(&usd(2)), Ok(Ordering::Less));
        assert_eq!(usd(i64::MAX).checked_add(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MIN).checked_sub(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MIN).checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MIN).checked_abs(), Err(MoneyError::Overflow));
        assert!(MoneyError::Overflow
            .to_string()
            .starts_with("amount is too large"));
        let eur = Money::from_minor(100, Currency::EUR);
        let mismatch = MoneyError::CurrencyMismatch {
            left: USD,
            right: Currency::EUR,
        };
        assert_eq!(usd(100).checked_add(eur), Err(mismatch));
        assert_eq!(usd(100).checked_sub(eur), Err(mismatch));
        assert_eq!(usd(100).checked_cmp(&eur), Err(mismatch));
        assert_eq!(
            mismatch.to_string(),
            "cannot add, subtract or compare USD and EUR amounts: the currencies differ"
        );
    }

    #[test]
    fn sum_adds_same_currency_amounts() {
        assert_eq!(Money::sum(USD, []), Ok(usd(0)));
        assert_eq!(Money::sum(USD, [usd(1), usd(2), usd(-4)]), Ok(usd(-1)));
        let mismatch = MoneyError::CurrencyMismatch {
            left: USD,
            right: JPY,
        };
        assert_eq!(
            Money::sum(USD, [usd(1), Money::from_minor(1, JPY)]),
            Err(mismatch)
        );
        assert_eq!(
            Money::sum(USD, [usd(i64::MAX), usd(1)]),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn decimal_conversion_is_exact() {
        let d = usd(5000).to_decimal();
        assert_eq!((d.to_string().as_str(), d.scale()), ("50.00", 2));
        assert_eq!(
            usd(i64::MIN).to_decimal().to_string(),
            "-92233720368547758.08"
        );
        #[rustfmt::skip]
        let cases = [((1250, 2), USD, 1250), ((12500, 3), USD, 1250), ((5, 0), USD, 500), ((1000, 1), JPY, 100)];
        for ((num, scale), currency, minor) in cases {
            let money = Money::from_decimal(Decimal::new(num, scale), currency);
            assert_eq!(money, Ok(Money::from_minor(minor, currency)));
        }
        let e = Money::from_decimal(Decimal::new(12505, 3), USD).unwrap_err();
        assert_eq!(
            e.to_string(),
            "amount \"12.505\" has 3 decimal places but USD allows 2"
        );
        for big in [Decimal::MAX, Decimal::new(i64::MAX, 0)] {
            let e = Money::from_decimal(big, USD).unwrap_err();
            assert!(matches!(e, MoneyParseError::TooLarge { .. }), "{e:?}");
        }
    }

    #[test]
    fn serde_uses_amount_string_and_code() {
        let value = to_value(&usd(5000)).unwrap();
        let pairs = [("amount", "50.00"), ("currency", "USD")];
        let expected = pairs.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec();
        assert_eq!(value, Value::Map(expected));
        assert_eq!(from_value::<Money>(&value).ok(), Some(usd(5000)));
        let m = from_map::<Money>(&[("amount", "-1.234"), ("currency", "kwd")]);
        assert_eq!(m.ok(), Some(Money::from_minor(-1234, KWD)));
        let e = from_map::<Money>(&[("amount", "12.505"), ("currency", "USD")]).unwrap_err();
        assert!(e.to_string().contains("has 3 decimal places"), "{e}");
        assert!(from_map::<Money>(&[("amount", "1")]).is_err());
        assert!(from_map::<Money>(&[("amount", "1"), ("currency", "XYZ")]).is_err());
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(Currency::all().collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn amount_string_round_trips(minor in any::<i64>(), currency in any_currency()) {
            let m = Money::from_minor(minor, currency);
            prop_assert_eq!(Money::parse_signed(&m.amount_string(), currency), Ok(m));
            prop_assert_eq!(m.to_decimal().to_string(), m.amount_string());
            prop_assert_eq!(Money::from_decimal(m.to_decimal(), currency), Ok(m));
            prop_assert_eq!(from_value::<Money>(&to_value(&m).unwrap()).ok(), Some(m));
        }

        #[test]
        fn extremes_round_trip_for_every_exponent(
            minor in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), Just(-1i64)],
            currency in prop_oneof![Just(JPY), Just(USD), Just(KWD), Just(CLF)],
        ) {
            let m = Money::from_minor(minor, currency);
            prop_assert_eq!(Money::parse_signed(&m.amount_string(), currency), Ok(m));
        }

        #[test]
        fn trailing_zeros_do_not_change_the_value(
            minor in any::<i64>(),
            currency in any_currency(),
            zeros in 1usize..6,
        ) {
            let m = Money::from_minor(minor, currency);
            let point = if currency.exponent() == 0 { "." } else { "" };
            let text = format!("{}{point}{}", m.amount_string(), "0".repeat(zeros));
            prop_assert_eq!(Money::parse_signed(&text, currency), Ok(m));
            if minor >= 0 {
                prop_assert_eq!(Money::parse(&text, currency), Ok(m));
            }
        }

        #[test]
        fn checked_arithmetic_matches_i128(a in any::<i64>(), b in any::<i64>()) {
            let (x, y) = (usd(a), usd(b));
            prop_assert_eq!(x.checked_add(y), y.checked_add(x));
            let exact = |v: i128| i64::try_from(v).map(usd).map_err(|_| MoneyError::Overflow);
            prop_assert_eq!(x.checked_add(y), exact(i128::from(a) + i128::from(b)));
            prop_assert_eq!(x.checked_sub(y), exact(i128::from(a) - i128::from(b)));
        }

        #[test]
        fn parse_never_panics(input in "\\PC{0,30}", currency in any_currency()) {
            let _ = Money::parse(&input, currency);
            let _ = Money::parse_signed(&input, currency);
        }

        #[test]
        fn number_like_input_parses_exactly_or_not_at_all(input in "[-+0-9.,eE $]{0,25}") {
            if let Ok(m) = Money::parse_signed(&input, USD) {
                prop_assert_eq!(Money::parse_signed(&m.amount_string(), USD), Ok(m));
            }
        }
    }
}
