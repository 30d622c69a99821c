//! The FreeSWITCH steps of a change (reloads, rescans, restarts, handlers), run in one round
//! trip and each answer judged; before a disruptive step, active calls are drained.

use std::time::{Duration, Instant};

use crate::engine::outcome::{ErrorKind, StepResult};
use crate::engine::plan::HostPlan;
use crate::freeswitch::reload::Action;
use crate::freeswitch::status;
use crate::host::script;
use crate::host::session::Via;
use crate::host::transport::SessionError;
use crate::inputs::inventory::Host;
use crate::inputs::playbook::Disruption;

/// Why the FreeSWITCH steps did not all succeed.
pub(crate) struct StepFailure {
    pub message: String,
    /// `StepRefused`: FreeSWITCH declined to do it now (and still did after waiting),
    /// nothing half done; `CallsActive`: the step never ran; else `StepFailed`.
    pub kind: ErrorKind,
}

/// The steps a check run would perform, reported as if they succeeded.
pub(crate) fn planned_steps(p: &HostPlan) -> Vec<StepResult> {
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

/// Run the planned steps and handlers in one command and read every answer. A step
/// FreeSWITCH declines for now (a profile restart within 10 s of the profile starting) is
/// tried again, with the steps after it, after the wait FreeSWITCH names, for as long as
/// the drain limit allows.
pub(crate) async fn run_steps(
    t: &mut Via<'_>,
    host: &Host,
    p: &HostPlan,
    drain_timeout: Duration,
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
        if let Err(e) = drain(t, host, drain_timeout).await {
            let (kind, message) = ((&e).into(), e.to_string());
            return (Vec::new(), Some(StepFailure { message, kind }));
        }
    }
    let deadline = Instant::now() + drain_timeout;
    let mut results: Vec<StepResult> = Vec::new();
    let mut from = 0;
    loop {
        let parts = match send_steps(t, host, &steps[from..]).await {
            Ok(parts) => parts,
            Err(f) => return (results, Some(f)),
        };
        match read_answers(&steps[from..], &parts, deadline, &mut results) {
            Answers::Retry { at, secs } => {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                from += at;
            }
            Answers::Done(failure) => return (results, failure),
        }
    }
}

/// One round trip running `steps`: each step's (index, answer, exit code).
async fn send_steps(
    t: &mut Via<'_>,
    host: &Host,
    steps: &[(Action, String)],
) -> Result<Vec<(usize, String, i32)>, StepFailure> {
    let actions: Vec<Action> = steps.iter().map(|x| x.0.clone()).collect();
    let out = t
        .run(
            &host.freeswitch.fs_cli,
            &host.freeswitch.restart_command,
            &actions,
        )
        .await
        .map_err(|e| StepFailure {
            kind: (&e).into(),
            message: format!("running FreeSWITCH commands failed: {e}"),
        })?;
    Ok(script::split_steps(&out))
}

/// What the answers of one round trip say.
enum Answers {
    /// FreeSWITCH declined step `at` (of those sent) for now: send it and the rest again
    /// after `secs` seconds.
    Retry { at: usize, secs: u64 },
    /// Every answer read (`results` has one per step judged); the first failure, if any.
    Done(Option<StepFailure>),
}

/// Judge each step's answer, in order, into `results`.
fn read_answers(
    steps: &[(Action, String)],
    parts: &[(usize, String, i32)],
    deadline: Instant,
    results: &mut Vec<StepResult>,
) -> Answers {
    let mut failure: Option<StepFailure> = None;
    for (k, (action, reason)) in steps.iter().enumerate() {
        let (body, rc) = parts
            .iter()
            .find(|x| x.0 == k)
            .map(|x| (x.1.clone(), x.2))
            .unwrap_or((String::new(), -1));
        let check = match action {
            // The host's `timeout` ended the command (the session's steps: see
            // host::session::steps); fs_cli never exits 124 itself.
            _ if rc == 124 => Err(status::ApiFailure::Error(body.trim().to_string())),
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
                let secs = *retry_after + 1;
                return Answers::Retry { at: k, secs };
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
    Answers::Done(failure)
}

/// Why a disruptive step was not run: calls stayed up, or they could not be counted.
#[derive(Debug, thiserror::Error)]
enum DrainError {
    /// The count could not be asked: the `fs_cli` line cannot be run as given, or the
    /// channel or session did not carry the command (its own sentence).
    #[error("cannot count active calls: {0}")]
    Count(#[from] SessionError),
    #[error("{calls} call(s) still active after waiting {secs:.0} s; disruptive step not run")]
    Active { calls: u64, secs: f64 },
    /// FreeSWITCH's answer (the host's text, masked with the rest of the report).
    #[error("cannot read `show calls count`: {0}")]
    Unreadable(String),
}

/// Whatever kept the calls from being counted, the step is not run for fear of cutting
/// them: every drain failure is [`ErrorKind::CallsActive`].
impl From<&DrainError> for ErrorKind {
    fn from(_: &DrainError) -> ErrorKind {
        ErrorKind::CallsActive
    }
}

/// Before a disruptive step: wait (up to `timeout`) for active calls to end.
async fn drain(t: &mut Via<'_>, host: &Host, timeout: Duration) -> Result<(), DrainError> {
    let count = [Action::Api("show calls count".into())];
    let deadline = Instant::now() + timeout;
    loop {
        let out = t.run(&host.freeswitch.fs_cli, "true", &count).await?;
        let parts = script::split_steps(&out);
        let body = parts.first().map(|p| p.1.clone()).unwrap_or_default();
        match status::parse_calls_count(&body) {
            Some(0) => return Ok(()),
            Some(n) if Instant::now() >= deadline => {
                return Err(DrainError::Active {
                    calls: n,
                    secs: timeout.as_secs_f64(),
                })
            }
            Some(_) => tokio::time::sleep(Duration::from_secs(2).min(timeout)).await,
            None => return Err(DrainError::Unreadable(body.trim().to_string())),
        }
    }
}
