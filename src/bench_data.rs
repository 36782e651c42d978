//! `giftrecon bench-data`: a realistic day of orders and the vendor's file for it, with about
//! 2.5% discrepancies of every class, for benchmarks and demos. Deterministic for a seed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use app::domain::matching::Class;
use app::domain::{Currency, Money};
use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// (currency, share of orders in per-mille, face values in major units)
const CURRENCIES: [(Currency, u32, &[i64]); 4] = [
    (Currency::USD, 900, &[10, 25, 50, 100]),
    (Currency::EUR, 50, &[15, 30, 75]),
    (Currency::JPY, 30, &[1000, 3000, 5000]),
    (Currency::KWD, 20, &[5, 10, 20]),
];
pub const BRANDS: [&str; 5] = ["amazon-us", "itunes", "google-play", "starbucks", "uber"];

/// What was written, and the class each key should land in.
#[derive(Debug, Default, serde::Serialize)]
pub struct Generated {
    pub orders: u64,
    pub vendor_records: u64,
    pub expected: BTreeMap<&'static str, u64>,
}

/// Writes `orders.csv` (for `giftrecon import orders`), `vendor.csv` (the generic vendor file)
/// and `expected.json` (class counts) into `out`.
pub fn generate(orders: u64, out: &Path, seed: u64, day: NaiveDate) -> anyhow::Result<Generated> {
    generate_named(orders, out, seed, day, "")
}

/// As [`generate`], with `prefix` before every key and vendor order id, so several days'
/// files can live in one database.
pub fn generate_named(
    orders: u64,
    out: &Path,
    seed: u64,
    day: NaiveDate,
    prefix: &str,
) -> anyhow::Result<Generated> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let open = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        let path = out.join(name);
        Ok(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        ))
    };
    let mut internal = open("orders.csv")?;
    let mut vendor = open("vendor.csv")?;
    writeln!(
        internal,
        "idempotency_key,customer_id,brand_id,amount,currency,status,created_at"
    )?;
    writeln!(vendor, "vendor_order_id,idempotency_key,reference_id,brand_id,amount,currency,status,created_at,updated_at")?;

    let mut rng = StdRng::seed_from_u64(seed);
    let mut generated = Generated::default();
    let start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    for i in 0..orders {
        let key = format!("{prefix}bk-{i:08}");
        let at = start + Duration::milliseconds(rng.gen_range(0..86_400_000));
        let stamp = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let mut pick = rng.gen_range(0..1000u32);
        let (currency, _, faces) = CURRENCIES
            .iter()
            .find(|(_, share, _)| {
                let hit = pick < *share;
                pick = pick.saturating_sub(*share);
                hit
            })
            .copied()
            .unwrap_or(CURRENCIES[0]);
        let face = faces[rng.gen_range(0..faces.len())];
        let minor = face * 10_i64.pow(u32::from(currency.exponent()));
        let amount = Money::from_minor(minor, currency);
        let brand = BRANDS[rng.gen_range(0..BRANDS.len())];
        let customer = format!("c-{}", rng.gen_range(0..50_000));
        // About 2.5% of keys get a discrepancy, spread evenly over the seven classes.
        let class = match rng.gen_range(0..1000u32) {
            0..=3 => Class::VendorOnly,
            4..=7 => Class::InternalOnly,
            8..=11 => Class::AmountMismatch,
            12..=14 => Class::CurrencyMismatch,
            15..=18 => Class::StatusMismatch,
            19..=21 => Class::UnmappedStatus,
            22..=24 => Class::Duplicate,
            _ => Class::Matched,
        };
        *generated.expected.entry(class.as_str()).or_default() += 1;
        if class != Class::VendorOnly {
            writeln!(
                internal,
                "{key},{customer},{brand},{},{},fulfilled,{stamp}",
                amount.amount_string(),
                currency.code()
            )?;
            generated.orders += 1;
        }
        if class == Class::InternalOnly {
            continue;
        }
        let (v_amount, v_status) = match class {
            Class::AmountMismatch => (Money::from_minor(minor + 1, currency), "fulfilled"),
            Class::CurrencyMismatch => {
                let other = if currency == Currency::EUR {
                    Currency::USD
                } else {
                    Currency::EUR
                };
                (Money::from_minor(face * 100, other), "fulfilled")
            }
            Class::StatusMismatch => (amount, "refunded"),
            Class::UnmappedStatus => (amount, "on_hold"),
            _ => (
                amount,
                if rng.gen_bool(0.5) {
                    "completed"
                } else {
                    "Fulfilled"
                },
            ),
        };
        let updated =
            (at + Duration::seconds(rng.gen_range(1..120))).format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let copies = if class == Class::Duplicate { 2 } else { 1 };
        for copy in 0..copies {
            writeln!(
                vendor,
                "{prefix}V{i:08}{},{key},,{brand},{},{},{v_status},{stamp},{updated}",
                if copy == 0 { "" } else { "-dup" },
                v_amount.amount_string(),
                v_amount.currency().code(),
            )?;
            generated.vendor_records += 1;
        }
    }
    internal.flush()?;
    vendor.flush()?;
    let mut expected = open("expected.json")?;
    serde_json::to_writer_pretty(&mut expected, &generated)?;
    expected.flush()?;
    Ok(generated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor_file::{read_csv, ColumnMap};
    use app::domain::matching::{reconcile, InternalOrder, Tolerance, VendorRecord};
    use app::domain::{GlState, StatusMapping};

    /// The files, read back through the real vendor-file reader and matched by the real engine,
    /// give exactly the classes the generator meant.
    #[test]
    fn generated_files_reconcile_to_the_expected_classes() {
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let generated = generate(4_000, dir.path(), 42, day).unwrap();
        assert!(
            generated.expected.len() == 8,
            "every class present: {:?}",
            generated.expected
        );

        let mut orders = Vec::new();
        let mut reader = csv::Reader::from_path(dir.path().join("orders.csv")).unwrap();
        for row in reader.records() {
            let row = row.unwrap();
            let currency = Currency::parse(&row[4]).unwrap();
            orders.push(InternalOrder {
                id: format!("ord-{}", &row[0]),
                vendor_key: row[0].to_string(),
                vendor_order_id: None,
                amount: Money::parse(&row[3], currency).unwrap(),
                gl_state: GlState::parse(&row[5]).unwrap(),
            });
        }
        let mut records = Vec::new();
        let file = std::fs::File::open(dir.path().join("vendor.csv")).unwrap();
        read_csv(file, &ColumnMap::default(), |row| {
            let row = row.expect("generated rows are valid");
            records.push(VendorRecord {
                vendor_order_id: row.vendor_order_id,
                key: row.idempotency_key,
                reference_id: row.reference_id,
                amount: row.amount,
                status: row.status,
            });
        })
        .unwrap();
        assert_eq!(orders.len() as u64, generated.orders);
        assert_eq!(records.len() as u64, generated.vendor_records);

        let result = reconcile(
            &orders,
            &records,
            &StatusMapping::generic_default(),
            Tolerance::default(),
        )
        .unwrap();
        for class in Class::ALL {
            let expected = generated.expected.get(class.as_str()).copied().unwrap_or(0);
            assert_eq!(result.count(class) as u64, expected, "{}", class.as_str());
        }
        let discrepancies: u64 = generated
            .expected
            .iter()
            .filter(|(k, _)| **k != "matched")
            .map(|(_, v)| v)
            .sum();
        let share = discrepancies as f64 / 4_000.0;
        assert!(
            (0.015..0.035).contains(&share),
            "about 2.5% discrepancies, got {share}"
        );
    }
}
