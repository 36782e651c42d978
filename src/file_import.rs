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

/// Starts `read` (an import's reading: it parses and checks each row and hands the good ones
/// to the writing transaction) on a thread of its own at the lowest priority; the future gives
/// its result. The writer is the import's critical path: SQLite's worker thread runs each
/// statement while the importing task binds the next, and the reader, which keeps a few
/// batches ahead, took CPU from both whenever all three were runnable on two cores. At the
/// lowest priority it runs when a core would otherwise wait, and SQLite's thread went from 70%
/// to 81% busy through the rows. A million-order import took 9.21 s against 10.66 s (three
/// alternating pairs of release builds); a vendor file's did not change (6.10 s against
/// 6.12 s). The thread is its own, not one of the runtime's blocking pool, since an
/// unprivileged process cannot raise a thread's priority back.
pub fn spawn_reader<T: Send + 'static>(
    read: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<T>>> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("file-reader".into())
        .spawn(move || {
            lower_this_threads_priority();
            let _ = done.send(read());
        })
        .map_err(|e| anyhow::anyhow!("cannot start the file reader: {e}"))?;
    Ok(async {
        result
            .await
            .map_err(|_| anyhow::anyhow!("the file reader stopped"))
    })
}

fn lower_this_threads_priority() {
    // On Linux a thread id names that one thread to setpriority; elsewhere it would be the
    // whole process, so the reader keeps its priority there. A failure only costs speed.
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on this thread's own id; no memory is shared with them.
    unsafe {
        let lowest = 19;
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, lowest);
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_reader_runs_at_the_lowest_priority_and_gives_its_result() {
        let own = || {
            // SAFETY: a plain query of this thread's own nice value.
            #[cfg(target_os = "linux")]
            unsafe {
                libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t)
            }
            #[cfg(not(target_os = "linux"))]
            0
        };
        let here = own();
        let (name, nice) =
            super::spawn_reader(move || (std::thread::current().name().map(String::from), own()))
                .unwrap()
                .await
                .unwrap();
        assert_eq!(name.as_deref(), Some("file-reader"));
        if cfg!(target_os = "linux") {
            assert_eq!(nice, 19, "the reader's nice value");
        }
        assert_eq!(own(), here, "the caller's priority is its own");
    }

    #[tokio::test]
    async fn a_reader_that_panics_is_reported() {
        let reading = super::spawn_reader(|| -> u32 { panic!("bad reader") }).unwrap();
        let err = reading.await.unwrap_err();
        assert_eq!(err.to_string(), "the file reader stopped");
    }
}
