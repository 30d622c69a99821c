//! Evaluation: a call's hunts, then its queued actions run as FreeSWITCH runs them, one
//! application at a time, until the call leaves.

use std::collections::{BTreeMap, BTreeSet};

use super::calls::bridge_targets;
use super::hunt::{expand, Cx};
use super::load::unset_variables;
use super::{Attempt, Call, Dialplan, Route, Target, MAX_TRANSFERS};
use crate::freeswitch::apps::{self, Class};
use crate::freeswitch::tod::At;

impl Dialplan {
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
pub(super) const API: &str = "\u{1}api:";
/// Ends an [`API`] mark.
pub(super) const API_END: char = '\u{2}';

/// Text with its API marks shown as written (`${name(args)}`).
pub(super) fn shown(text: &str) -> String {
    text.replace(API, "${").replace(API_END, "}")
}
