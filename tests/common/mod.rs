//! Shared helpers for the system tests: real btrfs on loop devices, the real
//! nix-instantiate, the real binary. Every resource is released by a Drop guard, also when
//! an assertion fails.
//!
//! Without root or a tool a test skips with a printed reason; with
//! `PODFS_REQUIRE_SYSTEM_TESTS=1` (set by `.ci/run`) every such skip is a failure.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub const REQUIRE_ENV: &str = "PODFS_REQUIRE_SYSTEM_TESTS";

/// Returns false (and says why) when the test must skip; panics instead under CI.
pub fn can_run(test: &str, needs: &[&str], needs_root: bool) -> bool {
    let mut missing: Vec<String> =
        needs.iter().filter(|t| which(t).is_none()).map(|t| format!("`{t}`")).collect();
    if needs_root && !is_root() {
        missing.push("root".into());
    }
    if missing.is_empty() {
        return true;
    }
    skip_or_fail(&format!("{test}: skipped, needs {}", missing.join(", ")))
}

/// Prints why a test skips and returns false; panics instead under CI.
pub fn skip_or_fail(reason: &str) -> bool {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{reason} ({REQUIRE_ENV}=1 turns skips into failures)");
    }
    eprintln!("{reason}");
    false
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs a command and returns its output; panics with stderr when it fails to start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The stdout of a command's output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The stderr of a command's output, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podman-btrfs-advise"))
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "podfs-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A btrfs filesystem in an image file on a loop device. Drop unmounts every mount of the
/// device made through it and detaches the loop device.
pub struct LoopBtrfs {
    pub dir: TempDir,
    pub device: String,
    mounts: Vec<PathBuf>,
    /// `btrfs`, or the filesystem [`with_fs`](Self::with_fs) made instead.
    fs: String,
}

impl LoopBtrfs {
    pub fn new(size: &str) -> Self {
        Self::with_fs(size, "btrfs")
    }

    /// The same on a loop device with `fs` (`mkfs.FS`), e.g. ext4 for a host without btrfs.
    pub fn with_fs(size: &str, fs: &str) -> Self {
        let dir = TempDir::new(fs);
        let img = dir.path().join("fs.img");
        ok(Command::new("truncate").arg("-s").arg(size).arg(&img));
        ok(Command::new(format!("mkfs.{fs}")).arg("-q").arg(&img));
        let device = ok(Command::new("losetup").arg("--find").arg("--show").arg(&img)).trim().to_string();
        LoopBtrfs { dir, device, mounts: Vec::new(), fs: fs.into() }
    }

    /// Mounts a subvolume (`/` for the top level) with extra options at a new directory.
    pub fn mount(&mut self, subvol: &str, options: &str) -> PathBuf {
        let at = self.dir.path().join(format!("mnt{}", self.mounts.len()));
        std::fs::create_dir_all(&at).unwrap();
        let mut opts = if self.fs == "btrfs" { format!("subvol={subvol}") } else { "defaults".into() };
        if !options.is_empty() {
            opts = format!("{options},{opts}");
        }
        ok(Command::new("mount").args(["-t", &self.fs, "-o", &opts, &self.device]).arg(&at));
        self.mounts.push(at.clone());
        at
    }

    pub fn umount(&mut self, at: &Path) {
        ok(Command::new("umount").arg(at));
        self.mounts.retain(|m| m != at);
    }

    /// Mount points of this device right now, from the kernel's view.
    pub fn live_mounts(&self) -> Vec<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        info.lines()
            .filter(|l| {
                l.split(" - ")
                    .nth(1)
                    .is_some_and(|r| r.split_whitespace().nth(1) == Some(self.device.as_str()))
            })
            .filter_map(|l| l.split_whitespace().nth(4).map(String::from))
            .collect()
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg(m).status();
        }
        // Podman's drivers leave bind mounts below graphroot: deepest first, lazily if busy.
        for m in self.live_mounts().iter().rev() {
            let ok = Command::new("umount").arg(m).status().is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

/// `nix-instantiate --eval --strict --json` of a file or expression.
pub fn nix_eval_file(path: &Path) -> serde_json::Value {
    let out = ok(Command::new("nix-instantiate").args(["--eval", "--strict", "--json"]).arg(path));
    serde_json::from_str(&out).expect("nix-instantiate prints JSON")
}

pub fn nix_eval_expr(expr: &str) -> serde_json::Value {
    let out = ok(Command::new("nix-instantiate").args(["--eval", "--strict", "--json", "-E", expr]));
    serde_json::from_str(&out).expect("nix-instantiate prints JSON")
}

/// `lsattr -d` flags of a directory.
pub fn lsattr(path: &Path) -> String {
    ok(Command::new("lsattr").arg("-d").arg(path)).split_whitespace().next().unwrap_or_default().to_string()
}

/// `btrfs property get DIR compression` value, or "" when unset.
pub fn compression_property(path: &Path) -> String {
    let out = ok(Command::new("btrfs").args(["property", "get"]).arg(path).arg("compression"));
    out.trim().strip_prefix("compression=").unwrap_or("").to_string()
}

/// Paths of every subvolume of the btrfs mounted at `mnt`, from `btrfs subvolume list`.
pub fn subvolumes(mnt: &Path) -> Vec<String> {
    ok(Command::new("btrfs").args(["subvolume", "list"]).arg(mnt))
        .lines()
        .filter_map(|l| l.split(" path ").nth(1).map(String::from))
        .collect()
}

/// Whether the subvolume at `path` is read-only.
pub fn read_only(path: &Path) -> bool {
    ok(Command::new("btrfs").args(["property", "get", "-ts"]).arg(path).arg("ro")).trim() == "ro=true"
}

/// Bytes free on the filesystem of `p`, after its pending writes reach it.
pub fn free(p: &Path) -> u64 {
    ok(Command::new("sync").arg("-f").arg(p));
    let out = ok(Command::new("df").args(["-B1", "--output=avail"]).arg(p));
    out.lines().nth(1).unwrap().trim().parse().unwrap()
}

/// A plan directory `dir/plan` whose storage.conf sets `driver`, `graphroot` and `runroot`,
/// as `plan --out` writes it.
pub fn plan_dir(dir: &Path, driver: &str, graphroot: impl AsRef<Path>, runroot: impl AsRef<Path>) -> PathBuf {
    let plan = dir.join("plan");
    std::fs::create_dir_all(&plan).unwrap();
    std::fs::write(
        plan.join("storage.conf"),
        format!(
            "# Generated\n[storage]\ndriver = \"{driver}\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            graphroot.as_ref().display(),
            runroot.as_ref().display()
        ),
    )
    .unwrap();
    plan
}

/// A tar of a root filesystem with a static busybox and its common applets, made in
/// `dir` (for `podman import`: no registry needed).
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static installed");
    for applet in ["sh", "sleep", "cat", "dd", "true"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    let tar = dir.join("busybox.tar");
    ok(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg("."));
    tar
}

/// (disk usage, uncompressed) bytes of everything under `path`, from `compsize -b`.
pub fn compsize(path: &Path) -> (u64, u64) {
    let out = ok(Command::new("compsize").arg("-b").arg(path));
    let total = out
        .lines()
        .find(|l| l.starts_with("TOTAL"))
        .unwrap_or_else(|| panic!("no TOTAL in compsize output:\n{out}"));
    let cols: Vec<&str> = total.split_whitespace().collect();
    (cols[2].parse().unwrap(), cols[3].parse().unwrap())
}

/// Ends a child process on drop, also when the test fails.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Ends `child` by its pid as a service manager would: SIGTERM, then SIGKILL when it
/// still runs after `grace`.
pub fn terminate(child: &mut std::process::Child, grace: std::time::Duration) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let start = std::time::Instant::now();
    while start.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Ends a child process on drop with [`terminate`] (5 s grace), also when the test fails.
pub struct TermOnDrop(pub std::process::Child);

impl Drop for TermOnDrop {
    fn drop(&mut self) {
        terminate(&mut self.0, std::time::Duration::from_secs(5));
    }
}

pub mod podman;

/// Files the machine's Podman state holds that changed since `marker` was written
/// (with its shm lock segment, which every Podman on the machine shares by default).
pub fn machine_changes_since(marker: &Path) -> String {
    let dirs: Vec<&str> =
        ["/var/lib/containers", "/run/libpod", "/run/containers", "/etc/containers", "/dev/shm/libpod_lock"]
            .into_iter()
            .filter(|d| Path::new(d).exists())
            .collect();
    if dirs.is_empty() {
        return String::new();
    }
    ok(Command::new("find").args(&dirs).arg("-newer").arg(marker))
}
