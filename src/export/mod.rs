//! Exports of the dashboard's tables, as CSV and XLSX, written from one description of the
//! table so both formats say the same thing: the rows exactly as the filters select them, and
//! control totals (how many rows, and each amount column's sum per currency, exact).
//!
//! Text a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return) is neutralized with a leading `'` in both formats. Amounts are never text
//! that could be mistaken: they are exact decimal strings in CSV and numbers in XLSX.

pub mod routes;
pub mod tables;
mod xlsx;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use app::domain::money::decimal_string;
use app::domain::{Currency, Money};

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    /// Money; summed per currency into the control totals under `label` ("internal", "vendor").
    Amount {
        label: &'static str,
    },
}

#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

pub const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Text,
    }
}

pub const fn integer(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Integer,
    }
}

pub const fn amount(name: &'static str, label: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Amount { label },
    }
}

/// One cell. `Empty` is an absent value (an internal-only item has no vendor amount).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Integer(i64),
    Amount(Money),
    Empty,
}

impl From<String> for Cell {
    fn from(value: String) -> Cell {
        Cell::Text(value)
    }
}

impl From<&str> for Cell {
    fn from(value: &str) -> Cell {
        Cell::Text(value.to_string())
    }
}

impl From<Option<String>> for Cell {
    fn from(value: Option<String>) -> Cell {
        value.map(Cell::Text).unwrap_or(Cell::Empty)
    }
}

impl From<Option<&str>> for Cell {
    fn from(value: Option<&str>) -> Cell {
        value.map(Cell::from).unwrap_or(Cell::Empty)
    }
}

impl From<i64> for Cell {
    fn from(value: i64) -> Cell {
        Cell::Integer(value)
    }
}

impl From<Option<Money>> for Cell {
    fn from(value: Option<Money>) -> Cell {
        value.map(Cell::Amount).unwrap_or(Cell::Empty)
    }
}

/// A table as exported: what it is, its columns, and its rows in the order shown.
#[derive(Clone, Debug)]
pub struct Table {
    /// What one row is, plural ("discrepancies"): the control line counts these.
    pub noun: &'static str,
    /// The sheet's name in the workbook.
    pub sheet: &'static str,
    pub columns: &'static [Column],
    pub rows: Vec<Vec<Cell>>,
    /// The filters that selected the rows, shown with the control totals in the workbook.
    pub filters: Vec<(&'static str, String)>,
}

/// The control totals of a table: how many rows, and each amount column's sum per currency.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub rows: usize,
    /// (currency code, column label) → sum in minor units; never overflows (i128).
    pub sums: BTreeMap<(&'static str, &'static str), i128>,
}

impl Totals {
    /// Each sum as "label CODE amount", in (currency, label) order.
    pub fn sum_lines(&self) -> Vec<(String, String)> {
        self.sums
            .iter()
            .map(|((code, label), minor)| {
                let amount = Currency::parse(code)
                    .map(|c| decimal_string(*minor, c))
                    .unwrap_or_else(|_| minor.to_string());
                (format!("{label} {code}"), amount)
            })
            .collect()
    }
}

impl Table {
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            rows: self.rows.len(),
            ..Totals::default()
        };
        for row in &self.rows {
            for (column, cell) in self.columns.iter().zip(row) {
                if let (Kind::Amount { label }, Cell::Amount(m)) = (column.kind, cell) {
                    *totals.sums.entry((m.currency().code(), label)).or_default() +=
                        i128::from(m.minor_units());
                }
            }
        }
        totals
    }

    /// The control line that ends the CSV: `# control: 7 discrepancies; internal USD 140.00; …`.
    pub fn control_line(&self) -> String {
        let totals = self.totals();
        let mut line = format!("# control: {} {}", totals.rows, self.noun);
        for (what, amount) in totals.sum_lines() {
            let _ = write!(line, "; {what} {amount}");
        }
        line
    }

    /// The table as CSV: a header line, one line per row, and the control line.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        out.push_str(&names.join(","));
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<Cow<str>> = row.iter().map(csv_value).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out.push_str(&self.control_line());
        out.push('\n');
        out
    }

    /// The table as an XLSX workbook: the rows on one sheet, the control totals on another.
    pub fn xlsx(&self, exported_at: &str) -> anyhow::Result<Vec<u8>> {
        xlsx::workbook(self, exported_at)
    }
}

fn csv_value(cell: &Cell) -> Cow<'_, str> {
    match cell {
        Cell::Text(text) => Cow::Owned(csv_cell(text)),
        Cell::Integer(n) => Cow::Owned(n.to_string()),
        Cell::Amount(m) => Cow::Owned(m.amount_string()),
        Cell::Empty => Cow::Borrowed(""),
    }
}

/// Text a spreadsheet would take for a formula, with a leading `'` so it stays text.
pub fn neutralize(value: &str) -> Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// A CSV cell: neutralized (see [`neutralize`]), and quoted when it holds a separator, quote or
/// line break. Only for text; amounts are written bare.
pub fn csv_cell(value: &str) -> String {
    let neutral = neutralize(value);
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[Column] = &[text("who"), integer("n"), amount("paid", "paid")];

    fn money(minor: i64, code: &str) -> Cell {
        Cell::Amount(Money::from_minor(minor, Currency::parse(code).unwrap()))
    }

    #[test]
    fn csv_cells_are_quoted_and_neutralized() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("-1+1"), "'-1+1");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(csv_cell("a=b"), "a=b");
    }

    #[test]
    fn csv_has_the_rows_and_exact_control_totals_per_currency() {
        let table = Table {
            noun: "payments",
            sheet: "Payments",
            columns: COLUMNS,
            rows: vec![
                vec!["=cmd".into(), 1i64.into(), money(1_005, "USD")],
                vec!["b".into(), 2i64.into(), money(-5, "USD")],
                vec!["c".into(), 3i64.into(), money(1_234, "KWD")],
                vec![Cell::Empty, 4i64.into(), Cell::Empty],
                vec!["d".into(), 5i64.into(), money(i64::MAX, "JPY")],
                vec!["e".into(), 6i64.into(), money(i64::MAX, "JPY")],
            ],
            filters: vec![],
        };
        let csv = table.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "who,n,paid");
        assert_eq!(lines[1], "'=cmd,1,10.05");
        assert_eq!(lines[2], "b,2,-0.05");
        assert_eq!(lines[3], "c,3,1.234");
        assert_eq!(lines[4], ",4,");
        // Sums wider than one amount stay exact.
        assert_eq!(
            lines[7],
            "# control: 6 payments; paid JPY 18446744073709551614; paid KWD 1.234; paid USD 10.00"
        );
    }
}
