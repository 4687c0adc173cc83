//! Progress of a copy on stderr: a bar redrawn in place (bytes, files, rate, time left)
//! when stderr is a terminal, a log line every few seconds otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LOG_EVERY: Duration = Duration::from_secs(5);
const DRAW_EVERY: Duration = Duration::from_millis(200);

pub struct Progress {
    what: String,
    started: Instant,
    tty: bool,
    last: Mutex<Option<Instant>>,
}

impl Progress {
    pub fn new(what: &str) -> Self {
        Progress {
            what: what.into(),
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            last: Mutex::new(None),
        }
    }

    /// Called by the copier with what it has done so far and the totals it measured.
    pub fn update(&self, p: &super::copy::Progress) {
        let (bytes, files) = (p.bytes, p.files);
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let every = if self.tty { DRAW_EVERY } else { LOG_EVERY };
        if last.is_some_and(|l| now.duration_since(l) < every) {
            return;
        }
        *last = Some(now);
        let line = line(p.total_bytes, p.total_files, bytes, files, self.started.elapsed());
        if self.tty {
            let width = 30usize;
            let done = (bytes as u128 * width as u128 / u128::from(p.total_bytes.max(1))) as usize;
            let bar = format!("{}{}", "#".repeat(done.min(width)), "-".repeat(width - done.min(width)));
            let _ = write!(std::io::stderr(), "\r\x1b[K{} [{bar}] {line}", self.what);
        } else {
            tracing::info!(target: "podfs::migrate::progress", what = %self.what, bytes, files, "{line}");
        }
    }

    pub fn finish(&self) {
        if self.tty && self.last.lock().map(|l| l.is_some()).unwrap_or(false) {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// `1.2 GiB / 4.0 GiB, 1200/5000 files, 85.0 MiB/s, 32 s left`.
pub fn line(total_bytes: u64, total_files: u64, bytes: u64, files: u64, elapsed: Duration) -> String {
    use crate::size::Human;
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = bytes as f64 / secs;
    let left = if rate > 0.0 && total_bytes > bytes {
        format!("{:.0} s left", (total_bytes - bytes) as f64 / rate)
    } else {
        "– left".into()
    };
    format!(
        "{} / {}, {files}/{total_files} files, {}/s, {left}",
        Human(bytes),
        Human(total_bytes),
        Human(rate as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_bytes_files_rate_and_time_left() {
        let l = line(100 << 20, 10, 50 << 20, 5, Duration::from_secs(10));
        assert!(l.contains("5/10 files") && l.contains("/s") && l.contains("10 s left"), "{l}");
    }
}
