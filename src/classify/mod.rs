//! `Inventory` → `Profile`: the class of every workload and the evidence for it.
//!
//! Order of evidence (docs/ARCHITECTURE.md, "Classes"): an explicit class wins; then the image, where
//! its volumes mount inside the container, then its lifetime; otherwise `general`. Every
//! piece of evidence found is kept, also the ones that lost, so reports can say why.

pub mod live;

use crate::class::Class;
use crate::inventory::{Host, Inventory, Lifetime, Source, Workload};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// `class = …` in the spec, or an `io.podfs.class` label.
    Explicit,
    /// Created with `--rm`: the container removes itself when it exits.
    AutoRemove,
    /// The image's repository name is a known program.
    ImageName,
    /// A volume mounts where a known program keeps its data.
    MountPath,
    /// Short-lived containers are jobs.
    Lifetime,
    /// Nothing else matched.
    Default,
}

impl EvidenceKind {
    /// A short word for reports.
    pub fn word(self) -> &'static str {
        match self {
            EvidenceKind::Explicit => "declared",
            EvidenceKind::AutoRemove => "--rm",
            EvidenceKind::ImageName => "image",
            EvidenceKind::MountPath => "mount",
            EvidenceKind::Lifetime => "lifetime",
            EvidenceKind::Default => "default",
        }
    }
}

/// One reason to put a workload in a class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    pub suggests: Class,
    /// Human words: "image `postgres` is a database".
    pub detail: String,
}

/// A workload with its class and the evidence that chose it (first entry decided).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classified {
    #[serde(flatten)]
    pub workload: Workload,
    #[serde(rename = "class")]
    pub decided: Class,
    pub evidence: Vec<Evidence>,
}

impl Classified {
    /// Persistent bytes of all its containers.
    pub fn volume_bytes(&self) -> u64 {
        self.workload.volume_size.saturating_mul(u64::from(self.workload.count))
    }
}

/// Totals for one class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClassTotals {
    pub workloads: usize,
    pub containers: u64,
    pub volume_bytes: u64,
    pub image_bytes: u64,
}

/// The classified inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub source: Source,
    pub host: Host,
    pub workloads: Vec<Classified>,
}

impl Profile {
    pub fn totals(&self) -> BTreeMap<Class, ClassTotals> {
        let mut map: BTreeMap<Class, ClassTotals> = BTreeMap::new();
        for w in &self.workloads {
            let t = map.entry(w.decided).or_default();
            t.workloads += 1;
            t.containers += u64::from(w.workload.count);
            t.volume_bytes = t.volume_bytes.saturating_add(w.volume_bytes());
            // Containers of one image share its layers: count the image once.
            t.image_bytes = t.image_bytes.saturating_add(w.workload.image_size);
        }
        map
    }

    pub fn has_data_of(&self, class: Class) -> bool {
        self.workloads.iter().any(|w| w.decided == class && w.workload.volume_size > 0)
    }

    pub fn containers(&self) -> u64 {
        self.workloads.iter().map(|w| u64::from(w.workload.count)).sum()
    }
}

/// Classifies every workload of an inventory.
pub fn classify(inventory: &Inventory) -> Profile {
    Profile {
        source: inventory.source.clone(),
        host: inventory.host.clone(),
        workloads: inventory.workloads.iter().map(classify_workload).collect(),
    }
}

/// Classifies one workload; the first piece of evidence decides.
pub fn classify_workload(w: &Workload) -> Classified {
    let mut evidence = Vec::new();
    if let Some(c) = w.class {
        evidence.push(Evidence {
            kind: EvidenceKind::Explicit,
            suggests: c,
            detail: format!("declared `class = \"{c}\"`"),
        });
    }
    evidence.extend(image_evidence(&w.image));
    evidence.extend(w.mounts.iter().filter_map(|m| mount_evidence(m)));
    if w.lifetime == Lifetime::Short {
        evidence.push(Evidence {
            kind: EvidenceKind::Lifetime,
            suggests: Class::Job,
            detail: "short-lived containers (lifetime = \"short\")".into(),
        });
    }
    if evidence.is_empty() {
        evidence.push(Evidence {
            kind: EvidenceKind::Default,
            suggests: Class::General,
            detail: "no label, known image or data path matched".into(),
        });
    }
    Classified { workload: w.clone(), decided: evidence[0].suggests, evidence }
}

/// Evidence from an image's name, if it names a known program.
pub fn image_evidence(image: &str) -> Option<Evidence> {
    let program = image_program(image);
    class_of_program(program).map(|c| Evidence {
        kind: EvidenceKind::ImageName,
        suggests: c,
        detail: format!("image `{program}` is a known {c} image"),
    })
}

/// Evidence from where a volume is mounted inside a container.
pub fn mount_evidence(destination: &str) -> Option<Evidence> {
    class_of_mount(destination).map(|(c, known)| Evidence {
        kind: EvidenceKind::MountPath,
        suggests: c,
        detail: format!("volume at `{destination}` is where {known} keeps its data"),
    })
}

/// The program an image runs, as far as its name tells: the last path segment of the
/// repository, without tag or digest. `quay.io/org/postgres:16@sha256:…` → `postgres`.
/// Some projects name the channel there instead (`quay.io/buildah/stable`); then the
/// segment before it names the program.
pub fn image_program(image: &str) -> &str {
    const CHANNELS: [&str; 6] = ["stable", "latest", "upstream", "testing", "release", "main"];
    let no_digest = image.split('@').next().unwrap_or(image);
    let mut segments = no_digest.rsplit('/');
    let last = segments.next().unwrap_or(no_digest);
    let last = last.split(':').next().unwrap_or(last);
    match segments.next() {
        Some(org) if CHANNELS.contains(&last) && !org.contains(['.', ':']) => org,
        _ => last,
    }
}

/// Known images by program name. A name matches exactly or as a prefix followed by `-`
/// (`clickhouse-server`, `redis-stack`).
const KNOWN_IMAGES: &[(Class, &[&str])] = &[
    (
        Class::Database,
        &[
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
    ),
    (Class::Cache, &["redis", "valkey", "memcached", "keydb", "dragonfly", "varnish", "sccache"]),
    (Class::Vm, &["qemu", "kubevirt", "virt-launcher", "libvirt", "containerdisk"]),
    (
        Class::Build,
        &[
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
    ),
    (Class::Logs, &["loki", "promtail", "fluentd", "fluent-bit", "vector", "logstash", "graylog", "rsyslog"]),
    (
        Class::Media,
        &["jellyfin", "plex", "pms-docker", "emby", "photoprism", "navidrome", "minio", "seaweedfs"],
    ),
    (
        Class::Service,
        &[
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
    ),
];

fn class_of_program(program: &str) -> Option<Class> {
    let p = program.to_ascii_lowercase();
    KNOWN_IMAGES.iter().find_map(|(class, names)| {
        names
            .iter()
            .any(|n| p == *n || p.strip_prefix(n).is_some_and(|rest| rest.starts_with('-')))
            .then_some(*class)
    })
}

/// Data directories of well-known images: (path prefix, class, program).
const KNOWN_MOUNTS: &[(&str, Class, &str)] = &[
    ("/var/lib/postgresql", Class::Database, "PostgreSQL"),
    ("/var/lib/mysql", Class::Database, "MySQL/MariaDB"),
    ("/data/db", Class::Database, "MongoDB"),
    ("/var/lib/clickhouse", Class::Database, "ClickHouse"),
    ("/var/lib/influxdb", Class::Database, "InfluxDB"),
    ("/var/lib/influxdb2", Class::Database, "InfluxDB"),
    ("/etcd-data", Class::Database, "etcd"),
    ("/var/lib/etcd", Class::Database, "etcd"),
    ("/var/lib/cassandra", Class::Database, "Cassandra"),
    ("/var/lib/redis", Class::Cache, "Redis"),
    ("/var/lib/libvirt/images", Class::Vm, "libvirt"),
    ("/var/lib/containers", Class::Build, "a nested container engine"),
    ("/var/log", Class::Logs, "a log collector"),
    ("/loki", Class::Logs, "Loki"),
    ("/media", Class::Media, "a media library"),
    ("/movies", Class::Media, "a media library"),
    ("/music", Class::Media, "a media library"),
    ("/photos", Class::Media, "a photo library"),
];

fn class_of_mount(path: &str) -> Option<(Class, &'static str)> {
    let path = path.trim_end_matches('/');
    KNOWN_MOUNTS.iter().find_map(|(prefix, class, program)| {
        let under = path == *prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
        under.then_some((*class, *program))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(image: &str) -> Workload {
        Workload {
            name: "w".into(),
            image: image.into(),
            class: None,
            count: 1,
            image_size: 1,
            volume_size: 0,
            lifetime: Lifetime::Long,
            mounts: vec![],
        }
    }

    #[test]
    fn image_program_strips_registry_tag_and_digest() {
        assert_eq!(image_program("docker.io/library/postgres:16"), "postgres");
        assert_eq!(image_program("quay.io/org/redis@sha256:abc"), "redis");
        assert_eq!(image_program("localhost:5000/app:1"), "app");
        assert_eq!(image_program("nginx"), "nginx");
        assert_eq!(image_program("quay.io/buildah/stable:v1.37"), "buildah");
        assert_eq!(image_program("quay.io/stable"), "stable");
    }

    #[test]
    fn explicit_class_wins_and_keeps_the_losing_evidence() {
        let mut w = workload("postgres:16");
        w.class = Some(Class::Cache);
        let c = classify_workload(&w);
        assert_eq!(c.decided, Class::Cache);
        assert_eq!(c.evidence[0].kind, EvidenceKind::Explicit);
        assert_eq!(c.evidence[1].suggests, Class::Database);
    }

    #[test]
    fn image_name_then_mount_then_lifetime() {
        assert_eq!(classify_workload(&workload("clickhouse/clickhouse-server:24")).decided, Class::Database);
        assert_eq!(classify_workload(&workload("valkey/valkey")).decided, Class::Cache);
        let mut w = workload("ghcr.io/acme/app:1");
        w.mounts = vec!["/var/lib/postgresql/data".into()];
        let c = classify_workload(&w);
        assert_eq!((c.decided, c.evidence[0].kind), (Class::Database, EvidenceKind::MountPath));
        let mut w = workload("ghcr.io/acme/report:1");
        w.lifetime = Lifetime::Short;
        assert_eq!(classify_workload(&w).decided, Class::Job);
        let c = classify_workload(&workload("ghcr.io/acme/app:1"));
        assert_eq!((c.decided, c.evidence[0].kind), (Class::General, EvidenceKind::Default));
    }

    #[test]
    fn prefixes_match_only_at_word_boundaries() {
        assert_eq!(class_of_program("redis-stack"), Some(Class::Cache));
        assert_eq!(class_of_program("redisinsight"), None);
        assert_eq!(class_of_mount("/mediawiki"), None);
        assert_eq!(class_of_mount("/media/tv/").map(|m| m.0), Some(Class::Media));
    }
}
