//! `bench --svg`: the report drawn as one self-contained SVG for a person to read. One
//! panel per group of figures, a bar per option at its median with a whisker from the
//! lowest to the highest round, the value written above it, axes with units, and a title
//! with the host's facts. Written by hand: a chart of bars needs no library.

use super::report::{BenchReport, Stat, number};
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const HEADER: f64 = 74.0;
/// A panel: its title, the plot, and two lines of labels under the bars.
const PANEL: f64 = 270.0;
const PLOT_TOP: f64 = 34.0;
const PLOT: f64 = 180.0;
const COLORS: [&str; 6] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];

/// One bar: what it is (two short lines), its figure, and the series it is coloured by.
#[derive(Debug, Clone)]
struct Bar<'a> {
    label: String,
    sub: String,
    stat: &'a Stat,
    series: usize,
}

#[derive(Debug, Clone)]
struct Panel<'a> {
    title: String,
    unit: &'static str,
    bars: Vec<Bar<'a>>,
}

/// Escapes text for SVG element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^n) at or above
/// `v`: the top of an axis, close enough above the tallest bar to leave the bars readable.
fn axis_top(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 || v.is_infinite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|t| *t >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * p)
}

fn panels(report: &BenchReport) -> Vec<Panel<'_>> {
    let mut out = Vec::new();
    let database = |f: fn(&super::report::DatabaseResult) -> &Stat| {
        report
            .database
            .iter()
            .enumerate()
            .map(|(i, d)| Bar {
                label: d.layout.as_str().into(),
                sub: d.filesystem.clone(),
                stat: f(d),
                series: i,
            })
            .collect::<Vec<_>>()
    };
    if !report.database.is_empty() {
        let size = report.database.first().map(|d| d.file_bytes >> 20).unwrap_or_default();
        out.push(Panel {
            title: format!("Database-like I/O: synced 8 KiB random writes per second ({size} MiB file)"),
            unit: "IOPS",
            bars: database(|d| &d.iops),
        });
        out.push(Panel {
            title: "Database-like I/O: p99 latency of write + fdatasync".into(),
            unit: "µs",
            bars: database(|d| &d.p99_us),
        });
        out.push(Panel {
            title: "Database-like I/O: extents of the file after a round (FIEMAP)".into(),
            unit: "extents",
            bars: database(|d| &d.extents),
        });
    }
    if !report.compression.is_empty() {
        out.push(Panel {
            title: "Compression: write + fsync throughput".into(),
            unit: "MB/s",
            bars: report
                .compression
                .iter()
                .map(|c| Bar {
                    label: format!("property {}", c.property),
                    sub: c.data.as_str().into(),
                    stat: &c.mb_per_s,
                    series: usize::from(c.property != "zstd"),
                })
                .collect(),
        });
    }
    if !report.containers.is_empty() {
        out.push(Panel {
            title: "Podman operations: time per operation".into(),
            unit: "ms",
            bars: report
                .containers
                .iter()
                .enumerate()
                .flat_map(|(i, d)| {
                    d.operations.iter().map(move |o| Bar {
                        label: o.operation.clone(),
                        sub: d.driver.clone(),
                        stat: &o.ms,
                        series: i,
                    })
                })
                .collect(),
        });
    }
    out
}

fn title_lines(report: &BenchReport) -> (String, String) {
    let h = &report.host;
    let device = h.device.as_deref().map(|d| format!(" on {d}")).unwrap_or_default();
    let rounds = format!("{} round{}", h.rounds, if h.rounds == 1 { "" } else { "s" });
    (
        format!("Storage measured in {} ({}{device})", h.dir, h.filesystem),
        format!(
            "kernel {} · {} CPUs · {} · {}{} · podman-btrfs-advise {}",
            h.kernel,
            h.cpus,
            report.taken_at,
            rounds,
            if h.quick { " (--quick)" } else { "" },
            report.tool_version
        ),
    )
}

/// The SVG document of `report`.
pub fn chart(report: &BenchReport) -> String {
    let panels = panels(report);
    let height = HEADER + PANEL * panels.len().max(1) as f64 + 10.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let (title, facts) = title_lines(report);
    let _ =
        writeln!(s, r#"<text x="{LEFT}" y="26" font-size="17" font-weight="bold">{}</text>"#, escape(&title));
    let _ = writeln!(s, r##"<text x="{LEFT}" y="46" fill="#444">{}</text>"##, escape(&facts));
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="64" fill="#444">Bars: median of the rounds; whiskers: lowest to highest round.</text>"##
    );
    if panels.is_empty() {
        let _ = writeln!(s, r#"<text x="{LEFT}" y="{}">No figures in this report.</text>"#, HEADER + 30.0);
    }
    for (i, panel) in panels.iter().enumerate() {
        draw_panel(&mut s, panel, HEADER + PANEL * i as f64);
    }
    s.push_str("</svg>\n");
    s
}

fn draw_panel(s: &mut String, panel: &Panel, top: f64) {
    let plot_top = top + PLOT_TOP;
    let bottom = plot_top + PLOT;
    let right = WIDTH - RIGHT;
    let highest = panel.bars.iter().map(|b| b.stat.max.max(b.stat.median)).fold(0.0, f64::max);
    let axis = axis_top(highest);
    let y = |v: f64| bottom - (v.max(0.0) / axis).min(1.0) * PLOT;
    let _ = writeln!(s, r#"<g class="panel">"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="{}" font-size="14" font-weight="bold">{}</text>"#,
        top + 20.0,
        escape(&panel.title)
    );
    // The axis: four steps from 0 to its top, with grid lines.
    for k in 0..=4 {
        let v = axis * f64::from(k) / 4.0;
        let at = y(v);
        let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{at:.1}" x2="{right}" y2="{at:.1}" stroke="#ddd"/>"##);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            at + 4.0,
            number(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle" class="unit">{}</text>"#,
        plot_top + PLOT / 2.0,
        escape(panel.unit)
    );
    let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{plot_top}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>"##);
    let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>"##);
    let slot = (right - LEFT) / panel.bars.len().max(1) as f64;
    let width = (slot * 0.6).min(70.0);
    for (i, bar) in panel.bars.iter().enumerate() {
        let center = LEFT + slot * (i as f64 + 0.5);
        let (top_of_bar, st) = (y(bar.stat.median), bar.stat);
        let label = format!("{} {}", bar.label, bar.sub);
        let _ = writeln!(
            s,
            r#"<rect class="bar" data-label="{}" x="{:.1}" y="{top_of_bar:.1}" width="{width:.1}" height="{:.1}" fill="{}"><title>{}: {} {} (min {}, max {})</title></rect>"#,
            escape(&label),
            center - width / 2.0,
            bottom - top_of_bar,
            COLORS[bar.series % COLORS.len()],
            escape(&label),
            number(st.median),
            escape(panel.unit),
            number(st.min),
            number(st.max)
        );
        let (lo, hi) = (y(st.min), y(st.max));
        let cap = width / 4.0;
        let _ = writeln!(
            s,
            r##"<path class="whisker" d="M{center:.1} {lo:.1}V{hi:.1}M{:.1} {lo:.1}H{:.1}M{:.1} {hi:.1}H{:.1}" stroke="#222" fill="none"/>"##,
            center - cap,
            center + cap,
            center - cap,
            center + cap
        );
        let _ = writeln!(
            s,
            r#"<text class="value" x="{center:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            hi.min(top_of_bar) - 5.0,
            number(st.median)
        );
        let _ = writeln!(
            s,
            r#"<text class="label" x="{center:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            bottom + 16.0,
            escape(&bar.label)
        );
        let _ = writeln!(
            s,
            r##"<text class="label" x="{center:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            bottom + 31.0,
            escape(&bar.sub)
        );
    }
    let _ = writeln!(s, "</g>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::*;

    fn stat(samples: &[f64]) -> Stat {
        Stat::of(samples).unwrap()
    }

    fn report() -> BenchReport {
        let db = |layout, fs: &str, iops: f64, extents: f64| DatabaseResult {
            layout,
            filesystem: fs.into(),
            file_bytes: 64 << 20,
            writes: 1000,
            iops: stat(&[iops, iops * 0.9, iops * 1.1]),
            p50_us: stat(&[400.0]),
            p99_us: stat(&[900.0, 1200.0]),
            extents: stat(&[extents]),
        };
        let comp = |property: &str, data, mbs: f64| CompressionResult {
            property: property.into(),
            data,
            bytes: 64 << 20,
            mb_per_s: stat(&[mbs, mbs + 10.0]),
            cpu_s_per_gb: stat(&[1.0]),
            disk_bytes: stat(&[1e6]),
        };
        BenchReport {
            schema: SCHEMA,
            tool_version: "0.1.0".into(),
            taken_at: "20261130T092741Z".into(),
            host: BenchHost {
                dir: "/srv/<a & b>".into(),
                filesystem: "btrfs".into(),
                device: Some("/dev/loop0".into()),
                kernel: "6.1.0".into(),
                cpus: 2,
                quick: true,
                rounds: 3,
            },
            database: vec![
                db(DatabaseLayout::Cow, "btrfs", 800.0, 1900.0),
                db(DatabaseLayout::CowZstd, "btrfs", 700.0, 2400.0),
                db(DatabaseLayout::Nocow, "btrfs", 1500.0, 3.0),
                db(DatabaseLayout::Compare, "ext4", 2500.0, 2.0),
            ],
            compression: vec![
                comp("zstd", DataKind::Compressible, 300.0),
                comp("none", DataKind::Compressible, 200.0),
                comp("zstd", DataKind::Incompressible, 180.0),
                comp("none", DataKind::Incompressible, 190.0),
            ],
            containers: vec![],
            skipped: vec![],
        }
    }

    fn bars(doc: &roxmltree::Document) -> Vec<(String, f64)> {
        doc.descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("bar"))
            .map(|n| {
                (
                    n.attribute("data-label").unwrap().to_string(),
                    n.attribute("height").unwrap().parse().unwrap(),
                )
            })
            .collect()
    }

    fn texts(doc: &roxmltree::Document) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(String::from))
            .collect()
    }

    #[test]
    fn the_chart_is_xml_with_a_bar_per_option_and_labels() {
        let svg = chart(&report());
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let bars = bars(&doc);
        // IOPS, p99 and extents for four layouts, throughput for four combinations.
        assert_eq!(bars.len(), 3 * 4 + 4, "{bars:?}");
        let texts = texts(&doc);
        for want in [
            "cow",
            "cow-zstd",
            "nocow",
            "compare",
            "ext4",
            "property zstd",
            "incompressible",
            "IOPS",
            "µs",
            "MB/s",
            "extents",
        ] {
            assert!(texts.iter().any(|t| t == want), "no text {want:?} in {texts:?}");
        }
        // The title keeps the directory's characters, escaped in the file.
        assert!(texts.iter().any(|t| t.contains("/srv/<a & b>")), "{texts:?}");
        assert!(svg.contains("/srv/&lt;a &amp; b&gt;"));
        // Heights follow the medians: NOCOW's IOPS bar is taller than CoW's, its extents bar shorter.
        let h = |label: &str, nth: usize| bars.iter().filter(|(l, _)| l == label).nth(nth).unwrap().1;
        assert!(h("nocow btrfs", 0) > h("cow btrfs", 0));
        assert!(h("nocow btrfs", 2) < h("cow btrfs", 2) / 100.0);
        // Every bar fits its plot.
        assert!(bars.iter().all(|(_, height)| *height >= 0.0 && *height <= PLOT), "{bars:?}");
    }

    #[test]
    fn container_operations_get_a_panel_when_measured() {
        let mut r = report();
        let without = chart(&r);
        assert!(!texts(&roxmltree::Document::parse(&without).unwrap()).iter().any(|t| t.contains("Podman")));
        r.containers = ["overlay", "btrfs"]
            .iter()
            .map(|d| DriverResult {
                driver: (*d).into(),
                podman_version: "4.3.1".into(),
                runtime: None,
                image_files: 10,
                image_bytes: 100,
                operations: ["import", "create", "rm"]
                    .iter()
                    .map(|o| OperationResult { operation: (*o).into(), ms: stat(&[50.0, 60.0]) })
                    .collect(),
            })
            .collect();
        let svg = chart(&r);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert_eq!(bars(&doc).len(), 16 + 6);
        assert!(texts(&doc).iter().any(|t| t.contains("Podman operations")));
        assert!(bars(&doc).iter().any(|(l, _)| l == "import btrfs"));
    }

    #[test]
    fn an_empty_report_still_draws_and_axes_are_round() {
        let mut r = report();
        r.database.clear();
        r.compression.clear();
        let svg = chart(&r);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert!(bars(&doc).is_empty());
        assert!(texts(&doc).iter().any(|t| t.contains("No figures")));
        assert_eq!(
            [axis_top(0.0), axis_top(7.0), axis_top(1501.0), axis_top(2040.0)],
            [1.0, 8.0, 2000.0, 2500.0]
        );
    }
}
