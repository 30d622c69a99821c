//! Checks of a FreeSWITCH configuration as a whole, before anything reaches a host.
//!
//! Works on a set of files (conf-root-relative path → text): the rendered output of a
//! playbook for one host, or an operator's existing conf directory. Every finding names the
//! file, the line and a fix. The Wavix guide's own mistakes are the test cases.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{classify, gateways, preprocess, xml_param, FileKind};

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

/// Contexts the stock configuration defines (`dialplan/default.xml`, `public.xml`, ...),
/// valid even when the files linted do not include them.
const STOCK_CONTEXTS: &[&str] = &["default", "public", "features", "skinny-patterns"];

/// Gateway params mod_sofia reads: every `strcasecmp(var, "...")` of `parse_gateways()` in
/// sofia.c at FreeSWITCH v1.10.12 (commit a88d069d), extracted from the source, not guessed.
/// Anything else in a `<gateway>`'s `<param>`s is ignored by mod_sofia.
const GATEWAY_PARAMS: &[&str] = &[
    "908-retry-seconds",
    "auth-username",
    "caller-id-in-from",
    "contact-host",
    "contact-in-ping",
    "contact-params",
    "context",
    "destination-prefix",
    "distinct-to",
    "expire-seconds",
    "extension",
    "extension-in-contact",
    "from-domain",
    "from-user",
    "gw-auth-acl",
    "outbound-proxy",
    "password",
    "ping",
    "ping-max",
    "ping-min",
    "ping-monitoring",
    "ping-user-agent",
    "proxy",
    "realm",
    "reg-id",
    "register",
    "register-proxy",
    "register-transport",
    "retry-seconds",
    "retry_seconds",
    "rfc-5626",
    "scheme",
    "timeout-seconds",
    "username",
];

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

/// The pre-processor drops `<?...` lines and consumes directive lines; blank them (keeping
/// line numbers) so the rest parses as the XML FreeSWITCH sees.
fn xml_view(text: &str) -> String {
    // Wrapped on the first line, so line numbers stay those of the file.
    let body: String = text
        .split_inclusive('\n')
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("<?")
                || t.starts_with("<X-PRE-PROCESS")
                || t.to_ascii_uppercase().starts_with("<XPREPROCESS")
            {
                if l.ends_with('\n') {
                    "\n"
                } else {
                    ""
                }
            } else {
                l
            }
        })
        .collect();
    format!("<switchyard-fragment>{body}</switchyard-fragment>")
}

/// E.164 without `+`: country code first, 8 to 15 digits, never a leading 0.
fn e164_problem(num: &str) -> Option<String> {
    let n = num.trim_start_matches('+');
    if n.chars()
        .any(|c| c == ' ' || c == '-' || c == '(' || c == ')')
    {
        return Some("contains spaces or punctuation".into());
    }
    if !n.chars().all(|c| c.is_ascii_digit()) {
        return None; // not a number: a variable or a pattern
    }
    if n.starts_with("00") {
        return Some("starts with the international prefix `00`".into());
    }
    if n.starts_with("011") && n.len() > 11 {
        return Some("starts with the US international prefix `011`".into());
    }
    if n.starts_with('0') {
        return Some("starts with a national trunk prefix `0` (no country code)".into());
    }
    if n.len() == 10 && matches!(n.as_bytes()[0], b'2'..=b'9') && n.as_bytes()[1] != b'9' {
        return Some(
            "looks like a 10-digit North American national number without the country code `1`"
                .into(),
        );
    }
    // Country codes whose national numbers drop their trunk `0` in E.164 (not Italy's 39).
    for cc in [
        "44", "49", "33", "31", "32", "41", "43", "45", "46", "47", "34", "61", "64", "27", "91",
        "81", "86", "353",
    ] {
        if n.len() > cc.len() + 1 && n.starts_with(cc) && n.as_bytes()[cc.len()] == b'0' {
            return Some(format!(
                "keeps the national trunk prefix `0` after the country code `{cc}`"
            ));
        }
    }
    if n.len() < 8 || n.len() > 15 {
        return Some(format!(
            "has {} digits (E.164 numbers have 8 to 15)",
            n.len()
        ));
    }
    None
}

fn e164_fix(num: &str) -> String {
    let n = num
        .trim_start_matches('+')
        .replace([' ', '-', '(', ')'], "");
    if let Some(r) = n.strip_prefix("00") {
        format!("write it as `{r}` (E.164 digits, country code first)")
    } else if let Some(cc) = [
        "44", "49", "33", "31", "32", "41", "43", "45", "46", "47", "34", "61", "64", "27", "91",
        "81", "86", "353",
    ]
    .iter()
    .find(|cc| n.len() > cc.len() + 1 && n.starts_with(**cc) && n.as_bytes()[cc.len()] == b'0')
    {
        format!(
            "write it as `{cc}{}` (drop the 0 after the country code)",
            &n[cc.len() + 1..]
        )
    } else if n.len() == 10 && !n.starts_with('0') {
        format!("write it as `1{n}` if it is a US/Canada number")
    } else {
        "write the full international number: country code, then the national number without its leading 0".into()
    }
}

/// What a line loses besides `tag` when the pre-processor drops it whole.
/// The pre-processor drops a whole line holding `tag` (switch_xml.c `preprocess()`: a
/// plain `strstr` on the raw line, comments or not). What that loses is the line's text
/// outside comments (`visible`), less the tag itself.
fn dropped_with(line: &str, visible: &str, tag: &str) -> Option<String> {
    line.find(tag)?;
    let lost = match visible.find(tag) {
        Some(pos) => {
            let after = &visible[pos + tag.len()..];
            let after = if tag == "<?" {
                after.split_once("?>").map_or("", |x| x.1)
            } else {
                after
            };
            format!("{}{}", &visible[..pos], after)
        }
        None => visible.to_string(),
    };
    let lost = lost.trim();
    (!lost.is_empty()).then(|| lost.to_string())
}

/// Every rule lint knows, with what it checks: the names `lint_allow:` and
/// `<!-- switchyard: allow(RULE): REASON -->` accept (README "Lint" lists them too).
pub const RULES: &[(&str, &str)] = &[
    (
        "action-order",
        "a `set`/`export` placed after the bridge it should affect",
    ),
    ("allow", "an allow comment without a known rule or a reason"),
    (
        "condition-field",
        "a condition on a name that is no caller-profile field",
    ),
    ("conf-root", "an inventory conf root in the wrong case"),
    (
        "context-missing",
        "a gateway or user sent to a context no dialplan defines",
    ),
    ("context-unused", "a context no gateway or user reaches"),
    ("e164", "a DID or caller ID that is not E.164"),
    ("failover", "a second bridge that is never reached"),
    (
        "failover-causes",
        "`continue_on_fail=true` between gateways",
    ),
    (
        "gateway-credentials",
        "a registering gateway without username or with an empty or placeholder password",
    ),
    ("gateway-duplicate", "two gateways with one name"),
    (
        "gateway-missing",
        "a bridge to a gateway the host does not define",
    ),
    ("gateway-name", "a gateway name mod_sofia refuses"),
    (
        "gateway-noreg",
        "registration params on a gateway that does not register",
    ),
    ("gateway-param", "a param mod_sofia does not read"),
    ("gateway-realm", "a gateway with neither realm nor proxy"),
    ("gateway-unincluded", "a gateway file no profile includes"),
    (
        "inbound-did",
        "a registering gateway without `extension`: DIDs never reach the dialplan",
    ),
    (
        "inbound-ip-auth",
        "an IP-authenticated gateway whose calls land in another context",
    ),
    ("include-line", "a line the pre-processor drops whole"),
    (
        "not-evaluated",
        "a part of the tree lint could not read as it is",
    ),
    ("owner", "an inventory owner or group in the wrong case"),
    (
        "password-weak",
        "a directory password that is empty, a placeholder or easily guessed",
    ),
    ("preprocess-cmd", "an unknown pre-process command"),
    ("preprocess-misspelt", "a misspelt `X-PRE-PROCESS`"),
    (
        "preprocess-quotes",
        "a pre-process line without double quotes",
    ),
    (
        "preprocess-split",
        "a pre-process directive over several lines",
    ),
    (
        "redial",
        "a failover bridge that dials again after a normal call",
    ),
    ("regex", "an expression PCRE refuses"),
    ("route-test", "a play's route test the configuration breaks"),
    ("rtp-range", "an RTP port range that is invalid"),
    ("stun-set-literal", "`stun-set` of a literal address"),
    (
        "toll-fraud",
        "trunk callers routed back out through a trunk",
    ),
    ("undefined-var", "a `$${var}` nothing defines"),
    (
        "wrong-path",
        "a file written where FreeSWITCH never reads it",
    ),
    ("xml", "XML that is not well-formed"),
];

/// What one lint run found, and what it did not judge and why.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// `(file, why)` for files whose findings were left out: FreeSWITCH never reads them
    /// (not included from freeswitch.xml) or they configure a module modules.conf.xml does
    /// not load.
    pub not_judged: Vec<(String, String)>,
}

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

/// The files FreeSWITCH reads, following `include` directives from freeswitch.xml
/// (switch_xml.c `preprocess_glob()`: a relative pattern is relative to the including
/// file's folder; `glob(3)`, so `*` skips dot-files). A directive counts even inside a
/// comment: the pre-processor looks for it on the raw line. `None` without freeswitch.xml
/// (a playbook's files, or part of a tree): then every file counts as read.
fn included_files(files: &BTreeMap<String, String>) -> Option<std::collections::BTreeSet<String>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec!["freeswitch.xml".to_string()];
    files.get("freeswitch.xml")?;
    while let Some(rel) = todo.pop() {
        if !seen.insert(rel.clone()) {
            continue;
        }
        let Some(text) = files.get(&rel) else {
            continue;
        };
        let dir = rel.rsplit_once('/').map_or("", |x| x.0);
        for line in text.lines() {
            let Some(pos) = line.find("<X-PRE-PROCESS") else {
                continue;
            };
            let Some((cmd, data, true)) = preprocess::parse_line(&line[pos..]) else {
                continue;
            };
            if !cmd.eq_ignore_ascii_case("include") || data.starts_with('/') {
                continue;
            }
            let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
            for seg in data.split('/') {
                match seg {
                    "" | "." => {}
                    ".." => {
                        parts.pop();
                    }
                    s => parts.push(s),
                }
            }
            let pattern: Vec<&str> = parts;
            for cand in files.keys() {
                let segs: Vec<&str> = cand.split('/').collect();
                if segs.len() == pattern.len()
                    && segs.iter().zip(&pattern).all(|(s, p)| glob_match(p, s))
                {
                    todo.push(cand.clone());
                }
            }
        }
    }
    Some(seen)
}

/// `glob(3)` for one path segment: `*`, `?` and `[...]`; a leading `.` only matched literally.
fn glob_match(pat: &str, name: &str) -> bool {
    if name.starts_with('.') && !pat.starts_with('.') {
        return false;
    }
    fn m(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| m(&p[1..], &n[i..])),
            Some(b'?') => !n.is_empty() && m(&p[1..], &n[1..]),
            Some(b'[') => {
                let Some(end) = p.iter().position(|&c| c == b']') else {
                    return n.first() == Some(&b'[') && m(&p[1..], &n[1..]);
                };
                let Some(&c) = n.first() else { return false };
                let set = &p[1..end];
                let (neg, set) = match set.first() {
                    Some(b'!') | Some(b'^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != neg && m(&p[end + 1..], &n[1..])
            }
            Some(&c) => n.first() == Some(&c) && m(&p[1..], &n[1..]),
        }
    }
    m(pat.as_bytes(), name.as_bytes())
}

/// Modules modules.conf.xml loads (uncommented `<load module>`), or `None` when it is not
/// among the files.
fn loaded_modules(files: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut any = false;
    for f in ["pre_load_modules", "modules", "post_load_modules"] {
        let Some(text) = files.get(&format!("autoload_configs/{f}.conf.xml")) else {
            continue;
        };
        any |= f == "modules";
        for line in preprocess::visible_lines(text) {
            if let Some(p) = line.find("<load") {
                if let Some(m) = xml_param::attr(&line[p..], "module") {
                    out.push(m.to_string());
                }
            }
        }
    }
    any.then_some(out)
}

/// The module whose configuration a file is: `autoload_configs/NAME.conf.xml` is
/// `mod_NAME`'s, except the core's own; profile folders belong to their endpoint module.
fn owner_module(rel: &str) -> Option<String> {
    const CORE: &[&str] = &[
        "switch",
        "modules",
        "pre_load_modules",
        "post_load_modules",
        "post_load_switch",
        "acl",
        "presence_map",
        "timezones",
    ];
    // Files named otherwise than their module: `switch_xml_open_cfg("ivr.conf")` is in
    // mod_dptools (the `ivr` application), conference_layouts.conf in mod_conference.
    const RENAMED: &[(&str, &str)] = &[
        ("ivr", "mod_dptools"),
        ("conference_layouts", "mod_conference"),
    ];
    let first = rel.split('/').next()?;
    match first {
        "sip_profiles" => Some("mod_sofia".into()),
        "skinny_profiles" => Some("mod_skinny".into()),
        "jingle_profiles" => Some("mod_dingaling".into()),
        "mrcp_profiles" => Some("mod_unimrcp".into()),
        "dialplan" => Some("mod_dialplan_xml".into()),
        "autoload_configs" => {
            let name = rel
                .strip_prefix("autoload_configs/")?
                .strip_suffix(".conf.xml")?;
            if let Some((_, m)) = RENAMED.iter().find(|(f, _)| *f == name) {
                return Some(m.to_string());
            }
            (!name.contains('/') && !CORE.contains(&name)).then(|| format!("mod_{name}"))
        }
        _ => None,
    }
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
    let mut contexts: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut gws: BTreeMap<String, (String, super::Gateway)> = BTreeMap::new();
    let mut parsed: BTreeMap<&str, roxmltree::Document> = BTreeMap::new();
    let views: BTreeMap<&str, String> = files
        .iter()
        .map(|(k, v)| (k.as_str(), xml_view(v)))
        .collect();

    for (rel, text) in files {
        // Paths the guide gets wrong.
        if rel.starts_with("autoload_configs/default/") && rel.ends_with("switch.conf.xml") {
            // FreeSWITCH runs without it (on the defaults), so it is not an error; but
            // whatever the operator meant it to set is not set.
            cx.push(Severity::Warning, rel, 1, "wrong-path",
                "FreeSWITCH reads switch.conf.xml from `autoload_configs/`, not `autoload_configs/default/`: this file is never loaded".into(),
                "write it to `autoload_configs/switch.conf.xml`".into());
        }
        if !rel.ends_with(".xml") {
            continue;
        }
        // Pre-process lines.
        for d in preprocess::parse(text) {
            if !d.well_spelt {
                cx.push(Severity::Error, rel, d.line, "preprocess-misspelt",
                    format!("`{}` is not `X-PRE-PROCESS`: FreeSWITCH silently ignores this line, so `{}` is never set", text.lines().nth(d.line - 1).unwrap_or("").split_whitespace().next().unwrap_or("").trim_start_matches('<'), d.data.split('=').next().unwrap_or("")),
                    format!("spell it `<X-PRE-PROCESS cmd=\"{}\" data=\"{}\"/>`", d.cmd, d.data));
            } else if !preprocess::KNOWN_CMDS.contains(&d.cmd.as_str()) {
                cx.push(
                    Severity::Error,
                    rel,
                    d.line,
                    "preprocess-cmd",
                    format!("unknown pre-process cmd `{}`", d.cmd),
                    format!("use one of {}", preprocess::KNOWN_CMDS.join(", ")),
                );
            }
            if let Some((name, value)) = d.assignment() {
                if d.cmd == "stun-set" && value.parse::<std::net::IpAddr>().is_ok() {
                    cx.push(Severity::Warning, rel, d.line, "stun-set-literal",
                        format!("`stun-set` of `{name}` to a literal address: stun-set runs a STUN lookup on every reloadxml and keeps the old value when it fails"),
                        format!("use `<X-PRE-PROCESS cmd=\"set\" data=\"{name}={value}\"/>` for a fixed address"));
                }
            }
        }
        let visible = preprocess::visible_lines(text);
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start();
            for tag in ["<include>", "</include>", "<?"] {
                if let Some(lost) = dropped_with(line, &visible[i], tag) {
                    cx.push(Severity::Error, rel, i + 1, "include-line",
                        format!("FreeSWITCH's pre-processor drops this whole line because it holds `{tag}`, so `{}` is lost", lost.chars().take(60).collect::<String>()),
                        format!("put `{tag}` on a line of its own"));
                }
            }
            // switch_xml.c preprocess(): after `cmd` and `=` it looks for a double quote and
            // silently skips the line when there is none; `data` likewise.
            if t.starts_with("<X-PRE-PROCESS")
                && t.trim_end().ends_with('>')
                && (!t.contains("cmd=\"") || !t.contains("data=\""))
            {
                cx.push(
                    Severity::Error,
                    rel,
                    i + 1,
                    "preprocess-quotes",
                    "FreeSWITCH reads a pre-process directive's `cmd` and `data` only in double quotes; this line is silently ignored".into(),
                    format!("write `{}`", t.trim_end().replace('\'', "\"")),
                );
            }
            if t.starts_with("<X-PRE-PROCESS") && !t.trim_end().ends_with('>') {
                cx.push(
                    Severity::Error,
                    rel,
                    i + 1,
                    "preprocess-split",
                    "a pre-process directive must stand on one line".into(),
                    "join the directive onto one line".into(),
                );
            }
        }
        // Files are included into one document textually (`X-PRE-PROCESS include`), so a
        // file may hold several top-level elements (stock av.conf.xml has two
        // `<configuration>`s): check it as a fragment, on its own lines.
        match roxmltree::Document::parse_with_options(
            &views[rel.as_str()],
            roxmltree::ParsingOptions {
                allow_dtd: false,
                nodes_limit: 1_000_000,
                ..Default::default()
            },
        ) {
            Ok(doc) => {
                parsed.insert(rel.as_str(), doc);
            }
            Err(e) => {
                cx.push(Severity::Error, rel, e.pos().row as usize, "xml",
                    format!("not well-formed XML: {e} (FreeSWITCH would reject the whole configuration at reloadxml, or worse, silently swallow lines)"),
                    "fix the XML; switchyard refuses to push it".into());
            }
        }
    }

    lint_undefined_vars(&mut cx, files);
    lint_unincluded_gateways(&mut cx, files);

    // Gateways, contexts, users.
    for (rel, text) in files {
        match classify(rel) {
            FileKind::Gateway { profile } => {
                for g in gateways(text).unwrap_or_default() {
                    if let Some((other, _)) = gws.get(&g.name) {
                        cx.push(Severity::Error, rel, g.line, "gateway-duplicate",
                            format!("gateway `{}` is also defined in {other}: FreeSWITCH ignores the second one", g.name),
                            "give each gateway a unique name".into());
                    }
                    lint_gateway(&mut cx, rel, &g);
                    lint_inbound(
                        &mut cx,
                        rel,
                        &g,
                        files.get(&format!("sip_profiles/{profile}.xml")),
                        &gateway_context(files, rel, &g),
                    );
                    gws.insert(g.name.clone(), (rel.clone(), g));
                }
            }
            FileKind::Dialplan => {
                if let Some(doc) = parsed.get(rel.as_str()) {
                    for c in doc.descendants().filter(|n| n.has_tag_name("context")) {
                        if let Some(name) = c.attribute("name") {
                            contexts.insert(
                                name.to_string(),
                                (rel.clone(), doc.text_pos_at(c.range().start).row as usize),
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let context_known = |c: &str| contexts.contains_key(c) || STOCK_CONTEXTS.contains(&c);
    // `$${var}` values as the pre-processor sets them (the last definition wins).
    let vars: BTreeMap<String, String> = files
        .values()
        .flat_map(|t| preprocess::parse(t))
        .filter(|d| d.well_spelt)
        .filter_map(|d| d.assignment().map(|(n, v)| (n.to_string(), v.to_string())))
        .collect();
    let have_dialplan = !contexts.is_empty();

    for (name, (rel, g)) in &gws {
        let ctx = gateway_context(files, rel, g);
        let ctx = ctx.as_str();
        if have_dialplan && !context_known(ctx) {
            let near: Vec<&String> = contexts.keys().collect();
            cx.push(Severity::Error, rel, g.line, "context-missing",
                format!("gateway `{name}` sends inbound calls to context `{ctx}`, which no dialplan defines (defined: {})", near.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")),
                format!("set the gateway's `context` to the dialplan context that handles its calls{}", near.first().map(|c| format!(", e.g. `{c}`")).unwrap_or_default()));
        }
    }

    // Contexts nothing routes to: usually a name that does not match its gateway or user.
    let mut referenced: Vec<String> = gws
        .values()
        .map(|(rel, g)| gateway_context(files, rel, g))
        .collect();
    for (rel, doc) in &parsed {
        if classify(rel) == FileKind::Directory {
            referenced.extend(
                doc.descendants()
                    .filter(|n| {
                        n.has_tag_name("variable") && n.attribute("name") == Some("user_context")
                    })
                    .filter_map(|n| n.attribute("value").map(str::to_string)),
            );
        }
    }
    let has_routing_sources =
        !gws.is_empty() || files.keys().any(|k| classify(k) == FileKind::Directory);
    for (name, (rel, line)) in &contexts {
        if has_routing_sources
            && !STOCK_CONTEXTS.contains(&name.as_str())
            && !referenced.contains(name)
        {
            cx.push(Severity::Warning, rel, *line, "context-unused",
                format!("no gateway `context` and no directory `user_context` refers to context `{name}`, so no call reaches it"),
                "make the gateway's `context` (inbound) or the user's `user_context` (outbound) name this context".into());
        }
    }

    for (rel, doc) in &parsed {
        let kind = classify(rel);
        if kind == FileKind::Directory {
            for v in doc.descendants().filter(|n| n.has_tag_name("variable")) {
                let (Some(n), Some(val)) = (v.attribute("name"), v.attribute("value")) else {
                    continue;
                };
                let line = doc.text_pos_at(v.range().start).row as usize;
                if n == "user_context" && have_dialplan && !context_known(val) {
                    cx.push(Severity::Error, rel, line, "context-missing",
                        format!("`user_context` is `{val}`, which no dialplan context defines"),
                        "set it to the dialplan context this user's calls should run in (the `<context name>`, not a gateway name)".into());
                }
                // What the trunk is sent (internal calls show the extension, as they should).
                if n == "outbound_caller_id_number" && !val.contains('$') {
                    if let Some(p) = e164_problem(val) {
                        cx.push(
                            Severity::Warning,
                            rel,
                            line,
                            "e164",
                            format!("caller ID `{val}` {p}"),
                            e164_fix(val),
                        );
                    }
                }
            }
            for p in doc.descendants().filter(|n| n.has_tag_name("param")) {
                let (Some("password"), Some(v)) = (p.attribute("name"), p.attribute("value"))
                else {
                    continue;
                };
                // A user's own `<params>`, not a `<gateway>` a user defines (stock
                // example.com.xml): that is a provider's credential, not a login here.
                let of_user = p
                    .parent()
                    .filter(|x| x.has_tag_name("params"))
                    .and_then(|x| x.parent())
                    .is_some_and(|x| x.has_tag_name("user"));
                if !of_user {
                    continue;
                }
                // One rule for a literal and a `$${var}` (stock vanilla's users all take
                // `$${default_password}`, which vars.xml sets to 1234): what FreeSWITCH
                // compares is the expanded value. FreeSWITCH accepts it, so a warning.
                let (value, via) = match v.strip_prefix("$${").and_then(|r| r.strip_suffix('}')) {
                    Some(var) => match vars.get(var) {
                        Some(x) => (x.as_str(), format!(" (through `$${{{var}}}`)")),
                        None => continue,
                    },
                    None => (v, String::new()),
                };
                if let Some(why) = weak_password(value) {
                    cx.push(
                        Severity::Warning,
                        rel,
                        doc.text_pos_at(p.range().start).row as usize,
                        "password-weak",
                        format!("directory user password{via} is {why}: anyone who can reach the profile can register as this user and call out"),
                        "set a strong password (from the vault or the environment)".into(),
                    );
                }
            }
        }
        if kind == FileKind::Dialplan {
            lint_dialplan(&mut cx, rel, doc, &gws, files);
        }
        if kind == FileKind::SwitchConf {
            lint_rtp(&mut cx, rel, &files[*rel]);
        }
    }
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
    let lower = fs.conf_root.to_ascii_lowercase();
    if lower.contains("/freeswitch") && !fs.conf_root.contains("/freeswitch") {
        cx.push(Severity::Error, "inventory", 0, "conf-root",
            format!("conf root `{}`: paths are case-sensitive on Linux; FreeSWITCH lives in `{}`", fs.conf_root, lower),
            "set `freeswitch_conf_root` to `/usr/local/freeswitch/conf` (source builds) or `/etc/freeswitch` (packages)".into());
    }
    for (what, v) in [
        ("freeswitch_owner", &fs.owner),
        ("freeswitch_group", &fs.group),
    ] {
        if v.eq_ignore_ascii_case("freeswitch") && v != "freeswitch" {
            cx.push(Severity::Error, "inventory", 0, "owner",
                format!("`{what}` is `{v}`: user and group names are case-sensitive; packages run FreeSWITCH as `freeswitch`"),
                format!("set `{what}` to `freeswitch`"));
        }
    }
    cx.out
}

/// Why PCRE (FreeSWITCH's libpcre) would refuse to compile `expr`, for the mistakes both
/// it and regex-syntax reject: nothing to repeat, unbalanced groups or classes, a reversed
/// class range. Anything regex-syntax merely does not support (look-around,
/// back-references, unknown escapes PCRE takes literally) is not judged. Expressions with
/// `${...}` are expanded at call time and not judged either.
fn pcre_rejects(expr: &str) -> Option<String> {
    use regex_syntax::ast::ErrorKind as K;
    if expr.contains("${") {
        return None;
    }
    match regex_syntax::ast::parse::Parser::new().parse(expr) {
        Ok(_) => None,
        Err(e) => match e.kind() {
            K::RepetitionMissing => Some("a repetition with nothing to repeat".into()),
            K::GroupUnclosed => Some("a group is not closed".into()),
            K::GroupUnopened => Some("a `)` closes no group".into()),
            K::ClassUnclosed => Some("a `[` class is not closed".into()),
            K::ClassRangeInvalid => Some("a class range runs backwards".into()),
            _ => None,
        },
    }
}

/// Condition fields mod_dialplan_xml reads from the caller profile: every name
/// `switch_caller_get_field_by_name()` (switch_caller.c, v1.10.12) knows.
const CALLER_FIELDS: &[&str] = &[
    "destination_number",
    "caller_id_number",
    "caller_id_name",
    "ani",
    "aniii",
    "network_addr",
    "rdnis",
    "context",
    "dialplan",
    "username",
    "orig_caller_id_name",
    "orig_caller_id_number",
    "callee_id_name",
    "callee_id_number",
    "uuid",
    "source",
    "transfer_source",
    "chan_name",
    "profile_index",
    "caller_ton",
    "caller_numplan",
    "destination_number_ton",
    "destination_number_numplan",
    "ani_ton",
    "ani_numplan",
    "rdnis_ton",
    "rdnis_numplan",
    "screen_bit",
    "privacy_hide_name",
    "privacy_hide_number",
    "profile_created_time",
    "created_time",
    "answered_time",
    "progress_time",
    "progress_media_time",
    "hungup_time",
    "transferred_time",
];

/// Variables FreeSWITCH's core sets before any configuration is read (switch_core.c
/// `switch_core_set_variable` at v1.10.12), usable as `$${name}` without a definition.
const CORE_VARS: &[&str] = &[
    "base_dir",
    "cache_dir",
    "certs_dir",
    "conf_dir",
    "core_uuid",
    "data_dir",
    "db_dir",
    "exclude_error_log_from_xml_cdr",
    "fonts_dir",
    "grammar_dir",
    "hostname",
    "htdocs_dir",
    "images_dir",
    "local_ip_v4",
    "local_ip_v6",
    "local_mask_v4",
    "localstate_dir",
    "log_dir",
    "mod_dir",
    "recordings_dir",
    "rtp_retain_crypto_keys",
    "run_dir",
    "script_dir",
    "sound_prefix",
    "sounds_dir",
    "spawn_instead_of_system",
    "storage_dir",
    "temp_dir",
];

/// `$${name}` that nothing defines: the pre-processor (switch_xml.c `expand_vars`) replaces
/// it with nothing, silently, so a param becomes empty (a gateway without a proxy, a
/// profile without an address). Judged only when vars.xml is among the files (otherwise
/// what is defined is not known); definitions anywhere count, comments do not.
fn lint_undefined_vars(cx: &mut Ctx<'_>, files: &BTreeMap<String, String>) {
    if !files.contains_key("vars.xml") {
        return;
    }
    let mut defined: std::collections::BTreeSet<String> =
        CORE_VARS.iter().map(|s| s.to_string()).collect();
    for text in files.values() {
        for d in preprocess::parse(text).into_iter().filter(|d| d.well_spelt) {
            if let Some((name, _)) = d.assignment() {
                defined.insert(name.to_string());
            }
        }
    }
    for (rel, text) in files {
        for (i, line) in preprocess::visible_lines(text).iter().enumerate() {
            let mut rest = line.as_str();
            while let Some(pos) = rest.find("$${") {
                let after = &rest[pos + 3..];
                let Some(end) = after.find('}') else { break };
                let name = &after[..end];
                if !name.is_empty() && !defined.contains(name) {
                    // In a gateway an empty value drops or breaks the trunk; elsewhere an
                    // empty param often means "the default" (stock internal-ipv6.xml's
                    // tls-cert-dir relies on it), so there it is a warning.
                    let severity = if matches!(classify(rel), FileKind::Gateway { .. }) {
                        Severity::Error
                    } else {
                        Severity::Warning
                    };
                    cx.push(severity, rel, i + 1, "undefined-var",
                        format!("`$${{{name}}}` is defined by no pre-process line: FreeSWITCH replaces it with nothing, silently"),
                        format!("define it in vars.xml: `<X-PRE-PROCESS cmd=\"set\" data=\"{name}=...\"/>`"));
                }
                rest = &after[end..];
            }
        }
    }
}

/// A gateway file in `sip_profiles/X/` that no profile includes is never loaded. Judged
/// only when some profile file is among the files.
fn lint_unincluded_gateways(cx: &mut Ctx<'_>, files: &BTreeMap<String, String>) {
    let profiles: Vec<&String> = files
        .iter()
        .filter(|(rel, _)| matches!(classify(rel), FileKind::Profile { .. }))
        .map(|(_, t)| t)
        .collect();
    if profiles.is_empty() {
        return;
    }
    let includes: Vec<String> = profiles
        .iter()
        .flat_map(|t| preprocess::parse(t))
        .filter(|d| d.well_spelt && d.cmd == "include")
        .map(|d| d.data)
        .collect();
    for rel in files.keys() {
        if let FileKind::Gateway { profile } = classify(rel) {
            let name = rel.rsplit('/').next().unwrap_or("");
            let included = includes.iter().any(|pat| {
                pat.split_once('/').is_some_and(|(dir, glob)| {
                    dir == profile && (glob == "*.xml" || glob == name || glob == "*")
                })
            });
            // A file whose gateways are all commented out (or that has none) loses nothing;
            // one that has some still loads and routes without them, so a warning.
            let active = files
                .get(rel)
                .and_then(|t| gateways(t))
                .is_some_and(|g| !g.is_empty());
            if !included && active {
                cx.push(Severity::Warning, rel, 1, "gateway-unincluded",
                    format!("no profile includes `{profile}/`: FreeSWITCH never loads the gateways in {rel}"),
                    format!("put it in a folder a profile includes (stock: `external/`), or add `<X-PRE-PROCESS cmd=\"include\" data=\"{profile}/*.xml\"/>` to a profile's `<gateways>`"));
            }
        }
    }
}

/// Where a trunk's inbound calls can land (mod_sofia `sofia_handle_sip_i_invite`): a call
/// to the registered Contact `gw+NAME` runs in the gateway's context with the destination
/// the gateway's `extension` gives (the username when unset; `auto_to_user` takes `To`); a
/// call naming no gateway runs in the profile's context unless an `apply-inbound-acl`
/// with a pass context matches its source address.
fn lint_inbound(
    cx: &mut Ctx<'_>,
    rel: &str,
    g: &super::Gateway,
    profile: Option<&String>,
    context: &str,
) {
    let name = &g.name;
    if g.registers() {
        match g.param("extension") {
            Some("auto_to_user") | Some("auto") => {}
            Some(e) if !e.is_empty() => {}
            _ => cx.push(Severity::Error, rel, g.line, "inbound-did",
                format!("gateway `{name}` registers without an `extension` param: calls the provider sends to its registered Contact (gw+{name}) get the trunk username `{}` as destination, so no DID route in `{context}` ever matches", g.param("username").unwrap_or("?")),
                "add `<param name=\"extension\" value=\"auto_to_user\"/>` (the DID from the To header)".into()),
        }
    } else if let Some(profile_text) = profile {
        let acl_to_context = super::xml_param::params(profile_text, "settings")
            .iter()
            .any(|(n, v)| n == "apply-inbound-acl" && v.split(':').nth(1) == Some(context));
        let profile_context = super::sofia::profile_context(profile_text);
        if !acl_to_context && profile_context != context {
            cx.push(Severity::Error, rel, g.line, "inbound-ip-auth",
                format!("gateway `{name}` does not register, so its provider's calls name no gateway and run in the profile's context (`{profile_context}`), never in `{context}`"),
                format!("list the provider's addresses in an ACL and add `<param name=\"apply-inbound-acl\" value=\"LIST:{context}\"/>` to the profile"));
        }
    }
}

/// The context a gateway's calls run in ([`super::sofia::gateway_context`]), with the
/// profile named by the gateway's folder when that profile's file is among `files`.
fn gateway_context(files: &BTreeMap<String, String>, rel: &str, g: &super::Gateway) -> String {
    let profile = match classify(rel) {
        FileKind::Gateway { profile } => files.get(&format!("sip_profiles/{profile}.xml")),
        _ => None,
    };
    super::sofia::gateway_context(g.param("context"), profile.map(String::as_str))
}

/// Why a password is weak, if it is: empty, a placeholder left from an example, a value
/// from the examples everybody copies, or all digits shorter than 8 (a registration
/// scanner tries those first).
fn weak_password(v: &str) -> Option<&'static str> {
    let lower = v.to_ascii_lowercase();
    if v.is_empty() {
        Some("empty")
    } else if v == "SET_EXTENSION_PASSWORD" || v.starts_with("YOUR_") || lower.contains("changeme")
    {
        Some("a placeholder")
    } else if [
        "password",
        "secret",
        "pass",
        "admin",
        "freeswitch",
        "fusionpbx",
    ]
    .contains(&lower.as_str())
    {
        Some("a common word")
    } else if v.len() < 8 && v.bytes().all(|b| b.is_ascii_digit()) {
        Some("only digits, fewer than 8")
    } else {
        None
    }
}

fn lint_gateway(cx: &mut Ctx<'_>, rel: &str, g: &super::Gateway) {
    let name = &g.name;
    // parse_gateways(): `switch_regex_match(name, "^[\\w\\.\\-\\_]+$")`, else "Ignoring
    // invalid name" and the gateway is not loaded at all.
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        cx.push(Severity::Error, rel, g.line, "gateway-name",
            format!("gateway name `{name}`: mod_sofia loads only names of letters, digits, `_`, `.` and `-` (it logs \"Ignoring invalid name\" and skips this gateway)"),
            "rename the gateway".into());
    }
    for (p, v) in &g.params {
        if p == "sip_cid_type" {
            cx.push(Severity::Warning, rel, g.line, "gateway-param",
                format!("gateway `{name}`: `sip_cid_type` is a channel variable, not one of mod_sofia's gateway params, so this line has no effect"),
                format!("set it in the gateway's `<variables>`: `<variable name=\"sip_cid_type\" value=\"{v}\" direction=\"outbound\"/>`"));
        } else if !GATEWAY_PARAMS.contains(&p.as_str()) {
            cx.push(
                Severity::Warning,
                rel,
                g.line,
                "gateway-param",
                format!("gateway `{name}`: unknown param `{p}` (mod_sofia ignores it)"),
                "check the spelling against the gateway params of mod_sofia".into(),
            );
        }
    }
    let registers = g.registers();
    if g.param("realm").is_none() && g.param("proxy").is_none() {
        cx.push(Severity::Error, rel, g.line, "gateway-realm",
            format!("gateway `{name}` has neither `realm` nor `proxy`: FreeSWITCH falls back to the gateway name as host"),
            "set `proxy` (and `realm` if the provider's auth realm differs)".into());
    }
    if registers {
        if g.param("username").is_none_or(str::is_empty) {
            cx.push(
                Severity::Error,
                rel,
                g.line,
                "gateway-credentials",
                format!("registering gateway `{name}` has no `username`"),
                "set `username`, or `register=false` for IP authentication".into(),
            );
        }
        match g.param("password") {
            None | Some("") => cx.push(
                Severity::Error,
                rel,
                g.line,
                "gateway-credentials",
                format!("registering gateway `{name}` has an empty password"),
                "set the trunk password (from the vault or the environment)".into(),
            ),
            Some(p) if p.starts_with("YOUR_") || p == "SIP_TRUNK_PASSWORD" => cx.push(
                Severity::Error,
                rel,
                g.line,
                "gateway-credentials",
                format!("gateway `{name}` still has the placeholder password `{p}`"),
                "set the real trunk password".into(),
            ),
            _ => {}
        }
    } else {
        for p in ["expire-seconds"] {
            if g.param(p).is_some() {
                cx.push(Severity::Warning, rel, g.line, "gateway-noreg",
                    format!("gateway `{name}` does not register (`register=false`), so `{p}` has no effect"), format!("remove `{p}`, or set `ping` to monitor the trunk with OPTIONS"));
            }
        }
    }
}

fn lint_rtp(cx: &mut Ctx<'_>, rel: &str, text: &str) {
    let params: BTreeMap<String, String> =
        xml_param::params(text, "settings").into_iter().collect();
    let line_of = |name: &str| {
        text.lines()
            .position(|l| l.contains(&format!("\"{name}\"")) && !l.trim_start().starts_with("<!--"))
            .map(|i| i + 1)
            .unwrap_or(1)
    };
    let get = |n: &str| params.get(n).and_then(|v| v.parse::<u32>().ok());
    for n in ["rtp-start-port", "rtp-end-port"] {
        if let Some(v) = params.get(n) {
            match v.parse::<u32>() {
                Ok(p) if (1024..=65535).contains(&p) => {}
                _ => cx.push(
                    Severity::Error,
                    rel,
                    line_of(n),
                    "rtp-range",
                    format!("`{n}` is `{v}`, not a port from 1024 to 65535"),
                    "use an unprivileged port range such as 16384-32768".into(),
                ),
            }
        }
    }
    if let (Some(s), Some(e)) = (get("rtp-start-port"), get("rtp-end-port")) {
        if s >= e {
            cx.push(
                Severity::Error,
                rel,
                line_of("rtp-end-port"),
                "rtp-range",
                format!("RTP range {s}-{e} is empty or reversed"),
                "make rtp-start-port lower than rtp-end-port".into(),
            );
        }
        if s % 2 == 1 {
            cx.push(
                Severity::Error,
                rel,
                line_of("rtp-start-port"),
                "rtp-range",
                format!("rtp-start-port {s} is odd: RTP uses even ports, RTCP the odd one above"),
                format!("use {}", s + 1),
            );
        }
    }
}

fn lint_dialplan(
    cx: &mut Ctx<'_>,
    rel: &str,
    doc: &roxmltree::Document<'_>,
    gws: &BTreeMap<String, (String, super::Gateway)>,
    files: &BTreeMap<String, String>,
) {
    let inbound_contexts: BTreeMap<String, String> = gws
        .iter()
        .map(|(n, (grel, g))| (gateway_context(files, grel, g), n.clone()))
        .collect();
    let have_gateway_files = files
        .keys()
        .any(|k| matches!(classify(k), FileKind::Gateway { .. }));
    // Contexts (of this file) that bridge out through a gateway.
    let outbound: std::collections::BTreeSet<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("context"))
        .filter(|c| {
            c.descendants().any(|a| {
                a.has_tag_name("action")
                    && a.attribute("application") == Some("bridge")
                    && a.attribute("data")
                        .is_some_and(|d| d.contains("sofia/gateway/"))
            })
        })
        .filter_map(|c| c.attribute("name"))
        .collect();
    for ctx in doc.descendants().filter(|n| n.has_tag_name("context")) {
        let ctx_name = ctx.attribute("name").unwrap_or("");
        for ext in ctx.children().filter(|n| n.has_tag_name("extension")) {
            let ext_name = ext.attribute("name").unwrap_or("?");
            for cond in ext.children().filter(|n| n.has_tag_name("condition")) {
                // mod_dialplan_xml: a field without `$` is a caller-profile field
                // (switch_caller_get_field_by_name); any other name yields "", silently.
                if let Some(field) = cond.attribute("field") {
                    if !field.contains('$') && !CALLER_FIELDS.contains(&field) {
                        cx.push(Severity::Error, rel, doc.text_pos_at(cond.range().start).row as usize, "condition-field",
                            format!("extension `{ext_name}`: `{field}` is not a caller-profile field, so FreeSWITCH matches `{}` against an empty string", cond.attribute("expression").unwrap_or("")),
                            format!("for a channel variable write `field=\"${{{field}}}\"`; caller-profile fields are {}", CALLER_FIELDS[..8].join(", ") + ", ..."));
                    }
                }
                if let Some(expr) = cond.attribute("expression") {
                    if let Some(why) = pcre_rejects(expr) {
                        cx.push(Severity::Error, rel, doc.text_pos_at(cond.range().start).row as usize, "regex",
                            format!("extension `{ext_name}`: `{expr}` is not a valid regular expression ({why}): FreeSWITCH logs a compile error and the condition never matches"),
                            "fix the expression (a literal `+` is written `\\+`)".into());
                    }
                }
                if cond.attribute("field") == Some("destination_number") {
                    if let Some(expr) = cond.attribute("expression") {
                        let digits: String = expr
                            .trim_start_matches('^')
                            .trim_end_matches('$')
                            .trim_start_matches('(')
                            .trim_end_matches(')')
                            .to_string();
                        // DIDs: numbers the provider delivers, in contexts that take calls
                        // from a trunk (feature codes and emergency numbers elsewhere are
                        // not E.164 and need not be).
                        if !digits.is_empty()
                            && digits.chars().all(|c| c.is_ascii_digit() || c == '+')
                            && inbound_contexts.contains_key(ctx_name)
                        {
                            if let Some(p) = e164_problem(&digits) {
                                cx.push(Severity::Warning, rel, doc.text_pos_at(cond.range().start).row as usize, "e164",
                                    format!("extension `{ext_name}` matches DID `{digits}`, which {p}; the provider delivers E.164 numbers"), e164_fix(&digits));
                            }
                        }
                    }
                }
                let actions: Vec<roxmltree::Node> = cond
                    .children()
                    .filter(|n| n.has_tag_name("action"))
                    .collect();
                let mut bridges_seen = 0usize;
                // `continue_on_fail` as it stands: unset, "false", "true", or a cause list.
                let mut continue_on_fail: Option<String> = None;
                let mut continuing_at_last_bridge = false;
                let mut hangup_after_bridge = false;
                let mut redial_reported = false;
                for a in &actions {
                    let app = a.attribute("application").unwrap_or("");
                    let data = a.attribute("data").unwrap_or("");
                    let line = doc.text_pos_at(a.range().start).row as usize;
                    if app == "set" && data.starts_with("continue_on_fail=") {
                        if bridges_seen > 0 && !continuing_at_last_bridge {
                            cx.push(Severity::Error, rel, line, "action-order",
                                "`continue_on_fail` is set after the bridge it should affect: when the first bridge fails the call is hung up and the failover bridge is never reached".into(),
                                "move `<action application=\"set\" data=\"continue_on_fail=...\"/>` before the first bridge".into());
                        }
                        continue_on_fail =
                            Some(data.trim_start_matches("continue_on_fail=").to_string());
                    }
                    if app == "set" && data.trim() == "hangup_after_bridge=true" {
                        hangup_after_bridge = true;
                    }
                    // `transfer EXT [DIALPLAN [CONTEXT]]` from a trunk's inbound context into
                    // a context with outbound routes: trunk callers reach the trunk again.
                    if matches!(app, "transfer" | "execute_extension") {
                        if let Some(via) = inbound_contexts.get(ctx_name) {
                            let target = data.split_whitespace().nth(2).unwrap_or(ctx_name);
                            if target != ctx_name && outbound.contains(target) {
                                cx.push(Severity::Warning, rel, line, "toll-fraud",
                                    format!("context `{ctx_name}` receives inbound calls from gateway `{via}` and sends them with `{app}` into `{target}`, which bridges out through a gateway: callers from the trunk can make calls on your account"),
                                    "send trunk calls only to extensions or contexts without outbound routes".into());
                            }
                        }
                    }
                    if app == "export"
                        && bridges_seen > 0
                        && !actions
                            .iter()
                            .skip_while(|x| x != &a)
                            .skip(1)
                            .any(|x| x.attribute("application") == Some("bridge"))
                    {
                        cx.push(Severity::Warning, rel, line, "action-order",
                            format!("`export {data}` comes after the last bridge, so no bridged leg ever gets it"),
                            "move the export before the bridge".into());
                    }
                    if app == "bridge" {
                        let continuing = continue_on_fail
                            .as_deref()
                            .is_some_and(|v| !v.eq_ignore_ascii_case("false"));
                        if bridges_seen > 0 && !continuing_at_last_bridge {
                            cx.push(Severity::Error, rel, line, "failover",
                                "a second bridge without `continue_on_fail` set before the first one is never reached".into(),
                                "set `continue_on_fail` (to the causes that mean the route failed) before the first bridge".into());
                        }
                        let next_bridge = actions
                            .iter()
                            .skip_while(|x| x != &a)
                            .skip(1)
                            .find(|x| x.attribute("application") == Some("bridge"));
                        let more_bridges = next_bridge.is_some();
                        // Trunk failover (a gateway, then another): not the stock
                        // "user, else voicemail" shape, where busy and no answer are
                        // exactly when the next bridge should run.
                        let gateway_failover = data.contains("sofia/gateway/")
                            && next_bridge.is_some_and(|n| {
                                n.attribute("data")
                                    .is_some_and(|d| d.contains("sofia/gateway/"))
                            });
                        if continuing && more_bridges && !redial_reported {
                            // mod_dptools: a bridged call that ends normally returns to the
                            // dialplan unless hangup_after_bridge is true; continue_on_fail=true
                            // goes on after every failure, busy and no answer included.
                            if !hangup_after_bridge {
                                redial_reported = true;
                                cx.push(Severity::Error, rel, line, "redial",
                                    "after this bridge connects and the callee hangs up, the caller is still in the dialplan and the next bridge dials again (no `hangup_after_bridge=true`)".into(),
                                    "set `hangup_after_bridge=true` before the first bridge".into());
                            } else if gateway_failover
                                && continue_on_fail
                                    .as_deref()
                                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                            {
                                redial_reported = true;
                                cx.push(Severity::Warning, rel, line, "failover-causes",
                                    "`continue_on_fail=true` also fails over on busy, no answer and decline: the callee rings again through the next gateway".into(),
                                    "list the causes that mean the route failed, e.g. `continue_on_fail=GATEWAY_DOWN,NORMAL_TEMPORARY_FAILURE,RECOVERY_ON_TIMER_EXPIRE,NETWORK_OUT_OF_ORDER`".into());
                            }
                        }
                        continuing_at_last_bridge = continuing;
                        bridges_seen += 1;
                        for part in data.split(['|', ',']) {
                            if let Some(rest) = part.trim().split("sofia/gateway/").nth(1) {
                                let gw = rest.split('/').next().unwrap_or("");
                                if !gw.is_empty()
                                    && !gw.contains('$')
                                    && have_gateway_files
                                    && !gws.contains_key(gw)
                                {
                                    cx.push(Severity::Error, rel, line, "gateway-missing",
                                        format!("bridge to `sofia/gateway/{gw}` but no gateway `{gw}` is defined for this host (defined: {})",
                                            gws.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")),
                                        "bridge to a gateway this host defines".into());
                                }
                                if let Some(via) = inbound_contexts.get(ctx_name) {
                                    if cond
                                        .attribute("expression")
                                        .is_some_and(|e| e.contains("\\d") || e.contains("[0-9]"))
                                    {
                                        cx.push(Severity::Warning, rel, line, "toll-fraud",
                                            format!("context `{ctx_name}` receives inbound calls from gateway `{via}` and bridges any number back out through `{gw}`: callers from the trunk can make calls on your account"),
                                            "keep outbound routes in the context of your users (user_context), not in the gateway's inbound context".into());
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's own table of wrongly formatted numbers, and its troubleshooting examples.
    #[test]
    fn e164() {
        assert!(e164_problem("6561223344")
            .unwrap()
            .contains("country code `1`"));
        assert!(e164_problem("020 1122 3344").unwrap().contains("spaces"));
        assert!(e164_problem("0041797000777").unwrap().contains("`00`"));
        assert!(e164_problem("9085594899").is_some());
        // The guide's troubleshooting example for the UK keeps the trunk 0.
        assert!(e164_problem("4408001218915")
            .unwrap()
            .contains("trunk prefix `0`"));
        assert_eq!(
            e164_fix("4408001218915"),
            "write it as `448001218915` (drop the 0 after the country code)"
        );
        assert_eq!(
            e164_fix("0041797000777"),
            "write it as `41797000777` (E.164 digits, country code first)"
        );
        for ok in [
            "16561223344",
            "442011223344",
            "41797000777",
            "19085594899",
            "448001218915",
            "16468097065",
            "390612345678",
        ] {
            assert!(e164_problem(ok).is_none(), "{ok}");
        }
    }
}
