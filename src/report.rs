//! Turning results into text for people and JSON for machines.
//!
//! Human text goes to stderr (host blocks as hosts finish, then a recap with failures
//! first); `--json` puts one machine-readable document on stdout. Nothing here sees a
//! secret: diffs and errors are masked before they reach a report.

use std::fmt::Write as _;

use serde::Serialize;

use crate::freeswitch::lint::{Finding, Severity};
use crate::plan::FileStatus;
use crate::run::{HostReport, HostStatus, Mode, PlayReport};

/// One host's block, printed when the host is done.
pub fn host_block(r: &HostReport, show_diff: bool, mode: Mode) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} [{}]{}",
        r.host,
        r.status.label(),
        if r.restart_pending {
            " (restart pending)"
        } else {
            ""
        }
    );
    if let Some(e) = &r.error {
        let _ = writeln!(s, "  error     {e}");
    }
    if let Some(rb) = &r.rollback {
        let _ = writeln!(s, "  rollback  {rb}");
    }
    for f in &r.findings {
        let sev = if f.severity == Severity::Error {
            "lint error"
        } else {
            "lint warn "
        };
        let _ = writeln!(s, "  {sev} {}:{}: {}", f.file, f.line, f.message);
    }
    for f in &r.files {
        let mut line = format!("  {:<9} {}", f.status.to_string(), f.rel);
        if !f.meta_changes.is_empty() {
            let _ = write!(line, " ({})", f.meta_changes.join(", "));
        }
        let _ = writeln!(s, "{line}");
    }
    let verb = if mode == Mode::Check {
        "would run"
    } else {
        "ran"
    };
    for st in &r.steps {
        let mark = if st.ok { "" } else { "  FAILED" };
        let _ = writeln!(s, "  {verb:<9} {}  # {}{mark}", st.command, st.reason);
        if !st.ok && !st.output.is_empty() {
            for l in st.output.lines() {
                let _ = writeln!(s, "              {l}");
            }
        }
    }
    for p in &r.pending {
        let _ = writeln!(
            s,
            "  pending   {}  # {} (not allowed: pass `--allow {}` to run it)",
            p.action,
            p.reason,
            match p.disruption {
                crate::playbook::Disruption::Profile => "profile",
                _ => "restart",
            }
        );
    }
    for g in &r.gateways {
        let _ = writeln!(
            s,
            "  gateway   {} {} {}{}",
            g.name,
            if g.state == "INVALID" {
                "Invalid Gateway!"
            } else {
                &g.state
            },
            g.status,
            g.retry
                .as_deref()
                .map(|x| format!(" (retry {x})"))
                .unwrap_or_default()
        );
    }
    if show_diff {
        for f in &r.files {
            if !f.diff.is_empty() {
                s.push_str(&f.diff);
                if !f.diff.ends_with('\n') {
                    s.push('\n');
                }
            }
        }
    }
    s
}

/// The end-of-run recap: one line per host, failures first.
pub fn recap(plays: &[PlayReport]) -> String {
    let mut s = String::new();
    for p in plays {
        let mode = match p.mode {
            Mode::Check => "check",
            Mode::Apply => "apply",
            Mode::Verify => "verify",
        };
        let _ = writeln!(s, "\nRECAP {mode}: {} ({} hosts)", p.play, p.hosts.len());
        let mut hosts: Vec<&HostReport> = p.hosts.iter().collect();
        hosts.sort_by_key(|h| {
            let rank = match h.status {
                HostStatus::Failed | HostStatus::Unreachable | HostStatus::RolledBack => 0,
                HostStatus::NotRun => 1,
                HostStatus::Changed => 2,
                HostStatus::Ok => 3,
            };
            (rank, h.batch)
        });
        let width = hosts.iter().map(|h| h.host.len()).max().unwrap_or(4).max(4);
        for h in hosts {
            let count = |st: FileStatus| h.files.iter().filter(|f| f.status == st).count();
            let mut line = format!(
                "  {:<width$}  {:<11}  ok={} changed={} created={}",
                h.host,
                h.status.label(),
                count(FileStatus::Ok),
                count(FileStatus::Changed),
                count(FileStatus::Created)
            );
            if h.restart_pending {
                line.push_str("  restart pending");
            }
            if let Some(e) = &h.error {
                let first = e.lines().next().unwrap_or("");
                let _ = write!(line, "  {}", truncate(first, 160));
            }
            let _ = writeln!(s, "{line}");
        }
        let count = |st: HostStatus| p.hosts.iter().filter(|h| h.status == st).count();
        let _ = writeln!(
            s,
            "  total: ok={} changed={} failed={} unreachable={} rolled_back={} not_run={}",
            count(HostStatus::Ok),
            count(HostStatus::Changed),
            count(HostStatus::Failed),
            count(HostStatus::Unreachable),
            count(HostStatus::RolledBack),
            count(HostStatus::NotRun)
        );
        if let Some(a) = &p.aborted {
            let changed: Vec<&str> = p
                .hosts
                .iter()
                .filter(|h| h.status == HostStatus::Changed)
                .map(|h| h.host.as_str())
                .collect();
            let failed: Vec<&str> = p
                .hosts
                .iter()
                .filter(|h| h.status.is_failure())
                .map(|h| h.host.as_str())
                .collect();
            let untouched: Vec<&str> = p
                .hosts
                .iter()
                .filter(|h| h.status == HostStatus::NotRun)
                .map(|h| h.host.as_str())
                .collect();
            let _ = writeln!(s, "  ROLLOUT ABORTED: {a}");
            let _ = writeln!(s, "    changed:       {}", list(&changed));
            let _ = writeln!(s, "    failed:        {}", list(&failed));
            let _ = writeln!(s, "    never touched: {}", list(&untouched));
        }
    }
    s
}

fn list(v: &[&str]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

pub fn findings(f: &[Finding]) -> String {
    let mut s = String::new();
    for x in f {
        let _ = writeln!(s, "{x}");
    }
    let e = f.iter().filter(|x| x.severity == Severity::Error).count();
    let _ = writeln!(s, "{e} error(s), {} warning(s)", f.len() - e);
    s
}

#[derive(Serialize)]
pub struct RunJson<'a> {
    pub switchyard: &'static str,
    pub plays: &'a [PlayReport],
}

pub fn json(plays: &[PlayReport]) -> String {
    serde_json::to_string_pretty(&RunJson {
        switchyard: env!("CARGO_PKG_VERSION"),
        plays,
    })
    .expect("reports serialize")
}
