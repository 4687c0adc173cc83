//! `storage-conf show|diff|apply`: the host's real containers/storage.conf, changed the
//! way a careful admin would.

use super::Format;
use crate::conf::edit::{self, STORE_KEYS};
use crate::conf::{locate, store};
use crate::error::{Error, exit};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// Show, diff or apply the storage.conf a plan wants on this host.
///
/// `show` names the storage.conf Podman uses here and why. `diff --plan DIR` shows what
/// `apply --plan DIR` would change. `apply` edits the file in place with toml_edit: only
/// the keys a plan owns (driver, graphroot, runroot, rootless_storage_path, imagestore,
/// overlay mountopt) change; comments, key order and every other key stay byte for byte.
/// It keeps a timestamped backup and writes atomically. It refuses to change driver,
/// graphroot, runroot or imagestore while the store holds images, containers or volumes,
/// and prints the migration path instead; and it refuses to write a file NixOS manages,
/// printing the `virtualisation.containers.storage.settings` snippet instead.
#[derive(Debug, Args)]
#[command(after_long_help = LONG_HELP)]
pub struct StorageConfArgs {
    #[command(subcommand)]
    pub command: StorageConfCommand,
}

#[derive(Debug, Subcommand)]
pub enum StorageConfCommand {
    /// Which storage.conf Podman uses here, why, and its store settings.
    Show(Target),
    /// The unified diff from the current file to the plan's settings.
    Diff(PlanTarget),
    /// Change the file to the plan's settings.
    Apply(ApplyArgs),
}

#[derive(Debug, Args)]
pub struct Target {
    /// The storage.conf to use instead of the one Podman would read.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Find the file as a rootless user would (default: as the current user).
    #[arg(long)]
    pub rootless: bool,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PlanTarget {
    /// A directory written by `plan --out`; its storage.conf holds the planned settings.
    #[arg(long, value_name = "DIR")]
    pub plan: PathBuf,

    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub plan: PlanTarget,

    /// Show what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Podman socket to ask whether the store is populated (else the store's files are read).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

const LONG_HELP: &str =
    "Exit codes: 0 done (or nothing to do); 2 a malformed storage.conf (not touched) or bad
usage; 3 refused: the store is populated and a store setting would change, or the file
is managed by NixOS (read-only or a link into the Nix store); or it cannot be written.

Never run a bare `podman system reset` to switch drivers: it deletes graphroot,
volumes included.";

/// Podman's behaviour where `[storage]` leaves a key unset.
const DEFAULTS: [(&str, &str); 3] = [
    ("driver", "chosen by containers/storage"),
    ("graphroot", crate::validate::storage_conf::DEFAULT_GRAPHROOT),
    ("runroot", crate::decide::layout::RUNROOT),
];

fn located(t: &Target) -> locate::Located {
    match &t.file {
        Some(f) => locate::Located { path: f.clone(), why: "--file".into(), exists: f.exists() },
        None => {
            let rootless = t.rootless || !rustix::process::geteuid().is_root();
            locate::locate(&|k| std::env::var(k).ok(), rootless, &|p| p.exists())
        }
    }
}

fn read(path: &Path, exists: bool) -> Result<String, Error> {
    if !exists {
        return Ok(String::new());
    }
    std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))
}

pub fn run(args: StorageConfArgs) -> Result<u8, Error> {
    match args.command {
        StorageConfCommand::Show(t) => show(&t),
        StorageConfCommand::Diff(p) => diff(&p),
        StorageConfCommand::Apply(a) => apply(&a),
    }
}

fn show(t: &Target) -> Result<u8, Error> {
    let l = located(t);
    let doc = edit::parse(&read(&l.path, l.exists)?, &l.path.display().to_string())?;
    let settings: Vec<(String, Option<String>)> = DEFAULTS
        .iter()
        .map(|(k, _)| (k.to_string(), edit::current(&doc, &["storage".to_string()], k)))
        .collect();
    match t.format {
        Format::Human => {
            println!("{}{}", l.path.display(), if l.exists { "" } else { " (does not exist yet)" });
            println!("  why: {}", l.why);
            for ((key, value), (_, default)) in settings.iter().zip(DEFAULTS) {
                match value {
                    Some(v) => println!("  {key} = {v:?}"),
                    None => println!("  {key}: not set, {default}"),
                }
            }
        }
        Format::Json => {
            let map: serde_json::Map<String, serde_json::Value> = settings
                .into_iter()
                .map(|(k, v)| (k, v.map_or(serde_json::Value::Null, Into::into)))
                .collect();
            println!(
                "{}",
                serde_json::json!({"path": l.path, "why": l.why, "exists": l.exists, "storage": map})
            );
        }
    }
    Ok(exit::OK)
}

/// The current text, the planned text, and what changes.
fn planned(p: &PlanTarget) -> Result<(locate::Located, String, String, Vec<edit::Change>), Error> {
    let l = located(&p.target);
    let name = l.path.display().to_string();
    let old = read(&l.path, l.exists)?;
    let mut doc = edit::parse(&old, &name)?;
    let plan_file = p.plan.join(crate::render::STORAGE_CONF);
    let plan_text = std::fs::read_to_string(&plan_file).map_err(|e| Error::io(&plan_file, "read", e))?;
    let settings = edit::planned_settings(&plan_text, &plan_file.display().to_string())?;
    let changes = edit::apply(&mut doc, &settings);
    Ok((l, old, doc.to_string(), changes))
}

fn diff(p: &PlanTarget) -> Result<u8, Error> {
    let (l, old, new, changes) = planned(p)?;
    match p.target.format {
        Format::Human => print!("{}", edit::unified_diff(&old, &new, &l.path.display().to_string())),
        Format::Json => println!("{}", serde_json::json!({"path": l.path, "changes": changes})),
    }
    Ok(exit::OK)
}

/// The NixOS configuration that makes the same changes, written by the same Nix writer
/// as the generated files.
fn nixos_snippet(changes: &[edit::Change]) -> String {
    use crate::render::nix::{Attr, Nix, s, to_file};
    let settings = changes.iter().map(|c| Attr::new(&c.key, s(&c.to))).collect();
    to_file(
        &[],
        &Nix::Attrs(vec![Attr::new("virtualisation.containers.storage.settings", Nix::Attrs(settings))]),
    )
}

fn migration_path(contents: &store::Contents, changes: &[&edit::Change]) -> String {
    let keys: Vec<String> = changes
        .iter()
        .map(|c| format!("{} {:?} → {:?}", c.key, c.from.as_deref().unwrap_or("(default)"), c.to))
        .collect();
    format!(
        "refusing to change {} while the store holds {} images, {} containers and {} volumes ({}): Podman's \
         database keeps the old values, and the store would be stranded.\n\
         Migrate instead:\n\
         \x20 1. podman save -o images.tar IMAGE…        (every image you need)\n\
         \x20 2. podman volume export VOLUME -o VOLUME.tar (every volume)\n\
         \x20 3. stop the containers and note how to re-create them (podman generate kube, quadlets)\n\
         \x20 4. move the old graphroot aside (mv, or btrfs subvolume snapshot) instead of deleting it\n\
         \x20 5. podman-btrfs-advise storage-conf apply --plan DIR again, then podman load / podman volume import\n\
         Never run a bare `podman system reset`: it deletes graphroot, volumes included.",
        keys.join(", "),
        contents.images,
        contents.containers,
        contents.volumes,
        contents.source
    )
}

fn apply(a: &ApplyArgs) -> Result<u8, Error> {
    let (l, old, new, changes) = planned(&a.plan)?;
    if changes.is_empty() {
        println!("{} already has the planned settings; nothing to do.", l.path.display());
        return Ok(exit::OK);
    }
    let store_changes: Vec<&edit::Change> =
        changes.iter().filter(|c| STORE_KEYS.iter().any(|k| c.key == format!("storage.{k}"))).collect();
    if !store_changes.is_empty() {
        let doc = edit::parse(&old, &l.path.display().to_string())?;
        let graphroot = edit::current(&doc, &["storage".to_string()], "graphroot")
            .unwrap_or_else(|| crate::validate::storage_conf::DEFAULT_GRAPHROOT.to_string());
        let contents = match &a.url {
            Some(url) => {
                let host = crate::scan::fetch_host(Some(url))?;
                store::Contents {
                    images: host.images.len(),
                    containers: host.containers.len(),
                    volumes: host.volumes.len(),
                    source: format!("the Podman socket at {url}"),
                }
            }
            None => store::from_files(Path::new(&graphroot), None),
        };
        if !contents.is_empty() {
            return Err(Error::Environment(migration_path(&contents, &store_changes)));
        }
    }
    if let Some(why) = l.exists.then(|| store::nixos_managed(&l.path)).flatten() {
        return Err(Error::Environment(format!(
            "refusing to write: {why}. On NixOS set this in your configuration instead:\n\n{}",
            nixos_snippet(&changes)
        )));
    }
    if a.dry_run {
        print!("{}", edit::unified_diff(&old, &new, &l.path.display().to_string()));
        println!("dry run: {} not changed", l.path.display());
        return Ok(exit::OK);
    }
    let backup = if l.exists { Some(crate::output::backup(&l.path)?) } else { None };
    if let Some(dir) = l.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
    }
    crate::output::atomic_write(&l.path, new.as_bytes())?;
    for c in &changes {
        println!(
            "{}: {} → {:?}",
            c.key,
            c.from.as_deref().map_or("(unset)".to_string(), |f| format!("{f:?}")),
            c.to
        );
    }
    match backup {
        Some(b) => println!("wrote {} (previous kept as {})", l.path.display(), b.display()),
        None => println!("wrote {}", l.path.display()),
    }
    Ok(exit::OK)
}
