//! P207 `runroot-not-run`.

use super::declare_rule;
use crate::layout::path_is_under;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

/// Directories that are tmpfs on every systemd host: `/run`, its old name `/var/run`,
/// and the rootless user's runtime directory, which lives below `/run/user`.
const VOLATILE: [&str; 4] = ["/run", "/var/run", "$XDG_RUNTIME_DIR", "${XDG_RUNTIME_DIR}"];

declare_rule! {
    /// ## What it checks
    ///
    /// A `runroot` in `[storage]` that is not below `/run`, so not on tmpfs. Below
    /// `/var/run` (the old name of `/run`) or `$XDG_RUNTIME_DIR` (for rootless users) is
    /// fine too, and so is leaving `runroot` unset: the default is
    /// `/run/containers/storage`.
    ///
    /// ## Why it matters
    ///
    /// The runroot holds containers/storage's run-time state: lock files, the list of
    /// mounted layers and their mount counts. It has to be on tmpfs so that it is empty
    /// after a reboot. On a persistent disk the state of the previous boot survives: stale
    /// locks, and mount counts for mounts that no longer exist, so Podman can believe
    /// layers are still in use (containers that will not start, layers that cannot be
    /// removed) until someone cleans up by hand.
    ///
    /// ## Example
    ///
    /// ```toml
    /// [storage]
    /// driver = "overlay"
    /// graphroot = "/var/lib/containers/storage"
    /// runroot = "/var/lib/containers/run"
    /// ```
    ///
    /// ## Fix
    ///
    /// Put the runroot on `/run`, or delete the line to get the default:
    ///
    /// ```toml
    /// [storage]
    /// driver = "overlay"
    /// graphroot = "/var/lib/containers/storage"
    /// runroot = "/run/containers/storage"
    /// ```
    pub static RULE = {
        code: "P207",
        name: "runroot-not-run",
        severity: Severity::Warning,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(file) = &inputs.storage else { return Vec::new() };
    let Some((runroot, at)) = file.get_str(&["storage", "runroot"]) else { return Vec::new() };
    if runroot.is_empty() || VOLATILE.iter().any(|dir| path_is_under(&runroot, dir)) {
        return Vec::new();
    }
    let message = format!(
        "runroot {} is not below /run: it is not emptied at boot, so stale locks and mount state \
         survive reboots",
        runroot.escape_debug()
    );
    let help = "use runroot = \"/run/containers/storage\" (the default), or remove `runroot`";
    vec![Diagnostic::at(RULE.code, RULE.severity, &file.source, Some(at), message).with_help(help)]
}

#[cfg(test)]
mod tests {
    fn lines(text: &str) -> Vec<(usize, usize)> {
        crate::validate::rules::storage_places(&super::RULE, text)
    }

    #[test]
    fn runroot_must_be_below_run() {
        for ok in
            ["/run/containers/storage", "/var/run/containers", "/run", "$XDG_RUNTIME_DIR/containers", ""]
        {
            assert!(lines(&format!("[storage]\nrunroot = \"{ok}\"\n")).is_empty(), "{ok}");
        }
        assert!(lines("[storage]\n").is_empty());
        for bad in ["/var/lib/containers/run", "/runner/x", "/tmp/run", "run/containers", "$HOME/run"] {
            assert_eq!(lines(&format!("[storage]\nrunroot = \"{bad}\"\n")), [(2, 11)], "{bad}");
        }
    }
}
