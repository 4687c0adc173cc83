//! The command line: one file per subcommand.

pub mod bench;
pub mod check;
pub mod completions;
pub mod docs;
pub mod explain;
pub mod man;
pub mod migrate;
pub mod plan;
pub mod restore;
pub mod scan;
pub mod serve;
pub mod snapshot;
pub mod storage_conf;

use clap::{Parser, Subcommand, ValueEnum};

/// Plans and checks btrfs layouts and containers/storage.conf for Podman hosts.
///
/// Classifies container workloads (an explicit `io.podfs.class` first, evidence second),
/// chooses the storage driver and a btrfs subvolume layout with the right copy-on-write
/// and compression attributes, and writes a disko.nix, a storage.conf, a NixOS snippet
/// and a PLAN.md that explains every decision.
#[derive(Debug, Parser)]
#[command(name = "podman-btrfs-advise", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Log lines on stderr as text or as one JSON object each.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Plan(plan::PlanArgs),
    Scan(scan::ScanArgs),
    Check(check::CheckArgs),
    StorageConf(storage_conf::StorageConfArgs),
    Explain(explain::ExplainArgs),
    Serve(serve::ServeArgs),
    Migrate(migrate::MigrateArgs),
    Snapshot(snapshot::SnapshotArgs),
    Restore(restore::RestoreArgs),
    Bench(bench::BenchArgs),
    /// Regenerate everything generated in a checkout: man pages, shell completions and
    /// README.md's rule and class tables.
    #[command(hide = true)]
    GenerateDocs(docs::DocsArgs),
}

/// Output format of a command's results on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// For people.
    #[default]
    Human,
    /// One JSON document with a stable schema (see `plan --help`).
    Json,
}

/// How log lines on stderr look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// `LEVEL target: message key=value …`.
    #[default]
    Text,
    /// One JSON object a line, fields included.
    Json,
}

/// Runs a parsed command line; the exit code is the caller's business.
pub fn run(cli: Cli) -> Result<u8, crate::error::Error> {
    match cli.command {
        Command::Plan(args) => plan::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Check(args) => check::run(args),
        Command::StorageConf(args) => storage_conf::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Snapshot(args) => snapshot::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Bench(args) => bench::run(args),
        Command::GenerateDocs(args) => docs::run(args),
    }
}

/// A flag set on Ctrl-C (SIGINT) or SIGTERM (what `kill` and systemd send), so a long run
/// stops at its next safe point, cleans up and says how to go on, instead of dying
/// half-way. Both handlers are in place when this returns: an early signal is not lost.
pub fn cancel_on_signal() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let interrupt = tokio::signal::ctrl_c();
            tokio::pin!(interrupt);
            // ctrl_c registers on its first poll; signal() when it is made.
            let _ = futures_util::poll!(&mut interrupt);
            let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
            let _ = ready_tx.send(());
            let name = match terminate {
                Ok(mut term) => tokio::select! {
                    r = &mut interrupt => r.ok().map(|_| "Ctrl-C"),
                    r = term.recv() => r.map(|_| "SIGTERM"),
                },
                Err(_) => interrupt.await.ok().map(|_| "Ctrl-C"),
            };
            if let Some(name) = name {
                eprintln!("\n{name}: stopping at the next safe point…");
                set.store(true, Ordering::Relaxed);
            }
        });
    });
    let _ = ready_rx.recv_timeout(std::time::Duration::from_secs(2));
    flag
}
