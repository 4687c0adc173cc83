//! Loading disko.nix files: generated plans read back, hand-written configurations in
//! their common styles, positions, unknown option names, malformed files, and inputs that
//! must never panic. Tests that evaluate with Nix skip without `nix-instantiate` (and fail
//! instead under `PODFS_REQUIRE_SYSTEM_TESTS=1`).

use podfs::classify::classify;
use podfs::decide::{Strategy, decide};
use podfs::error::Error;
use podfs::inventory::examples::{self, EXAMPLES};
use podfs::layout::{Btrfs, Compression, Content, Layout};
use podfs::render::render_all;
use podfs::validate::disko::{self, DiskoFile, NixMode, find_nix_instantiate, load, load_text};
use std::path::{Path, PathBuf};
use std::time::Instant;

const REQUIRE_ENV: &str = "PODFS_REQUIRE_SYSTEM_TESTS";

/// Whether Nix can evaluate here; says why not, or panics under CI.
fn nix_available(test: &str) -> bool {
    if find_nix_instantiate().is_some() {
        return true;
    }
    let reason = format!("{test}: skipped, needs `nix-instantiate`");
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{reason} ({REQUIRE_ENV}=1 turns skips into failures)");
    }
    eprintln!("{reason}");
    false
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/disko").join(name)
}

fn must_load(path: &Path, mode: NixMode) -> DiskoFile {
    load(path, mode).unwrap_or_else(|e| panic!("{} ({mode:?}): {e}", path.display()))
}

/// The layout with what a disko file cannot carry removed: subvolume purposes and the
/// attribute paths of loaded filesystems; subvolumes in name order (the file's attribute
/// set is unordered). Everything else is compared: disks (name, device), partitions (name,
/// size, type code, priority, order), filesystems (format, mountpoint, options), btrfs
/// (extra args, mountpoint, options) and subvolumes (name, mountpoint, mount options,
/// NOCOW, compression).
fn comparable(layout: &Layout) -> Layout {
    let mut l = layout.clone();
    for p in l.disks.iter_mut().flat_map(|d| d.partitions.iter_mut()) {
        match &mut p.content {
            Content::Btrfs(b) => {
                b.attr_path.clear();
                for s in &mut b.subvolumes {
                    s.purpose = None;
                }
                b.subvolumes.sort_by(|x, y| x.name.cmp(&y.name));
            }
            Content::Filesystem(f) => f.attr_path.clear(),
        }
    }
    l
}

/// 1-based line of the `n`th (0-based) line containing `needle`.
fn line_of(text: &str, needle: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(n)
        .unwrap_or_else(|| panic!("no line {n} with {needle:?}"))
        .0
        + 1
}

fn line_at(file: &DiskoFile, path: &[&str]) -> usize {
    let offset = file.positions.exact(path).unwrap_or_else(|| panic!("no position for {}", path.join(".")));
    file.source.position(offset).0
}

fn btrfs_of(layout: &Layout) -> Vec<&Btrfs> {
    layout.btrfs_filesystems().collect()
}

/// Every attribute path of the layout's filesystems is known to the positions.
fn assert_attr_paths_are_placed(file: &DiskoFile) {
    for p in file.layout.disks.iter().flat_map(|d| &d.partitions) {
        let path = match &p.content {
            Content::Btrfs(b) => &b.attr_path,
            Content::Filesystem(f) => &f.attr_path,
        };
        assert!(file.positions.exact(path).is_some(), "{} has no position", path.join("."));
    }
}

// ---------------------------------------------------------------------------------------
// Generated plans

fn generated_disko_files() -> Vec<(String, podfs::decide::Plan, String)> {
    let mut out = Vec::new();
    for example in EXAMPLES {
        let inventory = examples::load(example.name).unwrap();
        let profile = classify(&inventory);
        for strategy in Strategy::ALL {
            let plan = decide(&profile, strategy);
            let files = render_all(&plan, "podman-btrfs-advise plan");
            let disko = files.into_iter().find(|f| f.name == "disko.nix").expect("a disko.nix");
            out.push((format!("{} ({strategy})", example.name), plan, disko.contents));
        }
    }
    out
}

fn check_generated(mode: NixMode) {
    for (what, plan, text) in generated_disko_files() {
        let file = load_text(&text, "disko.nix", mode).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(file.evaluated, mode == NixMode::Evaluate, "{what}");
        assert_eq!(comparable(&file.layout), comparable(&plan.layout), "{what} ({mode:?})");
        assert!(file.unknown.is_empty(), "{what}: {:?}", file.unknown);
        assert_attr_paths_are_placed(&file);
        // Planned attributes really were read back (not both empty by accident).
        let planned = plan.layout.subvolumes().filter(|s| s.nocow || s.compression.is_some()).count();
        let read = file.layout.subvolumes().filter(|s| s.nocow || s.compression.is_some()).count();
        assert_eq!(planned, read, "{what}");
    }
}

#[test]
fn generated_plans_load_back_statically() {
    check_generated(NixMode::Static);
}

#[test]
fn generated_plans_load_back_evaluated() {
    if !nix_available("generated_plans_load_back_evaluated") {
        return;
    }
    check_generated(NixMode::Evaluate);
}

#[test]
fn generated_plans_have_attributes_to_read_back() {
    // Guards the two tests above: the examples do plan NOCOW and compression.
    let all = generated_disko_files();
    assert!(all.iter().any(|(_, p, _)| p.layout.subvolumes().any(|s| s.nocow)));
    assert!(
        all.iter().any(|(_, p, _)| p.layout.subvolumes().any(|s| s.compression == Some(Compression::None)))
    );
}

// ---------------------------------------------------------------------------------------
// Hand-written configurations

const LITERAL_FIXTURES: &[&str] = &[
    "function-lib.nix",
    "let-options.nix",
    "several-disks.nix",
    "luks-btrfs.nix",
    "dotted-keys.nix",
    "devices-only.nix",
    "unknown-options.nix",
];

/// Loads a fixture statically and, with Nix, evaluated; both must give the same layout
/// and the same unknown options. Returns the static one and the evaluated one.
fn both(name: &str) -> (DiskoFile, Option<DiskoFile>) {
    let stat = must_load(&fixture(name), NixMode::Static);
    assert!(!stat.evaluated);
    let eval = find_nix_instantiate().map(|_| must_load(&fixture(name), NixMode::Evaluate));
    if let Some(e) = &eval {
        assert!(e.evaluated);
        assert_eq!(stat.layout, e.layout, "{name}: static and evaluated layouts differ");
        assert_eq!(stat.unknown, e.unknown, "{name}");
        assert_eq!(stat.positions, e.positions, "{name}");
    }
    assert_attr_paths_are_placed(&stat);
    (stat, eval)
}

#[test]
fn static_and_evaluated_agree_on_literal_fixtures() {
    if !nix_available("static_and_evaluated_agree_on_literal_fixtures") {
        return;
    }
    for name in LITERAL_FIXTURES {
        let (stat, eval) = both(name);
        let eval = eval.unwrap();
        assert!(!stat.layout.disks.is_empty(), "{name}");
        assert_eq!(stat.devices_path(), eval.devices_path(), "{name}");
    }
}

#[test]
fn function_with_lib_wrappers() {
    let (f, _) = both("function-lib.nix");
    let text = &f.source.text;
    let disk = &f.layout.disks[0];
    assert_eq!((disk.name.as_str(), disk.device.as_str()), ("main", "/dev/vdb"));
    let parts: Vec<(&str, &str, Option<&str>)> =
        disk.partitions.iter().map(|p| (p.name.as_str(), p.size.as_str(), p.type_code.as_deref())).collect();
    assert_eq!(parts, [("ESP", "512M", Some("EF00")), ("root", "100%", None)]);
    let b = btrfs_of(&f.layout)[0];
    assert_eq!(b.extra_args, ["-f"]);
    let subs: Vec<(&str, Option<&str>, Vec<&str>)> = b
        .subvolumes
        .iter()
        .map(|s| {
            (s.name.as_str(), s.mountpoint.as_deref(), s.mount_options.iter().map(String::as_str).collect())
        })
        .collect();
    assert_eq!(
        subs,
        [
            ("/home", Some("/home"), vec!["compress=zstd"]),
            ("/nix", Some("/nix"), vec!["compress=zstd", "noatime"]),
            ("/root", Some("/"), vec!["compress=zstd", "noatime"]),
        ]
    );
    // Positions are those of the function's body.
    let main = ["disko", "devices", "disk", "main"];
    assert_eq!(line_at(&f, &[&main[..], &["device"]].concat()), line_of(text, "device = lib.mkDefault", 0));
    let nix = [&main[..], &["content", "partitions", "root", "content", "subvolumes", "/nix", "mountpoint"]]
        .concat();
    assert_eq!(line_at(&f, &nix), line_of(text, "mountpoint = \"/nix\"", 0));
    let forced = [
        &main[..],
        &["content", "partitions", "root", "content", "subvolumes", "/root", "mountOptions", "1"],
    ]
    .concat();
    assert_eq!(line_at(&f, &forced), line_of(text, "lib.mkForce", 0));
    assert_eq!(f.source.position(f.positions.of(&["disko"]).unwrap()), (7, 3));
}

#[test]
fn let_bindings_place_options_in_the_binding() {
    let (f, _) = both("let-options.nix");
    let text = &f.source.text;
    let b = btrfs_of(&f.layout)[0];
    assert_eq!(b.mount_options, ["noatime", "compress=zstd:1"]);
    let db = b.subvolumes.iter().find(|s| s.name == "@db").unwrap();
    assert_eq!(db.mount_options, ["noatime", "compress=zstd:1", "nodatacow"]);
    assert!(db.nocow);
    let containers = b.subvolumes.iter().find(|s| s.name == "@containers").unwrap();
    assert_eq!(containers.compression, Some(Compression::Zstd));
    assert!(!containers.nocow);

    let sub = |name: &str, rest: &[&str]| -> Vec<String> {
        let mut p: Vec<String> = b.attr_path.clone();
        p.extend(["subvolumes", name].iter().chain(rest).map(|s| s.to_string()));
        p
    };
    let line = |p: Vec<String>| f.source.position(f.positions.exact(&p).expect("placed")).0;
    // The key is where the subvolume says `mountOptions = nocow;` …
    assert_eq!(line(sub("@db", &["mountOptions"])), line_of(text, "mountOptions = nocow", 0));
    // … its elements are in the let bindings: `nodatacow` where `nocow` is bound, the rest
    // where `common` is.
    assert_eq!(line(sub("@db", &["mountOptions", "2"])), line_of(text, "nocow = common", 0));
    assert_eq!(line(sub("@db", &["mountOptions", "0"])), line_of(text, "\"noatime\"", 0));
    assert_eq!(line(sub("@containers", &["mountOptions", "1"])), line_of(text, "\"compress=zstd:1\"", 0));
    // `of` falls back to the longest placed prefix.
    let missing = sub("@db", &["mountOptions", "9"]);
    assert_eq!(f.positions.of_path(&missing), f.positions.exact(&sub("@db", &["mountOptions"])));
}

#[test]
fn several_disks_in_name_and_priority_order() {
    let (f, _) = both("several-disks.nix");
    let disks: Vec<(&str, &str)> =
        f.layout.disks.iter().map(|d| (d.name.as_str(), d.device.as_str())).collect();
    assert_eq!(disks, [("backup", "/dev/sdb"), ("containers", "/dev/nvme0n1"), ("system", "/dev/sda")]);
    // `boot` (no content) and `swap` have no place in the layout; ESP before root.
    let system: Vec<&str> = f.layout.disks[2].partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(system, ["ESP", "root"]);
    let Content::Filesystem(root) = &f.layout.disks[2].partitions[1].content else { panic!("ext4 root") };
    assert_eq!((root.format.as_str(), root.mountpoint.as_deref()), ("ext4", Some("/")));
    assert!(root.mount_options.is_empty(), "absent mountOptions stay empty");
    let backup = &f.layout.disks[0].partitions[0];
    assert_eq!(backup.priority, Some(5));
    let Content::Btrfs(b) = &backup.content else { panic!("btrfs backup") };
    assert_eq!((b.mountpoint.as_deref(), b.subvolumes.len()), (Some("/backup"), 0));
    let storage = &btrfs_of(&f.layout)[1].subvolumes[0];
    assert_eq!(storage.name, "@storage");
    assert_eq!(storage.mount_options, ["noatime", "compress=zstd:1"]);
    assert!(f.unknown.is_empty(), "{:?}", f.unknown);
}

#[test]
fn btrfs_inside_luks() {
    let (f, _) = both("luks-btrfs.nix");
    let b = btrfs_of(&f.layout)[0];
    assert_eq!(b.attr_path.join("."), "disko.devices.disk.main.content.partitions.crypt.content.content");
    let line = f.source.position(f.positions.exact(&b.attr_path).unwrap()).0;
    assert_eq!(line, line_of(&f.source.text, "content = {", 3));
    let vm = b.subvolumes.iter().find(|s| s.name == "@vm").unwrap();
    assert!(vm.nocow);
    assert!(!b.subvolumes.iter().find(|s| s.name == "@").unwrap().nocow);
    assert!(f.unknown.is_empty(), "{:?}", f.unknown);
}

#[test]
fn dotted_keys_all_the_way_down() {
    let (f, _) = both("dotted-keys.nix");
    assert_eq!(f.devices_path(), ["disko", "devices"]);
    assert_eq!(f.layout.disks[0].device, "/dev/vda");
    let b = btrfs_of(&f.layout)[0];
    assert_eq!(b.subvolumes[0].name, "@root");
    assert_eq!(b.subvolumes[0].mount_options, ["noatime"]);
    assert_eq!(f.source.position(f.positions.exact(&["disko"]).unwrap()), (2, 3));
    assert_eq!(f.source.position(f.positions.exact(&["disko", "devices"]).unwrap()), (2, 9));
    let opts = [
        &b.attr_path.iter().map(String::as_str).collect::<Vec<_>>()[..],
        &["subvolumes", "@root", "mountOptions"],
    ]
    .concat();
    // The key itself, after `subvolumes."@root".`; the prefix is where it first appears.
    assert_eq!(f.source.position(f.positions.exact(&opts).unwrap()), (9, 24));
    assert_eq!(f.source.position(f.positions.exact(&opts[..opts.len() - 2]).unwrap()), (8, 5));
}

#[test]
fn devices_without_disko_prefix() {
    let (f, _) = both("devices-only.nix");
    assert!(f.devices_path().is_empty());
    let b = btrfs_of(&f.layout)[0];
    assert_eq!(b.attr_path.join("."), "disk.vdb.content.partitions.root.content");
    assert_eq!(b.subvolumes[0].mountpoint.as_deref(), Some("/data"));
    assert_eq!(line_at(&f, &["nodev", "/tmp", "fsType"]), 21);
    assert!(f.unknown.is_empty(), "{:?}", f.unknown);
}

#[test]
fn unknown_option_names_with_their_paths() {
    let (f, _) = both("unknown-options.nix");
    let found: Vec<(String, &str)> = f.unknown.iter().map(|(p, t)| (p.join("."), t.as_str())).collect();
    let root = "disko.devices.disk.main.content.partitions.root";
    assert_eq!(
        found,
        [
            (format!("{root}.sizee"), "gpt_partition"),
            (format!("{root}.content.extraArg"), "btrfs"),
            (format!("{root}.content.subvolumes.@home.mountpoints"), "btrfs_subvol"),
        ]
    );
    let text = &f.source.text;
    for ((path, _), needle) in f.unknown.iter().zip(["sizee", "extraArg", "mountpoints"]) {
        let (line, column) = f.source.position(f.positions.exact(path).unwrap());
        assert_eq!(line, line_of(text, needle, 0));
        assert_eq!(column, f.source.line_text(line).find(needle).unwrap() + 1);
    }
    assert!(disko::known_options("gpt_partition").unwrap().contains(&"size"));
}

/// Name, mountpoint, number of mount options, NOCOW, compression.
type SubvolumeSummary<'a> = (&'a str, Option<&'a str>, usize, bool, Option<Compression>);

#[test]
fn lib_stub_evaluates_generated_subvolumes() {
    if !nix_available("lib_stub_evaluates_generated_subvolumes") {
        return;
    }
    let f = must_load(&fixture("lib-functions.nix"), NixMode::Evaluate);
    assert_eq!(f.layout.disks[0].device, "/dev/disk/by-id/NVME-MAIN");
    let b = btrfs_of(&f.layout)[0];
    assert_eq!(b.mount_options, ["noatime"]);
    let subs: Vec<SubvolumeSummary> = b
        .subvolumes
        .iter()
        .map(|s| (s.name.as_str(), s.mountpoint.as_deref(), s.mount_options.len(), s.nocow, s.compression))
        .collect();
    assert_eq!(
        subs,
        [
            ("@db", Some("/db"), 1, true, None),
            ("@home", Some("/home"), 2, false, Some(Compression::Lzo)),
            ("@nix", Some("/nix"), 2, false, None),
        ]
    );
    assert_eq!(f.layout.disks[0].partitions[0].size, "100%");
    // Statically, what needs evaluation is simply not there.
    let s = must_load(&fixture("lib-functions.nix"), NixMode::Static);
    assert!(s.layout.disks.is_empty());
    assert!(s.positions.exact(&["disko", "devices", "disk"]).is_some());
}

#[test]
fn auto_mode_evaluates_when_nix_is_there() {
    let f = must_load(&fixture("dotted-keys.nix"), NixMode::Auto);
    assert_eq!(f.evaluated, find_nix_instantiate().is_some());
}

// ---------------------------------------------------------------------------------------
// Errors

fn input_error(text: &str, mode: NixMode) -> podfs::error::InputError {
    match load_text(text, "bad.nix", mode) {
        Err(Error::Input(e)) => e,
        Err(other) => panic!("{text:?}: not an input error: {other}"),
        Ok(_) => panic!("{text:?}: loaded"),
    }
}

#[test]
fn malformed_nix_is_an_input_error_at_its_place() {
    for mode in [NixMode::Static, NixMode::Auto] {
        let e = input_error("{ a = ; }", mode);
        assert_eq!((e.file.as_str(), e.line, e.column), ("bad.nix", 1, 7), "{e}");
        assert!(e.message.contains("`;`"), "{}", e.message);
        assert_eq!(e.source_line.as_deref(), Some("{ a = ; }"));

        // An unclosed brace: reported at the brace that is never closed.
        let e = input_error("{\n  a = {\n    b = 1;\n  };\n", mode);
        assert_eq!((e.line, e.column), (1, 1), "{e}");
        assert!(e.message.contains("end of file"), "{}", e.message);
        assert!(e.help.as_deref().unwrap_or("").contains("never closed"), "{e}");

        // A stray closing brace.
        let e = input_error("{\n  a = 1;\n}\n}\n", mode);
        assert_eq!((e.line, e.column), (4, 1), "{e}");

        let e = input_error("{ a = \"x; }", mode);
        assert_eq!(e.line, 1, "{e}");
        let e = input_error("", mode);
        assert_eq!(e.line, 1, "{e}");
    }
}

#[test]
fn evaluation_errors_are_input_errors() {
    if !nix_available("evaluation_errors_are_input_errors") {
        return;
    }
    let e = input_error("{\n  disko.devices.disk.a.device = 1 + \"a\";\n}\n", NixMode::Evaluate);
    assert_eq!(e.line, 2, "{e}");
    assert!(e.column > 1, "{e}");
    assert!(e.message.contains("evaluating"), "{e}");
    assert!(e.help.as_deref().unwrap_or("").contains("must evaluate to a disko configuration"), "{e}");
    assert_eq!(e.file, "bad.nix");

    let e = input_error("throw \"boom\"", NixMode::Evaluate);
    assert_eq!((e.line, e.column), (1, 1), "{e}");
    assert!(e.message.contains("boom"), "{e}");

    // A function asking for an argument that is not provided: read statically, and the
    // argument is named with its place in the header.
    let f = load_text("{ lib,\n  disks, ... }: { disko.devices.disk = { }; }", "f.nix", NixMode::Evaluate)
        .unwrap();
    assert!(!f.evaluated);
    assert_eq!(
        f.missing_args.iter().map(|(n, o)| (n.as_str(), f.source.position(*o))).collect::<Vec<_>>(),
        [("disks", (2, 3))]
    );

    // A missing lib function, named by Nix at its place.
    let e = input_error(
        "{ lib, ... }:\n{\n  disko.devices.disk.a.device = lib.noSuchFunction 1;\n}\n",
        NixMode::Evaluate,
    );
    assert_eq!(e.line, 3, "{e}");

    // Statically the same texts are fine: what needs evaluation reads as null.
    assert!(load_text("{ disko.devices.disk.a.device = 1 + \"a\"; }", "ok.nix", NixMode::Static).is_ok());
}

#[test]
fn missing_files_are_io_errors() {
    let err = load(Path::new("/nonexistent/disko.nix"), NixMode::Static).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(err.exit_code(), 3);
}

#[test]
fn non_utf8_is_an_input_error() {
    let dir = std::env::temp_dir().join(format!("podfs-disko-loader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latin1.nix");
    std::fs::write(&path, b"{\n  a = \"caf\xe9\";\n}\n").unwrap();
    let err = load(&path, NixMode::Static).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    let Error::Input(e) = err else { panic!("{err}") };
    assert_eq!(e.line, 2);
}

// ---------------------------------------------------------------------------------------
// Size

/// A disko.nix with `n` subvolumes, every third NOCOW and every fifth compressed.
fn many_subvolumes(n: usize) -> String {
    let mut subs = String::new();
    let mut hook = String::new();
    for i in 0..n {
        subs.push_str(&format!(
            "            \"@sv{i}\" = {{\n              mountpoint = \"/srv/sv{i}\";\n              \
             mountOptions = [\"noatime\" \"compress=zstd:1\"];\n            }};\n"
        ));
        if i % 3 == 0 {
            hook.push_str(&format!("            chattr +C \"$M/@sv{i}\"\n"));
        }
        if i % 5 == 0 {
            hook.push_str(&format!("            btrfs property set \"$M/@sv{i}\" compression zstd\n"));
        }
    }
    format!(
        "{{\n  disko.devices.disk.big = {{\n    type = \"disk\";\n    device = \"/dev/sdz\";\n    content = {{\n      \
         type = \"gpt\";\n      partitions.data = {{\n        size = \"100%\";\n        content = {{\n          \
         type = \"btrfs\";\n          subvolumes = {{\n{subs}          }};\n          postCreateHook = ''\n{hook}          \
         '';\n        }};\n      }};\n    }};\n  }};\n}}\n"
    )
}

#[test]
fn five_hundred_subvolumes() {
    let text = many_subvolumes(500);
    let check = |f: &DiskoFile| {
        let b = btrfs_of(&f.layout)[0];
        assert_eq!(b.subvolumes.len(), 500);
        assert_eq!(b.subvolumes.iter().filter(|s| s.nocow).count(), 167);
        assert_eq!(b.subvolumes.iter().filter(|s| s.compression.is_some()).count(), 100);
    };
    let started = Instant::now();
    let s = load_text(&text, "big.nix", NixMode::Static).unwrap();
    let static_time = started.elapsed();
    check(&s);
    eprintln!("500 subvolumes ({} bytes): static {static_time:?}", text.len());
    if nix_available("five_hundred_subvolumes (evaluated)") {
        let started = Instant::now();
        let e = load_text(&text, "big.nix", NixMode::Evaluate).unwrap();
        eprintln!("500 subvolumes: evaluated {:?}", started.elapsed());
        check(&e);
        assert_eq!(comparable(&s.layout), comparable(&e.layout));
    }
}

// ---------------------------------------------------------------------------------------
// Never panic

mod never_panics {
    use super::{Error, NixMode, load_text};
    use proptest::prelude::*;

    const FRAGMENTS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "(",
        ")",
        "let",
        "in",
        "rec",
        "inherit",
        "inherit (a)",
        "=",
        ";",
        ":",
        "...",
        "?",
        ",",
        "@",
        ".",
        "a",
        "b",
        "x",
        "lib",
        "disko",
        "devices",
        "disk",
        "content",
        "partitions",
        "subvolumes",
        "mountOptions",
        "a.b.c",
        "\"s\"",
        "\"@root\"",
        "\"${a}\"",
        "\"${",
        "''x''",
        "''\n  y\n''",
        "${",
        "//",
        "++",
        "+",
        "-",
        "!",
        "lib.mkDefault",
        "lib.mkForce",
        "lib.mkIf",
        "lib.mkMerge",
        "lib.optional",
        "mkOverride 5",
        "1",
        "-2",
        "2.5",
        "true",
        "false",
        "null",
        "with lib;",
        "if",
        "then",
        "else",
        "x:",
        "{ lib, ... }:",
        "import",
        "./p.nix",
        "<nixpkgs>",
        "or",
        "a.${b}",
        "\"type\" = \"btrfs\";",
        "type = \"gpt\";",
        "postCreateHook = ''chattr +C $M/a'';",
        "http://x.y",
        "assert true;",
        "#c\n",
        "/* c */",
        "\n",
        "  ",
        "__curPos",
        "x ? y",
        "a.b or 1",
        "''${x}''",
        "\"\\n\\\"\"",
        "'''",
    ];

    fn soup() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..80).prop_map(|v| v.join(" "))
    }

    /// Syntactically valid nestings of what the static reader follows.
    fn nested() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("1".to_string()),
            Just("\"s\"".to_string()),
            Just("x".to_string()),
            Just("null".to_string()),
            Just("''\n  a ${x}\n''".to_string()),
            Just("[ ]".to_string()),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[ {} ]", v.join(" "))),
                proptest::collection::vec(("[a-c](\\.[a-c]){0,2}", inner.clone()), 0..4).prop_map(|v| {
                    let body: Vec<String> = v.into_iter().map(|(k, e)| format!("{k} = {e};")).collect();
                    format!("{{ {} }}", body.join(" "))
                }),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("let x = {a}; in {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("rec {{ x = {a}; y = {b}; }}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) // ({b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) ++ ({b})")),
                inner.clone().prop_map(|a| format!("lib.mkDefault ({a})")),
                inner.clone().prop_map(|a| format!("lib.mkMerge [ ({a}) {{ }} ]")),
                inner.clone().prop_map(|a| format!("{{ lib, x ? 1, ... }}: {a}")),
                inner.clone().prop_map(|a| format!("(x.a or {a})")),
                inner.prop_map(|a| format!("if x then {a} else {a}")),
            ]
        })
    }

    fn loads_or_fails(text: &str) {
        match load_text(text, "fuzz.nix", NixMode::Static) {
            Ok(f) => {
                for (path, offset) in &f.positions.entries {
                    assert!(*offset <= text.len(), "{path:?}");
                }
            }
            Err(Error::Input(e)) => {
                assert!(e.line >= 1 && e.column >= 1);
                assert!(!e.message.contains("internal error"), "{e}");
            }
            Err(other) => panic!("unexpected error kind: {other}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text(text in "\\PC{0,200}") {
            loads_or_fails(&text);
        }

        #[test]
        fn fragment_soup(text in soup()) {
            loads_or_fails(&text);
        }

        #[test]
        fn valid_nestings(text in nested()) {
            loads_or_fails(&text);
        }

        #[test]
        fn disko_shaped_values(body in nested(), key in "(type|content|subvolumes|mountOptions|postCreateHook)") {
            let text = format!(
                "{{ disko.devices.disk.d = {{ type = \"disk\"; content = {{ type = \"gpt\"; partitions.p = {{ \
                 content = {{ type = \"btrfs\"; {key} = {body}; subvolumes.s.{key} = {body}; }}; }}; }}; }}; }}"
            );
            loads_or_fails(&text);
        }
    }

    #[test]
    fn deep_and_wide_inputs() {
        for text in [
            "[".repeat(5000),
            format!("{}1{}", "(".repeat(600), ")".repeat(600)),
            format!("{}1{}", "[ ".repeat(600), " ]".repeat(600)),
            format!("{}1{}", "{ a = ".repeat(400), "; }".repeat(400)),
            vec!["{ a = 1; }"; 3000].join(" // "),
            vec!["[ 1 ]"; 3000].join(" ++ "),
            format!(
                "let {} in a0",
                (0..400).map(|i| format!("a{i} = [ a{} a{} ];", i + 1, i + 1)).collect::<String>()
            ),
            "let a = { b = a.b; c = a; }; in a".to_string(),
            "rec { a = b; b = a; }".to_string(),
            format!("\"{}\"", "${x}".repeat(2000)),
        ] {
            loads_or_fails(&text);
        }
    }
}
