//! The one error of every Podman call. Its message names the endpoint and where it came
//! from, the call, what went wrong, and what to do; it becomes exit code 3 (exit 2 for a
//! name that was never sent).

use super::MIN_VERSION;
use super::endpoint::{Discovered, Endpoint};
use std::fmt;
use std::io;
use std::time::Duration;

/// A failed call to Podman's API.
#[derive(Debug)]
pub struct PodmanError {
    at: Discovered,
    /// The call as the messages name it: `_ping`, `containers/json`, `containers/pg/stop`.
    call: String,
    kind: ErrorKind,
}

/// How a call failed.
#[derive(Debug)]
pub enum ErrorKind {
    /// Connecting, writing or reading failed.
    Io(io::Error),
    /// A stream that was flowing broke off: Podman stopped or restarted.
    Interrupted(io::Error),
    /// No whole answer within the time allowed.
    Timeout(Duration),
    /// Something answered, but not as Podman does: not HTTP, not JSON, JSON of another
    /// shape, HTTP 404 for a path every Podman knows. The text says how.
    NotPodman(String),
    /// Podman answered with an error status; `message` is what it said.
    Failed { status: u16, message: String },
    /// A Podman older than [`MIN_VERSION`]; its version.
    TooOld(String),
    /// A container or volume name that cannot be Podman's; it was never sent.
    BadName(String),
}

impl PodmanError {
    pub(crate) fn new(at: &Discovered, call: impl Into<String>, kind: ErrorKind) -> Self {
        PodmanError { at: at.clone(), call: call.into(), kind }
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The call that failed, e.g. `containers/pg/stop`.
    pub fn call(&self) -> &str {
        &self.call
    }

    /// The HTTP status Podman answered with, for [`ErrorKind::Failed`].
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Failed { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The first line of the message, without the help: for one log line.
    pub fn brief(&self) -> String {
        self.to_string().lines().next().unwrap_or_default().to_string()
    }
}

const OTHER_ENDPOINT: &str = "or name another endpoint with --url or CONTAINER_HOST";

impl fmt::Display for PodmanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.at.describe();
        let call = &self.call;
        match &self.kind {
            ErrorKind::Io(e) => self.fmt_io(f, e),
            ErrorKind::Interrupted(e) => write!(
                f,
                "{at} stopped answering `{call}` midway ({e})\n  = help: Podman stopped or restarted; \
                 `systemctl status podman.socket podman.service` says which"
            ),
            ErrorKind::Timeout(limit) => write!(
                f,
                "{at} did not answer `{call}` within {} s\n  = help: check that the Podman service is not \
                 hung (`systemctl status podman.socket podman.service`, or `systemctl --user …` for \
                 rootless Podman), {OTHER_ENDPOINT}",
                limit.as_secs_f64()
            ),
            ErrorKind::NotPodman(detail) => write!(
                f,
                "{at} does not answer like a Podman API socket: {detail}\n  = help: point --url or \
                 CONTAINER_HOST at the socket of `podman system service` (podman.socket)"
            ),
            ErrorKind::Failed { status, message } => {
                let said =
                    if message.trim().is_empty() { String::new() } else { format!(": {}", said(message)) };
                let help = if *status == 404 {
                    "list what there is with `podman ps --all` or `podman volume ls`"
                } else {
                    "see the Podman service's log (`journalctl -u podman.service`, or \
                     `journalctl --user -u podman.service` for rootless Podman)"
                };
                write!(f, "Podman at {at} failed `{call}`: HTTP {status}{said}\n  = help: {help}")
            }
            ErrorKind::TooOld(version) => write!(
                f,
                "Podman {version} at {at} is older than {MIN_VERSION}, the oldest version this tool reads\n  = \
                 help: upgrade Podman on that host, or describe the host in a spec file instead (--spec)"
            ),
            ErrorKind::BadName(name) => write!(
                f,
                "{} is not a Podman container or volume name (letters, digits, `_`, `.`, `-`)",
                excerpt(name)
            ),
        }
    }
}

impl PodmanError {
    fn start_hint(&self) -> &'static str {
        if self.at.rootless() {
            "start the user's Podman API socket with `systemctl --user enable --now podman.socket` \
             (rootful Podman: `systemctl enable --now podman.socket`)"
        } else {
            "start Podman's API socket with `systemctl enable --now podman.socket` (rootless Podman: \
             `systemctl --user enable --now podman.socket` as that user)"
        }
    }

    /// A failure to connect, or to talk over the connection.
    fn fmt_io(&self, f: &mut fmt::Formatter<'_>, e: &io::Error) -> fmt::Result {
        let (url, origin, call) = (self.at.describe(), self.at.origin(), &self.call);
        match (&self.at.endpoint, e.kind()) {
            (Endpoint::Unix(path), io::ErrorKind::NotFound) => write!(
                f,
                "no Podman socket at {} ({origin})\n  = help: {}, {OTHER_ENDPOINT}",
                path.display(),
                self.start_hint()
            ),
            (Endpoint::Unix(path), io::ErrorKind::ConnectionRefused) => {
                let is_socket = {
                    use std::os::unix::fs::FileTypeExt;
                    std::fs::metadata(path).map(|m| m.file_type().is_socket()).unwrap_or(true)
                };
                let what_is_there = if is_socket {
                    "the socket file exists but nothing listens on it (connection refused)"
                } else {
                    "something is there but it is not a socket"
                };
                write!(
                    f,
                    "no Podman socket at {} ({origin}): {what_is_there}\n  = help: {}, {OTHER_ENDPOINT}",
                    path.display(),
                    self.start_hint()
                )
            }
            (Endpoint::Unix(path), io::ErrorKind::PermissionDenied) => write!(
                f,
                "permission denied on the Podman socket at {} ({origin})\n  = help: run as root or as the \
                 user whose socket it is, or use your own rootless socket \
                 ($XDG_RUNTIME_DIR/podman/podman.sock, started with `systemctl --user enable --now \
                 podman.socket`)",
                path.display()
            ),
            (Endpoint::Tcp(authority), io::ErrorKind::ConnectionRefused) => write!(
                f,
                "nothing listens at {url} (connection refused)\n  = help: start the service there with \
                 `podman system service --time=0 tcp://{authority}`, {OTHER_ENDPOINT}"
            ),
            (
                _,
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe,
            ) => {
                let detail = format!("it closed the connection during `{call}` ({e})");
                fmt::Display::fmt(&PodmanError::new(&self.at, call.as_str(), ErrorKind::NotPodman(detail)), f)
            }
            _ => write!(
                f,
                "cannot talk to {url} (`{call}`): {e}\n  = help: check the endpoint, {OTHER_ENDPOINT}"
            ),
        }
    }
}

impl std::error::Error for PodmanError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) | ErrorKind::Interrupted(e) => Some(e),
            _ => None,
        }
    }
}

impl From<PodmanError> for crate::error::Error {
    fn from(e: PodmanError) -> Self {
        match e.kind {
            ErrorKind::BadName(_) => crate::error::Error::Usage(e.to_string()),
            _ => crate::error::Error::Environment(e.to_string()),
        }
    }
}

/// Shortens text for an error message, and makes control characters visible.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = text.chars().take(MAX).collect::<String>();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    format!("{:?}", out)
}

/// What Podman said in an error answer, whole (it names the object and the reason), on
/// one line and without control characters.
fn said(message: &str) -> String {
    const MAX: usize = 400;
    let mut out: String = message
        .trim()
        .chars()
        .take(MAX)
        .flat_map(|c| if c.is_control() { c.escape_debug().collect::<Vec<_>>() } else { vec![c] })
        .collect();
    if message.trim().chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// `: "…"` with the start of a body, or nothing for an empty one.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() { String::new() } else { format!(": {}", excerpt(text.trim())) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::path::PathBuf;

    fn discovered(path: &str, why: &str) -> Discovered {
        Discovered { endpoint: Endpoint::Unix(PathBuf::from(path)), why: why.into() }
    }

    fn io(d: &Discovered, kind: io::ErrorKind) -> Error {
        PodmanError::new(d, "_ping", ErrorKind::Io(io::Error::from(kind))).into()
    }

    #[test]
    fn connection_failures_say_what_to_do() {
        let d = discovered("/nonexistent/podman.sock", "rootful default");
        let msg = io(&d, io::ErrorKind::NotFound).to_string();
        assert!(msg.contains("no Podman socket at /nonexistent/podman.sock"), "{msg}");
        assert!(msg.contains("`systemctl enable --now podman.socket`"), "{msg}");
        assert!(msg.contains("systemctl --user enable --now podman.socket"), "{msg}");
        assert!(msg.contains("--url") && msg.contains("CONTAINER_HOST"), "{msg}");

        let msg = io(&d, io::ErrorKind::ConnectionRefused).to_string();
        assert!(msg.contains("no Podman socket at") && msg.contains("connection refused"), "{msg}");

        let err = io(&d, io::ErrorKind::PermissionDenied);
        assert_eq!(err.exit_code(), crate::error::exit::ENVIRONMENT);
        let msg = err.to_string();
        assert!(msg.contains("permission denied on the Podman socket at /nonexistent/podman.sock"), "{msg}");
        assert!(msg.contains("run as root or as the user whose socket it is"), "{msg}");
        assert!(msg.contains("rootless socket"), "{msg}");

        let d = discovered("/run/user/1000/podman/podman.sock", "rootless default ($XDG_RUNTIME_DIR)");
        let msg = io(&d, io::ErrorKind::NotFound).to_string();
        assert!(msg.contains("help: start the user's Podman API socket with `systemctl --user"), "{msg}");

        let d = Discovered { endpoint: Endpoint::Tcp("127.0.0.1:1".into()), why: "--url".into() };
        let msg = io(&d, io::ErrorKind::ConnectionRefused).to_string();
        assert!(msg.contains("nothing listens at tcp://127.0.0.1:1"), "{msg}");

        let msg = io(&d, io::ErrorKind::ConnectionReset).to_string();
        assert!(msg.contains("does not answer like a Podman API socket: it closed the connection"), "{msg}");
    }

    #[test]
    fn too_old_and_not_podman_messages() {
        let d = discovered("/tmp/x.sock", "--url");
        let msg = Error::from(PodmanError::new(&d, "_ping", ErrorKind::TooOld("3.4.4".into()))).to_string();
        assert!(
            msg.contains("Podman 3.4.4 at unix:///tmp/x.sock (from --url) is older than 4.3, the oldest"),
            "{msg}"
        );
        let msg = Error::from(PodmanError::new(&d, "_ping", ErrorKind::NotPodman("x".into()))).to_string();
        assert!(msg.starts_with(
            "error: unix:///tmp/x.sock (from --url) does not answer like a Podman API socket: x"
        ));
        let d = discovered("/run/podman/podman.sock", "rootful default");
        let msg = io(&d, io::ErrorKind::NotFound).to_string();
        assert!(
            msg.starts_with("error: no Podman socket at /run/podman/podman.sock (the rootful default)\n")
        );
    }

    #[test]
    fn failures_name_the_call_the_status_and_where_to_look() {
        let d = discovered("/tmp/x.sock", "--url");
        let failed = |status, message: &str| {
            PodmanError::new(&d, "containers/pg/stop", ErrorKind::Failed { status, message: message.into() })
        };
        let e = failed(500, "boom");
        assert_eq!(e.status(), Some(500));
        assert_eq!(e.call(), "containers/pg/stop");
        let msg = e.to_string();
        assert!(
            msg.starts_with(
                "Podman at unix:///tmp/x.sock (from --url) failed `containers/pg/stop`: HTTP 500: boom\n"
            ),
            "{msg}"
        );
        assert!(msg.contains("journalctl -u podman.service"), "{msg}");
        assert_eq!(e.brief(), msg.lines().next().unwrap());
        let msg = failed(500, "\"a\" is\nalready paused\u{7}").to_string();
        assert!(msg.contains("HTTP 500: \"a\" is\\nalready paused\\u{7}\n"), "{msg}");
        let msg = failed(404, "").to_string();
        assert!(msg.contains("HTTP 404\n") && msg.contains("podman ps --all"), "{msg}");
        let cut = io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected EOF");
        let msg = PodmanError::new(&d, "events", ErrorKind::Interrupted(cut)).brief();
        assert_eq!(msg, "unix:///tmp/x.sock (from --url) stopped answering `events` midway (unexpected EOF)");
        let timeout = PodmanError::new(&d, "info", ErrorKind::Timeout(Duration::from_millis(300)));
        assert!(timeout.to_string().contains("did not answer `info` within 0.3 s"));
        let bad = Error::from(PodmanError::new(&d, "containers/x/stop", ErrorKind::BadName("../x".into())));
        assert_eq!(bad.exit_code(), crate::error::exit::USAGE);
        assert!(bad.to_string().contains("\"../x\" is not a Podman container or volume name"), "{bad}");
    }
}
