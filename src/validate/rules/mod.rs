//! The rule catalogue: one file per rule. Each opens with its documentation (what it
//! checks, why it matters, an example, the fix), which `explain CODE` prints, and
//! declares its code and severity.

pub mod p101_fs_options_differ;
pub mod p102_per_subvolume_option;
pub mod p103_nodatacow_with_compress;
pub mod p104_unknown_disko_option;
pub mod p105_options_without_mountpoint;
pub mod p106_duplicate_mountpoint;
pub mod p107_unknown_mount_option;
pub mod p201_unknown_storage_key;
pub mod p202_unknown_driver;
pub mod p203_btrfs_size;
pub mod p204_btrfs_min_space;
pub mod p205_btrfs_mountopt;
pub mod p206_overlay_size_on_btrfs;
pub mod p207_runroot_not_run;
pub mod p208_variable_not_expanded;
pub mod p301_btrfs_driver_not_on_btrfs;
pub mod p302_store_not_own_subvolume;
pub mod p303_btrfs_driver_nodatacow;
pub mod p304_rootless_btrfs_rm;
pub mod p305_imagestore_is_graphroot;
pub mod p401_live_nocow_missing;
pub mod p402_live_options_lost;
pub mod p403_live_compression_differs;
pub mod p404_live_not_mounted;

use super::Inputs;
use super::diagnostic::{Diagnostic, Severity};
use super::disko::{Boot, DiskoFile};
use super::mount_order::{Denied, FirstBecause, Mount, Order};
use crate::layout::{Btrfs, OptionScope, Subvolume, option_scope};

/// A validation rule.
pub struct Rule {
    /// Stable code, e.g. `P101`.
    pub code: &'static str,
    /// Short kebab-case name, e.g. `fs-options-differ`.
    pub name: &'static str,
    pub severity: Severity,
    /// The rule file's leading documentation, as Markdown.
    pub doc: &'static str,
    pub check: fn(&Inputs) -> Vec<Diagnostic>,
}

impl Rule {
    /// The documentation as Markdown, without the space each `///` line starts with.
    pub fn explanation(&self) -> String {
        self.doc
            .lines()
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string()
    }

    /// The first sentence of "What it checks", on one line.
    pub fn summary(&self) -> String {
        let paragraph: Vec<&str> = self
            .doc
            .lines()
            .map(str::trim)
            .skip_while(|l| l.is_empty() || l.starts_with('#'))
            .take_while(|l| !l.is_empty())
            .collect();
        let text = paragraph.join(" ");
        match text.find(". ") {
            Some(end) => text[..=end].to_string(),
            None => text,
        }
    }
}

/// Declares a rule whose doc comment becomes both its item documentation and the text
/// `explain` prints, so the two cannot drift apart.
macro_rules! declare_rule {
    (
        $(#[doc = $doc:literal])*
        pub static $item:ident = {
            code: $code:literal,
            name: $name:literal,
            severity: $severity:expr,
            check: $check:path $(,)?
        };
    ) => {
        $(#[doc = $doc])*
        pub static $item: $crate::validate::rules::Rule = $crate::validate::rules::Rule {
            code: $code,
            name: $name,
            severity: $severity,
            doc: concat!($($doc, "\n"),*),
            check: $check,
        };
    };
}
pub(crate) use declare_rule;

/// Every rule, in code order.
pub static CATALOGUE: &[&Rule] = &[
    &p101_fs_options_differ::RULE,
    &p102_per_subvolume_option::RULE,
    &p103_nodatacow_with_compress::RULE,
    &p104_unknown_disko_option::RULE,
    &p105_options_without_mountpoint::RULE,
    &p106_duplicate_mountpoint::RULE,
    &p107_unknown_mount_option::RULE,
    &p201_unknown_storage_key::RULE,
    &p202_unknown_driver::RULE,
    &p203_btrfs_size::RULE,
    &p204_btrfs_min_space::RULE,
    &p205_btrfs_mountopt::RULE,
    &p206_overlay_size_on_btrfs::RULE,
    &p207_runroot_not_run::RULE,
    &p208_variable_not_expanded::RULE,
    &p301_btrfs_driver_not_on_btrfs::RULE,
    &p302_store_not_own_subvolume::RULE,
    &p303_btrfs_driver_nodatacow::RULE,
    &p304_rootless_btrfs_rm::RULE,
    &p305_imagestore_is_graphroot::RULE,
    &p401_live_nocow_missing::RULE,
    &p402_live_options_lost::RULE,
    &p403_live_compression_differs::RULE,
    &p404_live_not_mounted::RULE,
];

/// The catalogue as the Markdown table in README.md: code, severity, name and summary of
/// every rule, the same text `explain --list` prints.
pub fn markdown_table() -> String {
    let mut table = String::from("| code | severity | name | rule |\n|---|---|---|---|\n");
    for r in CATALOGUE {
        let summary = r.summary().replace('|', "\\|");
        table.push_str(&format!("| {} | {} | `{}` | {summary} |\n", r.code, r.severity.as_str(), r.name));
    }
    table
}

/// A btrfs filesystem's mounts in the order NixOS mounts them (see
/// [`super::mount_order`]): the first one sets the filesystem-wide options.
pub fn mounts_in_order<'a>(
    fs: &'a Btrfs,
    boot: &Boot,
) -> Vec<(&'a str, Option<&'a Subvolume>, &'a [String])> {
    super::mount_order::order(fs, boot).mounts.into_iter().map(|m| (m.at, m.subvolume, m.options)).collect()
}

/// Whether an option is one of those P102 reports (`compress*`, `nodatacow`, `nodatasum`
/// and their opposites): written as if it acted on one subvolume.
pub fn meant_per_subvolume(option: &str) -> bool {
    let key = option.split('=').next().unwrap_or(option);
    matches!(key, "nodatacow" | "datacow" | "nodatasum" | "datasum" | "compress" | "compress-force")
}

/// Names a mount for messages: ``subvolume `@data` (at /data)`` or `the top level (at /x)`.
pub fn mount_name(m: &Mount<'_>) -> String {
    match m.subvolume {
        Some(sv) => format!("subvolume `{}` (at {})", sv.name, m.at),
        None => format!("the top level (at {})", m.at),
    }
}

/// The sentence on a denied mount: what it asks for, what is in force instead, and why
/// that mount comes first.
pub fn denied_message(d: &Denied<'_>, order: &Order<'_>, options: &[&str]) -> String {
    use super::mount_order::normalise;
    let first_has = |o: &str| -> String {
        let Some((key, _)) = normalise(o) else { return String::new() };
        match d.by.options.iter().rev().find(|f| normalise(f).is_some_and(|(k, _)| k == key)) {
            Some(f) => format!("`{f}`"),
            None => format!("no `{}`", o.split('=').next().unwrap_or(o)),
        }
    };
    let asked: Vec<String> = options.iter().map(|o| format!("`{o}`")).collect();
    let mut in_force: Vec<String> = options.iter().map(|o| first_has(o)).collect();
    in_force.dedup();
    let because = match order.because {
        FirstBecause::Root => "NixOS mounts `/` first",
        FirstBecause::NeededForBoot if d.order_undefined && order.tmpfs_root => {
            "with `/` on tmpfs the initrd mounts them first (neededForBoot)"
        }
        FirstBecause::NeededForBoot if d.order_undefined => "the initrd mounts them first (neededForBoot)",
        FirstBecause::NeededForBoot if order.tmpfs_root => {
            "with `/` on tmpfs the initrd mounts it first (neededForBoot)"
        }
        FirstBecause::NeededForBoot => "the initrd mounts it first (neededForBoot)",
        FirstBecause::Shallowest if d.order_undefined => "they are the shallowest mounts",
        FirstBecause::Shallowest => "it is the shallowest mount",
    };
    if d.order_undefined {
        let leading: Vec<&str> = order.leading().iter().map(|m| m.at).collect();
        return format!(
            "{} asks for {} but gets {} when {} mounts first: {} come first in no defined order, as {because}, \
             and filesystem-wide options come from the first mount; on later mounts they are silently ignored",
            mount_name(&d.mount),
            asked.join(", "),
            in_force.join(", "),
            mount_name(&d.by),
            leading.join(" and "),
        );
    }
    format!(
        "{} asks for {} but gets {}: filesystem-wide options come from the first mount, {}, as {because}; \
         on a later mount they are silently ignored",
        mount_name(&d.mount),
        asked.join(", "),
        in_force.join(", "),
        mount_name(&d.by),
    )
}

/// The attribute path of a mount's `mountOptions` (or of its element `option`).
pub fn mount_options_path<'a>(fs: &'a Btrfs, m: &Mount<'a>) -> Vec<&'a str> {
    match m.subvolume {
        Some(sv) => subvolume_path(fs, sv, &["mountOptions"]),
        None => {
            let mut p: Vec<&str> = fs.attr_path.iter().map(String::as_str).collect();
            p.push("mountOptions");
            p
        }
    }
}

/// The offset of one option of a mount's `mountOptions`, else of the list.
pub fn mount_option_offset(disko: &DiskoFile, fs: &Btrfs, m: &Mount<'_>, option: &str) -> Option<usize> {
    let mut path: Vec<String> = mount_options_path(fs, m).into_iter().map(String::from).collect();
    if let Some(i) = m.options.iter().position(|o| o == option) {
        path.push(i.to_string());
    }
    disko.positions.of_path(&path)
}

/// The filesystem-wide options of a mount's option list.
pub fn fs_wide(options: &[String]) -> Vec<&str> {
    options.iter().map(String::as_str).filter(|o| option_scope(o) == OptionScope::FilesystemWide).collect()
}

/// The attribute path of a subvolume's key (or of one of its attributes) in a loaded file.
pub fn subvolume_path<'a>(fs: &'a Btrfs, sv: &'a Subvolume, tail: &[&'a str]) -> Vec<&'a str> {
    let mut p: Vec<&str> = fs.attr_path.iter().map(String::as_str).collect();
    p.push("subvolumes");
    p.push(&sv.name);
    p.extend_from_slice(tail);
    p
}

/// A diagnostic at an attribute of the disko file (or its closest written ancestor).
pub fn at_disko(rule: &Rule, disko: &DiskoFile, path: &[&str], message: impl Into<String>) -> Diagnostic {
    Diagnostic::at(rule.code, rule.severity, &disko.source, disko.positions.of(path), message)
}

/// The offset of the list element `value` in a subvolume's mountOptions, else of the list.
pub fn option_offset(disko: &DiskoFile, fs: &Btrfs, sv: &Subvolume, value: &str) -> Option<usize> {
    let index = sv.mount_options.iter().position(|o| o == value).map(|i| i.to_string());
    let mut path = subvolume_path(fs, sv, &["mountOptions"]);
    if let Some(i) = index.as_deref() {
        path.push(i);
    }
    disko.positions.of(&path)
}

/// The storage driver, graphroot and where each is written (if it is).
pub struct StoreSettings {
    pub driver: String,
    pub driver_at: Option<usize>,
    pub graphroot: String,
    pub graphroot_at: Option<usize>,
}

/// The settings as containers/storage reads them: an unset driver is overlay, the
/// default graphroot applies when none is written.
pub fn store_settings(inputs: &Inputs) -> StoreSettings {
    let Some(s) = &inputs.storage else {
        return StoreSettings {
            driver: "overlay".into(),
            driver_at: None,
            graphroot: super::storage_conf::DEFAULT_GRAPHROOT.into(),
            graphroot_at: None,
        };
    };
    let driver = s.driver_name().unwrap_or_else(|| "overlay".into());
    let driver_at = s.driver().map(|(_, at)| at);
    let (graphroot, graphroot_at) = s.graphroot();
    StoreSettings { driver, driver_at, graphroot, graphroot_at }
}

/// Lines of one rule's findings on a storage.conf text, for the rules' unit tests.
#[cfg(test)]
pub fn storage_findings(rule: &Rule, text: &str) -> Vec<Diagnostic> {
    let storage = super::storage_conf::load_text(text, "storage.conf").expect("test text is valid TOML");
    (rule.check)(&Inputs { storage: Some(storage), ..Inputs::default() })
}

/// (line, column) of one rule's findings on a storage.conf text, for the rules' unit tests.
#[cfg(test)]
pub fn storage_places(rule: &Rule, text: &str) -> Vec<(usize, usize)> {
    storage_findings(rule, text).into_iter().map(|d| (d.line, d.column)).collect()
}

/// A diagnostic at a storage.conf offset when there is a storage.conf, else at a disko
/// attribute, else nowhere in particular (the first input given).
pub fn at_storage_or_disko(
    rule: &Rule,
    inputs: &Inputs,
    storage_offset: Option<usize>,
    disko_path: &[&str],
    message: impl Into<String>,
) -> Diagnostic {
    match (&inputs.storage, &inputs.disko) {
        (Some(s), _) if storage_offset.is_some() => {
            Diagnostic::at(rule.code, rule.severity, &s.source, storage_offset, message)
        }
        (_, Some(d)) => at_disko(rule, d, disko_path, message),
        (Some(s), None) => Diagnostic::at(rule.code, rule.severity, &s.source, storage_offset, message),
        (None, None) => Diagnostic::live(rule.code, rule.severity, message),
    }
}

/// A subvolume the disko file mounts, with the running host's state, for the `--live` rules.
pub struct LiveMount<'a> {
    pub disko: &'a DiskoFile,
    pub live: &'a super::live::LiveState,
    pub fs: &'a Btrfs,
    pub subvolume: &'a Subvolume,
    pub mountpoint: &'a str,
}

/// Every mounted subvolume of the disko file, when `check --live` gathered the host's state.
pub fn live_mounts(inputs: &Inputs) -> Vec<LiveMount<'_>> {
    let (Some(disko), Some(live)) = (&inputs.disko, &inputs.live) else { return Vec::new() };
    disko
        .layout
        .btrfs_filesystems()
        .flat_map(|fs| fs.subvolumes.iter().map(move |sv| (fs, sv)))
        .filter_map(|(fs, subvolume)| {
            let mountpoint = subvolume.mountpoint.as_deref()?;
            Some(LiveMount { disko, live, fs, subvolume, mountpoint })
        })
        .collect()
}

/// With `driver = "btrfs"` and a disko file: the settings and what holds graphroot.
pub fn btrfs_driver_store(inputs: &Inputs) -> Option<(&DiskoFile, StoreSettings, crate::layout::Holder<'_>)> {
    let disko = inputs.disko.as_ref()?;
    let s = store_settings(inputs);
    if s.driver != "btrfs" {
        return None;
    }
    let holder = disko.layout.holder_of(&s.graphroot)?;
    Some((disko, s, holder))
}

/// The rule with this code (case-insensitive) or name.
pub fn find(code_or_name: &str) -> Option<&'static Rule> {
    CATALOGUE.iter().copied().find(|r| r.code.eq_ignore_ascii_case(code_or_name) || r.name == code_or_name)
}
