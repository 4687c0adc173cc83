//! The workload spec file (TOML): a host that is planned rather than scanned.
//!
//! The document is walked by hand over `toml_edit`'s span-preserving [`Document`] rather
//! than deserialised with serde, so that every error can name the exact line and column of
//! the offending key or value and say what to write instead. The format is described in
//! podman-btrfs-advise-spec(5).

use super::{DiskMode, Host, Inventory, Lifetime, Source, Workload};
use crate::class::Class;
use crate::error::{Error, InputError};
use crate::size::{GIB, human, parse_size};
use crate::suggest::did_you_mean;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use toml_edit::{Document, Item, TableLike, Value};

/// The only spec format version this build reads.
pub const VERSION: i64 = 1;
/// More containers of one workload than any single host runs; larger counts are typos.
pub const MAX_COUNT: u32 = 100_000;
/// Whole-disk mode also holds the ESP and the system subvolumes.
pub const MIN_WHOLE_DISK: u64 = 4 * GIB;
/// Data-disk mode holds container storage only.
pub const MIN_DATA_DISK: u64 = GIB;

pub const TOP_KEYS: [&str; 3] = ["version", "host", "workload"];
pub const HOST_KEYS: [&str; 6] = ["name", "disk", "mode", "disk_size", "ssd", "rootless"];
pub const WORKLOAD_KEYS: [&str; 8] =
    ["name", "image", "class", "count", "image_size", "volume_size", "lifetime", "mounts"];

const MINIMAL_SPEC: &str = "a minimal spec:\n\n    [host]\n    disk = \"/dev/nvme0n1\"\n    \
     disk_size = \"1T\"\n\n    [[workload]]\n    name = \"web\"\n    \
     image = \"docker.io/library/caddy:2\"\n    image_size = \"50M\"";

/// Parses spec text. `file` is the name used in error messages (a path, or `example:NAME`).
pub fn parse(text: &str, file: &str, source: Source) -> Result<Inventory, InputError> {
    let doc = Document::parse(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        let help = "see podman-btrfs-advise-spec(5) for the format";
        Ctx { text, file }.error(at, format!("malformed TOML: {}", e.message()), Some(help.into()))
    })?;
    let (host, workloads) = Ctx { text, file }.document(doc.as_table())?;
    Ok(Inventory { source, host, workloads })
}

/// Reads and parses a spec file from disk (I/O errors -> Error::Io with action "read").
pub fn load(path: &Path) -> Result<Inventory, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
    let name = path.display().to_string();
    Ok(parse(&text, &name, Source::Spec(name.clone()))?)
}

/// Checks a block device path the way `disk` in `[host]` is checked, for `--disk` overrides.
pub fn check_device_path(path: &str) -> Result<(), String> {
    match device_path_problem(path) {
        None => Ok(()),
        Some((_, problem)) => {
            Err(format!("invalid disk `{}`: {problem}; {DEVICE_PATH_HELP}", path.escape_debug()))
        }
    }
}

const DEVICE_PATH_HELP: &str = "disk is an absolute device path such as /dev/nvme0n1 or \
     /dev/disk/by-id/…, made of letters, digits and `/_.:+@-`";

/// The byte offset and description of what makes `path` unusable as a device path.
/// The character set keeps the path safe to paste into generated shell and Nix files.
fn device_path_problem(path: &str) -> Option<(usize, String)> {
    if !path.starts_with('/') || path.len() < 2 {
        return Some((0, "not an absolute path".into()));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_.:+@-".contains(c);
    path.char_indices()
        .find(|&(_, c)| !allowed(c))
        .map(|(i, c)| (i, format!("contains {}", describe_char(c))))
}

/// The text being parsed and its name, for placing errors.
#[derive(Clone, Copy)]
struct Ctx<'t> {
    text: &'t str,
    file: &'t str,
}

/// One key of a table with where it and its value are.
struct Field<'a> {
    key: &'a str,
    key_at: usize,
    item: &'a Item,
    /// The value's span, or an empty span at the key when the parser kept none.
    span: Range<usize>,
}

impl Field<'_> {
    fn at(&self) -> usize {
        self.span.start
    }
}

/// The fields of a table in document order; `fallback` places keys the parser kept no span for.
fn fields(table: &dyn TableLike, fallback: usize) -> Vec<Field<'_>> {
    table
        .iter()
        .map(|(key, item)| {
            let key_at = table.key(key).and_then(|k| k.span()).map_or(fallback, |s| s.start);
            let span = item.span().unwrap_or(key_at..key_at);
            Field { key, key_at, item, span }
        })
        .collect()
}

/// Tracks a required key: its value and the offset of its value, once seen.
type Seen<T> = Option<(T, usize)>;

impl<'t> Ctx<'t> {
    fn document(&self, root: &toml_edit::Table) -> Result<(Host, Vec<Workload>), InputError> {
        let mut host = None;
        let mut workloads = None;
        for f in fields(root, 0) {
            match f.key {
                "version" => self.version(&f)?,
                "host" => host = Some(self.host(&f)?),
                "workload" => workloads = Some(self.workloads(&f)?),
                _ => return Err(self.unknown_top_level(&f)),
            }
        }
        let host =
            host.ok_or_else(|| self.error(0, "the spec has no [host] table", Some(MINIMAL_SPEC.into())))?;
        let workloads = workloads.filter(|w: &Vec<_>| !w.is_empty()).ok_or_else(|| {
            let end = self.text.trim_end().len();
            self.error(end, "the spec has no [[workload]] tables", Some(MINIMAL_SPEC.into()))
        })?;
        Ok((host, workloads))
    }

    fn version(&self, f: &Field) -> Result<(), InputError> {
        match self.integer(f)? {
            VERSION => Ok(()),
            v => Err(self.error(
                f.at(),
                format!("unsupported spec version {v}"),
                Some(format!("this build reads version {VERSION}; write version = {VERSION}")),
            )),
        }
    }

    fn host(&self, f: &Field) -> Result<Host, InputError> {
        let table = self.table(f, "[host]")?;
        let header = f.at();
        let mut host = Host {
            name: "host".into(),
            disk: String::new(),
            mode: DiskMode::WholeDisk,
            disk_size: 0,
            ssd: false,
            rootless: false,
        };
        let (mut disk, mut disk_size): (Option<String>, Seen<u64>) = (None, None);
        for e in fields(table, header) {
            match e.key {
                "name" => host.name = self.name(&e)?.into(),
                "disk" => disk = Some(self.disk(&e)?.into()),
                "mode" => host.mode = self.choice(&e, &DiskMode::NAMES, DiskMode::parse)?,
                "disk_size" => disk_size = Some((self.size(&e)?, e.at())),
                "ssd" => host.ssd = self.boolean(&e)?,
                "rootless" => host.rootless = self.boolean(&e)?,
                _ => return Err(self.unknown_key(&e, "[host]", &HOST_KEYS)),
            }
        }
        let missing = |key| self.missing(header, "[host] is", key);
        host.disk = disk.ok_or_else(|| missing("disk"))?;
        let (size, size_at) = disk_size.ok_or_else(|| missing("disk_size"))?;
        host.disk_size = self.check_disk_size(size, size_at, host.mode)?;
        Ok(host)
    }

    fn check_disk_size(&self, size: u64, at: usize, mode: DiskMode) -> Result<u64, InputError> {
        let (min, why) = match mode {
            DiskMode::WholeDisk => (MIN_WHOLE_DISK, "the ESP and the system subvolumes"),
            DiskMode::DataDisk => (MIN_DATA_DISK, "container images and volumes"),
        };
        if size >= min {
            return Ok(size);
        }
        Err(self.error(
            at,
            format!("disk_size {} is too small for {} mode", human(size), mode.as_str()),
            Some(format!(
                "{} mode needs at least {} for {why}; check the size, or use mode = \"data-disk\" \
                 if the system lives on another disk",
                mode.as_str(),
                human(min)
            )),
        ))
    }

    fn workloads(&self, f: &Field) -> Result<Vec<Workload>, InputError> {
        let tables: Vec<(&dyn TableLike, usize)> = if let Some(aot) = f.item.as_array_of_tables() {
            aot.iter().map(|t| (t as &dyn TableLike, t.span().map_or(f.at(), |s| s.start))).collect()
        } else if let Some(array) = f.item.as_array() {
            // `workload = [{ ... }, { ... }]` is the same thing written inline.
            let mut tables = Vec::new();
            for v in array.iter() {
                let at = v.span().map_or(f.at(), |s| s.start);
                let t = v.as_inline_table().ok_or_else(|| self.not_workload_table(v.type_name(), at))?;
                tables.push((t as &dyn TableLike, at));
            }
            tables
        } else {
            return Err(self.not_workload_table(f.item.type_name(), f.at()));
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut workloads = Vec::with_capacity(tables.len());
        for (index, (table, at)) in tables.into_iter().enumerate() {
            let (workload, name_at) = self.workload(table, at, index + 1)?;
            if let Some(&first) = seen.get(&workload.name) {
                return Err(self.error(
                    name_at,
                    format!("duplicate workload name `{}`", workload.name),
                    Some(format!(
                        "the first `{}` is at line {}; give each workload its own name",
                        workload.name,
                        self.locate(first).0
                    )),
                ));
            }
            seen.insert(workload.name.clone(), name_at);
            workloads.push(workload);
        }
        Ok(workloads)
    }

    fn not_workload_table(&self, found: &str, at: usize) -> InputError {
        self.error(
            at,
            format!("`workload` must be an array of tables, found {found}"),
            Some("start each workload with a [[workload]] header (two brackets)".into()),
        )
    }

    /// One `[[workload]]`; returns it with the offset of its name, for duplicate errors.
    fn workload(
        &self,
        table: &dyn TableLike,
        header: usize,
        index: usize,
    ) -> Result<(Workload, usize), InputError> {
        let mut w = Workload {
            name: String::new(),
            image: String::new(),
            class: None,
            count: 1,
            image_size: 0,
            volume_size: 0,
            lifetime: Lifetime::Long,
            mounts: Vec::new(),
        };
        let (mut name, mut image, mut image_size): (Seen<String>, Option<String>, Option<u64>) =
            (None, None, None);
        for e in fields(table, header) {
            match e.key {
                "name" => name = Some((self.name(&e)?.into(), e.at())),
                "image" => image = Some(self.image(&e)?.into()),
                "class" => w.class = Some(self.class(&e)?),
                "count" => w.count = self.count(&e)?,
                "image_size" => image_size = Some(self.size(&e)?),
                "volume_size" => w.volume_size = self.size(&e)?,
                "lifetime" => w.lifetime = self.choice(&e, &Lifetime::NAMES, Lifetime::parse)?,
                "mounts" => w.mounts = self.mounts(&e)?,
                _ => return Err(self.unknown_key(&e, "[[workload]]", &WORKLOAD_KEYS)),
            }
        }
        let (name, name_at) =
            name.ok_or_else(|| self.missing(header, &format!("workload #{index} is"), "name"))?;
        let what = format!("workload `{name}` is");
        w.image = image.ok_or_else(|| self.missing(header, &what, "image"))?;
        w.image_size = image_size.ok_or_else(|| self.missing(header, &what, "image_size"))?;
        w.name = name;
        Ok((w, name_at))
    }

    // ----- typed values -----

    fn table<'a>(&self, f: &Field<'a>, header: &str) -> Result<&'a dyn TableLike, InputError> {
        f.item.as_table_like().ok_or_else(|| {
            self.wrong_type(f, "a table", Some(format!("write the {header} header on its own line")))
        })
    }

    fn string<'a>(&self, f: &Field<'a>) -> Result<&'a str, InputError> {
        f.item.as_str().ok_or_else(|| self.wrong_type(f, "a string", None))
    }

    fn integer(&self, f: &Field) -> Result<i64, InputError> {
        f.item.as_integer().ok_or_else(|| self.wrong_type(f, "an integer", None))
    }

    fn boolean(&self, f: &Field) -> Result<bool, InputError> {
        f.item.as_bool().ok_or_else(|| self.wrong_type(f, "a boolean (true or false)", None))
    }

    /// A size: a string with a unit, or a positive integer of bytes.
    fn size(&self, f: &Field) -> Result<u64, InputError> {
        let bytes = match f.item.as_value() {
            Some(Value::String(s)) => parse_size(s.value())
                .map_err(|msg| self.error(f.at(), format!("invalid `{}`: {msg}", f.key), size_help(f.key)))?,
            Some(Value::Integer(i)) => u64::try_from(*i.value())
                .map_err(|_| self.error(f.at(), format!("`{}` is negative", f.key), size_help(f.key)))?,
            _ => {
                return Err(self.wrong_type(
                    f,
                    "a size (a string such as \"20G\", or a number of bytes)",
                    None,
                ));
            }
        };
        if bytes == 0 {
            let help = match f.key {
                "volume_size" => {
                    Some("leave volume_size out if the workload keeps no persistent data".into())
                }
                key => size_help(key),
            };
            return Err(self.error(f.at(), format!("`{}` must be greater than zero", f.key), help));
        }
        Ok(bytes)
    }

    fn count(&self, f: &Field) -> Result<u32, InputError> {
        let n = self.integer(f)?;
        match u32::try_from(n) {
            Ok(count) if (1..=MAX_COUNT).contains(&count) => Ok(count),
            _ => {
                let help =
                    format!("count is how many containers of this workload run at once, 1 to {MAX_COUNT}");
                Err(self.error(f.at(), format!("absurd count {n}"), Some(help)))
            }
        }
    }

    /// A string that must be one of `names`.
    fn choice<T>(
        &self,
        f: &Field,
        names: &[&'static str],
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, InputError> {
        let s = self.string(f)?;
        parse(s).ok_or_else(|| {
            let help = match did_you_mean(s, names.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("`{}` is one of: {}", f.key, names.join(", ")),
            };
            self.error(f.at(), format!("unknown {} `{}`", f.key, s.escape_debug()), Some(help))
        })
    }

    fn class(&self, f: &Field) -> Result<Class, InputError> {
        self.string(f)?.parse::<Class>().map_err(|e| {
            let help = match e.did_you_mean {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("class is one of: {}", Class::ALL.map(Class::as_str).join(", ")),
            };
            self.error(f.at(), format!("unknown class `{}`", e.given.escape_debug()), Some(help))
        })
    }

    fn name<'a>(&self, f: &Field<'a>) -> Result<&'a str, InputError> {
        let s = self.string(f)?;
        let bad = if s.is_empty() || s.chars().count() > 63 {
            Some(0)
        } else {
            s.char_indices()
                .find(|&(i, c)| !(c.is_ascii_alphanumeric() || (i > 0 && "_.-".contains(c))))
                .map(|(i, _)| i)
        };
        match bad {
            None => Ok(s),
            Some(i) => Err(self.error(
                self.inside(&f.span, s, i),
                format!("invalid name `{}`", s.escape_debug()),
                Some(
                    "a name starts with a letter or digit, then letters, digits, `_`, `.` or `-`; \
                     at most 63 characters"
                        .into(),
                ),
            )),
        }
    }

    fn disk<'a>(&self, f: &Field<'a>) -> Result<&'a str, InputError> {
        let s = self.string(f)?;
        match device_path_problem(s) {
            None => Ok(s),
            Some((i, problem)) => Err(self.error(
                self.inside(&f.span, s, i),
                format!("invalid disk `{}`: {problem}", s.escape_debug()),
                Some(DEVICE_PATH_HELP.into()),
            )),
        }
    }

    fn image<'a>(&self, f: &Field<'a>) -> Result<&'a str, InputError> {
        let s = self.string(f)?;
        if s.is_empty() {
            let help = "name the image, e.g. image = \"docker.io/library/postgres:16\"";
            return Err(self.error(f.at(), "`image` is empty", Some(help.into())));
        }
        match s.char_indices().find(|&(_, c)| c.is_whitespace() || c.is_control() || "\"\\$`".contains(c)) {
            None => Ok(s),
            Some((i, c)) => Err(self.error(
                self.inside(&f.span, s, i),
                format!("`image` contains {}", describe_char(c)),
                Some(
                    "an image reference has no whitespace, quotes, backslashes, `$`, backticks \
                     or control characters"
                        .into(),
                ),
            )),
        }
    }

    fn mounts(&self, f: &Field) -> Result<Vec<String>, InputError> {
        let array = f.item.as_array().ok_or_else(|| {
            self.wrong_type(f, "an array of paths", Some(format!("for example: {}", sample("mounts"))))
        })?;
        array.iter().map(|v| self.mount(v, v.span().unwrap_or(f.span.clone())).map(String::from)).collect()
    }

    fn mount<'a>(&self, v: &'a Value, span: Range<usize>) -> Result<&'a str, InputError> {
        let s = v.as_str().ok_or_else(|| {
            let found = v.type_name();
            self.error(span.start, format!("an entry of `mounts` must be a string, found {found}"), None)
        })?;
        let problem = if !s.starts_with('/') {
            Some((0, "is not an absolute path".to_string()))
        } else {
            s.char_indices()
                .find(|&(_, c)| c.is_control() || "\"\\$".contains(c))
                .map(|(i, c)| (i, format!("contains {}", describe_char(c))))
        };
        match problem {
            None => Ok(s),
            Some((i, problem)) => Err(self.error(
                self.inside(&span, s, i),
                format!("mount `{}` {problem}", s.escape_debug()),
                Some(
                    "mounts are absolute paths inside the container, without control \
                     characters, quotes, backslashes or `$`"
                        .into(),
                ),
            )),
        }
    }

    // ----- errors -----

    fn wrong_type(&self, f: &Field, expected: &str, help: Option<String>) -> InputError {
        let help = help.or_else(|| {
            let s = sample(f.key);
            (!s.is_empty()).then(|| format!("for example: {s}"))
        });
        let found = f.item.type_name();
        self.error(f.at(), format!("`{}` must be {expected}, found {found}", f.key), help)
    }

    fn unknown_key(&self, f: &Field, table: &str, known: &[&'static str]) -> InputError {
        let help = match did_you_mean(f.key, known.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("the keys of {table} are: {}", known.join(", ")),
        };
        self.error(f.key_at, format!("unknown key `{}` in {table}", f.key.escape_debug()), Some(help))
    }

    fn unknown_top_level(&self, f: &Field) -> InputError {
        // Show tables as their headers, so `[[workloads]]` suggests `[[workload]]`.
        let spell = |key: &str| match key {
            "host" => "[host]".to_string(),
            "workload" => "[[workload]]".to_string(),
            _ if f.item.is_array_of_tables() => format!("[[{key}]]"),
            _ if f.item.is_table() => format!("[{key}]"),
            _ => key.to_string(),
        };
        let what = if f.item.is_table() || f.item.is_array_of_tables() { "table" } else { "key" };
        let help = match did_you_mean(f.key, TOP_KEYS) {
            Some(near) => format!("did you mean `{}`?", spell(near)),
            None => "the top level holds `version`, a [host] table and [[workload]] tables".into(),
        };
        self.error(
            f.key_at,
            format!("unknown {what} `{}`", spell(&f.key.escape_debug().to_string())),
            Some(help),
        )
    }

    fn missing(&self, header: usize, what: &str, key: &str) -> InputError {
        self.error(
            header,
            format!("{what} missing `{key}`"),
            Some(format!("add a line such as: {}", sample(key))),
        )
    }

    fn error(&self, at: usize, message: impl Into<String>, help: Option<String>) -> InputError {
        let (line, column, src) = self.locate(at);
        InputError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
            help,
            source_line: (!src.is_empty()).then(|| src.to_string()),
        }
    }

    /// The offset of byte `i` of string value `s`, when its literal is exactly `s` in quotes so
    /// the two line up (no escapes, not multi-line); otherwise the offset of the value itself.
    fn inside(&self, span: &Range<usize>, s: &str, i: usize) -> usize {
        let plain = self.text.get(span.clone()).is_some_and(|raw| {
            ['"', '\''].into_iter().any(|q| raw.strip_prefix(q).and_then(|r| r.strip_suffix(q)) == Some(s))
        });
        if plain { span.start + 1 + i } else { span.start }
    }

    /// 1-based line and character column of a byte offset, and the line's text.
    fn locate(&self, offset: usize) -> (usize, usize, &'t str) {
        let text = self.text;
        let mut at = offset.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let line = text[..start].bytes().filter(|&b| b == b'\n').count() + 1;
        let column = text[start..at].chars().count() + 1;
        let src = &text[start..end];
        (line, column, src.strip_suffix('\r').unwrap_or(src))
    }
}

fn size_help(key: &str) -> Option<String> {
    Some(format!("write a size with a unit, e.g. {} (K, M, G, T, P are powers of 1024)", sample(key)))
}

fn describe_char(c: char) -> String {
    if c.is_whitespace() {
        "whitespace".into()
    } else if c.is_control() {
        format!("the control character {}", c.escape_unicode())
    } else {
        format!("`{c}`")
    }
}

/// A sample line for `key`, for help texts.
fn sample(key: &str) -> &'static str {
    match key {
        "version" => "version = 1",
        "host" => "[host]",
        "workload" => "[[workload]]",
        "name" => "name = \"db1\"",
        "disk" => "disk = \"/dev/nvme0n1\"",
        "mode" => "mode = \"whole-disk\"",
        "disk_size" => "disk_size = \"1T\"",
        "ssd" => "ssd = true",
        "rootless" => "rootless = false",
        "image" => "image = \"docker.io/library/postgres:16\"",
        "class" => "class = \"database\"",
        "count" => "count = 3",
        "image_size" => "image_size = \"400M\"",
        "volume_size" => "volume_size = \"20G\"",
        "lifetime" => "lifetime = \"short\"",
        "mounts" => "mounts = [\"/var/lib/postgresql/data\"]",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size::{MIB, TIB};

    const HOST: &str = "[host]\ndisk = \"/dev/nvme0n1\"\ndisk_size = \"1T\"\n";
    const WORKLOAD: &str =
        "[[workload]]\nname = \"web\"\nimage = \"docker.io/library/caddy:2\"\nimage_size = \"50M\"\n";

    fn ok(text: &str) -> Inventory {
        parse(text, "t.toml", Source::Spec("t.toml".into())).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> InputError {
        parse(text, "t.toml", Source::Spec("t.toml".into())).expect_err("spec should be rejected")
    }

    /// Line, column and help of the error for `text`.
    fn place(text: &str) -> (usize, usize, String) {
        let e = err(text);
        (e.line, e.column, e.help.unwrap_or_default())
    }

    #[test]
    fn full_spec_parses_into_inventory() {
        let text = r#"
version = 1

[host]
name = "homelab"
disk = "/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S64ANS0T1234:part@1+x"
mode = "data-disk"
disk_size = 1099511627776
ssd = true
rootless = true

[[workload]]
name = "postgres"
image = "docker.io/library/postgres:16"
class = "Database"
count = 2
image_size = "400M"
volume_size = "20G"
lifetime = "long"
mounts = ["/var/lib/postgresql/data", '/run/postgresql']

[[workload]]
name = "nightly.backup-1"
image = "docker.io/restic/restic:0.17.0"
image_size = 31457280
lifetime = "short"
"#;
        let expected = Inventory {
            source: Source::Spec("t.toml".into()),
            host: Host {
                name: "homelab".into(),
                disk: "/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S64ANS0T1234:part@1+x".into(),
                mode: DiskMode::DataDisk,
                disk_size: TIB,
                ssd: true,
                rootless: true,
            },
            workloads: vec![
                Workload {
                    name: "postgres".into(),
                    image: "docker.io/library/postgres:16".into(),
                    class: Class::named("database"),
                    count: 2,
                    image_size: 400 * MIB,
                    volume_size: 20 * GIB,
                    lifetime: Lifetime::Long,
                    mounts: vec!["/var/lib/postgresql/data".into(), "/run/postgresql".into()],
                },
                Workload {
                    name: "nightly.backup-1".into(),
                    image: "docker.io/restic/restic:0.17.0".into(),
                    class: None,
                    count: 1,
                    image_size: 30 * MIB,
                    volume_size: 0,
                    lifetime: Lifetime::Short,
                    mounts: vec![],
                },
            ],
        };
        assert_eq!(ok(text), expected);
    }

    #[test]
    fn optional_keys_take_their_defaults() {
        let inv = ok(&format!("{HOST}{WORKLOAD}"));
        let h = &inv.host;
        assert_eq!((h.name.as_str(), h.mode, h.ssd, h.rootless), ("host", DiskMode::WholeDisk, false, false));
        let w = &inv.workloads[0];
        assert_eq!((w.class, w.count, w.volume_size, w.lifetime), (None, 1, 0, Lifetime::Long));
        assert!(w.mounts.is_empty());
    }

    #[test]
    fn inline_forms_are_accepted() {
        let text = "host = { disk = \"/dev/sda\", disk_size = \"8G\" }\n\
                    workload = [{ name = \"a\", image = \"x\", image_size = 1 }]\n";
        let inv = ok(text);
        assert_eq!(inv.host.disk, "/dev/sda");
        assert_eq!(inv.workloads[0].image_size, 1);
    }

    #[test]
    fn crlf_input_parses_and_places_errors() {
        let text = format!("{HOST}{WORKLOAD}").replace('\n', "\r\n");
        assert_eq!(ok(&text).workloads.len(), 1);
        let e = err(&text.replace("image_size = \"50M\"", "image_size = \"50Q\""));
        assert_eq!((e.line, e.column), (7, 14));
        assert_eq!(e.source_line.as_deref(), Some("image_size = \"50Q\""));
    }

    #[test]
    fn malformed_toml_reports_parser_position() {
        let e = err("[host]\ndisk = \"/dev/sda\"\ndisk_size = [1,\n");
        assert!(e.message.starts_with("malformed TOML"), "{}", e.message);
        assert_eq!(e.line, 3);
        let e = err("[host]\ndisk = = 1\n");
        assert_eq!((e.line, e.column), (2, 8));
        assert_eq!(e.source_line.as_deref(), Some("disk = = 1"));
    }

    #[test]
    fn unknown_workload_key_suggests_the_close_one() {
        let text = format!("{HOST}{}", WORKLOAD.replace("image =", "imgae ="));
        let (line, col, help) = place(&text);
        assert_eq!((line, col), (6, 1));
        assert_eq!(help, "did you mean `image`?");
        let e = err(&format!("{HOST}{WORKLOAD}  volume_szie = \"1G\"\n"));
        assert_eq!((e.line, e.column), (8, 3));
        assert_eq!(e.help.as_deref(), Some("did you mean `volume_size`?"));
    }

    #[test]
    fn unknown_host_key_without_close_match_lists_keys() {
        let (line, col, help) = place(&format!("{HOST}zzz = 1\n{WORKLOAD}"));
        assert_eq!((line, col), (4, 1));
        assert_eq!(help, "the keys of [host] are: name, disk, mode, disk_size, ssd, rootless");
        let (_, _, help) = place(&format!("{HOST}rootles = true\n{WORKLOAD}"));
        assert_eq!(help, "did you mean `rootless`?");
    }

    #[test]
    fn unknown_top_level_tables_and_keys_suggest() {
        let e = err(&format!("{HOST}{}", WORKLOAD.replace("[[workload]]", "[[workloads]]")));
        assert_eq!((e.line, e.column), (4, 3));
        assert_eq!(e.message, "unknown table `[[workloads]]`");
        assert_eq!(e.help.as_deref(), Some("did you mean `[[workload]]`?"));
        let e = err(&format!("{}{WORKLOAD}", HOST.replace("[host]", "[hosts]")));
        assert_eq!((e.line, e.column), (1, 2));
        assert_eq!(e.help.as_deref(), Some("did you mean `[host]`?"));
        let e = err(&format!("verison = 1\n{HOST}{WORKLOAD}"));
        assert_eq!((e.line, e.column), (1, 1));
        assert_eq!(e.help.as_deref(), Some("did you mean `version`?"));
    }

    #[test]
    fn wrong_types_name_the_expected_type() {
        let e = err(&format!("{HOST}{WORKLOAD}count = \"3\"\n"));
        assert_eq!((e.line, e.column), (8, 9));
        assert_eq!(e.message, "`count` must be an integer, found string");
        let e = err(&format!("{HOST}ssd = \"yes\"\n{WORKLOAD}"));
        assert_eq!((e.line, e.column), (4, 7));
        assert!(e.message.contains("boolean"), "{}", e.message);
        let e = err(&format!("host = 1\n{WORKLOAD}"));
        assert_eq!((e.line, e.column), (1, 8));
        assert_eq!(e.message, "`host` must be a table, found integer");
        let e = err(&format!("{HOST}{WORKLOAD}mounts = \"/data\"\n"));
        assert!(e.message.contains("array"), "{}", e.message);
        let e = err(&format!("{HOST}{WORKLOAD}mounts = [\"/a\", 3]\n"));
        assert_eq!((e.line, e.column), (8, 17));
        let e = err(&format!("{HOST}{}", WORKLOAD.replace("\"50M\"", "1.5")));
        assert!(e.message.contains("size"), "{}", e.message);
        let e = err(&format!("{HOST}[workload]\nname = \"a\"\n"));
        assert_eq!((e.line, e.column), (4, 1));
        assert!(e.message.contains("array of tables"), "{}", e.message);
    }

    #[test]
    fn missing_keys_point_at_the_table_header() {
        let e = err(&format!("# spec\n[host]\ndisk_size = \"1T\"\n{WORKLOAD}"));
        assert_eq!((e.line, e.column), (2, 1));
        assert_eq!(e.message, "[host] is missing `disk`");
        let e = err(&format!("{}{WORKLOAD}", HOST.replace("disk_size = \"1T\"\n", "")));
        assert_eq!(e.message, "[host] is missing `disk_size`");
        let e = err(&format!(
            "{HOST}{WORKLOAD}\n{}",
            WORKLOAD.replace("image = \"docker.io/library/caddy:2\"\n", "").replace("web", "api")
        ));
        assert_eq!((e.line, e.column), (9, 1));
        assert_eq!(e.message, "workload `api` is missing `image`");
        assert!(e.help.unwrap().contains("image = "));
        let e = err(&format!("{HOST}{WORKLOAD}{}", WORKLOAD.replace("name = \"web\"\n", "")));
        assert_eq!((e.line, e.column), (8, 1));
        assert_eq!(e.message, "workload #2 is missing `name`");
        let e = err(&format!("{HOST}{}", WORKLOAD.replace("image_size = \"50M\"\n", "")));
        assert_eq!(e.message, "workload `web` is missing `image_size`");
    }

    #[test]
    fn missing_host_or_workloads_show_a_minimal_spec() {
        let e = err(&format!("\n{WORKLOAD}"));
        assert_eq!((e.line, e.column), (1, 1));
        assert_eq!(e.message, "the spec has no [host] table");
        assert!(e.help.unwrap().contains("[[workload]]"));
        let e = err(&format!("version = 1\n{HOST}\n\n"));
        assert_eq!((e.line, e.column), (4, 17));
        assert_eq!(e.message, "the spec has no [[workload]] tables");
        assert_eq!(err(&format!("workload = []\n{HOST}")).message, e.message);
    }

    #[test]
    fn empty_file_is_an_error_at_line_one() {
        for text in ["", "\n\n", "# nothing\r\n"] {
            let e = err(text);
            assert_eq!((e.line, e.column), (1, 1), "{text:?}");
            assert_eq!(e.message, "the spec has no [host] table");
        }
    }

    #[test]
    fn unknown_choices_suggest() {
        let e = err(&format!("{HOST}{WORKLOAD}class = \"databse\"\n"));
        assert_eq!((e.line, e.column), (8, 9));
        assert_eq!(e.help.as_deref(), Some("did you mean `database`?"));
        let (_, _, help) = place(&format!("{HOST}{WORKLOAD}class = \"qqqq\"\n"));
        assert!(help.contains("database, cache, vm"), "{help}");
        let e = err(&format!("{HOST}mode = \"whole_disk\"\n{WORKLOAD}"));
        assert_eq!((e.line, e.column), (4, 8));
        assert_eq!(e.message, "unknown mode `whole_disk`");
        assert_eq!(e.help.as_deref(), Some("did you mean `whole-disk`?"));
        let e = err(&format!("{HOST}{WORKLOAD}lifetime = \"shrot\"\n"));
        assert_eq!((e.line, e.column), (8, 12));
        assert_eq!(e.help.as_deref(), Some("did you mean `short`?"));
        let (_, _, help) = place(&format!("{HOST}{WORKLOAD}lifetime = \"zzz\"\n"));
        assert_eq!(help, "`lifetime` is one of: long, short");
    }

    #[test]
    fn bad_sizes_are_errors_at_the_value() {
        let cases = [
            ("image_size = \"0\"", "greater than zero"),
            ("image_size = 0", "greater than zero"),
            ("image_size = -5", "negative"),
            ("image_size = \"-1G\"", "negative"),
            ("image_size = \"12X\"", "unit"),
            ("image_size = \"1.2.3G\"", "not a size"),
            ("image_size = \"99999999999P\"", "too large"),
            ("volume_size = \"0G\"", "greater than zero"),
        ];
        for (line, msg) in cases {
            let text = format!("{HOST}{}", WORKLOAD.replace("image_size = \"50M\"", line));
            let e = err(&text);
            let col = line.find('=').unwrap() + 3;
            assert_eq!((e.line, e.column), (7, col), "{line}");
            assert!(e.message.contains(msg), "{line}: {}", e.message);
        }
    }

    #[test]
    fn count_must_be_sane() {
        for bad in ["0", "-1", "100001", "9223372036854775807"] {
            let e = err(&format!("{HOST}{WORKLOAD}count = {bad}\n"));
            assert_eq!((e.line, e.column), (8, 9), "{bad}");
            assert!(e.message.starts_with("absurd count"), "{}", e.message);
        }
        assert_eq!(ok(&format!("{HOST}{WORKLOAD}count = 100000\n")).workloads[0].count, 100_000);
        // Larger than i64: the TOML parser itself rejects it.
        let e = err(&format!("{HOST}{WORKLOAD}count = 99999999999999999999\n"));
        assert_eq!(e.line, 8);
    }

    #[test]
    fn duplicate_names_point_at_the_second() {
        let e = err(&format!("{HOST}{WORKLOAD}\n{WORKLOAD}"));
        assert_eq!((e.line, e.column), (10, 8));
        assert_eq!(e.message, "duplicate workload name `web`");
        assert!(e.help.unwrap().contains("line 5"));
    }

    #[test]
    fn only_version_one_is_read() {
        assert_eq!(ok(&format!("version = 1\n{HOST}{WORKLOAD}")).workloads.len(), 1);
        let e = err(&format!("version = 2\n{HOST}{WORKLOAD}"));
        assert_eq!((e.line, e.column), (1, 11));
        assert_eq!(e.message, "unsupported spec version 2");
        assert!(err(&format!("version = \"1\"\n{HOST}{WORKLOAD}")).message.contains("integer"));
    }

    #[test]
    fn disk_size_minimum_depends_on_mode() {
        let small = |mode: &str, size: &str| {
            let host = HOST.replace("\"1T\"", size);
            format!("{host}mode = \"{mode}\"\n{WORKLOAD}")
        };
        let e = err(&small("whole-disk", "\"3G\""));
        assert_eq!((e.line, e.column), (3, 13));
        assert_eq!(e.message, "disk_size 3G is too small for whole-disk mode");
        assert!(e.help.unwrap().contains("at least 4G"));
        assert_eq!(ok(&small("whole-disk", "\"4G\"")).host.disk_size, 4 * GIB);
        let e = err(&small("data-disk", "\"512M\""));
        assert!(e.help.unwrap().contains("at least 1G"));
        assert_eq!(ok(&small("data-disk", "1073741824")).host.disk_size, GIB);
    }

    #[test]
    fn invalid_strings_point_at_the_bad_character() {
        let e = err(&format!("{HOST}{}", WORKLOAD.replace("caddy:2", "caddy 2")));
        assert_eq!((e.line, e.column), (6, 33));
        assert!(e.message.contains("whitespace"));
        let e = err(&format!("{HOST}{}", WORKLOAD.replace("caddy:2", "caddy:$TAG")));
        assert_eq!((e.line, e.column), (6, 34));
        // With an escape the columns no longer line up: point at the value.
        let e = err(&format!("{HOST}{}", WORKLOAD.replace("caddy:2", "caddy\\t2")));
        assert_eq!((e.line, e.column), (6, 9));
        let e = err(&format!("{HOST}{}", WORKLOAD.replace("\"web\"", "\"-web\"")));
        assert_eq!((e.line, e.column), (5, 9));
        let e = err(&format!("{HOST}{}", WORKLOAD.replace("\"web\"", "\"we/b\"")));
        assert_eq!((e.line, e.column), (5, 11));
        assert!(
            err(&format!("{HOST}{}", WORKLOAD.replace("web", &"w".repeat(64))))
                .message
                .contains("invalid name")
        );
        let e = err(&format!("{}{WORKLOAD}", HOST.replace("/dev/nvme0n1", "dev/sda")));
        assert_eq!((e.line, e.column), (2, 9));
        let e = err(&format!("{}{WORKLOAD}", HOST.replace("nvme0n1", "sd;a")));
        assert_eq!((e.line, e.column), (2, 16));
        let e = err(&format!("{HOST}{WORKLOAD}mounts = [\"/ok\", \"data\"]\n"));
        assert_eq!((e.line, e.column), (8, 19));
        assert!(e.message.contains("absolute"));
        let e = err(&format!("{HOST}{WORKLOAD}mounts = [\"/a$b\"]\n"));
        assert_eq!((e.line, e.column), (8, 14));
        assert!(err(&format!("{HOST}{WORKLOAD}mounts = [\"/a\\u0000\"]\n")).message.contains("control"));
        assert!(
            err(&format!("{HOST}{}", WORKLOAD.replace("\"docker.io/library/caddy:2\"", "\"\"")))
                .message
                .contains("empty")
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = err(&format!("{HOST}{WORKLOAD}# é\nlifetime = \"ünknown\" # ü\n"));
        assert_eq!((e.line, e.column), (9, 12));
        let e = err(&format!("{HOST}{WORKLOAD}mounts = [\"/ü\", \"/ö\\\"\"]\n"));
        assert_eq!((e.line, e.column), (8, 17));
        let e = err(&format!("{HOST}{WORKLOAD}mounts = [\"/ü\", '/ö$']\n"));
        assert_eq!((e.line, e.column), (8, 20));
    }

    #[test]
    fn error_display_has_file_line_and_caret() {
        let text = format!("{HOST}{WORKLOAD}count = 0\n");
        let shown = err(&text).to_string();
        assert!(shown.contains("--> t.toml:8:9"), "{shown}");
        assert!(shown.contains("8 | count = 0"), "{shown}");
    }

    #[test]
    fn load_reports_io_errors_and_names_the_file() {
        let missing = Path::new("/nonexistent/podfs-spec.toml");
        assert!(matches!(load(missing), Err(Error::Io { action: "read", .. })));
        let dir = std::env::temp_dir().join(format!("podfs-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("host.toml");
        std::fs::write(&path, format!("{HOST}{WORKLOAD}")).unwrap();
        let inv = load(&path).unwrap();
        assert_eq!(inv.source, Source::Spec(path.display().to_string()));
        std::fs::write(&path, "[host\n").unwrap();
        let Err(Error::Input(e)) = load(&path) else { panic!("expected an input error") };
        assert_eq!(e.file, path.display().to_string());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn survives_pathological_input() {
        let deep = 100_000;
        let texts = [
            format!("a = {}", "[".repeat(deep)),
            format!("a = {}", "{ b = ".repeat(deep)),
            format!("[{}a]", "a.".repeat(deep)),
            format!("{}a = 1", "a.".repeat(deep)),
            format!("[host]\ndisk = \"{}\"", "\\uD800".repeat(10)),
            "\u{feff}[host]\r\n\r".to_string(),
            "\0\r\r\n".to_string(),
        ];
        for text in &texts {
            assert!(parse(text, "t.toml", Source::Spec("t.toml".into())).is_err());
        }
    }

    mod never_panics {
        use super::super::{HOST_KEYS, TOP_KEYS, WORKLOAD_KEYS, parse};
        use crate::inventory::Source;
        use proptest::prelude::*;

        fn config() -> ProptestConfig {
            ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() }
        }

        fn key() -> impl Strategy<Value = String> {
            let known: Vec<&str> = TOP_KEYS.iter().chain(&HOST_KEYS).chain(&WORKLOAD_KEYS).copied().collect();
            prop_oneof![
                4 => proptest::sample::select(known).prop_map(String::from),
                1 => "[a-z_.\"]{1,12}",
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            let scalar = prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|f| format!("{f:?}")),
                any::<bool>().prop_map(|b| b.to_string()),
                "[0-9.]{0,6}[KMGTPXkb]{0,3}".prop_map(|s| format!("\"{s}\"")),
                any::<String>().prop_map(|s| format!("{s:?}")),
                "\\PC{0,10}".prop_map(|s| format!("'{s}'")),
                proptest::sample::select(vec![
                    "\"whole-disk\"",
                    "\"data-disk\"",
                    "\"short\"",
                    "\"database\"",
                    "\"/dev/sda\"",
                    "1979-05-27",
                ])
                .prop_map(String::from),
            ];
            scalar.prop_recursive(3, 12, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| format!("[{}]", v.join(", "))),
                    proptest::collection::vec((key(), inner), 0..4).prop_map(|kv| {
                        let kv: Vec<_> = kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                        format!("{{ {} }}", kv.join(", "))
                    }),
                ]
            })
        }

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
                2 => proptest::sample::select(vec![
                    "[host]", "[[workload]]", "[[workloads]]", "[hosts]", "[workload]", "[[host]]", "[host.x]", "",
                    "# comment",
                ])
                .prop_map(String::from),
                1 => key().prop_map(|k| format!("[{k}]")),
                1 => "\\PC{0,20}",
            ]
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn on_arbitrary_text(text in any::<String>()) {
                let _ = parse(&text, "fuzz", Source::Spec("fuzz".into()));
            }

            #[test]
            fn on_tomlish_fragments(lines in proptest::collection::vec(line(), 0..24), crlf in any::<bool>()) {
                let text = lines.join(if crlf { "\r\n" } else { "\n" });
                let _ = parse(&text, "fuzz", Source::Spec("fuzz".into()));
            }

            #[test]
            fn on_valid_spec_with_one_mutated_value(value in value(), which in 0usize..8) {
                let mut lines: Vec<String> = format!("{}{}", super::HOST, super::WORKLOAD).lines().map(String::from).collect();
                let slots = [1, 2, 4, 5, 6];
                let i = slots[which % slots.len()];
                let key = lines[i].split(" = ").next().unwrap_or_default().to_string();
                lines[i] = format!("{key} = {value}");
                let _ = parse(&lines.join("\n"), "fuzz", Source::Spec("fuzz".into()));
            }
        }
    }
}
