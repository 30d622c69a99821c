//! Review summaries: a check run rendered for a pull-request comment (`plan --markdown`).
//! The saved plan that `apply --plan` enforces lives beside the plan ([`crate::engine::plan::saved`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::engine::outcome::{HostReport, HostStatus, PlayReport};
use crate::engine::plan::FileStatus;

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
            s.push_str(&host_row(h));
        }
        s.push_str(&allowed_and_diffs(p));
        s.push('\n');
    }
    s
}

/// One host's row of the table: its files (or its error), steps and pending steps.
fn host_row(h: &HostReport) -> String {
    let files: Vec<String> = h
        .files
        .iter()
        .filter(|f| f.status != FileStatus::Ok)
        .map(|f| match f.difference {
            Some(crate::engine::plan::Difference::Drift) => {
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
        format!("**{}**: {}", h.status.label(), table_cell(&e.to_string()))
    } else {
        files.join("<br>")
    };
    format!(
        "| {} | {} | {} | {} |\n",
        h.host,
        files,
        steps.join("<br>"),
        pend.join("<br>")
    )
}

/// Overruled lint rules and the diffs (identical diffs across hosts shown once).
fn allowed_and_diffs(p: &PlayReport) -> String {
    let mut s = String::new();
    // Overruled lint rules: a reviewer sees every one, with its reason.
    let allowed: Vec<String> = p
        .hosts
        .iter()
        .flat_map(|h| h.findings.iter().map(move |f| (h, f)))
        .filter_map(|(h, f)| {
            let why = f.allowed.as_ref()?;
            Some(format!(
                "- {} `{}:{}` **{}** allowed: {} ({})",
                h.host, f.file, f.line, f.check, why, f.message
            ))
        })
        .collect();
    if !allowed.is_empty() {
        let _ = writeln!(s, "\nLint rules allowed:\n\n{}", allowed.join("\n"));
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
            // A fence longer than any run of backticks in the diff: a PBX's line of ```
            // cannot close it and write markdown of its own into the review.
            let fence = "`".repeat(3.max(longest_run(&diff, '`') + 1));
            let _ = writeln!(s, "{}\n\n{fence}diff\n{}{fence}\n", whom.join(", "), diff);
        }
        s.push_str("</details>\n");
    }
    s
}

/// The longest run of `c` in `s`.
fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Text a host wrote (an error) made safe for one markdown table cell: no line break, no `|`
/// that would open a cell of its own, no HTML.
fn table_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace(['\n', '\r'], " ")
}
