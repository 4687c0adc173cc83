//! Roff man pages generated from the code (by `generate-docs`), so the pages never drift
//! from `--help` and the spec parser: section 1 from the clap definitions, section 5 from
//! [`crate::inventory::spec_page`]. Laid out as `DIR/man1/*.1` and `DIR/man5/*.5`, so
//! `MANPATH=DIR man podman-btrfs-advise-serve` finds them.

use crate::error::Error;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// The date every page carries; a fixed one keeps the committed pages reproducible.
const DATE: &str = "2026-11-23";

/// Every page as (path relative to the man directory, roff text).
pub fn pages() -> Vec<(String, String)> {
    // The `help` subcommand still works; it only has no page of its own to point at.
    let cmd = super::Cli::command().disable_help_subcommand(true);
    let mut pages = vec![section1(&cmd, "podman-btrfs-advise")];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("podman-btrfs-advise-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).version(env!("CARGO_PKG_VERSION"));
        pages.push(section1(&sub, &name));
    }
    let spec = crate::inventory::spec_page::render(DATE, env!("CARGO_PKG_VERSION"));
    pages.push((format!("man5/{}.5", crate::inventory::spec_page::NAME), spec));
    pages
}

fn section1(cmd: &clap::Command, name: &str) -> (String, String) {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).date(DATE).render(&mut buf).expect("rendering to a Vec cannot fail");
    (format!("man1/{name}.1"), String::from_utf8_lossy(&buf).into_owned())
}

/// Writes `files` (paths relative to `dir`, one directory level deep at most) below `dir`.
pub fn write_tree(dir: &Path, files: &[(String, String)]) -> Result<(), Error> {
    let mut by_dir: std::collections::BTreeMap<PathBuf, Vec<(&str, &str)>> = Default::default();
    for (path, text) in files {
        let (sub, name) = path.rsplit_once('/').unwrap_or(("", path));
        by_dir.entry(dir.join(sub)).or_default().push((name, text));
    }
    for (dir, files) in by_dir {
        crate::output::write_files(&dir, &files, crate::output::Overwrite::Replace)?;
    }
    Ok(())
}
