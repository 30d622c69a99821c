//! Checks of the XML dialplan: each `<condition>` as mod_dialplan_xml.c `parse_exten()`
//! matches it, and its actions in order, as mod_dptools runs them (a bridge, then what a
//! failed or finished bridge leaves the call to).

use std::collections::BTreeSet;

use super::numbers::{e164_fix, e164_problem};
use super::tree::{row, Tree};
use super::{Ctx, Severity};
use crate::freeswitch::{classify, FileKind};

/// One `<condition>` of an extension, with its actions as [`Step`]s.
pub(super) struct Cond<'t, 'a> {
    pub tree: &'t Tree<'a>,
    pub rel: &'a str,
    pub ctx_name: &'t str,
    pub ext_name: &'t str,
    pub node: roxmltree::Node<'t, 'a>,
    pub line: usize,
    /// Contexts of this file that bridge out through a gateway.
    pub outbound: &'t BTreeSet<&'t str>,
    pub steps: Vec<Step<'t>>,
}

/// One `<action>`, with what the actions before it left set.
pub(super) struct Step<'t> {
    pub index: usize,
    pub app: &'t str,
    pub data: &'t str,
    pub line: usize,
    /// Bridges before this action.
    pub bridges_before: usize,
    /// `continue_on_fail` as it stands: unset, "false", "true", or a cause list.
    pub continue_on_fail: Option<String>,
    /// Whether the last bridge before this action would go on after failing.
    pub continuing_at_last_bridge: bool,
    pub hangup_after_bridge: bool,
}

impl Step<'_> {
    /// switch_channel.c `switch_channel_handle_cause()`: any `continue_on_fail` but
    /// "false" lets the dialplan go on after a failed bridge.
    fn continuing(&self) -> bool {
        self.continue_on_fail
            .as_deref()
            .is_some_and(|v| !v.eq_ignore_ascii_case("false"))
    }
}

impl Cond<'_, '_> {
    /// The first bridge after `step`.
    fn next_bridge(&self, step: &Step<'_>) -> Option<&Step<'_>> {
        self.steps[step.index + 1..]
            .iter()
            .find(|s| s.app == "bridge")
    }

    /// The gateways this condition's trunk callers came in through, if its context is a
    /// gateway's inbound context.
    fn inbound_via(&self) -> Option<&String> {
        self.tree.inbound.get(self.ctx_name)
    }
}

/// Every condition of every dialplan file, in file and document order.
pub(super) fn walk(tree: &Tree<'_>, mut visit: impl FnMut(&Cond<'_, '_>)) {
    for (rel, doc) in tree.docs(FileKind::Dialplan) {
        let outbound: BTreeSet<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("context"))
            .filter(|c| c.descendants().any(|a| bridges_to_gateway(a)))
            .filter_map(|c| c.attribute("name"))
            .collect();
        for ctx in doc.descendants().filter(|n| n.has_tag_name("context")) {
            let ctx_name = ctx.attribute("name").unwrap_or("");
            for ext in ctx.children().filter(|n| n.has_tag_name("extension")) {
                let ext_name = ext.attribute("name").unwrap_or("?");
                for node in ext.children().filter(|n| n.has_tag_name("condition")) {
                    visit(&Cond {
                        tree,
                        rel,
                        ctx_name,
                        ext_name,
                        node,
                        line: row(doc, node),
                        outbound: &outbound,
                        steps: steps(doc, node),
                    });
                }
            }
        }
    }
}

fn bridges_to_gateway(a: roxmltree::Node<'_, '_>) -> bool {
    a.has_tag_name("action")
        && a.attribute("application") == Some("bridge")
        && a.attribute("data")
            .is_some_and(|d| d.contains("sofia/gateway/"))
}

/// A condition's actions, each with the state the ones before it left.
fn steps<'t, 'a>(doc: &roxmltree::Document<'a>, cond: roxmltree::Node<'t, 'a>) -> Vec<Step<'t>> {
    let mut out: Vec<Step<'t>> = Vec::new();
    let (mut bridges, mut cof, mut continuing_at_last, mut hangup) = (0, None, false, false);
    for (index, node) in cond
        .children()
        .filter(|n| n.has_tag_name("action"))
        .enumerate()
    {
        let step = Step {
            index,
            app: node.attribute("application").unwrap_or(""),
            data: node.attribute("data").unwrap_or(""),
            line: row(doc, node),
            bridges_before: bridges,
            continue_on_fail: cof.clone(),
            continuing_at_last_bridge: continuing_at_last,
            hangup_after_bridge: hangup,
        };
        if step.app == "set" {
            if step.data.starts_with("continue_on_fail=") {
                cof = Some(
                    step.data
                        .trim_start_matches("continue_on_fail=")
                        .to_string(),
                );
            }
            hangup |= step.data.trim() == "hangup_after_bridge=true";
        }
        if step.app == "bridge" {
            continuing_at_last = step.continuing();
            bridges += 1;
        }
        out.push(step);
    }
    out
}

/// Condition fields mod_dialplan_xml reads from the caller profile: every name
/// `switch_caller_get_field_by_name()` (switch_caller.c, v1.10.12) knows.
const CALLER_FIELDS: &[&str] = &[
    "destination_number",
    "caller_id_number",
    "caller_id_name",
    "ani",
    "aniii",
    "network_addr",
    "rdnis",
    "context",
    "dialplan",
    "username",
    "orig_caller_id_name",
    "orig_caller_id_number",
    "callee_id_name",
    "callee_id_number",
    "uuid",
    "source",
    "transfer_source",
    "chan_name",
    "profile_index",
    "caller_ton",
    "caller_numplan",
    "destination_number_ton",
    "destination_number_numplan",
    "ani_ton",
    "ani_numplan",
    "rdnis_ton",
    "rdnis_numplan",
    "screen_bit",
    "privacy_hide_name",
    "privacy_hide_number",
    "profile_created_time",
    "created_time",
    "answered_time",
    "progress_time",
    "progress_media_time",
    "hungup_time",
    "transferred_time",
];

/// `condition-field`: mod_dialplan_xml.c `parse_exten()` reads a field without `$` with
/// switch_caller.c `switch_caller_get_field_by_name()`; any other name yields "", silently.
pub(super) fn field(cx: &mut Ctx<'_>, c: &Cond<'_, '_>) {
    let Some(field) = c.node.attribute("field") else {
        return;
    };
    if !field.contains('$') && !CALLER_FIELDS.contains(&field) {
        cx.push(Severity::Error, c.rel, c.line, "condition-field",
            format!("extension `{}`: `{field}` is not a caller-profile field, so FreeSWITCH matches `{}` against an empty string", c.ext_name, c.node.attribute("expression").unwrap_or("")),
            format!("for a channel variable write `field=\"${{{field}}}\"`; caller-profile fields are {}", CALLER_FIELDS[..8].join(", ") + ", ..."));
    }
}

/// Why PCRE (FreeSWITCH's libpcre) would refuse to compile `expr`, for the mistakes both
/// it and regex-syntax reject: nothing to repeat, unbalanced groups or classes, a reversed
/// class range. Anything regex-syntax merely does not support (look-around,
/// back-references, unknown escapes PCRE takes literally) is not judged. Expressions with
/// `${...}` are expanded at call time and not judged either.
fn pcre_rejects(expr: &str) -> Option<String> {
    use regex_syntax::ast::ErrorKind as K;
    if expr.contains("${") {
        return None;
    }
    match regex_syntax::ast::parse::Parser::new().parse(expr) {
        Ok(_) => None,
        Err(e) => match e.kind() {
            K::RepetitionMissing => Some("a repetition with nothing to repeat".into()),
            K::GroupUnclosed => Some("a group is not closed".into()),
            K::GroupUnopened => Some("a `)` closes no group".into()),
            K::ClassUnclosed => Some("a `[` class is not closed".into()),
            K::ClassRangeInvalid => Some("a class range runs backwards".into()),
            _ => None,
        },
    }
}

/// `regex`: switch_regex.c `switch_regex_perform()` logs a compile error and the
/// condition never matches.
pub(super) fn regex(cx: &mut Ctx<'_>, c: &Cond<'_, '_>) {
    let Some(expr) = c.node.attribute("expression") else {
        return;
    };
    if let Some(why) = pcre_rejects(expr) {
        cx.push(Severity::Error, c.rel, c.line, "regex",
            format!("extension `{}`: `{expr}` is not a valid regular expression ({why}): FreeSWITCH logs a compile error and the condition never matches", c.ext_name),
            "fix the expression (a literal `+` is written `\\+`)".into());
    }
}

/// `e164` of a DID: the provider delivers E.164 numbers as the destination (the gateway's
/// `extension`, sofia.c `sofia_handle_sip_i_invite()`), so a DID route in a trunk's
/// inbound context written otherwise never matches. Feature codes and emergency numbers
/// elsewhere are not E.164 and need not be.
pub(super) fn did(cx: &mut Ctx<'_>, c: &Cond<'_, '_>) {
    if c.node.attribute("field") != Some("destination_number") {
        return;
    }
    let Some(expr) = c.node.attribute("expression") else {
        return;
    };
    let digits: String = expr
        .trim_start_matches('^')
        .trim_end_matches('$')
        .trim_start_matches('(')
        .trim_end_matches(')')
        .to_string();
    if !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '+')
        && c.inbound_via().is_some()
    {
        if let Some(p) = e164_problem(&digits) {
            cx.push(Severity::Warning, c.rel, c.line, "e164",
                format!("extension `{}` matches DID `{digits}`, which {p}; the provider delivers E.164 numbers", c.ext_name), e164_fix(&digits));
        }
    }
}

/// `action-order` of `continue_on_fail`: switch_channel.c `switch_channel_handle_cause()`
/// reads it when the bridge fails, so one set after the bridge comes too late.
pub(super) fn late_continue(cx: &mut Ctx<'_>, c: &Cond<'_, '_>, s: &Step<'_>) {
    if s.app == "set"
        && s.data.starts_with("continue_on_fail=")
        && s.bridges_before > 0
        && !s.continuing_at_last_bridge
    {
        cx.push(Severity::Error, c.rel, s.line, "action-order",
            "`continue_on_fail` is set after the bridge it should affect: when the first bridge fails the call is hung up and the failover bridge is never reached".into(),
            "move `<action application=\"set\" data=\"continue_on_fail=...\"/>` before the first bridge".into());
    }
}

/// `toll-fraud` by transfer: mod_dptools.c `transfer_function()` (`transfer EXT
/// [DIALPLAN [CONTEXT]]`) from a trunk's inbound context into a context with outbound
/// routes: trunk callers reach the trunk again.
pub(super) fn transfer_out(cx: &mut Ctx<'_>, c: &Cond<'_, '_>, s: &Step<'_>) {
    if !matches!(s.app, "transfer" | "execute_extension") {
        return;
    }
    let Some(via) = c.inbound_via() else {
        return;
    };
    let (ctx_name, app) = (c.ctx_name, s.app);
    let target = s.data.split_whitespace().nth(2).unwrap_or(ctx_name);
    if target != ctx_name && c.outbound.contains(target) {
        cx.push(Severity::Warning, c.rel, s.line, "toll-fraud",
            format!("context `{ctx_name}` receives inbound calls from gateway `{via}` and sends them with `{app}` into `{target}`, which bridges out through a gateway: callers from the trunk can make calls on your account"),
            "send trunk calls only to extensions or contexts without outbound routes".into());
    }
}

/// `action-order` of `export`: mod_dptools.c `export_function()` sets the variable for
/// legs bridged after it.
pub(super) fn late_export(cx: &mut Ctx<'_>, c: &Cond<'_, '_>, s: &Step<'_>) {
    if s.app == "export" && s.bridges_before > 0 && c.next_bridge(s).is_none() {
        cx.push(
            Severity::Warning,
            c.rel,
            s.line,
            "action-order",
            format!(
                "`export {}` comes after the last bridge, so no bridged leg ever gets it",
                s.data
            ),
            "move the export before the bridge".into(),
        );
    }
}

/// `failover`: mod_dptools.c `audio_bridge_function()` hangs up after a failed bridge
/// unless switch_channel.c `switch_channel_handle_cause()` finds `continue_on_fail`.
pub(super) fn failover(cx: &mut Ctx<'_>, c: &Cond<'_, '_>, s: &Step<'_>) {
    if s.app == "bridge" && s.bridges_before > 0 && !s.continuing_at_last_bridge {
        cx.push(Severity::Error, c.rel, s.line, "failover",
            "a second bridge without `continue_on_fail` set before the first one is never reached".into(),
            "set `continue_on_fail` (to the causes that mean the route failed) before the first bridge".into());
    }
}

/// What a bridge that goes on to a next one does wrong, if anything.
#[derive(PartialEq)]
enum Redial {
    /// A finished call returns to the dialplan and dials again.
    AfterNormalCall,
    /// Busy, no answer and decline fail over too: the callee rings again.
    OnEveryCause,
}

/// The first bridge of a condition that goes on to a next one wrongly, and how: one
/// finding per condition. mod_dptools: a bridged call that ends normally returns to the
/// dialplan unless switch_ivr_bridge.c `switch_ivr_multi_threaded_bridge()` finds
/// `hangup_after_bridge` true; `continue_on_fail=true` goes on after every failure, busy
/// and no answer included. Trunk failover (a gateway, then another) only: not the stock
/// "user, else voicemail" shape, where busy and no answer are exactly when the next bridge
/// should run.
fn redial_at(c: &Cond<'_, '_>) -> Option<(usize, Redial)> {
    c.steps.iter().filter(|s| s.app == "bridge").find_map(|s| {
        let next = c.next_bridge(s)?;
        if !s.continuing() {
            return None;
        }
        if !s.hangup_after_bridge {
            return Some((s.index, Redial::AfterNormalCall));
        }
        let gateway_failover =
            s.data.contains("sofia/gateway/") && next.data.contains("sofia/gateway/");
        let all_causes = s
            .continue_on_fail
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        (gateway_failover && all_causes).then_some((s.index, Redial::OnEveryCause))
    })
}

/// `redial`: see [`redial_at`].
pub(super) fn redial(cx: &mut Ctx<'_>, c: &Cond<'_, '_>, s: &Step<'_>) {
    if redial_at(c) == Some((s.index, Redial::AfterNormalCall)) {
        cx.push(Severity::Error, c.rel, s.line, "redial",
            "after this bridge connects and the callee hangs up, the caller is still in the dialplan and the next bridge dials again (no `hangup_after_bridge=true`)".into(),
            "set `hangup_after_bridge=true` before the first bridge".into());
    }
}

/// `failover-causes`: see [`redial_at`].
pub(super) fn failover_causes(cx: &mut Ctx<'_>, c: &Cond<'_, '_>, s: &Step<'_>) {
    if redial_at(c) == Some((s.index, Redial::OnEveryCause)) {
        cx.push(Severity::Warning, c.rel, s.line, "failover-causes",
            "`continue_on_fail=true` also fails over on busy, no answer and decline: the callee rings again through the next gateway".into(),
            "list the causes that mean the route failed, e.g. `continue_on_fail=GATEWAY_DOWN,NORMAL_TEMPORARY_FAILURE,RECOVERY_ON_TIMER_EXPIRE,NETWORK_OUT_OF_ORDER`".into());
    }
}

/// The gateways a bridge's dial string names (`sofia/gateway/NAME/...`, `|` and `,`
/// separated).
fn bridged_gateways<'s>(s: &'s Step<'_>) -> impl Iterator<Item = &'s str> {
    s.data
        .split(['|', ','])
        .filter_map(|part| part.trim().split("sofia/gateway/").nth(1))
        .map(|rest| rest.split('/').next().unwrap_or(""))
        .filter(move |_| s.app == "bridge")
}

/// `gateway-missing`: mod_sofia.c `sofia_outgoing_channel()` logs "Invalid Gateway" and
/// the bridge fails.
pub(super) fn gateway_missing(cx: &mut Ctx<'_>, c: &Cond<'_, '_>, s: &Step<'_>) {
    let have_gateway_files =
        (c.tree.files.keys()).any(|k| matches!(classify(k), FileKind::Gateway { .. }));
    for gw in bridged_gateways(s) {
        if !gw.is_empty() && !gw.contains('$') && have_gateway_files && c.tree.gateway(gw).is_none()
        {
            let defined = c.tree.by_name.keys().map(|k| format!("`{k}`"));
            cx.push(Severity::Error, c.rel, s.line, "gateway-missing",
                format!("bridge to `sofia/gateway/{gw}` but no gateway `{gw}` is defined for this host (defined: {})",
                    defined.collect::<Vec<_>>().join(", ")),
                "bridge to a gateway this host defines".into());
        }
    }
}

/// `toll-fraud` by bridge: a trunk's inbound context (sofia.c
/// `sofia_handle_sip_i_invite()`) whose any-number route bridges back out through a
/// gateway (mod_dptools.c `audio_bridge_function()`).
pub(super) fn bridge_out(cx: &mut Ctx<'_>, c: &Cond<'_, '_>, s: &Step<'_>) {
    let Some(via) = c.inbound_via() else {
        return;
    };
    let any_number =
        (c.node.attribute("expression")).is_some_and(|e| e.contains("\\d") || e.contains("[0-9]"));
    if !any_number {
        return;
    }
    let ctx_name = c.ctx_name;
    for gw in bridged_gateways(s) {
        cx.push(Severity::Warning, c.rel, s.line, "toll-fraud",
            format!("context `{ctx_name}` receives inbound calls from gateway `{via}` and bridges any number back out through `{gw}`: callers from the trunk can make calls on your account"),
            "keep outbound routes in the context of your users (user_context), not in the gateway's inbound context".into());
    }
}
