//! Writing generated files: atomically (temporary file in the same directory, fsync,
//! rename, fsync of the directory), never over a user's file without `force`, and then
//! only after keeping a timestamped backup.

use crate::error::Error;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub path: PathBuf,
    /// The backup of the file it replaced, if any.
    pub backup: Option<PathBuf>,
    /// The file already had exactly these contents; nothing was written.
    pub unchanged: bool,
}

/// What to do with an existing file whose contents differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse, and write nothing at all.
    Refuse,
    /// Keep a timestamped backup `NAME.YYYYMMDDTHHMMSSZ.bak` (`….N.bak` when that name is
    /// taken), then replace.
    Backup,
    /// Replace without a backup: only for files that are wholly generated, like man pages.
    Replace,
}

/// Writes `files` (name, contents) into `dir`, creating it. Checks every target before
/// writing any, so a refusal leaves nothing half-written.
pub fn write_files(dir: &Path, files: &[(&str, &str)], overwrite: Overwrite) -> Result<Vec<Written>, Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
    let mut existing = Vec::new();
    for (name, contents) in files {
        let path = dir.join(name);
        match fs::read(&path) {
            Ok(old) if old == contents.as_bytes() => {}
            Ok(_) => existing.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, "read", e)),
        }
    }
    if !existing.is_empty() && overwrite == Overwrite::Refuse {
        return Err(Error::WouldOverwrite(existing));
    }
    let stamp = timestamp();
    files
        .iter()
        .map(|(name, contents)| {
            let path = dir.join(name);
            if !existing.contains(&path) && path.exists() {
                return Ok(Written { path, backup: None, unchanged: true });
            }
            let backup = if overwrite == Overwrite::Backup && existing.contains(&path) {
                Some(backup_as(&path, &stamp)?)
            } else {
                None
            };
            atomic_write(&path, contents.as_bytes())?;
            Ok(Written { path, backup, unchanged: false })
        })
        .collect()
}

/// Copies `path` to `PATH.YYYYMMDDTHHMMSSZ.bak` beside it (permissions included) and
/// returns the copy's path. A name already taken (two runs in one second, or a file the
/// user made) gets a counter, `PATH.YYYYMMDDTHHMMSSZ.2.bak`, so no backup ever replaces
/// another.
pub fn backup(path: &Path) -> Result<PathBuf, Error> {
    backup_as(path, &timestamp())
}

fn backup_as(path: &Path, stamp: &str) -> Result<PathBuf, Error> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut source = File::open(path).map_err(|e| Error::io(path, "read", e))?;
    let mode = source.metadata().map_err(|e| Error::io(path, "read", e))?.permissions();
    for n in 1u32.. {
        let b = match n {
            1 => path.with_file_name(format!("{name}.{stamp}.bak")),
            n => path.with_file_name(format!("{name}.{stamp}.{n}.bak")),
        };
        // create_new is O_EXCL: the name is ours alone, even against a concurrent run.
        let mut copy = match OpenOptions::new().write(true).create_new(true).open(&b) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&b, "back up to", e)),
        };
        let written = std::io::copy(&mut source, &mut copy)
            .and_then(|_| copy.set_permissions(mode.clone()))
            .and_then(|()| copy.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&b);
            return Err(Error::io(&b, "back up to", e));
        }
        return Ok(b);
    }
    unreachable!("a counter runs out only after four billion backups in one second")
}

/// Replaces `path` with `bytes` so that a reader sees the old or the new file, never a
/// partial one, also across a crash.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, "create", e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, "write", e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, "sync", e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, "replace", e))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, "sync", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// UTC `YYYYMMDDTHHMMSSZ` without a date library (civil-from-days, Howard Hinnant).
pub fn timestamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("podfs-output-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn refuses_to_overwrite_without_force_and_writes_nothing() {
        let d = tempdir("refuse");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("b"), "mine").unwrap();
        let err = write_files(&d, &[("a", "new a"), ("b", "new b")], Overwrite::Refuse).unwrap_err();
        assert!(matches!(err, Error::WouldOverwrite(ref p) if p == &[d.join("b")]));
        assert!(!d.join("a").exists(), "nothing may be written when one file is refused");
        assert_eq!(fs::read_to_string(d.join("b")).unwrap(), "mine");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn force_keeps_a_backup_and_identical_files_are_left_alone() {
        let d = tempdir("force");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("b"), "mine").unwrap();
        fs::write(d.join("c"), "same").unwrap();
        let w = write_files(&d, &[("b", "new b"), ("c", "same")], Overwrite::Backup).unwrap();
        assert_eq!(fs::read_to_string(d.join("b")).unwrap(), "new b");
        let backup = w[0].backup.clone().expect("backup of the replaced file");
        assert_eq!(fs::read_to_string(backup).unwrap(), "mine");
        assert!(w[1].unchanged && w[1].backup.is_none());
        let leftovers: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn backups_in_the_same_second_never_replace_each_other() {
        let d = tempdir("collide");
        fs::create_dir_all(&d).unwrap();
        let f = d.join("storage.conf");
        let mut backups = Vec::new();
        for round in 0..3 {
            fs::write(&f, format!("version {round}")).unwrap();
            backups.push(backup_as(&f, "20261130T000000Z").unwrap());
        }
        let names: Vec<String> =
            backups.iter().map(|b| b.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(
            names,
            [
                "storage.conf.20261130T000000Z.bak",
                "storage.conf.20261130T000000Z.2.bak",
                "storage.conf.20261130T000000Z.3.bak"
            ]
        );
        for (round, b) in backups.iter().enumerate() {
            assert_eq!(fs::read_to_string(b).unwrap(), format!("version {round}"));
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn timestamp_has_the_documented_shape() {
        let t = timestamp();
        assert_eq!(t.len(), 16, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[8] == b'T');
    }
}
