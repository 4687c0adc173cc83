//! `bench`'s container part (`podfs::bench::containers::measure`) with a real Podman on a
//! loop-mounted btrfs: both drivers measured, every operation timed, and nothing left
//! behind: no file, subvolume or mount in the scratch directory, no process, and no write
//! to Podman's state outside it.
//!
//! `measure` runs the `podman` found on PATH, so it must run where that Podman is the one
//! under test and the machine's own Podman state is out of reach: this test binary runs
//! itself (the ignored `measure_in_namespace`) inside the Podman's namespace of
//! tests/common/podman.rs, the trixie root for Podman 5.

mod common;

use common::podman::{Podman, PodmanRoot};
use common::*;
use podfs::bench::containers::{ContainerBench, DRIVERS, OPERATIONS, QUICK_IMAGE_FILES, measure};
use serde_json::{Value, json};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

const NEEDS: &[&str] = &["podman", "mkfs.btrfs", "losetup", "unshare", "nsenter", "find", "btrfs"];
const SCRATCH_ENV: &str = "PODFS_TEST_BENCH_SCRATCH";
const OUT_ENV: &str = "PODFS_TEST_BENCH_OUT";
const ROUNDS_ENV: &str = "PODFS_TEST_BENCH_ROUNDS";
/// `0` for a default-sized run (the tests run `--quick` ones).
const QUICK_ENV: &str = "PODFS_TEST_BENCH_QUICK";
/// Cancel when a progress line contains this.
const CANCEL_AT_ENV: &str = "PODFS_TEST_BENCH_CANCEL_AT";
/// The btrfs driver's layers, below the store `measure` makes in the scratch directory.
const BTRFS_LAYERS: &str = "btrfs/root/btrfs/subvolumes";

/// Not a test of its own: `run_measure` runs it inside a Podman's namespace, where it
/// calls `measure` and writes what it returned, the progress lines, and the btrfs-driver
/// subvolumes it saw while a container existed, as JSON.
#[test]
#[ignore = "run by the system tests below inside a Podman's namespace"]
fn measure_in_namespace() {
    let (Some(scratch), Some(out)) = (std::env::var_os(SCRATCH_ENV), std::env::var_os(OUT_ENV)) else {
        return;
    };
    let scratch = PathBuf::from(scratch);
    let rounds: u32 = std::env::var(ROUNDS_ENV).unwrap().parse().unwrap();
    let cancel_at = std::env::var(CANCEL_AT_ENV).ok();
    let quick = std::env::var(QUICK_ENV).map_or(true, |q| q != "0");
    let cancel = AtomicBool::new(false);
    let steps = Mutex::new(Vec::<String>::new());
    let subvolumes = Mutex::new(Vec::<String>::new());
    let progress = |line: &str| {
        if line.contains("btrfs: round 1/") && line.ends_with(": stop") {
            *subvolumes.lock().unwrap() = subvolume_roots(&scratch.join(BTRFS_LAYERS));
        }
        if cancel_at.as_deref().is_some_and(|at| line.contains(at)) {
            cancel.store(true, Ordering::Relaxed);
        }
        steps.lock().unwrap().push(line.to_string());
    };
    let input = ContainerBench { scratch: &scratch, rounds, quick, cancel: &cancel, progress: &progress };
    let (results, skipped) = measure(&input);
    let report = json!({
        "results": results,
        "skipped": skipped,
        "steps": *steps.lock().unwrap(),
        "subvolumes": *subvolumes.lock().unwrap(),
        "pid": std::process::id(),
    });
    std::fs::write(out, serde_json::to_string_pretty(&report).unwrap()).unwrap();
}

/// Directories below `dir` that are subvolume roots (inode 256).
fn subvolume_roots(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_dir() && m.ino() == 256))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A loop btrfs with an empty scratch directory, this test binary where `podman`'s root
/// sees it, and that Podman's namespace.
struct Setup {
    fs: LoopBtrfs,
    scratch: PathBuf,
    shared: TempDir,
    root: PodmanRoot,
}

impl Setup {
    fn new(podman: Podman) -> Setup {
        let mut fs = LoopBtrfs::new("2G");
        let top = fs.mount("/", "");
        let scratch = top.join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        let shared = TempDir::new("bench-containers");
        std::fs::copy(std::env::current_exe().unwrap(), shared.path().join("helper")).unwrap();
        let root = PodmanRoot::new(podman, &[fs.dir.path(), shared.path()]);
        Setup { fs, scratch, shared, root }
    }

    /// Runs `measure` in the namespace; its JSON.
    fn run_measure(&self, rounds: u32, cancel_at: Option<&str>) -> Value {
        let out = self.shared.path().join("out.json");
        let helper = self.shared.path().join("helper");
        let mut cmd = self.root.command(helper.to_str().unwrap());
        cmd.args(["measure_in_namespace", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(SCRATCH_ENV, &self.scratch)
            .env(OUT_ENV, &out)
            .env(ROUNDS_ENV, rounds.to_string());
        if let Some(at) = cancel_at {
            cmd.env(CANCEL_AT_ENV, at);
        }
        ok(&mut cmd);
        serde_json::from_str(&std::fs::read_to_string(&out).expect("the helper wrote its result")).unwrap()
    }

    /// Everything in the namespace's own /run, /var/lib/containers and /etc/containers.
    fn podman_state(&self) -> String {
        let mut cmd = self.root.command("find");
        cmd.args(["/run", "/var/lib/containers", "/etc/containers"]);
        ok(&mut cmd)
    }

    /// Nothing of the bench is left: no file in scratch, no subvolume on the filesystem,
    /// no mount below scratch in the namespace or here, no process.
    fn assert_nothing_left(&self, report: &Value) {
        // The cgroups the containers ran in, named after the process that measured.
        let cgroups = format!("podfs-bench-{}-", report["pid"]);
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let hierarchies: Vec<&str> = info
            .lines()
            .filter(|l| l.split(" - ").nth(1).is_some_and(|r| r.starts_with("cgroup")))
            .filter_map(|l| l.split(' ').nth(4))
            .collect();
        assert!(!hierarchies.is_empty(), "no cgroup hierarchy in\n{info}");
        for h in hierarchies {
            let left: Vec<_> = std::fs::read_dir(h)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&cgroups))
                .map(|e| e.path())
                .collect();
            assert!(left.is_empty(), "cgroups left: {left:?}");
        }
        let left: Vec<_> = std::fs::read_dir(&self.scratch).unwrap().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "left in scratch: {left:?}");
        let top = self.scratch.parent().unwrap();
        let subvolumes = ok(Command::new("btrfs").args(["subvolume", "list"]).arg(top));
        assert!(subvolumes.trim().is_empty(), "subvolumes left: {subvolumes}");
        assert_eq!(self.fs.live_mounts(), vec![top.display().to_string()], "mounts of the test's btrfs");
        let inside = ok(self.root.command("cat").arg("/proc/self/mountinfo"));
        let scratch = self.scratch.display().to_string();
        assert!(!inside.contains(&scratch), "mounts below scratch in the namespace:\n{inside}");
        // Every Podman and conmon of the bench names the store; a container's program
        // left without its conmon (other tests' run below theirs) is a leak as well.
        let cmdline = |pid: &str| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        };
        let parent = |pid: &str| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).unwrap_or("0").to_string()
        };
        let processes: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter_map(|pid| Some((cmdline(&pid).ok()?, pid)))
            .filter(|(c, pid)| {
                c.contains(&scratch)
                    || (c.trim() == "/podfs-bench-pause"
                        && !cmdline(&parent(pid)).is_ok_and(|p| p.contains("conmon")))
            })
            .map(|(c, pid)| format!("{pid}: {c}"))
            .collect();
        assert!(processes.is_empty(), "processes left: {processes:?}");
    }
}

fn measures_both_drivers(podman: Podman) {
    let name = format!("measures_both_drivers::{podman:?}");
    if !can_run(&name, NEEDS, true) || !podman.available(&name) {
        return;
    }
    let setup = Setup::new(podman);
    let marker = setup.shared.path().join("marker");
    std::fs::write(&marker, "").unwrap();
    let state_before = setup.podman_state();
    let report = setup.run_measure(2, None);

    assert_eq!(report["skipped"], json!([]), "{report:#}");
    let results = report["results"].as_array().unwrap();
    for r in results {
        let medians: Vec<String> = r["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                format!("{} {:.0}", o["operation"].as_str().unwrap(), o["ms"]["median"].as_f64().unwrap())
            })
            .collect();
        eprintln!("{podman:?} {}: ms {}", r["driver"], medians.join(", "));
    }
    let drivers: Vec<&str> = results.iter().map(|r| r["driver"].as_str().unwrap()).collect();
    assert_eq!(drivers, DRIVERS, "{report:#}");
    for r in results {
        let version = r["podman_version"].as_str().unwrap();
        assert!(podman.runs(version) && version.contains('.'), "{podman:?} reported {version}");
        assert_eq!(r["image_files"], json!(QUICK_IMAGE_FILES + 1));
        assert!(r["image_bytes"].as_u64().unwrap() > QUICK_IMAGE_FILES * 1024, "{r}");
        let ops: Vec<&str> =
            r["operations"].as_array().unwrap().iter().map(|o| o["operation"].as_str().unwrap()).collect();
        assert_eq!(ops, OPERATIONS, "{r}");
        for o in r["operations"].as_array().unwrap() {
            let samples = o["ms"]["samples"].as_array().unwrap();
            assert_eq!(samples.len(), 2, "one sample per round: {o}");
            assert!(samples.iter().all(|s| s.as_f64().unwrap() > 0.0), "{o}");
            assert!(o["ms"]["median"].as_f64().unwrap() > 0.0, "{o}");
        }
    }
    let steps: Vec<&str> = report["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    // Rounds interleave the drivers.
    let at = |line: &str| {
        steps.iter().position(|s| *s == line).unwrap_or_else(|| panic!("no {line:?} in {steps:?}"))
    };
    assert!(at("containers overlay: round 1/2: import") < at("containers btrfs: round 1/2: import"));
    assert!(at("containers btrfs: round 1/2: rmi") < at("containers overlay: round 2/2: import"));
    // The btrfs driver was really used: its image and container layers were subvolumes.
    let subvolumes = report["subvolumes"].as_array().unwrap();
    assert!(subvolumes.len() >= 2, "btrfs-driver subvolumes while a container existed: {subvolumes:?}");

    setup.assert_nothing_left(&report);
    assert_eq!(setup.podman_state(), state_before, "Podman wrote outside its store");
    assert_eq!(machine_changes_since(&marker), "", "the machine's Podman state changed");
}

on_each_podman!(measures_both_drivers);

/// Cancelled while Podman imports (the command is killed), and while the btrfs driver's
/// container runs (both stores then hold an image, one a running container): everything
/// is removed all the same.
fn cleans_up_when_cancelled(podman: Podman) {
    let name = format!("cleans_up_when_cancelled::{podman:?}");
    if !can_run(&name, NEEDS, true) || !podman.available(&name) {
        return;
    }
    let setup = Setup::new(podman);
    for at in ["containers btrfs: round 1/1: import", "containers btrfs: round 1/1: chmod"] {
        let report = setup.run_measure(1, Some(at));
        assert_eq!(report["results"], json!([]), "{report:#}");
        assert_eq!(report["skipped"], json!([{"what": "containers", "why": "cancelled"}]), "{report:#}");
        let steps = report["steps"].as_array().unwrap();
        assert_eq!(steps.last().unwrap(), at, "{steps:?}");
        setup.assert_nothing_left(&report);
    }
}

on_each_podman!(cleans_up_when_cancelled);
