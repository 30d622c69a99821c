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

use crate::outcome::PlayReport;

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
    let at = crate::clock::now();
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

/// The parts of a recorded host report that the `history` listing shows, read with types
/// (records written by older versions may lack some; they read as empty).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub status: String,
    pub files: Vec<FileSummary>,
    pub steps: Vec<StepSummary>,
    pub error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileSummary {
    pub rel: String,
    pub status: String,
    pub difference: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StepSummary {
    pub command: String,
}

impl Entry {
    pub fn summary(&self) -> Summary {
        Summary::deserialize(&self.report).unwrap_or_default()
    }
}
