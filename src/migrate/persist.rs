//! The persistent mounts of `migrate --to-disk`: an `/etc/fstab` block, systemd `.mount`
//! units, or a NixOS module with `fileSystems` entries, each naming the device by UUID.
//! Rendering is pure (the unit tests compare whole texts); writing and removing are the
//! edges. Every text carries a marker, and the journal keeps the exact lines written, so a
//! rollback removes exactly what it wrote and nothing the user wrote.

use crate::error::Error;
use crate::render::nix::quote;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the host keeps its mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MountsKind {
    /// NixOS when /etc/NIXOS exists, else fstab.
    Auto,
    Fstab,
    Systemd,
    Nixos,
    /// Write nothing: the entries are shown, to be added by hand.
    None,
}

impl MountsKind {
    pub fn resolve(self, nixos: bool) -> MountsKind {
        match self {
            MountsKind::Auto if nixos => MountsKind::Nixos,
            MountsKind::Auto => MountsKind::Fstab,
            k => k,
        }
    }
}

/// One subvolume mount to make persistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub subvolume: String,
    pub path: PathBuf,
}

/// One file the persistent mounts consist of, and the text it gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The file written (the fstab, a unit, the NixOS module).
    pub file: PathBuf,
    pub text: String,
}

/// Marks what migrate wrote. The same for every run, so a dry run shows the very text
/// that is written later; a rollback removes exactly the lines its journal recorded.
const MARKER: &str = "written by podman-btrfs-advise migrate --to-disk";

fn options(subvolume: &str, options: &[String]) -> Vec<String> {
    let mut o = vec![format!("subvol={subvolume}")];
    o.extend(options.iter().cloned());
    o
}

/// fstab escapes blanks and backslashes in its fields as octal.
fn fstab_field(s: &str) -> String {
    s.replace('\\', "\\134").replace(' ', "\\040").replace('\t', "\\011").replace('\n', "\\012")
}

/// The fstab lines, a marker comment before each entry so a rollback removes exactly them.
pub fn fstab_lines(uuid: &str, mounts: &[MountSpec], opts: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for m in mounts {
        lines.push(format!("# {MARKER}: {}", m.subvolume));
        lines.push(format!(
            "UUID={uuid} {} btrfs {} 0 0",
            fstab_field(&m.path.to_string_lossy()),
            options(&m.subvolume, opts).join(",")
        ));
    }
    lines
}

/// `text` with `lines` appended (a newline first when the file lacks its last one).
pub fn fstab_add(text: &str, lines: &[String]) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// `text` without the lines [`fstab_lines`] wrote (`written`): each marker line and the
/// entry after it, when that entry is still exactly the one written.
pub fn fstab_remove(text: &str, written: &[String]) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end_matches('\n');
        let next = lines.get(i + 1).map(|l| l.trim_end_matches('\n'));
        let pair = written.windows(2).step_by(2).any(|w| w[0] == line && Some(w[1].as_str()) == next);
        if pair {
            i += 2;
            continue;
        }
        out.push_str(lines[i]);
        i += 1;
    }
    out
}

/// The mountpoints fstab `text` already names (second field, unescaped).
pub fn fstab_mountpoints(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(crate::inspect::mountinfo::unescape)
        .collect()
}

/// systemd's path escaping (`systemd-escape --path`): `/var/lib/x-y` → `var-lib-x\x2dy`.
pub fn systemd_escape_path(path: &Path) -> String {
    let s = path.to_string_lossy();
    let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return "-".into();
    }
    let joined = parts.join("/");
    let mut out = String::new();
    for (i, b) in joined.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b':' | b'_' | b'.' => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// The unit name of a mount at `path`.
pub fn unit_name(path: &Path) -> String {
    format!("{}.mount", systemd_escape_path(path))
}

/// One `.mount` unit.
pub fn systemd_unit(uuid: &str, m: &MountSpec, opts: &[String]) -> String {
    format!(
        "# {MARKER}; `migrate --rollback` removes it.\n\
         [Unit]\n\
         Description=Podman data on the btrfs subvolume {}\n\
         Before=local-fs.target\n\
         \n\
         [Mount]\n\
         What=/dev/disk/by-uuid/{uuid}\n\
         Where={}\n\
         Type=btrfs\n\
         Options={}\n\
         \n\
         [Install]\n\
         WantedBy=local-fs.target\n",
        m.subvolume,
        m.path.display(),
        options(&m.subvolume, opts).join(",")
    )
}

/// The NixOS module: one `fileSystems` entry per mount.
pub fn nixos_module(uuid: &str, mounts: &[MountSpec], opts: &[String]) -> String {
    let mut out = format!(
        "# {MARKER}; `migrate --rollback` removes it.\n# Import it in configuration.nix, then run `nixos-rebuild switch`.\n{{ ... }}:\n{{\n"
    );
    for m in mounts {
        let options: Vec<String> = options(&m.subvolume, opts).iter().map(|o| quote(o)).collect();
        out.push_str(&format!(
            "  fileSystems.{} = {{\n    device = {};\n    fsType = \"btrfs\";\n    options = [ {} ];\n  }};\n",
            quote(&m.path.to_string_lossy()),
            quote(&format!("/dev/disk/by-uuid/{uuid}")),
            options.join(" ")
        ));
    }
    out.push_str("}\n");
    out
}

/// Where each kind writes, from the command line.
#[derive(Debug, Clone)]
pub struct Places {
    pub fstab: PathBuf,
    pub unit_dir: PathBuf,
    pub nixos_file: PathBuf,
}

/// The files and texts of the persistent mounts of `kind` (resolved, not `auto`). For
/// fstab the text is the block of lines added to the file.
pub fn render(
    kind: MountsKind,
    places: &Places,
    uuid: &str,
    mounts: &[MountSpec],
    opts: &[String],
) -> Vec<Entry> {
    match kind {
        MountsKind::Fstab | MountsKind::None | MountsKind::Auto => {
            let lines = fstab_lines(uuid, mounts, opts);
            vec![Entry { file: places.fstab.clone(), text: fstab_add("", &lines) }]
        }
        MountsKind::Systemd => mounts
            .iter()
            .map(|m| Entry {
                file: places.unit_dir.join(unit_name(&m.path)),
                text: systemd_unit(uuid, m, opts),
            })
            .collect(),
        MountsKind::Nixos => {
            vec![Entry { file: places.nixos_file.clone(), text: nixos_module(uuid, mounts, opts) }]
        }
    }
}

/// The link that enables a unit: `DIR/local-fs.target.wants/NAME`.
fn wants_link(unit: &Path) -> PathBuf {
    let dir = unit.parent().unwrap_or(Path::new("/"));
    dir.join("local-fs.target.wants").join(unit.file_name().unwrap_or_default())
}

fn read_opt(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "read", e)),
    }
}

/// Refuses what would write over the user's mounts: an fstab that mounts a path already,
/// a unit or NixOS file that exists with other contents.
pub fn preflight(kind: MountsKind, entries: &[Entry], mounts: &[MountSpec]) -> Result<(), Error> {
    match kind {
        MountsKind::Fstab => {
            let Some(e) = entries.first() else { return Ok(()) };
            let text = read_opt(&e.file)?.unwrap_or_default();
            let named = fstab_mountpoints(&text);
            if let Some(m) = mounts.iter().find(|m| named.contains(&m.path.to_string_lossy().into_owned())) {
                return Err(Error::Environment(format!(
                    "{} mounts {} already\n  = help: remove that entry, or pass --mounts none and add the \
                     entries by hand",
                    e.file.display(),
                    m.path.display()
                )));
            }
            Ok(())
        }
        MountsKind::Systemd | MountsKind::Nixos => {
            for e in entries {
                if read_opt(&e.file)?.is_some_and(|t| t != e.text) {
                    return Err(Error::Environment(format!(
                        "{} exists already; migrate never writes over a file it did not make\n  = help: \
                         move it away, or pass --mounts none",
                        e.file.display()
                    )));
                }
            }
            Ok(())
        }
        MountsKind::None | MountsKind::Auto => Ok(()),
    }
}

/// Writes the persistent mounts; idempotent (a file that holds them already is left).
/// Returns the fstab's backup when one was made.
pub fn write(kind: MountsKind, entries: &[Entry], lines: &[String]) -> Result<Option<PathBuf>, Error> {
    match kind {
        MountsKind::Fstab => {
            let Some(e) = entries.first() else { return Ok(None) };
            let text = read_opt(&e.file)?;
            let current = text.clone().unwrap_or_default();
            if fstab_remove(&current, lines) != current {
                return Ok(None);
            }
            let backup = if text.is_some() { Some(crate::output::backup(&e.file)?) } else { None };
            crate::output::atomic_write(&e.file, fstab_add(&current, lines).as_bytes())?;
            Ok(backup)
        }
        MountsKind::Systemd => {
            for e in entries {
                if read_opt(&e.file)?.as_deref() != Some(e.text.as_str()) {
                    crate::output::atomic_write(&e.file, e.text.as_bytes())?;
                }
                let link = wants_link(&e.file);
                let dir = link.parent().unwrap_or(Path::new("/"));
                std::fs::create_dir_all(dir).map_err(|err| Error::io(dir, "create directory", err))?;
                if std::fs::read_link(&link).ok().as_deref() != Some(e.file.as_path()) {
                    std::os::unix::fs::symlink(&e.file, &link)
                        .map_err(|err| Error::io(&link, "link", err))?;
                }
            }
            Ok(None)
        }
        MountsKind::Nixos => {
            for e in entries {
                if read_opt(&e.file)?.as_deref() != Some(e.text.as_str()) {
                    crate::output::atomic_write(&e.file, e.text.as_bytes())?;
                }
            }
            Ok(None)
        }
        MountsKind::None | MountsKind::Auto => Ok(None),
    }
}

/// Removes exactly what [`write()`] wrote: the fstab lines, the unit files and their links,
/// the NixOS module; a file changed since is left alone, and said so.
pub fn remove(kind: MountsKind, entries: &[Entry], lines: &[String]) -> Result<Vec<String>, Error> {
    let mut said = Vec::new();
    match kind {
        MountsKind::Fstab => {
            let Some(e) = entries.first() else { return Ok(said) };
            if let Some(text) = read_opt(&e.file)? {
                let kept = fstab_remove(&text, lines);
                if kept != text {
                    crate::output::atomic_write(&e.file, kept.as_bytes())?;
                    said.push(format!("removed the mounts it wrote from {}", e.file.display()));
                }
            }
        }
        MountsKind::Systemd | MountsKind::Nixos => {
            for e in entries {
                if kind == MountsKind::Systemd {
                    let link = wants_link(&e.file);
                    if std::fs::read_link(&link).ok().as_deref() == Some(e.file.as_path()) {
                        std::fs::remove_file(&link).map_err(|err| Error::io(&link, "remove", err))?;
                    }
                }
                match read_opt(&e.file)? {
                    Some(t) if t == e.text => {
                        std::fs::remove_file(&e.file).map_err(|err| Error::io(&e.file, "remove", err))?;
                        said.push(format!("removed {}", e.file.display()));
                    }
                    Some(_) => said.push(format!(
                        "{} was changed since it was written: left as it is",
                        e.file.display()
                    )),
                    None => {}
                }
            }
        }
        MountsKind::None | MountsKind::Auto => {}
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts() -> Vec<MountSpec> {
        vec![
            MountSpec { subvolume: "@containers-storage".into(), path: "/var/lib/containers/storage".into() },
            MountSpec {
                subvolume: "@volume-pg-data".into(),
                path: "/var/lib/containers/storage/volumes/pg-data/_data".into(),
            },
        ]
    }

    fn opts() -> Vec<String> {
        vec!["noatime".into(), "compress=zstd:1".into()]
    }

    const UUID: &str = "12345678-9abc-def0-0102-030405060708";

    #[test]
    fn fstab_lines_are_added_and_removed_leaving_the_users_bytes() {
        let lines = fstab_lines(UUID, &mounts(), &opts());
        assert_eq!(
            fstab_add("", &lines),
            "# written by podman-btrfs-advise migrate --to-disk: @containers-storage\n\
             UUID=12345678-9abc-def0-0102-030405060708 /var/lib/containers/storage btrfs subvol=@containers-storage,noatime,compress=zstd:1 0 0\n\
             # written by podman-btrfs-advise migrate --to-disk: @volume-pg-data\n\
             UUID=12345678-9abc-def0-0102-030405060708 /var/lib/containers/storage/volumes/pg-data/_data btrfs subvol=@volume-pg-data,noatime,compress=zstd:1 0 0\n"
        );
        let user = "# /etc/fstab\nUUID=1 / ext4 defaults 0 1\n";
        let added = fstab_add(user, &lines);
        assert_eq!(fstab_remove(&added, &lines), user);
        // A line the user edited since is not ours any more: kept.
        let edited = added.replace(
            "compress=zstd:1 0 0\n# written by podman-btrfs-advise migrate --to-disk: @volume",
            "compress=zstd:3 0 0\n# written by podman-btrfs-advise migrate --to-disk: @volume",
        );
        assert!(fstab_remove(&edited, &lines).contains("zstd:3"));
        assert_eq!(fstab_mountpoints(&added)[1], "/var/lib/containers/storage");
        assert_eq!(fstab_mountpoints("UUID=1 /a\\040b ext4 defaults 0 0\n"), ["/a b"]);
    }

    #[test]
    fn writing_and_removing_leave_the_users_files_as_they_were() {
        let d = std::env::temp_dir().join(format!("podfs-persist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let places =
            Places { fstab: d.join("fstab"), unit_dir: d.join("units"), nixos_file: d.join("mounts.nix") };
        std::fs::create_dir_all(&places.unit_dir).unwrap();
        let user = "UUID=1 / ext4 defaults 0 1";
        std::fs::write(&places.fstab, user).unwrap();
        let lines = fstab_lines(UUID, &mounts(), &opts());
        let entries = render(MountsKind::Fstab, &places, UUID, &mounts(), &opts());
        preflight(MountsKind::Fstab, &entries, &mounts()).unwrap();
        let backup = write(MountsKind::Fstab, &entries, &lines).unwrap().expect("a backup");
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), user);
        let written = std::fs::read_to_string(&places.fstab).unwrap();
        assert_eq!(written, format!("{user}\n{}", entries[0].text));
        assert_eq!(write(MountsKind::Fstab, &entries, &lines).unwrap(), None, "written once");
        assert!(
            preflight(MountsKind::Fstab, &entries, &mounts()).unwrap_err().to_string().contains("already")
        );
        remove(MountsKind::Fstab, &entries, &lines).unwrap();
        assert_eq!(std::fs::read_to_string(&places.fstab).unwrap(), format!("{user}\n"));

        let units = render(MountsKind::Systemd, &places, UUID, &mounts(), &opts());
        write(MountsKind::Systemd, &units, &[]).unwrap();
        let link = places.unit_dir.join("local-fs.target.wants").join("var-lib-containers-storage.mount");
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            places.unit_dir.join("var-lib-containers-storage.mount")
        );
        remove(MountsKind::Systemd, &units, &[]).unwrap();
        assert!(!link.exists() && !units[0].file.exists());

        std::fs::write(&places.nixos_file, "{ ... }: { }\n").unwrap();
        let module = render(MountsKind::Nixos, &places, UUID, &mounts(), &opts());
        assert!(preflight(MountsKind::Nixos, &module, &mounts()).is_err(), "someone else's file");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn systemd_units_are_named_by_path_escaping() {
        assert_eq!(
            systemd_escape_path(Path::new("/var/lib/containers/storage")),
            "var-lib-containers-storage"
        );
        assert_eq!(
            unit_name(Path::new("/var/lib/containers/storage/volumes/pg-data/_data")),
            "var-lib-containers-storage-volumes-pg\\x2ddata-_data.mount"
        );
        assert_eq!(systemd_escape_path(Path::new("/srv/.hidden dir/")), "srv-.hidden\\x20dir");
        assert_eq!(systemd_escape_path(Path::new("/.x")), "\\x2ex");
        assert_eq!(systemd_escape_path(Path::new("/")), "-");
        assert_eq!(
            systemd_unit(UUID, &mounts()[0], &opts()),
            "# written by podman-btrfs-advise migrate --to-disk; `migrate --rollback` removes it.\n\
             [Unit]\n\
             Description=Podman data on the btrfs subvolume @containers-storage\n\
             Before=local-fs.target\n\
             \n\
             [Mount]\n\
             What=/dev/disk/by-uuid/12345678-9abc-def0-0102-030405060708\n\
             Where=/var/lib/containers/storage\n\
             Type=btrfs\n\
             Options=subvol=@containers-storage,noatime,compress=zstd:1\n\
             \n\
             [Install]\n\
             WantedBy=local-fs.target\n"
        );
    }

    #[test]
    fn the_nixos_module_names_each_filesystem() {
        assert_eq!(
            nixos_module(UUID, &mounts()[..1], &opts()),
            "# written by podman-btrfs-advise migrate --to-disk; `migrate --rollback` removes it.\n\
             # Import it in configuration.nix, then run `nixos-rebuild switch`.\n\
             { ... }:\n\
             {\n  fileSystems.\"/var/lib/containers/storage\" = {\n    device = \"/dev/disk/by-uuid/12345678-9abc-def0-0102-030405060708\";\n    fsType = \"btrfs\";\n    options = [ \"subvol=@containers-storage\" \"noatime\" \"compress=zstd:1\" ];\n  };\n}\n"
        );
        assert_eq!(quote("a\"${b}\\"), "\"a\\\"\\${b}\\\\\"");
    }
}
