//! The plugin's unix socket and the HTTP/1.1 server on it.

use super::plugin::{Answer, MAX_BODY, answer};
use super::volumes::VolumeRoot;
use crate::error::Error;
use hyper::body::HttpBody;
use hyper::server::conn::Http;
use hyper::service::service_fn;
use hyper::{Body, Method, Request, Response};
use std::convert::Infallible;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;

/// A client that has not sent its request headers by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket's path, removed again when dropped (if it is still ours).
#[derive(Debug)]
pub struct PluginSocket {
    pub path: PathBuf,
    inode: u64,
}

impl Drop for PluginSocket {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the socket with mode 0600. A stale socket left by a crash is replaced; a live one
/// (another instance) or anything that is not a socket is refused.
pub fn bind(path: &Path) -> Result<(PluginSocket, UnixListener), Error> {
    if !path.is_absolute() {
        return Err(Error::Usage(format!("--socket {} must be an absolute path", path.display())));
    }
    if let Some(parent) = path.parent().filter(|p| !p.exists()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| Error::io(parent, "create the socket's directory", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::Environment(format!(
                    "another process listens on {}; stop it first (systemctl stop podman-btrfs-advise)",
                    path.display()
                )));
            }
            tracing::info!(socket = %path.display(), "replacing a stale socket");
            std::fs::remove_file(path).map_err(|e| Error::io(path, "remove the stale socket", e))?;
        }
        Ok(_) => {
            return Err(Error::Environment(format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, "inspect the socket path", e)),
    }
    // The socket is created with mode 0600 from the start: no moment where others could connect.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    rustix::process::umask(old);
    let std_listener = bound.map_err(|e| Error::io(path, "listen on", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(path, "set the mode of", e))?;
    let inode = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, "inspect", e))?.ino();
    std_listener.set_nonblocking(true).map_err(|e| Error::io(path, "configure", e))?;
    let listener = UnixListener::from_std(std_listener).map_err(|e| Error::io(path, "listen on", e))?;
    Ok((PluginSocket { path: path.to_path_buf(), inode }, listener))
}

/// Serves plugin requests; never returns (a failed accept is logged and retried).
pub async fn run(listener: UnixListener, root: Arc<VolumeRoot>) {
    let mut http = Http::new();
    http.http1_only(true).http1_header_read_timeout(HEADER_TIMEOUT);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!("accepting a plugin connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let root = root.clone();
        let connection = http.serve_connection(
            stream,
            service_fn(move |request| {
                let root = root.clone();
                async move { Ok::<_, Infallible>(respond(&root, request).await) }
            }),
        );
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("plugin connection ended: {e}");
            }
        });
    }
}

fn reply(answer: Answer) -> Response<Body> {
    let body = serde_json::to_vec(&answer.body).expect("JSON values serialize");
    Response::builder()
        .status(answer.status)
        .header("Content-Type", "application/vnd.docker.plugins.v1.1+json")
        .body(Body::from(body))
        .expect("a valid status and header")
}

async fn respond(root: &VolumeRoot, request: Request<Body>) -> Response<Body> {
    let endpoint = request.uri().path().to_string();
    if request.method() != Method::POST {
        return reply(Answer::error(
            405,
            format!("{} is not allowed: the volume plugin protocol uses POST", request.method()),
        ));
    }
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || Answer::error(413, format!("request body larger than {} KiB", MAX_BODY / 1024));
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return reply(too_large());
    }
    let mut body = request.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        match chunk {
            Ok(chunk) if bytes.len() + chunk.len() <= MAX_BODY => bytes.extend_from_slice(&chunk),
            Ok(_) => return reply(too_large()),
            Err(e) => return reply(Answer::error(400, format!("reading the request body failed: {e}"))),
        }
    }
    reply(answer(root, &endpoint, &bytes))
}

/// Tells systemd (`Type=notify`) that the socket is listening.
pub fn notify_ready(status: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let message = format!("READY=1\nSTATUS={status}\n");
    let sent = (|| -> std::io::Result<()> {
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        let bytes = target.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(message.as_bytes(), &addr)?;
        } else {
            socket.send_to(message.as_bytes(), Path::new(&target))?;
        }
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!("could not notify systemd at {}: {e}", target.to_string_lossy());
    }
}
