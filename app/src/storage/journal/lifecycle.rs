//! Propose, submit, approve, post: the maker-checker steps of a clearing entry.

use super::*;

/// What proposing did to one currency's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeChange {
    Created,
    /// The content changed; the entry is a draft again (from `was`).
    Updated {
        was: EntryState,
    },
    Unchanged,
    /// Nothing to clear any more; the unposted entry was removed.
    Removed,
    /// Posted entries never change; the new totals differ and belong on an open day.
    PostedDiffers,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposeOutcome {
    pub currency: Currency,
    pub entry_id: Option<i64>,
    pub change: ProposeChange,
}

fn require_role(actor: &Actor, allowed: &[Role], action: &'static str) -> Result<(), CloseError> {
    if allowed.contains(&actor.role) {
        Ok(())
    } else {
        Err(CloseError::Role {
            role: actor.role,
            action,
        })
    }
}

const PREPARERS: &[Role] = &[Role::FinancePreparer, Role::FinanceApprover];
const APPROVERS: &[Role] = &[Role::FinanceApprover];

/// Creates or refreshes the day's draft entries from its totals. An unposted entry whose content
/// changes becomes a draft again (a submitted one must be resubmitted, an approved one
/// reapproved). A closed day is refused.
pub async fn propose(
    db: &Db,
    vendor: &VendorId,
    day: NaiveDate,
    totals: &BTreeMap<Currency, CurrencyTotals>,
    actor: &Actor,
) -> Result<Vec<ProposeOutcome>, CloseError> {
    require_role(actor, PREPARERS, "prepare")?;
    let accounts = accounts(db, vendor).await?;
    let mut proposals: BTreeMap<Currency, Option<ClearingEntry>> = BTreeMap::new();
    for (currency, t) in totals {
        proposals.insert(
            *currency,
            propose_clearing_entry(vendor, day, *currency, t, &accounts)?,
        );
    }
    let now = now_utc();
    let before: Vec<JournalEntry> = list_day(db, vendor.as_str(), day).await?;
    let outcomes = on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        lock_vendor!(tx, vendor.as_str());
        let closed: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM closed_days WHERE vendor_id = $1 AND business_day = $2",
        )
        .bind(vendor.as_str())
        .bind(day)
        .fetch_optional(&mut *tx)
        .await?;
        if closed.is_some() {
            return Err(CloseError::DayClosed { vendor: vendor.to_string(), day });
        }
        let existing: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, currency, state, content_hash FROM journal_entries
              WHERE vendor_id = $1 AND business_day = $2",
        )
        .bind(vendor.as_str())
        .bind(day)
        .fetch_all(&mut *tx)
        .await?;
        let mut existing: BTreeMap<String, (i64, String, String)> = existing
            .into_iter()
            .map(|(id, currency, state, hash)| (currency, (id, state, hash)))
            .collect();
        let mut outcomes = Vec::new();
        for (currency, proposal) in &proposals {
            let current = existing.remove(currency.code());
            let t = &totals[currency];
            let change = match (current, proposal) {
                (None, None) => continue,
                (None, Some(entry)) => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO journal_entries (vendor_id, business_day, currency, state,
                             memo, content_hash, internal_count, internal_minor, vendor_count,
                             vendor_minor, prepared_by, prepared_at)
                         VALUES ($1, $2, $3, 'draft', $4, $5, $6, $7, $8, $9, $10, $11)
                         RETURNING id",
                    )
                    .bind(vendor.as_str())
                    .bind(day)
                    .bind(currency.code())
                    .bind(&entry.memo)
                    .bind(entry.fingerprint())
                    .bind(count_i64(t.internal.count))
                    .bind(t.internal.amount.minor_units())
                    .bind(count_i64(t.vendor.count))
                    .bind(t.vendor.amount.minor_units())
                    .bind(&actor.username)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    insert_lines!(tx, id, entry);
                    ProposeOutcome { currency: *currency, entry_id: Some(id), change: ProposeChange::Created }
                }
                (Some((id, state, _)), _) if state == "posted" => {
                    let same = existing_hash_matches(&before, id, proposal.as_ref());
                    ProposeOutcome {
                        currency: *currency,
                        entry_id: Some(id),
                        change: if same { ProposeChange::Unchanged } else { ProposeChange::PostedDiffers },
                    }
                }
                (Some((id, _, _)), None) => {
                    sqlx::query("DELETE FROM journal_lines WHERE entry_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM journal_entries WHERE id = $1 AND state <> 'posted'")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    ProposeOutcome { currency: *currency, entry_id: None, change: ProposeChange::Removed }
                }
                (Some((id, _, hash)), Some(entry)) if hash == entry.fingerprint() => {
                    ProposeOutcome { currency: *currency, entry_id: Some(id), change: ProposeChange::Unchanged }
                }
                (Some((id, state, _)), Some(entry)) => {
                    sqlx::query(
                        "UPDATE journal_entries SET state = 'draft', memo = $1, content_hash = $2,
                             internal_count = $3, internal_minor = $4, vendor_count = $5,
                             vendor_minor = $6, prepared_by = $7, prepared_at = $8,
                             submitted_by = NULL, submitted_at = NULL, submitted_hash = NULL,
                             approved_by = NULL, approved_at = NULL
                         WHERE id = $9 AND state <> 'posted'",
                    )
                    .bind(&entry.memo)
                    .bind(entry.fingerprint())
                    .bind(count_i64(t.internal.count))
                    .bind(t.internal.amount.minor_units())
                    .bind(count_i64(t.vendor.count))
                    .bind(t.vendor.amount.minor_units())
                    .bind(&actor.username)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM journal_lines WHERE entry_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    insert_lines!(tx, id, entry);
                    let was = EntryState::parse(&state).unwrap_or(EntryState::Draft);
                    ProposeOutcome { currency: *currency, entry_id: Some(id), change: ProposeChange::Updated { was } }
                }
            };
            outcomes.push(change);
        }
        // Currencies with an entry but no totals any more: nothing to clear.
        for (code, (id, state, _)) in existing {
            let currency = Currency::parse(&code)
                .map_err(|e| corrupt(format!("journal entry {id}: stored currency: {e}")))?;
            if state == "posted" {
                outcomes.push(ProposeOutcome { currency, entry_id: Some(id), change: ProposeChange::PostedDiffers });
                continue;
            }
            sqlx::query("DELETE FROM journal_lines WHERE entry_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM journal_entries WHERE id = $1 AND state <> 'posted'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            outcomes.push(ProposeOutcome { currency, entry_id: None, change: ProposeChange::Removed });
        }
        tx.commit().await?;
        Ok::<_, CloseError>(outcomes)
    })?;
    let after = list_day(db, vendor.as_str(), day).await?;
    let summarize = |entries: &[JournalEntry]| -> Value {
        entries
            .iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "currency": e.currency,
                    "state": e.state,
                    "content_hash": e.content_hash,
                    "lines": e.lines.iter().map(|l| json!({
                        "account": l.account.code(),
                        "side": l.side,
                        "amount": l.amount.amount_string(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect()
    };
    audit::record(
        db,
        &AuditEvent {
            actor: actor.username.clone(),
            action: "close_propose".into(),
            subject: format!("close:{vendor}:{day}"),
            before: Some(summarize(&before)),
            after: Some(summarize(&after)),
        },
    )
    .await?;
    Ok(outcomes)
}

fn existing_hash_matches(
    before: &[JournalEntry],
    id: i64,
    proposal: Option<&ClearingEntry>,
) -> bool {
    let current = before
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.content_hash.as_str());
    match (current, proposal) {
        (Some(hash), Some(entry)) => hash == entry.fingerprint(),
        _ => false,
    }
}

fn count_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

// ---- submit, approve, post ------------------------------------------------------------------

async fn record_step(
    db: &Db,
    actor: &str,
    action: &str,
    before: &JournalEntry,
    after: Value,
) -> Result<(), StorageError> {
    audit::record(
        db,
        &AuditEvent {
            actor: actor.to_string(),
            action: action.to_string(),
            subject: format!("journal:{}", before.id),
            before: Some(before.audit_state()),
            after: Some(after),
        },
    )
    .await
    .map(|_| ())
}

/// Sends a draft for approval.
pub async fn submit(db: &Db, id: i64, actor: &Actor) -> Result<JournalEntry, CloseError> {
    require_role(actor, PREPARERS, "submit")?;
    let before = must_get(db, id).await?;
    let now = now_utc();
    let changed = on_db!(db, pool => {
        sqlx::query(
            "UPDATE journal_entries SET state = 'submitted', submitted_by = $1, submitted_at = $2,
                 submitted_hash = content_hash
             WHERE id = $3 AND state = 'draft' AND content_hash = $4",
        )
        .bind(&actor.username)
        .bind(now)
        .bind(id)
        .bind(&before.content_hash)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        let current = must_get(db, id).await?;
        if current.content_hash != before.content_hash {
            return Err(CloseError::ChangedAfterSubmission { id });
        }
        return Err(wrong_state(&current, EntryState::Draft, "submitted"));
    }
    let after = must_get(db, id).await?;
    record_step(
        db,
        &actor.username,
        "journal_submit",
        &before,
        after.audit_state(),
    )
    .await?;
    Ok(after)
}

fn same_person(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Why `actor` may not approve `entry` having reviewed `reviewed_hash`, if anything.
fn approval_refusal(
    entry: &JournalEntry,
    reviewed_hash: &str,
    actor: &Actor,
) -> Option<CloseError> {
    let id = entry.id;
    let submitted_by = entry.submitted_by.as_deref().unwrap_or_default();
    if same_person(&entry.prepared_by, &actor.username)
        || same_person(submitted_by, &actor.username)
    {
        return Some(CloseError::SelfApproval { id });
    }
    // The stored lines must still be what was hashed, and what was submitted and reviewed.
    let recomputed = entry.clearing_entry().fingerprint();
    let submitted = entry.submitted_hash.as_deref();
    let current = entry.content_hash.as_str();
    if recomputed != current
        || reviewed_hash != current
        || (entry.state == EntryState::Submitted && submitted != Some(current))
    {
        return Some(CloseError::ChangedAfterSubmission { id });
    }
    if entry.state != EntryState::Submitted {
        return Some(wrong_state(entry, EntryState::Submitted, "approved"));
    }
    None
}

/// Approves a submitted entry. Refused for whoever prepared or submitted it (whatever session
/// they use), when the entry changed after submission or after the approver reviewed it
/// (`reviewed_hash` is the content hash they saw), and when it is not submitted (approving
/// twice). Of two approvals racing, exactly one succeeds.
pub async fn approve(
    db: &Db,
    id: i64,
    reviewed_hash: &str,
    actor: &Actor,
) -> Result<JournalEntry, CloseError> {
    let result = try_approve(db, id, reviewed_hash, actor).await;
    // A refused approval is evidence too: who tried, and why it was refused.
    if let Err(
        err @ (CloseError::SelfApproval { .. }
        | CloseError::ChangedAfterSubmission { .. }
        | CloseError::WrongState { .. }),
    ) = &result
    {
        audit::record(
            db,
            &AuditEvent::new(
                &actor.username,
                "journal_approve_refused",
                format!("journal:{id}"),
            )
            .after(json!({ "reason": err.to_string(), "reviewed_hash": reviewed_hash })),
        )
        .await?;
    }
    result
}

async fn try_approve(
    db: &Db,
    id: i64,
    reviewed_hash: &str,
    actor: &Actor,
) -> Result<JournalEntry, CloseError> {
    require_role(actor, APPROVERS, "approve")?;
    let before = must_get(db, id).await?;
    if let Some(refusal) = approval_refusal(&before, reviewed_hash, actor) {
        return Err(refusal);
    }
    let now = now_utc();
    let changed = on_db!(db, pool => {
        sqlx::query(
            "UPDATE journal_entries SET state = 'approved', approved_by = $1, approved_at = $2
             WHERE id = $3 AND state = 'submitted' AND content_hash = $4 AND submitted_hash = $4
               AND lower(prepared_by) <> lower($1) AND lower(submitted_by) <> lower($1)",
        )
        .bind(&actor.username)
        .bind(now)
        .bind(id)
        .bind(reviewed_hash)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        // Someone else got there first (or the content moved): say which.
        let current = must_get(db, id).await?;
        return Err(approval_refusal(&current, reviewed_hash, actor)
            .unwrap_or_else(|| wrong_state(&current, EntryState::Submitted, "approved")));
    }
    let after = must_get(db, id).await?;
    record_step(
        db,
        &actor.username,
        "journal_approve",
        &before,
        after.audit_state(),
    )
    .await?;
    Ok(after)
}

/// The result of posting an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    pub entry: JournalEntry,
    /// Whether this was the day's last unposted entry, so the day is now closed.
    pub day_closed: bool,
}

/// Posts an approved entry: writes and stores its three journal files, and closes the
/// (vendor, day) when every entry of it is posted. All or nothing.
pub async fn post(db: &Db, id: i64, actor: &Actor) -> Result<Posted, CloseError> {
    require_role(actor, APPROVERS, "post")?;
    let before = must_get(db, id).await?;
    if before.state != EntryState::Approved {
        return Err(wrong_state(&before, EntryState::Approved, "posted"));
    }
    let content = before.clearing_entry();
    if content.fingerprint() != before.content_hash {
        return Err(CloseError::ChangedAfterSubmission { id });
    }
    content.check_balanced()?;
    let journal_no = before.journal_no();
    let files: Vec<(ExportFormat, String)> = ExportFormat::ALL
        .into_iter()
        .map(|f| (f, f.render(&journal_no, &content)))
        .collect();
    let now = now_utc();
    let vendor = before.vendor.as_str();
    let day_closed = on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        lock_vendor!(tx, vendor);
        let changed = sqlx::query(
            "UPDATE journal_entries SET state = 'posted', posted_by = $1, posted_at = $2
             WHERE id = $3 AND state = 'approved' AND content_hash = $4",
        )
        .bind(&actor.username)
        .bind(now)
        .bind(id)
        .bind(&before.content_hash)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            tx.rollback().await?;
            let current = must_get(db, id).await?;
            return Err(wrong_state(&current, EntryState::Approved, "posted"));
        }
        for (format, text) in &files {
            sqlx::query(
                "INSERT INTO journal_exports (entry_id, format, content, sha256, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(format.as_str())
            .bind(text)
            .bind(sha256_hex(text))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM journal_entries
              WHERE vendor_id = $1 AND business_day = $2 AND state <> 'posted'",
        )
        .bind(vendor)
        .bind(before.day)
        .fetch_one(&mut *tx)
        .await?;
        if open == 0 {
            sqlx::query(
                "INSERT INTO closed_days (vendor_id, business_day, closed_by, closed_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (vendor_id, business_day) DO NOTHING",
            )
            .bind(vendor)
            .bind(before.day)
            .bind(&actor.username)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok::<_, CloseError>(open == 0)
    })?;
    let after = must_get(db, id).await?;
    let mut state = after.audit_state();
    state["exports"] = files
        .iter()
        .map(|(f, text)| (f.as_str().to_string(), Value::String(sha256_hex(text))))
        .collect::<serde_json::Map<_, _>>()
        .into();
    state["day_closed"] = day_closed.into();
    record_step(db, &actor.username, "journal_post", &before, state).await?;
    if day_closed {
        audit::record(
            db,
            &AuditEvent::new(
                &actor.username,
                "day_close",
                format!("close:{vendor}:{}", before.day),
            )
            .after(json!({ "locked": true })),
        )
        .await?;
    }
    Ok(Posted {
        entry: after,
        day_closed,
    })
}
