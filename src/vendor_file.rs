//! Reading vendor reconciliation files (CSV or JSON) row by row, without holding the file.
//!
//! Files come from spreadsheets and vendor portals: a byte-order mark, CRLF line ends, quoted
//! fields with commas, quotes or line breaks, mixed-case statuses, amounts with or without
//! trailing zeros, 0-, 2- and 3-decimal currencies. Columns are matched by header name in any
//! order (per-vendor names through a [`ColumnMap`]); other columns are ignored. Every row is
//! checked; the caller decides what to do with bad lines (an import refuses the whole file).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use app::domain::{Currency, Money};
use chrono::{DateTime, Utc};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};

use crate::csv_input;
use crate::import::parse_timestamp;

/// The fields of a vendor record, by their canonical (generic format) names.
pub const FIELDS: [&str; 9] = [
    "vendor_order_id",
    "idempotency_key",
    "reference_id",
    "brand_id",
    "amount",
    "currency",
    "status",
    "created_at",
    "updated_at",
];
const REQUIRED: [&str; 5] = [
    "vendor_order_id",
    "amount",
    "currency",
    "status",
    "created_at",
];

/// One row of a vendor file, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorRow {
    /// The line (CSV) or 1-based element number (JSON) it came from.
    pub line: u64,
    pub vendor_order_id: String,
    pub idempotency_key: Option<String>,
    pub reference_id: Option<String>,
    pub brand_id: Option<String>,
    pub amount: Money,
    /// As the vendor wrote it (mapping to GL states is case-insensitive).
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A bad row: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Which column (or JSON key) holds each field, for vendors whose files name them differently.
/// Unnamed fields keep their canonical names. Matching ignores case and surrounding spaces.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnMap(BTreeMap<String, String>);

impl ColumnMap {
    /// `field = column` pairs; each field must be one of [`FIELDS`].
    pub fn new<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ColumnMap, String> {
        let mut map = BTreeMap::new();
        for (field, column) in pairs {
            if !FIELDS.contains(&field) {
                return Err(format!(
                    "{field:?} is not a vendor file field; fields are {}",
                    FIELDS.join(", ")
                ));
            }
            map.insert(field.to_string(), csv_input::normalize_header(column));
        }
        Ok(ColumnMap(map))
    }

    fn column_of<'a>(&'a self, field: &'a str) -> String {
        self.0
            .get(field)
            .cloned()
            .unwrap_or_else(|| field.to_string())
    }
}

/// Raw cell values by field, before checking.
type RawRow = [Option<String>; 9];

fn check(line: u64, raw: RawRow) -> Result<VendorRow, LineError> {
    let mut reasons = Vec::new();
    let [vendor_order_id, key, reference, brand, amount, currency, status, created, updated] =
        raw.map(|v| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
    for (field, value) in
        REQUIRED
            .iter()
            .zip([&vendor_order_id, &amount, &currency, &status, &created])
    {
        if value.is_none() {
            reasons.push(format!("{field}: is missing"));
        }
    }
    let currency = currency.as_deref().and_then(|c| {
        Currency::parse(c)
            .map_err(|e| reasons.push(format!("currency: {e}")))
            .ok()
    });
    let amount = match (amount.as_deref(), currency) {
        (Some(a), Some(c)) => Money::parse(a, c)
            .map_err(|e| reasons.push(format!("amount: {e}")))
            .ok(),
        _ => None,
    };
    let mut timestamp = |field: &str, value: Option<&str>| {
        value.and_then(|v| {
            parse_timestamp(v)
                .map_err(|e| reasons.push(format!("{field}: {e}")))
                .ok()
        })
    };
    let created_at = timestamp("created_at", created.as_deref());
    let updated_at = timestamp("updated_at", updated.as_deref());
    if updated.is_some() && updated_at.is_none() || !reasons.is_empty() {
        return Err(LineError {
            line,
            reason: reasons.join("; "),
        });
    }
    match (vendor_order_id, amount, status, created_at) {
        (Some(vendor_order_id), Some(amount), Some(status), Some(created_at)) => Ok(VendorRow {
            line,
            vendor_order_id,
            idempotency_key: key,
            reference_id: reference,
            brand_id: brand,
            amount,
            status,
            created_at,
            updated_at,
        }),
        _ => Err(LineError {
            line,
            reason: reasons.join("; "),
        }),
    }
}

/// Reads a CSV file, calling `each` for every row in order. `Err` only when the file as a whole
/// is unusable (no header line, a required column missing).
pub fn read_csv(
    reader: impl Read,
    columns: &ColumnMap,
    mut each: impl FnMut(Result<VendorRow, LineError>),
) -> Result<(), String> {
    let mut csv = csv_input::reader(reader);
    let headers = csv_input::headers(&mut csv)?;
    let positions: Vec<Option<usize>> = FIELDS
        .iter()
        .map(|field| {
            let column = columns.column_of(field);
            headers.iter().position(|h| *h == column)
        })
        .collect();
    let missing: Vec<String> = FIELDS
        .iter()
        .zip(&positions)
        .filter(|(field, at)| REQUIRED.contains(field) && at.is_none())
        .map(|(field, _)| columns.column_of(field))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the header line lacks the column(s) {}",
            missing.join(", ")
        ));
    }
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                let raw: RawRow = std::array::from_fn(|i| {
                    positions[i].and_then(|p| record.get(p)).map(str::to_string)
                });
                each(check(line, raw));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let (reason, can_go_on) = csv_input::describe_error(&e);
                each(Err(LineError { line, reason }));
                if !can_go_on {
                    return Ok(());
                }
            }
        }
    }
}

/// Reads a JSON array of objects element by element (never the whole array in memory).
/// Numbers are read from their literal text, so no amount passes through a float.
pub fn read_json(
    reader: impl Read,
    columns: &ColumnMap,
    each: impl FnMut(Result<VendorRow, LineError>),
) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    ElementsSeed {
        columns,
        each,
        count: 0,
    }
    .deserialize(&mut de)
    .map_err(|e| format!("is not a JSON array of records: {e}"))?;
    de.end()
        .map_err(|e| format!("has data after the JSON array: {e}"))
}

struct ElementsSeed<'c, F> {
    columns: &'c ColumnMap,
    each: F,
    count: u64,
}

impl<'de, F: FnMut(Result<VendorRow, LineError>)> DeserializeSeed<'de> for ElementsSeed<'_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Result<VendorRow, LineError>)> Visitor<'de> for ElementsSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of vendor records")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) =
            seq.next_element::<BTreeMap<String, Box<serde_json::value::RawValue>>>()?
        {
            self.count += 1;
            let line = self.count;
            let by_name: BTreeMap<String, &serde_json::value::RawValue> = element
                .iter()
                .map(|(k, v)| (csv_input::normalize_header(k), v.as_ref()))
                .collect();
            let mut bad = Vec::new();
            let raw: RawRow = std::array::from_fn(|i| {
                let field = FIELDS[i];
                let value = by_name.get(&self.columns.column_of(field))?;
                let text = value.get().trim();
                match text.as_bytes().first() {
                    Some(b'"') => serde_json::from_str::<String>(text).ok(),
                    Some(b'n') => None,
                    Some(b'-' | b'0'..=b'9') => Some(text.to_string()),
                    _ => {
                        bad.push(format!("{field}: must be a string or a number"));
                        None
                    }
                }
            });
            (self.each)(if bad.is_empty() {
                check(line, raw)
            } else {
                Err(LineError {
                    line,
                    reason: bad.join("; "),
                })
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_rows(text: &str, columns: &ColumnMap) -> (Vec<VendorRow>, Vec<LineError>) {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        read_csv(text.as_bytes(), columns, |r| match r {
            Ok(row) => good.push(row),
            Err(e) => bad.push(e),
        })
        .unwrap();
        (good, bad)
    }

    const HEADER: &str = "vendor_order_id,idempotency_key,reference_id,brand_id,amount,currency,status,created_at,updated_at";

    #[test]
    fn spreadsheet_quirks_are_read_exactly() {
        let text =
            "\u{feff}Status,AMOUNT,Currency,Vendor_Order_ID,Created_At,Idempotency_Key,Note\r\n\
             Fulfilled,50,USD,V1,2026-12-01T10:00:00Z,k1,\"a, b\"\r\n\
             COMPLETED,50.5,USD,V2,2026-12-01 11:00:00,k2,\"say \"\"hi\"\"\r\nsecond line\"\r\n\
             delivered,5000,JPY,V3,2026-12-01,,\r\n\
             pending,1.234,KWD,V4,2026-12-01T00:00:00+03:00,k4,\r\n";
        let (rows, bad) = csv_rows(text, &ColumnMap::default());
        assert!(bad.is_empty(), "{bad:?}");
        let amounts: Vec<(i64, &str)> = rows
            .iter()
            .map(|r| (r.amount.minor_units(), r.amount.currency().code()))
            .collect();
        assert_eq!(
            amounts,
            [(5000, "USD"), (5050, "USD"), (5000, "JPY"), (1234, "KWD")]
        );
        assert_eq!(rows[0].status, "Fulfilled");
        assert_eq!(rows[2].idempotency_key, None);
        assert_eq!(rows[3].created_at.to_rfc3339(), "2026-11-30T21:00:00+00:00");
        assert_eq!(
            rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            [2, 3, 5, 6]
        );
    }

    #[test]
    fn every_bad_line_is_named_with_its_reason() {
        let text = format!(
            "{HEADER}\n\
             V1,k1,,b,12.505,USD,fulfilled,2026-12-01T10:00:00Z,\n\
             V2,k2,,b,5,XYZ,fulfilled,2026-12-01T10:00:00Z,\n\
             ,k3,,b,5,USD,fulfilled,2026-12-01T10:00:00Z,\n\
             V4,k4,,b,5,USD,fulfilled,yesterday,\n\
             V5,k5,,b,5,USD,fulfilled,2026-12-01T10:00:00Z,soon\n\
             V6,k6,,b,5,USD\n\
             V7,k7,,b,\"1,000.00\",USD,fulfilled,2026-12-01T10:00:00Z,\n\
             V8,k8,,b,5.00,USD,fulfilled,2026-12-01T10:00:00Z,\n"
        );
        let (rows, bad) = csv_rows(&text, &ColumnMap::default());
        assert_eq!(rows.len(), 1);
        let described: Vec<String> = bad.iter().map(ToString::to_string).collect();
        let expect = [
            "line 2: amount",
            "line 3: currency",
            "line 4: vendor_order_id: is missing",
            "line 5: created_at",
            "line 6: updated_at",
            "line 7: has 6 fields",
            "line 8: amount",
        ];
        assert_eq!(described.len(), expect.len(), "{described:#?}");
        for (got, want) in described.iter().zip(expect) {
            assert!(got.starts_with(want), "{got} / {want}");
        }
    }

    #[test]
    fn column_maps_rename_fields() {
        let columns = ColumnMap::new([
            ("vendor_order_id", "Order ID"),
            ("amount", "Face Value"),
            ("created_at", "Date"),
        ])
        .unwrap();
        let text = "order id,face value,currency,status,date\nA-1,10.00,EUR,EXECUTED,2026-12-02\n";
        let (rows, bad) = csv_rows(text, &columns);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rows[0].vendor_order_id, "A-1");
        assert!(ColumnMap::new([("price", "x")]).is_err());
        let missing = read_csv(
            "amount,currency\n".as_bytes(),
            &ColumnMap::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(
            missing.contains("vendor_order_id") && missing.contains("created_at"),
            "{missing}"
        );
    }

    #[test]
    fn json_arrays_are_streamed_and_numbers_read_exactly() {
        let text = r#"[
            {"vendor_order_id": "V1", "amount": 50.10, "currency": "USD", "status": "fulfilled", "created_at": "2026-12-01T10:00:00Z", "idempotency_key": "k1"},
            {"vendor_order_id": "V2", "amount": "12.505", "currency": "USD", "status": "fulfilled", "created_at": "2026-12-01T10:00:00Z"},
            {"vendor_order_id": "V3", "amount": true, "currency": "USD", "status": "fulfilled", "created_at": "2026-12-01T10:00:00Z"}
        ]"#;
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        read_json(text.as_bytes(), &ColumnMap::default(), |r| match r {
            Ok(row) => good.push(row),
            Err(e) => bad.push(e),
        })
        .unwrap();
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].amount.minor_units(), 5010);
        assert_eq!(bad.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3]);
        assert!(read_json("{}".as_bytes(), &ColumnMap::default(), |_| {}).is_err());
    }
}
