//! The plan's btrbk.conf against the real btrbk: it accepts every generated file, the NixOS
//! snippet carries the same settings, and a run over a loop btrfs laid out as the plan says
//! snapshots exactly the planned subvolumes and sends them to a second loop btrfs.

mod common;

use common::*;
use podfs::class::Snapshots;
use podfs::decide::snapshots::{snapshot_dir, snapshot_plan};
use podfs::decide::{Plan, Strategy, decide};
use podfs::inventory::examples::{self, EXAMPLES};
use podfs::render::{self, btrbk};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn plan_of(example: &str, strategy: Strategy) -> Plan {
    decide(&podfs::classify::classify(&examples::load(example).unwrap()), strategy)
}

/// `btrbk config print` as JSON: global options, and `subvolume` with each section's options.
fn config_print(conf: &Path) -> Value {
    let out = ok(Command::new("btrbk").arg("-c").arg(conf).args(["config", "print"]));
    let body = out.split("-".repeat(80).as_str()).nth(2).unwrap_or_else(|| panic!("no dump:\n{out}"));
    let mut globals = Map::new();
    let mut subvolumes = Map::new();
    let mut current: Option<String> = None;
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line.trim().split_once(char::is_whitespace).unwrap_or((line.trim(), ""));
        let value = json!(value.trim());
        match (line.starts_with('\t'), key) {
            (false, "subvolume") => {
                current = Some(value.as_str().unwrap().to_string());
                subvolumes.insert(current.clone().unwrap(), json!({}));
            }
            (false, _) => {
                globals.insert(key.into(), value);
            }
            (true, _) => {
                let section = current.as_ref().unwrap_or_else(|| panic!("option outside a section: {line}"));
                subvolumes[section].as_object_mut().unwrap().insert(key.into(), value);
            }
        }
    }
    if !subvolumes.is_empty() {
        globals.insert("subvolume".into(), Value::Object(subvolumes));
    }
    Value::Object(globals)
}

/// Names of the scheduled subvolumes of a plan.
fn scheduled(plan: &Plan) -> BTreeSet<String> {
    snapshot_plan(plan)
        .into_iter()
        .filter(|s| matches!(s.snapshots, Snapshots::Scheduled(_)))
        .map(|s| s.subvolume.name.clone())
        .collect()
}

#[test]
fn btrbk_accepts_every_generated_conf_and_the_nixos_instance_has_the_same_settings() {
    if !can_run("btrbk accepts btrbk.conf", &["btrbk", "nix-instantiate"], false) {
        return;
    }
    let mut with_subvolumes = 0;
    for example in EXAMPLES {
        for strategy in Strategy::ALL {
            let ctx = format!("{} / {strategy}", example.name);
            let plan = plan_of(example.name, strategy);
            let dir = TempDir::new("btrbk-conf");
            for f in render::render_all(&plan, "test") {
                std::fs::write(dir.path().join(f.name), &f.contents).unwrap();
            }
            let printed = config_print(&dir.path().join(render::BTRBK));
            let paths: BTreeSet<String> =
                printed["subvolume"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
            let want: BTreeSet<String> = snapshot_plan(&plan)
                .iter()
                .filter(|s| matches!(s.snapshots, Snapshots::Scheduled(_)))
                .map(|s| s.mountpoint().to_string())
                .collect();
            assert_eq!(paths, want, "{ctx}: btrbk reads exactly the scheduled subvolumes");
            assert!(!paths.contains(&plan.storage.graphroot), "{ctx}: graphroot is not snapshotted");

            let module = dir.path().join(render::NIXOS);
            let nixos = nix_eval_expr(&format!("import {} {{}}", module.display()));
            let instance = &nixos["services"]["btrbk"]["instances"]["podfs"];
            if want.is_empty() {
                assert!(instance.is_null(), "{ctx}: no btrbk instance without snapshots: {instance}");
                continue;
            }
            with_subvolumes += 1;
            assert_eq!(instance["settings"], printed, "{ctx}: NixOS settings equal what btrbk read");
            let every = snapshot_plan(&plan)
                .iter()
                .filter_map(|s| match s.snapshots {
                    Snapshots::Scheduled(p) => Some(p.every),
                    _ => None,
                })
                .max()
                .unwrap();
            assert_eq!(instance["onCalendar"], every.as_str(), "{ctx}");
            let rules: Vec<&str> = nixos["systemd"]["tmpfiles"]["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            for path in &want {
                let rule = format!("d {} 0700 root root -", snapshot_dir(&plan, path));
                assert!(rules.contains(&rule.as_str()), "{ctx}: {rule} missing from {rules:?}");
            }
        }
    }
    assert!(with_subvolumes >= 4, "the examples plan snapshots: {with_subvolumes}");

    // A configuration btrbk rejects fails this parse, so the check above can fail.
    let bad = TempDir::new("btrbk-bad");
    std::fs::write(bad.path().join("bad.conf"), "snapshot_preserve 24x\n").unwrap();
    let out = run(Command::new("btrbk").arg("-c").arg(bad.path().join("bad.conf")).args(["config", "print"]));
    assert!(!out.status.success(), "btrbk accepted a bad retention");
}

#[test]
fn the_root_prefixes_every_path_and_the_target_is_set_only_when_given() {
    let p = plan_of("homelab", Strategy::Balanced);
    let host = btrbk::settings(&p, &btrbk::Paths::default());
    let moved = btrbk::settings(&p, &btrbk::Paths { root: "/tmp/x/".into(), target: Some("/tmp/y".into()) });
    assert!(!host.subvolumes.is_empty());
    assert_eq!(host.subvolumes.len(), moved.subvolumes.len());
    for (h, m) in host.subvolumes.iter().zip(&moved.subvolumes) {
        assert_eq!(m.path, format!("/tmp/x{}", h.path));
        assert_eq!(m.options[0].1, format!("/tmp/x{}", h.options[0].1));
    }
    assert!(!host.globals.iter().any(|(k, _)| *k == "target"));
    assert!(moved.globals.contains(&("target", "send-receive /tmp/y".into())));
    let text = btrbk::render(&p, &[], &btrbk::Paths::default());
    assert!(text.contains("# target send-receive"), "{text}");
    assert!(!text.contains("\nsubvolume /var/lib/containers/storage\n"), "{text}");
}

#[test]
fn the_readme_states_every_schedule_of_the_class_table() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for class in podfs::class::Class::ALL {
        if let Snapshots::Scheduled(p) = class.info().snapshots {
            let row =
                format!("| {} | {} | {} |", p.every.as_str(), p.keep.describe(), p.keep_off_host.describe());
            assert!(readme.contains(&row), "README.md lacks {row} ({class})");
        }
    }
}

#[test]
fn plan_out_writes_the_btrbk_conf_the_library_renders() {
    let out = TempDir::new("btrbk-plan");
    ok(bin().args(["plan", "--example", "homelab", "--out"]).arg(out.path()));
    let written = std::fs::read_to_string(out.path().join(render::BTRBK)).unwrap();
    let plan = plan_of("homelab", Strategy::Balanced);
    let ours = btrbk::render(&plan, &render::header(&plan, "x"), &btrbk::Paths::default());
    let body = |t: &str| t.lines().filter(|l| !l.starts_with("# Regenerate:")).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&written), body(&ours));
    assert!(written.starts_with("# Generated by podman-btrfs-advise"), "{written}");
}

#[test]
fn systemd_units_for_the_btrbk_run_verify() {
    if !can_run("btrbk systemd units", &["systemd-analyze", "btrbk"], false) {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join("podfs-btrbk.service"))
        .arg(dir.join("podfs-btrbk.timer")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("podfs-btrbk"), "{stderr}");
}

/// Lays the plan out like disko: every subvolume at the top level of `fs` (mounted at
/// `top`), mounted with `subvol=` at its mountpoint below `root`, parents first, each
/// holding a file naming it; plus the snapshot directories the NixOS snippet creates.
fn lay_out(plan: &Plan, fs: &LoopBtrfs, top: &Path, root: &Path) {
    let mut subvolumes: Vec<_> = plan.layout.subvolumes().filter(|s| s.mountpoint.is_some()).collect();
    subvolumes.sort_by_key(|s| s.mountpoint.clone());
    for sv in subvolumes {
        ok(Command::new("btrfs").args(["subvolume", "create"]).arg(top.join(&sv.name)));
        let at = root.join(sv.mountpoint.as_ref().unwrap().trim_start_matches('/'));
        std::fs::create_dir_all(&at).unwrap();
        // Unmounted by LoopBtrfs's Drop with every other mount of the device.
        ok(Command::new("mount")
            .args(["-t", "btrfs", "-o", &format!("subvol={}", sv.name), &fs.device])
            .arg(&at));
        std::fs::write(at.join("data"), &sv.name).unwrap();
    }
    for s in snapshot_plan(plan).iter().filter(|s| matches!(s.snapshots, Snapshots::Scheduled(_))) {
        std::fs::create_dir_all(root.join(s.snapshot_dir.trim_start_matches('/'))).unwrap();
    }
}

/// Read-only subvolumes of the filesystem mounted at `top`: (path from the top level,
/// the name its snapshot was made from, the part before btrbk's `.STAMP`).
fn snapshots_below(top: &Path) -> Vec<(String, String)> {
    let out = ok(Command::new("btrfs").args(["subvolume", "list", "-r"]).arg(top));
    let mut all: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split(" path ").nth(1))
        .map(|p| {
            let file = p.rsplit('/').next().unwrap();
            (p.to_string(), file.split_once('.').map_or(file, |(name, _)| name).to_string())
        })
        .collect();
    all.sort();
    all
}

#[test]
fn btrbk_run_snapshots_exactly_the_planned_subvolumes_and_sends_them_off_host() {
    if !can_run("btrbk run", &["btrbk", "mkfs.btrfs", "losetup", "btrfs"], true) {
        return;
    }
    // Balanced keeps snapshots inside each subvolume, reliability in its `@snapshots`.
    for strategy in [Strategy::Reliability, Strategy::Balanced] {
        run_btrbk_over_the_layout(strategy);
    }
}

fn run_btrbk_over_the_layout(strategy: Strategy) {
    let plan = plan_of("homelab", strategy);
    let want = scheduled(&plan);
    let all: BTreeSet<String> = snapshot_plan(&plan).iter().map(|s| s.subvolume.name.clone()).collect();
    assert!(
        want.len() >= 3 && all.len() > want.len(),
        "{strategy}: scheduled and unscheduled subvolumes: {want:?} of {all:?}"
    );

    // Declared first, so removed after the loop device's Drop has unmounted everything.
    let root = TempDir::new("btrbk-root");
    let mut source = LoopBtrfs::new("1G");
    let top = source.mount("/", "");
    lay_out(&plan, &source, &top, root.path());
    let mut backup = LoopBtrfs::new("1G");
    let dst = backup.mount("/", "");
    let target = dst.join("podfs");
    std::fs::create_dir(&target).unwrap();

    let paths =
        btrbk::Paths { root: root.path().display().to_string(), target: Some(target.display().to_string()) };
    let conf = source.dir.path().join("btrbk.conf");
    std::fs::write(&conf, btrbk::render(&plan, &render::header(&plan, "test"), &paths)).unwrap();
    let btrbk = |args: &[&str]| run(Command::new("btrbk").arg("-c").arg(&conf).args(args));
    let dry = btrbk(&["dryrun"]);
    assert!(dry.status.success(), "{strategy} dryrun: {}", String::from_utf8_lossy(&dry.stderr));
    assert!(snapshots_below(&top).is_empty(), "dryrun made snapshots");

    let first = btrbk(&["run"]);
    let said = |o: &std::process::Output| {
        format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    assert!(first.status.success(), "{strategy} run: {}", said(&first));
    let snaps = snapshots_below(&top);
    let names: BTreeSet<String> = snaps.iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(names, want, "{strategy}: snapshots of exactly the scheduled subvolumes: {snaps:?}");
    assert_eq!(snaps.len(), want.len(), "one each: {snaps:?}");
    for s in snapshot_plan(&plan).iter().filter(|s| want.contains(&s.subvolume.name)) {
        let dir = root.path().join(s.snapshot_dir.trim_start_matches('/'));
        let here: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("{}.", s.subvolume.name)))
            .collect();
        assert_eq!(
            here.len(),
            1,
            "{strategy}: {} has its snapshot in {}: {here:?}",
            s.subvolume.name,
            s.snapshot_dir
        );
        assert_eq!(std::fs::read_to_string(dir.join(&here[0]).join("data")).unwrap(), s.subvolume.name);
    }
    // The plan has both; neither is snapshotted.
    assert!(
        all.contains("@podfs-cache") && plan.layout.subvolumes().any(|s| s.name == "@containers-storage")
    );
    assert!(!names.contains("@podfs-cache") && !names.contains("@containers-storage"), "{names:?}");

    let received = snapshots_below(&dst);
    let received_names: BTreeSet<String> = received.iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(received_names, want, "{strategy}: sent to the second filesystem: {received:?}");
    for (path, name) in &received {
        assert_eq!(std::fs::read_to_string(dst.join(path).join("data")).unwrap(), *name, "{path}");
    }

    // With snapshots outside the subvolumes only a changed one gets a new snapshot
    // (`snapshot_create onchange`); with snapshots inside, every one does (`always`: each
    // snapshot changes its parent). New snapshots are sent incrementally.
    let changed = snapshot_plan(&plan).into_iter().find(|s| want.contains(&s.subvolume.name)).unwrap();
    let changed_name = changed.subvolume.name.clone();
    let changed_dir = root.path().join(changed.mountpoint().trim_start_matches('/'));
    let change = |text: &str| {
        std::fs::write(changed_dir.join("more"), text).unwrap();
        // A write counts once its transaction commits (every 30 s by default; now here).
        ok(Command::new("btrfs").args(["filesystem", "sync"]).arg(&changed_dir));
    };
    change("v2");
    let second = btrbk(&["run"]);
    assert!(second.status.success(), "{strategy} second run: {}", said(&second));
    let after = snapshots_below(&top);
    let new: BTreeSet<String> = after.iter().filter(|s| !snaps.contains(s)).map(|(_, n)| n.clone()).collect();
    let inside = |s: &podfs::decide::snapshots::SubvolumeSnapshots| {
        podfs::layout::path_is_under(&s.snapshot_dir, s.mountpoint())
    };
    let expected: BTreeSet<String> = snapshot_plan(&plan)
        .iter()
        .filter(|s| want.contains(&s.subvolume.name) && (inside(s) || s.subvolume.name == changed_name))
        .map(|s| s.subvolume.name.clone())
        .collect();
    assert_eq!(new, expected, "{strategy}: new snapshots\n{}", said(&second));
    assert_eq!(after.len(), snaps.len() + expected.len(), "{strategy}: {after:?}");
    let received_after = snapshots_below(&dst);
    assert_eq!(received_after.len(), received.len() + expected.len(), "{received_after:?}");

    // PLAN.md's snapshot of one subvolume (between `podman pause` and `unpause`): a filter
    // by path snapshots that one only (once it changed: an unchanged one keeps its last).
    change("v3");
    let one = changed_dir.display().to_string();
    let out = btrbk(&["snapshot", &one]);
    assert!(out.status.success(), "snapshot {one}: {}", said(&out));
    let more: Vec<_> = snapshots_below(&top).into_iter().filter(|s| !after.contains(s)).collect();
    assert_eq!(more.len(), 1, "{more:?}");
    assert_eq!(more[0].1, changed_name);
}
