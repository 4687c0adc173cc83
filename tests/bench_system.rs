//! `bench` on a real btrfs and a real ext4, each on a loop device: every figure present
//! and sane, copy-on-write files far more fragmented than NOCOW ones, the bytes on disk
//! agreeing with compsize, nothing left behind (no file, no subvolume), also after
//! Ctrl-C, and the refusals.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NEEDS: &[&str] = &["mkfs.btrfs", "mkfs.ext4", "losetup", "btrfs", "compsize", "chattr"];
/// The quick run measures the container part too, with the machine's Podman in a mount
/// namespace of the bench's own.
const NEEDS_PODMAN: &[&str] =
    &["mkfs.btrfs", "mkfs.ext4", "losetup", "btrfs", "compsize", "chattr", "podman", "unshare", "nsenter"];

/// The binary with an environment of its own: no file of the machine's is read.
fn bench(home: &Path) -> Command {
    let mut cmd = bin();
    cmd.arg("bench")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("CONTAINERS_STORAGE_CONF", home.join("storage.conf"))
        .env_remove("CONTAINERS_STORAGE_CONF_OVERRIDE")
        .stdin(Stdio::null());
    cmd
}

/// The names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn median(v: &Value, figure: &str) -> f64 {
    v[figure]["median"].as_f64().unwrap_or_else(|| panic!("no {figure} median in {v}"))
}

#[test]
fn a_quick_run_measures_every_layout_and_leaves_nothing_behind() {
    if !can_run("a_quick_run_measures_every_layout_and_leaves_nothing_behind", NEEDS_PODMAN, true) {
        return;
    }
    let mut fs = LoopBtrfs::new("2G");
    let mnt = fs.mount("/", "");
    let mut ext4 = LoopBtrfs::with_fs("512M", "ext4");
    let ext4_mnt = ext4.mount("/", "");
    let home = TempDir::new("bench-home");
    let out = TempDir::new("bench-out");
    // DIR is NOCOW, as a database volume's directory is: the copy-on-write layouts must
    // still be copy-on-write.
    let dir = mnt.join("data");
    std::fs::create_dir(&dir).unwrap();
    ok(Command::new("chattr").arg("+C").arg(&dir));
    // What is not the tool's, and what a killed run left (a layer subvolume nested in it).
    std::fs::write(dir.join("keep-me"), "user data").unwrap();
    ok(Command::new("btrfs").args(["subvolume", "create"]).arg(dir.join(".podfs-bench-20200101T000000Z")));
    ok(Command::new("btrfs")
        .args(["subvolume", "create"])
        .arg(dir.join(".podfs-bench-20200101T000000Z/layer")));
    let before = (names(&dir), names(&ext4_mnt));
    let marker = out.path().join("marker");
    std::fs::write(&marker, "").unwrap();
    std::thread::sleep(Duration::from_millis(20));

    let (report, svg) = (out.path().join("bench.json"), out.path().join("bench.svg"));
    let began = Instant::now();
    let measured = run(bench(home.path())
        .args(["--quick", "--format", "json", "--dir"])
        .arg(&dir)
        .arg("--compare-dir")
        .arg(&ext4_mnt)
        .arg("--out")
        .arg(&report)
        .arg("--svg")
        .arg(&svg));
    let took = began.elapsed();
    let stderr = String::from_utf8_lossy(&measured.stderr);
    assert!(measured.status.success(), "bench failed:\n{stderr}");
    // A figure for the record, not a limit: speed is measured, never asserted.
    eprintln!("bench --quick took {took:?}");
    assert!(stderr.contains(".podfs-bench-20200101T000000Z") && stderr.contains("--clean"), "{stderr}");
    assert!(stderr.contains("round 3/3"), "progress lines: {stderr}");

    let printed: Value = serde_json::from_slice(&measured.stdout).unwrap();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(printed, written, "--out holds what --format json prints");
    podfs::bench::report::BenchReport::parse(&std::fs::read_to_string(&report).unwrap(), "bench.json")
        .unwrap();
    assert_eq!(written["host"]["filesystem"], "btrfs");
    assert_eq!(written["host"]["device"], fs.device.as_str());
    assert_eq!(
        (written["host"]["quick"].as_bool(), written["host"]["rounds"].as_u64()),
        (Some(true), Some(3))
    );

    let database = written["database"].as_array().unwrap();
    let layout =
        |name: &str| database.iter().find(|d| d["layout"] == name).unwrap_or_else(|| panic!("no {name}"));
    for (name, fs_type) in [("cow", "btrfs"), ("cow-zstd", "btrfs"), ("nocow", "btrfs"), ("compare", "ext4")]
    {
        let d = layout(name);
        assert_eq!(d["filesystem"], fs_type, "{d}");
        assert_eq!(d["iops"]["samples"].as_array().unwrap().len(), 3, "{d}");
        let writes = d["writes"].as_f64().unwrap();
        assert!(writes >= 50.0, "{name}: {writes} writes a round");
        assert!(median(d, "iops") > 10.0 && median(d, "iops") < 1e6, "{d}");
        assert!(median(d, "p50_us") > 1.0 && median(d, "p99_us") >= median(d, "p50_us"), "{d}");
        assert!(median(d, "extents") >= 1.0, "{d}");
    }
    let (cow, zstd, nocow) = (
        median(layout("cow"), "extents"),
        median(layout("cow-zstd"), "extents"),
        median(layout("nocow"), "extents"),
    );
    eprintln!(
        "extents: cow {cow}, cow-zstd {zstd}, nocow {nocow}, ext4 {}",
        median(layout("compare"), "extents")
    );
    assert!(cow >= 20.0 * nocow && zstd >= 20.0 * nocow, "cow {cow}, cow-zstd {zstd}, nocow {nocow}");

    let compression = written["compression"].as_array().unwrap();
    assert_eq!(compression.len(), 4);
    let combination = |property: &str, data: &str| {
        compression.iter().find(|c| c["property"] == property && c["data"] == data).unwrap()
    };
    for c in compression {
        assert!(median(c, "mb_per_s") > 1.0 && median(c, "cpu_s_per_gb") > 0.0, "{c}");
    }
    let bytes = combination("zstd", "compressible")["bytes"].as_f64().unwrap();
    let on_disk = |p: &str, d: &str| median(combination(p, d), "disk_bytes");
    // Uncompressed data takes its size; compressed log lines far less.
    for (p, d) in [("none", "compressible"), ("none", "incompressible"), ("zstd", "incompressible")] {
        assert!((on_disk(p, d) / bytes - 1.0).abs() < 0.1, "{p} {d}: {} of {bytes}", on_disk(p, d));
    }
    assert!(on_disk("zstd", "compressible") < 0.5 * bytes, "{}", on_disk("zstd", "compressible"));
    // The statvfs difference agrees with what compsize reads from the extents of the same data.
    let check = mnt.join("compsize-check");
    std::fs::create_dir(&check).unwrap();
    ok(Command::new("btrfs").args(["property", "set"]).arg(&check).args(["compression", "zstd"]));
    let pool = podfs::bench::compression::pool(podfs::bench::report::DataKind::Compressible, 7);
    let data: Vec<u8> = pool.iter().copied().cycle().take(bytes as usize).collect();
    std::fs::write(check.join("data"), &data).unwrap();
    ok(Command::new("sync").arg("-f").arg(check.join("data")));
    let (compsize_disk, _) = compsize(&check);
    let ratio = on_disk("zstd", "compressible") / compsize_disk as f64;
    eprintln!(
        "zstd compressible on disk: bench {}, compsize {compsize_disk}",
        on_disk("zstd", "compressible")
    );
    assert!(
        (0.9..1.1).contains(&ratio),
        "bench {} vs compsize {compsize_disk}",
        on_disk("zstd", "compressible")
    );
    std::fs::remove_dir_all(&check).unwrap();

    let skipped = written["skipped"].as_array().unwrap();
    assert!(skipped.is_empty(), "everything is measured here: {skipped:?}");
    let containers = written["containers"].as_array().unwrap();
    let drivers: Vec<&str> = containers.iter().map(|c| c["driver"].as_str().unwrap()).collect();
    assert_eq!(drivers, ["overlay", "btrfs"]);
    for c in containers {
        assert!(c["image_files"].as_u64().unwrap() >= 1000, "{c}");
        // runc is installed here, and the bench prefers it (crun refuses hybrid cgroups).
        assert_eq!(c["runtime"], "runc", "{c}");
        let operations: Vec<&str> =
            c["operations"].as_array().unwrap().iter().map(|o| o["operation"].as_str().unwrap()).collect();
        assert_eq!(operations, podfs::bench::containers::OPERATIONS, "{c}");
        for o in c["operations"].as_array().unwrap() {
            assert_eq!(o["ms"]["samples"].as_array().unwrap().len(), 3, "{o}");
            assert!(median(o, "ms") > 0.0, "{o}");
        }
    }
    let changed = machine_changes_since(&marker);
    assert!(changed.is_empty(), "the machine's Podman state changed: {changed}");

    // The plan cites what was measured: PLAN.md's table holds the NOCOW figure.
    let planned = out.path().join("plan");
    let plan = run(bin()
        .args(["plan", "--example", "homelab", "--bench"])
        .arg(&report)
        .arg("--out")
        .arg(&planned)
        .env("HOME", home.path()));
    assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
    let plan_md = std::fs::read_to_string(planned.join("PLAN.md")).unwrap();
    assert!(plan_md.contains("Measured on this disk"), "{plan_md}");
    let nocow_iops = podfs::decide::measured::number(median(layout("nocow"), "iops"));
    assert!(plan_md.contains(&nocow_iops), "PLAN.md lacks the NOCOW IOPS {nocow_iops}:\n{plan_md}");
    assert!(plan_md.contains(fs.device.as_str()), "PLAN.md names where it was measured");

    let svg_text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&svg_text).unwrap();
    let bars = doc.descendants().filter(|n| n.attribute("class") == Some("bar")).count();
    // Database IOPS, p99 and extents (4 layouts each), compression (4), and the
    // container operations of both drivers.
    assert_eq!(bars, 3 * 4 + 4 + 2 * podfs::bench::containers::OPERATIONS.len());

    // Nothing of the run is left: no file, no directory, no subvolume, in either place.
    assert_eq!((names(&dir), names(&ext4_mnt)), before);
    assert_eq!(
        subvolumes(&mnt),
        ["data/.podfs-bench-20200101T000000Z", "data/.podfs-bench-20200101T000000Z/layer"],
        "only the leftover of the killed run"
    );
    // --clean removes the leftover, nested subvolume included, and nothing else.
    let clean = run(bench(home.path()).arg("--clean").arg("--dir").arg(&dir));
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
    assert!(String::from_utf8_lossy(&clean.stdout).contains(".podfs-bench-20200101T000000Z"));
    assert!(subvolumes(&mnt).is_empty(), "{:?}", subvolumes(&mnt));
    assert_eq!(names(&dir), ["keep-me"]);
}

#[test]
fn ctrl_c_mid_run_stops_and_leaves_nothing_behind() {
    stopped_mid_run_leaves_nothing_behind("ctrl_c_mid_run_stops_and_leaves_nothing_behind", "-INT");
}

/// What systemd and `kill` send: the same safe stop as Ctrl-C.
#[test]
fn sigterm_mid_run_stops_and_leaves_nothing_behind() {
    stopped_mid_run_leaves_nothing_behind("sigterm_mid_run_stops_and_leaves_nothing_behind", "-TERM");
}

fn stopped_mid_run_leaves_nothing_behind(name: &str, signal: &str) {
    if !can_run(name, NEEDS, true) {
        return;
    }
    let mut fs = LoopBtrfs::new("1G");
    let mnt = fs.mount("/", "");
    let mut ext4 = LoopBtrfs::with_fs("256M", "ext4");
    let ext4_mnt = ext4.mount("/", "");
    let home = TempDir::new("bench-home");
    let mut child = KillOnDrop(
        bench(home.path())
            .args(["--quick", "--dir"])
            .arg(&mnt)
            .arg("--compare-dir")
            .arg(&ext4_mnt)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Mid-run: the scratch exists and a NOCOW file is being written.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.iter().any(|l: &String| l.contains("database nocow")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no progress within a minute: {seen:?}"),
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(names(&mnt).iter().any(|n| n.starts_with(".podfs-bench-")), "{:?}", names(&mnt));
    assert_eq!(subvolumes(&mnt).len(), 1, "the scratch is a subvolume");
    ok(Command::new("kill").args([signal, &child.0.id().to_string()]));
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline + Duration::from_secs(30), "bench did not stop after {signal}");
        std::thread::sleep(Duration::from_millis(100));
    };
    seen.extend(rx.try_iter());
    let all = seen.join("\n");
    assert_eq!(status.code(), Some(3), "{all}");
    assert!(all.contains("interrupted"), "{all}");
    assert!(names(&mnt).is_empty(), "{:?}", names(&mnt));
    assert!(subvolumes(&mnt).is_empty(), "{:?}", subvolumes(&mnt));
    assert_eq!(names(&ext4_mnt), ["lost+found"]);
}

#[test]
fn refuses_what_it_cannot_measure_and_creates_nothing() {
    if !can_run("refuses_what_it_cannot_measure_and_creates_nothing", NEEDS, true) {
        return;
    }
    let mut small = LoopBtrfs::new("256M");
    let small_mnt = small.mount("/", "");
    let mut ext4 = LoopBtrfs::with_fs("128M", "ext4");
    let ext4_mnt = ext4.mount("/", "");
    let home = TempDir::new("bench-home");
    let refused = |cmd: &mut Command, code: i32, words: &[&str]| {
        let out = run(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        for w in words {
            assert!(stderr.contains(w), "no {w:?} in: {stderr}");
        }
        assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    };
    // Not btrfs: named, and where ext4 belongs instead.
    refused(bench(home.path()).arg("--dir").arg(&ext4_mnt), 3, &["not btrfs", "ext4", "--compare-dir"]);
    // The default directory is graphroot, here on ext4 through CONTAINERS_STORAGE_CONF.
    let graphroot = ext4_mnt.join("storage");
    std::fs::create_dir(&graphroot).unwrap();
    std::fs::write(
        home.path().join("storage.conf"),
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"/run/x\"\n",
            graphroot.display()
        ),
    )
    .unwrap();
    refused(&mut bench(home.path()), 3, &[&graphroot.display().to_string(), "not btrfs"]);
    std::fs::remove_dir(&graphroot).unwrap();
    refused(&mut bench(home.path()), 2, &[&graphroot.display().to_string(), "does not exist", "--dir"]);
    // Too little space: how much is needed and how much is free.
    refused(
        bench(home.path()).args(["--quick", "--dir"]).arg(&small_mnt),
        3,
        &["not enough free space", "needs", "free"],
    );
    // A compare directory on the same filesystem.
    let mut fs = LoopBtrfs::new("1G");
    let mnt = fs.mount("/", "");
    std::fs::create_dir(mnt.join("other")).unwrap();
    refused(
        bench(home.path()).args(["--quick", "--dir"]).arg(&mnt).arg("--compare-dir").arg(mnt.join("other")),
        3,
        &["same filesystem"],
    );
    // --out into a directory that does not exist is refused before anything is measured.
    refused(
        bench(home.path()).args(["--quick", "--dir"]).arg(&mnt).arg("--out").arg("/nonexistent/podfs/b.json"),
        2,
        &["/nonexistent/podfs"],
    );
    assert_eq!(names(&mnt), ["other"]);
    assert!(names(&small_mnt).is_empty());
    assert_eq!(names(&ext4_mnt), ["lost+found"]);
    assert!(subvolumes(&mnt).is_empty() && subvolumes(&small_mnt).is_empty());
}
