use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
