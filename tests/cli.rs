//! The `plan` command as a user runs it: files, refusals, backups, errors, exit codes.

mod common;

use common::*;
use std::fs;

#[test]
fn plan_writes_five_files_and_refuses_to_overwrite_without_force() {
    let dir = TempDir::new("cli-out");
    let out_dir = dir.path().join("plan");
    let first = run(bin().args(["plan", "--example", "homelab", "--out"]).arg(&out_dir));
    assert!(first.status.success(), "{}", stderr(&first));
    for name in ["disko.nix", "storage.conf", "podfs-storage.nix", "PLAN.md", "plan.json"] {
        assert!(out_dir.join(name).is_file(), "{name} missing");
    }
    let plan: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out_dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["plan"]["strategy"], "balanced");
    assert!(plan["command"].as_str().unwrap().contains("--example homelab"), "{plan}");

    // Same input again: nothing changes, so nothing is refused.
    let again = run(bin().args(["plan", "--example", "homelab", "--out"]).arg(&out_dir));
    assert!(again.status.success(), "{}", stderr(&again));

    // A different plan into the same directory: refused, exit 2, files untouched.
    fs::write(out_dir.join("storage.conf"), "# mine\n").unwrap();
    let refused = run(bin().args(["plan", "--example", "ci-runner", "--out"]).arg(&out_dir));
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));
    assert_eq!(fs::read_to_string(out_dir.join("storage.conf")).unwrap(), "# mine\n");
    assert!(fs::read_to_string(out_dir.join("disko.nix")).unwrap().contains("homelab"));

    // --force replaces after a backup of the user's file.
    let forced = run(bin().args(["plan", "--example", "ci-runner", "--force", "--out"]).arg(&out_dir));
    assert!(forced.status.success(), "{}", stderr(&forced));
    let backups: Vec<_> = fs::read_dir(&out_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("storage.conf.") && n.ends_with(".bak"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(fs::read_to_string(out_dir.join(&backups[0])).unwrap(), "# mine\n");
    assert!(fs::read_to_string(out_dir.join("storage.conf")).unwrap().contains("ci-runner"));
}

/// Forced plans in quick succession (often within one second) keep every replaced file,
/// each under the name the output reports.
#[test]
fn forced_plans_never_reuse_a_backup_name() {
    let dir = TempDir::new("backups");
    let out_dir = dir.path().join("plan");
    let mut kept = Vec::new();
    for (round, example) in ["homelab", "ci-runner", "homelab", "ci-runner"].iter().enumerate() {
        fs::create_dir_all(&out_dir).unwrap();
        let mine = format!("# mine, round {round}\n");
        fs::write(out_dir.join("storage.conf"), &mine).unwrap();
        let out = run(bin().args(["plan", "--example", example, "--force", "--out"]).arg(&out_dir));
        assert!(out.status.success(), "{}", stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = stdout
            .lines()
            .find(|l| l.contains("storage.conf") && l.contains("previous kept as "))
            .unwrap_or_else(|| panic!("no backup named for storage.conf:\n{stdout}"));
        let backup = line.split("previous kept as ").nth(1).unwrap().trim_end_matches(')').to_string();
        assert_eq!(fs::read_to_string(&backup).unwrap(), mine, "{backup}");
        kept.push((backup, mine));
    }
    for (backup, mine) in &kept {
        assert_eq!(&fs::read_to_string(backup).unwrap(), mine, "{backup} was replaced by a later run");
    }
}

#[test]
fn json_output_has_the_documented_shape() {
    let out = run(bin().args(["plan", "--example", "database-host", "--format", "json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plan = &v["plan"];
    for key in [
        "strategy",
        "profile",
        "storage",
        "filesystem_options",
        "layout",
        "placements",
        "decisions",
        "warnings",
    ] {
        assert!(plan.get(key).is_some(), "plan.{key} missing");
    }
    let w = &plan["profile"]["workloads"][0];
    assert!(w["class"].is_string() && w["evidence"][0]["kind"].is_string(), "{w}");
    assert!(v["files"].as_array().unwrap().is_empty());
    let list = run(bin().args(["plan", "--list-examples", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<&str> =
        v["examples"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["homelab", "database-host", "ci-runner", "fleet-node"]);
}

#[test]
fn bad_input_exits_2_with_file_line_and_help() {
    let dir = TempDir::new("cli-bad");
    let spec = dir.path().join("host.toml");
    fs::write(
        &spec,
        "[host]\ndisk = \"/dev/sda\"\ndisk_size = \"500G\"\n\n[[workload]]\nname = \"web\"\nimgae = \"nginx\"\nimage_size = \"50M\"\n",
    )
    .unwrap();
    let out = run(bin().args(["plan", "--spec"]).arg(&spec));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:7:1", spec.display())), "{err}");
    assert!(err.contains("did you mean `image`?"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = run(bin().args(["plan", "--example", "homelb"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("homelab"), "{}", stderr(&out));

    // Without a spec, plan reads the live host: no socket there is an environment error.
    let sock = dir.path().join("none.sock");
    let out = run(bin().args(["plan", "--from-host", "--url"]).arg(format!("unix://{}", sock.display())));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("systemctl"), "{}", stderr(&out));
    let out = run(bin().args(["plan", "--from-host", "--example", "homelab"]));
    assert_eq!(out.status.code(), Some(2), "--from-host conflicts with --example");

    let out = run(bin().args(["plan", "--example", "homelab", "--disk", "../../etc"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let out = run(bin().args(["plan", "--spec"]).arg(dir.path().join("missing.toml")));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("missing.toml"), "{}", stderr(&out));
}

#[test]
fn overrides_reach_the_generated_files() {
    let out = run(bin().args([
        "plan",
        "--example",
        "homelab",
        "--mode",
        "data-disk",
        "--disk",
        "/dev/vdb",
        "--format",
        "json",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let disk = &v["plan"]["layout"]["disks"][0];
    assert_eq!(disk["device"], "/dev/vdb");
    let names: Vec<&str> =
        disk["partitions"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"ESP"), "data-disk has no ESP: {names:?}");
}

#[test]
fn check_and_explain_exit_codes_and_messages() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check/disko");
    // An error finding: exit 1, rustc-style text with the rule code and a caret.
    let out = run(bin().arg("check").arg("--no-eval").arg("--disko").arg(corpus.join("p106-duplicate.nix")));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("error[P106]") && text.contains("p106-duplicate.nix:") && text.contains('^'),
        "{text}"
    );
    assert!(text.contains("read without evaluation"), "--no-eval says so: {text}");
    // A good file: exit 0.
    let out = run(bin().arg("check").arg("--disko").arg(corpus.join("good-two-disks.nix")));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // Warnings fail only with --deny warnings.
    let warn = corpus.join("p105-no-mountpoint.nix");
    assert_eq!(run(bin().arg("check").arg("--disko").arg(&warn)).status.code(), Some(0));
    assert_eq!(run(bin().args(["check", "--deny", "warnings", "--disko"]).arg(&warn)).status.code(), Some(1));

    // Malformed input: exit 2 with the place; nothing else is checked.
    let dir = TempDir::new("check-bad");
    std::fs::write(dir.path().join("bad.nix"), "{\n  disko.devices = {\n    disk = ;\n  };\n}\n").unwrap();
    let out = run(bin().arg("check").arg("--disko").arg(dir.path().join("bad.nix")));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.nix:3:"), "{}", stderr(&out));
    std::fs::write(dir.path().join("storage.conf"), "[storage]\ndriver = \"overlay\nrunroot = 1\n").unwrap();
    let out = run(bin().arg("check").arg("--storage-conf").arg(dir.path().join("storage.conf")));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("storage.conf:2:"), "{}", stderr(&out));
    let out = run(bin().arg("check").arg("--disko").arg(dir.path().join("missing.nix")));
    assert_eq!(out.status.code(), Some(3));

    // explain reads the catalogue.
    let out = run(bin().args(["explain", "P203"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("## Why it matters") && text.contains("## Fix"), "{text}");
    let out = run(bin().args(["explain", "--list", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules = v["rules"].as_array().unwrap();
    assert!(rules.len() >= 22, "{}", rules.len());
    for r in rules {
        assert!(
            !r["summary"].as_str().unwrap().is_empty()
                && !r["summary"].as_str().unwrap().contains("to be written"),
            "{r}"
        );
    }
    let out = run(bin().args(["explain", "P999"]));
    assert_eq!(out.status.code(), Some(2));
}

/// `… | head` closes the pipe early: the tool ends quietly (as one ended by SIGPIPE would),
/// never with a panic.
#[test]
fn a_reader_that_goes_away_ends_the_tool_quietly() {
    for args in [&["plan", "--example", "fleet-node", "--format", "json"][..], &["explain", "--list"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = bin().args(args).stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn migrate_refuses_a_plan_it_cannot_follow_before_it_reads_the_host() {
    let dir = TempDir::new("migrate-plan");
    let plan = dir.path().join("plan");
    let out = run(bin()
        .args(["plan", "--example", "database-host", "--strategy", "performance", "--database-fs", "xfs"])
        .arg("--out")
        .arg(&plan));
    assert!(out.status.success(), "{}", stderr(&out));
    let state = dir.path().join("state");
    let migrate = |plan: &std::path::Path| {
        run(bin()
            .args(["migrate", "--dry-run", "--url", "unix:///nonexistent/podman.sock", "--plan"])
            .arg(plan)
            .arg("--state-dir")
            .arg(&state))
    };
    let out = migrate(&plan);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("partition of its own (xfs)") && stderr(&out).contains("plan.json"));
    // A plan.json that is not one names the file.
    std::fs::write(plan.join("plan.json"), "{\"plan\": ").unwrap();
    let out = migrate(&plan);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a plan written by `plan --out`"), "{}", stderr(&out));
    assert!(!state.exists(), "nothing was written");
}
