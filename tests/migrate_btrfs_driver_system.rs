//! `migrate` in place on a real Podman that uses the btrfs storage driver: graphroot is a
//! plain directory in a loop-mounted btrfs, and the driver keeps every image layer and
//! container layer as a subvolume below it. After the migration graphroot is a subvolume
//! of its own, the layers are still subvolumes (copied with reflinks: little extra space),
//! Podman shows the same objects, what ran runs again, and the driver can still delete
//! its layers.

mod common;

use common::podman::{Podman, PodmanService};
use common::*;
use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NEEDS: &[&str] = &["podman", "runc", "mkfs.btrfs", "losetup", "btrfs", "busybox"];

struct Host {
    service: PodmanService,
    state: TempDir,
    home: TempDir,
}

impl Host {
    fn migrate(&self, args: &[&str]) -> Output {
        run(&mut self.migrate_command(args))
    }

    /// `migrate ARGS` with the service's configuration and the test's own directories.
    fn migrate_command(&self, args: &[&str]) -> Command {
        self.service.migrate_command(self.service.tool(None), args, self.state.path(), self.home.path())
    }

    /// migrate stops a service started by hand, and Podman 5's `podman` is not reachable
    /// from here: start the service again and resume when the run asked for it.
    fn migrate_to_the_end(&mut self, out: Output) {
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{err}");
            assert!(err.contains("--resume"), "{err}");
            self.restart_service();
            let out = self.migrate(&["--resume", "--yes"]);
            assert!(out.status.success(), "resume: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        } else {
            self.restart_service();
        }
    }

    /// `--rollback`, starting the service again when only it can start the container.
    fn rollback_to_the_end(&mut self) {
        let out = self.migrate(&["--rollback"]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("start the Podman API service again"), "{err}");
            self.restart_service();
            let out = self.migrate(&["--rollback"]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        } else {
            self.restart_service();
        }
    }

    fn restart_service(&mut self) {
        self.service.stop();
        self.service.start_again();
    }

    fn view(&self) -> (String, String, String) {
        let s = &self.service;
        (
            s.ok(&["volume", "ls", "--format", "{{.Name}} {{.Mountpoint}} {{.Driver}}"]),
            s.ok(&["images", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"]),
            s.ok(&["ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Mounts}}"]),
        )
    }

    /// The container `app` runs and has read its volume's data on each of its `starts`.
    fn app_read_its_data(&self, starts: usize) {
        let start = Instant::now();
        loop {
            let logs = self.service.ok(&["logs", "app"]);
            if logs.matches("hello from the volume").count() == starts {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "app did not read its data: {logs}");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(self.service.ok(&["inspect", "--format", "{{.State.Status}}", "app"]), "running");
    }
}

/// A service on the btrfs driver with an imported image, a volume, and the container `app`
/// running with it.
fn host_with_app(podman: Podman) -> Host {
    let service = PodmanService::start_in_directory_on(podman, "btrfs");
    let host = Host { service, state: TempDir::new("migrate-state"), home: TempDir::new("migrate-home") };
    let s = &host.service;
    assert_eq!(s.ok(&["info", "--format", "{{.Store.GraphDriverName}}"]), "btrfs");
    s.import_busybox(&["localhost/app:1"]);
    s.ok(&["volume", "create", "data"]);
    let volume = PathBuf::from(s.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", "data"]));
    std::fs::write(volume.join("hello"), "hello from the volume\n").unwrap();
    s.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--network=none",
        "--stop-timeout",
        "2",
        "-v",
        "data:/data",
        "localhost/app:1",
        "sh",
        "-c",
        "cat /data/hello; exec sleep 1000",
    ]);
    host.app_read_its_data(1);
    host
}

/// The driver's layer directories, each with whether it is a subvolume root.
fn layers(graphroot: &Path) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = std::fs::read_dir(graphroot.join("btrfs/subvolumes"))
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().ino() == 256))
        .collect();
    out.sort();
    out
}

on_each_podman!(the_btrfs_driver_graphroot_becomes_a_subvolume_and_its_layers_stay_subvolumes);
fn the_btrfs_driver_graphroot_becomes_a_subvolume_and_its_layers_stay_subvolumes(podman: Podman) {
    let test = "migrate with the btrfs storage driver";
    if !can_run(test, NEEDS, true) || !podman.available(test) {
        return;
    }
    let mut host = host_with_app(podman);
    // Where the service's environment points QUADLET_UNIT_DIRS.
    let quadlet = host.service.dir().join("quadlet");
    std::fs::create_dir_all(&quadlet).unwrap();
    std::fs::write(quadlet.join("web.container"), "[Container]\nImage=localhost/app:1\n").unwrap();
    // 64 MiB of random data in a container's own layer: what reflinks must not copy.
    host.service.ok(&[
        "run",
        "--name",
        "filler",
        "--network=none",
        "localhost/app:1",
        "dd",
        "if=/dev/urandom",
        "of=/big",
        "bs=1M",
        "count=64",
    ]);
    let graphroot = host.service.graphroot.clone();
    let top = host.service.top.clone();
    let before_view = host.view();
    let before_layers = layers(&graphroot);
    assert_ne!(std::fs::metadata(&graphroot).unwrap().ino(), 256);
    assert!(before_layers.len() >= 3, "the image's and two containers' layers: {before_layers:?}");
    assert!(
        before_layers.iter().all(|(_, sub)| *sub),
        "the driver's layers are subvolumes: {before_layers:?}"
    );

    // The plan counts the layers, also while the driver binds its directory onto itself.
    let dry = host.migrate(&["--dry-run", "--format", "json"]);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap();
    let checks = plan["migration"]["checks"].to_string();
    assert!(checks.contains("storage driver btrfs"), "{checks}");
    assert!(
        checks.contains("Quadlet") && checks.contains("→ web.service"),
        "preflight lists Quadlet units: {checks}"
    );
    let target = &plan["migration"]["targets"][0];
    assert_eq!(target["role"]["kind"], "graphroot", "{target}");
    assert!(target["bytes"].as_u64().unwrap() > 64 << 20, "the 64 MiB layer is counted: {target}");
    assert_eq!(target["reflink"], true, "{target}");

    let free_before = free(&top);
    let started = Instant::now();
    let out = host.migrate(&["--yes"]);
    let took = started.elapsed();
    eprintln!("migrate took {took:?}:\n{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let extra = free_before.saturating_sub(free(&top));
    host.migrate_to_the_end(out);
    eprintln!("extra space while the old copy is kept: {extra} bytes");
    assert!(extra < 24 << 20, "reflinked layers take little space: {extra} bytes more");

    assert_eq!(std::fs::metadata(&graphroot).unwrap().ino(), 256, "graphroot is a subvolume of its own");
    assert_eq!(layers(&graphroot), before_layers, "every layer is still a subvolume");
    assert_eq!(host.view(), before_view, "Podman lists the same objects");
    host.app_read_its_data(2);
    assert_eq!(host.service.ok(&["inspect", "--format", "{{.State.Status}}", "filler"]), "exited");
    assert_eq!(
        host.service.ok(&["run", "--rm", "--network=none", "localhost/app:1", "sh", "-c", "echo new"]),
        "new",
        "a new container runs from the copied image layer"
    );
    let subs = subvolumes(&top);
    let old: Vec<&String> = subs.iter().filter(|p| p.contains(".podfs-old-")).collect();
    assert!(!old.is_empty(), "the old layers wait as subvolumes: {subs:?}");
    for p in &old {
        assert!(read_only(&top.join(p)), "{p} of the old copy is read-only");
    }

    // --finalize deletes the old copy with its (read-only) layer subvolumes.
    let out = host.migrate(&["--finalize", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("finalize freed {} bytes", v["freed_bytes"]);
    let subs = subvolumes(&top);
    assert!(!subs.iter().any(|p| p.contains(".podfs-")), "{subs:?}");
    let names: Vec<String> = std::fs::read_dir(&top)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".podfs-"))
        .collect();
    assert_eq!(names, Vec::<String>::new());

    // The driver deletes its copied layers as its own.
    host.service.ok(&["rm", "-f", "--time", "0", "app", "filler"]);
    host.service.ok(&["rmi", "localhost/app:1"]);
    assert_eq!(layers(&graphroot), Vec::<(String, bool)>::new());
    assert_eq!(subvolumes(&top).iter().filter(|p| p.contains("/btrfs/subvolumes/")).count(), 0);
}

fn run_dev_ino(p: &Path) -> (u64, u64) {
    let m = std::fs::metadata(p).unwrap();
    (m.dev(), m.ino())
}

on_each_podman!(a_btrfs_driver_migration_rolls_back_before_and_after_the_swap);
fn a_btrfs_driver_migration_rolls_back_before_and_after_the_swap(podman: Podman) {
    let test = "migrate rollback with the btrfs storage driver";
    if !can_run(test, NEEDS, true) || !podman.available(test) {
        return;
    }
    let mut host = host_with_app(podman);
    let graphroot = host.service.graphroot.clone();
    let top = host.service.top.clone();
    // A read-only subvolume of the user's own, nested in graphroot.
    std::fs::create_dir(graphroot.join("snapshots")).unwrap();
    let base = graphroot.join("snapshots/base");
    ok(Command::new("btrfs").args(["subvolume", "create"]).arg(&base));
    std::fs::write(base.join("kept"), "kept read-only").unwrap();
    ok(Command::new("btrfs").args(["property", "set"]).arg(&base).args(["ro", "true"]));
    let view = host.view();
    let before_layers = layers(&graphroot);
    let before_root = run_dev_ino(&graphroot);
    let before_subvolumes = subvolumes(&top);

    // Killed after the copy, before the swap: the staging copy and every subvolume nested
    // in it, the read-only one too, are deleted; graphroot is the very same directory.
    let pause = TempDir::new("pause");
    let mut cmd = host.migrate_command(&["--yes"]);
    cmd.env("PODFS_TEST_PAUSE_DIR", pause.path()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let start = Instant::now();
    while !pause.path().join("copied-0").exists() {
        assert!(child.0.try_wait().unwrap().is_none(), "migrate ended before the pause");
        assert!(start.elapsed() < Duration::from_secs(120), "migrate never reached the pause");
        std::thread::sleep(Duration::from_millis(10));
    }
    let staged: Vec<String> = subvolumes(&top).into_iter().filter(|p| p.contains(".podfs-new-")).collect();
    assert_eq!(staged.len(), before_layers.len() + 2, "the staging copy, its layers and base: {staged:?}");
    let staged_base = staged.iter().find(|p| p.ends_with("snapshots/base")).expect("base copied");
    assert!(read_only(&top.join(staged_base)), "copied read-only as its source");
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    host.rollback_to_the_end();
    assert_eq!(run_dev_ino(&graphroot), before_root, "graphroot is the original directory");
    assert_eq!(subvolumes(&top), before_subvolumes, "the staging subvolumes are deleted");
    assert_eq!(layers(&graphroot), before_layers);
    assert_eq!(host.view(), view);
    host.app_read_its_data(2);

    // Migrated, then rolled back: the old copy's subvolumes, made read-only after the
    // swap, are writable again; the user's read-only one stays read-only.
    let out = host.migrate(&["--yes"]);
    host.migrate_to_the_end(out);
    assert_eq!(std::fs::metadata(&graphroot).unwrap().ino(), 256);
    let old = subvolumes(&top);
    let old_layers: Vec<&String> =
        old.iter().filter(|p| p.contains(".podfs-old-") && p.contains("/btrfs/subvolumes/")).collect();
    assert_eq!(old_layers.len(), before_layers.len(), "{old:?}");
    assert!(old_layers.iter().all(|p| read_only(&top.join(p))), "{old_layers:?}");
    host.app_read_its_data(3);
    host.rollback_to_the_end();
    assert_eq!(run_dev_ino(&graphroot), before_root, "graphroot is the original directory again");
    assert_eq!(layers(&graphroot), before_layers);
    for (name, _) in &before_layers {
        assert!(!read_only(&graphroot.join("btrfs/subvolumes").join(name)), "{name} is writable again");
    }
    assert!(read_only(&base), "what was read-only before stays so");
    assert_eq!(host.view(), view);
    // Its log lies in graphroot, the original again: two starts there, and this one.
    host.app_read_its_data(3);
    // The driver still manages its layers: a container is made and removed.
    assert_eq!(
        host.service.ok(&["run", "--rm", "--network=none", "localhost/app:1", "sh", "-c", "echo new"]),
        "new"
    );
}
