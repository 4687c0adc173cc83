//! The Podman socket client against a small HTTP server on a unix socket in a temporary
//! directory, serving Podman 4.3.1's recorded answers or the broken answers a real Podman
//! cannot be made to give; and the happy path against a real Podman service.

mod common;

use podfs::error::Error;
use podfs::inventory::live::{LiveHost, Mount};
use podfs::podman::{Discovered, Endpoint, Timeouts, discover};
use podfs::podman::{fetch, fetch_with};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/podman-4.3.1");
const API: &str = "/v4.3.1/libpod";
const BUSYBOX: &str = "c5f002bdd7de653f2e8b5447576b04c2ab4ab62735b73d6737c8bd73385052a2";
/// The Docker-compatible container list, as the client asks for it.
const COMPAT_LIST: &str = "/v4.3.1/containers/json";

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(FIXTURES).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the server does with one request.
enum Reply {
    /// Write these bytes, then close.
    Bytes(Vec<u8>),
    /// Read the request and never answer.
    Hang,
}

fn http(status: &str, content_type: &str, body: impl AsRef<[u8]>) -> Reply {
    let body = body.as_ref();
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nLibpod-Api-Version: 4.3.1\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    Reply::Bytes(out)
}

fn json(body: impl AsRef<[u8]>) -> Reply {
    http("200 OK", "application/json", body)
}

fn ping(version: &str) -> Reply {
    Reply::Bytes(
        format!(
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nLibpod-Api-Version: {version}\r\n\
             Cache-Control: no-cache\r\nPragma: no-cache\r\nDocker-Experimental: true\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK"
        )
        .into_bytes(),
    )
}

type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A throwaway directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "podfs-pc-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fake Podman service on a unix socket, answering each request through `handler`.
struct Server {
    _dir: TempDir,
    socket: PathBuf,
    /// Every request path, query included.
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Server {
        let dir = TempDir::new();
        let socket = dir.0.join("podman.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let handler: Handler = Arc::new(handler);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split(' ').nth(1).unwrap_or_default().to_string();
                    log.lock().unwrap().push(path.clone());
                    match handler(&path) {
                        Reply::Bytes(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                            let _ = stream.shutdown().await;
                        }
                        Reply::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
                    }
                });
            }
        });
        Server { _dir: dir, socket, requests, task }
    }

    fn discovered(&self) -> Discovered {
        Discovered { endpoint: Endpoint::Unix(self.socket.clone()), why: "--url".into() }
    }

    /// A TCP port on 127.0.0.1 that forwards each connection to the socket, for
    /// `tcp://` endpoints; stops with the test's runtime.
    async fn tcp_front(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let socket = self.socket.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let socket = socket.clone();
                tokio::spawn(async move {
                    if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                    }
                });
            }
        });
        addr
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn quick() -> Timeouts {
    Timeouts { first_answer: Duration::from_secs(5), request: Duration::from_secs(5) }
}

async fn fetch_from(server: &Server) -> Result<LiveHost, Error> {
    fetch_with(&server.discovered(), quick()).await
}

fn environment_error(result: Result<LiveHost, Error>) -> String {
    match result {
        Err(e @ Error::Environment(_)) => {
            assert_eq!(e.exit_code(), 3);
            eprintln!("{e}");
            e.to_string()
        }
        Err(other) => panic!("expected an environment error, got {other:?}"),
        Ok(host) => panic!("expected an error, got {host:#?}"),
    }
}

fn assert_not_podman(msg: &str) {
    assert!(msg.contains("does not answer like a Podman API socket"), "{msg}");
    assert!(msg.contains("unix://"), "the message names the endpoint: {msg}");
}

/// The name and id of every recorded inspection, and its body.
fn recorded_inspections() -> Vec<(String, String, Vec<u8>)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(name) = name.strip_prefix("inspect-").and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if name == "404" {
            continue;
        }
        let body = fixture(&format!("inspect-{name}.json"));
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        all.push((name.to_string(), value["Id"].as_str().unwrap().to_string(), body));
    }
    all
}

/// Podman 4.3.1 as recorded; inspecting the containers named in `inspect_missing`
/// answers 404, as if they were removed after the lists.
fn recorded(inspect_missing: &'static [&'static str]) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    let inspects = recorded_inspections();
    move |path: &str| {
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        if route == COMPAT_LIST {
            return json(fixture("compat-containers.json"));
        }
        let Some(route) = route.strip_prefix(API) else {
            return http("404 Not Found", "text/plain", "404 page not found\n");
        };
        match route {
            "/_ping" => Reply::Bytes(fixture("ping.http")),
            "/version" => json(fixture("version.json")),
            "/info" => json(fixture("info.json")),
            "/images/json" => json(fixture("images.json")),
            "/containers/json" => match ["always%22%2C%22on-failure", "always%22%2C%22unless-stopped", "no"]
                .iter()
                .find(|p| query.contains(&format!("%22restart-policy%22%3A%5B%22{p}%22%5D")))
            {
                Some(values) => json(fixture(&format!("restart-{}.json", values.replace("%22%2C%22", ",")))),
                None => json(fixture("containers.json")),
            },
            "/volumes/json" => json(fixture("volumes.json")),
            _ => {
                let id = route.strip_prefix("/containers/").and_then(|r| r.strip_suffix("/json"));
                match inspects.iter().find(|(_, i, _)| Some(i.as_str()) == id) {
                    Some((name, _, body)) if !inspect_missing.contains(&name.as_str()) => json(body),
                    _ => http("404 Not Found", "application/json", fixture("inspect-404.json")),
                }
            }
        }
    }
}

#[tokio::test]
async fn recorded_answers_make_the_expected_host() {
    let server = Server::start(recorded(&[]));
    let host = fetch_from(&server).await.unwrap();

    assert_eq!(host.endpoint, format!("unix://{}", server.socket.display()));
    assert_eq!(host.podman_version, "4.3.1");
    assert!(!host.rootless);
    assert_eq!(host.storage.driver, "overlay");
    assert_eq!(host.storage.graphroot, "/tmp/pt/mnt/storage");
    assert_eq!(host.storage.runroot, "/tmp/pt/run");
    assert_eq!(host.storage.backing_filesystem.as_deref(), Some("btrfs"));
    assert_eq!(host.storage.volume_path.as_deref(), Some("/tmp/pt/mnt/storage/volumes"));

    assert_eq!(host.images.len(), 3, "busybox, the pause image of the pod, a dangling one");
    let busybox = &host.images[0];
    assert_eq!(busybox.id, BUSYBOX);
    assert_eq!(busybox.names, ["localhost/busybox:test", "localhost/fixture-tag:1"]);
    assert_eq!((busybox.size, busybox.shared_size, busybox.containers), (1987655, 0, 10));
    assert!(host.images.iter().any(|i| i.names.is_empty()), "the dangling image has no names");

    let names: Vec<&str> = host.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), 11, "{names:?}");
    assert_eq!(names[..4], ["e2990ce368b0-infra", "fixture-anon", "fixture-exited", "fixture-inpod"]);
    let by_name = |name: &str| host.containers.iter().find(|c| c.name == name).unwrap();
    let web = by_name("fixture-web");
    assert_eq!(web.image, "localhost/busybox:test");
    assert_eq!(web.image_id, BUSYBOX);
    assert_eq!(web.state, "running");
    assert_eq!(web.restart_policy, "always");
    assert_eq!(web.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(web.rw_size, Some(12));
    let kinds: Vec<(&str, &str, bool)> =
        web.mounts.iter().map(|m| (m.kind.as_str(), m.destination.as_str(), m.read_write)).collect();
    assert_eq!(kinds, [("volume", "/cache", true), ("bind", "/srv", false), ("tmpfs", "/run/scratch", true)]);
    let sleeper = by_name("sleeper");
    assert_eq!(
        sleeper.mounts,
        [Mount {
            kind: "volume".into(),
            source: "/tmp/pt/mnt/storage/volumes/pgdata/_data".into(),
            destination: "/var/lib/postgresql/data".into(),
            volume: Some("pgdata".into()),
            read_write: true,
        }]
    );
    assert_eq!(sleeper.restart_policy, "");
    assert_eq!(by_name("fixture-anon").restart_policy, "on-failure");
    assert_eq!(by_name("fixture-unless").restart_policy, "unless-stopped");
    assert_eq!(by_name("fixture-no").restart_policy, "no");
    let rm = by_name("fixture-rm");
    assert!(rm.auto_remove);
    assert_eq!((rm.state.as_str(), rm.rw_size), ("created", Some(0)));
    assert_eq!(by_name("fixture-exited").labels.get("job").map(String::as_str), Some("once"));

    let volume = |name: &str| host.volumes.iter().find(|v| v.name == name).unwrap();
    let pgdata = volume("pgdata");
    assert_eq!(pgdata.labels.get("io.podfs.class").map(String::as_str), Some("database"));
    assert_eq!(pgdata.mountpoint, "/tmp/pt/mnt/storage/volumes/pgdata/_data");
    assert_eq!(pgdata.used_by, ["fixture-inpod", "fixture-no", "sleeper"]);
    assert_eq!(pgdata.size, None);
    let cache = volume("fixture-cache");
    assert_eq!(cache.used_by, ["fixture-web"]);
    assert_eq!(cache.options.get("type").map(String::as_str), Some("none"));

    // The lists, once each, and an inspection only for the containers with a tmpfs.
    let requests = server.requests();
    assert!(requests.contains(&format!("{API}/containers/json?all=true&size=true")), "{requests:?}");
    assert!(requests.contains(&format!("{COMPAT_LIST}?all=true")), "{requests:?}");
    assert!(!requests.iter().any(|r| r.contains("system/df") || r.contains("/version")), "{requests:?}");
    let inspected: Vec<&str> = requests
        .iter()
        .filter(|r| r.starts_with(&format!("{API}/containers/")) && r.ends_with("/json"))
        .map(|r| host.containers.iter().find(|c| r.contains(&c.id)).unwrap().name.as_str())
        .collect();
    let mut inspected = inspected;
    inspected.sort();
    assert_eq!(inspected, ["fixture-read-only", "fixture-tmpfs-ro", "fixture-web"], "{requests:?}");
    // _ping, info, images, volumes, two container lists, three by restart policy.
    assert_eq!(requests.len(), 9 + 3, "{requests:?}");
}

/// What snapshot and restore list: the same containers and mounts, without sizes or the
/// restart-policy lists.
#[tokio::test]
async fn the_brief_container_list_asks_for_no_sizes_and_no_restart_policies() {
    let server = Server::start(recorded(&[]));
    let client = podfs::podman::Client::new(server.discovered(), quick());
    let brief = client.containers_brief().await.unwrap();
    let full = fetch_from(&server).await.unwrap().containers;
    let shape = |cs: &[podfs::inventory::live::Container]| -> Vec<(String, String, Vec<Mount>)> {
        let mut all: Vec<_> =
            cs.iter().map(|c| (c.name.clone(), c.state.clone(), c.mounts.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    };
    assert_eq!(shape(&brief), shape(&full));
    assert!(brief.iter().all(|c| c.restart_policy.is_empty()), "{brief:?}");
    let requests = server.requests();
    let brief_requests: Vec<&String> = requests.iter().take_while(|r| !r.contains("/_ping")).collect();
    assert!(brief_requests.contains(&&format!("{API}/containers/json?all=true&size=false")), "{requests:?}");
    assert!(
        !brief_requests.iter().any(|r| r.contains("size=true") || r.contains("restart-policy")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn tcp_endpoints_work_too() {
    let server = Server::start(recorded(&[]));
    let addr = server.tcp_front().await;
    let d = discover(Some(&format!("tcp://{addr}")), &|_| None, false).unwrap();
    let host = fetch_with(&d, quick()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(host.endpoint, format!("tcp://{addr}"));
    assert_eq!(host.containers.len(), 11);
    let pgdata = host.volumes.iter().find(|v| v.name == "pgdata").unwrap();
    assert_eq!(pgdata.used_by, ["fixture-inpod", "fixture-no", "sleeper"]);

    // Nothing listens on a port that was just closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let d = discover(Some(&format!("tcp://{closed}")), &|_| None, false).unwrap();
    let msg = environment_error(fetch_with(&d, quick()).await);
    assert!(msg.contains(&format!("nothing listens at tcp://{closed}")), "{msg}");
}

#[tokio::test]
async fn a_container_removed_before_its_inspection_is_left_out() {
    let server = Server::start(recorded(&["fixture-tmpfs-ro"]));
    let host = fetch_from(&server).await.unwrap();
    let names: Vec<&str> = host.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(!names.contains(&"fixture-tmpfs-ro") && names.contains(&"fixture-web"), "{names:?}");
}

fn random_bytes() -> Reply {
    let mut x: u32 = 0x2545_f491;
    let bytes = (0..300)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0xff) as u8
        })
        .collect();
    Reply::Bytes(bytes)
}

#[tokio::test]
async fn random_bytes_are_not_podman() {
    let server = Server::start(|_| random_bytes());
    let msg = environment_error(fetch_from(&server).await);
    assert_not_podman(&msg);
    assert!(msg.contains("not HTTP"), "{msg}");

    // The same after a good first answer.
    let server = Server::start(pinging(|_| random_bytes()));
    let msg = environment_error(fetch_from(&server).await);
    assert_not_podman(&msg);
    assert!(
        ["`info`", "`images/json`", "`containers/json", "`volumes/json`"].iter().any(|c| msg.contains(c)),
        "{msg}"
    );
}

#[tokio::test]
async fn a_peer_that_closes_at_once_is_not_podman() {
    let server = Server::start(|_| Reply::Bytes(Vec::new()));
    let msg = environment_error(fetch_from(&server).await);
    assert_not_podman(&msg);
    assert!(msg.contains("without answering"), "{msg}");
}

#[tokio::test]
async fn a_docker_like_ping_is_not_podman() {
    let server = Server::start(|path| {
        if path.ends_with("/_ping") {
            Reply::Bytes(b"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 2\r\n\r\nOK".to_vec())
        } else {
            http("400 Bad Request", "application/json", r#"{"message":"client version 4.3.1 is too new"}"#)
        }
    });
    let msg = environment_error(fetch_from(&server).await);
    assert_not_podman(&msg);
    assert!(msg.contains("Libpod-Api-Version"), "{msg}");

    let server = Server::start(|_| http("404 Not Found", "text/plain", "404 page not found\n"));
    let msg = environment_error(fetch_from(&server).await);
    assert_not_podman(&msg);
    assert!(msg.contains("HTTP 404"), "{msg}");

    let server = Server::start(|_| http("200 OK", "text/html", "<html>hello</html>"));
    let msg = environment_error(fetch_from(&server).await);
    assert_not_podman(&msg);
    assert!(msg.contains("instead of OK"), "{msg}");
}

/// Answers `_ping` like Podman 4.3.1 and everything else through `rest`.
fn pinging(
    rest: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    move |path: &str| if path.ends_with("/_ping") { ping("4.3.1") } else { rest(path) }
}

#[tokio::test]
async fn http_without_json_is_not_podman() {
    let server = Server::start(pinging(|_| http("200 OK", "text/html", "<html>not json</html>")));
    let msg = environment_error(fetch_from(&server).await);
    assert_not_podman(&msg);
    assert!(msg.contains("answered not JSON"), "{msg}");
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_not_podman() {
    for answer in ["[]", r#"{"Version": 5}"#, "null", "\"4.3.1\"", "{}"] {
        let server = Server::start(pinging(move |_| json(answer)));
        let msg = environment_error(fetch_from(&server).await);
        assert_not_podman(&msg);
    }

    // Right version, but the lists are objects.
    let server = Server::start(pinging(|path| {
        if path.contains("/version") { json(fixture("version.json")) } else { json(r#"{"items":[]}"#) }
    }));
    let msg = environment_error(fetch_from(&server).await);
    assert_not_podman(&msg);
    assert!(msg.contains("JSON of an unexpected shape"), "{msg}");
}

/// Podman 4.3.1's version and the given bodies for the rest: `containers` for the libpod
/// list, `compat` for the Docker-compatible one, no container for any restart policy.
fn answering(
    info: &'static str,
    images: &'static str,
    containers: &'static str,
    compat: &'static str,
    inspect: &'static str,
    volumes: &'static str,
) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    pinging(move |path| {
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        if route == COMPAT_LIST {
            return json(compat);
        }
        match route.strip_prefix(API).unwrap_or_default() {
            "/version" => json(fixture("version.json")),
            "/info" => json(info),
            "/images/json" => json(images),
            "/containers/json" if query.contains("restart-policy") => json("[]"),
            "/containers/json" => json(containers),
            "/volumes/json" => json(volumes),
            _ => json(inspect),
        }
    })
}

#[tokio::test]
async fn nulls_gaps_and_negative_sizes_give_sane_values() {
    let server = Server::start(answering(
        r#"{"host":{"security":null},"store":{"graphDriverName":null,"graphStatus":null,"volumePath":""}}"#,
        r#"[{"Id":null,"RepoTags":null,"Size":-5,"SharedSize":null,"Containers":null},{}]"#,
        r#"[{"Id":"c0ffee0000000000","Names":null,"Labels":null,"Size":{"rwSize":-5,"rootFsSize":null}},
            {"Id":"c1","Names":["/one"],"Size":null,"Image":null,"State":null}]"#,
        r#"[{"Id":"c1","Mounts":[{"Type":"volume","Name":"v","Destination":null,"RW":null},null]}]"#,
        r#"{"Mounts":[{"Type":"volume","Name":"v","Destination":null,"RW":null}],"HostConfig":null}"#,
        r#"[{"Name":"v","Driver":"local","Mountpoint":"/v","Scope":"local","Labels":null,"Options":null}]"#,
    ));
    let host = fetch_from(&server).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(host.storage, Default::default());
    assert_eq!(host.images.len(), 2);
    assert!(host.images.iter().all(|i| i.size == 0 && i.shared_size == 0 && i.containers == 0));
    assert!(host.images.iter().all(|i| i.id.is_empty() && i.names.is_empty()));
    assert_eq!(host.containers[0].rw_size, Some(0));
    assert_eq!(host.containers[0].name, "c0ffee000000");
    assert_eq!((host.containers[1].name.as_str(), host.containers[1].rw_size), ("one", None));
    assert_eq!(host.containers[1].mounts.len(), 1, "the null mount is skipped");
    assert_eq!(host.containers[1].mounts[0].volume.as_deref(), Some("v"));
    assert!(host.containers[1].mounts[0].read_write);
    assert_eq!(host.volumes[0].used_by, ["c0ffee000000", "one"]);

    // The same without the null mount must be read.
    let server = Server::start(answering(
        r#"{"store":{}}"#,
        "[]",
        r#"[{"Id":"c1","Names":["one"],"Size":{"rwSize":-5}}]"#,
        "[]",
        r#"{"Mounts":null,"HostConfig":{"RestartPolicy":null}}"#,
        "[]",
    ));
    let host = fetch_from(&server).await.unwrap();
    assert_eq!(host.containers[0].rw_size, Some(0));
    assert!(host.containers[0].mounts.is_empty());
    assert_eq!(host.storage.driver, "");
}

#[tokio::test]
async fn huge_and_odd_numbers_never_panic() {
    for images in [
        r#"[{"Id":"a","Size":1e30}]"#,
        r#"[{"Id":"a","Size":18446744073709551616}]"#,
        r#"[{"Id":"a","Size":9223372036854775808}]"#,
        r#"[{"Id":"a","Size":"12"}]"#,
        "null",
    ] {
        let server = Server::start(answering(r#"{"store":{}}"#, images, "[]", "[]", "{}", "[]"));
        let msg = environment_error(fetch_from(&server).await);
        assert_not_podman(&msg);
        assert!(msg.contains("images/json"), "{images}: {msg}");
    }
    let server = Server::start(answering(
        r#"{"store":{}}"#,
        r#"[{"Id":"a","Size":9223372036854775807,"Containers":-1}]"#,
        r#"[{"Id":"c","Size":{"rwSize":9223372036854775807}}]"#,
        "[]",
        "{}",
        "[]",
    ));
    let host = fetch_from(&server).await.unwrap();
    assert_eq!((host.images[0].size, host.images[0].containers), (i64::MAX as u64, 0));
    assert_eq!(host.containers[0].rw_size, Some(i64::MAX as u64));
}

#[tokio::test]
async fn a_missing_store_is_not_podman() {
    let server = Server::start(answering("{}", "[]", "[]", "[]", "{}", "[]"));
    let msg = environment_error(fetch_from(&server).await);
    assert_not_podman(&msg);
    assert!(msg.contains("store"), "{msg}");
}

#[tokio::test]
async fn a_failing_call_names_the_call_and_the_status() {
    let server = Server::start(pinging(|path| {
        if path.contains("/containers/json") {
            http(
                "500 Internal Server Error",
                "application/json",
                r#"{"cause":"boom","message":"boom","response":500}"#,
            )
        } else if path.contains("/version") {
            json(fixture("version.json"))
        } else if path.contains("/info") {
            json(fixture("info.json"))
        } else {
            json("[]")
        }
    }));
    let msg = environment_error(fetch_from(&server).await);
    assert!(msg.contains("failed `containers/json") && msg.contains("`: HTTP 500: boom"), "{msg}");
}

#[tokio::test]
async fn podman_3_is_too_old() {
    let server = Server::start(|path| {
        if path.ends_with("/_ping") {
            ping("3.4.4")
        } else {
            json(r#"{"Version":"3.4.4","ApiVersion":"1.40"}"#)
        }
    });
    let msg = environment_error(fetch_from(&server).await);
    assert!(msg.contains("Podman 3.4.4"), "{msg}");
    assert!(msg.contains("is older than 4.3, the oldest version this tool reads"), "{msg}");

    // A ping that claims 4.3.1 does not hide an old version that `info` names.
    let server = Server::start(pinging(|path| {
        if path.contains("/info") {
            json(
                r#"{"store":{"graphDriverName":"overlay","graphRoot":"/g","runRoot":"/r"},"version":{"Version":"4.2.0"}}"#,
            )
        } else {
            json("[]")
        }
    }));
    let msg = environment_error(fetch_from(&server).await);
    assert!(msg.contains("Podman 4.2.0") && msg.contains("older than 4.3"), "{msg}");
}

#[tokio::test]
async fn no_socket_says_how_to_start_one() {
    let dir = TempDir::new();
    let d = Discovered { endpoint: Endpoint::Unix(dir.0.join("podman.sock")), why: "rootful default".into() };
    let msg = environment_error(fetch(&d).await);
    assert!(msg.contains(&format!("no Podman socket at {}", dir.0.join("podman.sock").display())), "{msg}");
    assert!(msg.contains("systemctl enable --now podman.socket"), "{msg}");
    assert!(msg.contains("systemctl --user enable --now podman.socket"), "{msg}");
    assert!(msg.contains("--url") && msg.contains("CONTAINER_HOST"), "{msg}");
}

#[tokio::test]
async fn a_stale_socket_or_a_plain_file_is_no_socket() {
    let dir = TempDir::new();
    let stale = dir.0.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let d = Discovered { endpoint: Endpoint::Unix(stale), why: "--url".into() };
    let msg = environment_error(fetch(&d).await);
    assert!(msg.contains("no Podman socket at") && msg.contains("nothing listens"), "{msg}");
    assert!(msg.contains("systemctl"), "{msg}");

    let plain = dir.0.join("plain.sock");
    std::fs::write(&plain, "").unwrap();
    let d = Discovered { endpoint: Endpoint::Unix(plain), why: "--url".into() };
    let msg = environment_error(fetch(&d).await);
    assert!(msg.contains("no Podman socket at") && msg.contains("not a socket"), "{msg}");
}

#[tokio::test]
async fn a_silent_peer_times_out() {
    let server = Server::start(|_| Reply::Hang);
    let started = Instant::now();
    let timeouts = Timeouts { first_answer: Duration::from_millis(300), request: Duration::from_millis(300) };
    let msg = match fetch_with(&server.discovered(), timeouts).await {
        Err(e @ Error::Environment(_)) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(msg.contains("did not answer `_ping` within 0.3 s"), "{msg}");

    // The same once the first answers came.
    let server = Server::start(pinging(|path| {
        if path.contains("/version") { json(fixture("version.json")) } else { Reply::Hang }
    }));
    let timeouts = Timeouts { first_answer: Duration::from_secs(5), request: Duration::from_millis(300) };
    let msg = match fetch_with(&server.discovered(), timeouts).await {
        Err(e @ Error::Environment(_)) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(msg.contains("did not answer") && msg.contains("within 0.3 s"), "{msg}");
}

/// The happy path against a real Podman service on a temporary socket.
#[test]
fn a_real_podman_service() {
    if !common::can_run("real podman service", &["podman", "runc", "mkfs.btrfs", "losetup", "busybox"], true)
    {
        return;
    }
    let service = common::podman::PodmanService::start("overlay");
    service.import_busybox(&["localhost/busybox:real"]);
    service.ok(&["volume", "create", "--label", "io.podfs.class=database", "realdata"]);
    service.ok(&[
        "run",
        "-d",
        "--name",
        "real",
        "--network=none",
        "-v",
        "realdata:/data",
        "localhost/busybox:real",
        "sleep",
        "60",
    ]);
    let url = service.url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let d = discover(Some(&url), &|_| None, true).unwrap();
    let host = runtime.block_on(fetch(&d)).unwrap_or_else(|e| panic!("{e}"));
    let c = host.containers.iter().find(|c| c.name == "real").expect("the running container");
    assert_eq!(c.state, "running");
    assert!(c.mounts.iter().any(|m| m.volume.as_deref() == Some("realdata") && m.destination == "/data"));
    let v = host.volumes.iter().find(|v| v.name == "realdata").expect("the volume");
    assert_eq!(v.labels.get("io.podfs.class").map(String::as_str), Some("database"));
    assert_eq!(v.used_by, ["real"]);
    assert_eq!(host.storage.graphroot, service.graphroot.to_str().unwrap());
    assert!(host.images.iter().any(|i| i.names.iter().any(|n| n.contains("busybox:real"))));
    eprintln!(
        "Podman {} at {url}: {} containers, {} volumes, {} images, driver {} on {:?}",
        host.podman_version,
        host.containers.len(),
        host.volumes.len(),
        host.images.len(),
        host.storage.driver,
        host.storage.backing_filesystem
    );
    assert_eq!(host.endpoint, d.endpoint.url());
    assert!(!host.podman_version.is_empty());
    assert!(!host.storage.driver.is_empty() && !host.storage.graphroot.is_empty(), "{:?}", host.storage);
    assert!(!host.containers.is_empty(), "expected at least one container at {url}");
    assert!(!host.volumes.is_empty(), "expected at least one volume at {url}");
    assert!(!host.images.is_empty(), "expected at least one image at {url}");
    for c in &host.containers {
        assert!(!c.id.is_empty() && !c.name.is_empty() && !c.state.is_empty(), "{c:?}");
        assert!(c.rw_size.is_some(), "sizes were asked for: {c:?}");
    }
    for v in &host.volumes {
        assert!(!v.mountpoint.is_empty() && v.size.is_none(), "{v:?}");
        for user in &v.used_by {
            let c = host.containers.iter().find(|c| &c.name == user).unwrap();
            assert!(c.mounts.iter().any(|m| m.volume.as_deref() == Some(v.name.as_str())), "{c:?}");
        }
    }
    let mounting = host.containers.iter().flat_map(|c| &c.mounts).filter(|m| m.volume.is_some()).count();
    let used = host.volumes.iter().map(|v| v.used_by.len()).sum::<usize>();
    assert!(used <= mounting, "used_by ({used}) is built from the mounts ({mounting})");
}
