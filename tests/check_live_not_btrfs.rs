//! `check --live` where a subvolume's mountpoint holds a filesystem that is not btrfs:
//! said once, and no NOCOW or compression advice for it.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a new directory, unmounted by Drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        ok(Command::new("mount").args(["-t", "tmpfs", "-o", "size=16m", "podfs-test"]).arg(at));
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_mountpoint_that_is_not_btrfs_is_reported_once_without_attribute_advice() {
    if !can_run("check --live on tmpfs", &["nix-instantiate"], true) {
        return;
    }
    let dir = TempDir::new("live-tmpfs");
    let db = Tmpfs::mount(&dir.path().join("db"));
    let media = Tmpfs::mount(&dir.path().join("media"));
    let disko = format!(
        r#"{{
  disko.devices.disk.main = {{
    type = "disk";
    device = "/dev/disk/by-id/podfs-test";
    content = {{
      type = "gpt";
      partitions.data = {{
        size = "100%";
        content = {{
          type = "btrfs";
          subvolumes = {{
            "@db" = {{ mountpoint = "{db}"; mountOptions = [ "noatime" "compress=zstd:1" ]; }};
            "@media" = {{ mountpoint = "{media}"; mountOptions = [ "noatime" "compress=zstd:1" ]; }};
          }};
          postCreateHook = ''
            m=$(mktemp -d)
            mount -t btrfs -o subvol=/ "$device" "$m"
            chattr +C "$m/@db"
            btrfs property set "$m/@media" compression none
            umount "$m"
          '';
        }};
      }};
    }};
  }};
}}
"#,
        db = db.0.display(),
        media = media.0.display(),
    );
    let file = dir.path().join("disko.nix");
    std::fs::write(&file, disko).unwrap();

    let out = run(bin().args(["check", "--live", "--format", "json", "--disko"]).arg(&file));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let found: Vec<(String, u64, String)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let message = d["message"].as_str().unwrap().to_string();
            (d["code"].as_str().unwrap().to_string(), d["line"].as_u64().unwrap(), message)
        })
        .collect();
    // Lines: @db 12, @media 13. One finding each, saying what is mounted there.
    assert_eq!(found.len(), 2, "{found:?}");
    for ((code, line, message), (want_line, at)) in found.iter().zip([(12, &db.0), (13, &media.0)]) {
        assert_eq!((code.as_str(), *line), ("P404", want_line), "{found:?}");
        assert!(message.contains(&format!("{}", at.display())), "{message}");
        assert!(message.contains("tmpfs") && message.contains("not btrfs"), "{message}");
    }
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let out = run(bin().args(["check", "--live", "--disko"]).arg(&file));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("not btrfs").count(), 2, "{text}");
    assert!(!text.contains("chattr") && !text.contains("property set"), "no attribute advice: {text}");
}
