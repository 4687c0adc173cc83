//! The container-storage part of `bench`: the machine's own `podman` CLI on throwaway stores
//! of the overlay and btrfs drivers inside the scratch directory, timing what a host does
//! all day with an image of many small files: import, create, start, a change to every
//! file, stop, commit, rm and rmi.
//!
//! Podman must not touch the host's own Podman state. Its storage, run and lock paths come
//! from flags and a containers.conf of our own, but some paths it writes whatever it is
//! told: Podman 4 keeps its blob-info cache in /var/lib/containers/cache, runc its state in
//! /run/runc, netavark its run directory in /run/containers/networks. So every Podman
//! command runs in a mount namespace of the bench's own (held by a shell that waits on a
//! pipe) in which /run and /var/lib/containers are empty tmpfs; the signature policy comes
//! from a HOME inside the scratch directory. Container mounts also stay in that namespace
//! and end with it. The containers' cgroups (Podman's cgroupfs manager makes them in the
//! host's hierarchy) lie below a cgroup parent of the bench's own, removed at the end.
//!
//! The image is a tar written here: a tree of small files and a tiny static program of our
//! own (bytes below) that waits in `pause()` until killed, so nothing comes from a
//! registry. Its containers are created with `--stop-signal KILL`: PID 1 ignores SIGTERM.

use super::report::{DriverResult, OperationResult, SkippedPart, Stat};
use super::scratch::{entries, open_subdir, remove_tree};
use crate::btrfs;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::process::{Pid, WaitId, WaitIdOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct ContainerBench<'a> {
    /// An empty directory on the measured filesystem, made by `bench` and removed by it
    /// afterwards; everything made here must be removed by `measure` before it returns
    /// (also when cancelled or failing): btrfs-driver layers are subvolumes.
    pub scratch: &'a Path,
    pub rounds: u32,
    pub quick: bool,
    pub cancel: &'a AtomicBool,
    /// One short line per step, for the progress display.
    pub progress: &'a (dyn Fn(&str) + Sync),
}

/// The storage drivers compared, in the order each round runs them.
pub const DRIVERS: [&str; 2] = ["overlay", "btrfs"];

/// The operations of one round, in order. `chmod` changes the mode of every file of the
/// image in the running container's root (through `podman mount`): copy-up for overlay, a
/// metadata change in a snapshot for btrfs; `commit` then stores that change as a layer;
/// `rmi` removes the committed image and the imported one.
pub const OPERATIONS: [&str; 8] = ["import", "create", "start", "chmod", "stop", "commit", "rm", "rmi"];

/// Files in the image: a default run, and `--quick`.
pub const IMAGE_FILES: u64 = 20_000;
pub const QUICK_IMAGE_FILES: u64 = 2_000;

/// The program the containers run, at the image's top level.
const PAUSE: &str = "podfs-bench-pause";
/// The directory holding the image's small files.
const DATA: &str = "data";
const IMAGE: &str = "localhost/podfs-bench:imported";
const COMMITTED: &str = "localhost/podfs-bench:committed";
const CONTAINER: &str = "podfs-bench";

/// Free space the container part needs in `scratch`: a default run peaked at 374 MiB on
/// a btrfs loop disk (both stores, the image tar, a copied-up and a committed layer), a
/// quick one at a tenth of that; metadata of many small files varies by filesystem, so
/// with room to spare.
pub fn bytes_needed(quick: bool) -> u64 {
    if quick { 128 << 20 } else { 1 << 30 }
}

/// Measures every driver that can run here; whatever cannot is a [`SkippedPart`] that says
/// why. Never fails as a whole, and leaves `scratch` as empty as it found it.
pub fn measure(input: &ContainerBench) -> (Vec<DriverResult>, Vec<SkippedPart>) {
    let skip_all = |why: String| (Vec::new(), vec![skipped("containers", why)]);
    for tool in ["podman", "unshare", "nsenter"] {
        if find_on_path(tool).is_none() {
            return skip_all(match tool {
                "podman" => "`podman` is not on PATH".to_string(),
                _ => format!(
                    "`{tool}` (util-linux) is not on PATH: Podman is measured only in a mount \
                     namespace of the bench's own, where it cannot write the host's \
                     /var/lib/containers and /run"
                ),
            });
        }
    }
    if !rustix::process::geteuid().is_root() {
        return skip_all(
            "not root: rootless Podman would join (or start) the user's own pause process and \
             keep its blob cache in ~/.local/share/containers, which the bench must not touch; \
             run `bench` as root to measure the storage drivers"
                .into(),
        );
    }
    let Some(pause) = pause_program(std::env::consts::ARCH) else {
        return skip_all(format!(
            "no container program for {}: the bench carries one for x86_64 and aarch64 only",
            std::env::consts::ARCH
        ));
    };
    let podman_version = match podman_version(input.scratch) {
        Ok(v) => v,
        Err(why) => return skip_all(why),
    };
    let mut skips = Vec::new();
    let drivers: Vec<&'static str> = DRIVERS
        .into_iter()
        .filter(|d| match driver_unavailable(d, input.scratch) {
            Some(why) => {
                skips.push(skipped(d, why));
                false
            }
            None => true,
        })
        .collect();
    if drivers.is_empty() {
        return (Vec::new(), skips);
    }

    let files = if input.quick { QUICK_IMAGE_FILES } else { IMAGE_FILES };
    let mut session = Session::new(input.scratch);
    let outcome = session.prepare(&drivers, files, &pause).and_then(|shape| {
        let samples = run_rounds(&session, input, &drivers, &mut skips)?;
        Ok((shape, samples))
    });
    let cleanup = session.finish();
    let mut results = Vec::new();
    match outcome {
        Ok((shape, samples)) => {
            for (driver, per_op) in samples {
                let operations = OPERATIONS
                    .iter()
                    .zip(per_op)
                    .filter_map(|(op, s)| {
                        Some(OperationResult { operation: op.to_string(), ms: Stat::of(&s)? })
                    })
                    .collect();
                results.push(DriverResult {
                    driver: driver.to_string(),
                    podman_version: podman_version.clone(),
                    runtime: runtime().map(String::from),
                    image_files: shape.files,
                    image_bytes: shape.bytes,
                    operations,
                });
            }
        }
        Err(Stop::Cancelled) => skips.push(skipped("containers", "cancelled".into())),
        Err(Stop::Failed(why)) => skips.push(skipped("containers", why)),
    }
    if let Err(why) = cleanup {
        skips.push(skipped("containers", format!("cleanup: {why}")));
    }
    (results, skips)
}

fn skipped(what: &str, why: String) -> SkippedPart {
    SkippedPart { what: what.to_string(), why }
}

/// Why a stage stopped short.
#[derive(Debug, PartialEq)]
enum Stop {
    Cancelled,
    Failed(String),
}

/// Per driver, per operation (in [`OPERATIONS`] order), one time per round, ms.
type Samples = Vec<(&'static str, Vec<Vec<f64>>)>;

/// Runs the rounds, the drivers interleaved within each; returns per driver the samples of
/// every operation (in [`OPERATIONS`] order). A driver that fails is dropped with a reason.
fn run_rounds(
    session: &Session,
    input: &ContainerBench,
    drivers: &[&'static str],
    skips: &mut Vec<SkippedPart>,
) -> Result<Samples, Stop> {
    let mut samples: Samples = drivers.iter().map(|d| (*d, vec![Vec::new(); OPERATIONS.len()])).collect();
    // A store's first command sets it up; that must not count as the first import.
    samples.retain(|(driver, _)| {
        (input.progress)(&format!("containers {driver}: setting up the store"));
        match session.podman(driver, &["images", "--quiet"], input.cancel) {
            Ok(_) => true,
            Err(Stop::Failed(why)) => {
                skips.push(skipped(driver, format!("Podman cannot use the {driver} driver here: {why}")));
                false
            }
            Err(Stop::Cancelled) => false,
        }
    });
    if input.cancel.load(Ordering::Relaxed) {
        return Err(Stop::Cancelled);
    }
    let rounds = input.rounds.max(1);
    for round in 1..=rounds {
        let mut failed = Vec::new();
        for (driver, per_op) in samples.iter_mut() {
            let progress =
                |op: &str| (input.progress)(&format!("containers {driver}: round {round}/{rounds}: {op}"));
            match session.round(driver, input.cancel, &progress) {
                Ok(times) => per_op.iter_mut().zip(times).for_each(|(s, t)| s.push(t)),
                Err(Stop::Cancelled) => return Err(Stop::Cancelled),
                Err(Stop::Failed(why)) => {
                    skips.push(skipped(driver, format!("round {round}: {why}")));
                    failed.push(*driver);
                }
            }
        }
        samples.retain(|(d, _)| !failed.contains(d));
    }
    Ok(samples)
}

/// The image as written: regular files and their bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    files: u64,
    bytes: u64,
}

/// Everything the bench made in `scratch`, and the namespace its Podman runs in.
struct Session {
    scratch: PathBuf,
    holder: Option<Child>,
    /// `/proc/PID/ns/mnt` of the holder, to find every process left in the namespace even
    /// after the holder is gone.
    namespace: Option<PathBuf>,
    /// Entries made directly in `scratch`, removed by [`finish`](Session::finish).
    made: Vec<PathBuf>,
    /// The cgroup (in every hierarchy) under which the containers and their conmon run:
    /// Podman's cgroupfs manager makes a cgroup per container and leaves it behind when
    /// its container is killed rather than removed; these are the bench's to remove.
    cgroup_parent: String,
    finished: bool,
}

impl Session {
    fn new(scratch: &Path) -> Session {
        static SESSIONS: AtomicU32 = AtomicU32::new(0);
        let cgroup_parent =
            format!("/podfs-bench-{}-{}", std::process::id(), SESSIONS.fetch_add(1, Ordering::Relaxed));
        Session {
            scratch: scratch.to_path_buf(),
            holder: None,
            namespace: None,
            made: Vec::new(),
            cgroup_parent,
            finished: false,
        }
    }

    fn home(&self) -> PathBuf {
        self.scratch.join("home")
    }

    fn tar(&self) -> PathBuf {
        self.scratch.join("image.tar")
    }

    fn store(&self, driver: &str) -> PathBuf {
        self.scratch.join(driver)
    }

    /// Writes the image, the configuration of every store, and starts the namespace.
    fn prepare(&mut self, drivers: &[&str], files: u64, pause: &[u8]) -> Result<Shape, Stop> {
        let failed =
            |what: &str, path: &Path, e: io::Error| Stop::Failed(format!("{what} {}: {e}", path.display()));
        let home = self.home();
        self.made.push(home.clone());
        write_home(&home).map_err(|e| failed("cannot write", &home, e))?;
        let tar = self.tar();
        self.made.push(tar.clone());
        let shape = write_image(&tar, files, pause).map_err(|e| failed("cannot write the image", &tar, e))?;
        for driver in drivers {
            let store = self.store(driver);
            self.made.push(store.clone());
            write_store(&store, driver).map_err(|e| failed("cannot set up the store", &store, e))?;
        }
        self.start_namespace()?;
        Ok(shape)
    }

    fn start_namespace(&mut self) -> Result<(), Stop> {
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT, "podfs-bench"])
            .arg(&self.scratch)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| Stop::Failed(format!("cannot run unshare: {e}")))?;
        let mut line = String::new();
        let _ =
            io::BufRead::read_line(&mut io::BufReader::new(holder.stdout.take().expect("piped")), &mut line);
        if line.trim() != "ready" {
            let _ = holder.kill();
            let _ = holder.wait();
            let mut err = String::new();
            let _ = io::Read::read_to_string(&mut holder.stderr.take().expect("piped"), &mut err);
            return Err(Stop::Failed(format!(
                "cannot make a mount namespace for Podman (unshare --mount): {}",
                last_lines(&err)
            )));
        }
        self.namespace = std::fs::read_link(format!("/proc/{}/ns/mnt", holder.id())).ok();
        self.holder = Some(holder);
        Ok(())
    }

    fn holder_pid(&self) -> u32 {
        self.holder.as_ref().expect("namespace started in prepare").id()
    }

    /// `podman` with the store of `driver`, inside the namespace, in a process group of
    /// its own (a Ctrl-C reaches the bench, which cancels, not Podman mid-operation).
    fn podman_command(&self, driver: &str, args: &[&str]) -> Command {
        let store = self.store(driver);
        let home = self.home();
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder_pid().to_string(), "-m", "--", "podman"]);
        c.arg("--root").arg(store.join("root"));
        c.arg("--runroot").arg(run_dir(driver).join("run"));
        c.args(["--storage-driver", driver]);
        c.arg("--tmpdir").arg(run_dir(driver).join("tmp"));
        c.args(args);
        c.env_clear();
        c.env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()));
        c.env("LC_ALL", "C");
        c.env("HOME", &home);
        c.env("XDG_CONFIG_HOME", home.join(".config"));
        c.env("XDG_DATA_HOME", home.join(".local/share"));
        c.env("TMPDIR", store.join("copy-tmp"));
        c.env("CONTAINERS_CONF", store.join("containers.conf"));
        c.env("CONTAINERS_STORAGE_CONF", store.join("storage.conf"));
        c.env("CONTAINERS_REGISTRIES_CONF", home.join(".config/containers/registries.conf"));
        c.env("PODMAN_IGNORE_CGROUPSV1_WARNING", "1");
        c.stdin(Stdio::null());
        c.process_group(0);
        c
    }

    /// Runs a Podman command; its stdout, trimmed.
    fn podman(&self, driver: &str, args: &[&str], cancel: &AtomicBool) -> Result<String, Stop> {
        self.timed(driver, args, cancel).map(|(_, out)| out)
    }

    /// Runs a Podman command and times it from start to exit, ms; also its stdout.
    fn timed(&self, driver: &str, args: &[&str], cancel: &AtomicBool) -> Result<(f64, String), Stop> {
        let store = self.store(driver);
        let (out, err) = (store.join("podman.out"), store.join("podman.err"));
        let open =
            |p: &Path| std::fs::File::create(p).map_err(|e| Stop::Failed(format!("{}: {e}", p.display())));
        let mut cmd = self.podman_command(driver, args);
        cmd.stdout(open(&out)?).stderr(open(&err)?);
        let (ms, status) = run_timed(cmd, cancel)?;
        let stdout = std::fs::read_to_string(&out).unwrap_or_default();
        if !status.success() {
            let stderr = std::fs::read_to_string(&err).unwrap_or_default();
            return Err(Stop::Failed(format!(
                "`podman {}` failed ({status}): {}",
                args.join(" "),
                last_lines(&stderr)
            )));
        }
        Ok((ms, stdout.trim().to_string()))
    }

    /// One round on one driver: the time of every operation, in [`OPERATIONS`] order.
    fn round(&self, driver: &str, cancel: &AtomicBool, progress: &dyn Fn(&str)) -> Result<Vec<f64>, Stop> {
        let tar = self.tar();
        let tar = tar.to_str().ok_or_else(|| Stop::Failed("the scratch path is not UTF-8".into()))?;
        let mut times = Vec::with_capacity(OPERATIONS.len());
        let mut step = |op: &str, args: &[&str]| -> Result<String, Stop> {
            progress(op);
            let (ms, out) = self.timed(driver, args, cancel)?;
            times.push(ms);
            Ok(out)
        };
        step("import", &["import", "--quiet", tar, IMAGE])?;
        let pause = format!("/{PAUSE}");
        step(
            "create",
            &[
                "create",
                "--name",
                CONTAINER,
                "--network",
                "none",
                "--stop-signal",
                "KILL",
                "--stop-timeout",
                "0",
                "--cgroup-parent",
                &self.cgroup_parent,
                IMAGE,
                &pause,
            ],
        )?;
        step("start", &["start", CONTAINER])?;
        progress("chmod");
        let root = self.podman(driver, &["mount", CONTAINER], cancel)?;
        // The mount exists in the namespace only; its holder's root leads there.
        let data = PathBuf::from(format!("/proc/{}/root", self.holder_pid()))
            .join(root.trim_start_matches('/'))
            .join(DATA);
        let start = Instant::now();
        chmod_tree(&data, cancel).map_err(|e| Stop::Failed(format!("chmod in {}: {e}", data.display())))?;
        times.push(ms_since(start));
        if cancel.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled);
        }
        self.podman(driver, &["umount", CONTAINER], cancel)?;
        let mut step = |op: &str, args: &[&str]| -> Result<(), Stop> {
            progress(op);
            let (ms, _) = self.timed(driver, args, cancel)?;
            times.push(ms);
            Ok(())
        };
        step("stop", &["stop", CONTAINER])?;
        step("commit", &["commit", "--quiet", CONTAINER, COMMITTED])?;
        step("rm", &["rm", CONTAINER])?;
        step("rmi", &["rmi", COMMITTED, IMAGE])?;
        Ok(times)
    }

    /// Ends every process in the namespace and the namespace, then removes everything made
    /// in `scratch` (btrfs-driver layers are subvolumes). Says what could not be removed.
    fn finish(&mut self) -> Result<(), String> {
        self.finished = true;
        let mut problems = Vec::new();
        if let Some(ns) = &self.namespace {
            let holder = self.holder.as_ref().map(Child::id);
            let members: Vec<u32> = pids()
                .into_iter()
                .filter(|p| Some(*p) != holder)
                .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/mnt")).is_ok_and(|n| &n == ns))
                .collect();
            let left = end_processes(&with_descendants(&members));
            if !left.is_empty() {
                problems.push(format!("processes {left:?} did not end"));
            }
        }
        if let Some(mut holder) = self.holder.take() {
            let _ = holder.kill();
            let _ = holder.wait();
        }
        for cgroup in cgroups_below(&self.cgroup_parent) {
            if let Err(e) = std::fs::remove_dir(&cgroup) {
                problems.push(format!("cannot remove cgroup {}: {e}", cgroup.display()));
            }
        }
        // None are expected: Podman's mounts stayed in the namespace, which has ended.
        for point in mounts_below(&self.scratch) {
            let _ = Command::new("umount").arg("-l").arg(&point).status();
        }
        for path in std::mem::take(&mut self.made).into_iter().rev() {
            if let Err(e) = remove_tree(&path) {
                problems.push(format!("cannot remove {}: {e}", path.display()));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.finish();
        }
    }
}

/// The namespace's holder: hides /run and /var/lib/containers behind empty tmpfs (never
/// creating a directory on the host: without /var/lib/containers, /var/lib itself is
/// hidden), says "ready", then waits until the bench closes its stdin. `$1` names the
/// scratch directory so the holder can be told apart.
const NAMESPACE_SCRIPT: &str = "set -eu
mount -t tmpfs -o mode=0755 tmpfs /run
if [ -d /var/lib/containers ]; then
  mount -t tmpfs -o mode=0700 tmpfs /var/lib/containers
else
  mount -t tmpfs -o mode=0755 tmpfs /var/lib
  mkdir -m 0700 /var/lib/containers
fi
echo ready
read -r _ || true
";

/// Where a store's runroot and Podman's tmp_dir lie: on the namespace's own /run tmpfs, as
/// they lie on a host's /run. Not in the scratch directory: Podman refuses a runroot
/// longer than 50 characters (its sockets' paths must fit), and the directory to measure
/// may be deep.
fn run_dir(driver: &str) -> PathBuf {
    PathBuf::from(format!("/run/podfs-bench/{driver}"))
}

/// The signature policy (the images are our own tars), an empty registries.conf.
fn write_home(home: &Path) -> io::Result<()> {
    let conf = home.join(".config/containers");
    std::fs::create_dir_all(&conf)?;
    std::fs::write(conf.join("policy.json"), "{\"default\": [{\"type\": \"insecureAcceptAnything\"}]}\n")?;
    std::fs::write(conf.join("registries.conf"), "")
}

/// A store's directories and its storage.conf and containers.conf: every path Podman
/// writes is in the store or below [`run_dir`]; locks are files under tmp_dir, not the
/// host's shared memory segment; no systemd (cgroupfs), events to a file.
fn write_store(store: &Path, driver: &str) -> io::Result<()> {
    for sub in ["root", "copy-tmp", "networks"] {
        std::fs::create_dir_all(store.join(sub))?;
    }
    std::fs::write(store.join("storage.conf"), storage_conf(store, driver))?;
    std::fs::write(store.join("containers.conf"), containers_conf(store, driver, runtime()))
}

fn toml_str(path: &Path) -> String {
    toml_edit::Value::from(path.to_string_lossy().as_ref()).to_string()
}

fn storage_conf(store: &Path, driver: &str) -> String {
    format!(
        "[storage]\ndriver = \"{driver}\"\ngraphroot = {}\nrunroot = {}\n",
        toml_str(&store.join("root")),
        toml_str(&run_dir(driver).join("run"))
    )
}

/// `runtime`: the OCI runtime, or Podman's default when `None`.
fn containers_conf(store: &Path, driver: &str, runtime: Option<&str>) -> String {
    let runtime = runtime.map(|r| format!("runtime = \"{r}\"\n")).unwrap_or_default();
    format!(
        "[containers]\ndefault_ulimits = []\n\n[network]\nnetwork_config_dir = {}\n\n[engine]\n\
         tmp_dir = {}\nimage_copy_tmp_dir = {}\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
         events_logfile_path = {}\nlock_type = \"file\"\n{runtime}",
        toml_str(&store.join("networks")),
        toml_str(&run_dir(driver).join("tmp")),
        toml_str(&store.join("copy-tmp")),
        toml_str(&store.join("events.log"))
    )
}

/// runc when there is one: it runs under every cgroup layout, where crun (Podman 5's
/// default) refuses a hybrid one. Every driver gets the same runtime, so they compare.
fn runtime() -> Option<&'static str> {
    find_on_path("runc").map(|_| "runc")
}

/// Runs `cmd` to its end; the time from spawn to exit (ms) and its status. When `cancel`
/// is set meanwhile, the command is killed and the result is [`Stop::Cancelled`].
fn run_timed(mut cmd: Command, cancel: &AtomicBool) -> Result<(f64, std::process::ExitStatus), Stop> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| Stop::Failed(format!("cannot run {program}: {e}")))?;
    let pid = Pid::from_raw(child.id() as i32).expect("a child has a pid");
    let (tx, rx) = mpsc::channel();
    let ended = std::thread::scope(|s| {
        // Waits without reaping: only this thread reaps, so killing by pid stays safe.
        s.spawn(move || {
            while let Err(rustix::io::Errno::INTR) =
                rustix::process::waitid(WaitId::Pid(pid), WaitIdOptions::EXITED | WaitIdOptions::NOWAIT)
            {
            }
            let _ = tx.send(Instant::now());
        });
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(at) => return at,
                Err(mpsc::RecvTimeoutError::Timeout) if cancel.load(Ordering::Relaxed) => {
                    let _ = child.kill();
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Instant::now(),
            }
        }
    });
    let status = child.wait().map_err(|e| Stop::Failed(format!("waiting for {program}: {e}")))?;
    if cancel.load(Ordering::Relaxed) {
        return Err(Stop::Cancelled);
    }
    Ok((ended.duration_since(start).as_secs_f64() * 1000.0, status))
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// The last few lines of a command's stderr, for a reason that fits on a line.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() { "no message".into() } else { tail.join(" / ") }
}

fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| {
            m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
        })
    })
}

/// `4.3.1` from `podman version 4.3.1`.
fn podman_version(scratch: &Path) -> Result<String, String> {
    // Podman reads its storage configuration even for --version (and fails on a
    // CONTAINERS_STORAGE_CONF naming a missing file): give it one of the bench's own that
    // names paths it never creates for --version, and nothing of the caller's.
    let conf = scratch.join("version-storage.conf");
    let text = format!(
        "[storage]\ndriver = \"overlay\"\nrunroot = \"{0}/version-run\"\ngraphroot = \"{0}/version-root\"\n",
        scratch.display()
    );
    std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
    let out = Command::new("podman")
        .arg("--version")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()))
        .env("LC_ALL", "C")
        .env("CONTAINERS_CONF", "/dev/null")
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .env("PODMAN_IGNORE_CGROUPSV1_WARNING", "1")
        .stdin(Stdio::null())
        .output();
    let _ = std::fs::remove_file(&conf);
    let out = out.map_err(|e| format!("cannot run `podman --version`: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| {
        format!(
            "`podman --version` printed no version: {}",
            last_lines(&String::from_utf8_lossy(&out.stderr))
        )
    })
}

fn parse_version(text: &str) -> Option<String> {
    let last = text.split_whitespace().last()?;
    last.chars().next()?.is_ascii_digit().then(|| last.to_string())
}

/// Why `driver` cannot be measured with a store in `scratch`, if it cannot.
fn driver_unavailable(driver: &str, scratch: &Path) -> Option<String> {
    match driver {
        "btrfs" => {
            let fd = match rustix::fs::open(
                scratch,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(e) => return Some(format!("cannot open {}: {e}", scratch.display())),
            };
            (!btrfs::is_btrfs(fd.as_fd())).then(|| {
                format!(
                    "{} is not on btrfs: the btrfs driver needs its graphroot on btrfs",
                    scratch.display()
                )
            })
        }
        _ => {
            let release = super::kernel_release();
            let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
            overlay_missing(&filesystems, &release, |p| p.exists())
        }
    }
}

/// Whether the kernel lacks overlayfs: neither built in or loaded (/proc/filesystems)
/// nor a module that mounting would load.
fn overlay_missing(filesystems: &str, release: &str, exists: impl Fn(&Path) -> bool) -> Option<String> {
    if filesystems.lines().any(|l| l.split_whitespace().last() == Some("overlay")) {
        return None;
    }
    let dir = PathBuf::from(format!("/lib/modules/{release}/kernel/fs/overlayfs"));
    let module = ["overlay.ko", "overlay.ko.xz", "overlay.ko.zst", "overlay.ko.gz"]
        .iter()
        .any(|m| exists(&dir.join(m)));
    (!module).then(|| {
        format!(
            "the kernel ({release}) lacks overlayfs: not in /proc/filesystems and no module in {}",
            dir.display()
        )
    })
}

/// The container's program for this machine: a static ELF executable whose code loops
/// on a system call that sleeps until a signal (pause on x86_64; ppoll with no fds and no
/// timeout on aarch64, which has no pause).
fn pause_program(arch: &str) -> Option<Vec<u8>> {
    let (machine, code): (u16, Vec<u8>) = match arch {
        // 0: mov eax, 34 (pause); syscall; jmp 0
        "x86_64" => (62, vec![0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7]),
        // 0: mov x0..x3, #0; mov x8, #73 (ppoll); svc #0; b 0
        "aarch64" => (
            183,
            [0xd280_0000u32, 0xd280_0001, 0xd280_0002, 0xd280_0003, 0xd280_0928, 0xd400_0001, 0x17ff_fffa]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect(),
        ),
        _ => return None,
    };
    Some(elf_executable(machine, &code))
}

/// A 64-bit little-endian ELF executable of one loadable segment holding the headers and
/// `code`, entered at `code`.
fn elf_executable(machine: u16, code: &[u8]) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HEADER: u16 = 64;
    const PROGRAM_HEADER: u16 = 56;
    let total = u64::from(HEADER + PROGRAM_HEADER) + code.len() as u64;
    let mut elf = Vec::with_capacity(total as usize);
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&machine.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&(BASE + u64::from(HEADER + PROGRAM_HEADER)).to_le_bytes()); // entry
    elf.extend_from_slice(&u64::from(HEADER).to_le_bytes()); // program headers' offset
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [HEADER, PROGRAM_HEADER, 1, 0, 0, 0] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // read + execute
    for v in [0, BASE, BASE, total, total, 0x1000] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(code);
    elf
}

/// Writes the image tar: `files` small files of 0–4 KiB (pseudo-random, the same every
/// run) in directories of 100 under `data/`, and the container's program.
fn write_image(path: &Path, files: u64, pause: &[u8]) -> io::Result<Shape> {
    let mut tar = BufWriter::new(std::fs::File::create(path)?);
    let mut bytes = pause.len() as u64;
    tar_entry(&mut tar, PAUSE, 0o755, pause)?;
    tar_dir(&mut tar, &format!("{DATA}/"))?;
    let mut random = super::database::XorShift::new(1);
    let mut content = vec![0u8; 4096];
    for i in 0..files {
        let (top, sub) = (i / 1000, i / 100);
        if i % 1000 == 0 {
            tar_dir(&mut tar, &format!("{DATA}/a{top:03}/"))?;
        }
        if i % 100 == 0 {
            tar_dir(&mut tar, &format!("{DATA}/a{top:03}/b{sub:05}/"))?;
        }
        let size = (random.next_u64() % 4097) as usize;
        random.fill(&mut content[..size]);
        tar_entry(&mut tar, &format!("{DATA}/a{top:03}/b{sub:05}/f{i:06}"), 0o644, &content[..size])?;
        bytes += size as u64;
    }
    tar.write_all(&[0; 1024])?;
    tar.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(Shape { files: files + 1, bytes })
}

fn tar_dir(tar: &mut impl Write, name: &str) -> io::Result<()> {
    tar.write_all(&tar_header(name, 0o755, 0, b'5'))
}

fn tar_entry(tar: &mut impl Write, name: &str, mode: u32, data: &[u8]) -> io::Result<()> {
    tar.write_all(&tar_header(name, mode, data.len() as u64, b'0'))?;
    tar.write_all(data)?;
    tar.write_all(&[0; 512][..(512 - data.len() % 512) % 512])
}

/// A ustar header; `name` is short (the image's names are).
fn tar_header(name: &str, mode: u32, size: u64, kind: u8) -> [u8; 512] {
    // A fixed time, so the image is the same every run.
    const MTIME: u64 = 1_700_000_000;
    let mut h = [0u8; 512];
    assert!(name.len() < 100, "tar name {name} too long");
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mut octal = |at: std::ops::Range<usize>, v: u64| {
        let width = at.len() - 1;
        h[at].copy_from_slice(format!("{v:0width$o}\0").as_bytes());
    };
    octal(100..108, u64::from(mode));
    octal(108..116, 0);
    octal(116..124, 0);
    octal(124..136, size);
    octal(136..148, MTIME);
    h[148..156].fill(b' ');
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// Sets mode 0600 on every regular file below `dir`; the number of files changed.
fn chmod_tree(dir: &Path, cancel: &AtomicBool) -> io::Result<u64> {
    let fd = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    chmod_files(fd.as_fd(), cancel)
}

fn chmod_files(dir: BorrowedFd<'_>, cancel: &AtomicBool) -> io::Result<u64> {
    let mut changed = 0;
    for (name, kind) in entries(dir)? {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        match kind {
            FileType::Directory => changed += chmod_files(open_subdir(dir, &name)?.as_fd(), cancel)?,
            FileType::RegularFile => {
                rustix::fs::chmodat(dir, name.as_c_str(), Mode::from_raw_mode(0o600), AtFlags::empty())?;
                changed += 1;
            }
            _ => {}
        }
    }
    Ok(changed)
}

/// The cgroup `parent` (`/name`) and the cgroups below it, in every cgroup hierarchy
/// mounted here, deepest first.
fn cgroups_below(parent: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for mount in crate::inspect::read_mounts().unwrap_or_default() {
        if mount.fs_type != "cgroup" && mount.fs_type != "cgroup2" {
            continue;
        }
        let mut stack = vec![Path::new(&mount.mountpoint).join(parent.trim_start_matches('/'))];
        while let Some(dir) = stack.pop() {
            if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
            found.push(dir);
        }
    }
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// Mount points at or below `dir` in this process's namespace, deepest first.
fn mounts_below(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    let mut points: Vec<String> = crate::inspect::read_mounts()
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.mountpoint)
        .filter(|m| m.starts_with(&prefix))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.len()));
    points
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// `(state, parent)` from /proc/PID/stat; the command name may hold spaces and parentheses.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = s[s.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

/// `roots` and every process below them (a container's processes live in namespaces of
/// their own, below its conmon).
fn with_descendants(roots: &[u32]) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = pids().into_iter().filter_map(|p| Some((p, proc_stat(p)?.1))).collect();
    let mut all = roots.to_vec();
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        let children: Vec<u32> =
            parents.iter().filter(|(p, pp)| *pp == parent && !all.contains(p)).map(|(p, _)| *p).collect();
        all.extend(children);
        i += 1;
    }
    all
}

fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// SIGKILLs `pids` and waits (up to 5 s) until they are gone; those still running.
fn end_processes(pids: &[u32]) -> Vec<u32> {
    for pid in pids {
        if let Some(p) = Pid::from_raw(*pid as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
    let start = Instant::now();
    while pids.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    pids.iter().copied().filter(|p| alive(*p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("podfs-bench-containers-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn versions_come_from_the_last_word() {
        assert_eq!(parse_version("podman version 4.3.1\n").as_deref(), Some("4.3.1"));
        assert_eq!(parse_version("podman version 5.4.2-dev"), Some("5.4.2-dev".into()));
        assert_eq!(parse_version("podman version"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn overlay_is_missing_only_without_filesystem_and_module() {
        let fs = "nodev\tsysfs\nnodev\toverlay\n\tbtrfs\n";
        assert_eq!(overlay_missing(fs, "6.1.0", |_| false), None);
        let without = "nodev\tsysfs\n\tbtrfs\n";
        assert_eq!(overlay_missing(without, "6.1.0", |p| p.ends_with("overlay.ko.xz")), None);
        let why = overlay_missing(without, "6.1.0", |_| false).unwrap();
        assert!(why.contains("6.1.0") && why.contains("lacks overlayfs"), "{why}");
    }

    #[test]
    fn programs_are_elf_executables_of_their_machine() {
        for (arch, machine) in [("x86_64", 62u16), ("aarch64", 183)] {
            let elf = pause_program(arch).unwrap();
            assert_eq!(&elf[..4], b"\x7fELF");
            assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), machine);
            let entry = u64::from_le_bytes(elf[24..32].try_into().unwrap());
            assert_eq!(entry, 0x40_0000 + 120, "{arch}: entry right after the headers");
            let filesz = u64::from_le_bytes(elf[64 + 32..64 + 40].try_into().unwrap());
            assert_eq!(filesz, elf.len() as u64);
        }
        assert!(pause_program("riscv64").is_none());
    }

    /// The program of this machine runs, waits, and ends only when killed.
    #[test]
    fn the_program_waits_until_killed() {
        let dir = temp("pause");
        for arch in ["x86_64", "aarch64"] {
            let exe = dir.join(arch);
            std::fs::write(&exe, pause_program(arch).unwrap()).unwrap();
            std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            // The other machine's program runs under qemu's user emulation, where installed.
            let mut cmd = if arch == std::env::consts::ARCH {
                Command::new(&exe)
            } else if let Some(qemu) = find_on_path(&format!("qemu-{arch}")) {
                let mut c = Command::new(qemu);
                c.arg(&exe);
                c
            } else {
                // Under .ci/run every skip is a failure.
                assert!(
                    std::env::var_os("PODFS_REQUIRE_SYSTEM_TESTS").is_none(),
                    "{arch}: needs qemu-{arch} (package qemu-user; contrib/dev.sh deps installs it)"
                );
                eprintln!("{arch}: not run, needs qemu-{arch} (package qemu-user)");
                continue;
            };
            let mut child = cmd.spawn().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            assert!(child.try_wait().unwrap().is_none(), "{arch}: the program exited on its own");
            let pid = Pid::from_raw(child.id() as i32).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::CHILD);
            let busy = cpu_ticks(child.id());
            std::thread::sleep(Duration::from_millis(500));
            assert!(
                child.try_wait().unwrap().is_none(),
                "{arch}: a signal ignored by default leaves it waiting"
            );
            // Waiting, not spinning on a failing system call.
            assert!(cpu_ticks(child.id()) - busy <= 2, "{arch}: the program uses CPU while it waits");
            child.kill().unwrap();
            let status = child.wait().unwrap();
            assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "{arch}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// utime + stime of a process, clock ticks.
    fn cpu_ticks(pid: u32) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// The tar is one `tar` reads back: every file, its size and mode.
    #[test]
    fn the_image_is_a_tar_of_small_files() {
        let dir = temp("image");
        let tar = dir.join("image.tar");
        let shape = write_image(&tar, 250, b"program").unwrap();
        assert_eq!(shape.files, 251);
        let out = Command::new("tar").arg("-tvf").arg(&tar).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let listing = String::from_utf8_lossy(&out.stdout);
        let files: Vec<&str> = listing.lines().filter(|l| l.starts_with('-')).collect();
        assert_eq!(files.len(), 251, "{listing}");
        assert!(listing.lines().any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with(PAUSE)), "{listing}");
        assert!(listing.lines().any(|l| l.ends_with("data/a000/b00002/f000249")), "{listing}");
        let sizes: u64 =
            files.iter().map(|l| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap()).sum();
        assert_eq!(sizes, shape.bytes);
        assert!(files.iter().all(|l| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap() <= 4096));
        // Unpacked, chmod_tree changes every file below it.
        let tree = dir.join("tree");
        std::fs::create_dir(&tree).unwrap();
        assert!(Command::new("tar").arg("-C").arg(&tree).arg("-xf").arg(&tar).status().unwrap().success());
        let cancel = AtomicBool::new(false);
        assert_eq!(chmod_tree(&tree.join(DATA), &cancel).unwrap(), 250);
        let mode = std::fs::metadata(tree.join("data/a000/b00001/f000100")).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
    }

    /// The store holds the image several times over (tar, a layer per driver, the
    /// copied-up files, the committed layer): the space asked for covers that.
    #[test]
    fn space_asked_for_covers_the_image_several_times() {
        let dir = temp("space");
        for (quick, files) in [(true, QUICK_IMAGE_FILES), (false, IMAGE_FILES)] {
            let shape = write_image(&dir.join("image.tar"), files, b"program").unwrap();
            assert!(bytes_needed(quick) > 8 * shape.bytes, "{quick}: {shape:?}");
        }
        remove_tree(&dir).unwrap();
    }

    #[test]
    fn configuration_keeps_every_path_in_the_store() {
        let store = Path::new("/scratch/it's \"here\"/btrfs");
        let storage: toml_edit::DocumentMut = storage_conf(store, "btrfs").parse().unwrap();
        assert_eq!(storage["storage"]["driver"].as_str(), Some("btrfs"));
        assert_eq!(storage["storage"]["graphroot"].as_str(), Some("/scratch/it's \"here\"/btrfs/root"));
        assert_eq!(storage["storage"]["runroot"].as_str(), Some("/run/podfs-bench/btrfs/run"));
        let containers: toml_edit::DocumentMut =
            containers_conf(store, "btrfs", Some("runc")).parse().unwrap();
        let engine = &containers["engine"];
        for key in ["image_copy_tmp_dir", "events_logfile_path"] {
            assert!(engine[key].as_str().unwrap().starts_with("/scratch/it's \"here\"/btrfs/"), "{key}");
        }
        assert_eq!(engine["tmp_dir"].as_str(), Some("/run/podfs-bench/btrfs/tmp"));
        assert_eq!(engine["lock_type"].as_str(), Some("file"));
        assert_eq!(engine["runtime"].as_str(), Some("runc"));
        let default: toml_edit::DocumentMut = containers_conf(store, "btrfs", None).parse().unwrap();
        assert!(default["engine"].get("runtime").is_none());
    }

    #[test]
    fn short_reasons_from_stderr() {
        assert_eq!(last_lines("a\n\nb\nc\nd\n"), "b / c / d");
        assert_eq!(last_lines(""), "no message");
    }
}
