//! `giftrecon close …` and the GL account options of `giftrecon vendor set`.

use anyhow::Context;
use app::domain::journal::{
    ExportFormat, GlAccount, DEFAULT_CLEARING_NAME, DEFAULT_PAYABLE_NAME, DEFAULT_SUSPENSE_NAME,
};
use app::domain::VendorId;
use app::storage::journal;
use app::storage::{reconciliation, vendor_admin, Db};

use crate::cli::CloseCommand;

/// The `--clearing-account`, `--payable-account` and `--suspense-account` options, checked.
#[derive(Debug, Default)]
pub struct AccountOptions {
    clearing: Option<GlAccount>,
    payable: Option<GlAccount>,
    suspense: Option<GlAccount>,
}

impl AccountOptions {
    /// Each option is `CODE` or `CODE:NAME`; without a name the account keeps its default name.
    pub fn parse(
        clearing: Option<String>,
        payable: Option<String>,
        suspense: Option<String>,
    ) -> anyhow::Result<AccountOptions> {
        let parse = |value: Option<String>, option: &str, default_name: &str| {
            value
                .map(|v| GlAccount::parse_setting(&v, default_name))
                .transpose()
                .with_context(|| format!("--{option}"))
        };
        Ok(AccountOptions {
            clearing: parse(clearing, "clearing-account", DEFAULT_CLEARING_NAME)?,
            payable: parse(payable, "payable-account", DEFAULT_PAYABLE_NAME)?,
            suspense: parse(suspense, "suspense-account", DEFAULT_SUSPENSE_NAME)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.clearing.is_none() && self.payable.is_none() && self.suspense.is_none()
    }
}

/// Sets a vendor's GL accounts; the change and its audit row (with before and after) commit
/// together.
pub async fn set_accounts(
    db: &Db,
    vendor: &VendorId,
    options: AccountOptions,
    actor: &str,
) -> anyhow::Result<()> {
    let edit = vendor_admin::AccountsEdit {
        clearing: options.clearing,
        payable: options.payable,
        suspense: options.suspense,
    };
    let (after, _) = vendor_admin::set_accounts(db, vendor, &edit, actor).await?;
    println!(
        "vendor {vendor} GL accounts: clearing {}, payable {}, suspense {}",
        after.clearing, after.payable, after.suspense
    );
    Ok(())
}

pub async fn run(db: &Db, command: CloseCommand, actor: &str) -> anyhow::Result<()> {
    match command {
        CloseCommand::Show { vendor, date } => show(db, &vendor, date).await,
        CloseCommand::Export {
            vendor,
            date,
            format,
            out,
        } => {
            let vendor = VendorId::parse(&vendor).context("--vendor")?;
            let format = ExportFormat::parse(&format).context("--format")?;
            let text = journal::export_day(db, &vendor, date, format, actor).await?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("wrote {} ({} bytes)", path.display(), text.len());
                }
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

async fn show(db: &Db, vendor: &str, date: chrono::NaiveDate) -> anyhow::Result<()> {
    let vendor = VendorId::parse(vendor).context("--vendor")?;
    app::storage::vendors::get_vendor(db, &vendor).await?;
    let locked = journal::is_locked(db, vendor.as_str(), date).await?;
    println!(
        "vendor {vendor}, {date}: {}",
        if locked {
            "closed (every entry posted)"
        } else {
            "open"
        }
    );
    match reconciliation::day_totals(db, vendor.as_str(), date).await? {
        None => println!("not reconciled yet: reconcile vendor {vendor} for {date} first"),
        Some(totals) => {
            println!(
                "{:<8} {:>8} {:>18} {:>8} {:>18} {:>18}",
                "CURRENCY", "OURS", "OUR AMOUNT", "VENDOR", "VENDOR AMOUNT", "VARIANCE"
            );
            for (currency, t) in totals {
                let variance = t.variance().map(|v| v.amount_string())?;
                println!(
                    "{:<8} {:>8} {:>18} {:>8} {:>18} {:>18}",
                    currency.code(),
                    t.internal.count,
                    t.internal.amount.amount_string(),
                    t.vendor.count,
                    t.vendor.amount.amount_string(),
                    variance
                );
            }
        }
    }
    let entries = journal::list_day(db, vendor.as_str(), date).await?;
    if entries.is_empty() {
        println!("no journal entries yet: propose the close in the dashboard");
        return Ok(());
    }
    for entry in entries {
        println!();
        println!(
            "entry {} ({}) {} {}: {}",
            entry.id,
            entry.journal_no(),
            entry.currency,
            entry.state,
            entry.memo
        );
        println!(
            "  prepared by {}{}{}{}",
            entry.prepared_by,
            entry
                .submitted_by
                .as_ref()
                .map(|u| format!(", submitted by {u}"))
                .unwrap_or_default(),
            entry
                .approved_by
                .as_ref()
                .map(|u| format!(", approved by {u}"))
                .unwrap_or_default(),
            entry
                .posted_by
                .as_ref()
                .map(|u| format!(", posted by {u}"))
                .unwrap_or_default(),
        );
        for line in &entry.lines {
            let amount = line.amount.amount_string();
            let (debit, credit) = match line.side {
                app::domain::journal::Side::Debit => (amount, String::new()),
                app::domain::journal::Side::Credit => (String::new(), amount),
            };
            println!(
                "  {:<10} {:<28} {:>16} {:>16}",
                line.account.code(),
                line.account.name(),
                debit,
                credit
            );
        }
    }
    Ok(())
}
