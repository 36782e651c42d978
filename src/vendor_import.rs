//! `giftrecon import vendor FILE --vendor V` and `POST /api/v1/vendors/{V}/files`: a vendor's
//! reconciliation file into vendor records, all or nothing, in one streaming pass.
//!
//! A reading thread checks every row as it reads it and streams the good ones to the database in
//! batches, in one transaction (so parsing and writing overlap and memory stays flat). A file with
//! any bad row is refused with every bad line named (the first 100): the reader stops sending at
//! the first, reads on to name the rest, and the transaction rolls back, so nothing is stored.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use app::domain::{StatusMapping, VendorId};
use app::storage::imports::{self, Batch, FileRecord, ImportRecord, NewImport, BATCH_ROWS};
use app::storage::{vendors, Db, StorageError};
use tokio::sync::{mpsc, oneshot};

use crate::csv_input::{self, hash64, HashedFile};
use crate::file_import::ImportError;
use crate::vendor_file::{self, ColumnMap, LineError, VendorRow};

/// How many bad lines a refusal lists.
const MAX_REPORTED: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Json,
}

impl FileFormat {
    /// `csv` or `json`.
    pub fn parse(name: &str) -> Result<FileFormat, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(FileFormat::Csv),
            "json" => Ok(FileFormat::Json),
            other => Err(format!("{other:?} is not a file format; use csv or json")),
        }
    }

    /// From the file name's extension: `.json` is JSON, anything else CSV.
    pub fn of_path(path: &Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => FileFormat::Json,
            _ => FileFormat::Csv,
        }
    }
}

/// What an import did.
pub struct VendorImportSummary(pub ImportRecord);

impl fmt::Display for VendorImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.0;
        write!(
            f,
            "imported {} for vendor {}: {} rows: {} new, {} updated, {} unchanged (import {})",
            r.file_name, r.vendor_id, r.rows, r.inserted, r.updated, r.unchanged, r.id
        )
    }
}

/// Streams every row of the file to `each`; returns the file's SHA-256.
fn read_rows(
    path: &Path,
    format: FileFormat,
    columns: &ColumnMap,
    each: impl FnMut(Result<VendorRow, LineError>),
) -> Result<String, String> {
    let mut reader = HashedFile::open(path)?;
    match format {
        FileFormat::Csv => vendor_file::read_csv(&mut reader, columns, each)?,
        FileFormat::Json => vendor_file::read_json(&mut reader, columns, each)?,
    }
    reader.finish()
}

/// Everything of a row but its line number, for telling a repeated row from a conflicting one.
fn row_digest(row: &VendorRow) -> u64 {
    hash64(&(
        &row.idempotency_key,
        &row.reference_id,
        &row.brand_id,
        row.amount.minor_units(),
        row.amount.currency().code(),
        &row.status,
        row.created_at,
        row.updated_at,
    ))
}

/// What reading the file found wrong.
struct Checked {
    bad: Vec<LineError>,
    bad_rows: u64,
}

/// Reads the file once: checks every row and sends the good ones in batches to be written, a
/// line that repeats an earlier one exactly only once. From the first bad row on nothing more is
/// sent, but every row is still checked, so the refusal names every bad line. Sends the file's
/// SHA-256 on `verdict` only when the whole file was read and every row is good: without it the
/// writer stores nothing. `Err` when the file as a whole cannot be read.
fn read_and_check(
    path: &Path,
    format: FileFormat,
    columns: &ColumnMap,
    mapping: &StatusMapping,
    batches: mpsc::Sender<Batch>,
    verdict: oneshot::Sender<String>,
) -> Result<Checked, String> {
    let (mut bad, mut bad_rows) = (Vec::new(), 0u64);
    // vendor order id (hashed) → (first line, digest of its values)
    let mut seen: HashMap<u64, (u64, u64)> = csv_input::seen_map(path);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut sending = true;
    let sha256 = read_rows(path, format, columns, |row| {
        let problem = match row {
            Err(e) => Some(e),
            Ok(row) => match seen.entry(hash64(row.vendor_order_id.as_str())) {
                Entry::Vacant(v) => {
                    v.insert((row.line, row_digest(&row)));
                    if sending {
                        batch.push(to_record(row, mapping));
                        if batch.len() == BATCH_ROWS {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                            sending = batches.blocking_send(full).is_ok();
                        }
                    }
                    None
                }
                Entry::Occupied(o) if o.get().1 == row_digest(&row) => None,
                Entry::Occupied(o) => Some(LineError {
                    line: row.line,
                    reason: format!(
                        "vendor_order_id: {:?} is also on line {} with different values",
                        row.vendor_order_id,
                        o.get().0
                    ),
                }),
            },
        };
        if let Some(e) = problem {
            sending = false;
            bad_rows += 1;
            if bad.len() < MAX_REPORTED {
                bad.push(e);
            }
        }
    })?;
    if sending && !batch.is_empty() {
        sending = batches.blocking_send(batch).is_ok();
    }
    drop(batches);
    if sending && bad_rows == 0 {
        let _ = verdict.send(sha256);
    }
    Ok(Checked { bad, bad_rows })
}

fn to_record(row: VendorRow, mapping: &StatusMapping) -> FileRecord {
    FileRecord {
        gl_state: mapping.gl_state_for(&row.status),
        vendor_order_id: row.vendor_order_id,
        vendor_key: row.idempotency_key,
        reference_id: row.reference_id,
        brand_id: row.brand_id,
        amount: row.amount,
        status: row.status,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Imports a vendor file. `file_name` is what the import log and messages call it (the path for
/// the CLI, the uploaded name for the API); `columns` overrides the vendor's stored column names.
pub async fn import_vendor_file(
    db: &Db,
    vendor: &str,
    path: &Path,
    file_name: &str,
    format: FileFormat,
    columns: Option<ColumnMap>,
    actor: &str,
) -> Result<VendorImportSummary, ImportError> {
    let refused = |reason: String| ImportError::Refused {
        file: file_name.to_string(),
        reason: Some(reason),
        lines: Vec::new(),
        bad_rows: 0,
    };
    let vendor_id = VendorId::parse(vendor).context("--vendor")?;
    let vendor = vendors::get_vendor(db, &vendor_id).await?;
    let columns = match columns {
        Some(c) => c,
        None => match vendors::file_columns(db, &vendor_id).await? {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                anyhow::anyhow!("the stored file columns of vendor {vendor_id} are unreadable: {e}")
            })?,
            None => ColumnMap::default(),
        },
    };

    // One pass: a reading thread checks every row and feeds the good ones to the one writing
    // transaction, which commits only if the whole file turns out good.
    let owned: PathBuf = path.to_path_buf();
    let (batches, received) = mpsc::channel::<Batch>(4);
    let (verdict, sha256) = oneshot::channel::<String>();
    let mapping = vendor.status_mapping.clone();
    let reading = crate::file_import::spawn_reader(move || {
        read_and_check(&owned, format, &columns, &mapping, batches, verdict)
    })?;
    let import = NewImport {
        vendor_id: vendor_id.as_str().to_string(),
        file_name: file_name.to_string(),
        actor: actor.to_string(),
    };
    let sha256 = async {
        sha256
            .await
            .map_err(|_| "the file has bad lines or could not be read to the end".to_string())
    };
    let stored = imports::import_vendor_file(db, &import, received, sha256).await;
    let checked = reading.await?.map_err(refused)?;
    if checked.bad_rows > 0 {
        return Err(ImportError::Refused {
            file: file_name.to_string(),
            reason: None,
            lines: checked.bad,
            bad_rows: checked.bad_rows,
        });
    }
    match stored {
        Ok(record) => Ok(VendorImportSummary(record)),
        Err(StorageError::Conflict { what }) => Err(refused(what)),
        Err(e) => Err(e.into()),
    }
}

/// Parses `field=column` pairs (from `--column`).
pub fn parse_columns(pairs: &[String]) -> Result<Option<ColumnMap>, String> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut split = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let (field, column) = pair.split_once('=').ok_or_else(|| {
            format!("--column {pair:?}: write FIELD=COLUMN, e.g. amount=\"Face Value\"")
        })?;
        split.push((field.trim(), column.trim()));
    }
    ColumnMap::new(split).map(Some)
}
