//! The journal files of posted entries, exactly as written at posting.

use super::*;

async fn stored_export(
    db: &Db,
    id: i64,
    format: ExportFormat,
) -> Result<Option<String>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar("SELECT content FROM journal_exports WHERE entry_id = $1 AND format = $2")
            .bind(id)
            .bind(format.as_str())
            .fetch_optional(pool)
            .await
    })?)
}

async fn record_export(
    db: &Db,
    actor: &str,
    subject: String,
    format: ExportFormat,
    text: &str,
) -> Result<(), StorageError> {
    audit::record(
        db,
        &AuditEvent::new(actor, "journal_export", subject)
            .after(json!({ "format": format, "sha256": sha256_hex(text), "bytes": text.len() })),
    )
    .await
    .map(|_| ())
}

/// The file written when the entry was posted, exactly as written. Only posted entries export.
/// The caller checks the actor's role; the export is recorded in the audit trail.
pub async fn export_entry(
    db: &Db,
    id: i64,
    format: ExportFormat,
    actor: &str,
) -> Result<String, CloseError> {
    let entry = must_get(db, id).await?;
    if entry.state != EntryState::Posted {
        return Err(wrong_state(&entry, EntryState::Posted, "exported"));
    }
    let text = stored_export(db, id, format).await?.ok_or_else(|| {
        corrupt(format!(
            "journal entry {id} is posted but has no {format} file"
        ))
    })?;
    record_export(db, actor, format!("journal:{id}"), format, &text).await?;
    Ok(text)
}

/// Every posted entry of the vendor's day in one file (by currency, one header).
pub async fn export_day(
    db: &Db,
    vendor: &VendorId,
    day: NaiveDate,
    format: ExportFormat,
    actor: &str,
) -> Result<String, CloseError> {
    let entries = list_day(db, vendor.as_str(), day).await?;
    let mut files = Vec::new();
    for entry in entries.iter().filter(|e| e.state == EntryState::Posted) {
        files.push(stored_export(db, entry.id, format).await?.ok_or_else(|| {
            corrupt(format!(
                "journal entry {} is posted but has no {format} file",
                entry.id
            ))
        })?);
    }
    if files.is_empty() {
        return Err(CloseError::NothingPosted {
            vendor: vendor.to_string(),
            day,
        });
    }
    let text = combine_exports(files.iter().map(String::as_str));
    record_export(db, actor, format!("close:{vendor}:{day}"), format, &text).await?;
    Ok(text)
}
