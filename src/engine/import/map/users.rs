//! Directory users of `directory/default/` → `users` (and their secrets → `user_secrets`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{xml_body, Mapping};
use crate::freeswitch;

/// A phone number as E.164 digits (optional `+`, 8 to 15 digits), if it is one.
fn e164(v: &str) -> Option<String> {
    let d = v.strip_prefix('+').unwrap_or(v);
    (d.len() >= 8 && d.len() <= 15 && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0'))
        .then(|| d.to_string())
}

/// Directory users of `directory/default/` → `users`; returns their `user_context`.
pub(super) fn users(
    files: &BTreeMap<String, String>,
    globals: &BTreeMap<String, String>,
    m: &mut Mapping,
) -> Option<String> {
    let mut list = Vec::new();
    let mut secrets = Map::new();
    let mut contexts: Vec<(String, String)> = Vec::new();
    for (rel, text) in files.iter().filter(|(r, _)| r.starts_with("directory/")) {
        let body = xml_body(text);
        let Ok(doc) = roxmltree::Document::parse(&body) else {
            continue;
        };
        for u in doc.descendants().filter(|n| n.has_tag_name("user")) {
            // A `type="pointer"` user is a group's reference to a user defined elsewhere.
            let Some(id) = u
                .attribute("id")
                .filter(|_| u.attribute("type") != Some("pointer"))
            else {
                continue;
            };
            if let Some((entry, secret, context)) = user(rel, id, u, globals, m) {
                if let Some(c) = context {
                    contexts.push((rel.clone(), c));
                }
                list.push(entry);
                secrets.insert(id.to_string(), secret);
            }
        }
    }
    if list.is_empty() {
        return None;
    }
    m.set("users", Value::Array(list));
    m.set("user_secrets", Value::Object(secrets));
    let first = contexts.first().map(|(_, c)| c.clone());
    for (rel, c) in &contexts {
        if Some(c) != first.as_ref() {
            m.unmapped(rel, format!("user_context `{c}` differs from the other users'; the playbook gives all users one context (wavix_user_context)"));
        }
    }
    if let Some(c) = &first {
        m.set("wavix_user_context", json!(c));
    }
    first
}

/// One user: its entry of `users`, its entry of `user_secrets` and its `user_context`, or
/// `None` (listed as not mapped).
fn user(
    rel: &str,
    id: &str,
    u: roxmltree::Node,
    globals: &BTreeMap<String, String>,
    m: &mut Mapping,
) -> Option<(Value, Value, Option<String>)> {
    let params: BTreeMap<String, String> = freeswitch::name_values(u, "param");
    let vars: BTreeMap<String, String> = freeswitch::name_values(u, "variable");
    if let Some(why) = super::unwritable_name(id) {
        m.unmapped(rel, format!("a user whose id cannot be written: {why}"));
        return None;
    }
    if !rel.starts_with("directory/default/") {
        m.unmapped(
            rel,
            format!("user `{id}` is not in directory/default/, where the playbook's users are"),
        );
        return None;
    }
    let (Some(pw), Some(vm)) = (params.get("password"), params.get("vm-password")) else {
        m.unmapped(
            rel,
            format!(
                "user `{id}` has no password or no vm-password param; the playbook writes both"
            ),
        );
        return None;
    };
    // `$${name}` resolved from vars.xml, as FreeSWITCH's pre-processor does.
    let resolve = |v: &str| -> String {
        v.strip_prefix("$${")
            .and_then(|r| r.strip_suffix('}'))
            .and_then(|n| globals.get(n))
            .cloned()
            .unwrap_or_else(|| v.to_string())
    };
    let eff_num = vars.get("effective_caller_id_number").map(|v| resolve(v));
    let out_num = vars.get("outbound_caller_id_number").map(|v| resolve(v));
    let Some(number) = out_num
        .as_deref()
        .and_then(e164)
        .or_else(|| eff_num.as_deref().and_then(e164))
    else {
        m.unmapped(rel, format!("user `{id}` has no caller ID number in E.164 digits (outbound_caller_id_number, effective_caller_id_number); the playbook needs one"));
        return None;
    };
    if out_num.as_deref().and_then(e164).is_none() {
        m.note(rel, format!("user `{id}`: outbound_caller_id_number is not an E.164 number, so the trunk was sent another caller ID; the playbook sends {number} (the user's effective_caller_id_number)"));
    }
    if eff_num.as_deref() != Some(id) {
        m.note(rel, format!("user `{id}`: effective_caller_id_number is not the extension, so calls between users showed it; the playbook shows the extension between users and {number} on the trunk"));
    }
    let name = vars
        .get("effective_caller_id_name")
        .map(|v| resolve(v))
        .unwrap_or_else(|| id.to_string());
    let mut e = Map::new();
    e.insert("id".into(), json!(id));
    e.insert("caller_id_name".into(), json!(name));
    e.insert("caller_id_number".into(), json!(number));
    if let Some(on) = vars.get("outbound_caller_id_name") {
        let on = resolve(on);
        if on != name {
            e.insert("outbound_caller_id_name".into(), json!(on));
        }
    }
    if let Some(n) = out_num.as_deref().and_then(e164) {
        if n != number {
            e.insert("outbound_caller_id_number".into(), json!(n));
        }
    }
    for (p, _) in params
        .iter()
        .filter(|(p, _)| !matches!(p.as_str(), "password" | "vm-password"))
    {
        m.unmapped(
            rel,
            format!(
                "user `{id}`: param `{p}` has no variable in the playbook; apply would drop it"
            ),
        );
    }
    for (v, value) in &vars {
        let known = match v.as_str() {
            "toll_allow" => value == "domestic,international,local",
            "accountcode" => value == id,
            "user_context"
            | "effective_caller_id_name"
            | "effective_caller_id_number"
            | "outbound_caller_id_name"
            | "outbound_caller_id_number" => true,
            _ => false,
        };
        if !known {
            m.unmapped(rel, format!("user `{id}`: variable `{v}` has no variable in the playbook (or another value than it writes); apply would change it"));
        }
    }
    if vm == id {
        m.note(rel, format!("user `{id}`: the voicemail PIN is the extension number, which anyone who can call the PBX knows; as a secret it is masked wherever the word appears, and switchyard refuses to write it into a file every user on the host may read (the stock switch.conf.xml holds `{id}`): change it in `user_secrets`"));
    }
    if rel != format!("directory/default/{id}.xml") {
        m.note(rel, format!("user `{id}`: the playbook writes directory/default/{id}.xml; remove this file after the apply (import never writes on the PBX)"));
    }
    Some((
        Value::Object(e),
        json!({"password": pw, "vm_password": vm}),
        vars.get("user_context").cloned(),
    ))
}
