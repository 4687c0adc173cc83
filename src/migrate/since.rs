//! Checking the live data against its old copy at `--finalize`, after the containers ran
//! again: what changed since the swap (an inode changed at or after it) is the host's own
//! writing and is not compared; everything else must still match the old copy in type,
//! mode, owners, modification time, size, content and symlink target.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Nanoseconds since the epoch of the inode's last change.
fn changed_ns(m: &fs::Metadata) -> u64 {
    (m.ctime().max(0) as u64).saturating_mul(1_000_000_000).saturating_add(m.ctime_nsec().max(0) as u64)
}

/// As [`verify_tree`], but entries of `dst` changed at or after `since` (ns since the
/// epoch) are taken as changed by their owner since, not compared; an entry missing from,
/// or added to, a directory of `dst` changed since then is taken as removed or added since.
pub fn verify_since(src: &Path, dst: &Path, since: Option<u64>, cancel: &AtomicBool) -> Result<(), String> {
    let changed_since = |m: &fs::Metadata| since.is_some_and(|t| changed_ns(m) >= t);
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".to_string());
        }
        let (a, b) = (src.join(&rel), dst.join(&rel));
        let io = |p: &Path, e: std::io::Error| format!("cannot read {}: {e}", p.display());
        let ma = fs::symlink_metadata(&a).map_err(|e| io(&a, e))?;
        let mb = match fs::symlink_metadata(&b) {
            Ok(m) => m,
            Err(_) => {
                let parent = b.parent().and_then(|p| fs::symlink_metadata(p).ok());
                if parent.is_some_and(|p| changed_since(&p)) {
                    continue;
                }
                return Err(format!("{} is missing", b.display()));
            }
        };
        let differs = |what: &str| format!("{} differs in {what}", b.display());
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
