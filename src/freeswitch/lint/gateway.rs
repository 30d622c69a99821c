//! Checks of trunks: what mod_sofia makes of each `<gateway>` (sofia.c `parse_gateways()`)
//! and where the provider's calls land (sofia.c `sofia_handle_sip_i_invite()`).

use super::tree::{GatewayAt, Tree};
use super::{Ctx, Severity};
use crate::freeswitch::{classify, gateways, preprocess, sofia, xml_param, FileKind};

/// Gateway params mod_sofia reads: every `strcasecmp(var, "...")` of `parse_gateways()` in
/// sofia.c at FreeSWITCH v1.10.12 (commit a88d069d), extracted from the source, not guessed.
/// Anything else in a `<gateway>`'s `<param>`s is ignored by mod_sofia.
const GATEWAY_PARAMS: &[&str] = &[
    "908-retry-seconds",
    "auth-username",
    "caller-id-in-from",
    "contact-host",
    "contact-in-ping",
    "contact-params",
    "context",
    "destination-prefix",
    "distinct-to",
    "expire-seconds",
    "extension",
    "extension-in-contact",
    "from-domain",
    "from-user",
    "gw-auth-acl",
    "outbound-proxy",
    "password",
    "ping",
    "ping-max",
    "ping-min",
    "ping-monitoring",
    "ping-user-agent",
    "proxy",
    "realm",
    "reg-id",
    "register",
    "register-proxy",
    "register-transport",
    "retry-seconds",
    "retry_seconds",
    "rfc-5626",
    "scheme",
    "timeout-seconds",
    "username",
];

/// `gateway-unincluded`: sofia.c `parse_gateways()` reads the `<gateway>`s of a profile's
/// `<gateways>`, which hold what its `include` directives bring in; a gateway file in
/// `sip_profiles/X/` that no profile includes is never loaded. Judged only when some
/// profile file is among the files.
pub(super) fn unincluded(cx: &mut Ctx<'_>, tree: &Tree<'_>) {
    let files = tree.files;
    let profiles: Vec<&String> = files
        .iter()
        .filter(|(rel, _)| matches!(classify(rel), FileKind::Profile { .. }))
        .map(|(_, t)| t)
        .collect();
    if profiles.is_empty() {
        return;
    }
    let includes: Vec<String> = profiles
        .iter()
        .flat_map(|t| preprocess::parse(t))
        .filter(|d| d.well_spelt && d.cmd == "include")
        .map(|d| d.data)
        .collect();
    for rel in files.keys() {
        let FileKind::Gateway { profile } = classify(rel) else {
            continue;
        };
        let name = rel.rsplit('/').next().unwrap_or("");
        let included = includes.iter().any(|pat| {
            pat.split_once('/').is_some_and(|(dir, glob)| {
                dir == profile && (glob == "*.xml" || glob == name || glob == "*")
            })
        });
        // A file whose gateways are all commented out (or that has none) loses nothing;
        // one that has some still loads and routes without them, so a warning.
        let active = files
            .get(rel)
            .and_then(|t| gateways(t))
            .is_some_and(|g| !g.is_empty());
        if !included && active {
            cx.push(Severity::Warning, rel, 1, "gateway-unincluded",
                format!("no profile includes `{profile}/`: FreeSWITCH never loads the gateways in {rel}"),
                format!("put it in a folder a profile includes (stock: `external/`), or add `<X-PRE-PROCESS cmd=\"include\" data=\"{profile}/*.xml\"/>` to a profile's `<gateways>`"));
        }
    }
}

/// `gateway-duplicate`: sofia.c `parse_gateways()` logs "Ignoring duplicate gateway" and
/// skips a name already loaded.
pub(super) fn duplicate(cx: &mut Ctx<'_>, tree: &Tree<'_>, g: &GatewayAt) {
    let earlier = tree.gateways[..g.index]
        .iter()
        .rev()
        .find(|o| o.gw.name == g.gw.name);
    if let Some(other) = earlier {
        cx.push(
            Severity::Error,
            &g.rel,
            g.gw.line,
            "gateway-duplicate",
            format!(
                "gateway `{}` is also defined in {}: FreeSWITCH ignores the second one",
                g.gw.name, other.rel
            ),
            "give each gateway a unique name".into(),
        );
    }
}

/// `gateway-name`: sofia.c `parse_gateways()` checks
/// `switch_regex_match(name, "^[\\w\\.\\-\\_]+$")`, else logs "Ignoring invalid name" and
/// does not load the gateway at all.
pub(super) fn name(cx: &mut Ctx<'_>, _: &Tree<'_>, g: &GatewayAt) {
    let name = &g.gw.name;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        cx.push(Severity::Error, &g.rel, g.gw.line, "gateway-name",
            format!("gateway name `{name}`: mod_sofia loads only names of letters, digits, `_`, `.` and `-` (it logs \"Ignoring invalid name\" and skips this gateway)"),
            "rename the gateway".into());
    }
}

/// `gateway-param`: sofia.c `parse_gateways()` reads only [`GATEWAY_PARAMS`].
pub(super) fn param(cx: &mut Ctx<'_>, _: &Tree<'_>, g: &GatewayAt) {
    let (rel, name) = (g.rel.as_str(), &g.gw.name);
    for (p, v) in &g.gw.params {
        if p == "sip_cid_type" {
            cx.push(Severity::Warning, rel, g.gw.line, "gateway-param",
                format!("gateway `{name}`: `sip_cid_type` is a channel variable, not one of mod_sofia's gateway params, so this line has no effect"),
                format!("set it in the gateway's `<variables>`: `<variable name=\"sip_cid_type\" value=\"{v}\" direction=\"outbound\"/>`"));
        } else if !GATEWAY_PARAMS.contains(&p.as_str()) {
            cx.push(
                Severity::Warning,
                rel,
                g.gw.line,
                "gateway-param",
                format!("gateway `{name}`: unknown param `{p}` (mod_sofia ignores it)"),
                "check the spelling against the gateway params of mod_sofia".into(),
            );
        }
    }
}

/// `gateway-realm`: sofia.c `parse_gateways()` falls back to the gateway's name for an
/// unset `realm`, and to the realm for an unset `proxy`.
pub(super) fn realm(cx: &mut Ctx<'_>, _: &Tree<'_>, g: &GatewayAt) {
    if g.gw.param("realm").is_none() && g.gw.param("proxy").is_none() {
        cx.push(Severity::Error, &g.rel, g.gw.line, "gateway-realm",
            format!("gateway `{}` has neither `realm` nor `proxy`: FreeSWITCH falls back to the gateway name as host", g.gw.name),
            "set `proxy` (and `realm` if the provider's auth realm differs)".into());
    }
}

/// `gateway-credentials`: sofia.c `parse_gateways()` logs "ERROR: username param is
/// REQUIRED!" (and the same for `password`) for a registering gateway and does not load it.
/// A placeholder password loads, and fails every registration.
pub(super) fn credentials(cx: &mut Ctx<'_>, _: &Tree<'_>, g: &GatewayAt) {
    if !g.gw.registers() {
        return;
    }
    let (rel, name, line) = (g.rel.as_str(), &g.gw.name, g.gw.line);
    if g.gw.param("username").is_none_or(str::is_empty) {
        cx.push(
            Severity::Error,
            rel,
            line,
            "gateway-credentials",
            format!("registering gateway `{name}` has no `username`"),
            "set `username`, or `register=false` for IP authentication".into(),
        );
    }
    match g.gw.param("password") {
        None | Some("") => cx.push(
            Severity::Error,
            rel,
            line,
            "gateway-credentials",
            format!("registering gateway `{name}` has an empty password"),
            "set the trunk password (from the vault or the environment)".into(),
        ),
        Some(p) if p.starts_with("YOUR_") || p == "SIP_TRUNK_PASSWORD" => cx.push(
            Severity::Error,
            rel,
            line,
            "gateway-credentials",
            format!("gateway `{name}` still has the placeholder password `{p}`"),
            "set the real trunk password".into(),
        ),
        _ => {}
    }
}

/// `gateway-noreg`: sofia.c `parse_gateways()` reads `expire-seconds` only for the
/// REGISTER it sends, which `register=false` turns off.
pub(super) fn noreg(cx: &mut Ctx<'_>, _: &Tree<'_>, g: &GatewayAt) {
    if g.gw.registers() {
        return;
    }
    for p in ["expire-seconds"] {
        if g.gw.param(p).is_some() {
            cx.push(
                Severity::Warning,
                &g.rel,
                g.gw.line,
                "gateway-noreg",
                format!(
                    "gateway `{}` does not register (`register=false`), so `{p}` has no effect",
                    g.gw.name
                ),
                format!("remove `{p}`, or set `ping` to monitor the trunk with OPTIONS"),
            );
        }
    }
}

/// `inbound-did`: sofia.c `sofia_handle_sip_i_invite()`: a call to the registered Contact
/// `gw+NAME` runs in the gateway's context with the destination the gateway's `extension`
/// gives (the username when unset; `auto_to_user` takes `To`).
pub(super) fn inbound_did(cx: &mut Ctx<'_>, _: &Tree<'_>, g: &GatewayAt) {
    if !g.gw.registers() {
        return;
    }
    let (name, context) = (&g.gw.name, &g.context);
    match g.gw.param("extension") {
        Some("auto_to_user") | Some("auto") => {}
        Some(e) if !e.is_empty() => {}
        _ => cx.push(Severity::Error, &g.rel, g.gw.line, "inbound-did",
            format!("gateway `{name}` registers without an `extension` param: calls the provider sends to its registered Contact (gw+{name}) get the trunk username `{}` as destination, so no DID route in `{context}` ever matches", g.gw.param("username").unwrap_or("?")),
            "add `<param name=\"extension\" value=\"auto_to_user\"/>` (the DID from the To header)".into()),
    }
}

/// `inbound-ip-auth`: sofia.c `sofia_handle_sip_i_invite()`: a call naming no gateway runs
/// in the profile's context unless an `apply-inbound-acl` with a pass context matches its
/// source address.
pub(super) fn inbound_ip_auth(cx: &mut Ctx<'_>, tree: &Tree<'_>, g: &GatewayAt) {
    let profile = tree.files.get(&format!("sip_profiles/{}.xml", g.profile));
    let (false, Some(profile_text)) = (g.gw.registers(), profile) else {
        return;
    };
    let (name, context) = (&g.gw.name, g.context.as_str());
    let acl_to_context = xml_param::params(profile_text, "settings")
        .iter()
        .any(|(n, v)| n == "apply-inbound-acl" && v.split(':').nth(1) == Some(context));
    let profile_context = sofia::profile_context(profile_text);
    if !acl_to_context && profile_context != context {
        cx.push(Severity::Error, &g.rel, g.gw.line, "inbound-ip-auth",
            format!("gateway `{name}` does not register, so its provider's calls name no gateway and run in the profile's context (`{profile_context}`), never in `{context}`"),
            format!("list the provider's addresses in an ACL and add `<param name=\"apply-inbound-acl\" value=\"LIST:{context}\"/>` to the profile"));
    }
}

/// `context-missing` of a gateway: mod_dialplan_xml.c `dialplan_hunt()` logs "Context %s
/// not found" and the call fails with NO_ROUTE_DESTINATION.
pub(super) fn context_missing(cx: &mut Ctx<'_>, tree: &Tree<'_>) {
    if !tree.have_dialplan() {
        return;
    }
    for (name, &i) in &tree.by_name {
        let g = &tree.gateways[i];
        let ctx = g.context.as_str();
        if tree.context_known(ctx) {
            continue;
        }
        let near: Vec<&String> = tree.contexts.keys().collect();
        cx.push(Severity::Error, &g.rel, g.gw.line, "context-missing",
            format!("gateway `{name}` sends inbound calls to context `{ctx}`, which no dialplan defines (defined: {})", near.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")),
            format!("set the gateway's `context` to the dialplan context that handles its calls{}", near.first().map(|c| format!(", e.g. `{c}`")).unwrap_or_default()));
    }
}
