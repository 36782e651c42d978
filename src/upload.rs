//! Request bodies kept as files: uploads are streamed to a temporary file (never held in
//! memory) before an importer reads them, twice.

use axum::body::Body;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// Largest file accepted from the browser or the API (a million rows is about 150 MB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Why a body could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    #[error("the upload was interrupted: {0}")]
    Read(String),
    #[error("cannot store the upload: {0}")]
    Io(#[from] std::io::Error),
}

/// Streams a request body to a temporary file, at most `max` bytes; the file is removed when the
/// returned handle drops.
pub async fn spool(body: Body, max: u64) -> Result<tempfile::NamedTempFile, SpoolError> {
    let spool = tempfile::NamedTempFile::new()?;
    let mut file = tokio::fs::File::from_std(spool.reopen()?);
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| SpoolError::Read(e.to_string()))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(SpoolError::TooLarge);
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(spool)
}
