//! Figures measured by `bench` on the planned disk, and the one rule that lets them change
//! a decision (docs/ARCHITECTURE.md, "Measurements"): two options differ clearly when the
//! slower one's median is at least [`CLEAR_RATIO`] times the faster one's and their
//! min–max ranges over at least [`MIN_ROUNDS`] rounds do not overlap. Below that, rounds
//! on one disk vary too much to overrule the general reasons, and the decision says so.

use super::Driver;
use crate::bench::report::{BenchHost, BenchReport, DataKind, DatabaseLayout, DatabaseResult, Stat};
pub use crate::bench::report::{count, number};
use serde::Serialize;

/// How far apart two medians must be for a measurement to decide.
pub const CLEAR_RATIO: f64 = 1.5;
/// Rounds a figure needs before its spread means anything: one round has none.
pub const MIN_ROUNDS: usize = 2;

/// The operations that make up a build: image layers made and dropped.
pub const BUILD_OPERATIONS: &[&str] = &["import", "commit", "rmi"];
/// The operations that make up a short-lived job: a container made, run and dropped.
pub const CONTAINER_OPERATIONS: &[&str] = &["create", "start", "stop", "rm"];

/// The threshold in words, for decisions and PLAN.md (`plan --help`, a fixed text, says
/// the same; a test in src/cli/plan.rs holds it to these constants).
pub fn threshold_text() -> String {
    format!(
        "medians at least {CLEAR_RATIO}× apart and min–max ranges that do not overlap, over at \
         least {MIN_ROUNDS} rounds"
    )
}

/// A median with the spread of its rounds; for a sum of operations, the sums.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Range {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Rounds behind it; for a sum, the fewest of its parts.
    pub rounds: usize,
}

impl From<&Stat> for Range {
    fn from(s: &Stat) -> Self {
        Range { median: s.median, min: s.min, max: s.max, rounds: s.samples.len() }
    }
}

/// How two measured options compare, `better` being the one with the better median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Separation {
    /// The better median over the worse (≥ 1), or `None` when a median is not positive.
    pub ratio: Option<f64>,
    /// Past the threshold: [`CLEAR_RATIO`] and ranges apart.
    pub clear: bool,
}

/// Compares `better` with `worse` where a higher figure is better (IOPS, MB/s).
pub fn higher_is_better(better: Range, worse: Range) -> Separation {
    separation(better.median, worse.median, better.min > worse.max, better.rounds.min(worse.rounds))
}

/// Compares `better` with `worse` where a lower figure is better (milliseconds).
pub fn lower_is_better(better: Range, worse: Range) -> Separation {
    separation(worse.median, better.median, better.max < worse.min, better.rounds.min(worse.rounds))
}

fn separation(high: f64, low: f64, ranges_apart: bool, rounds: usize) -> Separation {
    if !(high > 0.0 && low > 0.0) {
        return Separation { ratio: None, clear: false };
    }
    let ratio = high / low;
    Separation { ratio: Some(ratio), clear: ratio >= CLEAR_RATIO && ranges_apart && rounds >= MIN_ROUNDS }
}

/// `(DEVICE or DIR, TAKEN_AT[, quick])`: where and when the figures were taken.
pub fn origin(host: &BenchHost, taken_at: &str) -> String {
    let place = host.device.as_deref().unwrap_or(&host.dir);
    format!("{place}, {taken_at}{}", if host.quick { ", quick run" } else { "" })
}

/// What a bench says about NOCOW for data rewritten in place.
#[derive(Debug, Clone, PartialEq)]
pub struct NocowMeasurement {
    /// Where and when, and the figures of both layouts.
    pub figures: String,
    /// NOCOW's IOPS over copy-on-write's.
    pub separation: Separation,
}

impl NocowMeasurement {
    /// The figures and what they show, for a decision that plans NOCOW (`planned`) or
    /// keeps copy-on-write.
    pub fn cited(&self, planned: bool) -> String {
        let threshold = threshold_text();
        match (self.separation.clear, planned) {
            (true, _) => format!("{}: NOCOW is clearly faster here ({threshold})", self.figures),
            (false, true) => format!(
                "{}: the measurements do not show NOCOW clearly faster here (the threshold is \
                 {threshold}); NOCOW stays for this class because copy-on-write fragments files \
                 rewritten in place, which slows reads and grows metadata over time",
                self.figures
            ),
            (false, false) => format!(
                "{}: the measurements do not show NOCOW clearly faster here (the threshold is {threshold})",
                self.figures
            ),
        }
    }
}

/// NOCOW against the copy-on-write layout it replaces: with the zstd property (the
/// common disko layout) when measured, else plain copy-on-write.
pub fn nocow(report: &BenchReport) -> Option<NocowMeasurement> {
    let nocow = report.database(DatabaseLayout::Nocow)?;
    let (cow, cow_name) = match report.database(DatabaseLayout::CowZstd) {
        Some(c) => (c, "CoW+zstd"),
        None => (report.database(DatabaseLayout::Cow)?, "CoW"),
    };
    let separation = higher_is_better(Range::from(&nocow.iops), Range::from(&cow.iops));
    let io = |d: &DatabaseResult| {
        format!("{} IOPS p99 {} ms", number(d.iops.median), number(d.p99_us.median / 1000.0))
    };
    let ratio = separation.ratio.map(|r| format!(" (NOCOW {r:.2}×)")).unwrap_or_default();
    let figures = format!(
        "measured on this disk ({}): NOCOW {}, {cow_name} {}{ratio}; extents after the run {} vs {}",
        origin(&report.host, &report.taken_at),
        io(nocow),
        io(cow),
        count(nocow.extents.median),
        count(cow.extents.median),
    );
    Some(NocowMeasurement { figures, separation })
}

/// The `--compare-dir` filesystem (ext4, xfs) against NOCOW on btrfs, for `--database-fs`.
pub fn compare_gain(report: &BenchReport) -> Option<String> {
    let compare = report.database(DatabaseLayout::Compare)?;
    let nocow = report.database(DatabaseLayout::Nocow)?;
    let s = higher_is_better(Range::from(&compare.iops), Range::from(&nocow.iops));
    let ratio = s.ratio.map(|r| format!(" ({} {r:.2}× NOCOW)", compare.filesystem)).unwrap_or_default();
    Some(format!(
        "measured on this disk ({}): {} {} IOPS p99 {} ms, NOCOW on btrfs {} IOPS p99 {} ms{ratio}; \
         extents after the run {} vs {}{}",
        origin(&report.host, &report.taken_at),
        compare.filesystem,
        number(compare.iops.median),
        number(compare.p99_us.median / 1000.0),
        number(nocow.iops.median),
        number(nocow.p99_us.median / 1000.0),
        count(compare.extents.median),
        count(nocow.extents.median),
        if s.clear { "" } else { "; not clearly apart by the threshold, so the gain may be noise" },
    ))
}

/// Compression's cost and gain for one kind of data, `zstd` against `none`; `None`
/// when either was not measured.
pub fn compression(report: &BenchReport, data: DataKind) -> Option<String> {
    let find = |property: &str| report.compression.iter().find(|c| c.property == property && c.data == data);
    let (zstd, none) = (find("zstd")?, find("none")?);
    let size = if zstd.disk_bytes.median > 0.0 && zstd.bytes > 0 {
        format!(", {:.1}× smaller on disk", zstd.bytes as f64 / zstd.disk_bytes.median)
    } else {
        String::new()
    };
    let word = data.as_str();
    Some(format!(
        "{word} data: zstd {} MB/s, {} CPU s/GB{size}; none {} MB/s, {} CPU s/GB",
        number(zstd.mb_per_s.median),
        number(zstd.cpu_s_per_gb.median),
        number(none.mb_per_s.median),
        number(none.cpu_s_per_gb.median),
    ))
}

/// Every compression figure in one sentence, or `None` without any.
pub fn compression_cited(report: &BenchReport, kinds: &[DataKind]) -> Option<String> {
    let parts: Vec<String> = kinds.iter().filter_map(|k| compression(report, *k)).collect();
    (!parts.is_empty()).then(|| {
        format!("measured on this disk ({}): {}", origin(&report.host, &report.taken_at), parts.join("; "))
    })
}

/// The overlay and btrfs drivers over a set of operations.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverMeasurement {
    pub operations: &'static [&'static str],
    pub overlay: Range,
    pub btrfs: Range,
    /// The driver whose summed median is lower, when the two are clearly apart.
    pub clearly_faster: Option<Driver>,
    pub separation: Separation,
}

/// The summed times of `operations` per driver; `None` when a driver or an operation
/// was not measured.
pub fn drivers(report: &BenchReport, operations: &'static [&'static str]) -> Option<DriverMeasurement> {
    let sum = |driver: &str| -> Option<Range> {
        let d = report.driver(driver)?;
        let mut r = Range { median: 0.0, min: 0.0, max: 0.0, rounds: usize::MAX };
        for op in operations {
            let s = &d.operations.iter().find(|o| o.operation == *op)?.ms;
            r = Range {
                median: r.median + s.median,
                min: r.min + s.min,
                max: r.max + s.max,
                rounds: r.rounds.min(s.samples.len()),
            };
        }
        Some(r)
    };
    let (overlay, btrfs) = (sum("overlay")?, sum("btrfs")?);
    let (faster, slower, driver) = if btrfs.median < overlay.median {
        (btrfs, overlay, Driver::Btrfs)
    } else {
        (overlay, btrfs, Driver::Overlay)
    };
    let separation = lower_is_better(faster, slower);
    Some(DriverMeasurement {
        operations,
        overlay,
        btrfs,
        clearly_faster: separation.clear.then_some(driver),
        separation,
    })
}

impl DriverMeasurement {
    /// The sentence that cites the figures of both drivers.
    pub fn cited(&self, report: &BenchReport) -> String {
        let per_op = |driver: &str| -> String {
            let Some(d) = report.driver(driver) else { return String::new() };
            self.operations
                .iter()
                .filter_map(|op| d.median_ms(op).map(|ms| format!("{op} {}", number(ms))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ratio = self.separation.ratio.map(|r| format!(", {r:.2}× apart")).unwrap_or_default();
        format!(
            "measured on this disk ({}), {} summed: overlay {} ms ({} ms; {}), btrfs {} ms ({} ms; {}){ratio}",
            origin(&report.host, &report.taken_at),
            self.operations.join("+"),
            number(self.overlay.median),
            range_text(self.overlay),
            per_op("overlay"),
            number(self.btrfs.median),
            range_text(self.btrfs),
            per_op("btrfs"),
        )
    }
}

fn range_text(r: Range) -> String {
    format!("{}–{}", number(r.min), number(r.max))
}

/// One row of PLAN.md's "Measured on this disk" table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// `database`, `compression` or `containers`.
    pub part: String,
    /// The layout, compression property and data, or driver and operation.
    pub option: String,
    /// What was measured, with its unit: `IOPS`, `p99 ms`, `extents`, `MB/s`, `CPU s/GB`, `ms`.
    pub measure: String,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// Every figure of a report, in report order.
pub fn figures(report: &BenchReport) -> Vec<Figure> {
    let mut out = Vec::new();
    let mut push = |part: &str, option: String, measure: &str, s: &Stat, scale: f64| {
        out.push(Figure {
            part: part.into(),
            option,
            measure: measure.into(),
            median: s.median * scale,
            min: s.min * scale,
            max: s.max * scale,
        });
    };
    for d in &report.database {
        let option = match d.layout {
            DatabaseLayout::Compare => format!("compare ({})", d.filesystem),
            l => l.as_str().to_string(),
        };
        push("database", option.clone(), "IOPS", &d.iops, 1.0);
        push("database", option.clone(), "p50 ms", &d.p50_us, 0.001);
        push("database", option.clone(), "p99 ms", &d.p99_us, 0.001);
        push("database", option, "extents", &d.extents, 1.0);
    }
    for c in &report.compression {
        let data = c.data.as_str();
        let option = format!("{}, {data}", c.property);
        push("compression", option.clone(), "MB/s", &c.mb_per_s, 1.0);
        push("compression", option, "CPU s/GB", &c.cpu_s_per_gb, 1.0);
    }
    for d in &report.containers {
        for o in &d.operations {
            push("containers", format!("{} {}", d.driver, o.operation), "ms", &o.ms, 1.0);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bench::report::{CompressionResult, DriverResult, OperationResult, SCHEMA, SkippedPart};

    pub fn stat(samples: &[f64]) -> Stat {
        Stat::of(samples).unwrap()
    }

    fn database(layout: DatabaseLayout, iops: &[f64], p99_us: f64, extents: f64) -> DatabaseResult {
        DatabaseResult {
            layout,
            filesystem: if layout == DatabaseLayout::Compare { "ext4" } else { "btrfs" }.into(),
            file_bytes: 1 << 28,
            writes: 4000,
            iops: stat(iops),
            p50_us: stat(&[p99_us / 3.0]),
            p99_us: stat(&[p99_us]),
            extents: stat(&[extents]),
        }
    }

    fn driver(name: &str, ms: &[(&str, &[f64])]) -> DriverResult {
        DriverResult {
            driver: name.into(),
            podman_version: "4.3.1".into(),
            runtime: None,
            image_files: 20_000,
            image_bytes: 80 << 20,
            operations: ms
                .iter()
                .map(|(op, samples)| OperationResult { operation: op.to_string(), ms: stat(samples) })
                .collect(),
        }
    }

    /// A report as the example disk gave it, with drivers as given.
    pub fn report(overlay: &[(&str, &[f64])], btrfs: &[(&str, &[f64])]) -> BenchReport {
        BenchReport {
            schema: SCHEMA,
            tool_version: "0.1.0".into(),
            taken_at: "20261130T091500Z".into(),
            host: BenchHost {
                dir: "/var/lib/containers".into(),
                filesystem: "btrfs".into(),
                device: Some("/dev/nvme0n1p2".into()),
                kernel: "6.1.0-28-amd64".into(),
                cpus: 2,
                quick: false,
                rounds: 3,
            },
            database: vec![
                database(DatabaseLayout::Cow, &[1300.0, 1390.0, 1420.0], 4200.0, 51_000.0),
                database(DatabaseLayout::CowZstd, &[1400.0, 1443.0, 1480.0], 4000.0, 47_915.0),
                database(DatabaseLayout::Nocow, &[2150.0, 2216.0, 2260.0], 1900.0, 242.0),
                database(DatabaseLayout::Compare, &[3600.0, 3726.0, 3800.0], 1100.0, 4.0),
            ],
            compression: vec![
                compression("zstd", DataKind::Compressible, 410.0, 2.1, 90.0),
                compression("none", DataKind::Compressible, 380.0, 0.9, 1000.0),
                compression("zstd", DataKind::Incompressible, 300.0, 2.6, 1000.0),
                compression("none", DataKind::Incompressible, 390.0, 0.8, 1000.0),
            ],
            containers: vec![driver("overlay", overlay), driver("btrfs", btrfs)],
            skipped: vec![SkippedPart { what: "compare".into(), why: "example".into() }],
        }
    }

    fn compression(property: &str, data: DataKind, mb: f64, cpu: f64, disk_mb: f64) -> CompressionResult {
        CompressionResult {
            property: property.into(),
            data,
            bytes: 1_000_000_000,
            mb_per_s: stat(&[mb * 0.95, mb, mb * 1.05]),
            cpu_s_per_gb: stat(&[cpu]),
            disk_bytes: stat(&[disk_mb * 1e6]),
        }
    }

    /// The plan of an embedded example with `report` read from `b.json`.
    pub fn plan_of(
        example: &str,
        strategy: crate::decide::Strategy,
        report: &BenchReport,
    ) -> crate::decide::Plan {
        let profile = crate::classify::classify(&crate::inventory::examples::load(example).unwrap());
        let inputs = crate::decide::Inputs {
            bench: Some(crate::decide::Measured { file: "b.json", report }),
            database_fs: None,
        };
        crate::decide::decide_with(&profile, strategy, &inputs)
    }

    /// The same container times on both drivers: the measurements separate nothing.
    pub fn even() -> BenchReport {
        let ops: &[(&str, &[f64])] = &[
            ("import", &[900.0, 1000.0, 1100.0]),
            ("create", &[100.0, 110.0, 120.0]),
            ("start", &[200.0, 210.0, 230.0]),
            ("stop", &[50.0, 55.0, 60.0]),
            ("rm", &[40.0, 45.0, 50.0]),
            ("commit", &[500.0, 520.0, 540.0]),
            ("rmi", &[300.0, 310.0, 320.0]),
        ];
        report(ops, ops)
    }

    #[test]
    fn separation_needs_the_ratio_and_ranges_apart() {
        let r = |median, min, max| Range { median, min, max, rounds: 3 };
        let s = higher_is_better(r(2216.0, 2150.0, 2260.0), r(1443.0, 1400.0, 1480.0));
        assert!(s.clear && (s.ratio.unwrap() - 1.5357).abs() < 1e-3, "{s:?}");
        // Far enough apart by medians, but one round of the slower one reached the faster.
        assert!(!higher_is_better(r(2216.0, 1300.0, 2260.0), r(1443.0, 1400.0, 1480.0)).clear);
        // Ranges apart, medians too close.
        assert!(!higher_is_better(r(1600.0, 1550.0, 1650.0), r(1443.0, 1400.0, 1480.0)).clear);
        let s = lower_is_better(r(100.0, 90.0, 110.0), r(150.0, 140.0, 160.0));
        assert!(s.clear && s.ratio == Some(1.5), "exactly the threshold counts: {s:?}");
        assert!(!lower_is_better(r(100.0, 90.0, 145.0), r(150.0, 140.0, 160.0)).clear);
        assert_eq!(higher_is_better(r(0.0, 0.0, 0.0), r(1.0, 1.0, 1.0)).ratio, None);
        // One round has no spread: far apart, but it decides nothing.
        let once = |median| Range { median, min: median, max: median, rounds: 1 };
        let s = higher_is_better(once(3000.0), once(1000.0));
        assert!(!s.clear && s.ratio == Some(3.0), "{s:?}");
        assert!(
            higher_is_better(Range { rounds: 2, ..once(3000.0) }, Range { rounds: 2, ..once(1000.0) }).clear
        );
    }

    #[test]
    fn nocow_cites_both_layouts_and_the_extents() {
        let m = nocow(&even()).unwrap();
        assert!(m.separation.clear);
        assert!(
            m.cited(true).starts_with(
                "measured on this disk (/dev/nvme0n1p2, 20261130T091500Z): NOCOW 2,216 IOPS p99 1.9 ms, \
                 CoW+zstd 1,443 IOPS p99 4 ms (NOCOW 1.54×); extents after the run 242 vs 47,915: \
                 NOCOW is clearly faster"
            ),
            "{}",
            m.cited(true)
        );
        assert_eq!(m.cited(true), m.cited(false), "a clear result reads the same either way");
        // A disk where NOCOW gained little: said honestly.
        let mut flat = even();
        flat.database[2].iops = stat(&[1450.0, 1500.0, 1520.0]);
        let m = nocow(&flat).unwrap();
        assert!(!m.separation.clear);
        assert!(m.cited(true).contains("do not show NOCOW clearly faster"), "{}", m.cited(true));
        assert!(m.cited(true).contains("NOCOW stays for this class because copy-on-write fragments"));
        assert!(!m.cited(false).contains("NOCOW stays"), "{}", m.cited(false));
        // Without the zstd layout, plain CoW is the comparison; without NOCOW, nothing.
        flat.database.retain(|d| d.layout != DatabaseLayout::CowZstd);
        assert!(nocow(&flat).unwrap().figures.contains(", CoW 1,390 IOPS"));
        flat.database.retain(|d| d.layout != DatabaseLayout::Nocow);
        assert_eq!(nocow(&flat), None);
    }

    #[test]
    fn compression_cites_both_kinds_of_data() {
        let text = compression_cited(&even(), &[DataKind::Compressible, DataKind::Incompressible]).unwrap();
        assert!(text.contains("compressible data: zstd 410 MB/s, 2.1 CPU s/GB, 11.1× smaller on disk; none 380 MB/s, 0.90 CPU s/GB"), "{text}");
        assert!(text.contains("incompressible data: zstd 300 MB/s, 2.6 CPU s/GB, 1.0× smaller"), "{text}");
        let mut r = even();
        r.compression.clear();
        assert_eq!(compression_cited(&r, &[DataKind::Compressible]), None);
    }

    #[test]
    fn drivers_sum_the_operations_of_the_mix() {
        let m = drivers(&even(), CONTAINER_OPERATIONS).unwrap();
        assert_eq!(m.overlay.median, 110.0 + 210.0 + 55.0 + 45.0);
        assert_eq!(m.overlay.min, 100.0 + 200.0 + 50.0 + 40.0);
        assert_eq!(m.clearly_faster, None);
        let fast: &[(&str, &[f64])] = &[
            ("import", &[300.0, 320.0, 340.0]),
            ("commit", &[100.0, 110.0, 120.0]),
            ("rmi", &[80.0, 90.0, 95.0]),
        ];
        let slow: &[(&str, &[f64])] = &[
            ("import", &[900.0, 1000.0, 1100.0]),
            ("commit", &[500.0, 520.0, 540.0]),
            ("rmi", &[300.0, 310.0, 320.0]),
        ];
        let m = drivers(&report(slow, fast), BUILD_OPERATIONS).unwrap();
        assert_eq!(m.clearly_faster, Some(Driver::Btrfs));
        let text = m.cited(&report(slow, fast));
        assert!(text.contains("import+commit+rmi summed: overlay 1,830 ms (1,700–1,960 ms; import 1,000, commit 520, rmi 310), btrfs 520 ms"), "{text}");
        assert_eq!(
            drivers(&report(fast, slow), BUILD_OPERATIONS).unwrap().clearly_faster,
            Some(Driver::Overlay)
        );
        // An operation missing on one driver: no comparison.
        assert_eq!(drivers(&report(slow, fast), CONTAINER_OPERATIONS), None);
    }

    #[test]
    fn figures_keep_report_order_and_units() {
        let f = figures(&even());
        assert_eq!(f.len(), 4 * 4 + 4 * 2 + 2 * 7);
        assert_eq!(
            (f[0].part.as_str(), f[0].option.as_str(), f[0].measure.as_str()),
            ("database", "cow", "IOPS")
        );
        let p99 = f.iter().find(|f| f.option == "nocow" && f.measure == "p99 ms").unwrap();
        assert!((p99.median - 1.9).abs() < 1e-9);
        assert!(f.iter().any(|f| f.option == "compare (ext4)"));
        assert!(f.iter().any(|f| f.option == "btrfs rmi" && f.measure == "ms"));
    }

    #[test]
    fn compare_gain_is_against_nocow() {
        let text = compare_gain(&even()).unwrap();
        assert!(
            text.contains(
                "ext4 3,726 IOPS p99 1.1 ms, NOCOW on btrfs 2,216 IOPS p99 1.9 ms (ext4 1.68× NOCOW)"
            ),
            "{text}"
        );
        assert!(!text.contains("noise"), "{text}");
    }
}
