//! The journal files accounting tools import: giftrecon's generic CSV, QuickBooks Online and
//! Xero. Pure functions returning the exact file text.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{ClearingEntry, JournalLine, Side};
use crate::domain::{excerpt, Money};

/// The journal file formats giftrecon writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// giftrecon's own journal CSV.
    Generic,
    /// QuickBooks Online "Import journal entries".
    Qbo,
    /// Xero "Import manual journals".
    Xero,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 3] =
        [ExportFormat::Generic, ExportFormat::Qbo, ExportFormat::Xero];

    pub const fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Generic => "generic",
            ExportFormat::Qbo => "qbo",
            ExportFormat::Xero => "xero",
        }
    }

    pub fn parse(input: &str) -> Result<ExportFormat, UnknownExportFormat> {
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == input)
            .ok_or_else(|| UnknownExportFormat {
                input: excerpt(input),
            })
    }

    /// The file text of `entry` in this format.
    pub fn render(self, journal_no: &str, entry: &ClearingEntry) -> String {
        match self {
            ExportFormat::Generic => generic_csv(journal_no, entry),
            ExportFormat::Qbo => qbo_csv(journal_no, entry),
            ExportFormat::Xero => xero_csv(entry),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown export format {input:?}; use generic, qbo or xero")]
pub struct UnknownExportFormat {
    input: String,
}

/// A text cell, quoted per RFC 4180 when needed, and neutralized against spreadsheet formula
/// injection: a value starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading
/// `'`, so a spreadsheet shows it as text instead of running it.
pub(super) fn text_cell(value: &str) -> String {
    let neutral = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    quote(&neutral)
}

/// A number cell: written as is (a negative amount stays a number, never neutralized).
fn number_cell(amount: &Money) -> String {
    amount.amount_string()
}

fn quote(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Joins rows of cells into CSV text: comma-separated, every line (the last too) ending in "\n".
fn csv(rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn headers(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| text_cell(n)).collect()
}

/// giftrecon's journal CSV: `journal_no,date,vendor,currency,account_code,account_name,debit,
/// credit,description,memo`, one row per line; ISO dates (YYYY-MM-DD); amounts with the
/// currency's decimal places; the empty side left blank.
pub fn generic_csv(journal_no: &str, entry: &ClearingEntry) -> String {
    let head = headers(&[
        "journal_no",
        "date",
        "vendor",
        "currency",
        "account_code",
        "account_name",
        "debit",
        "credit",
        "description",
        "memo",
    ]);
    let rows = entry.lines.iter().map(|line| {
        let (debit, credit) = split_sides(line);
        vec![
            text_cell(journal_no),
            entry.day.format("%Y-%m-%d").to_string(),
            text_cell(entry.vendor.as_str()),
            text_cell(entry.currency.code()),
            text_cell(line.account.code()),
            text_cell(line.account.name()),
            debit,
            credit,
            text_cell(&line.description),
            text_cell(&entry.memo),
        ]
    });
    csv(std::iter::once(head).chain(rows))
}

/// QuickBooks Online journal import: `Journal No,Journal Date,Account,Debits,Credits,Description,
/// Name,Currency Code`. QuickBooks matches accounts by name (its import wants account numbers
/// turned off), so `Account` is the account's name; `Journal Date` is MM/DD/YYYY, the format of
/// QuickBooks' US template; `Name` is the vendor, which QuickBooks asks for on payable lines.
pub fn qbo_csv(journal_no: &str, entry: &ClearingEntry) -> String {
    let head = headers(&[
        "Journal No",
        "Journal Date",
        "Account",
        "Debits",
        "Credits",
        "Description",
        "Name",
        "Currency Code",
    ]);
    let rows = entry.lines.iter().map(|line| {
        let (debit, credit) = split_sides(line);
        vec![
            text_cell(journal_no),
            entry.day.format("%m/%d/%Y").to_string(),
            text_cell(line.account.name()),
            debit,
            credit,
            text_cell(&line.description),
            text_cell(entry.vendor.as_str()),
            text_cell(entry.currency.code()),
        ]
    });
    csv(std::iter::once(head).chain(rows))
}

/// The tax rate Xero is given on every line: clearing entries carry no tax.
pub const XERO_TAX_RATE: &str = "Tax Exempt";

/// Xero manual journal import: `*Narration,*Date,Description,*AccountCode,*TaxRate,*Amount,
/// TrackingName1,TrackingOption1,TrackingName2,TrackingOption2`. Lines of one journal share the
/// narration and date; `*Date` is DD/MM/YYYY as Xero's template asks; `*Amount` is positive for a
/// debit and negative for a credit (a number, never neutralized); `*TaxRate` is
/// [`XERO_TAX_RATE`].
pub fn xero_csv(entry: &ClearingEntry) -> String {
    let head = headers(&[
        "*Narration",
        "*Date",
        "Description",
        "*AccountCode",
        "*TaxRate",
        "*Amount",
        "TrackingName1",
        "TrackingOption1",
        "TrackingName2",
        "TrackingOption2",
    ]);
    let rows = entry.lines.iter().map(|line| {
        let signed = match line.side {
            Side::Debit => line.amount,
            // Lines are positive and far from i64::MIN: negation cannot overflow.
            Side::Credit => line.amount.checked_neg().unwrap_or(line.amount),
        };
        vec![
            text_cell(&entry.memo),
            entry.day.format("%d/%m/%Y").to_string(),
            text_cell(&line.description),
            text_cell(line.account.code()),
            text_cell(XERO_TAX_RATE),
            number_cell(&signed),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]
    });
    csv(std::iter::once(head).chain(rows))
}

fn split_sides(line: &JournalLine) -> (String, String) {
    match line.side {
        Side::Debit => (number_cell(&line.amount), String::new()),
        Side::Credit => (String::new(), number_cell(&line.amount)),
    }
}

/// Several files of one format as one: the first file whole, then the rows of each of the others
/// without their header line. (Journal files never hold a line break inside a cell: account names
/// and descriptions cannot contain one.)
pub fn combine_exports<'a>(files: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, file) in files.into_iter().enumerate() {
        if i == 0 {
            out.push_str(file);
        } else if let Some((_, rows)) = file.split_once('\n') {
            out.push_str(rows);
        }
    }
    out
}
