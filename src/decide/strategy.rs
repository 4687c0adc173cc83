//! Strategies (docs/ARCHITECTURE.md, "Strategies"): how to trade speed against checksums and snapshots.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// NOCOW only for data rewritten in place; zstd everywhere else.
    #[default]
    Balanced,
    /// Also NOCOW image-copy temp space and no compression on image storage.
    Performance,
    /// Copy-on-write and checksums everywhere unless a class is declared explicitly;
    /// overlay driver; a snapshots subvolume.
    Reliability,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Balanced, Strategy::Performance, Strategy::Reliability];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Balanced => "balanced",
            Strategy::Performance => "performance",
            Strategy::Reliability => "reliability",
        }
    }

    /// zstd level of the filesystem-wide `compress=` option.
    pub fn zstd_level(self) -> u8 {
        match self {
            Strategy::Balanced | Strategy::Performance => 1,
            Strategy::Reliability => 3,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
