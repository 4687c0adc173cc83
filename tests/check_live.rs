//! `check --live` against a real loop-mounted btrfs whose state differs from its disko file.

mod common;

use common::*;
use std::process::Command;

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

    let disko = format!(
        r#"{{
  disko.devices.disk.main = {{
    type = "disk";
    device = "{dev}";
    content = {{
      type = "gpt";
      partitions.data = {{
        size = "100%";
        content = {{
          type = "btrfs";
          subvolumes = {{
            "@first" = {{ mountpoint = "{first}"; mountOptions = [ "noatime" "compress=zstd:1" ]; }};
            "@db" = {{ mountpoint = "{db}"; mountOptions = [ "noatime" "compress=zstd:1" ]; }};
            "@media" = {{ mountpoint = "{media}"; mountOptions = [ "noatime" "compress=zstd:1" ]; }};
            "@spare" = {{ mountpoint = "{spare}"; mountOptions = [ "noatime" "compress=zstd:1" ]; }};
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
        dev = fs.device,
        first = at("first"),
        db = at("db"),
        media = at("media"),
        spare = at("spare"),
    );
    let file = fs.dir.path().join("disko.nix");
    std::fs::write(&file, disko).unwrap();

    let out = run(bin().args(["check", "--live", "--format", "json", "--disko"]).arg(&file));
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

    let out = run(bin().args(["check", "--live", "--deny", "warnings", "--disko"]).arg(&file));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("warning[P401]") && text.contains("should be NOCOW"), "{text}");

    // A compression property that drifted from the plan is reported too.
    ok(Command::new("btrfs").args(["property", "set"]).arg(at("media")).args(["compression", "zstd"]));
    let out = run(bin().args(["check", "--live", "--format", "json", "--disko"]).arg(&file));
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
