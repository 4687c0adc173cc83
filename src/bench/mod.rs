//! `bench`: measuring this host's storage choices on its own disk. Database-like I/O on
//! copy-on-write, compressed and NOCOW files, compression's cost, and a real Podman's
//! operations on the overlay and btrfs drivers; the figures go into a [`report::BenchReport`]
//! that `plan --bench` reads.

pub mod containers;
pub mod report;
