//! `switchyard import` (default mode): a PBX's conf tree read as the shipped Wavix playbook's
//! variables (`playbooks/wavix.yml`): gateways → the Wavix variables or `carriers`, in the
//! order the dialplan bridges them; directory users → `users`; DIDs of the trunk's inbound
//! context → `did_routes`; `vars.xml`, the external profile, the ACL and `switch.conf.xml`
//! → the network variables.
//!
//! Pure functions over the files as read (conf-root-relative path → text). What has no
//! variable, or a shape not recognised, is listed with its file and reason ([`Mapping::
//! unmapped`]), never guessed; where the playbook will write something other than what the
//! host has, the finding that explains it is a [`Note`] on that file. A note or a reason
//! never quotes a secret (they name params, never their values).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::Skipped;
use crate::freeswitch::{self, preprocess, xml_param, FileKind, Gateway};

mod dialplan;
#[cfg(test)]
mod tests;
mod users;

/// Variables that hold only secrets: written whole into vault files. A user's password
/// and PIN go to `user_secrets` (id → {password, vm_password}) and a carrier's password to
/// `carrier_passwords` (name → password), which the playbook's templates read when the
/// entry has none of its own: a vault file makes every value in it a secret, masked
/// wherever it appears, and an extension number or a caller ID name must not be.
pub const SECRET_VARS: &[&str] = &[
    "wavix_password",
    "user_secrets",
    "carrier_passwords",
    "freeswitch_esl_password",
];

/// Why the playbook will write a file differently from what the host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub file: String,
    pub text: String,
}

/// One host's conf tree as the playbook's variables.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub vars: Map<String, Value>,
    pub unmapped: Vec<Skipped>,
    pub notes: Vec<Note>,
}

impl Mapping {
    fn unmapped(&mut self, file: &str, reason: impl Into<String>) {
        self.unmapped.push(Skipped {
            rel: file.to_string(),
            reason: reason.into(),
        });
    }

    fn note(&mut self, file: &str, text: impl Into<String>) {
        self.notes.push(Note {
            file: file.to_string(),
            text: text.into(),
        });
    }

    fn set(&mut self, var: &str, value: Value) {
        self.vars.insert(var.to_string(), value);
    }
}

/// The playbook's default for `var` (its play `vars:`), as text.
fn default_str<'a>(defaults: &'a Map<String, Value>, var: &str) -> &'a str {
    defaults.get(var).and_then(Value::as_str).unwrap_or("")
}

/// A file's text with the lines XML cannot parse (`<?xml ...?>`, pre-process lines)
/// blanked, so line numbers stay those of the file.
fn xml_body(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("<?") || t.starts_with("<X-PRE-PROCESS") {
                "\n"
            } else {
                l
            }
        })
        .collect()
}

/// Map one host's conf tree onto the playbook's variables; `defaults` are the play's
/// `vars:` (numbering plans, failover causes, defaults a value may equal).
pub fn map(files: &BTreeMap<String, String>, defaults: &Map<String, Value>) -> Mapping {
    let mut m = Mapping::default();
    let globals = network(files, &mut m);
    let gws = gateways(files, defaults, &mut m);
    let user_context = users::users(files, &globals, &mut m);
    dialplan::map(files, defaults, &gws, user_context.as_deref(), &mut m);
    esl(files, &mut m);
    m
}

/// Why `name` (a user id, a carrier name: it becomes a file name and a key of a vault
/// map) cannot be written, if it cannot: a path separator or a leading dot would name
/// another file, and a map whose only key is `env`, `file` or `vault` is read by the loader
/// as a secret reference (the controller's environment or files), never as data.
fn unwritable_name(name: &str) -> Option<&'static str> {
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+@".contains(c))
    {
        Some("it is not a plain file name (letters, digits, `_-.+@`, not starting with `.`)")
    } else if ["env", "file", "vault"].contains(&name) {
        Some("`env`, `file` and `vault` are the loader's secret references, never data")
    } else {
        None
    }
}

/// A literal IPv4 or IPv6 address (not `stun:...`, `$${var}`, `auto-nat`).
fn is_ip(v: &str) -> bool {
    v.parse::<std::net::IpAddr>().is_ok()
}

/// `vars.xml`, the external profile's ext-*-ip, the ACL, the RTP range. Returns the
/// pre-process variables FreeSWITCH really sets (well-spelt lines).
fn network(files: &BTreeMap<String, String>, m: &mut Mapping) -> BTreeMap<String, String> {
    let mut globals = BTreeMap::new();
    let mut misspelt: BTreeMap<String, String> = BTreeMap::new();
    if let Some(text) = files.get("vars.xml") {
        for d in preprocess::parse(text) {
            let Some((name, value)) = d.assignment() else {
                continue;
            };
            if d.well_spelt {
                globals.insert(name.to_string(), value.to_string());
            } else {
                misspelt.insert(name.to_string(), value.to_string());
                m.note(
                    "vars.xml",
                    format!(
                        "line {}: the tag is not spelt `X-PRE-PROCESS`, so FreeSWITCH ignored it and `{name}` was never set; the playbook writes it spelt right",
                        d.line
                    ),
                );
            }
        }
        if globals.contains_key("outbound-sip-ip") {
            m.note(
                "vars.xml",
                "`outbound-sip-ip` is set but nothing reads a variable of that name (the guide's `sip_from_host=${outbound-sip-ip}` reads a channel variable); the playbook sets `outbound_sip_ip`",
            );
        }
    }
    // The address FreeSWITCH uses, else the one a misspelt line meant (the stock
    // `stun:` value before it is not an address the operator chose).
    let pick = |name: &str| -> Option<String> {
        match globals.get(name) {
            Some(v) if is_ip(v) => Some(v.clone()),
            _ => misspelt.get(name).filter(|v| is_ip(v)).cloned(),
        }
    };
    match (pick("external_rtp_ip"), pick("external_sip_ip")) {
        (Some(rtp), Some(sip)) if rtp == sip => m.set("external_ip", json!(rtp)),
        (Some(rtp), Some(sip)) => m.unmapped(
            "vars.xml",
            format!("external_rtp_ip ({rtp}) and external_sip_ip ({sip}) differ; the playbook's `external_ip` sets one address for both"),
        ),
        (Some(ip), None) | (None, Some(ip)) => m.unmapped(
            "vars.xml",
            format!("only one of external_rtp_ip and external_sip_ip is the address {ip}; the playbook's `external_ip` sets both"),
        ),
        (None, None) => {}
    }
    if let Some(text) = files.get("sip_profiles/external.xml") {
        profile(text, &globals, m);
    }
    acl(files, m);
    rtp_range(files, m);
    globals
}

/// The external profile: ext-*-ip and the provider ACL's `apply-inbound-acl`.
fn profile(text: &str, globals: &BTreeMap<String, String>, m: &mut Mapping) {
    let file = "sip_profiles/external.xml";
    let params: BTreeMap<String, String> =
        xml_param::params(text, "settings").into_iter().collect();
    for (param, var) in [
        ("ext-rtp-ip", "external_rtp_ip"),
        ("ext-sip-ip", "external_sip_ip"),
    ] {
        match params.get(param) {
            Some(v) if is_ip(v) => {
                if !m.vars.contains_key("external_ip") {
                    m.set("external_ip", json!(v));
                }
                m.note(file, format!("`{param}` is the literal address {v}; the playbook points it at `$${{{var}}}` (set in vars.xml from `external_ip`)"));
            }
            Some(v) if v == &format!("$${{{var}}}") => {}
            Some(v) if m.vars.contains_key("external_ip") => m.note(
                file,
                format!("`{param}` is `{v}`; the playbook points it at `$${{{var}}}`"),
            ),
            _ if m.vars.contains_key("external_ip") && globals.contains_key(var) => m.note(
                file,
                format!(
                    "`{param}` is not set, so the profile never used `{var}`; the playbook sets it"
                ),
            ),
            _ => {}
        }
    }
    if let Some(acl) = params.get("apply-inbound-acl") {
        match acl.split(':').collect::<Vec<_>>()[..] {
            [list, inbound, own] => {
                m.set("wavix_acl_name", json!(list));
                m.set("wavix_inbound_context", json!(inbound));
                m.set("external_profile_context", json!(own));
            }
            _ => m.unmapped(
                file,
                format!("apply-inbound-acl `{acl}` is not LIST:CONTEXT:OTHER_CONTEXT, the form the playbook writes"),
            ),
        }
    }
}

/// The provider's addresses: the allow nodes of the list `apply-inbound-acl` names.
fn acl(files: &BTreeMap<String, String>, m: &mut Mapping) {
    let Some(list) = m.vars.get("wavix_acl_name").and_then(Value::as_str) else {
        return;
    };
    let list = list.to_string();
    let file = "autoload_configs/acl.conf.xml";
    let Some(text) = files.get(file) else {
        m.unmapped(
            file,
            format!("the external profile names the ACL `{list}`, which no acl.conf.xml defines"),
        );
        return;
    };
    let body = xml_body(text);
    let Ok(doc) = roxmltree::Document::parse(&body) else {
        m.unmapped(file, "not well-formed XML");
        return;
    };
    let Some(node) = doc
        .descendants()
        .find(|n| n.has_tag_name("list") && n.attribute("name") == Some(list.as_str()))
    else {
        m.unmapped(file, format!("no list named `{list}`"));
        return;
    };
    let mut addrs = Vec::new();
    for n in node.children().filter(|n| n.is_element()) {
        match (n.attribute("type"), n.attribute("cidr")) {
            (Some("allow"), Some(c)) => addrs.push(json!(c.strip_suffix("/32").unwrap_or(c))),
            _ => m.unmapped(
                file,
                format!("a node of the list `{list}` that is not `type=\"allow\" cidr=...`; the playbook writes allow nodes only"),
            ),
        }
    }
    m.set("wavix_inbound_addresses", Value::Array(addrs));
}

/// `switch.conf.xml`'s RTP range; the guide's `autoload_configs/default/` copy is never read.
fn rtp_range(files: &BTreeMap<String, String>, m: &mut Mapping) {
    let port = |rel: &str| -> Option<(Option<u64>, Option<u64>)> {
        let p: BTreeMap<String, String> = xml_param::params(files.get(rel)?, "settings")
            .into_iter()
            .collect();
        let get = |n: &str| p.get(n).and_then(|v| v.trim().parse::<u64>().ok());
        let r = (get("rtp-start-port"), get("rtp-end-port"));
        (r != (None, None)).then_some(r)
    };
    let wrong = "autoload_configs/default/switch.conf.xml";
    let (start, end) = match (port("autoload_configs/switch.conf.xml"), port(wrong)) {
        (Some(r), _) => r,
        (None, Some(r)) => {
            m.note(
                wrong,
                "FreeSWITCH never reads autoload_configs/default/: the RTP range set here was never used (FreeSWITCH's default 16384-32768 was); the playbook sets it in autoload_configs/switch.conf.xml",
            );
            m.note(
                "autoload_configs/switch.conf.xml",
                "the RTP range the operator meant (set in the never-read autoload_configs/default/) is written here",
            );
            r
        }
        (None, None) => {
            m.note(
                "autoload_configs/switch.conf.xml",
                "no RTP range is set, so FreeSWITCH's default 16384-32768 is in use; mapped to rtp_start_port/rtp_end_port as that range, which the playbook writes out",
            );
            (Some(16384), Some(32768))
        }
    };
    for (var, v) in [("rtp_start_port", start), ("rtp_end_port", end)] {
        match v {
            Some(v) => m.set(var, json!(v)),
            None => m.unmapped(
                "autoload_configs/switch.conf.xml",
                format!(
                    "only one end of the RTP range is set; `{var}` stays the playbook's default"
                ),
            ),
        }
    }
}

/// The event socket password, for `switchyard call` and `watch --events`.
fn esl(files: &BTreeMap<String, String>, m: &mut Mapping) {
    let Some(text) = files.get("autoload_configs/event_socket.conf.xml") else {
        return;
    };
    if let Some((_, pw)) = xml_param::params(text, "settings")
        .into_iter()
        .find(|(n, _)| n == "password")
    {
        m.set("freeswitch_esl_password", json!(pw));
    }
}

/// A gateway as found, in the file that defines it.
#[derive(Debug, Clone)]
pub(super) struct FoundGateway {
    pub file: String,
    pub gw: Gateway,
}

/// Params the playbook's gateway templates write (each has a variable or a fixed value).
const KNOWN_PARAMS: &[&str] = &[
    "username",
    "password",
    "realm",
    "proxy",
    "register",
    "expire-seconds",
    "extension",
    "retry-seconds",
    "ping",
    "context",
    "caller-id-in-from",
    "from-domain",
];

/// Every gateway of the external profile's folder, checked param by param. Gateways in
/// another profile's folder are listed as not mapped (the playbook's are all external).
fn gateways(
    files: &BTreeMap<String, String>,
    defaults: &Map<String, Value>,
    m: &mut Mapping,
) -> Vec<FoundGateway> {
    let mut out = Vec::new();
    for (rel, text) in files {
        let FileKind::Gateway { profile } = freeswitch::classify(rel) else {
            continue;
        };
        let Some(gws) = freeswitch::gateways(text) else {
            continue;
        };
        for gw in gws {
            if profile != "external" {
                m.unmapped(rel, format!("gateway `{}` is in the `{profile}` profile; the playbook's gateways are in the external profile", gw.name));
                continue;
            }
            gateway_params(rel, &gw, defaults, m);
            out.push(FoundGateway {
                file: rel.clone(),
                gw,
            });
        }
    }
    out
}

/// The params and variables of one gateway the playbook has no variable for, and the
/// mistakes the playbook's template corrects.
fn gateway_params(rel: &str, gw: &Gateway, defaults: &Map<String, Value>, m: &mut Mapping) {
    let name = &gw.name;
    for (p, v) in &gw.params {
        if p == "sip_cid_type" {
            m.note(rel, format!("gateway `{name}`: `sip_cid_type` is a channel variable, not a gateway param: mod_sofia ignored it; the playbook sets it as a <variable>"));
        } else if p == "retry-seconds" && v != "30" {
            m.unmapped(
                rel,
                format!("gateway `{name}`: retry-seconds {v}: the playbook writes 30"),
            );
        } else if p == "extension" && v != "auto_to_user" {
            m.unmapped(
                rel,
                format!("gateway `{name}`: extension `{v}`: the playbook writes auto_to_user"),
            );
        } else if !KNOWN_PARAMS.contains(&p.as_str()) {
            m.unmapped(rel, format!("gateway `{name}`: param `{p}` has no variable in the playbook; apply would drop it"));
        }
    }
    for v in gw.variables.keys() {
        if !matches!(v.as_str(), "sip_cid_type" | "absolute_codec_string") {
            m.unmapped(rel, format!("gateway `{name}`: variable `{v}` has no variable in the playbook; apply would drop it"));
        }
    }
    if gw.registers() && gw.param("extension").is_none() {
        m.note(rel, format!("gateway `{name}` registers without `extension`: inbound calls arrive at its Contact and the destination was the trunk username, so no DID matched; the playbook adds extension=auto_to_user"));
    }
    if gw.registers() && gw.param("expire-seconds").is_none() {
        let d = defaults
            .get("wavix_expire_seconds")
            .cloned()
            .unwrap_or(json!(600));
        m.note(rel, format!("gateway `{name}` has no expire-seconds (mod_sofia's 3600); the playbook writes wavix_expire_seconds ({d})"));
    }
    if gw.param("retry-seconds").is_none() {
        m.note(
            rel,
            format!("gateway `{name}` has no retry-seconds; the playbook writes 30"),
        );
    }
}

/// `sip_profiles/external/carrier_NAME.xml` → NAME; another file name → its stem.
fn carrier_name(file: &str) -> String {
    let stem = file
        .rsplit('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".xml");
    stem.strip_prefix("carrier_").unwrap_or(stem).to_string()
}

/// What every gateway says alike, or the first gateway's value and a reason to list the
/// others as not mapped.
fn common(
    gws: &[&FoundGateway],
    what: &str,
    get: impl Fn(&Gateway) -> Option<String>,
    m: &mut Mapping,
) -> Option<String> {
    let first = gws.first().and_then(|g| get(&g.gw));
    for g in gws.iter().skip(1) {
        if get(&g.gw) != first {
            m.unmapped(&g.file, format!("gateway `{}`: its {what} differs from gateway `{}`'s; the playbook gives one value for all", g.gw.name, gws[0].gw.name));
        }
    }
    first
}

/// The gateways' realm as mod_sofia takes it: `realm`, else `proxy`, else the name.
fn realm(g: &Gateway) -> String {
    g.param("realm")
        .or(g.param("proxy"))
        .unwrap_or(&g.name)
        .to_string()
}

/// Where REGISTER and INVITEs go: `proxy`, else the realm.
fn proxy(g: &Gateway) -> String {
    g.param("proxy").map_or_else(|| realm(g), str::to_string)
}

/// Settings every gateway shares in the playbook: inbound context, expiry, pings, caller
/// ID passthrough, codecs.
fn shared_gateway_vars(gws: &[&FoundGateway], defaults: &Map<String, Value>, m: &mut Mapping) {
    if let Some(c) = common(
        gws,
        "context",
        |g| g.param("context").map(str::to_string),
        m,
    ) {
        m.set("wavix_inbound_context", json!(c));
    } else if !gws.is_empty() {
        m.note(&gws[0].file, format!("gateway `{}` names no context: its calls ran in the profile's; the playbook gives its gateways the inbound context `{}`", gws[0].gw.name, default_str(defaults, "wavix_inbound_context")));
    }
    // Only the gateways that set it (one without it gets the playbook's value: noted).
    let regs: Vec<&FoundGateway> = gws
        .iter()
        .copied()
        .filter(|g| g.gw.registers() && g.gw.param("expire-seconds").is_some())
        .collect();
    if let Some(e) = common(
        &regs,
        "expire-seconds",
        |g| g.param("expire-seconds").map(str::to_string),
        m,
    )
    .and_then(|e| e.parse::<u64>().ok())
    {
        m.set("wavix_expire_seconds", json!(e));
    }
    let ping = common(gws, "ping", |g| g.param("ping").map(str::to_string), m);
    m.set(
        "wavix_ping_seconds",
        json!(ping.and_then(|p| p.parse::<u64>().ok()).unwrap_or(0)),
    );
    let passthrough = common(
        gws,
        "caller-id-in-from",
        |g| {
            Some(
                g.param("caller-id-in-from")
                    .is_some_and(freeswitch::switch_true)
                    .to_string(),
            )
        },
        m,
    );
    m.set(
        "caller_id_passthrough",
        json!(passthrough.as_deref() == Some("true")),
    );
    let codecs = common(
        gws,
        "absolute_codec_string",
        |g| g.variables.get("absolute_codec_string").cloned(),
        m,
    );
    let list: Vec<Value> = codecs
        .iter()
        .flat_map(|c| c.split(','))
        .map(|c| json!(c.trim()))
        .collect();
    m.set("wavix_codecs", Value::Array(list));
}

/// Gateways → the Wavix variables (only `wavix`, `wavix_fo`, `wavix_ip`, each in its own
/// file of that name) or `carriers` (one per file, gateways in `chain` order: the order
/// the dialplan bridges them).
pub(super) fn trunk_vars(
    gws: &[FoundGateway],
    chain: &[String],
    defaults: &Map<String, Value>,
    m: &mut Mapping,
) {
    let order = |g: &FoundGateway| {
        chain
            .iter()
            .position(|c| *c == g.gw.name)
            .unwrap_or(usize::MAX)
    };
    let mut sorted: Vec<&FoundGateway> = gws.iter().collect();
    sorted.sort_by_key(|g| order(g));
    for g in sorted.iter().filter(|g| order(g) == usize::MAX) {
        m.note(&g.file, format!("gateway `{}` is never bridged by the dialplan; the playbook tries it after the others", g.gw.name));
    }
    shared_gateway_vars(&sorted, defaults, m);
    let wavix_shape = !gws.is_empty()
        && gws.iter().all(|g| {
            matches!(g.gw.name.as_str(), "wavix" | "wavix_fo" | "wavix_ip")
                && g.file == format!("sip_profiles/external/{}.xml", g.gw.name)
        });
    if wavix_shape {
        wavix_vars(&sorted, m);
    } else if !gws.is_empty() {
        carriers(&sorted, m);
    } else {
        m.unmapped(
            "sip_profiles/external/",
            "no gateway: the playbook needs the trunk, `wavix_username` and `wavix_password` (or `carriers`): set them before the apply",
        );
    }
}

fn wavix_vars(gws: &[&FoundGateway], m: &mut Mapping) {
    let get = |n: &str| gws.iter().find(|g| g.gw.name == n).map(|g| &g.gw);
    let (main, fo, ip) = (get("wavix"), get("wavix_fo"), get("wavix_ip"));
    if let Some(w) = main {
        m.set("wavix_username", json!(w.param("username").unwrap_or("")));
        m.set("wavix_password", json!(w.param("password").unwrap_or("")));
        m.set("wavix_realm", json!(realm(w)));
        m.set(
            "wavix_proxy",
            json!(if proxy(w) == realm(w) {
                String::new()
            } else {
                proxy(w)
            }),
        );
    }
    match (fo, main) {
        (Some(f), Some(w)) => {
            if f.param("username") != w.param("username") || f.param("password") != w.param("password") {
                m.unmapped(&format!("sip_profiles/external/{}.xml", f.name), "gateway `wavix_fo` has other credentials than `wavix`; the playbook registers both with one account (use `carriers` to give each its own)");
            }
            m.set("wavix_failover_proxy", json!(proxy(f)));
            m.set("wavix_failover_realm", json!(if realm(f) == proxy(f) { String::new() } else { realm(f) }));
        }
        (Some(f), None) => m.unmapped(&format!("sip_profiles/external/{}.xml", f.name), "a failover gateway `wavix_fo` without the main `wavix`; the playbook has no such trunk"),
        (None, _) => m.set("wavix_failover_proxy", json!("")),
    }
    if let Some(i) = ip {
        if main.is_some() {
            m.unmapped("sip_profiles/external/wavix_ip.xml", "both `wavix` (registering) and `wavix_ip` (IP authentication); the playbook has one or the other: `wavix_ip` is not mapped");
            return;
        }
        m.set("wavix_ip_auth", json!(true));
        if m.vars
            .get("wavix_inbound_addresses")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            m.unmapped("sip_profiles/external/wavix_ip.xml", "an IP-authenticated trunk, and no ACL names the provider's addresses: the playbook refuses it without `wavix_inbound_addresses` (the provider's signalling IPs): set them");
        }
        m.set("wavix_realm", json!(proxy(i)));
        m.set("wavix_proxy", json!(""));
        let from = i.param("from-domain").unwrap_or("");
        let ext = m
            .vars
            .get("external_ip")
            .and_then(Value::as_str)
            .unwrap_or("");
        m.set(
            "wavix_from_domain",
            json!(if from == ext { "" } else { from }),
        );
        if from.is_empty() {
            m.note("sip_profiles/external/wavix_ip.xml", "gateway `wavix_ip` has no from-domain: the provider saw the PBX's local address in From (the gateway leg never reads the guide's sip_from_host); the playbook writes the external address");
        }
    } else {
        m.set("wavix_ip_auth", json!(false));
    }
}

fn carriers(gws: &[&FoundGateway], m: &mut Mapping) {
    let mut by_file: Vec<(String, Vec<&FoundGateway>)> = Vec::new();
    for g in gws {
        match by_file.iter_mut().find(|(f, _)| *f == g.file) {
            Some((_, v)) => v.push(g),
            None => by_file.push((g.file.clone(), vec![g])),
        }
    }
    let mut list = Vec::new();
    let mut passwords = Map::new();
    for (file, members) in by_file {
        if let Some(why) = unwritable_name(&carrier_name(&file)) {
            m.unmapped(
                &file,
                format!("its gateways cannot be a carrier of this name: {why}"),
            );
            continue;
        }
        let first = &members[0].gw;
        let ip = !first.registers();
        if members.iter().any(|g| g.gw.registers() == ip) {
            m.unmapped(&file, "registering and IP-authenticated gateways in one file; the playbook's carrier is one or the other");
        }
        let mut c = Map::new();
        c.insert("name".into(), json!(carrier_name(&file)));
        if ip {
            c.insert("auth".into(), json!("ip"));
            if let Some(f) = first.param("from-domain") {
                c.insert("from_domain".into(), json!(f));
            }
        } else {
            let user = common(
                &members,
                "username",
                |g| g.param("username").map(str::to_string),
                m,
            );
            let pw = common(
                &members,
                "password",
                |g| g.param("password").map(str::to_string),
                m,
            );
            c.insert("username".into(), json!(user.unwrap_or_default()));
            passwords.insert(carrier_name(&file), json!(pw.unwrap_or_default()));
            c.insert("realm".into(), json!(realm(first)));
        }
        c.insert("proxy".into(), json!(proxy(first)));
        let list_gws: Vec<Value> = members
            .iter()
            .map(|g| {
                let mut e = Map::new();
                e.insert("name".into(), json!(g.gw.name));
                if !ip && realm(&g.gw) != realm(first) {
                    e.insert("realm".into(), json!(realm(&g.gw)));
                }
                if proxy(&g.gw) != proxy(first) {
                    e.insert("proxy".into(), json!(proxy(&g.gw)));
                }
                Value::Object(e)
            })
            .collect();
        c.insert("gateways".into(), Value::Array(list_gws));
        if !file.starts_with("sip_profiles/external/carrier_") {
            m.note(&file, format!("carrier `{}`: the playbook writes its gateways to sip_profiles/external/carrier_{}.xml; remove this file after the apply (import never writes on the PBX), or both define the same gateways", carrier_name(&file), carrier_name(&file)));
        }
        list.push(Value::Object(c));
    }
    if list.is_empty() {
        return;
    }
    m.set("carriers", Value::Array(list));
    if !passwords.is_empty() {
        m.set("carrier_passwords", Value::Object(passwords));
    }
}
