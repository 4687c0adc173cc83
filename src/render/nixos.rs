//! `podfs-storage.nix`: a NixOS module that mirrors storage.conf and, through
//! systemd-tmpfiles, re-applies NOCOW to the data directories on hosts where the disko
//! hook never ran (a layout made by hand, or a subvolume re-created later), and schedules
//! the class snapshots with NixOS's btrbk module.

use super::nix::{Attr, Nix, list_of_strings, s};
use crate::decide::{Driver, Plan};

pub fn render(plan: &Plan, header: &[String]) -> String {
    let st = &plan.storage;
    let mut storage = vec![
        Attr::new("driver", s(st.driver.as_str())),
        Attr::new("graphroot", s(&st.graphroot)),
        Attr::new("runroot", s(&st.runroot)),
    ];
    if let Some(p) = &st.rootless_storage_path {
        storage.push(Attr::new("rootless_storage_path", s(p)));
    }
    if st.driver == Driver::Overlay
        && let Some(m) = &st.overlay_mountopt
    {
        storage.push(Attr::new("options.overlay.mountopt", s(m)));
    }
    let mut attrs = vec![
        Attr::new(
            "virtualisation.containers.storage.settings",
            Nix::Attrs(vec![Attr::new("storage", Nix::Attrs(storage))]),
        )
        .with_comment("Written to /etc/containers/storage.conf; the same settings as storage.conf."),
    ];
    if let Some(tmp) = &st.image_copy_tmp_dir {
        attrs.push(
            Attr::new("virtualisation.containers.containersConf.settings.engine.image_copy_tmp_dir", s(tmp))
                .with_comment("Layer copies during pull and push go to the NOCOW scratch subvolume."),
        );
    }
    let rules = tmpfiles_rules(plan);
    if !rules.is_empty() {
        attrs.push(
            Attr::new("systemd.tmpfiles.rules", list_of_strings(rules))
                .with_comment("Safety net: create the data directories and set NOCOW (+C) where planned.")
                .with_comment("+C only affects files created afterwards; it cannot convert existing data."),
        );
    }
    if let Some(btrbk) = btrbk_instance(plan) {
        attrs.push(btrbk);
    }
    let module = Nix::Raw(format!("_: {}", super::nix::to_file(&[], &Nix::Attrs(attrs)).trim_end()));
    super::nix::to_file(header, &module)
}

/// `services.btrbk.instances.podfs`: the settings of btrbk.conf, run by NixOS's own timer
/// at the plan's most frequent schedule; absent when nothing is snapshotted.
fn btrbk_instance(plan: &Plan) -> Option<Attr> {
    let settings = super::btrbk::settings(plan, &super::btrbk::Paths::default());
    let every = settings.every?;
    let option = |(k, v): &(&str, String)| Attr::key(k, s(v));
    let mut entries: Vec<Attr> = settings.globals.iter().map(option).collect();
    let subvolumes = settings
        .subvolumes
        .iter()
        .map(|sv| Attr::key(&sv.path, Nix::Attrs(sv.options.iter().map(option).collect())));
    entries.push(Attr::new("subvolume", Nix::Attrs(subvolumes.collect())));
    Some(
        Attr::new(
            "services.btrbk.instances.podfs",
            Nix::Attrs(vec![
                Attr::new("onCalendar", s(every.as_str())),
                Attr::new("settings", Nix::Attrs(entries)),
            ]),
        )
        .with_comment("Snapshots by class, as btrbk.conf; add settings.target for off-host copies.")
        .with_comment("btrbk pauses no container: every snapshot is crash-consistent (see PLAN.md)."),
    )
}

/// `d` creates a directory, `h` sets file attributes (`+C` = NOCOW). systemd-tmpfiles
/// handles parents before children, so directories made below a `+C` one inherit it.
pub fn tmpfiles_rules(plan: &Plan) -> Vec<String> {
    let mut rules = Vec::new();
    for sv in plan.layout.subvolumes().filter(|sv| sv.nocow) {
        if let Some(m) = &sv.mountpoint {
            rules.push(format!("d {m} 0755 root root -"));
            rules.push(format!("h {m} - - - - +C"));
        }
    }
    for s in crate::decide::snapshots::snapshot_plan(plan) {
        if matches!(s.snapshots, crate::class::Snapshots::Scheduled(_)) {
            let rule = format!("d {} 0700 root root -", s.snapshot_dir);
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    for p in &plan.placements {
        if p.kind == crate::decide::PlacementKind::BindVolume {
            rules.push(format!("d {} 0755 root root -", p.path));
        }
    }
    rules
}
