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
//! What it cannot know it says, and stops there rather than guess: time-of-day conditions,
//! `regex="all|any|xor"` blocks, API calls in `${...}` other than `user_exists`, PCRE
//! features the `regex` crate lacks (look-around, back-references), inline actions other
//! than `set`/`export`. Variables a real call might carry (`${sip_looped_call}`) are taken
//! as unset and listed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

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
}

#[derive(Debug, Clone)]
struct Condition {
    field: Option<String>,
    expression: String,
    /// The expression compiled once at load, when it holds no `${variable}` (most do):
    /// routing 40 numbers on 500 PBXes compiles each pattern 500 times, not 20,000.
    compiled: Option<Result<regex::bytes::Regex, String>>,
    brk: Break,
    /// A `wday`/`hour`/... attribute or a `regex=` block: not knowable offline.
    unknowable: Option<String>,
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
    /// Contexts whose content switchyard does not know (see [`Dialplan::opaque`]).
    opaque: BTreeSet<String>,
}

/// One call to evaluate.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    pub context: String,
    pub destination: String,
    pub caller_id_number: String,
    /// Channel variables the call starts with (a user's directory variables).
    pub vars: BTreeMap<String, String>,
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
}

/// One dial attempt and what happens when it fails.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub target: Target,
    /// `None`: a failure ends the call; `Some([])`: any failure goes on; else these causes.
    pub continue_on: Option<Vec<String>>,
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
    pub attempts: Vec<Attempt>,
    /// Call variables taken as unset because only a real call would set them.
    pub assumed_unset: BTreeSet<String>,
    /// Why evaluation stopped short, if it did (never a guess).
    pub unknown: Option<String>,
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
            }
        }
        if let Some(u) = &mut self.unknown {
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
        for (rel, text) in files {
            if rel.starts_with("directory/") && rel.ends_with(".xml") {
                let text = substitute(text, &dp.globals);
                if let Ok(doc) = roxmltree::Document::parse(&strip_preprocess(&text)) {
                    for u in doc.descendants().filter(|n| n.has_tag_name("user")) {
                        let vars = u
                            .descendants()
                            .filter(|n| n.has_tag_name("variable"))
                            .filter_map(|v| {
                                Some((
                                    v.attribute("name")?.to_string(),
                                    v.attribute("value")?.to_string(),
                                ))
                            })
                            .collect();
                        if let Some(id) = u.attribute("id") {
                            dp.users.insert(id.to_string(), vars);
                        }
                    }
                }
            }
            if rel.starts_with("sip_profiles/") && rel.ends_with(".xml") {
                let text = substitute(text, &dp.globals);
                if let Some(gws) = super::gateways(&text) {
                    for g in gws {
                        let ctx = g.param("context").unwrap_or("public").to_string();
                        dp.gateway_context.insert(g.name.clone(), ctx);
                    }
                }
            }
        }
        Ok(dp)
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
        let vars = self
            .users
            .get(id)
            .ok_or_else(|| format!("no directory user `{id}`"))?
            .clone();
        Ok(Call {
            context: vars
                .get("user_context")
                .cloned()
                .unwrap_or_else(|| "default".into()),
            destination: number.to_string(),
            caller_id_number: id.to_string(),
            vars,
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
            caller_id_number: "0000000000".into(),
            vars: BTreeMap::new(),
        })
    }

    /// Evaluate one call: the hunts, then the queued actions, into dial attempts; secrets
    /// in dial strings and channel variables masked ([`Route::mask_secrets`]).
    pub fn route(&self, call: &Call) -> Route {
        let mut r = self.evaluate(call);
        r.mask_secrets();
        r
    }

    fn evaluate(&self, call: &Call) -> Route {
        let mut r = Route {
            hunts: Vec::new(),
            attempts: Vec::new(),
            assumed_unset: BTreeSet::new(),
            unknown: None,
        };
        let mut vars = call.vars.clone();
        let mut context = call.context.clone();
        let mut destination = call.destination.clone();
        for _ in 0..MAX_TRANSFERS {
            let mut cx = Cx {
                dp: self,
                vars: &mut vars,
                destination: &destination,
                context: &context,
                caller: &call.caller_id_number,
                unset: &mut r.assumed_unset,
            };
            let hunt = match cx.hunt() {
                Ok(h) => h,
                Err(why) => {
                    r.unknown = Some(format!("{context} -> {destination}: {why}"));
                    return r;
                }
            };
            let actions = hunt.actions.clone();
            r.hunts.push(hunt);
            // Run the queue.
            let mut next = None;
            for (app, data) in actions {
                let data = expand(
                    &data,
                    &vars,
                    &self.globals,
                    &mut r.assumed_unset,
                    &destination,
                    &context,
                );
                let data = match data {
                    Ok(d) => d,
                    Err(why) => {
                        r.unknown = Some(why);
                        return r;
                    }
                };
                match app.as_str() {
                    "set" | "export" | "set_global" => {
                        if let Some((k, v)) = data.split_once('=') {
                            vars.insert(k.trim().to_string(), v.to_string());
                        }
                    }
                    "bridge" => {
                        let continue_on = match vars.get("continue_on_fail").map(String::as_str) {
                            None | Some("false") | Some("") => None,
                            Some("true") => Some(Vec::new()),
                            Some(list) => {
                                Some(list.split(',').map(|c| c.trim().to_string()).collect())
                            }
                        };
                        let legs = bridge_targets(&data);
                        let n = legs.len();
                        for (i, t) in legs.into_iter().enumerate() {
                            // Inside one bridge string, `|` tries the next leg on any failure.
                            let on = if i + 1 < n {
                                Some(Vec::new())
                            } else {
                                continue_on.clone()
                            };
                            r.attempts.push(Attempt {
                                target: t,
                                continue_on: on,
                            });
                        }
                        if continue_on.is_none() {
                            return r;
                        }
                    }
                    "transfer" => {
                        let mut w = data.split_whitespace();
                        let dest = w.next().unwrap_or("").to_string();
                        let _dialplan = w.next();
                        let ctx = w
                            .next()
                            .map(String::from)
                            .unwrap_or_else(|| context.clone());
                        next = Some((dest, ctx));
                        break;
                    }
                    "hangup" => {
                        r.attempts.push(Attempt {
                            target: Target::Refused {
                                why: if data.is_empty() {
                                    "hangup".into()
                                } else {
                                    format!("hangup {data}")
                                },
                            },
                            continue_on: None,
                        });
                        return r;
                    }
                    "respond"
                        if data
                            .split_whitespace()
                            .next()
                            .and_then(|c| c.parse::<u16>().ok())
                            .is_some_and(|c| c >= 300) =>
                    {
                        r.attempts.push(Attempt {
                            target: Target::Refused {
                                why: format!("respond {data}"),
                            },
                            continue_on: None,
                        });
                        return r;
                    }
                    "deflect" => {
                        r.attempts.push(Attempt {
                            target: Target::Other {
                                application: app.clone(),
                                data,
                            },
                            continue_on: None,
                        });
                        return r;
                    }
                    "answer" | "pre_answer" | "ring_ready" | "info" | "log" | "sleep" | "unset"
                    | "hash" | "limit" | "record_session" | "respond" | "sched_hangup" => {}
                    _ => {
                        // An application that takes the call somewhere switchyard does not
                        // follow (voicemail, conference, an IVR...): the route ends there.
                        r.attempts.push(Attempt {
                            target: Target::Other {
                                application: app.clone(),
                                data,
                            },
                            continue_on: None,
                        });
                        return r;
                    }
                }
            }
            match next {
                Some((d, c)) => {
                    destination = d;
                    context = c;
                }
                None => {
                    if r.attempts.is_empty() && r.unknown.is_none() {
                        r.attempts.push(Attempt {
                            target: Target::Refused {
                                why: "no route (the dialplan ends without dialling)".into(),
                            },
                            continue_on: None,
                        });
                    }
                    return r;
                }
            }
        }
        r.unknown = Some(format!("more than {MAX_TRANSFERS} transfers: a loop"));
        r
    }
}

struct Cx<'a> {
    dp: &'a Dialplan,
    vars: &'a mut BTreeMap<String, String>,
    destination: &'a str,
    context: &'a str,
    caller: &'a str,
    unset: &'a mut BTreeSet<String>,
}

impl Cx<'_> {
    fn hunt(&mut self) -> Result<Hunt, String> {
        let exts = self
            .dp
            .contexts
            .iter()
            .find(|(n, _)| n == self.context)
            .or_else(|| self.dp.contexts.iter().find(|(n, _)| n == "global"))
            .map(|(_, e)| e)
            .ok_or_else(|| {
                format!(
                    "context `{}` does not exist: FreeSWITCH hangs up (NO_ROUTE_DESTINATION)",
                    self.context
                )
            })?;
        if self.dp.opaque.contains(self.context) {
            return Err(format!(
                "context `{}` is the host's own (a file switchyard does not manage): evaluate it with `route --conf` on the host's tree",
                self.context
            ));
        }
        let mut hunt = Hunt {
            context: self.context.to_string(),
            destination: self.destination.to_string(),
            extensions: Vec::new(),
            actions: Vec::new(),
        };
        for ext in exts {
            let before = hunt.actions.len();
            let proceed = self.conditions(
                &ext.name,
                &ext.conditions,
                ext.require_nested,
                &mut hunt.actions,
            )?;
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
        Ok(match f {
            "destination_number" => self.destination.to_string(),
            "caller_id_number" | "ani" => self.caller.to_string(),
            "context" => self.context.to_string(),
            "dialplan" => "XML".into(),
            "caller_id_name" | "network_addr" | "rdnis" | "source" | "chan_name" | "uuid"
            | "aniii" | "username" => {
                return Err(format!(
                    "condition on `{f}`, which only a real call carries"
                ))
            }
            other => self.vars.get(other).cloned().unwrap_or_default(),
        })
    }

    /// `${user_exists(id X DOMAIN)}` after expansion left the call in place: answered from
    /// the directory; any other API call cannot be known.
    fn api(&self, v: &str) -> Result<String, String> {
        if let Some(rest) = v.strip_prefix("\u{1}api:") {
            let (name, args) = rest.split_once('(').unwrap_or((rest, ""));
            let args = args.trim_end_matches(')');
            if name == "user_exists" {
                let mut w = args.split_whitespace();
                let (_, id) = (w.next(), w.next().unwrap_or(""));
                return Ok(if self.dp.users.contains_key(id) {
                    "true"
                } else {
                    "false"
                }
                .into());
            }
            return Err(format!(
                "`${{{name}(...)}}` is an API call switchyard cannot evaluate"
            ));
        }
        Ok(v.to_string())
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
            let (matched, caps) = match &c.field {
                None => (true, Vec::new()),
                Some(f) => {
                    let data = self.field(f)?;
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
                            )?;
                            owned = pcre(&expr).map_err(|e| {
                                format!("extension `{ext}`: expression `{expr}`: {e}")
                            })?;
                            &owned
                        }
                    };
                    match re.captures(data.as_bytes()) {
                        Some(m) => (
                            true,
                            (0..m.len())
                                .map(|i| {
                                    m.get(i)
                                        .map(|g| String::from_utf8_lossy(g.as_bytes()).into_owned())
                                        .unwrap_or_default()
                                })
                                .collect(),
                        ),
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
                    self.queue(a, data, queue)?;
                }
            } else {
                for a in &c.anti {
                    self.queue(a, a.data.clone(), queue)?;
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
            // An inline set/export runs while hunting: later conditions see it.
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

/// A PCRE expression as the `regex` crate runs it, byte-wise without Unicode classes (as
/// FreeSWITCH's PCRE does by default); what it cannot run is refused, not approximated.
fn pcre(expr: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::Regex::new(&format!("(?-u){expr}")).map_err(|e| {
        format!(
            "uses PCRE that switchyard does not evaluate ({})",
            e.to_string().lines().last().unwrap_or("")
        )
    })
}

/// `$1`..`$N` replaced by the captures (unmatched: empty), `\$` by `$`
/// (switch_perform_substitution).
fn substitute_captures(data: &str, caps: &[String]) -> String {
    let b = data.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'$') {
            out.push('$');
            i += 2;
        } else if b[i] == b'$' && b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let n: usize = data[i + 1..j].parse().unwrap_or(usize::MAX);
            out.push_str(caps.get(n).map(String::as_str).unwrap_or(""));
            i = j;
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
                out.push_str(&format!("\u{1}api:{inner}"));
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

/// The legs of a bridge string: `{...}`/`[...]` variables dropped, `|` and `,` split.
fn bridge_targets(data: &str) -> Vec<Target> {
    let mut s = data.trim();
    if s.starts_with('{') || s.starts_with('<') {
        if let Some(e) = s.find(['}', '>']) {
            s = &s[e + 1..];
        }
    }
    s.split(['|', ','])
        .map(|leg| {
            let mut leg = leg.trim();
            if leg.starts_with('[') {
                if let Some(e) = leg.find(']') {
                    leg = &leg[e + 1..];
                }
            }
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
        })
        .collect()
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

const TIME_ATTRS: &[&str] = &[
    "year",
    "yday",
    "mon",
    "mday",
    "week",
    "mweek",
    "wday",
    "hour",
    "minute",
    "minute-of-day",
    "time-of-day",
    "date-time",
];

fn condition(n: roxmltree::Node) -> Condition {
    let action = |a: roxmltree::Node| Action {
        app: a.attribute("application").unwrap_or("").to_string(),
        data: a
            .text()
            .filter(|t| !t.trim().is_empty())
            .map(String::from)
            .unwrap_or_else(|| a.attribute("data").unwrap_or("").to_string()),
        inline: a.attribute("inline").is_some_and(super::switch_true),
    };
    let unknowable = if let Some(r) = n.attribute("regex") {
        Some(format!("a `regex=\"{r}\"` block (not evaluated)"))
    } else {
        TIME_ATTRS
            .iter()
            .find(|a| n.attribute(**a).is_some())
            .map(|a| {
                format!("a time condition (`{a}`): the route depends on when the call is made")
            })
    };
    let expression = n
        .children()
        .find(|c| c.has_tag_name("expression"))
        .and_then(|e| e.text())
        .map(String::from)
        .unwrap_or_else(|| n.attribute("expression").unwrap_or("").to_string());
    let compiled =
        (n.attribute("field").is_some() && !expression.contains("${")).then(|| pcre(&expression));
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
