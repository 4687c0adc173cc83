//! Classes of a live host's containers and volumes. Order of evidence: the
//! `io.podfs.class` label on the volume, then on the containers that mount it (a label is
//! what a person said, so it beats any guess), then heuristics (image name, where it is
//! mounted, `--rm`, restart policy).

use super::{Evidence, EvidenceKind, image_evidence, mount_evidence};
use crate::class::Class;
use crate::error::Error;
use crate::inventory::live::{Container, LiveHost, Volume};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The label that names a class.
pub const CLASS_LABEL: &str = "io.podfs.class";

/// A container or volume with its class and the evidence, deciding piece first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassifiedObject {
    pub name: String,
    pub class: Class,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveProfile {
    pub containers: Vec<ClassifiedObject>,
    pub volumes: Vec<ClassifiedObject>,
}

/// The class a label names. An unknown value is an error naming the object, because a
/// typo would otherwise quietly put data on the wrong storage.
fn label_evidence(
    labels: &BTreeMap<String, String>,
    object: &str,
    via: &str,
) -> Result<Option<Evidence>, Error> {
    let Some(value) = labels.get(CLASS_LABEL) else { return Ok(None) };
    let class: Class = value.parse().map_err(|e: crate::class::UnknownClass| {
        let hint = e.did_you_mean.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
        let known: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
        Error::Usage(format!(
            "{object}: label {CLASS_LABEL}={value:?} is not a class{hint}; the classes are {}",
            known.join(", ")
        ))
    })?;
    Ok(Some(Evidence {
        kind: EvidenceKind::Explicit,
        suggests: class,
        detail: format!("label {CLASS_LABEL}={class} on {via}"),
    }))
}

fn decided(name: &str, mut evidence: Vec<Evidence>, default_detail: &str) -> ClassifiedObject {
    if evidence.is_empty() {
        evidence.push(Evidence {
            kind: EvidenceKind::Default,
            suggests: Class::FALLBACK,
            detail: default_detail.into(),
        });
    }
    ClassifiedObject { name: name.into(), class: evidence[0].suggests, evidence }
}

/// Evidence from how a container runs: `--rm` makes it short-lived (a job); a restart
/// policy that brings it back makes it a long-running service.
fn lifecycle_evidence(c: &Container) -> Option<Evidence> {
    if c.auto_remove {
        return Some(Evidence {
            kind: EvidenceKind::AutoRemove,
            suggests: Class::SHORT_LIVED,
            detail: format!("container `{}` was created with --rm", c.name),
        });
    }
    matches!(c.restart_policy.as_str(), "always" | "unless-stopped" | "on-failure").then(|| Evidence {
        kind: EvidenceKind::Lifetime,
        suggests: Class::RESTARTING,
        detail: format!("container `{}` restarts on exit (restart={})", c.name, c.restart_policy),
    })
}

pub fn classify_container(c: &Container) -> Result<ClassifiedObject, Error> {
    let mut evidence: Vec<Evidence> =
        label_evidence(&c.labels, &format!("container `{}`", c.name), "the container")?.into_iter().collect();
    evidence.extend(image_evidence(&c.image));
    evidence.extend(
        c.mounts.iter().filter(|m| m.kind == "volume").filter_map(|m| mount_evidence(&m.destination)),
    );
    evidence.extend(lifecycle_evidence(c));
    Ok(decided(&c.name, evidence, "no label, known image, data path or restart policy matched"))
}

pub fn classify_volume(v: &Volume, users: &[&Container]) -> Result<ClassifiedObject, Error> {
    let object = format!("volume `{}`", v.name);
    let mut evidence: Vec<Evidence> = label_evidence(&v.labels, &object, "the volume")?.into_iter().collect();
    for c in users {
        evidence.extend(label_evidence(
            &c.labels,
            &format!("container `{}`", c.name),
            &format!("container `{}`", c.name),
        )?);
    }
    for c in users {
        evidence.extend(image_evidence(&c.image).map(|mut e| {
            e.detail = format!("used by `{}`: {}", c.name, e.detail);
            e
        }));
        let here = c.mounts.iter().filter(|m| m.volume.as_deref() == Some(v.name.as_str()));
        evidence.extend(here.filter_map(|m| mount_evidence(&m.destination)));
    }
    let default = if users.is_empty() {
        "no label, and no container uses it"
    } else {
        "no label, known image or data path matched"
    };
    Ok(decided(&v.name, evidence, default))
}

/// Classifies every container and volume of a host; the result is in the host's order.
pub fn classify_host(host: &LiveHost) -> Result<LiveProfile, Error> {
    let containers = host.containers.iter().map(classify_container).collect::<Result<_, _>>()?;
    let by_name: HashMap<&str, &Container> = host.containers.iter().map(|c| (c.name.as_str(), c)).collect();
    let volumes = host
        .volumes
        .iter()
        .map(|v| {
            let users: Vec<&Container> =
                v.used_by.iter().filter_map(|n| by_name.get(n.as_str()).copied()).collect();
            classify_volume(v, &users)
        })
        .collect::<Result<_, _>>()?;
    Ok(LiveProfile { containers, volumes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::live::Mount;

    fn class(name: &str) -> Class {
        Class::named(name).expect(name)
    }

    fn container(name: &str, image: &str, volume: Option<(&str, &str)>) -> Container {
        Container {
            name: name.into(),
            image: image.into(),
            mounts: volume
                .map(|(v, dest)| Mount {
                    kind: "volume".into(),
                    destination: dest.into(),
                    volume: Some(v.into()),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    fn volume(name: &str, label: Option<&str>) -> Volume {
        Volume {
            name: name.into(),
            labels: label.map(|l| (CLASS_LABEL.to_string(), l.to_string())).into_iter().collect(),
            ..Default::default()
        }
    }

    #[test]
    fn volume_label_then_container_label_then_heuristics() {
        let mut app = container("app", "ghcr.io/acme/app", Some(("data", "/srv")));
        app.labels.insert(CLASS_LABEL.into(), "cache".into());
        let v = classify_volume(&volume("data", Some("media")), &[&app]).unwrap();
        assert_eq!((v.class, v.evidence[1].suggests), (class("media"), class("cache")));
        let v = classify_volume(&volume("data", None), &[&app]).unwrap();
        assert_eq!(v.class, class("cache"));
        let pg =
            container("pg", "docker.io/library/postgres:16", Some(("pgdata", "/var/lib/postgresql/data")));
        let v = classify_volume(&volume("pgdata", None), &[&pg]).unwrap();
        assert_eq!((v.class, v.evidence.len()), (class("database"), 2));
        let v = classify_volume(&volume("orphan", None), &[]).unwrap();
        assert_eq!((v.class, v.evidence[0].kind), (class("general"), EvidenceKind::Default));
    }

    #[test]
    fn containers_use_rm_and_restart_policy() {
        let mut c = container("report", "ghcr.io/acme/report", None);
        c.auto_remove = true;
        assert_eq!(classify_container(&c).unwrap().class, class("job"));
        c.auto_remove = false;
        c.restart_policy = "always".into();
        assert_eq!(classify_container(&c).unwrap().class, class("service"));
        c.restart_policy = "no".into();
        assert_eq!(classify_container(&c).unwrap().class, class("general"));
    }

    #[test]
    fn unknown_label_is_an_error_naming_the_object() {
        let err = classify_volume(&volume("pgdata", Some("databse")), &[]).unwrap_err().to_string();
        assert!(err.contains("volume `pgdata`") && err.contains("did you mean `database`?"), "{err}");
    }
}
