//! The storage.conf rules (P201–P207) on a corpus of hand-written files, the loaders on
//! malformed and arbitrary input, and every storage.conf the generator writes.
//!
//! Each file in tests/fixtures/check/storage states what it must raise in its leading
//! comments: `# expect: P203 at 12` or `# expect: P203 at 12:1` (line, or line and column),
//! one line per finding, or `# expect: none`. `# disko: btrfs` checks it together with the
//! layout of [`btrfs_layout`]. Only P2xx findings are compared: the other rules have their
//! own corpus.

use podfs::layout::{Btrfs, Content, Disk, Filesystem, Layout, Partition, Subvolume};
use podfs::validate::diagnostic::Diagnostic;
use podfs::validate::disko::DiskoFile;
use podfs::validate::source::SourceFile;
use podfs::validate::storage_conf::{self, StorageConfFile};
use podfs::validate::{self, Inputs, containers_conf, rules};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/check/storage");

fn subvolume(name: &str, mountpoint: &str) -> Subvolume {
    Subvolume {
        name: name.into(),
        mountpoint: Some(mountpoint.into()),
        mount_options: vec!["compress=zstd:1".into(), "noatime".into()],
        nocow: false,
        compression: None,
        purpose: None,
    }
}

fn filesystem(format: &str, mountpoint: &str) -> Content {
    Content::Filesystem(Filesystem {
        attr_path: Vec::new(),
        format: format.into(),
        mountpoint: Some(mountpoint.into()),
        mount_options: Vec::new(),
    })
}

/// An ESP and a btrfs filesystem whose subvolume `@containers-storage` is mounted at the
/// default graphroot, plus an XFS data disk at /srv/xfs.
fn btrfs_layout() -> Layout {
    let partition = |name: &str, size: &str, content: Content| Partition {
        name: name.into(),
        size: size.into(),
        type_code: None,
        priority: None,
        content,
    };
    let root = Btrfs {
        attr_path: Vec::new(),
        extra_args: vec!["-f".into()],
        mountpoint: None,
        mount_options: Vec::new(),
        subvolumes: vec![
            subvolume("@root", "/"),
            subvolume("@nix", "/nix"),
            subvolume("@containers-storage", "/var/lib/containers/storage"),
        ],
    };
    Layout {
        disks: vec![
            Disk {
                name: "main".into(),
                device: "/dev/nvme0n1".into(),
                partitions: vec![
                    partition("ESP", "1G", filesystem("vfat", "/boot")),
                    partition("root", "100%", Content::Btrfs(root)),
                ],
            },
            Disk {
                name: "data".into(),
                device: "/dev/sdb".into(),
                partitions: vec![partition("xfs", "100%", filesystem("xfs", "/srv/xfs"))],
            },
        ],
    }
}

/// A disko input holding `layout`, as the disko loader would return it.
fn disko_file(layout: Layout) -> DiskoFile {
    DiskoFile {
        source: SourceFile::new("disko.nix", ""),
        layout,
        evaluated: false,
        value: serde_json::Value::Null,
        positions: Default::default(),
        unknown: Vec::new(),
        attr: Vec::new(),
        boot: Default::default(),
        skipped: Vec::new(),
        missing_args: Vec::new(),
        unevaluated: Vec::new(),
    }
}

fn inputs(storage: StorageConfFile, disko: Option<Layout>) -> Inputs {
    Inputs { storage: Some(storage), disko: disko.map(disko_file), ..Inputs::default() }
}

fn storage_findings(inputs: &Inputs) -> Vec<Diagnostic> {
    validate::check(inputs).into_iter().filter(|d| d.code.starts_with("P2")).collect()
}

/// What a fixture's header says.
struct Expectation {
    /// (code, line, column if given).
    findings: Vec<(String, usize, Option<usize>)>,
    none: bool,
    disko: bool,
}

fn expectation(path: &Path, text: &str) -> Expectation {
    let mut e = Expectation { findings: Vec::new(), none: false, disko: false };
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("# expect:") {
            let rest = rest.trim();
            if rest == "none" {
                e.none = true;
                continue;
            }
            let (code, place) =
                rest.split_once(" at ").unwrap_or_else(|| panic!("{}: bad `{line}`", path.display()));
            let (line_no, column) = match place.split_once(':') {
                Some((l, c)) => (l, Some(c.trim().parse().unwrap())),
                None => (place, None),
            };
            e.findings.push((code.trim().to_string(), line_no.trim().parse().unwrap(), column));
        } else if let Some(rest) = line.strip_prefix("# disko:") {
            assert_eq!(rest.trim(), "btrfs", "{}: the only layout is `btrfs`", path.display());
            e.disko = true;
        }
    }
    assert!(
        e.none == e.findings.is_empty(),
        "{}: say `# expect: none` or list the findings, not both or neither",
        path.display()
    );
    e
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    v.sort();
    v
}

/// Differences between what a fixture expects and what `check` finds in `text`.
fn compare(path: &Path, text: &str, e: &Expectation) -> Vec<String> {
    let name = path.display().to_string();
    let storage = storage_conf::load_text(text, &name).unwrap_or_else(|err| panic!("{name}: {err}"));
    let found = storage_findings(&inputs(storage, e.disko.then(btrfs_layout)));
    let mut problems = Vec::new();
    let mut want: Vec<(String, usize)> = e.findings.iter().map(|(c, l, _)| (c.clone(), *l)).collect();
    let mut got: Vec<(String, usize)> = found.iter().map(|d| (d.code.to_string(), d.line)).collect();
    want.sort();
    got.sort();
    if want != got {
        problems.push(format!("{name}:\n  expected {want:?}\n  found    {found:#?}"));
    }
    for (code, line, column) in &e.findings {
        if let Some(column) = column
            && !found.iter().any(|d| d.code == code && d.line == *line && d.column == *column)
        {
            problems.push(format!("{name}: no {code} at {line}:{column}; found {found:#?}"));
        }
    }
    for d in &found {
        let rule = rules::find(d.code).unwrap();
        if d.severity != rule.severity || d.file.as_deref() != Some(name.as_str()) || d.help.is_none() {
            problems.push(format!("{name}: {d:?} has the wrong severity, file or no help"));
        }
    }
    problems
}

#[test]
fn every_fixture_raises_exactly_its_rules_at_its_lines() {
    let files = fixtures();
    let mut bad = 0;
    let mut good = 0;
    let mut codes = BTreeSet::new();
    let mut problems = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let e = expectation(path, &text);
        let is_good = path.file_name().unwrap().to_string_lossy().starts_with("good-");
        assert!(!is_good || e.none, "{}: good-* files expect nothing", path.display());
        if is_good {
            good += 1;
        } else if !e.none {
            bad += 1;
        }
        codes.extend(e.findings.iter().map(|(c, _, _)| c.clone()));
        problems.extend(compare(path, &text, &e));
        // The same file with CRLF line endings gives the same findings at the same places.
        problems.extend(compare(path, &text.replace('\n', "\r\n"), &e));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(bad >= 10 && good >= 3, "{bad} bad and {good} good fixtures");
    let all: BTreeSet<String> = (201..=208).map(|n| format!("P{n}")).collect();
    assert_eq!(codes, all, "every storage.conf rule has a fixture");
}

#[test]
fn btrfs_graphroot_matters_only_with_a_disko_layout() {
    let text = std::fs::read_to_string(Path::new(CORPUS).join("p206-overlay-size.conf")).unwrap();
    let load = || storage_conf::load_text(&text, "s.conf").unwrap();
    assert_eq!(storage_findings(&inputs(load(), Some(btrfs_layout()))).len(), 1);
    assert!(storage_findings(&inputs(load(), None)).is_empty());
    // The same layout with the store on the XFS disk instead.
    let mut xfs = btrfs_layout();
    let Content::Btrfs(fs) = &mut xfs.disks[0].partitions[1].content else { unreachable!() };
    fs.subvolumes.retain(|s| s.name != "@containers-storage");
    xfs.disks[1].partitions[0].content = filesystem("xfs", "/var/lib/containers");
    assert!(storage_findings(&inputs(load(), Some(xfs))).is_empty());
    // With the driver set to btrfs, the overlay table is not read at all.
    let btrfs = text.replace("driver = \"overlay\"", "driver = \"btrfs\"");
    let storage = storage_conf::load_text(&btrfs, "s.conf").unwrap();
    assert!(storage_findings(&inputs(storage, Some(btrfs_layout()))).is_empty());
}

#[test]
fn no_storage_conf_no_storage_findings() {
    let inputs = Inputs { disko: Some(disko_file(btrfs_layout())), ..Inputs::default() };
    for rule in rules::CATALOGUE.iter().filter(|r| r.code.starts_with("P2")) {
        assert!((rule.check)(&inputs).is_empty(), "{}", rule.code);
        assert!((rule.check)(&Inputs::default()).is_empty(), "{}", rule.code);
    }
}

#[test]
fn rule_docs_have_the_four_sections_and_a_toml_example() {
    let storage_rules: Vec<_> = rules::CATALOGUE.iter().filter(|r| r.code.starts_with("P2")).collect();
    assert_eq!(storage_rules.len(), 8);
    for rule in storage_rules {
        let doc = rule.explanation();
        let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with("## ")).collect();
        assert_eq!(
            headings,
            ["## What it checks", "## Why it matters", "## Example", "## Fix"],
            "{}",
            rule.code
        );
        let example = &doc[doc.find("## Example").unwrap()..doc.find("## Fix").unwrap()];
        assert!(example.contains("```toml\n"), "{}: the example is a toml block", rule.code);
        assert!(!rule.summary().is_empty() && !rule.summary().contains('#'), "{}", rule.code);
    }
}

#[test]
fn malformed_toml_is_an_input_error_with_line_and_column() {
    let text = "[storage]\ndriver = \"overlay\"\n[storage.options\nsize = \"1G\"\n";
    let Err(podfs::error::Error::Input(e)) = storage_conf::load_text(text, "bad.conf") else {
        panic!("expected an input error")
    };
    assert_eq!((e.file.as_str(), e.line, e.column), ("bad.conf", 3, 17));
    assert!(e.message.starts_with("malformed TOML"), "{}", e.message);
    assert_eq!(e.source_line.as_deref(), Some("[storage.options"));
    assert!(e.to_string().contains("--> bad.conf:3:17"), "{e}");

    // Through the file loaders too: exit code 2, and the file is left as it was.
    let dir = std::env::temp_dir().join(format!("podfs-check-storage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("storage.conf");
    let bad = "[storage]\ndriver = \"btrfs\"\ndriver = \"overlay\"\n";
    std::fs::write(&path, bad).unwrap();
    let err = storage_conf::load(&path).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let podfs::error::Error::Input(e) = err else { panic!("expected an input error") };
    assert_eq!((e.line, e.column), (3, 1));
    assert_eq!(e.file, path.display().to_string());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), bad);
    std::fs::write(&path, "[engine]\nvolume_path = '/srv\n").unwrap();
    let Err(podfs::error::Error::Input(e)) = containers_conf::load(&path) else {
        panic!("expected an input error")
    };
    assert_eq!(e.line, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_generated_storage_conf_raises_no_storage_rule() {
    use podfs::decide::{Strategy, decide};
    use podfs::inventory::examples::{self, EXAMPLES};
    for example in EXAMPLES {
        for strategy in Strategy::ALL {
            let plan = decide(&podfs::classify::classify(&examples::load(example.name).unwrap()), strategy);
            let files = podfs::render::render_all(&plan, "test");
            let conf = files.iter().find(|f| f.name == podfs::render::STORAGE_CONF).unwrap();
            let storage = storage_conf::load_text(&conf.contents, "storage.conf").unwrap();
            assert_eq!(storage.driver().map(|(d, _)| d).as_deref(), Some(plan.storage.driver.as_str()));
            let found = storage_findings(&inputs(storage, Some(plan.layout.clone())));
            assert!(found.is_empty(), "{} / {strategy}:\n{}\n{found:#?}", example.name, conf.contents);
        }
    }
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn config() -> ProptestConfig {
        ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() }
    }

    fn key() -> impl Strategy<Value = String> {
        let known = vec![
            "driver",
            "graphroot",
            "runroot",
            "size",
            "min_space",
            "mountopt",
            "inodes",
            "options",
            "storage",
            "btrfs",
            "overlay",
            "pull_options",
            "volume_path",
            "engine",
            "Driver",
            "remap_uids",
        ];
        prop_oneof![
            4 => proptest::sample::select(known).prop_map(String::from),
            2 => proptest::sample::select(vec!["storage.driver", "storage.options.btrfs.size", "options.overlay.size", "engine.volume_path"]).prop_map(String::from),
            1 => "[a-zA-Z_.\"-]{1,12}",
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        let scalar = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<String>().prop_map(|s| format!("{s:?}")),
            "\\PC{0,10}".prop_map(|s| format!("'{s}'")),
            proptest::sample::select(vec![
                "\"btrfs\"",
                "\"overlay\"",
                "\"overlay2\"",
                "\"\"",
                "\"/run/containers/storage\"",
                "\"/var/lib/containers/storage\"",
                "\"/srv/x\"",
                "\"10G\"",
                "1979-05-27",
            ])
            .prop_map(String::from),
        ];
        scalar.prop_recursive(3, 12, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
                proptest::collection::vec((key(), inner), 0..4).prop_map(|kv| {
                    let kv: Vec<_> = kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{{ {} }}", kv.join(", "))
                }),
            ]
        })
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
            3 => proptest::sample::select(vec![
                "[storage]",
                "[storage.options]",
                "[storage.options.btrfs]",
                "[storage.options.overlay]",
                "[storage.options.pull_options]",
                "[[storage]]",
                "[[storage.options]]",
                "[storage.driver]",
                "[engine]",
                "[Storage]",
                "",
                "# comment",
            ])
            .prop_map(String::from),
            1 => key().prop_map(|k| format!("[{k}]")),
            1 => "\\PC{0,20}",
        ]
    }

    /// Loads `text` both ways; whatever loads is checked with and without a layout.
    fn exercise(text: &str) {
        if let Ok(storage) = storage_conf::load_text(text, "fuzz") {
            for e in storage.entries() {
                assert!(e.key_offset <= text.len() && e.value_offset <= text.len());
            }
            let _ = storage.get_str(&["storage", "driver"]);
            let _ = storage.graphroot();
            let _ = validate::check(&inputs(storage.clone(), None));
            for d in validate::check(&inputs(storage, Some(btrfs_layout()))) {
                assert!(d.line >= 1 && d.column >= 1, "{d:?}");
            }
        }
        if let Ok(containers) = containers_conf::load_text(text, "fuzz")
            && let Some((_, at)) = containers.volume_path()
        {
            assert!(at < text.len());
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn on_arbitrary_text(text in any::<String>()) {
            exercise(&text);
        }

        #[test]
        fn on_tomlish_fragments(lines in proptest::collection::vec(line(), 0..24), crlf in any::<bool>()) {
            exercise(&lines.join(if crlf { "\r\n" } else { "\n" }));
        }

        #[test]
        fn on_a_fixture_with_one_line_replaced(which in 0usize..19, at in 0usize..40, new in line()) {
            let files = fixtures();
            let text = std::fs::read_to_string(&files[which % files.len()]).unwrap();
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            let i = at % lines.len().max(1);
            if lines.is_empty() { lines.push(new) } else { lines[i] = new }
            exercise(&lines.join("\n"));
        }
    }
}
