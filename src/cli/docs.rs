//! `generate-docs ROOT`: everything generated from the code, written into a checkout at
//! ROOT: the man pages (`man/`), the shell completions (`contrib/completions/`) and the
//! rule and class tables in README.md. Tests fail when the committed copies are stale.

use crate::error::Error;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DocsArgs {
    /// The checkout to write into (holding README.md).
    #[arg(default_value = ".")]
    pub root: PathBuf,
}

/// Where the completions live in a checkout.
pub const COMPLETIONS_DIR: &str = "contrib/completions";

/// The comments that enclose one generated section of README.md.
pub struct Markers {
    pub begin: &'static str,
    pub end: &'static str,
}

/// The rule table, from the rule catalogue.
pub const RULES: Markers = Markers {
    begin: "<!-- rules: generated from src/validate/rules/ by `podman-btrfs-advise generate-docs`; do not edit -->",
    end: "<!-- rules: end -->",
};

/// The class table, from the class table in src/class.rs.
pub const CLASSES: Markers = Markers {
    begin: "<!-- classes: generated from src/class.rs by `podman-btrfs-advise generate-docs`; do not edit -->",
    end: "<!-- classes: end -->",
};

/// `readme` with the text between `markers` replaced by `table`, or what is wrong with the
/// markers.
pub fn with_section(readme: &str, markers: &Markers, table: &str) -> Result<String, String> {
    let Markers { begin: first, end: last } = markers;
    let begin = readme.find(first).ok_or_else(|| format!("no line `{first}`"))?;
    let after_begin = begin + first.len();
    let end = readme[after_begin..]
        .find(last)
        .map(|i| after_begin + i)
        .ok_or_else(|| format!("no line `{last}` after `{first}`"))?;
    Ok(format!("{}\n{table}{}", &readme[..after_begin], &readme[end..]))
}

pub fn run(args: DocsArgs) -> Result<u8, Error> {
    // The README is the one file that is not wholly generated: check it before writing anything.
    let readme = args.root.join("README.md");
    let text = std::fs::read_to_string(&readme).map_err(|e| Error::io(&readme, "read", e))?;
    let updated = with_section(&text, &RULES, &crate::validate::rules::markdown_table())
        .and_then(|t| with_section(&t, &CLASSES, &crate::class::markdown_table()))
        .map_err(|e| Error::Usage(format!("{}: {e}", readme.display())))?;

    super::man::write_tree(&args.root.join("man"), &super::man::pages())?;
    let scripts = super::completions::scripts();
    let files: Vec<(&str, &str)> = scripts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    crate::output::write_files(&args.root.join(COMPLETIONS_DIR), &files, crate::output::Overwrite::Replace)?;
    crate::output::write_files(&args.root, &[("README.md", &updated)], crate::output::Overwrite::Replace)?;
    Ok(crate::error::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_what_lies_between_the_markers() {
        let (b, e) = (RULES.begin, RULES.end);
        let readme = format!("intro\n{b}\nold\nrows\n{e}\noutro\n");
        let new = with_section(&readme, &RULES, "| a |\n").unwrap();
        assert_eq!(new, format!("intro\n{b}\n| a |\n{e}\noutro\n"));
        assert_eq!(with_section(&new, &RULES, "| a |\n").unwrap(), new, "idempotent");
    }

    #[test]
    fn missing_markers_are_named() {
        assert!(with_section("no table", &RULES, "").unwrap_err().contains("rules: generated"));
        let only_begin = format!("{}\n", CLASSES.begin);
        assert!(with_section(&only_begin, &CLASSES, "").unwrap_err().contains(CLASSES.end));
    }
}
