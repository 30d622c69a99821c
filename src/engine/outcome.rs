//! What happened on each host: the reports the runner produces and everything downstream
//! (terminal output, JSON, review summaries, history, the drift agent, exit codes) reads.
//!
//! A host that did not end as planned carries a typed [`HostError`]: its [`ErrorKind`]
//! decides the host's status, the JSON's `error_kind` and the exit code; its message is
//! only for people.

use serde::Serialize;

use crate::engine::facts::FactsError;
use crate::engine::plan::{Difference, FilePlan, FileStatus, PlanError};
use crate::freeswitch::lint::Finding;
use crate::freeswitch::reload::Step;
use crate::freeswitch::status::GatewayStatus;
use crate::host::transport::{LockError, RecordError, SessionError, TransportError};
use crate::host::write::WriteError;

/// How far the pipeline goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Stop after the plan: change nothing anywhere.
    Check,
    /// Apply, run the FreeSWITCH steps, verify, roll back on failure.
    Apply,
    /// Only poll the managed gateways.
    Verify,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Check => "check",
            Mode::Apply => "apply",
            Mode::Verify => "verify",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    Ok,
    Changed,
    Failed,
    Unreachable,
    RolledBack,
    /// Never touched: the rollout stopped before its batch.
    NotRun,
}

impl HostStatus {
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            HostStatus::Failed | HostStatus::Unreachable | HostStatus::RolledBack
        )
    }
    pub fn label(self) -> &'static str {
        match self {
            HostStatus::Ok => "ok",
            HostStatus::Changed => "changed",
            HostStatus::Failed => "failed",
            HostStatus::Unreachable => "unreachable",
            HostStatus::RolledBack => "rolled back",
            HostStatus::NotRun => "not run",
        }
    }
}

/// Why a host did not end as planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Its desired state could not be built (a template or variable error): nothing was
    /// contacted.
    Render,
    /// No connection (after the retries the inventory allows).
    Unreachable,
    /// Another switchyard run holds the host's lock.
    LockHeld,
    /// Reading the managed files failed (or one is unsafe to touch).
    Gather,
    /// The change cannot be planned safely (e.g. a secret in a world-readable file).
    Plan,
    /// `apply --plan`: what would be done is not what was reviewed.
    NotReviewed,
    /// The final configuration has lint errors: nothing was written.
    Lint,
    /// Writing the files failed (nothing half-written: each file is renamed into place).
    Write,
    /// Calls stayed up past the drain timeout: the disruptive step was not run.
    CallsActive,
    /// FreeSWITCH declined a step for now: the files are right, the step stays owed.
    StepRefused,
    /// A FreeSWITCH step failed.
    StepFailed,
    /// The managed gateways did not become healthy.
    VerifyFailed,
    /// Restoring the previous files after a failure failed too.
    RollbackFailed,
    /// The change is in effect but the host's state record could not be updated.
    StateRecord,
    /// The rollout stopped, or the run was interrupted, before this host started.
    NotRun,
    /// A bug in switchyard (a host task panicked).
    Internal,
}

impl ErrorKind {
    /// The status of a host that ends with this error (a rolled-back change is marked by
    /// [`HostReport::rolled_back`] instead).
    pub fn status(self) -> HostStatus {
        match self {
            ErrorKind::Unreachable => HostStatus::Unreachable,
            ErrorKind::NotRun => HostStatus::NotRun,
            _ => HostStatus::Failed,
        }
    }
}

/// The kind is read from the error, never chosen where it is reported: a connection that
/// was never made is [`ErrorKind::Unreachable`] wherever it is met; a command that failed on
/// an open connection is [`ErrorKind::Gather`] (reading the host: the gather, the lock),
/// unless the stage that met it has its own error (a write is [`WriteError`]).
impl From<&TransportError> for ErrorKind {
    fn from(e: &TransportError) -> ErrorKind {
        if e.is_unreachable() {
            ErrorKind::Unreachable
        } else {
            ErrorKind::Gather
        }
    }
}

impl From<&FactsError> for ErrorKind {
    fn from(e: &FactsError) -> ErrorKind {
        match e {
            FactsError::Transport(t) => t.into(),
            FactsError::Failed { .. } | FactsError::Garbled(_) => ErrorKind::Gather,
        }
    }
}

/// Held by another run is its own kind (try again later); any other lock failure is met
/// while reading the host.
impl From<&LockError> for ErrorKind {
    fn from(e: &LockError) -> ErrorKind {
        match e {
            LockError::Held { .. } => ErrorKind::LockHeld,
            LockError::NoAnswer { .. } | LockError::Refused { .. } => ErrorKind::Gather,
            LockError::Transport { source, .. } => source.into(),
        }
    }
}

/// Met running FreeSWITCH commands (a write or a state record wraps it in its own error,
/// with its own kind): the step failed, whether the session died or the channel's command
/// did, unless the connection itself was never made.
impl From<&SessionError> for ErrorKind {
    fn from(e: &SessionError) -> ErrorKind {
        match e {
            SessionError::Channel(t) if t.is_unreachable() => ErrorKind::Unreachable,
            SessionError::Dead(why) => why.as_ref().into(),
            _ => ErrorKind::StepFailed,
        }
    }
}

impl From<&PlanError> for ErrorKind {
    fn from(_: &PlanError) -> ErrorKind {
        ErrorKind::Plan
    }
}

impl From<&WriteError> for ErrorKind {
    fn from(_: &WriteError) -> ErrorKind {
        ErrorKind::Write
    }
}

impl From<&RecordError> for ErrorKind {
    fn from(_: &RecordError) -> ErrorKind {
        ErrorKind::StateRecord
    }
}

/// A host's error: the kind decides, the message explains (masked before it is reported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostError {
    #[serde(rename = "error_kind")]
    pub kind: ErrorKind,
    #[serde(rename = "error")]
    pub message: String,
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub command: String,
    pub reason: String,
    pub output: String,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    pub batch: usize,
    pub status: HostStatus,
    /// JSON: `"error"` (text) and `"error_kind"` (one of [`ErrorKind`]), absent when none.
    #[serde(flatten)]
    pub error: Option<HostError>,
    pub files: Vec<FilePlan>,
    /// FreeSWITCH steps: planned (check) or run (apply).
    pub steps: Vec<StepResult>,
    pub pending: Vec<Step>,
    /// Steps a past apply wrote files for but never confirmed done (killed, refused, cut
    /// off), which this run performs (or, checking, would): FreeSWITCH runs other than what
    /// its files say until they run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owed: Vec<Step>,
    pub restart_pending: bool,
    pub gateways: Vec<GatewayStatus>,
    pub rollback: Option<String>,
    pub findings: Vec<Finding>,
    /// Remote commands run for this host after authentication.
    pub remote_commands: u64,
    pub seconds: f64,
    /// The play's call tests, placed after the change was verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub call_tests: Vec<crate::engine::call_tests::CallTestReport>,
}

impl HostReport {
    pub fn new(host: &str, batch: usize) -> HostReport {
        HostReport {
            host: host.to_string(),
            batch,
            status: HostStatus::Ok,
            error: None,
            files: Vec::new(),
            steps: Vec::new(),
            pending: Vec::new(),
            owed: Vec::new(),
            restart_pending: false,
            gateways: Vec::new(),
            rollback: None,
            findings: Vec::new(),
            remote_commands: 0,
            seconds: 0.0,
            call_tests: Vec::new(),
        }
    }

    /// End the host with an error; its status follows from the kind.
    pub fn fail(mut self, kind: ErrorKind, message: impl Into<String>) -> HostReport {
        self.status = kind.status();
        self.error = Some(HostError {
            kind,
            message: message.into(),
        });
        self
    }

    /// End the host with a typed error: the kind is read from it, the message is its text.
    pub fn failed<E>(self, e: &E) -> HostReport
    where
        E: std::fmt::Display,
        for<'e> &'e E: Into<ErrorKind>,
    {
        self.fail(e.into(), e.to_string())
    }

    /// The change failed (`kind`) and the previous files were put back.
    pub fn rolled_back(self, kind: ErrorKind, message: impl Into<String>) -> HostReport {
        let mut r = self.fail(kind, message);
        r.status = HostStatus::RolledBack;
        r
    }

    pub fn error_text(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.message.as_str())
    }

    /// Some file changed on the host since switchyard last wrote it, or FreeSWITCH was
    /// never told about files a past apply wrote (steps owed).
    pub fn has_drift(&self) -> bool {
        !self.owed.is_empty()
            || self
                .files
                .iter()
                .any(|f| f.difference == Some(Difference::Drift))
    }

    /// Managed files whose content or metadata differ (would be, or were, written).
    pub fn files_with(&self, status: FileStatus) -> usize {
        self.files.iter().filter(|f| f.status == status).count()
    }

    /// Drop what only the host's own pipeline (and `route`) reads: each file's contents
    /// before and after and its old metadata, none of which is in the JSON, the terminal
    /// output or the history. A done host then costs its JSON-ready fields, not its files.
    pub fn compact(&mut self) {
        for f in &mut self.files {
            f.old = None;
            f.old_meta = None;
            f.new = Vec::new();
        }
        self.files.shrink_to_fit();
    }

    /// Lint findings that stop a change (errors, not warnings).
    pub fn has_lint_errors(&self) -> bool {
        self.findings.iter().any(|f| f.blocks())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlayReport {
    pub play: String,
    pub mode: Mode,
    pub hosts: Vec<HostReport>,
    /// Why the rollout stopped early, if it did.
    pub aborted: Option<String>,
}

impl PlayReport {
    /// How many hosts ended with `status`.
    pub fn count(&self, status: HostStatus) -> usize {
        self.hosts.iter().filter(|h| h.status == status).count()
    }
}

/// What the runner tells its caller while it works, for progress lines.
#[derive(Debug)]
pub enum Event<'a> {
    /// The play selected this many hosts.
    Selected { hosts: usize },
    /// A connection attempt failed in a way worth retrying; `attempt` of `of` comes next.
    Retrying {
        host: &'a str,
        attempt: u32,
        of: u32,
    },
    /// A host is done.
    Done(&'a HostReport),
}

/// Called as the runner works; host reports arrive as soon as each host is done.
pub type OnEvent = std::sync::Arc<dyn Fn(Event<'_>) + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn refused() -> TransportError {
        TransportError::Connect {
            addr: "127.0.0.9:22".into(),
            source: Box::new(russh::Error::Kex),
        }
    }

    /// The host's failure kind is read from the error, wherever it was met: a connection
    /// never made is unreachable, however many attempts were made; a command that failed
    /// on an open connection is not.
    #[test]
    fn the_kind_is_read_from_the_error() {
        let retried = TransportError::Retried {
            attempts: 3,
            source: Box::new(refused()),
        };
        assert_eq!(ErrorKind::from(&retried), ErrorKind::Unreachable);
        assert!(retried.is_transient());
        let changed = TransportError::ChangedHostKey {
            host: "pbx:22".into(),
            line: 4,
            known_hosts: "/k".into(),
        };
        assert_eq!(ErrorKind::from(&changed), ErrorKind::Unreachable);
        assert!(!changed.is_transient(), "a changed key is never retried");
        let timeout = TransportError::CommandTimeout { secs: 30.0 };
        assert_eq!(ErrorKind::from(&timeout), ErrorKind::Gather);
        let facts = FactsError::Transport(TransportError::TooLarge { max: 10 });
        assert_eq!(ErrorKind::from(&facts), ErrorKind::Gather);
        let held = LockError::Held {
            path: "/c/.switchyard/lock".into(),
            owner: "alice".into(),
        };
        assert_eq!(ErrorKind::from(&held), ErrorKind::LockHeld);
        let ended = SessionError::Ended {
            said: "gone".into(),
        };
        assert_eq!(ErrorKind::from(&ended), ErrorKind::StepFailed);
        let write = WriteError::from(ended.clone());
        assert_eq!(ErrorKind::from(&write), ErrorKind::Write);
        let record = RecordError::from(SessionError::Dead(Box::new(ended)));
        assert_eq!(ErrorKind::from(&record), ErrorKind::StateRecord);
        let r = HostReport::new("pbx", 1).failed(&retried);
        assert_eq!(r.status, HostStatus::Unreachable);
    }

    /// Typed all the way: the texts are the ones users saw before, and russh's error is
    /// still there to be asked for (not flattened into a string).
    #[test]
    fn transport_errors_keep_their_text_and_their_source() {
        let retried = TransportError::Retried {
            attempts: 3,
            source: Box::new(refused()),
        };
        assert_eq!(
            retried.to_string(),
            "cannot connect to 127.0.0.9:22: Key exchange failed (3 attempts)"
        );
        let inner = retried.source().and_then(|s| s.source()).expect("russh's");
        assert!(inner.downcast_ref::<Box<russh::Error>>().is_some());
        let ssh = TransportError::from(russh::Error::Inconsistent);
        assert_eq!(ssh.to_string(), "ssh: Inconsistent state of the protocol");
        assert!(ssh.source().is_some());
    }

    /// The session's errors read as they did when they were strings (tests/it asserts on
    /// them); what the host said is escaped; russh's error stays a source.
    #[test]
    fn session_errors_keep_their_text_and_their_source() {
        let ended = SessionError::Ended {
            said: "write.sh: denied\x1b[2J".into(),
        };
        assert_eq!(
            ended.to_string(),
            "the host's session ended: write.sh: denied\\u{1b}[2J"
        );
        let dead = SessionError::Dead(Box::new(ended.clone()));
        assert_eq!(dead.to_string(), ended.to_string());
        assert_eq!(
            WriteError::from(SessionError::NoAnswer { secs: 30.0 }).to_string(),
            "writing files failed: the host's session did not answer within 30 s"
        );
        assert_eq!(
            RecordError::from(SessionError::TooLarge { max: 65536 }).to_string(),
            "while writing the state record: the host's answer exceeded 65536 bytes"
        );
        let ssh = SessionError::from(russh::Error::Inconsistent);
        assert_eq!(ssh.to_string(), "Inconsistent state of the protocol");
        assert!(ssh.source().is_some());
        let write = WriteError::from(ssh);
        assert!(write.source().and_then(|s| s.source()).is_some());
    }

    /// What the lock program answered is the host's text: escaped, as before.
    #[test]
    fn a_hosts_answer_in_a_record_error_is_escaped() {
        let e = RecordError::Refused {
            answer: "no\x1b[2J\nswitchyard-record-ok".into(),
        };
        assert_eq!(
            e.to_string(),
            "the state record could not be written: no\\u{1b}[2J\\nswitchyard-record-ok"
        );
    }
}
