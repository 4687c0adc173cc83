//! Compression's cost and gain: a file of compressible (log lines) or incompressible
//! (random) data written and fsynced into a directory with the compression property
//! `zstd` or `none`. One call is one round of one combination.

use super::Stop;
use super::database::XorShift;
use crate::bench::report::DataKind;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The data written is this buffer over and over: made before the clock starts, so that
/// making it costs no CPU time in the figures. btrfs compresses 128 KiB at a time, so
/// the repetition is invisible to it.
const POOL: usize = 8 << 20;
const CHUNK: usize = 1 << 20;

/// The figures of one round.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressionRound {
    pub mb_per_s: f64,
    pub cpu_s_per_gb: f64,
    pub disk_bytes: f64,
}

/// `POOL` bytes of the given kind.
pub fn pool(kind: DataKind, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    match kind {
        DataKind::Incompressible => {
            let mut buf = vec![0u8; POOL];
            rng.fill(&mut buf);
            buf
        }
        DataKind::Compressible => {
            let mut text = String::with_capacity(POOL + 256);
            const LEVELS: [&str; 4] = ["INFO", "INFO", "WARN", "DEBUG"];
            const PATHS: [&str; 4] = ["/api/v1/items", "/api/v1/users", "/healthz", "/static/app.js"];
            while text.len() < POOL {
                let r = rng.next_u64();
                let ms = r % 86_400_000;
                text.push_str(&format!(
                    "2026-11-30T{:02}:{:02}:{:02}.{:03}Z {} request id={} path={}/{} status={} bytes={} ms={}\n",
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    ms / 1000 % 60,
                    ms % 1000,
                    LEVELS[(r >> 27) as usize % 4],
                    (r >> 8) % 1_000_000,
                    PATHS[(r >> 29) as usize % 4],
                    (r >> 32) % 10_000,
                    if r >> 60 == 0 { 500 } else { 200 },
                    (r >> 40) % 65_536,
                    (r >> 20) % 400,
                ));
            }
            let mut buf = text.into_bytes();
            buf.truncate(POOL);
            buf
        }
    }
}

/// Busy time of all CPUs so far, in clock ticks, from the first line of `/proc/stat`:
/// user, nice, system, irq, softirq and steal (idle and iowait left out; guest time is
/// inside user already).
pub fn busy_ticks(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    (fields.len() >= 4).then(|| at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

/// CPU seconds all CPUs were busy so far.
fn busy_seconds() -> Result<f64, Stop> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|e| Stop::io("/proc/stat", "read", e))?;
    let ticks = busy_ticks(&text)
        .ok_or_else(|| Stop::io("/proc/stat", "read", std::io::ErrorKind::InvalidData.into()))?;
    Ok(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// Bytes in use on the filesystem of `dir`, after everything written so far reached the
/// disk (syncfs: btrfs compresses, allocates and frees at writeback and commit).
fn used_bytes(dir: &Path) -> Result<u64, Stop> {
    let d = std::fs::File::open(dir).map_err(|e| Stop::io(dir, "open", e))?;
    rustix::fs::syncfs(&d).map_err(|e| Stop::io(dir, "sync", e.into()))?;
    let s = rustix::fs::fstatvfs(&d).map_err(|e| Stop::io(dir, "read the free space of", e.into()))?;
    Ok(s.f_blocks.saturating_sub(s.f_bfree).saturating_mul(s.f_frsize))
}

/// One round in `dir` (whose compression property is set): writes `bytes` from `pool`,
/// fsyncs, measures, removes the file.
pub fn round(dir: &Path, pool: &[u8], bytes: u64, cancel: &AtomicBool) -> Result<CompressionRound, Stop> {
    let path = dir.join("data");
    let result = run_round(dir, &path, pool, bytes, cancel);
    let removed = std::fs::remove_file(&path);
    let round = result?;
    removed.map_err(|e| Stop::io(&path, "remove", e))?;
    // The next round starts from a settled filesystem.
    used_bytes(dir)?;
    Ok(round)
}

fn run_round(
    dir: &Path,
    path: &Path,
    pool: &[u8],
    bytes: u64,
    cancel: &AtomicBool,
) -> Result<CompressionRound, Stop> {
    let used_before = used_bytes(dir)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Stop::io(path, "create", e))?;
    let cpu_before = busy_seconds()?;
    let began = Instant::now();
    let mut written = 0u64;
    while written < bytes {
        if cancel.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled);
        }
        let at = (written % pool.len() as u64) as usize;
        let n = (bytes - written).min(CHUNK as u64).min((pool.len() - at) as u64) as usize;
        file.write_all(&pool[at..at + n]).map_err(|e| Stop::io(path, "write", e))?;
        written += n as u64;
    }
    file.sync_all().map_err(|e| Stop::io(path, "sync", e))?;
    let seconds = began.elapsed().as_secs_f64();
    let cpu = busy_seconds()? - cpu_before;
    let used_after = used_bytes(dir)?;
    Ok(CompressionRound {
        mb_per_s: bytes as f64 / 1e6 / seconds.max(1e-9),
        cpu_s_per_gb: cpu / (bytes as f64 / 1e9),
        disk_bytes: used_after.saturating_sub(used_before) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_leaves_idle_and_iowait_out() {
        let stat = "cpu  100 5 50 1000 70 3 2 1 9 0\ncpu0 50 2 25 500 35 1 1 0 0 0\nintr 1 2\n";
        assert_eq!(busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(busy_ticks("cpu  1 2 3 4\n"), Some(6), "old kernels have four fields");
        assert_eq!(busy_ticks("intr 1\n"), None);
        assert_eq!(busy_ticks("cpu  1 x 3 4\n"), None);
        let real = std::fs::read_to_string("/proc/stat").unwrap();
        assert!(busy_ticks(&real).is_some_and(|t| t > 0));
    }

    #[test]
    fn the_two_kinds_of_data_differ_in_what_they_hold() {
        let text = pool(DataKind::Compressible, 1);
        let random = pool(DataKind::Incompressible, 1);
        assert_eq!((text.len(), random.len()), (POOL, POOL));
        assert!(text.starts_with(b"2026-11-30T") && text[..200].contains(&b'\n'));
        // Log lines use a few dozen characters; random data all 256 byte values.
        let distinct = |b: &[u8]| b.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(distinct(&text) < 80, "{}", distinct(&text));
        assert_eq!(distinct(&random), 256);
    }
}
