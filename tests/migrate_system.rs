//! `migrate` against a real Podman whose graphroot and volumes are plain directories in a
//! loop-mounted btrfs: a labelled database volume with data of every kind, a media volume,
//! an unlabelled one, and a running container. Podman's view must be exactly the same
//! afterwards; the data must be identical; resume, rollback and finalize must hold.

mod common;

use common::podman::{Podman, PodmanService};
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NEEDS: &[&str] = &["podman", "runc", "mkfs.btrfs", "losetup", "lsattr", "busybox", "setfattr"];

/// The host with its data, and a state directory for the journal.
struct Host {
    service: PodmanService,
    state: TempDir,
    home: TempDir,
    /// Files the tool writes besides the journal (fstab, units, NixOS module).
    etc: TempDir,
    /// A copy of the tool that the Podman 5 root sees, to run it in that namespace.
    inside: Option<TempDir>,
}

impl Host {
    fn new(podman: Podman) -> Host {
        let dirs = [TempDir::new("migrate-state"), TempDir::new("migrate-home"), TempDir::new("migrate-etc")];
        Host::with(PodmanService::start_in_directory_on(podman, "overlay"), dirs, None)
    }

    /// The same host with its graphroot and volumes on ext4. The tool runs in the Podman's
    /// mount namespace (where `--to-disk` mounts), so each Podman root sees its state,
    /// files and binary at their host paths.
    fn on_ext4(podman: Podman) -> Host {
        let dirs = [TempDir::new("migrate-state"), TempDir::new("migrate-home"), TempDir::new("migrate-etc")];
        let inside = TempDir::new("migrate-bin");
        std::fs::copy(env!("CARGO_BIN_EXE_podman-btrfs-advise"), inside.path().join("podman-btrfs-advise"))
            .unwrap();
        let shared: Vec<&Path> = dirs.iter().chain([&inside]).map(TempDir::path).collect();
        let service = PodmanService::start_on_ext4(podman, "overlay", "1G", &shared);
        Host::with(service, dirs, Some(inside))
    }

    fn with(service: PodmanService, [state, home, etc]: [TempDir; 3], inside: Option<TempDir>) -> Host {
        service.import_busybox(&["localhost/postgres:16", "localhost/app:1"]);
        service.ok(&["volume", "create", "--label", "io.podfs.class=database", "pgdata"]);
        service.ok(&["volume", "create", "--label", "io.podfs.class=media", "films"]);
        service.ok(&["volume", "create", "plain"]);
        fill_database(&service.volume_dir("pgdata"));
        let films = service.volume_dir("films");
        std::fs::write(films.join("movie.mkv"), random(5 << 20, 7)).unwrap();
        std::fs::write(service.volume_dir("plain").join("notes.txt"), "plain data\n").unwrap();
        service.ok(&[
            "run",
            "-d",
            "--name",
            "pg",
            "--network=none",
            "--stop-timeout",
            "2",
            "-v",
            "pgdata:/var/lib/postgresql/data",
            "localhost/postgres:16",
            "sh",
            "-c",
            // Each start reads the data into the log (`podman exec` would leave its conmon
            // behind for minutes, holding the filesystem).
            "cat /var/lib/postgresql/data/hello; exec sleep 1000",
        ]);
        service.ok(&["create", "--name", "idle", "-v", "plain:/srv", "localhost/app:1", "true"]);
        Host { service, state, home, etc, inside }
    }

    /// The tool where the service's Podman runs (see PodmanService::tool).
    fn tool(&self) -> Command {
        self.service.tool(self.inside.as_ref().map(TempDir::path))
    }

    fn migrate(&self, args: &[&str]) -> Output {
        run(&mut self.service.migrate_command(self.tool(), args, self.state.path(), self.home.path()))
    }

    fn journal(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.state.path().join("journal.json")).unwrap())
            .unwrap()
    }

    /// The service again after migrate stopped it (it was started by hand).
    fn restart_service(&mut self) {
        self.service.stop();
        self.service.start_again();
    }

    /// Finishes a migration that stopped because only the service can start containers
    /// (Podman 5 here runs in a namespace of its own, where `podman` on the host is not it).
    fn migrate_to_the_end(&mut self, out: Output) {
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains("start the Podman API service again") && err.contains("--resume"), "{err}");
        self.restart_service();
        let out = self.migrate(&["--resume", "--yes"]);
        assert!(out.status.success(), "resume: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    }

    /// The container that ran runs again and read its data on each of its `starts`.
    fn read_its_data(&self, starts: usize) {
        assert_eq!(self.service.ok(&["inspect", "--format", "{{.State.Status}}", "pg"]), "running");
        let start = Instant::now();
        loop {
            let logs = self.service.ok(&["logs", "pg"]);
            if logs.matches("hello from the database").count() == starts {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the restarted container did not read its data: {logs}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What Podman shows: volumes with mountpoints, images, containers with their mounts
    /// (states are compared on their own: `ps` words them by the time since the start).
    fn view(&self) -> (String, String, String) {
        let s = &self.service;
        (
            s.ok(&["volume", "ls", "--format", "{{.Name}} {{.Mountpoint}} {{.Driver}}"]),
            s.ok(&["images", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"]),
            s.ok(&["ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Mounts}}"]),
        )
    }
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough.
fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// 30 MB of random data, many small files, a sparse file, a hard link, a symlink, a user
/// xattr, files of other owners and modes.
fn fill_database(dir: &Path) {
    std::fs::write(dir.join("base.dat"), random(30 << 20, 1)).unwrap();
    std::fs::write(dir.join("hello"), "hello from the database\n").unwrap();
    std::fs::create_dir_all(dir.join("small/nested")).unwrap();
    for i in 0..300 {
        std::fs::write(dir.join(format!("small/f{i}")), random(100 + i * 7, i as u64 + 2)).unwrap();
    }
    let sparse = std::fs::File::create(dir.join("sparse")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"middle", 32 << 20).unwrap();
    std::fs::hard_link(dir.join("hello"), dir.join("small/nested/hello-again")).unwrap();
    std::os::unix::fs::symlink("../hello", dir.join("small/link")).unwrap();
    ok(Command::new("setfattr").args(["-n", "user.podfs", "-v", "kept"]).arg(dir.join("hello")));
    let other = dir.join("small/other");
    std::fs::write(&other, "owned by 1234").unwrap();
    std::os::unix::fs::chown(&other, Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(dir.join("small/nested"), std::fs::Permissions::from_mode(0o711)).unwrap();
}

/// Every entry below `dir`: type, mode, owners, size, mtime, content hash or link target,
/// user xattrs, and which entries share an inode.
fn manifest(dir: &Path) -> BTreeMap<String, String> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let what = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if !m.is_file() {
                format!("special {:x}", m.rdev())
            } else {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&p).unwrap().hash(&mut h);
                let same = if m.nlink() > 1 {
                    inodes.entry(m.ino()).or_insert(rel.clone()).clone()
                } else {
                    String::new()
                };
                format!("file {} {:x} blocks<={} link-group {same}", m.len(), h.finish(), m.blocks() <= 1024)
            };
            let xattr = run(Command::new("getfattr").args(["-d", "--absolute-names", "-h"]).arg(&p));
            let xattrs: Vec<String> = String::from_utf8_lossy(&xattr.stdout)
                .lines()
                .filter(|l| l.starts_with("user."))
                .map(String::from)
                .collect();
            out.insert(
                rel,
                format!(
                    "{what} mode {:o} owner {}:{} mtime {} xattrs {xattrs:?}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    if m.is_dir() { 0 } else { m.mtime() }
                ),
            );
        }
    }
    out
}

fn inode(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

fn scan_findings(service: &PodmanService) -> Vec<(String, String)> {
    let out = run(bin().args(["scan", "--format", "json", "--no-sizes", "--url", &service.url]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap().to_string(), f["object"].as_str().unwrap().to_string()))
        .collect()
}

/// Everything that shows a migration left no trace but the subvolumes.
fn leftovers(top: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![top.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".podfs-") {
                found.push(e.path().display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) && !name.starts_with("overlay") {
                stack.push(e.path());
            }
        }
    }
    found
}

on_each_podman!(migrate_in_place_keeps_podmans_view_and_the_data);
fn migrate_in_place_keeps_podmans_view_and_the_data(podman: Podman) {
    if !can_run("migrate in place", NEEDS, true) || !podman.available("migrate in place") {
        return;
    }
    let mut host = Host::new(podman);
    let pgdata = host.service.volume_dir("pgdata");
    let graphroot = host.service.graphroot.clone();
    let before_view = host.view();
    let before_data = manifest(&pgdata);
    let films_before = manifest(&host.service.volume_dir("films"));
    assert_ne!(inode(&graphroot), 256);
    let findings = scan_findings(&host.service);
    assert!(findings.contains(&("volume-cow".into(), "volume pgdata".into())), "{findings:?}");

    // A dry run names every step and changes nothing.
    let out = host.migrate(&["--dry-run"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    for step in ["preflight", "stop-containers: pg", "copy:", "verify", "swap", "start-containers"] {
        assert!(text.contains(step), "{step} missing from:\n{text}");
    }
    assert!(
        text.contains("(database)") && text.contains("NOCOW") && text.contains("written in full"),
        "{text}"
    );
    assert!(!host.state.path().join("journal.json").exists());
    assert_eq!(host.service.ok(&["inspect", "--format", "{{.State.Status}}", "pg"]), "running");

    // Without a terminal and without --yes: refused, nothing done.
    let out = host.migrate(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!host.state.path().join("journal.json").exists());

    let started = Instant::now();
    let out = host.migrate(&["--yes"]);
    let took = started.elapsed();
    eprintln!("migrate took {took:?}:\n{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let said = stdout(&out);
    host.migrate_to_the_end(out);
    if podman == Podman::Host {
        assert!(said.contains("started pg (with podman)"), "{said}");
        // The host's own podman started the container while the service was down; the
        // service was started by hand, so it is the user's to start again.
        assert!(said.contains("start it again"), "{said}");
        host.restart_service();
    }

    assert_eq!(inode(&graphroot), 256, "graphroot is a subvolume of its own");
    assert_eq!(inode(&pgdata), 256, "the database volume is a subvolume of its own");
    assert!(lsattr(&pgdata).contains('C'), "{}", lsattr(&pgdata));
    assert!(lsattr(&pgdata.join("base.dat")).contains('C'), "files are NOCOW too");
    let films = host.service.volume_dir("films");
    assert_eq!(inode(&films), 256);
    assert_eq!(compression_property(&films), "none");
    assert_ne!(inode(&host.service.volume_dir("plain")), 256, "a general volume stays where it is");
    assert_eq!(manifest(&pgdata), before_data, "every byte and all metadata are identical");
    assert_eq!(manifest(&films), films_before);
    assert_eq!(host.view(), before_view, "Podman lists the same objects with the same mountpoints");
    assert_eq!(host.service.ok(&["inspect", "--format", "{{.State.Status}}", "pg"]), "running");
    host.read_its_data(2);
    assert_eq!(
        host.service.ok(&["inspect", "--format", "{{.State.Status}}", "idle"]),
        "created",
        "only what ran runs"
    );
    let findings = scan_findings(&host.service);
    assert!(!findings.iter().any(|(code, _)| code == "volume-cow"), "{findings:?}");
    assert!(!findings.iter().any(|(_, o)| o == "graphroot"), "{findings:?}");

    let status = host.migrate(&["--status", "--format", "json"]);
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["migration"]["phase"], "migrated");
    assert!(v["migration"]["steps"].as_array().unwrap().iter().all(|s| s["done"] == true), "{v}");

    // --finalize frees the old copies' space and leaves nothing behind.
    let top = host.service.top.clone();
    let free_before = free(&top);
    let out = host.migrate(&["--finalize", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let freed = v["freed_bytes"].as_u64().unwrap();
    let measured = free(&top).saturating_sub(free_before);
    eprintln!("finalize freed {freed} bytes (measured {measured})");
    assert!(measured >= 25 << 20, "the old copy of 30 MB NOCOW-migrated data is freed: {measured}");
    assert_eq!(leftovers(&top), Vec::<String>::new());
    assert_eq!(manifest(&pgdata), before_data);
    assert_eq!(host.view(), before_view);
}

/// Kills migrate with SIGKILL as soon as the copy has begun.
fn kill_mid_copy(host: &Host) -> Value {
    let mut cmd = host.tool();
    cmd.args(["migrate", "--yes", "--url", &host.service.url, "--state-dir"])
        .arg(host.state.path())
        .envs(host.service.env())
        .env("HOME", host.home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let graphroot = host.service.graphroot.clone();
    let staging_prefix = format!("{}.podfs-new-", graphroot.file_name().unwrap().to_string_lossy());
    let start = Instant::now();
    loop {
        let copying = std::fs::read_dir(graphroot.parent().unwrap())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&staging_prefix));
        if copying || start.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    host.journal()
}

on_each_podman!(a_migration_killed_mid_copy_resumes_or_rolls_back_to_the_original);
fn a_migration_killed_mid_copy_resumes_or_rolls_back_to_the_original(podman: Podman) {
    if !can_run("migrate killed", NEEDS, true) || !podman.available("migrate killed") {
        return;
    }
    // Killed, then rolled back: data and Podman's view exactly the original, the container running.
    let mut host = Host::new(podman);
    let pgdata = host.service.volume_dir("pgdata");
    let graphroot = host.service.graphroot.clone();
    let before_view = host.view();
    let before_data = manifest(&pgdata);
    // The very directory, not a copy: rolled back before any swap, nothing moved.
    let root_id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).unwrap();
    let before_root = root_id(&graphroot);
    let images_before = manifest(&graphroot.join("overlay-images"));
    let j = kill_mid_copy(&host);
    let done: Vec<&str> = j["done"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(!done.contains(&"copy"), "killed during the copy: {done:?}");
    let out = host.migrate(&["--rollback"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        // Only the service can start the container again (Podman 5 in its own namespace).
        assert!(err.contains("start the Podman API service again"), "{err}");
        host.restart_service();
        let out = host.migrate(&["--rollback"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    } else {
        host.restart_service();
    }
    assert_ne!(inode(&graphroot), 256);
    assert_eq!(manifest(&pgdata), before_data);
    assert_eq!(root_id(&graphroot), before_root, "graphroot is the original directory");
    assert_eq!(manifest(&graphroot.join("overlay-images")), images_before);
    assert_eq!(host.view(), before_view);
    assert_eq!(host.service.ok(&["inspect", "--format", "{{.State.Status}}", "pg"]), "running");
    assert_eq!(leftovers(&host.service.top), Vec::<String>::new(), "the new subvolumes are gone");

    host.read_its_data(2);

    // Killed, then resumed: migrated as if never interrupted.
    let j = kill_mid_copy(&host);
    let done: Vec<&str> = j["done"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(!done.contains(&"copy"), "{done:?}");
    host.resume_to_migrated(&before_view, &before_data, 3);
}

impl Host {
    /// `--resume` to the end; then graphroot and the database volume are subvolumes of
    /// their own, the volume NOCOW with its data, Podman's view `view`, and the container
    /// ran again and read its data (its `starts`-th start).
    fn resume_to_migrated(
        &mut self,
        view: &(String, String, String),
        data: &BTreeMap<String, String>,
        starts: usize,
    ) {
        let out = self.migrate(&["--resume", "--yes"]);
        self.migrate_to_the_end(out);
        if self.service.podman == Podman::Host {
            self.restart_service();
        }
        let pgdata = self.service.volume_dir("pgdata");
        assert_eq!(inode(&self.service.graphroot), 256);
        assert_eq!(inode(&pgdata), 256);
        assert!(lsattr(&pgdata.join("base.dat")).contains('C'));
        assert_eq!(&manifest(&pgdata), data);
        assert_eq!(&self.view(), view);
        self.read_its_data(starts);
    }

    /// `migrate ARGS` in the background with extra environment (the test hooks).
    fn spawn_migrate(&self, args: &[&str], env: &[(&str, &Path)], logs: &Path) -> std::process::Child {
        let mut cmd = self.tool();
        cmd.arg("migrate")
            .args(args)
            .args(["--url", &self.service.url, "--state-dir"])
            .arg(self.state.path());
        cmd.envs(self.service.env()).env("HOME", self.home.path()).env("XDG_CONFIG_HOME", self.home.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Files, not pipes: a test polling the child reads nothing until it ends.
        let out = std::fs::File::create(logs.join("stdout")).unwrap();
        let err = std::fs::File::create(logs.join("stderr")).unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        cmd.spawn().unwrap()
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

    /// Everything as before the migration began.
    fn is_original(&self, view: &(String, String, String), data: &BTreeMap<String, String>) {
        assert_ne!(inode(&self.service.graphroot), 256);
        assert_ne!(inode(&self.service.volume_dir("pgdata")), 256);
        assert_eq!(&manifest(&self.service.volume_dir("pgdata")), data);
        assert_eq!(&self.view(), view);
        assert_eq!(self.service.ok(&["inspect", "--format", "{{.State.Status}}", "pg"]), "running");
        assert_eq!(leftovers(&self.service.top), Vec::<String>::new());
    }
}

/// Runs migrate paused after each target's copy; `at(N)` acts at the pause after target N.
fn migrate_pausing(host: &Host, at: &dyn Fn(usize)) -> Output {
    migrate_pausing_with(host, &[], at)
}

/// The output of a child that wrote into `logs`.
fn finished(child: std::process::Child, logs: &Path) -> Output {
    let mut out = child.wait_with_output().unwrap();
    out.stdout = std::fs::read(logs.join("stdout")).unwrap();
    out.stderr = std::fs::read(logs.join("stderr")).unwrap();
    out
}

on_each_podman!(faults_stop_the_migration_keep_the_original_and_roll_back);
fn faults_stop_the_migration_keep_the_original_and_roll_back(podman: Podman) {
    if !can_run("migrate faults", &[NEEDS, &["fallocate"]].concat(), true)
        || !podman.available("migrate faults")
    {
        return;
    }
    let mut host = Host::new(podman);
    let pgdata = host.service.volume_dir("pgdata");
    let view = host.view();
    let data = manifest(&pgdata);
    let graphroot = host.service.graphroot.clone();
    let stopped = |out: &Output, says: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(
            err.contains(says) && err.contains("the original is untouched") && err.contains("--rollback"),
            "{err}"
        );
        assert_ne!(inode(&graphroot), 256, "nothing was swapped");
    };

    // A byte of the copy differs: the verifier finds it before anything is swapped.
    let logs = TempDir::new("corrupt");
    let child = host.spawn_migrate(&["--yes"], &[("PODFS_TEST_CORRUPT_COPY", Path::new("1"))], logs.path());
    let out = finished(child, logs.path());
    stopped(&out, "content differs");
    assert_eq!(manifest(&pgdata), data);
    host.rollback_to_the_end();
    host.is_original(&view, &data);

    // A file of the original changes after it was copied (something outside Podman
    // wrote to it): the verifier finds the copy stale.
    let hello = pgdata.join("hello");
    let out = migrate_pausing(&host, &|target| {
        if target == 2 {
            let mut text = std::fs::read_to_string(&hello).unwrap();
            text.push_str("written meanwhile\n");
            std::fs::write(&hello, text).unwrap();
        }
    });
    stopped(&out, "verifying");
    assert!(
        std::fs::read_to_string(&hello).unwrap().contains("written meanwhile"),
        "the original keeps the change"
    );
    let data = manifest(&pgdata);
    host.rollback_to_the_end();
    host.is_original(&view, &data);

    // The filesystem fills up during the copy (a real ENOSPC from btrfs).
    let filler = host.service.top.join("filler");
    let out = migrate_pausing(&host, &|target| {
        if target == 0 {
            let avail = free(&host.service.top);
            ok(Command::new("fallocate").arg("-l").arg((avail - (8 << 20)).to_string()).arg(&filler));
        }
    });
    stopped(&out, "no space left");
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(manifest(&pgdata), data);
    host.rollback_to_the_end();
    host.is_original(&view, &data);
}

on_each_podman!(ctrl_c_stops_at_a_safe_point_and_resume_finishes);
fn ctrl_c_stops_at_a_safe_point_and_resume_finishes(podman: Podman) {
    if !can_run("migrate ctrl-c", &[NEEDS, &["kill"]].concat(), true) || !podman.available("migrate ctrl-c") {
        return;
    }
    let mut host = Host::new(podman);
    let pgdata = host.service.volume_dir("pgdata");
    let data = manifest(&pgdata);

    // The plan of steps as JSON, from a dry run.
    let out = host.migrate(&["--dry-run", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "dry-run");
    let roles: Vec<String> =
        v["migration"]["targets"].as_array().unwrap().iter().map(|t| t["role"].to_string()).collect();
    assert_eq!(roles.len(), 3, "graphroot, films and pgdata: {roles:?}");
    assert!(v["migration"]["space"]["needed"].as_u64().unwrap() >= 30 << 20, "{v}");
    assert_eq!(v["migration"]["containers"][0]["stop_timeout"], 2);

    // SIGINT (what Ctrl-C sends) while the first target is copied: the run stops before
    // the next one, says how to go on, and swaps nothing.
    let out = migrate_pausing(&host, &|target| {
        if target == 0 {
            let pid = std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .find(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
                        c.contains("migrate") && c.contains(host.state.path().to_str().unwrap())
                    })
                })
                .expect("the migrate process");
            ok(Command::new("kill").args(["-INT", &pid.to_string()]));
        }
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("stopped at a safe point") && err.contains("--resume") && err.contains("--rollback"),
        "{err}"
    );
    assert_ne!(inode(&host.service.graphroot), 256);
    assert_eq!(host.journal()["phase"], "running");

    let out = host.migrate(&["--resume", "--yes"]);
    host.migrate_to_the_end(out);
    if podman == Podman::Host {
        host.restart_service();
    }
    assert_eq!(inode(&pgdata), 256);
    assert_eq!(manifest(&pgdata), data);
    host.read_its_data(2);
}

on_each_podman!(a_rollback_after_the_migration_restores_the_original_and_keeps_the_new_data);
fn a_rollback_after_the_migration_restores_the_original_and_keeps_the_new_data(podman: Podman) {
    if !can_run("migrate rollback after", NEEDS, true) || !podman.available("migrate rollback after") {
        return;
    }
    let mut host = Host::new(podman);
    let pgdata = host.service.volume_dir("pgdata");
    let view = host.view();
    let data = manifest(&pgdata);
    let out = host.migrate(&["--yes"]);
    host.migrate_to_the_end(out);
    if podman == Podman::Host {
        host.restart_service();
    }
    assert_eq!(inode(&pgdata), 256);
    // What the container writes on the new data after the swap.
    std::fs::write(pgdata.join("after-swap"), "new").unwrap();

    host.rollback_to_the_end();
    // Its log lies in graphroot, which is the original again: the first start, and this one.
    host.read_its_data(2);
    assert_ne!(inode(&host.service.graphroot), 256);
    assert_ne!(inode(&pgdata), 256);
    assert_eq!(manifest(&pgdata), data, "the original, without what was written since");
    assert_eq!(host.view(), view);
    // The new subvolumes are kept and named: they hold what ran since the swap.
    let kept = leftovers(&host.service.top);
    let new_pgdata =
        kept.iter().find(|p| p.ends_with("-volume-pgdata")).expect("the new pgdata subvolume is kept");
    assert_eq!(std::fs::read_to_string(Path::new(new_pgdata).join("after-swap")).unwrap(), "new");
    let status = host.migrate(&["--status"]);
    assert!(stdout(&status).contains("kept the new subvolume"), "{}", stdout(&status));
}

/// With no API service answering, migrate reads the host through a `podman system service`
/// of its own (ended before any step) and stops and starts containers with `podman`.
/// Host Podman only: `podman` here cannot reach the Podman 5 of the test's own namespace.
#[test]
fn without_an_api_service_podman_itself_does_the_work() {
    if !can_run("migrate without API", NEEDS, true) {
        return;
    }
    let mut host = Host::new(Podman::Host);
    let pgdata = host.service.volume_dir("pgdata");
    let data = manifest(&pgdata);
    let view = host.view();
    // The service ends; its container runs on (conmon keeps it).
    host.service.stop();
    let out = host.migrate(&["--yes"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("stopped pg (stop timeout 2 s, with podman)"), "{text}");
    assert!(text.contains("started pg (with podman)"), "{text}");
    assert!(!text.contains("started by hand"), "our own planning service is not the user's: {text}");
    assert!(
        !host.state.path().join("planning.sock").exists() || {
            std::os::unix::net::UnixStream::connect(host.state.path().join("planning.sock")).is_err()
        }
    );
    host.service.start_again();
    assert_eq!(inode(&pgdata), 256);
    assert_eq!(manifest(&pgdata), data);
    assert_eq!(host.view(), view);
    host.read_its_data(2);
}

/// Time and extra space of migrating 1 GiB of volume data in place, once in a database
/// volume (NOCOW: every byte rewritten) and once in a media volume (compression none:
/// reflinked). Run with `cargo test --release --test migrate_system bench_migrate_1gib --
/// --ignored --nocapture` as root.
#[test]
#[ignore]
fn bench_migrate_1gib() {
    if !can_run("bench migrate", NEEDS, true) {
        return;
    }
    for class in ["database", "media"] {
        let mut service = PodmanService::start_in_directory_sized(Podman::Host, "overlay", "4G");
        service.import_busybox(&["localhost/app:1"]);
        service.ok(&["volume", "create", "--label", &format!("io.podfs.class={class}"), "data"]);
        let dir = service.volume_dir("data");
        for i in 0..4 {
            std::fs::write(dir.join(format!("part{i}")), random(256 << 20, i + 1)).unwrap();
        }
        service.ok(&[
            "run",
            "-d",
            "--name",
            "app",
            "--network=none",
            "--stop-timeout",
            "1",
            "-v",
            "data:/data",
            "localhost/app:1",
            "sleep",
            "1000",
        ]);
        let state = TempDir::new("bench-state");
        let top = service.top.clone();
        let before = free(&top);
        let started = Instant::now();
        let mut cmd = service.command(env!("CARGO_BIN_EXE_podman-btrfs-advise"));
        cmd.args(["migrate", "--yes", "--url", &service.url, "--state-dir"])
            .arg(state.path())
            .envs(service.env());
        let out = run(cmd.stdin(Stdio::null()));
        let took = started.elapsed();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let extra = before.saturating_sub(free(&top));
        let mut cmd = service.command(env!("CARGO_BIN_EXE_podman-btrfs-advise"));
        cmd.args(["migrate", "--finalize", "--state-dir"]).arg(state.path()).envs(service.env());
        let started = Instant::now();
        let out = run(&mut cmd);
        let finalize = started.elapsed();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let after = free(&top);
        eprintln!(
            "BENCH {class}: migrate {:.1} s, extra space until --finalize {} MiB, --finalize {:.1} s, \
             space after --finalize {} MiB more than before",
            took.as_secs_f64(),
            extra >> 20,
            finalize.as_secs_f64(),
            before.saturating_sub(after) as i64 >> 20
        );
        service.stop();
        drop(service);
    }
}

/// `migrate --to-disk`: the host's data on ext4 (graphroot and volumes), the new disk an
/// empty btrfs on a second loop device. The mounts are made in the Podman's mount
/// namespace, where the tool runs; the test looks there through /proc/PID/root.
impl Host {
    /// `path` as the Podman's mount namespace sees it.
    fn seen(&self, path: &Path) -> PathBuf {
        let holder = *self.service.own_processes().last().expect("the namespace holder");
        PathBuf::from(format!("/proc/{holder}/root")).join(path.strip_prefix("/").unwrap())
    }

    /// The mounts of `device` in the Podman's mount namespace.
    fn mounts_of(&self, device: &str) -> Vec<String> {
        let holder = *self.service.own_processes().last().expect("the namespace holder");
        std::fs::read_to_string(format!("/proc/{holder}/mountinfo"))
            .unwrap()
            .lines()
            .filter(|l| l.split(" - ").nth(1).is_some_and(|r| r.split_whitespace().nth(1) == Some(device)))
            .filter_map(|l| l.split_whitespace().nth(4).map(String::from))
            .collect()
    }

    fn filesystem(&self, path: &Path) -> String {
        ok(self.service.command("stat").args(["-f", "-c", "%T"]).arg(path)).trim().to_string()
    }
}

const ORIGINAL_FSTAB: &str = "# /etc/fstab of the test\nUUID=0000 / ext4 defaults 0 1\n";

on_each_podman!(to_disk_moves_an_ext4_host_onto_a_new_btrfs);
fn to_disk_moves_an_ext4_host_onto_a_new_btrfs(podman: Podman) {
    if !can_run("migrate --to-disk", &[NEEDS, &["mkfs.ext4", "stat"]].concat(), true)
        || !podman.available("migrate --to-disk")
    {
        return;
    }
    let dev = LoopBtrfs::new("1G");
    let mut host = Host::on_ext4(podman);
    let fstab = host.etc.path().join("fstab");
    std::fs::write(&fstab, ORIGINAL_FSTAB).unwrap();
    let fstab_arg = fstab.to_str().unwrap();
    let graphroot = host.service.graphroot.clone();
    let pgdata = host.service.volume_dir("pgdata");
    let films = host.service.volume_dir("films");
    let plain = host.service.volume_dir("plain");
    let before_view = host.view();
    let (pg_before, films_before, plain_before) = (manifest(&pgdata), manifest(&films), manifest(&plain));
    let images_before = manifest(&graphroot.join("overlay-images"));
    assert_eq!(host.filesystem(&graphroot), "ext2/ext3");

    // The dry run shows the exact entries and changes nothing.
    let out =
        host.migrate(&["--dry-run", "--to-disk", &dev.device, "--fstab", fstab_arg, "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &plan["migration"]["to_disk"];
    assert_eq!(d["device"], dev.device.as_str());
    assert_eq!(d["mounts"]["kind"], "fstab");
    assert_eq!(d["mounts"]["file"], fstab_arg);
    let subvolumes: Vec<&str> =
        d["subvolumes"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(subvolumes, ["@containers-storage", "@volume-films", "@volume-pgdata"], "{d}");
    let shown = d["mounts"]["entries"][0]["text"].as_str().unwrap().to_string();
    let uuid = ok(Command::new("blkid").args(["-o", "value", "-s", "UUID", &dev.device])).trim().to_string();
    assert_eq!(d["uuid"], uuid.as_str(), "the superblock read by the tool names the same UUID as blkid");
    assert!(
        shown.contains(&format!(
            "UUID={uuid} {} btrfs subvol=@containers-storage,noatime",
            graphroot.display()
        )),
        "{shown}"
    );
    assert!(plan["migration"]["space"]["needed"].as_u64().unwrap() >= 35 << 20, "{plan}");
    let human = stdout(&host.migrate(&["--dry-run", "--to-disk", &dev.device, "--fstab", fstab_arg]));
    assert!(human.contains(&format!("onto {}", dev.device)) && human.contains("persist-mounts"), "{human}");
    for line in shown.lines() {
        assert!(human.contains(line), "the human plan shows {line}:\n{human}");
    }
    assert_eq!(std::fs::read_to_string(&fstab).unwrap(), ORIGINAL_FSTAB);
    assert!(host.mounts_of(&dev.device).is_empty(), "a dry run leaves nothing mounted");

    let started = Instant::now();
    let out = host.migrate(&["--to-disk", &dev.device, "--fstab", fstab_arg, "--yes"]);
    eprintln!(
        "migrate --to-disk took {:?}:\n{}{}",
        started.elapsed(),
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    host.migrate_to_the_end(out);
    host.restart_service();

    let (g, pg) = (host.seen(&graphroot), host.seen(&pgdata));
    assert_eq!(host.filesystem(&graphroot), "btrfs");
    assert_eq!(inode(&g), 256, "graphroot is the subvolume's root");
    assert_eq!(inode(&pg), 256);
    assert_eq!(host.filesystem(&pgdata), "btrfs");
    assert!(lsattr(&pg).contains('C'), "{}", lsattr(&pg));
    assert!(lsattr(&pg.join("base.dat")).contains('C'), "files are NOCOW too");
    // The compression property is the xattr btrfs.compression (`btrfs` is not in every root).
    let property = ok(Command::new("getfattr")
        .args(["-n", "btrfs.compression", "--only-values"])
        .arg(host.seen(&films)));
    assert_eq!(property.trim(), "none");
    assert_eq!(manifest(&pg), pg_before, "every byte and all metadata are identical");
    assert_eq!(manifest(&host.seen(&films)), films_before);
    assert_eq!(manifest(&host.seen(&plain)), plain_before, "a volume that shares graphroot moved with it");
    assert_eq!(manifest(&g.join("overlay-images")), images_before);
    let mounted = host.mounts_of(&dev.device);
    for p in [&graphroot, &pgdata, &films] {
        assert!(mounted.contains(&p.display().to_string()), "{} in {mounted:?}", p.display());
    }
    assert_eq!(host.view(), before_view, "Podman lists the same objects with the same mountpoints");
    host.read_its_data(2);
    let findings = scan_findings(&host.service);
    assert!(!findings.iter().any(|(code, _)| code == "volume-cow"), "{findings:?}");
    assert!(!findings.iter().any(|(_, o)| o == "graphroot"), "{findings:?}");
    assert_eq!(
        std::fs::read_to_string(&fstab).unwrap(),
        format!("{ORIGINAL_FSTAB}{shown}"),
        "the fstab holds exactly the entries the dry run showed"
    );
    assert!(
        !std::fs::read_dir(host.seen(host.state.path()))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("disk-")),
        "the new disk's top level is no longer mounted under the state directory"
    );

    // --finalize deletes the old copies on the ext4 and leaves nothing behind.
    let top = host.service.top.clone();
    let free_before = free(&top);
    let out = host.migrate(&["--finalize", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let measured = free(&top).saturating_sub(free_before);
    eprintln!("finalize freed {measured} bytes on the ext4");
    assert!(measured >= 35 << 20, "the old copies' space is freed: {measured}");
    assert_eq!(leftovers(&host.seen(&top)), Vec::<String>::new());
    assert_eq!(leftovers(&top), Vec::<String>::new());
    assert_eq!(manifest(&host.seen(&pgdata)), pg_before);
    assert_eq!(host.view(), before_view);
    assert_eq!(std::fs::read_to_string(&fstab).unwrap(), format!("{ORIGINAL_FSTAB}{shown}"));
}

on_each_podman!(to_disk_rolls_back_after_the_swap_and_writes_systemd_units);
fn to_disk_rolls_back_after_the_swap_and_writes_systemd_units(podman: Podman) {
    if !can_run("migrate --to-disk rollback", &[NEEDS, &["mkfs.ext4", "stat"]].concat(), true)
        || !podman.available("migrate --to-disk rollback")
    {
        return;
    }
    let dev = LoopBtrfs::new("1G");
    let mut host = Host::on_ext4(podman);
    let units = TempDir(host.etc.path().join("units"));
    std::fs::create_dir(units.path()).unwrap();
    let pgdata = host.service.volume_dir("pgdata");
    let graphroot = host.service.graphroot.clone();
    let view = host.view();
    let data = manifest(&pgdata);
    let args =
        ["--to-disk", &dev.device, "--mounts", "systemd", "--unit-dir", units.path().to_str().unwrap()];
    let out = host.migrate(&[&args[..], &["--dry-run", "--format", "json"]].concat());
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = plan["migration"]["to_disk"]["mounts"]["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 3, "{entries:?}");
    let out = host.migrate(&[&args[..], &["--yes"]].concat());
    host.migrate_to_the_end(out);
    host.restart_service();
    assert_eq!(inode(&host.seen(&pgdata)), 256);

    // The units are written as shown, enabled, and systemd accepts them.
    for e in &entries {
        let file = PathBuf::from(e["file"].as_str().unwrap());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), e["text"].as_str().unwrap());
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        let escaped = ok(Command::new("systemd-escape")
            .args(["--path", "--suffix=mount"])
            .arg(e["text"].as_str().unwrap().lines().find_map(|l| l.strip_prefix("Where=")).unwrap()));
        assert_eq!(name, escaped.trim(), "units are named by systemd's path escaping");
        assert_eq!(std::fs::read_link(units.path().join("local-fs.target.wants").join(&name)).unwrap(), file);
        if which("systemd-analyze").is_some() {
            let out = run(Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&file));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && !err.contains(&name), "systemd-analyze verify {name}: {err}");
        }
    }

    // What the container writes on the new disk after the swap.
    std::fs::write(host.seen(&pgdata).join("after-swap"), "new").unwrap();
    host.rollback_to_the_end();
    assert!(host.mounts_of(&dev.device).is_empty(), "every mount of the new disk is gone");
    assert_eq!(std::fs::read_dir(units.path().join("local-fs.target.wants")).unwrap().count(), 0);
    assert!(!std::fs::read_dir(units.path()).unwrap().flatten().any(|e| e.path().is_file()), "units removed");
    assert_ne!(inode(&host.seen(&graphroot)), 256);
    assert_eq!(host.filesystem(&graphroot), "ext2/ext3");
    assert_eq!(manifest(&host.seen(&pgdata)), data, "the original, without what was written since");
    assert_eq!(host.view(), view);
    assert_eq!(host.service.ok(&["inspect", "--format", "{{.State.Status}}", "pg"]), "running");
    host.read_its_data(2);
    assert_eq!(leftovers(&host.service.top), Vec::<String>::new());
    let status = stdout(&host.migrate(&["--status"]));
    assert!(status.contains("kept the new subvolume @volume-pgdata"), "{status}");
}

on_each_podman!(to_disk_rolls_back_an_fstab_to_its_bytes_and_stops_on_a_full_disk);
fn to_disk_rolls_back_an_fstab_to_its_bytes_and_stops_on_a_full_disk(podman: Podman) {
    if !can_run("migrate --to-disk faults", &[NEEDS, &["mkfs.ext4", "stat", "fallocate"]].concat(), true)
        || !podman.available("migrate --to-disk faults")
    {
        return;
    }
    let small = LoopBtrfs::new("128M");
    let dev = LoopBtrfs::new("1G");
    let mut host = Host::on_ext4(podman);
    std::fs::write(host.service.volume_dir("films").join("more.mkv"), random(120 << 20, 9)).unwrap();
    let fstab = host.etc.path().join("fstab");
    std::fs::write(&fstab, ORIGINAL_FSTAB).unwrap();
    let fstab_arg = fstab.to_str().unwrap();
    let pgdata = host.service.volume_dir("pgdata");
    let view = host.view();
    let data = manifest(&pgdata);

    // Too small: refused before anything is done, naming both sizes.
    let out = host.migrate(&["--to-disk", &small.device, "--fstab", fstab_arg, "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("not enough space on") && err.contains("the data needs") && err.contains("free"),
        "{err}"
    );
    assert!(!host.state.path().join("journal.json").exists());
    assert!(host.mounts_of(&small.device).is_empty());
    assert_eq!(std::fs::read_to_string(&fstab).unwrap(), ORIGINAL_FSTAB);
    assert_eq!(host.service.ok(&["inspect", "--format", "{{.State.Status}}", "pg"]), "running");

    // The new disk fills up during the copy: stopped, the original untouched, rolled back.
    let state = host.state.path().to_path_buf();
    let out = {
        let h = &host;
        migrate_pausing_with(h, &["--to-disk", &dev.device, "--fstab", fstab_arg], &|target| {
            if target == 0 {
                let name = std::fs::read_dir(h.seen(&state))
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .find(|n| n.starts_with("disk-"))
                    .expect("the new disk's top level, mounted under the state directory");
                // Measured and filled in the Podman's namespace, where it is mounted.
                let top = state.join(name);
                let df = ok(h.service.command("df").args(["-B1", "--output=avail"]).arg(&top));
                let avail: u64 = df.lines().nth(1).unwrap().trim().parse().unwrap();
                ok(h.service
                    .command("fallocate")
                    .arg("-l")
                    .arg((avail - (4 << 20)).to_string())
                    .arg(top.join("filler")));
            }
        })
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("no space left")
            && err.contains("the original is untouched")
            && err.contains("--rollback"),
        "{err}"
    );
    assert_eq!(manifest(&pgdata), data);
    let top = std::fs::read_dir(host.seen(&state))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("disk-"))
        .unwrap()
        .path();
    std::fs::remove_file(top.join("filler")).unwrap();
    host.rollback_to_the_end();
    host.is_original(&view, &data);
    assert!(host.mounts_of(&dev.device).is_empty());
    assert_eq!(std::fs::read_to_string(&fstab).unwrap(), ORIGINAL_FSTAB);

    // Migrated, then rolled back after the swap: the fstab has its original bytes again.
    let out = host.migrate(&["--to-disk", &dev.device, "--fstab", fstab_arg, "--yes"]);
    host.migrate_to_the_end(out);
    host.restart_service();
    assert_ne!(std::fs::read_to_string(&fstab).unwrap(), ORIGINAL_FSTAB);
    assert_eq!(host.filesystem(&pgdata), "btrfs");
    host.rollback_to_the_end();
    assert_eq!(std::fs::read(&fstab).unwrap(), ORIGINAL_FSTAB.as_bytes());
    assert!(host.mounts_of(&dev.device).is_empty());
    assert_eq!(manifest(&host.seen(&pgdata)), data);
    assert_eq!(host.view(), view);
    host.read_its_data(3);
}

/// As [`migrate_pausing`] with extra arguments.
fn migrate_pausing_with(host: &Host, args: &[&str], at: &dyn Fn(usize)) -> Output {
    // In the host's own directory, which the tool sees wherever it runs.
    static PAUSES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = PAUSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pause = TempDir(host.etc.path().join(format!("pause-{n}")));
    std::fs::create_dir(pause.path()).unwrap();
    let mut child = host.spawn_migrate(
        &[args, &["--yes"]].concat(),
        &[("PODFS_TEST_PAUSE_DIR", pause.path())],
        pause.path(),
    );
    let mut next = 0;
    let start = Instant::now();
    let logs = || std::fs::read_to_string(pause.path().join("stderr")).unwrap_or_default();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(120), "migrate hangs at pause {next}: {}", logs());
        if pause.path().join(format!("copied-{next}")).exists() {
            at(next);
            std::fs::write(pause.path().join(format!("continue-{next}")), "").unwrap();
            next += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    finished(child, pause.path())
}

#[test]
fn to_disk_refuses_bad_disks_and_renders_nixos_and_systemd_mounts() {
    if !can_run("migrate --to-disk input", &[NEEDS, &["wipefs", "nix-instantiate"]].concat(), true)
        || !Podman::Host.available("migrate --to-disk input")
    {
        return;
    }
    let spare = LoopBtrfs::new("1G");
    let blank = LoopBtrfs::new("200M");
    ok(Command::new("wipefs").args(["-a", "-q", &blank.device]));
    let mut mounted = LoopBtrfs::new("200M");
    mounted.mount("/", "");
    let used = LoopBtrfs::new("200M");
    let host = Host::new(Podman::Host);
    let etc = &host.etc;
    let fstab = etc.path().join("fstab");
    let refused = |dev: &str, code: i32, says: &[&str]| {
        let out = host.migrate(&["--to-disk", dev, "--fstab", fstab.to_str().unwrap(), "--dry-run"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{dev}: {err}");
        for s in says {
            assert!(err.contains(s), "{dev}: {s} missing from {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    };
    let file = etc.path().join("disk.img");
    std::fs::write(&file, "").unwrap();
    refused(file.to_str().unwrap(), 2, &["not a block device", file.to_str().unwrap()]);
    refused("/dev/no-such-disk", 2, &["/dev/no-such-disk"]);
    refused(&blank.device, 3, &[&blank.device, "holds no btrfs", "never formats"]);
    refused(&mounted.device, 3, &[&mounted.device, "is in use", "mounted"]);
    refused(&host.service.fs.device, 3, &["graphroot", "is on that disk"]);
    // A top level with data in it is not an empty disk.
    let mut with_data = used;
    let at = with_data.mount("/", "");
    std::fs::write(at.join("family-photos"), "mine").unwrap();
    with_data.umount(&at);
    refused(&with_data.device, 3, &["family-photos (not a subvolume)"]);
    // graphroot that is a mount point cannot be renamed aside.
    let g = host.service.graphroot.clone();
    ok(host.service.command("mount").arg("--bind").arg(&g).arg(&g));
    refused(&spare.device, 3, &[&format!("{} is a mount point", g.display())]);
    ok(host.service.command("umount").arg("-l").arg(&g));
    assert!(!fstab.exists(), "nothing written");

    // The NixOS module parses with the real Nix, and names the disk by UUID.
    let nix = etc.path().join("mounts.nix");
    let out = host.migrate(&[
        "--to-disk",
        &spare.device,
        "--mounts",
        "nixos",
        "--nixos-file",
        nix.to_str().unwrap(),
        "--dry-run",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["migration"]["to_disk"]["mounts"];
    assert_eq!(m["kind"], "nixos");
    assert_eq!(m["file"], nix.to_str().unwrap());
    let text = m["entries"][0]["text"].as_str().unwrap();
    assert!(!nix.exists(), "a dry run writes nothing");
    std::fs::write(&nix, text).unwrap();
    ok(Command::new("nix-instantiate").arg("--parse").arg(&nix));
    let uuid = v["migration"]["to_disk"]["uuid"].as_str().unwrap();
    let fs = nix_eval_expr(&format!("(import {} {{}}).fileSystems", nix.display()));
    let graphroot = host.service.graphroot.display().to_string();
    assert_eq!(fs[&graphroot]["device"], format!("/dev/disk/by-uuid/{uuid}"));
    assert_eq!(fs[&graphroot]["fsType"], "btrfs");
    assert_eq!(fs[&graphroot]["options"][0], "subvol=@containers-storage");
    let pg = host.service.volume_dir("pgdata").display().to_string();
    assert_eq!(fs[&pg]["options"][0], "subvol=@volume-pgdata");
    // An existing module of someone else's is never written over.
    std::fs::write(&nix, "{ ... }: { }\n").unwrap();
    let out = host.migrate(&[
        "--to-disk",
        &spare.device,
        "--mounts",
        "nixos",
        "--nixos-file",
        nix.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
}

impl Host {
    /// `migrate ARGS` killed with SIGKILL at the pause after target `at` was copied.
    fn kill_after_copy(&self, args: &[&str], at: usize) -> Value {
        let pause = TempDir(self.etc.path().join(format!("kill-{at}")));
        std::fs::create_dir(pause.path()).unwrap();
        let mut child = self.spawn_migrate(
            &[args, &["--yes"]].concat(),
            &[("PODFS_TEST_PAUSE_DIR", pause.path())],
            pause.path(),
        );
        let start = Instant::now();
        let mut next = 0;
        while next < at {
            if pause.path().join(format!("copied-{next}")).exists() {
                std::fs::write(pause.path().join(format!("continue-{next}")), "").unwrap();
                next += 1;
            }
            assert!(child.try_wait().unwrap().is_none(), "migrate ended before the kill");
            assert!(start.elapsed() < Duration::from_secs(120), "migrate hangs");
            std::thread::sleep(Duration::from_millis(10));
        }
        while !pause.path().join(format!("copied-{at}")).exists() {
            assert!(child.try_wait().unwrap().is_none(), "migrate ended before the kill");
            assert!(start.elapsed() < Duration::from_secs(120), "migrate hangs");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        self.journal()
    }
}

on_each_podman!(to_disk_killed_mid_copy_rolls_back_or_resumes);
fn to_disk_killed_mid_copy_rolls_back_or_resumes(podman: Podman) {
    if !can_run("migrate --to-disk killed", &[NEEDS, &["mkfs.ext4", "stat"]].concat(), true)
        || !podman.available("migrate --to-disk killed")
    {
        return;
    }
    let mut dev = LoopBtrfs::new("1G");
    let device = dev.device.clone();
    let mut host = Host::on_ext4(podman);
    let fstab = host.etc.path().join("fstab");
    std::fs::write(&fstab, ORIGINAL_FSTAB).unwrap();
    let args = ["--to-disk", &device, "--fstab", fstab.to_str().unwrap()];
    let pgdata = host.service.volume_dir("pgdata");
    let graphroot = host.service.graphroot.clone();
    let (view, data) = (host.view(), manifest(&pgdata));

    // Killed during the copy, then rolled back: the original, nothing left on the disk.
    let j = host.kill_after_copy(&args, 1);
    assert!(!j["done"].as_array().unwrap().iter().any(|s| s == "copy"), "{j}");
    assert!(!host.mounts_of(&device).is_empty(), "the new disk's top level is still mounted");
    host.rollback_to_the_end();
    assert!(host.mounts_of(&device).is_empty());
    host.is_original(&view, &data);
    assert_eq!(std::fs::read(&fstab).unwrap(), ORIGINAL_FSTAB.as_bytes());
    let at = dev.mount("/", "");
    assert_eq!(std::fs::read_dir(&at).unwrap().count(), 0, "the subvolumes it made are deleted");
    dev.umount(&at);

    // Killed during the copy, then resumed: migrated as if never interrupted. An empty
    // subvolume of the plan's name (as disko makes them) is used, not made again.
    let at = dev.mount("/", "");
    ok(Command::new("btrfs").args(["subvolume", "create"]).arg(at.join("@volume-pgdata")));
    dev.umount(&at);
    host.kill_after_copy(&args, 1);
    let out = host.migrate(&["--resume", "--yes"]);
    host.migrate_to_the_end(out);
    host.restart_service();
    assert_eq!(host.filesystem(&graphroot), "btrfs");
    assert_eq!(inode(&host.seen(&pgdata)), 256);
    assert!(lsattr(&host.seen(&pgdata).join("base.dat")).contains('C'));
    assert_eq!(manifest(&host.seen(&pgdata)), data);
    assert_eq!(host.view(), view);
    assert!(std::fs::read_to_string(&fstab).unwrap().contains("subvol=@volume-pgdata"));
    host.read_its_data(3);
    let made: Vec<(String, bool)> = host.journal()["to_disk"]["subvolumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["made"].as_bool().unwrap()))
        .collect();
    assert!(
        made.contains(&("@volume-pgdata".into(), false))
            && made.contains(&("@containers-storage".into(), true)),
        "{made:?}"
    );
}

/// Podman 5 in a mount namespace of its own, the tool outside it: mounts made by the tool
/// would not be seen by Podman, so `--to-disk` refuses and says where to run.
#[test]
fn to_disk_refuses_a_podman_in_another_mount_namespace() {
    if !can_run("migrate --to-disk namespace", NEEDS, true)
        || !Podman::Trixie.available("migrate --to-disk namespace")
    {
        return;
    }
    let spare = LoopBtrfs::new("1G");
    let host = Host::new(Podman::Trixie);
    let out = host.migrate(&["--to-disk", &spare.device, "--mounts", "none", "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("another mount namespace") && err.contains("nsenter -t"), "{err}");
    assert!(!host.state.path().join("journal.json").exists());
}

/// Time and space of moving 1 GiB of database volume data from ext4 onto a new btrfs disk.
/// Run with `cargo test --release --test migrate_system bench_to_disk_1gib -- --ignored
/// --nocapture` as root.
#[test]
#[ignore]
fn bench_to_disk_1gib() {
    if !can_run("bench migrate --to-disk", &[NEEDS, &["mkfs.ext4"]].concat(), true) {
        return;
    }
    let dev = LoopBtrfs::new("4G");
    let service = PodmanService::start_on_ext4(Podman::Host, "overlay", "4G", &[]);
    service.import_busybox(&["localhost/app:1"]);
    service.ok(&["volume", "create", "--label", "io.podfs.class=database", "data"]);
    let dir = service.volume_dir("data");
    for i in 0..4 {
        std::fs::write(dir.join(format!("part{i}")), random(256 << 20, i + 1)).unwrap();
    }
    let state = TempDir::new("bench-state");
    let etc = TempDir::new("bench-etc");
    let fstab = etc.path().join("fstab");
    let tool = || {
        let mut cmd = service.command(env!("CARGO_BIN_EXE_podman-btrfs-advise"));
        cmd.envs(service.env()).stdin(Stdio::null());
        cmd
    };
    let top = service.top.clone();
    let before = free(&top);
    let started = Instant::now();
    let out = run(tool()
        .args(["migrate", "--yes", "--url", &service.url, "--to-disk", &dev.device, "--fstab"])
        .arg(&fstab)
        .arg("--state-dir")
        .arg(state.path()));
    let took = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let used_on_dev = ok(service.command("df").args(["-B1", "--output=used"]).arg(&dir));
    let started = Instant::now();
    let out = run(tool().args(["migrate", "--finalize", "--state-dir"]).arg(state.path()));
    let finalize = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eprintln!(
        "BENCH to-disk: migrate {:.1} s, used on the new disk {} MiB, --finalize {:.1} s, freed on the ext4 {} MiB",
        took.as_secs_f64(),
        used_on_dev.lines().nth(1).unwrap().trim().parse::<u64>().unwrap() >> 20,
        finalize.as_secs_f64(),
        free(&top).saturating_sub(before) >> 20
    );
}

impl Host {
    /// Runs migrate (with `args`) until it kills itself after the swap's `change`-th
    /// change to the filesystem (a rename, a mount point made, a mount); the journal then.
    fn kill_in_swap(&self, args: &[&str], change: usize) -> Value {
        let logs = TempDir::new("kill-in-swap");
        let change = change.to_string();
        let mut child = self.spawn_migrate(
            &[args, &["--yes"]].concat(),
            &[("PODFS_TEST_KILL_IN_SWAP", Path::new(&change))],
            logs.path(),
        );
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < Duration::from_secs(180), "migrate hangs");
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = std::fs::read_to_string(logs.path().join("stderr")).unwrap_or_default();
        assert_eq!(status.signal(), Some(9), "killed in the swap at change {change}: {status:?}\n{err}");
        let j = self.journal();
        let done: Vec<&str> = j["done"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert!(done.contains(&"verify") && !done.contains(&"swap"), "{done:?}");
        j
    }
}

on_each_podman!(a_migration_killed_mid_swap_resumes_or_rolls_back);
fn a_migration_killed_mid_swap_resumes_or_rolls_back(podman: Podman) {
    if !can_run("migrate killed mid-swap", NEEDS, true) || !podman.available("migrate killed mid-swap") {
        return;
    }
    let mut host = Host::new(podman);
    let pgdata = host.service.volume_dir("pgdata");
    let graphroot = host.service.graphroot.clone();
    let (view, data) = (host.view(), manifest(&pgdata));

    // The database volume (nested, swapped first) is half swapped: its data renamed aside,
    // the new subvolume not yet in its place. Rolled back: the original.
    host.kill_in_swap(&[], 1);
    host.rollback_to_the_end();
    assert_ne!(inode(&graphroot), 256);
    assert_ne!(inode(&pgdata), 256);
    assert_eq!(manifest(&pgdata), data);
    assert_eq!(host.view(), view);
    assert_eq!(host.service.ok(&["inspect", "--format", "{{.State.Status}}", "pg"]), "running");
    host.read_its_data(2);

    // The database volume swapped, graphroot half swapped. Resumed: migrated.
    host.kill_in_swap(&[], 3);
    host.resume_to_migrated(&view, &data, 3);
}

on_each_podman!(to_disk_killed_mid_swap_resumes_or_rolls_back);
fn to_disk_killed_mid_swap_resumes_or_rolls_back(podman: Podman) {
    if !can_run("migrate --to-disk killed mid-swap", &[NEEDS, &["mkfs.ext4", "stat"]].concat(), true)
        || !podman.available("migrate --to-disk killed mid-swap")
    {
        return;
    }
    let (first, second) = (LoopBtrfs::new("1G"), LoopBtrfs::new("1G"));
    let mut host = Host::on_ext4(podman);
    let fstab = host.etc.path().join("fstab");
    std::fs::write(&fstab, ORIGINAL_FSTAB).unwrap();
    let pgdata = host.service.volume_dir("pgdata");
    let graphroot = host.service.graphroot.clone();
    let (view, data) = (host.view(), manifest(&pgdata));

    // graphroot renamed aside and its empty mount point made, nothing mounted yet.
    // Rolled back: the original, the fstab untouched.
    host.kill_in_swap(&["--to-disk", &first.device, "--fstab", fstab.to_str().unwrap()], 2);
    host.rollback_to_the_end();
    assert!(host.mounts_of(&first.device).is_empty());
    host.is_original(&view, &data);
    assert_eq!(std::fs::read(&fstab).unwrap(), ORIGINAL_FSTAB.as_bytes());

    // graphroot and the database volume mounted, the top level still mounted, no fstab
    // line yet. Resumed: migrated, the fstab written.
    host.kill_in_swap(&["--to-disk", &second.device, "--fstab", fstab.to_str().unwrap()], 4);
    assert_eq!(std::fs::read(&fstab).unwrap(), ORIGINAL_FSTAB.as_bytes());
    let out = host.migrate(&["--resume", "--yes"]);
    host.migrate_to_the_end(out);
    host.restart_service();
    assert_eq!(host.filesystem(&graphroot), "btrfs");
    assert_eq!(inode(&host.seen(&pgdata)), 256);
    assert_eq!(manifest(&host.seen(&pgdata)), data);
    assert_eq!(host.view(), view);
    let written = std::fs::read_to_string(&fstab).unwrap();
    assert!(
        written.contains("subvol=@containers-storage") && written.contains("subvol=@volume-pgdata"),
        "{written}"
    );
    // Mounted at graphroot and below it (the volumes, the storage driver's own binds); the
    // top level the copies were made in is gone.
    let mounts = host.mounts_of(&second.device);
    assert!(mounts.iter().all(|m| Path::new(m).starts_with(&graphroot)), "{mounts:?}");
    assert!(mounts.contains(&graphroot.display().to_string()), "{mounts:?}");
    assert!(mounts.contains(&pgdata.display().to_string()), "{mounts:?}");
    host.read_its_data(3);
}
