//! The measurements of a `bench` run in order: how much each writes, the directories it
//! writes into, the rounds interleaved layout by layout, and the figures gathered into
//! the report's shape.

use super::Stop;
use super::compression::{self, CompressionRound};
use super::database::{self, DatabaseRound, DatabaseSize};
use super::report::{CompressionResult, DataKind, DatabaseLayout, DatabaseResult, Stat};
use super::scratch::{self, Attributes};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How much a run measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub quick: bool,
    pub rounds: u32,
    pub database: DatabaseSize,
    /// Bytes written per compression round.
    pub compression_bytes: u64,
}

/// Room left free beyond what the files take: btrfs metadata and the chunks it
/// allocates, and what the host itself writes meanwhile.
const HEADROOM: u64 = 256 << 20;

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                rounds: 3,
                database: DatabaseSize {
                    file_bytes: 64 << 20,
                    writes: 2000,
                    time_cap: Duration::from_secs(3),
                },
                compression_bytes: 64 << 20,
            }
        } else {
            Plan {
                quick,
                rounds: 5,
                database: DatabaseSize {
                    file_bytes: 256 << 20,
                    writes: 20_000,
                    time_cap: Duration::from_secs(15),
                },
                compression_bytes: 256 << 20,
            }
        }
    }

    /// Free space the measured directory needs: one database file with every rewritten
    /// page copied, or one compression file (never both at once), and headroom.
    pub fn space_needed(&self) -> u64 {
        let database = self.database.file_bytes + self.database.writes * database::PAGE;
        database.max(self.compression_bytes) + HEADROOM
    }

    /// Free space `--compare-dir` needs: one database file (written in place there).
    pub fn compare_space_needed(&self) -> u64 {
        self.database.file_bytes + (64 << 20)
    }

    /// Measurements of the whole run, for the progress display.
    pub fn steps(&self, layouts: usize) -> usize {
        self.rounds as usize * (layouts + COMBINATIONS.len())
    }
}

/// Where the run writes: the scratch subvolume on btrfs, and optionally a scratch
/// directory on another filesystem with that filesystem's type.
#[derive(Debug, Clone)]
pub struct Places {
    pub scratch: PathBuf,
    pub compare: Option<(PathBuf, String)>,
}

/// Where the run stands, for the progress display.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What is measured now, e.g. `database nocow`.
    pub phase: String,
    /// 1-based.
    pub round: u32,
    pub rounds: u32,
    /// Measurements finished, of `total`.
    pub done: usize,
    pub total: usize,
}

/// The compression measurements of one round, in order.
pub const COMBINATIONS: [(&str, DataKind); 4] = [
    ("zstd", DataKind::Compressible),
    ("none", DataKind::Compressible),
    ("zstd", DataKind::Incompressible),
    ("none", DataKind::Incompressible),
];

/// The database layouts on btrfs, each in a directory of the scratch subvolume set up so.
/// `cow` gets the property `none`, so a filesystem-wide `compress=` mount option does not
/// turn it into a second `cow-zstd`.
const BTRFS_LAYOUTS: [DatabaseLayout; 3] =
    [DatabaseLayout::Cow, DatabaseLayout::CowZstd, DatabaseLayout::Nocow];

fn layout_dir(scratch: &Path, layout: DatabaseLayout) -> PathBuf {
    scratch.join(format!("database-{}", layout.as_str()))
}

fn compression_dir(scratch: &Path, property: &str) -> PathBuf {
    scratch.join(format!("compression-{property}"))
}

/// Makes the directories of the layouts and compression properties in the scratch.
fn prepare(scratch: &Path) -> Result<(), Stop> {
    for layout in BTRFS_LAYOUTS {
        let attrs = match layout {
            DatabaseLayout::Nocow => Attributes::Nocow,
            DatabaseLayout::CowZstd => Attributes::Compression("zstd"),
            _ => Attributes::Compression("none"),
        };
        scratch::make_dir(&layout_dir(scratch, layout), attrs)?;
    }
    for property in ["zstd", "none"] {
        scratch::make_dir(&compression_dir(scratch, property), Attributes::Compression(property))?;
    }
    Ok(())
}

/// Runs every measurement, rounds interleaved layout by layout, and returns the figures.
pub fn measure(
    plan: &Plan,
    places: &Places,
    cancel: &AtomicBool,
    progress: &dyn Fn(&Step),
) -> Result<(Vec<DatabaseResult>, Vec<CompressionResult>), Stop> {
    prepare(&places.scratch)?;
    let mut layouts: Vec<(DatabaseLayout, PathBuf, String)> =
        BTRFS_LAYOUTS.iter().map(|&l| (l, layout_dir(&places.scratch, l), "btrfs".to_string())).collect();
    if let Some((dir, fs)) = &places.compare {
        layouts.push((DatabaseLayout::Compare, dir.clone(), fs.clone()));
    }
    let pools = [DataKind::Compressible, DataKind::Incompressible].map(|k| (k, compression::pool(k, 7)));
    let pool = |kind: DataKind| &pools.iter().find(|(k, _)| *k == kind).expect("both kinds made").1;
    let total = plan.steps(layouts.len());
    let mut done = 0;
    let mut step = |phase: String, round: u32| {
        progress(&Step { phase, round: round + 1, rounds: plan.rounds, done, total });
        done += 1;
    };
    let mut database_rounds: Vec<Vec<DatabaseRound>> = vec![Vec::new(); layouts.len()];
    let mut compression_rounds: Vec<Vec<CompressionRound>> = vec![Vec::new(); COMBINATIONS.len()];
    for round in 0..plan.rounds {
        for (i, (layout, dir, _)) in layouts.iter().enumerate() {
            step(format!("database {}", layout.as_str()), round);
            // One seed per round: every layout gets the same offsets and pages.
            let r = database::round(dir, plan.database, u64::from(round) + 1, cancel)?;
            tracing::debug!(layout = layout.as_str(), round, ?r, "database round");
            database_rounds[i].push(r);
        }
        for (i, (property, kind)) in COMBINATIONS.iter().enumerate() {
            step(format!("compression {property} {}", kind.as_str()), round);
            let r = compression::round(
                &compression_dir(&places.scratch, property),
                pool(*kind),
                plan.compression_bytes,
                cancel,
            )?;
            tracing::debug!(property, kind = kind.as_str(), round, ?r, "compression round");
            compression_rounds[i].push(r);
        }
    }
    progress(&Step { phase: "done".into(), round: plan.rounds, rounds: plan.rounds, done: total, total });
    let database = layouts
        .iter()
        .zip(&database_rounds)
        .map(|((layout, _, fs), rounds)| database_result(*layout, fs, plan, rounds))
        .collect::<Option<Vec<_>>>();
    let compression = COMBINATIONS
        .iter()
        .zip(&compression_rounds)
        .map(|((property, kind), rounds)| compression_result(property, *kind, plan, rounds))
        .collect::<Option<Vec<_>>>();
    match (database, compression) {
        (Some(d), Some(c)) => Ok((d, c)),
        _ => Err(Stop::Failed(crate::error::Error::Environment(
            "a measurement gave no number (a round took no time?); run `bench` again".into(),
        ))),
    }
}

fn stat_of<T>(rounds: &[T], f: impl Fn(&T) -> f64) -> Option<Stat> {
    Stat::of(&rounds.iter().map(f).collect::<Vec<_>>())
}

/// The figures of one layout from its rounds; `None` when a figure is not a number.
pub fn database_result(
    layout: DatabaseLayout,
    fs: &str,
    plan: &Plan,
    rounds: &[DatabaseRound],
) -> Option<DatabaseResult> {
    Some(DatabaseResult {
        layout,
        filesystem: fs.to_string(),
        file_bytes: plan.database.file_bytes,
        writes: rounds.iter().map(|r| r.writes).min()?,
        iops: stat_of(rounds, |r| r.iops)?,
        p50_us: stat_of(rounds, |r| r.p50_us)?,
        p99_us: stat_of(rounds, |r| r.p99_us)?,
        extents: stat_of(rounds, |r| r.extents)?,
    })
}

/// The figures of one compression combination from its rounds.
pub fn compression_result(
    property: &str,
    data: DataKind,
    plan: &Plan,
    rounds: &[CompressionRound],
) -> Option<CompressionResult> {
    Some(CompressionResult {
        property: property.to_string(),
        data,
        bytes: plan.compression_bytes,
        mb_per_s: stat_of(rounds, |r| r.mb_per_s)?,
        cpu_s_per_gb: stat_of(rounds, |r| r.cpu_s_per_gb)?,
        disk_bytes: stat_of(rounds, |r| r.disk_bytes)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_needs_less_than_the_default_and_space_covers_the_largest_file() {
        let (quick, full) = (Plan::new(true), Plan::new(false));
        assert!(quick.rounds < full.rounds && quick.database.file_bytes < full.database.file_bytes);
        assert!(quick.space_needed() < full.space_needed());
        for p in [quick, full] {
            assert!(p.space_needed() > p.database.file_bytes.max(p.compression_bytes) + HEADROOM - 1);
            assert!(p.compare_space_needed() > p.database.file_bytes);
        }
        assert_eq!(quick.steps(4), 3 * 8);
    }

    #[test]
    fn results_hold_median_and_spread_of_the_rounds() {
        let plan = Plan::new(true);
        let r =
            |iops: f64, writes: u64| DatabaseRound { writes, iops, p50_us: 1.0, p99_us: 2.0, extents: 10.0 };
        let d = database_result(
            DatabaseLayout::Nocow,
            "btrfs",
            &plan,
            &[r(100.0, 1000), r(300.0, 900), r(200.0, 1000)],
        )
        .unwrap();
        assert_eq!((d.iops.median, d.iops.min, d.iops.max), (200.0, 100.0, 300.0));
        assert_eq!(d.writes, 900, "the fewest writes a round made");
        assert!(database_result(DatabaseLayout::Cow, "btrfs", &plan, &[]).is_none());
        let c = CompressionRound { mb_per_s: f64::NAN, cpu_s_per_gb: 1.0, disk_bytes: 1.0 };
        assert!(compression_result("zstd", DataKind::Compressible, &plan, &[c]).is_none());
    }
}
