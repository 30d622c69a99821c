//! Ansible's TOML inventory (`ansible.builtin.toml`), as ansible-core 2.19's
//! `plugins/inventory/toml.py` reads it: top-level tables are groups, each with `vars`
//! (a table), `children` (a list of group names, each of which is thereby a group) and
//! `hosts` (a table of host → table of variables). Values keep TOML's types.
//!
//! *Decision*: a key other than `vars`, `children` and `hosts` in a group, or a group that
//! is not a table, is refused (Ansible warns and skips it), as in YAML inventories: a typo
//! such as `host` would otherwise drop hosts without a word.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use super::ini::located;
use super::{InventoryError, RawGroup, Top, Vars};

pub(super) fn read(path: &Path, text: &str) -> Result<Top, InventoryError> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        located(path, line, column, e.message().to_string())
    })?;
    let invalid = |message: String| InventoryError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let json = |v: toml::Value| -> Result<Value, InventoryError> {
        serde_json::to_value(v).map_err(|e| invalid(e.to_string()))
    };
    let mut top: Top = IndexMap::new();
    for (group, body) in doc {
        let toml::Value::Table(body) = body else {
            return Err(invalid(format!("group `{group}` is not a table")));
        };
        let mut g = RawGroup::default();
        for (key, data) in body {
            match (key.as_str(), data) {
                ("vars", toml::Value::Table(t)) => {
                    let mut vars = Vars::new();
                    for (k, v) in t {
                        vars.insert(k, json(v)?);
                    }
                    g.vars = Some(vars);
                }
                ("children", toml::Value::Array(a)) => {
                    let mut children = IndexMap::new();
                    for c in a {
                        let toml::Value::String(c) = c else {
                            return Err(invalid(format!(
                                "group `{group}`: `children` holds a non-string"
                            )));
                        };
                        children.insert(c, None);
                    }
                    g.children = Some(children);
                }
                ("hosts", toml::Value::Table(t)) => {
                    let mut hosts = IndexMap::new();
                    for (h, v) in t {
                        let toml::Value::Table(v) = v else {
                            return Err(invalid(format!(
                                "group `{group}`: host `{h}` is not a table of variables"
                            )));
                        };
                        let mut vars = Vars::new();
                        for (k, x) in v {
                            vars.insert(k, json(x)?);
                        }
                        hosts.insert(h, Some(vars));
                    }
                    g.hosts = Some(hosts);
                }
                (k @ ("vars" | "hosts"), _) => {
                    return Err(invalid(format!("group `{group}`: `{k}` is not a table")))
                }
                ("children", _) => {
                    return Err(invalid(format!(
                        "group `{group}`: `children` is not a list"
                    )))
                }
                (other, _) => {
                    return Err(invalid(format!(
                        "group `{group}`: unknown key `{other}` (hosts, vars, children)"
                    )))
                }
            }
        }
        top.insert(group, Some(g));
    }
    Ok(top)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}
