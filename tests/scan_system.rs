//! `scan` against a real Podman service whose graphroot is on a loop-mounted btrfs:
//! imported images, labelled and unlabelled volumes and containers, a running container.

mod common;

use common::podman::{Podman, PodmanService};
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NEEDS: &[&str] = &["podman", "runc", "mkfs.btrfs", "losetup", "chattr", "busybox"];

fn scan(service: &PodmanService, extra: &[&str]) -> Value {
    let out = run(bin().args(["scan", "--format", "json", "--url", &service.url]).args(extra));
    assert!(out.status.success(), "scan failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("scan prints JSON")
}

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {list}"))
}

on_each_podman!(scan_names_every_object_with_class_size_and_placement);
fn scan_names_every_object_with_class_size_and_placement(podman: Podman) {
    if !can_run("scan against podman", NEEDS, true) || !podman.available("scan against podman") {
        return;
    }
    let service = PodmanService::start_on(podman, "overlay");
    service.import_busybox(&["localhost/postgres:16", "localhost/redis:7", "localhost/acme-app:1"]);

    // A database volume in a plain (copy-on-write) directory, found by image and mount path.
    service.ok(&["volume", "create", "pgdata"]);
    // A labelled database volume bound to a directory made NOCOW while empty.
    let nocow = service.top.join("nocow");
    std::fs::create_dir_all(&nocow).unwrap();
    ok(Command::new("chattr").arg("+C").arg(&nocow));
    std::fs::create_dir_all(nocow.join("pg2")).unwrap();
    let device = format!("device={}", nocow.join("pg2").display());
    service.ok(&[
        "volume",
        "create",
        "--label",
        "io.podfs.class=database",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &device,
        "pgsafe",
    ]);
    service.ok(&["volume", "create", "--label", "io.podfs.class=media", "films"]);
    service.ok(&["volume", "create", "redisdata"]);
    service.ok(&["volume", "create", "scratch"]);

    service.ok(&[
        "run",
        "-d",
        "--name",
        "pg",
        "--network=none",
        "-v",
        "pgdata:/var/lib/postgresql/data",
        "-v",
        "pgsafe:/srv/pg2",
        "localhost/postgres:16",
        "sleep",
        "1000",
    ]);
    service.ok(&[
        "create",
        "--name",
        "cache",
        "--network=none",
        "-v",
        "redisdata:/data",
        "localhost/redis:7",
        "true",
    ]);
    service.ok(&[
        "create",
        "--name",
        "web",
        "--label",
        "io.podfs.class=service",
        "localhost/acme-app:1",
        "true",
    ]);
    service.ok(&["create", "--name", "report", "--rm", "localhost/acme-app:1", "true"]);
    service.ok(&["create", "--name", "plain", "localhost/acme-app:1", "true"]);

    // Known sizes: write into the volumes' data directories.
    std::fs::write(service.volume_dir("pgdata").join("base"), vec![7u8; 300_000]).unwrap();
    std::fs::write(nocow.join("pg2").join("base"), vec![7u8; 200_000]).unwrap();
    std::fs::create_dir_all(service.volume_dir("films").join("a/b")).unwrap();
    std::fs::write(service.volume_dir("films").join("a/b/movie.mkv"), vec![1u8; 123_456]).unwrap();

    let report = scan(&service, &[]);
    assert_eq!(report["storage"]["driver"], "overlay");
    assert_eq!(report["storage"]["graphroot"], service.graphroot.to_str().unwrap());
    assert_eq!(report["graphroot"]["filesystem"], "btrfs");
    assert_eq!(report["graphroot"]["own_subvolume"], true);
    assert_eq!(report["podman_version"], service.version.as_str());

    let volumes = &report["volumes"];
    for (name, class, size) in [
        ("pgdata", "database", Some(300_000)),
        ("pgsafe", "database", Some(200_000)),
        ("films", "media", Some(123_456)),
        ("redisdata", "cache", Some(0)),
        ("scratch", "general", Some(0)),
    ] {
        let v = by_name(volumes, name);
        assert_eq!(v["class"], class, "class of volume {name}: {v}");
        assert_eq!(v["size"].as_u64(), size, "size of volume {name}");
        assert_eq!(v["placement"]["filesystem"], "btrfs", "{name}");
    }
    assert_eq!(by_name(volumes, "pgsafe")["placement"]["nocow"], true);
    assert_eq!(by_name(volumes, "pgdata")["placement"]["nocow"], false);
    assert_eq!(by_name(volumes, "pgdata")["used_by"], serde_json::json!(["pg"]));
    assert_eq!(by_name(volumes, "pgsafe")["evidence"][0]["kind"], "explicit");

    let containers = &report["containers"];
    for (name, class, state) in [
        ("pg", "database", "running"),
        ("cache", "cache", "created"),
        ("web", "service", "created"),
        ("report", "job", "created"),
        ("plain", "general", "created"),
    ] {
        let c = by_name(containers, name);
        assert_eq!(c["class"], class, "class of container {name}: {c}");
        assert_eq!(c["state"], state, "state of {name}");
    }
    let images: Vec<String> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["names"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert!(images.iter().any(|n| n.contains("postgres")), "{images:?}");

    // Database and cache volumes on copy-on-write storage are misplaced; the one under +C is not.
    let findings = report["findings"].as_array().unwrap();
    let misplaced: Vec<&str> = findings
        .iter()
        .filter(|f| f["code"] == "volume-cow")
        .map(|f| f["object"].as_str().unwrap())
        .collect();
    assert_eq!(misplaced, ["volume pgdata", "volume redisdata"], "{findings:?}");
    // Volumes live inside graphroot's subvolume: reported.
    assert!(
        findings.iter().any(|f| f["code"] == "shared-subvolume" && f["object"] == "volume path"),
        "{findings:?}"
    );

    // --no-sizes skips the walk.
    let report = scan(&service, &["--no-sizes"]);
    assert!(by_name(&report["volumes"], "pgdata")["size"].is_null());

    // The human report names the misplaced volume.
    let out = run(bin().args(["scan", "--url", &service.url]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("database volume pgdata is on copy-on-write storage"), "{text}");
}

on_each_podman!(unknown_class_label_is_an_input_error_naming_the_volume);
fn unknown_class_label_is_an_input_error_naming_the_volume(podman: Podman) {
    if !can_run("scan label error", NEEDS, true) || !podman.available("scan label error") {
        return;
    }
    let service = PodmanService::start_on(podman, "overlay");
    service.ok(&["volume", "create", "--label", "io.podfs.class=databse", "typo"]);
    let out = run(bin().args(["scan", "--url", &service.url]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("volume `typo`") && err.contains("did you mean `database`?"), "{err}");
}

on_each_podman!(the_harness_ends_its_processes_and_leaves_no_mount);
fn the_harness_ends_its_processes_and_leaves_no_mount(podman: Podman) {
    if !can_run("harness cleanup", NEEDS, true) || !podman.available("harness cleanup") {
        return;
    }
    let mut service = PodmanService::start_on(podman, "overlay");
    service.import_busybox(&["localhost/app:1"]);
    service.ok(&["run", "-d", "--name", "up", "--network=none", "localhost/app:1", "sleep", "1000"]);
    let sleeper: u32 = service.ok(&["inspect", "--format", "{{.State.Pid}}", "up"]).parse().unwrap();
    let conmon: u32 = service.ok(&["inspect", "--format", "{{.State.ConmonPid}}", "up"]).parse().unwrap();
    let mut pids = service.own_processes();
    assert_eq!(pids.len(), 2, "the service and the holder of its namespace: {pids:?}");
    let children = service.container_processes();
    assert!(children.contains(&conmon) && children.contains(&sleeper), "{children:?}");
    pids.extend(children);
    if podman == Podman::Trixie {
        // The cached root is read-only to everything that runs in it.
        let out = run(service.command("touch").arg("/etc/podfs-test"));
        assert!(!out.status.success(), "the trixie root is writable");
    }
    let dirs = [service.dir().to_path_buf(), service.fs.dir.path().to_path_buf()];
    let image = service.fs.dir.path().join("fs.img");
    // As after a crash: the container and its conmon outlive the service.
    service.stop();
    assert!(common::podman::alive(conmon) && common::podman::alive(sleeper));
    drop(service);

    for pid in pids {
        assert!(!common::podman::alive(pid), "process {pid} outlived the service");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for d in &dirs {
        assert!(!mounts.contains(d.to_str().unwrap()), "a mount below {} is left:\n{mounts}", d.display());
        assert!(!d.exists(), "{} is left", d.display());
    }
    let loops =
        ok(Command::new("losetup").arg("--list").arg("--noheadings").arg("--output").arg("BACK-FILE"));
    assert!(!loops.contains(image.to_str().unwrap()), "loop device of {} is left:\n{loops}", image.display());
}

#[test]
fn socket_problems_exit_3_with_what_to_do() {
    let dir = TempDir::new("sock");
    let missing = dir.path().join("podman.sock");
    let out = run(bin().args(["scan", "--url", &format!("unix://{}", missing.display())]));
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(missing.to_str().unwrap()) && err.contains("systemctl"), "{err}");

    // Something that is not Podman: answers garbage and hangs up.
    let garbage = dir.path().join("garbage.sock");
    let listener = std::os::unix::net::UnixListener::bind(&garbage).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"\x00\x13garbage that is not HTTP\r\n\r\n\xff\xfe");
        }
    });
    let out = run(bin().args(["scan", "--url", &format!("unix://{}", garbage.display())]));
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not answer like"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    drop(server);
}

on_each_podman!(permission_denied_exits_3);
fn permission_denied_exits_3(podman: Podman) {
    if !can_run("permission denied", &["podman", "runc", "mkfs.btrfs", "losetup", "setpriv"], true)
        || !podman.available("permission denied")
    {
        return;
    }
    let service = PodmanService::start_on(podman, "overlay");
    // The socket is root's; `nobody` may not connect.
    std::fs::set_permissions(&service.socket, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_podman-btrfs-advise"))
        .args(["scan", "--url", &service.url]));
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).to_lowercase().contains("permission denied"));
}

on_each_podman!(plan_from_the_live_host_places_its_data_by_class);
fn plan_from_the_live_host_places_its_data_by_class(podman: Podman) {
    if !can_run("plan from host", NEEDS, true) || !podman.available("plan from host") {
        return;
    }
    let service = PodmanService::start_on(podman, "overlay");
    service.import_busybox(&["localhost/postgres:16", "localhost/acme-app:1"]);
    service.ok(&["volume", "create", "pgdata"]);
    service.ok(&["volume", "create", "--label", "io.podfs.class=media", "films"]);
    service.ok(&[
        "create",
        "--name",
        "pg",
        "-v",
        "pgdata:/var/lib/postgresql/data",
        "localhost/postgres:16",
        "true",
    ]);
    service.ok(&["create", "--name", "web", "localhost/acme-app:1", "true"]);

    // No --spec and no --example: the live host is the input. graphroot's own disk is in
    // use, so a disk that is not on this machine is named (plan_disks_system tests the refusal).
    let out = run(bin().args(["plan", "--format", "json", "--url", &service.url, "--disk", "/dev/vdb"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let plan = &v["plan"];
    assert_eq!(plan["profile"]["source"]["kind"], "host");
    assert_eq!(
        plan["profile"]["host"]["mode"], "data-disk",
        "a live host is never planned whole-disk by default"
    );
    assert_eq!(plan["profile"]["host"]["disk"], "/dev/vdb");
    let workloads = &plan["profile"]["workloads"];
    assert_eq!(by_name(workloads, "pg")["class"], "database");
    assert_eq!(by_name(workloads, "web")["class"], "general");
    assert_eq!(by_name(workloads, "films")["class"], "media", "an unused volume is still data to place");
    let placement = plan["placements"].as_array().unwrap().iter().find(|p| p["workload"] == "pg").unwrap();
    assert_eq!(placement["subvolume"], "@podfs-database");
    let nocow: Vec<&str> = plan["layout"]["disks"][0]["partitions"][0]["content"]["subvolumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["nocow"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(nocow, ["@podfs-database"]);

    // --from-host says so explicitly and writes the files with a header naming the host.
    let dir = TempDir::new("fromhost");
    let out = run(bin()
        .args(["plan", "--from-host", "--url", &service.url, "--disk", "/dev/vdb", "--out"])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let disko = std::fs::read_to_string(dir.path().join("disko.nix")).unwrap();
    assert!(disko.contains("--from-host --url") && disko.contains("device = \"/dev/vdb\""), "{disko}");
}

/// A unix socket in front of a Podman socket: passes every byte on, and notes the request
/// line of each request that goes through.
struct CountingProxy {
    socket: std::path::PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    accepting: Option<std::thread::JoinHandle<()>>,
}

impl CountingProxy {
    fn start(dir: &Path, upstream: &Path) -> CountingProxy {
        let socket = dir.join("counting.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped, upstream) = (requests.clone(), stop.clone(), upstream.to_path_buf());
        let accepting = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (log, upstream) = (log.clone(), upstream.clone());
                        std::thread::spawn(move || Self::relay(client, &upstream, &log));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        CountingProxy { socket, requests, stop, accepting: Some(accepting) }
    }

    /// Copies one connection both ways; the client's requests (GET and POST without a
    /// body, as the tool sends them) are noted by their request line.
    fn relay(mut client: UnixStream, upstream: &Path, log: &Mutex<Vec<String>>) {
        client.set_nonblocking(false).unwrap();
        let Ok(mut server) = UnixStream::connect(upstream) else { return };
        let (mut from_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
        let answers = std::thread::spawn(move || {
            let _ = std::io::copy(&mut from_server, &mut to_client);
            let _ = to_client.shutdown(std::net::Shutdown::Write);
        });
        let mut pending = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = match client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                log.lock().unwrap().push(head.lines().next().unwrap_or_default().to_string());
                pending.drain(..end + 4);
            }
            if server.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server.shutdown(std::net::Shutdown::Write);
        let _ = answers.join();
    }

    fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The request lines seen since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accepting.take() {
            let _ = t.join();
        }
    }
}

/// The requests one `scan` makes through `proxy`, checking that it succeeds.
fn scan_requests(proxy: &CountingProxy) -> (Vec<String>, Value) {
    proxy.take();
    let out = run(bin().args(["scan", "--format", "json", "--url", &proxy.url()]));
    assert!(out.status.success(), "scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut requests = proxy.take();
    requests.sort();
    (requests, serde_json::from_slice(&out.stdout).unwrap())
}

on_each_podman!(a_scan_makes_as_many_calls_for_30_containers_as_for_3);
fn a_scan_makes_as_many_calls_for_30_containers_as_for_3(podman: Podman) {
    if !can_run("scan call count", NEEDS, true) || !podman.available("scan call count") {
        return;
    }
    let service = PodmanService::start_on(podman, "overlay");
    service.import_busybox(&["localhost/app:1"]);
    let proxy = CountingProxy::start(service.dir(), &service.socket);
    let add = |range: std::ops::Range<usize>| {
        for i in range {
            let (name, volume) = (format!("c{i}"), format!("v{i}:/data"));
            let restart = ["no", "always", "on-failure", "unless-stopped"][i % 4];
            service.ok(&[
                "create",
                "--network=none",
                "--name",
                &name,
                "--restart",
                restart,
                "-v",
                &volume,
                "localhost/app:1",
                "true",
            ]);
        }
    };
    add(0..3);
    let (few, report) = scan_requests(&proxy);
    assert_eq!(report["containers"].as_array().unwrap().len(), 3);
    add(3..30);
    let (many, report) = scan_requests(&proxy);
    assert_eq!(report["containers"].as_array().unwrap().len(), 30);
    assert_eq!(report["volumes"].as_array().unwrap().len(), 30);
    for i in 0..30 {
        let c = by_name(&report["containers"], &format!("c{i}"));
        assert_eq!(c["restart_policy"], ["no", "always", "on-failure", "unless-stopped"][i % 4], "{c}");
    }
    assert_eq!(by_name(&report["volumes"], "v29")["used_by"][0], "c29");
    eprintln!("Podman {}: {} calls for 3 and for 30 containers: {many:#?}", service.version, many.len());
    assert_eq!(few, many, "the same calls whatever the number of containers");
    // _ping, info, images, volumes, two container lists, and two lists by restart policy
    // (three before Podman 5, where an explicit `no` differs from none).
    let expected = if service.version.starts_with("4.") { 9 } else { 8 };
    assert_eq!(many.len(), expected, "{many:#?}");
    assert!(many.iter().all(|r| r.starts_with("GET ")), "{many:#?}");
    assert!(!many.iter().any(|r| r.contains("/version") || r.contains("system/df")), "{many:#?}");

    // A tmpfs mount is what only an inspection tells (its options): one call more.
    service.ok(&[
        "create",
        "--network=none",
        "--name",
        "scratch",
        "--tmpfs",
        "/scratch:ro",
        "localhost/app:1",
        "true",
    ]);
    let id = service.ok(&["inspect", "--format", "{{.Id}}", "scratch"]);
    let (with_tmpfs, report) = scan_requests(&proxy);
    let extra: Vec<&String> = with_tmpfs.iter().filter(|r| !many.contains(r)).collect();
    assert_eq!(extra.len(), 1, "{with_tmpfs:#?}");
    assert!(extra[0].contains(&format!("/containers/{id}/json")), "{extra:?}");
    let tmpfs = &by_name(&report["containers"], "scratch")["mounts"][0];
    assert_eq!(
        (tmpfs["kind"].as_str(), tmpfs["read_write"].as_bool()),
        (Some("tmpfs"), Some(false)),
        "{tmpfs}"
    );
}

/// `referenced` of the qgroup of the subvolume at `path`, as btrfs-progs prints it.
fn qgroup_referenced(top: &Path, path: &Path) -> u64 {
    let id = ok(Command::new("btrfs").args(["inspect-internal", "rootid"]).arg(path)).trim().to_string();
    let shown = ok(Command::new("btrfs").args(["qgroup", "show", "--raw"]).arg(top));
    shown
        .lines()
        .find_map(|l| {
            let mut cols = l.split_whitespace();
            (cols.next() == Some(&format!("0/{id}"))).then(|| cols.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no qgroup 0/{id} in {shown}"))
}

on_each_podman!(a_subvolume_with_quotas_on_is_sized_from_its_qgroup);
fn a_subvolume_with_quotas_on_is_sized_from_its_qgroup(podman: Podman) {
    if !can_run("scan qgroup sizes", NEEDS, true) || !podman.available("scan qgroup sizes") {
        return;
    }
    let service = PodmanService::start_on(podman, "overlay");
    // Quotas on this test's own btrfs; the tool never turns them on.
    ok(Command::new("btrfs").args(["quota", "enable"]).arg(&service.top));
    let bind_volume = |name: &str, dir: &Path| {
        let device = format!("device={}", dir.display());
        service.ok(&["volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", &device, name]);
    };
    let random = |path: &Path, bytes: usize| {
        let mut data = vec![0u8; bytes];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ bytes as u64;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(path, data).unwrap();
    };
    // A subvolume of its own: its qgroup is read.
    let counted = service.top.join("counted");
    ok(Command::new("btrfs").args(["subvolume", "create"]).arg(&counted));
    random(&counted.join("a"), 1 << 20);
    random(&counted.join("b"), 100_000);
    bind_volume("counted", &counted);
    // A subvolume holding another: its qgroup leaves the inner one out, so it is walked.
    let outer = service.top.join("outer");
    ok(Command::new("btrfs").args(["subvolume", "create"]).arg(&outer));
    ok(Command::new("btrfs").args(["subvolume", "create"]).arg(outer.join("inner")));
    random(&outer.join("inner/c"), 50_000);
    random(&outer.join("d"), 7_000);
    bind_volume("outer", &outer);
    // A plain directory: walked.
    service.ok(&["volume", "create", "plain"]);
    random(&service.volume_dir("plain").join("e"), 3_000);
    // Qgroup numbers are those of the last transaction commit.
    ok(Command::new("btrfs").args(["filesystem", "sync"]).arg(&service.top));

    let report = scan(&service, &[]);
    let volume = |name: &str| by_name(&report["volumes"], name).clone();
    let expected = qgroup_referenced(&service.top, &counted);
    let counted = volume("counted");
    assert_eq!(counted["size_from"], "qgroup", "{counted}");
    assert_eq!(counted["size"], expected, "{counted}");
    assert!(expected >= (1 << 20) + 100_000, "the qgroup counts the files' bytes: {expected}");
    let outer = volume("outer");
    assert_eq!(
        (outer["size_from"].as_str(), outer["size"].as_u64()),
        (Some("walk"), Some(57_000)),
        "{outer}"
    );
    let plain = volume("plain");
    assert_eq!((plain["size_from"].as_str(), plain["size"].as_u64()), (Some("walk"), Some(3_000)), "{plain}");

    let without = scan(&service, &["--no-sizes"]);
    let counted = by_name(&without["volumes"], "counted");
    assert!(counted["size"].is_null() && counted["size_from"].is_null(), "{counted}");
}
