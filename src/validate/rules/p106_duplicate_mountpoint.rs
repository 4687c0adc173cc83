//! P106 `duplicate-mountpoint`.

use super::{declare_rule, subvolume_path};
use crate::layout::Content;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};
use std::collections::BTreeMap;

declare_rule! {
    /// ## What it checks
    ///
    /// Two subvolumes, filesystems or partitions mounted at the same mountpoint.
    ///
    /// ## Why it matters
    ///
    /// Only the last mount is visible; whatever the first holds is hidden under it, and
    /// NixOS's `fileSystems` keeps one of the two definitions.
    ///
    /// ## Example
    ///
    /// ```nix
    /// "@home" = { mountpoint = "/home"; };
    /// "@users" = { mountpoint = "/home"; };
    /// ```
    ///
    /// ## Fix
    ///
    /// Give each subvolume its own mountpoint, or drop the one that is not needed.
    pub static RULE = {
        code: "P106",
        name: "duplicate-mountpoint",
        severity: Severity::Error,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(disko) = &inputs.disko else { return Vec::new() };
    // mountpoint → (what, attribute path) in document order
    let mut seen: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let mut out = Vec::new();
    let mut visit = |mountpoint: &str, what: String, path: Vec<String>, out: &mut Vec<Diagnostic>| {
        let key = mountpoint.trim_end_matches('/').to_string();
        match seen.get(&key) {
            Some((first, _)) => {
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                out.push(
                    Diagnostic::at(
                        RULE.code,
                        RULE.severity,
                        &disko.source,
                        disko.positions.of(&p),
                        format!("{what} is mounted at {mountpoint}, where {first} is mounted too"),
                    )
                    .with_help("give each mount its own mountpoint"),
                );
            }
            None => {
                seen.insert(key, (what, path));
            }
        }
    };
    for disk in &disko.layout.disks {
        for part in &disk.partitions {
            match &part.content {
                Content::Filesystem(f) => {
                    if let Some(m) = &f.mountpoint {
                        let mut p = f.attr_path.clone();
                        p.push("mountpoint".into());
                        visit(m, format!("partition `{}`", part.name), p, &mut out);
                    }
                }
                Content::Btrfs(fs) => {
                    if let Some(m) = &fs.mountpoint {
                        let mut p = fs.attr_path.clone();
                        p.push("mountpoint".into());
                        visit(m, format!("the top level of partition `{}`", part.name), p, &mut out);
                    }
                    for sv in &fs.subvolumes {
                        if let Some(m) = &sv.mountpoint {
                            let p = subvolume_path(fs, sv, &["mountpoint"])
                                .into_iter()
                                .map(String::from)
                                .collect();
                            visit(m, format!("subvolume `{}`", sv.name), p, &mut out);
                        }
                    }
                }
            }
        }
    }
    out
}
