//! What is generated from the code and committed: man pages, shell completions and the
//! README's rule table. Each must equal what the code generates now, and must work where
//! it is installed: pages render with man(1), the bash completion loads and completes.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Every file below `dir`, by path relative to it, with its text.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                files.insert(rel, fs::read_to_string(&path).unwrap());
            }
        }
    }
    files
}

/// Asserts that `committed` holds exactly the files of `fresh`, each with the same text.
fn assert_same_tree(fresh: &Path, committed: &Path, what: &str) {
    let (fresh, committed) = (tree(fresh), tree(committed));
    let names = |t: &BTreeMap<String, String>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&committed), names(&fresh), "{what}: files differ; run `cargo run -- generate-docs`");
    for (name, text) in &fresh {
        assert!(committed[name] == *text, "{what}/{name} is stale: run `cargo run -- generate-docs`");
    }
}

/// `generate-docs` into a copy of the checkout writes exactly what is committed: man
/// pages, completions and README.md's rule and class tables.
#[test]
fn generated_docs_are_up_to_date() {
    let root = TempDir::new("docs");
    fs::copy(Path::new(REPO).join("README.md"), root.path().join("README.md")).unwrap();
    let out = run(bin().arg("generate-docs").arg(root.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    let completions = "contrib/completions";
    assert_same_tree(&root.path().join(completions), &Path::new(REPO).join(completions), completions);
    assert_same_tree(&root.path().join("man"), &Path::new(REPO).join("man"), "man");
    let pages = tree(&root.path().join("man"));
    assert!(pages.contains_key("man1/podman-btrfs-advise.1"), "{:?}", pages.keys());
    assert!(pages.contains_key("man1/podman-btrfs-advise-serve.1"));
    assert!(pages.contains_key("man5/podman-btrfs-advise-spec.5"));
    let readme = fs::read_to_string(root.path().join("README.md")).unwrap();
    assert!(
        readme == fs::read_to_string(Path::new(REPO).join("README.md")).unwrap(),
        "README.md's rule or class table is stale: run `cargo run -- generate-docs`"
    );
}

#[test]
fn readme_rule_table_lists_what_explain_list_prints() {
    let out = run(bin().args(["explain", "--list", "--format", "json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let readme = fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let begin = readme.find(podfs::cli::docs::RULES.begin).expect("begin marker");
    let end = readme.find(podfs::cli::docs::RULES.end).expect("end marker");
    let rows: Vec<&str> = readme[begin..end].lines().filter(|l| l.starts_with("| P")).collect();
    let rules = list["rules"].as_array().unwrap();
    assert_eq!(rows.len(), rules.len(), "one row per rule: {rows:#?}");
    for (row, rule) in rows.iter().zip(rules) {
        let s = |k: &str| rule[k].as_str().unwrap().to_string();
        let expected = format!(
            "| {} | {} | `{}` | {} |",
            s("code"),
            s("severity"),
            s("name"),
            s("summary").replace('|', "\\|")
        );
        assert_eq!(*row, expected);
    }
}

#[test]
fn generate_docs_without_the_rule_table_markers_writes_nothing() {
    let root = TempDir::new("docs-bad");
    fs::write(root.path().join("README.md"), "# no table here\n").unwrap();
    let out = run(bin().arg("generate-docs").arg(root.path()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("README.md: no line `<!-- rules: generated"), "{}", stderr(&out));
    assert!(!root.path().join("man").exists() && !root.path().join("contrib").exists());
    assert_eq!(fs::read_to_string(root.path().join("README.md")).unwrap(), "# no table here\n");
}

/// Runs the committed bash completion in a fresh `bash` with `words` typed, the cursor on
/// the last one, and returns what it offers.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let script = Path::new(REPO).join("contrib/completions/podman-btrfs-advise.bash");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let (cur, prev) = (words[cword], words[cword - 1]);
    let program = format!(
        "source \"$1\" || exit 9
         spec=$(complete -p podman-btrfs-advise) || exit 8
         fn=${{spec#*-F }}; fn=${{fn%% *}}
         COMP_WORDS=({}); COMP_CWORD={cword}
         \"$fn\" podman-btrfs-advise '{cur}' '{prev}'
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        quoted.join(" ")
    );
    let out =
        Command::new("bash").arg("--norc").arg("-c").arg(&program).arg("bash").arg(&script).output().unwrap();
    assert!(out.status.success(), "bash exited {:?}: {}", out.status.code(), stderr(&out));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

#[test]
fn bash_completion_loads_and_completes_subcommands_options_and_values() {
    if !can_run("bash_completion_loads_and_completes_subcommands_options_and_values", &["bash"], false) {
        return;
    }
    let script = Path::new(REPO).join("contrib/completions/podman-btrfs-advise.bash");
    let out = Command::new("bash")
        .args(["--norc", "-c", "source \"$1\" && complete -p podman-btrfs-advise", "bash"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).trim_end().ends_with(" podman-btrfs-advise"));

    let top = bash_complete(&["podman-btrfs-advise", "s"]);
    assert_eq!(top, ["scan", "storage-conf", "serve", "snapshot"], "hidden generators are not offered");
    // Past the subcommand, where clap_complete's own script for a hyphenated name fails.
    assert_eq!(bash_complete(&["podman-btrfs-advise", "plan", "--str"]), ["--strategy"]);
    assert_eq!(
        bash_complete(&["podman-btrfs-advise", "plan", "--strategy", ""]),
        ["balanced", "performance", "reliability"]
    );
    let conf = bash_complete(&["podman-btrfs-advise", "storage-conf", ""]);
    for sub in ["show", "diff", "apply"] {
        assert!(conf.iter().any(|c| c == sub), "{sub} not offered: {conf:?}");
    }
}

#[test]
fn man_pages_render_with_man_and_keep_no_markup() {
    if !can_run("man_pages_render_with_man_and_keep_no_markup", &["man"], false) {
        return;
    }
    let man = Path::new(REPO).join("man");
    for (name, _) in tree(&man) {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(man.join(&name))
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "")
            .env_remove("MANPAGER")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        assert!(out.status.success(), "man -l {name}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "groff warnings for {name}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("NAME"), "{name} has no NAME section:\n{text}");
        for raw in ["**", "## ", "\n% ", "\\f", ".TP", ".SH"] {
            assert!(!text.contains(raw), "{name} shows raw {raw:?}:\n{text}");
        }
    }
    // Found by name through MANPATH, as the README says, in both sections.
    for page in ["podman-btrfs-advise-serve", "podman-btrfs-advise-spec"] {
        let out = Command::new("man").args(["-w", page]).env("MANPATH", &man).output().unwrap();
        assert!(out.status.success(), "man -w {page}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).trim().starts_with(man.to_str().unwrap()));
    }
    let top = fs::read_to_string(man.join("man1/podman-btrfs-advise.1")).unwrap();
    assert!(!top.contains("advise\\-help"), "the top page lists no help page");
}

const ARCHITECTURE: &str = "docs/ARCHITECTURE.md";

/// The `## ` headings of docs/ARCHITECTURE.md.
fn architecture_sections() -> Vec<String> {
    let text = fs::read_to_string(Path::new(REPO).join(ARCHITECTURE)).unwrap();
    text.lines().filter_map(|l| l.strip_prefix("## ")).map(String::from).collect()
}

/// Every `.rs` file below `src/`, by path relative to the repository, with its text.
fn sources() -> BTreeMap<String, String> {
    tree(&Path::new(REPO).join("src"))
        .into_iter()
        .filter(|(name, _)| name.ends_with(".rs"))
        .map(|(name, text)| (format!("src/{name}"), text))
        .collect()
}

#[test]
fn code_comments_point_only_at_sections_of_the_architecture_document() {
    let sections = architecture_sections();
    let pointer = format!("{ARCHITECTURE}, \"");
    let mut pointers = 0;
    for (file, text) in sources() {
        assert!(!text.contains("DESIGN"), "{file} cites a document that is not in the repository");
        for (at, _) in text.match_indices(&pointer) {
            let rest = &text[at + pointer.len()..];
            let section = &rest[..rest.find('"').unwrap()];
            assert!(
                sections.iter().any(|s| s == section),
                "{file}: no section \"{section}\" in {ARCHITECTURE}"
            );
            pointers += 1;
        }
    }
    assert!(pointers >= 5, "expected the code to point at the architecture document");
}

/// The top-level module a source file belongs to (`src/decide/layout.rs` → `decide`).
fn module_of(file: &str) -> &str {
    let rel = file.strip_prefix("src/").unwrap();
    rel.split('/').next().unwrap().trim_end_matches(".rs")
}

#[test]
fn modules_use_only_what_the_architecture_document_allows() {
    let text = fs::read_to_string(Path::new(REPO).join(ARCHITECTURE)).unwrap();
    let modules = &text[text.find("## Modules").expect("a Modules section")..];
    let mut allowed: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    for row in modules.lines().skip(1).take_while(|l| !l.starts_with("## ")).filter(|l| l.starts_with("| `"))
    {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let module = cells[0].trim_matches('`').to_string();
        let uses = cells[cells.len() - 1];
        let list = (uses != "everything").then(|| {
            uses.split(',')
                .map(|u| u.trim().trim_matches('`').to_string())
                .filter(|u| !u.is_empty())
                .collect()
        });
        allowed.insert(module, list);
    }
    assert!(allowed.len() >= 15, "the table lists the modules: {:?}", allowed.keys());
    for (file, text) in sources() {
        let module = module_of(&file);
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(list) = allowed.get(module) else {
            panic!("module `{module}` ({file}) is missing from the table in {ARCHITECTURE}");
        };
        let Some(list) = list else { continue };
        for (at, _) in text.match_indices("crate::") {
            let used: String =
                text[at + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            assert!(
                used.is_empty() || used == module || list.contains(&used),
                "{file} uses `crate::{used}`, which {ARCHITECTURE} does not allow `{module}` to use"
            );
        }
    }
}
