//! `check` on a corpus of hand-written configurations. Every offending line carries a
//! marker comment `# <- CODE` (several separated by commas); the test expects exactly
//! those (code, file, line) findings. Files named `good-*` carry none.

mod common;

use podfs::validate::{self, Inputs, containers_conf, disko, storage_conf};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/check/disko");

/// (code, file name, line) of findings.
type Findings = BTreeSet<(String, String, usize)>;

/// (code, file name, line) for every marker in a file.
fn markers(path: &Path) -> Findings {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        if let Some((_, codes)) = line.split_once("# <- ") {
            for code in codes.split(',') {
                out.insert((code.trim().to_string(), name.clone(), i + 1));
            }
        }
    }
    out
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nix"))
        .collect();
    v.sort();
    v
}

fn sibling(nix: &Path, suffix: &str) -> Option<PathBuf> {
    let p = nix.with_extension(suffix);
    p.exists().then_some(p)
}

fn run_case(nix: &Path, mode: disko::NixMode) -> (Findings, Findings) {
    let storage = sibling(nix, "storage.conf");
    let containers = sibling(nix, "containers.conf");
    let mut expected = markers(nix);
    for p in storage.iter().chain(containers.iter()) {
        expected.extend(markers(p));
    }
    let inputs = Inputs {
        disko: Some(disko::load(nix, mode).unwrap_or_else(|e| panic!("{}: {e}", nix.display()))),
        storage: storage.as_deref().map(|p| storage_conf::load(p).unwrap()),
        containers: containers.as_deref().map(|p| containers_conf::load(p).unwrap()),
        live: None,
    };
    let found = validate::check(&inputs)
        .into_iter()
        .map(|d| {
            let file = Path::new(d.file.as_deref().unwrap_or(""))
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (d.code.to_string(), file, d.line)
        })
        .collect();
    (expected, found)
}

#[test]
fn every_case_raises_exactly_its_rules_at_the_marked_lines() {
    if !common::can_run("check corpus", &["nix-instantiate"], false) {
        return;
    }
    let cases = cases();
    let bad = cases.iter().filter(|c| !c.file_name().unwrap().to_string_lossy().starts_with("good-")).count();
    assert!(bad >= 18 && cases.len() - bad >= 5, "{bad} bad and {} good cases", cases.len() - bad);
    let mut failures = Vec::new();
    for nix in &cases {
        let (expected, found) = run_case(nix, disko::NixMode::Evaluate);
        if expected != found {
            failures.push(format!("{}:\n  expected {expected:?}\n  found    {found:?}", nix.display()));
        }
        let good = nix.file_name().unwrap().to_string_lossy().starts_with("good-");
        assert_eq!(
            good,
            expected.is_empty(),
            "{}: good-* files and only they have no markers",
            nix.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn literal_cases_read_statically_give_the_same_findings() {
    // Without Nix, literal files are read from the syntax tree alone.
    for nix in cases() {
        let text = std::fs::read_to_string(&nix).unwrap();
        if text.contains("lib") || text.contains("let") || text.contains("++") {
            continue;
        }
        let (expected, found) = run_case(&nix, disko::NixMode::Static);
        assert_eq!(expected, found, "{}", nix.display());
    }
}

#[test]
fn every_generated_plan_passes_check_without_errors_or_warnings() {
    use podfs::decide::{Strategy, decide};
    use podfs::inventory::examples::{self, EXAMPLES};
    for e in EXAMPLES {
        for s in Strategy::ALL {
            let plan = decide(&podfs::classify::classify(&examples::load(e.name).unwrap()), s);
            let files = podfs::render::render_all(&plan, "test");
            let text = |name: &str| files.iter().find(|f| f.name == name).unwrap().contents.clone();
            for mode in [disko::NixMode::Auto, disko::NixMode::Static] {
                let disko = disko::load_text(&text("disko.nix"), "disko.nix", mode).unwrap();
                assert_eq!(disko.layout.subvolumes().count(), plan.layout.subvolumes().count());
                let inputs = Inputs {
                    disko: Some(disko),
                    storage: Some(storage_conf::load_text(&text("storage.conf"), "storage.conf").unwrap()),
                    containers: None,
                    live: None,
                };
                let found = validate::check(&inputs);
                assert!(found.is_empty(), "{} / {s}: {found:#?}", e.name);
            }
        }
    }
}
