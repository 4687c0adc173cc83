//! Workload classes: what a container's data is, which decides where it lives.
//!
//! Everything about a class is one entry of [`TABLE`]: its name, what it is, the evidence
//! that points at it, and how its data is stored. Classification, the plan, the volume
//! plugin and the help texts all read the table, so adding a class is adding an entry
//! (`tests/classes.rs` then asks for the README's class table to be regenerated).

use crate::layout::Compression;
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Evidence for a class that comes from how its containers live rather than what they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// `lifetime = "short"` in a spec, `--rm` on a live host.
    ShortLived,
    /// A restart policy that brings the container back (`always`, `unless-stopped`,
    /// `on-failure`).
    Restarts,
}

/// Everything about one class.
#[derive(Debug, Clone, Copy)]
pub struct ClassInfo {
    /// The name in specs, `io.podfs.class` labels, `--opt class=`, paths and reports.
    pub name: &'static str,
    /// One line for people: what the data is.
    pub summary: &'static str,
    /// What its workloads are called in a sentence that names several classes
    /// ("databases, caches and VM images rewrite blocks in place").
    pub plural: &'static str,
    /// Programs whose images hold this data. An image's program (see
    /// `classify::image_program`) matches a name exactly or as the name followed by `-`
    /// (`clickhouse-server`, `redis-stack`); the longest matching name wins.
    pub images: &'static [&'static str],
    /// Where known programs keep this data inside a container: (path, who keeps it there).
    /// A volume mounted at the path or below it matches; the longest path wins.
    pub mounts: &'static [(&'static str, &'static str)],
    /// Evidence from how the containers live; at most one class per kind.
    pub lifecycle: Option<Lifecycle>,
    /// The class when no evidence matched; exactly one class is.
    pub fallback: bool,
    /// Rewrites files in place with random writes: copy-on-write fragments such files
    /// badly, so the data belongs on NOCOW storage (no checksums, no compression). The
    /// reliability strategy honours it only for declared classes.
    pub nocow: bool,
    /// The compression property of its data when it is not NOCOW: `none` for data that is
    /// already compressed, where btrfs compression only burns CPU.
    pub compression: Compression,
    /// Its data gets a subvolume of its own in a plan (`@podfs-NAME`); otherwise it shares
    /// Podman's named-volume path. The volume plugin gives every volume its own anyway.
    pub own_subvolume: bool,
    /// Its containers build images, creating and dropping layers all day; with short-lived
    /// containers these favour the btrfs storage driver.
    pub builds_layers: bool,
    /// What losing this data costs, where that changes how it is kept; PLAN.md says it for
    /// the class's NOCOW subvolume.
    pub on_loss: Option<&'static str>,
    /// How often its data is snapshotted and how long snapshots are kept, on the host and
    /// off it. The plan's btrbk.conf and PLAN.md follow it.
    pub snapshots: Snapshots,
    /// Its data is what `plan --database-fs` moves to an xfs or ext4 partition of its own;
    /// exactly one class is.
    pub database_partition: bool,
}

/// Whether and how a class's data is snapshotted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshots {
    /// Never: the data is rebuilt on loss, so a snapshot only costs space (and, on NOCOW
    /// storage, turns the next write of every block copy-on-write).
    Never,
    /// Not scheduled: throwaway data nothing is lost with; a snapshot by hand is fine.
    Unscheduled,
    Scheduled(SnapshotPolicy),
}

/// A snapshot schedule and its retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    pub every: Every,
    /// Snapshots kept on the host itself.
    pub keep: Retention,
    /// Copies kept on the backup target (btrbk `target_preserve`).
    pub keep_off_host: Retention,
    /// Its containers are paused while the snapshot is taken, so the files are consistent
    /// rather than only crash-consistent.
    pub pause: bool,
}

/// How often snapshots are taken; later variants are more frequent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Every {
    Week,
    Day,
    Hour,
}

impl Every {
    /// The word for schedules and systemd `OnCalendar=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Every::Week => "weekly",
            Every::Day => "daily",
            Every::Hour => "hourly",
        }
    }
}

/// How many of the newest hourly, daily, weekly and monthly snapshots are kept (the first
/// snapshot of each hour, day, week or month; btrbk's retention model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub hours: u16,
    pub days: u16,
    pub weeks: u16,
    pub months: u16,
}

impl Retention {
    const NONE: Retention = Retention { hours: 0, days: 0, weeks: 0, months: 0 };

    fn units(&self) -> [(u16, &'static str, &'static str); 4] {
        [
            (self.hours, "h", "hourly"),
            (self.days, "d", "daily"),
            (self.weeks, "w", "weekly"),
            (self.months, "m", "monthly"),
        ]
    }

    /// btrbk's `*_preserve` syntax: `24h 7d`.
    pub fn btrbk(&self) -> String {
        let parts: Vec<String> =
            self.units().iter().filter(|(n, ..)| *n > 0).map(|(n, unit, _)| format!("{n}{unit}")).collect();
        if parts.is_empty() { "no".into() } else { parts.join(" ") }
    }

    /// For people: `24 hourly, 7 daily`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> =
            self.units().iter().filter(|(n, ..)| *n > 0).map(|(n, _, word)| format!("{n} {word}")).collect();
        if parts.is_empty() { "none".into() } else { parts.join(", ") }
    }

    /// The most frequent unit it keeps, which is how often snapshots are worth taking.
    #[cfg(test)]
    pub fn finest(&self) -> Option<Every> {
        [(self.hours, Every::Hour), (self.days, Every::Day), (self.weeks, Every::Week)]
            .into_iter()
            .find(|(n, _)| *n > 0)
            .map(|(_, e)| e)
    }
}

impl Snapshots {
    /// Hourly with a short retention on the host, paused: data rewritten in place all day.
    const FREQUENT: Snapshots = Snapshots::Scheduled(SnapshotPolicy {
        every: Every::Hour,
        keep: Retention { hours: 24, days: 7, ..Retention::NONE },
        keep_off_host: Retention { days: 14, weeks: 8, months: 6, ..Retention::NONE },
        pause: true,
    });
    const DAILY: Snapshots = Snapshots::Scheduled(SnapshotPolicy {
        every: Every::Day,
        keep: Retention { days: 7, weeks: 4, ..Retention::NONE },
        keep_off_host: Retention { days: 14, weeks: 8, months: 12, ..Retention::NONE },
        pause: false,
    });
    const WEEKLY: Snapshots = Snapshots::Scheduled(SnapshotPolicy {
        every: Every::Week,
        keep: Retention { weeks: 4, ..Retention::NONE },
        keep_off_host: Retention { weeks: 8, months: 12, ..Retention::NONE },
        pause: false,
    });

    /// Short text for tables: `hourly, paused`, `daily`, `none`, `never`.
    pub fn summary(&self) -> String {
        match self {
            Snapshots::Never => "never".into(),
            Snapshots::Unscheduled => "none".into(),
            Snapshots::Scheduled(p) => {
                format!("{}{}", p.every.as_str(), if p.pause { ", paused" } else { "" })
            }
        }
    }

    /// Ranks schedules when classes share a subvolume: the most frequent one wins.
    pub fn rank(&self) -> (u8, Option<Every>) {
        match self {
            Snapshots::Never => (0, None),
            Snapshots::Unscheduled => (1, None),
            Snapshots::Scheduled(p) => (2, Some(p.every)),
        }
    }
}

impl ClassInfo {
    /// What an entry is unless it says otherwise.
    const BASE: ClassInfo = ClassInfo {
        name: "",
        summary: "",
        plural: "",
        images: &[],
        mounts: &[],
        lifecycle: None,
        fallback: false,
        nocow: false,
        compression: Compression::Zstd,
        own_subvolume: false,
        builds_layers: false,
        on_loss: None,
        snapshots: Snapshots::DAILY,
        database_partition: false,
    };

    /// The attributes its data gets where it is declared: `NOCOW` or `compression VALUE`.
    pub fn attributes(&self) -> String {
        if self.nocow { "NOCOW".into() } else { format!("compression {}", self.compression) }
    }
}

fn code_list(items: &[&str], most: usize) -> String {
    let mut shown: Vec<String> = items.iter().take(most).map(|i| format!("`{i}`")).collect();
    if items.len() > most {
        shown.push("…".into());
    }
    shown.join(", ")
}

/// What points at a class, shortened for a table cell.
fn evidence_summary(c: &ClassInfo) -> String {
    let mut parts = Vec::new();
    if !c.images.is_empty() {
        parts.push(format!("images {}", code_list(c.images, 4)));
    }
    if !c.mounts.is_empty() {
        let paths: Vec<&str> = c.mounts.iter().map(|(p, _)| *p).collect();
        parts.push(format!("mounts {}", code_list(&paths, 2)));
    }
    match c.lifecycle {
        Some(Lifecycle::ShortLived) => parts.push("`lifetime = \"short\"`, `--rm`".into()),
        Some(Lifecycle::Restarts) => parts.push("a restart policy".into()),
        None => {}
    }
    if c.fallback {
        parts.push("nothing else matched".into());
    }
    parts.join("; ")
}

/// The README's class table, one row per entry (written by `generate-docs`).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| class | what it is | evidence | subvolume | NOCOW | compression | snapshots |\n|---|---|---|---|---|---|---|\n",
    );
    for class in Class::ALL {
        let c = class.info();
        let subvolume =
            if c.own_subvolume { format!("`@podfs-{}`", c.name) } else { "`@containers-volumes`".into() };
        let compression = if c.nocow { "off (implied)".into() } else { format!("`{}`", c.compression) };
        out.push_str(&format!(
            "| {} | {} | {} | {subvolume} | {} | {compression} | {} |\n",
            c.name,
            c.summary,
            evidence_summary(c),
            if c.nocow { "yes" } else { "no" },
            c.snapshots.summary(),
        ));
    }
    out
}

/// Every class, in the order lists show them.
pub const TABLE: &[ClassInfo] = &[
    ClassInfo {
        name: "database",
        summary: "databases: files rewritten in place with random writes",
        plural: "databases",
        images: &[
            "postgres",
            "postgresql",
            "postgis",
            "timescaledb",
            "mysql",
            "mariadb",
            "percona",
            "mongo",
            "mongodb",
            "clickhouse",
            "influxdb",
            "etcd",
            "cockroach",
            "couchdb",
            "cassandra",
            "scylla",
            "neo4j",
            "questdb",
            "victoria-metrics",
            "prometheus",
        ],
        mounts: &[
            ("/var/lib/postgresql", "PostgreSQL"),
            ("/var/lib/mysql", "MySQL/MariaDB"),
            ("/data/db", "MongoDB"),
            ("/var/lib/clickhouse", "ClickHouse"),
            ("/var/lib/influxdb", "InfluxDB"),
            ("/var/lib/influxdb2", "InfluxDB"),
            ("/etcd-data", "etcd"),
            ("/var/lib/etcd", "etcd"),
            ("/var/lib/cassandra", "Cassandra"),
        ],
        nocow: true,
        own_subvolume: true,
        snapshots: Snapshots::FREQUENT,
        database_partition: true,
        ..ClassInfo::BASE
    },
    ClassInfo {
        name: "cache",
        summary: "caches that keep snapshots or append-only files on disk",
        plural: "caches",
        images: &["redis", "valkey", "memcached", "keydb", "dragonfly", "varnish", "sccache"],
        mounts: &[("/var/lib/redis", "Redis")],
        nocow: true,
        own_subvolume: true,
        on_loss: Some("cache data is rebuilt on loss: never snapshot this subvolume"),
        snapshots: Snapshots::Never,
        ..ClassInfo::BASE
    },
    ClassInfo {
        name: "vm",
        summary: "virtual machine disk images",
        plural: "VM images",
        images: &["qemu", "kubevirt", "virt-launcher", "libvirt", "containerdisk"],
        mounts: &[("/var/lib/libvirt/images", "libvirt")],
        nocow: true,
        own_subvolume: true,
        snapshots: Snapshots::FREQUENT,
        ..ClassInfo::BASE
    },
    ClassInfo {
        name: "service",
        summary: "long-running services with modest state",
        plural: "services",
        images: &[
            "nginx",
            "httpd",
            "caddy",
            "traefik",
            "haproxy",
            "envoy",
            "gitea",
            "forgejo",
            "nextcloud",
            "vaultwarden",
            "home-assistant",
            "grafana",
            "keycloak",
            "pgbouncer",
            "registry",
        ],
        lifecycle: Some(Lifecycle::Restarts),
        snapshots: Snapshots::DAILY,
        ..ClassInfo::BASE
    },
    ClassInfo {
        name: "job",
        summary: "short-lived containers; only their image layers matter",
        plural: "jobs",
        lifecycle: Some(Lifecycle::ShortLived),
        snapshots: Snapshots::Unscheduled,
        ..ClassInfo::BASE
    },
    ClassInfo {
        name: "build",
        summary: "builds and CI runners: large, compressible scratch data",
        plural: "builds",
        images: &[
            "buildah",
            "kaniko",
            "executor",
            "gitlab-runner",
            "gitlab-runner-helper",
            "actions-runner",
            "forgejo-runner",
            "act_runner",
            "woodpecker-agent",
            "drone-runner-docker",
            "inbound-agent",
            "buildkit",
        ],
        mounts: &[("/var/lib/containers", "a nested container engine")],
        builds_layers: true,
        snapshots: Snapshots::Unscheduled,
        ..ClassInfo::BASE
    },
    ClassInfo {
        name: "logs",
        summary: "log collectors and stores: text that compresses well",
        plural: "log stores",
        images: &["loki", "promtail", "fluentd", "fluent-bit", "vector", "logstash", "graylog", "rsyslog"],
        mounts: &[("/var/log", "a log collector"), ("/loki", "Loki")],
        own_subvolume: true,
        snapshots: Snapshots::DAILY,
        ..ClassInfo::BASE
    },
    ClassInfo {
        name: "media",
        summary: "already-compressed video, music, photos, object storage",
        plural: "media libraries",
        images: &["jellyfin", "plex", "pms-docker", "emby", "photoprism", "navidrome", "minio", "seaweedfs"],
        mounts: &[
            ("/media", "a media library"),
            ("/movies", "a media library"),
            ("/music", "a media library"),
            ("/photos", "a photo library"),
        ],
        compression: Compression::None,
        own_subvolume: true,
        snapshots: Snapshots::WEEKLY,
        ..ClassInfo::BASE
    },
    ClassInfo {
        name: "general",
        summary: "anything else",
        plural: "other workloads",
        fallback: true,
        ..ClassInfo::BASE
    },
];

/// The class of a workload or volume: an entry of [`TABLE`]. Classes compare and sort in
/// table order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Class(u8);

/// Roles that exactly one entry plays; checked when the crate compiles.
#[derive(Clone, Copy)]
enum Role {
    Fallback,
    ShortLived,
    Restarts,
    DatabasePartition,
}

/// The one class that plays `role`; a table without one, or with two, does not compile.
const fn only(role: Role) -> Class {
    assert!(TABLE.len() <= u8::MAX as usize, "too many classes for a u8");
    let mut found: Option<usize> = None;
    let mut i = 0;
    while i < TABLE.len() {
        let plays = match role {
            Role::Fallback => TABLE[i].fallback,
            Role::ShortLived => matches!(TABLE[i].lifecycle, Some(Lifecycle::ShortLived)),
            Role::Restarts => matches!(TABLE[i].lifecycle, Some(Lifecycle::Restarts)),
            Role::DatabasePartition => TABLE[i].database_partition,
        };
        if plays {
            assert!(found.is_none(), "two classes in TABLE play the same role");
            found = Some(i);
        }
        i += 1;
    }
    match found {
        Some(i) => Class(i as u8),
        None => panic!("a role in TABLE has no class"),
    }
}

impl Class {
    /// Every class, in table order.
    pub const ALL: [Class; TABLE.len()] = {
        let mut all = [Class(0); TABLE.len()];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = Class(i as u8);
            i += 1;
        }
        all
    };
    /// The class when no evidence matched (`general`).
    pub const FALLBACK: Class = only(Role::Fallback);
    /// The class of short-lived containers (`job`).
    pub const SHORT_LIVED: Class = only(Role::ShortLived);
    /// The class of containers that restart on exit (`service`).
    pub const RESTARTING: Class = only(Role::Restarts);
    /// The class whose data `plan --database-fs` puts on a partition of its own (`database`).
    pub const DATABASE_PARTITION: Class = only(Role::DatabasePartition);

    /// Its entry in the table.
    pub fn info(self) -> &'static ClassInfo {
        &TABLE[usize::from(self.0)]
    }

    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    /// The class with exactly this name.
    pub fn named(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Its data belongs on NOCOW storage (see [`ClassInfo::nocow`]).
    pub fn rewrites_in_place(self) -> bool {
        self.info().nocow
    }

    /// Its data is already compressed (see [`ClassInfo::compression`]).
    pub fn incompressible(self) -> bool {
        self.info().compression == Compression::None
    }
}

/// What the NOCOW classes hold, for sentences: "databases, caches and VM images".
pub fn nocow_data() -> String {
    let words: Vec<&str> =
        Class::ALL.iter().filter(|c| c.rewrites_in_place()).map(|c| c.info().plural).collect();
    match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => words.concat(),
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Class {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An unknown class name, with the closest known one when there is a close one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownClass {
    pub given: String,
    pub did_you_mean: Option<&'static str>,
}

impl fmt::Display for UnknownClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown class `{}`", self.given)?;
        if let Some(s) = self.did_you_mean {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownClass {}

impl FromStr for Class {
    type Err = UnknownClass;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Class::named(&lower).ok_or_else(|| UnknownClass {
            given: s.to_string(),
            did_you_mean: crate::suggest::did_you_mean(&lower, Class::ALL.map(Class::as_str)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn parses_every_class_and_suggests_for_typos() {
        for c in Class::ALL {
            assert_eq!(c.as_str().parse::<Class>().unwrap(), c);
        }
        assert_eq!(" Database ".parse::<Class>().unwrap().as_str(), "database");
        let err = "databse".parse::<Class>().unwrap_err();
        assert_eq!(err.did_you_mean, Some("database"));
        let err = "zzzzzz".parse::<Class>().unwrap_err();
        assert_eq!(err.did_you_mean, None);
    }

    #[test]
    fn every_entry_is_complete_and_names_are_unique() {
        for c in Class::ALL {
            let i = c.info();
            assert!(
                !i.name.is_empty() && i.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "a class name is a lowercase word, as paths and labels use it: {:?}",
                i.name
            );
            assert!(!i.summary.is_empty() && !i.plural.is_empty(), "{}: summary and plural", i.name);
            assert!(i.summary.chars().count() <= 60, "{}: the summary fits one help line", i.name);
            assert!(!(i.fallback && (!i.images.is_empty() || !i.mounts.is_empty())), "{}", i.name);
            for (path, who) in i.mounts {
                assert!(
                    path.starts_with('/') && !path.ends_with('/') && !who.is_empty(),
                    "{}: {path}",
                    i.name
                );
            }
        }
        let names: std::collections::BTreeSet<_> = Class::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), TABLE.len());
    }

    #[test]
    fn no_image_or_mount_path_points_at_two_classes() {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for c in Class::ALL {
            let evidence = c.info().images.iter().chain(c.info().mounts.iter().map(|(p, _)| p));
            for key in evidence {
                if let Some(other) = seen.insert(key, c.as_str()) {
                    assert_eq!(other, c.as_str(), "`{key}` is evidence for {other} and {c}");
                }
            }
        }
    }

    #[test]
    fn snapshot_schedules_match_what_they_keep() {
        for c in Class::ALL {
            if let Snapshots::Scheduled(p) = c.info().snapshots {
                assert_eq!(p.keep.finest(), Some(p.every), "{c}: keeps a snapshot of every run");
                assert!(p.keep_off_host.btrbk() != "no", "{c}: off-host copies are kept");
            }
            // Data rebuilt on loss is never snapshotted, and only such data.
            assert_eq!(c.info().on_loss.is_some(), c.info().snapshots == Snapshots::Never, "{c}");
        }
        let summary = |name| Class::named(name).unwrap().info().snapshots.summary();
        let got =
            ["database", "vm", "service", "logs", "general", "media", "build", "job", "cache"].map(summary);
        assert_eq!(
            got,
            [
                "hourly, paused",
                "hourly, paused",
                "daily",
                "daily",
                "daily",
                "weekly",
                "none",
                "none",
                "never"
            ]
        );
        let Snapshots::Scheduled(db) = Class::named("database").unwrap().info().snapshots else { panic!() };
        assert_eq!((db.keep.btrbk(), db.keep.describe()), ("24h 7d".into(), "24 hourly, 7 daily".into()));
        assert_eq!(Retention::NONE.btrbk(), "no");
        assert!(Snapshots::Never.rank() < Snapshots::Unscheduled.rank());
        assert!(Snapshots::WEEKLY.rank() < Snapshots::DAILY.rank());
        assert!(Snapshots::DAILY.rank() < Snapshots::FREQUENT.rank());
    }

    #[test]
    fn roles_and_derived_texts_come_from_the_table() {
        assert_eq!(
            (Class::FALLBACK.as_str(), Class::SHORT_LIVED.as_str(), Class::RESTARTING.as_str()),
            ("general", "job", "service")
        );
        let plurals: Vec<&str> =
            Class::ALL.iter().filter(|c| c.info().nocow).map(|c| c.info().plural).collect();
        let (last, rest) = plurals.split_last().unwrap();
        assert_eq!(nocow_data(), format!("{} and {last}", rest.join(", ")));
        assert!(nocow_data().starts_with("databases, caches"), "{}", nocow_data());
        assert_eq!(Class::named("media").unwrap().info().attributes(), "compression none");
        assert_eq!(Class::named("vm").unwrap().info().attributes(), "NOCOW");
        let sorted: Vec<Class> = {
            let mut v = Class::ALL.to_vec();
            v.sort();
            v
        };
        assert_eq!(sorted, Class::ALL, "classes sort in table order");
        assert_eq!(serde_json::to_string(&Class::ALL[0]).unwrap(), "\"database\"");
    }
}
