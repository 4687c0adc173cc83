//! `bench`: measuring this host's storage choices on its own disk. Database-like I/O on
//! copy-on-write, compressed and NOCOW files, compression's cost, and a real Podman's
//! operations on the overlay and btrfs drivers; the figures go into a [`report::BenchReport`]
//! that `plan --bench` reads.

pub mod compression;
pub mod containers;
pub mod database;
pub mod fiemap;
pub mod report;
pub mod run;
pub mod scratch;
pub mod svg;

use crate::error::Error;
use std::path::Path;

/// Why a measurement stopped before its end.
#[derive(Debug)]
pub enum Stop {
    /// Ctrl-C: stopped at the next safe point.
    Cancelled,
    Failed(Error),
}

impl Stop {
    pub fn io(path: impl AsRef<Path>, action: &'static str, e: std::io::Error) -> Stop {
        Stop::Failed(Error::io(path.as_ref(), action, e))
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// The running kernel's release (`uname -r`), empty when /proc cannot tell.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default()
}
