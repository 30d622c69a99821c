//! Checks of the directory (users and their contexts) and of the contexts nothing reaches.

use super::numbers::{e164_fix, e164_problem, weak_password};
use super::tree::{row, Tree, STOCK_CONTEXTS};
use super::{Ctx, Severity};
use crate::freeswitch::{classify, FileKind};

/// `context-unused`: mod_dialplan_xml.c `dialplan_hunt()` runs a call in the context its
/// channel names: a gateway's `context` (sofia.c `sofia_handle_sip_i_invite()`) or a
/// user's `user_context` (sofia.c, mod_dptools.c `user_outgoing_channel()`). A context
/// neither names is usually a name that does not match its gateway or user.
pub(super) fn context_unused(cx: &mut Ctx<'_>, tree: &Tree<'_>) {
    // The gateways as looked up by name: of several with one name, the last.
    let mut referenced: Vec<String> = (tree.by_name.values())
        .map(|&i| tree.gateways[i].context.clone())
        .collect();
    for (_, doc) in tree.docs(FileKind::Directory) {
        referenced.extend(
            doc.descendants()
                .filter(|n| {
                    n.has_tag_name("variable") && n.attribute("name") == Some("user_context")
                })
                .filter_map(|n| n.attribute("value").map(str::to_string)),
        );
    }
    let has_routing_sources = !tree.by_name.is_empty()
        || tree
            .files
            .keys()
            .any(|k| classify(k) == FileKind::Directory);
    for (name, (rel, line)) in &tree.contexts {
        if has_routing_sources
            && !STOCK_CONTEXTS.contains(&name.as_str())
            && !referenced.contains(name)
        {
            cx.push(Severity::Warning, rel, *line, "context-unused",
                format!("no gateway `context` and no directory `user_context` refers to context `{name}`, so no call reaches it"),
                "make the gateway's `context` (inbound) or the user's `user_context` (outbound) name this context".into());
        }
    }
}

/// `rel`'s document if it is a directory file that parses.
fn directory<'t, 'a>(tree: &'t Tree<'a>, rel: &str) -> Option<&'t roxmltree::Document<'a>> {
    (classify(rel) == FileKind::Directory)
        .then(|| tree.parsed.get(rel))
        .flatten()
}

/// The values of a directory file's `<variable name="NAME">`s, with their lines.
fn variables<'t>(tree: &'t Tree<'_>, rel: &str, name: &'t str) -> Vec<(&'t str, usize)> {
    let Some(doc) = directory(tree, rel) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.has_tag_name("variable") && n.attribute("name") == Some(name))
        .filter_map(|v| Some((v.attribute("value")?, row(doc, v))))
        .collect()
}

/// `context-missing` of a user: mod_dialplan_xml.c `dialplan_hunt()` logs "Context %s not
/// found" for a `user_context` no dialplan defines, and the user's calls go nowhere.
pub(super) fn user_context(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    for (val, line) in variables(tree, rel, "user_context") {
        if tree.have_dialplan() && !tree.context_known(val) {
            cx.push(Severity::Error, rel, line, "context-missing",
                format!("`user_context` is `{val}`, which no dialplan context defines"),
                "set it to the dialplan context this user's calls should run in (the `<context name>`, not a gateway name)".into());
        }
    }
}

/// `e164` of a caller ID: what the trunk is sent (internal calls show the extension, as
/// they should). Providers refuse or rewrite a caller ID that is not E.164; no FreeSWITCH
/// source decides this.
pub(super) fn caller_id(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    for (val, line) in variables(tree, rel, "outbound_caller_id_number") {
        if !val.contains('$') {
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
}

/// `password-weak`: sofia_reg.c `sofia_reg_parse_auth()` compares a REGISTER's digest
/// with the user's `password` param, expanded: one rule for a literal and a `$${var}`
/// (stock vanilla's users all take `$${default_password}`, which vars.xml sets to 1234).
/// FreeSWITCH accepts it, so a warning.
pub(super) fn password_weak(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    let Some(doc) = directory(tree, rel) else {
        return;
    };
    for p in doc.descendants().filter(|n| n.has_tag_name("param")) {
        let (Some("password"), Some(v)) = (p.attribute("name"), p.attribute("value")) else {
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
        let (value, via) = match v.strip_prefix("$${").and_then(|r| r.strip_suffix('}')) {
            Some(var) => match tree.vars.get(var) {
                Some(x) => (x.as_str(), format!(" (through `$${{{var}}}`)")),
                None => continue,
            },
            None => (v, String::new()),
        };
        if let Some(why) = weak_password(value) {
            cx.push(
                Severity::Warning,
                rel,
                row(doc, p),
                "password-weak",
                format!("directory user password{via} is {why}: anyone who can reach the profile can register as this user and call out"),
                "set a strong password (from the vault or the environment)".into(),
            );
        }
    }
}
