//! The kinds of inventory source Ansible users have, each read into the same shape (the
//! top-level groups of a YAML inventory): YAML, INI, and executable inventory scripts.
//!
//! *Decision*: a source is a script when it is a file with an execute bit and its name does
//! not end in `.yml`, `.yaml`, `.ini` or `.json` (a YAML inventory left executable by a
//! `chmod -R` is still read, not run). It is INI when it ends in `.ini`, or when its first
//! line that is not blank or a comment is a `[section]` or a `host key=value` line (no
//! `:`), as Ansible's INI files are usually named `hosts` with no extension.

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use super::{InventoryError, RawGroup, Top, Vars};
use crate::source::{self, SourceError};

/// How long an inventory script may take to print its inventory.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Who wrote a source's values, which decides whether they may point elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Author {
    /// A file the operator wrote (YAML, INI): its `{env:}`, `{file:}` and `{vault:}`
    /// values are resolved on the controller.
    Operator,
    /// An inventory script's output: data, never resolved. It often relays a CMDB or a
    /// cloud API that people other than the operator can write to, and a value there must
    /// not be able to ask for the controller's environment or files
    /// (`{"env": "SWITCHYARD_VAULT_PASSWORD"}` would push the vault passphrase to a PBX).
    Script,
}

pub(super) fn read(path: &Path) -> Result<(Top, Author), InventoryError> {
    let name = path.to_string_lossy();
    let data_file = [".yml", ".yaml", ".ini", ".json"]
        .iter()
        .any(|x| name.ends_with(x));
    if !data_file && is_executable(path) {
        return Ok((script(path)?, Author::Script));
    }
    let text = source::read_text(path)?;
    if name.ends_with(".ini") || (!data_file && looks_like_ini(&text)) {
        return Ok((ini(path, &text)?, Author::Operator));
    }
    Ok((source::parse_yaml(path, &text)?, Author::Operator))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn looks_like_ini(text: &str) -> bool {
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
    else {
        return false;
    };
    first.starts_with('[') || (!first.contains(':') && !first.starts_with('-'))
}

fn located(path: &Path, line: usize, column: usize, message: String) -> InventoryError {
    InventoryError::Source(SourceError::Yaml {
        path: path.to_path_buf(),
        line,
        column,
        message,
    })
}

/// An INI value as Ansible reads it: `ast.literal_eval` when that succeeds (ini.py
/// `_parse_value`), else the text. So `2222` is a number, `True` a boolean, `'a b'` the
/// string inside the quotes, and `0640` or `yes` stay text (Python refuses leading zeros).
/// This holds in `[group:vars]` too: Ansible's documentation says those are strings, but
/// ansible-core 2.19 reads `wavix_username=100001` there as the number (recorded in
/// tests/fixtures/ansible/), and switchyard follows what Ansible does.
fn ini_value(raw: &str) -> Value {
    let unquoted = |q: char| {
        raw.strip_prefix(q)
            .and_then(|r| r.strip_suffix(q))
            .filter(|_| raw.len() >= 2)
    };
    if let Some(s) = unquoted('"').or_else(|| unquoted('\'')) {
        return Value::String(s.to_string());
    }
    let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    let python_int = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if python_int {
        if let Ok(n) = raw.trim_start_matches('+').parse::<i64>() {
            return Value::from(n);
        }
    }
    let python_float = digits
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && digits.contains(['.', 'e', 'E']);
    if python_float {
        if let Ok(f) = raw.parse::<f64>() {
            return Value::from(f);
        }
    }
    match raw {
        "True" => Value::Bool(true),
        "False" => Value::Bool(false),
        "None" => Value::Null,
        _ => Value::String(raw.to_string()),
    }
}

/// Split a host line into words, keeping quoted values whole; each word with its column.
fn words(line: &str) -> Result<Vec<(usize, String)>, usize> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                start.get_or_insert(i);
                cur.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    out.push((s + 1, std::mem::take(&mut cur)));
                }
            }
            (None, '#') if start.is_none() => break,
            (None, c) => {
                start.get_or_insert(i);
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err(start.unwrap_or(0) + 1);
    }
    if let Some(s) = start {
        out.push((s + 1, cur));
    }
    Ok(out)
}

/// Ansible's INI inventory: `[group]` host lines (`host key=value ...`, ranges allowed),
/// `[group:vars]` (`key=value`), `[group:children]` (group names); hosts before any
/// section are in `ungrouped`.
pub(super) fn ini(path: &Path, text: &str) -> Result<Top, InventoryError> {
    enum Section {
        Hosts(String),
        Vars(String),
        Children(String),
    }
    let mut top: Top = IndexMap::new();
    let mut section = Section::Hosts("ungrouped".into());
    fn get<'a>(top: &'a mut Top, name: &str) -> &'a mut RawGroup {
        top.entry(name.to_string())
            .or_insert_with(|| Some(RawGroup::default()))
            .get_or_insert_with(RawGroup::default)
    }
    for (n, raw_line) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = raw_line.trim_end();
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(inner) = rest.strip_suffix(']') else {
                return Err(located(
                    path,
                    line_no,
                    indent + 1,
                    "a section header is `[group]`, `[group:vars]` or `[group:children]`".into(),
                ));
            };
            let (name, kind) = inner.split_once(':').unwrap_or((inner, ""));
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(located(
                    path,
                    line_no,
                    indent + 2,
                    "empty group name".into(),
                ));
            }
            get(&mut top, &name);
            section = match kind {
                "" => Section::Hosts(name),
                "vars" => Section::Vars(name),
                "children" => Section::Children(name),
                other => {
                    return Err(located(
                        path,
                        line_no,
                        indent + 2 + name.len() + 1,
                        format!("unknown section kind `:{other}` (`:vars` or `:children`)"),
                    ))
                }
            };
            continue;
        }
        match &section {
            Section::Hosts(g) => {
                let w = words(trimmed)
                    .map_err(|c| located(path, line_no, indent + c, "unclosed quote".into()))?;
                let Some(((_, host), rest)) = w.split_first() else {
                    continue;
                };
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
                if trimmed.contains(char::is_whitespace) {
                    return Err(located(
                        path,
                        line_no,
                        indent + 1,
                        format!("`{trimmed}` is not a group name"),
                    ));
                }
                get(&mut top, g)
                    .children
                    .get_or_insert_with(IndexMap::new)
                    .insert(trimmed.to_string(), None);
            }
        }
    }
    // An empty `ungrouped` is not a group anyone wrote.
    if top
        .get("ungrouped")
        .is_some_and(|g| g.as_ref().is_none_or(|g| g.hosts.is_none()))
    {
        top.shift_remove("ungrouped");
    }
    Ok(top)
}

/// Run an executable inventory script with `--list` and read Ansible's JSON: groups as
/// `{"hosts": [...], "vars": {...}, "children": [...]}` (or a bare list of hosts), host
/// variables in `_meta.hostvars`.
fn script(path: &Path) -> Result<Top, InventoryError> {
    let invalid = |message: String| InventoryError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let mut child = std::process::Command::new(path)
        .arg("--list")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| invalid(format!("cannot run the inventory script: {e}")))?;
    // Read both pipes while waiting, so a script that prints a lot never blocks.
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let reader = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            use std::io::Read as _;
            let _ = (&mut r)
                .take(source::MAX_INPUT_BYTES + 1)
                .read_to_end(&mut buf);
            buf
        })
    };
    let (out, err) = (reader(Box::new(out)), reader(Box::new(err)));
    let deadline = std::time::Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(invalid(format!(
                    "the inventory script did not finish within {} s",
                    SCRIPT_TIMEOUT.as_secs()
                )));
            }
        }
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    if !status.success() {
        let first = String::from_utf8_lossy(&err)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>();
        return Err(invalid(format!(
            "the inventory script exited {}{}",
            status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "on a signal".into()),
            if first.is_empty() {
                String::new()
            } else {
                format!(": {first}")
            }
        )));
    }
    if out.len() as u64 > source::MAX_INPUT_BYTES {
        return Err(invalid(format!(
            "the inventory script printed more than {} bytes",
            source::MAX_INPUT_BYTES
        )));
    }
    let doc: IndexMap<String, Value> = serde_json::from_slice(&out).map_err(|e| {
        invalid(format!(
            "`--list` printed invalid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })?;
    json_to_top(doc).map_err(invalid)
}

/// Ansible's `--list` JSON as top-level groups.
pub(super) fn json_to_top(doc: IndexMap<String, Value>) -> Result<Top, String> {
    let mut top: Top = IndexMap::new();
    let names = |v: &Value, what: &str| -> Result<Vec<String>, String> {
        v.as_array()
            .ok_or(format!("`{what}` is not a list"))?
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or(format!("`{what}` holds a non-string"))
            })
            .collect()
    };
    let mut hostvars: IndexMap<String, Vars> = IndexMap::new();
    for (group, body) in doc {
        if group == "_meta" {
            if let Some(hv) = body.get("hostvars") {
                let hv: IndexMap<String, Vars> = serde_json::from_value(hv.clone())
                    .map_err(|e| format!("`_meta.hostvars`: {e}"))?;
                hostvars = hv;
            }
            continue;
        }
        let mut g = RawGroup::default();
        match &body {
            Value::Array(_) => {
                g.hosts = Some(
                    names(&body, &group)?
                        .into_iter()
                        .map(|h| (h, None))
                        .collect(),
                )
            }
            Value::Object(o) => {
                for key in o.keys() {
                    if !["hosts", "vars", "children"].contains(&key.as_str()) {
                        return Err(format!(
                            "group `{group}`: unknown key `{key}` (hosts, vars, children)"
                        ));
                    }
                }
                if let Some(h) = o.get("hosts") {
                    g.hosts = Some(
                        names(h, &format!("{group}.hosts"))?
                            .into_iter()
                            .map(|h| (h, None))
                            .collect(),
                    );
                }
                if let Some(v) = o.get("vars") {
                    g.vars = Some(
                        serde_json::from_value(v.clone())
                            .map_err(|e| format!("`{group}.vars`: {e}"))?,
                    );
                }
                if let Some(c) = o.get("children") {
                    g.children = Some(
                        names(c, &format!("{group}.children"))?
                            .into_iter()
                            .map(|c| (c, None))
                            .collect(),
                    );
                }
            }
            _ => return Err(format!("group `{group}` is neither a list nor a mapping")),
        }
        top.insert(group, Some(g));
    }
    if !hostvars.is_empty() {
        let all = top
            .entry("all".into())
            .or_insert(None)
            .get_or_insert_with(RawGroup::default);
        let hosts = all.hosts.get_or_insert_with(IndexMap::new);
        for (h, v) in hostvars {
            hosts.insert(h, Some(v));
        }
    }
    Ok(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_reads_as_ansible_does_and_names_bad_lines() {
        let top = ini(
            Path::new("hosts"),
            "lone ansible_host=10.0.0.9\n[us]\npbx-[1:2] ansible_port=2222 note=\"a b\" on=True\n[us:vars]\nwavix_realm = us.wavix.net\nport=22\n[pbx:children]\nus\n",
        )
        .unwrap();
        let us = top["us"].as_ref().unwrap();
        let h = us.hosts.as_ref().unwrap();
        assert_eq!(h.keys().collect::<Vec<_>>(), ["pbx-[1:2]"]);
        let v = h["pbx-[1:2]"].as_ref().unwrap();
        assert_eq!(v["ansible_port"], Value::from(2222));
        assert_eq!(v["note"], "a b");
        assert_eq!(v["on"], true);
        // :vars values are literals too, as ansible-core reads them; 0640 is not a number.
        assert_eq!(us.vars.as_ref().unwrap()["port"], 22);
        assert_eq!(ini_value("0640"), "0640");
        assert_eq!(ini_value("-3"), -3);
        assert_eq!(ini_value("1.5"), 1.5);
        assert_eq!(ini_value("yes"), "yes");
        assert_eq!(ini_value("None"), Value::Null);
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
            (
                "[us:hostvars]\n",
                "hosts:1:5: unknown section kind `:hostvars`",
            ),
            ("[us]\npbx1 port\n", "hosts:2:6: `port` is not `key=value`"),
            (
                "[us:vars]\njust words\n",
                "hosts:2:1: `just words` is not `key=value`",
            ),
            ("[us]\npbx1 a=\"open\n", "hosts:2:6: unclosed quote"),
        ] {
            let e = ini(Path::new("hosts"), text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn list_json_becomes_groups_and_host_vars() {
        let doc: IndexMap<String, Value> = serde_json::from_str(
            r#"{"pbx": {"hosts": ["a", "b"], "vars": {"x": 1}, "children": ["eu"]},
                "eu": ["c"], "_meta": {"hostvars": {"a": {"ansible_port": 2222}}}}"#,
        )
        .unwrap();
        let top = json_to_top(doc).unwrap();
        assert_eq!(top["eu"].as_ref().unwrap().hosts.as_ref().unwrap().len(), 1);
        let all = top["all"].as_ref().unwrap();
        assert_eq!(
            all.hosts.as_ref().unwrap()["a"].as_ref().unwrap()["ansible_port"],
            2222
        );
        let bad: IndexMap<String, Value> = serde_json::from_str(r#"{"g": {"host": []}}"#).unwrap();
        assert!(json_to_top(bad).unwrap_err().contains("unknown key `host`"));
    }
}
