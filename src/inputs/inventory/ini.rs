//! Ansible's INI inventory, read as ansible-core 2.19's `plugins/inventory/ini.py` reads it.
//!
//! - Lines are stripped; blank lines and lines starting with `#` or `;` are skipped.
//! - `[group]`, `[group:vars]`, `[group:children]`, each optionally followed by a `#`
//!   comment. Hosts before any section are in `ungrouped`.
//! - A host line is split as Python's `shlex.split(line, comments=True)` splits it: quotes
//!   are removed, and a `#` outside quotes starts a comment, even inside a word. The first
//!   word is the host (`name`, `name:port`, ranges); the others are `key=value`.
//! - A `[group:vars]` line is split at its first `=`; the value is everything after it.
//! - Every value is `ast.literal_eval`'d when that succeeds, else kept as text
//!   ([`super::pyliteral`]): host lines and `:vars` alike, whatever Ansible's guide says
//!   about `:vars` being strings (ansible-core 2.19 reads `myvar=23` there as the number).
//! - A group named in `[x:children]` or `[x:vars]` must be declared by a `[group]` or
//!   `[group:children]` header somewhere in the file (or by an earlier source): otherwise
//!   the whole file is refused, as Ansible refuses it.

use std::collections::BTreeSet;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use super::{pyliteral, InventoryError, RawGroup, Top, Vars};
use crate::inputs::source::SourceError;

/// Extension-less files: INI unless the first line that is not blank or a comment looks
/// like YAML (`key:` / `key: value`, `- item`, `{`, `---`). `host:2222` is INI (YAML would
/// read it as one string, which is no inventory). Ansible tries YAML first and falls back
/// to INI; deciding on the first line keeps a broken YAML inventory's error a YAML error.
pub(super) fn looks_like_ini(text: &str) -> bool {
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
    else {
        return false;
    };
    if first.starts_with('[') {
        return true;
    }
    let yaml_key = first.ends_with(':') || first.contains(": ") || first.contains(":\t");
    !(yaml_key || first.starts_with('-') || first.starts_with('{'))
}

pub(super) fn located(path: &Path, line: usize, column: usize, message: String) -> InventoryError {
    InventoryError::Source(SourceError::Yaml {
        path: path.to_path_buf(),
        line,
        column,
        message,
    })
}

/// The value of an INI `key=value`, as ansible-core's `_parse_value` gives it.
pub(super) fn ini_value(raw: &str) -> Value {
    pyliteral::literal_eval(raw).unwrap_or_else(|| Value::String(raw.to_string()))
}

/// `shlex.split(line, comments=True)` (POSIX mode): each word with the column it starts
/// at. Errors give the column of the problem.
fn shlex_words(line: &str) -> Result<Vec<(usize, String)>, (usize, &'static str)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start: Option<usize> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' | '"' => {
                start.get_or_insert(i);
                loop {
                    match chars.next() {
                        Some((_, x)) if x == c => break,
                        // Inside double quotes a backslash escapes only `"` and `\`.
                        Some((_, '\\')) if c == '"' => match chars.peek() {
                            Some(&(_, n @ ('"' | '\\'))) => {
                                chars.next();
                                cur.push(n);
                            }
                            _ => cur.push('\\'),
                        },
                        Some((_, x)) => cur.push(x),
                        None => return Err((i + 1, "no closing quotation")),
                    }
                }
            }
            '\\' => {
                start.get_or_insert(i);
                match chars.next() {
                    Some((_, x)) => cur.push(x),
                    None => return Err((i + 1, "no escaped character after `\\`")),
                }
            }
            '#' => break,
            c if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    out.push((s + 1, std::mem::take(&mut cur)));
                }
            }
            c => {
                start.get_or_insert(i);
                cur.push(c);
            }
        }
    }
    if let Some(s) = start {
        out.push((s + 1, cur));
    }
    Ok(out)
}

/// `[name]` or `[name:kind]`, then optional spaces and a `#` comment (ini.py's `section`
/// pattern: the name has no `:`, `]` or whitespace, the kind is word characters).
fn section_header(line: &str) -> Option<(&str, &str)> {
    let inner_end = line.find(']')?;
    let inner = &line[1..inner_end];
    let after = line[inner_end + 1..].trim_start();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let (name, kind) = inner.split_once(':').unwrap_or((inner, ""));
    let name_ok = !name.is_empty() && !name.contains(|c: char| c == ']' || c.is_whitespace());
    let kind_ok = (inner.contains(':') && !kind.is_empty() || kind.is_empty())
        && kind.chars().all(|c| c.is_alphanumeric() || c == '_');
    (name_ok && kind_ok).then_some((name, kind))
}

/// A `[group:children]` line: a group name and an optional comment.
fn child_name(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| c == ':' || c == ']' || c.is_whitespace() || c == '#')
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(end);
    let rest = rest.trim_start();
    (!name.is_empty() && (rest.is_empty() || rest.starts_with('#'))).then_some(name)
}

/// A group mentioned before (or without) being declared: ini.py's `pending_declarations`.
struct Pending {
    line: usize,
    /// `[x:children]` sections that name it, in order; empty for `[it:vars]`.
    parents: Vec<String>,
}

/// Read an INI inventory. `known` are the groups earlier sources declared (a
/// `[x:children]` may name them).
pub(super) fn ini(
    path: &Path,
    text: &str,
    known: &BTreeSet<String>,
) -> Result<Top, InventoryError> {
    enum Section {
        Hosts(String),
        Vars(String),
        Children(String),
    }
    let mut top: Top = IndexMap::new();
    let mut declared: BTreeSet<String> = known.clone();
    declared.extend(["all".to_string(), "ungrouped".to_string()]);
    let mut pending: IndexMap<String, Pending> = IndexMap::new();
    let mut section = Section::Hosts("ungrouped".into());
    fn get<'a>(top: &'a mut Top, name: &str) -> &'a mut RawGroup {
        top.entry(name.to_string())
            .or_insert_with(|| Some(RawGroup::default()))
            .get_or_insert_with(RawGroup::default)
    }
    fn add_child(top: &mut Top, parent: &str, child: &str) {
        get(top, child);
        get(top, parent)
            .children
            .get_or_insert_with(IndexMap::new)
            .insert(child.to_string(), None);
    }
    fn add_pending_children(top: &mut Top, pending: &mut IndexMap<String, Pending>, g: &str) {
        let Some(p) = pending.shift_remove(g) else {
            return;
        };
        for parent in p.parents {
            add_child(top, &parent, g);
            if pending.get(&parent).is_some_and(|q| !q.parents.is_empty()) {
                add_pending_children(top, pending, &parent);
            }
        }
    }
    for (n, raw_line) in text.lines().enumerate() {
        let line_no = n + 1;
        let trimmed = raw_line.trim();
        let indent = raw_line.len() - raw_line.trim_start().len();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            let Some((name, kind)) = section_header(trimmed) else {
                return Err(located(
                    path,
                    line_no,
                    indent + 1,
                    "a section header is `[group]`, `[group:vars]` or `[group:children]`, then at most a `#` comment".into(),
                ));
            };
            let name = name.to_string();
            section = match kind {
                "" => Section::Hosts(name.clone()),
                "vars" => Section::Vars(name.clone()),
                "children" => Section::Children(name.clone()),
                other => {
                    return Err(located(
                        path,
                        line_no,
                        indent + 2 + name.len() + 1,
                        format!("unknown section kind `:{other}` (`:vars` or `:children`)"),
                    ))
                }
            };
            if declared.insert(name.clone()) && kind == "vars" && !pending.contains_key(&name) {
                pending.insert(
                    name.clone(),
                    Pending {
                        line: line_no,
                        parents: Vec::new(),
                    },
                );
            }
            get(&mut top, &name);
            if kind != "vars" {
                if let Some(p) = pending.get(&name) {
                    if p.parents.is_empty() {
                        pending.shift_remove(&name);
                    } else {
                        add_pending_children(&mut top, &mut pending, &name);
                    }
                }
            }
            continue;
        }
        match &section {
            Section::Hosts(g) => {
                let w = shlex_words(trimmed)
                    .map_err(|(c, why)| located(path, line_no, indent + c, why.into()))?;
                let Some(((_, host), rest)) = w.split_first() else {
                    continue;
                };
                if host.ends_with(':') {
                    return Err(located(
                        path,
                        line_no,
                        indent + 1,
                        format!("host `{host}` ends in `:`, which is kept for a port"),
                    ));
                }
                if host == "---" {
                    return Err(located(
                        path,
                        line_no,
                        indent + 1,
                        "`---` starts a YAML document: name the file .yml".into(),
                    ));
                }
                let mut vars = Vars::new();
                for (col, word) in rest {
                    let Some((k, v)) = word.split_once('=') else {
                        return Err(located(
                            path,
                            line_no,
                            indent + col,
                            format!("`{word}` is not `key=value`"),
                        ));
                    };
                    vars.insert(k.to_string(), ini_value(v));
                }
                let hosts = get(&mut top, g).hosts.get_or_insert_with(IndexMap::new);
                match hosts.entry(host.clone()).or_insert(None) {
                    Some(old) => old.extend(vars),
                    slot => *slot = Some(vars),
                }
            }
            Section::Vars(g) => {
                let Some((k, v)) = trimmed.split_once('=') else {
                    return Err(located(
                        path,
                        line_no,
                        indent + 1,
                        format!("`{trimmed}` is not `key=value`"),
                    ));
                };
                let k = k.trim();
                if k.is_empty() || k.contains(char::is_whitespace) {
                    return Err(located(
                        path,
                        line_no,
                        indent + 1,
                        format!("`{k}` is not a variable name"),
                    ));
                }
                get(&mut top, g)
                    .vars
                    .get_or_insert_with(Vars::new)
                    .insert(k.to_string(), ini_value(v.trim()));
            }
            Section::Children(g) => {
                let Some(child) = child_name(trimmed) else {
                    return Err(located(
                        path,
                        line_no,
                        indent + 1,
                        format!("`{trimmed}` is not a group name"),
                    ));
                };
                if declared.contains(child) {
                    add_child(&mut top, g, child);
                } else {
                    let p = pending.entry(child.to_string()).or_insert(Pending {
                        line: line_no,
                        parents: Vec::new(),
                    });
                    p.parents.push(g.clone());
                }
            }
        }
    }
    // Ansible reports the first group still undeclared.
    if let Some((name, p)) = pending.first() {
        let message = match p.parents.last() {
            None => format!("section [{name}:vars] is for a group no `[{name}]` or `[{name}:children]` declares"),
            Some(parent) => format!("section [{parent}:children] names the group `{name}`, which no `[{name}]` or `[{name}:children]` declares"),
        };
        return Err(located(path, p.line, 1, message));
    }
    // An empty `ungrouped` is not a group anyone wrote (the inventory adds its own).
    if top
        .get("ungrouped")
        .is_some_and(|g| g.as_ref().is_none_or(|g| g.hosts.is_none()))
    {
        top.shift_remove("ungrouped");
    }
    Ok(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Top, InventoryError> {
        ini(Path::new("hosts"), text, &BTreeSet::new())
    }

    #[test]
    fn ini_reads_as_ansible_does_and_names_bad_lines() {
        let top = read(
            "lone ansible_host=10.0.0.9\n[us]\npbx-[1:2] ansible_port=2222 note=\"a b\" on=True # comment\n[us:vars]\nwavix_realm = us.wavix.net\nport=22 # a comment\n[pbx:children] # parents\nus\n",
        )
        .unwrap();
        let us = top["us"].as_ref().unwrap();
        let h = us.hosts.as_ref().unwrap();
        assert_eq!(h.keys().collect::<Vec<_>>(), ["pbx-[1:2]"]);
        let v = h["pbx-[1:2]"].as_ref().unwrap();
        assert_eq!(v["ansible_port"], Value::from(2222));
        assert_eq!(v["note"], "a b");
        assert_eq!(v["on"], true);
        assert_eq!(v.len(), 3, "the comment is no variable: {v:?}");
        // :vars values are literals too, as ansible-core reads them; 0640 is not a number.
        assert_eq!(us.vars.as_ref().unwrap()["port"], 22);
        assert_eq!(ini_value("0640"), "0640");
        assert_eq!(us.vars.as_ref().unwrap()["wavix_realm"], "us.wavix.net");
        assert!(top["pbx"]
            .as_ref()
            .unwrap()
            .children
            .as_ref()
            .unwrap()
            .contains_key("us"));
        assert!(top["ungrouped"]
            .as_ref()
            .unwrap()
            .hosts
            .as_ref()
            .unwrap()
            .contains_key("lone"));
        for (text, want) in [
            ("[us\nx\n", "hosts:1:1: a section header"),
            ("[us] trailing\n", "hosts:1:1: a section header"),
            (
                "[us:hostvars]\n",
                "hosts:1:5: unknown section kind `:hostvars`",
            ),
            ("[us]\npbx1 port\n", "hosts:2:6: `port` is not `key=value`"),
            (
                "[us:vars]\njust words\n",
                "hosts:2:1: `just words` is not `key=value`",
            ),
            ("[us]\npbx1 a=\"open\n", "hosts:2:8: no closing quotation"),
            ("[us]\npbx1:\n", "hosts:2:1: host `pbx1:` ends in `:`"),
        ] {
            let e = read(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn host_lines_split_as_python_shlex_splits_them() {
        let w = |s: &str| -> Vec<String> {
            shlex_words(s)
                .unwrap()
                .into_iter()
                .map(|(_, w)| w)
                .collect()
        };
        assert_eq!(w("h a=\"x y\" b='1'"), ["h", "a=x y", "b=1"]);
        assert_eq!(w("h a=b#c d=e"), ["h", "a=b"]);
        assert_eq!(w("h s=\"'03#pa33w0rd'\" # c"), ["h", "s='03#pa33w0rd'"]);
        assert_eq!(w("h a=\\ b c=\"q\\\"\\n\""), ["h", "a= b", "c=q\"\\n"]);
        assert_eq!(w("h e=\"\""), ["h", "e="]);
    }

    #[test]
    fn groups_must_be_declared_somewhere_in_the_file() {
        // Declared later: fine, in either order.
        let top = read("[usa:children]\nsoutheast\n[southeast:children]\natlanta\n[atlanta]\nh1\n")
            .unwrap();
        assert!(top["usa"]
            .as_ref()
            .unwrap()
            .children
            .as_ref()
            .unwrap()
            .contains_key("southeast"));
        assert!(top["southeast"]
            .as_ref()
            .unwrap()
            .children
            .as_ref()
            .unwrap()
            .contains_key("atlanta"));
        let top = read("[g:vars]\nx=1\n[g]\nh\n").unwrap();
        assert_eq!(top["g"].as_ref().unwrap().vars.as_ref().unwrap()["x"], 1);
        let e = read("[usa:children]\nsoutheast\nnortheast\n[southeast]\nh\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("hosts:3:1: section [usa:children] names the group `northeast`"),
            "{e}"
        );
        let e = read("[g:vars]\nx=1\n").unwrap_err().to_string();
        assert!(
            e.starts_with("hosts:1:1: section [g:vars] is for a group"),
            "{e}"
        );
        // A group an earlier source declared may be named.
        let known = BTreeSet::from(["pbx".to_string()]);
        assert!(ini(Path::new("h"), "[all:children]\npbx\n", &known).is_ok());
    }
}
