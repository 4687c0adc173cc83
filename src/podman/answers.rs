//! Podman's answers, read into the tool's model ([`crate::inventory::live`]). podman-api's
//! typed models read `info` and the lists; the container inspection is read into tolerant
//! structs of our own, since every field may be `null` or missing.

use crate::inventory::live::{Container, Image, Mount, StorageFacts, Volume};
use podman_api::models;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashMap};

/// `null` as the type's default, for every field of the structs below.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The part of `containers/{id}/json` we read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawInspect {
    /// A `null` entry is skipped.
    #[serde(rename = "Mounts", deserialize_with = "nullable")]
    mounts: Vec<Option<RawMount>>,
    #[serde(rename = "HostConfig", deserialize_with = "nullable")]
    host_config: RawHostConfig,
}

/// The part of `containers/{id}/json` read when a container is looked at on its own.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawContainer {
    #[serde(rename = "Id", deserialize_with = "nullable")]
    id: String,
    #[serde(rename = "Name", deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "ImageName", deserialize_with = "nullable")]
    image_name: String,
    #[serde(rename = "Image", deserialize_with = "nullable")]
    image: String,
    #[serde(rename = "State", deserialize_with = "nullable")]
    state: RawState,
    #[serde(rename = "Config", deserialize_with = "nullable")]
    config: RawConfig,
    #[serde(flatten)]
    inspect: RawInspect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawState {
    #[serde(rename = "Status", deserialize_with = "nullable")]
    status: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawConfig {
    #[serde(rename = "Labels", deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    /// Seconds between the stop signal and SIGKILL (`--stop-timeout`).
    #[serde(rename = "StopTimeout")]
    stop_timeout: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawMount {
    #[serde(rename = "Type", deserialize_with = "nullable")]
    kind: String,
    #[serde(rename = "Name", deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "Source", deserialize_with = "nullable")]
    source: String,
    #[serde(rename = "Destination", deserialize_with = "nullable")]
    destination: String,
    #[serde(rename = "RW")]
    rw: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawHostConfig {
    #[serde(rename = "RestartPolicy", deserialize_with = "nullable")]
    restart_policy: RawRestartPolicy,
    #[serde(rename = "AutoRemove", deserialize_with = "nullable")]
    auto_remove: bool,
    /// `--tmpfs` mounts: destination → options. Inspect's `Mounts` leaves them out.
    #[serde(rename = "Tmpfs", deserialize_with = "nullable")]
    tmpfs: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawRestartPolicy {
    #[serde(rename = "Name", deserialize_with = "nullable")]
    name: String,
}

/// A container looked at on its own, from `containers/{id}/json` alone.
pub(super) fn container_from_inspect(raw: RawContainer) -> Container {
    let mut c = Container {
        id: raw.id,
        name: raw.name,
        image: raw.image_name,
        image_id: raw.image,
        state: raw.state.status,
        labels: raw.config.labels,
        stop_timeout: raw.config.stop_timeout,
        ..Container::default()
    };
    apply_inspect(&mut c, raw.inspect);
    c
}

/// A size as Podman reports it: absent or negative is 0.
fn size(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

fn sorted(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

fn bare_id(id: Option<String>) -> String {
    let id = id.unwrap_or_default();
    id.strip_prefix("sha256:").map(str::to_string).unwrap_or(id)
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// `rootless` and the storage facts from `info`.
pub(super) fn storage_from_info(info: models::Info) -> Result<(bool, StorageFacts), String> {
    let store = info.store.ok_or("`info` has no `store` section")?;
    let rootless = info.host.and_then(|h| h.security).and_then(|s| s.rootless).unwrap_or(false);
    let backing_filesystem = non_empty(store.graph_status.and_then(|mut s| s.remove("Backing Filesystem")));
    Ok((
        rootless,
        StorageFacts {
            driver: store.graph_driver_name.unwrap_or_default(),
            graphroot: store.graph_root.unwrap_or_default(),
            runroot: store.run_root.unwrap_or_default(),
            backing_filesystem,
            volume_path: non_empty(store.volume_path),
        },
    ))
}

pub(super) fn image_from(i: models::LibpodImageSummary) -> Image {
    let names = i
        .repo_tags
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !t.is_empty() && !t.starts_with("<none>"))
        .collect();
    Image {
        id: bare_id(i.id),
        names,
        size: size(i.size),
        shared_size: size(i.shared_size),
        containers: size(i.containers),
    }
}

/// A container as listed; mounts and restart policy come from [`apply_inspect`].
pub(super) fn container_from_list(c: models::ListContainer) -> Container {
    let id = c.id.unwrap_or_default();
    let name = c
        .names
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.trim_start_matches('/').to_string())
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| id.get(..12).unwrap_or(&id).to_string());
    Container {
        name,
        image: c.image.unwrap_or_default(),
        image_id: bare_id(c.image_id),
        state: c.state.unwrap_or_default(),
        labels: sorted(c.labels),
        restart_policy: String::new(),
        auto_remove: c.auto_remove.unwrap_or(false),
        mounts: Vec::new(),
        rw_size: c.size.map(|s| size(s.rw_size)),
        stop_timeout: None,
        id,
    }
}

pub(super) fn apply_inspect(c: &mut Container, inspect: RawInspect) {
    let mut mounts: Vec<Mount> = inspect
        .mounts
        .into_iter()
        .flatten()
        .map(|m| {
            let volume = (m.kind == "volume" && !m.name.is_empty()).then_some(m.name);
            Mount {
                kind: m.kind,
                source: m.source,
                destination: m.destination,
                volume,
                read_write: m.rw.unwrap_or(true),
            }
        })
        .collect();
    for (destination, options) in inspect.host_config.tmpfs {
        if mounts.iter().any(|m| m.destination == destination) {
            continue;
        }
        let read_write = !options.split(',').any(|o| o.trim() == "ro");
        mounts.push(Mount {
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            destination,
            volume: None,
            read_write,
        });
    }
    c.mounts = mounts;
    c.restart_policy = inspect.host_config.restart_policy.name;
    c.auto_remove |= inspect.host_config.auto_remove;
}

pub(super) fn volume_from(v: models::Volume) -> Volume {
    Volume {
        name: v.name,
        driver: v.driver,
        mountpoint: v.mountpoint,
        labels: v.labels.into_iter().collect(),
        options: v.options.into_iter().collect(),
        size: None,
        used_by: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::live::LiveHost;
    use crate::podman::host::assemble;

    #[test]
    fn sizes_never_go_negative() {
        assert_eq!(size(None), 0);
        assert_eq!(size(Some(-5)), 0);
        assert_eq!(size(Some(i64::MAX)), i64::MAX as u64);
    }

    // -- The recorded answers of Podman 4.3.1 --------------------------------------------

    const INFO: &str = include_str!("../../tests/fixtures/podman-4.3.1/info.json");
    const IMAGES: &str = include_str!("../../tests/fixtures/podman-4.3.1/images.json");
    const CONTAINERS: &str = include_str!("../../tests/fixtures/podman-4.3.1/containers.json");
    const VOLUMES: &str = include_str!("../../tests/fixtures/podman-4.3.1/volumes.json");
    const INSPECTS: [&str; 4] = [
        include_str!("../../tests/fixtures/podman-4.3.1/inspect-sleeper.json"),
        include_str!("../../tests/fixtures/podman-4.3.1/inspect-fixture-web.json"),
        include_str!("../../tests/fixtures/podman-4.3.1/inspect-fixture-exited.json"),
        include_str!("../../tests/fixtures/podman-4.3.1/inspect-fixture-rm.json"),
    ];

    const BUSYBOX: &str = "2430362f000833281e04a4362b98c757e4caad8e731f948d71d2b8f2f95d50c0";

    #[test]
    fn fixture_info() {
        let info: models::Info = serde_json::from_str(INFO).unwrap();
        let (rootless, storage) = storage_from_info(info).unwrap();
        assert!(!rootless);
        assert_eq!(
            storage,
            StorageFacts {
                driver: "overlay".into(),
                graphroot: "/tmp/pt/mnt/storage".into(),
                runroot: "/tmp/pt/run".into(),
                backing_filesystem: Some("btrfs".into()),
                volume_path: Some("/tmp/pt/mnt/storage/volumes".into()),
            }
        );
        let info: models::Info = serde_json::from_str(r#"{"host":null,"store":{"graphStatus":{}}}"#).unwrap();
        let (rootless, storage) = storage_from_info(info).unwrap();
        assert!(!rootless);
        assert_eq!(storage, StorageFacts::default());
        let info: models::Info = serde_json::from_str("{}").unwrap();
        assert!(storage_from_info(info).is_err());
    }

    #[test]
    fn fixture_images() {
        let images: Vec<models::LibpodImageSummary> = serde_json::from_str(IMAGES).unwrap();
        let images: Vec<Image> = images.into_iter().map(image_from).collect();
        assert_eq!(
            images[0],
            Image {
                id: BUSYBOX.into(),
                names: vec!["localhost/busybox:test".into(), "localhost/fixture-tag:1".into()],
                size: 1997895,
                shared_size: 0,
                containers: 4,
            }
        );
        // A dangling image: RepoTags is null.
        assert_eq!(images[1].names, Vec::<String>::new());
        assert_eq!(images[1].size, 2005857);
    }

    #[test]
    fn fixture_volumes() {
        let volumes: Vec<models::Volume> = serde_json::from_str(VOLUMES).unwrap();
        let volumes: Vec<Volume> = volumes.into_iter().map(volume_from).collect();
        assert_eq!(volumes.len(), 2);
        let cache = &volumes[0];
        assert_eq!(cache.name, "fixture-cache");
        assert_eq!(cache.driver, "local");
        assert_eq!(cache.mountpoint, "/tmp/pt/mnt/storage/volumes/fixture-cache/_data");
        assert_eq!(cache.labels.get("io.podfs.class").map(String::as_str), Some("cache"));
        assert_eq!(cache.options.get("device").map(String::as_str), Some("/tmp/fixture-voldev"));
        assert_eq!(cache.options.get("o").map(String::as_str), Some("bind"));
        assert_eq!((cache.size, cache.used_by.len()), (None, 0));
        assert_eq!(volumes[1].labels.get("io.podfs.class").map(String::as_str), Some("database"));
        assert!(volumes[1].options.is_empty());
    }

    /// Everything together, as `fetch` assembles it.
    fn fixture_host() -> LiveHost {
        let info: models::Info = serde_json::from_str(INFO).unwrap();
        let (rootless, storage) = storage_from_info(info).unwrap();
        let images: Vec<models::LibpodImageSummary> = serde_json::from_str(IMAGES).unwrap();
        let listed: Vec<models::ListContainer> = serde_json::from_str(CONTAINERS).unwrap();
        let volumes: Vec<models::Volume> = serde_json::from_str(VOLUMES).unwrap();
        let mut inspects: Vec<(String, RawInspect)> = INSPECTS
            .iter()
            .map(|text| {
                let id: serde_json::Value = serde_json::from_str(text).unwrap();
                (id["Id"].as_str().unwrap().to_string(), serde_json::from_str(text).unwrap())
            })
            .collect();
        let containers = listed
            .into_iter()
            .map(container_from_list)
            .map(|mut c| {
                let at = inspects.iter().position(|(id, _)| *id == c.id).unwrap();
                apply_inspect(&mut c, inspects.remove(at).1);
                c
            })
            .collect();
        assemble(
            "unix:///tmp/pt/podman.sock".into(),
            "4.3.1".into(),
            rootless,
            storage,
            images.into_iter().map(image_from).collect(),
            containers,
            volumes.into_iter().map(volume_from).collect(),
        )
    }

    #[test]
    fn fixture_containers_and_inspections() {
        let host = fixture_host();
        let names: Vec<&str> = host.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["fixture-exited", "fixture-rm", "fixture-web", "sleeper"]);
        let [exited, rm, web, sleeper] = &host.containers[..] else { panic!() };

        assert_eq!(sleeper.id, "3f30b816d8a28588e27a1c4540561cd42c4877a2560bcb49911483038a5b6eda");
        assert_eq!((sleeper.image.as_str(), sleeper.image_id.as_str()), ("localhost/busybox:test", BUSYBOX));
        assert_eq!(sleeper.state, "running");
        assert!(sleeper.labels.is_empty());
        assert_eq!(sleeper.restart_policy, "");
        assert_eq!(sleeper.rw_size, Some(12));
        assert_eq!(
            sleeper.mounts,
            [Mount {
                kind: "volume".into(),
                source: "/tmp/pt/mnt/storage/volumes/pgdata/_data".into(),
                destination: "/var/lib/postgresql/data".into(),
                volume: Some("pgdata".into()),
                read_write: true,
            }]
        );

        assert_eq!(web.restart_policy, "always");
        assert_eq!(web.labels.get("io.podfs.class").map(String::as_str), Some("web"));
        assert_eq!(
            web.mounts,
            [
                Mount {
                    kind: "volume".into(),
                    source: "/tmp/pt/mnt/storage/volumes/fixture-cache/_data".into(),
                    destination: "/cache".into(),
                    volume: Some("fixture-cache".into()),
                    read_write: true,
                },
                Mount {
                    kind: "bind".into(),
                    source: "/tmp/fixture-bind".into(),
                    destination: "/srv".into(),
                    volume: None,
                    read_write: false,
                },
                Mount {
                    kind: "tmpfs".into(),
                    source: "tmpfs".into(),
                    destination: "/run/scratch".into(),
                    volume: None,
                    read_write: true,
                },
            ]
        );

        assert_eq!((exited.state.as_str(), exited.rw_size), ("exited", Some(15)));
        assert!(exited.mounts.is_empty());
        assert_eq!((rm.state.as_str(), rm.auto_remove, rm.rw_size), ("created", true, Some(0)));
        assert!(!web.auto_remove && !sleeper.auto_remove);

        let used: Vec<(&str, &[String])> =
            host.volumes.iter().map(|v| (v.name.as_str(), &v.used_by[..])).collect();
        assert_eq!(
            used,
            [("fixture-cache", &["fixture-web".to_string()][..]), ("pgdata", &["sleeper".to_string()][..])]
        );
        assert_eq!(host.images[0].names[0], "localhost/busybox:test");
        assert!(host.images[1].names.is_empty());
    }

    #[test]
    fn inspect_tolerates_nulls_and_gaps() {
        for text in [
            "{}",
            r#"{"Mounts":null,"HostConfig":null}"#,
            r#"{"HostConfig":{"RestartPolicy":null,"Tmpfs":null}}"#,
        ] {
            let inspect: RawInspect = serde_json::from_str(text).unwrap();
            let mut c = Container::default();
            apply_inspect(&mut c, inspect);
            assert!(c.mounts.is_empty() && c.restart_policy.is_empty());
        }
        let inspect: RawInspect = serde_json::from_str(
            r#"{"Mounts":[{"Type":"volume","Name":null,"Source":null,"Destination":"/d"}],
                "HostConfig":{"Tmpfs":{"/t":"ro,nosuid"},"AutoRemove":true}}"#,
        )
        .unwrap();
        let mut c = Container::default();
        apply_inspect(&mut c, inspect);
        assert_eq!(c.mounts[0].volume, None);
        assert!(c.mounts[0].read_write);
        assert!(!c.mounts[1].read_write);
        assert!(c.auto_remove);
    }

    #[test]
    fn listing_tolerates_nulls_and_negative_sizes() {
        let listed: Vec<models::ListContainer> = serde_json::from_str(
            r#"[{"Id":"0123456789abcdef","Names":null,"Labels":null,"Size":{"rwSize":-5}},{"Id":"é"},{}]"#,
        )
        .unwrap();
        let c: Vec<Container> = listed.into_iter().map(container_from_list).collect();
        assert_eq!((c[0].name.as_str(), c[0].rw_size), ("0123456789ab", Some(0)));
        assert_eq!((c[1].name.as_str(), c[1].rw_size), ("é", None));
        assert_eq!(c[2].name, "");
        let images: Vec<models::LibpodImageSummary> = serde_json::from_str(
            r#"[{"Id":"sha256:ab","Size":-5,"SharedSize":null,"RepoTags":["<none>:<none>"]}]"#,
        )
        .unwrap();
        let i = image_from(images.into_iter().next().unwrap());
        assert_eq!(i, Image { id: "ab".into(), ..Image::default() });
    }
}
