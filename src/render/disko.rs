//! `disko.nix`: gpt + btrfs, the same filesystem-wide options on every subvolume mount,
//! and NOCOW / compression applied in the btrfs-level `postCreateHook`.

use super::nix::{Attr, Nix, list_of_strings, s};
use crate::layout::{Btrfs, Content, Disk, Layout, Partition, Subvolume};

/// Renders a layout as a disko configuration (a literal attribute set).
pub fn render(layout: &Layout, header: &[String]) -> String {
    let disks = layout.disks.iter().map(|d| Attr::key(&d.name, disk(d))).collect();
    let root =
        Nix::Attrs(vec![Attr::new("disko.devices", Nix::Attrs(vec![Attr::new("disk", Nix::Attrs(disks))]))]);
    super::nix::to_file(header, &root)
}

fn disk(d: &Disk) -> Nix {
    let partitions = d.partitions.iter().map(|p| Attr::key(&p.name, partition(p))).collect();
    Nix::Attrs(vec![
        Attr::new("type", s("disk")),
        Attr::new("device", s(&d.device)),
        Attr::new(
            "content",
            Nix::Attrs(vec![Attr::new("type", s("gpt")), Attr::new("partitions", Nix::Attrs(partitions))]),
        ),
    ])
}

fn partition(p: &Partition) -> Nix {
    let mut attrs = Vec::new();
    if let Some(prio) = p.priority {
        attrs.push(Attr::new("priority", Nix::Int(i64::from(prio))));
    }
    attrs.push(Attr::new("size", s(&p.size)));
    if let Some(t) = &p.type_code {
        attrs.push(Attr::new("type", s(t)));
    }
    let content = match &p.content {
        Content::Filesystem(fs) => {
            let mut c = vec![Attr::new("type", s("filesystem")), Attr::new("format", s(&fs.format))];
            if let Some(m) = &fs.mountpoint {
                c.push(Attr::new("mountpoint", s(m)));
            }
            if !fs.mount_options.is_empty() {
                c.push(Attr::new("mountOptions", list_of_strings(&fs.mount_options)));
            }
            Nix::Attrs(c)
        }
        Content::Btrfs(b) => btrfs(b),
    };
    attrs.push(Attr::new("content", content));
    Nix::Attrs(attrs)
}

fn btrfs(b: &Btrfs) -> Nix {
    let mut attrs = vec![Attr::new("type", s("btrfs"))];
    if !b.extra_args.is_empty() {
        attrs.push(Attr::new("extraArgs", list_of_strings(&b.extra_args)));
    }
    if let Some(m) = &b.mountpoint {
        attrs.push(Attr::new("mountpoint", s(m)));
    }
    if !b.mount_options.is_empty() {
        attrs.push(Attr::new("mountOptions", list_of_strings(&b.mount_options)));
    }
    let subvolumes = b.subvolumes.iter().map(subvolume).collect();
    attrs.push(Attr::new("subvolumes", Nix::Attrs(subvolumes)));
    if let Some(hook) = post_create_hook(b) {
        attrs.push(
            Attr::new("postCreateHook", Nix::Lines(hook))
                .with_comment("Subvolumes have no hooks and mount options cannot set per-subvolume")
                .with_comment("copy-on-write or compression, so the attributes are set here, once,")
                .with_comment("on the new and still empty subvolumes."),
        );
    }
    Nix::Attrs(attrs)
}

fn subvolume(sv: &Subvolume) -> Attr {
    let mut attrs = Vec::new();
    if let Some(m) = &sv.mountpoint {
        attrs.push(Attr::new("mountpoint", s(m)));
    }
    if !sv.mount_options.is_empty() {
        attrs.push(Attr::new("mountOptions", list_of_strings(&sv.mount_options)));
    }
    let mut attr = Attr::key(&sv.name, Nix::Attrs(attrs));
    let mut note = sv.purpose.clone().unwrap_or_default();
    if sv.nocow {
        note.push_str(if note.is_empty() { "NOCOW" } else { "; NOCOW" });
    }
    if let Some(c) = sv.compression {
        note.push_str(&format!("{}compression {c}", if note.is_empty() { "" } else { "; " }));
    }
    if !note.is_empty() {
        attr = attr.with_comment(note);
    }
    attr
}

/// The shell commands that give each subvolume its planned attributes. `$device` is set
/// by disko for every hook; the filesystem is not mounted when the hook runs.
pub fn post_create_hook(b: &Btrfs) -> Option<String> {
    let nocow: Vec<&Subvolume> = b.subvolumes.iter().filter(|s| s.nocow).collect();
    let compressed: Vec<&Subvolume> = b.subvolumes.iter().filter(|s| s.compression.is_some()).collect();
    if nocow.is_empty() && compressed.is_empty() {
        return None;
    }
    let mut lines = vec![
        // A subshell keeps `set -e` and the EXIT trap to ourselves.
        "(".to_string(),
        "  set -eu".into(),
        "  podfs_mnt=$(mktemp -d)".into(),
        "  podfs_mounted=0".into(),
        "  podfs_cleanup() {".into(),
        "    if [ \"$podfs_mounted\" = 1 ]; then umount \"$podfs_mnt\"; fi".into(),
        "    rmdir \"$podfs_mnt\"".into(),
        "  }".into(),
        "  trap podfs_cleanup EXIT".into(),
        "  mount -t btrfs -o subvol=/ \"$device\" \"$podfs_mnt\"".into(),
        "  podfs_mounted=1".into(),
    ];
    if !nocow.is_empty() {
        lines.push("  if ! command -v chattr >/dev/null; then".into());
        lines.push("    echo 'podman-btrfs-advise: chattr (e2fsprogs) is needed to set NOCOW' >&2".into());
        lines.push("    exit 1".into());
        lines.push("  fi".into());
        lines.push("  # NOCOW: only empty files and directories take +C; new files inherit it.".into());
        for sv in &nocow {
            lines.push(format!("  chattr +C \"$podfs_mnt/{}\"", shell_path(&sv.name)));
        }
    }
    if !compressed.is_empty() {
        lines.push("  # Compression property: new files inherit it; it has no level.".into());
        for sv in &compressed {
            let c = sv.compression.expect("filtered on compression");
            lines.push(format!(
                "  btrfs property set \"$podfs_mnt/{}\" compression {c}",
                shell_path(&sv.name)
            ));
        }
    }
    lines.push(")".into());
    Some(lines.join("\n") + "\n")
}

/// Subvolume names come from our own plan, but guard the double-quoted context anyway.
fn shell_path(name: &str) -> String {
    name.chars()
        .flat_map(|c| match c {
            '"' | '\\' | '$' | '`' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}
