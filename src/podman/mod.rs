//! The one client of Podman's API: every call the tool makes to Podman goes through
//! [`Client`], over a unix socket or TCP, bounded by [`Timeouts`] and failing with one
//! [`PodmanError`] whose message says what to do.
//!
//! The podman-api crate reads `info` and the lists (it pins the `/v4.3.1/libpod` path,
//! which 4.3 and 5.x both serve; its inspect breaks on 5.x, where `StopSignal` became a
//! string, so its API version stays). Everything else (`_ping`, inspections, the event
//! stream, stop, start, pause, unpause) goes over connections this module opens itself.
//! podman-api stays private here: callers get the tool's own model
//! ([`crate::inventory::live`]) and [`Event`].

mod answers;
mod client;
mod endpoint;
mod error;
mod events;
mod host;
mod http;
mod version;

pub use client::{Client, DEFAULT_STOP_TIMEOUT, HostInfo, MIN_VERSION, Outcome, Ping, Timeouts};
pub use endpoint::{Discovered, Endpoint, ROOTFUL_SOCKET, discover};
pub use error::{ErrorKind, PodmanError};
pub use events::{Actor, Event, EventFilter, EventStream};
pub use host::{fetch, fetch_from, fetch_with};
pub use version::Version;

/// The runtime the tool's commands drive the client with: one thread, since a command
/// waits on one call (or one joined set of calls) at a time.
pub fn runtime() -> Result<tokio::runtime::Runtime, crate::error::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::error::Error::Environment(format!("cannot start the async runtime: {e}")))
}
