//! Inventory variables nothing reads: a misspelt `wavix_relam: de.wavix.net` would
//! otherwise change nothing, silently, while the realm stays the play's default.
//!
//! What a play reads is what minijinja says its expressions and templates read
//! (`undeclared_variables`; `carriers[0].name` reads `carriers`): every `{{ ... }}` and
//! `{% ... %}` in the play's YAML, its `when:` expressions, and the templates its tasks
//! name (`src:`) with those they include, import or extend. Templates see variables by
//! name only (switchyard gives them no `vars` or `hostvars` to look a name up in), so a
//! variable no expression names is read by nothing. Add what switchyard itself reads
//! ([`OWN_VARS`]) and what Ansible sets ([`is_magic`]).
//!
//! Where a variable is set is found in the text of the files that can set it for the
//! host (the inventory sources, `group_vars/` of its groups, `host_vars/` of the host):
//! each line that has it as a key (`name:`, `name=`, `name =`). Encrypted files and
//! inventory scripts are named without a line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::inventory::{Host, Inventory};
use super::playbook::Playbook;
use super::source;
use crate::freeswitch::lint::{Finding, Severity};

/// The rule id of the finding (README "Lint").
pub const RULE: &str = "unused-var";

/// Host variables switchyard itself reads (README "Inventory" and "Secrets"), besides the
/// `ansible_*` ones: the connection, the FreeSWITCH installation, the event socket and
/// `trunks measure`'s regions.
pub const OWN_VARS: &[&str] = &[
    "become",
    "command_timeout",
    "connection",
    "freeswitch_conf_root",
    "freeswitch_esl",
    "freeswitch_esl_password",
    "freeswitch_group",
    "freeswitch_max_file_bytes",
    "freeswitch_owner",
    "freeswitch_restart_command",
    "fs_cli",
    "ssh_connect_timeout",
    "ssh_host",
    "ssh_jump",
    "ssh_port",
    "ssh_private_key_file",
    "ssh_retries",
    "ssh_user",
    "wavix_regions",
];

/// Variables Ansible sets or reads itself: never an operator's mistake to set.
fn is_magic(name: &str) -> bool {
    const MAGIC: &[&str] = &[
        "group_names",
        "groups",
        "hostvars",
        "inventory_dir",
        "inventory_file",
        "inventory_hostname",
        "inventory_hostname_short",
        "omit",
        "play_hosts",
        "playbook_dir",
        "role_path",
    ];
    name.starts_with("ansible_") || MAGIC.contains(&name)
}

/// The variables each play reads, or why it could not be told (an expression or template
/// minijinja cannot parse: then its play is not judged).
fn reads(pb: &Playbook) -> Vec<Result<BTreeSet<String>, String>> {
    let raw: Option<Vec<Value>> = source::load_yaml::<Value>(&pb.path)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .filter(|plays| plays.len() == pb.plays.len());
    let Some(raw) = raw else {
        let why = format!("{}: not read as a list of plays", pb.path.display());
        return pb.plays.iter().map(|_| Err(why.clone())).collect();
    };
    let env = minijinja::Environment::new();
    let dirs = pb.template_dirs();
    raw.iter()
        .map(|play| {
            let mut r = Reads::default();
            r.value(&env, None, play);
            let mut todo: Vec<String> = r.templates.iter().cloned().collect();
            let mut seen = BTreeSet::new();
            while let Some(name) = todo.pop() {
                if seen.insert(name.clone()) {
                    todo.extend(r.template_file(&env, &dirs, &name));
                }
            }
            r.failed.map_or(Ok(r.names), Err)
        })
        .collect()
}

#[derive(Default)]
struct Reads {
    names: BTreeSet<String>,
    /// Template files the play names (`src:`).
    templates: BTreeSet<String>,
    failed: Option<String>,
}

impl Reads {
    fn value(&mut self, env: &minijinja::Environment<'_>, key: Option<&str>, v: &Value) {
        match v {
            Value::String(s) => self.string(env, key, s),
            Value::Array(a) => a.iter().for_each(|x| self.value(env, key, x)),
            Value::Object(o) => o.iter().for_each(|(k, x)| self.value(env, Some(k), x)),
            _ => {}
        }
    }

    fn string(&mut self, env: &minijinja::Environment<'_>, key: Option<&str>, s: &str) {
        if key == Some("src") {
            self.templates.insert(s.to_string());
        }
        let found = if s.contains("{{") || s.contains("{%") {
            env.template_from_str(s)
                .map(|t| t.undeclared_variables(false))
        } else if key == Some("when") {
            env.compile_expression(s)
                .map(|e| e.undeclared_variables(false))
        } else {
            return;
        };
        match found {
            Ok(names) => self.names.extend(names),
            Err(e) => self.failed = Some(format!("`{s}`: {e}")),
        }
    }

    /// Read one template file: its variables, and the templates it names.
    fn template_file(
        &mut self,
        env: &minijinja::Environment<'_>,
        dirs: &[PathBuf],
        name: &str,
    ) -> Vec<String> {
        let Some(text) = dirs
            .iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .and_then(|p| source::read_text(&p).ok())
        else {
            // Rendering says it is missing; nothing to read here.
            return Vec::new();
        };
        match env.template_from_str(&text) {
            Ok(t) => self.names.extend(t.undeclared_variables(false)),
            Err(e) => self.failed = Some(format!("template `{name}`: {e}")),
        }
        named_templates(&text)
    }
}

/// Templates a template's `{% include %}`, `{% import %}`, `{% from %}` or
/// `{% extends %}` names by a literal string.
fn named_templates(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for block in text.split("{%").skip(1) {
        let body = block.split("%}").next().unwrap_or("");
        let body = body.trim_start_matches(['-', '+']).trim_start();
        let Some(rest) = ["include", "import", "from", "extends"]
            .iter()
            .find_map(|k| body.strip_prefix(k))
        else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            if let Some(name) = rest[1..].split(q).next() {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// The closest variable that is read, if one is close enough to be a misspelling.
fn did_you_mean<'r>(name: &str, read: impl Iterator<Item = &'r str>) -> Option<&'r str> {
    let limit = (name.chars().count() / 5).max(1);
    read.map(|r| (strsim::damerau_levenshtein(name, r), r))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, r)| r)
}

/// Files that can set a host's variables, with how their lines are located.
fn candidate_files(sources: &[PathBuf], host: &Host) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = sources.iter().filter(|p| p.is_file()).cloned().collect();
    let mut bases: Vec<PathBuf> = Vec::new();
    for p in sources {
        let b = p.parent().unwrap_or(Path::new(".")).to_path_buf();
        if !bases.contains(&b) {
            bases.push(b);
        }
    }
    let names = host
        .groups
        .iter()
        .map(|g| ("group_vars", g.as_str()))
        .chain([("host_vars", host.name.as_str())]);
    for (dir, name) in names {
        for base in &bases {
            let d = base.join(dir);
            for c in super::inventory::vars_file_names(name) {
                let p = d.join(c);
                if p.is_file() {
                    out.push(p);
                } else if p.is_dir() {
                    let mut inner: Vec<PathBuf> = std::fs::read_dir(&p)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.path())
                        .filter(|f| {
                            let ext = f.extension().and_then(|e| e.to_str());
                            f.is_file() && matches!(ext, Some("yml" | "yaml"))
                        })
                        .collect();
                    inner.sort();
                    out.extend(inner);
                }
            }
        }
    }
    out
}

/// Lines (1-based) of `text` that set `name`: a YAML key (`name:`, also in a flow map or
/// a list item), an INI `name=value` or a TOML `name = value`. Comment lines are skipped.
fn lines_setting(text: &str, name: &str) -> Vec<usize> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let hit = line.match_indices(name).any(|(at, _)| {
            let (mut before, mut after) = (&line[..at], &line[at + name.len()..]);
            // A quoted key (`"name":`), not a name inside a quoted value.
            if let Some(q) = before.chars().last().filter(|c| *c == '"' || *c == '\'') {
                match after.strip_prefix(q) {
                    Some(rest) => (before, after) = (&before[..before.len() - 1], rest),
                    None => return false,
                }
            }
            let starts = before.trim_end().is_empty()
                || before.ends_with(char::is_whitespace)
                || before.trim_end().ends_with(['{', ',', '-']);
            let after_word = after.chars().next().is_none_or(|c| !word(c));
            let after = after.trim_start();
            let sets = after.starts_with('=')
                || after
                    .strip_prefix(':')
                    .is_some_and(|r| r.is_empty() || r.starts_with(char::is_whitespace));
            starts && after_word && sets
        });
        if hit {
            out.push(i + 1);
        }
    }
    out
}

/// Where `name` is set for `host`: `(file, line)`, line 0 when it is not known (an
/// encrypted file, an inventory script's output).
/// `texts` keeps the files read so far: a group's file is read once, not once per host.
fn located(
    sources: &[PathBuf],
    host: &Host,
    name: &str,
    texts: &mut BTreeMap<PathBuf, Option<String>>,
) -> Vec<(String, usize)> {
    let files = candidate_files(sources, host);
    let mut out = Vec::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_none_or(|e| e != "age"))
    {
        let text = texts
            .entry(f.clone())
            .or_insert_with(|| source::read_text(f).ok());
        let Some(text) = text else {
            continue;
        };
        for line in lines_setting(text, name) {
            out.push((f.display().to_string(), line));
        }
    }
    if out.is_empty() {
        // Set where its text cannot be read: an encrypted vars file, or a script.
        let secret = files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == "age"));
        let whole = secret.or(sources.first());
        out.extend(whole.map(|f| (f.display().to_string(), 0)));
    }
    out
}

/// Where an unread variable is set: the hosts it is set for there, and what it may have
/// been meant to be.
#[derive(Default)]
struct Place {
    hosts: Vec<String>,
    near: Option<String>,
}

/// Host name → the host and what the plays targeting it read.
type ReadByHost<'i> = BTreeMap<&'i str, (&'i Host, BTreeSet<String>)>;

/// What the plays targeting each host read (hosts of a play that could not be judged are
/// left out); and, for those plays, why.
fn read_by_host<'i>(inv: &'i Inventory, pb: &Playbook) -> (ReadByHost<'i>, Vec<String>) {
    let mut by_host = ReadByHost::new();
    let mut notes = Vec::new();
    let mut unjudged: BTreeSet<&str> = BTreeSet::new();
    for (play, read) in pb.plays.iter().zip(reads(pb)) {
        let hosts = inv.select(&play.hosts);
        match read {
            Ok(names) => {
                for h in hosts {
                    let e = by_host.entry(&h.name).or_insert((h, BTreeSet::new()));
                    e.1.extend(names.iter().cloned());
                }
            }
            Err(why) => {
                notes.push(format!(
                    "play `{}`: unread variables not checked: {why}",
                    play.name
                ));
                unjudged.extend(hosts.iter().map(|h| h.name.as_str()));
            }
        }
    }
    by_host.retain(|name, _| !unjudged.contains(name));
    (by_host, notes)
}

/// One warning per place an unread variable is set, for the hosts its plays target;
/// `notes` says which plays were not judged and why.
pub fn unread_vars(
    inv: &Inventory,
    sources: &[PathBuf],
    pb: &Playbook,
) -> (Vec<Finding>, Vec<String>) {
    let (by_host, notes) = read_by_host(inv, pb);
    let mut places: BTreeMap<(String, usize, String), Place> = BTreeMap::new();
    let mut texts = BTreeMap::new();
    for (host, read) in by_host.values() {
        let unread = host.vars.keys().filter(|var| {
            !read.contains(*var)
                && !host.extra.contains_key(*var)
                && !OWN_VARS.contains(&var.as_str())
                && !is_magic(var)
        });
        for var in unread {
            let candidates = read.iter().map(String::as_str);
            let near = did_you_mean(var, candidates.chain(OWN_VARS.iter().copied()));
            for (file, line) in located(sources, host, var, &mut texts) {
                let place = places.entry((file, line, var.clone())).or_default();
                place.hosts.push(host.name.clone());
                place.near = near.map(str::to_string);
            }
        }
    }
    let allowed = pb
        .plays
        .iter()
        .find_map(|p| p.lint_allow.get(RULE))
        .map(|why| format!("{why} (play: lint_allow: {RULE})"));
    let findings = places
        .into_iter()
        .map(|((file, line, var), p)| finding(file, line, &var, &p, allowed.clone()))
        .collect();
    (findings, notes)
}

/// Whether a finding names a read variable close to the unread one (a likely misspelling,
/// which the run commands spell out; the others they only count).
pub fn has_near_name(f: &Finding) -> bool {
    f.check == RULE && f.fix.starts_with("rename it to ")
}

fn finding(file: String, line: usize, var: &str, p: &Place, allowed: Option<String>) -> Finding {
    let (hosts, near) = (&p.hosts, &p.near);
    let shown: Vec<String> = hosts.iter().take(3).map(|h| format!("`{h}`")).collect();
    let more = match hosts.len().saturating_sub(3) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let guess = (near.as_ref())
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    Finding {
        severity: Severity::Warning,
        host: None,
        file,
        line,
        check: RULE,
        message: format!(
            "`{var}` is set for {}{more} but no template, task or playbook reads it, so it changes nothing{guess}",
            shown.join(", ")
        ),
        fix: match near {
            Some(n) => format!("rename it to `{n}`"),
            None => format!("remove `{var}`, or read it in a template or task"),
        },
        allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_in_every_inventory_syntax() {
        let yaml = "all:\n  vars:\n    wavix_relam: x   # here\n    other: {wavix_relam: nested, a: 1}\n  # wavix_relam: commented\n    note: \"wavix_relam: in a string\"\n";
        assert_eq!(lines_setting(yaml, "wavix_relam"), [3, 4]);
        let ini = "[pbx]\npbx1 ansible_host=a wavix_relam=x\n[pbx:vars]\nwavix_relam = y\n; wavix_relam=z\nxwavix_relam=no\n";
        assert_eq!(lines_setting(ini, "wavix_relam"), [2, 4]);
        let toml = "[pbx.vars]\n\"wavix_relam\" = \"x\"\nwavix_relam_2 = 1\n";
        assert_eq!(lines_setting(toml, "wavix_relam"), [2]);
    }

    #[test]
    fn did_you_mean_only_when_close() {
        let read = ["wavix_realm", "wavix_proxy", "user", "users"];
        assert_eq!(
            did_you_mean("wavix_relam", read.iter().copied()),
            Some("wavix_realm")
        );
        assert_eq!(
            did_you_mean("wavix_prxy", read.iter().copied()),
            Some("wavix_proxy")
        );
        assert_eq!(did_you_mean("usr", read.iter().copied()), Some("user"));
        assert_eq!(did_you_mean("external_ip", read.iter().copied()), None);
    }

    #[test]
    fn included_templates_are_followed() {
        let t = "{% include 'a.j2' %}{%- import \"m.j2\" as m %}{% from 'f.j2' import x %}{% extends name %}";
        assert_eq!(named_templates(t), ["a.j2", "m.j2", "f.j2"]);
    }
}
