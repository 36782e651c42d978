//! `giftrecon import orders FILE --vendor V`: internal orders from CSV, all or nothing.
//!
//! The file is read once: every row is checked as it is read and written in batches into one
//! transaction, which commits only if every row was good; a file with any bad row is refused
//! whole, with each bad line named (up to 100), and nothing of it is stored. Importing the same file again creates nothing: rows are
//! keyed by (owner, idempotency key), and a key reused for a different order is refused.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use app::domain::{Currency, FieldError, IdempotencyKey, Money, OrderRequest, VendorId};
use app::storage::order_import::{self, OrderBatch, BATCH_ROWS};
use app::storage::orders::{self, ExternalPlacement, Order, Source};
use app::storage::vendors::{self, Vendor};
use app::storage::{brands, Db, StorageError};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};

use crate::csv_input::{self, hash64};
use crate::file_import::{ImportError, LineError};
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
    pub rows: u64,
    pub created: u64,
    pub already_imported: u64,
    pub to_place: u64,
    pub placed_elsewhere: u64,
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

/// Everything one pass over the file needs.
#[derive(Clone)]
struct Reader {
    path: PathBuf,
    vendor: Vendor,
    owner: String,
    /// Brands of the vendor: orders giftrecon will place must name one of them.
    brands: Arc<HashSet<String>>,
}

impl Reader {
    /// Calls `each` with every row, checked, in file order; returns the file's SHA-256. `Err`
    /// when the file as a whole cannot be read (missing, no header, missing columns).
    fn rows(&self, mut each: impl FnMut(u64, Result<Order, String>)) -> Result<String, String> {
        let mut reader = csv_input::HashedFile::open(&self.path)?;
        let mut csv = csv_input::reader(&mut reader);
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
        let mut record = csv::StringRecord::new();
        loop {
            match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = record.position().map_or(0, |p| p.line());
                    let field = |i: usize| record.get(i).unwrap_or("");
                    let optional = |i: Option<usize>| i.map(field).filter(|v| !v.trim().is_empty());
                    let parsed = parse_row(
                        &self.vendor,
                        &self.owner,
                        [
                            field(key_i),
                            field(customer_i),
                            field(brand_i),
                            field(amount_i),
                            field(currency_i),
                        ],
                        optional(status_i),
                        optional(created_i),
                    )
                    .map_err(|errors| {
                        errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .and_then(|order| {
                        if order.submission == orders::Submission::Queued
                            && !self.brands.contains(&order.brand_id)
                        {
                            Err(format!(
                                "brand_id: unknown brand {:?} for vendor {:?}",
                                order.brand_id,
                                self.vendor.id.as_str()
                            ))
                        } else {
                            Ok(order)
                        }
                    });
                    each(line, parsed);
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    let (reason, can_go_on) = csv_input::describe_error(&e);
                    each(line, Err(reason));
                    if !can_go_on {
                        break;
                    }
                }
            }
        }
        drop(csv);
        reader.finish()
    }
}

/// What reading the file found wrong.
struct Checked {
    bad: Vec<LineError>,
    bad_rows: u64,
}

/// Reads the file once: checks every row and sends the good ones, each order once, in batches to
/// be written. At the first bad row it clears `writing`: nothing will be stored, but the good
/// rows after it are still sent, so keys imported before for a different order are named too.
/// Sends the file's SHA-256 on `verdict` only when the whole file was read and every row is good.
/// `Err` when the file as a whole cannot be read.
fn read_and_check(
    reader: &Reader,
    batches: mpsc::Sender<OrderBatch>,
    writing: &AtomicBool,
    verdict: oneshot::Sender<String>,
) -> Result<Checked, String> {
    let (mut bad, mut bad_rows) = (Vec::new(), 0u64);
    // idempotency key (hashed) → (first line, hash of the order's fingerprint)
    let mut seen: HashMap<u64, (u64, u64)> = csv_input::seen_map(&reader.path);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut writer_gone = false;
    let sha256 = reader.rows(|line, row| {
        if writer_gone {
            return;
        }
        let problem = match row {
            Err(e) => Some(e),
            Ok(order) => match seen.entry(hash64(order.idempotency_key.as_str())) {
                Entry::Vacant(v) => {
                    v.insert((line, hash64(order.request_hash.as_str())));
                    batch.push((line, order));
                    if batch.len() == BATCH_ROWS {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                        writer_gone = batches.blocking_send(full).is_err();
                    }
                    None
                }
                // The same order again: one order.
                Entry::Occupied(o) if o.get().1 == hash64(order.request_hash.as_str()) => None,
                Entry::Occupied(o) => Some(format!(
                    "idempotency_key: {:?} is also on line {} with a different order",
                    order.idempotency_key,
                    o.get().0
                )),
            },
        };
        if let Some(error) = problem {
            writing.store(false, Ordering::Release);
            bad_rows += 1;
            if bad.len() < MAX_REPORTED {
                bad.push(LineError {
                    line,
                    reason: error,
                });
            }
        }
    })?;
    if !batch.is_empty() && !writer_gone {
        let _ = batches.blocking_send(batch);
    }
    drop(batches);
    if bad_rows == 0 && !writer_gone {
        let _ = verdict.send(sha256);
    }
    Ok(Checked { bad, bad_rows })
}

/// Imports an orders file in one streaming pass: each row is checked as it is read and written
/// in batches into one transaction, which commits only if every row was good. Memory stays flat
/// whatever the file's size. `file_name` is what the import log and messages call it (the path
/// for the CLI, the uploaded name otherwise).
pub async fn import_orders(
    db: &Db,
    path: &Path,
    file_name: &str,
    vendor: &str,
    owner: &str,
    actor: &str,
) -> Result<ImportSummary, ImportError> {
    let name = file_name.to_string();
    let refused = |reason: String| ImportError::Refused {
        file: name.clone(),
        reason: Some(reason),
        lines: Vec::new(),
        bad_rows: 0,
    };
    let vendor_id = VendorId::parse(vendor).context("--vendor")?;
    let vendor = vendors::get_vendor(db, &vendor_id).await?;
    let brands: HashSet<String> = brands::list(db, Some(&vendor_id))
        .await?
        .into_iter()
        .map(|(_, brand, _)| brand)
        .collect();
    let reader = Reader {
        path: path.to_path_buf(),
        vendor,
        owner: owner.to_string(),
        brands: Arc::new(brands),
    };
    let origin = order_import::FileOrigin {
        vendor_id: reader.vendor.id.as_str().to_string(),
        file_name: name.clone(),
    };

    let (batches, received) = mpsc::channel::<OrderBatch>(4);
    let (verdict, sha256) = oneshot::channel::<String>();
    let writing = Arc::new(AtomicBool::new(true));
    let reading = {
        let (reader, writing) = (reader.clone(), Arc::clone(&writing));
        crate::file_import::spawn_reader(move || {
            read_and_check(&reader, batches, &writing, verdict)
        })?
    };
    let imported = order_import::import_orders(
        db,
        &reader.owner,
        actor,
        received,
        MAX_REPORTED,
        &writing,
        &origin,
        async { sha256.await.ok() },
    )
    .await;
    let checked = reading.await?.map_err(refused)?;
    let imported = match imported {
        Ok(i) => i,
        Err(StorageError::Conflict { what }) => return Err(refused(what)),
        Err(e) => return Err(e.into()),
    };
    if checked.bad_rows > 0 || imported.conflict_count > 0 {
        // Every bad line at once: those of the file itself and keys imported before.
        let mut bad = checked.bad;
        bad.extend(
            imported
                .conflicts
                .into_iter()
                .map(|(line, reason)| LineError { line, reason }),
        );
        bad.sort_by_key(|e| e.line);
        bad.truncate(MAX_REPORTED);
        return Err(ImportError::Refused {
            file: name,
            reason: None,
            lines: bad,
            bad_rows: checked.bad_rows + imported.conflict_count,
        });
    }
    Ok(ImportSummary {
        rows: imported.rows,
        created: imported.created,
        already_imported: imported.already_imported,
        to_place: imported.to_place,
        placed_elsewhere: imported.placed_elsewhere,
    })
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
