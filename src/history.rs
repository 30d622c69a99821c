//! The local run history: one JSON line per host per run (apply, drift check, correction).
//!
//! An append-only JSON-lines file is the embedded store: nothing to install or run, readable
//! with `jq`, and every record is built from reports that are already masked, so it holds
//! hashes and masked diffs, never a secret. Default location:
//! `$SWITCHYARD_HISTORY`, else `$XDG_STATE_HOME/switchyard/history.jsonl`, else
//! `~/.local/state/switchyard/history.jsonl`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::run::PlayReport;

pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SWITCHYARD_HISTORY") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    base.join("switchyard/history.jsonl")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Seconds since the epoch.
    pub at: u64,
    pub who: String,
    /// `apply`, `check`, `drift`, `fix`, `verify`.
    pub kind: String,
    pub play: String,
    pub host: String,
    /// The host's full (masked) report.
    pub report: serde_json::Value,
}

/// Append one entry per host of every play.
pub fn record(path: &Path, kind: &str, plays: &[PlayReport]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut lines = String::new();
    let at = crate::state::now();
    let who = crate::state::who();
    for p in plays {
        for h in &p.hosts {
            let e = Entry {
                at,
                who: who.clone(),
                kind: kind.to_string(),
                play: p.play.clone(),
                host: h.host.clone(),
                report: serde_json::to_value(h).unwrap_or_default(),
            };
            lines.push_str(&serde_json::to_string(&e).unwrap_or_default());
            lines.push('\n');
        }
    }
    // One write with O_APPEND: concurrent runs do not interleave inside a record.
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(lines.as_bytes())
}

pub fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// `1h`, `30m`, `2d`, `45s` → seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    })
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` for an epoch second (no time-zone database needed).
pub fn iso(t: u64) -> String {
    let days = (t / 86400) as i64;
    let secs = t % 86400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_helpers() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_795_703_108), "2026-11-26T14:25:08Z");
        assert_eq!(parse_duration("15m"), Some(900));
        assert_eq!(parse_duration("2d"), Some(172_800));
        assert_eq!(parse_duration("x"), None);
    }
}
