//! Podman's answers, read into the tool's model ([`crate::inventory::live`]). podman-api's
//! typed models read `info` and the lists; the container inspection is read into tolerant
//! structs of our own, since every field may be `null` or missing.

use crate::inventory::live::{Container, Image, Mount, StorageFacts, Volume};
use podman_api::models;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashMap, HashSet};

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

/// A container as listed; its mounts and restart policy come from the other lists or,
/// when they lack something, from [`apply_inspect`].
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
    let mut mounts: Vec<Mount> = inspect.mounts.into_iter().flatten().map(mount_from).collect();
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

fn mount_from(m: RawMount) -> Mount {
    let volume = (m.kind == "volume" && !m.name.is_empty()).then_some(m.name);
    Mount {
        kind: m.kind,
        source: m.source,
        destination: m.destination,
        volume,
        read_write: m.rw.unwrap_or(true),
    }
}

/// One container of the Docker-compatible list (`/containers/json?all=true`): Podman
/// fills its `Mounts` from the container's inspection, so they are inspect's `Mounts`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CompatContainer {
    #[serde(rename = "Id", deserialize_with = "nullable")]
    pub id: String,
    #[serde(rename = "Mounts", deserialize_with = "nullable")]
    mounts: Vec<Option<RawMount>>,
}

/// A container of a list read only for its id (the lists filtered by restart policy).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ListedId {
    #[serde(rename = "Id", deserialize_with = "nullable")]
    pub id: String,
}

/// The values of the `restart-policy` filters a scan lists containers by, one list each.
/// A filter matches any of its values, so two lists tell the three policies that restart
/// apart: `always` is in both, `on-failure` only in the first, `unless-stopped` only in the
/// second. `no` needs a list of its own only where Podman reports an explicit `no`
/// differently from no policy at all (before Podman 5).
pub(super) const RESTART_FILTERS: [&[&str]; 3] =
    [&["always", "on-failure"], &["always", "unless-stopped"], &["no"]];

/// The [`RESTART_FILTERS`] a scan of this Podman needs.
pub(super) fn restart_filters(podman_version: &str) -> &'static [&'static [&'static str]] {
    match unset_restart_policy(podman_version) {
        "no" => &RESTART_FILTERS[..2],
        _ => &RESTART_FILTERS,
    }
}

/// The restart policy inspect reports for a container created without `--restart`,
/// which no filter matches: empty before Podman 5, `no` since.
pub(super) fn unset_restart_policy(podman_version: &str) -> &'static str {
    if super::Version::parse(podman_version).is_some_and(|v| v.major >= 5) { "no" } else { "" }
}

/// A listed container's mounts from the lists alone, or the reason only its inspection
/// tells them: `destinations` are the libpod list's `Mounts`, which name `--tmpfs`
/// mounts too; the compatible list leaves those out, and only inspect has their options.
pub(super) fn mounts_from_lists(
    compat: Option<CompatContainer>,
    destinations: &[String],
) -> Result<Vec<Mount>, String> {
    let Some(compat) = compat else {
        return Err("it is missing from the Docker-compatible list (created between the lists)".into());
    };
    let mounts: Vec<Mount> = compat.mounts.into_iter().flatten().map(mount_from).collect();
    match destinations.iter().find(|d| !mounts.iter().any(|m| &m.destination == *d)) {
        Some(d) => Err(format!(
            "the libpod list's `Mounts` names {d}, which the Docker-compatible list's `Mounts` lacks \
             (a tmpfs, whose options only inspect's `HostConfig.Tmpfs` has)"
        )),
        None => Ok(mounts),
    }
}

/// Container id → restart policy, from the answers to the [`RESTART_FILTERS`] (in their
/// order; a missing answer lists no container).
pub(super) fn restart_policies(answers: &[Vec<ListedId>]) -> HashMap<String, &'static str> {
    let ids = |i: usize| -> HashSet<&str> {
        answers.get(i).map(|l| l.iter().map(|c| c.id.as_str()).collect()).unwrap_or_default()
    };
    let (first, second, no) = (ids(0), ids(1), ids(2));
    let mut policies: HashMap<String, &'static str> = first
        .union(&second)
        .map(|id| {
            let policy = match (first.contains(id), second.contains(id)) {
                (true, true) => "always",
                (true, false) => "on-failure",
                _ => "unless-stopped",
            };
            (id.to_string(), policy)
        })
        .collect();
    policies.extend(no.into_iter().map(|id| (id.to_string(), "no")));
    policies
}

/// Every listed container with what the lists tell of it, in the libpod list's order, and
/// the ones only an inspection describes (index, and what the lists lack).
pub(super) fn containers_from_lists(
    listed: Vec<models::ListContainer>,
    compat: Vec<CompatContainer>,
    policies: &HashMap<String, &'static str>,
    podman_version: &str,
) -> (Vec<Container>, Vec<(usize, String)>) {
    let mut compat: HashMap<String, CompatContainer> =
        compat.into_iter().map(|c| (c.id.clone(), c)).collect();
    let unset = unset_restart_policy(podman_version);
    let mut containers = Vec::with_capacity(listed.len());
    let mut uninspected = Vec::new();
    for listed in listed {
        let destinations = listed.mounts.clone().unwrap_or_default();
        let mut c = container_from_list(listed);
        match mounts_from_lists(compat.remove(&c.id), &destinations) {
            Ok(mounts) => {
                c.mounts = mounts;
                c.restart_policy = policies.get(&c.id).copied().unwrap_or(unset).to_string();
            }
            Err(why) => uninspected.push((containers.len(), why)),
        }
        containers.push(c);
    }
    (containers, uninspected)
}

pub(super) fn volume_from(v: models::Volume) -> Volume {
    Volume {
        name: v.name,
        driver: v.driver,
        mountpoint: v.mountpoint,
        labels: v.labels.into_iter().collect(),
        options: v.options.into_iter().collect(),
        size: None,
        size_from: None,
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

    // -- The recorded answers of Podman 4.3.1 and 5.4.2 (tests/fixtures/record-podman.sh) --

    /// One Podman version's recorded answers.
    struct Recorded {
        version: &'static str,
        info: &'static str,
        images: &'static str,
        containers: &'static str,
        compat: &'static str,
        restart: [&'static str; 3],
        volumes: &'static str,
    }

    macro_rules! recorded {
        ($v:literal) => {
            Recorded {
                version: $v,
                info: include_str!(concat!("../../tests/fixtures/podman-", $v, "/info.json")),
                images: include_str!(concat!("../../tests/fixtures/podman-", $v, "/images.json")),
                containers: include_str!(concat!("../../tests/fixtures/podman-", $v, "/containers.json")),
                compat: include_str!(concat!("../../tests/fixtures/podman-", $v, "/compat-containers.json")),
                restart: [
                    include_str!(concat!(
                        "../../tests/fixtures/podman-",
                        $v,
                        "/restart-always,on-failure.json"
                    )),
                    include_str!(concat!(
                        "../../tests/fixtures/podman-",
                        $v,
                        "/restart-always,unless-stopped.json"
                    )),
                    include_str!(concat!("../../tests/fixtures/podman-", $v, "/restart-no.json")),
                ],
                volumes: include_str!(concat!("../../tests/fixtures/podman-", $v, "/volumes.json")),
            }
        };
    }

    fn both() -> [Recorded; 2] {
        [recorded!("4.3.1"), recorded!("5.4.2")]
    }

    /// The recorded inspection of container `name` (`infra` for the pod's infra container).
    fn inspect_of(version: &str, name: &str) -> RawInspect {
        let name = if name.ends_with("-infra") { "infra" } else { name };
        let path =
            format!("{}/tests/fixtures/podman-{version}/inspect-{name}.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    impl Recorded {
        fn listed(&self) -> Vec<models::ListContainer> {
            serde_json::from_str(self.containers).unwrap()
        }

        /// The containers as a scan reads them: the lists, and the inspections they call for.
        fn read_by_lists(&self) -> (Vec<Container>, Vec<String>) {
            let compat: Vec<CompatContainer> = serde_json::from_str(self.compat).unwrap();
            // The answers a scan of this version asks for.
            let answers: Vec<Vec<ListedId>> = self.restart[..restart_filters(self.version).len()]
                .iter()
                .map(|text| serde_json::from_str(text).unwrap())
                .collect();
            let policies = restart_policies(&answers);
            let (mut containers, uninspected) =
                containers_from_lists(self.listed(), compat, &policies, self.version);
            let mut inspected = Vec::new();
            for (i, why) in uninspected {
                assert!(why.contains("a tmpfs"), "{why}");
                let inspect = inspect_of(self.version, &containers[i].name);
                apply_inspect(&mut containers[i], inspect);
                inspected.push(containers[i].name.clone());
            }
            (containers, inspected)
        }

        fn host(&self) -> LiveHost {
            let info: models::Info = serde_json::from_str(self.info).unwrap();
            let (rootless, storage) = storage_from_info(info).unwrap();
            let images: Vec<models::LibpodImageSummary> = serde_json::from_str(self.images).unwrap();
            let volumes: Vec<models::Volume> = serde_json::from_str(self.volumes).unwrap();
            assemble(
                "unix:///tmp/pt/podman.sock".into(),
                self.version.into(),
                rootless,
                storage,
                images.into_iter().map(image_from).collect(),
                self.read_by_lists().0,
                volumes.into_iter().map(volume_from).collect(),
            )
        }
    }

    #[test]
    fn fixture_info() {
        for r in both() {
            let info: models::Info = serde_json::from_str(r.info).unwrap();
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
                },
                "{}",
                r.version
            );
        }
        let info: models::Info = serde_json::from_str(r#"{"host":null,"store":{"graphStatus":{}}}"#).unwrap();
        let (rootless, storage) = storage_from_info(info).unwrap();
        assert!(!rootless);
        assert_eq!(storage, StorageFacts::default());
        let info: models::Info = serde_json::from_str("{}").unwrap();
        assert!(storage_from_info(info).is_err());
    }

    #[test]
    fn fixture_images() {
        for r in both() {
            let images: Vec<models::LibpodImageSummary> = serde_json::from_str(r.images).unwrap();
            let images: Vec<Image> = images.into_iter().map(image_from).collect();
            let busybox = images.iter().find(|i| i.names.contains(&"localhost/busybox:test".into())).unwrap();
            assert!(busybox.names.contains(&"localhost/fixture-tag:1".into()), "{busybox:?}");
            assert_eq!((busybox.shared_size, busybox.containers), (0, 10), "{}", r.version);
            assert!(busybox.size > 1_900_000 && busybox.id.len() == 64, "{busybox:?}");
            // The dangling image: RepoTags is null.
            let dangling: Vec<&Image> = images.iter().filter(|i| i.names.is_empty()).collect();
            assert_eq!(dangling.len(), 1, "{}", r.version);
            assert_eq!(dangling[0].size, 1997895);
        }
    }

    #[test]
    fn fixture_volumes() {
        for r in both() {
            let volumes: Vec<models::Volume> = serde_json::from_str(r.volumes).unwrap();
            let mut volumes: Vec<Volume> = volumes.into_iter().map(volume_from).collect();
            volumes.sort_by(|a, b| a.name.cmp(&b.name));
            // Two named and the anonymous one of fixture-anon.
            assert_eq!(volumes.len(), 3, "{}", r.version);
            let cache = volumes.iter().find(|v| v.name == "fixture-cache").unwrap();
            assert_eq!(cache.driver, "local");
            assert_eq!(cache.mountpoint, "/tmp/pt/mnt/storage/volumes/fixture-cache/_data");
            assert_eq!(cache.labels.get("io.podfs.class").map(String::as_str), Some("cache"));
            assert_eq!(cache.options.get("device").map(String::as_str), Some("/tmp/fixture-voldev"));
            assert_eq!(cache.options.get("o").map(String::as_str), Some("bind"));
            assert_eq!((cache.size, cache.used_by.len()), (None, 0));
            let pgdata = volumes.iter().find(|v| v.name == "pgdata").unwrap();
            assert_eq!(pgdata.labels.get("io.podfs.class").map(String::as_str), Some("database"));
            assert!(pgdata.options.is_empty());
        }
    }

    /// The lists describe each container exactly as its inspection does; only containers
    /// with a tmpfs mount are inspected.
    #[test]
    fn lists_tell_what_inspect_tells() {
        for r in both() {
            let (containers, inspected) = r.read_by_lists();
            assert_eq!(containers.len(), 11, "{}", r.version);
            for c in &containers {
                let mut by_inspect = container_from_list(
                    r.listed().into_iter().find(|l| l.id.as_deref() == Some(c.id.as_str())).unwrap(),
                );
                apply_inspect(&mut by_inspect, inspect_of(r.version, &c.name));
                assert_eq!(c, &by_inspect, "Podman {}", r.version);
            }
            // 4.3.1 gives a --read-only container tmpfs mounts on /tmp, /var/tmp and /run.
            let expected: &[&str] = match r.version {
                "4.3.1" => &["fixture-web", "fixture-tmpfs-ro", "fixture-read-only"],
                _ => &["fixture-web", "fixture-tmpfs-ro"],
            };
            assert_eq!(inspected, expected, "{}", r.version);
        }
    }

    #[test]
    fn fixture_containers() {
        for r in both() {
            let host = r.host();
            let c = |name: &str| host.containers.iter().find(|c| c.name == name).unwrap();
            let unset = if r.version == "4.3.1" { "" } else { "no" };
            let policies: Vec<(&str, &str)> =
                host.containers.iter().map(|c| (c.name.as_str(), c.restart_policy.as_str())).collect();
            for (name, policy) in &policies {
                let expected = match *name {
                    "fixture-web" => "always",
                    "fixture-anon" => "on-failure",
                    "fixture-unless" => "unless-stopped",
                    "fixture-no" => "no",
                    _ => unset,
                };
                assert_eq!(policy, &expected, "{name} on {}", r.version);
            }

            let sleeper = c("sleeper");
            assert_eq!(sleeper.image, "localhost/busybox:test");
            assert_eq!(sleeper.state, "running");
            assert!(sleeper.labels.is_empty());
            assert!(sleeper.rw_size.is_some_and(|s| s > 0));
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

            let web = c("fixture-web");
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
            assert_eq!(c("fixture-exited").state, "exited");
            assert!(c("fixture-exited").mounts.is_empty());
            let rm = c("fixture-rm");
            assert_eq!((rm.state.as_str(), rm.auto_remove, rm.rw_size), ("created", true, Some(0)));
            assert!(!web.auto_remove && !sleeper.auto_remove);

            let anon = &c("fixture-anon").mounts[0];
            assert_eq!((anon.kind.as_str(), anon.destination.as_str()), ("volume", "/anon-data"));
            assert!(anon.volume.as_ref().is_some_and(|v| v.len() == 64), "{anon:?}");
            let bind = &c("fixture-unless").mounts[0];
            assert_eq!(
                (bind.kind.as_str(), bind.source.as_str(), bind.read_write),
                ("bind", "/tmp/fixture-bind", true)
            );
            let ro = &c("fixture-no").mounts[0];
            assert_eq!((ro.volume.as_deref(), ro.read_write), (Some("pgdata"), false));
            let tmpfs = &c("fixture-tmpfs-ro").mounts;
            assert_eq!(tmpfs.len(), 1);
            assert_eq!((tmpfs[0].kind.as_str(), tmpfs[0].read_write), ("tmpfs", false));
            assert_eq!(c("fixture-inpod").mounts[0].destination, "/p");
            assert!(host.containers.iter().any(|c| c.name.ends_with("-infra") && c.mounts.is_empty()));

            let used: Vec<(&str, &[String])> = host
                .volumes
                .iter()
                .filter(|v| v.name.len() < 64)
                .map(|v| (v.name.as_str(), &v.used_by[..]))
                .collect();
            let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            assert_eq!(used[0], ("fixture-cache", &names(&["fixture-web"])[..]));
            assert_eq!(used[1], ("pgdata", &names(&["fixture-inpod", "fixture-no", "sleeper"])[..]));
        }
    }

    #[test]
    fn two_lists_tell_three_policies_apart() {
        let listed = |ids: &[&str]| ids.iter().map(|id| ListedId { id: id.to_string() }).collect::<Vec<_>>();
        let policies = restart_policies(&[listed(&["a", "f"]), listed(&["a", "u"]), listed(&["n"])]);
        let mut all: Vec<(&str, &str)> = policies.iter().map(|(id, p)| (id.as_str(), *p)).collect();
        all.sort();
        assert_eq!(all, [("a", "always"), ("f", "on-failure"), ("n", "no"), ("u", "unless-stopped")]);
        assert_eq!(restart_policies(&[listed(&["f"])]).get("f"), Some(&"on-failure"));
        assert_eq!(restart_filters("5.4.2").len(), 2);
        assert_eq!(restart_filters("4.3.1").len(), 3);
    }

    #[test]
    fn the_unset_restart_policy_follows_the_version() {
        assert_eq!(unset_restart_policy("4.3.1"), "");
        assert_eq!(unset_restart_policy("v4.9.4"), "");
        assert_eq!(unset_restart_policy("5.4.2"), "no");
        assert_eq!(unset_restart_policy("6.0"), "no");
        assert_eq!(unset_restart_policy("dev"), "");
    }

    #[test]
    fn a_container_missing_from_a_list_is_inspected() {
        let listed: Vec<models::ListContainer> =
            serde_json::from_str(r#"[{"Id":"a","Names":["a"],"Mounts":["/d"]},{"Id":"b","Names":["b"]}]"#)
                .unwrap();
        let compat: Vec<CompatContainer> = serde_json::from_str(
            r#"[{"Id":"a","Mounts":[{"Type":"volume","Name":"v","Destination":"/d","RW":false},null]}]"#,
        )
        .unwrap();
        let (containers, uninspected) = containers_from_lists(listed, compat, &HashMap::new(), "5.0.0");
        assert_eq!(containers[0].mounts[0].volume.as_deref(), Some("v"));
        assert_eq!(containers[0].restart_policy, "no");
        assert_eq!(uninspected.len(), 1);
        assert_eq!(uninspected[0].0, 1);
        assert!(uninspected[0].1.contains("missing from the Docker-compatible list"), "{:?}", uninspected);
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
