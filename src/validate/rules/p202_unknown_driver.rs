//! P202 `unknown-driver`.

use super::declare_rule;
use crate::suggest::did_you_mean;
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

/// Storage drivers containers/storage can be told to use. `overlay2` is its alias for
/// `overlay`; the device-mapper driver registers as `devicemapper`, the man page calls it
/// `devmapper`.
pub const DRIVERS: [&str; 7] = ["overlay", "btrfs", "zfs", "vfs", "devmapper", "devicemapper", "overlay2"];
/// The ones to offer in help texts.
const SUGGESTED: [&str; 4] = ["overlay", "btrfs", "zfs", "vfs"];

declare_rule! {
    /// ## What it checks
    ///
    /// A `driver` in `[storage]` that names no storage driver. The drivers are `overlay`,
    /// `btrfs`, `zfs`, `vfs` and `devmapper` (also accepted: `overlay2`, an alias of
    /// `overlay`, and `devicemapper`). An empty `driver = ""` lets containers/storage pick
    /// one and is not reported. Names are compared exactly, as containers/storage does.
    ///
    /// ## Why it matters
    ///
    /// containers/storage looks the driver up by name when Podman opens its store; an
    /// unknown name fails that lookup, and with it every podman command, `podman info`
    /// included. `aufs` is in this list on purpose: it
    /// never was in mainline Linux and current Podman no longer has the driver.
    ///
    /// ## Example
    ///
    /// ```toml
    /// [storage]
    /// driver = "btfrs"
    /// ```
    ///
    /// ## Fix
    ///
    /// Name a driver that exists; for container storage on btrfs that is `overlay` (the
    /// default, and what this tool usually plans) or `btrfs`:
    ///
    /// ```toml
    /// [storage]
    /// driver = "overlay"
    /// ```
    pub static RULE = {
        code: "P202",
        name: "unknown-driver",
        severity: Severity::Error,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(file) = &inputs.storage else { return Vec::new() };
    let path = ["storage", "driver"];
    let Some(item) = file.get(&path) else { return Vec::new() };
    let at = file.value_offset(&path);
    let finding = |message: String, help: String| {
        vec![Diagnostic::at(RULE.code, RULE.severity, &file.source, at, message).with_help(help)]
    };
    let Some(driver) = item.as_str() else {
        return finding(
            format!("`driver` must be a string, found {}", item.type_name()),
            format!("write the driver's name in quotes, e.g. driver = \"overlay\"; {}", choices()),
        );
    };
    if driver.is_empty() || DRIVERS.contains(&driver) {
        return Vec::new();
    }
    let message = format!(
        "unknown storage driver `{}`: Podman cannot open its storage, so every podman command fails",
        driver.escape_debug()
    );
    let help = if driver.trim() != driver && DRIVERS.contains(&driver.trim()) {
        format!("remove the spaces: driver = \"{}\"", driver.trim())
    } else if let Some(near) = DRIVERS.iter().copied().find(|d| d.eq_ignore_ascii_case(driver)) {
        format!("driver names are lower case: driver = \"{near}\"")
    } else if driver == "aufs" {
        format!("aufs is not part of mainline Linux and current Podman has no aufs driver; {}", choices())
    } else if let Some(near) = did_you_mean(driver, DRIVERS) {
        format!("did you mean `{near}`?")
    } else {
        choices()
    };
    finding(message, help)
}

fn choices() -> String {
    format!("the drivers are {}, or \"\" to let containers/storage pick one", SUGGESTED.join(", "))
}

#[cfg(test)]
mod tests {
    use crate::validate::{Inputs, storage_conf};

    fn run(text: &str) -> Vec<(usize, usize, String)> {
        let storage = storage_conf::load_text(text, "storage.conf").unwrap();
        let inputs = Inputs { storage: Some(storage), ..Inputs::default() };
        (super::RULE.check)(&inputs)
            .into_iter()
            .map(|d| (d.line, d.column, d.help.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn known_and_empty_drivers_pass() {
        for d in ["overlay", "btrfs", "zfs", "vfs", "devmapper", "overlay2", ""] {
            assert!(run(&format!("[storage]\ndriver = \"{d}\"\n")).is_empty(), "{d}");
        }
        assert!(run("[storage]\n").is_empty());
        assert!(run("").is_empty());
    }

    #[test]
    fn unknown_drivers_point_at_the_value() {
        assert_eq!(run("[storage]\ndriver = \"btfrs\"\n"), [(2, 10, "did you mean `btrfs`?".to_string())]);
        assert_eq!(
            run("[storage]\ndriver = \"Overlay\"\n")[0].2,
            "driver names are lower case: driver = \"overlay\""
        );
        assert_eq!(run("[storage]\ndriver = \"btrfs \"\n")[0].2, "remove the spaces: driver = \"btrfs\"");
        assert!(run("[storage]\ndriver = \"aufs\"\n")[0].2.starts_with("aufs is not part"));
        assert!(run("storage.driver = 3\n")[0].2.starts_with("write the driver's name in quotes"));
        assert!(run("[storage]\ndriver = \"qqqq\"\n")[0].2.starts_with("the drivers are overlay, btrfs"));
    }
}
