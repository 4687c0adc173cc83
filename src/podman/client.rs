//! [`Client`]: every call the tool makes to Podman's API, each bounded by [`Timeouts`] and
//! failing with one [`PodmanError`].
//!
//! Calls, all under podman-api's `/v4.3.1/libpod` prefix:
//!
//! - `GET _ping`: on the tool's own connection ([`super::http`]). podman-api's `ping`
//!   ignores the body and folds every failure into one error; the first contact must tell
//!   "no socket", "permission denied", "not HTTP" and "not Podman" apart, and name the
//!   process that answers.
//! - `GET info`, `images/json`, `containers/json?all=true&size=true`, `volumes/json`:
//!   podman-api, whose typed models read the answers of 4.3 and 5.x.
//! - `GET /containers/json?all=true` (the Docker-compatible list, whose `Mounts` Podman
//!   fills from each container's inspection) and `containers/json?filters=` by
//!   `restart-policy`, two lists (three before Podman 5): own connection. With the libpod
//!   list they describe every container, so a scan makes the same number of calls on any
//!   host: 8 on Podman 5, 9 on 4.
//! - `GET containers/{id}/json`, `volumes/{name}/json`: own connection, read into
//!   tolerant structs; a scan inspects only a container the lists cannot describe.
//!   podman-api's `inspect` always adds `size=true`, which makes Podman walk the
//!   container's writable layer again.
//! - `GET events?stream=true`: own connection, kept open ([`EventStream`]).
//! - `POST containers/{name}/stop?timeout=N`, `start`, `pause`, `unpause`: own
//!   connection. podman-api sends stop's grace period as `Timeout`, which Podman 4.3.1
//!   ignores (it waits its default 10 s); it reads `timeout`.
//!
//! `version` is not called: it is slow (about 0.4 s on 4.3.1, it asks every component),
//! and `_ping` and `info` name the version. `system/df` is never called: it is slow on big
//! hosts, and volume sizes are measured by walking the directories.

use super::answers::{self, CompatContainer, ListedId, RawContainer, RawInspect};
use super::endpoint::{Discovered, Endpoint};
use super::error::{ErrorKind, PodmanError, body_excerpt, excerpt};
use super::events::{EventFilter, EventStream};
use super::http::{self, Answer, Broken};
use super::version::Version;
use crate::inventory::live::{Container, Image, StorageFacts, Volume};
use hyper::Method;
use podman_api::{Podman, models};
use std::collections::HashMap;
use std::time::Duration;
use tokio::task::JoinSet;

/// Oldest Podman this reads (tested: 4.3.1; its API path /v4.3.1/libpod is what podman-api 0.11 uses).
pub const MIN_VERSION: Version = Version { major: 4, minor: 3 };

/// How many container inspections run at once.
const INSPECT_CONCURRENCY: usize = 16;

/// Podman's stop timeout, in seconds, for a container that names none.
pub const DEFAULT_STOP_TIMEOUT: u64 = 10;

/// How long to wait for answers: every limit of every call is here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting and the first answer: `_ping`, and the head of the event stream.
    pub first_answer: Duration,
    /// Each later call. Listing containers with sizes can take minutes on a big host.
    pub request: Duration,
}

impl Timeouts {
    /// For reading a whole host (`scan`).
    pub const SCAN: Timeouts =
        Timeouts { first_answer: Duration::from_secs(10), request: Duration::from_secs(300) };

    /// For a command that acts on a few containers or volumes (snapshot, restore, migrate):
    /// a quick answer to the ping, and room for a stop or a list of a big host.
    pub const CONTROL: Timeouts =
        Timeouts { first_answer: Duration::from_secs(5), request: Duration::from_secs(120) };

    /// For looking at one object at a time, as the daemon does for each event.
    pub const LOOKUP: Timeouts =
        Timeouts { first_answer: Duration::from_secs(10), request: Duration::from_secs(30) };

    /// A stop waits for the container's grace period, then for the kill and cleanup.
    pub fn stop(&self, grace: Duration) -> Duration {
        grace + self.request
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::SCAN
    }
}

/// What `_ping` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// `Libpod-Api-Version`, e.g. `4.3.1`.
    pub version: String,
    /// The process that answered on a unix socket (`SO_PEERCRED`), to read paths in its
    /// mount namespace; `None` over TCP or when the kernel cannot name it here.
    pub server_pid: Option<u32>,
}

/// What `info` tells about the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Podman's version, when `info` names one.
    pub version: Option<String>,
    pub rootless: bool,
    pub storage: StorageFacts,
}

/// What a stop or start did: Podman answers 304 when the container already was so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Changed,
    AlreadySo,
}

/// A client for one Podman endpoint. Cheap to clone; each call opens its own connection.
#[derive(Debug, Clone)]
pub struct Client {
    at: Discovered,
    timeouts: Timeouts,
}

impl Client {
    pub fn new(at: Discovered, timeouts: Timeouts) -> Self {
        Client { at, timeouts }
    }

    /// The first contact: checks that a Podman of [`MIN_VERSION`] or newer answers.
    pub async fn ping(&self) -> Result<Ping, PodmanError> {
        let limit = self.timeouts.first_answer;
        let (answer, server_pid) = self.exchange(Method::GET, "_ping", "_ping", limit).await?;
        let version =
            check_ping(&answer).map_err(|detail| self.error("_ping", ErrorKind::NotPodman(detail)))?;
        self.check_version("_ping", &version)?;
        Ok(Ping { version, server_pid })
    }

    /// `info`: the version, rootless or not, and the storage configuration in force.
    pub async fn info(&self) -> Result<HostInfo, PodmanError> {
        let podman = self.podman("info")?;
        let info = self.api("info", podman.info()).await?;
        let version = info.version.as_ref().and_then(|v| v.version.clone()).filter(|v| !v.trim().is_empty());
        if let Some(v) = &version {
            self.check_version("info", v)?;
        }
        let (rootless, storage) = answers::storage_from_info(info)
            .map_err(|detail| self.error("info", ErrorKind::NotPodman(detail)))?;
        Ok(HostInfo { version, rootless, storage })
    }

    pub async fn images(&self) -> Result<Vec<Image>, PodmanError> {
        let podman = self.podman("images/json")?;
        let images = self.api("images/json", podman.images().list(&Default::default())).await?;
        Ok(images.into_iter().map(answers::image_from).collect())
    }

    pub async fn volumes(&self) -> Result<Vec<Volume>, PodmanError> {
        let podman = self.podman("volumes/json")?;
        let volumes = self.api("volumes/json", podman.volumes().list(&Default::default())).await?;
        Ok(volumes.into_iter().map(answers::volume_from).collect())
    }

    /// Every container, with its size, mounts and restart policy, in a constant number of
    /// calls made at once: the libpod list (state, image, labels, `--rm`, size), the
    /// Docker-compatible list (mounts) and two or three lists filtered by restart policy
    /// (`answers::RESTART_FILTERS`). Only a
    /// container the lists cannot describe (a `--tmpfs` mount; created between the lists)
    /// is inspected, 16 at a time; one removed before that is left out. `podman_version`
    /// tells the policy Podman reports for a container created without one.
    pub async fn containers(&self, podman_version: &str) -> Result<Vec<Container>, PodmanError> {
        self.list_containers(Some(podman_version)).await
    }

    /// Every container's id, name, state, image, labels and mounts, without sizes (which
    /// Podman computes per container) or restart policies (left empty): what acting on
    /// volumes needs. Two list calls at once, as [`containers`](Self::containers) makes.
    pub async fn containers_brief(&self) -> Result<Vec<Container>, PodmanError> {
        self.list_containers(None).await
    }

    /// The container lists; with `full` (the server's version) also sizes and restart
    /// policies.
    async fn list_containers(&self, full: Option<&str>) -> Result<Vec<Container>, PodmanError> {
        let podman = self.podman("containers/json")?;
        let opts = podman_api::opts::ContainerListOpts::builder().all(true).size(full.is_some()).build();
        let lists = podman.containers();
        let policies = async {
            match full {
                Some(version) => self.restart_policies(version).await,
                None => Ok(HashMap::new()),
            }
        };
        let (listed, compat, policies) = tokio::try_join!(
            self.api("containers/json", lists.list(&opts)),
            self.compat_containers(),
            policies,
        )?;
        let (mut containers, uninspected) =
            answers::containers_from_lists(listed, compat, &policies, full.unwrap_or_default());
        for (i, why) in &uninspected {
            tracing::debug!(container = %containers[*i].name, "inspecting the container: {why}");
        }
        let uninspected: Vec<usize> = uninspected.into_iter().map(|(i, _)| i).collect();
        let ids = uninspected.iter().map(|&i| containers[i].id.clone()).collect();
        let inspected = self.inspect_all(ids).await?;
        let mut kept = vec![true; containers.len()];
        for (i, inspect) in uninspected.into_iter().zip(inspected) {
            match inspect {
                Some(inspect) => answers::apply_inspect(&mut containers[i], inspect),
                None => {
                    tracing::debug!(container = %containers[i].name, "container vanished before it could be inspected");
                    kept[i] = false;
                }
            }
        }
        let mut kept = kept.into_iter();
        containers.retain(|_| kept.next().unwrap_or(true));
        if full.is_none() {
            containers.iter_mut().for_each(|c| c.restart_policy.clear());
        }
        Ok(containers)
    }

    /// The Docker-compatible container list: each container's mounts as inspect names them.
    async fn compat_containers(&self) -> Result<Vec<CompatContainer>, PodmanError> {
        const CALL: &str = "containers/json (Docker-compatible)";
        let path = podman_api::LATEST_API_VERSION.make_endpoint("/containers/json?all=true");
        let limit = self.timeouts.request;
        let (answer, _) = http::exchange(&self.at.endpoint, Method::GET, &path, limit)
            .await
            .map_err(|b| self.broken(CALL, b, limit))?;
        match answer.status {
            200 => serde_json::from_slice(&answer.body).map_err(|e| self.bad_json(CALL, &e)),
            _ => Err(self.failed(CALL, &answer)),
        }
    }

    /// Container id → restart policy, from the lists [`answers::restart_filters`] names,
    /// all at once.
    async fn restart_policies(
        &self,
        podman_version: &str,
    ) -> Result<HashMap<String, &'static str>, PodmanError> {
        let filters = answers::restart_filters(podman_version);
        let listed = |i: usize| async move {
            match filters.get(i) {
                Some(values) => self.with_restart_policy(values).await,
                None => Ok(Vec::new()),
            }
        };
        let (a, b, c) = tokio::try_join!(listed(0), listed(1), listed(2))?;
        Ok(answers::restart_policies(&[a, b, c]))
    }

    /// The ids of the containers whose restart policy is one of `policies`.
    async fn with_restart_policy(&self, policies: &[&str]) -> Result<Vec<ListedId>, PodmanError> {
        let call = format!("containers/json?filters=restart-policy={}", policies.join(","));
        let filter = serde_json::json!({ "restart-policy": policies }).to_string();
        let path = format!("containers/json?all=true&filters={}", path_segment(&filter));
        let (answer, _) = self.exchange(Method::GET, &call, &path, self.timeouts.request).await?;
        match answer.status {
            200 => serde_json::from_slice(&answer.body).map_err(|e| self.bad_json(&call, &e)),
            _ => Err(self.failed(&call, &answer)),
        }
    }

    async fn inspect_all(&self, ids: Vec<String>) -> Result<Vec<Option<RawInspect>>, PodmanError> {
        let mut results: Vec<Option<RawInspect>> = ids.iter().map(|_| None).collect();
        let mut pending = ids.into_iter().enumerate();
        let mut running = JoinSet::new();
        loop {
            while running.len() < INSPECT_CONCURRENCY {
                let Some((i, id)) = pending.next() else { break };
                let client = self.clone();
                running.spawn(async move { (i, client.inspect::<RawInspect>("containers", &id).await) });
            }
            let Some(joined) = running.join_next().await else { break };
            let (i, inspect) = joined.map_err(|e| {
                let e = std::io::Error::other(format!("inspecting a container failed: {e}"));
                self.error("containers/json", ErrorKind::Io(e))
            })?;
            if let Some(slot) = results.get_mut(i) {
                *slot = inspect?;
            }
        }
        Ok(results)
    }

    /// One container from `containers/{id}/json` alone; `None` when there is none.
    pub async fn container(&self, name_or_id: &str) -> Result<Option<Container>, PodmanError> {
        let raw = self.inspect::<RawContainer>("containers", name_or_id).await?;
        Ok(raw.map(answers::container_from_inspect))
    }

    /// One volume from `volumes/{name}/json`; `None` when there is none.
    pub async fn volume(&self, name: &str) -> Result<Option<Volume>, PodmanError> {
        let raw = self.inspect::<models::Volume>("volumes", name).await?;
        Ok(raw.map(answers::volume_from))
    }

    /// What a volume's driver says of it (inspect's `Status`: a plugin's own fields, asked
    /// of the plugin at each inspection); empty for a local volume or none.
    pub async fn volume_status(
        &self,
        name: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, PodmanError> {
        let raw = self.inspect::<models::Volume>("volumes", name).await?;
        Ok(match raw.and_then(|v| v.status) {
            Some(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        })
    }

    /// `GET {kind}/{name}/json`, read as `T`; `None` for 404.
    async fn inspect<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<Option<T>, PodmanError> {
        let call = format!("{kind}/{name}/json");
        let path = format!("{kind}/{}/json", path_segment(name));
        let (answer, _) = self.exchange(Method::GET, &call, &path, self.timeouts.request).await?;
        match answer.status {
            200 => serde_json::from_slice(&answer.body).map(Some).map_err(|e| self.bad_json(&call, &e)),
            404 => Ok(None),
            _ => Err(self.failed(&call, &answer)),
        }
    }

    /// Follows Podman's events that match `filter`, from `filter.since` on.
    pub async fn events(&self, filter: &EventFilter<'_>) -> Result<EventStream, PodmanError> {
        let limit = self.timeouts.first_answer;
        let path = libpod(&filter.path());
        let opened = async {
            let (streaming, server_pid) = http::open(&self.at.endpoint, Method::GET, &path, false).await?;
            match streaming.status {
                200 => Ok(Ok((streaming, server_pid))),
                _ => streaming.whole().await.map(Err),
            }
        };
        match tokio::time::timeout(limit, opened).await.unwrap_or(Err(Broken::Timeout)) {
            Ok(Ok((streaming, server_pid))) => Ok(EventStream::new(self.at.clone(), streaming, server_pid)),
            Ok(Err(refused)) => Err(self.failed("events", &refused)),
            Err(broken) => Err(self.broken("events", broken, limit)),
        }
    }

    /// Stops a container: its stop signal (SIGTERM by default), and SIGKILL after `grace`.
    /// Podman 4.3.1 refuses to stop a paused container (HTTP 500): unpause it first.
    pub async fn stop(&self, container: &str, grace: Duration) -> Result<Outcome, PodmanError> {
        let seconds = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        self.control(container, "stop", &format!("?timeout={seconds}"), self.timeouts.stop(grace)).await
    }

    /// Stops `container` with its own stop timeout (inspect's `StopTimeout`, else Podman's
    /// default, [`DEFAULT_STOP_TIMEOUT`] seconds), as `podman stop` would.
    pub async fn stop_with_own_timeout(&self, container: &str) -> Result<Outcome, PodmanError> {
        let own = self.container(container).await?.and_then(|c| c.stop_timeout);
        self.stop(container, Duration::from_secs(own.unwrap_or(DEFAULT_STOP_TIMEOUT))).await
    }

    pub async fn start(&self, container: &str) -> Result<Outcome, PodmanError> {
        self.control(container, "start", "", self.timeouts.request).await
    }

    /// Freezes a running container's processes (cgroup freezer). Podman 4.3.1 refuses a
    /// paused or stopped container with HTTP 500 (container state improper).
    pub async fn pause(&self, container: &str) -> Result<(), PodmanError> {
        self.control(container, "pause", "", self.timeouts.request).await.map(drop)
    }

    /// Thaws a paused container; Podman 4.3.1 refuses one that is not paused (HTTP 500).
    pub async fn unpause(&self, container: &str) -> Result<(), PodmanError> {
        self.control(container, "unpause", "", self.timeouts.request).await.map(drop)
    }

    async fn control(
        &self,
        container: &str,
        action: &str,
        query: &str,
        limit: Duration,
    ) -> Result<Outcome, PodmanError> {
        let call = format!("containers/{container}/{action}");
        if !is_name(container) {
            return Err(self.error(&call, ErrorKind::BadName(container.to_string())));
        }
        let (answer, _) = self.exchange(Method::POST, &call, &format!("{call}{query}"), limit).await?;
        match answer.status {
            200 | 204 => Ok(Outcome::Changed),
            304 => Ok(Outcome::AlreadySo),
            _ => Err(self.failed(&call, &answer)),
        }
    }

    /// One request on the tool's own connection; `path` is below `/libpod/`.
    async fn exchange(
        &self,
        method: Method,
        call: &str,
        path: &str,
        limit: Duration,
    ) -> Result<(Answer, Option<u32>), PodmanError> {
        http::exchange(&self.at.endpoint, method, &libpod(path), limit)
            .await
            .map_err(|b| self.broken(call, b, limit))
    }

    fn podman(&self, call: &str) -> Result<Podman, PodmanError> {
        match &self.at.endpoint {
            Endpoint::Unix(path) => Ok(Podman::unix(path)),
            Endpoint::Tcp(authority) => Podman::tcp(authority)
                .map_err(|e| self.error(call, ErrorKind::NotPodman(format!("bad endpoint: {e}")))),
        }
    }

    /// A podman-api call within [`Timeouts::request`].
    async fn api<T>(
        &self,
        call: &str,
        answer: impl Future<Output = podman_api::Result<T>>,
    ) -> Result<T, PodmanError> {
        let limit = self.timeouts.request;
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.api_error(call, e)),
            Err(_) => Err(self.error(call, ErrorKind::Timeout(limit))),
        }
    }

    fn api_error(&self, call: &str, e: podman_api::Error) -> PodmanError {
        use podman_api::conn::Error as ConnError;
        let kind = match &e {
            podman_api::Error::Fault { code, message }
            | podman_api::Error::Error(ConnError::Fault { code, message }) => match code.as_u16() {
                // Podman knows every path asked for here.
                404 => ErrorKind::NotPodman(format!(
                    "`{call}` answered HTTP 404{}",
                    body_excerpt(message.as_bytes())
                )),
                status => ErrorKind::Failed { status, message: message.clone() },
            },
            podman_api::Error::SerdeJsonError(j) | podman_api::Error::Error(ConnError::SerdeJsonError(j)) => {
                return self.bad_json(call, j);
            }
            _ => match http::io_source(&e) {
                Some(io) => ErrorKind::Io(std::io::Error::new(io.kind(), io.to_string())),
                None => ErrorKind::NotPodman(format!("`{call}`: {e}")),
            },
        };
        self.error(call, kind)
    }

    fn broken(&self, call: &str, broken: Broken, limit: Duration) -> PodmanError {
        self.error(call, broken.kind(call, Some(limit)))
    }

    fn bad_json(&self, call: &str, e: &serde_json::Error) -> PodmanError {
        let shape = if e.is_data() { "JSON of an unexpected shape" } else { "not JSON" };
        self.error(call, ErrorKind::NotPodman(format!("`{call}` answered {shape} ({e})")))
    }

    /// An error status, with the message of Podman's error body (or the body's start).
    fn failed(&self, call: &str, answer: &Answer) -> PodmanError {
        #[derive(serde::Deserialize)]
        struct Said {
            message: String,
        }
        let message = match serde_json::from_slice::<Said>(&answer.body) {
            Ok(said) => said.message,
            Err(_) => String::from_utf8_lossy(&answer.body).trim().to_string(),
        };
        self.error(call, ErrorKind::Failed { status: answer.status, message })
    }

    fn error(&self, call: &str, kind: ErrorKind) -> PodmanError {
        PodmanError::new(&self.at, call, kind)
    }

    fn check_version(&self, call: &str, version: &str) -> Result<(), PodmanError> {
        match Version::parse(version) {
            None => Err(self.error(
                call,
                ErrorKind::NotPodman(format!(
                    "it reports version {} which is not a version number",
                    excerpt(version)
                )),
            )),
            Some(v) if v < MIN_VERSION => Err(self.error(call, ErrorKind::TooOld(version.to_string()))),
            Some(_) => Ok(()),
        }
    }
}

/// The full path of `path` below `/libpod/`, with the API version podman-api uses, so the
/// tool's own calls speak the same version as podman-api's.
pub(super) fn libpod(path: &str) -> String {
    podman_api::LATEST_API_VERSION.make_endpoint(format!("/libpod/{path}"))
}

/// Checks a `_ping` answer and returns the `Libpod-Api-Version` it names.
fn check_ping(r: &Answer) -> Result<String, String> {
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

/// A container name or id as Podman makes them: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn is_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Percent-encodes what could break out of one path segment.
pub(super) fn path_segment(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let client = Client::new(
            Discovered { endpoint: Endpoint::Unix("/x.sock".into()), why: "--url".into() },
            Timeouts::default(),
        );
        let too_old = |v| {
            matches!(
                client.check_version("_ping", v).as_ref().map_err(PodmanError::kind),
                Err(ErrorKind::TooOld(_))
            )
        };
        assert!(client.check_version("_ping", "4.3.1").is_ok());
        assert!(client.check_version("_ping", "5.2.0").is_ok());
        assert!(too_old("4.2.9") && too_old("3.4.4"));
        let e = client.check_version("_ping", "x").unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::NotPodman(d) if d.contains("not a version number")), "{e}");
        assert_eq!(podman_api::LATEST_API_VERSION.to_string(), "4.3.1");
        assert_eq!(libpod("_ping"), "/v4.3.1/libpod/_ping");
    }

    use crate::podman::http::tests::{Peer, peer};

    fn client_of(p: &Peer) -> Client {
        Client::new(Discovered { endpoint: p.endpoint.clone(), why: "--url".into() }, Timeouts::LOOKUP)
    }

    /// An HTTP/1.1 answer with a chunked body of `chunks`; `end` sends the last chunk.
    fn chunked(status: &str, chunks: &[&str], end: bool) -> &'static [u8] {
        let mut out = format!("HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n");
        for c in chunks {
            out.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
        }
        if end {
            out.push_str("0\r\n\r\n");
        }
        Box::leak(out.into_bytes().into_boxed_slice())
    }

    #[tokio::test]
    async fn events_come_line_by_line_across_chunks() {
        let p = peer(chunked(
            "200 OK",
            &[
                r#"{"Type":"container","Action":"pause","Actor":{"ID":"ab"},"timeNano":5}"#,
                "\nnot an event\n{\"Type\":\"vol",
                r#"ume","Action":"create","Actor":{"ID":"","Attributes":{"name":"vv"}}}"#,
                "\n",
            ],
            true,
        ));
        let mut events = client_of(&p).events(&EventFilter::default()).await.unwrap();
        assert_eq!(events.server_pid(), Some(std::process::id()));
        let first = events.next().await.unwrap().unwrap();
        assert_eq!((first.action.as_str(), first.object(), first.time_nano), ("pause", "ab", 5));
        let second = events.next().await.unwrap().unwrap();
        assert_eq!((second.kind.as_str(), second.object()), ("volume", "vv"));
        assert!(events.next().await.unwrap().is_none(), "Podman ended the stream");

        // Cut off: the event that came is read, then the stream is broken.
        let p = peer(chunked("200 OK", &["{\"Action\":\"start\"}\n"], false));
        let mut events = client_of(&p).events(&EventFilter::default()).await.unwrap();
        assert_eq!(events.next().await.unwrap().unwrap().action, "start");
        let e = events.next().await.unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Interrupted(_)), "{e}");
        assert!(e.brief().contains("stopped answering `events` midway (error reading a body"), "{e}");
    }

    #[tokio::test]
    async fn refused_or_broken_calls_say_so() {
        let p = peer(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 16\r\n\r\n{\"message\":\"no\"}");
        let Err(e) = client_of(&p).events(&EventFilter::default()).await else { panic!("refused") };
        assert_eq!(e.status(), Some(500), "{e}");
        assert!(e.to_string().contains("failed `events`: HTTP 500: no\n"), "{e}");

        let p = peer(b"HTTP/1.1 304 Not Modified\r\n\r\n");
        assert_eq!(client_of(&p).stop("pg", Duration::from_secs(1)).await.unwrap(), Outcome::AlreadySo);
        let p = peer(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(client_of(&p).start("pg").await.unwrap(), Outcome::Changed);
        let p = peer(b"SSH-2.0-OpenSSH_9.2\r\n");
        let e = client_of(&p).pause("pg").await.unwrap_err();
        assert!(
            e.to_string()
                .contains("does not answer like a Podman API socket: `containers/pg/pause`: not HTTP"),
            "{e}"
        );
        let p = peer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[1,2]");
        let e = client_of(&p).container("pg").await.unwrap_err();
        assert!(e.to_string().contains("`containers/pg/json` answered JSON of an unexpected shape"), "{e}");
        let p = peer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}");
        assert!(client_of(&p).volume("pg").await.unwrap().is_none());
    }

    #[test]
    fn names_and_path_segments() {
        assert_eq!(path_segment("abc-1_2.x"), "abc-1_2.x");
        assert_eq!(path_segment("../x?y"), "..%2Fx%3Fy");
        for good in ["pg", "a1.b_c-d", "3f30b816d8a2"] {
            assert!(is_name(good), "{good}");
        }
        for bad in ["", "-x", ".x", "../x", "a/b", "a?b", "a b", "é"] {
            assert!(!is_name(bad), "{bad}");
        }
        assert_eq!(Timeouts::default(), Timeouts::SCAN);
        assert_eq!(Timeouts::SCAN.stop(Duration::from_secs(5)), Duration::from_secs(305));
    }
}
