//! The scan report for people.

use super::ScanReport;
use crate::inspect::Placement;
use crate::size::human;
use std::fmt::Write;

fn size(s: Option<u64>) -> String {
    s.map_or_else(|| "-".into(), human)
}

fn placement_line(p: &Placement) -> String {
    let mut s = format!("{} on {}", p.filesystem, p.device);
    if let Some(sv) = &p.subvolume {
        let own = if p.own_subvolume { ", a subvolume of its own" } else { "" };
        let _ = write!(s, ", subvolume {sv}{own}");
    }
    if p.is_btrfs() {
        let _ = write!(s, "; filesystem options {}", p.filesystem_options.join(","));
    }
    s
}

fn attributes(p: Option<&Placement>) -> String {
    match p {
        Some(p) if p.is_btrfs() => {
            let cow = if p.nocow == Some(true) { "NOCOW" } else { "CoW" };
            let comp = if p.compresses() { "compressed" } else { "uncompressed" };
            format!("{cow}, {comp}")
        }
        Some(p) => p.filesystem.clone(),
        None => "?".into(),
    }
}

pub fn render(r: &ScanReport) -> String {
    let mut out = String::new();
    let who = if r.rootless { "rootless" } else { "rootful" };
    let _ =
        writeln!(out, "Podman {} at {} ({who}), driver {}", r.podman_version, r.endpoint, r.storage.driver);
    let _ = writeln!(out, "  graphroot   {}", r.storage.graphroot);
    if let Some(g) = &r.graphroot {
        let _ = writeln!(out, "              {}", placement_line(g));
    }
    if let Some(note) = &r.placement_source.note {
        let _ = writeln!(out, "  note        {note}");
    }
    if let Some(v) = &r.volume_path {
        let _ = writeln!(out, "  volumes     {}", v.path);
        let _ = writeln!(out, "              {}", placement_line(v));
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "\n{} images ({}), {} containers, {} volumes ({})",
        s.images,
        human(s.image_bytes),
        s.containers,
        s.volumes,
        human(s.volume_bytes)
    );
    if !s.by_class.is_empty() {
        out.push_str("\nBy class:\n");
        for (class, c) in &s.by_class {
            let _ = writeln!(
                out,
                "  {class:<9} {:>4} containers {:>4} volumes {:>8}",
                c.containers,
                c.volumes,
                human(c.volume_bytes)
            );
        }
    }
    if !r.volumes.is_empty() {
        let _ =
            writeln!(out, "\nVolumes:\n  {:<24} {:<9} {:>8}  {:<18} WHY", "NAME", "CLASS", "SIZE", "STORAGE");
        for v in &r.volumes {
            let why = v.evidence.first().map_or(String::new(), |e| e.detail.clone());
            let _ = writeln!(
                out,
                "  {:<24} {:<9} {:>8}  {:<18} {}",
                v.volume.name,
                v.class.as_str(),
                size(v.volume.size),
                attributes(v.placement.as_ref()),
                why
            );
        }
    }
    if !r.containers.is_empty() {
        let _ = writeln!(out, "\nContainers:\n  {:<24} {:<9} {:<9} WHY", "NAME", "CLASS", "STATE");
        for c in &r.containers {
            let why = c.evidence.first().map_or(String::new(), |e| e.detail.clone());
            let _ = writeln!(
                out,
                "  {:<24} {:<9} {:<9} {}",
                c.container.name,
                c.class.as_str(),
                c.container.state,
                why
            );
        }
    }
    if r.findings.is_empty() {
        out.push_str("\nNo findings: data lies where its class wants it.\n");
    } else {
        out.push_str("\nFindings:\n");
        for f in &r.findings {
            let _ = writeln!(out, "  {}[{}]: {}\n    help: {}", f.severity, f.code, f.message, f.help);
        }
    }
    out
}
