//! The table of checks: every rule lint knows, what it checks, the FreeSWITCH source that
//! makes it true, and the function that checks it. Adding a rule is writing its function
//! and adding its line here.
//!
//! The table's order is the order findings are made in; [`super::lint`] then sorts them
//! by severity, file and line, keeping that order among findings on one line. Consecutive
//! checks of one kind run together per item (per file, per gateway, per dialplan
//! condition), so the findings of one item stay together.

use super::dialplan::{self, Cond, Step};
use super::tree::{GatewayAt, Tree};
use super::{directory, gateway, preprocess, settings, Ctx};
use crate::freeswitch::FreeSwitch;

/// What a check looks at, and so how often it runs.
#[derive(Clone, Copy)]
pub(super) enum Run {
    /// Each file, in path order.
    File(fn(&mut Ctx<'_>, &Tree<'_>, &str)),
    /// The configuration as a whole, once.
    Once(fn(&mut Ctx<'_>, &Tree<'_>)),
    /// Each gateway, in file and then document order.
    Gateway(fn(&mut Ctx<'_>, &Tree<'_>, &GatewayAt)),
    /// Each dialplan `<condition>`, before its actions.
    Condition(fn(&mut Ctx<'_>, &Cond<'_, '_>)),
    /// Each `<action>` of a dialplan condition, in order.
    Action(fn(&mut Ctx<'_>, &Cond<'_, '_>, &Step<'_>)),
    /// A host's installation settings from the inventory ([`super::lint_install`]).
    Install(fn(&mut Ctx<'_>, &FreeSwitch)),
    /// Found outside this table (named here so that allows accept it).
    Elsewhere,
}

/// One rule's check.
pub struct Check {
    /// The rule's id, as findings, `lint_allow:` and allow comments name it. A rule may
    /// have several checks (a gateway's and a user's missing context).
    pub rule: &'static str,
    pub what: &'static str,
    /// The FreeSWITCH source file and function that make the rule true (v1.10.12), or
    /// where else it comes from.
    pub source: &'static str,
    pub(super) run: Run,
}

const fn check(rule: &'static str, what: &'static str, source: &'static str, run: Run) -> Check {
    Check {
        rule,
        what,
        source,
        run,
    }
}

use Run::{Action, Condition, Elsewhere, File, Gateway, Install, Once};

/// Every check, in the order findings are made.
#[rustfmt::skip]
pub const CHECKS: &[Check] = &[
    check("wrong-path", "a file written where FreeSWITCH never reads it",
        "switch_core.c: switch_load_core_config", File(preprocess::wrong_path)),
    check("preprocess-misspelt", "a misspelt `X-PRE-PROCESS`",
        "switch_xml.c: preprocess", File(preprocess::misspelt)),
    check("preprocess-cmd", "an unknown pre-process command",
        "switch_xml.c: preprocess", File(preprocess::unknown_cmd)),
    check("stun-set-literal", "`stun-set` of a literal address",
        "switch_xml.c: preprocess_stun_set", File(preprocess::stun_set_literal)),
    check("include-line", "a line the pre-processor drops whole",
        "switch_xml.c: preprocess", File(preprocess::include_line)),
    check("preprocess-quotes", "a pre-process line without double quotes",
        "switch_xml.c: preprocess", File(preprocess::quotes)),
    check("preprocess-split", "a pre-process directive over several lines",
        "switch_xml.c: preprocess", File(preprocess::split)),
    check("xml", "XML that is not well-formed",
        "switch_xml.c: switch_xml_parse_str", File(preprocess::not_xml)),
    check("undefined-var", "a `$${var}` nothing defines",
        "switch_xml.c: expand_vars", Once(preprocess::undefined_var)),
    check("gateway-unincluded", "a gateway file no profile includes",
        "mod_sofia/sofia.c: parse_gateways; switch_xml.c: preprocess_glob", Once(gateway::unincluded)),
    check("gateway-duplicate", "two gateways with one name",
        "mod_sofia/sofia.c: parse_gateways", Gateway(gateway::duplicate)),
    check("gateway-name", "a gateway name mod_sofia refuses",
        "mod_sofia/sofia.c: parse_gateways", Gateway(gateway::name)),
    check("gateway-param", "a param mod_sofia does not read",
        "mod_sofia/sofia.c: parse_gateways", Gateway(gateway::param)),
    check("gateway-realm", "a gateway with neither realm nor proxy",
        "mod_sofia/sofia.c: parse_gateways", Gateway(gateway::realm)),
    check("gateway-credentials", "a registering gateway without username or with an empty or placeholder password",
        "mod_sofia/sofia.c: parse_gateways", Gateway(gateway::credentials)),
    check("gateway-noreg", "registration params on a gateway that does not register",
        "mod_sofia/sofia.c: parse_gateways", Gateway(gateway::noreg)),
    check("inbound-did", "a registering gateway without `extension`: DIDs never reach the dialplan",
        "mod_sofia/sofia.c: sofia_handle_sip_i_invite", Gateway(gateway::inbound_did)),
    check("inbound-ip-auth", "an IP-authenticated gateway whose calls land in another context",
        "mod_sofia/sofia.c: sofia_handle_sip_i_invite", Gateway(gateway::inbound_ip_auth)),
    check("context-missing", "a gateway or user sent to a context no dialplan defines",
        "mod_dialplan_xml/mod_dialplan_xml.c: dialplan_hunt", Once(gateway::context_missing)),
    check("context-unused", "a context no gateway or user reaches",
        "mod_dialplan_xml/mod_dialplan_xml.c: dialplan_hunt", Once(directory::context_unused)),
    check("context-missing", "a user whose `user_context` no dialplan defines",
        "mod_dialplan_xml/mod_dialplan_xml.c: dialplan_hunt", File(directory::user_context)),
    check("e164", "a DID or caller ID that is not E.164",
        "none: what providers deliver and accept (the Wavix guide)", File(directory::caller_id)),
    check("password-weak", "a directory password that is empty, a placeholder or easily guessed",
        "mod_sofia/sofia_reg.c: sofia_reg_parse_auth", File(directory::password_weak)),
    check("condition-field", "a condition on a name that is no caller-profile field",
        "switch_caller.c: switch_caller_get_field_by_name", Condition(dialplan::field)),
    check("regex", "an expression PCRE refuses",
        "switch_regex.c: switch_regex_perform", Condition(dialplan::regex)),
    check("e164", "a DID route that is not E.164 in a trunk's inbound context",
        "none: what providers deliver (the Wavix guide)", Condition(dialplan::did)),
    check("action-order", "a `set`/`export` placed after the bridge it should affect",
        "switch_channel.c: switch_channel_handle_cause", Action(dialplan::late_continue)),
    check("toll-fraud", "trunk callers routed back out through a trunk",
        "mod_dptools/mod_dptools.c: transfer_function", Action(dialplan::transfer_out)),
    check("action-order", "an `export` after the last bridge",
        "mod_dptools/mod_dptools.c: export_function", Action(dialplan::late_export)),
    check("failover", "a second bridge that is never reached",
        "mod_dptools/mod_dptools.c: audio_bridge_function", Action(dialplan::failover)),
    check("redial", "a failover bridge that dials again after a normal call",
        "switch_ivr_bridge.c: switch_ivr_multi_threaded_bridge", Action(dialplan::redial)),
    check("failover-causes", "`continue_on_fail=true` between gateways",
        "switch_channel.c: switch_channel_handle_cause", Action(dialplan::failover_causes)),
    check("gateway-missing", "a bridge to a gateway the host does not define",
        "mod_sofia/mod_sofia.c: sofia_outgoing_channel", Action(dialplan::gateway_missing)),
    check("toll-fraud", "an any-number route in a trunk's inbound context bridging out",
        "mod_dptools/mod_dptools.c: audio_bridge_function", Action(dialplan::bridge_out)),
    check("rtp-range", "an RTP port range that is invalid",
        "switch_core.c: switch_load_core_config", File(settings::rtp_range)),
    check("conf-root", "an inventory conf root in the wrong case",
        "switch_core.c: switch_core_set_globals", Install(settings::conf_root)),
    check("owner", "an inventory owner or group in the wrong case",
        "switch.c: main (-u, -g)", Install(settings::owner)),
    check("allow", "an allow comment without a known rule or a reason",
        "switchyard's own (lint/allow.rs)", Elsewhere),
    check("not-evaluated", "a part of the tree lint could not read as it is",
        "switchyard's own (lint_tree)", Elsewhere),
    check("route-test", "a play's route test the configuration breaks",
        "mod_dialplan_xml/mod_dialplan_xml.c: parse_exten (engine/offline.rs)", Elsewhere),
    check("unused-var", "an inventory variable no template, task or playbook reads",
        "switchyard's own (inputs/unread.rs)", Elsewhere),
];

/// How a check is walked; consecutive checks walked alike run together per item.
#[derive(PartialEq)]
enum Walk {
    Files,
    Once,
    Gateways,
    Dialplan,
    Other,
}

fn walk(run: Run) -> Walk {
    match run {
        File(_) => Walk::Files,
        Once(_) => Walk::Once,
        Gateway(_) => Walk::Gateways,
        Condition(_) | Action(_) => Walk::Dialplan,
        Install(_) | Elsewhere => Walk::Other,
    }
}

/// Run every check of a configuration, in table order.
pub(super) fn run_all(cx: &mut Ctx<'_>, tree: &Tree<'_>) {
    for group in CHECKS.chunk_by(|a, b| walk(a.run) == walk(b.run)) {
        match walk(group[0].run) {
            Walk::Files => {
                for rel in tree.files.keys() {
                    for c in group {
                        if let File(f) = c.run {
                            f(cx, tree, rel);
                        }
                    }
                }
            }
            Walk::Once => {
                for c in group {
                    if let Once(f) = c.run {
                        f(cx, tree);
                    }
                }
            }
            Walk::Gateways => {
                for g in &tree.gateways {
                    for c in group {
                        if let Gateway(f) = c.run {
                            f(cx, tree, g);
                        }
                    }
                }
            }
            Walk::Dialplan => dialplan::walk(tree, |cond| {
                for c in group {
                    if let Condition(f) = c.run {
                        f(cx, cond);
                    }
                }
                for step in &cond.steps {
                    for c in group {
                        if let Action(f) = c.run {
                            f(cx, cond, step);
                        }
                    }
                }
            }),
            Walk::Other => {}
        }
    }
}

/// Run the checks of a host's installation settings.
pub(super) fn run_install(cx: &mut Ctx<'_>, fs: &FreeSwitch) {
    for c in CHECKS {
        if let Install(f) = c.run {
            f(cx, fs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every check says where its rule comes from: a FreeSWITCH source file and function,
    /// or why there is none.
    #[test]
    fn every_check_names_its_source() {
        for c in CHECKS {
            let from_freeswitch = c
                .source
                .split("; ")
                .all(|s| s.split_once(".c: ").is_some_and(|(_, f)| !f.is_empty()));
            let said_otherwise =
                c.source.starts_with("none: ") || c.source.starts_with("switchyard's own");
            assert!(
                from_freeswitch || said_otherwise,
                "{}: {}",
                c.rule,
                c.source
            );
            assert!(!c.what.is_empty(), "{}", c.rule);
        }
    }

    /// The rules allows accept are the ones the checks report, each once.
    #[test]
    fn rules_are_the_checks_ids() {
        let ids: std::collections::BTreeSet<&str> = CHECKS.iter().map(|c| c.rule).collect();
        let rules: Vec<&str> = super::super::RULES.iter().map(|(r, _)| *r).collect();
        assert_eq!(rules, ids.into_iter().collect::<Vec<_>>());
        assert_eq!(rules.len(), 37);
    }
}
