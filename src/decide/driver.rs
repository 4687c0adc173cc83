//! overlay or btrfs: the containers/storage driver.

use super::{Decision, Strategy};
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

/// Layer churn: builds create and drop layers all day, and short jobs create and drop
/// containers. The btrfs driver makes both a constant-time snapshot.
fn favours_btrfs(profile: &Profile) -> bool {
    let count = |of: fn(&ClassInfo) -> bool| -> u64 {
        profile.workloads.iter().filter(|w| of(w.decided.info())).map(|w| u64::from(w.workload.count)).sum()
    };
    let build = count(|c| c.builds_layers);
    let job = count(|c| c.lifecycle == Some(Lifecycle::ShortLived));
    let all = profile.containers();
    build > 0 && (build * 4 >= all || (build + job) * 2 >= all)
}

/// Chooses the driver and records why.
pub fn choose_driver(profile: &Profile, strategy: Strategy) -> (Driver, Decision) {
    let favours = favours_btrfs(profile);
    let driver = if favours && strategy != Strategy::Reliability { Driver::Btrfs } else { Driver::Overlay };
    let mut why = Vec::new();
    let mut gives_up = Vec::new();
    match driver {
        Driver::Btrfs => {
            why.push(
                "builds and short-lived jobs dominate this host: the btrfs driver makes each layer \
                 and each container a subvolume snapshot, created in constant time, instead of \
                 copying whole files up into an overlay upper layer on first write"
                    .into(),
            );
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
            if favours {
                why.push(
                    "the workload mix (builds and jobs) would favour the btrfs driver, but the \
                     reliability strategy keeps the default driver and whole-layer snapshots"
                        .into(),
                );
            }
            gives_up.push("the first write to a file in a layer copies the whole file up".into());
        }
    }
    let decision =
        Decision { topic: "storage driver".into(), choice: format!("driver = \"{driver}\""), why, gives_up };
    (driver, decision)
}
