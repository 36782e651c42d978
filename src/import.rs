//! `giftrecon import orders FILE --vendor V`: internal orders from CSV, all or nothing.
//!
//! Every row is checked before anything is stored; a file with any bad row is refused whole,
//! with each bad line named (up to 100). Importing the same file again creates nothing: rows are
//! keyed by (owner, idempotency key), and a key reused for a different order is refused.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{bail, Context};
use app::domain::{Currency, FieldError, IdempotencyKey, Money, OrderRequest, VendorId};
use app::storage::orders::{self, ExternalPlacement, Order, Source};
use app::storage::vendors::{self, Vendor};
use app::storage::{brands, Db};

use crate::csv_input;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// How many bad lines an error lists.
const MAX_REPORTED: usize = 100;
const REQUIRED: [&str; 5] = [
    "idempotency_key",
    "customer_id",
    "brand_id",
    "amount",
    "currency",
];

#[derive(Debug, PartialEq, Eq)]
pub struct ImportSummary {
    pub rows: usize,
    pub created: u64,
    pub already_imported: usize,
    pub to_place: usize,
    pub placed_elsewhere: usize,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {} rows: {} new orders ({} to place with the vendor, {} recorded as placed elsewhere), {} already imported",
            self.rows, self.created, self.to_place, self.placed_elsewhere, self.already_imported
        )
    }
}

/// The good rows (with their line numbers) and the bad lines of a file.
type ParsedFile = (Vec<(u64, Order)>, Vec<LineError>);

/// One row's problem.
struct LineError {
    line: u64,
    error: String,
}

pub async fn import_orders(
    db: &Db,
    path: &Path,
    vendor: &str,
    owner: &str,
) -> anyhow::Result<ImportSummary> {
    let vendor_id = VendorId::parse(vendor).context("--vendor")?;
    let vendor = vendors::get_vendor(db, &vendor_id).await?;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let name = path.display().to_string();
    let (rows, mut bad) =
        parse_orders_csv(file, &vendor, owner).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;

    // Brands must be known for orders giftrecon will place.
    let mut brand_known: HashMap<String, bool> = HashMap::new();
    for (line, order) in &rows {
        if order.submission != orders::Submission::Queued {
            continue;
        }
        let known = match brand_known.get(&order.brand_id) {
            Some(k) => *k,
            None => {
                let k = brands::exists(db, &vendor.id, &order.brand_id).await?;
                brand_known.insert(order.brand_id.clone(), k);
                k
            }
        };
        if !known {
            bad.push(LineError {
                line: *line,
                error: format!(
                    "brand_id: unknown brand {:?} for vendor {:?}",
                    order.brand_id,
                    vendor.id.as_str()
                ),
            });
        }
    }

    // Keys seen before: the same order is fine (nothing to do), a different one is refused.
    let keys: Vec<&str> = rows
        .iter()
        .map(|(_, o)| o.idempotency_key.as_str())
        .collect();
    let existing = orders::existing_fingerprints(db, owner, &keys).await?;
    drop(keys);
    for (line, order) in &rows {
        if existing
            .get(&order.idempotency_key)
            .is_some_and(|hash| *hash != order.request_hash)
        {
            bad.push(LineError {
                line: *line,
                error: format!(
                    "idempotency_key: {:?} was already imported for a different order",
                    order.idempotency_key
                ),
            });
        }
    }
    if !bad.is_empty() {
        bad.sort_by_key(|e| e.line);
        bail!("{name}: {}", refusal(&bad));
    }

    let row_count = rows.len();
    let fresh: Vec<Order> = rows
        .into_iter()
        .map(|(_, o)| o)
        .filter(|o| !existing.contains_key(&o.idempotency_key))
        .collect();
    let to_place = fresh
        .iter()
        .filter(|o| o.submission == orders::Submission::Queued)
        .count();
    let summary = ImportSummary {
        rows: row_count,
        created: 0,
        already_imported: row_count - fresh.len(),
        to_place,
        placed_elsewhere: fresh.len() - to_place,
    };
    let created = orders::insert_orders(db, &fresh, Some("import"), None).await?;
    Ok(ImportSummary { created, ..summary })
}

fn refusal(bad: &[LineError]) -> String {
    let listed: Vec<String> = bad
        .iter()
        .take(MAX_REPORTED)
        .map(|e| format!("line {}: {}", e.line, e.error))
        .collect();
    let more = if bad.len() > MAX_REPORTED {
        format!("; and {} more", bad.len() - MAX_REPORTED)
    } else {
        String::new()
    };
    format!(
        "{} invalid row(s), nothing was imported: {}{more}",
        bad.len(),
        listed.join("; ")
    )
}

/// Parses and validates every row: the good rows and the bad lines. `Err` only when the file
/// as a whole cannot be read (no header, missing columns).
fn parse_orders_csv(
    reader: impl std::io::Read,
    vendor: &Vendor,
    owner: &str,
) -> Result<ParsedFile, String> {
    let mut csv = csv_input::reader(reader);
    let headers = csv_input::headers(&mut csv)?;
    let column = |name: &str| headers.iter().position(|h| h == name);
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| column(c).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the header line lacks the column(s) {}; it must name idempotency_key, customer_id, brand_id, amount and currency",
            missing.join(", ")
        ));
    }
    let index = |name: &str| column(name).expect("checked above");
    let (key_i, customer_i, brand_i, amount_i, currency_i) = (
        index("idempotency_key"),
        index("customer_id"),
        index("brand_id"),
        index("amount"),
        index("currency"),
    );
    let (status_i, created_i) = (column("status"), column("created_at"));

    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut seen: HashMap<String, (u64, String)> = HashMap::new();
    for record in csv.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                bad.push(LineError {
                    line,
                    error: csv_input::describe_error(&e).0,
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("");
        let optional = |i: Option<usize>| i.map(field).filter(|v| !v.trim().is_empty());
        match parse_row(
            vendor,
            owner,
            [
                field(key_i),
                field(customer_i),
                field(brand_i),
                field(amount_i),
                field(currency_i),
            ],
            optional(status_i),
            optional(created_i),
        ) {
            Ok(order) => {
                match seen.get(&order.idempotency_key) {
                    Some((first, hash)) if *hash != order.request_hash => bad.push(LineError {
                        line,
                        error: format!(
                            "idempotency_key: {:?} is also on line {first} with a different order",
                            order.idempotency_key
                        ),
                    }),
                    Some(_) => {} // the same order twice in one file: one order
                    None => {
                        seen.insert(
                            order.idempotency_key.clone(),
                            (line, order.request_hash.clone()),
                        );
                        rows.push((line, order));
                    }
                }
            }
            Err(errors) => bad.push(LineError {
                line,
                error: errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
    Ok((rows, bad))
}

fn parse_row(
    vendor: &Vendor,
    owner: &str,
    [key, customer, brand, amount, currency]: [&str; 5],
    status: Option<&str>,
    created_at: Option<&str>,
) -> Result<Order, Vec<FieldError>> {
    let mut errors = Vec::new();
    let key = IdempotencyKey::parse(key)
        .map_err(|e| errors.push(FieldError::new("idempotency_key", e.to_string())))
        .ok();
    let currency = Currency::parse(currency.trim())
        .map_err(|e| errors.push(FieldError::new("currency", e.to_string())))
        .ok();
    let amount = currency.and_then(|c| {
        Money::parse(amount.trim(), c)
            .map_err(|e| errors.push(FieldError::new("amount", e.to_string())))
            .ok()
    });
    let placed = match (status, created_at) {
        (None, None) => None,
        (Some(_), None) => {
            errors.push(FieldError::new(
                "created_at",
                "is required when status is given",
            ));
            None
        }
        (None, Some(_)) => {
            errors.push(FieldError::new(
                "status",
                "is required when created_at is given",
            ));
            None
        }
        (Some(status), Some(created)) => {
            let gl = vendor.status_mapping.gl_state_for(status);
            if gl.is_none() {
                errors.push(FieldError::new(
                    "status",
                    format!(
                        "{status:?} maps to no GL state for vendor {:?}",
                        vendor.id.as_str()
                    ),
                ));
            }
            let at = parse_timestamp(created)
                .map_err(|e| errors.push(FieldError::new("created_at", e)))
                .ok();
            gl.zip(at).map(|(gl_state, created_at)| ExternalPlacement {
                vendor_status: status.trim().to_string(),
                gl_state,
                created_at,
            })
        }
    };
    let (Some(key), Some(amount)) = (key, amount) else {
        push_reference_errors(&mut errors, customer, brand);
        return Err(errors);
    };
    let request = match OrderRequest::new(key, customer, brand, amount, vendor.id.clone()) {
        Ok(r) if errors.is_empty() => r,
        Ok(_) => return Err(errors),
        Err(more) => {
            errors.extend(more);
            return Err(errors);
        }
    };
    Ok(match placed {
        Some(placed) => orders::build_external_order(&request, owner, placed),
        None => orders::build_order(&request, owner, Source::Import),
    })
}

fn push_reference_errors(errors: &mut Vec<FieldError>, customer: &str, brand: &str) {
    for (field, value) in [("customer_id", customer), ("brand_id", brand)] {
        if let Err(e) = app::domain::parse_reference(field, value) {
            errors.push(e);
        }
    }
}

/// RFC 3339, or `YYYY-MM-DD[ T]HH:MM:SS[.fff]` / `YYYY-MM-DD` taken as UTC.
pub fn parse_timestamp(value: &str) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!(
        "{value:?} is not a timestamp: use RFC 3339 such as 2026-12-04T10:30:00Z"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("2026-12-04T10:30:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-12-04T09:30:00+00:00"
        );
        assert!(parse_timestamp("2026-12-04 10:30:00").is_ok());
        assert!(parse_timestamp("2026-12-04").is_ok());
        assert!(parse_timestamp("04/12/2026").is_err());
    }
}
