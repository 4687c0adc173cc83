//! Plans a 10,000-workload spec and prints how long each stage takes.
//!
//! Run: `cargo bench --bench plan` (add `-- N` for another workload count). Figures, not
//! assertions: the target for 10,000 workloads is under 200 ms end to end.

use podfs::decide::{Strategy, decide};
use podfs::inventory::{Source, spec};
use std::fmt::Write;
use std::time::{Duration, Instant};

const IMAGES: &[(&str, &str)] = &[
    ("docker.io/library/postgres:16", "/var/lib/postgresql/data"),
    ("docker.io/library/redis:7", "/data"),
    ("docker.io/library/nginx:1.27", "/usr/share/nginx/html"),
    ("ghcr.io/acme/api:1.4", "/srv/data"),
    ("docker.io/grafana/loki:3", "/loki"),
    ("docker.io/jellyfin/jellyfin:10.9", "/media"),
    ("quay.io/buildah/stable:v1", "/var/lib/containers"),
    ("ghcr.io/acme/report:2", "/work"),
];

/// A spec with `n` workloads cycling through common images, sizes and lifetimes.
pub fn spec_text(n: usize) -> String {
    let mut t = String::from(
        "[host]\nname = \"bench\"\ndisk = \"/dev/nvme0n1\"\nmode = \"data-disk\"\ndisk_size = \"64T\"\nssd = true\n",
    );
    for i in 0..n {
        let (image, mount) = IMAGES[i % IMAGES.len()];
        let lifetime = if i % 5 == 0 { "short" } else { "long" };
        let _ = write!(
            t,
            "\n[[workload]]\nname = \"w{i}\"\nimage = \"{image}\"\ncount = {}\nimage_size = \"{}M\"\n\
             volume_size = \"{}G\"\nlifetime = \"{lifetime}\"\nmounts = [\"{mount}\"]\n",
            1 + i % 3,
            100 + i % 700,
            1 + i % 20,
        );
    }
    t
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[0], samples[samples.len() / 2])
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let text = spec_text(n);
    let parse = || spec::parse(&text, "bench.toml", Source::Spec("bench.toml".into())).unwrap();
    let inventory = parse();
    let profile = podfs::classify::classify(&inventory);
    let plan = decide(&profile, Strategy::Balanced);
    let runs = 10;
    println!(
        "plan benchmark: {n} workloads, {} KiB spec, {runs} runs each (min / median)",
        text.len() / 1024
    );
    let rows = [
        ("toml_edit alone", time(runs, || toml_edit::Document::parse(text.clone()).unwrap())),
        ("parse spec", time(runs, parse)),
        ("classify", time(runs, || podfs::classify::classify(&inventory))),
        ("decide", time(runs, || decide(&profile, Strategy::Balanced))),
        ("render 4 files", time(runs, || podfs::render::render_all(&plan, "bench"))),
        (
            "end to end",
            time(runs, || {
                let inv = parse();
                let plan = decide(&podfs::classify::classify(&inv), Strategy::Balanced);
                podfs::render::render_all(&plan, "bench")
            }),
        ),
    ];
    for (name, (min, median)) in rows {
        println!("  {name:<16} {:>9.2} ms {:>9.2} ms", min.as_secs_f64() * 1e3, median.as_secs_f64() * 1e3);
    }
}
