//! How a command ends: the one place that turns outcomes and errors into exit codes.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success: applied, in sync, verified, or nothing to do |
//! | 1    | failure: a host failed, was unreachable or rolled back; the rollout was aborted; lint found errors; an input (inventory, playbook, plan, vault) was refused |
//! | 2    | usage: the command line is wrong (nothing was read or contacted) |
//! | 3    | drift: `drift` found hosts changed behind switchyard's back (or, with `--fail-on-pending`, changes not yet applied) |
//! | 130  | interrupted: SIGINT/SIGTERM; hosts in flight finished, the others are `not run` |
//!
//! Drift has its own code so that a CI job or a timer can tell "the fleet drifted" from
//! "the command was mistyped" and from "a host is down".

use crate::engine::outcome::PlayReport;
use crate::BoxError;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    Failure,
    Usage,
    Drift,
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Drift => 3,
            ExitStatus::Interrupted => 130,
        }
    }

    /// The status of a run over these plays: interrupted, else failed if any host failed,
    /// any rollout stopped, or lint found errors; else success.
    pub fn of_run(plays: &[PlayReport]) -> ExitStatus {
        if crate::interrupt::requested() {
            return ExitStatus::Interrupted;
        }
        let failed = plays.iter().any(|p| {
            p.aborted.is_some()
                || p.hosts
                    .iter()
                    .any(|h| h.status.is_failure() || h.has_lint_errors())
        });
        if failed {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        }
    }

    /// The worse of two statuses (a correction that failed after drift was found).
    pub fn worst(self, other: ExitStatus) -> ExitStatus {
        let rank = |s: ExitStatus| match s {
            ExitStatus::Success => 0,
            ExitStatus::Drift => 1,
            ExitStatus::Failure => 2,
            ExitStatus::Usage => 3,
            ExitStatus::Interrupted => 4,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// The table above, for `--help`.
pub const HELP: &str = "Exit codes:
  0    success: applied, in sync, verified, or nothing to do
  1    failure: a host failed, was unreachable or rolled back; lint found errors; an input was refused
  2    usage: the command line is wrong
  3    drift found (`drift`; pending changes too with --fail-on-pending)
  130  interrupted (SIGINT/SIGTERM): hosts not started are reported `not run`";

/// Why a command could not do its work. Not a `std::error::Error` itself, so that any error
/// (and any message) converts into it with `?`.
#[derive(Debug)]
pub enum CommandError {
    /// A command line clap accepts but that makes no sense (`--serial 0%`, `--every 5x`).
    Usage(String),
    /// Anything else: a refused input, an unreadable file, a runtime failure.
    Failed(BoxError),
}

impl CommandError {
    pub fn usage(message: impl Into<String>) -> CommandError {
        CommandError::Usage(message.into())
    }

    pub fn status(&self) -> ExitStatus {
        match self {
            CommandError::Usage(_) => ExitStatus::Usage,
            CommandError::Failed(_) => ExitStatus::Failure,
        }
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Usage(m) => f.write_str(m),
            CommandError::Failed(e) => e.fmt(f),
        }
    }
}

impl<E: Into<BoxError>> From<E> for CommandError {
    fn from(e: E) -> CommandError {
        CommandError::Failed(e.into())
    }
}

/// What every command returns.
pub type CommandResult = Result<ExitStatus, CommandError>;
