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
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NEEDS: &[&str] = &["podman", "runc", "mkfs.btrfs", "losetup", "lsattr", "busybox", "setfattr"];

/// The host with its data, and a state directory for the journal.
struct Host {
    service: PodmanService,
    state: TempDir,
    home: TempDir,
}

impl Host {
    fn new(podman: Podman) -> Host {
        let service = PodmanService::start_in_directory_on(podman, "overlay");
        service.import_busybox(&["localhost/postgres:16", "localhost/app:1"]);
        service.ok(&["volume", "create", "--label", "io.podfs.class=database", "pgdata"]);
        service.ok(&["volume", "create", "--label", "io.podfs.class=media", "films"]);
        service.ok(&["volume", "create", "plain"]);
        fill_database(&volume_dir(&service, "pgdata"));
        let films = volume_dir(&service, "films");
        std::fs::write(films.join("movie.mkv"), random(5 << 20, 7)).unwrap();
        std::fs::write(volume_dir(&service, "plain").join("notes.txt"), "plain data\n").unwrap();
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
        Host { service, state: TempDir::new("migrate-state"), home: TempDir::new("migrate-home") }
    }

    /// The tool, run where the machine's Podman runs (the test's own mount namespace), so
    /// that `podman` there is the Podman that served the socket. The Podman 5 root does not
    /// hold the tool, so that one is reached through its socket alone.
    fn tool(&self) -> Command {
        match self.service.podman {
            Podman::Host => self.service.command(env!("CARGO_BIN_EXE_podman-btrfs-advise")),
            Podman::Trixie => bin(),
        }
    }

    fn migrate(&self, args: &[&str]) -> Output {
        let mut cmd = self.tool();
        cmd.arg("migrate").args(args).arg("--state-dir").arg(self.state.path());
        if !args.iter().any(|a| {
            a.starts_with("--resume")
                || a.starts_with("--rollback")
                || a.starts_with("--finalize")
                || a.starts_with("--status")
        }) {
            cmd.args(["--url", &self.service.url]);
        }
        cmd.envs(self.service.env()).env("HOME", self.home.path()).env("XDG_CONFIG_HOME", self.home.path());
        cmd.stdin(Stdio::null());
        run(&mut cmd)
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

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn volume_dir(service: &PodmanService, name: &str) -> PathBuf {
    service.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", name]).into()
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
    let pgdata = volume_dir(&host.service, "pgdata");
    let graphroot = host.service.graphroot.clone();
    let before_view = host.view();
    let before_data = manifest(&pgdata);
    let films_before = manifest(&volume_dir(&host.service, "films"));
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
    let films = volume_dir(&host.service, "films");
    assert_eq!(inode(&films), 256);
    assert_eq!(compression_property(&films), "none");
    assert_ne!(inode(&volume_dir(&host.service, "plain")), 256, "a general volume stays where it is");
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

fn free(p: &Path) -> u64 {
    ok(Command::new("sync").arg("-f").arg(p));
    let out = ok(Command::new("df").args(["-B1", "--output=avail"]).arg(p));
    out.lines().nth(1).unwrap().trim().parse().unwrap()
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
    let pgdata = volume_dir(&host.service, "pgdata");
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
    let out = host.migrate(&["--resume", "--yes"]);
    host.migrate_to_the_end(out);
    if podman == Podman::Host {
        host.restart_service();
    }
    assert_eq!(inode(&graphroot), 256);
    assert_eq!(inode(&pgdata), 256);
    assert!(lsattr(&pgdata.join("base.dat")).contains('C'));
    assert_eq!(manifest(&pgdata), before_data);
    assert_eq!(host.view(), before_view);
    host.read_its_data(3);
}

impl Host {
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
        assert_ne!(inode(&volume_dir(&self.service, "pgdata")), 256);
        assert_eq!(&manifest(&volume_dir(&self.service, "pgdata")), data);
        assert_eq!(&self.view(), view);
        assert_eq!(self.service.ok(&["inspect", "--format", "{{.State.Status}}", "pg"]), "running");
        assert_eq!(leftovers(&self.service.top), Vec::<String>::new());
    }
}

/// Runs migrate paused after each target's copy; `at(N)` acts at the pause after target N.
fn migrate_pausing(host: &Host, at: &dyn Fn(usize)) -> Output {
    let pause = TempDir::new("pause");
    let mut child = host.spawn_migrate(&["--yes"], &[("PODFS_TEST_PAUSE_DIR", pause.path())], pause.path());
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
    let pgdata = volume_dir(&host.service, "pgdata");
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
    let pgdata = volume_dir(&host.service, "pgdata");
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
    let pgdata = volume_dir(&host.service, "pgdata");
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
    let pgdata = volume_dir(&host.service, "pgdata");
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
        let dir = volume_dir(&service, "data");
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
