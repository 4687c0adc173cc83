//! `check --live` against a real loop-mounted btrfs whose state differs from its disko file.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A disko.nix of one btrfs on `device` with these subvolumes and mountpoints, each
/// mounted `noatime,compress=zstd:1`; its hook makes `@db` NOCOW and gives `@media`
/// `compression none`. The first subvolume is on line 12, the next on 13, ….
fn disko_nix(device: &str, subvolumes: &[(&str, String)]) -> String {
    let lines: String = subvolumes
        .iter()
        .map(|(name, at)| {
            format!(
                "            \"{name}\" = {{ mountpoint = \"{at}\"; mountOptions = [ \"noatime\" \"compress=zstd:1\" ]; }};\n"
            )
        })
        .collect();
    format!(
        r#"{{
  disko.devices.disk.main = {{
    type = "disk";
    device = "{device}";
    content = {{
      type = "gpt";
      partitions.data = {{
        size = "100%";
        content = {{
          type = "btrfs";
          subvolumes = {{
{lines}          }};
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
"#
    )
}

/// `check --live --disko FILE`, with Nix's per-user settings (HOME, XDG_CONFIG_HOME) in
/// the file's directory rather than the machine's.
fn live_check(file: &Path) -> Command {
    let home = file.parent().unwrap();
    let mut c = bin();
    c.args(["check", "--live", "--disko"]).arg(file).env("HOME", home).env("XDG_CONFIG_HOME", home);
    c
}

#[test]
fn live_check_finds_missing_nocow_lost_options_and_unmounted_subvolumes() {
    if !can_run("check --live", &["mkfs.btrfs", "losetup", "chattr", "nix-instantiate"], true) {
        return;
    }
    let mut fs = LoopBtrfs::new("512M");
    let top = fs.mount("/", "");
    for name in ["@first", "@db", "@media", "@spare"] {
        ok(Command::new("btrfs").args(["subvolume", "create"]).arg(top.join(name)));
    }
    // @media gets its planned property; @db does NOT get its planned +C.
    ok(Command::new("btrfs").args(["property", "set"]).arg(top.join("@media")).args(["compression", "none"]));
    fs.umount(&top);

    let root = fs.dir.path().join("srv");
    let at = |name: &str| root.join(name).to_string_lossy().into_owned();
    for name in ["first", "db", "media", "spare"] {
        std::fs::create_dir_all(at(name)).unwrap();
    }
    // The first mount has no compress: it wins for the whole filesystem.
    ok(Command::new("mount").args(["-t", "btrfs", "-o", "noatime,subvol=@first", &fs.device, &at("first")]));
    ok(Command::new("mount").args([
        "-t",
        "btrfs",
        "-o",
        "noatime,compress=zstd:1,subvol=@db",
        &fs.device,
        &at("db"),
    ]));
    ok(Command::new("mount").args([
        "-t",
        "btrfs",
        "-o",
        "noatime,compress=zstd:1,subvol=@media",
        &fs.device,
        &at("media"),
    ]));

    let disko = disko_nix(
        &fs.device,
        &[("@first", at("first")), ("@db", at("db")), ("@media", at("media")), ("@spare", at("spare"))],
    );
    let file = fs.dir.path().join("disko.nix");
    std::fs::write(&file, disko).unwrap();

    let out = run(live_check(&file).args(["--format", "json"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let found: Vec<(String, usize)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["code"].as_str().unwrap().to_string(), d["line"].as_u64().unwrap() as usize))
        .collect();
    let codes: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
    // Lines: @first 12, @db 13, @media 14, @spare 15.
    // @db is planned NOCOW (chattr +C in the hook) but is not.
    assert!(found.contains(&("P401".into(), 13)), "{found:?}");
    // compress=zstd:1 is asked for on every mount but lost to @first, mounted first without it.
    for line in [12, 13, 14] {
        assert!(found.contains(&("P402".into(), line)), "line {line}: {found:?}");
    }
    // @spare is not mounted.
    assert!(found.contains(&("P404".into(), 15)), "{found:?}");
    // @media has its planned compression property.
    assert!(!codes.contains(&"P403"), "{found:?}");
    assert_eq!(found.len(), 5, "{found:?}");
    assert_eq!(out.status.code(), Some(0), "warnings only: exit 0 without --deny");

    let out = run(live_check(&file).args(["--deny", "warnings"]));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("warning[P401]") && text.contains("should be NOCOW"), "{text}");

    // A compression property that drifted from the plan is reported too.
    ok(Command::new("btrfs").args(["property", "set"]).arg(at("media")).args(["compression", "zstd"]));
    let out = run(live_check(&file).args(["--format", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p403: Vec<u64> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "P403")
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(p403, [14]);

    for name in ["first", "db", "media"] {
        let _ = Command::new("umount").arg(at(name)).status();
    }
}

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
    let shown = |t: &Tmpfs| t.0.display().to_string();
    let file = dir.path().join("disko.nix");
    std::fs::write(
        &file,
        disko_nix("/dev/disk/by-id/podfs-test", &[("@db", shown(&db)), ("@media", shown(&media))]),
    )
    .unwrap();

    let out = run(live_check(&file).args(["--format", "json"]));
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
    // Lines: @db 12 (planned NOCOW), @media 13 (planned compression none). One finding
    // each, saying what is mounted there; no NOCOW (P401) or compression (P403) advice.
    assert_eq!(found.len(), 2, "{found:?}");
    for ((code, line, message), (want_line, at)) in found.iter().zip([(12, shown(&db)), (13, shown(&media))])
    {
        assert_eq!((code.as_str(), *line), ("P404", want_line), "{found:?}");
        assert!(
            message.contains(&at) && message.contains("tmpfs") && message.contains("not btrfs"),
            "{message}"
        );
    }
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let out = run(&mut live_check(&file));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("not btrfs").count(), 2, "{text}");
    assert!(!text.contains("chattr") && !text.contains("property set"), "no attribute advice: {text}");
}
