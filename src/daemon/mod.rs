//! The companion daemon (`serve`): a Podman volume plugin that puts each volume on its own
//! btrfs subvolume with its class's attributes, plus watchers that flag drift. Optional:
//! every other command works without it.

pub mod events;
pub mod plugin;
pub mod server;
pub mod volumes;
pub mod watch;

use crate::error::Error;
use crate::podman::Discovered;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything `serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub socket: PathBuf,
    pub root: PathBuf,
    pub plugin_name: String,
    /// Remove a volume that still has snapshots (keeping them) instead of refusing.
    pub remove_with_snapshots: bool,
    /// Podman's API socket for the events watcher; `None` turns the watcher off.
    pub podman: Option<Discovered>,
    /// Configuration files re-checked on change; empty turns the watcher off.
    pub watch: watch::WatchedFiles,
}

/// Runs until SIGTERM or SIGINT. The plugin socket is removed on the way out.
pub async fn serve(config: ServeConfig) -> Result<(), Error> {
    let root = Arc::new(
        volumes::VolumeRoot::open(&config.root)?
            .removing_volumes_with_snapshots(config.remove_with_snapshots),
    );
    let (socket, listener) = server::bind(&config.socket)?;
    let count = root.list().len();
    tracing::info!(
        socket = %socket.path.display(),
        root = %root.path().display(),
        volumes = count,
        plugin = %config.plugin_name,
        "volume plugin listening"
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::Environment(format!("cannot handle SIGTERM: {e}")))?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::Environment(format!("cannot handle SIGINT: {e}")))?;

    let events = config.podman.clone().map(|podman| {
        let watcher = events::Watcher { podman, plugin_name: config.plugin_name.clone(), root: root.clone() };
        tokio::spawn(events::watch(Arc::new(watcher)))
    });
    // Armed before READY: a change made as soon as the daemon says it is ready is seen.
    let files = match (!config.watch.is_empty()).then(|| watch::arm(&config.watch)) {
        None => None,
        Some(Ok(armed)) => Some(tokio::spawn(watch::watch(armed))),
        Some(Err(e)) => {
            // Unwatched, the files are still checked once, as at every start.
            tracing::error!("cannot watch the configuration files: {e}");
            let files = config.watch.clone();
            Some(tokio::task::spawn_blocking(move || drop(watch::check_and_log(&files, "start"))))
        }
    };
    server::notify_ready(&format!("serving {count} volume(s) from {}", root.path().display()));

    tokio::select! {
        _ = server::run(listener, root.clone()) => {}
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
        _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
    }
    for task in [events, files].into_iter().flatten() {
        task.abort();
    }
    drop(socket);
    Ok(())
}
