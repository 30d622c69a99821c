//! Checks of a FreeSWITCH configuration as a whole, before anything reaches a host.
//!
//! Works on a set of files (conf-root-relative path → text): the rendered output of a
//! playbook for one host, or an operator's existing conf directory. Every finding names the
//! file, the line and a fix. The Wavix guide's own mistakes are the test cases.
//!
//! Each rule is a function in the module of what it looks at ([`preprocess`], `gateway`,
//! `directory`, `dialplan`, `settings`), registered with its FreeSWITCH source reference
//! in one table, [`CHECKS`]; [`lint`] runs the table over a [`tree::Tree`] read once.

mod allow;
mod checks;
mod dialplan;
mod directory;
mod gateway;
mod numbers;
mod preprocess;
mod reach;
mod settings;
mod tree;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Serialize;

pub use allow::apply_allows;
pub use checks::{Check, CHECKS};
use reach::{included_files, loaded_modules, owner_module};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub host: Option<String>,
    pub file: String,
    pub line: usize,
    /// Short stable identifier of the check, e.g. `preprocess-misspelt`.
    pub check: &'static str,
    pub message: String,
    pub fix: String,
    /// Why an operator allowed this rule here (a play's `lint_allow:` or a
    /// `<!-- switchyard: allow(RULE): REASON -->` comment in the file). An allowed error
    /// does not block; it is still shown, with the reason, in every plan, review and report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
}

impl Finding {
    /// An error nobody allowed: it stops `apply` and makes `lint` exit 1.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Error && self.allowed.is_none()
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if let Some(h) = &self.host {
            write!(f, "{h}: ")?;
        }
        write!(
            f,
            "{}:{}: {sev}[{}]: {}\n    fix: {}",
            self.file, self.line, self.check, self.message, self.fix
        )?;
        if let Some(why) = &self.allowed {
            write!(f, "\n    allowed: {why}")?;
        }
        Ok(())
    }
}

/// Where the checks put their findings, for one host.
struct Ctx<'a> {
    host: Option<&'a str>,
    out: Vec<Finding>,
}

impl Ctx<'_> {
    fn push(
        &mut self,
        severity: Severity,
        file: &str,
        line: usize,
        check: &'static str,
        message: String,
        fix: String,
    ) {
        // Findings quote configuration: never a password-like param or variable's value.
        self.out.push(Finding {
            severity,
            host: self.host.map(str::to_string),
            file: file.to_string(),
            line,
            check,
            message: crate::secret::mask_secret_params(&message),
            fix: crate::secret::mask_secret_params(&fix),
            allowed: None,
        });
    }
}

/// Every rule lint knows, with what it checks, sorted: the names `lint_allow:` and
/// `<!-- switchyard: allow(RULE): REASON -->` accept (README "Lint" lists them too). Made
/// from [`CHECKS`] (a rule with several checks is described by its first).
pub static RULES: LazyLock<Vec<(&'static str, &'static str)>> = LazyLock::new(|| {
    let mut rules: Vec<(&str, &str)> = Vec::new();
    for c in CHECKS {
        if !rules.iter().any(|(r, _)| *r == c.rule) {
            rules.push((c.rule, c.what));
        }
    }
    rules.sort();
    rules
});

/// What one lint run found, and what it did not judge and why.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// `(file, why)` for files whose findings were left out: FreeSWITCH never reads them
    /// (not included from freeswitch.xml) or they configure a module modules.conf.xml does
    /// not load.
    pub not_judged: Vec<(String, String)>,
}

/// Lint an operator's tree: [`lint`], then leave out what FreeSWITCH never reads (files
/// freeswitch.xml does not include, configuration of modules it does not load, saying
/// which in [`Report::not_judged`]), add `notes` (`(file, line, why)` the reader could not
/// take as it is, e.g. bytes that are not UTF-8) for files FreeSWITCH reads, and mark what
/// the files allow.
pub fn lint_tree(
    host: Option<&str>,
    files: &BTreeMap<String, String>,
    notes: &[(String, usize, String)],
) -> Report {
    let reached = included_files(files);
    let loaded = loaded_modules(files);
    let mut report = Report::default();
    let mut findings = lint(host, files);
    for (file, line, why) in notes {
        findings.push(Finding {
            severity: Severity::Warning,
            host: host.map(str::to_string),
            file: file.clone(),
            line: *line,
            check: "not-evaluated",
            message: why.clone(),
            fix: "nothing to fix for FreeSWITCH; lint's findings in this file may be incomplete"
                .into(),
            allowed: None,
        });
    }
    let skip_reason = |file: &str| -> Option<String> {
        if let Some(r) = &reached {
            if !r.contains(file) {
                return Some("not included from freeswitch.xml: FreeSWITCH never reads it".into());
            }
        }
        let (Some(m), Some(loaded)) = (owner_module(file), &loaded) else {
            return None;
        };
        (!loaded.contains(&m))
            .then(|| format!("configures {m}, which modules.conf.xml does not load"))
    };
    for f in findings {
        // Not being read is what these two rules are about.
        let about_reach = matches!(f.check, "gateway-unincluded" | "wrong-path");
        match skip_reason(&f.file) {
            Some(why) if !about_reach => {
                if !report.not_judged.iter().any(|(x, _)| *x == f.file) {
                    report.not_judged.push((f.file.clone(), why));
                }
            }
            _ => report.findings.push(f),
        }
    }
    apply_allows(&mut report.findings, files, &BTreeMap::new());
    report
}

/// Lint one host's configuration.
pub fn lint(host: Option<&str>, files: &BTreeMap<String, String>) -> Vec<Finding> {
    let mut cx = Ctx {
        host,
        out: Vec::new(),
    };
    let views: BTreeMap<&str, String> = files
        .iter()
        .map(|(k, v)| (k.as_str(), tree::xml_view(v)))
        .collect();
    checks::run_all(&mut cx, &tree::Tree::new(files, &views));
    cx.out
        .sort_by(|a, b| (b.severity, &a.file, a.line).cmp(&(a.severity, &b.file, b.line)));
    cx.out
}

/// A host's FreeSWITCH installation settings that the guide gets wrong.
pub fn lint_install(host: &str, fs: &super::FreeSwitch) -> Vec<Finding> {
    let mut cx = Ctx {
        host: Some(host),
        out: Vec::new(),
    };
    checks::run_install(&mut cx, fs);
    cx.out
}
