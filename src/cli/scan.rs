//! `scan`: what a live Podman host runs, the class of each container and volume, where
//! its data lies, and what is misplaced.

use super::Format;
use crate::error::{Error, exit};
use crate::scan::{self, ScanOptions};
use clap::Args;
use std::io::{IsTerminal, Write};

/// Read a live Podman host: images, containers and volumes, their classes and sizes, and
/// where their data lies.
///
/// Connects to the Podman socket (--url, else CONTAINER_HOST, else /run/podman/podman.sock
/// for root and $XDG_RUNTIME_DIR/podman/podman.sock for other users), classifies every
/// container and volume (label io.podfs.class first, then image, mount path, --rm and
/// restart policy), measures every volume, and inspects the filesystem, subvolume, NOCOW
/// flag and compression of graphroot and every volume. Reads only; changes nothing.
///
/// The socket is asked the same 8 questions on any host (9 on Podman 4): _ping first (it
/// names the version), then all the others at once: info, the image, volume and container
/// lists, the Docker-compatible container list (mounts) and two or three lists filtered by
/// restart policy. Only a container with a tmpfs mount is inspected on its own. Never
/// calls Podman's slow `system df`.
///
/// A volume's size is walked (apparent bytes of its files); a volume that is the root of
/// a btrfs subvolume on a filesystem with quotas already on (this tool never turns them
/// on) is read from its qgroup instead, without walking it (needs root).
///
/// Placements and sizes are read where Podman's data is: the socket names the process
/// that answers (SO_PEERCRED), and a Podman in another mount namespace (a chroot, a
/// container) is read through /proc/PID/root and /proc/PID/mountinfo. Over tcp:// nothing
/// local is read; the report says so (placement_source), as it does when /proc/PID/root
/// cannot be read.
#[derive(Debug, Args)]
#[command(after_long_help = LONG_HELP)]
pub struct ScanArgs {
    /// Podman socket, e.g. unix:///run/podman/podman.sock or tcp://host:port.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Skip measuring volumes (walks and qgroup reads).
    #[arg(long)]
    pub no_sizes: bool,

    /// How many volumes to measure at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

const LONG_HELP: &str = "JSON output (--format json), fields are only ever added:
  {endpoint, podman_version, rootless,
   storage {driver, graphroot, runroot, backing_filesystem, volume_path},
   graphroot PLACEMENT, volume_path PLACEMENT,
   placement_source {read, server_pid, root, note},
   images [{id, names, size, shared_size, containers}],
   containers [{id, name, image, image_id, state, labels, restart_policy, auto_remove,
                mounts [{kind, source, destination, volume, read_write}], rw_size,
                class, evidence [{kind, suggests, detail}]}],
   volumes [{name, driver, mountpoint, labels, options, size, size_from, used_by,
             class, evidence, data_dir, placement PLACEMENT}],
   findings [{severity, code, object, message, help}],
   summary {images, image_bytes, containers, volumes, volume_bytes,
            by_class {CLASS: {containers, volumes, volume_bytes}}}}
  PLACEMENT: {path, filesystem, device, mountpoint, subvolume, own_subvolume,
              filesystem_options, mount_options, nocow, compression} or null.
  Sizes are bytes; a volume's size is null with --no-sizes or when unreadable.
  size_from: walk (apparent bytes of its regular files, hard links once) or qgroup (the
  qgroup's referenced bytes as of btrfs's last commit: on disk after compression, with
  metadata, shared extents in full; read for a subvolume root with quotas on, consistent,
  and no subvolume inside); null with the size.
  placement_source: read is false when no placement or size was read (tcp://, a server
  process that cannot be seen or whose /proc/PID/root is not readable), and note says
  why; root is / or /proc/PID/root (Podman in another mount namespace or root, note says
  so); server_pid is the process the unix socket names (for a socket-activated service:
  systemd). Paths in PLACEMENT are as Podman names them.

Exit codes: 0 scanned (findings do not change it); 2 an io.podfs.class label names no
class; 3 no socket, permission denied, or the socket does not answer like Podman.";

/// A one-line progress display on stderr, only when stderr is a terminal.
fn progress_printer() -> impl Fn(usize, usize) + Sync {
    let tty = std::io::stderr().is_terminal();
    move |done, total| {
        if tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\rmeasuring volumes {done}/{total}");
            if done == total {
                let _ = write!(err, "\r\x1b[K");
            }
            let _ = err.flush();
        }
    }
}

pub fn run(args: ScanArgs) -> Result<u8, Error> {
    let options = ScanOptions { sizes: !args.no_sizes, workers: usize::from(args.jobs) };
    let report = scan::scan_host(args.url.as_deref(), options, &progress_printer())?;
    match args.format {
        Format::Human => print!("{}", scan::human::render(&report)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report).expect("plain data serializes")),
    }
    Ok(exit::OK)
}
