use clap::Parser;
use podfs::cli::{self, Cli, Command, LogFormat};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Exit status of a tool whose reader went away (`… | head`): what a shell shows for one
/// ended by SIGPIPE.
const READER_GONE: i32 = 128 + 13;

fn main() -> ExitCode {
    end_quietly_when_the_reader_goes_away();
    let cli = Cli::parse();
    // The daemon's findings and volume operations, and a migration's progress, are their
    // output: show them by default.
    let base = u8::from(matches!(cli.command, Command::Serve(_) | Command::Migrate(_)));
    let level = match cli.verbose.saturating_add(base) {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Rust ignores SIGPIPE, so printing to a closed pipe panics. A reader that stops early is
/// no error of ours: end at once and quietly, as tools ended by SIGPIPE do.
fn end_quietly_when_the_reader_goes_away() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        if message.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("os error 32")) {
            std::process::exit(READER_GONE);
        }
        default(info);
    }));
}
