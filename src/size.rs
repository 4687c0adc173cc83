//! Byte sizes as admins write them: `512M`, `1.5T`, `20GiB`, or a plain number of bytes.

use std::fmt;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;
pub const PIB: u64 = 1 << 50;

/// Parses a size. Units are binary (K = 1024), as in `truncate`, disko and btrfs-progs;
/// `KB`/`KiB`, `MB`/`MiB`, … are accepted as spellings of the same units.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty size".into());
    }
    if t.starts_with('-') {
        return Err(format!("size `{text}` is negative"));
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => KIB,
        "M" | "MB" | "MIB" => MIB,
        "G" | "GB" | "GIB" => GIB,
        "T" | "TB" | "TIB" => TIB,
        "P" | "PB" | "PIB" => PIB,
        _ => return Err(format!("unknown size unit `{unit}` in `{text}` (use K, M, G, T or P)")),
    };
    let value: f64 =
        num.parse().map_err(|_| format!("`{text}` is not a size (write e.g. 512M, 20G, 1.5T)"))?;
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("size `{text}` is too large"));
    }
    Ok(bytes.round() as u64)
}

/// A size for people: the largest binary unit that keeps one decimal meaningful.
pub fn human(bytes: u64) -> String {
    const UNITS: [(u64, &str); 5] = [(PIB, "P"), (TIB, "T"), (GIB, "G"), (MIB, "M"), (KIB, "K")];
    for (mult, unit) in UNITS {
        if bytes >= mult {
            let v = bytes as f64 / mult as f64;
            return if v >= 100.0 || (v.fract() < 0.05) {
                format!("{v:.0}{unit}")
            } else {
                format!("{v:.1}{unit}")
            };
        }
    }
    format!("{bytes}B")
}

/// A `Display` wrapper for [`human`].
pub struct Human(pub u64);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        assert_eq!(parse_size("512M").unwrap(), 512 * MIB);
        assert_eq!(parse_size("1.5T").unwrap(), 3 * TIB / 2);
        assert_eq!(parse_size("20GiB").unwrap(), 20 * GIB);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size(" 2 g ").unwrap(), 2 * GIB);
    }

    #[test]
    fn rejects_nonsense() {
        assert!(parse_size("-1G").unwrap_err().contains("negative"));
        assert!(parse_size("12X").unwrap_err().contains("unit"));
        assert!(parse_size("").is_err());
        assert!(parse_size("1.2.3G").is_err());
        assert!(parse_size("99999999999P").unwrap_err().contains("too large"));
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(human(512 * MIB), "512M");
        assert_eq!(human(3 * TIB / 2), "1.5T");
        assert_eq!(human(100), "100B");
    }
}
