//! `scan` reads placements where Podman's data really is: a real Podman (each of the two
//! the tests cover) started in a mount namespace of its own, with graphroot on a loop btrfs mounted only there, is
//! inspected through /proc/PID/root; a Podman answering over TCP is not inspected at all,
//! and the report says why.

mod common;

use common::podman::{Podman, PodmanRoot, env_of, write_config, write_storage_conf};
use common::{LoopBtrfs, TempDir, bin, can_run, machine_changes_since, ok, run, terminate};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `podman system service` this test started, run with its client in a namespace of
/// their own that hides the machine's Podman state (see common::podman::PodmanRoot).
/// Drop ends the process by its pid, then the namespace with every mount made in it.
struct Service {
    child: Option<Child>,
    url: String,
    root: PodmanRoot,
    dir: TempDir,
}

impl Service {
    /// Writes the test Podman's configuration for a store at `graphroot`.
    fn configure(dir: &Path, graphroot: &Path, driver: &str) {
        for sub in ["home", "config"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        write_storage_conf(dir, driver, graphroot);
        write_config(dir, "");
    }

    /// Only this test's files: Podman and the tool never fall back to the machine's.
    fn env(dir: &Path) -> Vec<(&'static str, PathBuf)> {
        let mut env = env_of(dir);
        env.extend([
            ("HOME", dir.join("home")),
            ("XDG_CONFIG_HOME", dir.join("config")),
            ("XDG_RUNTIME_DIR", dir.join("run")),
        ]);
        env
    }

    /// Starts `podman system service` on `url` in `root`.
    fn spawn(dir: TempDir, url: String, root: PodmanRoot) -> Service {
        let log = std::fs::File::create(dir.path().join("service.log")).unwrap();
        let child = root
            .command("podman")
            .args(["system", "service", "--time=0", &url])
            .envs(Self::env(dir.path()))
            .env_remove("CONTAINER_HOST")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start podman system service");
        let service = Service { child: Some(child), url, root, dir };
        service.wait_ready();
        service
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    fn podman(&self) -> Command {
        let mut c = self.root.command("podman");
        c.arg("--url").arg(&self.url).envs(Self::env(self.dir.path()));
        c
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            let out = run(self.podman().args(["version", "--format", "{{.Server.Version}}"]));
            if out.status.success() {
                let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
                assert!(self.root.podman.runs(&version), "{:?} runs Podman {version}", self.root.podman);
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("podman service at {} did not come up:\n{}", self.url, self.log());
    }

    /// `scan --format json` of this service, with only this test's environment.
    fn scan_json(&self) -> Value {
        let out = run(bin()
            .args(["scan", "--format", "json", "--url", &self.url])
            .envs(Self::env(self.dir.path()))
            .env_remove("CONTAINER_HOST"));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    }

    fn scan_human(&self) -> String {
        let out = run(bin().args(["scan", "--url", &self.url]).envs(Self::env(self.dir.path())));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(10));
        }
    }
}

/// A btrfs on a loop device, prepared in our namespace, then mounted only in the
/// service's. Field order matters: the service ends before the device is detached.
struct NamespacedPodman {
    service: Service,
    /// Where the btrfs is mounted inside the service's namespace; outside, an empty
    /// directory on another filesystem.
    mnt: PathBuf,
    _fs: LoopBtrfs,
}

impl NamespacedPodman {
    fn start(podman: Podman) -> NamespacedPodman {
        let mut fs = LoopBtrfs::new("1G");
        // graphroot is a subvolume with compression zstd; its volumes directory a NOCOW
        // subvolume, so every new volume directory inherits +C.
        let top = fs.mount("/", "");
        // (A new subvolume inherits its parent's compression property, and +C is refused
        // next to one: the property comes last.)
        ok(Command::new("btrfs").args(["subvolume", "create"]).arg(top.join("storage")));
        ok(Command::new("btrfs").args(["subvolume", "create"]).arg(top.join("storage/volumes")));
        ok(Command::new("chattr").arg("+C").arg(top.join("storage/volumes")));
        ok(Command::new("btrfs")
            .args(["property", "set"])
            .arg(top.join("storage"))
            .args(["compression", "zstd"]));
        fs.umount(&top);

        let dir = TempDir::new("ns-podman");
        let mnt = dir.path().join("data");
        std::fs::create_dir_all(&mnt).unwrap();
        Service::configure(dir.path(), &mnt.join("storage"), "overlay");
        let socket = dir.path().join("podman.sock");
        let url = format!("unix://{}", socket.display());
        // Mounted only in the service's namespace, which ends with the service.
        let root = PodmanRoot::new(podman, &[dir.path()]);
        ok(root
            .command("mount")
            .args(["-t", "btrfs", "-o", "compress=zstd:1,subvol=/", &fs.device])
            .arg(&mnt));
        let service = Service::spawn(dir, url, root);
        NamespacedPodman { service, mnt, _fs: fs }
    }
}

on_each_podman!(a_podman_in_another_mount_namespace_is_inspected_in_its_own);
fn a_podman_in_another_mount_namespace_is_inspected_in_its_own(podman: Podman) {
    let test = "a_podman_in_another_mount_namespace_is_inspected_in_its_own";
    if !can_run(test, &["podman", "mkfs.btrfs", "losetup", "unshare", "nsenter", "chattr", "setpriv"], true)
        || !podman.available(test)
    {
        return;
    }
    let marker = TempDir::new("marker");
    let marker = marker.path().join("marker");
    std::fs::write(&marker, "").unwrap();
    let ns = NamespacedPodman::start(podman);
    let s = &ns.service;
    let pid = s.pid();
    let graphroot = ns.mnt.join("storage");
    // Outside the namespace graphroot does not exist, and its parent is not btrfs.
    assert!(!graphroot.exists(), "the btrfs leaked into the test's namespace");
    let outside = ok(Command::new("stat").args(["-f", "-c", "%T"]).arg(&ns.mnt));
    assert_ne!(outside.trim(), "btrfs");

    ok(s.podman().args(["volume", "create", "--label", "io.podfs.class=database", "pgdata"]));
    // Data written through the namespace's root: its size must be measured there too.
    let data = PathBuf::from(format!("/proc/{pid}/root")).join(graphroot.strip_prefix("/").unwrap());
    std::fs::write(data.join("volumes/pgdata/_data/blob"), vec![7u8; 100_000]).unwrap();

    let v = s.scan_json();
    let source = &v["placement_source"];
    assert_eq!(source["read"], true, "{source}");
    assert_eq!(source["server_pid"], pid, "SO_PEERCRED names the service: {source}");
    assert_eq!(source["root"], format!("/proc/{pid}/root"), "{source}");
    assert!(source["note"].as_str().unwrap().contains("another mount namespace"), "{source}");

    let g = &v["graphroot"];
    assert_eq!(g["path"], graphroot.to_str().unwrap(), "paths as Podman names them: {g}");
    assert_eq!(g["filesystem"], "btrfs", "{g}");
    assert_eq!(g["subvolume"], "/storage", "{g}");
    assert_eq!(g["own_subvolume"], true, "{g}");
    assert_eq!(g["nocow"], false, "{g}");
    assert_eq!(g["compression"], "zstd", "{g}");
    assert!(g["filesystem_options"].as_array().unwrap().iter().any(|o| o == "compress=zstd:1"), "{g}");

    let volumes = v["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1, "{v}");
    let pg = &volumes[0];
    assert_eq!(pg["class"], "database");
    assert_eq!(pg["size"], 100_000, "{pg}");
    let p = &pg["placement"];
    assert_eq!(p["filesystem"], "btrfs", "{p}");
    assert_eq!(p["subvolume"], "/storage/volumes", "{p}");
    assert_eq!(p["own_subvolume"], false, "{p}");
    assert_eq!(p["nocow"], true, "{p}");
    assert_eq!(p["compression"], Value::Null, "{p}");
    // A NOCOW database volume in a subvolume of its own class: nothing to say about it.
    let findings = v["findings"].as_array().unwrap();
    assert!(!findings.iter().any(|f| f["object"] == "volume pgdata"), "{findings:?}");

    let text = s.scan_human();
    assert!(
        text.contains("btrfs on ") && text.contains("subvolume /storage, a subvolume of its own"),
        "{text}"
    );
    assert!(text.contains(&format!("read through /proc/{pid}/root")), "{text}");
    assert!(text.contains("NOCOW"), "{text}");

    // A user who may talk to the socket but not look into root's process: said, not guessed.
    let socket = s.url.trim_start_matches("unix://");
    std::fs::set_permissions(socket, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let out = run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_podman-btrfs-advise"))
        .args(["scan", "--format", "json", "--url", &s.url])
        .envs(Service::env(s.dir.path())));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let source = &v["placement_source"];
    assert_eq!((&source["read"], &source["server_pid"]), (&false.into(), &pid.into()), "{source}");
    let note = source["note"].as_str().unwrap();
    assert!(note.starts_with("placement not read") && note.contains("permission denied"), "{note}");
    assert_eq!(v["graphroot"], Value::Null);
    assert_eq!((&v["volumes"][0]["placement"], &v["volumes"][0]["size"]), (&Value::Null, &Value::Null));
    assert_eq!(machine_changes_since(&marker), "", "the machine's Podman state changed");
}

on_each_podman!(a_podman_over_tcp_is_not_inspected_and_the_report_says_why);
fn a_podman_over_tcp_is_not_inspected_and_the_report_says_why(podman: Podman) {
    let test = "a_podman_over_tcp_is_not_inspected_and_the_report_says_why";
    if !can_run(test, &["podman"], true) || !podman.available(test) {
        return;
    }
    let dir = TempDir::new("tcp-podman");
    let marker = dir.path().join("marker");
    std::fs::write(&marker, "").unwrap();
    let graphroot = dir.path().join("storage");
    Service::configure(dir.path(), &graphroot, "vfs");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("tcp://127.0.0.1:{port}");
    let root = PodmanRoot::new(podman, &[dir.path()]);
    let s = Service::spawn(dir, url.clone(), root);
    ok(s.podman().args(["volume", "create", "--label", "io.podfs.class=database", "pgdata"]));
    // The data is right here, yet a TCP endpoint's files are never read from this side.
    assert!(graphroot.join("volumes/pgdata/_data").is_dir());

    let v = s.scan_json();
    let source = &v["placement_source"];
    assert_eq!(source["read"], false, "{source}");
    assert_eq!(source["server_pid"], Value::Null, "{source}");
    let note = source["note"].as_str().unwrap();
    assert!(note.starts_with("placement not read") && note.contains(&url) && note.contains("TCP"), "{note}");
    assert_eq!(v["graphroot"], Value::Null);
    assert_eq!(v["volume_path"], Value::Null);
    let pg = &v["volumes"][0];
    assert_eq!((&pg["name"], &pg["placement"], &pg["size"]), (&"pgdata".into(), &Value::Null, &Value::Null));
    assert!(v["findings"].as_array().unwrap().is_empty(), "nothing judged from unread placements: {v}");

    let text = s.scan_human();
    assert!(text.contains("note        placement not read: Podman answered over TCP"), "{text}");
    assert_eq!(machine_changes_since(&marker), "", "the machine's Podman state changed");
}
