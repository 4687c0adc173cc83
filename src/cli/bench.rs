//! `bench`: measure this host's storage choices on its own disk and write the figures
//! for `plan --bench`.

use super::Format;
use crate::bench::containers::{self, ContainerBench};
use crate::bench::report::{
    BenchHost, BenchReport, CompressionResult, DatabaseResult, SCHEMA, SkippedPart, Stat, number,
};
use crate::bench::run::{self, Places, Plan, Step};
use crate::bench::{Stop, scratch, svg};
use crate::error::{Error, exit};
use crate::output::{self, Overwrite};
use crate::size::Human;
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const EXAMPLES: &str = "Examples:
  podman-btrfs-advise bench --quick                       # under a minute, on graphroot's filesystem
  podman-btrfs-advise bench --out bench.json --svg bench.svg
  podman-btrfs-advise bench --dir /srv --compare-dir /mnt/ext4 --format json
  podman-btrfs-advise plan --from-host --bench bench.json
  podman-btrfs-advise bench --clean --dir /srv            # remove what a killed run left";

const LONG_HELP: &str = "What is measured, in rounds that take the options in turn (cow, cow-zstd,
nocow, compare, cow, …) so that a disk's slow moments fall on all alike:

database: a file written in full (64 MiB with --quick, else 256 MiB), then
8 KiB pages rewritten at random 8 KiB-aligned offsets, each write followed
by fdatasync (2000 writes, else 20000), in a copy-on-write directory
(property `none`), a copy-on-write directory with the property `zstd`, a
NOCOW directory (chattr +C on the empty directory) and --compare-dir:
synced writes per second, p50 and p99 latency, and the file's extents
afterwards (FIEMAP). A round stops early on a slow disk (after 3 s, else
15 s); `writes` says how many the shortest round made.

compression: log lines (compressible) and random bytes (incompressible)
written and fsynced (64 MiB, else 256 MiB) with the property `zstd` and
`none`: MB/s, CPU seconds per GB, and the bytes taken on disk (used space
before and after, each after syncfs). btrfs compresses in kernel threads,
so CPU time is the busy time of all CPUs (/proc/stat) over the round: run
bench on an otherwise idle host.

containers: a real Podman (the `podman` on PATH, run as root) on two
throwaway stores in the scratch subvolume, one per storage driver, overlay
and btrfs, in turn: import of an image of many small files (2,000 with
--quick, else 20,000), create, start, chmod of every file in the running
container, stop, commit, rm and rmi, each timed in ms. Podman runs in a
mount namespace of the bench's own where /run and /var/lib/containers are
empty: the host's Podman state is never read or written. A driver that
cannot run here (no podman, not root, no overlay in the kernel) is listed
under `skipped` with the reason; --no-containers leaves the part out.

Rounds: 3 with --quick, else 5. Each figure is the median of the rounds,
with the lowest and highest (min–max).

Everything is written in one scratch subvolume, DIR/.podfs-bench-STAMP
(never snapshotted with DIR), and a directory of the same name in
--compare-dir; both are removed at the end, also after a failure, Ctrl-C or SIGTERM
(which stop at the next safe point). A scratch left by a killed run is
named at the start; `bench --clean` removes such leftovers, and nothing
that is not named .podfs-bench-*.

JSON (--format json, and --out FILE for `plan --bench`); fields are only
ever added, and a report whose schema is newer than the reader's is refused:
  {schema: 1, tool_version, taken_at: YYYYMMDDTHHMMSSZ,
   host {dir, filesystem, device, kernel, cpus, quick, rounds},
   database [{layout: cow|cow-zstd|nocow|compare, filesystem,
     file_bytes, writes, iops STAT, p50_us STAT, p99_us STAT,
     extents STAT}],
   compression [{property: zstd|none,
     data: compressible|incompressible, bytes, mb_per_s STAT,
     cpu_s_per_gb STAT, disk_bytes STAT}],
   containers [{driver, podman_version, runtime, image_files, image_bytes,
     operations [{operation, ms STAT}]}],
   skipped [{what, why}]}
  STAT: {median, min, max, samples [one per round]}
--clean --format json prints {removed: [PATH]}.

Exit codes: 0 measured; 2 usage (DIR does not exist, no graphroot found
without --dir); 3 refused or stopped: DIR is not on btrfs, --compare-dir is
on the same filesystem, too little free space, a failed measurement, or
Ctrl-C or SIGTERM (\"interrupted\").";

/// Measure this host's storage choices on its own disk: database-like I/O, compression and
/// a real Podman on the overlay and btrfs drivers.
///
/// Writes in a scratch subvolume on DIR's btrfs (graphroot's by default) and removes it at
/// the end: 8 KiB synced random writes into copy-on-write, zstd-compressed and NOCOW files
/// (and a file on --compare-dir, an ext4 or xfs directory), compressible and random data
/// with the compression property zstd and none, and Podman's image and container
/// operations on a throwaway store per storage driver. Prints the median and spread of the
/// rounds; --out writes the report that `plan --bench` reads, --svg a chart of it.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES, after_long_help = LONG_HELP)]
pub struct BenchArgs {
    /// A directory on the btrfs filesystem to measure (default: graphroot, as
    /// containers/storage resolves it for you).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Fewer, shorter rounds: under a minute instead of about six (both measured on a loop
    /// disk; a slow disk takes longer).
    #[arg(long)]
    pub quick: bool,

    /// Write the report (JSON) to FILE, atomically; a FILE already there is kept as a
    /// timestamped backup.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Draw the figures into an SVG chart at FILE (same rules as --out).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,

    /// Also measure database-like I/O in this directory of another filesystem (ext4, xfs)
    /// to compare with.
    #[arg(long, value_name = "DIR")]
    pub compare_dir: Option<PathBuf>,

    /// Leave out the container part (a real Podman on the overlay and btrfs drivers).
    #[arg(long)]
    pub no_containers: bool,

    /// Remove what a killed run left (.podfs-bench-* in DIR and --compare-dir, and only
    /// that) instead of measuring.
    #[arg(long)]
    pub clean: bool,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: BenchArgs) -> Result<u8, Error> {
    let dir = existing_dir(
        &match &args.dir {
            Some(d) => d.clone(),
            None => graphroot()?,
        },
        "--dir DIR, a directory on the btrfs filesystem to measure",
    )?;
    let compare = args
        .compare_dir
        .as_deref()
        .map(|c| existing_dir(c, "--compare-dir DIR, a directory on ext4 or xfs to compare with"))
        .transpose()?;
    if args.clean {
        return clean(&args, &dir, compare.as_deref());
    }
    let view = crate::inspect::MountView::own().map_err(|e| Error::io("/proc/self/mountinfo", "read", e))?;
    let here = view.inspect(&dir).map_err(|e| Error::io(&dir, "inspect", e))?;
    if !here.is_btrfs() {
        return Err(Error::Environment(format!(
            "{} is on {}, not btrfs: bench compares btrfs's options (copy-on-write, zstd, NOCOW) and needs \
             a directory on btrfs\n  = help: pass --dir on the btrfs filesystem to measure; an ext4 or xfs \
             directory to compare with goes to --compare-dir",
            dir.display(),
            here.filesystem
        )));
    }
    if here.filesystem_options.iter().any(|o| o.starts_with("compress-force")) {
        eprintln!(
            "warning: {} is mounted with compress-force, under which btrfs compresses also where the property \
             says none: the cow layout and the property none are measured compressed",
            here.mountpoint
        );
    }
    let plan = Plan::new(args.quick);
    let containers_need = if args.no_containers { 0 } else { containers::bytes_needed(plan.quick) };
    enough_space(&dir, plan.space_needed() + containers_need)?;
    let compare_fs = match &compare {
        Some(c) => {
            let there = view.inspect(c).map_err(|e| Error::io(c, "inspect", e))?;
            if (there.device == here.device && there.filesystem == here.filesystem) || same_device(&dir, c) {
                return Err(Error::Environment(format!(
                    "--compare-dir {} is on the same filesystem as {} ({} on {}): it is there to compare \
                     with another filesystem, such as ext4 or xfs on its own partition",
                    c.display(),
                    dir.display(),
                    here.filesystem,
                    here.device
                )));
            }
            enough_space(c, plan.compare_space_needed())?;
            Some(there.filesystem)
        }
        None => None,
    };
    for target in [&args.out, &args.svg].into_iter().flatten() {
        writable_target(target)?;
    }
    for place in std::iter::once(&dir).chain(compare.as_ref()) {
        for old in scratch::stale(place) {
            eprintln!(
                "warning: {} was left by a bench run that was killed; `podman-btrfs-advise bench --clean --dir {}` \
                 removes it",
                old.display(),
                place.display()
            );
        }
    }

    let started = Instant::now();
    let taken_at = output::timestamp();
    let cancel = super::cancel_on_signal();
    let work = scratch::Scratch::subvolume(&dir, &taken_at)?;
    let compare_work = compare.as_deref().map(|c| scratch::Scratch::directory(c, &taken_at)).transpose()?;
    tracing::info!(scratch = %work.path().display(), rounds = plan.rounds, "bench starts");
    let places = Places {
        scratch: work.path().to_path_buf(),
        compare: compare_work.as_ref().zip(compare_fs).map(|(w, fs)| (w.path().to_path_buf(), fs)),
    };
    let progress = Progress::new();
    let measured = run::measure(&plan, &places, &cancel, &|s| progress.show(s));
    let (drivers, mut skipped) = match &measured {
        Ok(_) if !args.no_containers => measure_containers(&plan, work.path(), &cancel, &progress),
        _ => (Vec::new(), Vec::new()),
    };
    progress.finish();
    let scratch_paths: Vec<String> =
        std::iter::once(&work).chain(compare_work.as_ref()).map(|s| s.path().display().to_string()).collect();
    // Removed before anything is printed, so a failure to remove is reported with the rest.
    let removed = work.remove().and(compare_work.map_or(Ok(()), scratch::Scratch::remove));
    removed?;
    // The container part reports a cancel among its skips; the flag says it for both parts.
    let cancelled = cancel.load(std::sync::atomic::Ordering::Relaxed);
    let (database, compression) = match measured {
        Err(Stop::Failed(e)) => return Err(e),
        Ok(figures) if !cancelled => figures,
        Ok(_) | Err(Stop::Cancelled) => {
            return Err(Error::Environment(format!(
                "interrupted (Ctrl-C or SIGTERM): stopped at a safe point and removed {}",
                scratch_paths.join(" and ")
            )));
        }
    };
    let report = BenchReport {
        schema: SCHEMA,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        taken_at,
        host: BenchHost {
            dir: dir.display().to_string(),
            filesystem: here.filesystem,
            device: Some(here.device).filter(|d| !d.is_empty()),
            kernel: crate::bench::kernel_release(),
            cpus: cpus(),
            quick: plan.quick,
            rounds: plan.rounds,
        },
        database,
        compression,
        containers: drivers,
        skipped: {
            skipped.extend(not_measured(compare.is_some(), args.no_containers));
            skipped
        },
    };
    let json = serde_json::to_string_pretty(&report).expect("plain data always serializes") + "\n";
    let mut notes = Vec::new();
    if let Some(out) = &args.out {
        notes.push(write_output(out, &json, "report")?);
    }
    if let Some(path) = &args.svg {
        notes.push(write_output(path, &svg::chart(&report), "chart")?);
    }
    match args.format {
        Format::Json => print!("{json}"),
        Format::Human => {
            print!("{}", summary(&report, started.elapsed()));
            for n in &notes {
                println!("{n}");
            }
        }
    }
    Ok(exit::OK)
}

/// Graphroot as containers/storage resolves it for the caller, as `storage-conf show` finds it.
fn graphroot() -> Result<PathBuf, Error> {
    use crate::conf::resolve::{Caller, resolve};
    let found = (|| {
        let caller = Caller::current(None);
        Ok::<_, Error>(resolve(&caller, None, None)?.stack.effective(&caller)?.graphroot.value)
    })();
    found.map(PathBuf::from).map_err(|e| {
        Error::Usage(format!(
            "cannot find graphroot to measure ({e})\n  = help: pass --dir DIR, a directory on the btrfs filesystem to measure"
        ))
    })
}

/// `dir` made absolute, when it is a directory; `pass` says what to pass instead.
fn existing_dir(dir: &Path, pass: &str) -> Result<PathBuf, Error> {
    match std::fs::canonicalize(dir) {
        Ok(d) if d.is_dir() => Ok(d),
        Ok(_) => Err(Error::Usage(format!("{} is not a directory\n  = help: pass {pass}", dir.display()))),
        Err(e) => Err(Error::Usage(format!("{} does not exist ({e})\n  = help: pass {pass}", dir.display()))),
    }
}

/// Two directories on one device (of filesystems without subvolumes, whose st_dev is the
/// filesystem's).
fn same_device(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    matches!((std::fs::metadata(a), std::fs::metadata(b)), (Ok(x), Ok(y)) if x.dev() == y.dev())
}

fn enough_space(dir: &Path, needed: u64) -> Result<(), Error> {
    let s = rustix::fs::statvfs(dir).map_err(|e| Error::io(dir, "read the free space of", e.into()))?;
    let free = s.f_bavail.saturating_mul(s.f_frsize);
    if free < needed {
        return Err(Error::Environment(format!(
            "not enough free space in {}: bench needs {} and {} is free\n  = help: free some space, or use \
             --quick, which writes less",
            dir.display(),
            Human(needed),
            Human(free)
        )));
    }
    Ok(())
}

/// Refuses before measuring what could only fail afterwards: a file in a missing directory.
fn writable_target(path: &Path) -> Result<(), Error> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if path.file_name().is_none() || !parent.is_dir() {
        return Err(Error::Usage(format!(
            "cannot write {}: no such directory {}",
            path.display(),
            parent.display()
        )));
    }
    if path.is_dir() {
        return Err(Error::Usage(format!("{} is a directory; name a file", path.display())));
    }
    Ok(())
}

/// Writes `contents` to `path` atomically, keeping what was there as a backup; returns
/// the line that says so.
fn write_output(path: &Path, contents: &str, what: &str) -> Result<String, Error> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let written = output::write_files(parent, &[(&name, contents)], Overwrite::Backup)?;
    let backup = written
        .first()
        .and_then(|w| w.backup.as_ref())
        .map(|b| format!(" (the old file is kept as {})", b.display()))
        .unwrap_or_default();
    Ok(format!("The {what} is in {}{backup}.", path.display()))
}

fn clean(args: &BenchArgs, dir: &Path, compare: Option<&Path>) -> Result<u8, Error> {
    let mut removed = Vec::new();
    for place in std::iter::once(dir).chain(compare) {
        removed.extend(scratch::clean(place)?);
    }
    match args.format {
        Format::Json => println!("{}", serde_json::json!({ "removed": removed })),
        Format::Human if removed.is_empty() => println!("Nothing left by a bench run in {}.", dir.display()),
        Format::Human => {
            for r in &removed {
                println!("removed {}", r.display());
            }
        }
    }
    Ok(exit::OK)
}

/// The container part in a directory of the scratch subvolume, its steps shown as progress.
fn measure_containers(
    plan: &Plan,
    scratch: &Path,
    cancel: &std::sync::atomic::AtomicBool,
    progress: &Progress,
) -> (Vec<crate::bench::report::DriverResult>, Vec<SkippedPart>) {
    let dir = scratch.join("containers");
    if let Err(e) = std::fs::create_dir(&dir) {
        return (
            Vec::new(),
            vec![SkippedPart { what: "containers".into(), why: format!("{}: {e}", dir.display()) }],
        );
    }
    let show = |line: &str| {
        progress.show(&Step {
            phase: line.to_string(),
            round: plan.rounds,
            rounds: plan.rounds,
            done: 0,
            total: 0,
        })
    };
    containers::measure(&ContainerBench {
        scratch: &dir,
        rounds: plan.rounds,
        quick: plan.quick,
        cancel,
        progress: &show,
    })
}

/// The parts left out by the command line, and why.
fn not_measured(compared: bool, no_containers: bool) -> Vec<SkippedPart> {
    let mut out = Vec::new();
    if no_containers {
        out.push(SkippedPart { what: "containers".into(), why: "--no-containers".into() });
    }
    if !compared {
        out.push(SkippedPart {
            what: "compare".into(),
            why: "no --compare-dir (a directory on ext4 or xfs to compare with)".into(),
        });
    }
    out
}

/// Logical CPUs online (the `cpuN` lines of /proc/stat).
fn cpus() -> u32 {
    let counted = std::fs::read_to_string("/proc/stat")
        .map(|s| {
            s.lines()
                .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
                .count()
        })
        .unwrap_or(0);
    if counted > 0 {
        counted as u32
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    }
}

/// The progress line on stderr: rewritten in place on a terminal, a line per step otherwise.
struct Progress {
    terminal: bool,
    started: Instant,
    shown: Mutex<bool>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            shown: Mutex::new(false),
        }
    }

    fn show(&self, step: &Step) {
        let line = progress_line(step, self.started.elapsed());
        tracing::debug!(phase = %step.phase, round = step.round, "{line}");
        if self.terminal {
            eprint!("\r\x1b[K{line}");
            if let Ok(mut shown) = self.shown.lock() {
                *shown = true;
            }
        } else {
            eprintln!("{line}");
        }
    }

    fn finish(&self) {
        if self.terminal && self.shown.lock().is_ok_and(|s| *s) {
            eprint!("\r\x1b[K");
        }
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// `bench: database nocow, round 2/3, 10/24 done, 0:42 elapsed, about 1:03 left`.
pub fn progress_line(step: &Step, elapsed: Duration) -> String {
    if step.total == 0 {
        // The container part counts no steps of its own: its line says where it is.
        return format!("bench: {}, {} elapsed", step.phase, clock(elapsed));
    }
    let left = if step.done == 0 || step.done >= step.total {
        String::new()
    } else {
        let rest = elapsed.as_secs_f64() / step.done as f64 * (step.total - step.done) as f64;
        format!(", about {} left", clock(Duration::from_secs_f64(rest)))
    };
    format!(
        "bench: {}, round {}/{}, {}/{} done, {} elapsed{left}",
        step.phase,
        step.round,
        step.rounds,
        step.done,
        step.total,
        clock(elapsed)
    )
}

fn stat_cell(s: &Stat) -> String {
    format!("{} ({}–{})", number(s.median), number(s.min), number(s.max))
}

fn database_line(d: &DatabaseResult) -> String {
    format!(
        "  {:<9} {:<6} {:<21} {:<21} {:<21} {}",
        d.layout.as_str(),
        d.filesystem,
        stat_cell(&d.iops),
        stat_cell(&d.p50_us),
        stat_cell(&d.p99_us),
        stat_cell(&d.extents)
    )
}

fn compression_line(c: &CompressionResult) -> String {
    let share = if c.bytes > 0 {
        format!(" = {:.0}%", c.disk_bytes.median / c.bytes as f64 * 100.0)
    } else {
        String::new()
    };
    format!(
        "  {:<5} {:<15} {:<21} {:<21} {} ({}–{}){share}",
        c.property,
        c.data.as_str(),
        stat_cell(&c.mb_per_s),
        stat_cell(&c.cpu_s_per_gb),
        Human(c.disk_bytes.median as u64),
        Human(c.disk_bytes.min as u64),
        Human(c.disk_bytes.max as u64)
    )
}

/// The human summary: a table per part, median (min–max) per figure.
pub fn summary(r: &BenchReport, took: Duration) -> String {
    let mut out = String::new();
    let h = &r.host;
    let device = h.device.as_deref().map(|d| format!(" on {d}")).unwrap_or_default();
    out += &format!(
        "Measured in {} ({}{device}), {} rounds{}, in {}; median (min–max) of the rounds.\n",
        h.dir,
        h.filesystem,
        h.rounds,
        if h.quick { " (--quick)" } else { "" },
        clock(took)
    );
    if let Some(d) = r.database.first() {
        out += &format!(
            "\nDatabase-like I/O: 8 KiB random writes, each followed by fdatasync, into a {} file ({} writes a round)\n",
            Human(d.file_bytes),
            d.writes
        );
        out += &format!(
            "  {:<9} {:<6} {:<21} {:<21} {:<21} {}\n",
            "layout", "fs", "IOPS", "p50 µs", "p99 µs", "extents"
        );
        for d in &r.database {
            out += &database_line(d);
            out.push('\n');
        }
    }
    if let Some(c) = r.compression.first() {
        out += &format!(
            "\nCompression: {} written and fsynced a round; CPU is the busy time of all CPUs\n",
            Human(c.bytes)
        );
        out += &format!("  {:<5} {:<15} {:<21} {:<21} {}\n", "prop", "data", "MB/s", "CPU s/GB", "on disk");
        for c in &r.compression {
            out += &compression_line(c);
            out.push('\n');
        }
    }
    if let Some(first) = r.containers.first() {
        out += &format!(
            "\nContainers: Podman {}{} on a throwaway store per driver, an image of {} files; ms per operation\n",
            first.podman_version,
            first.runtime.as_deref().map(|r| format!(" with {r}")).unwrap_or_default(),
            first.image_files
        );
        out += &format!("  {:<9}", "operation");
        for d in &r.containers {
            out += &format!(" {:<21}", d.driver);
        }
        out = out.trim_end().to_string() + "\n";
        for op in first.operations.iter().map(|o| o.operation.as_str()) {
            let mut line = format!("  {op:<9}");
            for d in &r.containers {
                let cell = d.operations.iter().find(|o| o.operation == op).map(|o| stat_cell(&o.ms));
                line += &format!(" {:<21}", cell.unwrap_or_else(|| "-".into()));
            }
            out += line.trim_end();
            out.push('\n');
        }
    }
    if !r.skipped.is_empty() {
        out += "\nNot measured:\n";
        for s in &r.skipped {
            out += &format!("  {}: {}\n", s.what, s.why);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_says_where_the_run_stands_and_what_is_left() {
        let step = |done| Step { phase: "database nocow".into(), round: 2, rounds: 3, done, total: 24 };
        assert_eq!(
            progress_line(&step(12), Duration::from_secs(60)),
            "bench: database nocow, round 2/3, 12/24 done, 1:00 elapsed, about 1:00 left"
        );
        assert!(!progress_line(&step(0), Duration::ZERO).contains("left"));
    }

    #[test]
    fn the_summary_has_a_row_per_layout_and_combination_and_says_what_was_skipped() {
        use crate::bench::report::{BenchHost, DataKind, DatabaseLayout};
        let stat = |s: &[f64]| Stat::of(s).unwrap();
        let report = BenchReport {
            schema: SCHEMA,
            tool_version: "0.1.0".into(),
            taken_at: "20261130T000000Z".into(),
            host: BenchHost {
                dir: "/srv".into(),
                filesystem: "btrfs".into(),
                device: Some("/dev/vdb".into()),
                kernel: "6.1.0".into(),
                cpus: 2,
                quick: true,
                rounds: 3,
            },
            database: vec![DatabaseResult {
                layout: DatabaseLayout::CowZstd,
                filesystem: "btrfs".into(),
                file_bytes: 64 << 20,
                writes: 619,
                iops: stat(&[152.4, 149.0, 229.0]),
                p50_us: stat(&[3999.0]),
                p99_us: stat(&[27991.0]),
                extents: stat(&[1576.0, 1556.0, 2020.0]),
            }],
            compression: vec![CompressionResult {
                property: "zstd".into(),
                data: DataKind::Compressible,
                bytes: 64 << 20,
                mb_per_s: stat(&[205.0]),
                cpu_s_per_gb: stat(&[9.83]),
                disk_bytes: stat(&[16.0 * 1024.0 * 1024.0]),
            }],
            containers: ["overlay", "btrfs"]
                .iter()
                .zip([[1283.0, 1178.0, 1519.0], [311.0, 250.0, 359.0]])
                .map(|(driver, chmod)| crate::bench::report::DriverResult {
                    driver: driver.to_string(),
                    podman_version: "4.3.1".into(),
                    runtime: None,
                    image_files: 2001,
                    image_bytes: 1 << 22,
                    operations: vec![crate::bench::report::OperationResult {
                        operation: "chmod".into(),
                        ms: stat(&chmod),
                    }],
                })
                .collect(),
            skipped: not_measured(false, true),
        };
        let text = summary(&report, Duration::from_secs(57));
        assert!(
            text.contains("Containers: Podman 4.3.1 on a throwaway store per driver, an image of 2001 files"),
            "{text}"
        );
        let row = text.lines().find(|l| l.trim_start().starts_with("chmod")).expect("a chmod row");
        assert_eq!(row, "  chmod     1,283 (1,178–1,519)   311 (250–359)", "{text}");
        assert!(
            text.starts_with("Measured in /srv (btrfs on /dev/vdb), 3 rounds (--quick), in 0:57"),
            "{text}"
        );
        assert!(text.contains("64M file (619 writes a round)"), "{text}");
        let row = text.lines().find(|l| l.trim_start().starts_with("cow-zstd")).expect("a cow-zstd row");
        assert!(row.contains("152 (149–229)") && row.contains("1,576 (1,556–2,020)"), "{row}");
        let row = text.lines().find(|l| l.contains("compressible")).expect("a compression row");
        assert!(row.contains("zstd") && row.contains("9.8 (9.8–9.8)") && row.ends_with("= 25%"), "{row}");
        assert!(text.contains("containers: ") && text.contains("compare: no --compare-dir"), "{text}");
    }

    #[test]
    fn refusals_name_the_directory_and_what_to_do() {
        let e = existing_dir(Path::new("/nonexistent/podfs"), "--dir DIR").unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(e.to_string().contains("/nonexistent/podfs") && e.to_string().contains("--dir"), "{e}");
        let e = enough_space(Path::new("/"), u64::MAX).unwrap_err();
        assert_eq!(e.exit_code(), exit::ENVIRONMENT);
        assert!(e.to_string().contains("needs") && e.to_string().contains("free"), "{e}");
        assert!(writable_target(Path::new("/nonexistent/podfs/out.json")).is_err());
        assert!(writable_target(Path::new("/")).is_err());
        assert!(writable_target(Path::new("out.json")).is_ok());
    }
}
