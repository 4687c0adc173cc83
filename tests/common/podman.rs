//! A real Podman service on a temporary socket, its graphroot on a loop-mounted btrfs
//! (DESIGN §7). Drop removes its containers, stops the service and unmounts everything
//! below its directories, also when a test fails.

use super::{LoopBtrfs, TempDir, ok, run};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PodmanService {
    pub fs: LoopBtrfs,
    /// The btrfs top level, mounted.
    pub top: PathBuf,
    pub graphroot: PathBuf,
    pub socket: PathBuf,
    pub url: String,
    dir: TempDir,
    child: Option<Child>,
}

impl PodmanService {
    /// Starts a service with graphroot in its own subvolume `storage` of a fresh btrfs.
    pub fn start(driver: &str) -> Self {
        Self::start_with(driver, "")
    }

    /// As [`start`](Self::start), with `extra` appended to the service's containers.conf.
    pub fn start_with(driver: &str, extra: &str) -> Self {
        let mut fs = LoopBtrfs::new("2G");
        let top = fs.mount("/", "");
        let graphroot = top.join("storage");
        ok(Command::new("btrfs").args(["subvolume", "create"]).arg(&graphroot));
        let dir = TempDir::new("podman");
        let d = dir.path();
        for sub in ["run", "tmp"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"{driver}\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                graphroot.display(),
                d.join("run").display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = []\n\n[engine]\ntmp_dir = \"{}\"\ncgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\nevents_logfile_path = \"{}\"\nruntime = \"runc\"\n{extra}",
                d.join("tmp").display(),
                d.join("events.log").display()
            ),
        )
        .unwrap();
        let socket = d.join("podman.sock");
        let url = format!("unix://{}", socket.display());
        let mut service = PodmanService { fs, top, graphroot, socket, url, dir, child: None };
        service.start_again();
        service
    }

    /// Starts the service process (again, after [`stop`](Self::stop)) on the same socket
    /// and storage, and waits until it answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the service is running already");
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(d.join("service.log")).unwrap();
        let child = Command::new("podman")
            .args(["system", "service", "--time=0", &self.url])
            .envs(Self::env_of(d))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start podman system service");
        self.child = Some(child);
        self.wait_ready();
    }

    fn env_of(d: &Path) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("CONTAINERS_STORAGE_CONF", d.join("storage.conf")),
            ("CONTAINERS_CONF", d.join("containers.conf")),
        ]
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if UnixStream::connect(&self.socket).is_ok() {
                let out = run(self.podman().args(["version", "--format", "{{.Server.Version}}"]));
                if out.status.success() {
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

    /// The podman remote client, talking to this service.
    pub fn podman(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--url").arg(&self.url).envs(Self::env_of(self.dir.path()));
        c
    }

    /// Runs a podman command that must succeed; returns its trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(self.podman().args(args)).trim().to_string()
    }

    /// Imports a static busybox as an image under each of `names` (no registry needed).
    pub fn import_busybox(&self, names: &[&str]) {
        let root = self.dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static installed");
        for applet in ["sh", "sleep", "cat", "dd", "true"] {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
        let tar = self.dir.path().join("busybox.tar");
        ok(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg("."));
        self.ok(&["import", tar.to_str().unwrap(), names[0]]);
        for n in &names[1..] {
            self.ok(&["tag", names[0], n]);
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Unmounts everything below `under`, deepest first (container rootfs and shm mounts).
    fn unmount_below(under: &Path) {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = under.to_string_lossy().to_string();
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(String::from))
            .filter(|m| m.starts_with(&prefix) && m != &prefix)
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
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ =
                self.podman().args(["rm", "--all", "--force", "--time", "0"]).stdout(Stdio::null()).status();
        }
        self.stop();
        // conmon and runtime processes of containers that outlived the service.
        let _ = Command::new("pkill").arg("-f").arg(self.dir.path().to_string_lossy().as_ref()).status();
        Self::unmount_below(&self.top);
        Self::unmount_below(self.dir.path());
    }
}
