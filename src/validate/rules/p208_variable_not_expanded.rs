//! P208 `variable-not-expanded`.

use super::declare_rule;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};
use crate::validate::storage_conf::{EntryKind, tables_defining};

declare_rule! {
    /// ## What it checks
    ///
    /// `$HOME`, `$UID` or `$USER` (or `~/`) in a storage.conf setting other than `runroot`,
    /// `graphroot` and `rootless_storage_path`, the only keys containers/storage expands
    /// them in: `imagestore = "$HOME/images"` names a directory literally called `$HOME`.
    ///
    /// ## Why it matters
    ///
    /// The value is used as written: Podman creates (or fails to find) a relative
    /// directory named `$HOME/…` in whatever the current directory is, instead of the
    /// path the line seems to say.
    ///
    /// ## Example
    ///
    /// ```toml
    /// [storage]
    /// imagestore = "$HOME/.local/share/containers/images"
    /// ```
    ///
    /// ## Fix
    ///
    /// Write the absolute path, or keep per-user paths in `graphroot` /
    /// `rootless_storage_path`, where the variables are expanded.
    pub static RULE = {
        code: "P208",
        name: "variable-not-expanded",
        severity: Severity::Error,
        check: check,
    };
}

/// Keys whose values containers/storage expands `$HOME`, `$UID` and `$USER` in.
const EXPANDED: &[&str] = &["runroot", "graphroot", "rootless_storage_path"];

/// The variable (or `~`) a value uses, if any.
fn variable_in(value: &str) -> Option<&'static str> {
    if value.starts_with("~/") || value == "~" {
        return Some("~");
    }
    ["HOME", "UID", "USER"]
        .into_iter()
        .find(|v| value.contains(&format!("${v}")) || value.contains(&format!("${{{v}}}")))
        .map(|v| match v {
            "HOME" => "$HOME",
            "UID" => "$UID",
            _ => "$USER",
        })
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(file) = &inputs.storage else { return Vec::new() };
    let mut out = Vec::new();
    for entry in file.entries().into_iter().filter(|e| e.kind == EntryKind::Value) {
        let key = entry.path.last().map_or("", String::as_str);
        // Keys containers/storage does not know are P201's: their values are never used.
        if EXPANDED.iter().any(|k| k.eq_ignore_ascii_case(key))
            || tables_defining(&key.to_lowercase()).is_empty()
        {
            continue;
        }
        let path: Vec<&str> = entry.path.iter().map(String::as_str).collect();
        let Some(item) = file.get(&path) else { continue };
        let values: Vec<&str> = match item.as_array() {
            Some(a) => a.iter().filter_map(|v| v.as_str()).collect(),
            None => item.as_str().into_iter().collect(),
        };
        for value in values {
            let Some(var) = variable_in(value) else { continue };
            out.push(
                Diagnostic::at(
                    RULE.code,
                    RULE.severity,
                    &file.source,
                    Some(entry.value_offset),
                    format!(
                        "`{key}` is used as written: containers/storage does not expand {var} here (only in \
                         runroot, graphroot and rootless_storage_path), so {} names a directory literally",
                        value.escape_debug()
                    ),
                )
                .with_help("write the absolute path"),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    fn lines(text: &str) -> Vec<(usize, usize)> {
        crate::validate::rules::storage_places(&super::RULE, text)
    }

    #[test]
    fn only_the_three_expanded_keys_may_use_variables() {
        let ok = "[storage]\ngraphroot = \"$HOME/s\"\nrunroot = \"/run/user/$UID/c\"\nrootless_storage_path = \"${HOME}/x\"\nimagestore = \"/srv/images\"\n";
        assert!(lines(ok).is_empty());
        assert_eq!(lines("[storage]\nimagestore = \"$HOME/images\"\n"), [(2, 14)]);
        assert_eq!(lines("[storage.options]\nadditionalimagestores = [ \"/a\", \"~/b\" ]\n"), [(2, 25)]);
        assert_eq!(lines("[storage]\nimagestore = \"/home/${USER}/i\"\n"), [(2, 14)]);
    }
}
