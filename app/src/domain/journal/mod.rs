//! GL clearing entries for the daily close, and the journal files accounting tools import.
//!
//! For one vendor, business day and currency, the day's totals (ours beside the vendor's) become a
//! balanced journal entry: debit the gift card clearing account with what we fulfilled, credit the
//! vendor payable with what the vendor billed, and put the difference on reconciliation suspense.
//! Everything is exact [`Money`]; the entry's [`fingerprint`](ClearingEntry::fingerprint) lets
//! storage see that an entry changed after someone submitted or reviewed it.
//!
//! The exports are pure functions returning the exact file text, so a posted entry's files can be
//! stored and reproduced byte for byte.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::matching::CurrencyTotals;
use super::{describe_char, excerpt, Currency, Money, MoneyError, VendorId};

/// Longest account code, in characters.
pub const MAX_ACCOUNT_CODE_LEN: usize = 32;
/// Longest account name, in characters.
pub const MAX_ACCOUNT_NAME_LEN: usize = 100;

/// A general-ledger account: the code accounting tools key on, and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GlAccount {
    code: String,
    name: String,
}

/// Why an account setting was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GlAccountError {
    #[error("account code is empty")]
    EmptyCode,
    #[error("account name is empty")]
    EmptyName,
    #[error("account code {input:?} is longer than {MAX_ACCOUNT_CODE_LEN} characters")]
    CodeTooLong { input: String },
    #[error("account name {input:?} is longer than {MAX_ACCOUNT_NAME_LEN} characters")]
    NameTooLong { input: String },
    #[error("account code {input:?} contains {}: use letters, digits, '-', '.' and '_'", describe_char(*.found))]
    CodeCharacter { input: String, found: char },
    #[error("account name {input:?} contains {}, which cannot go into a journal file", describe_char(*.found))]
    NameCharacter { input: String, found: char },
}

impl GlAccount {
    /// An account from a code (letters, digits, '-', '.', '_') and a name (any printable text).
    pub fn new(code: &str, name: &str) -> Result<GlAccount, GlAccountError> {
        let code = code.trim();
        let name = name.trim();
        if code.is_empty() {
            return Err(GlAccountError::EmptyCode);
        }
        if name.is_empty() {
            return Err(GlAccountError::EmptyName);
        }
        if code.chars().count() > MAX_ACCOUNT_CODE_LEN {
            return Err(GlAccountError::CodeTooLong {
                input: excerpt(code),
            });
        }
        if name.chars().count() > MAX_ACCOUNT_NAME_LEN {
            return Err(GlAccountError::NameTooLong {
                input: excerpt(name),
            });
        }
        if let Some(found) = code
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._".contains(*c)))
        {
            return Err(GlAccountError::CodeCharacter {
                input: excerpt(code),
                found,
            });
        }
        if let Some(found) = name.chars().find(|c| c.is_control()) {
            return Err(GlAccountError::NameCharacter {
                input: excerpt(name),
                found,
            });
        }
        Ok(GlAccount {
            code: code.to_owned(),
            name: name.to_owned(),
        })
    }

    /// `CODE` or `CODE:NAME` as typed on the command line; without a name, `default_name`.
    pub fn parse_setting(input: &str, default_name: &str) -> Result<GlAccount, GlAccountError> {
        match input.split_once(':') {
            Some((code, name)) => GlAccount::new(code, name),
            None => GlAccount::new(input, default_name),
        }
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for GlAccount {
    /// "1190 Gift card clearing".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.name)
    }
}

/// The three accounts a vendor's clearing entries use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorAccounts {
    /// Debited with what we fulfilled (an asset until the vendor's bill is matched).
    pub clearing: GlAccount,
    /// Credited with what the vendor billed.
    pub payable: GlAccount,
    /// Takes the variance until someone resolves it.
    pub suspense: GlAccount,
}

pub const DEFAULT_CLEARING_NAME: &str = "Gift card clearing";
pub const DEFAULT_PAYABLE_NAME: &str = "Vendor payable";
pub const DEFAULT_SUSPENSE_NAME: &str = "Reconciliation suspense";

impl Default for VendorAccounts {
    /// 1190 Gift card clearing, 2010 Vendor payable, 1999 Reconciliation suspense.
    fn default() -> Self {
        let account = |code: &str, name: &str| GlAccount {
            code: code.to_owned(),
            name: name.to_owned(),
        };
        VendorAccounts {
            clearing: account("1190", DEFAULT_CLEARING_NAME),
            payable: account("2010", DEFAULT_PAYABLE_NAME),
            suspense: account("1999", DEFAULT_SUSPENSE_NAME),
        }
    }
}

/// Which side of the ledger a line is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }

    pub fn parse(input: &str) -> Option<Side> {
        match input {
            "debit" => Some(Side::Debit),
            "credit" => Some(Side::Credit),
            _ => None,
        }
    }

    fn opposite(self) -> Side {
        match self {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        }
    }
}

/// One line of a journal entry. The amount is always positive; the side says which way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalLine {
    pub account: GlAccount,
    pub side: Side,
    pub amount: Money,
    pub description: String,
}

/// The clearing entry of one vendor, business day and currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearingEntry {
    pub vendor: VendorId,
    pub day: NaiveDate,
    pub currency: Currency,
    pub lines: Vec<JournalLine>,
    pub memo: String,
}

/// Why an entry could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JournalError {
    #[error("the totals are in {found}, not {expected}")]
    WrongCurrency { expected: Currency, found: Currency },
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("the entry does not balance: debits {debits}, credits {credits}")]
    Unbalanced { debits: Money, credits: Money },
}

/// Proposes the clearing entry for `totals` (in `currency`): debit clearing with our fulfilled
/// amount, credit payable with the vendor's, and the variance (vendor − ours) to suspense — a
/// debit when the vendor billed more, a credit when less. Lines of zero are left out; `None` when
/// there is nothing to clear at all.
pub fn propose_clearing_entry(
    vendor: &VendorId,
    day: NaiveDate,
    currency: Currency,
    totals: &CurrencyTotals,
    accounts: &VendorAccounts,
) -> Result<Option<ClearingEntry>, JournalError> {
    for found in [
        totals.internal.amount.currency(),
        totals.vendor.amount.currency(),
    ] {
        if found != currency {
            return Err(JournalError::WrongCurrency {
                expected: currency,
                found,
            });
        }
    }
    let variance = totals.variance()?;
    let mut lines = Vec::with_capacity(3);
    let mut push = |account: &GlAccount, side: Side, amount: Money, description: String| {
        if amount.is_zero() {
            return Ok::<(), JournalError>(());
        }
        // A negative total (never expected for fulfilled business) flips sides, so the entry
        // still balances and every line stays positive.
        let (side, amount) = if amount.is_negative() {
            (side.opposite(), amount.checked_neg()?)
        } else {
            (side, amount)
        };
        lines.push(JournalLine {
            account: account.clone(),
            side,
            amount,
            description,
        });
        Ok(())
    };
    push(
        &accounts.clearing,
        Side::Debit,
        totals.internal.amount,
        format!(
            "Gift cards fulfilled by {vendor} on {day}: {} order(s)",
            totals.internal.count
        ),
    )?;
    push(
        &accounts.payable,
        Side::Credit,
        totals.vendor.amount,
        format!(
            "Billed by {vendor} for {day}: {} order(s)",
            totals.vendor.count
        ),
    )?;
    push(
        &accounts.suspense,
        Side::Debit,
        variance,
        format!("Reconciliation variance {vendor} {day} (vendor minus ours)"),
    )?;
    if lines.is_empty() {
        return Ok(None);
    }
    let entry = ClearingEntry {
        vendor: vendor.clone(),
        day,
        currency,
        lines,
        memo: format!("Gift card clearing {vendor} {day} {currency}"),
    };
    entry.check_balanced()?;
    Ok(Some(entry))
}

impl ClearingEntry {
    /// Sum of the debit lines.
    pub fn debits(&self) -> Result<Money, MoneyError> {
        self.side_total(Side::Debit)
    }

    /// Sum of the credit lines.
    pub fn credits(&self) -> Result<Money, MoneyError> {
        self.side_total(Side::Credit)
    }

    fn side_total(&self, side: Side) -> Result<Money, MoneyError> {
        Money::sum(
            self.currency,
            self.lines
                .iter()
                .filter(|l| l.side == side)
                .map(|l| l.amount),
        )
    }

    /// Debits equal credits, or an error saying both.
    pub fn check_balanced(&self) -> Result<(), JournalError> {
        let (debits, credits) = (self.debits()?, self.credits()?);
        if debits == credits {
            Ok(())
        } else {
            Err(JournalError::Unbalanced { debits, credits })
        }
    }

    /// SHA-256 (hex) of a canonical JSON serialization of vendor, day, currency, lines and memo.
    /// Any change to what an approver would see changes it.
    pub fn fingerprint(&self) -> String {
        let lines: Vec<(&str, &str, &str, String, &str)> = self
            .lines
            .iter()
            .map(|l| {
                (
                    l.account.code(),
                    l.account.name(),
                    l.side.as_str(),
                    l.amount.amount_string(),
                    l.description.as_str(),
                )
            })
            .collect();
        let canonical = serde_json::to_string(&(
            "giftrecon-clearing-entry-v1",
            self.vendor.as_str(),
            self.day.format("%Y-%m-%d").to_string(),
            self.currency.code(),
            lines,
            &self.memo,
        ))
        .expect("strings always serialize");
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// Where a journal entry is in its maker-checker lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Proposed from the day's totals; may still change when the day is proposed again.
    Draft,
    /// Sent for approval by a preparer; content changes send it back to draft.
    Submitted,
    /// Approved by a finance approver who neither prepared nor submitted it.
    Approved,
    /// Posted: its files are written and it never changes again.
    Posted,
}

impl EntryState {
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryState::Draft => "draft",
            EntryState::Submitted => "submitted",
            EntryState::Approved => "approved",
            EntryState::Posted => "posted",
        }
    }

    pub fn parse(input: &str) -> Option<EntryState> {
        [
            EntryState::Draft,
            EntryState::Submitted,
            EntryState::Approved,
            EntryState::Posted,
        ]
        .into_iter()
        .find(|s| s.as_str() == input)
    }
}

impl fmt::Display for EntryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

mod export;

pub use export::{
    combine_exports, generic_csv, qbo_csv, xero_csv, ExportFormat, UnknownExportFormat,
    XERO_TAX_RATE,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::matching::SideTotal;
    use proptest::prelude::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    fn acme() -> VendorId {
        VendorId::parse("acme").unwrap()
    }

    fn totals(currency: Currency, ours: (u64, i64), theirs: (u64, i64)) -> CurrencyTotals {
        CurrencyTotals {
            internal: SideTotal {
                count: ours.0,
                amount: Money::from_minor(ours.1, currency),
            },
            vendor: SideTotal {
                count: theirs.0,
                amount: Money::from_minor(theirs.1, currency),
            },
        }
    }

    fn entry(currency: Currency, ours: (u64, i64), theirs: (u64, i64)) -> ClearingEntry {
        propose_clearing_entry(
            &acme(),
            day(),
            currency,
            &totals(currency, ours, theirs),
            &VendorAccounts::default(),
        )
        .unwrap()
        .unwrap()
    }

    fn summary(entry: &ClearingEntry) -> Vec<(String, Side, String)> {
        entry
            .lines
            .iter()
            .map(|l| {
                (
                    l.account.code().to_owned(),
                    l.side,
                    l.amount.amount_string(),
                )
            })
            .collect()
    }

    #[test]
    fn vendor_billing_more_debits_suspense() {
        let e = entry(Currency::USD, (3, 15000), (4, 17500));
        assert_eq!(
            summary(&e),
            vec![
                ("1190".into(), Side::Debit, "150.00".into()),
                ("2010".into(), Side::Credit, "175.00".into()),
                ("1999".into(), Side::Debit, "25.00".into()),
            ]
        );
        e.check_balanced().unwrap();
    }

    #[test]
    fn vendor_billing_less_credits_suspense() {
        let e = entry(Currency::KWD, (2, 10_500), (1, 10_000));
        assert_eq!(
            summary(&e),
            vec![
                ("1190".into(), Side::Debit, "10.500".into()),
                ("2010".into(), Side::Credit, "10.000".into()),
                ("1999".into(), Side::Credit, "0.500".into()),
            ]
        );
    }

    #[test]
    fn no_variance_means_no_suspense_line_and_nothing_means_no_entry() {
        let e = entry(Currency::JPY, (1, 5000), (1, 5000));
        assert_eq!(e.lines.len(), 2);
        let none = propose_clearing_entry(
            &acme(),
            day(),
            Currency::USD,
            &totals(Currency::USD, (0, 0), (0, 0)),
            &VendorAccounts::default(),
        )
        .unwrap();
        assert_eq!(none, None);
        // Only the vendor billed: payable and suspense, no clearing line of zero.
        let only_vendor = entry(Currency::USD, (0, 0), (1, 500));
        assert_eq!(
            summary(&only_vendor),
            vec![
                ("2010".into(), Side::Credit, "5.00".into()),
                ("1999".into(), Side::Debit, "5.00".into()),
            ]
        );
    }

    #[test]
    fn totals_in_another_currency_are_refused() {
        let err = propose_clearing_entry(
            &acme(),
            day(),
            Currency::EUR,
            &totals(Currency::USD, (1, 1), (1, 1)),
            &VendorAccounts::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "the totals are in USD, not EUR");
    }

    #[test]
    fn fingerprint_changes_with_any_content() {
        let a = entry(Currency::USD, (3, 15000), (4, 17500));
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
        let mut b = a.clone();
        b.lines[0].amount = Money::from_minor(15001, Currency::USD);
        assert_ne!(a.fingerprint(), b.fingerprint());
        let mut c = a.clone();
        c.memo.push('.');
        assert_ne!(a.fingerprint(), c.fingerprint());
        let mut d = a.clone();
        d.day = d.day.succ_opt().unwrap();
        assert_ne!(a.fingerprint(), d.fingerprint());
        let mut e = a.clone();
        e.lines[2].account = GlAccount::new("1998", "Other").unwrap();
        assert_ne!(a.fingerprint(), e.fingerprint());
    }

    #[test]
    fn account_settings() {
        let a = GlAccount::parse_setting("1200:Clearing - Acme", "x").unwrap();
        assert_eq!((a.code(), a.name()), ("1200", "Clearing - Acme"));
        let b = GlAccount::parse_setting("1200", DEFAULT_CLEARING_NAME).unwrap();
        assert_eq!(b.name(), DEFAULT_CLEARING_NAME);
        assert_eq!(
            GlAccount::parse_setting(":x", "y").unwrap_err(),
            GlAccountError::EmptyCode
        );
        assert!(matches!(
            GlAccount::parse_setting("12 00", "y"),
            Err(GlAccountError::CodeCharacter { found: ' ', .. })
        ));
        assert!(matches!(
            GlAccount::new("1", "a\nb"),
            Err(GlAccountError::NameCharacter { .. })
        ));
        assert!(GlAccount::new(&"1".repeat(33), "a").is_err());
    }

    fn golden_entry() -> ClearingEntry {
        entry(Currency::USD, (3, 15000), (4, 17500))
    }

    #[test]
    fn generic_golden() {
        assert_eq!(
            generic_csv("GR-000007", &golden_entry()),
            "journal_no,date,vendor,currency,account_code,account_name,debit,credit,description,memo\n\
             GR-000007,2026-12-03,acme,USD,1190,Gift card clearing,150.00,,Gift cards fulfilled by acme on 2026-12-03: 3 order(s),Gift card clearing acme 2026-12-03 USD\n\
             GR-000007,2026-12-03,acme,USD,2010,Vendor payable,,175.00,Billed by acme for 2026-12-03: 4 order(s),Gift card clearing acme 2026-12-03 USD\n\
             GR-000007,2026-12-03,acme,USD,1999,Reconciliation suspense,25.00,,Reconciliation variance acme 2026-12-03 (vendor minus ours),Gift card clearing acme 2026-12-03 USD\n"
        );
    }

    #[test]
    fn qbo_golden() {
        assert_eq!(
            qbo_csv("GR-000007", &golden_entry()),
            "Journal No,Journal Date,Account,Debits,Credits,Description,Name,Currency Code\n\
             GR-000007,12/03/2026,Gift card clearing,150.00,,Gift cards fulfilled by acme on 2026-12-03: 3 order(s),acme,USD\n\
             GR-000007,12/03/2026,Vendor payable,,175.00,Billed by acme for 2026-12-03: 4 order(s),acme,USD\n\
             GR-000007,12/03/2026,Reconciliation suspense,25.00,,Reconciliation variance acme 2026-12-03 (vendor minus ours),acme,USD\n"
        );
    }

    #[test]
    fn xero_golden() {
        let kwd = entry(Currency::KWD, (2, 10_500), (1, 10_000));
        assert_eq!(
            xero_csv(&kwd),
            "*Narration,*Date,Description,*AccountCode,*TaxRate,*Amount,TrackingName1,TrackingOption1,TrackingName2,TrackingOption2\n\
             Gift card clearing acme 2026-12-03 KWD,03/12/2026,Gift cards fulfilled by acme on 2026-12-03: 2 order(s),1190,Tax Exempt,10.500,,,,\n\
             Gift card clearing acme 2026-12-03 KWD,03/12/2026,Billed by acme for 2026-12-03: 1 order(s),2010,Tax Exempt,-10.000,,,,\n\
             Gift card clearing acme 2026-12-03 KWD,03/12/2026,Reconciliation variance acme 2026-12-03 (vendor minus ours),1999,Tax Exempt,-0.500,,,,\n"
        );
    }

    #[test]
    fn formula_injection_is_neutralized_in_text_cells_only() {
        let accounts = VendorAccounts {
            clearing: GlAccount::new("1190", "=HYPERLINK(\"http://evil\",\"x\")").unwrap(),
            payable: GlAccount::new("2010", "+cmd|' /C calc'!A0").unwrap(),
            suspense: GlAccount::new("1999", "@SUM(1+1)").unwrap(),
        };
        let e = propose_clearing_entry(
            &acme(),
            day(),
            Currency::USD,
            &totals(Currency::USD, (1, 1000), (1, 900)),
            &accounts,
        )
        .unwrap()
        .unwrap();
        let qbo = qbo_csv("-1", &e);
        assert!(
            qbo.contains("'-1,12/03/2026,\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",10.00,"),
            "{qbo}"
        );
        assert!(qbo.contains(",'+cmd|' /C calc'!A0,,9.00,"), "{qbo}");
        assert!(qbo.contains(",'@SUM(1+1),,1.00,"), "{qbo}");
        let xero = xero_csv(&e);
        // Credits are negative numbers and stay numbers.
        assert!(xero.contains(",2010,Tax Exempt,-9.00,"), "{xero}");
        assert!(!xero.contains("'-"), "{xero}");
        for c in ["\tx", "\rx", "-x", "+x", "=x", "@x"] {
            assert!(
                export::text_cell(c)
                    .trim_start_matches('"')
                    .starts_with('\''),
                "{c:?}"
            );
        }
        assert_eq!(export::text_cell("plain"), "plain");
    }

    #[test]
    fn combining_keeps_one_header() {
        let usd = entry(Currency::USD, (1, 100), (1, 100));
        let jpy = entry(Currency::JPY, (1, 100), (1, 100));
        let a = generic_csv("GR-1", &usd);
        let b = generic_csv("GR-2", &jpy);
        let both = combine_exports([a.as_str(), b.as_str()]);
        assert_eq!(both.lines().count(), 1 + 2 + 2);
        assert_eq!(both.matches("journal_no").count(), 1);
        assert!(both.starts_with(&a));
    }

    fn currency() -> impl Strategy<Value = Currency> {
        prop_oneof![
            Just(Currency::JPY),
            Just(Currency::USD),
            Just(Currency::KWD)
        ]
    }

    proptest! {
        #[test]
        fn entries_always_balance(
            currency in currency(),
            ours in 0i64..1_000_000_000_000,
            theirs in 0i64..1_000_000_000_000,
            n in 0u64..100_000,
            m in 0u64..100_000,
        ) {
            let t = totals(currency, (n, ours), (m, theirs));
            let proposed = propose_clearing_entry(&acme(), day(), currency, &t, &VendorAccounts::default()).unwrap();
            let Some(e) = proposed else {
                prop_assert!(ours == 0 && theirs == 0);
                return Ok(());
            };
            prop_assert_eq!(e.debits().unwrap(), e.credits().unwrap());
            prop_assert!(e.lines.iter().all(|l| l.amount.is_positive() && l.amount.currency() == currency));
            // The suspense line is exactly the variance, on the side its sign says.
            let suspense: i64 = e.lines.iter().filter(|l| l.account.code() == "1999")
                .map(|l| if l.side == Side::Debit { l.amount.minor_units() } else { -l.amount.minor_units() })
                .sum();
            prop_assert_eq!(suspense, theirs - ours);
            // Exports carry every line; Xero amounts sum to zero.
            let xero = xero_csv(&e);
            let sum: i64 = xero.lines().skip(1).map(|row| {
                let amount = row.split(',').nth(5).unwrap();
                Money::parse_signed(amount, currency).unwrap().minor_units()
            }).sum();
            prop_assert_eq!(sum, 0);
            prop_assert_eq!(generic_csv("GR-1", &e).lines().count(), e.lines.len() + 1);
        }
    }
}
