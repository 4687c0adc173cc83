//! The Docker VolumeDriver protocol as Podman speaks it (docs/ARCHITECTURE.md, "Podman"): JSON over HTTP
//! `POST`s on a unix socket. This module maps one request (endpoint and body) to one
//! answer; the HTTP server around it is in `server.rs`.
//!
//! Podman treats any status but 200 as an error and shows the answer's `Err`.

use super::volumes::{CreateOptions, PluginError, VolumeInfo, VolumeName, VolumeRoot};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The largest request body read; Podman's requests are a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Every endpoint this plugin answers.
pub const ENDPOINTS: [&str; 9] = [
    "/Plugin.Activate",
    "/VolumeDriver.Capabilities",
    "/VolumeDriver.Create",
    "/VolumeDriver.Remove",
    "/VolumeDriver.Mount",
    "/VolumeDriver.Unmount",
    "/VolumeDriver.Path",
    "/VolumeDriver.Get",
    "/VolumeDriver.List",
];

/// An HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Answer { status: 200, body }
    }

    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Answer { status, body: json!({ "Err": message.into() }) }
    }

    fn from_error(e: PluginError) -> Self {
        Answer::error(if e.bad_request { 400 } else { 500 }, e.message)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameRequest {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    name: String,
    #[serde(default)]
    opts: Option<BTreeMap<String, String>>,
}

fn parse<'a, T: Deserialize<'a>>(endpoint: &str, body: &'a [u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| Answer::error(400, format!("malformed {endpoint} request: {e}")))
}

fn volume_json(v: &VolumeInfo) -> Value {
    json!({
        "Name": v.name,
        "Mountpoint": v.mountpoint.to_string_lossy(),
        "Status": {
            "class": v.class.as_str(),
            "nocow": v.nocow,
            "compression": v.compression.as_deref().unwrap_or(""),
            "snapshots": v.snapshots,
        },
    })
}

/// Answers one request. `body` is at most [`MAX_BODY`] bytes (the server enforces it).
pub fn answer(root: &VolumeRoot, endpoint: &str, body: &[u8]) -> Answer {
    let result = match endpoint {
        "/Plugin.Activate" => Ok(Answer::ok(json!({ "Implements": ["VolumeDriver"] }))),
        "/VolumeDriver.Capabilities" => Ok(Answer::ok(json!({ "Capabilities": { "Scope": "local" } }))),
        "/VolumeDriver.List" => {
            let volumes: Vec<Value> = root.list().iter().map(volume_json).collect();
            Ok(Answer::ok(json!({ "Volumes": volumes, "Err": "" })))
        }
        "/VolumeDriver.Create" => create(root, body),
        "/VolumeDriver.Remove" => with_name(endpoint, body, |name| {
            root.remove(&name)?;
            tracing::info!(volume = %name, "removed volume");
            Ok(json!({ "Err": "" }))
        }),
        "/VolumeDriver.Get" => with_name(endpoint, body, |name| {
            let v = root.get(&name)?;
            Ok(json!({ "Volume": volume_json(&v), "Err": "" }))
        }),
        // A subvolume needs no mounting: it is reachable under the root all the time.
        "/VolumeDriver.Mount" | "/VolumeDriver.Path" => with_name(endpoint, body, |name| {
            let v = root.get(&name)?;
            Ok(json!({ "Mountpoint": v.mountpoint.to_string_lossy(), "Err": "" }))
        }),
        "/VolumeDriver.Unmount" => with_name(endpoint, body, |name| {
            root.get(&name)?;
            Ok(json!({ "Err": "" }))
        }),
        _ => {
            let shown: String = endpoint.chars().take(80).flat_map(char::escape_default).collect();
            Err(Answer::error(
                404,
                format!("unknown endpoint `{shown}`; this volume plugin answers {}", ENDPOINTS.join(", ")),
            ))
        }
    };
    let answer = result.unwrap_or_else(|a| a);
    // Podman asks for a volume before creating it: "no such volume" is routine there.
    let routine = endpoint == "/VolumeDriver.Get" && answer.status == 500;
    if answer.status != 200 && routine {
        tracing::debug!(endpoint, error = %answer.body["Err"].as_str().unwrap_or_default(), "no such volume");
    } else if answer.status != 200 {
        tracing::warn!(endpoint = %endpoint.escape_default(), status = answer.status, error = %answer.body["Err"].as_str().unwrap_or_default(), "request refused");
    }
    answer
}

fn with_name(
    endpoint: &str,
    body: &[u8],
    f: impl FnOnce(VolumeName) -> Result<Value, PluginError>,
) -> Result<Answer, Answer> {
    let request: NameRequest = parse(endpoint, body)?;
    let name = VolumeName::parse(&request.name).map_err(Answer::from_error)?;
    f(name).map(Answer::ok).map_err(Answer::from_error)
}

fn create(root: &VolumeRoot, body: &[u8]) -> Result<Answer, Answer> {
    let request: CreateRequest = parse("/VolumeDriver.Create", body)?;
    let name = VolumeName::parse(&request.name).map_err(Answer::from_error)?;
    let opts = CreateOptions::parse(&request.opts.unwrap_or_default()).map_err(Answer::from_error)?;
    let v = root.create(&name, &opts).map_err(Answer::from_error)?;
    tracing::info!(
        volume = %name,
        class = %v.class,
        nocow = v.nocow,
        compression = v.compression.as_deref().unwrap_or("-"),
        size_limit = opts.size.unwrap_or(0),
        path = %v.mountpoint.display(),
        "created volume"
    );
    Ok(Answer::ok(json!({ "Err": "" })))
}
