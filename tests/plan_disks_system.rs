//! `plan` never lays out a disk in use: real mounts, partitions, swap and loop stacks on
//! loop devices, the machine's own root disk (read-only), and a real Podman
//! service whose graphroot is mounted. Also: a plan larger than its disk is refused. Every
//! refusal writes nothing into --out.

mod common;

use common::podman::PodmanService;
use common::*;
use podfs::size::{GIB, Human};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Commands that undo what a test set up, run last to first on drop (also on failure).
#[derive(Default)]
struct Undo(Vec<Vec<String>>);

impl Undo {
    fn push(&mut self, cmd: &[&str]) {
        self.0.push(cmd.iter().map(|s| s.to_string()).collect());
    }

    /// Attaches `image` to a free loop device (`-P`: with its partitions) and detaches it on drop.
    fn attach(&mut self, image: &Path, partitions: bool) -> String {
        let mut cmd = Command::new("losetup");
        if partitions {
            cmd.arg("-P");
        }
        let device = ok(cmd.args(["--find", "--show"]).arg(image)).trim().to_string();
        self.push(&["losetup", "-d", &device]);
        device
    }

    fn mount(&mut self, device: &str, at: &Path) {
        std::fs::create_dir_all(at).unwrap();
        ok(Command::new("mount").arg(device).arg(at));
        self.push(&["umount", at.to_str().unwrap()]);
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for cmd in self.0.iter().rev() {
            let _ = Command::new(&cmd[0]).args(&cmd[1..]).status();
        }
    }
}

/// A sparse image file of `size` in `dir`.
fn image(dir: &TempDir, name: &str, size: &str) -> PathBuf {
    let img = dir.path().join(name);
    ok(Command::new("truncate").arg("-s").arg(size).arg(&img));
    img
}

/// `plan --example homelab --disk DEVICE --out OUT`.
fn plan_example_on(device: &str, out: &Path) -> Output {
    run(bin().args(["plan", "--example", "homelab", "--disk", device, "--out"]).arg(out))
}

/// Asserts a refusal: exit 2, each of `expected` in the message, and nothing in `out_dir`.
fn assert_refused(out: &Output, out_dir: &Path, expected: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for e in expected {
        assert!(err.contains(e), "`{e}` missing from:\n{err}");
    }
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    let written: Vec<_> =
        std::fs::read_dir(out_dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(written.is_empty(), "a refused plan wrote {written:?}");
}

#[test]
fn the_machines_own_root_disk_is_refused() {
    // The device under `/`, found the way the kernel lists it: the last mount of `/`.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = info
        .lines()
        .rev()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (left.split(' ').nth(4) == Some("/")).then(|| right.split(' ').nth(1).map(String::from))?
        })
        .expect("/ is mounted");
    let is_block = std::fs::metadata(&root).is_ok_and(|m| m.file_type().is_block_device());
    if !is_block {
        // In a container `/` is an overlay or similar: no disk to protect. CI runs on a
        // machine with a real root disk, so there this is a failure, not a skip.
        let reason = format!("root disk: skipped, `/` is on {root}, not a block device");
        assert!(std::env::var(REQUIRE_ENV).map_or(true, |v| v != "1"), "{reason}");
        eprintln!("{reason}");
        return;
    }
    let dir = TempDir::new("rootdisk");
    let out_dir = dir.path().join("plan");
    let out = plan_example_on(&root, &out_dir);
    assert_refused(&out, &out_dir, &[&format!("{root} is in use"), "is mounted at / (", "--disk"]);
    let out = run(bin().args(["plan", "--example", "ci-runner", "--format", "json", "--disk", &root]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_mounted_btrfs_is_refused_by_any_name_and_from_a_spec() {
    if !can_run("mounted btrfs disk", &["losetup", "mkfs.btrfs"], true) {
        return;
    }
    let mut fs = LoopBtrfs::new("256M");
    let at = fs.mount("/", "");
    let dir = TempDir::new("btrfsdisk");
    let out_dir = dir.path().join("plan");

    let out = plan_example_on(&fs.device, &out_dir);
    let mounted = format!("{} is mounted at {} (btrfs)", fs.device, at.display());
    assert_refused(&out, &out_dir, &[&mounted]);

    // A symlink, as /dev/disk/by-id/… is, names the same device.
    let link = dir.path().join("by-id-disk");
    std::os::unix::fs::symlink(&fs.device, &link).unwrap();
    let out = plan_example_on(link.to_str().unwrap(), &out_dir);
    assert_refused(&out, &out_dir, &[&format!("{} ({}) is in use", link.display(), fs.device), &mounted]);

    // The disk named in a spec gets the same check; a device not on this machine passes.
    let spec = |disk: &str| {
        let path = dir.path().join("host.toml");
        std::fs::write(
            &path,
            format!(
                "[host]\ndisk = \"{disk}\"\nmode = \"data-disk\"\ndisk_size = \"100G\"\n\n[[workload]]\n\
                 name = \"web\"\nimage = \"nginx\"\nimage_size = \"50M\"\n"
            ),
        )
        .unwrap();
        run(bin().arg("plan").arg("--spec").arg(&path).arg("--out").arg(&out_dir))
    };
    let out = spec(&fs.device);
    assert_refused(&out, &out_dir, &["host.toml (host.disk)", &mounted, "/dev/disk/by-id/"]);
    let out = spec("/dev/disk/by-id/podfs-test-not-on-this-machine");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out_dir.join("disko.nix").is_file());
}

#[test]
fn the_second_device_of_a_mounted_two_device_btrfs_is_refused() {
    if !can_run("two-device btrfs", &["losetup", "mkfs.btrfs"], true) {
        return;
    }
    let dir = TempDir::new("btrfs2");
    let mut undo = Undo::default();
    let first = undo.attach(&image(&dir, "a.img", "300M"), false);
    let second = undo.attach(&image(&dir, "b.img", "300M"), false);
    ok(Command::new("mkfs.btrfs").args(["-q", "-d", "single", "-m", "single", &first, &second]));
    let at = dir.path().join("mnt");
    undo.mount(&first, &at);
    // mountinfo names only the first device, under an anonymous 0:NN device number.
    let out_dir = dir.path().join("plan");
    let out = plan_example_on(&second, &out_dir);
    assert_refused(&out, &out_dir, &[&format!("{second} is mounted at {} (btrfs)", at.display())]);
}

#[test]
fn a_partitioned_disk_with_one_partition_mounted_is_refused() {
    if !can_run("partitioned disk", &["sfdisk", "partx", "losetup", "mkfs.ext4"], true) {
        return;
    }
    let dir = TempDir::new("partdisk");
    let img = image(&dir, "disk.img", "64M");
    let mut layout = Command::new("sfdisk");
    layout.arg("--quiet").arg(&img).stdin(std::process::Stdio::piped());
    let mut child = layout.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"label: gpt\n,16M\n,\n").unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "sfdisk failed");

    let mut undo = Undo::default();
    let device = undo.attach(&img, true);
    let (first, second) = (format!("{device}p1"), format!("{device}p2"));
    wait_for_partitions(&device, &second);
    ok(Command::new("mkfs.ext4").args(["-q", &second]));
    let at = dir.path().join("mnt");
    undo.mount(&second, &at);

    let out_dir = dir.path().join("plan");
    let out = plan_example_on(&device, &out_dir);
    let expected = format!("{device} is in use: {second} is mounted at {} (ext4)", at.display());
    assert_refused(&out, &out_dir, &[&expected]);
    let out = plan_example_on(&second, &out_dir);
    assert_refused(&out, &out_dir, &[&format!("{second} is mounted at")]);

    // The unused partition itself is a disk nothing uses.
    let out = plan_example_on(&first, &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let disko = std::fs::read_to_string(out_dir.join("disko.nix")).unwrap();
    assert!(disko.contains(&format!("device = \"{first}\"")), "{disko}");
}

/// Waits for the kernel's device node of a loop device's last partition. A kernel built
/// without partition table parsers finds none itself; `partx -a` then reads the table and
/// adds the partitions to the kernel.
fn wait_for_partitions(device: &str, last: &str) {
    let name = device.trim_start_matches("/dev/");
    let sys = format!("/sys/class/block/{name}/{}", last.trim_start_matches("/dev/"));
    if !Path::new(&sys).exists() {
        ok(Command::new("partx").args(["-a", device]));
    }
    let start = std::time::Instant::now();
    while !Path::new(last).exists() && start.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(Path::new(last).exists(), "no {last} after losetup -P and partx -a");
}

#[test]
fn active_swap_and_a_loop_device_on_top_are_refused_an_unused_disk_is_planned() {
    if !can_run("swap and stacked loop", &["losetup", "mkswap", "swapon", "swapoff"], true) {
        return;
    }
    let dir = TempDir::new("swapdisk");
    let mut undo = Undo::default();
    let swap = undo.attach(&image(&dir, "swap.img", "64M"), false);
    ok(Command::new("mkswap").arg(&swap));
    ok(Command::new("swapon").arg(&swap));
    undo.push(&["swapoff", &swap]);
    let out_dir = dir.path().join("plan");
    assert_refused(&plan_example_on(&swap, &out_dir), &out_dir, &[&format!("{swap} is active swap")]);

    // A loop device whose backing file is the disk, with a filesystem mounted on it.
    let lower = undo.attach(&image(&dir, "lower.img", "64M"), false);
    let upper = undo.attach(Path::new(&lower), false);
    ok(Command::new("mkfs.ext4").args(["-q", &upper]));
    let at = dir.path().join("mnt");
    undo.mount(&upper, &at);
    let out = plan_example_on(&lower, &out_dir);
    let mounted = format!("{upper} is mounted at {} (ext4)", at.display());
    assert_refused(&out, &out_dir, &[&format!("{lower} backs the loop device {upper}"), &mounted]);

    // A loop device nothing uses is planned.
    let free = undo.attach(&image(&dir, "free.img", "64M"), false);
    let out = plan_example_on(&free, &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let disko = std::fs::read_to_string(out_dir.join("disko.nix")).unwrap();
    assert!(disko.contains(&format!("device = \"{free}\"")), "{disko}");
}

#[test]
fn a_disk_mounted_only_in_another_mount_namespace_is_refused() {
    if !can_run("namespace-only mount", &["unshare", "losetup", "mkfs.ext4"], true) {
        return;
    }
    let dir = TempDir::new("nsdisk");
    let mut undo = Undo::default();
    let device = undo.attach(&image(&dir, "ns.img", "64M"), false);
    ok(Command::new("mkfs.ext4").args(["-q", &device]));
    let at = dir.path().join("inside");
    std::fs::create_dir_all(&at).unwrap();
    let ready = dir.path().join("ready");
    let script = format!("mount {device} {} && touch {} && exec sleep 600", at.display(), ready.display());
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .spawn()
        .expect("start unshare");
    // Holds a mount namespace of its own; its mounts go with it.
    let holder = KillOnDrop(child);
    let start = std::time::Instant::now();
    while !ready.exists() && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(ready.exists(), "the namespace did not mount {device}");
    let outside = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!outside.contains(&format!(" {device} ")), "the mount leaked into this namespace");

    let out_dir = dir.path().join("plan");
    let out = plan_example_on(&device, &out_dir);
    let pid = holder.0.id();
    assert_refused(
        &out,
        &out_dir,
        &[&format!("{device} is mounted at {} (in the mount namespace of pid {pid}) (ext4)", at.display())],
    );
    drop(holder);
    let out = plan_example_on(&device, &out_dir);
    assert!(out.status.success(), "once the namespace is gone the disk is free: {}", stderr(&out));
}

#[test]
fn plan_from_a_live_host_refuses_graphroots_disk_and_plans_an_unused_one() {
    if !can_run("plan from host disks", &["podman", "runc", "mkfs.btrfs", "losetup", "busybox"], true) {
        return;
    }
    let service = PodmanService::start("overlay");
    service.import_busybox(&["localhost/acme-app:1"]);
    service.ok(&["volume", "create", "data"]);
    service.ok(&["create", "--name", "app", "-v", "data:/data", "localhost/acme-app:1", "true"]);
    let dir = TempDir::new("hostdisk");
    let out_dir = dir.path().join("plan");

    // Plain `plan` and `plan --from-host`: graphroot's disk is mounted, so no disk is chosen.
    for from_host in [&[][..], &["--from-host"][..]] {
        let out = run(bin().arg("plan").args(from_host).args(["--url", &service.url, "--out"]).arg(&out_dir));
        let graphroot = format!("graphroot {} lies on {}", service.graphroot.display(), service.fs.device);
        let mounted = format!("{} is mounted at {}", service.fs.device, service.top.display());
        assert_refused(&out, &out_dir, &["no disk chosen", &graphroot, &mounted, "--disk", "migrate"]);
    }

    let mut undo = Undo::default();
    let free = undo.attach(&image(&dir, "free.img", "1G"), false);
    let out = run(bin()
        .args(["plan", "--url", &service.url, "--disk", &free, "--format", "json", "--out"])
        .arg(&out_dir));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["plan"]["profile"]["host"]["disk"], free.as_str());
    assert_eq!(v["plan"]["profile"]["host"]["disk_size"], GIB, "the size of the named disk, not graphroot's");
    let disko = std::fs::read_to_string(out_dir.join("disko.nix")).unwrap();
    assert!(disko.contains(&format!("device = \"{free}\"")), "{disko}");
}

#[test]
fn a_plan_larger_than_its_disk_is_refused_with_both_sizes() {
    let dir = TempDir::new("overfull");
    let spec = dir.path().join("big.toml");
    std::fs::write(
        &spec,
        "[host]\ndisk = \"/dev/disk/by-id/podfs-test-absent\"\nmode = \"data-disk\"\ndisk_size = \"10G\"\n\n\
         [[workload]]\nname = \"db\"\nimage = \"postgres\"\nclass = \"database\"\ncount = 3\n\
         image_size = \"1G\"\nvolume_size = \"20G\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("plan");
    let need = Human(GIB + 3 * 20 * GIB).to_string();
    let have = Human(10 * GIB).to_string();
    for format in ["human", "json"] {
        let out =
            run(bin().arg("plan").arg("--spec").arg(&spec).args(["--format", format, "--out"]).arg(&out_dir));
        assert_refused(
            &out,
            &out_dir,
            &["does not fit", &format!("need about {need}"), &format!("holds {have}")],
        );
    }

    // Near full (over 80%) is still only a warning.
    std::fs::write(&spec, std::fs::read_to_string(&spec).unwrap().replace("10G", "70G")).unwrap();
    let out = run(bin().arg("plan").arg("--spec").arg(&spec).arg("--out").arg(&out_dir));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("warning: the workloads need about"));
}
