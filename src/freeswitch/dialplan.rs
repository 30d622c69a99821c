//! Where a number goes: the XML dialplan evaluated the way mod_dialplan_xml hunts it.
//!
//! Read from FreeSWITCH 1.10's `mod_dialplan_xml.c` (`dialplan_hunt`, `parse_exten`) and
//! `switch_xml.c` (the pre-processor):
//!
//! - The `dialplan` section is `dialplan/*.xml` of the conf root, in name order, each file's
//!   `X-PRE-PROCESS include` globs expanded relative to the including file's folder,
//!   `set` lines defining `$${globals}` that are substituted in the text that follows.
//! - A call hunts the first `<context>` of its name (else `global`); extensions in order;
//!   an extension's conditions in order. A condition with `field` matches when its PCRE
//!   `expression` matches the field (a caller-profile field, or `${var}` expanded, unset
//!   being empty); one with neither field nor time attributes always matches. A match adds
//!   the condition's `action`s (with `$1`... of its captures), a miss its `anti-action`s.
//!   `break` (`on-false` by default, `on-true`, `always`, `never`) ends the extension's
//!   conditions; nested conditions are evaluated when their parent matched.
//! - Actions are queued, not run, while hunting (except `inline="true"`), so a queued `set`
//!   does not change later conditions; actions queued by an extension whose later
//!   condition failed stay queued. An extension that "proceeds" ends the hunt unless it has
//!   `continue="true"`.
//! - Then the queue runs: `set`/`export` change variables, `bridge` dials (`|` one after
//!   the other, `,` at once; `continue_on_fail` says on which causes the queue goes on),
//!   `transfer DEST [XML CONTEXT]` hunts again, `hangup` and an error `respond` refuse.
//!
//! - Each queued action is run by what its application does to the queue
//!   ([`super::apps`], classified from FreeSWITCH's source): most return and the next one
//!   runs; `transfer` hunts again; `bridge` dials; `hangup`, `respond` 400-699 or `302`,
//!   `deflect` end the call; `voicemail`, `conference`, `park`, `echo`... hold it there.
//!   An application of a module `modules.conf.xml` does not load is "Invalid Application":
//!   FreeSWITCH hangs up DESTINATION_OUT_OF_ORDER.
//! - Expressions run on PCRE (`pcre2`), with switch_regex.c's `/.../is` and `_NXZ.` forms.
//! - Time conditions are evaluated at one wall-clock time ([`super::tod`]).
//!
//! What it cannot know it says, and stops there rather than guess: `regex="all|any|xor"`
//! blocks, API calls in `${...}` other than `user_exists`/`module_exists`, fields of the
//! caller only a real call carries, applications whose effect depends on run-time state
//! (`limit`, `lua`...). Variables a real call might carry (`${sip_looped_call}`) are taken
//! as unset and listed; every such part of the context is listed, not only the first.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::apps::{self, Class};
use super::tod::At;

/// How deep transfers may nest before the evaluator calls it a loop.
const MAX_TRANSFERS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    OnFalse,
    OnTrue,
    Always,
    Never,
}

#[derive(Debug, Clone)]
struct Action {
    app: String,
    data: String,
    inline: bool,
    /// `loop="N"`: queued N times (mod_dialplan_xml.c:484).
    times: usize,
}

#[derive(Debug, Clone)]
struct Condition {
    field: Option<String>,
    expression: String,
    /// The expression compiled once at load, when it holds no `${variable}` (most do):
    /// routing 40 numbers on 500 PBXes compiles each pattern 500 times, not 20,000.
    compiled: Option<Result<Pcre, String>>,
    brk: Break,
    /// A `regex=` block: not evaluated.
    unknowable: Option<String>,
    /// The condition's time attributes (`wday`, `hour`, ...), name → value.
    time: Vec<(String, String)>,
    actions: Vec<Action>,
    anti: Vec<Action>,
    nested: Vec<Condition>,
    require_nested: bool,
}

#[derive(Debug, Clone)]
struct Extension {
    name: String,
    cont: bool,
    conditions: Vec<Condition>,
    require_nested: bool,
}

/// The dialplan of one PBX, with what it needs to evaluate calls: the pre-processor's
/// globals, the directory's users (for `user_exists` and a caller's variables), and each
/// gateway's and profile's context.
#[derive(Debug, Clone, Default)]
pub struct Dialplan {
    contexts: Vec<(String, Vec<Extension>)>,
    pub globals: BTreeMap<String, String>,
    /// user id → its `<variables>`.
    users: BTreeMap<String, BTreeMap<String, String>>,
    /// gateway name → the context its calls start in.
    gateway_context: BTreeMap<String, String>,
    /// The modules `modules.conf.xml` loads (`None`: the tree has no such file).
    modules: Option<BTreeSet<String>>,
    /// The modules installed on the PBX, when known (`--mod-dir`): a module loaded by
    /// `modules.conf.xml` but not installed fails to load, and its applications with it.
    installed: Option<BTreeSet<String>>,
    /// A directory user's `<params>` (for the caller a registered user's call carries).
    user_params: BTreeMap<String, BTreeMap<String, String>>,
    /// Contexts whose content switchyard does not know (see [`Dialplan::opaque`]).
    opaque: BTreeSet<String>,
    /// The directory's groups: name → member user ids (pointers included), for
    /// `${group_call(...)}`.
    groups: BTreeMap<String, Vec<String>>,
}

/// One call to evaluate.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    pub context: String,
    pub destination: String,
    pub caller_id_number: String,
    /// Channel variables the call starts with (a user's directory variables).
    pub vars: BTreeMap<String, String>,
    /// Caller-profile fields this kind of call has (`source`, `caller_id_name`...), beyond
    /// the number, context and caller above; a field not here is one only a real call knows.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl Call {
    /// A SIP call from outside into `context` (no authentication): the caller-profile
    /// fields mod_sofia sets that do not depend on the caller.
    pub fn from_outside() -> BTreeMap<String, String> {
        [("source", "mod_sofia"), ("rdnis", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A call from outside (SIP, unauthenticated, late negotiation) to `number` in `context`.
    pub fn outside(context: &str, number: &str) -> Call {
        let mut vars = BTreeMap::new();
        vars.insert(
            "endpoint_disposition".to_string(),
            "DELAYED NEGOTIATION".to_string(),
        );
        Call {
            context: context.to_string(),
            destination: number.to_string(),
            caller_id_number: "0000000000".into(),
            vars,
            fields: Call::from_outside(),
        }
    }
}

/// Where one attempt of the call goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// `sofia/gateway/NAME/NUMBER`.
    Gateway { gateway: String, number: String },
    /// `user/ID@DOMAIN`.
    User { user: String },
    /// Answered with a refusal (`respond 4xx-6xx`, `hangup`).
    Refused { why: String },
    /// Any other endpoint or application, shown as written.
    Other { application: String, data: String },
    /// An application that keeps the call (voicemail, conference, park, echo...): the route
    /// ends there; `class` says how it holds it.
    Held {
        application: String,
        data: String,
        class: String,
    },
}

/// One dial attempt and what happens when it fails.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub target: Target,
    /// `None`: a failure ends the call; `Some([])`: any failure goes on; else these causes.
    /// For legs that ring at once, what happens when all of them failed.
    pub continue_on: Option<Vec<String>>,
    /// This leg rings at the same time as the next attempt (`,` in the dial string).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub at_once_with_next: bool,
}

/// One hunt: the context, the number, the extensions that matched and the queued actions.
#[derive(Debug, Clone, Serialize)]
pub struct Hunt {
    pub context: String,
    pub destination: String,
    pub extensions: Vec<String>,
    pub actions: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub hunts: Vec<Hunt>,
    /// The actions executed, in order, with their data expanded, as far as the route goes
    /// (through a bridge whose failure lets the queue go on).
    pub executed: Vec<(String, String)>,
    pub attempts: Vec<Attempt>,
    /// Call variables taken as unset because only a real call would set them.
    pub assumed_unset: BTreeSet<String>,
    /// Why evaluation stopped short, if it did (never a guess).
    pub unknown: Option<String>,
    /// Every part of the contexts hunted that could not be evaluated (the first is why the
    /// route stopped, if it did): the operator sees them all at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unevaluated: Vec<String>,
    /// The local wall-clock time time conditions were evaluated at, when one was needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// What the operator should look at although the route is known: a dial string with
    /// an unset variable (`sofia/gateway/${default_gateway}/...` dials a gateway named "").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Route {
    /// Mask what a dial string can carry in clear: a URI's password (`sofia/external/
    /// NUM@user:pass@host`, `sip:user:pass@host`) and the value of a password-like channel
    /// variable (`{sip_auth_password=...}`, `set sip_auth_password=...`). Done on every route
    /// the evaluator returns, so no output (route, `--json`, review, route-test findings)
    /// shows them, whether or not the inventory knows the value as a secret.
    fn mask_secrets(&mut self) {
        for h in &mut self.hunts {
            for (app, data) in &mut h.actions {
                *data = mask_action_data(app, data);
            }
        }
        for a in &mut self.attempts {
            match &mut a.target {
                Target::Gateway { gateway, number } => {
                    *gateway = mask_dial_secrets(gateway);
                    *number = mask_dial_secrets(number);
                }
                Target::User { user } => *user = mask_dial_secrets(user),
                Target::Refused { why } => *why = mask_dial_secrets(why),
                Target::Other { application, data } => *data = mask_action_data(application, data),
                Target::Held {
                    application, data, ..
                } => *data = mask_action_data(application, data),
            }
        }
        for (app, data) in &mut self.executed {
            *data = mask_action_data(app, data);
        }
        if let Some(u) = &mut self.unknown {
            *u = mask_dial_secrets(u);
        }
        for u in self.unevaluated.iter_mut().chain(self.warnings.iter_mut()) {
            *u = mask_dial_secrets(u);
        }
    }

    /// The first attempt's target, the one a call that is answered takes.
    pub fn first(&self) -> Option<&Target> {
        self.attempts.first().map(|a| &a.target)
    }
}

/// Parse errors and limits: the dialplan could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("dialplan: {0}")]
pub struct DialplanError(String);

impl Dialplan {
    /// Build from a conf tree given as relative path → text (the final files of a host).
    pub fn load(files: &BTreeMap<String, String>) -> Result<Dialplan, DialplanError> {
        let mut dp = Dialplan::default();
        // vars.xml first: its `set` lines are the globals every other file sees.
        if let Some(v) = files.get("vars.xml") {
            let _ = preprocess(files, "vars.xml", v, &mut dp.globals, 0);
        }
        let mut top: Vec<&String> = files
            .keys()
            .filter(|k| {
                k.strip_prefix("dialplan/")
                    .is_some_and(|r| !r.contains('/') && r.ends_with(".xml"))
            })
            .collect();
        top.sort();
        for rel in top {
            let text = preprocess(files, rel, &files[rel], &mut dp.globals, 0)?;
            let doc = parse(rel, &text)?;
            for ctx in doc.descendants().filter(|n| n.has_tag_name("context")) {
                let name = ctx.attribute("name").unwrap_or("").to_string();
                let extensions = ctx
                    .children()
                    .filter(|n| n.has_tag_name("extension"))
                    .map(extension)
                    .collect();
                dp.contexts.push((name, extensions));
            }
        }
        // The profiles' own `context` (sofia.c: a gateway without one takes its profile's,
        // and a profile without one has `default`).
        let mut profile_context: BTreeMap<String, String> = BTreeMap::new();
        for (rel, text) in files {
            let Some(name) = rel
                .strip_prefix("sip_profiles/")
                .and_then(|r| r.strip_suffix(".xml"))
                .filter(|r| !r.contains('/'))
            else {
                continue;
            };
            let text = substitute(text, &dp.globals);
            if let Ok(doc) = roxmltree::Document::parse(&strip_preprocess(&text)) {
                let ctx = doc
                    .descendants()
                    .filter(|n| n.has_tag_name("settings"))
                    .flat_map(|n| n.children().filter(|c| c.has_tag_name("param")))
                    .filter(|p| p.attribute("name") == Some("context"))
                    .filter_map(|p| p.attribute("value"))
                    .next_back();
                profile_context.insert(name.to_string(), ctx.unwrap_or("default").to_string());
            }
        }
        if let Some(text) = files.get("autoload_configs/modules.conf.xml") {
            if let Ok(doc) = roxmltree::Document::parse(&strip_preprocess(text)) {
                dp.modules = Some(
                    doc.descendants()
                        .filter(|n| n.has_tag_name("load"))
                        .filter_map(|n| n.attribute("module"))
                        .map(String::from)
                        .collect(),
                );
            }
        }
        for (rel, text) in files {
            if rel.starts_with("directory/") && rel.ends_with(".xml") {
                let text = substitute(text, &dp.globals);
                if let Ok(doc) = roxmltree::Document::parse(&strip_preprocess(&text)) {
                    for u in doc.descendants().filter(|n| n.has_tag_name("user")) {
                        if let Some(id) = u.attribute("id") {
                            dp.user_params
                                .insert(id.to_string(), super::name_values(u, "param"));
                            dp.users
                                .insert(id.to_string(), super::name_values(u, "variable"));
                        }
                    }
                }
            }
            // Groups with their `include`s expanded (vanilla's `default` group includes
            // directory/default/*.xml).
            if rel.starts_with("directory/") && rel.ends_with(".xml") {
                let text =
                    preprocess(files, rel, text, &mut dp.globals.clone(), 0).unwrap_or_default();
                if let Ok(doc) = roxmltree::Document::parse(&strip_preprocess(&text)) {
                    for g in doc.descendants().filter(|n| n.has_tag_name("group")) {
                        let Some(name) = g.attribute("name") else {
                            continue;
                        };
                        let members: Vec<String> = g
                            .descendants()
                            .filter(|n| n.has_tag_name("user"))
                            .filter_map(|u| u.attribute("id").map(String::from))
                            .collect();
                        dp.groups
                            .entry(name.to_string())
                            .or_default()
                            .extend(members);
                    }
                }
            }
            if rel.starts_with("sip_profiles/") && rel.ends_with(".xml") {
                let text = substitute(text, &dp.globals);
                // sip_profiles/NAME.xml or sip_profiles/NAME/*.xml: profile NAME.
                let profile = rel["sip_profiles/".len()..]
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(".xml");
                let fallback = profile_context
                    .get(profile)
                    .map(String::as_str)
                    .unwrap_or("default");
                if let Some(gws) = super::gateways(&text) {
                    for g in gws {
                        let ctx = g.param("context").unwrap_or(fallback).to_string();
                        dp.gateway_context.insert(g.name.clone(), ctx);
                    }
                }
            }
        }
        Ok(dp)
    }

    /// The modules installed on the PBX (file stems of its module folder, `mod_sofia`...):
    /// a module `modules.conf.xml` loads but the PBX lacks is not loaded.
    pub fn with_installed_modules(mut self, installed: BTreeSet<String>) -> Dialplan {
        self.installed = Some(installed);
        self
    }

    /// Whether `module` is loaded: `Some(true/false)` from `modules.conf.xml` (and the
    /// installed modules, when known); `None` when the tree does not say.
    pub fn module_loaded(&self, module: &str) -> Option<bool> {
        let loaded = self.modules.as_ref()?.contains(module);
        Some(loaded && self.installed.as_ref().is_none_or(|i| i.contains(module)))
    }

    /// [`Dialplan::load`] over a tree of which only the `managed` files are known to be as
    /// the host has them (the rest are stock stand-ins): see [`Dialplan::opaque`].
    pub fn load_managed(
        files: &BTreeMap<String, String>,
        managed: &BTreeSet<String>,
    ) -> Result<Dialplan, DialplanError> {
        Ok(Dialplan::load(files)?.opaque(managed, files))
    }

    /// Mark every context defined by a file not in `known` as unknown: evaluated offline,
    /// the stock files switchyard ships stand in for the host's own, which may differ; a
    /// route that reaches one stops there and says so.
    pub fn opaque(
        mut self,
        known: &BTreeSet<String>,
        files: &BTreeMap<String, String>,
    ) -> Dialplan {
        let mut defined_by_known = BTreeSet::new();
        for (rel, text) in files {
            if !rel.starts_with("dialplan/") {
                continue;
            }
            let names: Vec<String> = text
                .match_indices("<context name=\"")
                .filter_map(|(i, m)| {
                    let rest = &text[i + m.len()..];
                    rest.find('"').map(|e| rest[..e].to_string())
                })
                .collect();
            if known.contains(rel) {
                defined_by_known.extend(names);
            } else {
                self.opaque.extend(names);
            }
        }
        self.opaque.retain(|c| !defined_by_known.contains(c));
        self
    }

    /// Who places a call: a directory user (`from`), the provider through a gateway
    /// (`from_trunk`), else the lowest user id. Returns how to name the caller, and the call.
    pub fn call_for(
        &self,
        from: Option<&str>,
        from_trunk: Option<&str>,
        number: &str,
    ) -> (String, Result<Call, String>) {
        match (from_trunk, from) {
            (Some(gw), _) => (format!("trunk {gw}"), self.call_from_gateway(gw, number)),
            (None, Some(u)) => (format!("user {u}"), self.call_from_user(u, number)),
            (None, None) => match self.users().next() {
                Some(u) => (format!("user {u}"), self.call_from_user(u, number)),
                None => (
                    "nobody".into(),
                    Err("no directory user to call from: name one (`from`)".into()),
                ),
            },
        }
    }

    /// The directory's user ids, in order.
    pub fn users(&self) -> impl Iterator<Item = &String> {
        self.users.keys()
    }

    /// A call placed by directory user `id` to `number`: in the user's `user_context`
    /// (`default` without one), with the user's variables.
    pub fn call_from_user(&self, id: &str, number: &str) -> Result<Call, String> {
        let mut vars = self
            .users
            .get(id)
            .ok_or_else(|| format!("no directory user `{id}`"))?
            .clone();
        let context = vars
            .get("user_context")
            .cloned()
            .unwrap_or_else(|| "default".into());
        // What mod_sofia gives the call of a phone that authenticated as `id` (sofia.c,
        // sofia_reg.c): the user's directory variables, who it is, that it authorized, and
        // (late negotiation, the stock profiles' setting) no SDP decided yet.
        vars.entry("user_name".into())
            .or_insert_with(|| id.to_string());
        if let Some(d) = self.globals.get("domain") {
            vars.entry("domain_name".into())
                .or_insert_with(|| d.clone());
        }
        vars.insert("sip_authorized".into(), "true".into());
        vars.insert("endpoint_disposition".into(), "DELAYED NEGOTIATION".into());
        let mut fields = BTreeMap::new();
        fields.insert("source".to_string(), "mod_sofia".to_string());
        fields.insert("caller_id_name".to_string(), id.to_string());
        fields.insert("ani".to_string(), id.to_string());
        fields.insert("username".to_string(), id.to_string());
        fields.insert("rdnis".to_string(), String::new());
        Ok(Call {
            context,
            destination: number.to_string(),
            caller_id_number: id.to_string(),
            vars,
            fields,
        })
    }

    /// A call arriving through gateway `name` for `number`: in the gateway's context.
    pub fn call_from_gateway(&self, name: &str, number: &str) -> Result<Call, String> {
        let context = self
            .gateway_context
            .get(name)
            .ok_or_else(|| format!("no gateway `{name}`"))?
            .clone();
        Ok(Call {
            context,
            destination: number.to_string(),
            ..Call::outside("", number)
        })
    }

    /// `${group_call(GROUP[@DOMAIN][+FLAGS])}` in a dial string answered from the
    /// directory's groups, as mod_commands.c:985 builds it: each member's dial string
    /// (shown as `user/ID@DOMAIN`, which FreeSWITCH expands to the same), joined by `,`
    /// (at once; `+F` one after the other, `|`; `+E` enterprise, `:_:`). A group the
    /// directory does not have stays an API call (unknown).
    fn group_calls(&self, data: &str) -> String {
        let mut out = String::new();
        let mut rest = data;
        while let Some(i) = rest.find(API) {
            let after = &rest[i + API.len()..];
            let end = after.find(API_END).unwrap_or(after.len());
            let call = &after[..end];
            let next = after.get(end + API_END.len_utf8()..).unwrap_or("");
            let args = call
                .strip_prefix("group_call(")
                .and_then(|a| a.strip_suffix(')'));
            let (group, flags) = args
                .map(|a| a.split_once('+').unwrap_or((a, "")))
                .unwrap_or(("", ""));
            let (name, domain) = group.split_once('@').unwrap_or((group, ""));
            match (args, self.groups.get(name)) {
                (Some(_), Some(members)) if !domain.is_empty() => {
                    let delim = match flags.chars().rev().find(|c| "FAE".contains(*c)) {
                        Some('F') => "|",
                        Some('E') => ":_:",
                        _ => ",",
                    };
                    out.push_str(&rest[..i]);
                    out.push_str(
                        &members
                            .iter()
                            .map(|id| format!("user/{id}@{domain}"))
                            .collect::<Vec<_>>()
                            .join(delim),
                    );
                }
                // Left as it was: the API call with its marks.
                _ => out.push_str(&rest[..rest.len() - next.len()]),
            }
            rest = next;
        }
        out.push_str(rest);
        out
    }

    /// Evaluate one call at this machine's local time now (see [`Dialplan::route_at`]).
    pub fn route(&self, call: &Call) -> Route {
        self.route_at(call, &At::now_local())
    }

    /// Evaluate one call, time conditions at `at` (the PBX's local wall-clock time): the
    /// hunts, then the queued actions, run as FreeSWITCH runs them, until the call leaves;
    /// secrets in dial strings and channel variables masked ([`Route::mask_secrets`]).
    pub fn route_at(&self, call: &Call, at: &At) -> Route {
        let mut r = self.evaluate(call, at);
        r.mask_secrets();
        r
    }

    fn evaluate(&self, call: &Call, at: &At) -> Route {
        let mut r = Route {
            hunts: Vec::new(),
            executed: Vec::new(),
            attempts: Vec::new(),
            assumed_unset: BTreeSet::new(),
            unknown: None,
            unevaluated: Vec::new(),
            at: None,
            warnings: Vec::new(),
        };
        let mut vars = call.vars.clone();
        // `${caller_id_number}` and the other caller-profile fields read as variables
        // (switch_channel_get_variable falls back to the caller profile).
        vars.entry("caller_id_number".into())
            .or_insert_with(|| call.caller_id_number.clone());
        for (k, v) in &call.fields {
            vars.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let mut context = call.context.clone();
        let mut destination = call.destination.clone();
        let mut timed = false;
        for _ in 0..MAX_TRANSFERS {
            let mut cx = Cx {
                dp: self,
                vars: &mut vars,
                destination: &destination,
                context: &context,
                caller: &call.caller_id_number,
                fields: &call.fields,
                unset: &mut r.assumed_unset,
                at,
                timed: &mut timed,
            };
            let hunt = cx.hunt();
            if timed {
                r.at = Some(at.to_string());
            }
            let hunt = match hunt {
                Ok(h) => h,
                Err((why, also)) => {
                    let why = format!("{context} -> {destination}: {why}");
                    r.unevaluated.push(why.clone());
                    r.unevaluated.extend(also);
                    r.unknown = Some(why);
                    return r;
                }
            };
            let actions = hunt.actions.clone();
            r.hunts.push(hunt);
            match self.execute(&actions, &mut vars, &destination, &context, &mut r) {
                Step::Transfer(d, c) => {
                    destination = d;
                    context = c;
                }
                Step::Left => return r,
                Step::RanOut => {
                    if r.attempts.is_empty() && r.unknown.is_none() {
                        r.attempts.push(Attempt {
                            target: Target::Refused {
                                why: "no route (the dialplan ends without dialling)".into(),
                            },
                            continue_on: None,
                            at_once_with_next: false,
                        });
                    }
                    return r;
                }
            }
        }
        r.unknown = Some(format!("more than {MAX_TRANSFERS} transfers: a loop"));
        r
    }

    /// Run one hunt's queue (switch_core_standard_on_execute): each action's application
    /// decides whether the next one runs.
    fn execute(
        &self,
        actions: &[(String, String)],
        vars: &mut BTreeMap<String, String>,
        destination: &str,
        context: &str,
        r: &mut Route,
    ) -> Step {
        let leave = |r: &mut Route, target: Target| {
            r.attempts.push(Attempt {
                target,
                continue_on: None,
                at_once_with_next: false,
            });
            Step::Left
        };
        for (app, data) in actions {
            let raw = data.as_str();
            let data = match expand(
                data,
                vars,
                &self.globals,
                &mut r.assumed_unset,
                destination,
                context,
            ) {
                Ok(d) => d,
                Err(why) => {
                    r.unknown = Some(why);
                    return Step::Left;
                }
            };
            r.executed.push((app.clone(), shown(&data)));
            let unknown = |r: &mut Route, why: String| {
                r.unevaluated.push(why.clone());
                r.unknown = Some(why);
                Step::Left
            };
            let Some(a) = apps::lookup(app) else {
                return unknown(
                    r,
                    format!("`{app}` is not an application of FreeSWITCH 1.10.12 (an outside module's?): where the call goes from here is unknown"),
                );
            };
            if matches!(a.class, Class::NotAnApp | Class::NotReviewed) {
                return unknown(
                    r,
                    format!(
                        "`{app}` ({}, {}) is not classified: where the call goes from here is unknown",
                        a.module, a.source
                    ),
                );
            }
            if a.module.starts_with("mod_") && self.module_loaded(a.module) == Some(false) {
                // switch_core_session.c:2765: "Invalid Application", hangup.
                return leave(
                    r,
                    Target::Refused {
                        why: format!(
                            "`{app}`: {} is not loaded, FreeSWITCH hangs up DESTINATION_OUT_OF_ORDER",
                            a.module
                        ),
                    },
                );
            }
            // The call's answer state, which later hunts can test (the stock `global`
            // extension's `${endpoint_disposition} =~ ^(DELAYED NEGOTIATION)`):
            // switch_channel.c:3882 sets `ANSWER` when the call is answered, :3536
            // `EARLY MEDIA` when it is pre-answered, which FreeSWITCH does before any
            // application that needs media on a call that has none
            // (switch_core_session.c:2789).
            let disposition = vars.get("endpoint_disposition").map(String::as_str);
            if app == "answer" {
                vars.insert("endpoint_disposition".into(), "ANSWER".into());
            } else if (app == "pre_answer" || apps::needs_media(app))
                && !matches!(disposition, Some("ANSWER" | "EARLY MEDIA"))
            {
                vars.insert("endpoint_disposition".into(), "EARLY MEDIA".into());
            }
            // Data that still needs an API call matters only to applications that route.
            let opaque = data.contains(API);
            let held = |class: &str| Target::Held {
                application: app.clone(),
                data: shown(&data),
                class: class.to_string(),
            };
            match (a.class, app.as_str()) {
                (_, "set" | "export" | "set_global" | "push" | "unshift") => {
                    let d = data.strip_prefix("nolocal:").unwrap_or(&data);
                    if app == "export" && data.starts_with("nolocal:") {
                        continue;
                    }
                    if let Some((k, v)) = d.split_once('=') {
                        let k = k.trim().to_string();
                        match app.as_str() {
                            "push" | "unshift" if vars.contains_key(&k) => {
                                let old = vars[&k].clone();
                                let new = if app == "push" {
                                    format!("{old},{v}")
                                } else {
                                    format!("{v},{old}")
                                };
                                vars.insert(k, new);
                            }
                            _ if v.is_empty() && app == "set" => {
                                vars.remove(&k);
                            }
                            _ => {
                                vars.insert(k, v.to_string());
                            }
                        }
                    }
                }
                (_, "unset") => {
                    vars.remove(data.trim());
                }
                (_, "hangup") => {
                    return leave(
                        r,
                        Target::Refused {
                            why: if data.is_empty() {
                                "hangup".into()
                            } else {
                                format!("hangup {data}")
                            },
                        },
                    );
                }
                (_, "respond") => {
                    // mod_sofia.c:2251: 400-699 and a bare `302` answer and end the call;
                    // 1xx, 2xx, other 3xx "cannot respond" and the queue goes on.
                    let code: u16 = data
                        .split_whitespace()
                        .next()
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(488);
                    if code > 399 || data.trim() == "302" {
                        return leave(
                            r,
                            Target::Refused {
                                why: format!("respond {data}"),
                            },
                        );
                    }
                }
                (_, "sched_hangup") => {
                    // mod_dptools.c:1260: `+N` (N > 0) later; anything else at once.
                    let later = data
                        .split_whitespace()
                        .next()
                        .and_then(|t| t.strip_prefix('+'))
                        .and_then(|n| n.parse::<u64>().ok())
                        .is_some_and(|n| n > 0);
                    if !later {
                        return leave(
                            r,
                            Target::Refused {
                                why: format!("sched_hangup {data}"),
                            },
                        );
                    }
                }
                (_, "play_and_get_digits") if data.split_whitespace().count() < 11 => {}
                (_, "transfer") => {
                    let mut w: Vec<&str> = data.split_whitespace().collect();
                    if w.first() == Some(&"-bleg") {
                        // Only the bridged partner moves; this leg has none here.
                        continue;
                    }
                    if w.first() == Some(&"-both") {
                        w.remove(0);
                    }
                    if opaque {
                        return unknown(
                            r,
                            format!("`transfer {}`: the destination comes from an API call switchyard cannot evaluate", shown(&data)),
                        );
                    }
                    if let Some(dp) = w.get(1).filter(|d| !matches!(**d, "XML" | "inline")) {
                        return unknown(
                            r,
                            format!("`transfer {data}`: the `{dp}` dialplan is not the XML dialplan switchyard evaluates"),
                        );
                    }
                    let dest = w
                        .first()
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "service".into());
                    let ctx = w
                        .get(2)
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| context.to_string());
                    return Step::Transfer(dest, ctx);
                }
                (Class::Continues, _) => {}
                (_, "bridge") => {
                    let data = self.group_calls(&data);
                    if data.contains(API) {
                        return unknown(
                            r,
                            format!("`bridge {}`: the dial string comes from an API call switchyard cannot evaluate", shown(&data)),
                        );
                    }
                    // switch_channel_handle_cause (switch_channel.c:4875): which failures let
                    // the queue go on.
                    let continue_on = match (
                        vars.get("continue_on_fail").map(String::as_str),
                        vars.get("failure_causes"),
                    ) {
                        (Some("false"), _) => None,
                        (Some("true"), _) => Some(Vec::new()),
                        (Some(list), _) if !list.is_empty() => {
                            Some(list.split(',').map(|c| c.trim().to_string()).collect())
                        }
                        (_, Some(fc)) => Some(vec![format!("any cause but {fc}")]),
                        _ => Some(
                            ["NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL"]
                                .map(String::from)
                                .to_vec(),
                        ),
                    };
                    for name in unset_variables(raw, |name| {
                        expand(
                            &format!("${{{name}}}"),
                            vars,
                            &self.globals,
                            &mut BTreeSet::new(),
                            destination,
                            context,
                        )
                        .is_ok_and(|v| v.is_empty())
                    }) {
                        r.warnings.push(format!(
                            "`bridge {raw}`: `${{{name}}}` is unset, so FreeSWITCH dials `{}`",
                            shown(&data)
                        ));
                    }
                    let groups = bridge_targets(&data);
                    let n = groups.len();
                    for (i, group) in groups.into_iter().enumerate() {
                        // Inside one bridge string, `|` tries the next group on any failure;
                        // the legs of a group ring at once and fail together.
                        let on = if i + 1 < n {
                            Some(Vec::new())
                        } else {
                            continue_on.clone()
                        };
                        let legs = group.len();
                        for (j, t) in group.into_iter().enumerate() {
                            r.attempts.push(Attempt {
                                target: t,
                                continue_on: on.clone(),
                                at_once_with_next: j + 1 < legs,
                            });
                        }
                    }
                    if continue_on.is_none() {
                        return Step::Left;
                    }
                }
                (Class::Bridges, _) | (_, "eavesdrop") if opaque => {
                    // `intercept ${hash(select/...)}`: whether there is a call to take
                    // is run-time state; with none, the application returns and the
                    // queue goes on (seen on 1.10.12: `886` runs the `sleep` after it).
                    return unknown(
                        r,
                        format!(
                            "`{app} {}`: the call it connects to comes from an API call switchyard cannot evaluate (run-time state); without one, the queue goes on",
                            shown(&data)
                        ),
                    );
                }
                (Class::Bridges, _) => return leave(r, held("bridges")),
                (Class::Serves, _) => return leave(r, held("serves")),
                (Class::Parks, _) => return leave(r, held("parks")),
                (Class::BlocksUntilHangup, _) => return leave(r, held("blocks until hangup")),
                (_, "eavesdrop") => return leave(r, held("bridges")),
                (Class::Ends, _) => {
                    return leave(
                        r,
                        Target::Other {
                            application: app.clone(),
                            data,
                        },
                    )
                }
                (Class::Transfers | Class::InlineExec | Class::Depends, _) => {
                    return unknown(
                        r,
                        format!(
                            "`{app}` ({}, {}): what it does next depends on run-time state (counts, scripts, digits) outside the configuration",
                            a.module, a.source
                        ),
                    );
                }
                (Class::NotAnApp | Class::NotReviewed, _) => unreachable!("refused above"),
            }
        }
        Step::RanOut
    }
}

/// How one hunt's queue ended.
enum Step {
    /// Hunt again: destination, context.
    Transfer(String, String),
    /// The call left (dialled, held, refused) or the route stopped (unknown).
    Left,
    /// The queue ran out: FreeSWITCH hangs up NORMAL_CLEARING.
    RanOut,
}

/// Marks `${name(args)}` left for an API call in expanded text.
const API: &str = "\u{1}api:";
/// Ends an [`API`] mark.
const API_END: char = '\u{2}';

/// Text with its API marks shown as written (`${name(args)}`).
fn shown(text: &str) -> String {
    text.replace(API, "${").replace(API_END, "}")
}

struct Cx<'a> {
    dp: &'a Dialplan,
    vars: &'a mut BTreeMap<String, String>,
    destination: &'a str,
    context: &'a str,
    caller: &'a str,
    fields: &'a BTreeMap<String, String>,
    unset: &'a mut BTreeSet<String>,
    at: &'a At,
    /// Set when a time condition was evaluated (the route then says at what time).
    timed: &'a mut bool,
}

impl Cx<'_> {
    /// One hunt; on a part it cannot evaluate, why, and every other such part of the
    /// extensions after it (so the operator sees them all, not one per run).
    fn hunt(&mut self) -> Result<Hunt, (String, Vec<String>)> {
        let exts = self
            .dp
            .contexts
            .iter()
            .find(|(n, _)| n == self.context)
            .or_else(|| self.dp.contexts.iter().find(|(n, _)| n == "global"))
            .map(|(_, e)| e)
            .ok_or_else(|| {
                (
                    format!(
                        "context `{}` does not exist: FreeSWITCH hangs up (NO_ROUTE_DESTINATION)",
                        self.context
                    ),
                    Vec::new(),
                )
            })?;
        if self.dp.opaque.contains(self.context) {
            return Err((format!(
                "context `{}` is the host's own (a file switchyard does not manage): evaluate it with `route --conf` on the host's tree",
                self.context
            ), Vec::new()));
        }
        let mut hunt = Hunt {
            context: self.context.to_string(),
            destination: self.destination.to_string(),
            extensions: Vec::new(),
            actions: Vec::new(),
        };
        for (i, ext) in exts.iter().enumerate() {
            let before = hunt.actions.len();
            let proceed = match self.conditions(
                &ext.name,
                &ext.conditions,
                ext.require_nested,
                &mut hunt.actions,
            ) {
                Ok(p) => p,
                Err(why) => {
                    let also = exts[i + 1..]
                        .iter()
                        .flat_map(|e| {
                            let mut v = Vec::new();
                            static_unknowns(&e.name, &e.conditions, &mut v);
                            v
                        })
                        .collect();
                    return Err((why, also));
                }
            };
            if hunt.actions.len() > before || proceed {
                hunt.extensions.push(ext.name.clone());
            }
            if proceed && !ext.cont {
                break;
            }
        }
        Ok(hunt)
    }

    fn field(&mut self, f: &str) -> Result<String, String> {
        if f.contains('$') {
            return expand(
                f,
                self.vars,
                &self.dp.globals,
                self.unset,
                self.destination,
                self.context,
            )
            .and_then(|v| self.api(&v));
        }
        // switch_caller_get_field_by_name: the caller profile, not channel variables.
        Ok(match f {
            "destination_number" => self.destination.to_string(),
            "caller_id_number" => self.caller.to_string(),
            "context" => self.context.to_string(),
            "dialplan" => "XML".into(),
            other => match self.fields.get(other) {
                Some(v) => v.clone(),
                None if matches!(
                    other,
                    "caller_id_name"
                        | "ani"
                        | "aniii"
                        | "network_addr"
                        | "rdnis"
                        | "source"
                        | "chan_name"
                        | "uuid"
                        | "username"
                        | "transfer_source"
                ) =>
                {
                    return Err(format!(
                        "condition on `{other}`, which only a real call carries"
                    ))
                }
                // Not a caller-profile field: FreeSWITCH matches the empty string.
                None => String::new(),
            },
        })
    }

    /// API calls left in an expanded text: `user_exists` from the directory,
    /// `module_exists` from `modules.conf.xml`; any other cannot be known.
    fn api(&self, v: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = v;
        while let Some(i) = rest.find(API) {
            out.push_str(&rest[..i]);
            let after = &rest[i + API.len()..];
            let end = after.find(API_END).unwrap_or(after.len());
            let call = &after[..end];
            rest = after.get(end + API_END.len_utf8()..).unwrap_or("");
            let (name, args) = call.split_once('(').unwrap_or((call, ""));
            let args = args.strip_suffix(')').unwrap_or(args);
            match name {
                "user_exists" => {
                    let mut w = args.split_whitespace();
                    let (_, id) = (w.next(), w.next().unwrap_or(""));
                    out.push_str(if self.dp.users.contains_key(id) {
                        "true"
                    } else {
                        "false"
                    });
                }
                "module_exists" => match self.dp.module_loaded(args.trim()) {
                    Some(true) => out.push_str("true"),
                    Some(false) => out.push_str("false"),
                    None => {
                        return Err(format!(
                            "`${{module_exists({args})}}`: the tree has no autoload_configs/modules.conf.xml"
                        ))
                    }
                },
                _ => {
                    return Err(format!(
                        "`${{{name}(...)}}` is an API call whose answer is outside the configuration (run-time state)"
                    ))
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn conditions(
        &mut self,
        ext: &str,
        conds: &[Condition],
        require_nested: bool,
        queue: &mut Vec<(String, String)>,
    ) -> Result<bool, String> {
        let mut proceed = false;
        for c in conds {
            if let Some(why) = &c.unknowable {
                return Err(format!("extension `{ext}`: {why}"));
            }
            // mod_dialplan_xml.c:183: the time attributes decide unless a field does.
            let time = if c.time.is_empty() {
                -1
            } else {
                *self.timed = true;
                if ["timezone", "tod_tz_offset"]
                    .iter()
                    .any(|v| self.vars.contains_key(*v))
                {
                    return Err(format!(
                        "extension `{ext}`: a time condition in the zone the call's `timezone`/`tod_tz_offset` names"
                    ));
                }
                let attr = |k: &str| c.time.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                super::tod::check(&attr, self.at).map_err(|e| format!("extension `{ext}`: {e}"))?
            };
            let (matched, caps) = match &c.field {
                None => (time != 0, Vec::new()),
                Some(f) => {
                    let data = self
                        .field(f)
                        .map_err(|e| format!("extension `{ext}`: {e}"))?;
                    let owned;
                    let re = match &c.compiled {
                        Some(Ok(re)) => re,
                        Some(Err(e)) => {
                            return Err(format!(
                                "extension `{ext}`: expression `{}`: {e}",
                                c.expression
                            ))
                        }
                        None => {
                            let expr = expand(
                                &c.expression,
                                self.vars,
                                &self.dp.globals,
                                self.unset,
                                self.destination,
                                self.context,
                            )
                            .and_then(|e| self.api(&e))?;
                            owned = Pcre::new(&expr).map_err(|e| {
                                format!("extension `{ext}`: expression `{expr}`: {e}")
                            })?;
                            &owned
                        }
                    };
                    match re.captures(data.as_bytes()) {
                        Some(caps) => (true, caps),
                        None => (false, Vec::new()),
                    }
                }
            };
            proceed = matched;
            if matched {
                for a in &c.actions {
                    let data = if c.field.is_some() && c.expression.contains('(') {
                        substitute_captures(&a.data, &caps)
                    } else {
                        a.data.clone()
                    };
                    for _ in 0..a.times {
                        self.queue(a, data.clone(), queue)?;
                    }
                }
            } else {
                for a in &c.anti {
                    for _ in 0..a.times {
                        self.queue(a, a.data.clone(), queue)?;
                    }
                    proceed = true;
                }
            }
            let stop = match c.brk {
                Break::OnTrue => matched,
                Break::OnFalse => !matched,
                Break::Always => true,
                Break::Never => false,
            };
            if stop {
                break;
            }
            if proceed && !c.nested.is_empty() {
                let nested = self.conditions(ext, &c.nested, c.require_nested, queue)?;
                if !nested {
                    proceed = false;
                    if c.brk == Break::Never {
                        continue;
                    }
                    break;
                }
            }
        }
        Ok(proceed || !require_nested)
    }

    fn queue(
        &mut self,
        a: &Action,
        data: String,
        queue: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        if a.inline {
            // mod_dialplan_xml.c:56-71: an inline action runs while hunting, if its
            // application may (SAF_ROUTING_EXEC); otherwise it is dropped, neither run nor
            // queued; an unknown one hangs up.
            match apps::lookup(&a.app) {
                Some(app) if !app.routing_exec => return Ok(()),
                None => {
                    return Err(format!(
                        "inline `{}` is not an application of FreeSWITCH 1.10.12: hangup DESTINATION_OUT_OF_ORDER while hunting",
                        a.app
                    ))
                }
                Some(_) => {}
            }
            match a.app.as_str() {
                "set" | "export" => {
                    let data = expand(
                        &data,
                        self.vars,
                        &self.dp.globals,
                        self.unset,
                        self.destination,
                        self.context,
                    )?;
                    if let Some((k, v)) = data.split_once('=') {
                        self.vars.insert(k.to_string(), v.to_string());
                    }
                    return Ok(());
                }
                "unset" => {
                    self.vars.remove(data.trim());
                    return Ok(());
                }
                "log" | "info" | "event" | "presence" | "verbose_events" | "novideo"
                | "cng_plc" | "early_hangup" | "set_media_stats" | "set_zombie_exec" => {
                    return Ok(())
                }
                other => {
                    return Err(format!(
                        "inline `{other}` runs while hunting; switchyard does not evaluate it"
                    ))
                }
            }
        }
        queue.push((a.app.clone(), data));
        Ok(())
    }
}

/// The parts of conditions that cannot be evaluated whatever the call: `regex=` blocks and
/// API calls other than the ones the configuration answers.
fn static_unknowns(ext: &str, conds: &[Condition], out: &mut Vec<String>) {
    for c in conds {
        if let Some(why) = &c.unknowable {
            out.push(format!("extension `{ext}`: {why}"));
        }
        for text in c.field.iter().chain([&c.expression]) {
            let mut rest = text.as_str();
            while let Some(i) = rest.find("${") {
                let after = &rest[i + 2..];
                if let Some(p) = after.find('(') {
                    let name = &after[..p];
                    if !name.contains(['}', ' ', '$'])
                        && !matches!(name, "user_exists" | "module_exists")
                    {
                        out.push(format!(
                            "extension `{ext}`: `${{{name}(...)}}` is an API call whose answer is outside the configuration"
                        ));
                    }
                }
                rest = after;
            }
        }
        static_unknowns(ext, &c.nested, out);
    }
}

/// A dialplan expression compiled as switch_regex_perform compiles it (switch_regex.c:55):
/// `_...` is an Asterisk pattern (N, X, Z, `.`), `/.../flags` takes `i` and `s`; PCRE,
/// byte-wise, no UTF (FreeSWITCH passes no PCRE_UTF8).
#[derive(Debug, Clone)]
struct Pcre(pcre2::bytes::Regex);

impl Pcre {
    fn new(expr: &str) -> Result<Pcre, String> {
        let mut expr = expr.to_string();
        if let Some(ast) = expr.strip_prefix('_') {
            // switch_ast2regex: used only when the result differs from the pattern.
            let mut re = String::from("^");
            for ch in ast.chars() {
                match ch {
                    'N' => re.push_str("[2-9]"),
                    'X' => re.push_str("[0-9]"),
                    'Z' => re.push_str("[1-9]"),
                    '.' => re.push_str(".*"),
                    c => re.push(c),
                }
            }
            re.push('$');
            if re != ast {
                expr = re;
            }
        }
        let mut b = pcre2::bytes::RegexBuilder::new();
        if let Some(body) = expr.strip_prefix('/') {
            let Some((pat, opts)) = body.rsplit_once('/') else {
                return Err("missing ending '/' delimiter: FreeSWITCH never matches it".into());
            };
            b.caseless(opts.contains('i')).dotall(opts.contains('s'));
            expr = pat.to_string();
        }
        b.jit_if_available(true)
            .build(&expr)
            .map(Pcre)
            .map_err(|e| format!("PCRE compile error: {e}: FreeSWITCH never matches it"))
    }

    /// The captures of a match ($0, $1...), `None` when it does not match. With an
    /// `ovector` of 30 ints (mod_dialplan_xml.c:169), pcre_exec returns 0 - no match for
    /// FreeSWITCH - when a group numbered 10 or more took part in the match.
    fn captures(&self, subject: &[u8]) -> Option<Vec<String>> {
        let m = self.0.captures(subject).ok()??;
        let top = (0..m.len())
            .rev()
            .find(|&i| m.get(i).is_some())
            .unwrap_or(0);
        if top >= 10 {
            return None;
        }
        Some(
            (0..=top)
                .map(|i| {
                    m.get(i)
                        .map(|g| String::from_utf8_lossy(g.as_bytes()).into_owned())
                        .unwrap_or_default()
                })
                .collect(),
        )
    }
}

/// `$N` and `${N}` replaced by the captures, as switch_perform_substitution does
/// (switch_regex.c:131): a capture the match did not set, or a number beyond them, is
/// empty; a `$` not followed by a digit stays.
fn substitute_captures(data: &str, caps: &[String]) -> String {
    let b = data.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let brace = b.get(i + 1) == Some(&b'{');
            let start = i + 1 + usize::from(brace);
            let mut j = start;
            while j < b.len() && b[j].is_ascii_digit() && j - start < 9 {
                j += 1;
            }
            if j == start || (brace && b.get(j) != Some(&b'}')) {
                out.push('$');
                i += 1;
                continue;
            }
            let n: usize = data[start..j].parse().unwrap_or(usize::MAX);
            out.push_str(caps.get(n).map(String::as_str).unwrap_or(""));
            i = j + usize::from(brace);
        } else {
            let c = data[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `${var}` expanded: channel variables, then globals; `${destination_number}`; an API call
/// `${name(args)}` is marked for the caller to answer (or refuse). Unset variables are empty
/// (as in FreeSWITCH) and recorded.
fn expand(
    text: &str,
    vars: &BTreeMap<String, String>,
    globals: &BTreeMap<String, String>,
    unset: &mut BTreeSet<String>,
    destination: &str,
    context: &str,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        // `$${name}` left by the pre-processor is a global FreeSWITCH computes when it
        // starts (`local_ip_v4`): not a channel variable; kept as written.
        if i > 0 && rest.as_bytes()[i - 1] == b'$' {
            let end = rest[i..].find('}').map(|e| i + e + 1).unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        // Nested `${a(${b})}`: find the matching brace.
        let mut depth = 1;
        let mut end = None;
        let bytes = after.as_bytes();
        let mut k = 0;
        while k < bytes.len() {
            if bytes[k] == b'$' && bytes.get(k + 1) == Some(&b'{') {
                depth += 1;
                k += 2;
                continue;
            }
            if bytes[k] == b'}' {
                depth -= 1;
                if depth == 0 {
                    end = Some(k);
                    break;
                }
            }
            k += 1;
        }
        let Some(end) = end else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let inner = expand(&after[..end], vars, globals, unset, destination, context)?;
        if let Some(p) = inner.find('(') {
            if inner.ends_with(')') && !inner[..p].contains(' ') {
                out.push_str(&format!("{API}{inner}{API_END}"));
                rest = &after[end + 1..];
                continue;
            }
        }
        let value = match inner.as_str() {
            "destination_number" => Some(destination.to_string()),
            "context" => Some(context.to_string()),
            name => vars.get(name).or_else(|| globals.get(name)).cloned(),
        };
        match value {
            Some(v) => out.push_str(&v),
            None => {
                unset.insert(inner.clone());
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// An action's data for output: `set`-like data whose variable is password-like has its
/// whole value masked (it may hold spaces); any data then goes through [`mask_dial_secrets`].
fn mask_action_data(app: &str, data: &str) -> String {
    if matches!(
        app,
        "set" | "export" | "set_global" | "bridge_export" | "push" | "unshift"
    ) {
        if let Some((k, _)) = data.split_once('=') {
            if crate::secret::is_secret_name(k) {
                return format!("{k}={}", crate::secret::MASK);
            }
        }
    }
    mask_dial_secrets(data)
}

/// A dial string (or any action data) with its secrets masked: the password of every
/// `user:password@` (after an optional `sip:`/`sips:` scheme), and the value of every
/// `name=value` whose name is password-like (channel variables in `{...}`, `[...]`, `<...>`,
/// URI parameters). `sip:1000@host` and `NUM@host` are left as they are.
pub fn mask_dial_secrets(s: &str) -> String {
    use crate::secret::{is_secret_name, MASK};
    // Where a token before `@` or `=` starts.
    let starts = |c: char| "/@{}[]<>,|;?&^ \t\n\"'=".contains(c);
    // Where a variable's value ends.
    let ends = |c: char| ",}]>;&|^ \t\n\"'".contains(c);
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().expect("in bounds");
        let token = || &s[s[..i].rfind(starts).map_or(0, |p| p + 1)..i];
        if c == '@' {
            let token = token();
            let user = token
                .strip_prefix("sips:")
                .or_else(|| token.strip_prefix("sip:"))
                .unwrap_or(token);
            if let Some(colon) = user.find(':') {
                if &user[colon + 1..] != MASK && colon + 1 < user.len() {
                    let keep = out.len() - (user.len() - colon - 1);
                    out.truncate(keep);
                    out.push_str(MASK);
                }
            }
        } else if c == '=' && !token().is_empty() && is_secret_name(token()) {
            let end = s[i + 1..].find(ends).map_or(s.len(), |p| i + 1 + p);
            out.push('=');
            out.push_str(MASK);
            i = end;
            continue;
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// A dial string's legs, as `switch_ivr_originate` reads them: groups separated by `|` are
/// tried one after the other; the legs of one group, separated by `,`, ring at the same
/// time. Separators inside `{...}`, `[...]` and `<...>` (channel variables such as
/// `[leg_timeout=10,origination_caller_id_number=1]`) separate nothing.
fn bridge_targets(data: &str) -> Vec<Vec<Target>> {
    let s = strip_var_block(data.trim());
    split_top(s, '|')
        .into_iter()
        .map(|group| {
            split_top(group, ',')
                .into_iter()
                .map(|leg| leg_target(strip_var_block(leg.trim())))
                .collect()
        })
        .collect()
}

/// `s` cut at every `sep` that is not inside brackets.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0usize, 0usize, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' | '[' | '<' => depth += 1,
            '}' | ']' | '>' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `s` without the channel-variable blocks (`{...}`, `[...]`, `<...>`) it starts with.
fn strip_var_block(mut s: &str) -> &str {
    while let Some(close) = match s.chars().next() {
        Some('{') => Some('}'),
        Some('[') => Some(']'),
        Some('<') => Some('>'),
        _ => None,
    } {
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in s.char_indices() {
            if matches!(c, '{' | '[' | '<') {
                depth += 1;
            } else if matches!(c, '}' | ']' | '>') {
                depth -= 1;
                if depth == 0 && c == close {
                    end = Some(i + 1);
                    break;
                }
            }
        }
        match end {
            Some(e) => s = s[e..].trim_start(),
            None => break,
        }
    }
    s
}

fn leg_target(leg: &str) -> Target {
    if let Some(rest) = leg.strip_prefix("sofia/gateway/") {
        let (gw, num) = rest.split_once('/').unwrap_or((rest, ""));
        Target::Gateway {
            gateway: gw.to_string(),
            number: num.to_string(),
        }
    } else if let Some(rest) = leg.strip_prefix("user/") {
        Target::User {
            user: rest.split('@').next().unwrap_or("").to_string(),
        }
    } else if leg.starts_with("error/") {
        Target::Refused {
            why: leg.to_string(),
        }
    } else {
        Target::Other {
            application: "bridge".into(),
            data: leg.to_string(),
        }
    }
}

fn parse<'a>(rel: &str, text: &'a str) -> Result<roxmltree::Document<'a>, DialplanError> {
    roxmltree::Document::parse(text).map_err(|e| DialplanError(format!("{rel}: {e}")))
}

fn extension(n: roxmltree::Node) -> Extension {
    Extension {
        name: n.attribute("name").unwrap_or("UNKNOWN").to_string(),
        cont: n.attribute("continue").is_some_and(super::switch_true),
        conditions: n
            .children()
            .filter(|c| c.has_tag_name("condition"))
            .map(condition)
            .collect(),
        require_nested: true,
    }
}

fn condition(n: roxmltree::Node) -> Condition {
    let action = |a: roxmltree::Node| Action {
        app: a.attribute("application").unwrap_or("").to_string(),
        data: a
            .text()
            .filter(|t| !t.trim().is_empty())
            .map(String::from)
            .unwrap_or_else(|| a.attribute("data").unwrap_or("").to_string()),
        inline: a.attribute("inline").is_some_and(super::switch_true),
        times: a
            .attribute("loop")
            .and_then(|l| l.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1)
            .min(100),
    };
    let unknowable = n
        .attribute("regex")
        .map(|r| format!("a `regex=\"{r}\"` block (not evaluated)"));
    let time = super::tod::ATTRS
        .iter()
        .filter_map(|a| Some((a.to_string(), n.attribute(*a)?.to_string())))
        .collect();
    let expression = n
        .children()
        .find(|c| c.has_tag_name("expression"))
        .and_then(|e| e.text())
        .map(String::from)
        .unwrap_or_else(|| n.attribute("expression").unwrap_or("").to_string());
    let compiled = (n.attribute("field").is_some() && !expression.contains("${"))
        .then(|| Pcre::new(&expression));
    Condition {
        field: n.attribute("field").map(String::from),
        compiled,
        expression,
        brk: match n.attribute("break").map(str::to_ascii_lowercase).as_deref() {
            Some("on-true") => Break::OnTrue,
            Some("always") => Break::Always,
            Some("never") => Break::Never,
            _ => Break::OnFalse,
        },
        unknowable,
        time,
        actions: n
            .children()
            .filter(|c| c.has_tag_name("action"))
            .map(action)
            .collect(),
        anti: n
            .children()
            .filter(|c| c.has_tag_name("anti-action"))
            .map(action)
            .collect(),
        nested: n
            .children()
            .filter(|c| c.has_tag_name("condition"))
            .map(condition)
            .collect(),
        require_nested: n.attribute("require-nested").is_none_or(super::switch_true),
    }
}

/// The pre-processor over one file: `set` lines define globals (for the text after them),
/// `include` lines are replaced by the matching files (relative to this file's folder,
/// in name order, their `<include>` wrapper dropped); `$${name}` is substituted.
fn preprocess(
    files: &BTreeMap<String, String>,
    rel: &str,
    text: &str,
    globals: &mut BTreeMap<String, String>,
    depth: usize,
) -> Result<String, DialplanError> {
    if depth > 20 {
        return Err(DialplanError(format!(
            "{rel}: includes nested more than 20 deep"
        )));
    }
    let dir = rel.rsplit_once('/').map(|x| x.0).unwrap_or("");
    let mut out = String::new();
    let visible = super::preprocess::visible_lines(text);
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let seen = visible.get(n).map(String::as_str).unwrap_or("");
        if let Some((cmd, data, true)) = super::preprocess::parse_line(seen) {
            match cmd.as_str() {
                "set" => {
                    if let Some((k, v)) = data.split_once('=') {
                        let v = substitute(v, globals);
                        globals.insert(k.to_string(), v);
                    }
                }
                "include" => {
                    let pattern = if dir.is_empty() {
                        data.clone()
                    } else {
                        format!("{dir}/{data}")
                    };
                    let mut matches: Vec<&String> =
                        files.keys().filter(|k| glob(&pattern, k)).collect();
                    matches.sort();
                    for m in matches {
                        let inner = preprocess(files, m, &files[m], globals, depth + 1)?;
                        out.push_str(&unwrap_include(&inner));
                        out.push('\n');
                    }
                }
                _ => {}
            }
            if line.ends_with('\n') {
                out.push('\n');
            }
            continue;
        }
        out.push_str(&substitute(line, globals));
    }
    Ok(out)
}

/// The plain `${name}` references of `text` that expand to nothing in the call (`empty`
/// expands one as the call's queue would).
fn unset_variables(text: &str, empty: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(e) = after.find('}') else { break };
        let name = &after[..e];
        let global = i > 0 && rest.as_bytes()[i - 1] == b'$';
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if plain && !global && empty(name) && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        rest = &after[e + 1..];
    }
    out
}

/// `$${name}` → its global (unknown ones stay as written).
fn substitute(text: &str, globals: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("$${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        match after.find('}') {
            Some(e) => {
                match globals.get(&after[..e]) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[i..i + 3 + e + 1]),
                }
                rest = &after[e + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn strip_preprocess(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !l.trim_start().starts_with("<X-PRE-PROCESS") && !l.trim_start().starts_with("<?")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The content of an included file without its `<include>` wrapper (or `<?xml?>` line).
fn unwrap_include(text: &str) -> String {
    let t = strip_preprocess(text);
    let t = t.trim();
    match (t.find("<include>"), t.rfind("</include>")) {
        (Some(s), Some(e)) if s < e => t[s + "<include>".len()..e].to_string(),
        _ => t.to_string(),
    }
}

/// `*` within one path component, as glob(3) for the pre-processor's patterns.
fn glob(pattern: &str, path: &str) -> bool {
    let (pd, pf) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let (d, f) = path.rsplit_once('/').unwrap_or(("", path));
    pd == d && glob_name(pf, f)
}

fn glob_name(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            if !tail.contains('*') {
                return rest.len() >= tail.len() && rest.ends_with(tail);
            }
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob_name(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dp(files: &[(&str, &str)]) -> Dialplan {
        let m = files
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Dialplan::load(&m).unwrap()
    }

    #[test]
    fn conditions_breaks_anti_actions_and_captures_as_mod_dialplan_xml() {
        let d = dp(&[
            (
                "vars.xml",
                "<include>\n<X-PRE-PROCESS cmd=\"set\" data=\"cc=1\"/>\n</include>\n",
            ),
            (
                "dialplan/a.xml",
                r#"<include><context name="c">
  <extension name="tag" continue="true"><condition><action application="set" data="t=1"/></condition></extension>
  <extension name="partial">
    <condition field="destination_number" expression="^9(\d+)$"><action application="set" data="seen=$1"/></condition>
    <condition field="${nothing}" expression="^x$"/>
  </extension>
  <extension name="anti">
    <condition field="destination_number" expression="^5"><action application="hangup"/><anti-action application="set" data="anti=yes"/></condition>
  </extension>
  <extension name="out">
    <condition field="destination_number" expression="^(\d{10})$">
      <action application="set" data="continue_on_fail=GATEWAY_DOWN"/>
      <action application="bridge" data="sofia/gateway/a/$${cc}$1|sofia/gateway/b/$${cc}$1"/>
      <action application="bridge" data="{x=y}sofia/gateway/c/$1"/>
    </condition>
  </extension>
</context></include>"#,
            ),
        ]);
        let call = Call {
            context: "c".into(),
            destination: "2125551234".into(),
            caller_id_number: "1000".into(),
            vars: BTreeMap::new(),
            fields: BTreeMap::new(),
        };
        let r = d.route(&call);
        assert!(r.unknown.is_none(), "{r:?}");
        // `anti` queued its anti-action and proceeded: the hunt ended there, `out` never ran.
        assert_eq!(r.hunts[0].extensions, ["tag", "anti"]);
        assert_eq!(
            r.hunts[0].actions,
            [
                ("set".to_string(), "t=1".to_string()),
                ("set".into(), "anti=yes".into())
            ]
        );
        assert_eq!(r.attempts.len(), 1, "{r:?}");
        assert!(
            matches!(&r.attempts[0].target, Target::Refused { why } if why.starts_with("no route"))
        );
        // A number starting 9: `partial` queues its set, then fails; the hunt goes on, and
        // the queued set stays (the FreeSWITCH gotcha).
        let r = d.route(&Call {
            destination: "91234".into(),
            ..call.clone()
        });
        assert_eq!(
            r.hunts[0].actions[1],
            ("set".to_string(), "seen=1234".to_string())
        );
        assert!(r.assumed_unset.contains("nothing"));
        // A number starting 5: `anti` matched, its action (hangup) refuses the call.
        let r = d.route(&Call {
            destination: "5551234567".into(),
            ..call.clone()
        });
        assert!(
            matches!(&r.attempts[0].target, Target::Refused { why } if why == "hangup"),
            "{r:?}"
        );
    }

    #[test]
    fn legs_joined_by_a_comma_ring_at_once_and_brackets_separate_nothing() {
        let groups = bridge_targets(
            "{ignore_early_media=true,a=b}[leg_timeout=10,x=y]user/1000@d,<t=1,u=2>user/1001@d|sofia/gateway/gw/123",
        );
        let user = |u: &str| Target::User { user: u.into() };
        assert_eq!(
            groups,
            vec![
                vec![user("1000"), user("1001")],
                vec![Target::Gateway {
                    gateway: "gw".into(),
                    number: "123".into()
                }]
            ]
        );
        let d = dp(&[(
            "dialplan/a.xml",
            r#"<include><context name="c">
  <extension name="both"><condition field="destination_number" expression="^2000$">
    <action application="bridge" data="user/1000@d,user/1001@d|user/1002@d"/>
  </condition></extension>
</context></include>"#,
        )]);
        let r = d.route(&Call {
            context: "c".into(),
            destination: "2000".into(),
            caller_id_number: "1".into(),
            vars: BTreeMap::new(),
            fields: BTreeMap::new(),
        });
        let shape: Vec<(bool, bool)> = r
            .attempts
            .iter()
            .map(|a| {
                (
                    a.at_once_with_next,
                    a.continue_on.as_ref().is_some_and(|c| c.is_empty()),
                )
            })
            .collect();
        // 1000 and 1001 ring together; if both fail, 1002 is tried.
        assert_eq!(shape, vec![(true, true), (false, true), (false, false)]);
    }

    #[test]
    fn an_unset_variable_in_a_dial_string_is_a_warning_not_a_blank_gateway() {
        let d = dp(&[(
            "dialplan/a.xml",
            r#"<include><context name="c">
  <extension name="out"><condition field="destination_number" expression="^(\d+)$">
    <action application="bridge" data="sofia/gateway/${gw}/${destination_number}"/>
  </condition></extension>
</context></include>"#,
        )]);
        let mut call = Call {
            context: "c".into(),
            destination: "2125551234".into(),
            caller_id_number: "1000".into(),
            vars: BTreeMap::new(),
            fields: BTreeMap::new(),
        };
        let r = d.route(&call);
        assert_eq!(
            r.warnings,
            ["`bridge sofia/gateway/${gw}/${destination_number}`: `${gw}` is unset, so FreeSWITCH dials `sofia/gateway//2125551234`"]
        );
        call.vars.insert("gw".into(), "wavix".into());
        let r = d.route(&call);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(
            r.first(),
            Some(&Target::Gateway {
                gateway: "wavix".into(),
                number: "2125551234".into()
            })
        );
    }

    #[test]
    fn group_call_rings_the_directory_group_members() {
        let d = dp(&[
            (
                "dialplan/a.xml",
                r#"<include><context name="c">
  <extension name="all"><condition field="destination_number" expression="^2000$">
    <action application="bridge" data="${group_call(sales@d)}"/>
  </condition></extension>
  <extension name="in-turn"><condition field="destination_number" expression="^2001$">
    <action application="bridge" data="${group_call(sales@d+F)}"/>
  </condition></extension>
  <extension name="nobody"><condition field="destination_number" expression="^2002$">
    <action application="bridge" data="${group_call(nosuch@d)}"/>
  </condition></extension>
</context></include>"#,
            ),
            (
                "directory/d.xml",
                r#"<include><domain name="d"><groups>
  <group name="default"><users>
    <X-PRE-PROCESS cmd="include" data="d/*.xml"/>
  </users></group>
  <group name="sales"><users><user id="7" type="pointer"/><user id="8" type="pointer"/></users></group>
</groups></domain></include>"#,
            ),
            ("directory/d/7.xml", r#"<include><user id="7"/></include>"#),
            ("directory/d/8.xml", r#"<include><user id="8"/></include>"#),
        ]);
        let call = |n: &str| Call {
            context: "c".into(),
            destination: n.into(),
            caller_id_number: "7".into(),
            vars: BTreeMap::new(),
            fields: BTreeMap::new(),
        };
        let users =
            |r: &Route| -> Vec<Target> { r.attempts.iter().map(|a| a.target.clone()).collect() };
        let both = vec![
            Target::User { user: "7".into() },
            Target::User { user: "8".into() },
        ];
        assert_eq!(users(&d.route(&call("2000"))), both);
        assert_eq!(users(&d.route(&call("2001"))), both);
        // The `default` group is read with its includes.
        assert_eq!(d.groups["default"], ["7", "8"]);
        let r = d.route(&call("2002"));
        assert!(
            r.unknown
                .as_deref()
                .unwrap_or("")
                .contains("group_call(nosuch@d)"),
            "{r:?}"
        );
    }

    #[test]
    fn dial_string_secrets_are_masked() {
        for (raw, shown) in [
            (
                "sofia/external/12125551234@trunk1:Lit-Pass-9@sip.example.com",
                "sofia/external/12125551234@trunk1:********@sip.example.com",
            ),
            (
                "{sip_auth_username=u,sip_auth_password=p4ss!}sofia/external/sip:1000@h",
                "{sip_auth_username=u,sip_auth_password=********}sofia/external/sip:1000@h",
            ),
            (
                "sofia/internal/sip:u:pw@[::1]:5060",
                "sofia/internal/sip:u:********@[::1]:5060",
            ),
            (
                "[api_key=k]sofia/gateway/gw/1|user/1000@d",
                "[api_key=********]sofia/gateway/gw/1|user/1000@d",
            ),
            (
                "sofia/internal/sip:1000@10.0.0.1:5060;transport=tcp",
                "sofia/internal/sip:1000@10.0.0.1:5060;transport=tcp",
            ),
            (
                "sofia/gateway/wavix/12125551234",
                "sofia/gateway/wavix/12125551234",
            ),
        ] {
            assert_eq!(mask_dial_secrets(raw), shown);
        }
        assert_eq!(
            mask_action_data("set", "sip_auth_password=two words"),
            "sip_auth_password=********"
        );
    }

    #[test]
    fn bridges_fail_over_on_the_causes_continue_on_fail_names() {
        let d = dp(&[
            (
                "vars.xml",
                "<include>\n<X-PRE-PROCESS cmd=\"set\" data=\"cc=1\"/>\n</include>\n",
            ),
            (
                "dialplan/a.xml",
                r#"<include><context name="c">
  <extension name="out">
    <condition field="destination_number" expression="^(\d{10})$">
      <action application="set" data="hangup_after_bridge=true"/>
      <action application="set" data="continue_on_fail=GATEWAY_DOWN,NORMAL_TEMPORARY_FAILURE"/>
      <action application="bridge" data="sofia/gateway/a/$${cc}$1"/>
      <action application="set" data="continue_on_fail=false"/>
      <action application="bridge" data="{x=y}sofia/gateway/b/$${cc}$1"/>
      <action application="bridge" data="sofia/gateway/never/1"/>
    </condition>
  </extension>
  <extension name="to-user">
    <condition field="destination_number" expression="^(10\d\d)$">
      <action application="transfer" data="u$1 XML users"/>
    </condition>
  </extension>
</context>
<context name="users">
  <extension name="u"><condition field="destination_number" expression="^u(\d+)$">
    <action application="bridge" data="user/$1@$${domain}"/>
  </condition></extension>
</context></include>"#,
            ),
        ]);
        let call = Call {
            context: "c".into(),
            destination: "2125551234".into(),
            caller_id_number: "1000".into(),
            vars: BTreeMap::new(),
            fields: BTreeMap::new(),
        };
        let r = d.route(&call);
        let t: Vec<(&Target, Option<&Vec<String>>)> = r
            .attempts
            .iter()
            .map(|a| (&a.target, a.continue_on.as_ref()))
            .collect();
        assert_eq!(t.len(), 2, "{r:?}");
        assert_eq!(
            t[0].0,
            &Target::Gateway {
                gateway: "a".into(),
                number: "12125551234".into()
            }
        );
        assert_eq!(
            t[0].1.unwrap(),
            &[
                "GATEWAY_DOWN".to_string(),
                "NORMAL_TEMPORARY_FAILURE".into()
            ]
        );
        assert_eq!(
            t[1].0,
            &Target::Gateway {
                gateway: "b".into(),
                number: "12125551234".into()
            }
        );
        assert!(t[1].1.is_none(), "the last bridge ends the call");
        // A transfer hunts again in the named context.
        let r = d.route(&Call {
            destination: "1007".into(),
            ..call
        });
        assert_eq!(r.hunts.len(), 2);
        assert_eq!(r.hunts[1].context, "users");
        assert_eq!(
            r.first(),
            Some(&Target::User {
                user: "1007".into()
            })
        );
    }
}
