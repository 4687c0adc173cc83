//! podman-btrfs-advise: plans, writes and checks btrfs layouts and containers/storage.conf
//! for Podman hosts.
//!
//! Data flows one way (docs/ARCHITECTURE.md, "Data flow"): [`inventory::Inventory`] →
//! [`classify`] → [`classify::Profile`] → [`decide`] → [`decide::Plan`] (holding a [`layout::Layout`]) →
//! [`render`]. Each stage is a plain function of the previous stage's value; I/O happens
//! only at the edges ([`inventory::spec::load`], [`podman`], [`output`]).

pub mod bench;
pub mod btrfs;
pub mod class;
pub mod classify;
pub mod cli;
pub mod conf;
pub mod daemon;
pub mod decide;
pub mod diagnostic;
pub mod error;
pub mod inspect;
pub mod inventory;
pub mod layout;
pub mod migrate;
pub mod output;
pub mod podman;
pub mod render;
pub mod scan;
pub mod size;
pub mod snapshot;
pub mod suggest;
pub mod validate;
