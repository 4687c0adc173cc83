//! The `Inventory`: what a host runs or will run. Filled from a workload spec file
//! ([`spec`]); a live host's model is [`live`], filled by the Podman client. Everything
//! downstream reads only these.

pub mod examples;
pub mod live;
pub mod spec;
pub mod spec_page;

use crate::class::Class;
use serde::Serialize;

/// Where an inventory came from, for headers and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Source {
    /// A spec file on disk.
    Spec(String),
    /// A spec embedded in the binary (`--example NAME`).
    Example(String),
    /// A live host, by its Podman endpoint.
    Host(String),
}

impl Source {
    /// How to name the source to a person: a path or `example NAME`.
    pub fn describe(&self) -> String {
        match self {
            Source::Spec(path) => path.clone(),
            Source::Example(name) => format!("example {name}"),
            Source::Host(url) => format!("the live host at {url}"),
        }
    }
}

/// How much of a disk the plan owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskMode {
    /// The plan lays out the whole system disk: ESP, system subvolumes and container subvolumes.
    WholeDisk,
    /// The disk holds container data only; the system lives elsewhere.
    DataDisk,
}

impl DiskMode {
    pub const NAMES: [&'static str; 2] = ["whole-disk", "data-disk"];

    pub fn as_str(self) -> &'static str {
        match self {
            DiskMode::WholeDisk => "whole-disk",
            DiskMode::DataDisk => "data-disk",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "whole-disk" => Some(DiskMode::WholeDisk),
            "data-disk" => Some(DiskMode::DataDisk),
            _ => None,
        }
    }
}

/// How long a workload's containers live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifetime {
    /// Services that run until stopped.
    Long,
    /// Jobs: `--rm`, restart=no, minutes or less.
    Short,
}

impl Lifetime {
    pub const NAMES: [&'static str; 2] = ["long", "short"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "long" => Some(Lifetime::Long),
            "short" => Some(Lifetime::Short),
            _ => None,
        }
    }
}

/// The machine the plan is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// A name for headers and reports.
    pub name: String,
    /// The block device to lay out, e.g. `/dev/nvme0n1` or `/dev/disk/by-id/…`.
    pub disk: String,
    pub mode: DiskMode,
    /// The disk's size in bytes; used to check that the workloads fit.
    pub disk_size: u64,
    /// Solid-state disk: adds `ssd` and `discard=async` to the filesystem-wide options.
    pub ssd: bool,
    /// Containers run rootless: storage lives per user under `rootless_storage_path`.
    pub rootless: bool,
}

/// One kind of container the host runs, `count` times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workload {
    pub name: String,
    /// Image reference, e.g. `docker.io/library/postgres:16`.
    pub image: String,
    /// The class the admin declared; wins over every heuristic.
    #[serde(rename = "declared_class")]
    pub class: Option<Class>,
    /// How many such containers run at once.
    pub count: u32,
    /// Uncompressed size of the image in bytes.
    pub image_size: u64,
    /// Persistent data of one container in bytes (0 = no volume).
    pub volume_size: u64,
    pub lifetime: Lifetime,
    /// Where its volumes are mounted inside the container (heuristic evidence).
    pub mounts: Vec<String>,
}

/// Everything known about a host's container workloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub source: Source,
    pub host: Host,
    pub workloads: Vec<Workload>,
}
