//! Reviewed plans: a check run saved to a file (`switchyard plan -o`) and applied later
//! exactly as reviewed (`apply --plan`).
//!
//! A plan file is the JSON report of a check run: hashes, masked diffs and reload steps,
//! never content or secrets, so it can be posted to CI. `apply --plan` re-renders from the
//! same inputs and refuses, per host, when what it would write differs from what was
//! reviewed, or when the host changed since the plan was made.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{FilePlan, FileStatus};

#[derive(Debug, Deserialize)]
struct RawPlan {
    plays: Vec<RawPlay>,
}

#[derive(Debug, Deserialize)]
struct RawPlay {
    hosts: Vec<RawHost>,
}

#[derive(Debug, Deserialize)]
struct RawHost {
    host: String,
    files: Vec<RawFile>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    path: String,
    status: String,
    old_sha256: Option<String>,
    new_sha256: String,
}

/// Why `apply --plan FILE` cannot use the file.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error(transparent)]
    Read(#[from] crate::inputs::source::SourceError),
    #[error("{}: not a switchyard plan: {source}", path.display())]
    NotAPlan {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What was reviewed: host → path → (hash before, hash after) for every file that differed.
#[derive(Debug, Clone, Default)]
pub struct SavedPlan {
    pub hosts: BTreeMap<String, BTreeMap<String, (Option<String>, String)>>,
}

impl SavedPlan {
    pub fn load(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        let text = crate::inputs::source::read_text(path)?;
        let raw: RawPlan =
            serde_json::from_str(&text).map_err(|source| SavedPlanError::NotAPlan {
                path: path.to_path_buf(),
                source,
            })?;
        let mut hosts: BTreeMap<String, BTreeMap<String, (Option<String>, String)>> =
            BTreeMap::new();
        for p in raw.plays {
            for h in p.hosts {
                let files = hosts.entry(h.host).or_default();
                for f in h.files.into_iter().filter(|f| f.status != "ok") {
                    files.insert(f.path, (f.old_sha256, f.new_sha256));
                }
            }
        }
        Ok(SavedPlan { hosts })
    }

    /// Why this host's current plan is not the reviewed one, if it is not.
    pub fn refusal(&self, host: &str, files: &[FilePlan]) -> Option<String> {
        let Some(reviewed) = self.hosts.get(host) else {
            return Some("host is not in the reviewed plan".into());
        };
        let mut problems = Vec::new();
        for f in files.iter().filter(|f| f.status != FileStatus::Ok) {
            // Compared as the plan file has them: keyed digests for secret-bearing files.
            let new = crate::digest::published(&f.new_sha256, f.secret);
            let old = f
                .old_sha256
                .as_deref()
                .map(|o| crate::digest::published(o, f.secret));
            match reviewed.get(&f.path) {
                None => problems.push(format!(
                    "{} would change but is not in the reviewed plan",
                    f.rel
                )),
                Some((_, reviewed_new)) if *reviewed_new != new => problems.push(format!(
                    "{}: the inputs changed since review (it would now be written differently)",
                    f.rel
                )),
                Some((reviewed_old, _)) if *reviewed_old != old => problems.push(format!(
                    "{}: changed on the host since the plan was made",
                    f.rel
                )),
                Some(_) => {}
            }
        }
        (!problems.is_empty()).then(|| format!("refused: {}", problems.join("; ")))
    }
}
