//! One hunt as mod_dialplan_xml.c `dialplan_hunt()`/`parse_exten()` does it: extensions
//! and their conditions in order, fields and `${...}` expanded, expressions on PCRE, and
//! the actions a match queues (inline ones run at once).

use std::collections::{BTreeMap, BTreeSet};

use super::execute::{API, API_END};
use super::{Action, Break, Condition, Dialplan, Hunt};
use crate::freeswitch::apps;
use crate::freeswitch::tod::At;

pub(super) struct Cx<'a> {
    pub(super) dp: &'a Dialplan,
    pub(super) vars: &'a mut BTreeMap<String, String>,
    pub(super) destination: &'a str,
    pub(super) context: &'a str,
    pub(super) caller: &'a str,
    pub(super) fields: &'a BTreeMap<String, String>,
    pub(super) unset: &'a mut BTreeSet<String>,
    pub(super) at: &'a At,
    /// Set when a time condition was evaluated (the route then says at what time).
    pub(super) timed: &'a mut bool,
}

impl Cx<'_> {
    /// One hunt; on a part it cannot evaluate, why, and every other such part of the
    /// extensions after it (so the operator sees them all, not one per run).
    pub(super) fn hunt(&mut self) -> Result<Hunt, (String, Vec<String>)> {
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
                crate::freeswitch::tod::check(&attr, self.at)
                    .map_err(|e| format!("extension `{ext}`: {e}"))?
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
pub(super) struct Pcre(pcre2::bytes::Regex);

impl Pcre {
    pub(super) fn new(expr: &str) -> Result<Pcre, String> {
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
pub(super) fn expand(
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
