//! `giftrecon import orders FILE --vendor V`: internal orders from CSV, all or nothing.
//!
//! Every row is checked before anything is stored; a file with any bad row is refused whole,
//! with each bad line named (up to 100). Importing the same file again creates nothing: rows are
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
use tokio::sync::mpsc;

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

/// The first pass: every row checked, nothing stored.
struct Checked {
    bad: Vec<LineError>,
    bad_rows: u64,
    /// Lines that repeat an earlier line's order exactly: one order.
    repeats: HashSet<u64>,
    /// Distinct orders (idempotency keys) in the file.
    orders: u64,
    sha256: String,
}

fn check(reader: &Reader) -> Result<Checked, String> {
    let (mut bad, mut bad_rows, mut repeats) = (Vec::new(), 0u64, HashSet::new());
    // idempotency key (hashed) → (first line, hash of the order's fingerprint)
    let mut seen: HashMap<u64, (u64, u64)> = HashMap::new();
    let sha256 = reader.rows(|line, row| {
        let problem = match row {
            Err(e) => Some(e),
            Ok(order) => match seen.entry(hash64(order.idempotency_key.as_str())) {
                Entry::Vacant(v) => {
                    v.insert((line, hash64(order.request_hash.as_str())));
                    None
                }
                Entry::Occupied(o) if o.get().1 == hash64(order.request_hash.as_str()) => {
                    repeats.insert(line);
                    None
                }
                Entry::Occupied(o) => Some(format!(
                    "idempotency_key: {:?} is also on line {} with a different order",
                    order.idempotency_key,
                    o.get().0
                )),
            },
        };
        if let Some(error) = problem {
            bad_rows += 1;
            if bad.len() < MAX_REPORTED {
                bad.push(LineError {
                    line,
                    reason: error,
                });
            }
        }
    })?;
    Ok(Checked {
        bad,
        bad_rows,
        repeats,
        orders: seen.len() as u64,
        sha256,
    })
}

/// Imports an orders file in two streaming passes: check every row, then write them in
/// batches in one transaction. Memory stays flat whatever the file's size. `file_name` is what
/// the import log and messages call it (the path for the CLI, the uploaded name otherwise).
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

    let first = reader.clone();
    let checked = tokio::task::spawn_blocking(move || check(&first))
        .await
        .context("the file check stopped")?
        .map_err(refused)?;
    let write = checked.bad_rows == 0;
    let origin = order_import::FileOrigin {
        vendor_id: reader.vendor.id.as_str().to_string(),
        file_name: name.clone(),
        sha256: checked.sha256.clone(),
        orders: checked.orders,
    };
    let imported = second_pass(
        db,
        &reader,
        checked.repeats,
        checked.sha256,
        write,
        actor,
        &origin,
    )
    .await;
    let imported = match imported {
        Ok(i) => i,
        Err(StorageError::Conflict { what }) => return Err(refused(what)),
        Err(e) => return Err(e.into()),
    };
    if !write || imported.conflict_count > 0 {
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

/// Reads the file again and streams its good rows to the database in batches (writing them
/// only with `write`); a file that changed since the first pass stores nothing.
async fn second_pass(
    db: &Db,
    reader: &Reader,
    repeats: HashSet<u64>,
    expected_sha: String,
    write: bool,
    actor: &str,
    origin: &order_import::FileOrigin,
) -> Result<order_import::Imported, StorageError> {
    let (tx, rx) = mpsc::channel::<OrderBatch>(4);
    let second = reader.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut failed = false;
        let sha = second.rows(|line, row| {
            if failed {
                return;
            }
            match row {
                Ok(_) if repeats.contains(&line) => {}
                Ok(order) => {
                    batch.push((line, order));
                    if batch.len() == BATCH_ROWS {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                        failed = tx.blocking_send(Ok(full)).is_err();
                    }
                }
                // Known bad rows are skipped when only looking for conflicts.
                Err(_) if !write => {}
                Err(e) => {
                    failed = true;
                    let _ = tx.blocking_send(Err(format!(
                        "the file changed while it was imported (line {line}: {e})"
                    )));
                }
            }
        });
        if failed || (!batch.is_empty() && tx.blocking_send(Ok(batch)).is_err()) {
            return;
        }
        // Only a file read to the end, unchanged, may be committed.
        let verdict = match sha {
            Ok(sha) if sha == expected_sha => return,
            Ok(_) => "the file changed while it was imported".to_string(),
            Err(e) => e,
        };
        let _ = tx.blocking_send(Err(verdict));
    });
    let imported =
        order_import::import_orders(db, &reader.owner, actor, rx, MAX_REPORTED, write, origin)
            .await;
    if producer.await.is_err() {
        return Err(StorageError::Conflict {
            what: "the file reader stopped".into(),
        });
    }
    imported
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
