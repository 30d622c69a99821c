//! Allowing a rule knowingly: a play's `lint_allow:` or a
//! `<!-- switchyard: allow(RULE): REASON -->` comment in the file. An allowed finding is
//! still shown, with its reason, in every plan, review and report.

use std::collections::BTreeMap;

use super::{Finding, Severity, RULES};

/// `<!-- switchyard: allow(RULE): REASON -->` comments of a file: `(line, rule, reason)`.
/// Anything after `switchyard: allow` that is not that shape is returned with an empty rule,
/// so it is reported rather than silently ignored.
fn allow_comments(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(pos) = line.find("switchyard: allow") else {
            continue;
        };
        let rest = &line[pos + "switchyard: allow".len()..];
        let rest = rest.split("-->").next().unwrap_or("");
        let parsed = rest.strip_prefix('(').and_then(|r| {
            let (rule, after) = r.split_once(')')?;
            let reason = after.trim_start().strip_prefix(':')?.trim();
            Some((rule.trim().to_string(), reason.to_string()))
        });
        let (rule, reason) = parsed.unwrap_or_default();
        out.push((i + 1, rule, reason));
    }
    out
}

/// Mark the findings an operator allowed: `play` allows (rule → reason) apply to every
/// file, comment allows to their own file. Allows that name no rule or give no reason
/// are errors of their own (an allow must be knowing).
pub fn apply_allows(
    findings: &mut Vec<Finding>,
    files: &BTreeMap<String, String>,
    play: &BTreeMap<String, String>,
) {
    let mut bad = Vec::new();
    let mut by_file: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (rel, text) in files {
        for (line, rule, reason) in allow_comments(text) {
            if !RULES.iter().any(|(r, _)| *r == rule) || reason.is_empty() {
                bad.push(Finding {
                    severity: Severity::Error,
                    host: findings.first().and_then(|f| f.host.clone()),
                    file: rel.clone(),
                    line,
                    check: "allow",
                    message: format!("`switchyard: allow` needs a known rule and a reason; got rule `{rule}`{}", if reason.is_empty() { " and no reason" } else { "" }),
                    fix: "write `<!-- switchyard: allow(RULE): why this is right here -->`; rules are listed in README \"Lint\"".into(),
                    allowed: None,
                });
            } else {
                by_file
                    .entry(rel.as_str())
                    .or_default()
                    .push((rule, reason));
            }
        }
    }
    for f in findings.iter_mut() {
        let from_file = by_file
            .get(f.file.as_str())
            .and_then(|a| a.iter().find(|(r, _)| r == f.check))
            .map(|(_, why)| format!("{why} ({}: switchyard: allow({}))", f.file, f.check));
        let from_play = play
            .get(f.check)
            .map(|why| format!("{why} (play: lint_allow: {})", f.check));
        if let Some(why) = from_file.or(from_play) {
            f.allowed = Some(crate::secret::mask_secret_params(&why));
        }
    }
    findings.extend(bad);
}
