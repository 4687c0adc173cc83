//! Shell completions for bash, zsh and fish, generated from the clap definitions by
//! `generate-docs`, so they offer exactly the subcommands and options `--help` shows.

use clap::CommandFactory;
use clap_complete::Shell;

/// The name completions are registered for: the installed binary.
pub const BIN: &str = "podman-btrfs-advise";

/// Every script as (file name, text): the names each shell loads from its usual directory.
pub fn scripts() -> Vec<(String, String)> {
    [
        (Shell::Bash, format!("{BIN}.bash")),
        (Shell::Zsh, format!("_{BIN}")),
        (Shell::Fish, format!("{BIN}.fish")),
    ]
    .into_iter()
    .map(|(shell, file)| (file, script(shell)))
    .collect()
}

/// Stands in for [`BIN`] while generating bash completions: clap_complete's bash script
/// spells the state of a hyphenated binary two ways, so nothing past the subcommand
/// completes. A name without hyphens avoids that; only the line that
/// registers the function needs the real name.
const BASH_NAME: &str = "podman_btrfs_advise";

fn script(shell: Shell) -> String {
    let name = if shell == Shell::Bash { BASH_NAME } else { BIN };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut visible_command().name(name), name, &mut buf);
    let text = String::from_utf8(buf).expect("completion scripts are UTF-8");
    if shell != Shell::Bash {
        return text;
    }
    text.lines()
        .map(|line| match line.strip_suffix(&format!(" {BASH_NAME}")) {
            Some(head) if line.trim_start().starts_with("complete ") => format!("{head} {BIN}\n"),
            _ => format!("{line}\n"),
        })
        .collect()
}

/// The command line without its hidden subcommands (the generators), which completions
/// should not offer. Rebuilt from parts because clap cannot remove a subcommand.
fn visible_command() -> clap::Command {
    let cli = super::Cli::command();
    let mut cmd = clap::Command::new(BIN)
        .version(env!("CARGO_PKG_VERSION"))
        .args(cli.get_arguments().cloned())
        .subcommand_required(cli.is_subcommand_required_set());
    if let Some(about) = cli.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd.subcommands(cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}
