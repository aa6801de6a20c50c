//! `attendance`: the one binary. Each subcommand is a thin shell over a library crate:
//! argument parsing, wiring, exit codes. No domain logic lives here.

#![allow(clippy::print_stdout)] // a command-line program prints its results

mod admin;
mod bench;
mod bench_abuse;
mod bench_polls;
mod bench_projections;
mod bench_replay;
mod cli;
mod command_cli;
mod demo;
mod events;
mod projections_cmd;
mod replay;
mod report;
mod requests_cmd;
mod rules_cmd;
mod schedule_cmd;
mod serve;
mod simulate;
mod up;

use clap::Parser;

/// sled rewrites a whole leaf on every insert, and a fold allocates a report per day:
/// glibc's allocator spent a fifth of a rebuild zeroing pages it had just given back.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        // `attendance replay ... | head`: the reader has what it wanted.
        Err(e) if closed_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("attendance: {e:#}");
            let code = exit_code(&e);
            std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

/// Whether `e` is a write to a pipe whose reader has gone (`replay ... | head`).
fn closed_pipe(e: &anyhow::Error) -> bool {
    use projections::render::RenderError;
    let kind_of_csv = |e: &csv::Error| match e.kind() {
        csv::ErrorKind::Io(io) => Some(io.kind()),
        _ => None,
    };
    e.chain().any(|cause| {
        let kind = if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            Some(io.kind())
        } else if let Some(csv) = cause.downcast_ref::<csv::Error>() {
            kind_of_csv(csv)
        } else if let Some(json) = cause.downcast_ref::<serde_json::Error>() {
            json.io_error_kind()
        } else {
            match cause.downcast_ref::<RenderError>() {
                Some(RenderError::Io(io)) => Some(io.kind()),
                Some(RenderError::Json(json)) => json.io_error_kind(),
                Some(RenderError::Csv(csv)) => kind_of_csv(csv),
                None => None,
            }
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// sysexits.h codes: 65 refused input, 69 unavailable, 75 conflict (try again), 78 setup.
fn exit_code(e: &anyhow::Error) -> i32 {
    if let Some(e) = e.downcast_ref::<ledger::LedgerError>() {
        return e.exit_code();
    }
    if let Some(e) = e.downcast_ref::<report::ServiceError>() {
        return e.exit_code();
    }
    if e.downcast_ref::<rules_cmd::BadArgument>().is_some() {
        return 65;
    }
    match e.downcast_ref::<commands::CommandError>() {
        Some(commands::CommandError::Refused(_)) => return 65,
        Some(commands::CommandError::Contended) => return 75,
        Some(commands::CommandError::Ledger(e)) => return e.exit_code(),
        None => {}
    }
    1
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info,async_nats=warn",
        1 => "debug,async_nats=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEDGERCLOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal: logs written to files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
