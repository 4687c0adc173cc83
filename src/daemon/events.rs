//! Follows Podman's event stream and flags new containers and volumes whose class does
//! not match where their data lies. When Podman goes away (restart, upgrade) the stream
//! ends; it is reopened with a growing delay, asking for the events missed meanwhile.
//!
//! While connected the task only waits on the socket: no timers, no polling.

use super::volumes::VolumeRoot;
use crate::class::Class;
use crate::classify::live::classify_volume;
use crate::diagnostic::Severity;
use crate::inventory::live::{Container, Volume};
use crate::podman::{Client, Discovered, Event, EventFilter, PodmanError, Timeouts};
use crate::scan::findings::{Finding, volume_findings};
use crate::scan::{PlacementReader, VolumeReport, data_dir};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// What the watcher needs to judge an event.
pub struct Watcher {
    /// Podman's API socket.
    pub podman: Discovered,
    /// The name Podman knows this plugin by (`podfs`).
    pub plugin_name: String,
    /// The plugin's volumes, to tell the class each was created with.
    pub root: Arc<VolumeRoot>,
}

/// The events judged: containers and volumes created.
const FOLLOWED: EventFilter<'static> =
    EventFilter { types: &["container", "volume"], actions: &["create"], since: None };

fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Runs forever: follow the stream, reconnect when it ends.
pub async fn watch(w: Arc<Watcher>) {
    let client = Client::new(w.podman.clone(), Timeouts::LOOKUP);
    let url = w.podman.endpoint.url();
    let mut backoff = FIRST_BACKOFF;
    let mut since: Option<i64> = None;
    let mut last_seen: i64 = 0;
    let mut down_logged = false;
    loop {
        match follow(&w, &client, since, &mut last_seen).await {
            Ok(()) => {
                tracing::warn!(podman = %url, "Podman's event stream ended (Podman stopped or restarted); reconnecting");
                backoff = FIRST_BACKOFF;
                down_logged = true;
            }
            Err(Failure::Connect(e)) => {
                if !down_logged {
                    tracing::warn!(podman = %url, "cannot follow Podman's events: {}; retrying with backoff up to {}s", e.brief(), MAX_BACKOFF.as_secs());
                    down_logged = true;
                } else {
                    tracing::debug!("Podman events: {}", e.brief());
                }
            }
            Err(Failure::Stream(e)) => {
                tracing::warn!(podman = %url, "Podman's event stream broke: {}; reconnecting", e.brief());
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
    Connect(PodmanError),
    /// Was connected; the stream failed.
    Stream(PodmanError),
}

async fn follow(
    w: &Watcher,
    client: &Client,
    since: Option<i64>,
    last_seen: &mut i64,
) -> Result<(), Failure> {
    let mut events = client.events(&EventFilter { since, ..FOLLOWED }).await.map_err(Failure::Connect)?;
    // Placements are read in the mount namespace of the Podman that answers.
    let server_pid = events.server_pid();
    tracing::info!(podman = %w.podman.endpoint.url(), "following Podman events");
    while let Some(event) = events.next().await.map_err(Failure::Stream)? {
        // Events replayed by `since` that were judged before.
        if event.time_nano > 0 && event.time_nano <= *last_seen {
            continue;
        }
        *last_seen = (*last_seen).max(event.time_nano);
        for f in judge(w, client, &event, server_pid).await {
            log_finding(&f);
        }
    }
    Ok(())
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

/// The findings one event leads to; placements are read in the mount namespace of
/// `server_pid`, the Podman that sent the event.
async fn judge(w: &Watcher, client: &Client, event: &Event, server_pid: Option<u32>) -> Vec<Finding> {
    let object = event.object();
    if object.is_empty() {
        tracing::debug!("ignoring a {} event that names nothing", event.kind);
        return Vec::new();
    }
    let looked_up = match event.kind.as_str() {
        "volume" => client.volume(object).await.map(|v| v.map(|v| (vec![v], None))),
        "container" => container_volumes(client, object).await,
        _ => return Vec::new(),
    };
    let (volumes, container) = match looked_up {
        Ok(Some(found)) => found,
        Ok(None) => return Vec::new(), // already removed again
        Err(e) => {
            tracing::warn!(object, "cannot look at a new {}: {}", event.kind, e.brief());
            return Vec::new();
        }
    };
    if volumes.is_empty() {
        return Vec::new();
    }
    // Read where a scan reads: in the mount namespace of the Podman that sent the event.
    let view = match PlacementReader::for_server(&w.podman.endpoint, server_pid) {
        PlacementReader::Read { view, .. } => Some(view),
        PlacementReader::NotRead { why, .. } => {
            tracing::warn!(object, "a new {}: {why}", event.kind);
            None
        }
    };
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
    client: &Client,
    id: &str,
) -> Result<Option<(Vec<Volume>, Option<Container>)>, PodmanError> {
    let Some(c) = client.container(id).await? else { return Ok(None) };
    let mut volumes = Vec::new();
    for name in c.mounts.iter().filter_map(|m| m.volume.as_deref()) {
        if let Some(v) = client.volume(name).await? {
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
