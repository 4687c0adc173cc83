//! P104 `unknown-disko-option`.

use super::{at_disko, declare_rule};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};
use crate::validate::disko::known_options;

declare_rule! {
    /// ## What it checks
    ///
    /// Option names that disko does not define for the type they are under: disk, gpt,
    /// partition, filesystem, btrfs, btrfs subvolume, luks and swap.
    ///
    /// ## Why it matters
    ///
    /// disko's module system rejects unknown options at evaluation, or, inside free-form
    /// attributes, ignores them: a misspelt `mountpoint` leaves a subvolume unmounted and
    /// its data in the parent, a misspelt `size` fails the install halfway.
    ///
    /// ## Example
    ///
    /// ```nix
    /// "@nix" = { mountpoints = "/nix"; mountOptions = [ "noatime" ]; };
    /// ```
    ///
    /// ## Fix
    ///
    /// Use the option name disko defines; the message suggests the closest one.
    pub static RULE = {
        code: "P104",
        name: "unknown-disko-option",
        severity: Severity::Error,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(disko) = &inputs.disko else { return Vec::new() };
    disko
        .unknown
        .iter()
        .map(|(path, kind)| {
            let key = path.last().map(String::as_str).unwrap_or("");
            let known = known_options(kind).unwrap_or(&[]);
            let help = match crate::suggest::did_you_mean(key, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the known options are: {}", known.join(", ")),
            };
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            let what = kind.replace("btrfs_subvol", "btrfs subvolume").replace('_', " ");
            at_disko(&RULE, disko, &p, format!("unknown option `{key}` for a disko {what}")).with_help(help)
        })
        .collect()
}
