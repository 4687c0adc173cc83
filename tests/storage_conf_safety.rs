//! `storage-conf` is safe for rootless users and follows Podman 6's drop-ins: a real
//! rootless user (uid 65534, its home and XDG directories in a temporary directory) with an
//! image in its own store made by real rootless Podman, a real rootful Podman service, and
//! configuration trees written by the tests under `--config-root` (no test reads the
//! machine's /etc/containers or ~/.config/containers).

mod common;

use common::podman::{Podman, PodmanRoot, PodmanService};
use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOBODY: u32 = 65534;

/// Root's storage.conf, shaped like a distribution's.
const ROOT_CONF: &str = "# The distribution's storage.conf\n[storage]\ndriver = \"overlay\"\nrunroot = \"/run/containers/storage\"\ngraphroot = \"/var/lib/containers/storage\"\n\n[storage.options.overlay]\nmountopt = \"nodev\"\n";

/// Every regular file below `dirs` with a hash of its bytes.
fn snapshot(dirs: &[&Path]) -> BTreeMap<PathBuf, u64> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
        } else if meta.is_file() {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(&p).unwrap().hash(&mut h);
            out.insert(p, h.finish());
        }
    }
    out
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// uid 65534 with its home, XDG directories and configuration root in a temporary
/// directory. Drop ends the rootless pause process its Podman left (by the pid Podman
/// recorded) and removes everything.
struct RootlessUser {
    /// Where the user's Podman runs: the host's, or the trixie chroot's (which sees `dir`
    /// at the same path).
    root: PodmanRoot,
    dir: TempDir,
}

impl RootlessUser {
    fn new(podman: Podman) -> Self {
        let dir = TempDir::new("rootless");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let user = RootlessUser { root: PodmanRoot::new(podman, &[dir.path()]), dir };
        for d in [user.home(), user.runtime()] {
            std::fs::create_dir_all(&d).unwrap();
            rustix::fs::chown(
                &d,
                Some(rustix::fs::Uid::from_raw(NOBODY)),
                Some(rustix::fs::Gid::from_raw(NOBODY)),
            )
            .unwrap();
        }
        std::fs::set_permissions(user.runtime(), std::fs::Permissions::from_mode(0o700)).unwrap();
        user
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn runtime(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn config(&self) -> PathBuf {
        self.home().join(".config")
    }

    fn data(&self) -> PathBuf {
        self.home().join(".local/share")
    }

    /// A configuration root holding root's files, as /etc/containers would.
    fn config_root(&self) -> PathBuf {
        self.dir.path().join("sysroot")
    }

    /// A file the user owns.
    fn write_own(&self, path: &Path, text: &str) {
        write(path, text);
        let mut p = path.to_path_buf();
        while p.starts_with(self.home()) {
            rustix::fs::chown(
                &p,
                Some(rustix::fs::Uid::from_raw(NOBODY)),
                Some(rustix::fs::Gid::from_raw(NOBODY)),
            )
            .unwrap();
            if !p.pop() {
                break;
            }
        }
    }

    /// `program` run on the host as the user, with only its own environment.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.as_user(Command::new("setpriv"), program)
    }

    /// `setpriv` (host or chroot) running `program` as the user.
    fn as_user(&self, mut c: Command, program: impl AsRef<std::ffi::OsStr>) -> Command {
        c.args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".into(),
            "--".into(),
        ])
        .arg(program)
        .current_dir(self.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", self.home())
        .env("USER", "nobody")
        .env("XDG_CONFIG_HOME", self.config())
        .env("XDG_DATA_HOME", self.data())
        .env("XDG_RUNTIME_DIR", self.runtime());
        c
    }

    fn tool(&self, args: &[&str]) -> Command {
        let mut c = self.command(env!("CARGO_BIN_EXE_podman-btrfs-advise"));
        // The configuration root through its environment variable, as a wrapper would set it.
        c.args(args).env("PODFS_CONFIG_ROOT", self.config_root());
        c
    }

    /// The user's own Podman (host or chroot), as the user.
    fn podman(&self, args: &[&str]) -> String {
        ok(self.as_user(self.root.command("setpriv"), "podman").args(args)).trim().to_string()
    }

    /// A busybox image in the user's own store, imported by rootless Podman.
    fn import_busybox(&self, name: &str) {
        let tar = busybox_tar(self.dir.path());
        std::fs::set_permissions(&tar, std::fs::Permissions::from_mode(0o644)).unwrap();
        self.podman(&["import", tar.to_str().unwrap(), name]);
    }
}

impl Drop for RootlessUser {
    fn drop(&mut self) {
        let pidfile = self.runtime().join("libpod/tmp/pause.pid");
        if let Some(pid) = std::fs::read_to_string(&pidfile).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// A rootless user with its own storage.conf (driver vfs, as a user sets it) and an image
/// in its store; root's storage.conf in the configuration root.
fn user_with_image(podman: Podman) -> RootlessUser {
    let user = RootlessUser::new(podman);
    write(&user.config_root().join("etc/containers/storage.conf"), ROOT_CONF);
    user.write_own(
        &user.config().join("containers/storage.conf"),
        "# my storage.conf\n[storage]\ndriver = \"vfs\"\n",
    );
    user.import_busybox("localhost/mine:1");
    user
}

fn needs_rootless(test: &str, podman: Podman) -> bool {
    can_run(test, &["podman", "setpriv", "busybox", "tar"], true) && podman.available(test)
}

on_each_podman!(show_names_the_rootless_users_own_graphroot_as_podman_does);
fn show_names_the_rootless_users_own_graphroot_as_podman_does(podman: Podman) {
    if !needs_rootless("rootless show", podman) {
        return;
    }
    let user = user_with_image(podman);
    let info =
        user.podman(&["info", "--format", "{{.Store.GraphRoot}}|{{.Store.RunRoot}}|{{.Store.ConfigFile}}"]);
    let fields: Vec<&str> = info.split('|').collect();
    let out = run(&mut user.tool(&["storage-conf", "show", "--format", "json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Podman and the tool agree, and neither names root's store.
    assert_eq!(v["storage"]["graphroot"], fields[0], "{v}");
    assert_eq!(v["storage"]["graphroot"], user.data().join("containers/storage").to_str().unwrap());
    assert_eq!(v["storage"]["runroot"], fields[1], "{v}");
    assert_eq!(v["path"], fields[2]);
    assert_eq!(v["storage"]["driver"], "vfs");
    assert_eq!(v["rootless"], true);
    // Root's file lends only rootless_storage_path and the driver; the user's own file wins.
    let roles: Vec<&str> =
        v["files"].as_array().unwrap().iter().map(|f| f["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system-defaults", "main"], "{v}");
    assert_eq!(v["effective"]["storage.graphroot"]["default"], true);
    // The version came from `podman --version` on PATH.
    let version = ok(Command::new("podman").arg("--version"));
    let expect: Vec<&str> = version.split_whitespace().last().unwrap().split('.').take(2).collect();
    assert_eq!(v["podman_version"], expect.join("."));
    assert!(v["version_source"].as_str().unwrap().contains("podman --version"));

    let human = run(&mut user.tool(&["storage-conf", "show"]));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("rootless default ($XDG_DATA_HOME)") && !text.contains("/var/lib/containers"),
        "{text}"
    );
}

on_each_podman!(a_rootless_user_applying_a_root_plan_is_refused_and_nothing_changes);
fn a_rootless_user_applying_a_root_plan_is_refused_and_nothing_changes(podman: Podman) {
    if !needs_rootless("rootless apply of a root plan", podman) {
        return;
    }
    let user = user_with_image(podman);
    let plan = plan_dir(user.dir.path(), "btrfs", "/var/lib/containers/storage", "/run/containers/storage");
    let before = snapshot(&[&user.config(), &user.config_root(), &plan]);
    for version in ["5.4", "6.0"] {
        let out =
            run(user.tool(&["storage-conf", "apply", "--podman-version", version, "--plan"]).arg(&plan));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{version}: {err}");
        assert!(
            err.contains("made for root") && err.contains("graphroot = \"/var/lib/containers/storage\""),
            "{err}"
        );
        assert!(err.contains("apply it as root"), "{err}");
    }
    assert_eq!(snapshot(&[&user.config(), &user.config_root(), &plan]), before);
    assert!(!user.config().join("containers/storage.conf.d").exists(), "no drop-in was written");
    assert!(user.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains("localhost/mine:1"));
}

on_each_podman!(a_rootless_users_own_populated_store_is_the_one_counted);
fn a_rootless_users_own_populated_store_is_the_one_counted(podman: Podman) {
    if !needs_rootless("rootless populated store", podman) {
        return;
    }
    let user = user_with_image(podman);
    // A plan with rootless settings that moves the store: refused because the user's own
    // store (not root's) holds the image.
    let runroot = user.runtime().join("containers");
    let plan = plan_dir(user.dir.path(), "vfs", "$HOME/elsewhere", runroot.to_str().unwrap());
    let before = snapshot(&[&user.config(), &user.config_root(), &plan]);
    let out = run(user.tool(&["storage-conf", "apply", "--podman-version", "5.4", "--plan"]).arg(&plan));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let own = user.data().join("containers/storage");
    assert!(err.contains("1 images") && err.contains(own.to_str().unwrap()), "{err}");
    assert!(
        err.contains(&format!("{:?}", user.home().join("elsewhere").display().to_string())),
        "expanded: {err}"
    );
    assert_eq!(snapshot(&[&user.config(), &user.config_root(), &plan]), before);
    assert!(user.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains("localhost/mine:1"));
}

on_each_podman!(a_store_the_user_cannot_read_is_unknown_not_empty);
fn a_store_the_user_cannot_read_is_unknown_not_empty(podman: Podman) {
    if !needs_rootless("rootless unreadable store", podman) {
        return;
    }
    let user = user_with_image(podman);
    // Root's store, which only root can read, holding an image; root's storage.conf
    // (readable by all, as /etc/containers/storage.conf is) names it. The user points the
    // tool at that file.
    let root_store = user.dir.path().join("root-store");
    write(&root_store.join("vfs-images/images.json"), "[{\"id\": \"x\"}]");
    std::fs::set_permissions(&root_store, std::fs::Permissions::from_mode(0o700)).unwrap();
    let root_conf = user.dir.path().join("root-storage.conf");
    write(&root_conf, &format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\n", root_store.display()));
    let new_store = user.home().join("new-store");
    let plan = plan_dir(
        user.dir.path(),
        "vfs",
        new_store.to_str().unwrap(),
        user.runtime().join("containers").to_str().unwrap(),
    );
    let watched = [user.config(), user.config_root(), plan.clone(), root_store.clone(), root_conf.clone()];
    let watched: Vec<&Path> = watched.iter().map(PathBuf::as_path).collect();
    let before = snapshot(&watched);
    let out = run(user
        .tool(&[
            "storage-conf",
            "apply",
            "--podman-version",
            "5.4",
            "--file",
            root_conf.to_str().unwrap(),
            "--plan",
        ])
        .arg(&plan));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("unknown, never empty") && err.contains("ermission denied"), "{err}");
    assert!(err.contains(root_store.to_str().unwrap()) && err.contains("--url"), "{err}");
    assert_eq!(snapshot(&watched), before);
    assert!(!new_store.exists());
    assert!(user.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains("localhost/mine:1"));
}

#[test]
fn nixos_comes_first_with_every_planned_key() {
    let dir = TempDir::new("nixos-first");
    let d = dir.path();
    // A populated store and a read-only (NixOS-managed) file that already has the
    // planned graphroot: the answer is the complete snippet, not the store refusal.
    let store = d.join("store");
    write(&store.join("overlay-images/images.json"), "[{\"id\": \"x\"}]");
    let conf = d.join("storage.conf");
    let text = format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\n", store.display());
    write(&conf, &text);
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o444)).unwrap();
    let plan = plan_dir(d, "btrfs", store.to_str().unwrap(), "/run/containers/storage");
    let out = tool_in(
        d,
        &[
            "storage-conf",
            "apply",
            "--podman-version",
            "5.4",
            "--file",
            conf.to_str().unwrap(),
            "--plan",
            plan.to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("virtualisation.containers.storage.settings") && !err.contains("images,"), "{err}");
    for key in [
        "storage.driver = \"btrfs\"",
        "storage.graphroot = ",
        "storage.runroot = \"/run/containers/storage\"",
    ] {
        assert!(err.contains(key), "{key} missing: {err}");
    }
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text);
}

on_each_podman!(a_target_store_of_another_driver_is_refused_on_both_models);
fn a_target_store_of_another_driver_is_refused_on_both_models(podman: Podman) {
    if !can_run(
        "target store of another driver",
        &["podman", "runc", "mkfs.btrfs", "losetup", "busybox"],
        true,
    ) || !podman.available("target store of another driver")
    {
        return;
    }
    let service = PodmanService::start_on(podman, "overlay");
    service.import_busybox(&["localhost/keep:1"]);
    let dir = TempDir::new("target-store");
    let home = dir.path().join("home");
    // The file being changed names an empty store; the plan points at the overlay one.
    let empty = dir.path().join("empty-store");
    std::fs::create_dir_all(&empty).unwrap();
    let main = format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\n", empty.display());
    let root = dir.path().join("sysroot");
    write(&root.join("etc/containers/storage.conf"), &main);
    let conf = dir.path().join("storage.conf");
    write(&conf, &main);
    let runroot = dir.path().join("run");
    let plan = plan_dir(dir.path(), "btrfs", service.graphroot.to_str().unwrap(), runroot.to_str().unwrap());
    let before = snapshot(&[dir.path(), &service.graphroot.join("overlay-images")]);
    let cases: [&[&str]; 2] =
        [&["--podman-version", "5.4", "--file", conf.to_str().unwrap()], &["--podman-version", "6.0"]];
    for extra in cases {
        let out = run(bin()
            .args(["storage-conf", "apply", "--plan"])
            .arg(&plan)
            .args(extra)
            .arg("--config-root")
            .arg(&root)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env_remove("CONTAINERS_STORAGE_CONF")
            .env_remove("CONTAINERS_STORAGE_CONF_OVERRIDE"));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{extra:?}: {err}");
        assert!(err.contains("already holds a overlay store") && err.contains("overlay-"), "{err}");
        assert!(
            err.contains("podman save") && err.contains("Never run a bare `podman system reset`"),
            "{err}"
        );
    }
    assert_eq!(snapshot(&[dir.path(), &service.graphroot.join("overlay-images")]), before);
    assert!(!root.join("etc/containers/storage.rootful.conf.d").exists());
    assert_eq!(service.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]), "localhost/keep:1");

    // The socket names the Podman version whose rules apply.
    let out = run(bin()
        .args(["storage-conf", "show", "--format", "json", "--url", &service.url, "--file"])
        .arg(&conf)
        .arg("--config-root")
        .arg(&root)
        .env("HOME", &home));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = service.ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(version.starts_with(v["podman_version"].as_str().unwrap()), "{v} vs {version}");
    assert!(v["version_source"].as_str().unwrap().contains(&service.url), "{v}");
}

/// `storage-conf` with a configuration root and a home of its own, as root.
fn tool_in(dir: &Path, args: &[&str]) -> Output {
    let home = dir.join("home");
    run(bin()
        .args(args)
        .arg("--config-root")
        .arg(dir.join("sysroot"))
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("CONTAINERS_STORAGE_CONF")
        .env_remove("CONTAINERS_STORAGE_CONF_OVERRIDE"))
}

fn show_json(dir: &Path) -> serde_json::Value {
    let out = tool_in(dir, &["storage-conf", "show", "--podman-version", "6.0", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn file_names(v: &serde_json::Value) -> Vec<String> {
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Path::new(f["path"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn podman_6_apply_writes_a_drop_in_that_sorts_last() {
    if !can_run("Podman 6 drop-in apply", &[], true) {
        return;
    }
    let dir = TempDir::new("dropin");
    let d = dir.path();
    let sys = d.join("sysroot");
    // Podman 6's shipped main file sets no driver; the vendor drop-in does.
    write(
        &sys.join("usr/share/containers/storage.conf"),
        &format!("[storage]\ngraphroot = \"{}\"\n", d.join("old").display()),
    );
    write(
        &sys.join("usr/share/containers/storage.conf.d/00-vendor.conf"),
        "[storage]\ndriver = \"overlay\"\n",
    );
    write(
        &sys.join("etc/containers/storage.conf.d/50-admin.conf"),
        "# admin\n[storage]\nrunroot = \"/run/admin\"\n",
    );
    write(&sys.join("etc/containers/storage.rootless.conf.d/50-users.conf"), "[storage]\ndriver = \"zfs\"\n");
    let v = show_json(d);
    assert_eq!(
        file_names(&v),
        ["storage.conf", "00-vendor.conf", "50-admin.conf"],
        "root reads no rootless drop-in"
    );
    assert!(v["effective"]["storage.driver"]["from"].as_str().unwrap().ends_with("00-vendor.conf"));
    assert_eq!(v["effective"]["storage.runroot"]["value"], "/run/admin");

    let plan = plan_dir(d, "vfs", d.join("new").to_str().unwrap(), d.join("run").to_str().unwrap());
    let before = snapshot(&[&sys]);
    let out =
        tool_in(d, &["storage-conf", "apply", "--podman-version", "6.0", "--plan", plan.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ours = sys.join("etc/containers/storage.rootful.conf.d/99-podman-btrfs-advise.conf");
    let text = std::fs::read_to_string(&ours).unwrap();
    assert!(
        text.starts_with("# Written by podman-btrfs-advise") && text.contains("driver = \"vfs\""),
        "{text}"
    );
    // Every other file is byte for byte what it was.
    let mut after = snapshot(&[&sys]);
    after.remove(&ours);
    assert_eq!(after, before);
    let v = show_json(d);
    assert_eq!(file_names(&v).last().unwrap(), "99-podman-btrfs-advise.conf");
    for key in ["driver", "graphroot", "runroot"] {
        let from = v["effective"][format!("storage.{key}")]["from"].as_str().unwrap().to_string();
        assert!(from.ends_with("99-podman-btrfs-advise.conf"), "{key} from {from}");
    }
    let out =
        tool_in(d, &["storage-conf", "apply", "--podman-version", "6.0", "--plan", plan.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to do"));

    // A changed plan edits our drop-in in place and keeps a backup that is no drop-in.
    let plan2 = plan_with_runroot(&plan, &d.join("run2"));
    let out =
        tool_in(d, &["storage-conf", "apply", "--podman-version", "6.0", "--plan", plan2.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("previous kept as"));
    let names = file_names(&show_json(d));
    assert_eq!(names.last().unwrap(), "99-podman-btrfs-advise.conf");
    assert!(!names.iter().any(|n| n.contains(".bak")), "the backup is no drop-in: {names:?}");
    assert!(std::fs::read_to_string(&ours).unwrap().starts_with("# Written by"), "edited in place");

    // A vendor drop-in that sorts after ours would override the plan: refused.
    write(&sys.join("usr/share/containers/storage.conf.d/zz-late.conf"), "[storage]\ndriver = \"overlay\"\n");
    let mine = std::fs::read_to_string(&ours).unwrap();
    let plan3 =
        plan_dir(&d.join("p3"), "btrfs", d.join("new").to_str().unwrap(), d.join("run2").to_str().unwrap());
    let out =
        tool_in(d, &["storage-conf", "apply", "--podman-version", "6.0", "--plan", plan3.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("zz-late.conf") && err.contains("read after"), "{err}");
    assert_eq!(std::fs::read_to_string(&ours).unwrap(), mine);

    // Before Podman 6 the same tree is one file and drop-ins mean nothing: /etc's file is
    // written, starting from the vendor file it replaces, which stays untouched.
    let out =
        tool_in(d, &["storage-conf", "diff", "--podman-version", "5.4", "--plan", plan3.to_str().unwrap()]);
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(
        diff.contains("etc/containers/storage.conf (current)") && diff.contains("+driver = \"btrfs\""),
        "{diff}"
    );
    assert!(diff.contains(" [storage]\n-graphroot = "), "the vendor file is the starting point: {diff}");
}

fn plan_with_runroot(plan: &Path, runroot: &Path) -> PathBuf {
    let text = std::fs::read_to_string(plan.join("storage.conf")).unwrap();
    let dir = plan.parent().unwrap().join("plan2");
    let changed: String = text
        .lines()
        .map(|l| {
            if l.starts_with("runroot") {
                format!("runroot = \"{}\"\n", runroot.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    write(&dir.join("storage.conf"), &changed);
    dir
}

#[test]
fn check_reads_podman_6_drop_ins_under_a_configuration_root() {
    let dir = TempDir::new("check-dropins");
    let d = dir.path();
    let sys = d.join("sysroot");
    write(&sys.join("etc/containers/storage.conf"), "[storage]\ndriver = \"overlay\"\n");
    let bad = sys.join("etc/containers/storage.conf.d/10-bad.conf");
    write(&bad, "[storage.options.btrfs]\nsize = \"10G\"\n");
    let check = |version: &str| {
        let home = d.join("home");
        run(bin()
            .args(["check", "--format", "json", "--podman-version", version, "--config-root"])
            .arg(&sys)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env_remove("CONTAINERS_STORAGE_CONF")
            .env_remove("CONTAINERS_STORAGE_CONF_OVERRIDE"))
    };
    let out = check("6.0");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "P203")
        .expect("P203 in the drop-in");
    assert_eq!(
        (found["file"].as_str().unwrap(), found["line"].as_u64().unwrap()),
        (bad.to_str().unwrap(), 2)
    );
    // Before Podman 6 the drop-in is not read, so it is not checked.
    let out = check("5.4");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}
