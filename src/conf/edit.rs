//! Setting the keys a plan owns in a storage.conf with toml_edit, leaving everything else
//! as it was: comments, blank lines, key order, and keys the plan does not own.

use crate::error::{Error, InputError};
use toml_edit::{DocumentMut, Item, Table, Value};

/// The keys a plan owns, as (table path, key).
pub const OWNED: &[(&[&str], &str)] = &[
    (&["storage"], "driver"),
    (&["storage"], "graphroot"),
    (&["storage"], "runroot"),
    (&["storage"], "rootless_storage_path"),
    (&["storage"], "imagestore"),
    (&["storage", "options", "overlay"], "mountopt"),
];

/// One planned setting: where, and the value (a string in storage.conf).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    pub table: Vec<String>,
    pub key: String,
    pub value: String,
}

/// A change `apply` makes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub key: String,
    pub from: Option<String>,
    pub to: String,
}

fn malformed(file: &str, text: &str, e: &toml_edit::TomlError) -> Error {
    let source = crate::validate::source::SourceFile::new(file, text);
    let (line, column) = source.position(e.span().map_or(0, |s| s.start));
    Error::Input(InputError {
        file: file.into(),
        line,
        column,
        message: format!("malformed TOML: {}", e.message()),
        help: Some("fix the file first; it was not changed".into()),
        source_line: Some(source.line_text(line).to_string()),
    })
}

pub fn parse(text: &str, file: &str) -> Result<DocumentMut, Error> {
    text.parse::<DocumentMut>().map_err(|e| malformed(file, text, &e))
}

/// The settings a plan's storage.conf makes, restricted to the owned keys.
pub fn planned_settings(plan_text: &str, file: &str) -> Result<Vec<Setting>, Error> {
    let doc = parse(plan_text, file)?;
    Ok(OWNED
        .iter()
        .filter_map(|(table, key)| {
            let mut item: &Item = doc.as_item();
            for t in *table {
                item = item.get(t)?;
            }
            let value = item.get(key)?.as_str()?.to_string();
            Some(Setting {
                table: table.iter().map(|s| s.to_string()).collect(),
                key: key.to_string(),
                value,
            })
        })
        .collect())
}

/// The current string value of a setting's key, if any.
pub fn current(doc: &DocumentMut, table: &[String], key: &str) -> Option<String> {
    let mut item: &Item = doc.as_item();
    for t in table {
        item = item.get(t)?;
    }
    item.get(key)?.as_str().map(String::from)
}

fn table_mut<'a>(doc: &'a mut DocumentMut, path: &[String]) -> &'a mut Table {
    let mut table = doc.as_table_mut();
    for (depth, name) in path.iter().enumerate() {
        if !table.contains_key(name) || !table[name.as_str()].is_table_like() {
            let mut t = Table::new();
            // Intermediate tables stay implicit: `[storage.options.overlay]` without `[storage.options]`.
            t.set_implicit(depth + 1 < path.len());
            table.insert(name, Item::Table(t));
        }
        table = table[name.as_str()].as_table_mut().expect("just made a table");
    }
    table
}

/// Sets each planned key, keeping the decoration (spacing, trailing comment) of a value
/// that is replaced. Returns what changed.
pub fn apply(doc: &mut DocumentMut, settings: &[Setting]) -> Vec<Change> {
    let mut changes = Vec::new();
    for s in settings {
        let from = current(doc, &s.table, &s.key);
        if from.as_deref() == Some(s.value.as_str()) {
            continue;
        }
        let table = table_mut(doc, &s.table);
        match table.get_mut(&s.key).and_then(Item::as_value_mut) {
            Some(v) => {
                let decor = v.decor().clone();
                *v = Value::from(s.value.as_str());
                *v.decor_mut() = decor;
            }
            None => {
                table.insert(&s.key, toml_edit::value(s.value.as_str()));
            }
        }
        changes.push(Change { key: format!("{}.{}", s.table.join("."), s.key), from, to: s.value.clone() });
    }
    changes
}

/// A unified diff from `old` to `new`.
pub fn unified_diff(old: &str, new: &str, name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} (current)"), &format!("{name} (planned)"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISTRO: &str = "# storage.conf\n#\n# Comments stay.\n[storage]\n\n# Default Storage Driver.\ndriver = \"overlay\"  # keep me\n\n# runroot\nrunroot = \"/run/containers/storage\"\n#graphroot = \"/old\"\n\n[storage.options]\npull_options = {enable_partial_images = \"false\"}\n";

    fn settings() -> Vec<Setting> {
        let s = |t: &[&str], k: &str, v: &str| Setting {
            table: t.iter().map(|x| x.to_string()).collect(),
            key: k.into(),
            value: v.into(),
        };
        vec![
            s(&["storage"], "driver", "btrfs"),
            s(&["storage"], "graphroot", "/srv/storage"),
            s(&["storage"], "runroot", "/run/containers/storage"),
            s(&["storage", "options", "overlay"], "mountopt", "nodev"),
        ]
    }

    #[test]
    fn only_planned_keys_change_and_decoration_stays() {
        let mut doc = parse(DISTRO, "x").unwrap();
        let changes = apply(&mut doc, &settings());
        let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["storage.driver", "storage.graphroot", "storage.options.overlay.mountopt"]);
        let out = doc.to_string();
        assert!(out.contains("driver = \"btrfs\"  # keep me\n"), "{out}");
        assert!(out.contains("#graphroot = \"/old\"\n") && out.contains("# Comments stay.\n"), "{out}");
        assert!(out.contains("[storage.options.overlay]\nmountopt = \"nodev\""), "{out}");
        assert!(out.contains("pull_options = {enable_partial_images = \"false\"}"), "{out}");
        // Applying again changes nothing.
        let mut again = parse(&out, "x").unwrap();
        assert!(apply(&mut again, &settings()).is_empty());
        assert_eq!(again.to_string(), out);
    }

    #[test]
    fn malformed_toml_names_line_and_column() {
        let Err(Error::Input(e)) = parse("[storage]\ndriver = \"x\ngraphroot = 1\n", "s.conf") else {
            panic!()
        };
        assert_eq!((e.file.as_str(), e.line), ("s.conf", 2));
    }
}
