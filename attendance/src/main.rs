//! `attendance`: the one binary. Each subcommand is a thin shell over a library crate:
//! argument parsing, wiring, exit codes. No domain logic lives here.

#![allow(clippy::print_stdout)] // a command-line program prints its results

mod bench;
mod cli;
mod demo;
mod events;
mod up;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("attendance: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(71);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("attendance: {e:#}");
            let code = e
                .downcast_ref::<ledger::LedgerError>()
                .map_or(1, ledger::LedgerError::exit_code);
            std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info,async_nats=warn",
        1 => "debug,async_nats=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEDGERCLOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
