//! The service files for `serve`: the NixOS module in contrib/nixos, evaluated by the real
//! nix-instantiate against a small stand-in for nixpkgs' `lib`, and the systemd unit in
//! contrib/systemd, read as text, compared with the module and checked by
//! `systemd-analyze verify`.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const MODULE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/nixos/podman-btrfs-advise.nix");
const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd/podman-btrfs-advise.service");
const UNIT_NAME: &str = "podman-btrfs-advise.service";
const SOCKET: &str = "/run/podman-btrfs-advise/podfs.sock";
const PACKAGE: &str = "/nix/store/fake-podman-btrfs-advise";
const SERVICE: &str = "podman-btrfs-advise";
/// Where README.md's install section puts the binary, and so where the unit runs it.
const INSTALLED_BIN: &str = "/usr/local/bin/podman-btrfs-advise";

/// Calls the module like the NixOS module system would, with a stand-in `lib` that has only
/// the functions the module may use (any other is an evaluation error) and `pkgs = { }`.
/// `config.services.podman-btrfs-advise` is the option defaults overlaid with @SETTINGS@,
/// each setting checked against its option's type; @CONFIG@ is the rest of `config`.
/// The result is `{ config; options; }`: the module's `config` and, for every option, its
/// type, description and default ("<throws>" when evaluating the default fails).
const HARNESS: &str = r#"
let
  module = import "@MODULE@";
  types = {
    bool = "bool"; str = "str"; path = "path"; package = "package";
    listOf = t: { listOf = t; };
    nullOr = t: { nullOr = t; };
  };
  # nixpkgs' escapeShellArg: quote only what the shell would split or expand.
  escape = arg:
    let s = toString arg; in
    if builtins.match "[[:alnum:],._+:@%/-]+" s != null then s
    else "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";
  lib = {
    inherit types;
    mkOption = attrs: attrs;
    mkEnableOption = name: { type = types.bool; default = false; description = "Whether to enable ${name}."; };
    mkIf = cond: content: if cond then content else { };
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    escapeShellArgs = xs: builtins.concatStringsSep " " (map escape xs);
    concatStringsSep = builtins.concatStringsSep;
  };
  pkgs = { };
  hasType = t: v:
    if t == "bool" then builtins.isBool v
    else if t == "str" || t == "package" then builtins.isString v
    else if t == "path" then builtins.isPath v || builtins.isString v
    else if t ? nullOr then v == null || hasType t.nullOr v
    else if t ? listOf then builtins.isList v && builtins.all (hasType t.listOf) v
    else throw "unknown type ${builtins.toJSON t}";
  options = (module { config = { }; inherit lib pkgs; }).options.services.podman-btrfs-advise;
  settings = @SETTINGS@;
  checked = builtins.mapAttrs (name: v:
    if !(options ? ${name}) then throw "no option services.podman-btrfs-advise.${name}"
    else if !(hasType options.${name}.type v) then throw "services.podman-btrfs-advise.${name}: wrong type"
    else v) settings;
  cfg = builtins.mapAttrs (_: o: o.default) options // checked;
  out = module { config = @CONFIG@ // { services.podman-btrfs-advise = cfg; }; inherit lib pkgs; };
in
{
  inherit (out) config;
  options = builtins.mapAttrs (_: o: {
    inherit (o) type;
    description = o.description or null;
    default = let d = builtins.tryEval o.default; in if d.success then d.value else "<throws>";
  }) options;
}
"#;

fn expression(settings: &str, config: &str) -> String {
    HARNESS.replace("@MODULE@", MODULE).replace("@SETTINGS@", settings).replace("@CONFIG@", config)
}

/// The evaluated `{ config; options; }` for some settings and the rest of `config`.
fn eval(settings: &str, config: &str) -> Value {
    nix_eval_expr(&expression(settings, config))
}

fn enabled(extra: &str) -> String {
    format!(r#"{{ enable = true; package = "{PACKAGE}"; {extra} }}"#)
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

fn exec_start(config: &Value) -> &str {
    config["systemd"]["services"][SERVICE]["serviceConfig"]["ExecStart"].as_str().unwrap()
}

#[test]
fn module_declares_documented_options_with_their_defaults() {
    if !can_run("nixos module options", &["nix-instantiate"], false) {
        return;
    }
    let options = &eval("{ }", "{ }")["options"];
    let want = [
        ("enable", json!(false), json!("bool")),
        ("package", json!("<throws>"), json!("package")),
        ("socket", json!(SOCKET), json!("str")),
        ("root", json!("/var/lib/containers/podfs"), json!("str")),
        ("pluginName", json!("podfs"), json!("str")),
        ("podmanSocket", Value::Null, json!({"nullOr": "str"})),
        ("events", json!(true), json!("bool")),
        ("watch", json!(true), json!("bool")),
        ("disko", Value::Null, json!({"nullOr": "str"})),
        ("extraArgs", json!([]), json!({"listOf": "str"})),
    ];
    let names: Vec<&str> = options.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want_names: Vec<&str> = want.iter().map(|(n, _, _)| *n).collect();
    want_names.sort();
    assert_eq!(names, want_names);
    for (name, default, ty) in want {
        let o = &options[name];
        assert_eq!(o["default"], default, "default of {name}");
        assert_eq!(o["type"], ty, "type of {name}");
        let description = o["description"].as_str().unwrap_or_default();
        assert!(description.trim().len() > 10, "{name} needs a description, has {:?}", o["description"]);
    }
}

#[test]
fn disabled_module_changes_nothing() {
    if !can_run("nixos module disabled", &["nix-instantiate"], false) {
        return;
    }
    assert_eq!(eval("{ }", "{ }")["config"], json!({}));
    let settings = format!(r#"{{ enable = false; package = "{PACKAGE}"; disko = "/etc/disko.nix"; }}"#);
    assert_eq!(eval(&settings, "{ }")["config"], json!({}));
}

#[test]
fn enabled_module_registers_the_plugin_and_runs_serve_before_podman() {
    if !can_run("nixos module enabled", &["nix-instantiate"], false) {
        return;
    }
    let out = eval(&enabled(r#"root = "/srv/podfs"; disko = "/etc/disko.nix";"#), "{ }");
    let config = &out["config"];

    let plugins =
        &config["virtualisation"]["containers"]["containersConf"]["settings"]["engine"]["volume_plugins"];
    assert_eq!(plugins, &json!({ "podfs": SOCKET }));

    let exec = exec_start(config);
    for part in ["serve", &format!("--socket {SOCKET}"), "--root /srv/podfs", "--disko /etc/disko.nix"] {
        assert!(exec.contains(part), "ExecStart lacks {part:?}: {exec}");
    }
    assert_eq!(
        exec,
        format!(
            "{PACKAGE}/bin/podman-btrfs-advise serve --socket {SOCKET} --root /srv/podfs --plugin-name podfs \
             --disko /etc/disko.nix"
        )
    );
    for absent in ["--no-events", "--no-watch", "--url"] {
        assert!(!exec.contains(absent), "ExecStart has {absent} by default: {exec}");
    }

    let svc = &config["systemd"]["services"][SERVICE];
    let sc = &svc["serviceConfig"];
    assert_eq!(sc["Type"], "notify");
    assert_eq!(sc["Restart"], "on-failure");
    assert_eq!(sc["RuntimeDirectory"], "podman-btrfs-advise");
    assert_eq!(sc["RuntimeDirectoryMode"], "0700");
    assert_ne!(sc["ProtectSystem"], "strict", "strict would make the volume root read-only");
    assert_eq!(strings(&svc["before"]), ["podman.service", "podman-restart.service"]);
    assert_eq!(strings(&svc["after"]), ["local-fs.target"]);
    assert_eq!(strings(&svc["wantedBy"]), ["multi-user.target"]);
    assert_eq!(svc["unitConfig"]["RequiresMountsFor"], "/srv/podfs");
    assert!(svc["description"].as_str().is_some_and(|d| !d.is_empty()));

    assert_eq!(strings(&config["systemd"]["tmpfiles"]["rules"]), ["d /srv/podfs 0700 root root -"]);
    assert_eq!(strings(&config["environment"]["systemPackages"]), [PACKAGE]);
}

#[test]
fn optional_flags_follow_the_settings() {
    if !can_run("nixos module flags", &["nix-instantiate"], false) {
        return;
    }
    let settings = enabled(
        r#"events = false; watch = false; socket = "/run/podfs/plugin.sock"; pluginName = "btrfsvol";
           podmanSocket = "unix:///run/podman/podman.sock";
           extraArgs = [ "--storage-conf" "/etc/my containers/storage.conf" ];"#,
    );
    let config = &eval(&settings, "{ }")["config"];
    assert_eq!(
        exec_start(config),
        format!(
            "{PACKAGE}/bin/podman-btrfs-advise serve --socket /run/podfs/plugin.sock \
             --root /var/lib/containers/podfs --plugin-name btrfsvol --url unix:///run/podman/podman.sock --no-events --no-watch \
             --storage-conf '/etc/my containers/storage.conf'"
        )
    );
    let plugins =
        &config["virtualisation"]["containers"]["containersConf"]["settings"]["engine"]["volume_plugins"];
    assert_eq!(plugins, &json!({ "btrfsvol": "/run/podfs/plugin.sock" }));
    assert_eq!(
        strings(&config["systemd"]["tmpfiles"]["rules"]),
        ["d /var/lib/containers/podfs 0700 root root -"]
    );

    // Only events = false adds --no-events.
    let config = &eval(&enabled("watch = false;"), "{ }")["config"];
    assert!(!exec_start(config).contains("--no-events"), "{}", exec_start(config));
    assert!(exec_start(config).ends_with(" --no-watch"), "{}", exec_start(config));
}

#[test]
fn oci_containers_on_podman_start_after_the_plugin() {
    if !can_run("nixos module oci-containers", &["nix-instantiate"], false) {
        return;
    }
    let containers = r#"containers = { db = { image = "postgres"; }; web = { serviceName = "web-app"; }; };"#;
    let podman = format!("{{ virtualisation.oci-containers = {{ backend = \"podman\"; {containers} }}; }}");
    let config = &eval(&enabled(""), &podman)["config"];
    assert_eq!(
        strings(&config["systemd"]["services"][SERVICE]["before"]),
        ["podman.service", "podman-restart.service", "podman-db.service", "web-app.service"]
    );
    let docker = format!("{{ virtualisation.oci-containers = {{ backend = \"docker\"; {containers} }}; }}");
    let config = &eval(&enabled(""), &docker)["config"];
    assert_eq!(
        strings(&config["systemd"]["services"][SERVICE]["before"]),
        ["podman.service", "podman-restart.service"]
    );
}

#[test]
fn module_without_a_package_says_which_option_to_set() {
    if !can_run("nixos module without package", &["nix-instantiate"], false) {
        return;
    }
    let out = run(Command::new("nix-instantiate").args([
        "--eval",
        "--strict",
        "--json",
        "-E",
        &expression("{ enable = true; }", "{ }"),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "evaluated without a package: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("services.podman-btrfs-advise.package: set it"), "{stderr}");
}

/// The unit file as section → key → values (a key given twice has two values).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) =
            line.split_once('=').unwrap_or_else(|| panic!("line {}: not key=value: {line}", n + 1));
        assert!(!section.is_empty(), "line {}: {key} outside a section", n + 1);
        unit.entry(section.clone())
            .or_default()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    unit
}

fn unit() -> (String, Unit) {
    let text = std::fs::read_to_string(UNIT).unwrap();
    let unit = parse_unit(&text);
    (text, unit)
}

/// The single value of a key.
fn one<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    match unit.get(section).and_then(|s| s.get(key)).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("[{section}] {key}: want one value, have {other:?}"),
    }
}

/// Every whitespace-separated word of a list-valued key.
fn words<'a>(unit: &'a Unit, section: &str, key: &str) -> Vec<&'a str> {
    unit.get(section)
        .and_then(|s| s.get(key))
        .into_iter()
        .flatten()
        .flat_map(|v| v.split_whitespace())
        .collect()
}

#[test]
fn unit_file_runs_serve_as_notify_before_podman() {
    let (text, unit) = unit();
    let exec: Vec<&str> = one(&unit, "Service", "ExecStart").split_whitespace().collect();
    assert_eq!(exec[..2], [INSTALLED_BIN, "serve"]);
    assert!(exec.windows(2).any(|w| w == ["--socket", SOCKET]), "{exec:?}");
    // The name it is registered under below: the events watcher picks volumes by it.
    assert!(exec.windows(2).any(|w| w == ["--plugin-name", "podfs"]), "{exec:?}");
    assert_eq!(one(&unit, "Service", "Type"), "notify");
    assert_eq!(one(&unit, "Service", "Restart"), "on-failure");
    assert_eq!(one(&unit, "Service", "RuntimeDirectory"), "podman-btrfs-advise");
    assert_eq!(one(&unit, "Service", "RuntimeDirectoryMode"), "0700");
    assert!(!unit["Service"].contains_key("User"), "btrfs subvolume ioctls need root");
    if one(&unit, "Service", "ProtectSystem") == "strict" {
        let rw = words(&unit, "Service", "ReadWritePaths");
        assert!(rw.iter().any(|p| p.trim_start_matches('-') == "/var/lib/containers"), "{rw:?}");
    }
    let before = words(&unit, "Unit", "Before");
    for u in ["podman.service", "podman-restart.service"] {
        assert!(before.contains(&u), "Before= lacks {u}: {before:?}");
    }
    assert!(words(&unit, "Unit", "After").contains(&"local-fs.target"));
    assert_eq!(words(&unit, "Install", "WantedBy"), ["multi-user.target"]);
    // The header says how to register the plugin.
    let header: String = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(header.contains(&format!("[engine.volume_plugins]\npodfs = \"{SOCKET}\"")), "{header}");
}

/// A systemd value as the unit file would spell it: booleans as yes/no, lists space-separated.
fn unit_value(v: &Value) -> String {
    match v {
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::String(s) if s == "true" => "yes".into(),
        Value::String(s) if s == "false" => "no".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(unit_value).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

#[test]
fn unit_file_and_module_run_the_same_service() {
    if !can_run("unit file and module agree", &["nix-instantiate"], false) {
        return;
    }
    let (_, unit) = unit();
    let config = &eval(&enabled(""), "{ }")["config"];
    let svc = &config["systemd"]["services"][SERVICE];

    let module_args: Vec<&str> = exec_start(config).split_whitespace().skip(1).collect();
    let unit_args: Vec<&str> = one(&unit, "Service", "ExecStart").split_whitespace().skip(1).collect();
    assert_eq!(module_args, unit_args, "serve arguments differ between the module and the unit");

    let module_service: BTreeMap<&str, String> = svc["serviceConfig"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "ExecStart")
        .map(|(k, v)| (k.as_str(), unit_value(v)))
        .collect();
    let unit_service: BTreeMap<&str, String> = unit["Service"]
        .iter()
        .filter(|(k, _)| *k != "ExecStart")
        .map(|(k, v)| (k.as_str(), unit_value(&json!(v.join(" ")))))
        .collect();
    assert_eq!(module_service, unit_service, "[Service] settings differ between the module and the unit");

    assert_eq!(unit_value(&svc["before"]), words(&unit, "Unit", "Before").join(" "));
    assert_eq!(unit_value(&svc["after"]), words(&unit, "Unit", "After").join(" "));
    assert_eq!(unit_value(&svc["wantedBy"]), words(&unit, "Install", "WantedBy").join(" "));
    assert_eq!(svc["unitConfig"]["RequiresMountsFor"], one(&unit, "Unit", "RequiresMountsFor"));
    assert_eq!(svc["description"], one(&unit, "Unit", "Description"));
}

#[test]
fn unit_file_passes_systemd_analyze_verify() {
    if !can_run("unit_file_passes_systemd_analyze_verify", &["systemd-analyze"], false) {
        return;
    }
    // verify requires ExecStart's binary to exist: point it at the one just built.
    let text = std::fs::read_to_string(UNIT).unwrap();
    let bin = env!("CARGO_BIN_EXE_podman-btrfs-advise");
    let (before, after) = text.split_once(&format!("ExecStart={INSTALLED_BIN} ")).expect("ExecStart line");
    let dir = TempDir::new("unit");
    let path = dir.path().join(UNIT_NAME);
    std::fs::write(&path, format!("{before}ExecStart={bin} {after}")).unwrap();

    let out = run(Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed:\n{stderr}");
    // verify exits 0 on settings it ignores; every complaint about the unit names it.
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains(UNIT_NAME)).collect();
    assert!(complaints.is_empty(), "systemd-analyze verify:\n{}", complaints.join("\n"));
}

#[test]
fn serve_accepts_every_flag_the_unit_and_module_pass() {
    if !can_run("serve flags", &["nix-instantiate"], false) {
        return;
    }
    let help = ok(bin().args(["serve", "--help"]));
    let known: BTreeSet<&str> = help.split_whitespace().map(|w| w.trim_end_matches(',')).collect();
    let (_, unit) = unit();
    let settings = enabled(
        r#"events = false; watch = false; podmanSocket = "unix:///run/podman/podman.sock";
           disko = "/etc/disko.nix";"#,
    );
    let config = &eval(&settings, "{ }")["config"];
    let exec = format!("{} {}", one(&unit, "Service", "ExecStart"), exec_start(config));
    let mut flags: BTreeSet<&str> = exec.split_whitespace().filter(|w| w.starts_with("--")).collect();
    // Named for extraArgs in the module, and every flag the systemd README lists.
    flags.extend(["--storage-conf", "--containers-conf"]);
    let unit_readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd/README.md")).unwrap();
    let listed = systemd_readme_flags(&unit_readme);
    assert!(listed.len() >= 8, "contrib/systemd/README.md lists serve's other flags: {listed:?}");
    flags.extend(listed);
    assert!(flags.len() >= 8, "{flags:?}");
    for flag in flags {
        assert!(known.contains(flag), "`serve --help` has no {flag}:\n{help}");
    }
}

/// The flags contrib/systemd/README.md lists after "other flags (", each in backticks.
fn systemd_readme_flags(readme: &str) -> Vec<&str> {
    let start = readme.find("other flags (").expect("contrib/systemd/README.md lists \"other flags (…)\"");
    let list = &readme[start..];
    let list = &list[..list.find(')').expect("the list of flags ends with `)`")];
    list.split('`').filter(|w| w.starts_with("--")).collect()
}

#[test]
fn unit_runs_the_binary_where_the_readme_installs_it() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let install = readme
        .lines()
        .find(|l| l.starts_with("cargo install ") && l.contains(" --root "))
        .expect("README.md installs with `cargo install … --root PREFIX`");
    let prefix = install.split_whitespace().skip_while(|w| *w != "--root").nth(1).unwrap();
    assert_eq!(format!("{prefix}/bin/podman-btrfs-advise"), INSTALLED_BIN, "{install}");
    let (_, unit) = unit();
    assert_eq!(one(&unit, "Service", "ExecStart").split_whitespace().next(), Some(INSTALLED_BIN));
    let unit_readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd/README.md")).unwrap();
    assert!(unit_readme.contains(&format!("`{INSTALLED_BIN}`")), "contrib/systemd/README.md names the path");
}

/// The snapshot services and timers (pruning, and the scheduled snapshots per schedule)
/// pass `systemd-analyze verify`, run the installed binary, and pass only flags
/// `snapshot` has.
#[test]
fn snapshot_units_verify_and_pass_real_flags() {
    if !can_run("snapshot_units_verify_and_pass_real_flags", &["systemd-analyze"], false) {
        return;
    }
    let contrib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    let help = ok(bin().args(["snapshot", "--help"]));
    let dir = TempDir::new("snapshot-units");
    // Instances as systemd makes them from the templates.
    let units = [
        ("podfs-snapshot-prune.service", "podfs-snapshot-prune.service", ""),
        ("podfs-snapshot-prune.timer", "podfs-snapshot-prune.timer", ""),
        ("podfs-snapshot@.service", "podfs-snapshot@hourly.service", "hourly"),
        ("podfs-snapshot@.timer", "podfs-snapshot@hourly.timer", "hourly"),
    ];
    let mut paths = Vec::new();
    for (template, instance, i) in units {
        let text = std::fs::read_to_string(contrib.join(template)).unwrap();
        if let Some(exec) = text.lines().find_map(|l| l.strip_prefix("ExecStart=")) {
            let exec = exec.replace("%i", i);
            let args: Vec<&str> = exec.split_whitespace().collect();
            assert_eq!(args[..2], [INSTALLED_BIN, "snapshot"], "{exec}");
            for flag in args[2..].iter().filter(|a| a.starts_with('-')) {
                assert!(
                    help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                    "{flag} in {exec}"
                );
            }
            // The value after --scheduled is one snapshot accepts.
            if let Some(at) = args.iter().position(|a| *a == "--scheduled") {
                assert!(help.contains(args[at + 1]), "{exec}");
            }
        }
        // verify requires ExecStart's binary to exist: point it at the one just built.
        let text = text.replace(INSTALLED_BIN, env!("CARGO_BIN_EXE_podman-btrfs-advise"));
        std::fs::write(dir.path().join(instance), text).unwrap();
        paths.push(dir.path().join(instance));
    }
    let out = run(Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&paths));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed:\n{stderr}");
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("podfs-snapshot")).collect();
    assert!(complaints.is_empty(), "systemd-analyze verify:\n{}", complaints.join("\n"));
}
