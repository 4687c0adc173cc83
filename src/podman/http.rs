//! One HTTP/1.1 request per connection, on a socket this module connects itself: so a unix
//! socket names the process that answers (`SO_PEERCRED`), and a peer that sends something
//! other than HTTP is told apart from one that is not there. hyper speaks the HTTP.

use super::endpoint::Endpoint;
use super::error::{ErrorKind, excerpt};
use hyper::body::{Bytes, HttpBody};
use hyper::{Body, Method, Request};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest answer read whole; an inspection is a few KiB.
pub(super) const MAX_ANSWER: usize = 64 << 20;

/// How many of the first bytes of an answer are kept, to describe one that is not HTTP.
const START: usize = 24;

/// What went wrong below the meaning of an answer.
#[derive(Debug)]
pub(super) enum Broken {
    /// Connecting, writing or reading failed.
    Io(io::Error),
    /// The peer answered, but not with HTTP this reads.
    Malformed(String),
    Timeout,
}

impl Broken {
    /// The error kind for `call`, which had `limit` (none for a stream that may last).
    pub(super) fn kind(self, call: &str, limit: Option<Duration>) -> ErrorKind {
        match (self, limit) {
            (Broken::Io(e), _) => ErrorKind::Io(e),
            (Broken::Malformed(detail), _) => ErrorKind::NotPodman(format!("`{call}`: {detail}")),
            (Broken::Timeout, Some(limit)) => ErrorKind::Timeout(limit),
            (Broken::Timeout, None) => ErrorKind::Io(io::Error::from(io::ErrorKind::TimedOut)),
        }
    }
}

/// A whole answer.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: u16,
    headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An answer whose body is still arriving; the connection lasts as long as this does.
pub(super) struct Streaming {
    pub status: u16,
    headers: hyper::HeaderMap,
    body: Body,
    seen: Arc<Mutex<Seen>>,
    _connection: AbortOnDrop,
}

impl Streaming {
    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, Broken>> {
        let chunk = self.body.data().await?;
        Some(chunk.map_err(|e| broken(&e, &self.seen)))
    }

    /// The whole body, at most `MAX_ANSWER` bytes.
    pub async fn whole(mut self) -> Result<Answer, Broken> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await {
            let chunk = chunk?;
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(Broken::Malformed(format!("the answer is larger than {} MiB", MAX_ANSWER >> 20)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status: self.status, headers: self.headers, body })
    }
}

/// Aborts the task that drives a connection.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request, its answer read whole, all of it within `limit`; and the pid of the
/// process that answered on a unix socket ([`peer_pid`]).
pub(super) async fn exchange(
    endpoint: &Endpoint,
    method: Method,
    path: &str,
    limit: Duration,
) -> Result<(Answer, Option<u32>), Broken> {
    let whole = async {
        let (streaming, pid) = open(endpoint, method, path, true).await?;
        Ok((streaming.whole().await?, pid))
    };
    tokio::time::timeout(limit, whole).await.unwrap_or(Err(Broken::Timeout))
}

/// Connects, sends one request and waits for the head of the answer. `close` asks the peer
/// to close the connection after the answer; a stream leaves it open.
pub(super) async fn open(
    endpoint: &Endpoint,
    method: Method,
    path: &str,
    close: bool,
) -> Result<(Streaming, Option<u32>), Broken> {
    let (socket, pid) = connect(endpoint).await.map_err(Broken::Io)?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let tapped = Tap { inner: socket, seen: seen.clone() };
    let (mut sender, connection) =
        hyper::client::conn::handshake(tapped).await.map_err(|e| broken(&e, &seen))?;
    let connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let host = match endpoint {
        Endpoint::Unix(_) => "d",
        Endpoint::Tcp(authority) => authority.as_str(),
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", host)
        .header("User-Agent", concat!("podman-btrfs-advise/", env!("CARGO_PKG_VERSION")))
        .header("Accept", "application/json");
    if close {
        request = request.header("Connection", "close");
    }
    let request = request
        .body(Body::empty())
        .map_err(|e| Broken::Io(io::Error::new(io::ErrorKind::InvalidInput, format!("{path:?}: {e}"))))?;
    let response = sender.send_request(request).await.map_err(|e| broken(&e, &seen))?;
    let (head, body) = response.into_parts();
    let streaming = Streaming {
        status: head.status.as_u16(),
        headers: head.headers,
        body,
        seen,
        _connection: connection,
    };
    Ok((streaming, pid))
}

trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

/// The process at the other end of a connected unix socket (SO_PEERCRED), `None` when
/// the kernel cannot name it here (0: it lives in a PID namespace we cannot see).
///
/// The kernel records the credentials of the process that called `listen()`. For a
/// socket-activated service (systemd's podman.socket) that is systemd, not Podman: PID 1
/// for the rootful socket, which shares the host's mount namespace with the Podman it
/// starts, so reading there is right; a user's `systemd --user` for a rootless socket,
/// whose Podman keeps its store at the same paths.
fn peer_pid(stream: &tokio::net::UnixStream) -> Option<u32> {
    let pid = stream.peer_cred().ok()?.pid()?;
    u32::try_from(pid).ok().filter(|p| *p > 0)
}

async fn connect(endpoint: &Endpoint) -> io::Result<(Box<dyn Socket>, Option<u32>)> {
    Ok(match endpoint {
        Endpoint::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path).await?;
            let pid = peer_pid(&stream);
            (Box::new(stream), pid)
        }
        Endpoint::Tcp(authority) => {
            (Box::new(tokio::net::TcpStream::connect(authority.as_str()).await?), None)
        }
    })
}

/// What the peer has sent so far: how much, and how it began.
#[derive(Debug, Default)]
struct Seen {
    count: usize,
    start: Vec<u8>,
}

/// A socket that notes what it reads into [`Seen`].
struct Tap {
    inner: Box<dyn Socket>,
    seen: Arc<Mutex<Seen>>,
}

impl AsyncRead for Tap {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = &buf.filled()[before..];
            let mut seen = this.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            seen.count += new.len();
            let room = START.saturating_sub(seen.start.len()).min(new.len());
            seen.start.extend_from_slice(&new[..room]);
        }
        polled
    }
}

impl AsyncWrite for Tap {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Names a failure hyper reports, by what the peer sent.
fn broken(e: &hyper::Error, seen: &Mutex<Seen>) -> Broken {
    let seen = seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if seen.count == 0 && (e.is_incomplete_message() || e.is_closed()) {
        return Broken::Malformed("it closed the connection without answering".into());
    }
    if seen.count > 0 && !seen.start.starts_with(b"HTTP/1.") {
        return Broken::Malformed(not_http(&seen.start, seen.count));
    }
    match io_source(e).map(io::Error::kind) {
        Some(io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput) => {
            Broken::Malformed(format!("a malformed HTTP answer ({e})"))
        }
        Some(kind) => Broken::Io(io::Error::new(kind, e.to_string())),
        None if e.is_incomplete_message() => {
            Broken::Io(io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string()))
        }
        None => Broken::Malformed(format!("a malformed HTTP answer ({e})")),
    }
}

/// `not HTTP (it sent 7 bytes starting with 16 03 01 20 74 6c 73)`: text when it is text.
fn not_http(start: &[u8], count: usize) -> String {
    let start = &start[..start.len().min(START)];
    let start = if start.iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) {
        excerpt(&String::from_utf8_lossy(start))
    } else {
        start.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
    };
    format!("not HTTP (it sent {count} bytes starting with {start})")
}

/// The first `io::Error` in an error's chain of sources.
pub(super) fn io_source<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A unix socket in a fresh directory whose peer reads the request, writes `answer`
    /// and closes; the directory goes with the returned guard.
    pub(in crate::podman) struct Peer {
        dir: std::path::PathBuf,
        pub endpoint: Endpoint,
    }

    impl Drop for Peer {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub(in crate::podman) fn peer(answer: &'static [u8]) -> Peer {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("podfs-http-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("s.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(answer).await;
                let _ = stream.shutdown().await;
            }
        });
        Peer { dir, endpoint: Endpoint::Unix(socket) }
    }

    async fn get(answer: &'static [u8]) -> Result<Answer, Broken> {
        let p = peer(answer);
        exchange(&p.endpoint, Method::GET, "/x", Duration::from_secs(5)).await.map(|(a, pid)| {
            assert_eq!(pid, Some(std::process::id()), "the peer is this process");
            a
        })
    }

    #[tokio::test]
    async fn answers_are_read_by_length_by_chunks_and_to_the_end() {
        let a = get(b"HTTP/1.1 200 OK\r\nLibpod-Api-Version: 4.3.1\r\nContent-Length: 2\r\n\r\nOKextra")
            .await
            .unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), a.header("libpod-api-version")),
            (200, &b"OK"[..], Some("4.3.1"))
        );
        let a =
            get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2;x=y\r\n2]\r\n0\r\n\r\n")
                .await
                .unwrap();
        assert_eq!(a.body, b"[1,2]");
        let a = get(b"HTTP/1.0 404 Not Found\r\n\r\nnope").await.unwrap();
        assert_eq!((a.status, a.body.as_slice()), (404, &b"nope"[..]));
        let recorded: &'static [u8] = include_bytes!("../../tests/fixtures/podman-4.3.1/ping.http");
        let a = get(recorded).await.unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), a.header("Libpod-Api-Version")),
            (200, &b"OK"[..], Some("4.3.1"))
        );
    }

    #[tokio::test]
    async fn broken_answers_are_refused() {
        for bad in [
            &b""[..],
            b"\x00\xff\xfe garbage",
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab",
        ] {
            match get(bad).await {
                Err(Broken::Malformed(_)) => {}
                Err(Broken::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {}
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
        let Err(Broken::Malformed(m)) = get(b"").await else { panic!() };
        assert_eq!(m, "it closed the connection without answering");
        let Err(Broken::Malformed(m)) = get(b"\x16\x03\x01 tls").await else { panic!() };
        assert_eq!(m, "not HTTP (it sent 7 bytes starting with 16 03 01 20 74 6c 73)");
        let Err(Broken::Malformed(m)) = get(b"SSH-2.0-OpenSSH_9.2\r\n").await else { panic!() };
        assert_eq!(m, "not HTTP (it sent 21 bytes starting with \"SSH-2.0-OpenSSH_9.2\\r\\n\")");
    }
}
