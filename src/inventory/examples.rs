//! Example specs embedded in the binary (`plan --example NAME`).

use super::{Inventory, Source, spec};
use crate::error::Error;
use crate::suggest::did_you_mean;

/// A spec shipped in the binary; the same text as `contrib/examples/NAME.toml`.
#[derive(Debug)]
pub struct Example {
    pub name: &'static str,
    pub summary: &'static str,
    pub text: &'static str,
}

pub const EXAMPLES: &[Example] = &[
    Example {
        name: "homelab",
        summary: "one NVMe disk: web apps, postgres, redis, a media library and nightly backups",
        text: include_str!("../../contrib/examples/homelab.toml"),
    },
    Example {
        name: "database-host",
        summary: "a data disk full of databases: postgres, mariadb, mongo, etcd, clickhouse, influxdb",
        text: include_str!("../../contrib/examples/database-host.toml"),
    },
    Example {
        name: "ci-runner",
        summary: "a rootless CI runner: many short build jobs, a build cache and a registry mirror",
        text: include_str!("../../contrib/examples/ci-runner.toml"),
    },
    Example {
        name: "fleet-node",
        summary: "a dense node running hundreds of mixed containers on a data disk",
        text: include_str!("../../contrib/examples/fleet-node.toml"),
    },
];

/// The example called `name`.
pub fn find(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|e| e.name == name)
}

/// Parses an embedded example; unknown names -> Error::Usage with did-you-mean and the list of names.
pub fn load(name: &str) -> Result<Inventory, Error> {
    let example = find(name).ok_or_else(|| unknown(name))?;
    let file = format!("example:{}", example.name);
    Ok(spec::parse(example.text, &file, Source::Example(example.name.to_string()))?)
}

fn unknown(name: &str) -> Error {
    let names = EXAMPLES.iter().map(|e| e.name);
    let hint = match did_you_mean(name, names.clone()) {
        Some(near) => format!(" (did you mean `{near}`?)"),
        None => String::new(),
    };
    let list = names.collect::<Vec<_>>().join(", ");
    Error::Usage(format!("unknown example `{name}`{hint}; the examples are: {list}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::DiskMode;

    #[test]
    fn every_example_parses() {
        for example in EXAMPLES {
            let inv = load(example.name).unwrap_or_else(|e| panic!("{}: {e}", example.name));
            assert_eq!(inv.source, Source::Example(example.name.to_string()));
            assert!(!inv.workloads.is_empty(), "{}", example.name);
        }
    }

    #[test]
    fn examples_cover_both_modes_and_rootless() {
        let mode = |name| load(name).unwrap().host.mode;
        assert_eq!(mode("homelab"), DiskMode::WholeDisk);
        assert_eq!(mode("database-host"), DiskMode::DataDisk);
        assert_eq!(mode("ci-runner"), DiskMode::WholeDisk);
        assert_eq!(mode("fleet-node"), DiskMode::DataDisk);
        assert!(load("ci-runner").unwrap().host.rootless);
    }

    #[test]
    fn fleet_node_runs_hundreds_of_containers() {
        let inv = load("fleet-node").unwrap();
        let total: u32 = inv.workloads.iter().map(|w| w.count).sum();
        assert!(total >= 300, "only {total} containers");
    }

    #[test]
    fn most_example_workloads_leave_class_to_heuristics() {
        for example in EXAMPLES {
            let inv = load(example.name).unwrap();
            let declared = inv.workloads.iter().filter(|w| w.class.is_some()).count();
            assert!(declared >= 1, "{} shows no class override", example.name);
            assert!(declared * 2 < inv.workloads.len(), "{} declares most classes", example.name);
        }
    }

    #[test]
    fn find_knows_every_name() {
        for example in EXAMPLES {
            assert_eq!(find(example.name).map(|e| e.name), Some(example.name));
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn unknown_name_suggests_and_lists() {
        let err = load("homelba").unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::USAGE);
        let msg = err.to_string();
        assert!(msg.contains("did you mean `homelab`?"), "{msg}");
        assert!(msg.contains("homelab, database-host, ci-runner, fleet-node"), "{msg}");
        let msg = load("zzzz").unwrap_err().to_string();
        assert!(!msg.contains("did you mean"), "{msg}");
    }
}
