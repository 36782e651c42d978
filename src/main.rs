use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc for the process's own allocations. An import hands every
/// row from the thread that reads the file to the one that binds it and on to SQLite's worker
/// thread, which frees it: glibc's malloc and free took about a quarter of all three threads'
/// time under `perf`, cross-thread frees included. Measured at a million orders (see README,
/// Performance). SQLite keeps its own allocator (glibc's): with mimalloc under it too, its page
/// cache's 16 KiB pages round up to a larger size class and a reconciliation's peak RSS rose
/// from 217 to 289 MB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc keeps freed memory from the OS for a second (`purge_delay`), so a 1M-order import
/// peaked at 250 MB against 199 MB returning it at once, at no measurable cost in time.
fn return_freed_memory_at_once() {
    // `mi_option_purge_delay` in mimalloc.h (v2 and v3); libmimalloc-sys names only some options.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one of mimalloc's process-wide options, which any thread may do at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
}

fn main() -> ExitCode {
    return_freed_memory_at_once();
    let cli = giftrecon::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return fail(&anyhow::anyhow!("cannot start the async runtime: {err}")),
    };
    match runtime.block_on(giftrecon::commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// One line naming the problem, never a backtrace: operators read this in a terminal or a log.
fn fail(err: &anyhow::Error) -> ExitCode {
    let line = format!("{err:#}").replace('\n', " ");
    eprintln!("error: {line}");
    ExitCode::FAILURE
}
