//! `snapshot` against a real Podman whose volumes lie on a loop-mounted btrfs: a running
//! container's database volume is snapshotted while the container is paused (Podman's
//! own event log shows the pause and the unpause), the snapshot keeps what was written
//! before it, a cache volume is refused without --force, and a volume that is no
//! subvolume gets an error that names `migrate`.

mod common;

use common::podman::{Podman, PodmanService};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NEEDS: &[&str] = &["podman", "runc", "mkfs.btrfs", "losetup", "busybox", "btrfs", "lsattr"];

/// The tool's `subcommand` where this Podman's mounts are seen (as in
/// tests/migrate_system.rs).
fn run_tool(service: &PodmanService, subcommand: &str) -> Command {
    let mut c = match service.podman {
        Podman::Host => service.command(env!("CARGO_BIN_EXE_podman-btrfs-advise")),
        Podman::Trixie => bin(),
    };
    c.arg(subcommand).arg("--url").arg(&service.url);
    c
}

fn tool(service: &PodmanService) -> Command {
    run_tool(service, "snapshot")
}

fn restore(service: &PodmanService) -> Command {
    run_tool(service, "restore")
}

/// Creates volume `name` of `class` and makes its data directory a subvolume.
fn subvolume_volume(service: &PodmanService, name: &str, class: &str) -> PathBuf {
    service.ok(&["volume", "create", "--label", &format!("io.podfs.class={class}"), name]);
    let data = PathBuf::from(service.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", name]));
    std::fs::remove_dir(&data).unwrap();
    ok(Command::new("btrfs").args(["subvolume", "create"]).arg(&data));
    data
}

/// Runs container `name` with `volume` at /data, which writes `v1` there once (not again
/// when started again) and sleeps; waits until `v1` is in `data`, the volume's data.
fn start_writer(service: &PodmanService, name: &str, volume: &str, data: &Path) {
    let mount = format!("{volume}:/data");
    let script = "[ -e /data/v ] || echo v1 > /data/v; sleep 1000";
    let run = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        name,
        "-v",
        &mount,
        "localhost/app:1",
        "sh",
        "-c",
        script,
    ];
    service.ok(&run);
    let wait = std::time::Instant::now();
    while std::fs::read_to_string(data.join("v")).unwrap_or_default() != "v1\n" {
        assert!(wait.elapsed().as_secs() < 20, "{name} never wrote v1");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The `Status` of Podman's events for container `name`, in order.
fn events_of(service: &PodmanService, name: &str) -> Vec<String> {
    let log = std::fs::read_to_string(service.dir().join("events.log")).unwrap_or_default();
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["Name"] == name && e["Type"] == "container")
        .map(|e| e["Status"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

on_each_podman!(a_paused_database_volume_is_snapshotted_and_a_cache_volume_refused);
fn a_paused_database_volume_is_snapshotted_and_a_cache_volume_refused(podman: Podman) {
    let test = "a paused database volume is snapshotted";
    if !can_run(test, NEEDS, true) || !podman.available(test) {
        return;
    }
    let service = PodmanService::start_in_directory_on(podman, "overlay");
    service.import_busybox(&["localhost/app:1"]);
    let db = subvolume_volume(&service, "db", "database");
    start_writer(&service, "app", "db", &db);

    let out = json(&tool(&service).args(["db", "--format", "json"]).output().unwrap());
    let taken = &out["snapshots"][0];
    assert_eq!(taken["volume"], "db");
    assert_eq!(taken["class"], "database");
    assert_eq!(taken["containers"][0]["name"], "app");
    assert_eq!(taken["containers"][0]["how"], "paused");
    let snap = PathBuf::from(taken["path"].as_str().unwrap());
    assert_eq!(snap.parent().unwrap(), db.parent().unwrap().join(".snapshots"));
    assert!(snap.file_name().unwrap().to_str().unwrap().starts_with("db@"), "{}", snap.display());
    assert!(read_only(&snap), "{} is read-only", snap.display());
    assert_eq!(std::fs::read_to_string(snap.join("v")).unwrap(), "v1\n");
    // Paused for the snapshot, unpaused after it, and running again.
    let events = events_of(&service, "app");
    let pause = events.iter().position(|s| s == "pause").unwrap_or_else(|| panic!("no pause in {events:?}"));
    assert!(events[pause..].iter().any(|s| s == "unpause"), "no unpause after the pause: {events:?}");
    assert_eq!(service.ok(&["inspect", "--format", "{{.State.Status}}", "app"]), "running");

    // The container writes on; the snapshot keeps v1.
    service.ok(&["exec", "app", "sh", "-c", "echo v2 > /data/v"]);
    assert_eq!(service.ok(&["exec", "app", "cat", "/data/v"]), "v2");
    assert_eq!(std::fs::read_to_string(snap.join("v")).unwrap(), "v1\n");

    // --list shows it, for the volume and for all volumes.
    let listed = json(&tool(&service).args(["--list", "db", "--format", "json"]).output().unwrap());
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["snapshots"][0]["path"], taken["path"]);
    let human = tool(&service).arg("--list").output().unwrap();
    assert!(String::from_utf8_lossy(&human.stdout).contains(snap.to_str().unwrap()), "{human:?}");

    // restore without --yes only says what it would do.
    let shown = json(
        &restore(&service)
            .args(["db", taken["name"].as_str().unwrap(), "--format", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(shown["dry_run"], true);
    assert_eq!(shown["containers"][0], "app");
    assert_eq!(service.ok(&["exec", "app", "cat", "/data/v"]), "v2", "nothing changed");
    // With --yes: the container is stopped and started again and reads v1; v2 is kept.
    let before_restore = events_of(&service, "app").len();
    let stamp = taken["stamp"].as_str().unwrap();
    let done = json(&restore(&service).args(["db", stamp, "--yes", "--format", "json"]).output().unwrap());
    assert_eq!(done["failures"].as_array().unwrap().len(), 0, "{done}");
    assert_eq!(service.ok(&["inspect", "--format", "{{.State.Status}}", "app"]), "running");
    assert_eq!(service.ok(&["exec", "app", "cat", "/data/v"]), "v1");
    let kept = PathBuf::from(done["kept"]["path"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(kept.join("v")).unwrap(), "v2\n");
    assert!(read_only(&kept), "{} is read-only", kept.display());
    assert!(!read_only(&db), "the restored data is writable");
    service.ok(&["exec", "app", "sh", "-c", "echo v3 > /data/v"]);
    assert_eq!(
        std::fs::read_to_string(snap.join("v")).unwrap(),
        "v1\n",
        "the snapshot restored from is untouched"
    );
    let events = events_of(&service, "app");
    let restored = &events[before_restore..];
    // A stop through the API is logged as `died` (Podman 4.3.1 and 5.4.2).
    let stopped =
        restored.iter().position(|s| s == "died").unwrap_or_else(|| panic!("no stop in {restored:?}"));
    assert!(restored[stopped..].iter().any(|s| s == "start"), "started again after the stop: {restored:?}");
    let listed = json(&tool(&service).args(["--list", "db", "--format", "json"]).output().unwrap());
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 2, "{listed}");
    // A snapshot that does not exist: a usage error naming the ones there are.
    let missing = restore(&service).args(["db", "db@20000101T000000Z", "--yes"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains(taken["name"].as_str().unwrap()),
        "{missing:?}"
    );

    // A cache volume is refused, and nothing is paused for it; --force takes it.
    subvolume_volume(&service, "scratch", "cache");
    let before = events_of(&service, "app").len();
    let refused = tool(&service).arg("scratch").output().unwrap();
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("cache") && stderr.contains("--force"), "{stderr}");
    assert!(
        json(&tool(&service).args(["scratch", "--force", "--format", "json"]).output().unwrap())["snapshots"]
            [0]["name"]
            .as_str()
            .unwrap()
            .starts_with("scratch@")
    );
    assert_eq!(events_of(&service, "app").len(), before, "app was not touched for other volumes");

    // --prune applies the database policy (24 hourly, 7 daily) to 30 hourly snapshots.
    let history = subvolume_volume(&service, "history", "database");
    let snapshots = history.parent().unwrap().join(".snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    let stamps: Vec<String> =
        (0..30).map(|h| format!("202611{:02}T{:02}0000Z", 28 + h / 24, h % 24)).collect();
    for stamp in &stamps {
        ok(Command::new("btrfs")
            .args(["subvolume", "snapshot", "-r"])
            .arg(&history)
            .arg(snapshots.join(format!("history@{stamp}"))));
    }
    let doomed: Vec<String> = (1..6).map(|h| format!("history@20261128T{h:02}0000Z")).collect();
    let prune = |yes: bool| {
        let mut c = tool(&service);
        c.args(["--prune", "history", "scratch", "--format", "json"]);
        if yes {
            c.arg("--yes");
        }
        json(&c.output().unwrap())
    };
    let shown = prune(false);
    assert_eq!(shown["dry_run"], true);
    assert_eq!(shown["volumes"][0]["delete"], serde_json::json!(doomed), "{shown}");
    assert_eq!(shown["volumes"][0]["keep"].as_array().unwrap().len(), 25);
    assert_eq!(shown["volumes"][1]["volume"], "scratch");
    assert_eq!(shown["volumes"][1]["delete"].as_array().unwrap().len(), 0, "cache has no schedule: all kept");
    assert!(snapshots.join(&doomed[0]).exists(), "a dry run deletes nothing");
    let done = prune(true);
    assert_eq!(done["volumes"][0]["delete"], serde_json::json!(doomed));
    let left: Vec<String> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("history@"))
        .collect();
    assert_eq!(left.len(), 25, "{left:?}");
    assert!(doomed.iter().all(|d| !left.contains(d)), "{left:?}");

    // A plain directory: a clear error that says how to make it a subvolume.
    service.ok(&["volume", "create", "--label", "io.podfs.class=database", "plain"]);
    let plain = tool(&service).arg("plain").output().unwrap();
    assert_eq!(plain.status.code(), Some(3), "{plain:?}");
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("not a btrfs subvolume") && stderr.contains("migrate"), "{stderr}");
    // No such volume: a usage error.
    assert_eq!(tool(&service).arg("nothing").output().unwrap().status.code(), Some(2));

    // A timer's run where volumes fail in each way (a class label that names no class, a
    // plain directory, a snapshot that btrfs cannot place since `.snapshots` is a file)
    // reports each and still takes the others, and exits 3.
    service.ok(&["volume", "create", "--label", "io.podfs.class=nonsense", "mislabelled"]);
    let blocked = subvolume_volume(&service, "blocked", "database");
    std::fs::write(blocked.parent().unwrap().join(".snapshots"), "not a directory").unwrap();
    let before = listed_names(&snapshots, "history@").len();
    let out = tool(&service).args(["--scheduled", "hourly", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let mut names: Vec<&str> =
        report["snapshots"].as_array().unwrap().iter().map(|t| t["volume"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["db", "history"], "{report}");
    let failures: Vec<&str> =
        report["failures"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(failures.len(), 3, "{report}");
    for volume in ["`mislabelled`", "`plain`", "`blocked`"] {
        assert!(failures.iter().any(|f| f.contains(volume)), "{volume} in {failures:?}");
    }
    assert_eq!(listed_names(&snapshots, "history@").len(), before + 1, "history was taken");
    assert_eq!(service.ok(&["inspect", "--format", "{{.State.Status}}", "app"]), "running");
}

/// The names in `dir` that start with `prefix`.
fn listed_names(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

on_each_podman!(a_plugin_volume_is_snapshotted_beside_its_class_directory);
fn a_plugin_volume_is_snapshotted_beside_its_class_directory(podman: Podman) {
    let test = "a plugin volume is snapshotted";
    if !can_run(test, NEEDS, true) || !podman.available(test) {
        return;
    }
    let dir = TempDir::new("snapshot-plugin");
    let socket = dir.path().join("podfs.sock");
    let service = PodmanService::start_with_plugin_on(podman, &socket);
    service.import_busybox(&["localhost/app:1"]);
    let root = service.top.join("podfs");
    let start_serve = |extra: &[&str]| {
        let _ = std::fs::remove_file(&socket);
        let serve = KillOnDrop(
            bin()
                .args(["serve", "--no-events", "--no-watch", "--socket"])
                .arg(&socket)
                .arg("--root")
                .arg(&root)
                .args(extra)
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start serve"),
        );
        let wait = std::time::Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(wait.elapsed().as_secs() < 20, "serve did not come up");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        serve
    };
    let serve = start_serve(&[]);
    service.ok(&["volume", "create", "--driver", "podfs", "--opt", "class=database", "pg"]);
    service.ok(&["volume", "create", "--driver", "podfs", "--opt", "class=cache", "thumbs"]);
    let pg = root.join("database/pg");
    start_writer(&service, "db", "pg", &pg);
    let out = json(&tool(&service).args(["pg", "--format", "json"]).output().unwrap());
    let taken = &out["snapshots"][0];
    assert_eq!(taken["class"], "database", "the plugin's class option: {out}");
    assert_eq!(taken["containers"][0]["how"], "paused");
    let snap = PathBuf::from(taken["path"].as_str().unwrap());
    assert_eq!(snap.parent().unwrap(), root.join("database/.snapshots"));
    assert_eq!(std::fs::read_to_string(snap.join("v")).unwrap(), "v1\n");
    assert_eq!(service.ok(&["inspect", "--format", "{{.State.Status}}", "db"]), "running");
    // The plugin's own volumes still are exactly the two it made.
    let listed = service.ok(&["volume", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["pg", "thumbs"]);

    // Restored in place of the plugin's subvolume, which stays a subvolume the plugin serves.
    service.ok(&["exec", "db", "sh", "-c", "echo v2 > /data/v"]);
    let done = json(
        &restore(&service)
            .args(["pg", taken["name"].as_str().unwrap(), "--yes", "--format", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        done["kept"]["path"].as_str().unwrap().rsplit_once('/').unwrap().0,
        root.join("database/.snapshots").to_str().unwrap()
    );
    assert_eq!(service.ok(&["exec", "db", "cat", "/data/v"]), "v1");
    assert!(
        ok(Command::new("btrfs").args(["subvolume", "show"]).arg(&pg)).contains("Name:"),
        "still a subvolume"
    );

    // The cache volume of the plugin: refused by its class option.
    let refused = tool(&service).arg("thumbs").output().unwrap();
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("class cache"), "{refused:?}");

    // A plugin volume created without a class lies in general/ and is of that class,
    // whatever its label says: not due hourly as a database would be. One is in use, one
    // never mounted (Podman knows no mountpoint for it; the plugin reports its class).
    for name in ["misc", "idle"] {
        service.ok(&["volume", "create", "--driver", "podfs", "--label", "io.podfs.class=database", name]);
    }
    start_writer(&service, "m", "misc", &root.join("general/misc"));
    let misc = json(&tool(&service).args(["misc", "--format", "json"]).output().unwrap());
    assert_eq!(misc["snapshots"][0]["class"], "general", "{misc}");
    assert!(root.join("general/.snapshots").is_dir(), "{misc}");

    // What an hourly timer runs: every volume whose class is snapshotted hourly (the
    // database volume), never the cache volume nor the general one.
    let scheduled =
        json(&tool(&service).args(["--scheduled", "hourly", "--format", "json"]).output().unwrap());
    let names: Vec<&str> =
        scheduled["snapshots"].as_array().unwrap().iter().map(|t| t["volume"].as_str().unwrap()).collect();
    assert_eq!(names, ["pg"], "{scheduled}");
    assert_eq!(scheduled["failures"], serde_json::json!([]), "{scheduled}");
    let hourly = scheduled["snapshots"][0]["name"].as_str().unwrap().to_string();

    // The plugin reports the volume's snapshots: the ones taken and the one restore kept.
    let kept = done["kept"]["name"].as_str().unwrap().to_string();
    let got = ok(Command::new("curl").args(["-s", "--unix-socket"]).arg(&socket).args([
        "-X",
        "POST",
        "-d",
        r#"{"Name":"pg"}"#,
        "http://plugin/VolumeDriver.Get",
    ]));
    let got: Value = serde_json::from_str(&got).unwrap();
    let mut want = vec![taken["name"].as_str().unwrap().to_string(), kept, hourly];
    want.sort();
    assert_eq!(got["Volume"]["Status"]["snapshots"], serde_json::json!(want), "{got}");

    // Removing a volume that still has snapshots is refused, and nothing is removed ...
    service.ok(&["rm", "--force", "--time", "0", "db"]);
    let rm = run(service.podman().args(["volume", "rm", "pg"]));
    assert!(!rm.status.success(), "{rm:?}");
    let why = String::from_utf8_lossy(&rm.stderr);
    assert!(why.contains("still has 3 snapshot(s)") && why.contains("btrfs subvolume delete"), "{rm:?}");
    assert!(pg.is_dir());
    // ... unless serve is told to: the volume goes, its snapshots stay.
    drop(serve);
    let _serve = start_serve(&["--remove-with-snapshots"]);
    service.ok(&["volume", "rm", "pg"]);
    assert!(!pg.exists());
    for name in &want {
        assert!(root.join("database/.snapshots").join(name).is_dir(), "{name} was kept");
    }
}
