//! `check`: validate a disko.nix and a storage.conf against each other and the real rules
//! of btrfs and Podman.

use super::Format;
use crate::error::{Error, exit};
use crate::validate::diagnostic::{Severity, render_human};
use crate::validate::source::SourceFile;
use crate::validate::{self, Inputs, containers_conf, disko, storage_conf};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Check a disko.nix and a containers/storage.conf against each other and against the
/// rules of btrfs and Podman.
///
/// Either file alone is checked as far as it can be. disko.nix is evaluated with
/// nix-instantiate when it is installed (literal and function-style configs, let
/// bindings, NixOS modules: only `disko.devices` and `fileSystems.*.neededForBoot` are
/// evaluated); without Nix, literal attribute sets are read statically and the output
/// says so. A function gets `lib` (a stand-in), `pkgs = { }`, `config = { }` and what
/// --arg/--argstr give; when it requires an argument nobody gave, the file is read
/// statically and the output names the argument. The summary says how many btrfs
/// filesystems and subvolumes were analysed and what was skipped and why; a file with no
/// disko configuration is an error (exit 2), never a clean pass. Every finding has a rule
/// code; `podman-btrfs-advise explain CODE` says what it checks, why it matters and how
/// to fix it. With --live the disko file is also compared with the running host: mounts,
/// the filesystem-wide options in force, and the NOCOW flag and compression property of
/// each mounted subvolume.
#[derive(Debug, Args)]
#[command(after_long_help = LONG_HELP)]
pub struct CheckArgs {
    /// The disko configuration to check.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["storage_conf", "host_storage", "config_root"])]
    pub disko: Option<PathBuf>,

    /// The containers/storage.conf to check.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["host_storage", "config_root"])]
    pub storage_conf: Option<PathBuf>,

    /// Check every storage.conf file Podman reads here for you: the one file before
    /// Podman 6; from 6 the main file, its drop-ins and CONTAINERS_STORAGE_CONF_OVERRIDE
    /// (see `storage-conf --help`). Each file is checked on its own.
    #[arg(long)]
    pub host_storage: bool,

    /// Like --host-storage, with /etc/containers and /usr/share/containers read below DIR.
    #[arg(long, value_name = "DIR")]
    pub config_root: Option<PathBuf>,

    /// The Podman version whose file rules apply with --host-storage or --config-root
    /// (default: `podman --version`; before 6 when unknown).
    #[arg(long, value_name = "X.Y")]
    pub podman_version: Option<String>,

    /// containers.conf, for `volume_path`.
    #[arg(long, value_name = "FILE")]
    pub containers_conf: Option<PathBuf>,

    /// Also compare the disko file with this host's mounts and subvolume attributes.
    #[arg(long, requires = "disko")]
    pub live: bool,

    /// Read disko.nix statically even when nix-instantiate is installed.
    #[arg(long)]
    pub no_eval: bool,

    /// Pass the Nix expression EXPR as argument NAME to a function-style disko.nix, as
    /// disko's own CLI does (e.g. `--arg disks '[ "/dev/sda" ]'`). Repeatable.
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"], action = clap::ArgAction::Append, requires = "disko")]
    pub nix_arg: Vec<String>,

    /// Pass the string VALUE as argument NAME to a function-style disko.nix (e.g.
    /// `--argstr disk /dev/nvme0n1`). Repeatable.
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append, requires = "disko")]
    pub nix_argstr: Vec<String>,

    /// Where the disko configuration is in the file's value, as a dotted attribute path
    /// (e.g. `flake.diskoConfigurations.host`); by default the file's value itself.
    #[arg(long, value_name = "PATH", requires = "disko")]
    pub attr: Option<String>,

    /// Fail (exit 1) on warnings too, not only on errors.
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub deny: Option<Deny>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Deny {
    /// Warnings fail the check like errors.
    Warnings,
}

const LONG_HELP: &str = "JSON output (--format json), fields are only ever added:
  {\"diagnostics\": [{\"code\", \"severity\", \"message\", \"file\", \"line\", \"column\", \"help\"}],
   \"summary\": {\"errors\", \"warnings\", \"infos\", \"evaluated\", \"analysed\": {\"btrfs\",
   \"subvolumes\", \"other_filesystems\"}, \"skipped\": [{\"path\", \"reason\"}],
   \"missing_arguments\": [NAME], \"unevaluated\": [PATH]}}
  file is null and line/column 0 for findings about the live host; evaluated is whether
  disko.nix was evaluated by Nix (null without --disko; analysed, skipped, missing_arguments
  and unevaluated are then null too). On exit 2 or 3 stdout still holds a document:
  {\"diagnostics\": [], \"error\": {\"exit\", \"message\", \"file\", \"line\", \"column\", \"help\"}}.

Exit codes: 0 nothing at or above the failing severity; 1 an error (or, with --deny
warnings, a warning) was found; 2 a file is malformed, holds no disko configuration, or
usage is wrong; 3 a file cannot be read or Nix is missing where needed.

Rules: podman-btrfs-advise explain --list";

pub fn run(args: CheckArgs) -> Result<u8, Error> {
    let result = run_checks(&args);
    if let (Err(e), Format::Json) = (&result, args.format) {
        println!("{}", serde_json::to_string_pretty(&error_document(e)).expect("plain data serializes"));
    }
    result
}

/// The JSON document for a check that could not run: the same shape, no findings, and
/// the error that stopped it.
fn error_document(e: &Error) -> serde_json::Value {
    let (file, line, column, message, help) = match e {
        Error::Input(i) => (Some(i.file.clone()), i.line, i.column, i.message.clone(), i.help.clone()),
        other => (None, 0, 0, other.to_string().trim_start_matches("error: ").to_string(), None),
    };
    serde_json::json!({
        "diagnostics": [],
        "error": {"exit": e.exit_code(), "message": message, "file": file, "line": line, "column": column, "help": help},
    })
}

/// The disko loading options the flags ask for.
fn load_options(args: &CheckArgs) -> disko::LoadOptions {
    let pairs = |v: &[String]| -> Vec<(String, String)> {
        v.chunks(2).filter_map(|c| Some((c.first()?.clone(), c.get(1)?.clone()))).collect()
    };
    let mut nix_args: Vec<(String, disko::NixArg)> =
        pairs(&args.nix_arg).into_iter().map(|(n, v)| (n, disko::NixArg::Expr(v))).collect();
    nix_args.extend(pairs(&args.nix_argstr).into_iter().map(|(n, v)| (n, disko::NixArg::Str(v))));
    disko::LoadOptions {
        mode: if args.no_eval { disko::NixMode::Static } else { disko::NixMode::Auto },
        args: nix_args,
        attr: args
            .attr
            .as_deref()
            .map(|a| a.split('.').filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default(),
    }
}

fn run_checks(args: &CheckArgs) -> Result<u8, Error> {
    let options = load_options(args);
    let disko = args.disko.as_deref().map(|p| disko::load_with(p, &options)).transpose()?;
    let storage_files = match (&args.storage_conf, args.host_storage || args.config_root.is_some()) {
        (Some(p), _) => vec![storage_conf::load(p)?],
        (None, true) => host_storage_files(args)?,
        (None, false) => Vec::new(),
    };
    let containers = args.containers_conf.as_deref().map(containers_conf::load).transpose()?;
    let live = match (&disko, args.live) {
        (Some(d), true) => {
            let text = std::fs::read_to_string("/proc/self/mountinfo")
                .map_err(|e| Error::io("/proc/self/mountinfo", "read", e))?;
            Some(validate::live::gather(&d.layout, &text))
        }
        _ => None,
    };
    let evaluated = disko.as_ref().map(|d| d.evaluated);
    let mut inputs = Inputs { disko, storage: None, containers, live };
    let diagnostics = check_each(&mut inputs, &storage_files);
    let count = |s: Severity| diagnostics.iter().filter(|d| d.severity == s).count();
    let (errors, warnings, infos) = (count(Severity::Error), count(Severity::Warning), count(Severity::Info));

    match args.format {
        Format::Human => {
            let sources: Vec<&SourceFile> =
                [inputs.disko.as_ref().map(|d| &d.source), inputs.containers.as_ref().map(|c| &c.source)]
                    .into_iter()
                    .flatten()
                    .chain(storage_files.iter().map(|s| &s.source))
                    .collect();
            for d in &diagnostics {
                println!("{}", render_human(d, &sources));
            }
            if let Some(d) = &inputs.disko {
                for line in disko_notes(d, args.no_eval) {
                    println!("note: {line}");
                }
            }
            if args.host_storage || args.config_root.is_some() {
                match storage_files.len() {
                    0 => println!("note: Podman reads no storage.conf here; its built-in defaults apply"),
                    _ => {
                        let names: Vec<&str> = storage_files.iter().map(|f| f.source.path.as_str()).collect();
                        println!("note: storage.conf files checked, in reading order: {}", names.join(", "));
                    }
                }
            }
            println!("{errors} error(s), {warnings} warning(s), {infos} info(s)");
        }
        Format::Json => {
            let d = inputs.disko.as_ref();
            let value = serde_json::json!({
                "diagnostics": diagnostics,
                "summary": {
                    "errors": errors, "warnings": warnings, "infos": infos, "evaluated": evaluated,
                    "analysed": d.map(|d| d.coverage()),
                    "skipped": d.map(|d| d.skipped.iter().map(|(p, r)| serde_json::json!({"path": p.join("."), "reason": r})).collect::<Vec<_>>()),
                    "missing_arguments": d.map(|d| d.missing_args.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()),
                    "unevaluated": d.map(|d| d.unevaluated.iter().map(|p| p.join(".")).collect::<Vec<_>>()),
                },
            });
            println!("{}", serde_json::to_string_pretty(&value).expect("plain data serializes"));
        }
    }
    let failing = errors > 0 || (args.deny == Some(Deny::Warnings) && warnings > 0);
    Ok(if failing { exit::FINDINGS } else { exit::OK })
}

/// What the human output says about a loaded disko file: how it was read, what was
/// analysed, what was skipped and why.
fn disko_notes(d: &disko::DiskoFile, no_eval: bool) -> Vec<String> {
    let name = &d.source.path;
    let mut notes = Vec::new();
    if !d.missing_args.is_empty() {
        let (line, column) = d.source.position(d.missing_args[0].1);
        let names: Vec<String> = d.missing_args.iter().map(|(n, _)| format!("`{n}`")).collect();
        notes.push(format!(
            "{name}:{line}:{column}: the function requires {} and nobody gave {}: the file was read without \
             evaluation, so findings about values computed from {} may be missing; pass {} with --arg NAME EXPR \
             or --argstr NAME VALUE",
            names.join(", "),
            if names.len() == 1 { "it" } else { "them" },
            if names.len() == 1 { "it" } else { "them" },
            if names.len() == 1 { "it" } else { "them" },
        ));
    } else if !d.evaluated {
        notes.push(format!(
            "{name} was read without evaluation (nix-instantiate {}): only literal attribute sets are seen",
            if no_eval { "skipped with --no-eval" } else { "not found" }
        ));
    }
    for p in &d.unevaluated {
        notes.push(format!(
            "`{}` could not be evaluated (it throws, e.g. a required argument's default): it reads as absent; \
             give the argument with --arg/--argstr",
            p.join(".")
        ));
    }
    let c = d.coverage();
    notes.push(format!(
        "analysed {} btrfs filesystem(s) with {} subvolume(s), and the mountpoints of {} other filesystem(s)",
        c.btrfs, c.subvolumes, c.other_filesystems
    ));
    for (path, reason) in &d.skipped {
        notes.push(format!("skipped `{}`: {reason}", path.join(".")));
    }
    notes
}

/// The storage.conf files containers/storage reads for the caller, in reading order.
fn host_storage_files(args: &CheckArgs) -> Result<Vec<storage_conf::StorageConfFile>, Error> {
    use crate::conf::resolve;
    let caller = resolve::Caller::current(args.config_root.clone());
    let found = resolve::resolve(&caller, args.podman_version.as_deref(), None)?;
    tracing::info!(
        "storage.conf rules of Podman {} ({})",
        found.version.map_or("before 6".into(), |v| v.to_string()),
        found.version_source
    );
    storage_conf::load_stack(&found.stack)
}

/// Runs the rules once for each storage.conf (or once without one); findings that do not
/// depend on the storage file (disko, containers.conf) are kept once.
fn check_each(
    inputs: &mut Inputs,
    storage: &[storage_conf::StorageConfFile],
) -> Vec<validate::diagnostic::Diagnostic> {
    if storage.is_empty() {
        return validate::check(inputs);
    }
    let mut all = Vec::new();
    for file in storage {
        inputs.storage = Some(file.clone());
        for d in validate::check(inputs) {
            if !all.contains(&d) {
                all.push(d);
            }
        }
    }
    inputs.storage = None;
    all.sort_by(|a, b| (&a.file, a.line, a.column, a.code).cmp(&(&b.file, b.line, b.column, b.code)));
    all
}
