//! `scan`: what a live host runs, how it is classified, where its data lies, and what
//! is misplaced. The socket is read by [`crate::podman`]; this module adds
//! sizes and placements (read-only) and the findings.

pub mod findings;
pub mod human;
pub mod profile;

use crate::class::Class;
use crate::classify::Evidence;
use crate::classify::live::{LiveProfile, classify_host};
use crate::error::Error;
use crate::inspect::{Measured, MountView, Placement};
use crate::inventory::live::{Container, Image, LiveHost, SizeSource, StorageFacts, Volume};
use crate::podman::fetch_from;
use crate::podman::{self, Discovered, Endpoint};
pub use findings::Finding;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerReport {
    #[serde(flatten)]
    pub container: Container,
    pub class: Class,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeReport {
    #[serde(flatten)]
    pub volume: Volume,
    pub class: Class,
    pub evidence: Vec<Evidence>,
    /// Where the data really is: the bind `device` of a bind volume, else the mountpoint.
    pub data_dir: String,
    pub placement: Option<Placement>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClassSummary {
    pub containers: usize,
    pub volumes: usize,
    pub volume_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub images: usize,
    pub image_bytes: u64,
    pub containers: usize,
    pub volumes: usize,
    pub volume_bytes: u64,
    pub by_class: BTreeMap<Class, ClassSummary>,
}

/// Where placements and sizes were read, or why they were not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlacementSource {
    /// Placements and volume sizes were read at all.
    pub read: bool,
    /// The Podman server process the socket named (SO_PEERCRED), when known.
    pub server_pid: Option<u32>,
    /// The directory paths were read through: `/`, or `/proc/PID/root` for a Podman in
    /// another mount namespace; `None` when nothing was read.
    pub root: Option<String>,
    /// Why placements were not read, or how they were read when not directly; `None`
    /// when they were read in our own namespace.
    pub note: Option<String>,
}

/// How a scan reads placements: through a namespace, or not at all (and why).
#[derive(Debug, Clone)]
pub enum PlacementReader {
    Read { view: MountView, server_pid: Option<u32> },
    NotRead { server_pid: Option<u32>, why: String },
}

impl PlacementReader {
    /// For a Podman that answered at `endpoint`, from the pid its socket named: a TCP
    /// Podman's files are on its host, never read from here; a unix socket's server is
    /// read in its own mount namespace.
    pub fn for_server(endpoint: &Endpoint, server_pid: Option<u32>) -> PlacementReader {
        let not_read = |why: String| PlacementReader::NotRead { server_pid, why };
        match (endpoint, server_pid) {
            (Endpoint::Tcp(_), _) => not_read(format!(
                "placement not read: Podman answered over TCP ({}), so its files are not read from here; \
                 scan through its unix socket on that host (forwarded with ssh -L) to see them",
                endpoint.url()
            )),
            (Endpoint::Unix(_), None) => not_read(
                "placement not read: the socket does not name the Podman process (it runs in a PID \
                 namespace not visible from here), so its mount namespace is unknown"
                    .into(),
            ),
            (Endpoint::Unix(_), Some(pid)) => match MountView::of_process(pid) {
                Ok(view) => PlacementReader::Read { view, server_pid },
                Err(e) => not_read(format!("placement not read: {e}")),
            },
        }
    }

    fn source(&self) -> PlacementSource {
        match self {
            PlacementReader::Read { view, server_pid } => PlacementSource {
                read: true,
                server_pid: *server_pid,
                root: Some(view.root().display().to_string()),
                note: view.foreign_pid().map(|pid| {
                    format!(
                        "read through {}: Podman (pid {pid}) runs in another mount namespace or root",
                        view.root().display()
                    )
                }),
            },
            PlacementReader::NotRead { server_pid, why } => {
                PlacementSource { read: false, server_pid: *server_pid, root: None, note: Some(why.clone()) }
            }
        }
    }
}

/// The result of a scan; its JSON form is `scan --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    pub endpoint: String,
    pub podman_version: String,
    pub rootless: bool,
    pub storage: StorageFacts,
    pub graphroot: Option<Placement>,
    pub volume_path: Option<Placement>,
    /// Where placements and sizes were read, or why not.
    pub placement_source: PlacementSource,
    pub images: Vec<Image>,
    pub containers: Vec<ContainerReport>,
    pub volumes: Vec<VolumeReport>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

/// Where a volume's data really lives. A local volume with `o=bind` and a `device` is a
/// bind mount of that directory; its reported mountpoint is only where it gets mounted.
pub fn data_dir(v: &Volume) -> &str {
    let bind = v.options.get("o").is_some_and(|o| o.split(',').any(|x| x == "bind" || x == "rbind"));
    match v.options.get("device") {
        Some(device) if bind && device.starts_with('/') => device,
        _ => &v.mountpoint,
    }
}

/// How the scan walks the disk.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// Measure volume directories (walked, or read from their qgroups).
    pub sizes: bool,
    /// Threads walking at once.
    pub workers: usize,
}

/// Adds sizes, classes, placements and findings to what the socket said.
pub fn assemble(
    mut host: LiveHost,
    reader: &PlacementReader,
    options: ScanOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ScanReport, Error> {
    let profile = classify_host(&host)?;
    let view = match reader {
        PlacementReader::Read { view, .. } => Some(view),
        PlacementReader::NotRead { .. } => None,
    };
    if let (Some(view), true) = (view, options.sizes) {
        let dirs: Vec<PathBuf> = host.volumes.iter().map(|v| PathBuf::from(data_dir(v))).collect();
        for (v, size) in host.volumes.iter_mut().zip(view.dir_sizes(&dirs, options.workers, progress)) {
            (v.size, v.size_from) = match size {
                Some(Measured::Walked(bytes)) => (Some(bytes), Some(SizeSource::Walk)),
                Some(Measured::Qgroup(bytes)) => (Some(bytes), Some(SizeSource::Qgroup)),
                None => (None, None),
            };
        }
    }
    let place = |path: &str| {
        let view = view?;
        view.inspect(Path::new(path)).map_err(|e| tracing::debug!("cannot inspect {path}: {e}")).ok()
    };
    let graphroot = place(&host.storage.graphroot);
    let volume_path = host
        .storage
        .volume_path
        .clone()
        .unwrap_or_else(|| format!("{}/volumes", host.storage.graphroot.trim_end_matches('/')));
    let volume_path = place(&volume_path);
    Ok(report(host, profile, graphroot, volume_path, reader.source(), &|p| place(p)))
}

/// Puts the pieces together (pure but for `place`). `profile` is in the host's order,
/// as [`classify_host`] returns it.
pub fn report(
    host: LiveHost,
    profile: LiveProfile,
    graphroot: Option<Placement>,
    volume_path: Option<Placement>,
    placement_source: PlacementSource,
    place: &dyn Fn(&str) -> Option<Placement>,
) -> ScanReport {
    let containers: Vec<ContainerReport> = host
        .containers
        .into_iter()
        .zip(profile.containers)
        .map(|(container, c)| ContainerReport { container, class: c.class, evidence: c.evidence })
        .collect();
    let volumes: Vec<VolumeReport> = host
        .volumes
        .into_iter()
        .zip(profile.volumes)
        .map(|(volume, v)| {
            let dir = data_dir(&volume).to_string();
            VolumeReport {
                placement: place(&dir),
                data_dir: dir,
                volume,
                class: v.class,
                evidence: v.evidence,
            }
        })
        .collect();
    let summary = summarize(&host.images, &containers, &volumes);
    let mut report = ScanReport {
        endpoint: host.endpoint,
        podman_version: host.podman_version,
        rootless: host.rootless,
        storage: host.storage,
        graphroot,
        volume_path,
        placement_source,
        images: host.images,
        containers,
        volumes,
        findings: Vec::new(),
        summary,
    };
    report.findings = findings::findings(&report);
    report
}

fn summarize(images: &[Image], containers: &[ContainerReport], volumes: &[VolumeReport]) -> Summary {
    let mut s = Summary {
        images: images.len(),
        image_bytes: images.iter().map(|i| i.size).fold(0, u64::saturating_add),
        containers: containers.len(),
        volumes: volumes.len(),
        volume_bytes: volumes.iter().filter_map(|v| v.volume.size).fold(0, u64::saturating_add),
        by_class: BTreeMap::new(),
    };
    for c in containers {
        s.by_class.entry(c.class).or_default().containers += 1;
    }
    for v in volumes {
        let e = s.by_class.entry(v.class).or_default();
        e.volumes += 1;
        e.volume_bytes = e.volume_bytes.saturating_add(v.volume.size.unwrap_or(0));
    }
    s
}

/// Connects to Podman (`url`, else `CONTAINER_HOST`, else the default socket), reads
/// everything, and assembles the report. The only function here that talks to Podman.
/// Placements are read where Podman's data is: in the mount namespace of the process
/// that answered on a unix socket, and not at all over TCP.
pub fn scan_host(
    url: Option<&str>,
    options: ScanOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ScanReport, Error> {
    let (found, host, server_pid) = fetch(url)?;
    let reader = PlacementReader::for_server(&found.endpoint, server_pid);
    match &reader {
        PlacementReader::Read { view, .. } => {
            tracing::debug!(root = %view.root().display(), mounts = view.mounts.len(), "reading placements")
        }
        PlacementReader::NotRead { why, .. } => tracing::info!("{why}"),
    }
    assemble(host, &reader, options, progress)
}

/// Reads what the Podman socket knows.
pub fn fetch_host(url: Option<&str>) -> Result<LiveHost, Error> {
    fetch(url).map(|(_, host, _)| host)
}

/// The endpoint found, what it knows, and the pid of the process that answered.
fn fetch(url: Option<&str>) -> Result<(Discovered, LiveHost, Option<u32>), Error> {
    let env = |name: &str| std::env::var(name).ok();
    let found = podman::discover(url, &env, rustix::process::geteuid().is_root())?;
    tracing::info!("using Podman at {} ({})", found.endpoint.url(), found.why);
    let (host, pid) = podman::runtime()?.block_on(fetch_from(&found, podman::Timeouts::default()))?;
    Ok((found, host, pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_are_not_read_over_tcp_or_from_an_unnamed_server() {
        let tcp = Endpoint::Tcp("192.0.2.7:8080".into());
        let PlacementReader::NotRead { server_pid: None, why } = PlacementReader::for_server(&tcp, None)
        else {
            panic!("a TCP Podman's files are never read here")
        };
        assert!(why.starts_with("placement not read") && why.contains("tcp://192.0.2.7:8080"), "{why}");
        let unix = Endpoint::Unix("/run/podman/podman.sock".into());
        let PlacementReader::NotRead { why, .. } = PlacementReader::for_server(&unix, None) else {
            panic!("an unnamed server's namespace is unknown")
        };
        assert!(why.contains("PID namespace"), "{why}");
        // Our own process: read directly, no note.
        let pid = std::process::id();
        let own = PlacementReader::for_server(&unix, Some(pid)).source();
        assert_eq!(
            own,
            PlacementSource { read: true, server_pid: Some(pid), root: Some("/".into()), note: None }
        );
    }

    #[test]
    fn a_report_without_placements_says_why() {
        let reader =
            PlacementReader::NotRead { server_pid: None, why: "placement not read: over TCP".into() };
        let host = LiveHost { endpoint: "tcp://127.0.0.1:1".into(), ..LiveHost::default() };
        let report = assemble(host, &reader, ScanOptions { sizes: true, workers: 1 }, &|_, _| {}).unwrap();
        assert_eq!((report.graphroot.as_ref(), report.placement_source.read), (None, false));
        let text = human::render(&report);
        assert!(text.contains("note        placement not read: over TCP"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["placement_source"]["note"], "placement not read: over TCP");
    }
}
