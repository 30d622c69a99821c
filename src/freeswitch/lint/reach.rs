//! What FreeSWITCH reads of a tree: the files freeswitch.xml includes and the modules
//! modules.conf.xml loads. Findings in the rest are left out of a tree's lint, with the
//! reason, rather than reported as if they mattered.

use std::collections::BTreeMap;

use crate::freeswitch::{preprocess, xml_param};

/// The files FreeSWITCH reads, following `include` directives from freeswitch.xml
/// (switch_xml.c `preprocess_glob()`: a relative pattern is relative to the including
/// file's folder; `glob(3)`, so `*` skips dot-files). A directive counts even inside a
/// comment: the pre-processor looks for it on the raw line. `None` without freeswitch.xml
/// (a playbook's files, or part of a tree): then every file counts as read.
pub(super) fn included_files(
    files: &BTreeMap<String, String>,
) -> Option<std::collections::BTreeSet<String>> {
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
pub(super) fn loaded_modules(files: &BTreeMap<String, String>) -> Option<Vec<String>> {
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
pub(super) fn owner_module(rel: &str) -> Option<String> {
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
