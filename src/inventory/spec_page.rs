//! podman-btrfs-advise-spec(5): the reference for the workload spec format, kept beside its
//! parser so the keys, limits, classes and examples it lists are the parser's own, and
//! rendered to roff for the man pages `generate-docs` writes.
//!
//! Texts use three marks, rendered as man pages do: `**word**` bold (names to type),
//! `*word*` italic (placeholders), and backquotes for literal values, set in bold.

use super::examples::EXAMPLES;
use super::spec::{MAX_COUNT, MIN_DATA_DISK, MIN_WHOLE_DISK, VERSION};
use super::{DiskMode, Lifetime};
use crate::class::Class;
use crate::size::human;
use roff::{Inline, Roff, bold, italic, roman};

/// The page's name; the file is `man5/NAME.5`.
pub const NAME: &str = "podman-btrfs-advise-spec";

/// One documented key of a table: its name, the form of its value, and what it means.
pub struct KeyDoc {
    pub key: &'static str,
    pub value: String,
    pub doc: String,
}

fn key(key: &'static str, value: impl Into<String>, doc: impl Into<String>) -> KeyDoc {
    KeyDoc { key, value: value.into(), doc: doc.into() }
}

/// `"a" | "b"` for a value that is one of some names.
fn one_of(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(" | ")
}

/// The keys of `[host]`, in the order of [`super::spec::HOST_KEYS`].
pub fn host_keys() -> Vec<KeyDoc> {
    vec![
        key(
            "name",
            "\"*string*\"",
            "A name for headers and reports. Optional, default `\"host\"`. It starts with a letter \
             or digit and continues with letters, digits, `_`, `.` or `-`; at most 63 characters.",
        ),
        key(
            "disk",
            "\"*path*\"",
            "The block device to lay out, e.g. `/dev/nvme0n1` or a stable `/dev/disk/by-id/…` \
             path. Required. An absolute path made only of letters, digits and `/ _ . : + @ -`, so \
             that it can be pasted into the generated files as is. The **--disk** option of \
             **podman-btrfs-advise-plan**(1) overrides it.",
        ),
        key(
            "mode",
            one_of(&DiskMode::NAMES),
            "How much of the disk the plan owns. Optional, default `\"whole-disk\"`. `whole-disk`: \
             the disk is the system disk; the plan lays out the ESP, the system subvolumes and the \
             container subvolumes. `data-disk`: the disk holds container data only; the system \
             lives elsewhere.",
        ),
        key(
            "disk_size",
            "*size*",
            format!(
                "The size of the disk (see **SIZES**). Required. At least `{}` in whole-disk mode \
                 (ESP and system), at least `{}` in data-disk mode.",
                human(MIN_WHOLE_DISK),
                human(MIN_DATA_DISK)
            ),
        ),
        key(
            "ssd",
            "*boolean*",
            "The disk is solid-state: adds `ssd` and `discard=async` to the filesystem-wide mount \
             options. Optional, default `false`.",
        ),
        key(
            "rootless",
            "*boolean*",
            "Containers run rootless, so their storage lives per user under \
             `rootless_storage_path`. Optional, default `false`.",
        ),
    ]
}

/// The keys of `[[workload]]`, in the order of [`super::spec::WORKLOAD_KEYS`].
pub fn workload_keys() -> Vec<KeyDoc> {
    vec![
        key(
            "name",
            "\"*string*\"",
            "Required, and unique across workloads. Same characters as the host name.",
        ),
        key(
            "image",
            "\"*reference*\"",
            "The image reference, e.g. `docker.io/library/postgres:16`. Required and non-empty; no \
             whitespace, control characters, `\"`, `\\`, `$` or backquotes. Its last path \
             component, without tag or digest, is evidence for the class.",
        ),
        key(
            "class",
            "\"*class*\"",
            "The class of the workload's data (see **CLASSES**). Optional; when set it wins over \
             every heuristic. Case does not matter.",
        ),
        key(
            "count",
            "*integer*",
            format!(
                "How many containers of this kind run at once. Optional, default `1`; from `1` to \
                 `{MAX_COUNT}`."
            ),
        ),
        key("image_size", "*size*", "Uncompressed size of the image. Required, greater than zero."),
        key(
            "volume_size",
            "*size*",
            "Persistent data of one container. Optional; leave it out when the workload keeps no \
             persistent volume. When present, greater than zero.",
        ),
        key(
            "lifetime",
            one_of(&Lifetime::NAMES),
            "Optional, default `\"long\"`. `long`: services that run until stopped. `short`: jobs \
             (`--rm`, restart=no) that live minutes or less; evidence for the `job` class.",
        ),
        key(
            "mounts",
            "[ \"*path*\", … ]",
            "Where the workload's volumes are mounted inside the container, e.g. \
             `[\"/var/lib/postgresql/data\"]`. Optional, default empty. Each entry is an absolute \
             path without control characters, `\"`, `\\` or `$`. Well-known data directories are \
             evidence for the class.",
        ),
    ]
}

/// One class's paragraph, from its entry of the class table.
fn class_doc(class: Class) -> String {
    let c = class.info();
    let mut first = c.summary.chars();
    let summary: String = first.next().map(|f| f.to_uppercase().chain(first).collect()).unwrap_or_default();
    let placement = if c.own_subvolume { "a subvolume of its own" } else { "the shared volume path" };
    format!("{summary}. Its data goes on {placement}, with {}.", c.attributes())
}

const ERROR_EXAMPLE: &str = "error: unknown key `imgae` in [[workload]]
  --> host.toml:14:1
   |
14 | imgae = \"docker.io/library/postgres:16\"
   | ^
  = help: did you mean `image`?";

const SMALL_HOST: &str = "version = 1

[host]
name = \"small\"
disk = \"/dev/nvme0n1\"
disk_size = \"476G\"
ssd = true

[[workload]]
name = \"caddy\"
image = \"docker.io/library/caddy:2\"
image_size = \"50M\"
volume_size = \"1G\"
mounts = [\"/data\"]

[[workload]]
name = \"postgres\"
image = \"docker.io/library/postgres:16\"
image_size = \"430M\"
volume_size = \"40G\"
mounts = [\"/var/lib/postgresql/data\"]";

/// The whole page as roff.
pub fn render(date: &str, version: &str) -> String {
    let mut page = Page(Roff::new());
    let source = format!("podman-btrfs-advise {version}");
    page.0.control("TH", [NAME, "5", date, source.as_str(), "File Formats"]);

    page.section("NAME");
    page.0.text([roman(format!("{NAME} - Workload spec file for podman-btrfs-advise"))]);

    page.section("DESCRIPTION");
    page.para(
        "A workload spec describes a host that is being planned rather than scanned: the disk to \
         lay out and the containers the host will run. **podman-btrfs-advise plan --spec** *FILE* \
         reads it, classifies every workload and derives from it a btrfs layout, a \
         containers-storage.conf and a NixOS snippet.",
    );
    page.para(
        "The file is TOML (https://toml.io). It holds an optional `version`, one `[host]` table and \
         one or more `[[workload]]` tables. Unknown keys and tables are errors, not warnings: a \
         misspelt key would otherwise silently fall back to a default.",
    );
    page.para(
        "A workload describes one kind of container, run `count` times. Sizes are what the plan \
         checks against the disk; the class decides where the data lives (see **CLASSES**).",
    );

    page.section("FORMAT");
    page.subsection("Top level");
    page.item(
        "**version** = *integer*",
        &format!("Format version. Optional; the only accepted value is `{VERSION}`."),
    );
    page.subsection("[host]");
    page.para("The machine the plan is for. Required, exactly once.");
    page.keys(&host_keys());
    page.subsection("[[workload]]");
    page.para(
        "One kind of container. At least one is required. Each `[[workload]]` header starts a new \
         one; `workload = [{ … }, …]` with inline tables is accepted too.",
    );
    page.keys(&workload_keys());

    page.section("SIZES");
    page.para(
        "A size is either a string with a unit or an integer number of bytes: `\"512M\"`, \
         `\"1.5T\"`, `\"20GiB\"`, `4096`. Units are binary (`K` = 1024 bytes) as in **truncate**(1) \
         and btrfs-progs; `K`, `M`, `G`, `T`, `P` may also be written `KB`/`KiB` and so on, in any \
         case. Sizes of zero, negative sizes and unknown units are errors.",
    );
    page.para("Drives are sold in decimal units: a \"1 TB\" disk holds about `931G`.");

    page.section("CLASSES");
    page.para(
        "A class says what a workload's data is, which decides where it lives. When `class` is \
         unset, the first matching piece of evidence decides: a known image name, then a known \
         data directory in `mounts`, then `lifetime = \"short\"` (job); otherwise `general`. The \
         plan's report lists the evidence for every workload.",
    );
    for class in Class::ALL {
        page.item(&format!("**{}**", class.as_str()), &class_doc(class));
    }
    page.para(
        "With **--strategy reliability**, NOCOW is used only for workloads that declare their \
         class, since it gives up checksums.",
    );

    page.section("ERRORS");
    page.para(
        "Every problem in a spec is reported as *FILE*:*LINE*:*COLUMN* (1-based, columns in \
         characters), with the offending line, a caret under the key or value, and a hint: a \
         \"did you mean\" for misspelt keys, tables, classes, modes and lifetimes, or the list of \
         valid names otherwise. Missing keys are reported at their table's header. For an \
         embedded example, *FILE* is `example:NAME`.",
    );
    page.example(ERROR_EXAMPLE);
    page.para(
        "The command exits with status 2 for any error in the spec, and with status 3 when the \
         file cannot be read.",
    );

    page.section("EXAMPLES");
    page.para("A small host: one NVMe disk running a reverse proxy and a database.");
    page.example(SMALL_HOST);
    page.para("Commented specs built into the program, also shipped as `contrib/examples/NAME.toml`:");
    for example in EXAMPLES {
        page.item(&format!("**{}**", example.name), example.summary);
    }
    page.para("Plan one of them without writing a spec:");
    page.example(
        "$ podman-btrfs-advise plan --example homelab --out ./homelab\n\
         $ podman-btrfs-advise plan --list-examples",
    );

    page.section("SEE ALSO");
    page.para("**podman-btrfs-advise-plan**(1), **podman-btrfs-advise**(1), **containers-storage.conf**(5)");
    page.0.render()
}

/// A page being built, with the few constructs this page uses.
struct Page(Roff);

impl Page {
    fn section(&mut self, title: &str) {
        self.0.control("SH", [title]);
    }

    fn subsection(&mut self, title: &str) {
        self.0.control("SS", [title]);
    }

    fn para(&mut self, text: &str) {
        self.0.control("PP", []).text(inline(text));
    }

    /// A tagged paragraph: `tag` on its own line, `text` indented below it.
    fn item(&mut self, tag: &str, text: &str) {
        self.0.control("TP", []).text(inline(tag)).text(inline(text));
    }

    fn keys(&mut self, keys: &[KeyDoc]) {
        for k in keys {
            self.item(&format!("**{}** = {}", k.key, k.value), &k.doc);
        }
    }

    /// Literal lines, indented and unfilled.
    fn example(&mut self, text: &str) {
        self.0.control("PP", []).control("RS", ["4"]).control("nf", []);
        self.0.text([roman(text)]);
        self.0.control("fi", []).control("RE", []);
    }
}

/// Splits text with `**bold**`, `*italic*` and backquoted literals into roff inlines.
fn inline(text: &str) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let next = rest.find(['*', '`']).unwrap_or(rest.len());
        if next > 0 {
            out.push(roman(&rest[..next]));
            rest = &rest[next..];
            continue;
        }
        let (mark, make): (&str, fn(&str) -> Inline) = if rest.starts_with("**") {
            ("**", |s| bold(s))
        } else if rest.starts_with('*') {
            ("*", |s| italic(s))
        } else {
            ("`", |s| bold(s))
        };
        let body = &rest[mark.len()..];
        match body.find(mark) {
            Some(end) => {
                out.push(make(&body[..end]));
                rest = &body[end + mark.len()..];
            }
            // An unpaired mark is text.
            None => {
                out.push(roman(mark));
                rest = body;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::spec::{HOST_KEYS, WORKLOAD_KEYS};

    #[test]
    fn documents_exactly_the_keys_the_parser_reads() {
        let host: Vec<&str> = host_keys().iter().map(|k| k.key).collect();
        assert_eq!(host, HOST_KEYS);
        let workload: Vec<&str> = workload_keys().iter().map(|k| k.key).collect();
        assert_eq!(workload, WORKLOAD_KEYS);
    }

    #[test]
    fn lists_every_class_and_example() {
        let page = render("2026-01-01", "0.0.0");
        for class in Class::ALL {
            assert!(page.contains(&format!(".TP\n\\fB{}\\fR\n", class.as_str())), "{class} missing");
        }
        for example in EXAMPLES {
            assert!(page.contains(&format!("\\fB{}\\fR", example.name.replace('-', "\\-"))));
        }
    }

    #[test]
    fn marks_become_fonts_and_nothing_of_markdown_is_left() {
        let spans = inline("a **b** *c* `d` e*f");
        assert_eq!(
            spans,
            vec![
                roman("a "),
                bold("b"),
                roman(" "),
                italic("c"),
                roman(" "),
                bold("d"),
                roman(" e"),
                roman("*"),
                roman("f")
            ]
        );
        let page = render("2026-01-01", "0.0.0");
        assert!(page.contains(".TH podman-btrfs-advise-spec 5 2026-01-01"), "{page}");
        for raw in ["**", "##", "\n%"] {
            assert!(!page.contains(raw), "raw {raw:?} in the page");
        }
    }
}
