//! The kinds of inventory source Ansible users have, each read into the same shape (the
//! top-level groups of a YAML inventory): YAML, INI, TOML and executable inventory scripts.
//!
//! *Decision*: a source is a script when it is a file with an execute bit and its name does
//! not end in `.yml`, `.yaml`, `.ini`, `.toml` or `.json` (a YAML inventory left executable
//! by a `chmod -R` is still read, not run). It is TOML when it ends in `.toml` (Ansible's
//! `toml` plugin takes only those), INI when it ends in `.ini` or when its first line that
//! is not blank or a comment does not look like YAML (see [`ini::looks_like_ini`]), as
//! Ansible's INI files are usually named `hosts` with no extension.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use super::{ini, toml_source, InventoryError, RawGroup, Top, Vars};
use crate::inputs::source::{self, SourceError};

/// Endings Ansible's inventory plugins leave out of a folder (`inventory_ignore_extensions`),
/// plus `.age` (a vault file is read as group or host variables, never as a source).
const IGNORED_IN_FOLDER: [&str; 8] = [
    "~", ".orig", ".bak", ".cfg", ".retry", ".pyc", ".pyo", ".age",
];

/// A folder given as `-i` stands for the files in it, by name, as Ansible reads one (hidden
/// files, sub-folders such as `group_vars/` and ignored endings left out); its
/// `group_vars/` and `host_vars/` are then beside each of them. A folder with none is an error.
pub(super) fn expand_folders(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InventoryError> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let invalid = |message: String| InventoryError::Invalid {
            path: p.clone(),
            message,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| invalid(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
                let name = name.unwrap_or_default();
                f.is_file()
                    && !name.starts_with('.')
                    && !IGNORED_IN_FOLDER.iter().any(|x| name.ends_with(x))
            })
            .collect();
        if files.is_empty() {
            return Err(invalid("the folder holds no inventory file".into()));
        }
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

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

/// Read one source, and say who wrote it. `known` are the groups earlier sources declared
/// (an INI `[x:children]` may name them, as in Ansible).
pub(super) fn read(path: &Path, known: &BTreeSet<String>) -> Result<(Top, Author), InventoryError> {
    let name = path.to_string_lossy();
    let data_file = [".yml", ".yaml", ".ini", ".toml", ".json"]
        .iter()
        .any(|x| name.ends_with(x));
    if !data_file && is_executable(path) {
        // `-i inventory.sh` is the file in the current folder, as for Ansible: a name
        // without a slash would otherwise be looked up on PATH.
        if path.parent() == Some(Path::new("")) {
            return Ok((script(&Path::new(".").join(path))?, Author::Script));
        }
        return Ok((script(path)?, Author::Script));
    }
    let text = source::read_text(path)?;
    if name.ends_with(".toml") {
        return Ok((toml_source::read(path, &text)?, Author::Operator));
    }
    if name.ends_with(".ini") || (!data_file && ini::looks_like_ini(&text)) {
        return Ok((ini::ini(path, &text, known)?, Author::Operator));
    }
    let top = source::parse_yaml(path, &text).map_err(|e| {
        // A playbook is a list of plays; an inventory a map of groups. A list given to
        // `-i` is most likely the playbook, the two arguments swapped.
        let listed = matches!(
            yaml_serde::from_str::<yaml_serde::Value>(&text),
            Ok(yaml_serde::Value::Sequence(_))
        );
        match e {
            SourceError::Yaml { .. } if listed => InventoryError::Invalid {
                path: path.to_path_buf(),
                message: "read as an inventory (`-i`), but it is a list, as a playbook is: \
                          are the inventory and the playbook swapped? (an inventory is a map \
                          of groups: `all:`, `pbx:`, ...)"
                    .into(),
            },
            e => e.into(),
        }
    })?;
    Ok((top, Author::Operator))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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

    /// `-i inventory/`: the files in the folder, by name, with its group_vars/ and
    /// host_vars/; editor backups, hidden and vault files are not sources.
    #[test]
    fn a_folder_is_the_inventory_files_in_it() {
        let dir = super::super::tests::tempdir("folder-inventory");
        let w = |rel: &str, text: &str| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("b.yml", "all:\n  hosts:\n    pbx2: {}\n");
        w("a.yml", "all:\n  hosts:\n    pbx1: {}\n");
        w("a.yml~", "not: [yaml");
        w(".hidden", "not: [yaml");
        w("group_vars/all.yml", "x: 1\n");
        w("host_vars/pbx2.yml", "y: 2\n");
        let vault = crate::inputs::vault::Vault::none();
        let inv = super::super::Inventory::load_all(std::slice::from_ref(&dir), &vault).unwrap();
        let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["pbx1", "pbx2"]);
        assert_eq!(inv.hosts[1].vars["x"], 1);
        assert_eq!(inv.hosts[1].vars["y"], 2);
        let empty = dir.join("group_vars/empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(super::super::Inventory::load_all(&[empty], &vault).is_err());
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
