//! A [`Table`] as an XLSX workbook: the rows on the first sheet (header bold and frozen), the
//! control totals and the filters on a second sheet, "Control totals".
//!
//! Amounts are numeric cells with as many decimals as their currency has (`#,##0.00` for USD,
//! `#,##0` for JPY, `#,##0.000` for KWD), so a controller can sum and pivot them. A spreadsheet
//! number is a double with 15 significant digits: every amount below 10^15 minor units is held
//! exactly to its last decimal, and the rare larger one is written as its exact decimal text
//! instead. The control totals are exact decimal text for the same reason: a sum may be wider than
//! any one amount, and they are there to be compared digit for digit.

use anyhow::Context;
use rust_xlsxwriter::{Format, Workbook, Worksheet};

use super::{neutralize, Cell, Table};

/// Largest magnitude, in minor units, written as a number (15 significant digits are exact).
const EXACT_MINOR: u64 = 999_999_999_999_999;
/// Largest integer a double holds exactly.
const EXACT_INTEGER: u64 = 1 << 53;

pub const CONTROL_SHEET: &str = "Control totals";

pub fn workbook(table: &Table, exported_at: &str) -> anyhow::Result<Vec<u8>> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let amount_formats: Vec<Format> = (0..=4)
        .map(|places| {
            let pattern = if places == 0 {
                "#,##0".to_string()
            } else {
                format!("#,##0.{}", "0".repeat(places))
            };
            Format::new().set_num_format(pattern)
        })
        .collect();

    let sheet = workbook.add_worksheet();
    sheet.set_name(table.sheet).context("sheet name")?;
    for (col, column) in table.columns.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, column.name, &bold)?;
    }
    for (r, row) in table.rows.iter().enumerate() {
        let r = u32::try_from(r + 1).context("too many rows for a worksheet")?;
        for (col, cell) in row.iter().enumerate() {
            write_cell(sheet, r, col as u16, cell, &amount_formats)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;

    let totals = table.totals();
    let control = workbook.add_worksheet();
    control.set_name(CONTROL_SHEET)?;
    control.write_string_with_format(0, 0, "Control", &bold)?;
    control.write_string_with_format(0, 1, "Value", &bold)?;
    let mut r = 1u32;
    control.write_string(r, 0, format!("Rows ({})", table.noun))?;
    control.write_number(r, 1, totals.rows as f64)?;
    for (what, amount) in totals.sum_lines() {
        r += 1;
        control.write_string(r, 0, format!("Sum {what}"))?;
        control.write_string(r, 1, amount)?;
    }
    r += 1;
    control.write_string(r, 0, "Exported at")?;
    control.write_string(r, 1, exported_at)?;
    for (name, value) in &table.filters {
        r += 1;
        control.write_string(r, 0, format!("Filter {name}"))?;
        control.write_string(r, 1, neutralize(value).as_ref())?;
    }
    control.set_column_width(0, 28)?;
    control.set_column_width(1, 28)?;

    workbook
        .save_to_buffer()
        .context("cannot write the workbook")
}

fn write_cell(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    cell: &Cell,
    amount_formats: &[Format],
) -> anyhow::Result<()> {
    match cell {
        Cell::Text(text) => {
            sheet.write_string(row, col, neutralize(text).as_ref())?;
        }
        Cell::Integer(n) if n.unsigned_abs() <= EXACT_INTEGER => {
            sheet.write_number(row, col, *n as f64)?;
        }
        Cell::Integer(n) => {
            sheet.write_string(row, col, n.to_string())?;
        }
        Cell::Amount(m) if m.minor_units().unsigned_abs() <= EXACT_MINOR => {
            let places = m.currency().exponent();
            // An exact integer divided by an exact power of ten: the double nearest the amount.
            let value = m.minor_units() as f64 / 10f64.powi(i32::from(places));
            let format = &amount_formats[usize::from(places).min(amount_formats.len() - 1)];
            sheet.write_number_with_format(row, col, value, format)?;
        }
        Cell::Amount(m) => {
            sheet.write_string(row, col, m.amount_string())?;
        }
        Cell::Empty => {}
    }
    Ok(())
}
