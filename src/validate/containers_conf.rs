//! Loading the few containers.conf settings that `check` needs.
//!
//! Parsed like storage.conf (span-preserving, exact positions); only the keys `check`
//! reads are looked at, every other key is allowed and ignored.

use super::source::SourceFile;
use super::storage_conf::{parse_toml, read_text, resolve};
use crate::error::Error;
use toml_edit::{Document, Key};

/// A loaded containers.conf.
#[derive(Debug, Clone)]
pub struct ContainersConfFile {
    pub source: SourceFile,
    doc: Document<String>,
}

impl ContainersConfFile {
    /// `[engine] volume_path` and the byte offset of its value.
    pub fn volume_path(&self) -> Option<(String, usize)> {
        self.get_str(&["engine", "volume_path"])
    }

    /// A string value at a table path (e.g. `["engine", "volume_path"]`) and the byte
    /// offset of the value; dotted keys and inline tables resolve like the table form.
    pub fn get_str(&self, path: &[&str]) -> Option<(String, usize)> {
        let (key, item) = resolve(self.doc.as_table(), path)?;
        let s = item.as_str()?;
        let at = item.span().or_else(|| key.and_then(Key::span)).map_or(0, |s| s.start);
        Some((s.to_string(), at))
    }

    /// Byte offset of a key.
    pub fn key_offset(&self, path: &[&str]) -> Option<usize> {
        let (key, _) = resolve(self.doc.as_table(), path)?;
        Some(key.and_then(Key::span).map_or(0, |s| s.start))
    }
}

/// Reads and parses a containers.conf; malformed TOML is an input error at its line and column.
pub fn load(path: &std::path::Path) -> Result<ContainersConfFile, Error> {
    let text = read_text(path)?;
    load_text(&text, &path.display().to_string())
}

pub fn load_text(text: &str, name: &str) -> Result<ContainersConfFile, Error> {
    let source = SourceFile::new(name, text);
    let doc = parse_toml(&source, "containers.conf(5)")?;
    Ok(ContainersConfFile { source, doc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_volume_path_in_every_form() {
        for text in [
            "[engine]\nvolume_path = \"/srv/vol\"\n",
            "# x\n[containers]\nlog_size_max = -1\n[engine]\nevents_logger = \"file\"\nvolume_path = \"/srv/vol\"\n",
            "engine.volume_path = \"/srv/vol\"\n",
            "engine = { volume_path = \"/srv/vol\" }\n",
        ] {
            let f = load_text(text, "containers.conf").unwrap();
            let (v, at) = f.volume_path().unwrap_or_else(|| panic!("{text}"));
            assert_eq!(v, "/srv/vol");
            assert_eq!(&text[at..at + 10], "\"/srv/vol\"");
            let key_at = f.key_offset(&["engine", "volume_path"]).unwrap();
            assert_eq!(&text[key_at..key_at + 11], "volume_path");
        }
        let f = load_text("[engine]\nvolume_path = 5\n", "c").unwrap();
        assert_eq!(f.volume_path(), None);
        assert_eq!(load_text("", "c").unwrap().volume_path(), None);
    }

    #[test]
    fn malformed_toml_is_an_input_error() {
        let Err(Error::Input(e)) = load_text("[engine\n", "containers.conf") else {
            panic!("expected an input error")
        };
        assert_eq!((e.line, e.column), (1, 8));
        assert!(e.help.unwrap().contains("containers.conf(5)"));
    }
}
