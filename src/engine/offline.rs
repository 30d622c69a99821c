//! Offline checks: what can be known of a host's configuration before connecting — lint of
//! the desired files, and the play's route tests on the conf tree as it will be. `apply`
//! refuses to push when these find errors; `lint` and `route` run them alone.

use std::collections::BTreeMap;

use crate::engine::desired::HostDesired;
use crate::freeswitch::dialplan::{Dialplan, DialplanError, Route, Target};
use crate::freeswitch::lint::{self, Finding, Severity};
use crate::inputs::inventory::Host;
use crate::inputs::playbook::{Play, RouteExpect, RouteTest};

/// A host's conf tree as it will be after the run, offline: the stock tree switchyard
/// ships, with every managed file rendered (edits applied over its stock version) and
/// every removed file gone. Files the host has that switchyard neither manages nor ships
/// are not in it.
pub fn offline_tree(d: &HostDesired) -> BTreeMap<String, String> {
    let mut files: BTreeMap<String, String> = crate::stock::STOCK_CONF
        .iter()
        .map(|(rel, text)| (rel.to_string(), text.to_string()))
        .collect();
    for f in &d.files {
        if f.absent {
            files.remove(&f.rel);
            continue;
        }
        let Some(base) = f.base.clone().or_else(|| files.get(&f.rel).cloned()) else {
            continue;
        };
        if let Ok(text) = crate::engine::desired::apply_edits(&base, &f.edits) {
            files.insert(f.rel.clone(), text);
        }
    }
    files
}

/// The play's route tests on one host's offline tree: one error finding per test the
/// configuration breaks, naming the number and the path it now takes.
pub fn route_findings(host: &Host, d: &HostDesired, play: &Play) -> Vec<Finding> {
    if play.routes.is_empty() {
        return Vec::new();
    }
    let finding = |message: String| Finding {
        severity: Severity::Error,
        host: Some(host.name.clone()),
        file: "routes".into(),
        line: 0,
        check: "route-test",
        message: d.redactor.redact(&message),
        fix: "fix the dialplan, or the route test if the new route is intended".into(),
        allowed: None,
    };
    let dp = match offline_dialplan(d) {
        Ok(dp) => dp,
        Err(e) => return vec![finding(format!("route tests cannot run: {e}"))],
    };
    play.routes
        .iter()
        .filter_map(|t| route_test(&dp, t).err().map(finding))
        .collect()
}

/// One route test: `Err` with what it expected and where the call now goes.
fn route_test(dp: &Dialplan, t: &RouteTest) -> Result<(), String> {
    let n = &t.number.0;
    let (from, call) = dp.call_for(
        t.from.as_ref().map(|s| s.0.as_str()),
        t.from_trunk.as_deref(),
        n,
    );
    let from = format!("from {from}");
    let call = call.map_err(|e| format!("route test `{n}` {from}: {e}"))?;
    let route = dp.route(&call);
    if route.unknown.is_none() && route_matches(&t.expect, route.first()) {
        return Ok(());
    }
    let path: Vec<String> = route
        .hunts
        .iter()
        .map(|h| format!("{} [{}]", h.context, h.extensions.join(", ")))
        .collect();
    Err(format!(
        "route test `{n}` {from}: expected {}, but it now goes {} -> {}",
        expected(&t.expect),
        path.join(" -> "),
        route_end(&route)
    ))
}

/// Where a route ends, in words.
fn route_end(route: &Route) -> String {
    match (&route.unknown, route.first()) {
        (Some(u), _) => format!("cannot be evaluated ({u})"),
        (None, Some(Target::Gateway { gateway, number })) => {
            format!("gateway {gateway} with {number}")
        }
        (None, Some(Target::User { user })) => format!("user {user}"),
        (None, Some(Target::Refused { why })) => format!("refused ({why})"),
        (None, Some(Target::Other { application, data })) => format!("{application} {data}"),
        (
            None,
            Some(Target::Held {
                application, data, ..
            }),
        ) => format!("{application} {data}"),
        (None, None) => "nowhere".into(),
    }
}

/// Whether the route's first target is what the test expects.
fn route_matches(expect: &RouteExpect, first: Option<&Target>) -> bool {
    match (expect, first) {
        (RouteExpect::Word(_), Some(Target::Refused { .. })) => true,
        (
            RouteExpect::Target {
                gateway: Some(g),
                number,
                ..
            },
            Some(Target::Gateway {
                gateway,
                number: sent,
            }),
        ) => g == gateway && number.as_ref().is_none_or(|x| &x.0 == sent),
        (RouteExpect::Target { user: Some(u), .. }, Some(Target::User { user })) => &u.0 == user,
        _ => false,
    }
}

/// What the test expects, in words.
fn expected(expect: &RouteExpect) -> String {
    match expect {
        RouteExpect::Word(w) => w.clone(),
        RouteExpect::Target {
            gateway: Some(g),
            number,
            ..
        } => format!(
            "gateway {g}{}",
            number
                .as_ref()
                .map(|x| format!(" with {}", x.0))
                .unwrap_or_default()
        ),
        RouteExpect::Target { user, .. } => format!(
            "user {}",
            user.as_ref().map(|u| u.0.as_str()).unwrap_or("?")
        ),
    }
}

/// The dialplan of [`offline_tree`]: contexts only unmanaged (stock stand-in) files
/// define are unknown.
pub fn offline_dialplan(d: &HostDesired) -> Result<Dialplan, DialplanError> {
    let managed = d.files.iter().map(|f| f.rel.clone()).collect();
    Dialplan::load_managed(&offline_tree(d), &managed)
}

/// Lint what can be known before connecting: host settings and whole rendered files.
/// `lint_allow` is the play's (rule → reason); files may allow rules for themselves.
pub fn lint_desired(
    host: &Host,
    d: &HostDesired,
    lint_allow: &BTreeMap<String, String>,
) -> Vec<Finding> {
    // Whole files as rendered; files a play only edits in place, over the stock version
    // switchyard ships (an inverted RTP range is caught here, offline, not only at apply).
    let files: BTreeMap<String, String> = d
        .files
        .iter()
        .filter(|f| !f.absent)
        .filter_map(|f| {
            let base = f.base.clone().or_else(|| {
                crate::stock::STOCK_CONF
                    .iter()
                    .find(|(rel, _)| *rel == f.rel)
                    .map(|(_, t)| t.to_string())
            })?;
            crate::engine::desired::apply_edits(&base, &f.edits)
                .ok()
                .map(|t| (f.rel.clone(), t))
        })
        .collect();
    let mut out = lint::lint(Some(&host.name), &files);
    out.extend(lint::lint_install(&host.name, &host.freeswitch));
    lint::apply_allows(&mut out, &files, lint_allow);
    for f in &mut out {
        f.message = d.redactor.redact(&f.message);
        f.fix = d.redactor.redact(&f.fix);
    }
    out
}

/// Lint the final content of every managed file (edits included) as one configuration,
/// once the host's own files are known: the findings, and the blocking ones as text.
pub fn lint_finals(
    host: &Host,
    p: &crate::engine::plan::HostPlan,
    lint_allow: &BTreeMap<String, String>,
) -> (Vec<Finding>, Vec<String>) {
    let finals: BTreeMap<String, String> = p
        .files
        .iter()
        .filter(|f| !f.remove)
        .filter_map(|f| {
            String::from_utf8(f.new.clone())
                .ok()
                .map(|t| (f.rel.clone(), t))
        })
        .collect();
    let mut post = lint::lint(Some(&host.name), &finals);
    lint::apply_allows(&mut post, &finals, lint_allow);
    let errors = post
        .iter()
        .filter(|f| f.blocks())
        .map(|f| format!("{}:{}: {}", f.file, f.line, f.message))
        .collect();
    (post, errors)
}
