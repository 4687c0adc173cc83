//! `storage.conf` for containers/storage, written with toml_edit.

use crate::decide::{Driver, StorageSettings};
use toml_edit::{DocumentMut, Item, Table, value};

/// Only keys that exist for the chosen driver and that Podman accepts: no
/// `[storage.options.btrfs] size` (rejected), no `min_space` (turns on quotas for the whole
/// filesystem), no `mountopt` for the btrfs driver (rejected).
pub fn render(settings: &StorageSettings, header: &[String]) -> String {
    let mut doc = DocumentMut::new();
    let mut storage = Table::new();
    storage.insert("driver", value(settings.driver.as_str()));
    storage.insert("graphroot", value(&settings.graphroot));
    storage.insert("runroot", value(&settings.runroot));
    if let Some(p) = &settings.rootless_storage_path {
        storage.insert("rootless_storage_path", value(p));
    }
    if settings.driver == Driver::Overlay
        && let Some(mountopt) = &settings.overlay_mountopt
    {
        let mut overlay = Table::new();
        overlay.insert("mountopt", value(mountopt));
        let mut options = Table::new();
        options.set_implicit(true);
        options.insert("overlay", Item::Table(overlay));
        storage.insert("options", Item::Table(options));
    }
    doc.insert("storage", Item::Table(storage));
    let mut text: String =
        header.iter().map(|l| if l.is_empty() { "#\n".to_string() } else { format!("# {l}\n") }).collect();
    text.push('\n');
    text.push_str(&doc.to_string());
    text
}
