//! Matching vendor records to internal orders, and classifying what does not tie out.
//!
//! Pure and deterministic: the same inputs in any order give the same result. Every vendor record
//! lands in exactly one outcome; every internal order in at most one (a failed order absent at the
//! vendor agrees with it and is no discrepancy).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Currency, GlState, Money, MoneyError, StatusMapping};

/// One of our orders, as matching sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalOrder {
    /// Our order id; vendors that echo a reference echo this.
    pub id: String,
    /// The key the vendor knows the order by.
    pub vendor_key: String,
    pub vendor_order_id: Option<String>,
    pub amount: Money,
    pub gl_state: GlState,
}

/// One order as the vendor reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorRecord {
    pub vendor_order_id: String,
    /// The idempotency key the vendor echoes (our vendor key), if any.
    pub key: Option<String>,
    /// A reference the vendor echoes (our order id), if any.
    pub reference_id: Option<String>,
    pub amount: Money,
    pub status: String,
}

/// What a key's records and order amount to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Matched,
    AmountMismatch,
    CurrencyMismatch,
    StatusMismatch,
    UnmappedStatus,
    VendorOnly,
    InternalOnly,
    Duplicate,
}

impl Class {
    pub const ALL: [Class; 8] = [
        Class::Matched,
        Class::AmountMismatch,
        Class::CurrencyMismatch,
        Class::StatusMismatch,
        Class::UnmappedStatus,
        Class::VendorOnly,
        Class::InternalOnly,
        Class::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Matched => "matched",
            Class::AmountMismatch => "amount_mismatch",
            Class::CurrencyMismatch => "currency_mismatch",
            Class::StatusMismatch => "status_mismatch",
            Class::UnmappedStatus => "unmapped_status",
            Class::VendorOnly => "vendor_only",
            Class::InternalOnly => "internal_only",
            Class::Duplicate => "duplicate",
        }
    }

    /// Everything but `matched` is a discrepancy for finance.
    pub fn is_discrepancy(self) -> bool {
        self != Class::Matched
    }
}

/// One classified key: the internal order (index into the input) and the vendor records
/// (indices, sorted) it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub class: Class,
    /// The key the outcome is filed under: the vendor key, else the vendor order id.
    pub key: String,
    pub order: Option<usize>,
    pub records: Vec<usize>,
}

/// Count and amount of fulfilled business on one side, in one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SideTotal {
    pub count: u64,
    pub amount: Money,
}

/// Daily totals in one currency, ours beside the vendor's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrencyTotals {
    pub internal: SideTotal,
    pub vendor: SideTotal,
}

impl CurrencyTotals {
    fn zero(currency: Currency) -> CurrencyTotals {
        let zero = SideTotal {
            count: 0,
            amount: Money::zero(currency),
        };
        CurrencyTotals {
            internal: zero,
            vendor: zero,
        }
    }

    /// Vendor minus ours.
    pub fn variance(&self) -> Result<Money, MoneyError> {
        self.vendor.amount.checked_sub(self.internal.amount)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciliation {
    /// Sorted by (class, key).
    pub outcomes: Vec<Outcome>,
    pub totals: BTreeMap<Currency, CurrencyTotals>,
}

impl Reconciliation {
    pub fn count(&self, class: Class) -> usize {
        self.outcomes.iter().filter(|o| o.class == class).count()
    }
}

/// Rules of comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tolerance {
    /// Largest difference in minor units still called equal (default zero).
    pub amount_minor: i64,
}

/// Matches each vendor record to an internal order by key, else vendor order id, else reference
/// id, and classifies each key. Totals are over fulfilled business only.
pub fn reconcile(
    orders: &[InternalOrder],
    records: &[VendorRecord],
    mapping: &StatusMapping,
    tolerance: Tolerance,
) -> Result<Reconciliation, MoneyError> {
    let by_key = index(orders.iter().map(|o| Some(o.vendor_key.as_str())));
    let by_vendor_id = index(orders.iter().map(|o| o.vendor_order_id.as_deref()));
    let by_id = index(orders.iter().map(|o| Some(o.id.as_str())));

    // Each vendor record joins one group: its order's, else its own key's, else its own.
    let mut groups: BTreeMap<Group, BTreeSet<usize>> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        let order = record
            .key
            .as_deref()
            .and_then(|k| by_key.get(k))
            .or_else(|| by_vendor_id.get(record.vendor_order_id.as_str()))
            .or_else(|| record.reference_id.as_deref().and_then(|r| by_id.get(r)))
            .copied();
        let group = match (order, &record.key) {
            (Some(o), _) => Group::Order(o),
            (None, Some(key)) => Group::Key(key.clone()),
            (None, None) => Group::Alone(record.vendor_order_id.clone()),
        };
        groups.entry(group).or_default().insert(i);
    }

    let mut outcomes = Vec::with_capacity(groups.len() + orders.len());
    let mut claimed = vec![false; orders.len()];
    for (group, members) in groups {
        let (order, key) = match group {
            Group::Order(o) => (Some(o), orders[o].vendor_key.clone()),
            Group::Key(key) | Group::Alone(key) => (None, key),
        };
        let members: Vec<usize> = members.into_iter().collect();
        let group_records: Vec<&VendorRecord> = members.iter().map(|&i| &records[i]).collect();
        let class = classify(
            order.map(|o| &orders[o]),
            &group_records,
            mapping,
            tolerance,
        )
        .expect("a group with vendor records always has a class");
        if let Some(o) = order {
            claimed[o] = true;
        }
        outcomes.push(Outcome {
            class,
            key,
            order,
            records: members,
        });
    }
    for (o, order) in orders.iter().enumerate() {
        if claimed[o] {
            continue;
        }
        if let Some(class) = classify(Some(order), &[], mapping, tolerance) {
            outcomes.push(Outcome {
                class,
                key: order.vendor_key.clone(),
                order: Some(o),
                records: Vec::new(),
            });
        }
    }
    outcomes.sort_by(|a, b| (a.class, &a.key).cmp(&(b.class, &b.key)));
    Ok(Reconciliation {
        outcomes,
        totals: totals(orders, records, mapping)?,
    })
}

/// What a vendor record is grouped by: the order it matched, else the key it carries, else
/// nothing (it stands alone). Kept apart so a key never collides with a vendor order id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Order(usize),
    Key(String),
    Alone(String),
}

/// Positions of non-empty values; on repeats the first position wins (orders are unique per
/// vendor key and vendor order id in storage, so repeats do not occur there).
fn index<'a>(values: impl Iterator<Item = Option<&'a str>>) -> BTreeMap<&'a str, usize> {
    let mut map = BTreeMap::new();
    for (i, value) in values.enumerate() {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            map.entry(v).or_insert(i);
        }
    }
    map
}

/// The class of one group: an internal order (if any) and the vendor records that matched it
/// (or, without an order, the records that share one key). `None` when there is nothing to say:
/// no records and an order that failed on our side (absent at the vendor, as it should be), or
/// neither an order nor records.
pub fn classify(
    order: Option<&InternalOrder>,
    records: &[&VendorRecord],
    mapping: &StatusMapping,
    tolerance: Tolerance,
) -> Option<Class> {
    let first = match (order, records.first()) {
        (None, None) => return None,
        (Some(order), None) => {
            return (order.gl_state != GlState::Failed).then_some(Class::InternalOnly)
        }
        (_, Some(first)) => first,
    };
    if records
        .iter()
        .any(|r| r.vendor_order_id != first.vendor_order_id)
    {
        return Some(Class::Duplicate);
    }
    Some(match order {
        None => Class::VendorOnly,
        Some(order) => compare(order, first, mapping, tolerance),
    })
}

/// One order against its one vendor record, in the order of precedence.
fn compare(
    order: &InternalOrder,
    record: &VendorRecord,
    mapping: &StatusMapping,
    tolerance: Tolerance,
) -> Class {
    if order.amount.currency() != record.amount.currency() {
        return Class::CurrencyMismatch;
    }
    let difference =
        i128::from(order.amount.minor_units()) - i128::from(record.amount.minor_units());
    if difference.abs() > i128::from(tolerance.amount_minor.max(0)) {
        return Class::AmountMismatch;
    }
    match mapping.gl_state_for(&record.status) {
        None => Class::UnmappedStatus,
        Some(state) if state != order.gl_state => Class::StatusMismatch,
        Some(_) => Class::Matched,
    }
}

/// Daily totals per currency, accumulated one order or record at a time (so a caller can stream
/// a day through it). Only fulfilled business counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals(BTreeMap<Currency, CurrencyTotals>);

impl Totals {
    pub fn add_order(&mut self, order: &InternalOrder) -> Result<(), MoneyError> {
        if order.gl_state == GlState::Fulfilled {
            let side = &mut self.entry(order.amount.currency()).internal;
            side.count += 1;
            side.amount = side.amount.checked_add(order.amount)?;
        }
        Ok(())
    }

    pub fn add_record(
        &mut self,
        record: &VendorRecord,
        mapping: &StatusMapping,
    ) -> Result<(), MoneyError> {
        if mapping.gl_state_for(&record.status) == Some(GlState::Fulfilled) {
            let side = &mut self.entry(record.amount.currency()).vendor;
            side.count += 1;
            side.amount = side.amount.checked_add(record.amount)?;
        }
        Ok(())
    }

    /// `count` orders in `state` that each agree exactly with their one vendor record (same
    /// currency, amount and GL state), `amount` in all: they count alike on both sides.
    pub fn add_agreed(
        &mut self,
        state: GlState,
        count: u64,
        amount: Money,
    ) -> Result<(), MoneyError> {
        if state == GlState::Fulfilled && count > 0 {
            let totals = self.entry(amount.currency());
            for side in [&mut totals.internal, &mut totals.vendor] {
                side.count += count;
                side.amount = side.amount.checked_add(amount)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, currency: Currency) -> &mut CurrencyTotals {
        self.0
            .entry(currency)
            .or_insert_with(|| CurrencyTotals::zero(currency))
    }

    pub fn into_map(self) -> BTreeMap<Currency, CurrencyTotals> {
        self.0
    }
}

fn totals(
    orders: &[InternalOrder],
    records: &[VendorRecord],
    mapping: &StatusMapping,
) -> Result<BTreeMap<Currency, CurrencyTotals>, MoneyError> {
    let mut totals = Totals::default();
    for order in orders {
        totals.add_order(order)?;
    }
    for record in records {
        totals.add_record(record, mapping)?;
    }
    Ok(totals.into_map())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::USD)
    }

    fn order(n: u32, minor: i64, gl: GlState) -> InternalOrder {
        InternalOrder {
            id: format!("ord_{n}"),
            vendor_key: format!("k{n}"),
            vendor_order_id: None,
            amount: usd(minor),
            gl_state: gl,
        }
    }

    fn record(vendor_id: &str, key: Option<&str>, amount: Money, status: &str) -> VendorRecord {
        VendorRecord {
            vendor_order_id: vendor_id.into(),
            key: key.map(str::to_string),
            reference_id: None,
            amount,
            status: status.into(),
        }
    }

    fn classes(r: &Reconciliation) -> Vec<(Class, String)> {
        r.outcomes
            .iter()
            .map(|o| (o.class, o.key.clone()))
            .collect()
    }

    fn run(orders: &[InternalOrder], records: &[VendorRecord]) -> Reconciliation {
        reconcile(
            orders,
            records,
            &StatusMapping::generic_default(),
            Tolerance::default(),
        )
        .unwrap()
    }

    #[test]
    fn agreed_orders_count_as_each_order_and_record_would() {
        let mapping = StatusMapping::generic_default();
        for (state, status) in [
            (GlState::Fulfilled, "Completed"),
            (GlState::Pending, "pending"),
        ] {
            let orders = [order(1, 5000, state), order(2, 1250, state)];
            let mut one_by_one = Totals::default();
            for o in &orders {
                one_by_one.add_order(o).unwrap();
                one_by_one
                    .add_record(
                        &record("v", Some(&o.vendor_key), o.amount, status),
                        &mapping,
                    )
                    .unwrap();
            }
            let mut agreed = Totals::default();
            agreed.add_agreed(state, 2, usd(6250)).unwrap();
            assert_eq!(agreed, one_by_one, "{state:?}");
        }
        let mut full = Totals::default();
        full.add_agreed(GlState::Fulfilled, 1, usd(i64::MAX))
            .unwrap();
        assert!(full.add_agreed(GlState::Fulfilled, 1, usd(1)).is_err());
    }

    #[test]
    fn each_class_in_its_order_of_precedence() {
        use GlState::*;
        let orders = vec![
            order(1, 5000, Fulfilled),
            order(2, 5000, Fulfilled),
            order(3, 5000, Fulfilled),
            order(4, 5000, Fulfilled),
            order(5, 5000, Pending),
            order(6, 5000, Fulfilled),
            order(7, 5000, Failed),
            order(8, 5000, Fulfilled),
        ];
        let records = vec![
            record("v1", Some("k1"), usd(5000), "Completed"),
            // currency wins over amount and status
            record(
                "v2",
                Some("k2"),
                Money::from_minor(4000, Currency::EUR),
                "weird",
            ),
            record("v3", Some("k3"), usd(4999), "shipped"),
            record("v4", Some("k4"), usd(5000), "shipped"),
            record("v5", Some("k5"), usd(5000), "delivered"),
            record("v6a", Some("k6"), usd(5000), "fulfilled"),
            record("v6b", Some("k6"), usd(5000), "fulfilled"),
            record("v9", Some("k9"), usd(100), "fulfilled"),
        ];
        let r = run(&orders, &records);
        assert_eq!(
            classes(&r),
            vec![
                (Class::Matched, "k1".into()),
                (Class::AmountMismatch, "k3".into()),
                (Class::CurrencyMismatch, "k2".into()),
                (Class::StatusMismatch, "k5".into()),
                (Class::UnmappedStatus, "k4".into()),
                (Class::VendorOnly, "k9".into()),
                (Class::InternalOnly, "k8".into()),
                (Class::Duplicate, "k6".into()),
            ]
        );
        // The failed order absent at the vendor agrees: no outcome at all.
        assert!(r.outcomes.iter().all(|o| o.order != Some(6)));
        assert_eq!(
            r.count(Class::Duplicate),
            1,
            "one duplicate per key, not per record"
        );
    }

    #[test]
    fn falls_back_to_vendor_order_id_then_reference() {
        let mut by_id = order(1, 500, GlState::Fulfilled);
        by_id.vendor_order_id = Some("V-1".into());
        let by_reference = order(2, 700, GlState::Fulfilled);
        let mut echoed = record("V-2", None, usd(700), "fulfilled");
        echoed.reference_id = Some("ord_2".into());
        let r = run(
            &[by_id, by_reference],
            &[record("V-1", None, usd(500), "fulfilled"), echoed],
        );
        assert_eq!(r.count(Class::Matched), 2, "{:?}", r.outcomes);
    }

    #[test]
    fn a_key_never_collides_with_a_vendor_order_id() {
        let r = run(
            &[],
            &[
                record("X", None, usd(100), "fulfilled"),
                record("Y", Some("X"), usd(100), "fulfilled"),
            ],
        );
        assert_eq!(r.count(Class::VendorOnly), 2, "{:?}", r.outcomes);
    }

    #[test]
    fn tolerance_allows_small_differences() {
        let orders = [order(1, 5000, GlState::Fulfilled)];
        let records = [record("v1", Some("k1"), usd(5002), "fulfilled")];
        let strict = run(&orders, &records);
        assert_eq!(strict.count(Class::AmountMismatch), 1);
        let lenient = reconcile(
            &orders,
            &records,
            &StatusMapping::generic_default(),
            Tolerance { amount_minor: 2 },
        )
        .unwrap();
        assert_eq!(lenient.count(Class::Matched), 1);
    }

    #[test]
    fn totals_count_fulfilled_business_per_currency() {
        let mut yen = order(3, 1000, GlState::Fulfilled);
        yen.amount = Money::from_minor(1000, Currency::JPY);
        let orders = vec![
            order(1, 5000, GlState::Fulfilled),
            order(2, 2500, GlState::Pending),
            yen,
        ];
        let records = vec![
            record("v1", Some("k1"), usd(5000), "completed"),
            record("v2", Some("k2"), usd(2500), "fulfilled"),
        ];
        let r = run(&orders, &records);
        let usd_totals = r.totals[&Currency::USD];
        assert_eq!(
            (usd_totals.internal.count, usd_totals.internal.amount),
            (1, usd(5000))
        );
        assert_eq!(
            (usd_totals.vendor.count, usd_totals.vendor.amount),
            (2, usd(7500))
        );
        assert_eq!(usd_totals.variance().unwrap(), usd(2500));
        let jpy = r.totals[&Currency::JPY];
        assert_eq!((jpy.internal.count, jpy.vendor.count), (1, 0));
    }

    fn arbitrary_case() -> impl Strategy<Value = (Vec<InternalOrder>, Vec<VendorRecord>)> {
        let statuses = [
            "pending",
            "fulfilled",
            "Completed",
            "failed",
            "refunded",
            "shipped",
        ];
        let orders =
            proptest::collection::vec((0u32..40, 1i64..5, 0usize..4), 0..25).prop_map(|rows| {
                let mut seen = BTreeSet::new();
                rows.into_iter()
                    .filter(|(n, _, _)| seen.insert(*n))
                    .map(|(n, amount, gl)| order(n, amount * 100, GlState::ALL[gl]))
                    .collect::<Vec<_>>()
            });
        let records = proptest::collection::vec(
            (
                0u32..60,
                proptest::option::of(0u32..45),
                1i64..5,
                0usize..6,
                proptest::bool::ANY,
            ),
            0..30,
        )
        .prop_map(move |rows| {
            let mut seen = BTreeSet::new();
            rows.into_iter()
                .filter(|(id, ..)| seen.insert(*id))
                .map(|(id, key, amount, status, euro)| {
                    let currency = if euro { Currency::EUR } else { Currency::USD };
                    VendorRecord {
                        vendor_order_id: format!("v{id}"),
                        key: key.map(|k| format!("k{k}")),
                        reference_id: None,
                        amount: Money::from_minor(amount * 100, currency),
                        status: statuses[status].into(),
                    }
                })
                .collect::<Vec<_>>()
        });
        (orders, records)
    }

    fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
        let mut out = items.to_vec();
        let mut state = seed | 1;
        for i in (1..out.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.swap(i, (state % (i as u64 + 1)) as usize);
        }
        out
    }

    /// The outcome in terms of ids, independent of input positions.
    fn described(
        r: &Reconciliation,
        orders: &[InternalOrder],
        records: &[VendorRecord],
    ) -> Vec<(Class, String, Option<String>, Vec<String>)> {
        let mut out: Vec<_> = r
            .outcomes
            .iter()
            .map(|o| {
                let mut ids: Vec<String> = o
                    .records
                    .iter()
                    .map(|&i| records[i].vendor_order_id.clone())
                    .collect();
                ids.sort();
                (
                    o.class,
                    o.key.clone(),
                    o.order.map(|i| orders[i].id.clone()),
                    ids,
                )
            })
            .collect();
        out.sort();
        out
    }

    proptest! {
        #[test]
        fn every_record_lands_in_exactly_one_outcome((orders, records) in arbitrary_case()) {
            let r = run(&orders, &records);
            let mut seen = vec![0; records.len()];
            for o in &r.outcomes {
                for &i in &o.records {
                    seen[i] += 1;
                }
            }
            prop_assert!(seen.iter().all(|&n| n == 1), "{:?}", seen);
            let mut orders_seen = vec![0; orders.len()];
            for o in r.outcomes.iter().filter_map(|o| o.order) {
                orders_seen[o] += 1;
            }
            for (i, n) in orders_seen.iter().enumerate() {
                prop_assert!(*n <= 1);
                // Only a failed order absent at the vendor is in no outcome.
                if *n == 0 {
                    prop_assert_eq!(orders[i].gl_state, GlState::Failed);
                }
            }
        }

        #[test]
        fn input_order_changes_nothing((orders, records) in arbitrary_case(), seed in any::<u64>()) {
            let a = run(&orders, &records);
            let (o2, r2) = (shuffled(&orders, seed), shuffled(&records, seed.rotate_left(7)));
            let b = run(&o2, &r2);
            prop_assert_eq!(described(&a, &orders, &records), described(&b, &o2, &r2));
            prop_assert_eq!(a.totals, b.totals);
        }

        #[test]
        fn rerunning_gives_the_same_result((orders, records) in arbitrary_case()) {
            prop_assert_eq!(run(&orders, &records), run(&orders, &records));
        }

        #[test]
        fn totals_are_conserved((orders, records) in arbitrary_case()) {
            let r = run(&orders, &records);
            let mapping = StatusMapping::generic_default();
            for (currency, t) in &r.totals {
                let vendor_sum: i64 = records.iter()
                    .filter(|x| x.amount.currency() == *currency && mapping.gl_state_for(&x.status) == Some(GlState::Fulfilled))
                    .map(|x| x.amount.minor_units()).sum();
                let internal_sum: i64 = orders.iter()
                    .filter(|x| x.amount.currency() == *currency && x.gl_state == GlState::Fulfilled)
                    .map(|x| x.amount.minor_units()).sum();
                prop_assert_eq!(t.vendor.amount.minor_units(), vendor_sum);
                prop_assert_eq!(t.internal.amount.minor_units(), internal_sum);
                prop_assert_eq!(t.variance().unwrap().minor_units(), vendor_sum - internal_sum);
            }
        }
    }
}
