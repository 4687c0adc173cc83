//! What containers/storage resolves for the calling user: which files it reads, in which
//! order, and the graphroot, runroot and driver that come out, each with the file (or the
//! default) it came from.
//!
//! Two models, chosen by the Podman version:
//! - **Podman before 6** (containers-storage.conf(5)): one file wins. Root reads
//!   `CONTAINERS_STORAGE_CONF`, else `/etc/containers/storage.conf`, else
//!   `/usr/share/containers/storage.conf`. A rootless user reads `CONTAINERS_STORAGE_CONF`,
//!   else their own `$XDG_CONFIG_HOME` (or `~/.config`) `containers/storage.conf`; root's
//!   graphroot and runroot never apply to them. Without a file of their own, the system
//!   file gives only `rootless_storage_path` and a driver that works rootless (btrfs,
//!   overlay, vfs). graphroot is then the file's `graphroot`, else `rootless_storage_path`,
//!   else `$XDG_DATA_HOME` (or `~/.local/share`) `/containers/storage`; runroot the file's
//!   `runroot`, else `$XDG_RUNTIME_DIR/containers`.
//! - **Podman 6 and later** (containers-config(5)): one main file (the user's, else
//!   `/etc`, else `/usr/share`), then the drop-ins of `storage.conf.d/`,
//!   `storage.rootful.conf.d/` (root) or `storage.rootless.conf.d/` and
//!   `storage.rootless.conf.d/<UID>/` (rootless) under `/usr/share/containers` and
//!   `/etc/containers`, and `storage.conf.d/` in the user's directory. A drop-in masks one
//!   of the same name in an earlier place; the survivors are sorted by file name
//!   together and later files win key by key. `CONTAINERS_STORAGE_CONF` replaces main
//!   file and drop-ins; `CONTAINERS_STORAGE_CONF_OVERRIDE` is read last in any case.
//!
//! Paths in graphroot, runroot and rootless_storage_path expand `$UID` to the caller's uid
//! and every other `$VAR`/`${VAR}` from the environment, as containers/storage does.

use crate::error::Error;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The name of the drop-in `apply` writes on Podman 6: `99-` so that it sorts after the
/// usual vendor (`00-`) and admin drop-ins.
pub const DROP_IN_NAME: &str = "99-podman-btrfs-advise.conf";

pub use crate::podman::Version;

/// The Podman version whose rules apply, and how it was learned: `--podman-version`,
/// else the socket's answer, else `podman --version` on PATH. `None` when nothing
/// answers; the rules before 6 are then assumed, and the source says so.
pub fn detect_version(
    given: Option<&str>,
    socket: Option<(&str, &str)>,
) -> Result<(Option<Version>, String), Error> {
    if let Some(v) = given {
        let parsed = Version::find(v).ok_or_else(|| {
            Error::Usage(format!("--podman-version {v:?} is not a version like 5.4 or 6.0"))
        })?;
        return Ok((Some(parsed), "--podman-version".into()));
    }
    if let Some((endpoint, version)) = socket {
        return Ok((Version::find(version), format!("the Podman socket at {endpoint}")));
    }
    let out = std::process::Command::new("podman").arg("--version").output();
    Ok(match out.ok().filter(|o| o.status.success()).and_then(|o| Version::find(&String::from_utf8_lossy(&o.stdout))) {
        Some(v) => (Some(v), "`podman --version` on PATH".into()),
        None => (
            None,
            "unknown: no Podman on PATH and no --url; the rules before Podman 6 are assumed (pass --podman-version)"
                .into(),
        ),
    })
}

/// The Podman version whose storage.conf rules apply, where it was learnt, and the files
/// those rules make a caller read.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub version: Option<Version>,
    pub version_source: String,
    pub stack: Stack,
}

/// What every command that reads a host's storage.conf starts from: the version (`given`,
/// else the socket's answer, else `podman --version`) and the stack it makes `caller` read.
pub fn resolve(
    caller: &Caller,
    given: Option<&str>,
    socket: Option<(&str, &str)>,
) -> Result<Resolution, Error> {
    let (version, version_source) = detect_version(given, socket)?;
    let stack = stack(caller, version.is_some_and(Version::layered))?;
    Ok(Resolution { version, version_source, stack })
}

/// Who asks, and where the configuration directories are. `config_root` prefixes
/// `/etc/containers` and `/usr/share/containers` only (for tests and chroots); the user's
/// directories come from the environment as they do for Podman.
#[derive(Debug, Clone)]
pub struct Caller {
    pub uid: u32,
    pub rootless: bool,
    pub env: BTreeMap<String, String>,
    pub config_root: Option<PathBuf>,
}

impl Caller {
    /// The calling process: its effective uid and environment.
    pub fn current(config_root: Option<PathBuf>) -> Caller {
        let uid = rustix::process::geteuid().as_raw();
        Caller { uid, rootless: uid != 0, env: std::env::vars().collect(), config_root }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn system(&self, dir: &str) -> PathBuf {
        match &self.config_root {
            Some(root) => root.join(dir.trim_start_matches('/')),
            None => PathBuf::from(dir),
        }
    }

    /// `/usr/share/containers` (vendor) and `/etc/containers` (admin), re-rooted.
    pub fn vendor_dir(&self) -> PathBuf {
        self.system("/usr/share/containers")
    }

    pub fn admin_dir(&self) -> PathBuf {
        self.system("/etc/containers")
    }

    /// `$XDG_CONFIG_HOME/containers`, else `$HOME/.config/containers`.
    pub fn user_dir(&self) -> Option<PathBuf> {
        self.var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| self.var("HOME").map(|h| Path::new(h).join(".config")))
            .map(|d| d.join("containers"))
    }

    /// The rootless default graphroot: `$XDG_DATA_HOME/containers/storage`, else
    /// `$HOME/.local/share/containers/storage`.
    fn rootless_graphroot(&self) -> Resolved {
        match (self.var("XDG_DATA_HOME"), self.var("HOME")) {
            (Some(d), _) => {
                Resolved::default_(format!("{d}/containers/storage"), "rootless default ($XDG_DATA_HOME)")
            }
            (None, Some(h)) => Resolved::default_(
                format!("{h}/.local/share/containers/storage"),
                "rootless default ($HOME/.local/share)",
            ),
            (None, None) => Resolved::default_(
                String::new(),
                "rootless default, but neither XDG_DATA_HOME nor HOME is set",
            ),
        }
    }

    /// The rootless default runroot: `$XDG_RUNTIME_DIR/containers`; without it
    /// `/run/user/UID` when it is the caller's and mode 0700, else `$TMPDIR/storage-run-UID`
    /// (containers/storage creates it), each with `/containers`.
    fn rootless_runroot(&self) -> Resolved {
        if let Some(d) = self.var("XDG_RUNTIME_DIR") {
            return Resolved::default_(format!("{d}/containers"), "rootless default ($XDG_RUNTIME_DIR)");
        }
        let run_user = PathBuf::from(format!("/run/user/{}", self.uid));
        let owned = std::fs::metadata(&run_user).is_ok_and(|m| {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            m.uid() == self.uid && m.permissions().mode() & 0o777 == 0o700
        });
        if owned {
            return Resolved::default_(
                format!("{}/containers", run_user.display()),
                "rootless default (no XDG_RUNTIME_DIR: /run/user/UID)",
            );
        }
        let tmp = self.var("TMPDIR").unwrap_or("/tmp");
        Resolved::default_(
            format!("{tmp}/storage-run-{}/containers", self.uid),
            "rootless default (no XDG_RUNTIME_DIR and no /run/user/UID of the caller's)",
        )
    }

    /// Expands `$UID` to the caller's uid, then every `$VAR` and `${VAR}` from the
    /// environment (unset ones become empty, as Go's os.ExpandEnv does).
    pub fn expand(&self, path: &str) -> String {
        let path = path.replace("$UID", &self.uid.to_string());
        let mut out = String::new();
        let mut rest = path.as_str();
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, len) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end =
                    after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], end)
            };
            if len == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            out.push_str(self.env.get(name).map_or("", String::as_str));
            rest = &after[len..];
        }
        out.push_str(rest);
        out
    }
}

/// Why a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Named by `CONTAINERS_STORAGE_CONF`.
    Env,
    /// The one main storage.conf.
    Main,
    /// The system file a rootless user without a file of their own takes
    /// `rootless_storage_path` and the driver from (before Podman 6).
    SystemDefaults,
    /// A drop-in (Podman 6).
    DropIn,
    /// Named by `CONTAINERS_STORAGE_CONF_OVERRIDE` (Podman 6), read last.
    Override,
}

/// One file that is read, with its parsed contents.
#[derive(Debug, Clone)]
pub struct Layer {
    pub path: PathBuf,
    pub role: Role,
    pub text: String,
}

/// A value and where it came from: a file, or a default.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resolved {
    pub value: String,
    pub from: String,
    /// Whether the value is a default rather than read from a file.
    pub default: bool,
}

impl Resolved {
    fn default_(value: String, why: &str) -> Resolved {
        Resolved { value, from: why.to_string(), default: true }
    }
}

/// The keys resolution follows, as (table path, key).
pub const KEYS: &[(&[&str], &str)] = crate::conf::edit::OWNED;

/// Where `apply` writes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    pub path: PathBuf,
    /// Whether it is a drop-in that `apply` makes its own (Podman 6).
    pub drop_in: bool,
    pub why: String,
}

/// Everything resolved for one caller.
#[derive(Debug, Clone)]
pub struct Stack {
    pub layered: bool,
    pub rootless: bool,
    /// Files read, in the order they are read.
    pub layers: Vec<Layer>,
    pub target: Target,
    /// The main file (or the one named by CONTAINERS_STORAGE_CONF), read or not: the
    /// file NixOS would manage.
    pub main: PathBuf,
    /// The text the target starts from while it does not exist: before Podman 6, root's
    /// /etc file replaces the vendor file wholesale, so it starts as a copy of it.
    pub seed: Option<String>,
}

/// The values a stack gives the caller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Effective {
    /// Every key of [`KEYS`] some file sets, as `storage.driver`, … (after merging).
    pub keys: BTreeMap<String, Resolved>,
    pub driver: Option<Resolved>,
    pub graphroot: Resolved,
    pub runroot: Resolved,
    pub imagestore: Option<Resolved>,
}

/// A file's text, `None` when it does not exist; text that is not UTF-8 is an input error
/// at its line, as `check` reports it.
fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match crate::validate::storage_conf::read_text(path) {
        Ok(text) => Ok(Some(text)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn layer(path: PathBuf, role: Role) -> Result<Option<Layer>, Error> {
    Ok(read_optional(&path)?.map(|text| Layer { path, role, text }))
}

/// The drop-in directories, lowest place first: vendor, admin, user.
pub fn drop_in_dirs(caller: &Caller) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in [caller.vendor_dir(), caller.admin_dir()] {
        dirs.push(base.join("storage.conf.d"));
        if caller.rootless {
            dirs.push(base.join("storage.rootless.conf.d"));
            dirs.push(base.join("storage.rootless.conf.d").join(caller.uid.to_string()));
        } else {
            dirs.push(base.join("storage.rootful.conf.d"));
        }
    }
    if let Some(user) = caller.user_dir() {
        dirs.push(user.join("storage.conf.d"));
    }
    dirs
}

/// The drop-ins that are read, in reading order: regular `*.conf` files, a later place
/// masking a same-named file of an earlier one, sorted by file name.
pub fn drop_ins(caller: &Caller) -> Result<Vec<PathBuf>, Error> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in drop_in_dirs(caller) {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&dir, "list", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, "list", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_file()) && name.ends_with(".conf") {
                by_name.insert(name, entry.path());
            }
        }
    }
    Ok(by_name.into_values().collect())
}

/// Which files containers/storage reads for `caller`, and where `apply` writes.
pub fn stack(caller: &Caller, layered: bool) -> Result<Stack, Error> {
    let named = caller.var("CONTAINERS_STORAGE_CONF").map(PathBuf::from);
    let user_main = caller.user_dir().map(|d| d.join("storage.conf"));
    let admin_main = caller.admin_dir().join("storage.conf");
    let vendor_main = caller.vendor_dir().join("storage.conf");
    let mut layers = Vec::new();
    let first_existing = |paths: &[&Path]| -> Result<Option<Layer>, Error> {
        for p in paths {
            if let Some(l) = layer(p.to_path_buf(), Role::Main)? {
                return Ok(Some(l));
            }
        }
        Ok(None)
    };

    if let Some(path) = &named {
        layers.extend(layer(path.clone(), Role::Env)?);
        if layered {
            layers.extend(override_layer(caller)?);
        }
        let target = Target {
            path: path.clone(),
            drop_in: false,
            why: "CONTAINERS_STORAGE_CONF names it; no other file is read".into(),
        };
        return Ok(Stack {
            layered,
            rootless: caller.rootless,
            layers,
            target,
            main: path.clone(),
            seed: None,
        });
    }

    if layered {
        let mut candidates: Vec<&Path> = Vec::new();
        if let Some(u) = &user_main {
            candidates.push(u);
        }
        candidates.extend([admin_main.as_path(), vendor_main.as_path()]);
        let main = first_existing(&candidates)?;
        let main_path = main.as_ref().map_or_else(|| admin_main.clone(), |l| l.path.clone());
        layers.extend(main);
        for path in drop_ins(caller)? {
            layers.extend(layer(path, Role::DropIn)?);
        }
        layers.extend(override_layer(caller)?);
        let target = match (caller.rootless, caller.user_dir()) {
            (false, _) => Target {
                path: caller.admin_dir().join("storage.rootful.conf.d").join(DROP_IN_NAME),
                drop_in: true,
                why:
                    "Podman 6 as root: a drop-in for root only, named to sort after vendor and admin drop-ins"
                        .into(),
            },
            (true, Some(user)) => Target {
                path: user.join("storage.conf.d").join(DROP_IN_NAME),
                drop_in: true,
                why: "Podman 6, rootless: a drop-in in the user's own directory, named to sort last".into(),
            },
            (true, None) => {
                return Err(Error::Environment(
                    "neither XDG_CONFIG_HOME nor HOME is set: there is no user configuration directory to write to"
                        .into(),
                ));
            }
        };
        return Ok(Stack { layered, rootless: caller.rootless, layers, target, main: main_path, seed: None });
    }

    let system = first_existing(&[&admin_main, &vendor_main])?;
    if !caller.rootless {
        let (why, seed) = match &system {
            Some(l) if l.path == admin_main => {
                ("root: /etc/containers/storage.conf wins over /usr/share", None)
            }
            Some(l) => (
                "root: Podman reads the distribution's /usr/share file; apply writes /etc/containers/storage.conf \
                 starting from a copy of it (the vendor file belongs to the package)",
                Some(l.text.clone()),
            ),
            None => ("root: no storage.conf yet; /etc/containers/storage.conf is where one belongs", None),
        };
        layers.extend(system);
        let target = Target { path: admin_main.clone(), drop_in: false, why: why.into() };
        return Ok(Stack { layered, rootless: false, layers, target, main: admin_main, seed });
    }
    let Some(user) = user_main else {
        return Err(Error::Environment(
            "neither XDG_CONFIG_HOME nor HOME is set: containers/storage finds no storage.conf for this rootless user"
                .into(),
        ));
    };
    // The system file only lends rootless_storage_path and the driver.
    layers.extend(system.map(|l| Layer { role: Role::SystemDefaults, ..l }));
    let own = layer(user.clone(), Role::Main)?;
    let why = if own.is_some() {
        "rootless: the user's own file; root's files do not apply"
    } else {
        "rootless without a file of their own: it is created here (root's graphroot and runroot never apply)"
    };
    layers.extend(own);
    let target = Target { path: user.clone(), drop_in: false, why: why.into() };
    Ok(Stack { layered, rootless: true, layers, target, main: user, seed: None })
}

fn override_layer(caller: &Caller) -> Result<Option<Layer>, Error> {
    let Some(path) = caller.var("CONTAINERS_STORAGE_CONF_OVERRIDE") else { return Ok(None) };
    let l = layer(PathBuf::from(path), Role::Override)?;
    if l.is_none() {
        return Err(Error::Environment(format!(
            "CONTAINERS_STORAGE_CONF_OVERRIDE names {path}, which does not exist; Podman 6 fails on it too"
        )));
    }
    Ok(l)
}

impl Stack {
    /// The file Podman reads first (its main file, or the one CONTAINERS_STORAGE_CONF
    /// names), else where one belongs: what a watcher of "the storage.conf" watches.
    /// (A rootless caller's system file before Podman 6 only lends defaults: not it.)
    pub fn first_file(&self) -> &Path {
        let main = self.layers.iter().find(|l| matches!(l.role, Role::Main | Role::Env));
        main.map_or(self.main.as_path(), |l| l.path.as_path())
    }

    /// The same stack with the target holding `text`: replaced in place, or (a new
    /// drop-in) inserted where its name sorts among the drop-ins.
    pub fn with_target_text(&self, text: &str) -> Stack {
        let mut next = self.clone();
        if let Some(l) = next.layers.iter_mut().find(|l| l.path == self.target.path) {
            l.text = text.to_string();
            return next;
        }
        let role = if self.target.drop_in { Role::DropIn } else { Role::Main };
        let new = Layer { path: self.target.path.clone(), role, text: text.to_string() };
        let name = self.target.path.file_name();
        if self.target.drop_in {
            // A same-named drop-in of an earlier place is masked by ours.
            next.layers.retain(|l| !(l.role == Role::DropIn && l.path.file_name() == name));
        } else {
            // One main file wins: the new one replaces the one read so far.
            next.layers.retain(|l| !matches!(l.role, Role::Main | Role::Env));
        }
        let at = next
            .layers
            .iter()
            .position(|l| match l.role {
                Role::Override => true,
                Role::DropIn => self.target.drop_in && l.path.file_name() > name,
                _ => false,
            })
            .unwrap_or(next.layers.len());
        next.layers.insert(at, new);
        next
    }

    /// Parses every layer; malformed TOML is an input error at its line and column.
    fn parsed(&self) -> Result<Vec<(&Layer, toml_edit::DocumentMut)>, Error> {
        self.layers
            .iter()
            .map(|l| Ok((l, crate::conf::edit::parse(&l.text, &l.path.display().to_string())?)))
            .collect()
    }

    /// What the stack gives the caller.
    pub fn effective(&self, caller: &Caller) -> Result<Effective, Error> {
        let parsed = self.parsed()?;
        let mut keys: BTreeMap<String, Resolved> = BTreeMap::new();
        let mut system: BTreeMap<String, Resolved> = BTreeMap::new();
        for (layer, doc) in &parsed {
            let into = if layer.role == Role::SystemDefaults { &mut system } else { &mut keys };
            for (table, key) in KEYS {
                let table: Vec<String> = table.iter().map(|s| s.to_string()).collect();
                if let Some(v) = crate::conf::edit::current(doc, &table, key) {
                    let from = layer.path.display().to_string();
                    into.insert(
                        format!("{}.{key}", table.join(".")),
                        Resolved { value: v, from, default: false },
                    );
                }
            }
        }
        let get = |map: &BTreeMap<String, Resolved>, k: &str| {
            map.get(&format!("storage.{k}")).filter(|r| !r.value.is_empty()).cloned()
        };
        let expand = |r: Resolved| Resolved { value: caller.expand(&r.value), ..r };
        let (graphroot, runroot, driver) = if self.rootless {
            let storage_path =
                get(&keys, "rootless_storage_path").or_else(|| get(&system, "rootless_storage_path"));
            let graphroot =
                get(&keys, "graphroot").or(storage_path).map_or_else(|| caller.rootless_graphroot(), expand);
            let runroot = get(&keys, "runroot").map_or_else(|| caller.rootless_runroot(), expand);
            let rootless_driver =
                |r: &Resolved| matches!(r.value.as_str(), "btrfs" | "overlay" | "overlay2" | "vfs");
            let driver = get(&keys, "driver").or_else(|| get(&system, "driver").filter(rootless_driver));
            (graphroot, runroot, driver)
        } else {
            let graphroot = get(&keys, "graphroot").map_or_else(
                || Resolved::default_(crate::validate::storage_conf::DEFAULT_GRAPHROOT.into(), "default"),
                expand,
            );
            let runroot = get(&keys, "runroot").map_or_else(
                || Resolved::default_(crate::validate::storage_conf::DEFAULT_RUNROOT.into(), "default"),
                expand,
            );
            (graphroot, runroot, get(&keys, "driver"))
        };
        // STORAGE_DRIVER in the environment wins over every file, for root and rootless alike.
        let driver = caller
            .var("STORAGE_DRIVER")
            .map(|d| Resolved {
                value: d.to_string(),
                from: "the STORAGE_DRIVER environment variable".into(),
                default: false,
            })
            .or(driver);
        let driver =
            driver.map(|d| if d.value == "overlay2" { Resolved { value: "overlay".into(), ..d } } else { d });
        let imagestore = get(&keys, "imagestore").map(expand);
        Ok(Effective { keys, driver, graphroot, runroot, imagestore })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tree(PathBuf);
    impl Tree {
        fn new(tag: &str) -> Tree {
            let p = std::env::temp_dir().join(format!("podfs-resolve-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Tree(p)
        }
        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        }
        fn caller(&self, uid: u32, extra: &[(&str, &str)]) -> Caller {
            let mut env: BTreeMap<String, String> =
                [("HOME".to_string(), self.0.join("home").display().to_string())].into();
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            Caller { uid, rootless: uid != 0, env, config_root: Some(self.0.join("root")) }
        }
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const ROOTFUL: &str = "[storage]\ndriver = \"btrfs\"\ngraphroot = \"/var/lib/containers/storage\"\nrunroot = \"/run/containers/storage\"\n";

    #[test]
    fn expansion_is_uid_then_environment() {
        let t = Tree::new("expand");
        let c = t.caller(1000, &[("USER", "ann")]);
        let home = c.env["HOME"].clone();
        assert_eq!(c.expand("$HOME/s/$UID/${USER}/$NOPE/x"), format!("{home}/s/1000/ann//x"));
        assert_eq!(c.expand("/a$"), "/a$");
    }

    #[test]
    fn rootless_before_6_never_takes_roots_graphroot() {
        let t = Tree::new("rl5");
        t.write("root/etc/containers/storage.conf", ROOTFUL);
        let c = t.caller(65534, &[("XDG_RUNTIME_DIR", "/run/user/65534")]);
        let s = stack(&c, false).unwrap();
        let home = c.env["HOME"].clone();
        assert_eq!(s.target.path, Path::new(&home).join(".config/containers/storage.conf"));
        let e = s.effective(&c).unwrap();
        assert_eq!(e.graphroot.value, format!("{home}/.local/share/containers/storage"));
        assert_eq!(e.runroot.value, "/run/user/65534/containers");
        // The system driver works rootless, so it is taken.
        assert_eq!(e.driver.unwrap().value, "btrfs");

        // rootless_storage_path of the system file, expanded.
        t.write(
            "root/etc/containers/storage.conf",
            "[storage]\ndriver = \"zfs\"\nrootless_storage_path = \"/srv/users/$UID\"\n",
        );
        let e = stack(&c, false).unwrap().effective(&c).unwrap();
        assert_eq!(e.graphroot.value, "/srv/users/65534");
        assert!(e.driver.is_none(), "zfs does not work rootless: {e:?}");

        // The user's own file wins; its graphroot is taken as is, XDG_DATA_HOME moves the default.
        t.write("home/.config/containers/storage.conf", "[storage]\ndriver = \"vfs\"\n");
        let c = t.caller(65534, &[("XDG_DATA_HOME", "/data"), ("XDG_RUNTIME_DIR", "/r")]);
        let e = stack(&c, false).unwrap().effective(&c).unwrap();
        // The system rootless_storage_path still applies when the user's file names no store.
        assert_eq!(e.graphroot.value, "/srv/users/65534");
        t.write("root/etc/containers/storage.conf", ROOTFUL);
        let e = stack(&c, false).unwrap().effective(&c).unwrap();
        assert_eq!((e.graphroot.value.as_str(), e.graphroot.default), ("/data/containers/storage", true));
        assert_eq!(e.driver.unwrap().value, "vfs");
    }

    #[test]
    fn root_before_6_reads_etc_over_usr_share() {
        let t = Tree::new("root5");
        t.write("root/usr/share/containers/storage.conf", "[storage]\ndriver = \"overlay\"\n");
        let c = t.caller(0, &[]);
        let e = stack(&c, false).unwrap().effective(&c).unwrap();
        assert_eq!(e.graphroot.value, "/var/lib/containers/storage");
        assert_eq!(e.driver.unwrap().value, "overlay");
        let etc = t.write("root/etc/containers/storage.conf", ROOTFUL);
        let s = stack(&c, false).unwrap();
        assert_eq!(s.target.path, etc);
        assert_eq!(s.effective(&c).unwrap().driver.unwrap().from, etc.display().to_string());
        // Only the vendor file: apply starts /etc's from a copy of it, and that replaces it.
        std::fs::remove_file(&etc).unwrap();
        let s = stack(&c, false).unwrap();
        assert_eq!(
            (s.target.path.as_path(), s.seed.as_deref()),
            (etc.as_path(), Some("[storage]\ndriver = \"overlay\"\n"))
        );
        let after = s.with_target_text("[storage]\ngraphroot = \"/g\"\n");
        assert_eq!(after.layers.len(), 1);
        assert!(after.effective(&c).unwrap().driver.is_none(), "the vendor file no longer counts");
        t.write("root/etc/containers/storage.conf", ROOTFUL);
        // Drop-ins mean nothing before 6.
        t.write("root/etc/containers/storage.conf.d/99-x.conf", "[storage]\ndriver = \"vfs\"\n");
        assert_eq!(stack(&c, false).unwrap().effective(&c).unwrap().driver.unwrap().value, "btrfs");
    }

    /// What `serve` watches: the file Podman reads first, else where one belongs.
    #[test]
    fn the_first_file_is_the_one_podman_reads() {
        let t = Tree::new("first");
        let c = t.caller(0, &[]);
        let etc = t.0.join("root/etc/containers/storage.conf");
        assert_eq!(stack(&c, false).unwrap().first_file(), etc, "none yet: where one belongs");
        let share = t.write("root/usr/share/containers/storage.conf", "[storage]\n");
        assert_eq!(stack(&c, false).unwrap().first_file(), share);
        t.write("root/etc/containers/storage.conf", ROOTFUL);
        assert_eq!(stack(&c, false).unwrap().first_file(), etc);
        let named = t.write("named.conf", "[storage]\n");
        let c = t.caller(0, &[("CONTAINERS_STORAGE_CONF", named.to_str().unwrap())]);
        assert_eq!(stack(&c, false).unwrap().first_file(), named);
        // Rootless before Podman 6: the user's file (where one belongs), never root's, which
        // only lends defaults; Podman 6: the main file, not a drop-in.
        let rootless = t.caller(1000, &[]);
        let user = t.0.join("home/.config/containers/storage.conf");
        assert_eq!(stack(&rootless, false).unwrap().first_file(), user);
        t.write("root/etc/containers/storage.rootful.conf.d/50-x.conf", "[storage]\n");
        assert_eq!(stack(&c, true).unwrap().first_file(), named);
        assert_eq!(stack(&t.caller(0, &[]), true).unwrap().first_file(), etc);
    }

    #[test]
    fn a_storage_conf_that_is_not_utf8_is_an_input_error_at_its_line() {
        let t = Tree::new("utf8");
        let etc = t.0.join("root/etc/containers/storage.conf");
        std::fs::create_dir_all(etc.parent().unwrap()).unwrap();
        std::fs::write(&etc, b"[storage]\ndriver = \"\xff\"\n").unwrap();
        match stack(&t.caller(0, &[]), false).unwrap_err() {
            Error::Input(e) => {
                assert_eq!((e.file.as_str(), e.line), (etc.to_str().unwrap(), 2), "{e}");
                assert!(e.message.contains("UTF-8"), "{e}");
            }
            other => panic!("not an input error: {other}"),
        }
    }

    #[test]
    fn drop_ins_sort_by_name_across_places_and_mask_by_name() {
        let t = Tree::new("dropins");
        t.write("root/usr/share/containers/storage.conf", "[storage]\n");
        t.write(
            "root/usr/share/containers/storage.conf.d/00-vendor.conf",
            "[storage]\ndriver = \"overlay\"\n",
        );
        t.write("root/usr/share/containers/storage.conf.d/50-masked.conf", "[storage]\ndriver = \"zfs\"\n");
        t.write("root/etc/containers/storage.conf.d/50-masked.conf", "[storage]\nimagestore = \"/img\"\n");
        t.write(
            "root/etc/containers/storage.rootful.conf.d/20-root.conf",
            "[storage]\ngraphroot = \"/srv/root\"\n",
        );
        t.write(
            "root/etc/containers/storage.rootless.conf.d/30-users.conf",
            "[storage]\ngraphroot = \"/srv/$UID\"\n",
        );
        t.write(
            "root/etc/containers/storage.rootless.conf.d/1000/40-me.conf",
            "[storage]\nrunroot = \"/r/me\"\n",
        );
        t.write(
            "root/etc/containers/storage.rootless.conf.d/1001/40-other.conf",
            "[storage]\nrunroot = \"/r/other\"\n",
        );
        // A vendor file that sorts later beats an admin file that sorts earlier.
        t.write("root/usr/share/containers/storage.conf.d/90-late.conf", "[storage]\ndriver = \"vfs\"\n");
        t.write("home/.config/containers/storage.conf.d/60-user.conf", "[storage]\ndriver = \"btrfs\"\n");
        t.write("root/etc/containers/storage.conf.d/README", "[storage]\ndriver = \"aufs\"\n");

        let root = t.caller(0, &[]);
        let s = stack(&root, true).unwrap();
        let names: Vec<String> =
            s.layers.iter().map(|l| l.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(
            names,
            [
                "storage.conf",
                "00-vendor.conf",
                "20-root.conf",
                "50-masked.conf",
                "60-user.conf",
                "90-late.conf"
            ]
        );
        assert!(s.layers[3].path.starts_with(t.0.join("root/etc")), "the admin copy masks the vendor one");
        let e = s.effective(&root).unwrap();
        assert_eq!(e.driver.as_ref().unwrap().value, "vfs");
        assert!(e.driver.unwrap().from.ends_with("90-late.conf"));
        assert_eq!(e.graphroot.value, "/srv/root");
        assert_eq!(e.imagestore.unwrap().value, "/img");
        let forced = t.caller(0, &[("STORAGE_DRIVER", "overlay2")]);
        let d = stack(&forced, true).unwrap().effective(&forced).unwrap().driver.unwrap();
        assert_eq!(
            (d.value.as_str(), d.from.as_str()),
            ("overlay", "the STORAGE_DRIVER environment variable")
        );
        assert_eq!(s.target.path, t.0.join("root/etc/containers/storage.rootful.conf.d").join(DROP_IN_NAME));

        let me = t.caller(1000, &[("XDG_RUNTIME_DIR", "/run/user/1000")]);
        let s = stack(&me, true).unwrap();
        let e = s.effective(&me).unwrap();
        assert_eq!((e.graphroot.value.as_str(), e.runroot.value.as_str()), ("/srv/1000", "/r/me"));
        assert_eq!(
            s.target.path,
            Path::new(&me.env["HOME"]).join(".config/containers/storage.conf.d").join(DROP_IN_NAME)
        );

        // Our drop-in sorts after 90-late.conf and so wins.
        let ours = s.with_target_text("[storage]\ndriver = \"overlay\"\n");
        assert_eq!(ours.effective(&me).unwrap().driver.unwrap().value, "overlay");
        // …unless a file sorts after it.
        t.write("root/usr/share/containers/storage.conf.d/zz-vendor.conf", "[storage]\ndriver = \"vfs\"\n");
        let s = stack(&me, true).unwrap().with_target_text("[storage]\ndriver = \"overlay\"\n");
        assert!(s.effective(&me).unwrap().driver.unwrap().from.ends_with("zz-vendor.conf"));
    }

    #[test]
    fn environment_files_replace_the_stack_and_the_override_comes_last() {
        let t = Tree::new("env");
        t.write("root/etc/containers/storage.conf", ROOTFUL);
        t.write("root/etc/containers/storage.conf.d/10-a.conf", "[storage]\ndriver = \"vfs\"\n");
        let named = t.write("named.conf", "[storage]\ndriver = \"overlay\"\n");
        let over = t.write("override.conf", "[storage]\ngraphroot = \"/over\"\n");
        let c = t.caller(
            0,
            &[
                ("CONTAINERS_STORAGE_CONF", named.to_str().unwrap()),
                ("CONTAINERS_STORAGE_CONF_OVERRIDE", over.to_str().unwrap()),
            ],
        );
        let s = stack(&c, true).unwrap();
        assert_eq!(s.layers.iter().map(|l| l.role).collect::<Vec<_>>(), [Role::Env, Role::Override]);
        let e = s.effective(&c).unwrap();
        assert_eq!((e.driver.unwrap().value.as_str(), e.graphroot.value.as_str()), ("overlay", "/over"));
        assert_eq!(s.target.path, named);
        // Before 6 the override is not read.
        assert_eq!(stack(&c, false).unwrap().layers.len(), 1);
        // A missing override is an error, as for Podman 6.
        let c = t.caller(0, &[("CONTAINERS_STORAGE_CONF_OVERRIDE", "/nonexistent/x.conf")]);
        assert!(matches!(stack(&c, true), Err(Error::Environment(_))));
    }

    #[test]
    fn the_user_main_file_suppresses_the_system_main_files_on_6() {
        let t = Tree::new("main6");
        t.write("root/etc/containers/storage.conf", ROOTFUL);
        t.write("home/.config/containers/storage.conf", "");
        let c = t.caller(0, &[]);
        let e = stack(&c, true).unwrap().effective(&c).unwrap();
        assert!(e.driver.is_none() && e.graphroot.default, "{e:?}");
    }
}
