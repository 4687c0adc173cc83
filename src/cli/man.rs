//! `generate-man DIR`: roff man pages generated from the clap definitions, so the pages
//! never drift from `--help`.

use crate::error::Error;
use clap::{Args, CommandFactory};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into.
    pub dir: PathBuf,
}

/// Every page as (file name, roff text).
pub fn pages() -> Vec<(String, String)> {
    let cmd = super::Cli::command();
    let mut pages = vec![page(&cmd, "podman-btrfs-advise")];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("podman-btrfs-advise-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).version(env!("CARGO_PKG_VERSION"));
        pages.push(page(&sub, &name));
    }
    pages
}

fn page(cmd: &clap::Command, name: &str) -> (String, String) {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .date("2026-11-23")
        .render(&mut buf)
        .expect("rendering to a Vec cannot fail");
    (format!("{name}.1"), String::from_utf8_lossy(&buf).into_owned())
}

pub fn run(args: ManArgs) -> Result<u8, Error> {
    let pages = pages();
    let files: Vec<(&str, &str)> = pages.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    crate::output::write_files(&args.dir, &files, crate::output::Overwrite::Replace)?;
    Ok(crate::error::exit::OK)
}
