//! What a group commit of webhooks needs besides SQL: placeholders that are cheap on SQLite,
//! and the batch's orders, to which its events are applied in memory, in order, exactly as
//! `record_observation!` would apply them one by one.

use std::collections::HashMap;

use crate::domain::GlState;
use crate::storage::vendor_records::ObservedOrder;

pub(super) use crate::storage::Placeholders;

/// The conflict clause of the vendor record upsert: the same rule as `record_observation!`.
pub(super) const UPSERT_VENDOR_RECORD: &str = "
     ON CONFLICT (vendor_id, vendor_order_id) DO UPDATE
        SET vendor_key = COALESCE(vendor_records.vendor_key, excluded.vendor_key),
            reference_id = COALESCE(excluded.reference_id, vendor_records.reference_id),
            brand_id = COALESCE(excluded.brand_id, vendor_records.brand_id),
            amount_minor = excluded.amount_minor,
            currency = excluded.currency,
            status = excluded.status,
            gl_state = excluded.gl_state,
            order_id = COALESCE(vendor_records.order_id, excluded.order_id),
            source = excluded.source,
            created_at = COALESCE(vendor_records.created_at, excluded.created_at),
            updated_at = COALESCE(excluded.updated_at, vendor_records.updated_at),
            last_seen_at = excluded.last_seen_at,
            occurred_at = COALESCE(vendor_records.created_at, excluded.created_at,
                vendor_records.occurred_at)
      WHERE vendor_records.updated_at IS NULL OR excluded.updated_at IS NULL
         OR excluded.updated_at >= vendor_records.updated_at";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    None,
    /// Only `vendor_order_id` was filled in.
    VendorOrderId,
    /// The GL state moved forward (with the vendor's status and id).
    Advanced,
}

/// An order as a batch has read it and its events have changed it so far.
pub(super) struct KnownOrder {
    vendor_id: String,
    pub(super) id: String,
    pub(super) gl_state: String,
    pub(super) vendor_status: Option<String>,
    pub(super) vendor_order_id: Option<String>,
    pub(super) changed: Change,
}

/// The orders a batch's events name, by key and by vendor order id, per vendor.
#[derive(Default)]
pub(super) struct KnownOrders {
    pub(super) rows: Vec<KnownOrder>,
    by_id: HashMap<String, usize>,
    by_key: HashMap<(String, String), usize>,
    by_vendor_order_id: HashMap<(String, String), usize>,
}

impl KnownOrders {
    pub(super) fn add(
        &mut self,
        vendor_id: &str,
        id: String,
        gl_state: String,
        vendor_key: Option<String>,
        vendor_order_id: Option<String>,
    ) {
        if self.by_id.contains_key(&id) {
            return;
        }
        let i = self.rows.len();
        if let Some(key) = vendor_key {
            self.by_key.insert((vendor_id.to_owned(), key), i);
        }
        if let Some(vendor_order_id) = &vendor_order_id {
            self.by_vendor_order_id
                .entry((vendor_id.to_owned(), vendor_order_id.clone()))
                .or_insert(i);
        }
        self.by_id.insert(id.clone(), i);
        self.rows.push(KnownOrder {
            vendor_id: vendor_id.to_owned(),
            id,
            gl_state,
            vendor_status: None,
            vendor_order_id,
            changed: Change::None,
        });
    }

    /// The order with our key, else the one with the vendor's order id (as `record_observation!`).
    pub(super) fn find(
        &self,
        vendor_id: &str,
        key: Option<&str>,
        vendor_order_id: &str,
    ) -> Option<usize> {
        key.and_then(|key| {
            self.by_key
                .get(&(vendor_id.to_owned(), key.to_owned()))
                .copied()
        })
        .or_else(|| {
            self.by_vendor_order_id
                .get(&(vendor_id.to_owned(), vendor_order_id.to_owned()))
                .copied()
        })
    }

    /// Applies an observation to order `i`, forward only, as `record_observation!` does; the
    /// GL state moved from/to, if it moved.
    pub(super) fn observe(&mut self, i: usize, obs: &ObservedOrder) -> Option<(GlState, GlState)> {
        let row = &mut self.rows[i];
        let current = GlState::parse(&row.gl_state).ok();
        let advanced = match (current, obs.gl_state) {
            (Some(cur), Some(next)) if cur.may_advance_to(next) => Some((cur, next)),
            _ => None,
        };
        let learnt_id = row.vendor_order_id.is_none();
        if learnt_id {
            row.vendor_order_id = Some(obs.vendor_order_id.clone());
        }
        if let Some((_, next)) = advanced {
            row.gl_state = next.as_str().to_owned();
            row.vendor_status = Some(obs.status.clone());
            row.changed = Change::Advanced;
        } else if learnt_id && row.changed == Change::None {
            row.changed = Change::VendorOrderId;
        }
        if learnt_id {
            // Later events of the batch find the order by this id too.
            let key = (row.vendor_id.clone(), obs.vendor_order_id.clone());
            self.by_vendor_order_id.entry(key).or_insert(i);
        }
        advanced
    }
}
