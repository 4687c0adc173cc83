//! Filesystem-wide mount options and per-subvolume attributes.
//!
//! btrfs applies `compress*`, `nodatacow`, `ssd`, `discard` … only from the first mount of a
//! filesystem and ignores them on later subvolume mounts (docs/ARCHITECTURE.md, "btrfs").
//! So one list of options goes on every mount of the filesystem, and everything that should
//! differ per subvolume is an attribute instead: `chattr +C` for NOCOW, `btrfs property set …
//! compression` for compression.

use super::{Decision, Driver, Strategy};
use crate::bench::report::{BenchReport, DataKind};
use crate::class::Class;
use crate::inventory::Host;
use crate::layout::Compression;

/// The options every subvolume mount of the container filesystem carries.
pub fn filesystem_options(host: &Host, strategy: Strategy, driver: Driver) -> Vec<String> {
    let mut opts = vec!["noatime".to_string(), format!("compress=zstd:{}", strategy.zstd_level())];
    if host.ssd {
        opts.push("ssd".into());
        opts.push("discard=async".into());
    }
    if host.rootless && driver == Driver::Btrfs {
        opts.push("user_subvol_rm_allowed".into());
    }
    opts
}

pub fn options_decision(host: &Host, strategy: Strategy, options: &[String]) -> Decision {
    let mut why = vec![
        "btrfs takes `compress`, `ssd`, `discard` and the like from the first mount of a \
         filesystem only; differing lists on other subvolume mounts would be silently ignored, \
         so every subvolume mount carries exactly this list"
            .into(),
        "`noatime`: reading a file does not write metadata, which on copy-on-write storage \
         would rewrite metadata blocks and grow snapshots"
            .into(),
        format!(
            "`compress=zstd:{}`: transparent compression for new data; btrfs skips data that does \
             not compress. The level is filesystem-wide: the per-subvolume property has none",
            strategy.zstd_level()
        ),
    ];
    if host.ssd {
        why.push(
            "`ssd`, `discard=async`: the disk is solid-state; asynchronous discard returns freed \
             space without stalling writes"
                .into(),
        );
    }
    if options.iter().any(|o| o == "user_subvol_rm_allowed") {
        why.push(
            "`user_subvol_rm_allowed`: rootless Podman with the btrfs driver must delete the layer \
             subvolumes it created"
                .into(),
        );
    }
    Decision {
        topic: "filesystem-wide mount options".into(),
        choice: options.join(","),
        why,
        gives_up: vec![
            "per-subvolume differences cannot be expressed as mount options; they are attributes \
             set once on the empty subvolume (see the subvolume decisions)"
                .into(),
        ],
    }
}

/// NOCOW and compression for a subvolume holding data of `class`. `declared` is true when
/// every workload placed there declared its class, which the reliability strategy requires
/// before giving up checksums.
pub fn data_attributes(class: Class, strategy: Strategy, declared: bool) -> (bool, Option<Compression>) {
    let nocow = class.rewrites_in_place() && (strategy != Strategy::Reliability || declared);
    let compression = if nocow { None } else { Some(class.info().compression) };
    (nocow, compression)
}

/// Compression of the image store (graphroot).
pub fn image_store_compression(strategy: Strategy) -> Compression {
    match strategy {
        // Layers are read on every container start; not decompressing them saves CPU there.
        Strategy::Performance => Compression::None,
        Strategy::Balanced | Strategy::Reliability => Compression::Zstd,
    }
}

/// Adds the measured cost and gain of compression to a decision that sets it, for both
/// kinds of data; true when the report had any.
pub fn cite_compression(decision: &mut Decision, bench: Option<&BenchReport>) -> bool {
    cite_compression_of(decision, bench, &[DataKind::Compressible, DataKind::Incompressible])
}

/// As [`cite_compression`], for the kinds of data given.
pub fn cite_compression_of(decision: &mut Decision, bench: Option<&BenchReport>, kinds: &[DataKind]) -> bool {
    match bench.and_then(|b| super::measured::compression_cited(b, kinds)) {
        Some(line) => {
            decision.why.push(line);
            true
        }
        None => false,
    }
}
