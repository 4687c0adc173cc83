//! `storage-conf show|diff|apply`: the host's real containers/storage.conf, as
//! containers/storage resolves it for the calling user, changed the way a careful admin
//! would.

use super::Format;
use crate::conf::edit::{self, Setting};
use crate::conf::resolve::{self, Caller, Effective, Stack, Version};
use crate::conf::store;
use crate::error::{Error, exit};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// Show, diff or apply the storage.conf a plan wants on this host.
///
/// `show` lists every storage.conf file containers/storage reads for you, in order, and
/// each effective key with the file (or default) it came from, for the Podman version
/// found. `diff --plan DIR` shows what `apply --plan DIR` would change. `apply` edits with
/// toml_edit: only the keys a plan owns (driver, graphroot, runroot, rootless_storage_path,
/// imagestore, overlay mountopt) change; comments, key order and every other key stay
/// byte for byte. It keeps a timestamped backup and writes atomically.
///
/// Rootless users get rootless rules: their own file, graphroot from
/// rootless_storage_path or $XDG_DATA_HOME (~/.local/share)/containers/storage, runroot
/// $XDG_RUNTIME_DIR/containers; a plan made for root (a graphroot or runroot the caller
/// cannot write) is refused. Before Podman 6 one file wins; from Podman 6 the main file
/// is followed by the drop-ins of storage.conf.d/, storage.rootful.conf.d/ or
/// storage.rootless.conf.d/[UID/] (sorted by file name together, later wins) and
/// CONTAINERS_STORAGE_CONF_OVERRIDE, and `apply` writes its own drop-in that sorts last.
#[derive(Debug, Args)]
#[command(after_long_help = LONG_HELP)]
pub struct StorageConfArgs {
    #[command(subcommand)]
    pub command: StorageConfCommand,
}

#[derive(Debug, Subcommand)]
pub enum StorageConfCommand {
    /// Every storage.conf file read for you, and each effective key with its origin.
    #[command(after_long_help = LONG_HELP)]
    Show(Target),
    /// The unified diff from the current file to the plan's settings.
    #[command(after_long_help = LONG_HELP)]
    Diff(PlanTarget),
    /// Change the file (or, on Podman 6, write a drop-in) to the plan's settings.
    #[command(after_long_help = LONG_HELP)]
    Apply(ApplyArgs),
}

#[derive(Debug, Args)]
pub struct Target {
    /// Edit this file alone, as if CONTAINERS_STORAGE_CONF named it.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Resolve as a rootless user would (default: as the current user).
    #[arg(long)]
    pub rootless: bool,

    /// The Podman version whose rules apply, e.g. 5.4 or 6.0 (default: from --url, else
    /// `podman --version`; when neither answers, the rules before 6 are assumed and said).
    #[arg(long, value_name = "X.Y")]
    pub podman_version: Option<String>,

    /// Podman socket: its version chooses the rules, and `apply` asks it whether the store
    /// is populated (else the store's files are read).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Read /etc/containers and /usr/share/containers below DIR instead (a chroot, an
    /// image being built, tests). The user's own directories still come from
    /// XDG_CONFIG_HOME or HOME.
    #[arg(long, value_name = "DIR", env = "PODFS_CONFIG_ROOT")]
    pub config_root: Option<PathBuf>,

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
}

const LONG_HELP: &str = "Exit codes: 0 done (or nothing to do); 2 a malformed storage.conf (not touched),
bad usage, or a plan made for root applied by a rootless user; 3 refused: the current
store is populated or cannot be read (unknown is never taken for empty), the target
graphroot or imagestore already holds a store of another driver, a file read later would
override the planned keys, or the file is managed by NixOS (read-only or a link into the
Nix store); or it cannot be written.

Files (--config-root DIR prefixes /etc and /usr/share):
  before Podman 6: CONTAINERS_STORAGE_CONF, else root: /etc/containers/storage.conf over
    /usr/share/containers/storage.conf (apply then writes /etc's, starting from a copy of
    it); rootless: $XDG_CONFIG_HOME (or ~/.config)
    /containers/storage.conf, with only rootless_storage_path and a rootless driver taken
    from the system file.
  Podman 6: one main file (user, else /etc, else /usr/share), then drop-ins *.conf from
    storage.conf.d/, storage.rootful.conf.d/ (root), storage.rootless.conf.d/ and
    storage.rootless.conf.d/UID/ (rootless) under /usr/share/containers and
    /etc/containers, and the user's storage.conf.d/: a later place masks a same-named
    file, all sorted by file name, later wins; CONTAINERS_STORAGE_CONF_OVERRIDE last.
    apply writes /etc/containers/storage.rootful.conf.d/99-podman-btrfs-advise.conf
    (root) or ~/.config/containers/storage.conf.d/99-podman-btrfs-advise.conf (rootless).

Never run a bare `podman system reset` to switch drivers: it deletes graphroot,
volumes included.";

/// What the command works from: who asks, which rules, and the socket's answer.
struct Context {
    caller: Caller,
    version: Option<Version>,
    version_source: String,
    podman: Option<Socket>,
    stack: Stack,
}

/// The Podman that `--url` names, with the version its ping told.
struct Socket {
    client: crate::podman::Client,
    runtime: tokio::runtime::Runtime,
    endpoint: String,
    version: String,
}

impl Socket {
    fn connect(url: &str) -> Result<Socket, Error> {
        use crate::podman::{self, Client, Timeouts};
        let env = |name: &str| std::env::var(name).ok();
        let at = podman::discover(Some(url), &env, rustix::process::geteuid().is_root())?;
        let endpoint = at.endpoint.url();
        let client = Client::new(at, Timeouts::SCAN);
        let runtime = podman::runtime()?;
        let version = runtime.block_on(client.ping())?.version;
        Ok(Socket { client, runtime, endpoint, version })
    }

    /// How many images, containers and volumes the store holds (lists without sizes).
    fn contents(&self) -> Result<store::Contents, Error> {
        let c = &self.client;
        let (images, containers, volumes) = self
            .runtime
            .block_on(async { tokio::try_join!(c.images(), c.containers_brief(), c.volumes()) })?;
        Ok(store::Contents {
            images: images.len(),
            containers: containers.len(),
            volumes: volumes.len(),
            source: format!("the Podman socket at {}", self.endpoint),
        })
    }
}

fn context(t: &Target) -> Result<Context, Error> {
    let podman = t.url.as_deref().map(Socket::connect).transpose()?;
    let socket = podman.as_ref().map(|p| (p.endpoint.as_str(), p.version.as_str()));
    let mut caller = Caller::current(t.config_root.clone());
    caller.rootless |= t.rootless;
    if let Some(f) = &t.file {
        caller.env.insert("CONTAINERS_STORAGE_CONF".into(), f.display().to_string());
        caller.env.remove("CONTAINERS_STORAGE_CONF_OVERRIDE");
    }
    let resolve::Resolution { version, version_source, mut stack } =
        resolve::resolve(&caller, t.podman_version.as_deref(), socket)?;
    if t.file.is_some() {
        stack.target.why = "--file".into();
    }
    Ok(Context { caller, version, version_source, podman, stack })
}

pub fn run(args: StorageConfArgs) -> Result<u8, Error> {
    match args.command {
        StorageConfCommand::Show(t) => show(&t),
        StorageConfCommand::Diff(p) => diff(&p),
        StorageConfCommand::Apply(a) => apply(&a),
    }
}

fn role_name(role: resolve::Role) -> &'static str {
    match role {
        resolve::Role::Env => "CONTAINERS_STORAGE_CONF",
        resolve::Role::Main => "main file",
        resolve::Role::SystemDefaults => "system file: rootless_storage_path and a rootless driver only",
        resolve::Role::DropIn => "drop-in",
        resolve::Role::Override => "CONTAINERS_STORAGE_CONF_OVERRIDE",
    }
}

fn show(t: &Target) -> Result<u8, Error> {
    let cx = context(t)?;
    let e = cx.stack.effective(&cx.caller)?;
    let target = &cx.stack.target;
    let exists = target.path.exists();
    let storage: serde_json::Map<String, serde_json::Value> = [
        ("driver", e.driver.as_ref().map(|d| d.value.clone())),
        ("graphroot", Some(e.graphroot.value.clone())),
        ("runroot", Some(e.runroot.value.clone())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.map_or(serde_json::Value::Null, Into::into)))
    .collect();
    match t.format {
        Format::Human => {
            let version = cx.version.map_or("unknown".to_string(), |v| v.to_string());
            let rules = if cx.stack.layered {
                "main file, drop-ins sorted by name, later wins"
            } else {
                "one file wins, no drop-ins"
            };
            println!("Podman {version} ({}): {rules}", cx.version_source);
            let who = if cx.stack.rootless { "rootless" } else { "root" };
            println!("caller: uid {} ({who})", cx.caller.uid);
            println!("files read, in order:");
            if cx.stack.layers.is_empty() {
                println!("  (none)");
            }
            for l in &cx.stack.layers {
                println!("  {}  ({})", l.path.display(), role_name(l.role));
            }
            println!("effective:");
            let line = |key: &str, r: Option<&resolve::Resolved>| match r {
                Some(r) => println!("  {key} = {:?}  ← {}", r.value, r.from),
                None => println!("  {key}: not set"),
            };
            match &e.driver {
                Some(d) => line("driver", Some(d)),
                None => println!("  driver: not set, chosen by containers/storage"),
            }
            line("graphroot", Some(&e.graphroot));
            line("runroot", Some(&e.runroot));
            line("imagestore", e.imagestore.as_ref());
            for (key, r) in e.keys.iter().filter(|(k, _)| !SHOWN.contains(&k.as_str())) {
                line(key, Some(r));
            }
            println!("{}{}", target.path.display(), if exists { "" } else { " (does not exist yet)" });
            println!("  why: apply writes here: {}", target.why);
        }
        Format::Json => {
            let files: Vec<serde_json::Value> =
                cx.stack.layers.iter().map(|l| serde_json::json!({"path": l.path, "role": l.role})).collect();
            println!(
                "{}",
                serde_json::json!({
                    "path": target.path, "why": target.why, "exists": exists, "storage": storage,
                    "podman_version": cx.version.map(|v| v.to_string()), "version_source": cx.version_source,
                    "layered": cx.stack.layered, "rootless": cx.stack.rootless, "uid": cx.caller.uid,
                    "files": files, "effective": effective_json(&e), "target": target,
                })
            );
        }
    }
    Ok(exit::OK)
}

const SHOWN: [&str; 4] = ["storage.driver", "storage.graphroot", "storage.runroot", "storage.imagestore"];

fn effective_json(e: &Effective) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (k, r) in &e.keys {
        map.insert(k.clone(), serde_json::json!(r));
    }
    // The derived values, defaults included.
    map.insert("storage.graphroot".into(), serde_json::json!(e.graphroot));
    map.insert("storage.runroot".into(), serde_json::json!(e.runroot));
    if let Some(d) = &e.driver {
        map.insert("storage.driver".into(), serde_json::json!(d));
    }
    serde_json::Value::Object(map)
}

/// What `apply` works on: the context, the target's current and planned text, the plan's
/// settings and what changes.
struct Planned {
    cx: Context,
    settings: Vec<Setting>,
    old: String,
    new: String,
    changes: Vec<edit::Change>,
}

const DROP_IN_HEADER: &str = "# Written by podman-btrfs-advise storage-conf apply. Its name sorts after the\n\
# vendor and admin drop-ins, so the keys below win over theirs.\n\n";

fn planned(p: &PlanTarget) -> Result<Planned, Error> {
    let cx = context(&p.target)?;
    let path = &cx.stack.target.path;
    let name = path.display().to_string();
    let existing = cx.stack.layers.iter().find(|l| &l.path == path).map(|l| l.text.clone());
    let old = match existing {
        Some(text) => text,
        None => match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => cx.stack.seed.clone().unwrap_or_default(),
            Err(e) => return Err(Error::io(path, "read", e)),
        },
    };
    let mut doc = edit::parse(&old, &name)?;
    let plan_file = p.plan.join(crate::render::STORAGE_CONF);
    let plan_text = std::fs::read_to_string(&plan_file).map_err(|e| Error::io(&plan_file, "read", e))?;
    let settings = edit::planned_settings(&plan_text, &plan_file.display().to_string())?;
    let changes = edit::apply(&mut doc, &settings);
    let mut new = doc.to_string();
    if old.is_empty() && cx.stack.target.drop_in && !changes.is_empty() {
        new = format!("{DROP_IN_HEADER}{new}");
    }
    Ok(Planned { cx, settings, old, new, changes })
}

fn diff(p: &PlanTarget) -> Result<u8, Error> {
    let pl = planned(p)?;
    let path = &pl.cx.stack.target.path;
    match p.target.format {
        Format::Human => print!("{}", edit::unified_diff(&pl.old, &pl.new, &path.display().to_string())),
        Format::Json => println!("{}", serde_json::json!({"path": path, "changes": pl.changes})),
    }
    Ok(exit::OK)
}

/// The NixOS configuration that makes the same settings, written by the same Nix writer
/// as the generated files: every planned key, so the snippet is complete on its own.
fn nixos_snippet(settings: &[Setting]) -> String {
    use crate::render::nix::{Attr, Nix, s, to_file};
    let attrs = settings
        .iter()
        .map(|c| Attr::new(&format!("{}.{}", c.table.join("."), c.key), s(&c.value)))
        .collect();
    to_file(
        &[],
        &Nix::Attrs(vec![Attr::new("virtualisation.containers.storage.settings", Nix::Attrs(attrs))]),
    )
}

const MIGRATION_STEPS: &str = "Migrate instead:\n\
\x20 1. podman save -o images.tar IMAGE…        (every image you need)\n\
\x20 2. podman volume export VOLUME -o VOLUME.tar (every volume)\n\
\x20 3. stop the containers and note how to re-create them (podman generate kube, quadlets)\n\
\x20 4. move the old graphroot aside (mv, or btrfs subvolume snapshot) instead of deleting it\n\
\x20 5. podman-btrfs-advise storage-conf apply --plan DIR again, then podman load / podman volume import\n\
Never run a bare `podman system reset`: it deletes graphroot, volumes included.";

/// The store settings that change, as `key "from" → "to"`.
fn store_changes(before: &Effective, after: &Effective) -> Vec<String> {
    let pairs = [
        (
            "driver",
            before.driver.as_ref().map(|r| r.value.as_str()),
            after.driver.as_ref().map(|r| r.value.as_str()),
        ),
        ("graphroot", Some(before.graphroot.value.as_str()), Some(after.graphroot.value.as_str())),
        ("runroot", Some(before.runroot.value.as_str()), Some(after.runroot.value.as_str())),
        (
            "imagestore",
            before.imagestore.as_ref().map(|r| r.value.as_str()),
            after.imagestore.as_ref().map(|r| r.value.as_str()),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, b, a)| b != a)
        .map(|(k, b, a)| format!("{k} {:?} → {:?}", b.unwrap_or("(default)"), a.unwrap_or("(default)")))
        .collect()
}

fn populated(contents: &store::Contents, changes: &[String]) -> String {
    format!(
        "refusing to change {} while the store holds {} images, {} containers and {} volumes ({}): Podman's \
         database keeps the old values, and the store would be stranded.\n{MIGRATION_STEPS}",
        changes.join(", "),
        contents.images,
        contents.containers,
        contents.volumes,
        contents.source
    )
}

fn unknown_store(what: &str, u: &store::Unknown, rootless: bool) -> Error {
    let whom = if rootless {
        "run this as the user who owns that store (root for /var/lib/containers/storage), or pass --url \
         for that Podman's socket"
    } else {
        "make it readable, or pass --url for the socket of the Podman that uses it"
    };
    Error::Environment(format!(
        "cannot tell what {what} holds: {u}. A store that cannot be read is unknown, never empty, so apply \
         refuses to change store settings; {whom}."
    ))
}

/// Whether the caller may create or write `path`: the nearest existing directory on the
/// way must be writable by it.
fn writable(path: &Path) -> bool {
    let mut at = Some(path);
    while let Some(p) = at {
        if std::fs::symlink_metadata(p).is_ok() {
            return rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok();
        }
        at = p.parent();
    }
    false
}

/// A rootless caller applying a plan whose store paths only root can write: the plan was
/// made for root, and writing it (even partly) would break the caller's Podman.
fn rootful_plan(cx: &Context, settings: &[Setting]) -> Option<String> {
    if !cx.stack.rootless {
        return None;
    }
    let bad: Vec<String> = settings
        .iter()
        .filter(|s| {
            s.table == ["storage"] && ["graphroot", "runroot", "imagestore"].contains(&s.key.as_str())
        })
        .filter(|s| !writable(Path::new(&cx.caller.expand(&s.value))))
        .map(|s| format!("{} = {:?}", s.key, s.value))
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "this plan was made for root: {} cannot be written by uid {}, and Podman run by this user \
             would fail on it (`mkdir …: permission denied`). Nothing was written. Either apply it as root \
             (sudo podman-btrfs-advise storage-conf apply --plan DIR), which also sets rootless_storage_path \
             for every user when the plan has it, or plan with rootless settings (a graphroot under your home, \
             or `rootless = true` in the spec's [host] and apply as root).",
            bad.join(", "),
            cx.caller.uid
        )
    })
}

/// The first planned key that a file read after the target overrides.
fn overridden(settings: &[Setting], after: &Effective, target: &Path) -> Option<String> {
    settings.iter().find_map(|s| {
        let key = format!("{}.{}", s.table.join("."), s.key);
        let got = after.keys.get(&key)?;
        (got.value != s.value).then(|| {
            format!(
                "refusing to write {}: {} sets {key} = {:?} and is read after it, so the planned {:?} would not take \
                 effect. Remove or rename that file (or set the key there), then apply again.",
                target.display(),
                got.from,
                got.value,
                s.value
            )
        })
    })
}

fn apply(a: &ApplyArgs) -> Result<u8, Error> {
    let pl = planned(&a.plan)?;
    let cx = &pl.cx;
    let target = &cx.stack.target.path;
    if let Some(why) = rootful_plan(cx, &pl.settings) {
        return Err(Error::Usage(why));
    }
    if pl.changes.is_empty() {
        println!("{} already has the planned settings; nothing to do.", target.display());
        return Ok(exit::OK);
    }
    // NixOS first: the snippet is the answer whatever the store holds.
    let managed = [&cx.stack.main, target]
        .into_iter()
        .find_map(|p| p.exists().then(|| store::nixos_managed(p)).flatten());
    if let Some(why) = managed {
        return Err(Error::Environment(format!(
            "refusing to write: {why}. On NixOS set this in your configuration instead:\n\n{}",
            nixos_snippet(&pl.settings)
        )));
    }
    let before = cx.stack.effective(&cx.caller)?;
    let after = cx.stack.with_target_text(&pl.new).effective(&cx.caller)?;
    if let Some(why) = overridden(&pl.settings, &after, target) {
        return Err(Error::Environment(why));
    }
    if let Some(d) = after.driver.as_ref().filter(|d| d.from.contains("STORAGE_DRIVER")) {
        tracing::warn!(
            "STORAGE_DRIVER={} is set here and overrides the driver of every storage.conf for Podman run with it",
            d.value
        );
    }
    let changed = store_changes(&before, &after);
    if !changed.is_empty() {
        check_stores(cx, &before, &after, &changed)?;
    }
    if a.dry_run {
        print!("{}", edit::unified_diff(&pl.old, &pl.new, &target.display().to_string()));
        println!("dry run: {} not changed", target.display());
        return Ok(exit::OK);
    }
    let backup = if target.exists() { Some(crate::output::backup(target)?) } else { None };
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
    }
    crate::output::atomic_write(target, pl.new.as_bytes())?;
    for c in &pl.changes {
        println!(
            "{}: {} → {:?}",
            c.key,
            c.from.as_deref().map_or("(unset)".to_string(), |f| format!("{f:?}")),
            c.to
        );
    }
    match backup {
        Some(b) => println!("wrote {} (previous kept as {})", target.display(), b.display()),
        None => println!("wrote {}", target.display()),
    }
    Ok(exit::OK)
}

/// Both ends: the store being left must be empty (and readable), and the store being
/// switched to must not hold another driver's store.
fn check_stores(
    cx: &Context,
    before: &Effective,
    after: &Effective,
    changed: &[String],
) -> Result<(), Error> {
    let contents = match &cx.podman {
        Some(podman) => podman.contents()?,
        None => {
            let mut c = store::from_files(Path::new(&before.graphroot.value), None)
                .map_err(|u| unknown_store("the current store", &u, cx.stack.rootless))?;
            if let Some(is) = &before.imagestore {
                let extra = store::from_files(Path::new(&is.value), None)
                    .map_err(|u| unknown_store("the current image store", &u, cx.stack.rootless))?;
                c.images += extra.images;
            }
            c
        }
    };
    if !contents.is_empty() {
        return Err(Error::Environment(populated(&contents, changed)));
    }
    let Some(driver) = &after.driver else { return Ok(()) };
    let roots = std::iter::once(&after.graphroot).chain(after.imagestore.as_ref());
    for root in roots {
        let found = store::foreign_drivers(Path::new(&root.value), &driver.value)
            .map_err(|u| unknown_store("the target store", &u, cx.stack.rootless))?;
        if let Some((other, dir)) = found.first() {
            return Err(Error::Environment(format!(
                "refusing to change {}: the target store {} already holds a {other} store ({}) while the plan \
                 says driver = {:?}. Podman would keep {other} from its database (\"User-selected graph driver \
                 {:?} overwritten by graph driver {other:?} from database\") or strand that store. Point \
                 graphroot at an empty directory, or move that store aside first.\n{MIGRATION_STEPS}",
                changed.join(", "),
                root.value,
                dir.display(),
                driver.value,
                driver.value
            )));
        }
    }
    Ok(())
}
