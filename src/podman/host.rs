//! Reads what a Podman host runs into the tool's own model, [`LiveHost`], through
//! [`Client`].

use super::{Client, Discovered, Timeouts};
use crate::error::Error;
use crate::inventory::live::{Container, Image, LiveHost, StorageFacts, Volume};

/// Reads everything [`LiveHost`] holds from the Podman socket, with default timeouts.
pub async fn fetch(d: &Discovered) -> Result<LiveHost, Error> {
    fetch_with(d, Timeouts::default()).await
}

/// [`fetch`] with chosen timeouts.
pub async fn fetch_with(d: &Discovered, timeouts: Timeouts) -> Result<LiveHost, Error> {
    fetch_from(d, timeouts).await.map(|(host, _)| host)
}

/// [`fetch_with`], and the pid of the process that answered the first call on a unix
/// socket, to read paths in its mount namespace.
pub async fn fetch_from(d: &Discovered, timeouts: Timeouts) -> Result<(LiveHost, Option<u32>), Error> {
    let client = Client::new(d.clone(), timeouts);
    let started = std::time::Instant::now();
    let ping = client.ping().await?;
    tracing::debug!(endpoint = %d.endpoint.url(), version = %ping.version, elapsed_ms = started.elapsed().as_millis(), "connected to Podman");

    // `info` is the slowest answer; the lists are read meanwhile, all at once.
    let (info, images, containers, volumes) = tokio::try_join!(
        client.info(),
        client.images(),
        async {
            let containers = client.containers(&ping.version).await?;
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis(),
                containers = containers.len(),
                "listed containers"
            );
            Ok(containers)
        },
        client.volumes(),
    )?;
    tracing::debug!(elapsed_ms = started.elapsed().as_millis(), "read info and the image and volume lists");
    let host = assemble(
        d.endpoint.url(),
        info.version.unwrap_or(ping.version),
        info.rootless,
        info.storage,
        images,
        containers,
        volumes,
    );
    Ok((host, ping.server_pid))
}

/// Puts the pieces together: sorts, and fills each volume's `used_by`.
pub(crate) fn assemble(
    endpoint: String,
    podman_version: String,
    rootless: bool,
    storage: StorageFacts,
    mut images: Vec<Image>,
    mut containers: Vec<Container>,
    mut volumes: Vec<Volume>,
) -> LiveHost {
    images.sort_by(|a, b| (a.names.is_empty(), &a.names, &a.id).cmp(&(b.names.is_empty(), &b.names, &b.id)));
    containers.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    for v in &mut volumes {
        v.used_by = containers
            .iter()
            .filter(|c| c.mounts.iter().any(|m| m.volume.as_deref() == Some(v.name.as_str())))
            .map(|c| c.name.clone())
            .collect();
        v.used_by.dedup();
    }
    LiveHost { endpoint, podman_version, rootless, storage, images, containers, volumes }
}
