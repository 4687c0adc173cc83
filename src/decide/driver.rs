//! overlay or btrfs: the containers/storage driver.

use super::measured;
use super::{Decision, Strategy};
use crate::bench::report::BenchReport;
use crate::class::{ClassInfo, Lifecycle};
use crate::classify::Profile;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Overlay,
    Btrfs,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Btrfs => "btrfs",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Containers of the classes that build layers, and of short-lived jobs.
fn churn(profile: &Profile) -> (u64, u64) {
    let count = |of: fn(&ClassInfo) -> bool| -> u64 {
        profile.workloads.iter().filter(|w| of(w.decided.info())).map(|w| u64::from(w.workload.count)).sum()
    };
    (count(|c| c.builds_layers), count(|c| c.lifecycle == Some(Lifecycle::ShortLived)))
}

/// Layer churn: builds create and drop layers all day, and short jobs create and drop
/// containers. The btrfs driver makes both a constant-time snapshot.
fn favours_btrfs(profile: &Profile) -> bool {
    let (build, job) = churn(profile);
    let all = profile.containers();
    build > 0 && (build * 4 >= all || (build + job) * 2 >= all)
}

/// Whether builds and short-lived jobs are common enough here (a quarter of the
/// containers or more) for the speed of the operations they repeat to decide the driver:
/// on a host of long-running services a container is created and removed rarely, and the
/// general reasons (page cache shared between containers, the default and most tested
/// driver) outweigh how long those rare operations take.
pub fn churn_is_common(profile: &Profile) -> bool {
    let (build, job) = churn(profile);
    build + job > 0 && (build + job) * 4 >= profile.containers()
}

/// The Podman operations this host's mix does most: a build's (import, commit, rmi)
/// where build containers are at least as many as short-lived jobs, else a container's
/// life (create, start, stop, rm).
pub fn operations_of_mix(profile: &Profile) -> &'static [&'static str] {
    let (build, job) = churn(profile);
    if build > 0 && build >= job { measured::BUILD_OPERATIONS } else { measured::CONTAINER_OPERATIONS }
}

/// The driver, its decision, and whether the measurements changed it.
pub struct DriverChoice {
    pub driver: Driver,
    pub decision: Decision,
    pub changed_by_bench: bool,
    pub cites_bench: bool,
}

/// Chooses the driver from the workload mix and, when a bench report separates the
/// drivers clearly ([`measured::CLEAR_RATIO`]), from the measurements; records why.
pub fn choose_driver(profile: &Profile, strategy: Strategy, bench: Option<&BenchReport>) -> DriverChoice {
    let favours = favours_btrfs(profile);
    let general = if favours && strategy != Strategy::Reliability { Driver::Btrfs } else { Driver::Overlay };
    let measurement = bench.and_then(|r| measured::drivers(r, operations_of_mix(profile)).map(|m| (r, m)));
    let common = churn_is_common(profile);
    let driver = match &measurement {
        Some((_, m)) if strategy != Strategy::Reliability && common => m.clearly_faster.unwrap_or(general),
        _ => general,
    };
    let mut decision = general_decision(profile, strategy, driver, favours);
    if let Some((report, m)) = &measurement {
        let mut why = vec![m.cited(report)];
        why.push(match (m.clearly_faster, strategy) {
            (Some(faster), Strategy::Reliability) => format!(
                "{faster} was clearly faster here ({}), but the reliability strategy keeps the \
                 overlay driver whatever the speed",
                measured::threshold_text()
            ),
            (Some(faster), _) if faster != general && !common => format!(
                "{faster} was clearly faster here ({}), but builds and short-lived jobs are under a \
                 quarter of this host's containers: the operations measured are rare on it, so the \
                 general reasons below decide",
                measured::threshold_text()
            ),
            (Some(faster), _) if faster != general => format!(
                "the measurements decide: {faster} was clearly faster on this disk ({}), so it is \
                 chosen over {general}, which the workload mix alone would have chosen",
                measured::threshold_text()
            ),
            (Some(faster), _) => format!(
                "the measurements agree: {faster} was clearly faster on this disk ({})",
                measured::threshold_text()
            ),
            (None, _) => format!(
                "the measurements did not separate the drivers (the threshold is {}), so the \
                 general reasons below decide",
                measured::threshold_text()
            ),
        });
        why.append(&mut decision.why);
        decision.why = why;
    } else if let Some(report) = bench {
        let skipped: Vec<String> = report
            .skipped
            .iter()
            .filter(|s| s.what == "containers" || s.what == "overlay" || s.what == "btrfs")
            .map(|s| format!("{}: {}", s.what, s.why))
            .collect();
        decision.why.insert(
            0,
            format!(
                "the bench report has no figures of both drivers for {}{}, so the general reasons decide",
                operations_of_mix(profile).join(", "),
                if skipped.is_empty() { String::new() } else { format!(" ({})", skipped.join("; ")) }
            ),
        );
    }
    DriverChoice { driver, decision, changed_by_bench: driver != general, cites_bench: measurement.is_some() }
}

/// The decision as the general reasons give it, for `driver`.
fn general_decision(profile: &Profile, strategy: Strategy, driver: Driver, favours: bool) -> Decision {
    let mut why = Vec::new();
    let mut gives_up = Vec::new();
    match driver {
        Driver::Btrfs => {
            let snapshots = "the btrfs driver makes each layer and each container a subvolume \
                             snapshot, created in constant time, instead of copying whole files up \
                             into an overlay upper layer on first write";
            why.push(if favours {
                format!("builds and short-lived jobs dominate this host: {snapshots}")
            } else {
                snapshots.to_string()
            });
            gives_up.push("containers of one image no longer share the page cache of its layers".into());
            gives_up.push(
                "layers are nested subvolumes under graphroot/btrfs/subvolumes: a snapshot of the \
                 graphroot subvolume does not contain them"
                    .into(),
            );
            gives_up.push("no `mountopt` (the btrfs driver rejects every mount option)".into());
            if profile.host.rootless {
                why.push(
                    "rootless users may delete the layer subvolumes they create because the \
                     filesystem is mounted with `user_subvol_rm_allowed`"
                        .into(),
                );
            }
        }
        Driver::Overlay => {
            why.push(
                "overlay runs natively on a btrfs backing filesystem and is Podman's default, \
                 the most widely used and tested combination"
                    .into(),
            );
            why.push("containers of one image share the page cache of its lower layers".into());
            if favours && strategy == Strategy::Reliability {
                why.push(
                    "the workload mix (builds and jobs) would favour the btrfs driver, but the \
                     reliability strategy keeps the default driver and whole-layer snapshots"
                        .into(),
                );
            } else if favours {
                why.push(
                    "the workload mix (builds and jobs) would favour the btrfs driver, but it \
                     measured clearly slower on this disk (above)"
                        .into(),
                );
            }
            gives_up.push("the first write to a file in a layer copies the whole file up".into());
        }
    }
    Decision { topic: "storage driver".into(), choice: format!("driver = \"{driver}\""), why, gives_up }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::measured::tests::{even, report};
    use crate::inventory::examples;

    fn profile(name: &str) -> Profile {
        crate::classify::classify(&examples::load(name).unwrap())
    }

    const OPERATIONS: [&str; 7] = ["import", "create", "start", "stop", "rm", "commit", "rmi"];

    fn rounds(ms: f64) -> [f64; 3] {
        [ms * 0.9, ms, ms * 1.1]
    }

    /// Every operation at 100 ms on `driver` and at 300 ms on the other.
    fn faster(driver: Driver) -> BenchReport {
        let (fast, slow) = (rounds(100.0), rounds(300.0));
        let fast: Vec<(&str, &[f64])> = OPERATIONS.iter().map(|op| (*op, &fast[..])).collect();
        let slow: Vec<(&str, &[f64])> = OPERATIONS.iter().map(|op| (*op, &slow[..])).collect();
        match driver {
            Driver::Overlay => report(&fast, &slow),
            Driver::Btrfs => report(&slow, &fast),
        }
    }

    #[test]
    fn the_mix_names_the_operations_compared() {
        assert_eq!(operations_of_mix(&profile("ci-runner")), measured::BUILD_OPERATIONS);
        assert_eq!(operations_of_mix(&profile("homelab")), measured::CONTAINER_OPERATIONS);
    }

    #[test]
    fn clear_measurements_choose_the_driver() {
        // The mix alone gives btrfs on the CI runner and overlay on the homelab.
        let ci = profile("ci-runner");
        assert_eq!(choose_driver(&ci, Strategy::Balanced, None).driver, Driver::Btrfs);
        let c = choose_driver(&ci, Strategy::Balanced, Some(&faster(Driver::Overlay)));
        assert_eq!(c.driver, Driver::Overlay);
        assert!(c.changed_by_bench && c.cites_bench);
        let why = c.decision.why.join("\n");
        assert!(why.contains("import+commit+rmi summed: overlay 300 ms"), "{why}");
        assert!(why.contains("the measurements decide: overlay was clearly faster"), "{why}");
        assert!(why.contains("would favour the btrfs driver, but it measured clearly slower"), "{why}");

        // The fleet node runs enough jobs for their operations to count, though the mix
        // alone keeps overlay.
        let fleet = profile("fleet-node");
        assert!(churn_is_common(&fleet));
        assert_eq!(choose_driver(&fleet, Strategy::Performance, None).driver, Driver::Overlay);
        let c = choose_driver(&fleet, Strategy::Performance, Some(&faster(Driver::Btrfs)));
        assert_eq!(c.driver, Driver::Btrfs);
        assert!(c.changed_by_bench);
        let why = c.decision.why.join("\n");
        assert!(why.contains("create+start+stop+rm summed"), "{why}");
        assert!(!why.contains("dominate this host"), "the mix does not favour btrfs here: {why}");

        // On the homelab, services run for months: the measured operations are rare there.
        let home = profile("homelab");
        assert!(!churn_is_common(&home));
        let c = choose_driver(&home, Strategy::Performance, Some(&faster(Driver::Btrfs)));
        assert_eq!((c.driver, c.changed_by_bench, c.cites_bench), (Driver::Overlay, false, true));
        let why = c.decision.why.join("\n");
        assert!(why.contains("btrfs was clearly faster here") && why.contains("under a quarter"), "{why}");

        // Agreeing measurements change nothing but are cited.
        let c = choose_driver(&ci, Strategy::Balanced, Some(&faster(Driver::Btrfs)));
        assert_eq!((c.driver, c.changed_by_bench), (Driver::Btrfs, false));
        assert!(c.decision.why.join("\n").contains("the measurements agree"));
    }

    #[test]
    fn unclear_measurements_leave_the_general_reasons() {
        for name in ["ci-runner", "homelab"] {
            let p = profile(name);
            let general = choose_driver(&p, Strategy::Balanced, None);
            let c = choose_driver(&p, Strategy::Balanced, Some(&even()));
            assert_eq!(c.driver, general.driver, "{name}");
            assert!(!c.changed_by_bench && c.cites_bench);
            assert!(c.decision.why.join("\n").contains("did not separate the drivers"), "{name}");
            assert!(c.decision.why.ends_with(&general.decision.why), "{name}: the general reasons follow");
        }
    }

    #[test]
    fn reliability_keeps_overlay_and_says_why() {
        let c = choose_driver(&profile("homelab"), Strategy::Reliability, Some(&faster(Driver::Btrfs)));
        assert_eq!((c.driver, c.changed_by_bench), (Driver::Overlay, false));
        assert!(c.decision.why.join("\n").contains("the reliability strategy keeps the overlay driver"));
    }

    #[test]
    fn a_report_without_both_drivers_says_so() {
        let mut r = even();
        r.containers.retain(|d| d.driver == "overlay");
        r.skipped.push(crate::bench::report::SkippedPart { what: "btrfs".into(), why: "no podman".into() });
        let c = choose_driver(&profile("homelab"), Strategy::Balanced, Some(&r));
        assert!(!c.cites_bench);
        let first = &c.decision.why[0];
        assert!(
            first.contains("no figures of both drivers") && first.contains("btrfs: no podman"),
            "{first}"
        );
    }
}
