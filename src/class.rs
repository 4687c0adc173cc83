//! Workload classes (docs/ARCHITECTURE.md, "Classes"): what a container's data is, so where it lives.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The class of a workload or volume. The label `io.podfs.class=<class>` names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Database,
    Cache,
    Vm,
    Service,
    Job,
    Build,
    Logs,
    Media,
    General,
}

impl Class {
    pub const ALL: [Class; 9] = [
        Class::Database,
        Class::Cache,
        Class::Vm,
        Class::Service,
        Class::Job,
        Class::Build,
        Class::Logs,
        Class::Media,
        Class::General,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Database => "database",
            Class::Cache => "cache",
            Class::Vm => "vm",
            Class::Service => "service",
            Class::Job => "job",
            Class::Build => "build",
            Class::Logs => "logs",
            Class::Media => "media",
            Class::General => "general",
        }
    }

    /// Rewrites in place with random writes (databases, caches, VM images): copy-on-write
    /// fragments such files badly, so their data belongs on NOCOW storage.
    pub fn rewrites_in_place(self) -> bool {
        matches!(self, Class::Database | Class::Cache | Class::Vm)
    }

    /// Data that is already compressed, where btrfs compression only burns CPU.
    pub fn incompressible(self) -> bool {
        matches!(self, Class::Media)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
        Class::ALL.into_iter().find(|c| c.as_str() == lower).ok_or_else(|| UnknownClass {
            given: s.to_string(),
            did_you_mean: crate::suggest::did_you_mean(&lower, Class::ALL.map(Class::as_str)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_class_and_suggests_for_typos() {
        for c in Class::ALL {
            assert_eq!(c.as_str().parse::<Class>().unwrap(), c);
        }
        let err = "databse".parse::<Class>().unwrap_err();
        assert_eq!(err.did_you_mean, Some("database"));
        let err = "zzzzzz".parse::<Class>().unwrap_err();
        assert_eq!(err.did_you_mean, None);
    }
}
