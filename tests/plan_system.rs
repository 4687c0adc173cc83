//! `plan` against the real components: nix-instantiate evaluates every generated
//! disko.nix and NixOS snippet, and the disko postCreateHook runs against a real
//! loop-mounted btrfs.

mod common;

use common::*;
use podfs::decide::{Plan, Strategy, decide};
use podfs::inventory::examples::{self, EXAMPLES};
use podfs::layout::Compression;
use podfs::render::{self, RenderedFile};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

fn plan_of(example: &str, strategy: Strategy) -> (Plan, Vec<RenderedFile>) {
    let inventory = examples::load(example).unwrap();
    let plan = decide(&podfs::classify::classify(&inventory), strategy);
    let files = render::render_all(&plan, "test");
    (plan, files)
}

/// A plan, its files written to a temporary directory, and its disko.nix evaluated by Nix.
struct Evaluated {
    plan: Plan,
    files: Vec<RenderedFile>,
    dir: TempDir,
    disko: Value,
}

fn evaluated(example: &str, strategy: Strategy) -> Evaluated {
    let (plan, files) = plan_of(example, strategy);
    let dir = TempDir::new("plan");
    for f in &files {
        std::fs::write(dir.path().join(f.name), &f.contents).unwrap();
    }
    let disko = nix_eval_file(&dir.path().join(render::DISKO));
    Evaluated { plan, files, dir, disko }
}

/// The hook text and subvolume names of the (last) btrfs filesystem in evaluated disko JSON.
fn hook_and_subvolumes(disko: &Value) -> (String, Vec<String>) {
    let (_, _, content) = btrfs_contents(disko).pop().unwrap();
    let names = content["subvolumes"].as_object().unwrap().keys().cloned().collect();
    (content["postCreateHook"].as_str().unwrap().to_string(), names)
}

fn contents<'a>(files: &'a [RenderedFile], name: &str) -> &'a str {
    &files.iter().find(|f| f.name == name).unwrap().contents
}

/// Every btrfs filesystem in evaluated disko JSON: (disk, partition, content).
fn btrfs_contents(json: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (dname, disk) in json["disko"]["devices"]["disk"].as_object().unwrap() {
        for (pname, part) in disk["content"]["partitions"].as_object().unwrap() {
            if part["content"]["type"] == "btrfs" {
                out.push((dname.clone(), pname.clone(), &part["content"]));
            }
        }
    }
    out
}

#[test]
fn every_example_and_strategy_evaluates_with_nix_and_matches_the_plan() {
    if !can_run("nix evaluation", &["nix-instantiate"], false) {
        return;
    }
    for example in EXAMPLES {
        for strategy in Strategy::ALL {
            let ctx = format!("{} / {strategy}", example.name);
            let Evaluated { plan, files, dir, disko } = evaluated(example.name, strategy);
            let fss = btrfs_contents(&disko);
            assert_eq!(fss.len(), plan.layout.btrfs_filesystems().count(), "{ctx}");
            for ((_, _, fs), planned) in fss.iter().zip(plan.layout.btrfs_filesystems()) {
                let subvols = fs["subvolumes"].as_object().unwrap();
                let got: BTreeSet<(String, String)> = subvols
                    .iter()
                    .map(|(name, sv)| (name.clone(), sv["mountpoint"].as_str().unwrap().to_string()))
                    .collect();
                let want: BTreeSet<(String, String)> = planned
                    .subvolumes
                    .iter()
                    .map(|s| (s.name.clone(), s.mountpoint.clone().unwrap()))
                    .collect();
                assert_eq!(got, want, "{ctx}: subvolumes and mountpoints");
                // Filesystem-wide options: one identical list on every subvolume mount.
                let lists: BTreeSet<String> =
                    subvols.values().map(|sv| sv["mountOptions"].to_string()).collect();
                assert_eq!(lists.len(), 1, "{ctx}: differing mountOptions {lists:?}");
                let opts: Vec<String> = serde_json::from_str(lists.first().unwrap()).unwrap();
                assert_eq!(opts, plan.filesystem_options, "{ctx}");
                assert!(!opts.iter().any(|o| o == "nodatacow" || o == "nodatasum"), "{ctx}: {opts:?}");
                assert!(
                    fs["postCreateHook"].as_str().unwrap().contains("mount -t btrfs -o subvol=/"),
                    "{ctx}"
                );
            }

            let conf: toml_edit::DocumentMut = contents(&files, render::STORAGE_CONF).parse().unwrap();
            assert_eq!(conf["storage"]["driver"].as_str(), Some(plan.storage.driver.as_str()), "{ctx}");
            assert_eq!(conf["storage"]["graphroot"].as_str(), Some(plan.storage.graphroot.as_str()), "{ctx}");
            if plan.storage.driver == podfs::decide::Driver::Btrfs {
                assert!(conf["storage"].get("options").is_none(), "{ctx}: btrfs driver takes no mountopt");
            }

            // The NixOS snippet is a module: call it and compare with storage.conf.
            let module = dir.path().join(render::NIXOS);
            let nixos = nix_eval_expr(&format!("import {} {{}}", module.display()));
            let settings = &nixos["virtualisation"]["containers"]["storage"]["settings"]["storage"];
            assert_eq!(settings["driver"], plan.storage.driver.as_str(), "{ctx}");
            assert_eq!(settings["graphroot"], plan.storage.graphroot.as_str(), "{ctx}");
            let rules: Vec<String> = nixos["systemd"]["tmpfiles"]["rules"]
                .as_array()
                .map(|a| a.iter().map(|r| r.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            for sv in plan.layout.subvolumes().filter(|s| s.nocow) {
                let want = format!("h {} - - - - +C", sv.mountpoint.as_ref().unwrap());
                assert!(rules.contains(&want), "{ctx}: missing tmpfiles rule {want}");
            }
        }
    }
}

/// Creates the planned subvolumes like disko does, runs the hook text taken from the
/// evaluated JSON with `$device` set, and returns the filesystem's top level mounted.
fn run_hook(fs: &mut LoopBtrfs, hook: &str, subvolumes: &[String]) -> std::process::Output {
    let top = fs.mount("/", "");
    for name in subvolumes {
        ok(Command::new("btrfs").args(["subvolume", "create"]).arg(top.join(name)));
    }
    fs.umount(&top);
    run(Command::new("bash").arg("-c").arg(hook).env("device", &fs.device))
}

#[test]
fn post_create_hook_sets_exactly_the_planned_attributes_on_real_btrfs() {
    if !can_run(
        "postCreateHook on btrfs",
        &["nix-instantiate", "mkfs.btrfs", "losetup", "lsattr", "chattr"],
        true,
    ) {
        return;
    }
    for example in EXAMPLES {
        for strategy in Strategy::ALL {
            let ctx = format!("{} / {strategy}", example.name);
            let e = evaluated(example.name, strategy);
            let (hook, names) = hook_and_subvolumes(&e.disko);
            let plan = e.plan;

            let mut fs = LoopBtrfs::new("512M");
            let out = run_hook(&mut fs, &hook, &names);
            assert!(out.status.success(), "{ctx}: hook failed: {}", String::from_utf8_lossy(&out.stderr));
            assert!(
                fs.live_mounts().is_empty(),
                "{ctx}: the hook left a mount behind: {:?}",
                fs.live_mounts()
            );

            let top = fs.mount("/", "");
            for sv in plan.layout.subvolumes() {
                let path = top.join(&sv.name);
                let flags = lsattr(&path);
                assert_eq!(flags.contains('C'), sv.nocow, "{ctx}: {} has flags {flags}", sv.name);
                let want = match (sv.nocow, sv.compression) {
                    (true, _) | (false, None) => "",
                    (false, Some(c)) => c.as_str(),
                };
                assert_eq!(compression_property(&path), want, "{ctx}: compression of {}", sv.name);
            }
        }
    }
}

#[test]
fn compression_none_subvolume_stays_uncompressed_under_a_zstd_mount() {
    if !can_run("compsize check", &["nix-instantiate", "mkfs.btrfs", "losetup", "chattr", "compsize"], true) {
        return;
    }
    let e = evaluated("homelab", Strategy::Balanced);
    let plan = &e.plan;
    let media = plan
        .layout
        .subvolumes()
        .find(|s| s.compression == Some(Compression::None))
        .expect("homelab plans a media subvolume");
    let zstd = plan.layout.subvolumes().find(|s| s.compression == Some(Compression::Zstd)).unwrap();
    let nocow = plan.layout.subvolumes().find(|s| s.nocow).expect("homelab plans a NOCOW subvolume");
    let (hook, names) = hook_and_subvolumes(&e.disko);
    let mut fs = LoopBtrfs::new("1G");
    assert!(run_hook(&mut fs, &hook, &names).status.success());

    // Mounted the way the plan mounts it: compress=zstd on the first (and every) mount.
    let top = fs.mount("/", &plan.filesystem_options.join(","));
    let text: String = "podman btrfs advise: highly compressible text\n".repeat(400_000);
    for sv in [media, zstd, nocow] {
        std::fs::write(top.join(&sv.name).join("data"), &text).unwrap();
    }
    ok(&mut Command::new("sync"));
    let (disk, raw) = compsize(&top.join(&media.name));
    assert_eq!(disk, raw, "`compression none` data must stay uncompressed");
    let (disk, raw) = compsize(&top.join(&zstd.name));
    assert!(disk * 4 < raw, "zstd subvolume: {disk} bytes on disk for {raw}");
    let (disk, raw) = compsize(&top.join(&nocow.name));
    assert_eq!(disk, raw, "NOCOW data is never compressed");
    assert!(lsattr(&top.join(&nocow.name).join("data")).contains('C'), "new files inherit NOCOW");
}

#[test]
fn a_failing_hook_step_still_unmounts_and_fails() {
    if !can_run("hook failure", &["nix-instantiate", "mkfs.btrfs", "losetup", "chattr"], true) {
        return;
    }
    let (hook, mut names) = hook_and_subvolumes(&evaluated("database-host", Strategy::Balanced).disko);
    // Leave out a NOCOW subvolume: its chattr must fail.
    names.retain(|n| !n.starts_with("@podfs-database"));
    let mut fs = LoopBtrfs::new("512M");
    let out = run_hook(&mut fs, &hook, &names);
    assert!(!out.status.success(), "the hook must fail when a step fails");
    assert!(fs.live_mounts().is_empty(), "the hook must unmount on failure: {:?}", fs.live_mounts());
}

#[test]
fn podman_accepts_every_generated_storage_conf() {
    if !can_run("podman accepts storage.conf", &["podman", "mkfs.btrfs", "losetup"], true) {
        return;
    }
    let mut fs = LoopBtrfs::new("1G");
    let top = fs.mount("/", "");
    let run_dir = TempDir::new("runroot");
    let mut seen = BTreeSet::new();
    for example in EXAMPLES {
        for strategy in Strategy::ALL {
            let (plan, files) = plan_of(example.name, strategy);
            let text = contents(&files, render::STORAGE_CONF);
            let body: String = text.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
            if !seen.insert(body) {
                continue;
            }
            // The plan's own file, with graphroot and runroot moved onto the test filesystem.
            let id = seen.len();
            let mut conf: toml_edit::DocumentMut = text.parse().unwrap();
            let graphroot = top.join(format!("store{id}"));
            conf["storage"]["graphroot"] = toml_edit::value(graphroot.to_str().unwrap());
            conf["storage"]["runroot"] =
                toml_edit::value(run_dir.path().join(format!("run{id}")).to_str().unwrap());
            let conf_path = run_dir.path().join(format!("storage{id}.conf"));
            std::fs::write(&conf_path, conf.to_string()).unwrap();
            // Only this test's files, none of the machine's containers.conf, registries or networks.
            let podman_conf = run_dir.path().join("containers.conf");
            let net = run_dir.path().join("networks");
            std::fs::write(&podman_conf, format!("[network]\nnetwork_config_dir = \"{}\"\n", net.display()))
                .unwrap();
            std::fs::write(run_dir.path().join("registries.conf"), "").unwrap();
            let out = run(Command::new("podman")
                .args(["info", "--format", "{{.Store.GraphDriverName}} {{.Store.GraphRoot}}"])
                .env("CONTAINERS_STORAGE_CONF", &conf_path)
                .env("CONTAINERS_CONF", &podman_conf)
                .env("CONTAINERS_REGISTRIES_CONF", run_dir.path().join("registries.conf"))
                .env("HOME", run_dir.path()));
            assert!(
                out.status.success(),
                "{} / {strategy}: podman rejected the generated storage.conf:\n{}\n{}",
                example.name,
                conf,
                String::from_utf8_lossy(&out.stderr)
            );
            let info = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                info.trim(),
                format!("{} {}", plan.storage.driver, graphroot.display()),
                "{}",
                example.name
            );
        }
    }
    assert!(seen.len() >= 2, "both drivers are exercised: {} distinct files", seen.len());
}
