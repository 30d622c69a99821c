//! One host's run, as a state machine: connect → gather (the files and the state record) →
//! plan → [check, drift and review stop here] → lock → write → FreeSWITCH steps → verify →
//! roll back on failure. Every stage returns how the run `End`s early; the report is
//! filled in one place (`pipeline`), so no early return can forget the plan's files.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::desired::HostDesired;
use crate::engine::facts::{self, FileFact};
use crate::engine::outcome::{ErrorKind, Event, HostReport, HostStatus, Mode, OnEvent};
use crate::engine::plan::{self, HostPlan, SavedPlan};
use crate::engine::steps::{planned_steps, run_steps};
use crate::freeswitch::reload::{Action, Step};
use crate::host::script::{self, FileOp};
use crate::host::session::Via;
use crate::host::state::{HostState, STATE_REL};
use crate::host::transport::{HostLock, SshOptions, Transport};
use crate::host::write::{self, WriteError};
use crate::inputs::inventory::Host;
use crate::inputs::playbook::Disruption;

/// What every host of a play runs with.
pub(crate) struct HostSettings {
    pub mode: Mode,
    pub allow: Disruption,
    pub ssh: SshOptions,
    pub verify: bool,
    pub verify_timeout: Duration,
    pub verify_interval: Duration,
    pub drain_timeout: Duration,
    pub saved_plan: Option<Arc<SavedPlan>>,
    pub gateway_snapshot: bool,
    pub verbose: u8,
    /// The play's `lint_allow:` (rule → reason).
    pub lint_allow: BTreeMap<String, String>,
    /// The play's `call_tests:`, their budget, and who places them.
    pub call_tests: Vec<crate::inputs::playbook::call_test::CallTest>,
    pub call_test_seconds: u64,
    pub call_tester: Option<crate::engine::call_tests::CallTester>,
}

/// Why a selected host has no desired state: nothing about it was contacted.
#[derive(Debug, thiserror::Error)]
pub enum NoDesired {
    /// The inventory's own sentence on why switchyard does not manage the host.
    #[error("{0}")]
    Unmanaged(String),
    /// Shown after the host's name (a report's host line, `lint`'s `pbx1: ...`): its own
    /// `host `pbx1`, ` is left out, not said twice.
    #[error("{}", without_host(.0))]
    Build(#[from] crate::engine::desired::DesiredError),
}

/// A desired-state error's text without its leading ``host `NAME`, `` (host names hold no
/// backquote: the inventory refuses them).
fn without_host(e: &crate::engine::desired::DesiredError) -> String {
    let text = e.to_string();
    text.strip_prefix("host `")
        .and_then(|r| r.split_once("`, "))
        .map(|(_, rest)| rest.to_string())
        .unwrap_or(text)
}

impl From<&NoDesired> for ErrorKind {
    fn from(_: &NoDesired) -> ErrorKind {
        ErrorKind::Render
    }
}

/// How a host's run ends when it does not simply finish.
enum End {
    /// It stopped with this error; what was changed stays (nothing, or all of it).
    Fail(ErrorKind, String),
    /// The change failed with this error and the previous files were put back.
    RolledBack(ErrorKind, String),
}

fn fail(kind: ErrorKind, message: impl Into<String>) -> End {
    End::Fail(kind, message.into())
}

/// Stop with a typed error, its kind read from it.
fn failed<E>(e: E) -> End
where
    E: std::fmt::Display,
    for<'e> &'e E: Into<ErrorKind>,
{
    End::Fail((&e).into(), e.to_string())
}

/// Why the gather round trip found nothing to plan from.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GatherError {
    #[error("freeswitch_max_file_bytes: `{0}` is not a positive number of bytes")]
    MaxFileBytes(serde_json::Value),
    /// The host's `fs_cli` line cannot be run as given (its own sentence).
    #[error("{0}")]
    FsCli(String),
    #[error(transparent)]
    Facts(#[from] facts::FactsError),
    /// The state record exists but is not switchyard's to read.
    #[error("{path} {why}")]
    Record { path: String, why: String },
}

impl From<&GatherError> for ErrorKind {
    fn from(e: &GatherError) -> ErrorKind {
        match e {
            GatherError::Facts(f) => f.into(),
            _ => ErrorKind::Gather,
        }
    }
}

/// Connect, run the host's pipeline, and close: the host's report, every secret masked.
pub(crate) async fn process_host(
    host: &Host,
    desired: Result<HostDesired, NoDesired>,
    s: &HostSettings,
    batch: usize,
    on_event: &OnEvent,
) -> HostReport {
    let report = HostReport::new(&host.name, batch);
    let desired = match desired {
        Ok(d) => d,
        Err(e) => return report.failed(&e),
    };
    let retrying = |attempt, of| {
        on_event(Event::Retrying {
            host: &host.name,
            attempt,
            of,
        })
    };
    let connection = &host.connection;
    let connected =
        Transport::connect_with_retries(connection, &s.ssh, connection.retries, retrying).await;
    let mut t = match connected {
        Ok(t) => t,
        Err(e) => return report.failed(&e),
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

/// `-v`: `pbx1: gather 12.3 ms, exit 0, 812 bytes received, 4032 bytes sent`; `-vv`: with
/// the command, the host's `fs_cli` line (which may carry the event socket password) shown as
/// `<fs_cli>`, every secret masked.
pub(crate) fn trace(
    host: &Host,
    red: &crate::secret::Redactor,
    verbose: u8,
) -> crate::host::transport::Trace {
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
pub(crate) fn max_file_bytes(host: &Host) -> Result<u64, GatherError> {
    let Some(v) = host.vars.get("freeswitch_max_file_bytes") else {
        return Ok(facts::DEFAULT_MAX_FILE_BYTES);
    };
    let n = match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|n| *n > 0)
        .ok_or_else(|| GatherError::MaxFileBytes(v.clone()))
}

/// What the gather round trip(s) found on the host.
struct Gathered {
    facts: Vec<FileFact>,
    /// The state record as read, and parsed.
    prior_bytes: Option<Vec<u8>>,
    prior: Option<HostState>,
    /// A run was killed mid-write: its staged files are still there.
    killed_write: bool,
    /// The desired state with the files of items gone from a pruned loop, when there are.
    with_stale: Option<HostDesired>,
    record_path: String,
    /// The conf root itself does not exist on the host.
    root_missing: bool,
}

/// The host's pipeline; the one place the report is filled from how it ended.
async fn pipeline(
    t: &mut Transport,
    host: &Host,
    desired: &HostDesired,
    s: &HostSettings,
    mut r: HostReport,
) -> HostReport {
    let end = match gather(t, host, desired).await {
        Err(e) => Err(e),
        Ok(g) => {
            let desired = g.with_stale.as_ref().unwrap_or(desired);
            match plan::plan(desired, &g.facts, s.allow, g.prior.as_ref()) {
                Err(e) => Err(plan_failed(g.root_missing, &desired.conf_root, e)),
                Ok(p) => {
                    let mut cx = Cx {
                        t,
                        host,
                        s,
                        p: &p,
                        g: &g,
                        conf_root: &desired.conf_root,
                    };
                    let end = after_plan(&mut cx, &mut r).await;
                    r.files = p.files;
                    end
                }
            }
        }
    };
    match end {
        Ok(()) => r,
        Err(End::Fail(kind, message)) => r.fail(kind, message),
        Err(End::RolledBack(kind, message)) => r.rolled_back(kind, message),
    }
}

/// The plan failed. A file to edit that does not exist may mean the whole conf root is
/// not there (a wrong `freeswitch_conf_root`, as the gather said): then that is what is said.
fn plan_failed(root_missing: bool, conf_root: &str, e: plan::PlanError) -> End {
    let nothing_to_edit = matches!(
        &e,
        plan::PlanError::File {
            problem: plan::FileProblem::NothingToEdit { .. },
            ..
        }
    );
    if !(root_missing && nothing_to_edit) {
        return failed(e);
    }
    fail(
        (&e).into(),
        format!("{} ({e})", root_missing_text(conf_root)),
    )
}

fn root_missing_text(conf_root: &str) -> String {
    format!(
        "the conf root {conf_root} does not exist on the host: is `freeswitch_conf_root` right?"
    )
}

/// Gather every managed file, the state record and the write marker in one round trip
/// (and the files of a pruned loop's gone items in a second one, only when there are).
async fn gather(t: &mut Transport, host: &Host, desired: &HostDesired) -> Result<Gathered, End> {
    let record_path = format!("{}/{}", desired.conf_root, STATE_REL);
    let marker_path = format!("{}/{}", desired.conf_root, crate::host::state::WRITING_REL);
    let mut paths: Vec<&str> = desired.files.iter().map(|f| f.path.as_str()).collect();
    paths.push(&record_path);
    paths.push(&marker_path);
    let limit = max_file_bytes(host).map_err(failed)?;
    // A password fs_cli could not be handed is refused before anything is written.
    script::FsCli::parse(&host.freeswitch.fs_cli).map_err(|e| failed(GatherError::FsCli(e)))?;
    let gathered = |e: facts::FactsError| failed(GatherError::Facts(e));
    // Hash first: a file already holding what the plan wants does not travel.
    let known: Vec<Option<String>> = desired.files.iter().map(plan::known_content).collect();
    let want: Vec<Option<&[u8]>> = known
        .iter()
        .map(|k| k.as_deref().map(str::as_bytes))
        .collect();
    let (mut facts, root_missing) = facts::gather(t, &desired.conf_root, &paths, &want, limit)
        .await
        .map_err(gathered)?;
    let killed_write = matches!(facts.pop(), Some(FileFact::Present { .. }));
    let prior_bytes = match facts.pop() {
        Some(FileFact::Present { content, .. }) => Some(content),
        Some(FileFact::Unreadable(why)) => {
            return Err(failed(GatherError::Record {
                path: record_path,
                why,
            }))
        }
        _ => None,
    };
    let prior = prior_bytes.as_deref().and_then(HostState::parse);
    // Items gone from a pruned loop: their files (which the state record says switchyard
    // wrote) are gathered too.
    let stale = prior
        .as_ref()
        .map(|x| desired.stale(x.files.keys()))
        .unwrap_or_default();
    let mut with_stale = None;
    if !stale.is_empty() {
        let paths: Vec<&str> = stale.iter().map(|f| f.path.as_str()).collect();
        let (more, _) = facts::gather(t, &desired.conf_root, &paths, &[], limit)
            .await
            .map_err(gathered)?;
        facts.extend(more);
        let mut d = desired.clone();
        d.files.extend(stale);
        with_stale = Some(d);
    }
    Ok(Gathered {
        facts,
        prior_bytes,
        prior,
        killed_write,
        with_stale,
        record_path,
        root_missing,
    })
}

/// Everything a stage after the plan works with.
struct Cx<'a, 't> {
    t: &'t mut Transport,
    host: &'a Host,
    s: &'a HostSettings,
    p: &'a HostPlan,
    g: &'a Gathered,
    conf_root: &'a str,
}

/// From the plan on: report what it says, stop where the mode stops, else take the lock
/// and apply.
async fn after_plan(cx: &mut Cx<'_, '_>, r: &mut HostReport) -> Result<(), End> {
    let (p, s) = (cx.p, cx.s);
    let (post, post_errors) = crate::engine::offline::lint_finals(cx.host, p, &s.lint_allow);
    for f in post {
        if !r.findings.contains(&f) {
            r.findings.push(f);
        }
    }
    r.pending = p.reload.pending.clone();
    r.owed =
        cx.g.prior
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
    // A conf root that does not exist is a mistyped `freeswitch_conf_root` far more often
    // than a new host: a tree written there is one FreeSWITCH never reads, and the run
    // would look successful. Refused before anything is written (and in a check, which
    // would otherwise report the files as about to be created).
    if cx.g.root_missing && p.has_changes() {
        let message = format!(
            "{} (switchyard never creates it; nothing was written)",
            root_missing_text(cx.conf_root)
        );
        return Err(fail(ErrorKind::Gather, message));
    }
    match s.mode {
        Mode::Verify => return verify_only(cx, r).await,
        Mode::Check => return check_only(cx, r).await,
        _ => {}
    }
    if let Some(reason) = s
        .saved_plan
        .as_ref()
        .and_then(|sp| sp.refusal(&cx.host.name, &p.files))
    {
        return Err(fail(ErrorKind::NotReviewed, reason));
    }
    if !post_errors.is_empty() && p.has_changes() {
        let message = format!("lint: {}", post_errors.join("; "));
        return Err(fail(ErrorKind::Lint, message));
    }
    if nothing_to_do(cx) {
        // Nothing to change, but a killed write left its staged files (which may hold
        // secrets): taking the lock removes them (src/host/remote/lock.sh). Held by another
        // run: that run cleans up.
        if cx.g.killed_write {
            if let Ok(lock) = cx.t.lock(cx.conf_root, "cleanup").await {
                lock.release().await;
            }
        }
        return Ok(());
    }
    // The host lock covers write, steps, verification and rollback.
    let owner = crate::host::state::lock_owner("apply");
    let mut lock = cx.t.lock(cx.conf_root, &owner).await.map_err(failed)?;
    let end = apply_changes(cx, &mut lock, r).await;
    lock.release().await;
    end
}

/// No file to change, no step to run, and the steps owed are the ones still pending.
fn nothing_to_do(cx: &Cx<'_, '_>) -> bool {
    let p = cx.p;
    !p.has_changes()
        && p.reload.steps.is_empty()
        && cx
            .g
            .prior
            .as_ref()
            .is_none_or(|x| same_actions(&x.owed, &p.reload.pending))
}

/// Check mode: the steps an apply would run, and (drift agents) the gateways' state.
async fn check_only(cx: &mut Cx<'_, '_>, r: &mut HostReport) -> Result<(), End> {
    r.steps = planned_steps(cx.p);
    if cx.s.gateway_snapshot && !cx.p.gateways.is_empty() {
        let fs_cli = &cx.host.freeswitch.fs_cli;
        let v = crate::engine::verify::gateways(
            &mut Via::Channel(cx.t),
            fs_cli,
            &cx.p.gateways,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
        )
        .await;
        r.gateways = v.gateways;
    }
    Ok(())
}

/// `verify`: the managed gateways' registration, nothing written.
async fn verify_only(cx: &mut Cx<'_, '_>, r: &mut HostReport) -> Result<(), End> {
    r.status = HostStatus::Ok;
    let p = cx.p;
    if p.gateways.is_empty() {
        return Ok(());
    }
    let s = cx.s;
    let fs_cli = &cx.host.freeswitch.fs_cli;
    let v = crate::engine::verify::gateways(
        &mut Via::Channel(cx.t),
        fs_cli,
        &p.gateways,
        s.verify_timeout,
        s.verify_interval,
        Duration::ZERO,
    )
    .await;
    r.gateways = v.gateways;
    match v.failure {
        Some(f) => Err(fail(ErrorKind::VerifyFailed, f)),
        None => Ok(()),
    }
}

/// Poll `gateways` with the play's verification timing, after steps that made them
/// register again (the first poll one interval after them).
async fn verify_gateways(
    via: &mut Via<'_>,
    cx: &Cx<'_, '_>,
    gateways: &[plan::ManagedGateway],
) -> crate::engine::verify::Verdict {
    let s = cx.s;
    let fs_cli = &cx.host.freeswitch.fs_cli;
    crate::engine::verify::gateways(
        via,
        fs_cli,
        gateways,
        s.verify_timeout,
        s.verify_interval,
        s.verify_interval,
    )
    .await
}

/// Write, run the steps, verify, roll back: the part of an apply that changes the host.
///
/// The state record is rewritten after the steps through the lock's own command (no round
/// trip of its own: src/host/remote/lock.sh).
async fn apply_changes(
    cx: &mut Cx<'_, '_>,
    lock: &mut HostLock,
    r: &mut HostReport,
) -> Result<(), End> {
    let (p, g) = (cx.p, cx.g);
    // 1. write (the state record goes in the same round trip). The folders written to are
    // flushed with the next state record (after the steps, or when a step is refused): the
    // record that lists the steps owed is in the kernel's hands once renamed, which is what
    // survives a killed controller; every file was flushed before it took its name, so a
    // crash still leaves each one entirely old or entirely new. A rollback's write flushes
    // its own folders.
    let record = record_after(cx, p.reload.owed());
    let op = write::record_op(&g.record_path, &record);
    let dirs = write_files(lock, cx, p, Some(op), false)
        .await
        .map_err(failed)?;
    // 2. FreeSWITCH steps
    let (results, failure) =
        run_steps(&mut Via::Session(lock), cx.host, p, cx.s.drain_timeout).await;
    r.steps = results;
    let failure = match failure {
        Some(f) if f.kind == ErrorKind::StepRefused => {
            return Err(step_refused(cx, lock, r, f.message, &dirs).await)
        }
        Some(f) => Some((f.kind, f.message)),
        // 3. verify, then the play's call tests
        None => match verify_after_change(lock, cx, r).await {
            None => crate::engine::call_tests::after_verify(
                cx.t,
                cx.host,
                &cx.s.call_tests,
                cx.s.call_test_seconds,
                cx.s.call_tester.as_ref(),
                &mut r.call_tests,
            )
            .await
            .map(|m| (ErrorKind::VerifyFailed, m)),
            failed => failed,
        },
    };
    let Some((kind, reason)) = failure else {
        // Every step ran and the gateways are healthy: only what was not allowed stays owed.
        let record = record_after(cx, p.reload.pending.clone());
        if let Err(e) = lock.write_record(&record, &dirs).await {
            let message =
                format!("the change is in effect, but the state record could not be updated: {e}");
            return Err(fail((&e).into(), message));
        }
        // Owed steps run with no file to write still changed the host (a profile
        // restart is never reported as plain `ok`).
        if r.steps.iter().any(|st| st.ok) {
            r.status = HostStatus::Changed;
        }
        return Ok(());
    };
    // 4. roll back
    Err(roll_back(lock, cx, r, kind, reason).await)
}

/// FreeSWITCH declined a step (a profile restart too soon after the profile started) even
/// after waiting: the files are right and nothing was half done, so nothing is rolled
/// back; the step stays owed for the next run.
async fn step_refused(
    cx: &mut Cx<'_, '_>,
    lock: &mut HostLock,
    r: &HostReport,
    message: String,
    dirs: &[String],
) -> End {
    let p = cx.p;
    let done = r.steps.iter().filter(|x| x.ok).count();
    let mut owed: Vec<Step> = p.reload.steps.iter().skip(done).cloned().collect();
    owed.extend(p.reload.pending.iter().cloned());
    let record = record_after(cx, owed);
    let note = match lock.write_record(&record, dirs).await {
        Ok(()) => "; it stays owed and the next run performs it".to_string(),
        Err(e) => format!("; could not record it as owed: {e}"),
    };
    fail(ErrorKind::StepRefused, format!("{message}{note}"))
}

/// After a gateway change, and after anything that restarted a profile or FreeSWITCH
/// (every gateway registers again then): the gateways' registration, if verification is on.
async fn verify_after_change(
    lock: &mut HostLock,
    cx: &mut Cx<'_, '_>,
    r: &mut HostReport,
) -> Option<(ErrorKind, String)> {
    let p = cx.p;
    let gw_changed = p.changed().any(|f| {
        matches!(
            crate::freeswitch::classify(&f.rel),
            crate::freeswitch::FileKind::Gateway { .. }
        ) && f.content_changed
    });
    let restarted = p.reload.steps.iter().any(|st| st.action.reloads_gateways());
    if !(cx.s.verify && (gw_changed || restarted) && !p.gateways.is_empty()) {
        return None;
    }
    let v = verify_gateways(&mut Via::Session(lock), cx, &p.gateways).await;
    r.gateways = v.gateways;
    v.failure.map(|m| (ErrorKind::VerifyFailed, m))
}

/// Put the previous files (and state record) back, run the steps that makes FreeSWITCH
/// read them, and verify.
async fn roll_back(
    lock: &mut HostLock,
    cx: &mut Cx<'_, '_>,
    r: &mut HostReport,
    kind: ErrorKind,
    reason: String,
) -> End {
    let back = plan::reverse(cx.p, cx.s.allow);
    let mut notes = Vec::new();
    let g = cx.g;
    let record_path = g.record_path.as_str();
    let restore_record = match &g.prior_bytes {
        Some(b) => write::record_op(record_path, b),
        None => FileOp::Remove { path: record_path },
    };
    if let Err(e) = write_files(lock, cx, &back, Some(restore_record), true).await {
        let message = format!("{reason}; ROLLBACK FAILED while restoring files: {e}");
        return fail(ErrorKind::RollbackFailed, message);
    }
    let (back_steps, back_failure) =
        run_steps(&mut Via::Session(lock), cx.host, &back, cx.s.drain_timeout).await;
    for st in back_steps {
        r.steps.push(crate::engine::outcome::StepResult {
            command: format!("(rollback) {}", st.command),
            ..st
        });
    }
    if let Some(f) = back_failure {
        notes.push(format!("rollback step failed: {}", f.message));
    }
    if cx.s.verify && !back.gateways.is_empty() && !back.reload.steps.is_empty() {
        let v = verify_gateways(&mut Via::Session(lock), cx, &back.gateways).await;
        r.gateways = v.gateways;
        if let Some(f) = v.failure {
            notes.push(format!("after rollback: {f}"));
        }
    }
    r.rollback = Some(if notes.is_empty() {
        "previous files restored and verified".into()
    } else {
        notes.join("; ")
    });
    End::RolledBack(kind, reason)
}

/// The state record after writing the plan's files: its hashes over the prior ones, and
/// the steps still `owed` (at the write: every step the change needs, run now or pending).
fn record_after(cx: &Cx<'_, '_>, owed: Vec<Step>) -> Vec<u8> {
    let p = cx.p;
    let written = p.files.iter().map(|f| {
        (
            f.path.as_str(),
            (!f.remove).then_some(f.new_sha256.as_str()),
        )
    });
    write::new_record(cx.g.prior.as_ref(), written, owed, p.vars_set.clone())
}

/// The same commands, whatever the reasons given for them.
fn same_actions(a: &[Step], b: &[Step]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| y.action == x.action))
}

/// Write `p`'s changed files (and `extra`, the state record) in one request to the held
/// session, each guarded by the hash it had when gathered: the folders written to, left
/// unflushed unless `sync`.
async fn write_files(
    lock: &mut HostLock,
    cx: &Cx<'_, '_>,
    p: &HostPlan,
    extra: Option<FileOp<'_>>,
    sync: bool,
) -> Result<Vec<String>, WriteError> {
    let fs = &cx.host.freeswitch;
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
        return Ok(Vec::new());
    }
    let expect: Vec<(&str, Option<&str>)> = p
        .changed()
        .map(|f| (f.path.as_str(), f.old_sha256.as_deref()))
        .collect();
    write::send(lock, &fs.conf_root, &ops, &expect, sync).await
}
