//! Loading a containers/storage.conf, keeping the position of every key.
//!
//! The file is parsed with `toml_edit`'s span-preserving [`Document`], so every finding
//! can name the line and column of the key or value it is about. Paths are lists of
//! keys from the top of the file (`["storage", "options", "btrfs", "size"]`); dotted keys
//! and inline tables resolve exactly like the table form. Like containers/storage's TOML
//! decoder, a key that has no exact match is matched without regard to ASCII case.

use super::source::SourceFile;
use crate::error::{Error, InputError};
use toml_edit::{Document, Item, Key, TableLike};

/// Where containers/storage puts images and containers when `graphroot` is not set.
pub const DEFAULT_GRAPHROOT: &str = "/var/lib/containers/storage";
/// Where containers/storage keeps its run-time state when `runroot` is not set.
pub const DEFAULT_RUNROOT: &str = "/run/containers/storage";

/// The keys containers-storage.conf(5) defines, by table. A name that is also a table
/// path here (e.g. `options` in `[storage]`) is a sub-table.
const SCHEMA: &[(&[&str], &[&str])] = &[
    (&[], &["storage"]),
    (
        &["storage"],
        &[
            "driver",
            "graphroot",
            "runroot",
            "rootless_storage_path",
            "imagestore",
            "transient_store",
            "driver_priority",
            "options",
        ],
    ),
    (
        &["storage", "options"],
        &[
            "additionalimagestores",
            "additionallayerstores",
            "imagestore",
            "pull_options",
            "remap-uids",
            "remap-gids",
            "remap-user",
            "remap-group",
            "root-auto-userns-user",
            "auto-userns-min-size",
            "auto-userns-max-size",
            "disable-volatile",
            "ignore_chown_errors",
            "mount_program",
            "mountopt",
            "size",
            "skip_mount_home",
            "force_mask",
            "convert_images",
            "use_composefs",
            "ostree_repo",
            "aufs",
            "btrfs",
            "overlay",
            "thinpool",
            "vfs",
            "zfs",
        ],
    ),
    (&["storage", "options", "aufs"], &["mountopt"]),
    (&["storage", "options", "btrfs"], &["min_space", "size"]),
    (
        &["storage", "options", "overlay"],
        &[
            "ignore_chown_errors",
            "inodes",
            "mount_program",
            "mountopt",
            "skip_mount_home",
            "size",
            "force_mask",
            "use_composefs",
        ],
    ),
    (
        &["storage", "options", "thinpool"],
        &[
            "autoextend_percent",
            "autoextend_threshold",
            "basesize",
            "blocksize",
            "directlvm_device",
            "directlvm_device_force",
            "fs",
            "log_level",
            "metadata_size",
            "min_free_space",
            "mkfsarg",
            "mountopt",
            "size",
            "use_deferred_deletion",
            "use_deferred_removal",
            "xfs_nospace_max_retries",
        ],
    ),
    (&["storage", "options", "vfs"], &["ignore_chown_errors"]),
    (&["storage", "options", "zfs"], &["mountopt", "fsname", "size"]),
];

/// Tables whose keys are free-form (string values under any name).
const FREE_FORM: &[&[&str]] = &[&["storage", "options", "pull_options"]];

/// What containers-storage.conf(5) says a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableSchema {
    /// These keys and sub-tables, and nothing else.
    Keys(&'static [&'static str]),
    /// Any key (`[storage.options.pull_options]`).
    FreeForm,
}

/// The schema of the table at `path` (`[]` is the top of the file), or `None` when
/// containers-storage.conf(5) defines no such table.
pub fn table_schema(path: &[&str]) -> Option<TableSchema> {
    if FREE_FORM.contains(&path) {
        return Some(TableSchema::FreeForm);
    }
    SCHEMA.iter().find(|(p, _)| *p == path).map(|(_, keys)| TableSchema::Keys(keys))
}

/// Every table that defines `key`, for "it belongs in [storage.options]" hints.
pub fn tables_defining(key: &str) -> Vec<&'static [&'static str]> {
    SCHEMA.iter().filter(|(_, keys)| keys.contains(&key)).map(|(p, _)| *p).collect()
}

/// A table path as its header, e.g. `[storage.options]`; keys that are not bare are quoted.
pub fn table_header<S: AsRef<str>>(path: &[S]) -> String {
    let keys: Vec<String> = path
        .iter()
        .map(|k| {
            let k = k.as_ref();
            let bare = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if bare { k.to_string() } else { format!("{k:?}") }
        })
        .collect();
    format!("[{}]", keys.join("."))
}

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A `[table]`, a dotted-key table or an inline table.
    Table,
    /// An `[[array of tables]]`.
    ArrayOfTables,
    /// Any other value.
    Value,
}

/// One key of the file with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Keys from the top of the file, as written.
    pub path: Vec<String>,
    /// Byte offset of the key (for a table header, of the key's segment in the header).
    pub key_offset: usize,
    /// Byte offset of the value (for a table, of its header).
    pub value_offset: usize,
    pub kind: EntryKind,
}

/// A loaded storage.conf.
#[derive(Debug, Clone)]
pub struct StorageConfFile {
    pub source: SourceFile,
    doc: Document<String>,
}

impl StorageConfFile {
    /// The item at a table path, through tables, dotted keys and inline tables alike.
    pub fn get(&self, path: &[&str]) -> Option<&Item> {
        resolve(self.doc.as_table(), path).map(|(_, item)| item)
    }

    /// A string value at a table path (e.g. `["storage", "driver"]`) and the byte offset
    /// of the value.
    pub fn get_str(&self, path: &[&str]) -> Option<(String, usize)> {
        let item = self.get(path)?;
        let s = item.as_str()?;
        Some((s.to_string(), self.value_offset(path).unwrap_or(0)))
    }

    /// Byte offset of a key (e.g. `["storage", "options", "btrfs", "size"]`).
    pub fn key_offset(&self, path: &[&str]) -> Option<usize> {
        let (key, _) = resolve(self.doc.as_table(), path)?;
        Some(key.and_then(Key::span).map_or_else(|| self.fallback_offset(path), |s| s.start))
    }

    /// Byte offset of the value at a path (for a table, of its header).
    pub fn value_offset(&self, path: &[&str]) -> Option<usize> {
        let (_, item) = resolve(self.doc.as_table(), path)?;
        match item.span() {
            Some(s) => Some(s.start),
            None => self.key_offset(path),
        }
    }

    /// `[storage] driver` as written, and the offset of its value; `None` when it is
    /// not set or not a string.
    pub fn driver(&self) -> Option<(String, usize)> {
        self.get_str(&["storage", "driver"])
    }

    /// The driver containers/storage is told to use: `overlay2` is its alias for
    /// `overlay`; `None` when `driver` is unset or empty (containers/storage picks one).
    pub fn driver_name(&self) -> Option<String> {
        let (driver, _) = self.driver()?;
        match driver.as_str() {
            "" => None,
            "overlay2" => Some("overlay".to_string()),
            _ => Some(driver),
        }
    }

    /// Whether the settings in `driver`'s own table (`[storage.options.btrfs]` for
    /// `btrfs`) can take effect: the configured driver is `driver`, or none is named.
    pub fn may_use_driver(&self, driver: &str) -> bool {
        self.driver_name().is_none_or(|d| d == driver)
    }

    /// `graphroot`, or the default when it is unset or empty, with the offset of its value
    /// when written.
    pub fn graphroot(&self) -> (String, Option<usize>) {
        match self.get_str(&["storage", "graphroot"]) {
            Some((g, at)) if !g.is_empty() => (g, Some(at)),
            _ => (DEFAULT_GRAPHROOT.to_string(), None),
        }
    }

    /// Every key of the file in document order, tables before their contents.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        // An explicit stack: the parser's own depth limit keeps it small, but a walk
        // should not be what decides that.
        let mut stack: Vec<(&dyn TableLike, Vec<String>, usize)> = vec![(self.doc.as_table(), Vec::new(), 0)];
        while let Some((table, path, parent_at)) = stack.pop() {
            let mut children = Vec::new();
            for (key, item) in table.iter() {
                let key_offset = table.key(key).and_then(Key::span).map_or(parent_at, |s| s.start);
                let value_offset = item.span().map_or(key_offset, |s| s.start);
                let mut p = path.clone();
                p.push(key.to_string());
                let kind = if item.is_array_of_tables() {
                    EntryKind::ArrayOfTables
                } else if item.is_table_like() {
                    EntryKind::Table
                } else {
                    EntryKind::Value
                };
                out.push(Entry { path: p.clone(), key_offset, value_offset, kind });
                if let Some(t) = item.as_table_like() {
                    children.push((t, p, key_offset));
                }
            }
            // Children are visited after their siblings' entries, in order.
            stack.extend(children.into_iter().rev());
        }
        out
    }

    /// Where to place a finding about `path` when the parser kept no span for its key:
    /// the closest ancestor that has one.
    fn fallback_offset(&self, path: &[&str]) -> usize {
        (1..path.len())
            .rev()
            .find_map(|n| {
                let (key, _) = resolve(self.doc.as_table(), &path[..n])?;
                key.and_then(Key::span).map(|s| s.start)
            })
            .unwrap_or(0)
    }
}

/// Walks `path` from `root`: each step matches a key exactly, or else without regard to
/// ASCII case (as containers/storage's decoder does). Returns the last key (`None` for the
/// empty path) and its item.
pub(crate) fn resolve<'a>(root: &'a toml_edit::Table, path: &[&str]) -> Option<(Option<&'a Key>, &'a Item)> {
    let mut table: &'a dyn TableLike = root;
    let mut found: Option<(&'a Key, &'a Item)> = None;
    for (i, segment) in path.iter().enumerate() {
        let (key, item) = lookup(table, segment)?;
        found = Some((key, item));
        if i + 1 < path.len() {
            table = item.as_table_like()?;
        }
    }
    match found {
        Some((key, item)) => Some((Some(key), item)),
        None => None,
    }
}

/// One key of a table: exact match first, then ASCII case-insensitive.
fn lookup<'a>(table: &'a dyn TableLike, key: &str) -> Option<(&'a Key, &'a Item)> {
    table.get_key_value(key).or_else(|| {
        let (k, _) = table.iter().find(|(k, _)| k.eq_ignore_ascii_case(key))?;
        table.get_key_value(k)
    })
}

/// Reads and parses a storage.conf; malformed TOML is an input error at its line and column.
pub fn load(path: &std::path::Path) -> Result<StorageConfFile, Error> {
    let text = read_text(path)?;
    load_text(&text, &path.display().to_string())
}

pub fn load_text(text: &str, name: &str) -> Result<StorageConfFile, Error> {
    let source = SourceFile::new(name, text);
    let doc = parse_toml(&source, "containers-storage.conf(5)")?;
    Ok(StorageConfFile { source, doc })
}

/// Every file of a resolved storage.conf stack (the main file and, on Podman 6, its
/// drop-ins and override), in reading order, each loaded on its own so findings keep
/// their file, line and column.
pub fn load_stack(stack: &crate::conf::resolve::Stack) -> Result<Vec<StorageConfFile>, Error> {
    stack.layers.iter().map(|l| load_text(&l.text, &l.path.display().to_string())).collect()
}

/// Reads a configuration file; bytes that are not UTF-8 are an input error at their place
/// (TOML is UTF-8), I/O failures are I/O errors.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        let source = SourceFile::new(path.display().to_string(), prefix);
        let (line, column) = source.position(valid);
        Error::Input(InputError {
            file: source.path.clone(),
            line,
            column,
            message: "the file is not valid UTF-8".into(),
            help: Some("TOML files are UTF-8 text; re-save the file as UTF-8".into()),
            source_line: Some(source.line_text(line).to_string()).filter(|l| !l.is_empty()),
        })
    })
}

/// Parses TOML text; a syntax error becomes an input error at its line and column.
/// `manual` names the man page of the format, for the help.
pub(crate) fn parse_toml(source: &SourceFile, manual: &str) -> Result<Document<String>, Error> {
    Document::parse(source.text.clone()).map_err(|e| {
        let span = e.span();
        let at = span.as_ref().map_or(0, |s| s.start);
        let duplicate = e.message().starts_with("duplicate key");
        let key = span.and_then(|s| source.text.get(s)).filter(|k| !k.is_empty() && !k.contains('\n'));
        let message = match key {
            Some(key) if duplicate => format!("malformed TOML: duplicate key `{key}`"),
            _ => format!("malformed TOML: {}", e.message().trim().replace('\n', "; ")),
        };
        let (line, column) = source.position(at);
        let help = if duplicate {
            "each key and each [table] may appear only once; merge the two".to_string()
        } else {
            format!("the file must be valid TOML; see {manual}")
        };
        Error::Input(InputError {
            file: source.path.clone(),
            line,
            column,
            message,
            help: Some(help),
            source_line: Some(source.line_text(line).to_string()).filter(|l| !l.is_empty()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> StorageConfFile {
        load_text(text, "storage.conf").unwrap()
    }

    fn place(f: &StorageConfFile, offset: Option<usize>) -> (usize, usize) {
        f.source.position(offset.expect("present"))
    }

    #[test]
    fn table_dotted_and_inline_forms_agree() {
        let forms = [
            "[storage.options.btrfs]\nsize = \"1G\"\n",
            "[storage.options]\nbtrfs = { size = \"1G\" }\n",
            "[storage]\noptions.btrfs.size = \"1G\"\n",
            "storage.options.btrfs.size = \"1G\"\n",
            "[storage]\noptions = { btrfs = { size = \"1G\" } }\n",
        ];
        for text in forms {
            let f = load(text);
            let path = ["storage", "options", "btrfs", "size"];
            let (value, at) = f.get_str(&path).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(value, "1G", "{text}");
            assert_eq!(&text[at..at + 4], "\"1G\"", "{text}");
            let key_at = f.key_offset(&path).unwrap();
            assert_eq!(&text[key_at..key_at + 4], "size", "{text}");
            assert!(f.entries().iter().any(|e| e.path == path), "{text}");
        }
    }

    #[test]
    fn positions_point_at_keys_and_values() {
        let f =
            load("# c\n[storage]\n  driver = \"btrfs\"\n\n[storage.options.overlay]\nmountopt = \"nodev\"\n");
        assert_eq!(place(&f, f.key_offset(&["storage", "driver"])), (3, 3));
        assert_eq!(place(&f, f.get_str(&["storage", "driver"]).map(|(_, at)| at)), (3, 12));
        assert_eq!(place(&f, f.key_offset(&["storage", "options", "overlay"])), (5, 18));
        assert_eq!(place(&f, f.key_offset(&["storage", "options", "overlay", "mountopt"])), (6, 1));
        assert_eq!(f.driver_name().as_deref(), Some("btrfs"));
        assert_eq!(f.get_str(&["storage", "graphroot"]), None);
        assert_eq!(f.graphroot(), (DEFAULT_GRAPHROOT.to_string(), None));
        assert_eq!(f.key_offset(&["storage", "nope"]), None);
        assert_eq!(f.get_str(&["storage"]), None, "a table is not a string");
    }

    #[test]
    fn keys_match_without_case_like_containers_storage() {
        let f = load("[Storage]\nDriver = \"overlay2\"\n");
        assert_eq!(f.driver().map(|(d, _)| d).as_deref(), Some("overlay2"));
        assert_eq!(f.driver_name().as_deref(), Some("overlay"));
        assert!(f.may_use_driver("overlay") && !f.may_use_driver("btrfs"));
        let f = load("[storage]\ndriver = \"\"\n");
        assert_eq!(f.driver_name(), None);
        assert!(f.may_use_driver("btrfs"));
    }

    #[test]
    fn entries_list_every_key_in_order() {
        let f = load("top = 1\n[storage]\na.b = 1\n[[storage.x]]\ny = 2\n");
        let paths: Vec<(String, EntryKind)> =
            f.entries().into_iter().map(|e| (e.path.join("."), e.kind)).collect();
        assert_eq!(
            paths,
            [
                ("top".into(), EntryKind::Value),
                ("storage".into(), EntryKind::Table),
                ("storage.a".into(), EntryKind::Table),
                ("storage.x".into(), EntryKind::ArrayOfTables),
                ("storage.a.b".into(), EntryKind::Value),
            ]
        );
    }

    #[test]
    fn schema_knows_tables_and_free_form_ones() {
        assert!(
            matches!(table_schema(&["storage", "options", "btrfs"]), Some(TableSchema::Keys(k)) if k.contains(&"min_space"))
        );
        assert_eq!(table_schema(&["storage", "options", "pull_options"]), Some(TableSchema::FreeForm));
        assert_eq!(table_schema(&["storage", "option"]), None);
        assert_eq!(tables_defining("mountopt").len(), 5);
    }

    #[test]
    fn malformed_toml_is_an_input_error_at_its_place() {
        let Err(Error::Input(e)) = load_text("[storage]\ndriver = \"btrfs\nx = 1\n", "s.conf") else {
            panic!("expected an input error")
        };
        assert_eq!((e.file.as_str(), e.line), ("s.conf", 2));
        assert!(e.message.starts_with("malformed TOML"), "{}", e.message);
        assert_eq!(e.source_line.as_deref(), Some("driver = \"btrfs"));
        let Err(Error::Input(e)) = load_text("[storage]\ndriver = \"a\"\ndriver = \"b\"\n", "s.conf") else {
            panic!("expected an input error")
        };
        assert_eq!((e.line, e.column), (3, 1));
        assert_eq!(e.message, "malformed TOML: duplicate key `driver`");
    }

    #[test]
    fn survives_pathological_input() {
        let deep = 100_000;
        for text in [
            format!("a = {}", "[".repeat(deep)),
            format!("a = {}", "{ b = ".repeat(deep)),
            format!("[{}a]", "a.".repeat(deep)),
            format!("{}a = 1", "a.".repeat(deep)),
            "\u{feff}[storage]\r\n\r".to_string(),
            "\0\r\r\n".to_string(),
        ] {
            if let Ok(f) = load_text(&text, "s") {
                let _ = (f.entries(), f.get_str(&["storage", "driver"]));
            }
        }
        // As deep as the parser accepts: walked without recursion.
        let f = load_text(&format!("{}a = 1", "a.".repeat(50)), "s").unwrap();
        assert_eq!(f.entries().len(), 51);
    }

    #[test]
    fn non_utf8_files_are_input_errors() {
        let dir = std::env::temp_dir().join(format!("podfs-storage-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("storage.conf");
        std::fs::write(&path, b"[storage]\ndriver = \"\xff\"\n").unwrap();
        let Err(Error::Input(e)) = super::load(&path) else { panic!("expected an input error") };
        assert_eq!((e.line, e.column), (2, 11));
        assert!(matches!(super::load(&dir.join("missing.conf")), Err(Error::Io { action: "read", .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
