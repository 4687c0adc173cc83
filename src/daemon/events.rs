//! Follows Podman's event stream and flags new containers and volumes whose class does
//! not match where their data lies. When Podman goes away (restart, upgrade) the stream
//! ends; it is reopened with a growing delay, asking for the events missed meanwhile.
//!
//! While connected the task only waits on the socket: no timers, no polling.

use super::volumes::VolumeRoot;
use crate::class::Class;
use crate::classify::live::classify_volume;
use crate::diagnostic::Severity;
use crate::inspect::MountView;
use crate::inventory::live::{Container, Volume};
use crate::inventory::podman::{self, Endpoint};
use crate::scan::findings::{Finding, volume_findings};
use crate::scan::{VolumeReport, data_dir};
use hyper::body::HttpBody;
use hyper::{Body, Request};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Time allowed for one inspection while handling an event.
const LOOKUP_LIMIT: Duration = Duration::from_secs(30);
/// An event line longer than this is not Podman's.
const MAX_LINE: usize = 1 << 20;

/// What the watcher needs to judge an event.
pub struct Watcher {
    pub endpoint: Endpoint,
    /// The name Podman knows this plugin by (`podfs`).
    pub plugin_name: String,
    /// The plugin's volumes, to tell the class each was created with.
    pub root: Arc<VolumeRoot>,
}

/// One line of `GET /libpod/events` (the Docker event shape Podman 4.3 and 5.x send).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: Option<BTreeMap<String, String>>,
}

/// The request path: create events of containers and volumes, from `since` on.
pub fn events_path(since: Option<i64>) -> String {
    let filters = r#"{"event":["create"],"type":["container","volume"]}"#;
    let mut path =
        podman::api_path(&format!("/libpod/events?stream=true&filters={}", podman::path_segment(filters)));
    if let Some(s) = since {
        path.push_str(&format!("&since={s}"));
    }
    path
}

/// Splits complete lines off the front of `buffer`.
pub fn take_lines(buffer: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buffer.drain(..=end).collect();
        let line = line.trim_ascii();
        if !line.is_empty() {
            lines.push(line.to_vec());
        }
    }
    lines
}

fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Runs forever: follow the stream, reconnect when it ends.
pub async fn watch(w: Arc<Watcher>) {
    let mut backoff = FIRST_BACKOFF;
    let mut since: Option<i64> = None;
    let mut last_seen: i64 = 0;
    let mut down_logged = false;
    loop {
        match follow(&w, since, &mut last_seen).await {
            Ok(()) => {
                tracing::warn!(podman = %w.endpoint.url(), "Podman's event stream ended (Podman stopped or restarted); reconnecting");
                backoff = FIRST_BACKOFF;
                down_logged = true;
            }
            Err(Failure::Connect(e)) => {
                if !down_logged {
                    tracing::warn!(podman = %w.endpoint.url(), "cannot follow Podman's events: {e}; retrying with backoff up to {}s", MAX_BACKOFF.as_secs());
                    down_logged = true;
                } else {
                    tracing::debug!("Podman events: {e}");
                }
            }
            Err(Failure::Stream(e)) => {
                tracing::warn!(podman = %w.endpoint.url(), "Podman's event stream broke: {e}; reconnecting");
                backoff = FIRST_BACKOFF;
                down_logged = true;
            }
        }
        // Ask for what happened while we were away, once connected again.
        since = Some(if last_seen > 0 { last_seen / 1_000_000_000 } else { now_seconds() - 1 });
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum Failure {
    /// Could not connect or subscribe.
    Connect(String),
    /// Was connected; the stream failed.
    Stream(String),
}

async fn follow(w: &Watcher, since: Option<i64>, last_seen: &mut i64) -> Result<(), Failure> {
    let Endpoint::Unix(path) = &w.endpoint else {
        return Err(Failure::Connect("the events watcher follows unix sockets only".into()));
    };
    let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| Failure::Connect(e.to_string()))?;
    // Placements are read in the mount namespace of the Podman that answers.
    let server_pid = podman::peer_pid(&stream);
    let (mut sender, connection) =
        hyper::client::conn::handshake(stream).await.map_err(|e| Failure::Connect(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::get(events_path(since))
        .header("Host", "d")
        .header("User-Agent", concat!("podman-btrfs-advise/", env!("CARGO_PKG_VERSION")))
        .body(Body::empty())
        .expect("a valid request");
    let response = sender.send_request(request).await.map_err(|e| Failure::Connect(e.to_string()))?;
    if !response.status().is_success() {
        driver.abort();
        return Err(Failure::Connect(format!("`events` answered HTTP {}", response.status())));
    }
    tracing::info!(podman = %w.endpoint.url(), "following Podman events");
    let mut body = response.into_body();
    let mut buffer = Vec::new();
    let result = loop {
        let Some(chunk) = body.data().await else { break Ok(()) };
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => break Err(Failure::Stream(e.to_string())),
        };
        buffer.extend_from_slice(&chunk);
        for line in take_lines(&mut buffer) {
            match serde_json::from_slice::<Event>(&line) {
                Ok(event) if event.time_nano > 0 && event.time_nano <= *last_seen => {}
                Ok(event) => {
                    *last_seen = (*last_seen).max(event.time_nano);
                    for f in judge(w, &event, server_pid).await {
                        log_finding(&f);
                    }
                }
                Err(e) => tracing::warn!("ignoring an event line that is not an event: {e}"),
            }
        }
        if buffer.len() > MAX_LINE {
            break Err(Failure::Stream("an event line longer than 1 MiB".into()));
        }
    };
    driver.abort();
    result
}

/// Logs a finding as one structured line.
pub fn log_finding(f: &Finding) {
    match f.severity {
        Severity::Error | Severity::Warning => {
            tracing::warn!(code = f.code, object = %f.object, help = %f.help, "finding: {}", f.message)
        }
        Severity::Info => {
            tracing::info!(code = f.code, object = %f.object, help = %f.help, "finding: {}", f.message)
        }
    }
}

impl Event {
    /// The object an event is about. Podman 4.3 leaves a volume event's `ID` empty and
    /// names the volume in the `name` attribute.
    pub fn object(&self) -> &str {
        let name = self.actor.attributes.as_ref().and_then(|a| a.get("name")).map(String::as_str);
        match (self.kind.as_str(), self.actor.id.as_str(), name) {
            ("volume", _, Some(name)) if !name.is_empty() => name,
            (_, "", Some(name)) => name,
            (_, id, _) => id,
        }
    }
}

/// The findings one event leads to; placements are read in the mount namespace of
/// `server_pid`, the Podman that sent the event.
async fn judge(w: &Watcher, event: &Event, server_pid: Option<u32>) -> Vec<Finding> {
    let object = event.object();
    if object.is_empty() {
        tracing::debug!("ignoring a {} event that names nothing", event.kind);
        return Vec::new();
    }
    let looked_up = match event.kind.as_str() {
        "volume" => {
            podman::volume(&w.endpoint, object, LOOKUP_LIMIT).await.map(|v| v.map(|v| (vec![v], None)))
        }
        "container" => container_volumes(w, object).await,
        _ => return Vec::new(),
    };
    let (volumes, container) = match looked_up {
        Ok(Some(found)) => found,
        Ok(None) => return Vec::new(), // already removed again
        Err(e) => {
            tracing::warn!(object, "cannot look at a new {}: {e}", event.kind);
            return Vec::new();
        }
    };
    let view = match server_pid {
        Some(pid) => MountView::of_process(pid),
        None => Err("the socket does not name the Podman process (another PID namespace)".to_string()),
    };
    let view =
        view.map_err(|e| tracing::warn!(object, "placement of a new {} not read: {e}", event.kind)).ok();
    let users: Vec<&Container> = container.iter().collect();
    let mut out = Vec::new();
    for v in volumes {
        match classify_volume(&v, &users) {
            Ok(classified) => {
                tracing::debug!(volume = %v.name, class = %classified.class, "judging a new volume");
                out.extend(plugin_findings(w, &v, classified.class));
                let dir = data_dir(&v).to_string();
                let placement = view
                    .as_ref()
                    .filter(|_| !dir.is_empty())
                    .and_then(|view| view.inspect(Path::new(&dir)).ok());
                let report = VolumeReport {
                    volume: v,
                    class: classified.class,
                    evidence: classified.evidence,
                    data_dir: dir,
                    placement,
                };
                out.extend(volume_findings(&report));
            }
            Err(e) => out.push(Finding {
                severity: Severity::Warning,
                code: "bad-label",
                object: format!("volume {}", v.name),
                message: e.to_string().trim_start_matches("error: ").to_string(),
                help: format!("known classes: {}", Class::ALL.map(Class::as_str).join(", ")),
            }),
        }
    }
    out
}

/// A new container's named volumes (and the container, as their user).
async fn container_volumes(
    w: &Watcher,
    id: &str,
) -> Result<Option<(Vec<Volume>, Option<Container>)>, String> {
    let Some(c) = podman::container(&w.endpoint, id, LOOKUP_LIMIT).await? else { return Ok(None) };
    let mut volumes = Vec::new();
    for name in c.mounts.iter().filter_map(|m| m.volume.as_deref()) {
        if let Some(v) = podman::volume(&w.endpoint, name, LOOKUP_LIMIT).await? {
            volumes.push(v);
        }
    }
    Ok(Some((volumes, Some(c))))
}

/// A volume of this plugin whose label or users call for another class than the one it
/// was created with (`--opt class=`).
fn plugin_findings(w: &Watcher, v: &Volume, decided: Class) -> Option<Finding> {
    if v.driver != w.plugin_name {
        return None;
    }
    let name = super::volumes::VolumeName::parse(&v.name).ok()?;
    let placed = w.root.get(&name).ok()?.class;
    (placed != decided && decided != Class::FALLBACK).then(|| Finding {
        severity: Severity::Warning,
        code: "class-conflict",
        object: format!("volume {}", v.name),
        message: format!("volume {} was created as {placed} but its label or users make it {decided}", v.name),
        help: format!(
            "recreate it with `--opt class={decided}` and copy the data over while its containers are stopped, \
             or fix the label"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_only_when_complete() {
        let mut b = b"{\"a\":1}\n\n{\"b\"".to_vec();
        assert_eq!(take_lines(&mut b), vec![b"{\"a\":1}".to_vec()]);
        assert_eq!(b, b"{\"b\"".to_vec());
        b.extend_from_slice(b":2}\r\n");
        assert_eq!(take_lines(&mut b), vec![b"{\"b\":2}".to_vec()]);
        assert!(b.is_empty());
    }

    #[test]
    fn events_parse_with_gaps_and_nulls() {
        let e: Event = serde_json::from_str(
            r#"{"status":"create","id":"pg","Type":"volume","Action":"create","Actor":{"ID":"pg","Attributes":null},"scope":"local","time":1,"timeNano":1700000000000000001}"#,
        )
        .unwrap();
        assert_eq!((e.kind.as_str(), e.action.as_str(), e.object()), ("volume", "create", "pg"));
        // As Podman 4.3.1 sends it: the volume's name only in the attributes.
        let podman_4_3: Event = serde_json::from_str(
            r#"{"status":"create","Type":"volume","Action":"create","Actor":{"ID":"","Attributes":{"containerExitCode":"0","image":"","name":"vv","podId":""}},"scope":"local","time":1795479581,"timeNano":1795479581107658182}"#,
        )
        .unwrap();
        assert_eq!(podman_4_3.object(), "vv");
        assert_eq!(e.time_nano, 1_700_000_000_000_000_001);
        let e: Event = serde_json::from_str("{}").unwrap();
        assert!(e.kind.is_empty());
    }

    #[test]
    fn the_request_asks_for_create_events_since_a_time() {
        let p = events_path(Some(1234));
        assert!(p.starts_with("/v4.3.1/libpod/events?stream=true&filters=%7B%22event%22"), "{p}");
        assert!(p.ends_with("&since=1234"), "{p}");
        assert!(!events_path(None).contains("since"));
    }
}
