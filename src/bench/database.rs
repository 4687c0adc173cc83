//! Database-like I/O: a file written in full, then 8 KiB pages rewritten at random
//! 8 KiB-aligned offsets, each write followed by `fdatasync`, as a database writes its
//! table files and syncs its commits. One call is one round on one layout.

use super::Stop;
use super::fiemap;
use rustix::fd::AsFd;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A database page.
pub const PAGE: u64 = 8192;

/// How much one round writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatabaseSize {
    /// Size of the file, written in full before the random writes.
    pub file_bytes: u64,
    /// Random page writes per round.
    pub writes: u64,
    /// A round stops early after this long (a slow disk), with fewer writes.
    pub time_cap: Duration,
}

/// The figures of one round.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseRound {
    pub writes: u64,
    pub iops: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub extents: f64,
}

/// A small, fast generator: the offsets and page contents need to be unpredictable to
/// the filesystem, not to an adversary.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Fills `page` like a database page: rows of random bytes in its first half, free space
/// (zeros) in the second, so that zstd halves it as it does real table files.
pub fn fill_page(page: &mut [u8], rng: &mut XorShift) {
    let half = page.len() / 2;
    rng.fill(&mut page[..half]);
    page[half..].fill(0);
}

/// The `q`-quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One round in `dir`: writes the file, rewrites pages at random, counts its extents,
/// removes it.
pub fn round(dir: &Path, size: DatabaseSize, seed: u64, cancel: &AtomicBool) -> Result<DatabaseRound, Stop> {
    let path = dir.join("table.db");
    let result = run_round(&path, size, seed, cancel);
    let removed = std::fs::remove_file(&path);
    let round = result?;
    removed.map_err(|e| Stop::io(&path, "remove", e))?;
    Ok(round)
}

fn run_round(path: &Path, size: DatabaseSize, seed: u64, cancel: &AtomicBool) -> Result<DatabaseRound, Stop> {
    let mut rng = XorShift::new(seed);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Stop::io(path, "create", e))?;
    preallocate(&mut file, path, size.file_bytes, &mut rng, cancel)?;
    let pages = (size.file_bytes / PAGE).max(1);
    let mut page = vec![0u8; PAGE as usize];
    let mut latencies = Vec::with_capacity(size.writes as usize);
    let began = Instant::now();
    while (latencies.len() as u64) < size.writes && began.elapsed() < size.time_cap {
        if cancel.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled);
        }
        let offset = rng.next_u64() % pages * PAGE;
        fill_page(&mut page, &mut rng);
        let t = Instant::now();
        file.write_all_at(&page, offset).map_err(|e| Stop::io(path, "write", e))?;
        rustix::fs::fdatasync(&file).map_err(|e| Stop::io(path, "fdatasync", e.into()))?;
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let elapsed = began.elapsed().as_secs_f64();
    let extents = fiemap::extent_count(file.as_fd())
        .map_err(|e| Stop::io(path, "count the extents (FIEMAP) of", e.into()))?;
    let writes = latencies.len() as u64;
    latencies.sort_by(f64::total_cmp);
    Ok(DatabaseRound {
        writes,
        iops: if elapsed > 0.0 { writes as f64 / elapsed } else { 0.0 },
        p50_us: quantile(&latencies, 0.50),
        p99_us: quantile(&latencies, 0.99),
        extents: extents as f64,
    })
}

/// Writes the whole file and syncs it, as a database extends its files. Written, not
/// `fallocate`d: on btrfs a preallocated range of a copy-on-write file is written in
/// place only once and copied on every later write, so it would measure neither the
/// fresh-file case nor the steady state; a written file is what a loaded table is.
fn preallocate(
    file: &mut File,
    path: &Path,
    bytes: u64,
    rng: &mut XorShift,
    cancel: &AtomicBool,
) -> Result<(), Stop> {
    const CHUNK: usize = 1 << 20;
    let mut chunk = vec![0u8; CHUNK];
    let mut written = 0u64;
    while written < bytes {
        if cancel.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled);
        }
        let n = (bytes - written).min(CHUNK as u64) as usize;
        for page in chunk[..n].chunks_mut(PAGE as usize) {
            fill_page(page, rng);
        }
        file.write_all(&chunk[..n]).map_err(|e| Stop::io(path, "write", e))?;
        written += n as u64;
    }
    file.sync_all().map_err(|e| Stop::io(path, "sync", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn pages_are_half_random_half_free_space() {
        let mut rng = XorShift::new(1);
        let mut page = vec![1u8; PAGE as usize];
        fill_page(&mut page, &mut rng);
        assert!(page[4096..].iter().all(|&b| b == 0));
        let distinct: std::collections::HashSet<u8> = page[..4096].iter().copied().collect();
        assert!(distinct.len() > 200, "random half has {} distinct bytes", distinct.len());
        let (mut a, mut b) = (vec![0u8; PAGE as usize], vec![0u8; PAGE as usize]);
        fill_page(&mut a, &mut XorShift::new(9));
        fill_page(&mut b, &mut XorShift::new(9));
        assert_eq!(a, b, "a seed gives the same pages");
        assert_ne!(a, page);
    }

    #[test]
    fn a_round_on_any_filesystem_measures_and_leaves_nothing() {
        let d = std::env::temp_dir().join(format!("podfs-db-round-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let size = DatabaseSize { file_bytes: 1 << 20, writes: 50, time_cap: Duration::from_secs(30) };
        let r = round(&d, size, 3, &AtomicBool::new(false)).unwrap();
        assert_eq!(r.writes, 50);
        assert!(r.iops > 0.0 && r.p50_us > 0.0 && r.p99_us >= r.p50_us, "{r:?}");
        assert!(r.extents >= 1.0, "{r:?}");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
        let e = round(&d, size, 3, &AtomicBool::new(true)).unwrap_err();
        assert!(matches!(e, Stop::Cancelled));
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0, "a cancelled round removes its file");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
