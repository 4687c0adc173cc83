//! Podman's version numbers, as `_ping`, `info`, `podman --version` and users write them.

/// A Podman release by its major and minor number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    /// One word: `4.3.1`, `v5.0.0-rc1`, `4.10`, `5`.
    pub fn parse(word: &str) -> Option<Version> {
        let v = word.trim();
        let v = v.strip_prefix('v').unwrap_or(v);
        let mut parts = v.split('.');
        let number = |s: Option<&str>| -> Option<u32> {
            let s = s?;
            s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())].parse().ok()
        };
        let major = number(parts.next())?;
        let minor = number(parts.next()).unwrap_or(0);
        Some(Version { major, minor })
    }

    /// The first word of `text` that is a version: `podman version 4.3.1`, `6.0`.
    pub fn find(text: &str) -> Option<Version> {
        text.split_whitespace().find_map(Version::parse)
    }

    /// Podman 6 reads storage.conf as a main file and drop-ins; before it one file wins.
    pub fn layered(self) -> bool {
        self.major >= 6
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        let v = |major, minor| Some(Version { major, minor });
        assert_eq!(Version::parse("4.3.1"), v(4, 3));
        assert_eq!(Version::parse("v5.0.0-rc1"), v(5, 0));
        assert_eq!(Version::parse("4.10"), v(4, 10));
        assert_eq!(Version::parse("5"), v(5, 0));
        assert_eq!(Version::parse("dev"), None);
        assert_eq!(Version::parse(""), None);
        assert_eq!(Version::parse("podman version 4.3.1"), None, "one word only");
        assert_eq!(Version::find("podman version 4.3.1"), v(4, 3));
        assert_eq!(Version::find("6.0"), v(6, 0));
        assert_eq!(Version::find("v6.1.0-rc1"), v(6, 1));
        assert_eq!(Version::find("six"), None);
        assert!(!Version { major: 5, minor: 8 }.layered() && Version { major: 6, minor: 0 }.layered());
    }
}
