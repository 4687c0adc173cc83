//! `plan` against the real components: nix-instantiate evaluates every generated
//! disko.nix and NixOS snippet, and the disko postCreateHook runs against a real
//! loop-mounted btrfs.

mod common;

use common::podman::{Podman, PodmanRoot, env_of, write_config};
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

on_each_podman!(podman_accepts_every_generated_storage_conf);
fn podman_accepts_every_generated_storage_conf(podman: Podman) {
    if !can_run("podman accepts storage.conf", &["podman", "mkfs.btrfs", "losetup"], true)
        || !podman.available("podman accepts storage.conf")
    {
        return;
    }
    let mut fs = LoopBtrfs::new("1G");
    let top = fs.mount("/", "");
    let run_dir = TempDir::new("runroot");
    let marker = run_dir.path().join("marker");
    std::fs::write(&marker, "").unwrap();
    // Only this test's files, none of the machine's containers.conf, registries, networks
    // or Podman state.
    write_config(run_dir.path(), "");
    let root = PodmanRoot::new(podman, &[run_dir.path(), fs.dir.path()]);
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
            let out = run(root
                .command("podman")
                .args(["info", "--format", "{{.Store.GraphDriverName}} {{.Store.GraphRoot}}"])
                .envs(env_of(run_dir.path()))
                .env("CONTAINERS_STORAGE_CONF", &conf_path)
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
    assert_eq!(machine_changes_since(&marker), "", "the machine's Podman state changed");
}

const BENCH_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bench/report.json");

/// `plan --example homelab --bench FILE --out DIR` with extra arguments.
fn plan_cli(bench: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    run(bin()
        .args(["plan", "--example", "homelab", "--bench"])
        .arg(bench)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env_remove("RUST_LOG"))
}

#[test]
fn a_malformed_bench_report_names_file_and_line_and_writes_nothing() {
    let dir = TempDir::new("bench-bad");
    let good = std::fs::read_to_string(BENCH_FIXTURE).unwrap();
    let cases: Vec<(&str, String, &str, usize)> = vec![
        ("not-json.json", "{\n  \"schema\": 1,\n  \"taken_at\": \n}\n".into(), "not JSON", 4),
        ("newer.json", good.replacen("\"schema\": 1", "\"schema\": 7", 1), "newer than this build reads", 2),
        ("no-schema.json", "{\n  \"host\": {}\n}\n".into(), "no \"schema\" field", 1),
        (
            "missing-field.json",
            good.replacen("\"taken_at\": \"20261130T081500Z\",", "", 1),
            "missing field `taken_at`",
            0,
        ),
        ("wrong-type.json", good.replacen("\"cpus\": 2", "\"cpus\": \"two\"", 1), "invalid type", 0),
    ];
    for (name, text, says, line) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, &text).unwrap();
        let out_dir = dir.path().join(format!("out-{name}"));
        let out = plan_cli(&file, &out_dir, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
        // serde_json reports the line where it noticed: the end of the object or the value.
        let line = if line > 0 {
            line
        } else {
            let key = if says.starts_with("missing") { "\"host\"" } else { "\"cpus\"" };
            let at = text.lines().position(|l| l.contains(key)).unwrap() + 1;
            if says.starts_with("missing") { text.lines().count() } else { at }
        };
        assert!(stderr.contains(&format!("{}:{line}:", file.display())), "{name}: line {line}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(!out_dir.exists(), "{name}: nothing may be written");
    }
    let out = plan_cli(&dir.path().join("absent.json"), &dir.path().join("out"), &[]);
    assert_eq!(out.status.code(), Some(3), "a file that cannot be read is an environment error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.json"));
}

#[test]
fn plan_with_a_bench_report_writes_the_figures_into_plan_md_and_plan_json() {
    let dir = TempDir::new("bench-plan");
    let out = plan_cli(std::path::Path::new(BENCH_FIXTURE), &dir.path().join("plan"), &["--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["plan"]["bench"]["host"]["device"], "/dev/nvme0n1p2");
    let md = std::fs::read_to_string(dir.path().join("plan").join(render::REPORT)).unwrap();
    assert!(md.contains("## Measured on this disk"), "{md}");
    assert!(md.contains("| database | cow-zstd | IOPS | 1,443 | 1,402–1,479 |"), "{md}");
    assert!(md.contains(&format!("--bench {BENCH_FIXTURE}")), "the header regenerates with the report");
    let plan_json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan").join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(plan_json["plan"]["bench"]["file"], BENCH_FIXTURE);

    // A report taken on another filesystem is used, with a note.
    let ext4 = dir.path().join("ext4.json");
    let text = std::fs::read_to_string(BENCH_FIXTURE).unwrap();
    std::fs::write(
        &ext4,
        text.replacen(
            "\"filesystem\": \"btrfs\",\n    \"device\"",
            "\"filesystem\": \"ext4\",\n    \"device\"",
            1,
        ),
    )
    .unwrap();
    let out = plan_cli(&ext4, &dir.path().join("plan-ext4"), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("note: these figures were measured on ext4"), "{stderr}");
    let md = std::fs::read_to_string(dir.path().join("plan-ext4").join(render::REPORT)).unwrap();
    assert!(md.contains("Note: these figures were measured on ext4"), "{md}");
}

#[test]
fn database_fs_is_refused_outside_the_performance_strategy() {
    let dir = TempDir::new("dbfs-refused");
    for extra in [&["--database-fs", "xfs"][..], &["--database-fs", "ext4", "--strategy", "reliability"][..]]
    {
        let out = plan_cli(std::path::Path::new(BENCH_FIXTURE), &dir.path().join("out"), extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains("performance strategy only"), "{stderr}");
        assert!(!dir.path().join("out").exists());
    }
    // ci-runner has no database data: nothing to put on a partition.
    let out = run(bin()
        .args([
            "plan",
            "--example",
            "ci-runner",
            "--strategy",
            "performance",
            "--database-fs",
            "xfs",
            "--out",
        ])
        .arg(dir.path().join("ci")));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database-class data"));
    assert!(!dir.path().join("ci").exists());
}

#[test]
fn database_fs_disko_evaluates_with_nix_and_passes_check() {
    if !can_run("--database-fs with nix", &["nix-instantiate"], false) {
        return;
    }
    let dir = TempDir::new("dbfs");
    for fs in ["xfs", "ext4"] {
        let out_dir = dir.path().join(fs);
        let out = run(bin()
            .args(["plan", "--example", "database-host", "--strategy", "performance", "--database-fs", fs])
            .args(["--bench", BENCH_FIXTURE, "--out"])
            .arg(&out_dir));
        assert!(out.status.success(), "{fs}: {}", String::from_utf8_lossy(&out.stderr));
        let disko = nix_eval_file(&out_dir.join(render::DISKO));
        let (_, disk) = disko["disko"]["devices"]["disk"].as_object().unwrap().iter().next().unwrap();
        let parts = &disk["content"]["partitions"];
        let db = &parts["database"];
        assert_eq!(db["content"]["type"], "filesystem", "{fs}: {db}");
        assert_eq!(db["content"]["format"], fs);
        assert_eq!(db["content"]["mountpoint"], "/var/lib/containers/podfs/database");
        assert!(db["size"].as_str().unwrap().ends_with('G'), "{db}");
        let btrfs = btrfs_contents(&disko);
        assert_eq!(btrfs.len(), 1);
        let subvolumes = btrfs[0].2["subvolumes"].as_object().unwrap();
        assert!(subvolumes.keys().all(|k| !k.starts_with("@podfs-database")), "{fs}: {subvolumes:?}");
        assert!(!btrfs[0].2["postCreateHook"].as_str().unwrap_or_default().contains("podfs-database"));

        // The real check, evaluating with nix-instantiate, accepts the files as written.
        let check = run(bin()
            .args(["check", "--disko"])
            .arg(out_dir.join(render::DISKO))
            .arg("--storage-conf")
            .arg(out_dir.join(render::STORAGE_CONF)));
        let said =
            format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
        assert_eq!(check.status.code(), Some(0), "{fs}: {said}");
        assert!(
            said.contains("1 btrfs filesystem") && said.contains("0 error(s), 0 warning(s)"),
            "{fs}: {said}"
        );

        // The NixOS module evaluates; it sets no +C on the partition and no btrbk for it.
        let nixos = nix_eval_expr(&format!("import {} {{}}", out_dir.join(render::NIXOS).display()));
        let rules = nixos["systemd"]["tmpfiles"]["rules"].to_string();
        assert!(!rules.contains("h /var/lib/containers/podfs/database "), "{fs}: {rules}");
        assert!(rules.contains("d /var/lib/containers/podfs/database/postgres"), "{fs}: {rules}");
        let btrbk = nixos["services"]["btrbk"]["instances"]["podfs"]["settings"]["subvolume"].to_string();
        assert!(!btrbk.contains("podfs/database"), "{fs}: {btrbk}");
    }
}

#[test]
fn database_fs_plans_post_create_hook_runs_on_real_btrfs() {
    if !can_run(
        "--database-fs postCreateHook on btrfs",
        &["nix-instantiate", "mkfs.btrfs", "losetup", "lsattr", "chattr"],
        true,
    ) {
        return;
    }
    let profile = podfs::classify::classify(&examples::load("homelab").unwrap());
    let inputs = podfs::decide::Inputs { bench: None, database_fs: Some(podfs::decide::DatabaseFs::Ext4) };
    let plan = podfs::decide::decide_with(&profile, Strategy::Performance, &inputs);
    let dir = TempDir::new("dbfs-hook");
    let files = render::render_all(&plan, "test");
    std::fs::write(dir.path().join(render::DISKO), contents(&files, render::DISKO)).unwrap();
    let (hook, names) = hook_and_subvolumes(&nix_eval_file(&dir.path().join(render::DISKO)));
    assert!(names.iter().all(|n| !n.starts_with("@podfs-database")), "{names:?}");

    let mut fs = LoopBtrfs::new("512M");
    let out = run_hook(&mut fs, &hook, &names);
    assert!(out.status.success(), "hook failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(fs.live_mounts().is_empty(), "the hook left a mount behind");
    let top = fs.mount("/", "");
    for sv in plan.layout.subvolumes() {
        assert_eq!(lsattr(&top.join(&sv.name)).contains('C'), sv.nocow, "{}", sv.name);
    }
    // The other NOCOW data keeps its subvolume: only database data moved.
    assert!(plan.layout.subvolumes().any(|s| s.name == "@podfs-cache" && s.nocow));
}
