//! `check`: validate a disko.nix and a storage.conf against each other and against the
//! real rules of btrfs and Podman: disko.nix → Layout, storage.conf → rules → Diagnostics
//! (docs/ARCHITECTURE.md, "Data flow").

pub mod containers_conf;
pub mod diagnostic;
pub mod disko;
pub mod live;
pub mod mount_order;
pub mod nixpos;
pub mod rules;
pub mod source;
pub mod storage_conf;

use diagnostic::Diagnostic;

/// What `check` was given.
#[derive(Debug, Default)]
pub struct Inputs {
    pub disko: Option<disko::DiskoFile>,
    pub storage: Option<storage_conf::StorageConfFile>,
    pub containers: Option<containers_conf::ContainersConfFile>,
    /// The running host, for `check --live`.
    pub live: Option<live::LiveState>,
}

/// Runs every rule of the catalogue; diagnostics sorted by file, line and column.
pub fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = rules::CATALOGUE.iter().flat_map(|r| (r.check)(inputs)).collect();
    out.sort_by(|a, b| (&a.file, a.line, a.column, a.code).cmp(&(&b.file, b.line, b.column, b.code)));
    out
}
