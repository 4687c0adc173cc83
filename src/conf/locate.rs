//! Which storage.conf Podman uses, and why (containers-storage.conf(5)): one file wins,
//! there is no merging.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Located {
    pub path: PathBuf,
    /// Why this file: "CONTAINERS_STORAGE_CONF", "/etc over /usr/share", …
    pub why: String,
    pub exists: bool,
}

/// The storage.conf Podman would read. `env` reads environment variables, `exists` tests a
/// path; both injected so the rules can be tested without touching the machine.
pub fn locate(
    env: &dyn Fn(&str) -> Option<String>,
    rootless: bool,
    exists: &dyn Fn(&Path) -> bool,
) -> Located {
    let found = |path: PathBuf, why: String| Located { exists: exists(&path), path, why };
    if let Some(p) = env("CONTAINERS_STORAGE_CONF").filter(|p| !p.is_empty()) {
        return found(PathBuf::from(p), "CONTAINERS_STORAGE_CONF names it".into());
    }
    if rootless {
        let config = env("XDG_CONFIG_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")));
        if let Some(dir) = config {
            let user = dir.join("containers/storage.conf");
            if exists(&user) {
                return found(user, "rootless: the user's own file exists".into());
            }
        }
    }
    let etc = PathBuf::from("/etc/containers/storage.conf");
    if exists(&etc) {
        let why = if rootless {
            "rootless without a file of its own: the system file"
        } else {
            "root: /etc wins over /usr/share"
        };
        return found(etc, why.into());
    }
    let share = PathBuf::from("/usr/share/containers/storage.conf");
    if exists(&share) {
        return found(share, "no /etc/containers/storage.conf: the distribution default".into());
    }
    found(etc, "no storage.conf yet: /etc/containers/storage.conf is where one belongs".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_follows_the_man_page() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        let all = |_: &Path| true;
        assert_eq!(locate(&env, false, &all).path, Path::new("/etc/containers/storage.conf"));
        assert_eq!(locate(&env, true, &all).path, Path::new("/home/u/.config/containers/storage.conf"));
        let only_share = |p: &Path| p.starts_with("/usr/share");
        let l = locate(&env, false, &only_share);
        assert_eq!((l.path.as_path(), l.exists), (Path::new("/usr/share/containers/storage.conf"), true));
        let none = |_: &Path| false;
        assert!(!locate(&env, false, &none).exists);
        let named = |k: &str| (k == "CONTAINERS_STORAGE_CONF").then(|| "/tmp/x.conf".to_string());
        assert_eq!(locate(&named, true, &all).path, Path::new("/tmp/x.conf"));
    }
}
