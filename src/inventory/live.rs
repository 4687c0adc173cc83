//! What a running Podman host holds, as learned from its socket, in our own model so
//! that the client library behind it can be replaced.

use serde::Serialize;
use std::collections::BTreeMap;

/// Podman's storage configuration as `info` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StorageFacts {
    pub driver: String,
    pub graphroot: String,
    pub runroot: String,
    /// `Backing Filesystem` from the driver status, e.g. `btrfs`, `extfs`, `xfs`.
    pub backing_filesystem: Option<String>,
    /// Where named volumes live (containers.conf `volume_path`), when known.
    pub volume_path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Image {
    pub id: String,
    /// Repository tags, e.g. `docker.io/library/postgres:16`; empty for dangling images.
    pub names: Vec<String>,
    pub size: u64,
    /// Bytes shared with other images (common layers).
    pub shared_size: u64,
    /// How many containers use it.
    pub containers: u64,
}

/// One mount of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// `volume`, `bind`, `tmpfs`, …
    pub kind: String,
    /// Host path (for a volume: its `_data` directory).
    pub source: String,
    /// Path inside the container.
    pub destination: String,
    /// The named volume, for `kind == "volume"`.
    pub volume: Option<String>,
    pub read_write: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// Image reference as given at creation.
    pub image: String,
    pub image_id: String,
    /// `running`, `exited`, `created`, …
    pub state: String,
    pub labels: BTreeMap<String, String>,
    /// `no`, `always`, `on-failure`, `unless-stopped`, or empty.
    pub restart_policy: String,
    /// Created with `--rm`.
    pub auto_remove: bool,
    pub mounts: Vec<Mount>,
    /// Bytes written to its writable layer, when the socket was asked for sizes.
    pub rw_size: Option<u64>,
    /// Seconds its stop waits before SIGKILL, when it was inspected on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub name: String,
    /// `local`, or a volume plugin's name.
    pub driver: String,
    /// Host directory holding the data.
    pub mountpoint: String,
    pub labels: BTreeMap<String, String>,
    /// Driver options (`type`, `o`, `device` for bind volumes).
    pub options: BTreeMap<String, String>,
    /// Bytes under `mountpoint`, filled in by walking it or from its btrfs qgroup; `None`
    /// with `--no-sizes` or when it could not be read.
    pub size: Option<u64>,
    /// How `size` was measured.
    pub size_from: Option<SizeSource>,
    /// Names of the containers that mount it.
    pub used_by: Vec<String>,
}

/// How a volume's size was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeSource {
    /// The apparent bytes of its regular files, each hard-linked file once.
    Walk,
    /// The `referenced` bytes of the btrfs qgroup of the subvolume it is: bytes on disk
    /// after compression, with metadata, shared extents counted in full.
    Qgroup,
}

/// Everything one Podman socket told us.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveHost {
    /// The URL we talked to, e.g. `unix:///run/podman/podman.sock`.
    pub endpoint: String,
    pub podman_version: String,
    pub rootless: bool,
    pub storage: StorageFacts,
    pub images: Vec<Image>,
    pub containers: Vec<Container>,
    pub volumes: Vec<Volume>,
}
