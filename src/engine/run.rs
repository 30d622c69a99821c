//! The runner: the one pipeline every command goes through, host by host, batch by batch.
//!
//! inventory + playbook → desired state (no connection) → lint → per host: connect,
//! gather facts (one round trip) → plan (pure) → [stop here for check, drift, review] →
//! write (one round trip) → FreeSWITCH steps (one round trip) → verify → rollback on
//! failure → report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::engine::desired::{self, HostDesired};
use crate::engine::facts::{self, FileFact};
use crate::engine::outcome::{
    ErrorKind, Event, HostReport, HostStatus, Mode, OnEvent, PlayReport, StepResult,
};
use crate::engine::plan::{self, HostPlan};
use crate::freeswitch::lint::{self, Finding, Severity};
use crate::freeswitch::reload::{Action, Step};
use crate::freeswitch::status;
use crate::host::script::{self, FileOp};
use crate::host::state::{HostState, STATE_REL};
use crate::host::transport::{SshOptions, Transport};
use crate::inputs::inventory::{Host, Inventory};
use crate::inputs::playbook::{BatchSize, Disruption, HostOrder, Play, Playbook};
use crate::inputs::template::Templates;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
    /// Override of the play's `allow:`.
    pub allow: Option<Disruption>,
    pub forks: usize,
    pub limit: Option<String>,
    pub ssh: SshOptions,
    /// Override of the play's `serial:`.
    pub serial: Option<Vec<BatchSize>>,
    pub max_fail_percentage: Option<f64>,
    /// Verify gateways after applying a change (default on).
    pub verify: bool,
    /// Seed for `order: shuffle` (reproducible runs in tests).
    pub shuffle_seed: u64,
    /// Apply only what this reviewed plan holds (`apply --plan`).
    pub saved_plan: Option<Arc<crate::engine::plan::SavedPlan>>,
    /// In check mode, also read each managed gateway's state once (drift agents).
    pub gateway_snapshot: bool,
    /// `--tags` / `--skip-tags`: tasks left out are neither written nor removed.
    pub tags: crate::inputs::playbook::TagFilter,
    /// `-v`: one line per remote command (what, how long); `-vv`: the command itself,
    /// secrets masked.
    pub verbose: u8,
}

impl RunOptions {
    /// Defaults: every host at once up to 100, the play's own rollout and disruption
    /// settings, verification on.
    pub fn new(mode: Mode, ssh: SshOptions) -> RunOptions {
        RunOptions {
            mode,
            allow: None,
            forks: 100,
            limit: None,
            ssh,
            serial: None,
            max_fail_percentage: None,
            verify: true,
            shuffle_seed: 1,
            saved_plan: None,
            gateway_snapshot: false,
            tags: Default::default(),
            verbose: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no host of the inventory matches `{0}`")]
    NoHosts(String),
    #[error("lint found {errors} error(s); nothing was pushed")]
    Lint {
        errors: usize,
        findings: Vec<Finding>,
    },
}

/// Build every selected host's desired state (no connection).
pub fn desired_states<'a>(
    inv: &'a Inventory,
    pb: &Playbook,
    play: &Play,
    limit: Option<&str>,
) -> Vec<(&'a Host, Result<HostDesired, String>)> {
    let mut templates = Templates::new(pb.template_dirs());
    inv.select_limited(&play.hosts, limit)
        .into_iter()
        .map(|h| match Inventory::unmanaged(h) {
            Some(why) => (h, Err(why)),
            None => (
                h,
                desired::build(h, play, &mut templates).map_err(|e| e.to_string()),
            ),
        })
        .collect()
}

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
    use crate::freeswitch::dialplan::Target;
    use crate::inputs::playbook::RouteExpect;
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
    let mut out = Vec::new();
    for t in &play.routes {
        let n = &t.number.0;
        let (from, call) = dp.call_for(
            t.from.as_ref().map(|s| s.0.as_str()),
            t.from_trunk.as_deref(),
            n,
        );
        let from = format!("from {from}");
        let call = match call {
            Ok(c) => c,
            Err(e) => {
                out.push(finding(format!("route test `{n}` {from}: {e}")));
                continue;
            }
        };
        let route = dp.route(&call);
        let path: Vec<String> = route
            .hunts
            .iter()
            .map(|h| format!("{} [{}]", h.context, h.extensions.join(", ")))
            .collect();
        let got = match (&route.unknown, route.first()) {
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
        };
        let ok = route.unknown.is_none()
            && match (&t.expect, route.first()) {
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
                (RouteExpect::Target { user: Some(u), .. }, Some(Target::User { user })) => {
                    &u.0 == user
                }
                _ => false,
            };
        if !ok {
            let want = match &t.expect {
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
            };
            out.push(finding(format!(
                "route test `{n}` {from}: expected {want}, but it now goes {} -> {got}",
                path.join(" -> ")
            )));
        }
    }
    out
}

/// The dialplan of [`offline_tree`]: contexts only unmanaged (stock stand-in) files
/// define are unknown.
pub fn offline_dialplan(
    d: &HostDesired,
) -> Result<crate::freeswitch::dialplan::Dialplan, crate::freeswitch::dialplan::DialplanError> {
    let managed = d.files.iter().map(|f| f.rel.clone()).collect();
    crate::freeswitch::dialplan::Dialplan::load_managed(&offline_tree(d), &managed)
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

fn batches(n: usize, serial: &[BatchSize]) -> Vec<usize> {
    if serial.is_empty() {
        return vec![n];
    }
    let mut out = Vec::new();
    let mut left = n;
    let mut i = 0;
    while left > 0 {
        let size = serial[i.min(serial.len() - 1)].of(n).min(left).max(1);
        out.push(size);
        left -= size;
        i += 1;
    }
    out
}

fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// Run one play.
pub async fn run_play(
    inv: &Inventory,
    pb: &Playbook,
    play: &Play,
    opts: &RunOptions,
    on_event: OnEvent,
) -> Result<PlayReport, RunError> {
    let selected;
    let play = if opts.tags.is_empty() {
        play
    } else {
        selected = play.with_tags(&opts.tags);
        &selected
    };
    let mut hosts = desired_states(inv, pb, play, opts.limit.as_deref());
    if hosts.is_empty() {
        return Err(RunError::NoHosts(match &opts.limit {
            Some(l) => format!("{} (limited to `{l}`)", play.hosts),
            None => play.hosts.clone(),
        }));
    }
    match play.order {
        HostOrder::Inventory => {}
        HostOrder::Sorted => hosts.sort_by(|a, b| a.0.name.cmp(&b.0.name)),
        HostOrder::Shuffle => shuffle(&mut hosts, opts.shuffle_seed),
    }
    // Lint first: a configuration with errors is never pushed.
    let mut findings = Vec::new();
    for (h, d) in &hosts {
        if let Ok(d) = d {
            findings.extend(lint_desired(h, d, &play.lint_allow));
            findings.extend(route_findings(h, d, play));
        }
    }
    let errors = findings.iter().filter(|f| f.blocks()).count();
    if errors > 0 && opts.mode == Mode::Apply {
        return Err(RunError::Lint { errors, findings });
    }
    on_event(Event::Selected { hosts: hosts.len() });

    let allow = opts.allow.unwrap_or(play.allow);
    let serial = opts.serial.clone().unwrap_or_else(|| play.serial.clone());
    let max_fail = opts.max_fail_percentage.or(play.max_fail_percentage);
    let sizes = batches(hosts.len(), &serial);
    let sem = Arc::new(Semaphore::new(opts.forks.max(1)));
    let settings = Arc::new(HostSettings {
        mode: opts.mode,
        allow,
        ssh: opts.ssh.clone(),
        verify: opts.verify,
        verify_timeout: Duration::from_secs_f64(play.verify.timeout),
        verify_interval: Duration::from_secs_f64(play.verify.interval),
        drain_timeout: Duration::from_secs_f64(play.drain_timeout),
        saved_plan: opts.saved_plan.clone(),
        gateway_snapshot: opts.gateway_snapshot,
        verbose: opts.verbose,
        lint_allow: play.lint_allow.clone(),
    });

    let mut reports: Vec<HostReport> = Vec::new();
    let mut aborted = None;
    let mut queue = hosts.into_iter();
    for (b, size) in sizes.iter().enumerate() {
        let batch: Vec<_> = queue.by_ref().take(*size).collect();
        if let Some(why) = &aborted {
            for (h, _) in batch {
                let r = HostReport::new(&h.name, b + 1).fail(
                    ErrorKind::NotRun,
                    format!("the rollout stopped before this batch: {why}"),
                );
                on_event(Event::Done(&r));
                reports.push(r);
            }
            continue;
        }
        let mut set = tokio::task::JoinSet::new();
        for (i, (h, d)) in batch.into_iter().enumerate() {
            let host = h.clone();
            let sem = sem.clone();
            let settings = settings.clone();
            let on_event = on_event.clone();
            let host_findings: Vec<Finding> = findings
                .iter()
                .filter(|f| f.host.as_deref() == Some(&h.name))
                .cloned()
                .collect();
            set.spawn(async move {
                // Spread connection set-up a little so a large fleet does not hit a
                // bastion's MaxStartups all at once.
                tokio::time::sleep(Duration::from_millis((i as u64 % 100) * 2)).await;
                let _permit = sem.acquire_owned().await.expect("semaphore open");
                if crate::interrupt::requested() {
                    let r = HostReport::new(&host.name, b + 1).fail(
                        ErrorKind::NotRun,
                        "interrupted (SIGINT/SIGTERM) before this host started",
                    );
                    on_event(Event::Done(&r));
                    return (i, r);
                }
                let started = Instant::now();
                let mut r = process_host(&host, d, &settings, b + 1, &on_event).await;
                // Lint before the run first; the same finding found again on the final
                // files only once.
                let after = std::mem::replace(&mut r.findings, host_findings);
                for f in after {
                    if !r.findings.contains(&f) {
                        r.findings.push(f);
                    }
                }
                r.seconds = started.elapsed().as_secs_f64();
                on_event(Event::Done(&r));
                (i, r)
            });
        }
        let mut batch_reports: Vec<(usize, HostReport)> = Vec::new();
        while let Some(res) = set.join_next().await {
            match res {
                Ok(x) => batch_reports.push(x),
                Err(e) => batch_reports.push((
                    usize::MAX,
                    HostReport::new("?", b + 1)
                        .fail(ErrorKind::Internal, format!("internal error: {e}")),
                )),
            }
        }
        batch_reports.sort_by_key(|x| x.0);
        let failed = batch_reports
            .iter()
            .filter(|(_, r)| r.status.is_failure())
            .count();
        let n = batch_reports.len();
        reports.extend(batch_reports.into_iter().map(|x| x.1));
        if crate::interrupt::requested() {
            aborted.get_or_insert_with(|| "interrupted (SIGINT/SIGTERM)".into());
        }
        if opts.mode == Mode::Apply && b + 1 < sizes.len() {
            let pct = 100.0 * failed as f64 / n.max(1) as f64;
            if failed > 0 && play.any_errors_fatal {
                aborted = Some(format!(
                    "batch {} had {failed} failed host(s) and the play sets any_errors_fatal",
                    b + 1
                ));
            } else if let Some(m) = max_fail {
                if pct > m {
                    aborted = Some(format!("batch {} failed on {failed} of {n} hosts ({pct:.0}%), more than max_fail_percentage {m}%", b + 1));
                }
            } else if failed == n && n > 0 {
                aborted = Some(format!("every host of batch {} failed", b + 1));
            }
        }
    }
    Ok(PlayReport {
        play: play.name.clone(),
        mode: opts.mode,
        hosts: reports,
        aborted,
    })
}

struct HostSettings {
    mode: Mode,
    allow: Disruption,
    ssh: SshOptions,
    verify: bool,
    verify_timeout: Duration,
    verify_interval: Duration,
    drain_timeout: Duration,
    saved_plan: Option<Arc<crate::engine::plan::SavedPlan>>,
    gateway_snapshot: bool,
    verbose: u8,
    /// The play's `lint_allow:` (rule → reason).
    lint_allow: BTreeMap<String, String>,
}

async fn process_host(
    host: &Host,
    desired: Result<HostDesired, String>,
    s: &HostSettings,
    batch: usize,
    on_event: &OnEvent,
) -> HostReport {
    let report = HostReport::new(&host.name, batch);
    let desired = match desired {
        Ok(d) => d,
        Err(e) => return report.fail(ErrorKind::Render, e),
    };
    let mut t = match Transport::connect_with_retries(
        &host.connection,
        &s.ssh,
        host.connection.retries,
        |attempt, of| {
            on_event(Event::Retrying {
                host: &host.name,
                attempt,
                of,
            })
        },
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return report.fail(ErrorKind::Unreachable, e),
    };
    if s.verbose > 0 {
        t.trace = Some(trace(host, &desired.redactor, s.verbose));
    }
    let commands = t.commands.clone();
    let mut r = pipeline(&mut t, host, &desired, s, report).await;
    r.remote_commands = commands.load(std::sync::atomic::Ordering::Relaxed);
    t.close().await;
    // Last line of defence: nothing in a report may carry a secret.
    redact_report(&mut r, &desired.redactor);
    r
}

/// `-v`: `pbx1: gather 12.3 ms exit 0`; `-vv`: with the command, the host's `fs_cli` line
/// (which may carry the event socket password) shown as `<fs_cli>`, every secret masked.
fn trace(host: &Host, red: &crate::secret::Redactor, verbose: u8) -> crate::host::transport::Trace {
    // The line as the steps program carries it: its password (if any) taken out.
    let fs_cli = script::FsCli::parse(&host.freeswitch.fs_cli)
        .map(|c| c.line)
        .unwrap_or_else(|_| host.freeswitch.fs_cli.clone());
    let (name, red) = (host.name.clone(), red.clone());
    Arc::new(
        move |cmd: &str, stdin: usize, took: Duration, outcome: &str| {
            let mut line = format!(
                "{name}: {} {:.1} ms, {outcome}",
                script::kind(cmd),
                took.as_secs_f64() * 1000.0
            );
            if stdin > 0 {
                line.push_str(&format!(", {stdin} bytes sent"));
            }
            if verbose >= 2 {
                let shown = script::describe(cmd).replace(&fs_cli, "<fs_cli>");
                line.push_str(&format!(
                    "\n    {}",
                    red.redact(&crate::secret::mask_secret_params(&shown))
                ));
            }
            eprintln!("{line}");
        },
    )
}

/// Mask every secret in every text of a report that came from outside switchyard's own
/// wording: FreeSWITCH answers, host errors, rollback notes, findings, step reasons.
fn redact_report(r: &mut HostReport, red: &crate::secret::Redactor) {
    let mask = |s: &mut String| *s = red.redact(s);
    if let Some(e) = r.error.as_mut() {
        mask(&mut e.message);
    }
    if let Some(n) = r.rollback.as_mut() {
        mask(n);
    }
    for s in &mut r.steps {
        mask(&mut s.command);
        mask(&mut s.output);
        mask(&mut s.reason);
    }
    for s in r.pending.iter_mut().chain(r.owed.iter_mut()) {
        mask(&mut s.reason);
        if let Action::Api(c) = &mut s.action {
            mask(c);
        }
    }
    for f in &mut r.findings {
        mask(&mut f.message);
        mask(&mut f.fix);
    }
    // A plain hash next to a masked diff would let a secret be guessed offline.
    for f in r.files.iter_mut().filter(|f| f.secret) {
        f.old_sha256 = f.old_sha256.as_deref().map(crate::digest::keyed);
        f.new_sha256 = crate::digest::keyed(&f.new_sha256);
    }
}

/// The host's `freeswitch_max_file_bytes` (default [`facts::DEFAULT_MAX_FILE_BYTES`]): a
/// managed file larger than this is refused on the host, unread.
fn max_file_bytes(host: &Host) -> Result<u64, String> {
    let Some(v) = host.vars.get("freeswitch_max_file_bytes") else {
        return Ok(facts::DEFAULT_MAX_FILE_BYTES);
    };
    let n = match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|n| *n > 0).ok_or_else(|| {
        format!("freeswitch_max_file_bytes: `{v}` is not a positive number of bytes")
    })
}

async fn pipeline(
    t: &mut Transport,
    host: &Host,
    desired: &HostDesired,
    s: &HostSettings,
    mut r: HostReport,
) -> HostReport {
    let record_path = format!("{}/{}", desired.conf_root, STATE_REL);
    let marker_path = format!("{}/{}", desired.conf_root, crate::host::state::WRITING_REL);
    let mut paths: Vec<&str> = desired.files.iter().map(|f| f.path.as_str()).collect();
    paths.push(&record_path);
    paths.push(&marker_path);
    let limit = match max_file_bytes(host) {
        Ok(l) => l,
        Err(e) => return r.fail(ErrorKind::Gather, e),
    };
    // A password fs_cli could not be handed is refused before anything is written.
    if let Err(e) = script::FsCli::parse(&host.freeswitch.fs_cli) {
        return r.fail(ErrorKind::Gather, e);
    }
    let mut facts = match facts::gather(t, &desired.conf_root, &paths, limit).await {
        Ok(f) => f,
        Err(e) => return r.fail(ErrorKind::Gather, e.to_string()),
    };
    let killed_write = matches!(facts.pop(), Some(FileFact::Present { .. }));
    let prior_bytes = match facts.pop() {
        Some(FileFact::Present { content, .. }) => Some(content),
        Some(FileFact::Unreadable(why)) => {
            return r.fail(ErrorKind::Gather, format!("{record_path} {why}"))
        }
        _ => None,
    };
    let prior = prior_bytes.as_deref().and_then(HostState::parse);
    // Items gone from a pruned loop: their files (which the state record says switchyard
    // wrote) are gathered too, in a second round trip taken only when there are some.
    let stale = prior
        .as_ref()
        .map(|x| desired.stale(x.files.keys()))
        .unwrap_or_default();
    let with_stale;
    let desired = if stale.is_empty() {
        desired
    } else {
        let paths: Vec<&str> = stale.iter().map(|f| f.path.as_str()).collect();
        match facts::gather(t, &desired.conf_root, &paths, limit).await {
            Ok(more) => facts.extend(more),
            Err(e) => return r.fail(ErrorKind::Gather, e.to_string()),
        }
        let mut d = desired.clone();
        d.files.extend(stale);
        with_stale = d;
        &with_stale
    };
    let p = match plan::plan(desired, &facts, s.allow, prior.as_ref()) {
        Ok(p) => p,
        Err(e) => return r.fail(ErrorKind::Plan, e.to_string()),
    };
    // Lint the final content of every managed file (edits included) as one configuration.
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
    lint::apply_allows(&mut post, &finals, &s.lint_allow);
    let post_errors: Vec<String> = post
        .iter()
        .filter(|f| f.blocks())
        .map(|f| format!("{}:{}: {}", f.file, f.line, f.message))
        .collect();
    for f in post {
        if !r.findings.contains(&f) {
            r.findings.push(f);
        }
    }
    r.pending = p.reload.pending.clone();
    r.owed = prior
        .as_ref()
        .map(|x| {
            p.reload
                .steps
                .iter()
                .filter(|s| x.owed.iter().any(|o| o.action == s.action))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    r.restart_pending = !p.reload.pending.is_empty();
    r.status = if p.has_changes() {
        HostStatus::Changed
    } else {
        HostStatus::Ok
    };

    if s.mode == Mode::Verify {
        r.files = p.files.clone();
        return verify_only(t, host, &p, s, r).await;
    }
    if s.mode == Mode::Check {
        r.steps = planned_steps(&p);
        if s.gateway_snapshot && !p.gateways.is_empty() {
            let v = crate::engine::verify::gateways(
                t,
                &host.freeswitch.fs_cli,
                &p.gateways,
                Duration::ZERO,
                Duration::ZERO,
            )
            .await;
            r.gateways = v.gateways;
        }
        r.files = p.files;
        return r;
    }
    if let Some(reason) = s
        .saved_plan
        .as_ref()
        .and_then(|sp| sp.refusal(&host.name, &p.files))
    {
        r.files = p.files;
        return r.fail(ErrorKind::NotReviewed, reason);
    }
    if !post_errors.is_empty() && p.has_changes() {
        r.files = p.files;
        return r.fail(ErrorKind::Lint, format!("lint: {}", post_errors.join("; ")));
    }
    if !p.has_changes()
        && p.reload.steps.is_empty()
        && prior
            .as_ref()
            .is_none_or(|x| same_actions(&x.owed, &p.reload.pending))
    {
        // Nothing to change, but a killed write left its staged files (which may hold
        // secrets): taking the lock removes them (src/host/remote/lock.sh). Held by another
        // run: that run cleans up.
        if killed_write {
            if let Ok(lock) = t.lock(&desired.conf_root, "cleanup").await {
                lock.release().await;
            }
        }
        r.files = p.files;
        return r;
    }

    // The host lock covers write, steps, verification and rollback.
    let lock = match t
        .lock(&desired.conf_root, &crate::host::state::lock_owner("apply"))
        .await
    {
        Ok(l) => l,
        Err(e) => {
            r.files = p.files;
            let kind = match e {
                crate::host::transport::LockError::Held(_) => ErrorKind::LockHeld,
                crate::host::transport::LockError::Failed(_) => ErrorKind::Gather,
            };
            return r.fail(kind, e.to_string());
        }
    };
    let r = apply_changes(t, host, s, p, prior_bytes, prior.as_ref(), &record_path, r).await;
    lock.release().await;
    r
}

/// Write, run the steps, verify, roll back: the part of an apply that changes the host.
#[allow(clippy::too_many_arguments)]
async fn apply_changes(
    t: &mut Transport,
    host: &Host,
    s: &HostSettings,
    p: HostPlan,
    prior_bytes: Option<Vec<u8>>,
    prior: Option<&HostState>,
    record_path: &str,
    mut r: HostReport,
) -> HostReport {
    // 1. write (the state record goes in the same round trip)
    let record = new_record(prior, &p, p.reload.owed());
    if let Err(e) = write_files(t, host, &p, Some(record_op(record_path, &record))).await {
        r.files = p.files;
        return r.fail(ErrorKind::Write, e);
    }
    // 2. FreeSWITCH steps
    let (results, failure) = run_steps(t, host, &p, s).await;
    r.steps = results;
    let failure = match failure {
        Some(f) if f.kind == ErrorKind::StepRefused => {
            // FreeSWITCH declined a step (a profile restart too soon after the profile
            // started) even after waiting: the files are right and nothing was half done,
            // so nothing is rolled back; the step stays owed for the next run.
            let done = r.steps.iter().filter(|x| x.ok).count();
            let mut owed: Vec<Step> = p.reload.steps.iter().skip(done).cloned().collect();
            owed.extend(p.reload.pending.iter().cloned());
            let note = match write_record(t, host, record_path, prior, &p, owed).await {
                Ok(()) => "; it stays owed and the next run performs it".to_string(),
                Err(e) => format!("; could not record it as owed: {e}"),
            };
            r.files = p.files;
            return r.fail(ErrorKind::StepRefused, format!("{}{note}", f.message));
        }
        Some(f) => Some((f.kind, f.message)),
        None => {
            // 3. verify: after a gateway change, and after anything that restarted a
            // profile or FreeSWITCH (every gateway registers again then).
            let gw_changed = p.changed().any(|f| {
                matches!(
                    crate::freeswitch::classify(&f.rel),
                    crate::freeswitch::FileKind::Gateway { .. }
                ) && f.content_changed
            });
            let restarted = p.reload.steps.iter().any(|st| st.action.reloads_gateways());
            if s.verify && (gw_changed || restarted) && !p.gateways.is_empty() {
                let v = crate::engine::verify::gateways(
                    t,
                    &host.freeswitch.fs_cli,
                    &p.gateways,
                    s.verify_timeout,
                    s.verify_interval,
                )
                .await;
                r.gateways = v.gateways;
                v.failure.map(|m| (ErrorKind::VerifyFailed, m))
            } else {
                None
            }
        }
    };
    let Some((kind, reason)) = failure else {
        // Every step ran and the gateways are healthy: only what was not allowed stays owed.
        if let Err(e) =
            write_record(t, host, record_path, prior, &p, p.reload.pending.clone()).await
        {
            r.files = p.files;
            return r.fail(
                ErrorKind::StateRecord,
                format!("the change is in effect, but the state record could not be updated: {e}"),
            );
        }
        r.files = p.files;
        // Owed steps run with no file to write still changed the host (a profile
        // restart is never reported as plain `ok`).
        if r.steps.iter().any(|st| st.ok) {
            r.status = HostStatus::Changed;
        }
        return r;
    };
    // 4. roll back
    let back = plan::reverse(&p, s.allow);
    let mut notes = Vec::new();
    let restore_record = match &prior_bytes {
        Some(b) => record_op(record_path, b),
        None => FileOp::Remove { path: record_path },
    };
    if let Err(e) = write_files(t, host, &back, Some(restore_record)).await {
        r.files = p.files;
        return r.fail(
            ErrorKind::RollbackFailed,
            format!("{reason}; ROLLBACK FAILED while restoring files: {e}"),
        );
    }
    let (back_steps, back_failure) = run_steps(t, host, &back, s).await;
    let back_failure = back_failure.map(|f| f.message);
    for st in back_steps {
        r.steps.push(StepResult {
            command: format!("(rollback) {}", st.command),
            ..st
        });
    }
    if let Some(f) = back_failure {
        notes.push(format!("rollback step failed: {f}"));
    }
    if s.verify && !back.gateways.is_empty() && !back.reload.steps.is_empty() {
        let v = crate::engine::verify::gateways(
            t,
            &host.freeswitch.fs_cli,
            &back.gateways,
            s.verify_timeout,
            s.verify_interval,
        )
        .await;
        r.gateways = v.gateways;
        if let Some(f) = v.failure {
            notes.push(format!("after rollback: {f}"));
        }
    }
    r.files = p.files;
    r.rollback = Some(if notes.is_empty() {
        "previous files restored and verified".into()
    } else {
        notes.join("; ")
    });
    r.rolled_back(kind, reason)
}

fn planned_steps(p: &HostPlan) -> Vec<StepResult> {
    p.reload
        .steps
        .iter()
        .map(|s| StepResult {
            command: s.action.to_string(),
            reason: s.reason.clone(),
            output: String::new(),
            ok: true,
        })
        .chain(p.handlers.iter().map(|h| StepResult {
            command: h.clone(),
            reason: "handler".into(),
            output: String::new(),
            ok: true,
        }))
        .collect()
}

/// The state record after writing `p`'s files: its hashes over the prior ones, and the
/// steps still `owed` (at the write: every step the change needs, run now or pending).
fn new_record(prior: Option<&HostState>, p: &HostPlan, owed: Vec<Step>) -> Vec<u8> {
    let mut files = prior.map(|x| x.files.clone()).unwrap_or_default();
    for f in &p.files {
        if f.remove {
            files.remove(&f.path);
        } else {
            files.insert(f.path.clone(), f.new_sha256.clone());
        }
    }
    HostState {
        version: 1,
        applied_at: crate::clock::now(),
        applied_by: crate::host::state::who(),
        files,
        owed,
        vars: p.vars_set.clone(),
    }
    .to_bytes()
}

/// Rewrite the state record alone (after the steps: what is still owed).
async fn write_record(
    t: &mut Transport,
    host: &Host,
    record_path: &str,
    prior: Option<&HostState>,
    p: &HostPlan,
    owed: Vec<Step>,
) -> Result<(), String> {
    let record = new_record(prior, p, owed);
    let op = record_op(record_path, &record);
    send_write(t, &host.freeswitch.conf_root, &[op], &[]).await
}

/// Writing the state record: in switchyard's private folder, owned by the login, 0600.
fn record_op<'a>(path: &'a str, content: &'a [u8]) -> FileOp<'a> {
    FileOp::Write {
        path,
        content,
        owner: "",
        group: "",
        mode: 0o600,
    }
}

/// The same commands, whatever the reasons given for them.
fn same_actions(a: &[Step], b: &[Step]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| y.action == x.action))
}

async fn write_files(
    t: &mut Transport,
    host: &Host,
    p: &HostPlan,
    extra: Option<FileOp<'_>>,
) -> Result<(), String> {
    let fs = &host.freeswitch;
    let mut ops: Vec<FileOp> = p
        .changed()
        .map(|f| {
            if f.remove {
                FileOp::Remove { path: &f.path }
            } else {
                // Owner or mode alone are corrected by writing the same content again:
                // prepared where nobody else can reach it and renamed into place, so no
                // chown or chmod ever runs on a name the `freeswitch` user could replace.
                let old = f.old_meta.as_ref();
                FileOp::Write {
                    path: &f.path,
                    content: &f.new,
                    owner: f
                        .owner
                        .as_deref()
                        .or(old.map(|m| m.0.as_str()))
                        .unwrap_or(&fs.owner),
                    group: f
                        .group
                        .as_deref()
                        .or(old.map(|m| m.1.as_str()))
                        .unwrap_or(&fs.group),
                    mode: f.mode.or(old.map(|m| m.2)).unwrap_or(0o640),
                }
            }
        })
        .collect();
    ops.extend(extra);
    if ops.is_empty() {
        return Ok(());
    }
    let expect: Vec<(&str, Option<&str>)> = p
        .changed()
        .map(|f| (f.path.as_str(), f.old_sha256.as_deref()))
        .collect();
    send_write(t, &fs.conf_root, &ops, &expect).await
}

/// One write round trip (src/host/remote/write.sh), its outcome read from its answer.
pub(crate) async fn send_write(
    t: &mut Transport,
    conf_root: &str,
    ops: &[FileOp<'_>],
    expect: &[(&str, Option<&str>)],
) -> Result<(), String> {
    let (cmd, stdin) = script::write(conf_root, ops, expect)?;
    match t.exec(&cmd, &stdin).await {
        Ok(out) if out.ok() && out.stdout_text().contains("switchyard-write-ok") => Ok(()),
        Ok(out) => Err(format!(
            "writing files failed (exit {}): {}",
            out.exit
                .map(|c| c.to_string())
                .unwrap_or_else(|| "none".into()),
            out.stderr_text()
        )),
        Err(e) => Err(format!("writing files failed: {e}")),
    }
}

/// Why the FreeSWITCH steps did not all succeed.
struct StepFailure {
    message: String,
    /// `StepRefused`: FreeSWITCH declined to do it now (and still did after waiting),
    /// nothing half done; `CallsActive`: the step never ran; else `StepFailed`.
    kind: ErrorKind,
}

/// Run the planned steps and handlers in one command and read every answer. A step
/// FreeSWITCH declines for now (a profile restart within 10 s of the profile starting) is
/// tried again, with the steps after it, after the wait FreeSWITCH names, for as long as
/// the drain limit allows.
async fn run_steps(
    t: &mut Transport,
    host: &Host,
    p: &HostPlan,
    s: &HostSettings,
) -> (Vec<StepResult>, Option<StepFailure>) {
    let mut steps: Vec<(Action, String)> = p
        .reload
        .steps
        .iter()
        .map(|s| (s.action.clone(), s.reason.clone()))
        .collect();
    steps.extend(
        p.handlers
            .iter()
            .map(|h| (Action::Api(h.clone()), "handler".to_string())),
    );
    if steps.is_empty() {
        return (Vec::new(), None);
    }
    if p.reload
        .steps
        .iter()
        .any(|st| st.disruption > Disruption::None)
    {
        if let Err(e) = drain(t, host, s.drain_timeout).await {
            return (
                Vec::new(),
                Some(StepFailure {
                    message: e,
                    kind: ErrorKind::CallsActive,
                }),
            );
        }
    }
    let deadline = Instant::now() + s.drain_timeout;
    let mut results: Vec<StepResult> = Vec::new();
    let mut from = 0;
    loop {
        let actions: Vec<Action> = steps[from..].iter().map(|x| x.0.clone()).collect();
        let sent = script::steps(
            &host.freeswitch.fs_cli,
            &host.freeswitch.restart_command,
            &actions,
        );
        let (cmd, stdin) = match sent {
            Ok(x) => x,
            Err(e) => {
                return (
                    results,
                    Some(StepFailure {
                        message: e,
                        kind: ErrorKind::StepFailed,
                    }),
                )
            }
        };
        let out = match t.exec(&cmd, &stdin).await {
            Ok(o) => o,
            Err(e) => {
                return (
                    results,
                    Some(StepFailure {
                        message: format!("running FreeSWITCH commands failed: {e}"),
                        kind: ErrorKind::StepFailed,
                    }),
                )
            }
        };
        let parts = script::split_steps(&out.stdout_text());
        let mut retry: Option<(usize, u64)> = None;
        let mut failure = None;
        for (k, (action, reason)) in steps[from..].iter().enumerate() {
            let (body, rc) = parts
                .iter()
                .find(|x| x.0 == k)
                .map(|x| (x.1.clone(), x.2))
                .unwrap_or((String::new(), -1));
            let check = match action {
                Action::Api(c) => status::check_reply(c, &body),
                Action::Restart if rc == 0 => Ok(()),
                Action::Restart => Err(status::ApiFailure::Error(format!(
                    "restart command exited {rc}: {}",
                    body.trim()
                ))),
            };
            if let Err(status::ApiFailure::Refused { retry_after, .. }) = &check {
                let wait = Duration::from_secs(retry_after + 1);
                if Instant::now() + wait <= deadline {
                    retry = Some((from + k, *retry_after + 1));
                    break;
                }
            }
            if let Err(e) = &check {
                failure.get_or_insert_with(|| StepFailure {
                    message: format!("`{action}`: {e}"),
                    kind: match e {
                        status::ApiFailure::Refused { .. } => ErrorKind::StepRefused,
                        _ => ErrorKind::StepFailed,
                    },
                });
            }
            results.push(StepResult {
                command: action.to_string(),
                reason: reason.clone(),
                output: body.trim().to_string(),
                ok: check.is_ok(),
            });
            if failure
                .as_ref()
                .is_some_and(|f| f.kind == ErrorKind::StepRefused)
            {
                break;
            }
        }
        match retry {
            Some((at, secs)) => {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                from = at;
            }
            None => return (results, failure),
        }
    }
}

/// Before a disruptive step: wait (up to `timeout`) for active calls to end.
async fn drain(t: &mut Transport, host: &Host, timeout: Duration) -> Result<(), String> {
    let (cmd, stdin) = script::steps(
        &host.freeswitch.fs_cli,
        "true",
        &[Action::Api("show calls count".into())],
    )?;
    let deadline = Instant::now() + timeout;
    loop {
        let out = t
            .exec(&cmd, &stdin)
            .await
            .map_err(|e| format!("cannot count active calls: {e}"))?;
        let parts = script::split_steps(&out.stdout_text());
        let body = parts.first().map(|p| p.1.clone()).unwrap_or_default();
        match status::parse_calls_count(&body) {
            Some(0) => return Ok(()),
            Some(n) if Instant::now() >= deadline => {
                return Err(format!(
                    "{n} call(s) still active after waiting {:.0} s; disruptive step not run",
                    timeout.as_secs_f64()
                ))
            }
            Some(_) => tokio::time::sleep(Duration::from_secs(2).min(timeout)).await,
            None => return Err(format!("cannot read `show calls count`: {}", body.trim())),
        }
    }
}

async fn verify_only(
    t: &mut Transport,
    host: &Host,
    p: &HostPlan,
    s: &HostSettings,
    mut r: HostReport,
) -> HostReport {
    r.status = HostStatus::Ok;
    if p.gateways.is_empty() {
        return r;
    }
    let v = crate::engine::verify::gateways(
        t,
        &host.freeswitch.fs_cli,
        &p.gateways,
        s.verify_timeout,
        s.verify_interval,
    )
    .await;
    r.gateways = v.gateways;
    match v.failure {
        Some(f) => r.fail(ErrorKind::VerifyFailed, f),
        None => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes() {
        assert_eq!(batches(10, &[]), vec![10]);
        assert_eq!(
            batches(10, &[BatchSize::Count(1), BatchSize::Percent(50)]),
            vec![1, 5, 4]
        );
        assert_eq!(
            batches(3, &[BatchSize::Count(1), BatchSize::Percent(100)]),
            vec![1, 2]
        );
        assert_eq!(batches(5, &[BatchSize::Count(2)]), vec![2, 2, 1]);
    }
}
