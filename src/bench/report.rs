//! The bench report: the stable JSON schema `bench` writes and `plan --bench` reads.
//! Fields are only ever added; a report whose `schema` is newer than [`SCHEMA`] is refused.

use serde::{Deserialize, Serialize};

/// The schema version this build writes and the newest it reads.
pub const SCHEMA: u32 = 1;

/// Every figure of one `bench` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// [`SCHEMA`] when written.
    pub schema: u32,
    /// The version of podman-btrfs-advise that measured.
    pub tool_version: String,
    /// When the run began, `YYYYMMDDTHHMMSSZ`.
    pub taken_at: String,
    pub host: BenchHost,
    /// Database-like I/O, one entry per layout measured.
    #[serde(default)]
    pub database: Vec<DatabaseResult>,
    /// Writing compressible and incompressible data with each compression property.
    #[serde(default)]
    pub compression: Vec<CompressionResult>,
    /// A real Podman's operations, one entry per storage driver.
    #[serde(default)]
    pub containers: Vec<DriverResult>,
    /// What was not measured, and why (no Podman, not btrfs, `--quick`…).
    #[serde(default)]
    pub skipped: Vec<SkippedPart>,
}

/// Where the figures were taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchHost {
    /// The directory measured (`--dir`).
    pub dir: String,
    /// Its filesystem type (`btrfs`, `ext4`, …).
    pub filesystem: String,
    /// The block device behind it, when known.
    pub device: Option<String>,
    /// `uname -r`.
    pub kernel: String,
    /// Logical CPUs: compression figures depend on them.
    pub cpus: u32,
    /// `--quick` was given: fewer, shorter rounds.
    pub quick: bool,
    /// Rounds per measurement; runs of the layouts are interleaved round by round.
    pub rounds: u32,
}

/// Median and spread of the samples of one figure (one sample per round).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: Vec<f64>,
}

impl Stat {
    /// The statistic of `samples`; `None` when there are none or one is not a number.
    pub fn of(samples: &[f64]) -> Option<Stat> {
        if samples.is_empty() || samples.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Stat { median, min: sorted[0], max: sorted[n - 1], samples: samples.to_vec() })
    }
}

/// A figure as people read it, in PLAN.md, bench's summary and its chart alike: integers
/// with thousands separators from 100 up, whole numbers as such, one decimal from 1, two
/// below.
pub fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        let n = x.round() as i64;
        let digits = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    } else if x.abs() >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A count (extents): a whole number with thousands separators.
pub fn count(x: f64) -> String {
    let r = x.round();
    if r.abs() >= 100.0 { number(r) } else { format!("{r:.0}") }
}

/// The layout a database-like file was written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseLayout {
    /// A plain copy-on-write directory.
    Cow,
    /// Copy-on-write with the compression property `zstd` (the common disko layout).
    CowZstd,
    /// A NOCOW (`chattr +C`) directory.
    Nocow,
    /// The `--compare-dir` directory on another filesystem (ext4, xfs).
    Compare,
}

impl DatabaseLayout {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseLayout::Cow => "cow",
            DatabaseLayout::CowZstd => "cow-zstd",
            DatabaseLayout::Nocow => "nocow",
            DatabaseLayout::Compare => "compare",
        }
    }
}

/// 8 KiB random writes, each followed by `fdatasync`, into a preallocated file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseResult {
    pub layout: DatabaseLayout,
    /// Filesystem type of the directory written (`btrfs` except for `compare`).
    pub filesystem: String,
    /// Size of the file written into, bytes.
    pub file_bytes: u64,
    /// Writes per round: the fewest any round made (a round stops early on a slow disk).
    pub writes: u64,
    /// Synced writes per second.
    pub iops: Stat,
    /// Latency of write + fdatasync, microseconds.
    pub p50_us: Stat,
    pub p99_us: Stat,
    /// Extents of the file after the round (FIEMAP).
    pub extents: Stat,
}

/// The data written in a compression measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataKind {
    /// Text-like data that zstd shrinks several times.
    Compressible,
    /// Random bytes, as media and already-compressed archives are.
    Incompressible,
}

impl DataKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DataKind::Compressible => "compressible",
            DataKind::Incompressible => "incompressible",
        }
    }
}

/// Writing a file with one compression property (`zstd` or `none`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompressionResult {
    /// The btrfs compression property of the directory: `zstd` or `none`.
    pub property: String,
    pub data: DataKind,
    /// Bytes written per round.
    pub bytes: u64,
    /// Throughput of write + fsync, MB/s (10^6 bytes).
    pub mb_per_s: Stat,
    /// CPU seconds per GB written: the busy time of all CPUs (user, nice, system, irq,
    /// softirq, steal from `/proc/stat`) over the round. System-wide, because btrfs
    /// compresses in kernel worker threads that the writing process's own rusage misses;
    /// so whatever else runs on the host meanwhile is counted too.
    pub cpu_s_per_gb: Stat,
    /// Bytes the data occupies on disk after the round (compressed size): the filesystem's
    /// used space (statvfs) before and after, each read after syncfs.
    pub disk_bytes: Stat,
}

/// One Podman operation's time with one storage driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationResult {
    /// `import`, `create`, `start`, `chmod`, `stop`, `commit`, `rm`, `rmi`, in that order
    /// (`containers::OPERATIONS` says what each times).
    pub operation: String,
    pub ms: Stat,
}

/// A real Podman on a throwaway store of one driver on the measured filesystem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverResult {
    /// `overlay` or `btrfs`.
    pub driver: String,
    pub podman_version: String,
    /// The OCI runtime the stores were given (`runc`), or `null` for Podman's default.
    #[serde(default)]
    pub runtime: Option<String>,
    /// Files in the image imported (many small files).
    pub image_files: u64,
    pub image_bytes: u64,
    pub operations: Vec<OperationResult>,
}

impl DriverResult {
    /// The median of one operation, ms.
    pub fn median_ms(&self, operation: &str) -> Option<f64> {
        self.operations.iter().find(|o| o.operation == operation).map(|o| o.ms.median)
    }
}

/// A part of the bench that did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedPart {
    /// `database`, `compression`, `containers`, or one layout or driver.
    pub what: String,
    pub why: String,
}

impl BenchReport {
    /// The database result of one layout.
    pub fn database(&self, layout: DatabaseLayout) -> Option<&DatabaseResult> {
        self.database.iter().find(|d| d.layout == layout)
    }

    /// The container result of one driver.
    pub fn driver(&self, driver: &str) -> Option<&DriverResult> {
        self.containers.iter().find(|d| d.driver == driver)
    }

    /// Reads a report, naming the file and the line of a bad one.
    pub fn parse(text: &str, origin: &str) -> Result<BenchReport, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{origin}:{}: not JSON: {e}", e.line()))?;
        // Errors about the schema point at its field (or the first line without one).
        let line = text.lines().position(|l| l.contains("\"schema\"")).map_or(1, |i| i + 1);
        match v.get("schema").and_then(|s| s.as_u64()) {
            Some(s) if s > u64::from(SCHEMA) => {
                return Err(format!(
                    "{origin}:{line}: bench schema {s} is newer than this build reads ({SCHEMA}); update \
                     podman-btrfs-advise"
                ));
            }
            Some(_) => {}
            None => return Err(format!("{origin}:{line}: not a bench report (no \"schema\" field)")),
        }
        serde_json::from_str(text).map_err(|e| format!("{origin}:{}: not a bench report: {e}", e.line()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(number(2216.4), "2,216");
        assert_eq!(number(47_915.0), "47,915");
        assert_eq!(number(1_234_567.0), "1,234,567");
        assert_eq!(number(242.0), "242");
        assert_eq!(number(1.94), "1.9");
        assert_eq!(number(0.352), "0.35");
        assert_eq!(number(-1500.0), "-1,500");
        assert_eq!(count(4.0), "4");
        assert_eq!(count(47_915.4), "47,915");
        assert_eq!((number(1.0), number(50.0), number(12.34)), ("1".into(), "50".into(), "12.3".into()));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Stat::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.samples, vec![3.0, 1.0, 2.0]);
        assert_eq!(Stat::of(&[4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.5);
        assert!(Stat::of(&[]).is_none());
        assert!(Stat::of(&[1.0, f64::NAN]).is_none());
    }

    fn sample() -> BenchReport {
        let stat = |x: f64| Stat::of(&[x]).unwrap();
        BenchReport {
            schema: SCHEMA,
            tool_version: "0.1.0".into(),
            taken_at: "20261130T000000Z".into(),
            host: BenchHost {
                dir: "/mnt".into(),
                filesystem: "btrfs".into(),
                device: Some("/dev/loop0".into()),
                kernel: "6.1.0".into(),
                cpus: 2,
                quick: true,
                rounds: 1,
            },
            database: vec![DatabaseResult {
                layout: DatabaseLayout::Nocow,
                filesystem: "btrfs".into(),
                file_bytes: 1 << 26,
                writes: 1000,
                iops: stat(2000.0),
                p50_us: stat(400.0),
                p99_us: stat(900.0),
                extents: stat(12.0),
            }],
            compression: vec![],
            containers: vec![DriverResult {
                driver: "overlay".into(),
                podman_version: "4.3.1".into(),
                runtime: None,
                image_files: 10,
                image_bytes: 100,
                operations: vec![OperationResult { operation: "import".into(), ms: stat(50.0) }],
            }],
            skipped: vec![SkippedPart { what: "compression".into(), why: "quick".into() }],
        }
    }

    #[test]
    fn round_trips_and_finds_parts() {
        let r = sample();
        let text = serde_json::to_string_pretty(&r).unwrap();
        assert!(text.contains("\"layout\": \"nocow\""), "{text}");
        let back = BenchReport::parse(&text, "b.json").unwrap();
        assert_eq!(back, r);
        assert_eq!(back.database(DatabaseLayout::Nocow).unwrap().iops.median, 2000.0);
        assert!(back.database(DatabaseLayout::Cow).is_none());
        assert_eq!(back.driver("overlay").unwrap().median_ms("import"), Some(50.0));
    }

    #[test]
    fn bad_reports_name_the_file() {
        let e = BenchReport::parse("{\n  \"schema\": 1,\n  \"host\": 3\n}", "b.json").unwrap_err();
        assert!(e.starts_with("b.json:"), "{e}");
        let e = BenchReport::parse("{\"schema\": 99}", "b.json").unwrap_err();
        assert!(e.contains("newer"), "{e}");
        let e = BenchReport::parse("[1", "b.json").unwrap_err();
        assert!(e.contains("b.json:1"), "{e}");
        let e = BenchReport::parse("{}", "b.json").unwrap_err();
        assert!(e.contains("no \"schema\""), "{e}");
    }
}
