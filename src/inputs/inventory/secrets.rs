//! Secrets in an inventory: `{env: NAME}`, `{file: PATH}` and `{vault: ARMORED}` values
//! resolved when it loads, each kept as a [`Secret`] whatever its variable is called.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{InventoryError, Top, Vars};
use crate::inputs::source;
use crate::inputs::vault::{Vault, VaultError};
use crate::secret::Secret;

/// Replace `{env: NAME}`, `{file: PATH}` and `{vault: ARMORED}` values by what they point at,
/// collecting the results as secrets.
fn resolve(
    v: &mut Value,
    var: &str,
    origin: &str,
    vault: &Vault,
    secrets: &mut Vec<Secret>,
) -> Result<(), InventoryError> {
    let err = |message: String| InventoryError::Secret {
        origin: origin.to_string(),
        place: None,
        var: var.to_string(),
        message,
    };
    match v {
        Value::Object(o)
            if o.len() == 1 && ["env", "file", "vault"].iter().any(|k| o.contains_key(*k)) =>
        {
            let (kind, arg) = o.iter().next().expect("one entry");
            let arg = arg
                .as_str()
                .ok_or_else(|| err(format!("`{kind}:` takes a string")))?;
            let value = match kind.as_str() {
                "env" => std::env::var(arg)
                    .map_err(|_| err(format!("environment variable `{arg}` is not set")))?,
                "file" => {
                    let refused = |e: source::FileRefusal| err(format!("secret file {arg}: {e}"));
                    let bytes =
                        source::read_regular(Path::new(arg), crate::secret::MAX_SECRET_BYTES)
                            .map_err(refused)?;
                    String::from_utf8(bytes)
                        .map_err(|_| err(format!("secret file {arg}: it is not valid UTF-8")))?
                        .trim_end_matches(['\n', '\r'])
                        .to_string()
                }
                // No key at all: said where the value is, like the other secrets.
                _ => vault.decrypt_str(arg, var).map_err(|e| match e {
                    VaultError::NoKey { .. } => err(VaultError::NoKey { what: None }.to_string()),
                    e => e.into(),
                })?,
            };
            secrets.push(Secret::new(value.clone()));
            *v = Value::String(value);
        }
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                resolve(x, k, origin, vault, secrets)?;
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                resolve(x, var, origin, vault, secrets)?;
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn resolve_vars(
    vars: &mut Vars,
    origin: &str,
    vault: &Vault,
    secrets: &mut Vec<Secret>,
) -> Result<(), InventoryError> {
    for (k, v) in vars.iter_mut() {
        resolve(v, k, origin, vault, secrets)?;
    }
    Ok(())
}

/// The secrets each group's inline variables (and its hosts' inline variables) resolved to.
pub(super) type GroupSecrets = BTreeMap<String, Vec<Secret>>;

/// [`resolve_vars`] over every group of a source as written, before walking: a group's
/// secrets are filed under its name, whichever source or place in the tree named it.
pub(super) fn resolve_top(
    top: &mut Top,
    origin: &str,
    vault: &Vault,
    secrets: &mut GroupSecrets,
) -> Result<(), InventoryError> {
    for (name, group) in top.iter_mut() {
        let Some(group) = group else { continue };
        let mine = secrets.entry(name.clone()).or_default();
        if let Some(vars) = group.vars.as_mut() {
            resolve_vars(vars, origin, vault, mine)
                .map_err(|e| placed(e, format!("group `{name}`")))?;
        }
        for (host, vars) in group.hosts.iter_mut().flat_map(|h| h.iter_mut()) {
            let Some(vars) = vars else { continue };
            resolve_vars(vars, origin, vault, mine)
                .map_err(|e| placed(e, format!("host `{host}`")))?;
        }
        if let Some(children) = group.children.as_mut() {
            resolve_top(children, origin, vault, secrets)?;
        }
    }
    Ok(())
}

/// A secret's error, told where in the file it is: under which host or group, and on
/// which line (found again in the file's text: only on this error path).
fn placed(e: InventoryError, at: String) -> InventoryError {
    let InventoryError::Secret {
        origin,
        place: None,
        var,
        message,
    } = e
    else {
        return e;
    };
    let line = std::fs::read_to_string(&origin)
        .ok()
        .and_then(|text| line_of(&text, &at, &var));
    InventoryError::Secret {
        origin: match line {
            Some(n) => format!("{origin}:{n}"),
            None => origin,
        },
        place: Some(at),
        var,
        message,
    }
}

/// The line (1-based) where `var` is set under `place` (`host `pbx1``, `group `pbx``): the
/// first `var:` or `var=` after the line that names the host or group, else anywhere.
fn line_of(text: &str, place: &str, var: &str) -> Option<usize> {
    let name = place.split('`').nth(1).unwrap_or("");
    let sets = |l: &str| {
        l.split_once(var).is_some_and(|(before, after)| {
            (before.is_empty() || before.ends_with([' ', '\t', '{', ',']))
                && after.trim_start().starts_with([':', '='])
        })
    };
    let names = |l: &str| {
        let t = l.trim_start().trim_start_matches(['[', '"', '\'']);
        t.strip_prefix(name)
            .is_some_and(|r| r.is_empty() || r.starts_with([':', ' ', ']', '"', '\'']))
    };
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.iter().position(|l| !name.is_empty() && names(l));
    from.and_then(|f| lines[f..].iter().position(|l| sets(l)).map(|k| f + k))
        .or_else(|| lines.iter().position(|l| sets(l)))
        .map(|i| i + 1)
}

/// Every string and number of an encrypted vars file is a secret.
pub(super) fn all_values(v: &Value, out: &mut Vec<Secret>) {
    match v {
        Value::String(s) => out.push(Secret::new(s.clone())),
        Value::Number(n) => out.push(Secret::new(n.to_string())),
        Value::Array(a) => a.iter().for_each(|x| all_values(x, out)),
        Value::Object(o) => o.values().for_each(|x| all_values(x, out)),
        _ => {}
    }
}
