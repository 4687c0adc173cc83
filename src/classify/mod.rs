//! `Inventory` → `Profile`: the class of every workload and the evidence for it.
//!
//! Order of evidence: an explicit class wins, because the user knows best; then the image
//! name, then where its volumes mount inside the container, then its lifetime; otherwise
//! the fallback class (`general`). The images, paths and lifetimes that point at a class
//! are in its entry of `class::TABLE`. Every piece of evidence found is kept, also the
//! ones that lost, so reports can say why.

pub mod live;

use crate::class::Class;
use crate::inventory::{Host, Inventory, Lifetime, Source, Workload};
use serde::Serialize;

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

/// The classified inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub source: Source,
    pub host: Host,
    pub workloads: Vec<Classified>,
}

impl Profile {
    /// Containers of all workloads.
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
            suggests: Class::SHORT_LIVED,
            detail: "short-lived containers (lifetime = \"short\")".into(),
        });
    }
    if evidence.is_empty() {
        evidence.push(Evidence {
            kind: EvidenceKind::Default,
            suggests: Class::FALLBACK,
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

/// The class whose images include this program: the name itself, or a known name followed
/// by `-` (`clickhouse-server`, `redis-stack`). The longest known name wins, so
/// `forgejo-runner` is a build although `forgejo` is a service.
fn class_of_program(program: &str) -> Option<Class> {
    let p = program.to_ascii_lowercase();
    let matches = |name: &str| p == name || p.strip_prefix(name).is_some_and(|rest| rest.starts_with('-'));
    Class::ALL
        .into_iter()
        .flat_map(|c| c.info().images.iter().filter(|name| matches(name)).map(move |name| (name.len(), c)))
        .max_by_key(|(len, _)| *len)
        .map(|(_, c)| c)
}

/// The class whose data lies where a volume is mounted, and who keeps it there: the
/// longest known path the mount is at or below.
fn class_of_mount(path: &str) -> Option<(Class, &'static str)> {
    let path = path.trim_end_matches('/');
    let under =
        |prefix: &str| path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
    Class::ALL
        .into_iter()
        .flat_map(|c| c.info().mounts.iter().filter(|(prefix, _)| under(prefix)).map(move |m| (m, c)))
        .max_by_key(|((prefix, _), _)| prefix.len())
        .map(|((_, who), c)| (c, *who))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str) -> Class {
        Class::named(name).expect(name)
    }

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
        w.class = Some(class("cache"));
        let c = classify_workload(&w);
        assert_eq!(c.decided, class("cache"));
        assert_eq!(c.evidence[0].kind, EvidenceKind::Explicit);
        assert_eq!(c.evidence[1].suggests, class("database"));
    }

    #[test]
    fn image_name_then_mount_then_lifetime() {
        assert_eq!(
            classify_workload(&workload("clickhouse/clickhouse-server:24")).decided,
            class("database")
        );
        assert_eq!(classify_workload(&workload("valkey/valkey")).decided, class("cache"));
        let mut w = workload("ghcr.io/acme/app:1");
        w.mounts = vec!["/var/lib/postgresql/data".into()];
        let c = classify_workload(&w);
        assert_eq!((c.decided, c.evidence[0].kind), (class("database"), EvidenceKind::MountPath));
        let mut w = workload("ghcr.io/acme/report:1");
        w.lifetime = Lifetime::Short;
        assert_eq!(classify_workload(&w).decided, class("job"));
        let c = classify_workload(&workload("ghcr.io/acme/app:1"));
        assert_eq!((c.decided, c.evidence[0].kind), (class("general"), EvidenceKind::Default));
    }

    #[test]
    fn prefixes_match_only_at_word_boundaries() {
        assert_eq!(class_of_program("redis-stack"), Some(class("cache")));
        assert_eq!(class_of_program("redisinsight"), None);
        assert_eq!(class_of_mount("/mediawiki"), None);
        assert_eq!(class_of_mount("/media/tv/").map(|m| m.0), Some(class("media")));
    }

    #[test]
    fn every_image_and_data_path_in_the_table_points_at_its_class() {
        for c in Class::ALL {
            for name in c.info().images {
                for image in [format!("quay.io/org/{name}:1"), format!("{name}-extra@sha256:ab")] {
                    let e = image_evidence(&image).unwrap_or_else(|| panic!("{image} is not known"));
                    assert_eq!((e.suggests, e.kind), (c, EvidenceKind::ImageName), "{image}");
                    let program = image_program(&image);
                    assert_eq!(e.detail, format!("image `{program}` is a known {c} image"));
                }
            }
            for (path, who) in c.info().mounts {
                for at in [path.to_string(), format!("{path}/data/")] {
                    let e = mount_evidence(&at).unwrap_or_else(|| panic!("{at} is not known"));
                    assert_eq!((e.suggests, e.kind), (c, EvidenceKind::MountPath), "{at}");
                    assert_eq!(e.detail, format!("volume at `{at}` is where {who} keeps its data"));
                }
            }
        }
        assert_eq!(class_of_program("forgejo"), Some(class("service")));
        assert_eq!(class_of_program("forgejo-runner"), Some(class("build")), "the longest name wins");
    }
}
