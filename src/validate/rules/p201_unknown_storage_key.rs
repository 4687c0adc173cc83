//! P201 `unknown-storage-key`.

use super::declare_rule;
use crate::suggest::did_you_mean;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};
use crate::validate::storage_conf::{
    Entry, EntryKind, TableSchema, table_header, table_schema, tables_defining,
};

declare_rule! {
    /// ## What it checks
    ///
    /// A key or table in storage.conf that containers-storage.conf(5) does not define at
    /// that place. Every setting lives in the `[storage]` table or one of its sub-tables
    /// (`[storage.options]`, `[storage.options.overlay]`, `[storage.options.btrfs]`,
    /// `[storage.options.zfs]`, `[storage.options.vfs]`, `[storage.options.thinpool]`,
    /// `[storage.options.aufs]`); `[storage.options.pull_options]` takes any key. Keys are
    /// compared the way containers/storage compares them: exactly, or else ignoring ASCII
    /// case.
    ///
    /// ## Why it matters
    ///
    /// containers/storage ignores what it does not know: at most it logs "Failed to
    /// decode the keys" and carries on with its defaults. A misspelt key (`drivr`), a
    /// key in the wrong table (`size` in `[storage]`, or `driver` above the `[storage]`
    /// header) or a misspelt table (`[storage.option]`) silently does nothing, and the
    /// host runs with a configuration nobody wrote. Several `[storage.options]` keys are
    /// spelt with dashes (`remap-uids`, `auto-userns-max-size`, `disable-volatile`); the
    /// same names with underscores are not read at all.
    ///
    /// ## Example
    ///
    /// ```toml
    /// driver = "overlay"            # above [storage]: not read
    ///
    /// [storage]
    /// graphroot = "/var/lib/containers/storage"
    /// size = "20G"                  # belongs in [storage.options]
    ///
    /// [storage.option]              # misspelt table
    /// remap_uids = "0:100000:65536"
    /// ```
    ///
    /// ## Fix
    ///
    /// Use the spelling and table the man page gives, e.g.:
    ///
    /// ```toml
    /// [storage]
    /// driver = "overlay"
    /// graphroot = "/var/lib/containers/storage"
    ///
    /// [storage.options]
    /// size = "20G"
    /// remap-uids = "0:100000:65536"
    /// ```
    ///
    /// or delete the line if the setting is not needed.
    pub static RULE = {
        code: "P201",
        name: "unknown-storage-key",
        severity: Severity::Error,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(file) = &inputs.storage else { return Vec::new() };
    file.entries()
        .into_iter()
        .filter_map(|entry| {
            let (parent, known) = known_parent(&entry)?;
            let key = entry.path.last()?;
            if canonical(known, key).is_some() {
                return None;
            }
            let (message, help) = describe(&parent, known, key, &entry);
            Some(
                Diagnostic::at(RULE.code, RULE.severity, &file.source, Some(entry.key_offset), message)
                    .with_help(help),
            )
        })
        .collect()
}

/// The canonical path of the entry's table and the keys defined there, when every
/// table on the way is one containers-storage.conf(5) defines with a fixed set of keys.
/// Entries below an unknown table are reported once, at that table.
fn known_parent(entry: &Entry) -> Option<(Vec<&'static str>, &'static [&'static str])> {
    let (_, parents) = entry.path.split_last()?;
    let mut canon: Vec<&'static str> = Vec::new();
    for segment in parents {
        let Some(TableSchema::Keys(keys)) = table_schema(&canon) else { return None };
        canon.push(canonical(keys, segment)?);
    }
    match table_schema(&canon)? {
        TableSchema::Keys(keys) => Some((canon, keys)),
        TableSchema::FreeForm => None,
    }
}

/// The defined key `key` stands for: the same name, or the same name in another case.
fn canonical(known: &'static [&'static str], key: &str) -> Option<&'static str> {
    known
        .iter()
        .copied()
        .find(|k| *k == key)
        .or_else(|| known.iter().copied().find(|k| k.eq_ignore_ascii_case(key)))
}

fn describe(parent: &[&'static str], known: &[&'static str], key: &str, entry: &Entry) -> (String, String) {
    let is_table = matches!(entry.kind, EntryKind::Table | EntryKind::ArrayOfTables);
    let shown = if is_table { table_header(&entry.path) } else { format!("`{}`", key.escape_debug()) };
    let message = match (is_table, parent.is_empty()) {
        (true, _) => format!("unknown table {shown}; containers/storage ignores it"),
        (false, true) => format!("key {shown} is outside the [storage] table; containers/storage ignores it"),
        (false, false) => {
            format!("unknown key {shown} in {}; containers/storage ignores it", table_header(parent))
        }
    };
    // A defined name in this table, as a key or as a sub-table header.
    let spell = |name: &str| {
        let mut path = parent.to_vec();
        path.push(name);
        if table_schema(&path).is_some() { table_header(&path) } else { format!("`{name}`") }
    };
    let swapped: String = key
        .chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else if c == '-' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let near = canonical_any(known, &swapped).or_else(|| did_you_mean(key, known.iter().copied()));
    if let Some(near) = near {
        return (message, format!("did you mean {}?", spell(near)));
    }
    let lower = key.to_ascii_lowercase();
    // Shallowest first: [storage.options] before the driver tables below it.
    let mut elsewhere = tables_defining(&lower);
    elsewhere.sort_by_key(|p| p.len());
    let help = if let Some(first) = elsewhere.first() {
        let here = if parent.is_empty() { "the top level".to_string() } else { table_header(parent) };
        let below_first = elsewhere[1..].iter().all(|p| p.starts_with(first));
        if is_table && elsewhere.len() == 1 {
            let mut path: Vec<&str> = first.to_vec();
            path.push(&lower);
            format!("did you mean {}?", table_header(&path))
        } else if elsewhere.len() == 1 {
            format!("`{lower}` is a key of {}, not of {here}; move it there", table_header(first))
        } else if below_first {
            format!(
                "`{lower}` is a key of {} (and of driver tables below it, e.g. {}), not of {here}; move it there",
                table_header(first),
                table_header(elsewhere[1])
            )
        } else {
            let all: Vec<String> = elsewhere.iter().map(|p| table_header(p)).collect();
            format!("`{lower}` is a key of {}, not of {here}; move it there", all.join(" or "))
        }
    } else if parent.is_empty() {
        "every setting of storage.conf is in the [storage] table or one of its sub-tables; \
         see containers-storage.conf(5)"
            .to_string()
    } else {
        let names: Vec<String> = known.iter().map(|k| spell(k)).collect();
        format!("{} holds: {}", table_header(parent), names.join(", "))
    };
    (message, help)
}

fn canonical_any(known: &[&'static str], key: &str) -> Option<&'static str> {
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(key))
}

#[cfg(test)]
mod tests {
    use crate::validate::{Inputs, storage_conf};

    fn run(text: &str) -> Vec<(usize, usize, String, String)> {
        let storage = storage_conf::load_text(text, "storage.conf").unwrap();
        let inputs = Inputs { storage: Some(storage), ..Inputs::default() };
        (super::RULE.check)(&inputs)
            .into_iter()
            .map(|d| (d.line, d.column, d.message, d.help.unwrap_or_default()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    #[test]
    fn misspelt_keys_suggest_the_right_one() {
        let found = run("[storage]\ndrivr = \"overlay\"\n[storage.options]\nremap_uids = \"0:1:2\"\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].0, found[0].1), (2, 1));
        assert_eq!(found[0].2, "unknown key `drivr` in [storage]; containers/storage ignores it");
        assert_eq!(found[0].3, "did you mean `driver`?");
        assert_eq!(found[1].3, "did you mean `remap-uids`?");
    }

    #[test]
    fn misplaced_keys_and_tables() {
        let found = run("driver = \"btrfs\"\n[storage]\nsize = \"1G\"\n[storage.option]\nx = 1\n[options]\n");
        let helps: Vec<&str> = found.iter().map(|f| f.3.as_str()).collect();
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].2.contains("outside the [storage] table"));
        assert_eq!(helps[0], "`driver` is a key of [storage], not of the top level; move it there");
        assert_eq!(
            helps[1],
            "`size` is a key of [storage.options] (and of driver tables below it, e.g. \
             [storage.options.btrfs]), not of [storage]; move it there"
        );
        assert_eq!(found[2].2, "unknown table [storage.option]; containers/storage ignores it");
        assert_eq!(helps[2], "did you mean [storage.options]?");
        assert_eq!((found[3].0, found[3].1), (6, 2));
        assert_eq!(helps[3], "did you mean [storage.options]?");
    }

    #[test]
    fn defined_keys_pass_in_any_form() {
        let text = "[Storage]\nDriver = \"overlay\"\nstorage.options.overlay.mountopt = \"nodev\"\n";
        assert!(run(text).len() == 1, "a dotted `storage` below [Storage] is [storage.storage]");
        let text = "[storage]\ndriver = \"overlay\"\noptions = { pull_options = { anything = \"x\" }, \
                    btrfs = { min_space = \"1G\" }, thinpool = { basesize = \"10G\" } }\n";
        assert!(run(text).is_empty());
        let text = "[storage.options.pull_options]\nwhatever = \"x\"\n[storage.options.vfs]\n\
                    ignore_chown_errors = \"true\"\n[storage.options]\nremap-uids = \"0:1:2\"\n";
        assert!(run(text).is_empty());
    }
}
