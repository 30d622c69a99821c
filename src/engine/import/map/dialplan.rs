//! The dialplan as the playbook's variables: DIDs of the trunk's inbound context →
//! `did_routes`; the users' context → the failover chain (gateway order), the numbering
//! plan, `emergency_calls`, `failover_causes`, `pbx_features_context`. Extensions of other
//! shapes in those two contexts are listed as not mapped; other contexts are not the
//! playbook's and stay as they are.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{default_str, trunk_vars, xml_body, FoundGateway, Mapping};

/// One `<extension>` as written.
#[derive(Debug, Clone)]
struct Ext {
    file: String,
    name: String,
    /// `(field, expression)` of each condition, in order.
    conds: Vec<(String, String)>,
    /// `(application, data)` of each action, in order (anti-actions counted apart).
    actions: Vec<(String, String)>,
    anti_actions: usize,
}

impl Ext {
    fn dest_expr(&self) -> Option<&str> {
        self.conds
            .iter()
            .find(|(f, _)| f == "destination_number")
            .map(|(_, e)| e.as_str())
    }

    fn bridges(&self) -> impl Iterator<Item = (usize, &str)> {
        self.actions
            .iter()
            .enumerate()
            .filter(|(_, (a, _))| a == "bridge")
            .map(|(i, (_, d))| (i, d.as_str()))
    }

    /// The gateways this extension bridges through, in order: every `sofia/gateway/NAME/`
    /// of every bridge (`|` and `,` dial strings and `{var=...}` prefixes included).
    fn trunk_gateways(&self) -> Vec<String> {
        self.bridges()
            .flat_map(|(_, d)| d.split("sofia/gateway/").skip(1))
            .filter_map(|r| r.split('/').next())
            .map(str::to_string)
            .collect()
    }

    fn label(&self) -> String {
        format!("extension `{}` in context", self.name)
    }
}

/// Every context of the `dialplan/` files, in file order: name → (file, extensions).
fn contexts(files: &BTreeMap<String, String>) -> BTreeMap<String, Vec<Ext>> {
    let mut out: BTreeMap<String, Vec<Ext>> = BTreeMap::new();
    for (rel, text) in files.iter().filter(|(r, _)| r.starts_with("dialplan/")) {
        let body = xml_body(text);
        let Ok(doc) = roxmltree::Document::parse(&body) else {
            continue;
        };
        for c in doc.descendants().filter(|n| n.has_tag_name("context")) {
            let Some(cname) = c.attribute("name") else {
                continue;
            };
            for e in c.children().filter(|n| n.has_tag_name("extension")) {
                let conds = e
                    .descendants()
                    .filter(|n| n.has_tag_name("condition"))
                    .map(|n| {
                        (
                            n.attribute("field").unwrap_or("").to_string(),
                            n.attribute("expression").unwrap_or("").to_string(),
                        )
                    })
                    .collect();
                let actions = e
                    .descendants()
                    .filter(|n| n.has_tag_name("action"))
                    .map(|n| {
                        (
                            n.attribute("application").unwrap_or("").to_string(),
                            n.attribute("data").unwrap_or("").to_string(),
                        )
                    })
                    .collect();
                out.entry(cname.to_string()).or_default().push(Ext {
                    file: rel.clone(),
                    name: e.attribute("name").unwrap_or("").to_string(),
                    conds,
                    actions,
                    anti_actions: e
                        .descendants()
                        .filter(|n| n.has_tag_name("anti-action"))
                        .count(),
                });
            }
        }
    }
    out
}

/// The loop guard every context of the playbook starts with (`deflect` a looped call).
fn is_unloop(e: &Ext) -> bool {
    e.actions.len() == 1 && e.actions[0].0 == "deflect"
}

/// The numbers a destination expression matches exactly: `^(16468097065)$`,
/// `^\+?(1646...|1555...)$`, `^1646...$`.
fn did_numbers(expr: &str) -> Option<Vec<String>> {
    let e = expr.strip_prefix('^')?.strip_suffix('$')?;
    let e = e.strip_prefix("\\+?").unwrap_or(e);
    let e = e
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or(e);
    let nums: Vec<String> = e.split('|').map(str::to_string).collect();
    nums.iter()
        .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        .then_some(nums)
}

/// An inbound extension as `did_routes` entries: one number bridged to a user, or
/// transferred to an extension of another context (`DEST XML CONTEXT`; a transfer within
/// the inbound context is not one: the playbook's inbound context carries only DIDs).
fn did_routes(e: &Ext, features: &str) -> Option<Vec<Value>> {
    if e.conds.len() != 1 || e.anti_actions > 0 {
        return None;
    }
    let nums = did_numbers(e.dest_expr()?)?;
    let main: Vec<&(String, String)> = e
        .actions
        .iter()
        .filter(|(a, _)| !matches!(a.as_str(), "answer" | "sleep" | "hangup" | "ring_ready"))
        .collect();
    let [(app, data)] = main[..] else {
        return None;
    };
    let target = match app.as_str() {
        "bridge" => {
            let user = data.strip_prefix("user/")?.split('@').next()?;
            (!user.is_empty() && !user.contains(['$', '{']))
                .then(|| json!({ "extension": user }))?
        }
        "transfer" => {
            let words: Vec<&str> = data.split_whitespace().collect();
            match words[..] {
                [dest, "XML", ctx] if ctx == features => json!({ "transfer": dest }),
                [dest, "XML", ctx] => json!({ "transfer": dest, "context": ctx }),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(
        nums.into_iter()
            .map(|n| {
                let mut v = target.clone();
                v["number"] = json!(n);
                v
            })
            .collect(),
    )
}

/// A route out through the trunk, as found.
struct Route<'a> {
    ext: &'a Ext,
}

pub(super) fn map(
    files: &BTreeMap<String, String>,
    defaults: &Map<String, Value>,
    gws: &[FoundGateway],
    user_context: Option<&str>,
    m: &mut Mapping,
) {
    let ctxs = contexts(files);
    // The trunk's inbound context: the ACL's (apply-inbound-acl), else the gateways'.
    let inbound = m
        .vars
        .get("wavix_inbound_context")
        .and_then(Value::as_str)
        .or_else(|| gws.iter().find_map(|g| g.gw.param("context")))
        .map(str::to_string);
    let same = inbound.is_some() && inbound.as_deref() == user_context;
    let features_default = default_str(defaults, "pbx_features_context").to_string();
    let mut chain: Vec<String> = Vec::new();
    let mut add_chain = |gws: &[String]| {
        for g in gws {
            if !chain.contains(g) {
                chain.push(g.clone());
            }
        }
    };
    // Inbound: DIDs.
    let mut dids = Vec::new();
    let mut outbound_routes: Vec<Route> = Vec::new();
    if let Some(ic) = inbound.as_deref() {
        for e in ctxs.get(ic).into_iter().flatten() {
            if is_unloop(e) {
                continue;
            }
            if let Some(d) = did_routes(e, &features_default) {
                dids.extend(d);
            } else if same && !e.trunk_gateways().is_empty() {
                // The users' routes, handled below.
            } else if !same {
                m.unmapped(&e.file, format!("{} `{ic}` (the trunk's inbound context): not a DID bridged to a user or transferred to an extension; the playbook's inbound context carries only DIDs", e.label()));
            }
        }
        if same {
            m.note(
                &ctxs[ic][0].file,
                format!("the trunk's calls run in the users' context `{ic}`, so a caller from the trunk could dial out through it (toll fraud); the playbook keeps inbound calls in their own context `{}`", default_str(defaults, "wavix_inbound_context")),
            );
        }
    }
    m.set("did_routes", Value::Array(dids));
    // The users' context: local calls, trunk routes, emergency, features.
    let mut features: Option<String> = None;
    let mut refuse_emergency: Option<&Ext> = None;
    if let Some(uc) = user_context {
        for e in ctxs.get(uc).into_iter().flatten() {
            let gws = e.trunk_gateways();
            if is_unloop(e)
                || (Some(uc) == inbound.as_deref() && did_routes(e, &features_default).is_some())
            {
                continue;
            }
            if !gws.is_empty() {
                add_chain(&gws);
                outbound_routes.push(Route { ext: e });
            } else if e
                .bridges()
                .any(|(_, d)| d.starts_with("user/${destination_number}@"))
            {
                // Users by extension: the playbook's `local`.
            } else if let [(app, data)] = &e.actions[..] {
                match (app.as_str(), &data.split_whitespace().collect::<Vec<_>>()[..]) {
                    ("transfer", ["$1", "XML", ctx]) => features = Some((*ctx).to_string()),
                    ("respond", _) if data.starts_with("403") => refuse_emergency = Some(e),
                    _ => m.unmapped(&e.file, format!("{} `{uc}` (the users' context): a shape import does not recognise; the playbook's dialplan does not carry it", e.label())),
                }
            } else {
                m.unmapped(&e.file, format!("{} `{uc}` (the users' context): a shape import does not recognise; the playbook's dialplan does not carry it", e.label()));
            }
        }
        m.set(
            "pbx_features_context",
            json!(features.clone().unwrap_or_default()),
        );
        for (ctx_name, exts) in &ctxs {
            let ours = Some(ctx_name.as_str()) == user_context
                || Some(ctx_name.as_str()) == inbound.as_deref();
            if let Some(e) = exts.iter().find(|e| ours && e.file != "dialplan/wavix.xml") {
                m.note(&e.file, format!("context `{ctx_name}` is written by the playbook to dialplan/wavix.xml; remove this file after the apply (import never writes on the PBX), or FreeSWITCH hunts the first of the two"));
            }
        }
    }
    failover(&outbound_routes, defaults, m);
    plan_and_emergency(&outbound_routes, refuse_emergency, defaults, m);
    trunk_vars(gws, &chain, defaults, m);
    if same {
        m.vars.remove("wavix_inbound_context");
    }
}

/// `continue_on_fail`, `hangup_after_bridge` and `export` around the bridges of each route.
fn failover(routes: &[Route], defaults: &Map<String, Value>, m: &mut Mapping) {
    let mut causes: Option<String> = None;
    for r in routes {
        let e = r.ext;
        let bridges: Vec<usize> = e.bridges().map(|(i, _)| i).collect();
        let set = |i: usize, name: &str| {
            e.actions[..i].iter().rev().find_map(|(a, d)| {
                (a == "set")
                    .then(|| d.strip_prefix(&format!("{name}=")))
                    .flatten()
            })
        };
        if bridges.len() > 1 {
            if !e
                .actions
                .iter()
                .any(|(a, d)| a == "set" && d == "hangup_after_bridge=true")
            {
                m.note(&e.file, format!("extension `{}`: no hangup_after_bridge=true, so a call answered on the first gateway was dialled again on the next when it ended; the playbook ends it with its bridge", e.name));
            }
            for &b in &bridges[1..] {
                match set(b, "continue_on_fail") {
                    Some("true") => m.note(&e.file, format!("extension `{}`: continue_on_fail=true fails over on every cause, busy and no answer included (the callee rang twice); the playbook fails over only when the route failed (failover_causes)", e.name)),
                    Some(c) if c != "false" => causes = Some(c.to_string()),
                    _ => {}
                }
            }
            if set(bridges[1], "continue_on_fail").is_none()
                && !e.actions[..bridges[0]]
                    .iter()
                    .any(|(a, d)| a == "set" && d.starts_with("continue_on_fail="))
            {
                m.note(&e.file, format!("extension `{}`: no continue_on_fail before the first bridge, so a failed call never reached the next gateway; the playbook fails over on failover_causes", e.name));
            }
        }
        if let Some(&first) = bridges.first() {
            for (a, d) in &e.actions[first + 1..] {
                if a == "export"
                    || (a == "set" && d.starts_with("continue_on_fail=") && bridges.len() == 1)
                {
                    m.note(&e.file, format!("extension `{}`: `{a} {}` after the bridge it should affect changed nothing for it", e.name, d.split('=').next().unwrap_or("")));
                }
            }
        }
    }
    if let Some(c) = causes {
        let list: Vec<Value> = c.split(',').map(|x| json!(x.trim())).collect();
        if defaults.get("failover_causes") != Some(&Value::Array(list.clone())) {
            m.set("failover_causes", Value::Array(list));
        }
    }
}

/// The numbering plan whose routes the users' context has, and whether emergency numbers
/// reached the trunk.
fn plan_and_emergency(
    routes: &[Route],
    refuse: Option<&Ext>,
    defaults: &Map<String, Value>,
    m: &mut Mapping,
) {
    let exprs: Vec<&str> = routes.iter().filter_map(|r| r.ext.dest_expr()).collect();
    let plans = defaults.get("numbering_plans").and_then(Value::as_object);
    let preferred = default_str(defaults, "numbering_plan");
    let expect = |p: &Value| -> Option<(Vec<String>, String)> {
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mut want = vec![
            format!("^{}([1-9]\\d{{6,14}})$", s("international_prefix")),
            format!("^{}({})$", s("national_prefix"), s("national_number")),
        ];
        if p.get("national_without_prefix").and_then(Value::as_bool) == Some(true) {
            want.push(format!("^({})$", s("national_number")));
        }
        let em: Vec<&str> = p
            .get("emergency")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        Some((want, format!("^({})$", em.join("|"))))
    };
    let found = plans.and_then(|ps| {
        let mut names: Vec<&String> = ps.keys().collect();
        names.sort_by_key(|n| n.as_str() != preferred);
        names.into_iter().find(|n| {
            expect(&ps[n.as_str()]).is_some_and(|(want, _)| {
                want.iter().all(|w| exprs.contains(&w.as_str()))
                    && exprs
                        .iter()
                        .filter(|e| e.contains("\\d") && !e.starts_with("^\\+"))
                        .count()
                        == want.len()
            })
        })
    });
    let plan_name = found.cloned().unwrap_or_else(|| preferred.to_string());
    match &found {
        Some(n) => m.set("numbering_plan", json!(n)),
        None => {
            for r in routes
                .iter()
                .filter(|r| r.ext.dest_expr().is_some_and(|e| !e.starts_with("^\\+")))
            {
                m.unmapped(&r.ext.file, format!("extension `{}` ({}) sends numbers to the trunk as dialled, not by a numbering plan; the playbook normalises them to E.164 by numbering_plan (`{plan_name}` unless the host says otherwise): check it", r.ext.name, r.ext.dest_expr().unwrap_or("")));
            }
        }
    }
    let Some((_, em_expr)) = plans.and_then(|ps| ps.get(&plan_name)).and_then(expect) else {
        return;
    };
    let em_numbers: Vec<String> = em_expr
        .trim_start_matches("^(")
        .trim_end_matches(")$")
        .split('|')
        .map(str::to_string)
        .collect();
    if routes
        .iter()
        .any(|r| r.ext.dest_expr() == Some(em_expr.as_str()))
    {
        m.set("emergency_calls", json!("trunk"));
    } else if refuse.is_some_and(|e| e.dest_expr() == Some(em_expr.as_str())) {
        m.set("emergency_calls", json!("refuse"));
    } else if let Some(r) = routes.iter().find(|r| {
        r.ext
            .dest_expr()
            .is_some_and(|x| em_numbers.iter().any(|n| matches(x, n)))
    }) {
        m.set("emergency_calls", json!("trunk"));
        m.note(&r.ext.file, format!("extension `{}` took the emergency numbers ({}) to the trunk with the rest; mapped to `emergency_calls: trunk`, its own route", r.ext.name, em_numbers.join(", ")));
    } else {
        m.set("emergency_calls", json!("refuse"));
        let file = routes.first().map_or("dialplan", |r| r.ext.file.as_str());
        m.note(file, format!("no route took the emergency numbers ({}) to the trunk, so such calls failed without a word; mapped to `emergency_calls: refuse` (a 403 the phone shows): set `trunk` if this PBX's trunk should carry them", em_numbers.join(", ")));
    }
}

/// Whether PCRE `expr` matches `subject` (an expression PCRE refuses matches nothing, as
/// in FreeSWITCH).
fn matches(expr: &str, subject: &str) -> bool {
    pcre2::bytes::RegexBuilder::new()
        .build(expr)
        .ok()
        .and_then(|r| r.is_match(subject.as_bytes()).ok())
        .unwrap_or(false)
}
