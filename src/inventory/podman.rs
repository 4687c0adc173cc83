//! The Podman socket client: finds the socket the way Podman's own tools do, reads what
//! the host runs and turns it into our model ([`LiveHost`]). The client library stays
//! private to this module, so everything downstream speaks only our model.
//!
//! Calls, all `GET` under podman-api's `/v4.3.1/libpod` prefix:
//!
//! - `_ping`: raw HTTP/1.1. podman-api's `ping` ignores the body and folds every failure
//!   into one error; the first contact must tell "no socket", "permission denied",
//!   "not HTTP" and "not Podman" apart.
//! - `version`, `info`, `images/json`, `containers/json?all=true&size=true`,
//!   `volumes/json`: podman-api, whose typed models read 4.3.1's answers.
//! - `containers/{id}/json`: raw HTTP/1.1, 16 at a time, read into
//!   tolerant structs. podman-api's `inspect` always adds `size=true`, which makes Podman
//!   walk every container's writable layer a second time.
//!
//! `system/df` is never called: it is slow on big hosts, and volume sizes are measured
//! elsewhere by walking the directories.

use super::live::{Container, Image, LiveHost, Mount, StorageFacts, Volume};
use crate::error::Error;
use podman_api::Podman;
use podman_api::models;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;

/// Oldest Podman this reads (tested: 4.3.1; its API path /v4.3.1/libpod is what podman-api 0.11 uses).
pub const MIN_VERSION: (u64, u64) = (4, 3);

/// The rootful socket path.
pub const ROOTFUL_SOCKET: &str = "/run/podman/podman.sock";

/// How many container inspections run at once.
const INSPECT_CONCURRENCY: usize = 16;

/// The largest answer the raw client accepts; an inspection is a few KiB.
const MAX_ANSWER: u64 = 64 << 20;

/// The largest HTTP header the raw client accepts.
const MAX_HEAD: usize = 64 << 10;

/// Where the Podman API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket, e.g. `/run/podman/podman.sock`.
    Unix(PathBuf),
    /// `host:port` of a `podman system service tcp://…`.
    Tcp(String),
}

impl Endpoint {
    /// The endpoint as a URL: `unix:///path` or `tcp://host:port`.
    pub fn url(&self) -> String {
        match self {
            Endpoint::Unix(path) => format!("unix://{}", path.display()),
            Endpoint::Tcp(authority) => format!("tcp://{authority}"),
        }
    }
}

/// An endpoint and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub endpoint: Endpoint,
    /// `--url`, `CONTAINER_HOST`, `rootful default` or `rootless default ($XDG_RUNTIME_DIR)`.
    pub why: String,
}

impl Discovered {
    /// The endpoint and where it came from, e.g. `unix:///x.sock (from --url)`.
    fn describe(&self) -> String {
        format!("{} ({})", self.endpoint.url(), self.origin())
    }

    /// `from --url`, `from CONTAINER_HOST`, `the rootful default`, ….
    fn origin(&self) -> String {
        if self.why.starts_with('-') || self.why.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            format!("from {}", self.why)
        } else {
            format!("the {}", self.why)
        }
    }

    /// Whether the socket belongs to a rootless Podman, for choosing hints.
    fn rootless(&self) -> bool {
        match &self.endpoint {
            Endpoint::Unix(path) => self.why.starts_with("rootless") || path.starts_with("/run/user"),
            Endpoint::Tcp(_) => false,
        }
    }
}

/// Finds the Podman socket as Podman's remote client does.
///
/// Order: explicit url (from --url), then the CONTAINER_HOST env var, then for root
/// /run/podman/podman.sock, for other users $XDG_RUNTIME_DIR/podman/podman.sock.
///
/// Accepts `unix:///path`, `unix:/path`, a bare absolute path and `tcp://host:port`.
/// Pure: the environment and whether we run as root are passed in.
pub fn discover(
    url: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    is_root: bool,
) -> Result<Discovered, Error> {
    if let Some(url) = url {
        return Ok(Discovered { endpoint: parse_url(url, "--url")?, why: "--url".into() });
    }
    if let Some(host) = env("CONTAINER_HOST").filter(|h| !h.trim().is_empty()) {
        let endpoint = parse_url(host.trim(), "CONTAINER_HOST")?;
        return Ok(Discovered { endpoint, why: "CONTAINER_HOST".into() });
    }
    if is_root {
        return Ok(Discovered {
            endpoint: Endpoint::Unix(ROOTFUL_SOCKET.into()),
            why: "rootful default".into(),
        });
    }
    match env("XDG_RUNTIME_DIR").filter(|d| Path::new(d).is_absolute()) {
        Some(dir) => Ok(Discovered {
            endpoint: Endpoint::Unix(Path::new(&dir).join("podman/podman.sock")),
            why: "rootless default ($XDG_RUNTIME_DIR)".into(),
        }),
        None => Err(Error::Environment(
            "XDG_RUNTIME_DIR is not set (or not an absolute path), so the rootless Podman socket \
             cannot be found\n  = help: pass --url unix:///run/user/$(id -u)/podman/podman.sock, \
             set CONTAINER_HOST, or run as root to read the rootful socket"
                .into(),
        )),
    }
}

/// Parses one endpoint as `--url` or `CONTAINER_HOST` gives it; `from` names the source.
fn parse_url(value: &str, from: &str) -> Result<Endpoint, Error> {
    let unix_path = value
        .strip_prefix("unix://")
        .or_else(|| value.strip_prefix("unix:"))
        .or_else(|| if value.starts_with('/') { Some(value) } else { None });
    if let Some(path) = unix_path {
        if path.starts_with('/') && path.len() > 1 {
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        return Err(Error::Usage(format!(
            "{from} {value:?}: a unix socket needs an absolute path, e.g. unix:///run/podman/podman.sock"
        )));
    }
    if let Some(rest) = value.strip_prefix("tcp://") {
        let authority = rest.trim_end_matches('/');
        let port_ok = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok || authority.contains('/') {
            return Err(Error::Usage(format!(
                "{from} {value:?}: a TCP endpoint needs a host and a port, e.g. tcp://127.0.0.1:8080"
            )));
        }
        return Ok(Endpoint::Tcp(authority.to_string()));
    }
    if let Some(rest) = value.strip_prefix("ssh://") {
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) if !p.is_empty() => (a, format!("/{p}")),
            Some((a, _)) => (a, ROOTFUL_SOCKET.to_string()),
            None => (rest, ROOTFUL_SOCKET.to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h, format!(" -p {p}")),
            _ => (authority, String::new()),
        };
        let host = if host.is_empty() { "HOST" } else { host };
        return Err(Error::Usage(format!(
            "{from} {value:?}: ssh:// connections are not supported\n  = help: forward the remote \
             socket with `ssh{port} -L /tmp/podman.sock:{path} {host}` and pass \
             --url unix:///tmp/podman.sock"
        )));
    }
    Err(Error::Usage(format!(
        "{from} {value:?} is not a Podman endpoint; use unix:///path/to/podman.sock, a bare absolute \
         path, or tcp://host:port"
    )))
}

/// How long to wait for answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting and the first answer (`_ping`, `version`).
    pub first_answer: Duration,
    /// Each later call; listing containers with sizes can take a while on a big host.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { first_answer: Duration::from_secs(10), request: Duration::from_secs(300) }
    }
}

/// Reads everything [`LiveHost`] holds from the Podman socket, with default timeouts.
pub async fn fetch(d: &Discovered) -> Result<LiveHost, Error> {
    fetch_with(d, Timeouts::default()).await
}

/// [`fetch`] with chosen timeouts.
pub async fn fetch_with(d: &Discovered, timeouts: Timeouts) -> Result<LiveHost, Error> {
    fetch_from(d, timeouts).await.map(|(host, _)| host)
}

/// [`fetch_with`], and the pid of the process that answered the first call on a unix
/// socket ([`peer_pid`]), to read paths in its mount namespace.
pub async fn fetch_from(d: &Discovered, timeouts: Timeouts) -> Result<(LiveHost, Option<u32>), Error> {
    let fail = Failure { d };
    let started = std::time::Instant::now();

    // First contact, raw, so that each way of failing gets its own message.
    let (ping, server_pid) = raw_get_from(&d.endpoint, &api_path("/libpod/_ping"), timeouts.first_answer)
        .await
        .map_err(|e| fail.raw(e, "_ping", timeouts.first_answer))?;
    let ping_version = check_ping(&ping).map_err(|detail| fail.not_podman(&detail))?;
    check_version(&ping_version).map_err(|e| fail.version(e))?;

    let podman = match &d.endpoint {
        Endpoint::Unix(path) => Podman::unix(path),
        Endpoint::Tcp(authority) => {
            Podman::tcp(authority).map_err(|e| fail.not_podman(&format!("bad endpoint: {e}")))?
        }
    };

    // Podman's `version` call is slow (about 0.4 s on 4.3.1: it asks every component for
    // its version), so it is not made: `_ping` names the version, and `info` confirms it.
    tracing::debug!(endpoint = %d.endpoint.url(), version = %ping_version, elapsed_ms = started.elapsed().as_millis(), "connected to Podman");

    let t = timeouts.request;
    let list_opts = podman_api::opts::ContainerListOpts::builder().all(true).size(true).build();
    // `info` is the slowest answer; the containers are listed and inspected meanwhile.
    let (info, images, containers, volumes) = tokio::try_join!(
        async { within(t, podman.info()).await.map_err(|e| fail.api(e, "info", t)) },
        async {
            within(t, podman.images().list(&Default::default()))
                .await
                .map_err(|e| fail.api(e, "images/json", t))
        },
        async {
            let listed = within(t, podman.containers().list(&list_opts))
                .await
                .map_err(|e| fail.api(e, "containers/json", t))?;
            let containers: Vec<Container> = listed.into_iter().map(container_from_list).collect();
            let ids: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
            let inspected = inspect_all(d, ids, t).await?;
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis(),
                containers = inspected.len(),
                "listed and inspected containers"
            );
            Ok::<_, Error>(
                containers
                    .into_iter()
                    .zip(inspected)
                    .filter_map(|(mut c, inspect)| match inspect {
                        Some(inspect) => {
                            apply_inspect(&mut c, inspect);
                            Some(c)
                        }
                        None => {
                            tracing::debug!(container = %c.name, "container vanished before it could be inspected");
                            None
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        },
        async {
            within(t, podman.volumes().list(&Default::default()))
                .await
                .map_err(|e| fail.api(e, "volumes/json", t))
        },
    )?;
    tracing::debug!(elapsed_ms = started.elapsed().as_millis(), "read info and the image and volume lists");
    let version = info
        .version
        .as_ref()
        .and_then(|v| v.version.clone())
        .filter(|v| !v.trim().is_empty())
        .unwrap_or(ping_version);
    check_version(&version).map_err(|e| fail.version(e))?;
    let (rootless, storage) = storage_from_info(info).map_err(|detail| fail.not_podman(&detail))?;

    let host = assemble(
        d.endpoint.url(),
        version,
        rootless,
        storage,
        images.into_iter().map(image_from).collect(),
        containers,
        volumes.into_iter().map(volume_from).collect(),
    );
    Ok((host, server_pid))
}

/// The path podman-api would use for `endpoint`, so raw calls speak the same API version.
pub(crate) fn api_path(endpoint: &str) -> String {
    podman_api::LATEST_API_VERSION.make_endpoint(endpoint)
}

async fn within<T>(
    limit: Duration,
    call: impl Future<Output = podman_api::Result<T>>,
) -> Result<T, ApiFailure> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ApiFailure::Api(e)),
        Err(_) => Err(ApiFailure::Timeout),
    }
}

enum ApiFailure {
    Api(podman_api::Error),
    Timeout,
}

/// Checks a `_ping` answer and returns the `Libpod-Api-Version` it names.
fn check_ping(r: &RawResponse) -> Result<String, String> {
    if r.status != 200 {
        return Err(format!("`_ping` answered HTTP {}{}", r.status, body_excerpt(&r.body)));
    }
    let body = String::from_utf8_lossy(&r.body);
    if body.trim() != "OK" {
        return Err(format!("`_ping` answered {} instead of OK", excerpt(&body)));
    }
    match r.header("libpod-api-version") {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err("`_ping` has no Libpod-Api-Version header (a Docker socket?)".into()),
    }
}

enum VersionProblem {
    NotANumber(String),
    TooOld(String),
}

/// Checks a Podman version against [`MIN_VERSION`].
fn check_version(version: &str) -> Result<(), VersionProblem> {
    match parse_version(version) {
        None => Err(VersionProblem::NotANumber(version.to_string())),
        Some((major, minor)) if (major, minor) < MIN_VERSION => {
            Err(VersionProblem::TooOld(version.to_string()))
        }
        Some(_) => Ok(()),
    }
}

/// `4.3.1`, `v5.0.0-rc1`, `4.9` → (major, minor).
fn parse_version(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    let mut parts = v.split('.');
    let number = |s: Option<&str>| -> Option<u64> {
        let s = s?;
        let digits = &s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())];
        digits.parse().ok()
    };
    let major = number(parts.next())?;
    let minor = number(parts.next()).unwrap_or(0);
    Some((major, minor))
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Builds the messages for one endpoint.
struct Failure<'a> {
    d: &'a Discovered,
}

impl Failure<'_> {
    fn other_endpoint_help(&self) -> &'static str {
        "or name another endpoint with --url or CONTAINER_HOST"
    }

    fn not_podman(&self, detail: &str) -> Error {
        Error::Environment(format!(
            "{} does not answer like a Podman API socket: {detail}\n  = help: point --url or \
             CONTAINER_HOST at the socket of `podman system service` (podman.socket)",
            self.d.describe()
        ))
    }

    fn version(&self, problem: VersionProblem) -> Error {
        match problem {
            VersionProblem::NotANumber(v) => {
                self.not_podman(&format!("it reports version {} which is not a version number", excerpt(&v)))
            }
            VersionProblem::TooOld(v) => Error::Environment(format!(
                "Podman {v} at {} is older than {}.{}, the oldest version this tool reads\n  = help: \
                 upgrade Podman on that host, or describe the host in a spec file instead (--spec)",
                self.d.describe(),
                MIN_VERSION.0,
                MIN_VERSION.1
            )),
        }
    }

    fn timeout(&self, what: &str, limit: Duration) -> Error {
        Error::Environment(format!(
            "{} did not answer `{what}` within {} s\n  = help: check that the Podman service is not hung \
             (`systemctl status podman.socket podman.service`, or `systemctl --user …` for rootless \
             Podman), {}",
            self.d.describe(),
            limit.as_secs_f64(),
            self.other_endpoint_help()
        ))
    }

    fn start_hint(&self) -> String {
        if self.d.rootless() {
            "start the user's Podman API socket with `systemctl --user enable --now podman.socket` \
             (rootful Podman: `systemctl enable --now podman.socket`)"
                .into()
        } else {
            "start Podman's API socket with `systemctl enable --now podman.socket` (rootless Podman: \
             `systemctl --user enable --now podman.socket` as that user)"
                .into()
        }
    }

    /// A failure to connect, or to talk over the connection.
    fn io(&self, e: &io::Error, what: &str) -> Error {
        let url = self.d.describe();
        match (&self.d.endpoint, e.kind()) {
            (Endpoint::Unix(path), io::ErrorKind::NotFound) => Error::Environment(format!(
                "no Podman socket at {} ({})\n  = help: {}, {}",
                path.display(),
                self.d.origin(),
                self.start_hint(),
                self.other_endpoint_help()
            )),
            (Endpoint::Unix(path), io::ErrorKind::ConnectionRefused) => {
                let is_socket = {
                    use std::os::unix::fs::FileTypeExt;
                    std::fs::metadata(path).map(|m| m.file_type().is_socket()).unwrap_or(true)
                };
                let what_is_there = if is_socket {
                    "the socket file exists but nothing listens on it (connection refused)"
                } else {
                    "something is there but it is not a socket"
                };
                Error::Environment(format!(
                    "no Podman socket at {} ({}): {what_is_there}\n  = help: {}, {}",
                    path.display(),
                    self.d.origin(),
                    self.start_hint(),
                    self.other_endpoint_help()
                ))
            }
            (Endpoint::Unix(path), io::ErrorKind::PermissionDenied) => Error::Environment(format!(
                "permission denied on the Podman socket at {} ({})\n  = help: run as root or as the user \
                 whose socket it is, or use your own rootless socket \
                 ($XDG_RUNTIME_DIR/podman/podman.sock, started with `systemctl --user enable --now \
                 podman.socket`)",
                path.display(),
                self.d.origin()
            )),
            (Endpoint::Tcp(authority), io::ErrorKind::ConnectionRefused) => Error::Environment(format!(
                "nothing listens at {url} (connection refused)\n  = help: start the service there with \
                 `podman system service --time=0 tcp://{authority}`, {}",
                self.other_endpoint_help()
            )),
            (
                _,
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe,
            ) => self.not_podman(&format!("it closed the connection during `{what}` ({e})")),
            _ => Error::Environment(format!(
                "cannot talk to {url} (`{what}`): {e}\n  = help: check the endpoint, {}",
                self.other_endpoint_help()
            )),
        }
    }

    fn raw(&self, e: RawError, what: &str, limit: Duration) -> Error {
        match e {
            RawError::Io(e) => self.io(&e, what),
            RawError::Malformed(detail) => self.not_podman(&format!("`{what}`: {detail}")),
            RawError::Timeout => self.timeout(what, limit),
        }
    }

    fn api(&self, e: ApiFailure, what: &str, limit: Duration) -> Error {
        let e = match e {
            ApiFailure::Timeout => return self.timeout(what, limit),
            ApiFailure::Api(e) => e,
        };
        use podman_api::conn::Error as ConnError;
        match &e {
            podman_api::Error::Fault { code, message }
            | podman_api::Error::Error(ConnError::Fault { code, message }) => {
                if code.as_u16() == 404 {
                    // Podman knows every path we ask for.
                    self.not_podman(&format!(
                        "`{what}` answered HTTP 404{}",
                        body_excerpt(message.as_bytes())
                    ))
                } else {
                    Error::Environment(format!(
                        "Podman at {} failed `{what}`: HTTP {}: {}\n  = help: see the Podman service's \
                         log (`journalctl -u podman.service`, or `journalctl --user -u podman.service` \
                         for rootless Podman)",
                        self.d.describe(),
                        code.as_u16(),
                        excerpt(message)
                    ))
                }
            }
            podman_api::Error::SerdeJsonError(j) | podman_api::Error::Error(ConnError::SerdeJsonError(j)) => {
                let shape = if j.is_data() { "JSON of an unexpected shape" } else { "not JSON" };
                self.not_podman(&format!("`{what}` answered {shape} ({j})"))
            }
            _ => match io_source(&e) {
                Some(io) => self.io(io, what),
                None => self.not_podman(&format!("`{what}`: {e}")),
            },
        }
    }
}

/// The first `io::Error` in an error's chain of sources.
fn io_source<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

/// Shortens text for an error message, and makes control characters visible.
fn excerpt(text: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = text.chars().take(MAX).collect::<String>();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    format!("{:?}", out)
}

fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() { String::new() } else { format!(": {}", excerpt(text.trim())) }
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1 over the socket
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
enum RawError {
    /// Connecting, writing or reading failed.
    Io(io::Error),
    /// The peer answered, but not with HTTP we understand.
    Malformed(String),
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RawResponse {
    status: u16,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

/// The process at the other end of a connected unix socket (SO_PEERCRED), `None` when
/// the kernel cannot name it here (0: it lives in a PID namespace we cannot see).
///
/// The kernel records the credentials of the process that called `listen()`. For a
/// socket-activated service (systemd's podman.socket) that is systemd, not Podman: PID 1
/// for the rootful socket, which shares the host's mount namespace with the Podman it
/// starts, so reading there is right; a user's `systemd --user` for a rootless socket,
/// whose Podman keeps its store at the same paths.
pub fn peer_pid(stream: &tokio::net::UnixStream) -> Option<u32> {
    let pid = stream.peer_cred().ok()?.pid()?;
    u32::try_from(pid).ok().filter(|p| *p > 0)
}

async fn connect(endpoint: &Endpoint) -> io::Result<(Box<dyn Socket>, Option<u32>)> {
    Ok(match endpoint {
        Endpoint::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path).await?;
            let pid = peer_pid(&stream);
            (Box::new(stream), pid)
        }
        Endpoint::Tcp(authority) => {
            (Box::new(tokio::net::TcpStream::connect(authority.as_str()).await?), None)
        }
    })
}

/// One `GET`, with `Connection: close`, read to the end.
async fn raw_get(endpoint: &Endpoint, path: &str, limit: Duration) -> Result<RawResponse, RawError> {
    raw_get_from(endpoint, path, limit).await.map(|(answer, _)| answer)
}

/// [`raw_get`], and the pid of the process that answered on a unix socket ([`peer_pid`]).
async fn raw_get_from(
    endpoint: &Endpoint,
    path: &str,
    limit: Duration,
) -> Result<(RawResponse, Option<u32>), RawError> {
    let exchange = async {
        let (mut socket, pid) = connect(endpoint).await.map_err(RawError::Io)?;
        let host = match endpoint {
            Endpoint::Unix(_) => "d",
            Endpoint::Tcp(authority) => authority.as_str(),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: podman-btrfs-advise/{}\r\n\
             Accept: application/json\r\nConnection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        socket.write_all(request.as_bytes()).await.map_err(RawError::Io)?;
        socket.flush().await.map_err(RawError::Io)?;
        let mut answer = Vec::new();
        let read = (&mut socket).take(MAX_ANSWER + 1).read_to_end(&mut answer).await;
        match read {
            Ok(_) => {}
            // A peer that answered fully and then reset the connection still answered.
            Err(e) if !answer.is_empty() && e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => return Err(RawError::Io(e)),
        }
        if answer.len() as u64 > MAX_ANSWER {
            return Err(RawError::Malformed(format!("the answer is larger than {} MiB", MAX_ANSWER >> 20)));
        }
        parse_response(&answer).map(|r| (r, pid)).map_err(RawError::Malformed)
    };
    tokio::time::timeout(limit, exchange).await.unwrap_or(Err(RawError::Timeout))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses a whole HTTP/1.x response.
fn parse_response(answer: &[u8]) -> Result<RawResponse, String> {
    if answer.is_empty() {
        return Err("it closed the connection without answering".into());
    }
    if !answer.starts_with(b"HTTP/1.") {
        let start = &answer[..answer.len().min(24)];
        let start = if start.iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) {
            excerpt(&String::from_utf8_lossy(start))
        } else {
            start.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
        };
        return Err(format!("not HTTP (it sent {} bytes starting with {start})", answer.len()));
    }
    let head_end = find(&answer[..answer.len().min(MAX_HEAD)], b"\r\n\r\n")
        .ok_or("an HTTP header that does not end (or is larger than 64 KiB)")?;
    let head = std::str::from_utf8(&answer[..head_end]).map_err(|_| "an HTTP header that is not text")?;
    let rest = &answer[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("a malformed HTTP status line {}", excerpt(status_line)))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) =
            line.split_once(':').ok_or_else(|| format!("a malformed HTTP header line {}", excerpt(line)))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let response = RawResponse { status, headers, body: Vec::new() };
    let chunked =
        response.header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some(length) = response.header("content-length") {
        let length: usize =
            length.parse().map_err(|_| format!("a bad Content-Length {}", excerpt(length)))?;
        rest.get(..length)
            .ok_or_else(|| format!("a body cut short ({} of {length} bytes)", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(RawResponse { body, ..response })
}

fn decode_chunked(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or("a chunked body cut short")?;
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|_| "a malformed chunk size")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("a malformed chunk size {}", excerpt(size_text)))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("a chunked body cut short")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size..).unwrap_or_default();
        rest = rest.strip_prefix(b"\r\n").ok_or("a malformed chunked body")?;
    }
}

// ---------------------------------------------------------------------------------------
// Container inspection (raw, tolerant)
// ---------------------------------------------------------------------------------------

/// `null` as the type's default, for every field of the structs below.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The part of `containers/{id}/json` we read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawInspect {
    /// A `null` entry is skipped.
    #[serde(rename = "Mounts", deserialize_with = "nullable")]
    mounts: Vec<Option<RawMount>>,
    #[serde(rename = "HostConfig", deserialize_with = "nullable")]
    host_config: RawHostConfig,
}

/// The part of `containers/{id}/json` read when a container is looked at on its own.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawContainer {
    #[serde(rename = "Id", deserialize_with = "nullable")]
    id: String,
    #[serde(rename = "Name", deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "ImageName", deserialize_with = "nullable")]
    image_name: String,
    #[serde(rename = "Image", deserialize_with = "nullable")]
    image: String,
    #[serde(rename = "State", deserialize_with = "nullable")]
    state: RawState,
    #[serde(rename = "Config", deserialize_with = "nullable")]
    config: RawConfig,
    #[serde(flatten)]
    inspect: RawInspect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawState {
    #[serde(rename = "Status", deserialize_with = "nullable")]
    status: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawConfig {
    #[serde(rename = "Labels", deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawMount {
    #[serde(rename = "Type", deserialize_with = "nullable")]
    kind: String,
    #[serde(rename = "Name", deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "Source", deserialize_with = "nullable")]
    source: String,
    #[serde(rename = "Destination", deserialize_with = "nullable")]
    destination: String,
    #[serde(rename = "RW")]
    rw: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawHostConfig {
    #[serde(rename = "RestartPolicy", deserialize_with = "nullable")]
    restart_policy: RawRestartPolicy,
    #[serde(rename = "AutoRemove", deserialize_with = "nullable")]
    auto_remove: bool,
    /// `--tmpfs` mounts: destination → options. Inspect's `Mounts` leaves them out.
    #[serde(rename = "Tmpfs", deserialize_with = "nullable")]
    tmpfs: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawRestartPolicy {
    #[serde(rename = "Name", deserialize_with = "nullable")]
    name: String,
}

/// Inspects every container, [`INSPECT_CONCURRENCY`] at a time. `None` for a container
/// that was removed since it was listed.
async fn inspect_all(
    d: &Discovered,
    ids: Vec<String>,
    limit: Duration,
) -> Result<Vec<Option<RawInspect>>, Error> {
    let fail = Failure { d };
    let mut results: Vec<Option<RawInspect>> = ids.iter().map(|_| None).collect();
    let mut pending = ids.into_iter().enumerate();
    let mut running = JoinSet::new();
    loop {
        while running.len() < INSPECT_CONCURRENCY {
            let Some((i, id)) = pending.next() else { break };
            let endpoint = d.endpoint.clone();
            running.spawn(async move {
                let path = api_path(&format!("/libpod/containers/{}/json", path_segment(&id)));
                (i, id, raw_get(&endpoint, &path, limit).await)
            });
        }
        let Some(joined) = running.join_next().await else { break };
        let (i, id, answer) =
            joined.map_err(|e| Error::Environment(format!("inspecting a container failed: {e}")))?;
        let what = format!("containers/{id}/json");
        let answer = answer.map_err(|e| fail.raw(e, &what, limit))?;
        match answer.status {
            200 => {
                let inspect = serde_json::from_slice::<RawInspect>(&answer.body).map_err(|e| {
                    let shape = if e.is_data() { "JSON of an unexpected shape" } else { "not JSON" };
                    fail.not_podman(&format!("`{what}` answered {shape} ({e})"))
                })?;
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(inspect);
                }
            }
            404 => {}
            status => {
                return Err(Error::Environment(format!(
                    "Podman at {} failed `{what}`: HTTP {status}{}",
                    d.describe(),
                    body_excerpt(&answer.body)
                )));
            }
        }
    }
    Ok(results)
}

/// One volume, as `volumes/{name}/json` describes it; `Ok(None)` when it is gone.
pub async fn volume(endpoint: &Endpoint, name: &str, limit: Duration) -> Result<Option<Volume>, String> {
    let path = api_path(&format!("/libpod/volumes/{}/json", path_segment(name)));
    let Some(body) = get_json(endpoint, &path, limit).await? else { return Ok(None) };
    let v: models::Volume = serde_json::from_slice(&body)
        .map_err(|e| format!("`volumes/{name}/json` answered JSON of an unexpected shape ({e})"))?;
    Ok(Some(volume_from(v)))
}

/// One container from `containers/{id}/json` alone; `Ok(None)` when it is gone.
pub async fn container(endpoint: &Endpoint, id: &str, limit: Duration) -> Result<Option<Container>, String> {
    let path = api_path(&format!("/libpod/containers/{}/json", path_segment(id)));
    let Some(body) = get_json(endpoint, &path, limit).await? else { return Ok(None) };
    let raw: RawContainer = serde_json::from_slice(&body)
        .map_err(|e| format!("`containers/{id}/json` answered JSON of an unexpected shape ({e})"))?;
    let mut c = Container {
        id: raw.id,
        name: raw.name,
        image: raw.image_name,
        image_id: raw.image,
        state: raw.state.status,
        labels: raw.config.labels,
        ..Container::default()
    };
    apply_inspect(&mut c, raw.inspect);
    Ok(Some(c))
}

/// The body of a `GET` answered 200, `None` for 404.
async fn get_json(endpoint: &Endpoint, path: &str, limit: Duration) -> Result<Option<Vec<u8>>, String> {
    let answer = raw_get(endpoint, path, limit).await.map_err(|e| match e {
        RawError::Io(e) => format!("{}: {e}", endpoint.url()),
        RawError::Malformed(m) => format!("{} answered {m}", endpoint.url()),
        RawError::Timeout => format!("{} did not answer within {limit:?}", endpoint.url()),
    })?;
    match answer.status {
        200 => Ok(Some(answer.body)),
        404 => Ok(None),
        status => Err(format!("{} answered HTTP {status}{}", endpoint.url(), body_excerpt(&answer.body))),
    }
}

/// Percent-encodes what could break out of one path segment.
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// From Podman's answers to our model
// ---------------------------------------------------------------------------------------

/// A size as Podman reports it: absent or negative is 0.
fn size(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

fn sorted(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

fn bare_id(id: Option<String>) -> String {
    let id = id.unwrap_or_default();
    id.strip_prefix("sha256:").map(str::to_string).unwrap_or(id)
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// `rootless` and the storage facts from `info`.
fn storage_from_info(info: models::Info) -> Result<(bool, StorageFacts), String> {
    let store = info.store.ok_or("`info` has no `store` section")?;
    let rootless = info.host.and_then(|h| h.security).and_then(|s| s.rootless).unwrap_or(false);
    let backing_filesystem = non_empty(store.graph_status.and_then(|mut s| s.remove("Backing Filesystem")));
    Ok((
        rootless,
        StorageFacts {
            driver: store.graph_driver_name.unwrap_or_default(),
            graphroot: store.graph_root.unwrap_or_default(),
            runroot: store.run_root.unwrap_or_default(),
            backing_filesystem,
            volume_path: non_empty(store.volume_path),
        },
    ))
}

fn image_from(i: models::LibpodImageSummary) -> Image {
    let names = i
        .repo_tags
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !t.is_empty() && !t.starts_with("<none>"))
        .collect();
    Image {
        id: bare_id(i.id),
        names,
        size: size(i.size),
        shared_size: size(i.shared_size),
        containers: size(i.containers),
    }
}

/// A container as listed; mounts and restart policy come from [`apply_inspect`].
fn container_from_list(c: models::ListContainer) -> Container {
    let id = c.id.unwrap_or_default();
    let name = c
        .names
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.trim_start_matches('/').to_string())
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| id.get(..12).unwrap_or(&id).to_string());
    Container {
        name,
        image: c.image.unwrap_or_default(),
        image_id: bare_id(c.image_id),
        state: c.state.unwrap_or_default(),
        labels: sorted(c.labels),
        restart_policy: String::new(),
        auto_remove: c.auto_remove.unwrap_or(false),
        mounts: Vec::new(),
        rw_size: c.size.map(|s| size(s.rw_size)),
        id,
    }
}

fn apply_inspect(c: &mut Container, inspect: RawInspect) {
    let mut mounts: Vec<Mount> = inspect
        .mounts
        .into_iter()
        .flatten()
        .map(|m| {
            let volume = (m.kind == "volume" && !m.name.is_empty()).then_some(m.name);
            Mount {
                kind: m.kind,
                source: m.source,
                destination: m.destination,
                volume,
                read_write: m.rw.unwrap_or(true),
            }
        })
        .collect();
    for (destination, options) in inspect.host_config.tmpfs {
        if mounts.iter().any(|m| m.destination == destination) {
            continue;
        }
        let read_write = !options.split(',').any(|o| o.trim() == "ro");
        mounts.push(Mount {
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            destination,
            volume: None,
            read_write,
        });
    }
    c.mounts = mounts;
    c.restart_policy = inspect.host_config.restart_policy.name;
    c.auto_remove |= inspect.host_config.auto_remove;
}

fn volume_from(v: models::Volume) -> Volume {
    Volume {
        name: v.name,
        driver: v.driver,
        mountpoint: v.mountpoint,
        labels: v.labels.into_iter().collect(),
        options: v.options.into_iter().collect(),
        size: None,
        used_by: Vec::new(),
    }
}

/// Puts the pieces together: sorts, and fills each volume's `used_by`.
fn assemble(
    endpoint: String,
    podman_version: String,
    rootless: bool,
    storage: StorageFacts,
    mut images: Vec<Image>,
    mut containers: Vec<Container>,
    mut volumes: Vec<Volume>,
) -> LiveHost {
    images.sort_by(|a, b| (a.names.is_empty(), &a.names, &a.id).cmp(&(b.names.is_empty(), &b.names, &b.id)));
    containers.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    for v in &mut volumes {
        v.used_by = containers
            .iter()
            .filter(|c| c.mounts.iter().any(|m| m.volume.as_deref() == Some(v.name.as_str())))
            .map(|c| c.name.clone())
            .collect();
        v.used_by.dedup();
    }
    LiveHost { endpoint, podman_version, rootless, storage, images, containers, volumes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn unix(p: &str) -> Endpoint {
        Endpoint::Unix(PathBuf::from(p))
    }

    fn usage(r: Result<Discovered, Error>) -> String {
        match r {
            Err(Error::Usage(msg)) => msg,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn url_comes_first() {
        let env =
            env_of(&[("CONTAINER_HOST", "unix:///from/env.sock"), ("XDG_RUNTIME_DIR", "/run/user/1000")]);
        let d = discover(Some("unix:///tmp/podman.sock"), &env, false).unwrap();
        assert_eq!(d, Discovered { endpoint: unix("/tmp/podman.sock"), why: "--url".into() });
        let d = discover(Some("/tmp/podman.sock"), &env, true).unwrap();
        assert_eq!(d.endpoint, unix("/tmp/podman.sock"));
    }

    #[test]
    fn container_host_comes_second() {
        let env = env_of(&[("CONTAINER_HOST", "unix:/from/env.sock"), ("XDG_RUNTIME_DIR", "/run/user/1000")]);
        let d = discover(None, &env, true).unwrap();
        assert_eq!(d, Discovered { endpoint: unix("/from/env.sock"), why: "CONTAINER_HOST".into() });
        let env = env_of(&[("CONTAINER_HOST", "tcp://127.0.0.1:8080")]);
        let d = discover(None, &env, false).unwrap();
        assert_eq!(d.endpoint, Endpoint::Tcp("127.0.0.1:8080".into()));
        assert_eq!(d.endpoint.url(), "tcp://127.0.0.1:8080");
    }

    #[test]
    fn empty_container_host_is_unset() {
        let env = env_of(&[("CONTAINER_HOST", ""), ("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(discover(None, &env, false).unwrap().why, "rootless default ($XDG_RUNTIME_DIR)");
    }

    #[test]
    fn defaults_for_root_and_users() {
        let env = env_of(&[("XDG_RUNTIME_DIR", "/run/user/1000")]);
        let d = discover(None, &env, true).unwrap();
        assert_eq!(
            d,
            Discovered { endpoint: unix("/run/podman/podman.sock"), why: "rootful default".into() }
        );
        assert_eq!(d.endpoint.url(), "unix:///run/podman/podman.sock");
        let d = discover(None, &env, false).unwrap();
        assert_eq!(d.endpoint, unix("/run/user/1000/podman/podman.sock"));
        assert_eq!(d.why, "rootless default ($XDG_RUNTIME_DIR)");
        assert_eq!(d.endpoint.url(), "unix:///run/user/1000/podman/podman.sock");
    }

    #[test]
    fn rootless_without_runtime_dir_says_what_to_do() {
        for env in [env_of(&[]), env_of(&[("XDG_RUNTIME_DIR", "relative")])] {
            match discover(None, &env, false) {
                Err(e @ Error::Environment(_)) => {
                    let msg = e.to_string();
                    assert!(msg.contains("XDG_RUNTIME_DIR") && msg.contains("--url"), "{msg}");
                    assert_eq!(e.exit_code(), crate::error::exit::ENVIRONMENT);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn url_forms() {
        let env = env_of(&[]);
        for (given, want) in [
            ("unix:///run/podman/podman.sock", unix("/run/podman/podman.sock")),
            ("unix:/run/podman/podman.sock", unix("/run/podman/podman.sock")),
            ("/run/podman/podman.sock", unix("/run/podman/podman.sock")),
            ("tcp://localhost:8080", Endpoint::Tcp("localhost:8080".into())),
            ("tcp://[::1]:8080/", Endpoint::Tcp("[::1]:8080".into())),
        ] {
            assert_eq!(discover(Some(given), &env, false).unwrap().endpoint, want, "{given}");
        }
    }

    #[test]
    fn bad_urls_are_usage_errors_naming_the_value() {
        let env = env_of(&[]);
        for bad in [
            "",
            "podman.sock",
            "unix://relative/podman.sock",
            "unix://",
            "tcp://localhost",
            "tcp://:8080",
            "tcp://host:port",
            "http://localhost:8080",
            "npipe:////./pipe/podman",
        ] {
            let msg = usage(discover(Some(bad), &env, false));
            assert!(msg.contains(&format!("{bad:?}")), "{bad}: {msg}");
            assert!(msg.starts_with("--url "), "{msg}");
        }
        let env = env_of(&[("CONTAINER_HOST", "bogus")]);
        let msg = usage(discover(None, &env, true));
        assert!(msg.contains("CONTAINER_HOST \"bogus\""), "{msg}");
    }

    #[test]
    fn ssh_is_refused_with_a_forwarding_recipe() {
        let env = env_of(&[]);
        let msg = usage(discover(
            Some("ssh://core@example.org:2222/run/user/1000/podman/podman.sock"),
            &env,
            false,
        ));
        assert!(msg.contains("not supported"), "{msg}");
        assert!(
            msg.contains(
                "ssh -p 2222 -L /tmp/podman.sock:/run/user/1000/podman/podman.sock core@example.org"
            ),
            "{msg}"
        );
        assert!(msg.contains("--url unix:///tmp/podman.sock"), "{msg}");
        let msg = usage(discover(Some("ssh://root@host"), &env, false));
        assert!(msg.contains("ssh -L /tmp/podman.sock:/run/podman/podman.sock root@host"), "{msg}");
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("4.3.1"), Some((4, 3)));
        assert_eq!(parse_version("v5.0.0-rc1"), Some((5, 0)));
        assert_eq!(parse_version("4.10"), Some((4, 10)));
        assert_eq!(parse_version("5"), Some((5, 0)));
        assert_eq!(parse_version("dev"), None);
        assert_eq!(parse_version(""), None);
        assert!(check_version("4.3.1").is_ok());
        assert!(check_version("5.2.0").is_ok());
        assert!(matches!(check_version("4.2.9"), Err(VersionProblem::TooOld(_))));
        assert!(matches!(check_version("3.4.4"), Err(VersionProblem::TooOld(_))));
        assert!(matches!(check_version("x"), Err(VersionProblem::NotANumber(_))));
        assert_eq!(podman_api::LATEST_API_VERSION.to_string(), "4.3.1");
        assert_eq!(api_path("/libpod/_ping"), "/v4.3.1/libpod/_ping");
    }

    fn discovered(path: &str, why: &str) -> Discovered {
        Discovered { endpoint: unix(path), why: why.into() }
    }

    #[test]
    fn connection_failures_say_what_to_do() {
        let d = discovered("/nonexistent/podman.sock", "rootful default");
        let f = Failure { d: &d };
        let msg = f.io(&io::Error::from(io::ErrorKind::NotFound), "_ping").to_string();
        assert!(msg.contains("no Podman socket at /nonexistent/podman.sock"), "{msg}");
        assert!(msg.contains("`systemctl enable --now podman.socket`"), "{msg}");
        assert!(msg.contains("systemctl --user enable --now podman.socket"), "{msg}");
        assert!(msg.contains("--url") && msg.contains("CONTAINER_HOST"), "{msg}");

        let msg = f.io(&io::Error::from(io::ErrorKind::ConnectionRefused), "_ping").to_string();
        assert!(msg.contains("no Podman socket at") && msg.contains("connection refused"), "{msg}");

        let err = f.io(&io::Error::from(io::ErrorKind::PermissionDenied), "_ping");
        assert_eq!(err.exit_code(), crate::error::exit::ENVIRONMENT);
        let msg = err.to_string();
        assert!(msg.contains("permission denied on the Podman socket at /nonexistent/podman.sock"), "{msg}");
        assert!(msg.contains("run as root or as the user whose socket it is"), "{msg}");
        assert!(msg.contains("rootless socket"), "{msg}");

        let d = discovered("/run/user/1000/podman/podman.sock", "rootless default ($XDG_RUNTIME_DIR)");
        let msg = Failure { d: &d }.io(&io::Error::from(io::ErrorKind::NotFound), "_ping").to_string();
        assert!(msg.contains("help: start the user's Podman API socket with `systemctl --user"), "{msg}");

        let d = Discovered { endpoint: Endpoint::Tcp("127.0.0.1:1".into()), why: "--url".into() };
        let msg =
            Failure { d: &d }.io(&io::Error::from(io::ErrorKind::ConnectionRefused), "_ping").to_string();
        assert!(msg.contains("nothing listens at tcp://127.0.0.1:1"), "{msg}");
    }

    #[test]
    fn too_old_and_not_podman_messages() {
        let d = discovered("/tmp/x.sock", "--url");
        let f = Failure { d: &d };
        let msg = f.version(VersionProblem::TooOld("3.4.4".into())).to_string();
        assert!(
            msg.contains("Podman 3.4.4 at unix:///tmp/x.sock (from --url) is older than 4.3, the oldest"),
            "{msg}"
        );
        let msg = f.not_podman("x").to_string();
        assert!(msg.starts_with(
            "error: unix:///tmp/x.sock (from --url) does not answer like a Podman API socket: x"
        ));
        let d = discovered("/run/podman/podman.sock", "rootful default");
        let msg = Failure { d: &d }.io(&io::Error::from(io::ErrorKind::NotFound), "_ping").to_string();
        assert!(
            msg.starts_with("error: no Podman socket at /run/podman/podman.sock (the rootful default)\n")
        );
    }

    #[test]
    fn http_parsing() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nLibpod-Api-Version: 4.3.1\r\nContent-Length: 2\r\n\r\nOKextra",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"OK"[..]));
        assert_eq!(check_ping(&r).unwrap(), "4.3.1");

        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2;x=y\r\n2]\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"[1,2]");

        let r = parse_response(b"HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"nope"[..]));
        assert!(check_ping(&r).unwrap_err().contains("HTTP 404"));

        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK").unwrap();
        assert!(check_ping(&r).unwrap_err().contains("no Libpod-Api-Version header"));
        let r = parse_response(b"HTTP/1.1 200 OK\r\nLibpod-Api-Version: 4.3.1\r\n\r\n{}").unwrap();
        assert!(check_ping(&r).unwrap_err().contains("instead of OK"));

        for bad in [
            &b""[..],
            b"\x00\xff\xfe garbage",
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab",
        ] {
            assert!(parse_response(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            parse_response(b"\x16\x03\x01 tls").unwrap_err(),
            "not HTTP (it sent 7 bytes starting with 16 03 01 20 74 6c 73)"
        );
        assert_eq!(
            parse_response(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap_err(),
            "not HTTP (it sent 21 bytes starting with \"SSH-2.0-OpenSSH_9.2\\r\\n\")"
        );
    }

    #[test]
    fn sizes_never_go_negative() {
        assert_eq!(size(None), 0);
        assert_eq!(size(Some(-5)), 0);
        assert_eq!(size(Some(i64::MAX)), i64::MAX as u64);
        assert_eq!(path_segment("abc-1_2.x"), "abc-1_2.x");
        assert_eq!(path_segment("../x?y"), "..%2Fx%3Fy");
    }

    // -- The recorded answers of Podman 4.3.1 --------------------------------------------

    const INFO: &str = include_str!("../../tests/fixtures/podman-4.3.1/info.json");
    const VERSION: &str = include_str!("../../tests/fixtures/podman-4.3.1/version.json");
    const IMAGES: &str = include_str!("../../tests/fixtures/podman-4.3.1/images.json");
    const CONTAINERS: &str = include_str!("../../tests/fixtures/podman-4.3.1/containers.json");
    const VOLUMES: &str = include_str!("../../tests/fixtures/podman-4.3.1/volumes.json");
    const PING: &[u8] = include_bytes!("../../tests/fixtures/podman-4.3.1/ping.http");
    const INSPECTS: [&str; 4] = [
        include_str!("../../tests/fixtures/podman-4.3.1/inspect-sleeper.json"),
        include_str!("../../tests/fixtures/podman-4.3.1/inspect-fixture-web.json"),
        include_str!("../../tests/fixtures/podman-4.3.1/inspect-fixture-exited.json"),
        include_str!("../../tests/fixtures/podman-4.3.1/inspect-fixture-rm.json"),
    ];

    const BUSYBOX: &str = "2430362f000833281e04a4362b98c757e4caad8e731f948d71d2b8f2f95d50c0";

    #[test]
    fn fixture_ping_and_version() {
        let ping = parse_response(PING).unwrap();
        assert_eq!(check_ping(&ping).unwrap(), "4.3.1");
        let v: models::VersionResponse = serde_json::from_str(VERSION).unwrap();
        assert_eq!(v.version.as_deref(), Some("4.3.1"));
        assert!(check_version("4.3.1").is_ok());
    }

    #[test]
    fn fixture_info() {
        let info: models::Info = serde_json::from_str(INFO).unwrap();
        let (rootless, storage) = storage_from_info(info).unwrap();
        assert!(!rootless);
        assert_eq!(
            storage,
            StorageFacts {
                driver: "overlay".into(),
                graphroot: "/tmp/pt/mnt/storage".into(),
                runroot: "/tmp/pt/run".into(),
                backing_filesystem: Some("btrfs".into()),
                volume_path: Some("/tmp/pt/mnt/storage/volumes".into()),
            }
        );
        let info: models::Info = serde_json::from_str(r#"{"host":null,"store":{"graphStatus":{}}}"#).unwrap();
        let (rootless, storage) = storage_from_info(info).unwrap();
        assert!(!rootless);
        assert_eq!(storage, StorageFacts::default());
        let info: models::Info = serde_json::from_str("{}").unwrap();
        assert!(storage_from_info(info).is_err());
    }

    #[test]
    fn fixture_images() {
        let images: Vec<models::LibpodImageSummary> = serde_json::from_str(IMAGES).unwrap();
        let images: Vec<Image> = images.into_iter().map(image_from).collect();
        assert_eq!(
            images[0],
            Image {
                id: BUSYBOX.into(),
                names: vec!["localhost/busybox:test".into(), "localhost/fixture-tag:1".into()],
                size: 1997895,
                shared_size: 0,
                containers: 4,
            }
        );
        // A dangling image: RepoTags is null.
        assert_eq!(images[1].names, Vec::<String>::new());
        assert_eq!(images[1].size, 2005857);
    }

    #[test]
    fn fixture_volumes() {
        let volumes: Vec<models::Volume> = serde_json::from_str(VOLUMES).unwrap();
        let volumes: Vec<Volume> = volumes.into_iter().map(volume_from).collect();
        assert_eq!(volumes.len(), 2);
        let cache = &volumes[0];
        assert_eq!(cache.name, "fixture-cache");
        assert_eq!(cache.driver, "local");
        assert_eq!(cache.mountpoint, "/tmp/pt/mnt/storage/volumes/fixture-cache/_data");
        assert_eq!(cache.labels.get("io.podfs.class").map(String::as_str), Some("cache"));
        assert_eq!(cache.options.get("device").map(String::as_str), Some("/tmp/fixture-voldev"));
        assert_eq!(cache.options.get("o").map(String::as_str), Some("bind"));
        assert_eq!((cache.size, cache.used_by.len()), (None, 0));
        assert_eq!(volumes[1].labels.get("io.podfs.class").map(String::as_str), Some("database"));
        assert!(volumes[1].options.is_empty());
    }

    /// Everything together, as `fetch` assembles it.
    fn fixture_host() -> LiveHost {
        let info: models::Info = serde_json::from_str(INFO).unwrap();
        let (rootless, storage) = storage_from_info(info).unwrap();
        let images: Vec<models::LibpodImageSummary> = serde_json::from_str(IMAGES).unwrap();
        let listed: Vec<models::ListContainer> = serde_json::from_str(CONTAINERS).unwrap();
        let volumes: Vec<models::Volume> = serde_json::from_str(VOLUMES).unwrap();
        let mut inspects: Vec<(String, RawInspect)> = INSPECTS
            .iter()
            .map(|text| {
                let id: serde_json::Value = serde_json::from_str(text).unwrap();
                (id["Id"].as_str().unwrap().to_string(), serde_json::from_str(text).unwrap())
            })
            .collect();
        let containers = listed
            .into_iter()
            .map(container_from_list)
            .map(|mut c| {
                let at = inspects.iter().position(|(id, _)| *id == c.id).unwrap();
                apply_inspect(&mut c, inspects.remove(at).1);
                c
            })
            .collect();
        assemble(
            "unix:///tmp/pt/podman.sock".into(),
            "4.3.1".into(),
            rootless,
            storage,
            images.into_iter().map(image_from).collect(),
            containers,
            volumes.into_iter().map(volume_from).collect(),
        )
    }

    #[test]
    fn fixture_containers_and_inspections() {
        let host = fixture_host();
        let names: Vec<&str> = host.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["fixture-exited", "fixture-rm", "fixture-web", "sleeper"]);
        let [exited, rm, web, sleeper] = &host.containers[..] else { panic!() };

        assert_eq!(sleeper.id, "3f30b816d8a28588e27a1c4540561cd42c4877a2560bcb49911483038a5b6eda");
        assert_eq!((sleeper.image.as_str(), sleeper.image_id.as_str()), ("localhost/busybox:test", BUSYBOX));
        assert_eq!(sleeper.state, "running");
        assert!(sleeper.labels.is_empty());
        assert_eq!(sleeper.restart_policy, "");
        assert_eq!(sleeper.rw_size, Some(12));
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

        assert_eq!(web.restart_policy, "always");
        assert_eq!(web.labels.get("io.podfs.class").map(String::as_str), Some("web"));
        assert_eq!(
            web.mounts,
            [
                Mount {
                    kind: "volume".into(),
                    source: "/tmp/pt/mnt/storage/volumes/fixture-cache/_data".into(),
                    destination: "/cache".into(),
                    volume: Some("fixture-cache".into()),
                    read_write: true,
                },
                Mount {
                    kind: "bind".into(),
                    source: "/tmp/fixture-bind".into(),
                    destination: "/srv".into(),
                    volume: None,
                    read_write: false,
                },
                Mount {
                    kind: "tmpfs".into(),
                    source: "tmpfs".into(),
                    destination: "/run/scratch".into(),
                    volume: None,
                    read_write: true,
                },
            ]
        );

        assert_eq!((exited.state.as_str(), exited.rw_size), ("exited", Some(15)));
        assert!(exited.mounts.is_empty());
        assert_eq!((rm.state.as_str(), rm.auto_remove, rm.rw_size), ("created", true, Some(0)));
        assert!(!web.auto_remove && !sleeper.auto_remove);

        let used: Vec<(&str, &[String])> =
            host.volumes.iter().map(|v| (v.name.as_str(), &v.used_by[..])).collect();
        assert_eq!(
            used,
            [("fixture-cache", &["fixture-web".to_string()][..]), ("pgdata", &["sleeper".to_string()][..])]
        );
        assert_eq!(host.images[0].names[0], "localhost/busybox:test");
        assert!(host.images[1].names.is_empty());
    }

    #[test]
    fn inspect_tolerates_nulls_and_gaps() {
        for text in [
            "{}",
            r#"{"Mounts":null,"HostConfig":null}"#,
            r#"{"HostConfig":{"RestartPolicy":null,"Tmpfs":null}}"#,
        ] {
            let inspect: RawInspect = serde_json::from_str(text).unwrap();
            let mut c = Container::default();
            apply_inspect(&mut c, inspect);
            assert!(c.mounts.is_empty() && c.restart_policy.is_empty());
        }
        let inspect: RawInspect = serde_json::from_str(
            r#"{"Mounts":[{"Type":"volume","Name":null,"Source":null,"Destination":"/d"}],
                "HostConfig":{"Tmpfs":{"/t":"ro,nosuid"},"AutoRemove":true}}"#,
        )
        .unwrap();
        let mut c = Container::default();
        apply_inspect(&mut c, inspect);
        assert_eq!(c.mounts[0].volume, None);
        assert!(c.mounts[0].read_write);
        assert!(!c.mounts[1].read_write);
        assert!(c.auto_remove);
    }

    #[test]
    fn listing_tolerates_nulls_and_negative_sizes() {
        let listed: Vec<models::ListContainer> = serde_json::from_str(
            r#"[{"Id":"0123456789abcdef","Names":null,"Labels":null,"Size":{"rwSize":-5}},{"Id":"é"},{}]"#,
        )
        .unwrap();
        let c: Vec<Container> = listed.into_iter().map(container_from_list).collect();
        assert_eq!((c[0].name.as_str(), c[0].rw_size), ("0123456789ab", Some(0)));
        assert_eq!((c[1].name.as_str(), c[1].rw_size), ("é", None));
        assert_eq!(c[2].name, "");
        let images: Vec<models::LibpodImageSummary> = serde_json::from_str(
            r#"[{"Id":"sha256:ab","Size":-5,"SharedSize":null,"RepoTags":["<none>:<none>"]}]"#,
        )
        .unwrap();
        let i = image_from(images.into_iter().next().unwrap());
        assert_eq!(i, Image { id: "ab".into(), ..Image::default() });
    }
}
