//! The least disruptive set of FreeSWITCH commands that makes a set of file changes take
//! effect, in order.
//!
//! | change                               | step                                      |
//! |--------------------------------------|-------------------------------------------|
//! | dialplan, directory, other XML, vars | `reloadxml`                               |
//! | new gateway                          | `sofia profile P rescan` (runs reloadxml) |
//! | changed gateway (params or variables)| `killgw NAME`, then `rescan` (rescan alone ignores it) |
//! | removed gateway                      | `killgw NAME`                             |
//! | `autoload_configs/acl.conf.xml`      | `reloadacl` (runs reloadxml, then reloads the lists) |
//! | profile ACLs, context, dialplan      | `sofia profile P rescan` (re-reads those settings) |
//! | other profile settings, or vars it consumes | `sofia profile P restart` (disruptive) |
//! | `switch.conf.xml`                    | FreeSWITCH restart (disruptive)           |
//!
//! Disruptive steps run only when allowed; otherwise they are returned as pending, which
//! is not an error: the change is on disk and takes effect at the next restart.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{classify, gateways, preprocess, xml_param, FileKind};

/// One file's change: content before and after (`None`: absent).
/// Which disruptive steps a play may take to make its changes take effect.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Disruption {
    /// Only non-disruptive steps (`reloadxml`, `rescan`, `killgw`); others are reported pending.
    #[default]
    None,
    /// Sofia profile restarts too (drops the profile's calls).
    Profile,
    /// Full FreeSWITCH restarts too.
    Restart,
}

#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub rel: &'a str,
    pub old: Option<&'a str>,
    pub new: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "command", rename_all = "snake_case")]
pub enum Action {
    /// An API command, run as `fs_cli -x COMMAND`.
    Api(String),
    /// Restart FreeSWITCH with the host's restart command.
    Restart,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Api(c) => f.write_str(c),
            Action::Restart => f.write_str("restart FreeSWITCH"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub action: Action,
    pub reason: String,
    pub disruption: Disruption,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadPlan {
    /// Steps to run now, in order.
    pub steps: Vec<Step>,
    /// Disruptive steps the change needs but the play does not allow.
    pub pending: Vec<Step>,
}

impl ReloadPlan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.pending.is_empty()
    }

    /// Every step this plan needs, run now or pending: what the state record keeps as owed
    /// from the moment the files are written until each step is confirmed done.
    pub fn owed(&self) -> Vec<Step> {
        self.steps.iter().chain(&self.pending).cloned().collect()
    }

    /// Fold in steps an earlier apply still owes (never run: not allowed, refused, or the
    /// controller died between the write and the steps): run them now if `allow` permits,
    /// otherwise keep them pending. Merged steps keep FreeSWITCH's order (`killgw` before
    /// the `rescan` that reloads the gateway), each command once. A FreeSWITCH restart
    /// makes every other step moot.
    pub fn with_owed(mut self, owed: &[Step], allow: Disruption) -> ReloadPlan {
        for s in owed {
            if self
                .steps
                .iter()
                .chain(&self.pending)
                .any(|p| p.action == s.action)
            {
                continue;
            }
            if s.disruption <= allow {
                self.steps.push(s.clone());
            } else {
                self.pending.push(s.clone());
            }
        }
        self.steps.sort_by_key(|s| rank(&s.action));
        // `rescan` and `reloadacl` run reloadxml themselves.
        if self.steps.iter().any(
            |s| matches!(&s.action, Action::Api(c) if c.ends_with(" rescan") || c == "reloadacl"),
        ) {
            self.steps
                .retain(|s| s.action != Action::Api("reloadxml".into()));
        }
        if let Some(r) = self
            .steps
            .iter()
            .find(|s| s.action == Action::Restart)
            .cloned()
        {
            let mut reasons: Vec<String> = self.steps.iter().map(|s| s.reason.clone()).collect();
            reasons.dedup();
            self.steps = vec![Step {
                reason: reasons.join("; "),
                ..r
            }];
            self.pending.clear();
        }
        self
    }
}

impl Action {
    /// After this step the gateways load or register again (a restart, a profile restart
    /// or rescan, a killgw): they must be verified, whatever files changed.
    pub fn reloads_gateways(&self) -> bool {
        match self {
            Action::Restart => true,
            Action::Api(c) => {
                c.starts_with("sofia profile ")
                    && (c.contains(" killgw ") || c.ends_with(" rescan") || c.ends_with(" restart"))
            }
        }
    }
}

/// Where a step goes among the others: gateways killed before anything reloads them; the
/// XML (and ACLs) reloaded before profiles rescan; restarts last.
fn rank(a: &Action) -> u8 {
    match a {
        Action::Api(c) if c.contains(" killgw ") => 0,
        Action::Api(c) if c == "reloadxml" || c == "reloadacl" => 1,
        Action::Api(c) if c.ends_with(" rescan") => 2,
        Action::Api(c) if c.ends_with(" restart") => 3,
        Action::Api(_) => 1,
        Action::Restart => 4,
    }
}

/// Profile settings `sofia profile P rescan` applies to a running profile: mod_sofia's
/// `config_sofia(SOFIA_CONFIG_RESCAN)` resets the profile's ACL lists and re-reads every
/// `<param>` (sofia.c: "you could change profile->foo here if it was a minor change like
/// context or dialplan"). Anything bound at start (addresses, ports, TLS, RTP) needs a
/// restart of the profile.
const RESCAN_PARAMS: &[&str] = &[
    "apply-inbound-acl",
    "apply-register-acl",
    "apply-proxy-acl",
    "apply-candidate-acl",
    "context",
    "dialplan",
];

/// Pre-processor variables a running sofia profile reads at start (stock `external.xml`),
/// so changing them in `vars.xml` needs that profile restarted.
const PROFILE_VARS: &[(&str, &str)] = &[
    ("external_rtp_ip", "external"),
    ("external_sip_ip", "external"),
    ("external_sip_port", "external"),
    ("external_tls_port", "external"),
    ("internal_sip_port", "internal"),
    ("internal_tls_port", "internal"),
];

fn vars_of(text: Option<&str>) -> BTreeMap<String, String> {
    text.map(preprocess::parse)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.well_spelt)
        .filter_map(|d| {
            d.assignment()
                .map(|(n, v)| (n.to_string(), format!("{}:{v}", d.cmd)))
        })
        .collect()
}

/// Compute the steps for `changes`, letting through disruptive ones up to `allow`.
pub fn plan(changes: &[Change<'_>], allow: Disruption) -> ReloadPlan {
    let mut reloadxml: Vec<String> = Vec::new();
    let mut reloadacl: Vec<String> = Vec::new();
    let mut killgw: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut rescan: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut profile_restart: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut restart: Vec<String> = Vec::new();

    for c in changes {
        if c.old == c.new {
            continue;
        }
        match classify(c.rel) {
            FileKind::Gateway { profile } => {
                let old = c.old.and_then(gateways).unwrap_or_default();
                let new = c.new.and_then(gateways).unwrap_or_default();
                // A gateway's `<variables>` are read when it loads, like its params.
                let old_by: BTreeMap<_, _> = old
                    .iter()
                    .map(|g| (g.name.clone(), (&g.params, &g.variables)))
                    .collect();
                let new_by: BTreeMap<_, _> = new
                    .iter()
                    .map(|g| (g.name.clone(), (&g.params, &g.variables)))
                    .collect();
                for (name, params) in &new_by {
                    match old_by.get(name) {
                        None => rescan
                            .entry(profile.clone())
                            .or_default()
                            .push(format!("new gateway `{name}`")),
                        Some(p) if p != params => {
                            killgw.insert(
                                (profile.clone(), name.clone()),
                                format!("gateway `{name}` changed"),
                            );
                            rescan
                                .entry(profile.clone())
                                .or_default()
                                .push(format!("gateway `{name}` changed"));
                        }
                        Some(_) => {}
                    }
                }
                for name in old_by.keys().filter(|n| !new_by.contains_key(*n)) {
                    killgw.insert(
                        (profile.clone(), name.clone()),
                        format!("gateway `{name}` removed"),
                    );
                }
            }
            FileKind::Profile { profile } => {
                let old: BTreeSet<_> = c
                    .old
                    .map(|t| xml_param::params(t, "settings"))
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let new: BTreeSet<_> = c
                    .new
                    .map(|t| xml_param::params(t, "settings"))
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let names: BTreeSet<&str> = old
                    .symmetric_difference(&new)
                    .map(|(n, _)| n.as_str())
                    .collect();
                let (light, heavy): (Vec<&str>, Vec<&str>) =
                    names.iter().partition(|n| RESCAN_PARAMS.contains(n));
                if !light.is_empty() {
                    rescan.entry(profile.clone()).or_default().push(format!(
                        "{}: {}",
                        c.rel,
                        light.join(", ")
                    ));
                }
                if !heavy.is_empty() || names.is_empty() {
                    let what = if names.is_empty() {
                        format!("{} changed", c.rel)
                    } else {
                        format!("{}: {}", c.rel, heavy.join(", "))
                    };
                    profile_restart.entry(profile).or_default().push(what);
                }
            }
            FileKind::SwitchConf => {
                let old: BTreeSet<_> = c
                    .old
                    .map(|t| xml_param::params(t, "settings"))
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let new: BTreeSet<_> = c
                    .new
                    .map(|t| xml_param::params(t, "settings"))
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let names: BTreeSet<&str> = old
                    .symmetric_difference(&new)
                    .map(|(n, _)| n.as_str())
                    .collect();
                restart.push(format!(
                    "{} is read only at start-up{}",
                    c.rel,
                    if names.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", names.into_iter().collect::<Vec<_>>().join(", "))
                    }
                ));
            }
            FileKind::Vars => {
                reloadxml.push(c.rel.to_string());
                let old = vars_of(c.old);
                let new = vars_of(c.new);
                let changed: BTreeSet<&String> = old
                    .iter()
                    .filter(|(k, v)| new.get(*k) != Some(v))
                    .map(|(k, _)| k)
                    .chain(new.keys().filter(|k| !old.contains_key(*k)))
                    .collect();
                for (var, profile) in PROFILE_VARS {
                    if changed.iter().any(|c| c.as_str() == *var) {
                        profile_restart
                            .entry(profile.to_string())
                            .or_default()
                            .push(format!(
                                "{} sets `{var}`, read by the running profile",
                                c.rel
                            ));
                    }
                }
            }
            FileKind::Acl => reloadacl.push(c.rel.to_string()),
            FileKind::Dialplan | FileKind::Directory | FileKind::Other => {
                if c.rel.ends_with(".xml") {
                    reloadxml.push(c.rel.to_string());
                }
            }
        }
    }

    let mut out = ReloadPlan::default();
    let push = |out: &mut ReloadPlan, action: Action, reason: String, disruption: Disruption| {
        let step = Step {
            action,
            reason,
            disruption,
        };
        if disruption <= allow {
            out.steps.push(step);
        } else {
            out.pending.push(step);
        }
    };

    let full_restart = !restart.is_empty() && allow >= Disruption::Restart;
    if full_restart {
        // A restart reads everything afresh: no other step is needed.
        let mut reasons = restart.clone();
        reasons.extend(
            reloadacl
                .iter()
                .chain(&reloadxml)
                .map(|r| format!("{r} changed")),
        );
        push(
            &mut out,
            Action::Restart,
            reasons.join("; "),
            Disruption::Restart,
        );
        return out;
    }
    let restarting: BTreeSet<String> = if allow >= Disruption::Profile {
        profile_restart.keys().cloned().collect()
    } else {
        BTreeSet::new()
    };
    let rescan_any = rescan.keys().any(|p| !restarting.contains(p));
    if !reloadacl.is_empty() {
        // reloadacl runs reloadxml first, then loads the lists: one step for both.
        let mut why: Vec<String> = reloadacl.iter().map(|r| format!("{r} changed")).collect();
        why.extend(reloadxml.iter().map(|r| format!("{r} changed")));
        push(
            &mut out,
            Action::Api("reloadacl".into()),
            why.join(", "),
            Disruption::None,
        );
        reloadxml.clear();
    }
    if !reloadxml.is_empty() && !rescan_any && restarting.is_empty() {
        push(
            &mut out,
            Action::Api("reloadxml".into()),
            format!("{} changed", reloadxml.join(", ")),
            Disruption::None,
        );
    }
    for ((profile, name), why) in &killgw {
        if !restarting.contains(profile) {
            push(
                &mut out,
                Action::Api(format!("sofia profile {profile} killgw {name}")),
                why.clone(),
                Disruption::None,
            );
        }
    }
    for (profile, why) in &rescan {
        if !restarting.contains(profile) {
            let mut why = why.clone();
            why.dedup();
            push(
                &mut out,
                Action::Api(format!("sofia profile {profile} rescan")),
                why.join(", "),
                Disruption::None,
            );
        }
    }
    if !reloadxml.is_empty() && !rescan_any && !restarting.is_empty() {
        push(
            &mut out,
            Action::Api("reloadxml".into()),
            format!("{} changed", reloadxml.join(", ")),
            Disruption::None,
        );
    }
    for (profile, why) in &profile_restart {
        push(
            &mut out,
            Action::Api(format!("sofia profile {profile} restart")),
            why.join("; "),
            Disruption::Profile,
        );
    }
    if !restart.is_empty() {
        push(
            &mut out,
            Action::Restart,
            restart.join("; "),
            Disruption::Restart,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW1: &str = "<include>\n  <gateway name=\"wavix\">\n    <param name=\"password\" value=\"a\"/>\n  </gateway>\n</include>\n";
    const GW2: &str = "<include>\n  <gateway name=\"wavix\">\n    <param name=\"password\" value=\"b\"/>\n  </gateway>\n</include>\n";
    const GW1_REFORMATTED: &str = "<include>\n<gateway name=\"wavix\"><param name=\"password\" value=\"a\" /></gateway>\n</include>\n";
    const SW_OLD: &str = "<configuration><settings>\n<!-- <param name=\"rtp-start-port\" value=\"16384\"/> -->\n</settings></configuration>\n";
    const SW_NEW: &str = "<configuration><settings>\n<param name=\"rtp-start-port\" value=\"10000\"/>\n</settings></configuration>\n";
    const VARS_OLD: &str = "<include>\n<X-PRE-PROCESS cmd=\"stun-set\" data=\"external_rtp_ip=stun:stun.freeswitch.org\"/>\n</include>\n";
    const VARS_NEW: &str = "<include>\n<X-PRE-PROCESS cmd=\"set\" data=\"external_rtp_ip=203.0.113.7\"/>\n</include>\n";
    const VARS_OTHER: &str = "<include>\n<X-PRE-PROCESS cmd=\"stun-set\" data=\"external_rtp_ip=stun:stun.freeswitch.org\"/>\n<X-PRE-PROCESS cmd=\"set\" data=\"outbound-sip-ip=203.0.113.7\"/>\n</include>\n";

    const GW_VAR1: &str = "<include>\n  <gateway name=\"wavix\">\n    <param name=\"password\" value=\"a\"/>\n    <variables><variable name=\"sip_cid_type\" value=\"none\"/></variables>\n  </gateway>\n</include>\n";
    const GW_VAR2: &str = "<include>\n  <gateway name=\"wavix\">\n    <param name=\"password\" value=\"a\"/>\n    <variables><variable name=\"sip_cid_type\" value=\"pid\"/></variables>\n  </gateway>\n</include>\n";
    const PROF_OLD: &str =
        "<profile><settings>\n<param name=\"context\" value=\"public\"/>\n</settings></profile>\n";
    const PROF_ACL: &str = "<profile><settings>\n<param name=\"context\" value=\"public\"/>\n<param name=\"apply-inbound-acl\" value=\"p:in:public\"/>\n</settings></profile>\n";

    /// Steps owed from an earlier run merge in FreeSWITCH's order, each command once.
    #[test]
    fn owed_steps_merge_in_order() {
        let step = |c: &str| Step {
            action: Action::Api(c.into()),
            reason: "owed".into(),
            disruption: Disruption::None,
        };
        let gw = "sip_profiles/external/wavix.xml";
        let p = plan(&[ch(gw, None, Some(GW1))], Disruption::None).with_owed(
            &[
                step("sofia profile external killgw wavix_fo"),
                step("sofia profile external rescan"),
                step("reloadxml"),
            ],
            Disruption::None,
        );
        assert_eq!(
            cmds(&p).0,
            [
                "sofia profile external killgw wavix_fo",
                "sofia profile external rescan"
            ]
        );
        assert!(p.steps.iter().all(|s| s.action.reloads_gateways()));
        assert!(!Action::Api("reloadxml".into()).reloads_gateways());
        assert!(!Action::Api("reloadacl".into()).reloads_gateways());
    }

    fn cmds(p: &ReloadPlan) -> (Vec<String>, Vec<String>) {
        (
            p.steps.iter().map(|s| s.action.to_string()).collect(),
            p.pending.iter().map(|s| s.action.to_string()).collect(),
        )
    }

    fn ch<'a>(rel: &'a str, old: Option<&'a str>, new: Option<&'a str>) -> Change<'a> {
        Change { rel, old, new }
    }

    /// The planner over a table of change sets: (changes, allowed disruption, steps, pending).
    #[test]
    fn table_of_change_sets() {
        let dp = "<include><context name=\"wavix\"/></include>";
        let dp2 = "<include><context name=\"wavix2\"/></include>";
        let gw = "sip_profiles/external/wavix.xml";
        type Case<'a> = (Vec<Change<'a>>, Disruption, Vec<&'a str>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![], Disruption::None, vec![], vec![]),
            (
                vec![ch("dialplan/default/01_wavix.xml", Some(dp), Some(dp2))],
                Disruption::None,
                vec!["reloadxml"],
                vec![],
            ),
            (
                vec![ch("directory/default/1000.xml", None, Some(dp))],
                Disruption::None,
                vec!["reloadxml"],
                vec![],
            ),
            (
                vec![ch(gw, None, Some(GW1))],
                Disruption::None,
                vec!["sofia profile external rescan"],
                vec![],
            ),
            (
                vec![ch(gw, Some(GW1), Some(GW2))],
                Disruption::None,
                vec![
                    "sofia profile external killgw wavix",
                    "sofia profile external rescan",
                ],
                vec![],
            ),
            (
                vec![ch(gw, Some(GW1), Some(GW1_REFORMATTED))],
                Disruption::None,
                vec![],
                vec![],
            ),
            (
                vec![ch(gw, Some(GW1), None)],
                Disruption::None,
                vec!["sofia profile external killgw wavix"],
                vec![],
            ),
            // A dialplan change alongside a new gateway: rescan already runs reloadxml.
            (
                vec![
                    ch("dialplan/default/01_wavix.xml", None, Some(dp)),
                    ch(gw, None, Some(GW1)),
                ],
                Disruption::None,
                vec!["sofia profile external rescan"],
                vec![],
            ),
            (
                vec![ch(
                    "autoload_configs/switch.conf.xml",
                    Some(SW_OLD),
                    Some(SW_NEW),
                )],
                Disruption::None,
                vec![],
                vec!["restart FreeSWITCH"],
            ),
            (
                vec![
                    ch(
                        "autoload_configs/switch.conf.xml",
                        Some(SW_OLD),
                        Some(SW_NEW),
                    ),
                    ch(gw, None, Some(GW1)),
                ],
                Disruption::Restart,
                vec!["restart FreeSWITCH"],
                vec![],
            ),
            (
                vec![ch("sip_profiles/external.xml", Some(SW_OLD), Some(SW_NEW))],
                Disruption::None,
                vec![],
                vec!["sofia profile external restart"],
            ),
            (
                vec![
                    ch("sip_profiles/external.xml", Some(SW_OLD), Some(SW_NEW)),
                    ch(gw, Some(GW1), Some(GW2)),
                ],
                Disruption::Profile,
                vec!["sofia profile external restart"],
                vec![],
            ),
            (
                vec![ch("vars.xml", Some(VARS_OLD), Some(VARS_NEW))],
                Disruption::None,
                vec!["reloadxml"],
                vec!["sofia profile external restart"],
            ),
            (
                vec![ch("vars.xml", Some(VARS_OLD), Some(VARS_OTHER))],
                Disruption::None,
                vec!["reloadxml"],
                vec![],
            ),
            // A gateway's <variables> alone changed: loaded with the gateway, so killgw+rescan.
            (
                vec![ch(gw, Some(GW_VAR1), Some(GW_VAR2))],
                Disruption::None,
                vec![
                    "sofia profile external killgw wavix",
                    "sofia profile external rescan",
                ],
                vec![],
            ),
            // ACL lists: reloadacl (which runs reloadxml), not reloadxml as well.
            (
                vec![
                    ch("autoload_configs/acl.conf.xml", None, Some(dp)),
                    ch("dialplan/default/01_wavix.xml", Some(dp), Some(dp2)),
                ],
                Disruption::None,
                vec!["reloadacl"],
                vec![],
            ),
            // The profile's apply-inbound-acl: a rescan applies it, no restart.
            (
                vec![ch(
                    "sip_profiles/external.xml",
                    Some(PROF_OLD),
                    Some(PROF_ACL),
                )],
                Disruption::None,
                vec!["sofia profile external rescan"],
                vec![],
            ),
        ];
        for (i, (changes, allow, steps, pending)) in cases.into_iter().enumerate() {
            let p = plan(&changes, allow);
            let (s, pe) = cmds(&p);
            assert_eq!(
                (s, pe),
                (
                    steps.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                    pending.iter().map(|x| x.to_string()).collect::<Vec<_>>()
                ),
                "case {i}"
            );
        }
    }
}
