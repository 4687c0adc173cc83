//! `migrate`: moving a live host's data into the planned layout without changing what
//! Podman sees. Every path, driver and volume record stays; what lies under a path
//! becomes a subvolume of its own with its class's attributes, filled by a verified copy,
//! while the old data waits beside it until `--finalize`.

pub mod copy;
pub mod disk;
pub mod journal;
pub mod onto_disk;
pub mod persist;
pub mod podman_ops;
pub mod progress;
pub mod steps;
pub mod targets;
pub mod tree;
pub mod verify;
