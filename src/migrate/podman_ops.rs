//! Stopping and starting what holds the store: containers (through their systemd unit
//! when one manages them, else through Podman's API when it answers, else with the
//! `podman` command itself) and Podman's API services (systemd units, or a
//! `podman system service` started by hand).

use super::journal::{PodmanFacts, Service, Stopped};
use crate::error::Error;
use crate::podman::{Client, DEFAULT_STOP_TIMEOUT, Discovered, Outcome, Timeouts, runtime};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The label Podman puts on containers that `podman generate systemd --new` or Quadlet
/// units run.
pub const SYSTEMD_UNIT_LABEL: &str = "PODMAN_SYSTEMD_UNIT";
/// The units of Podman's API service.
const API_UNITS: [&str; 2] = ["podman.socket", "podman.service"];

/// Podman, reached through its socket when that answers, else through `podman`.
pub struct Podman {
    client: Client,
    runtime: tokio::runtime::Runtime,
    facts: PodmanFacts,
}

impl Podman {
    pub fn new(at: Discovered, facts: PodmanFacts) -> Result<Self, Error> {
        Ok(Podman { client: Client::new(at, Timeouts::CONTROL), runtime: runtime()?, facts })
    }

    /// The API answers now.
    pub fn answers(&self) -> bool {
        self.runtime.block_on(self.client.ping()).is_ok()
    }

    /// The process that answers on the socket now, when it answers and names itself.
    pub fn server_pid(&self) -> Option<u32> {
        self.runtime.block_on(self.client.ping()).ok().and_then(|p| p.server_pid)
    }

    /// The containers that run or are paused, each with its stop timeout and unit.
    pub fn running(&self) -> Result<Vec<Stopped>, Error> {
        let all = self.runtime.block_on(self.client.containers(&self.facts.version))?;
        let mut out = Vec::new();
        // A unit label on a machine where systemd does not run (a container, a chroot)
        // names nothing that could restart the container.
        let systemd = systemd_runs();
        for c in all.into_iter().filter(|c| c.state == "running" || c.state == "paused") {
            let inspected = self.runtime.block_on(self.client.container(&c.id))?;
            let stop_timeout =
                inspected.as_ref().and_then(|i| i.stop_timeout).unwrap_or(DEFAULT_STOP_TIMEOUT);
            out.push(Stopped {
                unit: c.labels.get(SYSTEMD_UNIT_LABEL).filter(|u| systemd && !u.is_empty()).cloned(),
                id: c.id,
                name: c.name,
                state: c.state,
                stop_timeout,
                stopped: false,
                started: false,
            });
        }
        Ok(out)
    }

    /// Stops one container with its own timeout.
    pub fn stop(&self, c: &Stopped) -> Result<String, Error> {
        if let Some(unit) = &c.unit {
            systemctl(Scope::of_url(&self.facts.url), &["stop", unit])?;
            return Ok(format!("stopped {} through its unit {unit}", c.name));
        }
        let grace = Duration::from_secs(c.stop_timeout);
        if self.answers() {
            if c.state == "paused" {
                // Podman 4.3.1 refuses to stop a paused container.
                let _ = self.runtime.block_on(self.client.unpause(&c.id));
            }
            let how = match self.runtime.block_on(self.client.stop(&c.id, grace))? {
                Outcome::Changed => "stopped",
                Outcome::AlreadySo => "was stopped already:",
            };
            return Ok(format!("{how} {} (stop timeout {} s, through the API)", c.name, c.stop_timeout));
        }
        self.cli_usable()?;
        if c.state == "paused" {
            let _ = self.cli(&["unpause", &c.id]);
        }
        self.cli(&["stop", "--time", &c.stop_timeout.to_string(), &c.id])?;
        Ok(format!("stopped {} (stop timeout {} s, with podman)", c.name, c.stop_timeout))
    }

    /// Starts one container again, and pauses it again when it was paused.
    pub fn start(&self, c: &Stopped) -> Result<String, Error> {
        if let Some(unit) = &c.unit {
            systemctl(Scope::of_url(&self.facts.url), &["start", unit])?;
            return Ok(format!("started {} through its unit {unit}", c.name));
        }
        if self.answers() {
            self.runtime.block_on(self.client.start(&c.id))?;
            if c.state == "paused" {
                self.runtime.block_on(self.client.pause(&c.id))?;
            }
            return Ok(format!("started {} (through the API)", c.name));
        }
        self.cli_usable()?;
        self.cli(&["start", &c.id])?;
        if c.state == "paused" {
            self.cli(&["pause", &c.id])?;
        }
        Ok(format!("started {} (with podman)", c.name))
    }

    /// Whether `podman` run here is the Podman that served the socket: the same mount
    /// namespace, version and store. Any other would act on another store, or on this one
    /// with another version's database.
    pub fn cli_usable(&self) -> Result<(), Error> {
        let f = &self.facts;
        let refuse = |why: String| {
            Err(Error::Environment(format!(
                "Podman's API does not answer at {} and `podman` cannot stand in for it: {why}\n  = help: \
                 start the Podman API service again, then run `podman-btrfs-advise migrate --resume`",
                f.url
            )))
        };
        if f.foreign_namespace {
            return refuse("the service ran in another mount namespace".into());
        }
        let out = match self.cli(&["info", "--format", "{{.Version.Version}} {{.Store.GraphRoot}}"]) {
            Ok(out) => out,
            Err(e) => return refuse(e.to_string()),
        };
        let (version, graphroot) = out.trim().split_once(' ').unwrap_or((out.trim(), ""));
        if version != f.version || graphroot != f.graphroot {
            return refuse(format!(
                "`podman` here is version {version} with graphroot {graphroot}, the service was {} with {}",
                f.version, f.graphroot
            ));
        }
        Ok(())
    }

    fn cli(&self, args: &[&str]) -> Result<String, Error> {
        let out = Command::new("podman")
            .args(args)
            .output()
            .map_err(|e| Error::Environment(format!("cannot run podman: {e}")))?;
        if !out.status.success() {
            return Err(Error::Environment(format!(
                "`podman {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A unix socket URL as an endpoint.
pub fn discovered(url: &str) -> Discovered {
    let path = url.strip_prefix("unix://").unwrap_or(url);
    Discovered { endpoint: crate::podman::Endpoint::Unix(path.into()), why: "--url".into() }
}

/// Whether a Podman API answers at `at` now.
pub fn answers_at(at: &Discovered) -> bool {
    let timeouts = Timeouts { first_answer: Duration::from_secs(5), request: Duration::from_secs(5) };
    runtime().is_ok_and(|rt| rt.block_on(Client::new(at.clone(), timeouts).ping()).is_ok())
}

/// A `podman system service` this migration starts on a socket of its own to read the
/// host when no API service answers, and ends (SIGTERM, then waits) before anything is
/// stopped or copied: the steps then run `podman` itself.
pub struct PlanningService {
    child: std::process::Child,
    pub url: String,
}

impl PlanningService {
    pub fn start(dir: &Path) -> Result<PlanningService, Error> {
        let socket = dir.join("planning.sock");
        let _ = std::fs::remove_file(&socket);
        let url = format!("unix://{}", socket.display());
        let child = Command::new("podman")
            .args(["system", "service", "--time=0", &url])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                Error::Environment(format!("no Podman API answers and `podman` cannot be run: {e}"))
            })?;
        let mut service = PlanningService { child, url };
        let at = Discovered { endpoint: crate::podman::Endpoint::Unix(socket), why: "--url".into() };
        let start = Instant::now();
        while !answers_at(&at) {
            if start.elapsed() > Duration::from_secs(60) || service.child.try_wait().ok().flatten().is_some()
            {
                service.end();
                return Err(Error::Environment(
                    "no Podman API answers, and `podman system service` started to read the host did not answer \
                     either within 60 s"
                        .into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(service)
    }

    /// Ends the service and waits for it.
    pub fn end(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PlanningService {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.end();
        }
    }
}

/// systemd runs here (it is PID 1 and `systemctl` exists).
pub fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Whose systemd manages a Podman's units: the system's (root's Podman), or the user
/// manager of the user whose rootless Podman it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    System,
    User(u32),
}

impl Scope {
    /// The scope of the Podman whose API socket is at `url`: a socket in a user's runtime
    /// directory (`/run/user/UID/…`, where rootless Podman puts it) or owned by a user
    /// other than root (`socket_owner`) is that user's.
    pub fn of_socket(url: &str, socket_owner: Option<u32>) -> Scope {
        let path = url.strip_prefix("unix://").unwrap_or(url);
        let in_runtime_dir = path
            .strip_prefix("/run/user/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|uid| uid.parse::<u32>().ok());
        match in_runtime_dir.or(socket_owner).filter(|uid| *uid != 0) {
            Some(uid) => Scope::User(uid),
            None => Scope::System,
        }
    }

    /// As [`Scope::of_socket`], reading the socket's owner.
    pub fn of_url(url: &str) -> Scope {
        use std::os::unix::fs::MetadataExt;
        let path = url.strip_prefix("unix://").unwrap_or(url);
        Scope::of_socket(url, std::fs::metadata(path).ok().map(|m| m.uid()))
    }

    fn uid(self) -> Option<u32> {
        match self {
            Scope::System => None,
            Scope::User(uid) => Some(uid),
        }
    }
}

/// A `systemctl` call, as it is run: its arguments, its environment, and the user it
/// runs as (`None`: as this process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Systemctl {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub run_as: Option<u32>,
}

impl Systemctl {
    /// `systemctl ARGS` for `scope`, called by user `me`: a user's units through
    /// `systemctl --user` as that user, with its runtime directory and session bus (the
    /// user manager listens there), as root may do for any user.
    pub fn new(scope: Scope, me: u32, args: &[&str]) -> Systemctl {
        let mut all: Vec<String> = Vec::new();
        let mut env = Vec::new();
        let mut run_as = None;
        if let Scope::User(uid) = scope {
            all.push("--user".into());
            let runtime = format!("/run/user/{uid}");
            env.push(("DBUS_SESSION_BUS_ADDRESS".into(), format!("unix:path={runtime}/bus")));
            env.push(("XDG_RUNTIME_DIR".into(), runtime));
            run_as = (uid != me).then_some(uid);
        }
        all.extend(args.iter().map(|a| a.to_string()));
        Systemctl { args: all, env, run_as }
    }

    fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new("systemctl");
        c.args(&self.args).envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(uid) = self.run_as {
            // The user's own group: that of its runtime directory.
            use std::os::unix::fs::MetadataExt;
            let gid = std::fs::metadata(format!("/run/user/{uid}")).map(|m| m.gid()).unwrap_or(uid);
            c.uid(uid).gid(gid);
        }
        c
    }

    /// Runs it; its output when it succeeds.
    fn run(&self) -> Result<String, Error> {
        let out =
            self.command().output().map_err(|e| Error::Environment(format!("cannot run systemctl: {e}")))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(Error::Environment(format!(
            "`systemctl {}`{} failed: {}",
            self.args.join(" "),
            self.run_as.map(|u| format!(" (as uid {u})")).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn me() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn systemctl(scope: Scope, args: &[&str]) -> Result<(), Error> {
    Systemctl::new(scope, me(), args).run().map(drop)
}

/// The units of `systemctl show --property=Id,ActiveState` output that are active (or
/// being started or reloaded: they hold the store, or are about to).
pub fn active_units(show: &str) -> Vec<String> {
    let mut active = Vec::new();
    for block in show.split("\n\n") {
        let field = |key: &str| {
            block.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).map(str::trim)
        };
        if let (Some(id), Some(state)) = (field("Id"), field("ActiveState"))
            && matches!(state, "active" | "activating" | "reloading")
            && !id.is_empty()
        {
            active.push(id.to_string());
        }
    }
    active
}

/// The Podman API services that hold the store: active systemd units (the system's, or
/// for a rootless Podman, reached at `url` in a user's runtime directory, that user's),
/// and the process that answered on the socket when it is a `podman system service` of
/// its own. Units that cannot be read are an error, not an absence: a service left
/// running would write to the old store. A user without a running user manager (no
/// session bus) has no units running.
pub fn api_services(server_pid: Option<u32>, url: &str) -> Result<Vec<Service>, Error> {
    let mut services = Vec::new();
    let scope = Scope::of_url(url);
    let user_manager = |uid: u32| Path::new(&format!("/run/user/{uid}/bus")).exists();
    if systemd_runs() && scope.uid().is_none_or(user_manager) {
        let show = [&["show", "--property=Id,ActiveState"][..], &API_UNITS[..]].concat();
        let units = active_units(&Systemctl::new(scope, me(), &show).run()?);
        if !units.is_empty() {
            services.push(Service::Systemd {
                units,
                user: scope != Scope::System,
                uid: scope.uid(),
                stopped: false,
                started: false,
            });
        }
    }
    if let Some(pid) = server_pid.filter(|p| *p != 1)
        && let Some(command) = cmdline(pid).filter(|c| is_manual_service(c))
        && !services.iter().any(|s| matches!(s, Service::Systemd { .. }) && under_systemd(pid))
    {
        services.push(Service::Manual { pid, command, stopped: false });
    }
    Ok(services)
}

/// A command line of `podman system service`.
pub fn is_manual_service(cmdline: &str) -> bool {
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    words.first().is_some_and(|w| w.ends_with("podman"))
        && words.windows(2).any(|w| w == ["system", "service"])
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " ").trim().to_string())
}

/// The process runs in a systemd unit's cgroup (podman.service started by the socket).
fn under_systemd(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains("podman.service"))
}

/// Stops a service; returns what was done.
pub fn stop_service(s: &Service) -> Result<String, Error> {
    match s {
        Service::Systemd { units, uid, .. } => {
            let scope = uid.map_or(Scope::System, Scope::User);
            // The socket first, so nothing activates the service again meanwhile.
            for u in units
                .iter()
                .filter(|u| u.ends_with(".socket"))
                .chain(units.iter().filter(|u| !u.ends_with(".socket")))
            {
                systemctl(scope, &["stop", u])?;
            }
            Ok(format!("stopped {}{}", units.join(", "), user_note(scope)))
        }
        Service::Manual { pid, command, .. } => {
            let pid = *pid;
            if cmdline(pid).is_some_and(|c| c == *command) {
                rustix::process::kill_process(
                    rustix::process::Pid::from_raw(pid as i32)
                        .ok_or_else(|| Error::Environment("bad pid".into()))?,
                    rustix::process::Signal::TERM,
                )
                .map_err(|e| {
                    Error::Environment(format!("cannot stop the Podman service (pid {pid}): {e}"))
                })?;
                let start = Instant::now();
                while alive(pid, command) {
                    if start.elapsed() > Duration::from_secs(60) {
                        return Err(Error::Environment(format!(
                            "the Podman service (pid {pid}) did not end within 60 s of SIGTERM"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Ok(format!("stopped the Podman service started by hand (pid {pid}: {command})"))
        }
    }
}

/// Starts a service again; a hand-started one is the user's to start.
pub fn start_service(s: &Service) -> Result<Option<String>, Error> {
    match s {
        Service::Systemd { units, uid, .. } => {
            let scope = uid.map_or(Scope::System, Scope::User);
            for u in units {
                systemctl(scope, &["start", u])?;
            }
            Ok(Some(format!("started {}{}", units.join(", "), user_note(scope))))
        }
        Service::Manual { .. } => Ok(None),
    }
}

/// How a user's units are named in what is said.
fn user_note(scope: Scope) -> String {
    match scope {
        Scope::System => String::new(),
        Scope::User(uid) => format!(" (systemctl --user of uid {uid})"),
    }
}

/// What a Quadlet unit file declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuadletKind {
    Container,
    Volume,
    Pod,
    Kube,
}

/// A Quadlet unit file found in one of Quadlet's directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuadletUnit {
    pub path: PathBuf,
    pub kind: QuadletKind,
    /// The systemd service Quadlet generates from it.
    pub service: String,
    /// A user unit (run by a rootless Podman), not one of the system's.
    pub user: bool,
}

/// The preflight lines about Quadlet units for the Podman reached at `url` (see
/// [`quadlet_checks`]). For the rootless Podman of another user than this process's,
/// that user's own directory lies in its home (from the password database), not ours.
pub fn quadlet_preflight(url: &str, rootless: bool, containers: &[Stopped]) -> Vec<String> {
    let env = |name: &str| std::env::var(name).ok();
    let theirs = match Scope::of_url(url) {
        Scope::User(uid) if uid != me() => {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            Some(home_of(&passwd, uid).map(|h| h.join(".config")))
        }
        _ => None,
    };
    let (units, unreadable) = quadlet_units(&quadlet_dirs(&env, theirs, rootless));
    quadlet_checks(&units, &unreadable, containers, rootless)
}

/// The home directory of `uid` in `/etc/passwd` text.
pub fn home_of(passwd: &str, uid: u32) -> Option<PathBuf> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse::<u32>().ok() == Some(uid) && !f[5].is_empty())
            .then(|| PathBuf::from(f[5]))
    })
}

/// Where Quadlet reads unit files, each with whether its units are user units: the
/// system's directories (their `users/` subdirectories hold user units), and the user's
/// own `containers/systemd` in its configuration directory: `config_home` when given
/// (`Some(None)`: that user has none), else `$XDG_CONFIG_HOME`, else `~/.config`.
/// `QUADLET_UNIT_DIRS`, which Quadlet itself honours, replaces them all (as units of the
/// scope `rootless` names).
pub fn quadlet_dirs(
    env: &dyn Fn(&str) -> Option<String>,
    config_home: Option<Option<PathBuf>>,
    rootless: bool,
) -> Vec<(PathBuf, bool)> {
    if let Some(dirs) = env("QUADLET_UNIT_DIRS").filter(|d| !d.is_empty()) {
        return dirs.split(':').filter(|d| !d.is_empty()).map(|d| (PathBuf::from(d), rootless)).collect();
    }
    let mut dirs: Vec<(PathBuf, bool)> =
        ["/run/containers/systemd", "/etc/containers/systemd", "/usr/share/containers/systemd"]
            .iter()
            .map(|d| (PathBuf::from(d), false))
            .collect();
    let config_home = config_home.unwrap_or_else(|| {
        env("XDG_CONFIG_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))
    });
    if let Some(home) = config_home {
        dirs.push((home.join("containers/systemd"), true));
    }
    dirs
}

/// The `.container`, `.volume`, `.pod` and `.kube` units in `dirs` and their
/// subdirectories (those below `users/` of a system directory are user units), and the
/// directories that exist but cannot be read, as messages: their units are unknown, not
/// absent.
pub fn quadlet_units(dirs: &[(PathBuf, bool)]) -> (Vec<QuadletUnit>, Vec<String>) {
    let mut units = Vec::new();
    let mut unreadable = Vec::new();
    for (root, user) in dirs {
        let mut todo = vec![(root.clone(), *user)];
        while let Some((dir, user)) = todo.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == *root => continue,
                Err(e) => {
                    unreadable.push(format!("cannot read the Quadlet directory {}: {e}", dir.display()));
                    continue;
                }
            };
            for entry in entries.flatten() {
                let path = entry.path();
                // Quadlet follows symlinked unit files and directories alike.
                if path.is_dir() {
                    todo.push((path.clone(), user || (dir == *root && entry.file_name() == "users")));
                    continue;
                }
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
                if let Some((kind, service)) = quadlet_service(name) {
                    units.push(QuadletUnit { path, kind, service, user });
                }
            }
        }
    }
    units.sort_by(|a, b| a.path.cmp(&b.path));
    (units, unreadable)
}

/// The kind of a Quadlet unit file named `file` and the service Quadlet makes of it.
pub fn quadlet_service(file: &str) -> Option<(QuadletKind, String)> {
    let (stem, ext) = file.rsplit_once('.')?;
    if stem.is_empty() || stem.starts_with('.') {
        return None;
    }
    Some(match ext {
        "container" => (QuadletKind::Container, format!("{stem}.service")),
        "kube" => (QuadletKind::Kube, format!("{stem}.service")),
        "volume" => (QuadletKind::Volume, format!("{stem}-volume.service")),
        "pod" => (QuadletKind::Pod, format!("{stem}-pod.service")),
        _ => return None,
    })
}

/// The preflight lines for Quadlet units: what each is and what the migration does about
/// it. `rootless`: the Podman migrated is a user's, whose units are user units;
/// `containers`: what runs now, with the unit that manages each.
pub fn quadlet_checks(
    units: &[QuadletUnit],
    unreadable: &[String],
    containers: &[Stopped],
    rootless: bool,
) -> Vec<String> {
    let mut checks: Vec<String> =
        unreadable.iter().map(|u| format!("{u}; its units were not checked")).collect();
    for u in units {
        let scope = if u.user { "user unit" } else { "system unit" };
        let head = format!("Quadlet {} → {} ({scope})", u.path.display(), u.service);
        let what = if u.user != rootless {
            format!(
                "runs {} Podman's store, which this migration does not touch",
                if u.user { "a rootless" } else { "the system" }
            )
        } else {
            let running: Vec<&str> = containers
                .iter()
                .filter(|c| c.unit.as_deref() == Some(u.service.as_str()))
                .map(|c| c.name.as_str())
                .collect();
            let managed = |what: &str| {
                if running.is_empty() {
                    format!("{what}; nothing of it runs now, nothing to stop")
                } else {
                    format!(
                        "{what}; runs {}: stopped and started again through {}",
                        running.join(", "),
                        u.service
                    )
                }
            };
            match u.kind {
                QuadletKind::Container => managed(&format!(
                    "its container carries {SYSTEMD_UNIT_LABEL}={} and is stopped through the unit, so systemd does not restart it mid-copy",
                    u.service
                )),
                QuadletKind::Kube => managed(&format!(
                    "`podman kube play`: its containers carry {SYSTEMD_UNIT_LABEL}={} and are stopped through the unit",
                    u.service
                )),
                QuadletKind::Pod => managed(
                    "a pod: each of its containers is stopped and started through its own .container unit",
                ),
                QuadletKind::Volume => "makes its volume once; the volume keeps its name and path, its data moves like any volume's".into(),
            }
        };
        checks.push(format!("{head}: {what}"));
    }
    checks
}

/// The process still runs this command (not a zombie, not a reused pid).
fn alive(pid: u32, command: &str) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').and_then(|i| s[i + 1..].split_whitespace().next().map(|st| st == "Z")))
        .unwrap_or(true);
    !zombie && cmdline(pid).is_some_and(|c| c == command)
}

/// Processes other than this one that hold a file, their working directory or their root
/// below one of `paths` (read from /proc/PID/{fd,cwd,root}), as `pid command`: a conmon
/// still running a container's exit command, a `podman` still cleaning up.
pub fn holders(paths: &[&Path]) -> Vec<String> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let proc = entry.path();
        let mut links: Vec<std::path::PathBuf> =
            ["cwd", "root"].iter().filter_map(|l| std::fs::read_link(proc.join(l)).ok()).collect();
        links.extend(
            std::fs::read_dir(proc.join("fd"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok()),
        );
        // A process whose root is `/` holds nothing by its root. A command line naming a
        // path counts too: a conmon hands its container's cleanup to `podman --root
        // GRAPHROOT container cleanup` before that opens anything.
        let command = cmdline(pid).unwrap_or_default();
        let named = paths.iter().any(|p| command.split_whitespace().any(|w| Path::new(w).starts_with(p)));
        if named || links.iter().any(|l| l != Path::new("/") && paths.iter().any(|p| l.starts_with(p))) {
            found.push(format!("{pid} {command}"));
        }
    }
    found
}

/// Waits until nothing has held a file below `paths` for a second, up to `limit`; the
/// holders when it does not happen.
pub fn wait_until_released(paths: &[&Path], limit: Duration) -> Result<(), Vec<String>> {
    let start = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    loop {
        let held = holders(paths);
        if held.is_empty() {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(1) {
                return Ok(());
            }
        } else {
            quiet_since = None;
        }
        if !held.is_empty() && start.elapsed() > limit {
            return Err(held);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether process `pid` runs in a mount namespace other than ours.
pub fn foreign_namespace(pid: Option<u32>) -> bool {
    let Some(pid) = pid else { return false };
    let ours = std::fs::read_link("/proc/self/ns/mnt").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    ours.is_some() && theirs.is_some() && ours != theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_started_service_is_told_by_its_command_line() {
        assert!(is_manual_service("/usr/bin/podman system service --time=0 unix:///x.sock"));
        assert!(is_manual_service("podman --log-level info system service"));
        assert!(!is_manual_service("/usr/lib/systemd/systemd --system"));
        assert!(!is_manual_service("conmon --api-version 1"));
    }

    #[test]
    fn a_socket_in_a_users_runtime_directory_is_that_users_podman() {
        assert_eq!(Scope::of_socket("unix:///run/user/1000/podman/podman.sock", None), Scope::User(1000));
        assert_eq!(Scope::of_socket("/run/user/1000/podman/podman.sock", Some(0)), Scope::User(1000));
        assert_eq!(Scope::of_socket("unix:///run/podman/podman.sock", Some(0)), Scope::System);
        assert_eq!(Scope::of_socket("unix:///run/podman/podman.sock", None), Scope::System);
        // Elsewhere, the socket's owner tells.
        assert_eq!(Scope::of_socket("unix:///srv/p.sock", Some(1001)), Scope::User(1001));
        assert_eq!(Scope::of_socket("unix:///run/user/0/podman/podman.sock", None), Scope::System);
        assert_eq!(Scope::of_socket("unix:///run/user/x/podman.sock", None), Scope::System);
    }

    #[test]
    fn user_units_are_reached_as_the_user_through_its_own_bus() {
        let c = Systemctl::new(Scope::User(1000), 0, &["stop", "podman.socket"]);
        assert_eq!(c.args, ["--user", "stop", "podman.socket"]);
        assert_eq!(c.run_as, Some(1000), "root runs it as the user");
        assert!(c.env.contains(&("XDG_RUNTIME_DIR".into(), "/run/user/1000".into())), "{c:?}");
        assert!(
            c.env.contains(&("DBUS_SESSION_BUS_ADDRESS".into(), "unix:path=/run/user/1000/bus".into())),
            "{c:?}"
        );
        // The user itself needs no change of user.
        assert_eq!(Systemctl::new(Scope::User(1000), 1000, &["start", "x"]).run_as, None);
        let c = Systemctl::new(Scope::System, 0, &["start", "podman.service"]);
        assert_eq!(
            (c.args.as_slice(), c.env.len(), c.run_as),
            (&["start".to_string(), "podman.service".into()][..], 0, None)
        );
    }

    /// A directory of its own below the system's temporary directory, removed on drop.
    struct Dirs(PathBuf);

    impl Dirs {
        fn new(tag: &str) -> Dirs {
            let d = std::env::temp_dir().join(format!("podfs-quadlet-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dirs(d)
        }

        fn file(&self, rel: &str) -> PathBuf {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "[Container]\nImage=x\n").unwrap();
            p
        }
    }

    impl Drop for Dirs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn running(name: &str, unit: Option<&str>) -> Stopped {
        Stopped {
            id: format!("{name}-id"),
            name: name.into(),
            state: "running".into(),
            stop_timeout: 10,
            unit: unit.map(String::from),
            stopped: false,
            started: false,
        }
    }

    #[test]
    fn quadlet_units_are_found_with_their_services_and_scopes() {
        let d = Dirs::new("units");
        let (etc, share, home) = (d.0.join("etc"), d.0.join("share"), d.0.join("home"));
        d.file("etc/db.container");
        d.file("etc/web/app.kube");
        d.file("etc/users/1000/mine.container");
        d.file("etc/README.md");
        d.file("etc/net.network");
        d.file("share/cache.volume");
        d.file("home/group.pod");
        let dirs = [(etc.clone(), false), (share, false), (home, true), (d.0.join("missing"), false)];
        let (units, unreadable) = quadlet_units(&dirs);
        assert!(unreadable.is_empty(), "a directory that does not exist holds no units: {unreadable:?}");
        let seen: Vec<(String, QuadletKind, &str, bool)> = units
            .iter()
            .map(|u| {
                (u.path.strip_prefix(&d.0).unwrap().display().to_string(), u.kind, u.service.as_str(), u.user)
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("etc/db.container".into(), QuadletKind::Container, "db.service", false),
                ("etc/users/1000/mine.container".into(), QuadletKind::Container, "mine.service", true),
                ("etc/web/app.kube".into(), QuadletKind::Kube, "app.service", false),
                ("home/group.pod".into(), QuadletKind::Pod, "group-pod.service", true),
                ("share/cache.volume".into(), QuadletKind::Volume, "cache-volume.service", false),
            ]
        );

        // A directory that cannot be read is named, never taken as empty.
        let not_a_dir = d.file("plain-file");
        let (units, unreadable) = quadlet_units(&[(not_a_dir.clone(), false)]);
        assert!(units.is_empty());
        assert_eq!(unreadable.len(), 1, "{unreadable:?}");
        assert!(unreadable[0].contains(&not_a_dir.display().to_string()), "{unreadable:?}");
    }

    #[test]
    fn quadlet_checks_say_what_migrate_does_about_each_unit() {
        let d = Dirs::new("checks");
        let unit = |rel: &str, user: bool| {
            let path = d.file(rel);
            let (kind, service) = quadlet_service(path.file_name().unwrap().to_str().unwrap()).unwrap();
            QuadletUnit { path, kind, service, user }
        };
        let units = [
            unit("db.container", false),
            unit("idle.container", false),
            unit("data.volume", false),
            unit("users/mine.container", true),
        ];
        let containers = [running("pg", Some("db.service")), running("other", None)];
        let checks = quadlet_checks(
            &units,
            &["cannot read the Quadlet directory /x: denied".into()],
            &containers,
            false,
        );
        assert_eq!(checks.len(), 5, "{checks:#?}");
        assert!(checks[0].contains("/x") && checks[0].contains("not checked"), "{}", checks[0]);
        assert!(
            checks[1].contains("db.service")
                && checks[1].contains("PODMAN_SYSTEMD_UNIT=db.service")
                && checks[1].contains("runs pg: stopped and started again through db.service"),
            "{}",
            checks[1]
        );
        assert!(checks[2].contains("nothing of it runs now"), "{}", checks[2]);
        assert!(
            checks[3].contains("data-volume.service") && checks[3].contains("keeps its name and path"),
            "{}",
            checks[3]
        );
        assert!(checks[4].contains("user unit") && checks[4].contains("does not touch"), "{}", checks[4]);
        // For a rootless Podman, the user's units are the ones that matter.
        let checks = quadlet_checks(&units[3..], &[], &[running("mine", Some("mine.service"))], true);
        assert!(checks[0].contains("runs mine: stopped and started again"), "{}", checks[0]);
    }

    #[test]
    fn quadlet_directories_are_the_systems_and_the_users() {
        let env = |name: &str| match name {
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        let dirs = quadlet_dirs(&env, None, false);
        assert!(dirs.contains(&(PathBuf::from("/etc/containers/systemd"), false)), "{dirs:?}");
        assert!(dirs.contains(&(PathBuf::from("/usr/share/containers/systemd"), false)), "{dirs:?}");
        assert!(dirs.contains(&(PathBuf::from("/home/u/.config/containers/systemd"), true)), "{dirs:?}");
        // Another user's rootless Podman: that user's directory, not ours.
        let theirs = Some(Some(PathBuf::from("/home/v/.config")));
        let dirs = quadlet_dirs(&env, theirs, true);
        assert!(dirs.contains(&(PathBuf::from("/home/v/.config/containers/systemd"), true)), "{dirs:?}");
        assert!(!dirs.iter().any(|(d, _)| d.starts_with("/home/u")), "{dirs:?}");
        assert_eq!(quadlet_dirs(&env, Some(None), true).len(), 3);
        let passwd = "root:x:0:0:root:/root:/bin/bash\nv:x:1001:1001::/home/v:/bin/sh\nbad line\n";
        assert_eq!(home_of(passwd, 1001), Some(PathBuf::from("/home/v")));
        assert_eq!(home_of(passwd, 1002), None);
        let env = |name: &str| match name {
            "XDG_CONFIG_HOME" => Some("/cfg".to_string()),
            _ => None,
        };
        assert!(quadlet_dirs(&env, None, false).contains(&(PathBuf::from("/cfg/containers/systemd"), true)));
        let env = |name: &str| (name == "QUADLET_UNIT_DIRS").then(|| "/a:/b".to_string());
        assert_eq!(
            quadlet_dirs(&env, None, true),
            [(PathBuf::from("/a"), true), (PathBuf::from("/b"), true)]
        );
        assert_eq!(quadlet_service("x.network"), None);
        assert_eq!(quadlet_service(".container"), None);
    }

    #[test]
    fn active_units_are_read_from_systemctl_show() {
        let show = "Id=podman.socket\nActiveState=active\n\nId=podman.service\nActiveState=inactive\n";
        assert_eq!(active_units(show), ["podman.socket"]);
        let show = "ActiveState=activating\nId=podman.service\n\nId=podman.socket\nActiveState=reloading\n";
        assert_eq!(active_units(show), ["podman.service", "podman.socket"]);
        assert!(active_units("").is_empty());
        assert!(active_units("Id=podman.socket\nActiveState=failed\n").is_empty());
        // A unit systemd does not know is shown inactive.
        assert!(
            active_units("Id=podman.service\nActiveState=inactive\n\nId=\nActiveState=active\n").is_empty()
        );
    }
}
