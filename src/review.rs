//! Reviewed plans: a check run saved to a file, rendered for a pull request, and applied
//! later exactly as reviewed.
//!
//! A plan file is the JSON report of a check run: hashes, masked diffs and reload steps,
//! never content or secrets, so it can be posted to CI. `apply --plan` re-renders from the
//! same inputs and refuses, per host, when what it would write differs from what was
//! reviewed, or when the host changed since the plan was made.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::plan::{FilePlan, FileStatus};
use crate::run::{HostStatus, PlayReport};

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

/// What was reviewed: host → path → (hash before, hash after) for every file that differed.
#[derive(Debug, Clone, Default)]
pub struct SavedPlan {
    pub hosts: BTreeMap<String, BTreeMap<String, (Option<String>, String)>>,
}

impl SavedPlan {
    pub fn load(path: &Path) -> Result<SavedPlan, String> {
        let text = crate::source::read_text(path).map_err(|e| e.to_string())?;
        let raw: RawPlan = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a switchyard plan: {e}", path.display()))?;
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

/// A review-ready summary for a pull-request comment.
pub fn markdown(plays: &[PlayReport]) -> String {
    let mut s = String::from("## switchyard plan\n\n");
    for p in plays {
        let changed: Vec<_> = p
            .hosts
            .iter()
            .filter(|h| h.status == HostStatus::Changed)
            .collect();
        let failed: Vec<_> = p.hosts.iter().filter(|h| h.status.is_failure()).collect();
        let pending = p.hosts.iter().filter(|h| h.restart_pending).count();
        let _ = writeln!(
            s,
            "### {}\n\n{} hosts: **{} to change**, {} unchanged, {} failed, {} with a restart pending\n",
            p.play,
            p.hosts.len(),
            changed.len(),
            p.hosts.iter().filter(|h| h.status == HostStatus::Ok).count(),
            failed.len(),
            pending
        );
        if !changed.is_empty() || !failed.is_empty() || pending > 0 {
            s.push_str("| host | files | FreeSWITCH steps | pending |\n|---|---|---|---|\n");
        }
        for h in p
            .hosts
            .iter()
            .filter(|h| h.status != HostStatus::Ok || h.restart_pending)
        {
            let files: Vec<String> = h
                .files
                .iter()
                .filter(|f| f.status != FileStatus::Ok)
                .map(|f| match f.difference {
                    Some(crate::plan::Difference::Drift) => {
                        format!("`{}` {} (**drift**: edited on the host)", f.rel, f.status)
                    }
                    _ => format!("`{}` {}", f.rel, f.status),
                })
                .collect();
            let steps: Vec<String> = h
                .steps
                .iter()
                .map(|st| format!("`{}`", st.command))
                .collect();
            let pend: Vec<String> = h
                .pending
                .iter()
                .map(|st| format!("`{}`", st.action))
                .collect();
            let files = if let Some(e) = &h.error {
                format!("**{}**: {}", h.status.label(), e)
            } else {
                files.join("<br>")
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                h.host,
                files,
                steps.join("<br>"),
                pend.join("<br>")
            );
        }
        // Diffs: identical diffs across hosts are shown once.
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for h in &p.hosts {
            for f in h.files.iter().filter(|f| !f.diff.is_empty()) {
                let generic = f.diff.replace(&format!("{}:", h.host), "HOST:");
                seen.entry(generic)
                    .or_default()
                    .push(format!("{} `{}`", h.host, f.rel));
            }
        }
        if !seen.is_empty() {
            s.push_str("\n<details><summary>Diffs (secrets masked)</summary>\n\n");
            for (diff, whom) in seen {
                let _ = writeln!(s, "{}\n\n```diff\n{}```\n", whom.join(", "), diff);
            }
            s.push_str("</details>\n");
        }
        s.push('\n');
    }
    s
}
