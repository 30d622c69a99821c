//! Turning results into text for people and JSON for machines.
//!
//! Human text goes to stderr (host blocks as hosts finish, then a recap with failures
//! first); `--json` puts one machine-readable document on stdout. Nothing here sees a
//! secret: diffs and errors are masked before they reach a report.

use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::outcome::{HostReport, HostStatus, Mode, PlayReport};
use crate::engine::plan::FileStatus;
use crate::freeswitch::lint::{Finding, Severity};
use crate::printable::{printable, printable_block};

/// Colour on the terminal: statuses and diff lines. Decided once per run by the command
/// line (`--color auto|always|never`, `NO_COLOR`), never by the report itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A host status, coloured as people expect: green ok, yellow changed, red failures.
    pub fn status(self, s: HostStatus) -> String {
        let code = match s {
            HostStatus::Ok => "32",
            HostStatus::Changed => "33",
            HostStatus::NotRun => "2",
            _ => "1;31",
        };
        self.paint(code, s.label())
    }

    /// A unified diff with `+` green, `-` red, `~` (secret changed) yellow, `@@` cyan.
    pub fn diff(self, d: &str) -> String {
        if !self.color {
            return d.to_string();
        }
        d.split_inclusive('\n')
            .map(|l| {
                let (body, nl) = match l.strip_suffix('\n') {
                    Some(b) => (b, "\n"),
                    None => (l, ""),
                };
                let code = if body.starts_with("+++") || body.starts_with("---") {
                    "1"
                } else if body.starts_with('+') {
                    "32"
                } else if body.starts_with('-') {
                    "31"
                } else if body.starts_with('~') {
                    "33"
                } else if body.starts_with("@@") {
                    "36"
                } else {
                    ""
                };
                if code.is_empty() {
                    l.to_string()
                } else {
                    format!("{}{nl}", self.paint(code, body))
                }
            })
            .collect()
    }

    pub fn failed(self, text: &str) -> String {
        self.paint("1;31", text)
    }
}

/// One host's block, printed when the host is done.
pub fn host_block(r: &HostReport, show_diff: bool, mode: Mode, style: Style) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} [{}]{}",
        r.host,
        style.status(r.status),
        if r.restart_pending {
            " (restart pending)"
        } else {
            ""
        }
    );
    // Errors, answers, findings and diffs quote what a PBX said or holds: escaped, and
    // indented so that no line of theirs can pass for a host's header (src/printable.rs).
    if let Some(e) = &r.error {
        let _ = writeln!(
            s,
            "  {}     {}",
            style.failed("error"),
            printable_block(&e.to_string(), "            ")
        );
    }
    if let Some(rb) = &r.rollback {
        let _ = writeln!(s, "  rollback  {}", printable_block(rb, "            "));
    }
    for f in &r.findings {
        let sev = match (&f.allowed, f.severity) {
            (Some(_), _) => "lint allow",
            (None, Severity::Error) => "lint error",
            (None, Severity::Warning) => "lint warn ",
        };
        let _ = writeln!(
            s,
            "  {sev} {}:{}: [{}] {}",
            printable(&f.file),
            f.line,
            f.check,
            printable_block(&f.message, "             ")
        );
        if let Some(why) = &f.allowed {
            let _ = writeln!(s, "             allowed: {why}");
        }
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
        let mark = if st.ok {
            String::new()
        } else {
            format!("  {}", style.failed("FAILED"))
        };
        let _ = writeln!(s, "  {verb:<9} {}  # {}{mark}", st.command, st.reason);
        if !st.ok && !st.output.is_empty() {
            for l in st.output.lines() {
                let _ = writeln!(s, "              {}", printable_block(l, ""));
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
                crate::freeswitch::reload::Disruption::Profile => "profile",
                _ => "restart",
            }
        );
    }
    for g in &r.gateways {
        let _ = writeln!(
            s,
            "  gateway   {} {} {}{}",
            printable(&g.name),
            if g.state == "INVALID" {
                "Invalid Gateway!".into()
            } else {
                printable(&g.state)
            },
            printable(&g.status),
            g.retry
                .as_deref()
                .map(|x| format!(" (retry {})", printable(x)))
                .unwrap_or_default()
        );
    }
    if show_diff {
        for f in &r.files {
            if !f.diff.is_empty() {
                s.push_str(&style.diff(&printable_block(&f.diff, "")));
                if !f.diff.ends_with('\n') {
                    s.push('\n');
                }
            }
        }
    }
    s
}

/// `1 host`, `3 hosts`.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The end-of-run recap: one line per host, failures first, then one line of host totals.
///
/// Host lines count that host's managed files (`files: 2 changed, 1 created, 5 ok`) and
/// name the FreeSWITCH steps run (or that would run), so a restart is never hidden behind
/// a plain `ok`; the last line counts hosts, and says so.
pub fn recap(plays: &[PlayReport], style: Style) -> String {
    let mut s = String::new();
    for p in plays {
        let _ = writeln!(
            s,
            "\nRECAP {}: {} ({})",
            p.mode.label(),
            p.play,
            count(p.hosts.len(), "host")
        );
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
        let verb = if p.mode == Mode::Check {
            "would run"
        } else {
            "ran"
        };
        for h in hosts {
            let label = h.status.label();
            let pad = " ".repeat(11usize.saturating_sub(label.len()));
            let mut line = format!("  {:<width$}  {}{pad}", h.host, style.status(h.status));
            let files: Vec<String> = [
                (FileStatus::Changed, "changed"),
                (FileStatus::Created, "created"),
                (FileStatus::Removed, "removed"),
                (FileStatus::Ok, "ok"),
            ]
            .iter()
            .map(|(st, name)| (h.files_with(*st), name))
            .filter(|(n, _)| *n > 0)
            .map(|(n, name)| format!("{n} {name}"))
            .collect();
            if !files.is_empty() {
                let _ = write!(line, "  files: {}", files.join(", "));
            }
            let steps: Vec<&str> = h
                .steps
                .iter()
                .filter(|st| st.ok && !st.command.starts_with("(rollback)"))
                .map(|st| st.command.as_str())
                .collect();
            if !steps.is_empty() && h.status != HostStatus::NotRun {
                let _ = write!(line, "  {verb}: {}", steps.join("; "));
            }
            if h.restart_pending {
                line.push_str("  restart pending");
            }
            if let Some(e) = &h.error {
                let first = e.message.lines().next().unwrap_or("");
                let _ = write!(line, "  {}", printable(&truncate(first, 160)));
            }
            let _ = writeln!(s, "{line}");
        }
        let totals: Vec<String> = [
            (HostStatus::Changed, "changed"),
            (HostStatus::Ok, "ok"),
            (HostStatus::Failed, "failed"),
            (HostStatus::Unreachable, "unreachable"),
            (HostStatus::RolledBack, "rolled back"),
            (HostStatus::NotRun, "not run"),
        ]
        .iter()
        .map(|(st, name)| (p.count(*st), name))
        .filter(|(n, name)| *n > 0 || matches!(**name, "changed" | "ok" | "failed"))
        .map(|(n, name)| format!("{n} {name}"))
        .collect();
        let _ = writeln!(s, "  hosts: {}", totals.join(", "));
        if let Some(a) = &p.aborted {
            let names = |f: &dyn Fn(&HostReport) -> bool| -> Vec<&str> {
                p.hosts
                    .iter()
                    .filter(|h| f(h))
                    .map(|h| h.host.as_str())
                    .collect()
            };
            let changed = names(&|h| h.status == HostStatus::Changed);
            let failed = names(&|h| h.status.is_failure());
            let untouched = names(&|h| h.status == HostStatus::NotRun);
            let _ = writeln!(s, "  {} {a}", style.failed("ROLLOUT ABORTED:"));
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
        // A finding quotes conf files a PBX (or anyone) wrote: escaped, continuation indented.
        let _ = writeln!(s, "{}", printable_block(&x.to_string(), "    "));
    }
    let allowed = f.iter().filter(|x| x.allowed.is_some()).count();
    let e = f.iter().filter(|x| x.blocks()).count();
    let w = f.len() - e - allowed;
    let _ = write!(s, "{e} error(s), {w} warning(s)");
    if allowed > 0 {
        let _ = write!(s, ", {allowed} allowed");
    }
    s.push('\n');
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
