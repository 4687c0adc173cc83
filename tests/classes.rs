//! The class table reaches everything that speaks of classes: a plan places every class as
//! its entry says, and no document lists other classes than the table.
//! `podman-btrfs-advise generate-docs` writes the README's class table from `src/class.rs`.

mod common;

use clap::CommandFactory;
use common::{TempDir, bin, ok};
use podfs::class::{Class, Lifecycle};
use std::fs;
use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_readme_class_table_is_generated_from_the_table() {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let current =
        podfs::cli::docs::with_section(&readme, &podfs::cli::docs::CLASSES, &podfs::class::markdown_table())
            .expect("README.md has the class table's markers");
    assert!(
        readme == current,
        "README.md's class table differs from src/class.rs; run `podman-btrfs-advise generate-docs`"
    );
}

/// Turns roff and Markdown markup into plain words.
fn plain(text: &str) -> String {
    let mut s = text.replace("\\-", "-").replace("\\(bu", " ");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        s = s.replace(font, "");
    }
    s.replace(['`', '*', '\\'], "")
}

/// Every run of three or more class names in `text` ("database, cache and vm",
/// "class=database|cache|…") that is not the whole table in table order. A list of some
/// classes goes stale when a class is added; a list of all of them is checked here.
fn stale_class_lists(text: &str) -> Vec<String> {
    let names: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
    let mut found = Vec::new();
    let mut flush = |run: &mut Vec<&str>| {
        let lower: Vec<String> = run.iter().map(|w| w.to_lowercase()).collect();
        let known = lower.iter().filter(|w| names.contains(&w.as_str())).count();
        if known >= 3 && lower != names {
            found.push(run.join(", "));
        }
        run.clear();
    };
    let text = plain(text);
    let (mut rest, mut run, mut glue) = (text.as_str(), Vec::new(), String::new());
    // A list is joined by one kind of separator: `|`, `/`, or commas with `and`/`or`.
    let mut kind = "";
    while let Some(first) = rest.chars().next() {
        let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
        if len == 0 {
            if !first.is_whitespace() {
                glue.push(first);
            }
            rest = &rest[first.len_utf8()..];
            continue;
        }
        let word = &rest[..len];
        rest = &rest[len..];
        if word == "and" || word == "or" {
            glue.push_str(word);
            continue;
        }
        let joined_by = match glue.as_str() {
            "|" => "|",
            "/" => "/",
            "," | "and" | ",and" | "or" | ",or" => ",",
            _ => "",
        };
        if joined_by.is_empty() || (run.len() > 1 && joined_by != kind) {
            flush(&mut run);
        }
        kind = joined_by;
        run.push(word);
        glue.clear();
    }
    flush(&mut run);
    found
}

#[test]
fn the_list_check_finds_partial_lists_and_accepts_the_whole_table() {
    let all = Class::ALL.map(Class::as_str);
    assert!(stale_class_lists(&format!("class={}, size", all.join("|"))).is_empty());
    assert!(stale_class_lists(&format!("known classes: {}.", all.join(", "))).is_empty());
    assert_eq!(stale_class_lists("NOCOW for `database`, `cache` and `vm`;"), vec!["database, cache, vm"]);
    assert_eq!(stale_class_lists("empty database, cache and VM subvolumes"), vec!["database, cache, VM"]);
    assert_eq!(stale_class_lists("\\fBdatabase\\fR|cache|vm|media"), vec!["database, cache, vm, media"]);
    let mut extra = all.to_vec();
    extra.insert(3, "scratch");
    assert_eq!(stale_class_lists(&extra.join("|")).len(), 1, "a class the table does not have");
    assert!(stale_class_lists("logs and media; a cache or a database").is_empty());
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_below(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The README, every Markdown file under docs/ and contrib/, every man page.
fn documents() -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_below(&repo().join("man"), &mut files);
    let mut markdown = Vec::new();
    files_below(&repo().join("docs"), &mut markdown);
    files_below(&repo().join("contrib"), &mut markdown);
    files.extend(markdown.into_iter().filter(|p| p.extension().is_some_and(|e| e == "md")));
    files.push(repo().join("README.md"));
    files
}

#[test]
fn no_document_or_help_text_lists_other_classes_than_the_table() {
    let mut stale = Vec::new();
    let docs = documents();
    assert!(docs.len() >= 3, "found the README and the man pages: {docs:?}");
    for path in docs {
        let text = fs::read_to_string(&path).unwrap();
        for list in stale_class_lists(&text) {
            stale.push(format!("{}: {list}", path.strip_prefix(repo()).unwrap().display()));
        }
    }
    let mut cli = podfs::cli::Cli::command();
    cli.build();
    let mut commands = vec![cli.clone()];
    commands.extend(cli.get_subcommands().cloned());
    for mut command in commands {
        let help = command.render_long_help().to_string();
        for list in stale_class_lists(&help) {
            stale.push(format!("`{} --help`: {list}", command.get_name()));
        }
    }
    assert!(
        stale.is_empty(),
        "these list some classes, or classes the table does not have; list all of {} or refer to \
         the class table:\n{}",
        Class::ALL.map(Class::as_str).join(", "),
        stale.join("\n")
    );
}

/// The names the spec page describes under CLASSES, in order (Markdown `**name**` or roff
/// `\fBname\fR`, `\fBname\fP`, `.B name`).
fn spec_page_classes(text: &str) -> Vec<String> {
    let is_heading = |l: &str| l.starts_with("## ") || l.starts_with(".SH");
    let mut lines = text.lines().skip_while(|l| !(is_heading(l) && l.contains("CLASSES"))).skip(1);
    let section: Vec<&str> = lines.by_ref().take_while(|l| !is_heading(l)).collect();
    let mut names = Vec::new();
    for line in section {
        let line = line.trim();
        let term = line
            .strip_prefix("**")
            .and_then(|r| r.strip_suffix("**"))
            .or_else(|| {
                line.strip_prefix("\\fB").and_then(|r| r.strip_suffix("\\fR").or(r.strip_suffix("\\fP")))
            })
            .or_else(|| line.strip_prefix(".B "));
        if let Some(t) = term.filter(|t| t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())) {
            names.push(t.to_string());
        }
    }
    names
}

#[test]
fn the_spec_page_reader_reads_markdown_and_roff() {
    let md =
        "## CLASSES\nintro\n\n**database**\n  what\n\nWith **--strategy reliability**\n## ERRORS\n**vm**\n";
    assert_eq!(spec_page_classes(md), ["database"]);
    let roff = ".SH CLASSES\n.TP\n\\fBdatabase\\fR\nwhat\n.TP\n\\fBcache\\fP\n.B media\n.SH ERRORS\n.B vm\n";
    assert_eq!(spec_page_classes(roff), ["database", "cache", "media"]);
}

#[test]
fn the_spec_page_describes_every_class_of_the_table() {
    let mut files = Vec::new();
    files_below(&repo().join("man"), &mut files);
    let pages: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("podman-btrfs-advise-spec.5"))
        })
        .collect();
    assert!(!pages.is_empty(), "no spec page under man/");
    let want: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
    for page in pages {
        let found = spec_page_classes(&fs::read_to_string(&page).unwrap());
        assert_eq!(found, want, "{}: CLASSES describes other classes than src/class.rs", page.display());
    }
}

#[test]
fn serve_help_shows_every_class_with_its_attributes() {
    let help = ok(bin().args(["serve", "--help"]));
    for class in Class::ALL {
        let c = class.info();
        let row = help.lines().find(|l| l.split_whitespace().next() == Some(c.name));
        let row = row.unwrap_or_else(|| panic!("no row for {} in serve --help:\n{help}", c.name));
        assert!(row.contains(&c.attributes()) && row.contains(c.summary), "{row}");
    }
    assert!(help.contains(&format!("class={},", Class::ALL.map(Class::as_str).join("|"))), "{help}");
    assert!(help.contains(&format!("without it a volume is {}", Class::FALLBACK)), "{help}");
}

/// A workload whose only evidence points at `class` through the heuristics when it has any.
fn workload_for(class: Class) -> (String, String) {
    let c = class.info();
    let name = format!("w-{}", c.name);
    let mut toml = format!("[[workload]]\nname = \"{name}\"\nimage_size = \"10M\"\nvolume_size = \"1G\"\n");
    let image = match (c.images.first(), c.mounts.first(), c.lifecycle, c.fallback) {
        (Some(program), ..) => format!("registry.example/org/{program}:1"),
        (None, Some((path, _)), ..) => {
            toml.push_str(&format!("mounts = [\"{path}/data\"]\n"));
            "registry.example/acme/app:1".into()
        }
        (None, None, Some(Lifecycle::ShortLived), _) => {
            toml.push_str("lifetime = \"short\"\n");
            "registry.example/acme/app:1".into()
        }
        (None, None, _, true) => "registry.example/acme/app:1".into(),
        // Only a label or a declaration names it.
        _ => {
            toml.push_str(&format!("class = \"{}\"\n", c.name));
            "registry.example/acme/app:1".into()
        }
    };
    toml.push_str(&format!("image = \"{image}\"\n"));
    (name, toml)
}

#[test]
fn a_plan_classifies_and_places_every_class_as_its_entry_says() {
    let dir = TempDir::new("classes-plan");
    let mut spec = String::from(
        "version = 1\n\n[host]\nname = \"classes\"\ndisk = \"/dev/vdb\"\ndisk_size = \"1T\"\nmode = \"data-disk\"\n\n",
    );
    for class in Class::ALL {
        spec.push_str(&workload_for(class).1);
        spec.push('\n');
    }
    let spec_path = dir.path().join("classes.toml");
    fs::write(&spec_path, spec).unwrap();
    let out = dir.path().join("plan");
    ok(bin().args(["plan", "--spec"]).arg(&spec_path).arg("--out").arg(&out));
    let plan_md = fs::read_to_string(out.join("PLAN.md")).unwrap();
    let row = |first: &str| -> String {
        plan_md
            .lines()
            .find(|l| l.starts_with(&format!("| {first} |")))
            .unwrap_or_else(|| panic!("no row `{first}` in PLAN.md:\n{plan_md}"))
            .to_string()
    };
    for class in Class::ALL {
        let c = class.info();
        let (name, _) = workload_for(class);
        let workload = row(&name);
        assert!(workload.contains(&format!("| **{}** |", c.name)), "{workload}");
        if let Some(program) = c.images.first() {
            assert!(
                workload.contains(&format!("**image:** image `{program}` is a known {class} image")),
                "{workload}"
            );
        }
        let placement = plan_md
            .lines()
            .find(|l| l.starts_with(&format!("| {name} | {} |", c.name)))
            .unwrap_or_else(|| panic!("{name} has no placement:\n{plan_md}"))
            .to_string();
        if c.own_subvolume {
            let subvolume = format!("`@podfs-{}`", c.name);
            assert!(placement.contains(&subvolume), "{placement}");
            let sv = row(&subvolume);
            let compression =
                if c.nocow { "off (NOCOW)".to_string() } else { format!("property `{}`", c.compression) };
            let nocow = if c.nocow { "yes" } else { "no" };
            assert_eq!(
                sv,
                format!(
                    "| {subvolume} | `/var/lib/containers/podfs/{}` | {nocow} | {compression} | {} data |",
                    c.name, c.name
                )
            );
            assert!(plan_md.contains(&format!("\n### {} data\n", c.name)), "no decision for {class}");
            if let Some(loss) = c.on_loss.filter(|_| c.nocow) {
                assert!(plan_md.contains(&format!("- {loss}\n")), "{class}: `{loss}` is missing");
            }
        } else {
            assert!(placement.contains("`@containers-volumes`"), "{placement}");
            assert!(
                !plan_md.contains(&format!("`@podfs-{}`", c.name)),
                "{class} has no subvolume of its own"
            );
        }
    }
    assert!(
        plan_md.contains(&podfs::class::nocow_data()),
        "the NOCOW reason names the NOCOW classes' data:\n{plan_md}"
    );
}
