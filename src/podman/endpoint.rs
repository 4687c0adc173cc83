//! Where Podman's API listens: found the way Podman's own remote client finds it.

use crate::error::Error;
use std::path::{Path, PathBuf};

/// The rootful socket path.
pub const ROOTFUL_SOCKET: &str = "/run/podman/podman.sock";

/// Where the Podman API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket, e.g. `/run/podman/podman.sock`.
    Unix(PathBuf),
    /// `host:port` of a `podman system service tcp://…`.
    Tcp(String),
}

impl Endpoint {
    /// The endpoint as a URL: `unix:///path` or `tcp://host:port`.
    pub fn url(&self) -> String {
        match self {
            Endpoint::Unix(path) => format!("unix://{}", path.display()),
            Endpoint::Tcp(authority) => format!("tcp://{authority}"),
        }
    }
}

/// An endpoint and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub endpoint: Endpoint,
    /// `--url`, `CONTAINER_HOST`, `rootful default` or `rootless default ($XDG_RUNTIME_DIR)`.
    pub why: String,
}

impl Discovered {
    /// The endpoint and where it came from, e.g. `unix:///x.sock (from --url)`.
    pub(crate) fn describe(&self) -> String {
        format!("{} ({})", self.endpoint.url(), self.origin())
    }

    /// `from --url`, `from CONTAINER_HOST`, `the rootful default`, ….
    pub(crate) fn origin(&self) -> String {
        if self.why.starts_with('-') || self.why.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            format!("from {}", self.why)
        } else {
            format!("the {}", self.why)
        }
    }

    /// Whether the socket belongs to a rootless Podman, for choosing hints.
    pub(crate) fn rootless(&self) -> bool {
        match &self.endpoint {
            Endpoint::Unix(path) => self.why.starts_with("rootless") || path.starts_with("/run/user"),
            Endpoint::Tcp(_) => false,
        }
    }
}

/// Finds the Podman socket as Podman's remote client does.
///
/// Order: explicit url (from --url), then the CONTAINER_HOST env var, then for root
/// /run/podman/podman.sock, for other users $XDG_RUNTIME_DIR/podman/podman.sock.
///
/// Accepts `unix:///path`, `unix:/path`, a bare absolute path and `tcp://host:port`.
/// Pure: the environment and whether we run as root are passed in.
pub fn discover(
    url: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    is_root: bool,
) -> Result<Discovered, Error> {
    if let Some(url) = url {
        return Ok(Discovered { endpoint: parse_url(url, "--url")?, why: "--url".into() });
    }
    if let Some(host) = env("CONTAINER_HOST").filter(|h| !h.trim().is_empty()) {
        let endpoint = parse_url(host.trim(), "CONTAINER_HOST")?;
        return Ok(Discovered { endpoint, why: "CONTAINER_HOST".into() });
    }
    if is_root {
        return Ok(Discovered {
            endpoint: Endpoint::Unix(ROOTFUL_SOCKET.into()),
            why: "rootful default".into(),
        });
    }
    match env("XDG_RUNTIME_DIR").filter(|d| Path::new(d).is_absolute()) {
        Some(dir) => Ok(Discovered {
            endpoint: Endpoint::Unix(Path::new(&dir).join("podman/podman.sock")),
            why: "rootless default ($XDG_RUNTIME_DIR)".into(),
        }),
        None => Err(Error::Environment(
            "XDG_RUNTIME_DIR is not set (or not an absolute path), so the rootless Podman socket \
             cannot be found\n  = help: pass --url unix:///run/user/$(id -u)/podman/podman.sock, \
             set CONTAINER_HOST, or run as root to read the rootful socket"
                .into(),
        )),
    }
}

/// Parses one endpoint as `--url` or `CONTAINER_HOST` gives it; `from` names the source.
fn parse_url(value: &str, from: &str) -> Result<Endpoint, Error> {
    let unix_path = value
        .strip_prefix("unix://")
        .or_else(|| value.strip_prefix("unix:"))
        .or_else(|| if value.starts_with('/') { Some(value) } else { None });
    if let Some(path) = unix_path {
        if path.starts_with('/') && path.len() > 1 {
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        return Err(Error::Usage(format!(
            "{from} {value:?}: a unix socket needs an absolute path, e.g. unix:///run/podman/podman.sock"
        )));
    }
    if let Some(rest) = value.strip_prefix("tcp://") {
        let authority = rest.trim_end_matches('/');
        let port_ok = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok || authority.contains('/') {
            return Err(Error::Usage(format!(
                "{from} {value:?}: a TCP endpoint needs a host and a port, e.g. tcp://127.0.0.1:8080"
            )));
        }
        return Ok(Endpoint::Tcp(authority.to_string()));
    }
    if let Some(rest) = value.strip_prefix("ssh://") {
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) if !p.is_empty() => (a, format!("/{p}")),
            Some((a, _)) => (a, ROOTFUL_SOCKET.to_string()),
            None => (rest, ROOTFUL_SOCKET.to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h, format!(" -p {p}")),
            _ => (authority, String::new()),
        };
        let host = if host.is_empty() { "HOST" } else { host };
        return Err(Error::Usage(format!(
            "{from} {value:?}: ssh:// connections are not supported\n  = help: forward the remote \
             socket with `ssh{port} -L /tmp/podman.sock:{path} {host}` and pass \
             --url unix:///tmp/podman.sock"
        )));
    }
    Err(Error::Usage(format!(
        "{from} {value:?} is not a Podman endpoint; use unix:///path/to/podman.sock, a bare absolute \
         path, or tcp://host:port"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn unix(p: &str) -> Endpoint {
        Endpoint::Unix(PathBuf::from(p))
    }

    fn usage(r: Result<Discovered, Error>) -> String {
        match r {
            Err(Error::Usage(msg)) => msg,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn url_comes_first() {
        let env =
            env_of(&[("CONTAINER_HOST", "unix:///from/env.sock"), ("XDG_RUNTIME_DIR", "/run/user/1000")]);
        let d = discover(Some("unix:///tmp/podman.sock"), &env, false).unwrap();
        assert_eq!(d, Discovered { endpoint: unix("/tmp/podman.sock"), why: "--url".into() });
        let d = discover(Some("/tmp/podman.sock"), &env, true).unwrap();
        assert_eq!(d.endpoint, unix("/tmp/podman.sock"));
    }

    #[test]
    fn container_host_comes_second() {
        let env = env_of(&[("CONTAINER_HOST", "unix:/from/env.sock"), ("XDG_RUNTIME_DIR", "/run/user/1000")]);
        let d = discover(None, &env, true).unwrap();
        assert_eq!(d, Discovered { endpoint: unix("/from/env.sock"), why: "CONTAINER_HOST".into() });
        let env = env_of(&[("CONTAINER_HOST", "tcp://127.0.0.1:8080")]);
        let d = discover(None, &env, false).unwrap();
        assert_eq!(d.endpoint, Endpoint::Tcp("127.0.0.1:8080".into()));
        assert_eq!(d.endpoint.url(), "tcp://127.0.0.1:8080");
    }

    #[test]
    fn empty_container_host_is_unset() {
        let env = env_of(&[("CONTAINER_HOST", ""), ("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(discover(None, &env, false).unwrap().why, "rootless default ($XDG_RUNTIME_DIR)");
    }

    #[test]
    fn defaults_for_root_and_users() {
        let env = env_of(&[("XDG_RUNTIME_DIR", "/run/user/1000")]);
        let d = discover(None, &env, true).unwrap();
        assert_eq!(
            d,
            Discovered { endpoint: unix("/run/podman/podman.sock"), why: "rootful default".into() }
        );
        assert_eq!(d.endpoint.url(), "unix:///run/podman/podman.sock");
        let d = discover(None, &env, false).unwrap();
        assert_eq!(d.endpoint, unix("/run/user/1000/podman/podman.sock"));
        assert_eq!(d.why, "rootless default ($XDG_RUNTIME_DIR)");
        assert_eq!(d.endpoint.url(), "unix:///run/user/1000/podman/podman.sock");
    }

    #[test]
    fn rootless_without_runtime_dir_says_what_to_do() {
        for env in [env_of(&[]), env_of(&[("XDG_RUNTIME_DIR", "relative")])] {
            match discover(None, &env, false) {
                Err(e @ Error::Environment(_)) => {
                    let msg = e.to_string();
                    assert!(msg.contains("XDG_RUNTIME_DIR") && msg.contains("--url"), "{msg}");
                    assert_eq!(e.exit_code(), crate::error::exit::ENVIRONMENT);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn url_forms() {
        let env = env_of(&[]);
        for (given, want) in [
            ("unix:///run/podman/podman.sock", unix("/run/podman/podman.sock")),
            ("unix:/run/podman/podman.sock", unix("/run/podman/podman.sock")),
            ("/run/podman/podman.sock", unix("/run/podman/podman.sock")),
            ("tcp://localhost:8080", Endpoint::Tcp("localhost:8080".into())),
            ("tcp://[::1]:8080/", Endpoint::Tcp("[::1]:8080".into())),
        ] {
            assert_eq!(discover(Some(given), &env, false).unwrap().endpoint, want, "{given}");
        }
    }

    #[test]
    fn bad_urls_are_usage_errors_naming_the_value() {
        let env = env_of(&[]);
        for bad in [
            "",
            "podman.sock",
            "unix://relative/podman.sock",
            "unix://",
            "tcp://localhost",
            "tcp://:8080",
            "tcp://host:port",
            "http://localhost:8080",
            "npipe:////./pipe/podman",
        ] {
            let msg = usage(discover(Some(bad), &env, false));
            assert!(msg.contains(&format!("{bad:?}")), "{bad}: {msg}");
            assert!(msg.starts_with("--url "), "{msg}");
        }
        let env = env_of(&[("CONTAINER_HOST", "bogus")]);
        let msg = usage(discover(None, &env, true));
        assert!(msg.contains("CONTAINER_HOST \"bogus\""), "{msg}");
    }

    #[test]
    fn ssh_is_refused_with_a_forwarding_recipe() {
        let env = env_of(&[]);
        let msg = usage(discover(
            Some("ssh://core@example.org:2222/run/user/1000/podman/podman.sock"),
            &env,
            false,
        ));
        assert!(msg.contains("not supported"), "{msg}");
        assert!(
            msg.contains(
                "ssh -p 2222 -L /tmp/podman.sock:/run/user/1000/podman/podman.sock core@example.org"
            ),
            "{msg}"
        );
        assert!(msg.contains("--url unix:///tmp/podman.sock"), "{msg}");
        let msg = usage(discover(Some("ssh://root@host"), &env, false));
        assert!(msg.contains("ssh -L /tmp/podman.sock:/run/podman/podman.sock root@host"), "{msg}");
    }
}
