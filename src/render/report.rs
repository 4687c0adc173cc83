//! `PLAN.md`: every decision, why, and what it gives up; each workload with its class and
//! the evidence for it.

use crate::decide::Plan;
use crate::inventory::DiskMode;
use crate::size::Human;
use std::fmt::Write;

/// Escapes text for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(plan: &Plan, header: &[String]) -> String {
    let mut out = String::new();
    for line in header {
        let _ = writeln!(out, "> {line}  ");
    }
    let host = &plan.profile.host;
    let _ = writeln!(out, "\n# Storage plan for {}\n", host.name);
    summary(&mut out, plan);
    if !plan.warnings.is_empty() {
        out.push_str("\n## Warnings\n\n");
        for w in &plan.warnings {
            let _ = writeln!(out, "- {w}");
        }
    }
    measured(&mut out, plan);
    decisions(&mut out, plan);
    subvolumes(&mut out, plan);
    workloads(&mut out, plan);
    placements(&mut out, plan);
    snapshots(&mut out, plan);
    applying(&mut out, plan);
    out
}

fn summary(out: &mut String, plan: &Plan) {
    let host = &plan.profile.host;
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| Disk | `{}`, {}, {}{} |",
        cell(&host.disk),
        Human(host.disk_size),
        host.mode.as_str(),
        if host.ssd { ", SSD" } else { "" }
    );
    let _ = writeln!(out, "| Strategy | {} |", plan.strategy);
    let _ = writeln!(out, "| Storage driver | {} |", plan.storage.driver);
    let _ = writeln!(out, "| Rootless | {} |", if host.rootless { "yes" } else { "no" });
    let _ = writeln!(
        out,
        "| Workloads | {} ({} containers) |",
        plan.profile.workloads.len(),
        plan.profile.containers()
    );
    let _ = writeln!(
        out,
        "| Estimated use | {} of {} |",
        Human(crate::decide::estimated_use(&plan.profile, plan.database_fs)),
        Human(host.disk_size)
    );
    let _ = writeln!(out, "| Filesystem-wide options | `{}` |", plan.filesystem_options.join(","));
    if let Some(fs) = plan.database_fs {
        let size = crate::decide::database_fs::partition_bytes(&plan.profile);
        let _ = writeln!(
            out,
            "| Database data | {fs} partition `{}`, {} (see \"database data\") |",
            crate::decide::database_fs::PARTITION,
            Human(size)
        );
    }
    if let Some(b) = &plan.bench {
        let _ = writeln!(
            out,
            "| Measured | `{}`, {} (see \"Measured on this disk\") |",
            cell(&b.file),
            b.taken_at
        );
    }
}

/// "Measured on this disk": the figures of `plan --bench`, where they come from, and
/// which decisions they changed.
pub fn measured(out: &mut String, plan: &Plan) {
    use crate::decide::measured::{count, number};
    let Some(b) = &plan.bench else { return };
    out.push_str("\n## Measured on this disk\n\n");
    let h = &b.host;
    let _ = writeln!(
        out,
        "From `{}`: `bench` {} measured `{}` ({}{}, kernel {}, {} CPUs) at {}, {} round{} per figure{}.\n",
        cell(&b.file),
        cell(&b.tool_version),
        cell(&h.dir),
        cell(&h.filesystem),
        h.device.as_deref().map(|d| format!(" on `{}`", cell(d))).unwrap_or_default(),
        cell(&h.kernel),
        h.cpus,
        cell(&b.taken_at),
        h.rounds,
        if h.rounds == 1 { "" } else { "s" },
        if h.quick { ", a quick run (`--quick`)" } else { ", a full run" },
    );
    if b.figures.is_empty() {
        out.push_str("The report holds no figures.\n");
    } else {
        out.push_str("| Part | Layout / driver | Measure | Median | Min–max |\n|---|---|---|---|---|\n");
        for f in &b.figures {
            let number = if f.measure == "extents" { count } else { number };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {}–{} |",
                f.part,
                cell(&f.option),
                f.measure,
                number(f.median),
                number(f.min),
                number(f.max)
            );
        }
    }
    if !b.skipped.is_empty() {
        out.push_str("\nNot measured:\n\n");
        for s in &b.skipped {
            let _ = writeln!(out, "- {}: {}", cell(&s.what), cell(&s.why));
        }
    }
    let _ = writeln!(
        out,
        "\nMeasurements overrule the general reasons only where two options differ clearly: {}. \
         For the storage driver the figures compared are the summed medians of the operations \
         the workload mix does most (builds: {}; otherwise: {}), and they decide only where \
         builds and short-lived jobs are at least a quarter of the containers; the \
         reliability strategy keeps overlay whatever they show.\n",
        b.threshold,
        crate::decide::measured::BUILD_OPERATIONS.join(", "),
        crate::decide::measured::CONTAINER_OPERATIONS.join(", "),
    );
    let topics = |t: &[String]| t.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
    if b.changed.is_empty() {
        out.push_str(
            "Decisions the measurements changed: none; every decision is what the general reasons give.\n",
        );
    } else {
        let _ = writeln!(out, "Decisions the measurements changed: {}.", topics(&b.changed));
    }
    if !b.cited.is_empty() {
        let _ = writeln!(out, "\nDecisions that cite them: {}.", topics(&b.cited));
    }
    for n in &b.notes {
        let _ = writeln!(out, "\nNote: {n}.");
    }
}

fn decisions(out: &mut String, plan: &Plan) {
    out.push_str("\n## Decisions\n");
    for d in &plan.decisions {
        let _ = writeln!(out, "\n### {}\n\n**Choice:** {}\n", d.topic, d.choice);
        out.push_str("Why:\n\n");
        for w in &d.why {
            let _ = writeln!(out, "- {w}");
        }
        if !d.gives_up.is_empty() {
            out.push_str("\nGives up:\n\n");
            for g in &d.gives_up {
                let _ = writeln!(out, "- {g}");
            }
        }
    }
}

fn subvolumes(out: &mut String, plan: &Plan) {
    out.push_str("\n## Subvolumes\n\n| Subvolume | Mountpoint | NOCOW | Compression | Holds |\n|---|---|---|---|---|\n");
    for sv in plan.layout.subvolumes() {
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} | {} |",
            sv.name,
            sv.mountpoint.as_deref().unwrap_or("-"),
            if sv.nocow { "yes" } else { "no" },
            match (sv.nocow, sv.compression) {
                (true, _) => "off (NOCOW)".to_string(),
                (false, Some(c)) => format!("property `{c}`"),
                (false, None) => "mount option".to_string(),
            },
            cell(sv.purpose.as_deref().unwrap_or("")),
        );
    }
}

fn workloads(out: &mut String, plan: &Plan) {
    out.push_str(
        "\n## Workloads\n\n| Workload | Image | Count | Class | Evidence |\n|---|---|---|---|---|\n",
    );
    for w in &plan.profile.workloads {
        let mut evidence: Vec<String> = Vec::new();
        for (i, e) in w.evidence.iter().enumerate() {
            let kind = e.kind.word();
            if i == 0 {
                evidence.push(format!("**{kind}:** {}", e.detail));
            } else {
                evidence.push(format!("also {kind}: {} (→ {})", e.detail, e.suggests));
            }
        }
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | **{}** | {} |",
            cell(&w.workload.name),
            cell(&w.workload.image),
            w.workload.count,
            w.decided,
            cell(&evidence.join("; ")),
        );
    }
}

fn placements(out: &mut String, plan: &Plan) {
    if plan.placements.is_empty() {
        return;
    }
    out.push_str("\n## Where data goes\n\n| Workload | Class | Directory | Subvolume | Create the volume |\n|---|---|---|---|---|\n");
    for p in &plan.placements {
        let create = format!("`{}`", p.create_commands());
        let holder = match (&p.partition, plan.database_fs) {
            (Some(part), Some(fs)) => format!("{fs} partition `{part}`"),
            (Some(part), None) => format!("partition `{part}`"),
            (None, _) => format!("`{}`", p.subvolume),
        };
        let _ = writeln!(
            out,
            "| {} | {} | `{}` | {} | {} |",
            cell(&p.workload),
            p.class,
            cell(&p.path),
            holder,
            cell(&create)
        );
    }
    out.push_str(
        "\nA workload with several containers gets one volume per container (`NAME-1`, \
         `NAME-2`, …). New directories inherit NOCOW and the compression property from the \
         directory above them.\n",
    );
}

/// "Snapshots and backups": what btrbk.conf snapshots, how often, how long, at what cost,
/// and how the copies leave the host.
fn snapshots(out: &mut String, plan: &Plan) {
    use crate::class::Snapshots;
    use crate::decide::snapshots::snapshot_plan;
    out.push_str("\n## Snapshots and backups\n\n");
    let planned = snapshot_plan(plan);
    let scheduled: Vec<_> = planned
        .iter()
        .filter_map(|s| match s.snapshots {
            Snapshots::Scheduled(p) => Some((s, p)),
            _ => None,
        })
        .collect();
    if scheduled.is_empty() {
        out.push_str("No subvolume of this plan holds data that is snapshotted on a schedule.\n");
    } else {
        out.push_str(
            "`btrbk.conf` takes read-only snapshots of these subvolumes into the directory \
             listed (a snapshot nested in the subvolume it copies is left out of the next one):\n\n\
             | Subvolume | Holds | Snapshots | Into | Kept on the host | Kept off the host | Each snapshot costs |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for (s, p) in &scheduled {
            let cost = if s.subvolume.nocow {
                "NOCOW: the next write of every block after it is copy-on-write once (fragmenting, \
                 until rewritten), and blocks it still shares stay on disk"
            } else {
                "the space of the blocks changed since, kept until the snapshot is removed"
            };
            let classes: Vec<&str> = s.classes.iter().map(|c| c.as_str()).collect();
            let _ = writeln!(
                out,
                "| `{}` | {} | {}{} | `{}` | {} | {} | {cost} |",
                s.subvolume.name,
                classes.join(", "),
                p.every.as_str(),
                if p.pause { ", pause its containers" } else { "" },
                s.snapshot_dir,
                p.keep.describe(),
                p.keep_off_host.describe(),
            );
        }
        let every = scheduled.iter().map(|(_, p)| p.every).max().map_or("", |e| e.as_str());
        let _ = writeln!(
            out,
            "\nbtrbk runs {every} (`btrbk -c /etc/btrbk/podfs.conf run`: `contrib/systemd/podfs-btrbk.timer`, \
             or `services.btrbk.instances.podfs` in `podfs-storage.nix`). It keeps the first snapshot \
             of each hour, day, week and month as listed and the newest one. Each run snapshots every \
             listed subvolume whose snapshots lie inside it (such a snapshot changes the subvolume, \
             so btrbk cannot tell whether anything else did), otherwise only the ones that changed. \
             The snapshot directories must exist: `install -d -m 0700 {}` (the NixOS snippet creates \
             them).",
            {
                let mut dirs: Vec<&str> = scheduled.iter().map(|(s, _)| s.snapshot_dir.as_str()).collect();
                dirs.dedup();
                dirs.join(" ")
            }
        );
        if scheduled.iter().any(|(_, p)| p.pause) {
            out.push_str(
                "\nbtrbk pauses no container: its snapshots are crash-consistent, what a power cut \
                 leaves, which databases recover from through their journal. For a consistent copy \
                 of a subvolume marked \"pause its containers\", pause them around a snapshot of it: \
                 `podman pause CONTAINER… && btrbk -c /etc/btrbk/podfs.conf snapshot MOUNTPOINT; \
                 podman unpause CONTAINER…`.\n",
            );
        }
    }
    out.push_str("\nNever snapshotted:\n\n");
    for l in crate::render::btrbk::left_out(plan) {
        let _ = writeln!(out, "- {l}");
    }
    out.push_str(
        "\nSnapshots on the same disk are no backup. For copies off the host, set \
         `target send-receive DIR` in `btrbk.conf` (a btrfs filesystem on another disk) or \
         `target send-receive ssh://HOST/DIR` (another host over ssh, which needs btrfs-progs \
         there and a key, btrbk.conf(5) `ssh_identity`); on NixOS `settings.target`; btrbk then sends every new snapshot incrementally with \
         `btrfs send`/`btrfs receive` and keeps the \"off the host\" counts there. A snapshot \
         is restored by copying its files back or by `btrfs subvolume snapshot` of it in the \
         subvolume's place, with the containers using it stopped.\n",
    );
}

fn applying(out: &mut String, plan: &Plan) {
    out.push_str("\n## Applying the plan\n\n");
    match plan.profile.host.mode {
        DiskMode::WholeDisk => out.push_str(
            "1. New host: partition, format and mount with disko (this **erases the disk**): \
             `disko --mode destroy,format,mount disko.nix`, then install NixOS with \
             `podfs-storage.nix` imported.\n",
        ),
        DiskMode::DataDisk => out.push_str(
            "1. Format the data disk with disko (this **erases that disk**): \
             `disko --mode destroy,format,mount disko.nix`, and import the generated \
             `fileSystems` (or the disko NixOS module) so the subvolumes mount at boot.\n",
        ),
    }
    out.push_str(
        "2. NixOS: import `podfs-storage.nix`. Other distributions: install `storage.conf` as \
         `/etc/containers/storage.conf`.\n\
         3. Existing host with images, containers or volumes: do not switch `driver` or \
         `graphroot` and do not move data by hand; Podman refuses changed paths or, worse, \
         starts over, and never run a bare `podman system reset`: it deletes graphroot \
         **including volumes**. `podman-btrfs-advise migrate --plan DIR --dry-run` (DIR \
         holding this plan's `plan.json`) shows the steps; without `--dry-run` it converts \
         the host in place, keeping every path Podman knows: graphroot and the volumes of \
         classes with a subvolume of their own become subvolumes with their attributes, \
         filled by a verified copy, the old data kept until `migrate --finalize` \
         (`migrate --rollback` returns to the original state). Data on another disk, or on \
         ext4 or xfs: format the new disk with disko without mounting it (`disko --mode \
         destroy,format disko.nix`), then `podman-btrfs-advise migrate --plan DIR --to-disk DEV` \
         copies onto it, verifies, mounts the subvolumes at the same paths and writes the \
         persistent mounts (fstab, systemd units or a NixOS module) it showed before starting.\n\
         4. Check the result: `lsattr -d DIR` shows `C` on NOCOW directories and \
         `btrfs property get DIR compression` the compression.\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::Strategy;
    use crate::decide::measured::tests::{even, plan_of, report};

    fn section(plan: &Plan) -> String {
        let mut out = String::new();
        measured(&mut out, plan);
        out
    }

    #[test]
    fn the_measured_section_tabulates_every_figure_and_its_origin() {
        let bench = even();
        let plan = plan_of("homelab", Strategy::Balanced, &bench);
        let text = section(&plan);
        assert!(text.starts_with("\n## Measured on this disk\n"), "{text}");
        assert!(
            text.contains(
                "From `b.json`: `bench` 0.1.0 measured `/var/lib/containers` (btrfs on `/dev/nvme0n1p2`, \
                 kernel 6.1.0-28-amd64, 2 CPUs) at 20261130T091500Z, 3 rounds per figure, a full run."
            ),
            "{text}"
        );
        let rows: Vec<&str> =
            text.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| Part")).collect();
        assert_eq!(rows.len(), plan.bench.as_ref().unwrap().figures.len());
        assert!(rows.contains(&"| database | nocow | IOPS | 2,216 | 2,150–2,260 |"), "{rows:#?}");
        assert!(rows.contains(&"| database | cow-zstd | extents | 47,915 | 47,915–47,915 |"), "{rows:#?}");
        assert!(rows.contains(&"| containers | btrfs import | ms | 1,000 | 900–1,100 |"), "{rows:#?}");
        assert!(text.contains("Not measured:\n\n- compare: example"), "{text}");
        assert!(text.contains("Decisions the measurements changed: none"), "{text}");
        assert!(text.contains("\"storage driver\", \"filesystem-wide mount options\""), "{text}");
        assert!(text.contains("medians at least 1.5× apart"), "{text}");
    }

    #[test]
    fn the_section_names_the_decisions_measurements_changed_and_notes() {
        let (s, f) = ([290.0, 300.0, 310.0], [90.0, 100.0, 110.0]);
        let slow: &[(&str, &[f64])] = &[("create", &s), ("start", &s), ("stop", &s), ("rm", &s)];
        let fast: &[(&str, &[f64])] = &[("create", &f), ("start", &f), ("stop", &f), ("rm", &f)];
        let mut bench = report(slow, fast);
        bench.host.filesystem = "ext4".into();
        bench.host.quick = true;
        // The fleet node runs enough jobs for container operations to decide.
        let plan = plan_of("fleet-node", Strategy::Balanced, &bench);
        assert_eq!(plan.storage.driver, crate::decide::Driver::Btrfs);
        let text = section(&plan);
        assert!(text.contains("at least a quarter of the containers"), "{text}");
        assert!(text.contains("Decisions the measurements changed: \"storage driver\"."), "{text}");
        assert!(text.contains("a quick run (`--quick`)"), "{text}");
        assert!(text.contains("Note: these figures were measured on ext4"), "{text}");
        // The whole PLAN.md: the summary points at the section, which comes before the decisions.
        let md = render(&plan, &[]);
        let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} missing"));
        assert!(at("| Measured | `b.json`") < at("## Measured on this disk"));
        assert!(at("## Measured on this disk") < at("## Decisions"));
    }

    #[test]
    fn no_section_without_a_report() {
        let mut plan = plan_of("homelab", Strategy::Balanced, &even());
        plan.bench = None;
        assert_eq!(section(&plan), "");
        assert!(!render(&plan, &[]).contains("Measured"));
    }
}
