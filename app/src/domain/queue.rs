//! What finance can do about a discrepancy, and what is at stake in one. Pure: the page uses it
//! to offer only the actions that fit an item, the server to refuse the rest.

use super::matching::Class;
use super::{Money, MoneyError};

/// A one-click action on a discrepancy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueAction {
    /// Vendor-only: create the internal order from the vendor record (GL state from its status).
    Backfill,
    /// Internal-only: send the order to the vendor again, with the same vendor key.
    Retry,
    /// Internal-only: the vendor never issued the card; record the customer's refund, so the
    /// order ends failed (absent at the vendor, which then agrees).
    Refund,
    /// Status mismatch: take the vendor's status (and the GL state it maps to).
    SyncStatus,
    /// Accept a difference with a reason; a second person approves it.
    WriteOff,
    /// A finance approver other than the requester accepts a requested write-off.
    ApproveWriteOff,
}

impl QueueAction {
    pub const ALL: [QueueAction; 6] = [
        QueueAction::Backfill,
        QueueAction::Retry,
        QueueAction::Refund,
        QueueAction::SyncStatus,
        QueueAction::WriteOff,
        QueueAction::ApproveWriteOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueAction::Backfill => "backfill",
            QueueAction::Retry => "retry",
            QueueAction::Refund => "refund",
            QueueAction::SyncStatus => "sync_status",
            QueueAction::WriteOff => "write_off",
            QueueAction::ApproveWriteOff => "approve_write_off",
        }
    }

    /// The button's name.
    pub fn label(self) -> &'static str {
        match self {
            QueueAction::Backfill => "Backfill",
            QueueAction::Retry => "Retry",
            QueueAction::Refund => "Refund",
            QueueAction::SyncStatus => "Sync status",
            QueueAction::WriteOff => "Write off",
            QueueAction::ApproveWriteOff => "Approve write-off",
        }
    }

    /// The keyboard shortcut on the queue page.
    pub fn shortcut(self) -> char {
        match self {
            QueueAction::Backfill => 'b',
            QueueAction::Retry => 'r',
            QueueAction::Refund => 'f',
            QueueAction::SyncStatus => 's',
            QueueAction::WriteOff => 'w',
            QueueAction::ApproveWriteOff => 'a',
        }
    }

    pub fn parse(input: &str) -> Option<QueueAction> {
        QueueAction::ALL.into_iter().find(|a| a.as_str() == input)
    }

    /// Whether the action makes sense for an item of `class`.
    pub fn applies_to(self, class: Class) -> bool {
        match self {
            QueueAction::Backfill => class == Class::VendorOnly,
            QueueAction::Retry | QueueAction::Refund => class == Class::InternalOnly,
            QueueAction::SyncStatus => class == Class::StatusMismatch,
            QueueAction::WriteOff | QueueAction::ApproveWriteOff => matches!(
                class,
                Class::AmountMismatch
                    | Class::CurrencyMismatch
                    | Class::UnmappedStatus
                    | Class::Duplicate
            ),
        }
    }

    /// Whether the person must say why (kept with the item and in the audit trail).
    pub fn needs_reason(self) -> bool {
        matches!(self, QueueAction::WriteOff | QueueAction::Refund)
    }

    /// The actions offered for an item of `class`, in button order. `ApproveWriteOff` is offered
    /// only once a write-off was requested, so it is not listed here.
    pub fn for_class(class: Class) -> Vec<QueueAction> {
        QueueAction::ALL
            .into_iter()
            .filter(|a| *a != QueueAction::ApproveWriteOff && a.applies_to(class))
            .collect()
    }
}

/// What an item puts at stake, in its currency: the difference for an amount mismatch, the
/// vendor's amount for what only the vendor has (or what it has twice), ours otherwise. `None`
/// when neither side has an amount.
pub fn amount_at_stake(
    class: Class,
    ours: Option<Money>,
    theirs: Option<Money>,
) -> Result<Option<Money>, MoneyError> {
    Ok(match (class, ours, theirs) {
        (Class::AmountMismatch, Some(o), Some(t)) if o.currency() == t.currency() => {
            let (hi, lo) = if t.minor_units() >= o.minor_units() {
                (t, o)
            } else {
                (o, t)
            };
            Some(hi.checked_sub(lo)?)
        }
        (Class::VendorOnly | Class::Duplicate, _, Some(t)) => Some(t),
        (_, Some(o), _) => Some(o),
        (_, None, t) => t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("USD").unwrap())
    }

    #[test]
    fn every_action_round_trips_and_has_its_own_shortcut() {
        let mut keys = std::collections::HashSet::new();
        for a in QueueAction::ALL {
            assert_eq!(QueueAction::parse(a.as_str()), Some(a));
            assert!(keys.insert(a.shortcut()), "{a:?} shares its shortcut");
        }
        assert_eq!(QueueAction::parse("delete"), None);
    }

    #[test]
    fn each_class_is_offered_what_fits_it() {
        let offered = |c| QueueAction::for_class(c);
        assert_eq!(offered(Class::VendorOnly), vec![QueueAction::Backfill]);
        assert_eq!(
            offered(Class::InternalOnly),
            vec![QueueAction::Retry, QueueAction::Refund]
        );
        assert_eq!(
            offered(Class::StatusMismatch),
            vec![QueueAction::SyncStatus]
        );
        assert_eq!(offered(Class::AmountMismatch), vec![QueueAction::WriteOff]);
        assert_eq!(offered(Class::Matched), vec![]);
        assert!(!QueueAction::Backfill.applies_to(Class::InternalOnly));
    }

    #[test]
    fn the_stake_is_the_difference_for_amounts_and_a_side_otherwise() {
        let stake = |c, o, t| amount_at_stake(c, o, t).unwrap();
        assert_eq!(
            stake(Class::AmountMismatch, Some(usd(5000)), Some(usd(4950))),
            Some(usd(50))
        );
        assert_eq!(
            stake(Class::AmountMismatch, Some(usd(4950)), Some(usd(5000))),
            Some(usd(50))
        );
        assert_eq!(
            stake(Class::VendorOnly, None, Some(usd(700))),
            Some(usd(700))
        );
        assert_eq!(
            stake(Class::InternalOnly, Some(usd(900)), None),
            Some(usd(900))
        );
        assert_eq!(
            stake(Class::StatusMismatch, Some(usd(100)), Some(usd(100))),
            Some(usd(100))
        );
        assert_eq!(
            stake(Class::Duplicate, Some(usd(1)), Some(usd(2))),
            Some(usd(2))
        );
        assert_eq!(stake(Class::VendorOnly, None, None), None);
    }
}
