//! `serve` against the real thing: a loop-mounted btrfs, a real Podman service that uses
//! the plugin, Podman restarts, and hostile clients on the plugin socket.

mod common;

use common::podman::{Podman, PodmanService};
use common::{LoopBtrfs, TempDir, bin, can_run, lsattr, ok, run, terminate};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `serve`, stopped with SIGTERM (or killed) by Drop.
struct Plugin {
    socket: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Plugin {
    fn start(dir: &Path, root: &Path, extra: &[&str]) -> Plugin {
        let socket = dir.join("podfs.sock");
        let mut args: Vec<String> = vec!["serve".into(), "--socket".into(), socket.display().to_string()];
        args.extend(["--root".into(), root.display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut p = Plugin { socket, log: dir.join("serve.log"), args, child: None };
        p.start_again();
        p
    }

    fn start_again(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = bin().args(&self.args).stdout(Stdio::null()).stderr(log).spawn().expect("start serve");
        self.child = Some(child);
        let start = Instant::now();
        while post_raw(&self.socket, "/Plugin.Activate", b"").is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "serve did not come up:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash would.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `count` lines containing every one of `parts`.
    fn wait_for(&self, parts: &[&str], count: usize) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            let found = log.lines().filter(|l| parts.iter().all(|p| l.contains(p))).count();
            if found >= count {
                return log;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {count} log line(s) with {parts:?} within 60 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(5));
        }
    }
}

/// Sends raw bytes, returns the raw answer (the server may close early).
fn exchange(socket: &Path, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    // The server may answer and close before reading everything (413).
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => Ok(answer),
        Err(_) if !answer.is_empty() => Ok(answer),
        Err(e) => Err(e),
    }
}

fn post_raw(socket: &Path, path: &str, body: &[u8]) -> std::io::Result<(u16, Value)> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: plugin\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    parse(&exchange(socket, &request)?)
}

fn parse(answer: &[u8]) -> std::io::Result<(u16, Value)> {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn post(socket: &Path, path: &str, body: Value) -> (u16, Value) {
    post_raw(socket, path, body.to_string().as_bytes()).expect("the plugin answers")
}

fn is_subvolume(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir() && m.ino() == 256)
}

fn names(socket: &Path) -> Vec<String> {
    let (status, body) = post(socket, "/VolumeDriver.List", json!({}));
    assert_eq!(status, 200, "{body}");
    body["Volumes"].as_array().unwrap().iter().map(|v| v["Name"].as_str().unwrap().to_string()).collect()
}

on_each_podman!(podman_creates_mounts_and_removes_volumes_through_the_plugin);
fn podman_creates_mounts_and_removes_volumes_through_the_plugin(podman: Podman) {
    let test = "podman_creates_mounts_and_removes_volumes_through_the_plugin";
    if !can_run(test, &["podman", "mkfs.btrfs", "lsattr", "btrfs"], true) || !podman.available(test) {
        return;
    }
    let dir = TempDir::new("serve-podman");
    let socket = dir.path().join("podfs.sock");
    let service = PodmanService::start_with_plugin_on(podman, &socket);
    service.import_busybox(&["localhost/busybox:latest"]);
    let root = service.top.join("podfs");
    let mut plugin = Plugin::start(dir.path(), &root, &["--no-events", "--no-watch"]);
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);

    service.ok(&["volume", "create", "--driver", "podfs", "--opt", "class=database", "pg"]);
    let pg = root.join("database/pg");
    assert!(is_subvolume(&pg), "{} is not a subvolume", pg.display());
    assert!(lsattr(&pg).contains('C'), "no NOCOW on {}: {}", pg.display(), lsattr(&pg));
    service.ok(&["volume", "create", "--driver", "podfs", "--opt", "class=media", "films"]);
    assert_eq!(common::compression_property(&root.join("media/films")), "none");
    assert!(!lsattr(&root.join("media/films")).contains('C'));

    let run_in = |cmd: &str| {
        service.ok(&[
            "run",
            "--rm",
            "--network=none",
            "-v",
            "pg:/data",
            "localhost/busybox:latest",
            "sh",
            "-c",
            cmd,
        ])
    };
    run_in("echo hello > /data/f");
    assert_eq!(std::fs::read_to_string(pg.join("f")).unwrap(), "hello\n");
    assert!(lsattr(&pg.join("f")).contains('C'), "a new file inherits NOCOW");

    // A crash and a restart lose nothing: state is the filesystem.
    plugin.kill();
    plugin.start_again();
    let listed = service.ok(&["volume", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(listed.lines().any(|l| l == "pg podfs"), "{listed}");
    assert_eq!(names(&socket), vec!["pg".to_string(), "films".to_string()]);
    assert_eq!(run_in("cat /data/f"), "hello");

    // Bad options reach the user through Podman.
    let out =
        run(service.podman().args(["volume", "create", "--driver", "podfs", "--opt", "class=databse", "x"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `database`"), "{err}");

    service.ok(&["volume", "rm", "pg"]);
    assert!(!pg.exists(), "podman volume rm deletes the subvolume");
    assert_eq!(names(&socket), vec!["films".to_string()]);
    assert!(plugin.log().contains("removed volume"), "{}", plugin.log());
}

/// Every regular file and symlink below `dir` except under `skip`, with its content.
fn snapshot(dir: &Path, skip: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.starts_with(skip) {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                out.push((p.clone(), b"dir".to_vec()));
                stack.push(p);
            } else if m.file_type().is_symlink() {
                out.push((p.clone(), std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()));
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_requests_get_errors_and_touch_nothing_outside_the_root() {
    if !can_run(
        "hostile_requests_get_errors_and_touch_nothing_outside_the_root",
        &["mkfs.btrfs", "btrfs"],
        true,
    ) {
        return;
    }
    let mut fs = LoopBtrfs::new("1G");
    let top = fs.mount("/", "");
    let dir = TempDir::new("serve-hostile");
    ok(Command::new("btrfs").args(["subvolume", "create"]).arg(top.join("outside")));
    std::fs::write(top.join("outside/secret"), "keep").unwrap();
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/passwd"), "root:x:0:0").unwrap();
    let root = top.join("podfs");
    let plugin = Plugin::start(dir.path(), &root, &["--no-events", "--no-watch"]);
    let s = &plugin.socket;

    // A legitimate volume, then traps inside the root: a symlink to a subvolume outside and
    // a plain directory, both with names a client may send.
    assert_eq!(post(s, "/VolumeDriver.Create", json!({"Name": "ok", "Opts": {"class": "database"}})).0, 200);
    std::os::unix::fs::symlink(top.join("outside"), root.join("database/evil")).unwrap();
    std::fs::create_dir_all(root.join("general/plain")).unwrap();
    std::fs::write(root.join("general/plain/data"), "mine").unwrap();
    let before = snapshot(&top, &root.join("database/ok"));

    let long = "a".repeat(300);
    for name in ["../../etc", "..", ".", "a/b", "/etc", "a\u{0}b", long.as_str(), "", "../outside"] {
        for endpoint in
            ["/VolumeDriver.Create", "/VolumeDriver.Remove", "/VolumeDriver.Mount", "/VolumeDriver.Get"]
        {
            let (status, body) = post(s, endpoint, json!({"Name": name, "Opts": {}}));
            assert_ne!(status, 200, "{endpoint} {name:?} was accepted: {body}");
            assert!(body["Err"].as_str().is_some_and(|e| !e.is_empty()), "{endpoint} {name:?}: {body}");
        }
    }
    // Names that are valid but lead to what is not a volume of ours.
    for name in ["evil", "plain", "outside", "nothing"] {
        let (status, body) = post(s, "/VolumeDriver.Remove", json!({"Name": name}));
        assert_eq!(status, 500, "{name}: {body}");
        assert!(body["Err"].as_str().unwrap().contains("no volume"), "{name}: {body}");
    }
    // Malformed and oversized bodies, wrong shapes, unknown endpoints and methods.
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("/VolumeDriver.Create", b"{bad".to_vec(), 400),
        ("/VolumeDriver.Create", b"[]".to_vec(), 400),
        ("/VolumeDriver.Create", br#"{"Name": 7}"#.to_vec(), 400),
        ("/VolumeDriver.Create", br#"{"Name": "x", "Opts": {"class": 1}}"#.to_vec(), 400),
        ("/VolumeDriver.Create", br#"{"Name": "x", "Opts": {"mode": "0777"}}"#.to_vec(), 400),
        ("/VolumeDriver.Remove", b"".to_vec(), 400),
        ("/VolumeDriver.Create", vec![b' '; 10 << 20], 413),
        ("/../../etc/passwd", b"{}".to_vec(), 404),
        ("/VolumeDriver.Delete", b"{}".to_vec(), 404),
    ];
    for (path, body, want) in cases {
        let (status, answer) = post_raw(s, path, &body).unwrap();
        assert_eq!(
            status,
            want,
            "{path} {:?}: {answer}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
        assert!(answer["Err"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {answer}");
    }
    // A chunked body without a length is cut off at the limit too.
    let mut chunked =
        b"POST /VolumeDriver.Create HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 4096, " ".repeat(4096)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(parse(&exchange(s, &chunked).unwrap()).unwrap().0, 413);
    let (status, _) = parse(
        &exchange(s, b"GET /VolumeDriver.List HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n").unwrap(),
    )
    .unwrap();
    assert_eq!(status, 405);
    // Not HTTP at all: the connection is dropped and the server carries on.
    let _ = exchange(s, b"\x00\x01\x02 garbage\r\n\r\n");

    assert_eq!(snapshot(&top, &root.join("database/ok")), before, "something outside the volumes changed");
    assert!(top.join("outside").is_dir() && is_subvolume(&top.join("outside")));
    assert_eq!(names(s), vec!["ok".to_string()]);
    assert!(plugin.log().contains("request refused"));

    // A size limit needs quotas, which the plugin never turns on; nothing is left behind.
    let (status, body) = post(s, "/VolumeDriver.Create", json!({"Name": "capped", "Opts": {"size": "1M"}}));
    assert_eq!(status, 400, "{body}");
    assert!(body["Err"].as_str().unwrap().contains("btrfs quota enable"), "{body}");
    assert!(!root.join("general/capped").exists(), "a half-made volume was left behind");
    ok(Command::new("btrfs").args(["quota", "enable"]).arg(&top));
    let (status, body) = post(s, "/VolumeDriver.Create", json!({"Name": "capped", "Opts": {"size": "1M"}}));
    assert_eq!(status, 200, "{body}");
    let qgroups = ok(Command::new("btrfs").args(["qgroup", "show", "-r", "--raw"]).arg(&top));
    assert!(
        qgroups.lines().any(|l| l.split_whitespace().any(|w| w == "1048576")),
        "no 1 MiB limit:\n{qgroups}"
    );
}

#[test]
fn every_class_gets_the_attributes_of_its_table_entry() {
    if !can_run(
        "every_class_gets_the_attributes_of_its_table_entry",
        &["mkfs.btrfs", "lsattr", "btrfs"],
        true,
    ) {
        return;
    }
    let mut fs = LoopBtrfs::new("1G");
    let top = fs.mount("/", "");
    let dir = TempDir::new("serve-classes");
    let root = top.join("podfs");
    let plugin = Plugin::start(dir.path(), &root, &["--no-events", "--no-watch"]);
    for class in podfs::class::Class::ALL {
        let c = class.info();
        let name = format!("v-{}", c.name);
        let (status, body) =
            post(&plugin.socket, "/VolumeDriver.Create", json!({"Name": name, "Opts": {"class": c.name}}));
        assert_eq!(status, 200, "{class}: {body}");
        let volume = root.join(c.name).join(&name);
        assert!(is_subvolume(&volume), "{} is not a subvolume", volume.display());
        std::fs::write(volume.join("f"), "data").unwrap();
        for path in [volume.clone(), volume.join("f")] {
            assert_eq!(lsattr(&path).contains('C'), c.nocow, "{class}: NOCOW of {}", path.display());
        }
        let want = if c.nocow { String::new() } else { c.compression.to_string() };
        assert_eq!(common::compression_property(&volume), want, "{class}: compression");
        let (status, body) = post(&plugin.socket, "/VolumeDriver.Get", json!({"Name": name}));
        assert_eq!(status, 200, "{class}: {body}");
        let status = &body["Volume"]["Status"];
        assert_eq!(
            (&status["class"], &status["nocow"], &status["compression"]),
            (&json!(c.name), &json!(c.nocow), &json!(want))
        );
    }
    let without = json!({"Name": "plain", "Opts": {}});
    assert_eq!(post(&plugin.socket, "/VolumeDriver.Create", without).0, 200);
    assert!(is_subvolume(&root.join(podfs::class::Class::FALLBACK.as_str()).join("plain")));
}

on_each_podman!(events_watcher_flags_misplaced_volumes_and_survives_a_podman_restart);
fn events_watcher_flags_misplaced_volumes_and_survives_a_podman_restart(podman: Podman) {
    let test = "events_watcher_flags_misplaced_volumes_and_survives_a_podman_restart";
    if !can_run(test, &["podman", "mkfs.btrfs"], true) || !podman.available(test) {
        return;
    }
    let dir = TempDir::new("serve-events");
    let socket = dir.path().join("podfs.sock");
    let mut service = PodmanService::start_with_plugin_on(podman, &socket);
    service.import_busybox(&["localhost/busybox:latest"]);
    let root = service.top.join("podfs");
    let plugin = Plugin::start(dir.path(), &root, &["--url", &service.url, "--no-watch"]);
    plugin.wait_for(&["following Podman events"], 1);

    // A database volume on Podman's copy-on-write volume directory.
    service.ok(&["volume", "create", "--label", "io.podfs.class=database", "pgdata"]);
    plugin.wait_for(&["volume-cow", "pgdata"], 1);
    // A container that makes a plain volume a cache.
    service.ok(&["volume", "create", "redisdata"]);
    service.ok(&[
        "create",
        "--label",
        "io.podfs.class=cache",
        "-v",
        "redisdata:/data",
        "localhost/busybox:latest",
        "true",
    ]);
    plugin.wait_for(&["volume-cow", "redisdata"], 1);
    // A plugin volume whose label disagrees with the class it was created with.
    service.ok(&[
        "volume",
        "create",
        "--driver",
        "podfs",
        "--label",
        "io.podfs.class=database",
        "mislabelled",
    ]);
    plugin.wait_for(&["class-conflict", "mislabelled"], 1);
    // A volume in the right place gives nothing.
    service.ok(&[
        "volume",
        "create",
        "--driver",
        "podfs",
        "--opt",
        "class=database",
        "--label",
        "io.podfs.class=database",
        "fine",
    ]);

    service.stop();
    // Killed, Podman ends the stream mid-chunk; either way the watcher says so and reconnects.
    plugin.wait_for(&["Podman's event stream", "reconnecting"], 1);
    service.start_again();
    plugin.wait_for(&["following Podman events"], 2);
    service.ok(&["volume", "create", "--label", "io.podfs.class=vm", "disks"]);
    let log = plugin.wait_for(&["volume-cow", "disks"], 1);
    assert!(!log.lines().any(|l| l.contains("finding") && l.contains("volume fine")), "{log}");
    // Replayed events are not reported twice.
    assert_eq!(log.lines().filter(|l| l.contains("volume-cow") && l.contains("pgdata")).count(), 1, "{log}");
    // Every event of this Podman version parsed, and every object it named could be read.
    assert!(!log.contains("not an event") && !log.contains("cannot look at"), "{log}");
}

#[test]
fn configuration_changes_are_rechecked() {
    if !can_run("configuration_changes_are_rechecked", &["mkfs.btrfs"], true) {
        return;
    }
    let mut fs = LoopBtrfs::new("1G");
    let top = fs.mount("/", "");
    let dir = TempDir::new("serve-watch");
    let conf = dir.path().join("etc");
    std::fs::create_dir_all(&conf).unwrap();
    let storage = conf.join("storage.conf");
    std::fs::write(&storage, "[storage]\ndriver = \"overlay\"\nrunroot = \"/run/containers/storage\"\n")
        .unwrap();
    let containers = conf.join("containers.conf");
    let plugin = Plugin::start(
        dir.path(),
        &top.join("podfs"),
        &[
            "--no-events",
            "--storage-conf",
            storage.to_str().unwrap(),
            "--containers-conf",
            containers.to_str().unwrap(),
        ],
    );
    plugin.wait_for(&["checked the configuration after start", "errors=0"], 1);

    // An editor's write-and-rename.
    let tmp = conf.join(".storage.conf.swp");
    std::fs::write(&tmp, "[storage]\ndriver = \"btrfs\"\nrunroot = \"/run/containers/storage\"\n\n[storage.options.btrfs]\nsize = \"10G\"\n").unwrap();
    std::fs::rename(&tmp, &storage).unwrap();
    let log = plugin.wait_for(&["after a change to storage.conf", "errors=1"], 1);
    assert!(
        log.lines().any(|l| l.contains("P203") && l.contains("storage.conf") && l.contains("line=6")),
        "{log}"
    );

    // Malformed TOML written in place: an error naming the line, and the daemon goes on.
    std::fs::write(&storage, "[storage]\ndriver = \n").unwrap();
    let log = plugin.wait_for(&["cannot check after a change to storage.conf"], 1);
    assert!(log.lines().any(|l| l.contains("cannot check") && l.contains("line=2")), "{log}");
    // A file that appears later is picked up.
    std::fs::write(&storage, "[storage]\ndriver = \"overlay\"\n").unwrap();
    std::fs::write(&containers, "[engine]\nvolume_path = \"/var/lib/containers/storage/volumes\"\n").unwrap();
    // (Both writes may be checked together, after the quiet period.)
    plugin.wait_for(&["checked the configuration after a change to", "errors=0"], 1);
    assert_eq!(post(&plugin.socket, "/Plugin.Activate", json!({})).0, 200);
}

#[test]
fn a_socket_path_that_is_taken_or_not_a_socket_is_refused() {
    if !can_run("a_socket_path_that_is_taken_or_not_a_socket_is_refused", &["mkfs.btrfs"], true) {
        return;
    }
    let mut fs = LoopBtrfs::new("1G");
    let top = fs.mount("/", "");
    let dir = TempDir::new("serve-socket");
    let root = top.join("podfs");
    let file = dir.path().join("precious");
    std::fs::write(&file, "mine").unwrap();
    let out = run(bin()
        .args(["serve", "--no-events", "--no-watch", "--root"])
        .arg(&root)
        .arg("--socket")
        .arg(&file));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a socket"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");

    let plugin = Plugin::start(dir.path(), &root, &["--no-events", "--no-watch"]);
    let out = run(bin()
        .args(["serve", "--no-events", "--no-watch", "--root"])
        .arg(&root)
        .arg("--socket")
        .arg(&plugin.socket));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("another process listens"), "{out:?}");
    assert_eq!(post(&plugin.socket, "/Plugin.Activate", json!({})).0, 200, "the first instance still serves");

    // A root that is not on btrfs is refused before anything is created.
    let out = run(bin()
        .args(["serve", "--no-events", "--no-watch", "--root", "/proc/podfs-root/x", "--socket"])
        .arg(dir.path().join("other.sock")));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not on btrfs"), "{out:?}");
    assert!(!dir.path().join("other.sock").exists());
}
