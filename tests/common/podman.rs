//! A real Podman service on a temporary socket, its graphroot on a loop-mounted btrfs,
//! on either of the two Podman versions the tests cover. Drop removes its
//! containers, ends exactly the processes it started (by pid) and unmounts what it
//! mounted, also when a test fails.

use super::{LoopBtrfs, TempDir, ok, run, skip_or_fail};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which Podman runs the service and the client commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Podman {
    /// The machine's own podman (Debian 12: 4.3.1).
    Host,
    /// Debian 13's podman (5.4.2) from the trixie root that `contrib/dev.sh deps` makes,
    /// in a mount namespace of its own whose root it is.
    Trixie,
}

/// Runs `fn NAME(podman: Podman)` once per Podman, as the tests `NAME::host` and
/// `NAME::trixie`.
#[macro_export]
macro_rules! on_each_podman {
    ($name:ident) => {
        mod $name {
            #[test]
            fn host() {
                super::$name($crate::common::podman::Podman::Host)
            }
            #[test]
            fn trixie() {
                super::$name($crate::common::podman::Podman::Trixie)
            }
        }
    };
}

/// Where `contrib/dev.sh deps` puts the trixie root, and the file it writes when done.
pub const TRIXIE_ROOT_ENV: &str = "PODFS_TRIXIE_ROOT";
const TRIXIE_ROOT_DEFAULT: &str = "/var/cache/podman-btrfs-advise/trixie-podman";
const TRIXIE_MARKER: &str = ".podfs-trixie-complete";

impl Podman {
    pub fn trixie_root() -> PathBuf {
        std::env::var_os(TRIXIE_ROOT_ENV).map(PathBuf::from).unwrap_or_else(|| TRIXIE_ROOT_DEFAULT.into())
    }

    /// The major version this choice runs, checked against the server when it starts
    /// (any for the machine's own).
    pub fn major(self) -> Option<u32> {
        match self {
            Podman::Host => None,
            Podman::Trixie => Some(5),
        }
    }

    /// Whether `version` (e.g. `5.4.2`) is one this choice may run.
    pub fn runs(self, version: &str) -> bool {
        self.major().is_none_or(|m| version.split('.').next() == Some(m.to_string().as_str()))
    }

    /// Like [`can_run`](super::can_run) for what this Podman needs beyond the test's own
    /// tools: false (with the reason printed) when the test must skip, a panic under CI.
    pub fn available(self, test: &str) -> bool {
        match self {
            Podman::Host => super::can_run(test, &["unshare", "nsenter"], true),
            Podman::Trixie => {
                let root = Self::trixie_root();
                let marker = root.join(TRIXIE_MARKER);
                if marker.is_file() {
                    return super::can_run(test, &["unshare", "nsenter", "pivot_root"], true);
                }
                skip_or_fail(&format!(
                    "{test}: skipped, needs the Debian trixie root with Podman 5 at {} \
                     (`contrib/dev.sh deps` makes it; {TRIXIE_ROOT_ENV} moves it)",
                    root.display()
                ))
            }
        }
    }
}

pub struct PodmanService {
    pub fs: LoopBtrfs,
    /// The btrfs top level, mounted.
    pub top: PathBuf,
    pub graphroot: PathBuf,
    pub socket: PathBuf,
    pub url: String,
    pub podman: Podman,
    /// The server's version, e.g. `5.4.2`.
    pub version: String,
    dir: TempDir,
    child: Option<Child>,
    root: Option<PodmanRoot>,
}

impl PodmanService {
    /// Starts a service of the machine's podman with graphroot in its own subvolume
    /// `storage` of a fresh btrfs.
    pub fn start(driver: &str) -> Self {
        Self::start_on(Podman::Host, driver)
    }

    pub fn start_on(podman: Podman, driver: &str) -> Self {
        Self::start_with_on(podman, driver, "", &[])
    }

    /// Starts a service of `podman`, with `extra` appended to its containers.conf. The
    /// trixie one sees its own directories, the btrfs and `shared` at their host paths, so
    /// every path (sockets, graphroot, volumes) reads the same inside and outside.
    pub fn start_with_on(podman: Podman, driver: &str, extra: &str, shared: &[&Path]) -> Self {
        Self::start_fs(podman, driver, extra, shared, true, "2G", "btrfs")
    }

    /// A service of `podman` (overlay) that knows the volume plugin `podfs` on `socket`,
    /// whose directory it shares.
    pub fn start_with_plugin_on(podman: Podman, socket: &Path) -> Self {
        let conf = format!("\n[engine.volume_plugins]\npodfs = \"{}\"\n", socket.display());
        Self::start_with_on(podman, "overlay", &conf, &[socket.parent().expect("a socket in a directory")])
    }

    /// As [`start_on`](Self::start_on), with graphroot a plain directory in the
    /// filesystem's top level (as on a host that never planned its layout).
    pub fn start_in_directory_on(podman: Podman, driver: &str) -> Self {
        Self::start_fs(podman, driver, "", &[], false, "2G", "btrfs")
    }

    /// As [`start_in_directory_on`](Self::start_in_directory_on) on a filesystem of `size`.
    pub fn start_in_directory_sized(podman: Podman, driver: &str, size: &str) -> Self {
        Self::start_fs(podman, driver, "", &[], false, size, "btrfs")
    }

    /// As [`start_in_directory_on`](Self::start_in_directory_on), on an ext4 filesystem of
    /// `size` (a host without btrfs); the trixie root also sees `shared`.
    pub fn start_on_ext4(podman: Podman, driver: &str, size: &str, shared: &[&Path]) -> Self {
        Self::start_fs(podman, driver, "", shared, false, size, "ext4")
    }

    fn start_fs(
        podman: Podman,
        driver: &str,
        extra: &str,
        shared: &[&Path],
        subvolume: bool,
        size: &str,
        fs: &str,
    ) -> Self {
        let mut fs = LoopBtrfs::with_fs(size, fs);
        let top = fs.mount("/", "");
        let graphroot = top.join("storage");
        if subvolume {
            ok(Command::new("btrfs").args(["subvolume", "create"]).arg(&graphroot));
        } else {
            std::fs::create_dir(&graphroot).unwrap();
        }
        let dir = TempDir::new("podman");
        let d = dir.path();
        write_storage_conf(d, driver, &graphroot);
        write_config(d, extra);
        let socket = d.join("podman.sock");
        let url = format!("unix://{}", socket.display());
        let mut service = PodmanService {
            fs,
            top,
            graphroot,
            socket,
            url,
            podman,
            version: String::new(),
            dir,
            child: None,
            root: None,
        };
        let mut binds = vec![service.dir.path(), service.fs.dir.path()];
        binds.extend_from_slice(shared);
        service.root = Some(PodmanRoot::new(podman, &binds));
        service.start_again();
        service
    }

    /// `program` where this service's Podman runs (its namespace), with its configuration.
    pub fn command(&self, program: &str) -> Command {
        let mut c = self.root.as_ref().expect("set up in start_with_on").command(program);
        c.envs(env_of(self.dir.path()));
        c
    }

    /// Starts the service process (again, after [`stop`](Self::stop)) on the same socket
    /// and storage, and waits until it answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the service is running already");
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(d.join("service.log")).unwrap();
        let child = self
            .command("podman")
            .args(["system", "service", "--time=0", &self.url])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start podman system service");
        self.child = Some(child);
        self.wait_ready();
    }

    /// The environment that points Podman at this service's configuration.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        env_of(self.dir.path())
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if UnixStream::connect(&self.socket).is_ok() {
                let out = run(self.podman().args(["version", "--format", "{{.Server.Version}}"]));
                if out.status.success() {
                    self.version = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    assert!(
                        self.podman.runs(&self.version),
                        "{:?} runs Podman {}",
                        self.podman,
                        self.version
                    );
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("podman service did not come up: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    /// The podman remote client of the same version, talking to this service.
    pub fn podman(&self) -> Command {
        let mut c = self.command("podman");
        c.arg("--url").arg(&self.url);
        c
    }

    /// Runs a podman command that must succeed; returns its trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(self.podman().args(args)).trim().to_string()
    }

    /// Imports a static busybox as an image under each of `names` (no registry needed).
    pub fn import_busybox(&self, names: &[&str]) {
        let tar = super::busybox_tar(self.dir.path());
        self.ok(&["import", tar.to_str().unwrap(), names[0]]);
        for n in &names[1..] {
            self.ok(&["tag", names[0], n]);
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Our binary where this service's Podman runs, so that `podman` there is the Podman
    /// that serves the socket: in the machine's Podman's namespace; in the trixie root the
    /// copy in `inside` (a directory that root sees), or without one from here, reaching
    /// Podman 5 through its socket alone.
    pub fn tool(&self, inside: Option<&Path>) -> Command {
        match (self.podman, inside) {
            (Podman::Host, _) => self.command(env!("CARGO_BIN_EXE_podman-btrfs-advise")),
            (Podman::Trixie, Some(dir)) => self.command(dir.join("podman-btrfs-advise").to_str().unwrap()),
            (Podman::Trixie, None) => super::bin(),
        }
    }

    /// `tool migrate ARGS` against this service, its journal in `state`, with `home` as
    /// HOME and XDG_CONFIG_HOME; `--url` unless ARGS continue a journal.
    pub fn migrate_command(&self, mut tool: Command, args: &[&str], state: &Path, home: &Path) -> Command {
        tool.arg("migrate").args(args).arg("--state-dir").arg(state);
        let continues =
            |a: &&str| ["--resume", "--rollback", "--finalize", "--status"].iter().any(|c| a.starts_with(c));
        if !args.iter().any(continues) {
            tool.args(["--url", &self.url]);
        }
        tool.envs(self.env()).env("HOME", home).env("XDG_CONFIG_HOME", home).stdin(Stdio::null());
        tool
    }

    /// Where the volume `name` keeps its data, as Podman names it.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", name]).into()
    }

    /// Unmounts everything below `under` in this namespace, deepest first (container
    /// rootfs and shm mounts of the host's Podman).
    fn unmount_below(under: &Path) {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = format!("{}/", under.display());
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(String::from))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        points.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in points {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }

    /// Stops the service (for restart tests); `start_again` brings it back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The pids the harness started itself: the service, and the holder of its namespace.
    pub fn own_processes(&self) -> Vec<u32> {
        let holder = self.root.as_ref().map(|r| r.namespace.holder.id());
        self.child.iter().map(Child::id).chain(holder).collect()
    }

    /// Pids of every process that runs for this service's containers: each conmon (from
    /// the pid files Podman keeps under runroot) and whatever runs below it.
    pub fn container_processes(&self) -> Vec<u32> {
        let runroot = self.dir.path().join("run");
        let mut conmons = Vec::new();
        let mut stack = vec![runroot.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                } else if e.file_name() == "conmon.pid" {
                    conmons
                        .extend(std::fs::read_to_string(&p).ok().and_then(|s| s.trim().parse::<u32>().ok()));
                }
            }
        }
        // A pid from a stale file may belong to someone else by now: only a conmon
        // started for this runroot counts.
        let runroot = runroot.to_string_lossy().into_owned();
        conmons.retain(|pid| cmdline(*pid).is_some_and(|c| c.contains("conmon") && c.contains(&runroot)));
        with_descendants(&conmons)
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ =
                self.podman().args(["rm", "--all", "--force", "--time", "0"]).stdout(Stdio::null()).status();
        }
        // Collected while the service runs, as conmon may be gone after it stops.
        let leftovers = self.container_processes();
        self.stop();
        end(&leftovers);
        // The namespace, with every mount in it, ends with its last process.
        drop(self.root.take());
        Self::unmount_below(&self.top);
        Self::unmount_below(self.dir.path());
    }
}

/// Writes `d/storage.conf`: a store of `driver` at `graphroot`, its runroot `d/run`.
pub fn write_storage_conf(d: &Path, driver: &str, graphroot: &Path) {
    std::fs::create_dir_all(d.join("run")).unwrap();
    std::fs::write(
        d.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"{driver}\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            graphroot.display(),
            d.join("run").display()
        ),
    )
    .unwrap();
}

/// Writes the containers.conf (with `extra` appended) and registries.conf every test
/// Podman runs with into `d`, beside the directories they name; [`env_of`] points Podman
/// at them. Run that Podman in a [`PodmanRoot`]: some of its state ignores every file.
pub fn write_config(d: &Path, extra: &str) {
    for sub in ["run", "tmp"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    // File locks under tmp_dir: the default shm segment /dev/shm/libpod_lock is the
    // machine's, shared by every Podman on it; a test must neither take lock numbers
    // from it nor leak them there when a run is cut short. Networks and registries
    // likewise come from the test's directory, never the machine's /etc/containers.
    std::fs::write(
        d.join("containers.conf"),
        format!(
            "[containers]\ndefault_ulimits = []\n\n[network]\nnetwork_config_dir = \"{}\"\n\n\
             [engine]\ntmp_dir = \"{}\"\ncgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\nevents_logfile_path = \"{}\"\nruntime = \"runc\"\nlock_type = \"file\"\n{extra}",
            d.join("networks").display(),
            d.join("tmp").display(),
            d.join("events.log").display()
        ),
    )
    .unwrap();
    std::fs::write(d.join("registries.conf"), "").unwrap();
}

/// The environment that points Podman (and the tool) at the configuration in `d`.
pub fn env_of(d: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("CONTAINERS_STORAGE_CONF", d.join("storage.conf")),
        ("CONTAINERS_CONF", d.join("containers.conf")),
        ("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf")),
        // migrate's preflight lists Quadlet units: from here, never the machine's.
        ("QUADLET_UNIT_DIRS", d.join("quadlet")),
        // Podman 5 warns on every start that cgroups v1 is deprecated.
        ("PODMAN_IGNORE_CGROUPSV1_WARNING", "1".into()),
    ]
}

/// Where the commands of one Podman run, each in a mount namespace of its own: the
/// machine's Podman with the machine's Podman state and configuration hidden (see
/// host-namespace.sh), or the trixie root's (see trixie-chroot.sh). Dropping it ends the
/// namespace and every process left in it.
pub struct PodmanRoot {
    pub podman: Podman,
    namespace: Namespace,
}

impl PodmanRoot {
    /// `shared`: host directories the trixie root must see at the same paths (the
    /// machine's Podman sees every path as it is).
    pub fn new(podman: Podman, shared: &[&Path]) -> Self {
        let namespace = match podman {
            Podman::Host => Namespace::new(HOST_SCRIPT, &[], false),
            Podman::Trixie => {
                let mut args = vec![Podman::trixie_root()];
                args.extend(shared.iter().map(|p| p.to_path_buf()));
                Namespace::new(CHROOT_SCRIPT, &args, true)
            }
        };
        PodmanRoot { podman, namespace }
    }

    /// `program` (e.g. `podman`) of this root, inside its namespace.
    pub fn command(&self, program: &str) -> Command {
        self.namespace.enter(program)
    }
}

/// A mount namespace set up by a script and held by its `sleep`, so the service can stop
/// and start again inside; commands join it with `nsenter`.
struct Namespace {
    holder: Child,
    /// The script also changed the root (commands take the holder's root and `/`).
    rooted: bool,
}

/// Also used by contrib/bench/scan-vs-df.sh.
const CHROOT_SCRIPT: &str = include_str!("trixie-chroot.sh");
const HOST_SCRIPT: &str = include_str!("host-namespace.sh");

impl Namespace {
    fn new(script: &str, args: &[PathBuf], rooted: bool) -> Self {
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start unshare");
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line);
        if line.trim() != "ready" {
            let _ = holder.kill();
            let _ = holder.wait();
            let mut err = String::new();
            let _ = holder.stderr.take().unwrap().read_to_string(&mut err);
            panic!("cannot set up the Podman namespace ({args:?}): {err}");
        }
        Namespace { holder, rooted }
    }

    /// `program` inside the namespace (and, for a rooted one, in its root's `/`).
    fn enter(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-m"]);
        if self.rooted {
            c.args(["-r", "-w"]);
        }
        c.arg(program);
        c
    }

    fn namespace(&self) -> Option<PathBuf> {
        std::fs::read_link(format!("/proc/{}/ns/mnt", self.holder.id())).ok()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Everything still in the namespace (a conmon whose pid file is gone, a cleanup
        // process), with its children (container processes live in namespaces of their own).
        if let Some(ns) = self.namespace() {
            let members: Vec<u32> = pids()
                .into_iter()
                .filter(|p| *p != self.holder.id())
                .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/mnt")).is_ok_and(|n| n == ns))
                .collect();
            end(&with_descendants(&members));
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// `(state, parent)` from /proc/PID/stat; the command name may hold spaces and parentheses.
fn stat(pid: u32) -> Option<(char, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = s[s.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

/// `roots` and every process below them, parents first.
fn with_descendants(roots: &[u32]) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = pids().into_iter().filter_map(|p| Some((p, stat(p)?.1))).collect();
    let mut all = roots.to_vec();
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        all.extend(
            parents
                .iter()
                .filter(|(p, pp)| *pp == parent && !all.contains(p))
                .map(|(p, _)| *p)
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    all
}

pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// SIGKILLs `pids` and waits (up to 5 s) until none runs any more.
fn end(pids: &[u32]) {
    for pid in pids {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
    }
    let start = Instant::now();
    while pids.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
}
