//! What importing a file answers when it will not: the file as a whole is unusable, or some of
//! its lines are (each named, the first 100), and nothing was stored. Shared by the vendor-file
//! and orders importers, so the CLI, the API and the dashboard's uploads report them alike.

use app::storage::StorageError;

pub use crate::vendor_file::LineError;

/// Why a file was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole or some of its rows are unusable; nothing was stored.
    #[error("{file}: {}", describe(.reason, .lines, *.bad_rows))]
    Refused {
        file: String,
        reason: Option<String>,
        lines: Vec<LineError>,
        bad_rows: u64,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

fn describe(reason: &Option<String>, lines: &[LineError], bad_rows: u64) -> String {
    if let Some(reason) = reason {
        return format!("{reason}; nothing was imported");
    }
    let listed: Vec<String> = lines.iter().map(ToString::to_string).collect();
    let more = bad_rows.saturating_sub(lines.len() as u64);
    let more = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    format!(
        "{bad_rows} invalid row(s), nothing was imported: {}{more}",
        listed.join("; ")
    )
}

impl From<StorageError> for ImportError {
    fn from(e: StorageError) -> Self {
        ImportError::Other(e.into())
    }
}
