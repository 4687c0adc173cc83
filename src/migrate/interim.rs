//! A stand-in for the tree copier until it is merged: `cp -a` (which keeps owners, modes,
//! timestamps, xattrs, hard links and sparse regions) and a verifier that compares every
//! file's type, mode, owners, size, modification time, symlink target and content.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub bytes: u64,
    pub files: u64,
}

#[derive(Debug)]
pub enum CopyError {
    NoSpace(String),
    SourceChanged(String),
    Cancelled,
    Mismatch(String),
    Io(String),
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyError::NoSpace(m) => write!(f, "no space left on the target: {m}"),
            CopyError::SourceChanged(m) => write!(f, "the source changed during the copy: {m}"),
            CopyError::Cancelled => f.write_str("cancelled"),
            CopyError::Mismatch(m) => write!(f, "the copy differs from the original: {m}"),
            CopyError::Io(m) => f.write_str(m),
        }
    }
}

pub fn measure(path: &Path) -> std::io::Result<Totals> {
    let mut t = Totals::default();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![path.to_path_buf()];
    fs::symlink_metadata(path)?;
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let m = e.metadata()?;
            t.files += 1;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && (m.nlink() == 1 || seen.insert(m.ino())) {
                t.bytes += m.len();
            }
        }
    }
    Ok(t)
}

pub fn copy_tree(
    src: &Path,
    dst: &Path,
    reflink: bool,
    cancel: &AtomicBool,
    _progress: &dyn Fn(u64, u64),
) -> Result<(), CopyError> {
    // A partial copy of an earlier run is this copier's own: start it over, as `cp -a`
    // cannot continue one (hard links already made fail with EEXIST).
    for e in fs::read_dir(dst).map_err(|e| CopyError::Io(format!("cannot read {}: {e}", dst.display())))? {
        let p = e.map_err(|e| CopyError::Io(e.to_string()))?.path();
        let gone = if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        gone.map_err(|e| CopyError::Io(format!("cannot clear the partial copy {}: {e}", p.display())))?;
    }
    let mut command = Command::new("cp");
    // cp ends with this process, also when it is killed: a resumed run never races an
    // orphaned cp of the last one.
    // SAFETY: the closure only makes one async-signal-safe system call.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command
        .arg("-a")
        .arg(if reflink { "--reflink=auto" } else { "--reflink=never" })
        .arg("--sparse=always")
        .arg(format!("{}/.", src.display()))
        .arg(format!("{}/", dst.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CopyError::Io(format!("cannot run cp: {e}")))?;
    loop {
        if cancel.load(Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CopyError::Cancelled);
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                if status.success() {
                    return Ok(());
                }
                let err = err.trim().to_string();
                return Err(if err.contains("No space left") {
                    CopyError::NoSpace(err)
                } else {
                    CopyError::Io(format!("copying {} failed: {err}", src.display()))
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(CopyError::Io(e.to_string())),
        }
    }
}

pub fn verify_tree(src: &Path, dst: &Path, cancel: &AtomicBool) -> Result<(), CopyError> {
    verify_since(src, dst, None, cancel)
}

/// Nanoseconds since the epoch of the inode's last change.
fn changed_ns(m: &fs::Metadata) -> u64 {
    (m.ctime().max(0) as u64).saturating_mul(1_000_000_000).saturating_add(m.ctime_nsec().max(0) as u64)
}

/// As [`verify_tree`], but entries of `dst` changed at or after `since` (ns since the
/// epoch) are taken as changed by their owner since, not compared; an entry missing from,
/// or added to, a directory of `dst` changed since then is taken as removed or added since.
pub fn verify_since(
    src: &Path,
    dst: &Path,
    since: Option<u64>,
    cancel: &AtomicBool,
) -> Result<(), CopyError> {
    let changed_since = |m: &fs::Metadata| since.is_some_and(|t| changed_ns(m) >= t);
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        if cancel.load(Ordering::Relaxed) {
            return Err(CopyError::Cancelled);
        }
        let (a, b) = (src.join(&rel), dst.join(&rel));
        let io = |p: &Path, e: std::io::Error| CopyError::Io(format!("cannot read {}: {e}", p.display()));
        let ma = fs::symlink_metadata(&a).map_err(|e| io(&a, e))?;
        let mb = match fs::symlink_metadata(&b) {
            Ok(m) => m,
            Err(_) => {
                let parent = b.parent().and_then(|p| fs::symlink_metadata(p).ok());
                if parent.is_some_and(|p| changed_since(&p)) {
                    continue;
                }
                return Err(CopyError::Mismatch(format!("{} is missing", b.display())));
            }
        };
        let differs = |what: &str| CopyError::Mismatch(format!("{} differs in {what}", b.display()));
        if changed_since(&mb) {
            if ma.is_dir() && mb.is_dir() {
                let names =
                    fs::read_dir(&a).map_err(|e| io(&a, e))?.flatten().map(|e| rel.join(e.file_name()));
                stack.extend(names);
            }
            continue;
        }
        if ma.mode() != mb.mode() {
            return Err(differs("mode"));
        }
        if (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
            return Err(differs("owner"));
        }
        if ma.is_dir() {
            let mut names: Vec<_> =
                fs::read_dir(&a).map_err(|e| io(&a, e))?.flatten().map(|e| e.file_name()).collect();
            let mut theirs: Vec<_> =
                fs::read_dir(&b).map_err(|e| io(&b, e))?.flatten().map(|e| e.file_name()).collect();
            names.sort();
            theirs.sort();
            if names != theirs {
                return Err(differs("its entries"));
            }
            stack.extend(names.into_iter().map(|n| rel.join(n)));
            continue;
        }
        if ma.mtime() != mb.mtime() {
            return Err(differs("modification time"));
        }
        if ma.file_type().is_symlink() {
            if fs::read_link(&a).ok() != fs::read_link(&b).ok() {
                return Err(differs("symlink target"));
            }
        } else if ma.is_file() {
            if ma.len() != mb.len() || !same_content(&a, &b).map_err(|e| io(&a, e))? {
                return Err(differs("content"));
            }
        } else if ma.rdev() != mb.rdev() {
            return Err(differs("device number"));
        }
    }
    Ok(())
}

fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}
