//! P305 `imagestore-is-graphroot`.

use super::{declare_rule, store_settings};
use crate::validate::Inputs;
use crate::validate::diagnostic::{Diagnostic, Severity};

declare_rule! {
    /// ## What it checks
    ///
    /// `imagestore` set to the same directory as `graphroot`.
    ///
    /// ## Why it matters
    ///
    /// `imagestore` moves image layers out of graphroot into a separate store. Pointing it
    /// at graphroot itself makes containers/storage manage the same directory as two
    /// stores: layers are listed twice, and removing images through one corrupts the other.
    ///
    /// ## Example
    ///
    /// ```toml
    /// [storage]
    /// graphroot = "/var/lib/containers/storage"
    /// imagestore = "/var/lib/containers/storage"
    /// ```
    ///
    /// ## Fix
    ///
    /// Remove `imagestore`, or point it at a different directory (for example a subvolume
    /// of its own for images).
    pub static RULE = {
        code: "P305",
        name: "imagestore-is-graphroot",
        severity: Severity::Error,
        check: check,
    };
}

fn check(inputs: &Inputs) -> Vec<Diagnostic> {
    let Some(storage) = &inputs.storage else { return Vec::new() };
    let Some((imagestore, offset)) = storage.get_str(&["storage", "imagestore"]) else { return Vec::new() };
    let s = store_settings(inputs);
    if imagestore.trim_end_matches('/') != s.graphroot.trim_end_matches('/') {
        return Vec::new();
    }
    vec![
        Diagnostic::at(
            RULE.code,
            RULE.severity,
            &storage.source,
            Some(offset),
            format!("imagestore {imagestore} is graphroot itself"),
        )
        .with_help("remove imagestore, or point it at another directory"),
    ]
}
