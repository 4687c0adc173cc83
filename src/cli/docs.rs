//! `generate-docs ROOT`: everything generated from the code, written into a checkout at
//! ROOT: the man pages (`man/`), the shell completions (`contrib/completions/`) and the
//! rule table in README.md. Tests fail when the committed copies are stale.

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

/// The comments that enclose the generated rule table in README.md.
pub const RULES_BEGIN: &str =
    "<!-- rules: generated from src/validate/rules/ by `podman-btrfs-advise generate-docs`; do not edit -->";
pub const RULES_END: &str = "<!-- rules: end -->";

/// `readme` with the text between the rule-table markers replaced by `table`, or what is
/// wrong with the markers.
pub fn with_rule_table(readme: &str, table: &str) -> Result<String, String> {
    let begin = readme.find(RULES_BEGIN).ok_or_else(|| format!("no line `{RULES_BEGIN}`"))?;
    let after_begin = begin + RULES_BEGIN.len();
    let end = readme[after_begin..]
        .find(RULES_END)
        .map(|i| after_begin + i)
        .ok_or_else(|| format!("no line `{RULES_END}` after `{RULES_BEGIN}`"))?;
    Ok(format!("{}\n{table}{}", &readme[..after_begin], &readme[end..]))
}

pub fn run(args: DocsArgs) -> Result<u8, Error> {
    // The README is the one file that is not wholly generated: check it before writing anything.
    let readme = args.root.join("README.md");
    let text = std::fs::read_to_string(&readme).map_err(|e| Error::io(&readme, "read", e))?;
    let updated = with_rule_table(&text, &crate::validate::rules::markdown_table())
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
        let readme = format!("intro\n{RULES_BEGIN}\nold\nrows\n{RULES_END}\noutro\n");
        let new = with_rule_table(&readme, "| a |\n").unwrap();
        assert_eq!(new, format!("intro\n{RULES_BEGIN}\n| a |\n{RULES_END}\noutro\n"));
        assert_eq!(with_rule_table(&new, "| a |\n").unwrap(), new, "idempotent");
    }

    #[test]
    fn missing_markers_are_named() {
        assert!(with_rule_table("no table", "").unwrap_err().contains("rules: generated"));
        let only_begin = format!("{RULES_BEGIN}\n");
        assert!(with_rule_table(&only_begin, "").unwrap_err().contains(RULES_END));
    }
}
