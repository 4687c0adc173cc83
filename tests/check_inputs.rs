//! `check --disko` on files shaped like the ones people publish: function arguments, a
//! configuration nested under another attribute, a file with no configuration at all, and
//! what the summary and the JSON document say about them.

mod common;

use common::*;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// A btrfs layout whose `/home` asks for compression `/` does not set (one P102), as a
/// function of the disk device and the `/home` options.
const FUNCTION: &str = r#"{ device, homeOptions, ... }:
{
  disko.devices.disk.main = {
    inherit device;
    type = "disk";
    content = {
      type = "gpt";
      partitions.system = {
        size = "100%";
        content = {
          type = "btrfs";
          subvolumes = {
            "@" = { mountpoint = "/"; };
            "@home" = { mountpoint = "/home"; mountOptions = homeOptions; };
            "@containers" = { mountpoint = "/var/lib/containers"; };
          };
        };
      };
    };
  };
}
"#;

#[test]
fn function_arguments_come_from_arg_and_argstr() {
    if !can_run("function_arguments_come_from_arg_and_argstr", &["nix-instantiate"], false) {
        return;
    }
    let dir = TempDir::new("check-args");
    let file = dir.path().join("disko.nix");
    std::fs::write(&file, FUNCTION).unwrap();

    // Both arguments given: evaluated, and the list reaches the rule.
    let out = run(bin()
        .args(["check", "--format", "json", "--argstr", "device", "/dev/vda", "--arg", "homeOptions"])
        .arg(r#"[ "compress=zstd" ]"#)
        .arg("--disko")
        .arg(&file));
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["summary"]["evaluated"], true, "{v}");
    let codes: Vec<&str> =
        v["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["P102"], "{v}");
    assert_eq!(v["summary"]["analysed"]["btrfs"], 1);
    assert_eq!(v["summary"]["analysed"]["subvolumes"], 3);
    assert_eq!(v["summary"]["missing_arguments"], serde_json::json!([]));

    // One missing: read statically, and the note names it at its place in the header.
    let out = run(bin().args(["check", "--argstr", "device", "/dev/vda", "--disko"]).arg(&file));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("disko.nix:1:11: the function requires `homeOptions`"), "{text}");
    assert!(text.contains("--arg NAME EXPR"), "{text}");
    assert!(text.contains("analysed 1 btrfs filesystem(s) with 3 subvolume(s)"), "{text}");
}

#[test]
fn nested_configurations_are_found_with_attr_and_hinted_without() {
    let dir = TempDir::new("check-attr");
    let file = dir.path().join("flake-part.nix");
    std::fs::write(
        &file,
        r#"{
  flake.diskoConfigurations.laptop = {
    disko.devices.disk.main = {
      device = "/dev/nvme0n1";
      content = {
        type = "btrfs";
        subvolumes."@" = { mountpoint = "/"; mountOptions = [ "no_exec" ]; };
      };
    };
  };
}
"#,
    )
    .unwrap();
    for mode in [&[][..], &["--no-eval"][..]] {
        let out = run(bin().arg("check").args(mode).arg("--disko").arg(&file));
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no disko configuration"), "{err}");
        assert!(err.contains("pass `--attr flake.diskoConfigurations.laptop`"), "{err}");

        let out = run(bin()
            .arg("check")
            .args(mode)
            .args(["--attr", "flake.diskoConfigurations.laptop", "--disko"])
            .arg(&file));
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("error[P107]") && text.contains("flake-part.nix:7:"), "{text}");
    }
}

#[test]
fn a_file_without_configuration_exits_2_also_in_json() {
    let dir = TempDir::new("check-none");
    let file = dir.path().join("module.nix");
    std::fs::write(&file, "{ services.openssh.enable = true; }\n").unwrap();
    let out = run(bin().args(["check", "--format", "json", "--disko"]).arg(&file));
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["diagnostics"], serde_json::json!([]));
    assert_eq!(v["error"]["exit"], 2);
    assert!(v["error"]["message"].as_str().unwrap().contains("no disko configuration"), "{v}");
    assert!(v["error"]["file"].as_str().unwrap().ends_with("module.nix"), "{v}");

    // An unreadable file: exit 3, still a document.
    let out = run(bin().args(["check", "--format", "json", "--disko"]).arg(dir.path().join("missing.nix")));
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json(&out)["error"]["exit"], 3);
}

#[test]
fn the_summary_names_what_was_skipped() {
    let dir = TempDir::new("check-skipped");
    let file = dir.path().join("zfs.nix");
    std::fs::write(
        &file,
        r#"{
  disko.devices = {
    disk.main = {
      device = "/dev/sda";
      content = { type = "gpt"; partitions.zfs = { size = "100%"; content = { type = "zfs"; pool = "tank"; }; }; };
    };
    zpool.tank = { type = "zpool"; datasets.root = { type = "zfs_fs"; mountpoint = "/"; }; };
  };
}
"#,
    )
    .unwrap();
    let out = run(bin().args(["check", "--disko"]).arg(&file));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("analysed 0 btrfs filesystem(s)"), "{text}");
    assert!(text.contains("skipped `disko.devices.zpool.tank`: a ZFS pool"), "{text}");
    let v = json(&run(bin().args(["check", "--format", "json", "--disko"]).arg(&file)));
    assert_eq!(v["summary"]["skipped"][0]["path"], "disko.devices.zpool.tank", "{v}");
}

#[test]
fn a_nested_module_function_is_called_like_the_file() {
    if !can_run("a_nested_module_function_is_called_like_the_file", &["nix-instantiate"], false) {
        return;
    }
    let dir = TempDir::new("check-module-fn");
    let file = dir.path().join("parts.nix");
    std::fs::write(
        &file,
        r#"{ inputs, ... }:
{
  flake.modules.nixos.disko = { config, ... }: {
    imports = [ inputs.disko.nixosModules.disko ];
    disko.devices.disk.main = {
      device = config.hostDisk;
      content = {
        type = "btrfs";
        subvolumes = {
          "@" = { mountpoint = "/"; };
          "@home" = { mountpoint = "/home"; mountOptions = [ "compress=zstd" ]; };
        };
      };
    };
  };
}
"#,
    )
    .unwrap();
    let out = run(bin()
        .args(["check", "--attr", "flake.modules.nixos.disko", "--arg", "inputs", "{ }", "--arg", "config"])
        .arg(r#"{ hostDisk = "/dev/sda"; }"#)
        .arg("--disko")
        .arg(&file));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("error[P102]") && text.contains("parts.nix:11:"), "{text}");
    assert!(!text.contains("without evaluation"), "{text}");
}

#[test]
fn help_for_subvolume_names_with_a_slash_names_one_path() {
    let dir = TempDir::new("check-slash");
    let file = dir.path().join("disko.nix");
    std::fs::write(
        &file,
        r#"{
  disko.devices.disk.main = {
    device = "/dev/vda";
    content = {
      type = "btrfs";
      subvolumes = {
        "/root" = { mountpoint = "/"; };
        "/db" = { mountpoint = "/var/lib/db"; mountOptions = [ "nodatacow" ]; };
      };
    };
  };
}
"#,
    )
    .unwrap();
    let out = run(bin().args(["check", "--no-eval", "--disko"]).arg(&file));
    let text = stdout(&out);
    assert!(text.contains("`chattr +C <mnt>/db`"), "{text}");
    assert!(!text.contains("<mnt>//"), "{text}");
}
