//! P107 `unknown-mount-option`.

use super::{at_disko, declare_rule, subvolume_path};
use crate::layout::Content;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// A mount option of a btrfs mount whose name is neither a btrfs mount option nor a
    /// generic mount flag (`no_exec`, `nocompress`, `compression=zstd`).
    ///
    /// ## Why it matters
    ///
    /// The kernel refuses to mount a btrfs filesystem with an option it does not know
    /// ("unrecognized mount option"), so the system does not boot, or the subvolume is
    /// missing; with `nofail` the data silently lands in the parent directory.
    ///
    /// ## Example
    ///
    /// ```nix
    /// "@tmp" = { mountpoint = "/tmp"; mountOptions = [ "no_exec" "nocompress" ]; };
    /// ```
    ///
    /// ## Fix
    ///
    /// Use the option's real name (`noexec`, `compress=no`); see btrfs(5) and mount(8).
    pub static RULE = {
        code: "P107",
        name: "unknown-mount-option",
        severity: Severity::Error,
        check: check,
    };
}

/// Whether the kernel knows the option's name (btrfs or generic).
pub fn known(option: &str) -> bool {
    crate::layout::known_option(option)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            row.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

/// The option probably meant.
pub fn suggestion(option: &str) -> Option<String> {
    let (key, value) = option.split_once('=').map_or((option, None), |(k, v)| (k, Some(v)));
    match key {
        "nocompress" | "no_compress" | "nocompression" => return Some("compress=no".into()),
        "compression" => return Some(format!("compress={}", value.unwrap_or("zstd"))),
        _ => {}
    }
    let best = crate::layout::MOUNT_OPTIONS.iter().map(|(k, _)| (distance(key, k), *k)).min()?;
    (best.0 <= 2 || key.replace(['_', '-'], "") == best.1.replace(['_', '-'], ""))
        .then(|| value.map_or(best.1.to_string(), |v| format!("{}={v}", best.1)))
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(disko) = &inputs.disko else { return Vec::new() };
    let mut out = Vec::new();
    let mut report = |list: Vec<&str>, options: &[String]| {
        for (i, o) in options.iter().enumerate().filter(|(_, o)| !known(o)) {
            let index = i.to_string();
            let path: Vec<&str> = list.iter().copied().chain([index.as_str()]).collect();
            let d = at_disko(
                &RULE,
                disko,
                &path,
                format!("`{o}` is not a btrfs mount option: the kernel refuses to mount with it"),
            );
            out.push(match suggestion(o) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help("see btrfs(5) for btrfs options and mount(8) for generic ones"),
            });
        }
    };
    for p in disko.layout.disks.iter().flat_map(|d| &d.partitions) {
        match &p.content {
            Content::Btrfs(fs) => {
                report(own(&fs.attr_path), &fs.mount_options);
                for sv in &fs.subvolumes {
                    report(subvolume_path(fs, sv, &["mountOptions"]), &sv.mount_options);
                }
            }
            Content::Filesystem(f) if f.format == "btrfs" => report(own(&f.attr_path), &f.mount_options),
            Content::Filesystem(_) => {}
        }
    }
    out
}

/// The attribute path of a device's own `mountOptions`.
fn own(attr_path: &[String]) -> Vec<&str> {
    attr_path.iter().map(String::as_str).chain(["mountOptions"]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_misspellings_get_a_suggestion() {
        for o in ["compress=zstd:1", "noatime", "space_cache=v2", "x-systemd.automount", "subvol=@", "nofail"]
        {
            assert!(known(o), "{o}");
        }
        assert_eq!(suggestion("no_exec").as_deref(), Some("noexec"));
        assert_eq!(suggestion("nocompress").as_deref(), Some("compress=no"));
        assert_eq!(suggestion("compression=zstd").as_deref(), Some("compress=zstd"));
        assert_eq!(suggestion("noatim").as_deref(), Some("noatime"));
        assert!(!known("no_exec") && !known("nocompress"));
    }
}
