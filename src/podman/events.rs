//! Podman's event stream: `GET events?stream=true`, one JSON object a line, for as long as
//! Podman runs. The stream only waits on the socket: no timers, no polling.

use super::client::path_segment;
use super::endpoint::Discovered;
use super::error::{ErrorKind, PodmanError};
use super::http::{Broken, Streaming};
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};

/// An event line longer than this is not Podman's.
const MAX_LINE: usize = 1 << 20;

/// Which events to follow. An empty list does not filter.
#[derive(Debug, Clone, Default)]
pub struct EventFilter<'a> {
    /// `container`, `volume`, `image`, `pod`, …
    pub types: &'a [&'a str],
    /// `create`, `start`, `pause`, `unpause`, `stop`, `died`, `remove`, …
    pub actions: &'a [&'a str],
    /// Unix seconds: replay the events since then first.
    pub since: Option<i64>,
}

impl EventFilter<'_> {
    /// The request path below `/libpod/`.
    pub(super) fn path(&self) -> String {
        let mut filters = serde_json::Map::new();
        for (key, values) in [("event", self.actions), ("type", self.types)] {
            if !values.is_empty() {
                filters.insert(key.into(), values.iter().map(|v| serde_json::Value::from(*v)).collect());
            }
        }
        let mut path = "events?stream=true".to_string();
        if !filters.is_empty() {
            let filters = serde_json::Value::Object(filters).to_string();
            path.push_str(&format!("&filters={}", path_segment(&filters)));
        }
        if let Some(s) = self.since {
            path.push_str(&format!("&since={s}"));
        }
        path
    }
}

/// One line of `GET /libpod/events` (the Docker event shape Podman 4.3 and 5.x send).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: Option<BTreeMap<String, String>>,
}

impl Event {
    /// The object an event is about. Podman 4.3 leaves a volume event's `ID` empty and
    /// names the volume in the `name` attribute.
    pub fn object(&self) -> &str {
        let name = self.attribute("name");
        match (self.kind.as_str(), self.actor.id.as_str(), name) {
            ("volume", _, Some(name)) if !name.is_empty() => name,
            (_, "", Some(name)) => name,
            (_, id, _) => id,
        }
    }

    /// One of the actor's attributes, e.g. `name` or `image`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.actor.attributes.as_ref().and_then(|a| a.get(name)).map(String::as_str)
    }
}

/// Podman's events as they come, on a connection of their own.
pub struct EventStream {
    at: Discovered,
    streaming: Streaming,
    server_pid: Option<u32>,
    buffer: Vec<u8>,
    ready: VecDeque<Event>,
}

impl EventStream {
    pub(super) fn new(at: Discovered, streaming: Streaming, server_pid: Option<u32>) -> Self {
        EventStream { at, streaming, server_pid, buffer: Vec::new(), ready: VecDeque::new() }
    }

    /// The process that answered on a unix socket (`SO_PEERCRED`): paths the events name
    /// are read in its mount namespace.
    pub fn server_pid(&self) -> Option<u32> {
        self.server_pid
    }

    /// The next event; `Ok(None)` when Podman ends the stream (it stopped or restarted).
    /// A line that is not an event is logged and skipped.
    pub async fn next(&mut self) -> Result<Option<Event>, PodmanError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            let chunk = match self.streaming.chunk().await {
                None => return Ok(None),
                Some(Ok(chunk)) => chunk,
                Some(Err(broken)) => return Err(self.error(broken)),
            };
            self.buffer.extend_from_slice(&chunk);
            for line in take_lines(&mut self.buffer) {
                match serde_json::from_slice::<Event>(&line) {
                    Ok(event) => self.ready.push_back(event),
                    Err(e) => tracing::warn!("ignoring an event line that is not an event: {e}"),
                }
            }
            if self.buffer.len() > MAX_LINE {
                return Err(self.error(Broken::Malformed("an event line longer than 1 MiB".into())));
            }
        }
    }

    fn error(&self, broken: Broken) -> PodmanError {
        let kind = match broken {
            Broken::Io(e) => ErrorKind::Interrupted(e),
            other => other.kind("events", None),
        };
        PodmanError::new(&self.at, "events", kind)
    }
}

/// Splits complete lines off the front of `buffer`.
fn take_lines(buffer: &mut Vec<u8>) -> Vec<Vec<u8>> {
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
        assert_eq!(podman_4_3.attribute("image"), Some(""));
        assert_eq!(e.time_nano, 1_700_000_000_000_000_001);
        let e: Event = serde_json::from_str("{}").unwrap();
        assert!(e.kind.is_empty() && e.object().is_empty() && e.attribute("name").is_none());
    }

    #[test]
    fn the_request_asks_for_the_filtered_events_since_a_time() {
        let filter = EventFilter { types: &["container", "volume"], actions: &["create"], since: Some(1234) };
        let p = super::super::client::libpod(&filter.path());
        assert!(
            p.starts_with(
                "/v4.3.1/libpod/events?stream=true&filters=%7B%22event%22%3A%5B%22create%22%5D%2C%22type%22"
            ),
            "{p}"
        );
        assert!(p.ends_with("&since=1234"), "{p}");
        assert!(!EventFilter { since: None, ..filter }.path().contains("since"));
        assert_eq!(EventFilter::default().path(), "events?stream=true");
    }
}
