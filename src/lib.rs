//! podman-btrfs-advise: plans, writes and checks btrfs layouts and containers/storage.conf
//! for Podman hosts.

pub mod class;
pub mod classify;
pub mod decide;
pub mod error;
pub mod inventory;
pub mod layout;
pub mod size;
pub mod suggest;
