//! `storage-conf show|diff|apply` on real files, a real btrfs and a real Podman.

mod common;

use common::podman::{Podman, PodmanRoot, PodmanService, env_of, write_config};
use common::*;
use std::path::Path;
use std::process::Command;

/// Shaped like a distribution default: long comments, commented-out keys, keys the tool
/// does not own.
fn distro_conf(graphroot: &Path, runroot: &Path) -> String {
    format!(
        r#"# This file is the configuration file for all tools
# that use the containers/storage library. The storage.conf file
# overrides all other storage.conf files. Container engines using the
# container/storage library do not inherit fields from other storage.conf
# files.
#
# See man 5 containers-storage.conf for more information
# The "container storage" table contains all of the server options.
[storage]

# Default Storage Driver, Must be set for proper operation.
driver = "overlay"

# Temporary storage location
runroot = "{runroot}"

# Primary Read/Write location of container storage
# When changing the graphroot location on an SELINUX system, you must
# ensure the labeling matches the default locations labels with the
# following commands:
# semanage fcontext -a -e /var/lib/containers/storage /NEWSTORAGEPATH
# restorecon -R -v /NEWSTORAGEPATH
graphroot = "{graphroot}"

# Storage path for rootless users
#
# rootless_storage_path = "$HOME/.local/share/containers/storage"

[storage.options]
# Storage options to be passed to underlying storage drivers

# AdditionalImageStores is used to pass paths to additional Read/Only image stores
# Must be comma separated list.
additionalimagestores = [
]

pull_options = {{enable_partial_images = "false", use_hard_links = "false", ostree_repos=""}}

[storage.options.overlay]
# mountopt specifies comma separated list of extra mount options
mountopt = "nodev"
"#,
        runroot = runroot.display(),
        graphroot = graphroot.display()
    )
}

/// Lines of `text` that are not the given keys' assignments.
fn other_lines<'a>(text: &'a str, keys: &[&str]) -> Vec<&'a str> {
    text.lines().filter(|l| !keys.iter().any(|k| l.starts_with(&format!("{k} =")))).collect()
}

on_each_podman!(apply_changes_only_planned_keys_and_podman_reads_the_result);
fn apply_changes_only_planned_keys_and_podman_reads_the_result(podman: Podman) {
    if !can_run("storage-conf apply", &["podman", "mkfs.btrfs", "losetup"], true)
        || !podman.available("storage-conf apply")
    {
        return;
    }
    let mut fs = LoopBtrfs::new("1G");
    let top = fs.mount("/", "");
    let dir = TempDir::new("sconf");
    let conf = dir.path().join("storage.conf");
    let old = distro_conf(&dir.path().join("old-store"), &dir.path().join("run-old"));
    std::fs::write(&conf, &old).unwrap();
    let new_root = top.join("store");
    let plan = plan_dir(dir.path(), "btrfs", &new_root, dir.path().join("run"));

    // show names the file and why.
    let out =
        run(bin().args(["storage-conf", "show", "--format", "json"]).env("CONTAINERS_STORAGE_CONF", &conf));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["path"], conf.to_str().unwrap());
    assert!(v["why"].as_str().unwrap().contains("CONTAINERS_STORAGE_CONF"));
    assert_eq!(v["storage"]["driver"], "overlay");

    // diff shows the change; --dry-run writes nothing.
    let out = run(bin().args(["storage-conf", "diff", "--plan"]).arg(&plan).arg("--file").arg(&conf));
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(diff.contains("-driver = \"overlay\"") && diff.contains("+driver = \"btrfs\""), "{diff}");
    let out =
        run(bin().args(["storage-conf", "apply", "--dry-run", "--plan"]).arg(&plan).arg("--file").arg(&conf));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), old);

    let out = run(bin().args(["storage-conf", "apply", "--plan"]).arg(&plan).arg("--file").arg(&conf));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new = std::fs::read_to_string(&conf).unwrap();
    // Every other line is unchanged, byte for byte and in order.
    let owned = ["driver", "graphroot", "runroot"];
    assert_eq!(other_lines(&new, &owned), other_lines(&old, &owned));
    assert!(new.contains(&format!("graphroot = \"{}\"", new_root.display())));
    // The previous file is kept.
    let backups: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with("storage.conf.")
                && e.file_name().to_string_lossy().ends_with(".bak")
        })
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read_to_string(backups[0].path()).unwrap(), old);

    // A real Podman reads it: new driver and graphroot, in its namespace with the test's
    // configuration beside the file, so it writes none of the machine's Podman state.
    let marker = dir.path().join("marker");
    std::fs::write(&marker, "").unwrap();
    write_config(dir.path(), "");
    let root = PodmanRoot::new(podman, &[dir.path(), fs.dir.path()]);
    let out = run(root
        .command("podman")
        .args(["info", "--format", "{{.Version.Version}} {{.Store.GraphDriverName}} {{.Store.GraphRoot}}"])
        .envs(env_of(dir.path()))
        .env("HOME", dir.path()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(machine_changes_since(&marker), "", "the machine's Podman state changed");
    let info = String::from_utf8_lossy(&out.stdout);
    let (version, store) = info.trim().split_once(' ').unwrap();
    assert!(podman.runs(version), "{podman:?} runs {version}");
    assert_eq!(store, format!("btrfs {}", new_root.display()));

    // Again: nothing to do.
    let out = run(bin().args(["storage-conf", "apply", "--plan"]).arg(&plan).arg("--file").arg(&conf));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to do"));
}

#[test]
fn a_failed_rename_leaves_the_original_and_no_temporary_file() {
    if !can_run("storage-conf rename failure", &["mkfs.btrfs", "losetup", "chattr"], true) {
        return;
    }
    let mut fs = LoopBtrfs::new("512M");
    let top = fs.mount("/", "");
    let conf = top.join("storage.conf");
    let old = distro_conf(&top.join("empty-store"), &top.join("run"));
    std::fs::write(&conf, &old).unwrap();
    let plan = plan_dir(&top, "overlay", top.join("empty-store"), top.join("run2"));
    // An immutable target: the temporary file is written, the rename over it fails.
    ok(Command::new("chattr").arg("+i").arg(&conf));
    let out = run(bin().args(["storage-conf", "apply", "--plan"]).arg(&plan).arg("--file").arg(&conf));
    ok(Command::new("chattr").arg("-i").arg(&conf));
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("storage.conf"));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), old);
    let stray: Vec<_> = std::fs::read_dir(&top)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

on_each_podman!(a_populated_store_is_never_switched);
fn a_populated_store_is_never_switched(podman: Podman) {
    let test = "storage-conf populated store";
    if !can_run(test, &["podman", "runc", "mkfs.btrfs", "losetup", "busybox"], true)
        || !podman.available(test)
    {
        return;
    }
    let service = PodmanService::start_on(podman, "overlay");
    service.import_busybox(&["localhost/keep:1"]);
    let conf = service.dir().join("storage.conf");
    let before = std::fs::read_to_string(&conf).unwrap();
    let plan = plan_dir(service.dir(), "btrfs", &service.graphroot, service.dir().join("run"));
    for via_socket in [false, true] {
        let mut cmd = bin();
        cmd.args(["storage-conf", "apply", "--plan"]).arg(&plan).arg("--file").arg(&conf);
        if via_socket {
            cmd.args(["--url", &service.url]);
        }
        let out = run(&mut cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains("1 images") && err.contains("podman save"), "{err}");
        assert!(err.contains("Never run a bare `podman system reset`"), "{err}");
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);
    }
}

#[test]
fn nixos_managed_files_are_refused_with_the_snippet() {
    let dir = TempDir::new("nixos");
    let plan = plan_dir(dir.path(), "overlay", dir.path().join("store"), dir.path().join("run"));
    let conf = dir.path().join("storage.conf");
    // graphroot is written: the default would be the machine's /var/lib/containers/storage.
    let text =
        format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\n", dir.path().join("store").display());
    let text = text.as_str();
    std::fs::write(&conf, text).unwrap();
    std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
    let out = run(bin().args(["storage-conf", "apply", "--plan"]).arg(&plan).arg("--file").arg(&conf));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("read-only") && err.contains("virtualisation.containers.storage.settings"), "{err}");
    assert!(err.contains("storage.driver = \"overlay\""), "{err}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text);

    // A link into the Nix store, as NixOS's /etc/containers/storage.conf is.
    if Path::new("/nix/store").is_dir() && can_run("nix store link", &[], true) {
        let target = Path::new("/nix/store").join(format!("podfs-test-{}-storage.conf", std::process::id()));
        std::fs::write(&target, text).unwrap();
        let link = dir.path().join("linked.conf");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let out = run(bin().args(["storage-conf", "apply", "--plan"]).arg(&plan).arg("--file").arg(&link));
        let _ = std::fs::remove_file(&target);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains("Nix store"), "{err}");
    }
}

#[test]
fn malformed_storage_conf_exits_2_and_is_not_touched() {
    let dir = TempDir::new("malformed");
    let plan = plan_dir(dir.path(), "overlay", dir.path().join("store"), dir.path().join("run"));
    let conf = dir.path().join("storage.conf");
    let text = "[storage]\ndriver = \"overlay\"\ngraphroot = \"/x\n";
    std::fs::write(&conf, text).unwrap();
    let mtime = std::fs::metadata(&conf).unwrap().modified().unwrap();
    let out = run(bin().args(["storage-conf", "apply", "--plan"]).arg(&plan).arg("--file").arg(&conf));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:3:", conf.display())), "{err}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text);
    assert_eq!(std::fs::metadata(&conf).unwrap().modified().unwrap(), mtime);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no backup or temporary file");
}
