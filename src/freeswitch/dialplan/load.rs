//! Reading the dialplan section: `dialplan/*.xml` pre-processed as switch_xml.c does
//! (`include` globs, `$${globals}`), and the XML read into extensions and conditions.

use std::collections::{BTreeMap, BTreeSet};

use super::hunt::Pcre;
use super::{Action, Break, Condition, Dialplan, DialplanError, Extension};

impl Dialplan {
    /// Build from a conf tree given as relative path → text (the final files of a host).
    pub fn load(files: &BTreeMap<String, String>) -> Result<Dialplan, DialplanError> {
        let mut dp = Dialplan::default();
        // vars.xml first: its `set` lines are the globals every other file sees.
        if let Some(v) = files.get("vars.xml") {
            let _ = preprocess(files, "vars.xml", v, &mut dp.globals, 0);
        }
        let mut top: Vec<&String> = files
            .keys()
            .filter(|k| {
                k.strip_prefix("dialplan/")
                    .is_some_and(|r| !r.contains('/') && r.ends_with(".xml"))
            })
            .collect();
        top.sort();
        for rel in top {
            let text = preprocess(files, rel, &files[rel], &mut dp.globals, 0)?;
            let doc = parse(rel, &text)?;
            for ctx in doc.descendants().filter(|n| n.has_tag_name("context")) {
                let name = ctx.attribute("name").unwrap_or("").to_string();
                let extensions = ctx
                    .children()
                    .filter(|n| n.has_tag_name("extension"))
                    .map(extension)
                    .collect();
                dp.contexts.push((name, extensions));
            }
        }
        // The profiles' own `context` (sofia.c: a gateway without one takes its profile's,
        // and a profile without one has `default`).
        let mut profile_context: BTreeMap<String, String> = BTreeMap::new();
        for (rel, text) in files {
            let Some(name) = rel
                .strip_prefix("sip_profiles/")
                .and_then(|r| r.strip_suffix(".xml"))
                .filter(|r| !r.contains('/'))
            else {
                continue;
            };
            let text = substitute(text, &dp.globals);
            if let Ok(doc) = roxmltree::Document::parse(&strip_preprocess(&text)) {
                let ctx = doc
                    .descendants()
                    .filter(|n| n.has_tag_name("settings"))
                    .flat_map(|n| n.children().filter(|c| c.has_tag_name("param")))
                    .filter(|p| p.attribute("name") == Some("context"))
                    .filter_map(|p| p.attribute("value"))
                    .next_back();
                profile_context.insert(name.to_string(), ctx.unwrap_or("default").to_string());
            }
        }
        if let Some(text) = files.get("autoload_configs/modules.conf.xml") {
            if let Ok(doc) = roxmltree::Document::parse(&strip_preprocess(text)) {
                dp.modules = Some(
                    doc.descendants()
                        .filter(|n| n.has_tag_name("load"))
                        .filter_map(|n| n.attribute("module"))
                        .map(String::from)
                        .collect(),
                );
            }
        }
        for (rel, text) in files {
            if rel.starts_with("directory/") && rel.ends_with(".xml") {
                let text = substitute(text, &dp.globals);
                if let Ok(doc) = roxmltree::Document::parse(&strip_preprocess(&text)) {
                    for u in doc.descendants().filter(|n| n.has_tag_name("user")) {
                        if let Some(id) = u.attribute("id") {
                            dp.user_params
                                .insert(id.to_string(), crate::freeswitch::name_values(u, "param"));
                            dp.users.insert(
                                id.to_string(),
                                crate::freeswitch::name_values(u, "variable"),
                            );
                        }
                    }
                }
            }
            // Groups with their `include`s expanded (vanilla's `default` group includes
            // directory/default/*.xml).
            if rel.starts_with("directory/") && rel.ends_with(".xml") {
                let text =
                    preprocess(files, rel, text, &mut dp.globals.clone(), 0).unwrap_or_default();
                if let Ok(doc) = roxmltree::Document::parse(&strip_preprocess(&text)) {
                    for g in doc.descendants().filter(|n| n.has_tag_name("group")) {
                        let Some(name) = g.attribute("name") else {
                            continue;
                        };
                        let members: Vec<String> = g
                            .descendants()
                            .filter(|n| n.has_tag_name("user"))
                            .filter_map(|u| u.attribute("id").map(String::from))
                            .collect();
                        dp.groups
                            .entry(name.to_string())
                            .or_default()
                            .extend(members);
                    }
                }
            }
            if rel.starts_with("sip_profiles/") && rel.ends_with(".xml") {
                let text = substitute(text, &dp.globals);
                // sip_profiles/NAME.xml or sip_profiles/NAME/*.xml: profile NAME.
                let profile = rel["sip_profiles/".len()..]
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(".xml");
                let fallback = profile_context
                    .get(profile)
                    .map(String::as_str)
                    .unwrap_or("default");
                if let Some(gws) = crate::freeswitch::gateways(&text) {
                    for g in gws {
                        let ctx = g.param("context").unwrap_or(fallback).to_string();
                        dp.gateway_context.insert(g.name.clone(), ctx);
                    }
                }
            }
        }
        Ok(dp)
    }

    /// The modules installed on the PBX (file stems of its module folder, `mod_sofia`...):
    /// a module `modules.conf.xml` loads but the PBX lacks is not loaded.
    pub fn with_installed_modules(mut self, installed: BTreeSet<String>) -> Dialplan {
        self.installed = Some(installed);
        self
    }

    /// Whether `module` is loaded: `Some(true/false)` from `modules.conf.xml` (and the
    /// installed modules, when known); `None` when the tree does not say.
    pub fn module_loaded(&self, module: &str) -> Option<bool> {
        let loaded = self.modules.as_ref()?.contains(module);
        Some(loaded && self.installed.as_ref().is_none_or(|i| i.contains(module)))
    }

    /// [`Dialplan::load`] over a tree of which only the `managed` files are known to be as
    /// the host has them (the rest are stock stand-ins): see [`Dialplan::opaque`].
    pub fn load_managed(
        files: &BTreeMap<String, String>,
        managed: &BTreeSet<String>,
    ) -> Result<Dialplan, DialplanError> {
        Ok(Dialplan::load(files)?.opaque(managed, files))
    }

    /// Mark every context defined by a file not in `known` as unknown: evaluated offline,
    /// the stock files switchyard ships stand in for the host's own, which may differ; a
    /// route that reaches one stops there and says so.
    pub fn opaque(
        mut self,
        known: &BTreeSet<String>,
        files: &BTreeMap<String, String>,
    ) -> Dialplan {
        let mut defined_by_known = BTreeSet::new();
        for (rel, text) in files {
            if !rel.starts_with("dialplan/") {
                continue;
            }
            let names: Vec<String> = text
                .match_indices("<context name=\"")
                .filter_map(|(i, m)| {
                    let rest = &text[i + m.len()..];
                    rest.find('"').map(|e| rest[..e].to_string())
                })
                .collect();
            if known.contains(rel) {
                defined_by_known.extend(names);
            } else {
                self.opaque.extend(names);
            }
        }
        self.opaque.retain(|c| !defined_by_known.contains(c));
        self
    }
}

fn parse<'a>(rel: &str, text: &'a str) -> Result<roxmltree::Document<'a>, DialplanError> {
    roxmltree::Document::parse(text).map_err(|e| DialplanError(format!("{rel}: {e}")))
}

pub(super) fn extension(n: roxmltree::Node) -> Extension {
    Extension {
        name: n.attribute("name").unwrap_or("UNKNOWN").to_string(),
        cont: n
            .attribute("continue")
            .is_some_and(crate::freeswitch::switch_true),
        conditions: n
            .children()
            .filter(|c| c.has_tag_name("condition"))
            .map(condition)
            .collect(),
        require_nested: true,
    }
}

pub(super) fn condition(n: roxmltree::Node) -> Condition {
    let action = |a: roxmltree::Node| Action {
        app: a.attribute("application").unwrap_or("").to_string(),
        data: a
            .text()
            .filter(|t| !t.trim().is_empty())
            .map(String::from)
            .unwrap_or_else(|| a.attribute("data").unwrap_or("").to_string()),
        inline: a
            .attribute("inline")
            .is_some_and(crate::freeswitch::switch_true),
        times: a
            .attribute("loop")
            .and_then(|l| l.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1)
            .min(100),
    };
    let unknowable = n
        .attribute("regex")
        .map(|r| format!("a `regex=\"{r}\"` block (not evaluated)"));
    let time = crate::freeswitch::tod::ATTRS
        .iter()
        .filter_map(|a| Some((a.to_string(), n.attribute(*a)?.to_string())))
        .collect();
    let expression = n
        .children()
        .find(|c| c.has_tag_name("expression"))
        .and_then(|e| e.text())
        .map(String::from)
        .unwrap_or_else(|| n.attribute("expression").unwrap_or("").to_string());
    let compiled = (n.attribute("field").is_some() && !expression.contains("${"))
        .then(|| Pcre::new(&expression));
    Condition {
        field: n.attribute("field").map(String::from),
        compiled,
        expression,
        brk: match n.attribute("break").map(str::to_ascii_lowercase).as_deref() {
            Some("on-true") => Break::OnTrue,
            Some("always") => Break::Always,
            Some("never") => Break::Never,
            _ => Break::OnFalse,
        },
        unknowable,
        time,
        actions: n
            .children()
            .filter(|c| c.has_tag_name("action"))
            .map(action)
            .collect(),
        anti: n
            .children()
            .filter(|c| c.has_tag_name("anti-action"))
            .map(action)
            .collect(),
        nested: n
            .children()
            .filter(|c| c.has_tag_name("condition"))
            .map(condition)
            .collect(),
        require_nested: n
            .attribute("require-nested")
            .is_none_or(crate::freeswitch::switch_true),
    }
}

/// The pre-processor over one file: `set` lines define globals (for the text after them),
/// `include` lines are replaced by the matching files (relative to this file's folder,
/// in name order, their `<include>` wrapper dropped); `$${name}` is substituted.
fn preprocess(
    files: &BTreeMap<String, String>,
    rel: &str,
    text: &str,
    globals: &mut BTreeMap<String, String>,
    depth: usize,
) -> Result<String, DialplanError> {
    if depth > 20 {
        return Err(DialplanError(format!(
            "{rel}: includes nested more than 20 deep"
        )));
    }
    let dir = rel.rsplit_once('/').map(|x| x.0).unwrap_or("");
    let mut out = String::new();
    let visible = crate::freeswitch::preprocess::visible_lines(text);
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let seen = visible.get(n).map(String::as_str).unwrap_or("");
        if let Some((cmd, data, true)) = crate::freeswitch::preprocess::parse_line(seen) {
            match cmd.as_str() {
                "set" => {
                    if let Some((k, v)) = data.split_once('=') {
                        let v = substitute(v, globals);
                        globals.insert(k.to_string(), v);
                    }
                }
                "include" => {
                    let pattern = if dir.is_empty() {
                        data.clone()
                    } else {
                        format!("{dir}/{data}")
                    };
                    let mut matches: Vec<&String> =
                        files.keys().filter(|k| glob(&pattern, k)).collect();
                    matches.sort();
                    for m in matches {
                        let inner = preprocess(files, m, &files[m], globals, depth + 1)?;
                        out.push_str(&unwrap_include(&inner));
                        out.push('\n');
                    }
                }
                _ => {}
            }
            if line.ends_with('\n') {
                out.push('\n');
            }
            continue;
        }
        out.push_str(&substitute(line, globals));
    }
    Ok(out)
}

/// The plain `${name}` references of `text` that expand to nothing in the call (`empty`
/// expands one as the call's queue would).
pub(super) fn unset_variables(text: &str, empty: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(e) = after.find('}') else { break };
        let name = &after[..e];
        let global = i > 0 && rest.as_bytes()[i - 1] == b'$';
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if plain && !global && empty(name) && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        rest = &after[e + 1..];
    }
    out
}

/// `$${name}` → its global (unknown ones stay as written).
fn substitute(text: &str, globals: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("$${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        match after.find('}') {
            Some(e) => {
                match globals.get(&after[..e]) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[i..i + 3 + e + 1]),
                }
                rest = &after[e + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn strip_preprocess(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !l.trim_start().starts_with("<X-PRE-PROCESS") && !l.trim_start().starts_with("<?")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The content of an included file without its `<include>` wrapper (or `<?xml?>` line).
fn unwrap_include(text: &str) -> String {
    let t = strip_preprocess(text);
    let t = t.trim();
    match (t.find("<include>"), t.rfind("</include>")) {
        (Some(s), Some(e)) if s < e => t[s + "<include>".len()..e].to_string(),
        _ => t.to_string(),
    }
}

/// `*` within one path component, as glob(3) for the pre-processor's patterns.
fn glob(pattern: &str, path: &str) -> bool {
    let (pd, pf) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let (d, f) = path.rsplit_once('/').unwrap_or(("", path));
    pd == d && glob_name(pf, f)
}

fn glob_name(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            if !tail.contains('*') {
                return rest.len() >= tail.len() && rest.ends_with(tail);
            }
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob_name(tail, &rest[i..]))
        }
    }
}
