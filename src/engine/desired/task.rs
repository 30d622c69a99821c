//! What a task does to a host's desired state, one file per kind beside this one, as
//! mini-redis's `Command::apply` hands each verb its own `apply`.
//!
//! The kinds' fields are parsed in `inputs/playbook/task.rs`; their behaviour is here, in
//! the engine, because it builds the engine's [`DesiredFile`]s and `inputs/` may not import
//! from `engine/` (`tests/it/architecture.rs`). It lives inside `desired` rather than in an
//! `engine::task` of its own because a task's behaviour *is* its contribution to the desired
//! state: the two would import each other.

use minijinja::value::Value;

use super::{DesiredError, DesiredFile, TaskProblem};
use crate::inputs::inventory::Host;
use crate::inputs::playbook::{Mode, TaskKind};
use crate::inputs::template::{TemplateError, Templates};
use crate::secret::Redactor;

/// The file a task touches, as the playbook writes it.
pub(super) struct Destination<'a> {
    /// A template over the host's variables, resolved against the conf root.
    pub dest: &'a str,
    pub owner: &'a Option<String>,
    pub group: &'a Option<String>,
    pub mode: Option<Mode>,
}

impl<'a> Destination<'a> {
    pub fn new(
        dest: &'a str,
        owner: &'a Option<String>,
        group: &'a Option<String>,
        mode: Option<Mode>,
    ) -> Self {
        Destination {
            dest,
            owner,
            group,
            mode,
        }
    }
}

/// How a task's change takes effect on a running FreeSWITCH.
pub(super) enum Reload<'a> {
    /// By what changed in the file it touches: `freeswitch::reload` reads the file's kind
    /// from its path and compares old and new content (a gateway: `killgw` and `rescan`;
    /// `switch.conf.xml`: a restart; other XML: `reloadxml`). Owner and mode alone need none.
    ByFile,
    /// The task is a step itself: its API command (a template) runs after the planned steps
    /// when a task it watches changed a file (any task, when it names none).
    Handler {
        command: &'a str,
        on_change: &'a [String],
    },
}

/// One task kind's behaviour.
pub(super) trait TaskBehaviour {
    /// The file it touches; `None` for a kind that touches no file.
    fn destination(&self) -> Option<Destination<'_>>;
    /// Its part of that file (whole content, in-place edits, or removal), after the file's
    /// owner, group and mode were taken from [`TaskBehaviour::destination`].
    fn contribute(&self, file: &mut DesiredFile, cx: &mut Cx<'_>) -> Result<(), DesiredError>;
    /// How its change takes effect.
    fn reload(&self) -> Reload<'_>;
}

/// The one place that matches on the kind.
pub(super) fn behaviour(kind: &TaskKind) -> &dyn TaskBehaviour {
    match kind {
        TaskKind::Template(t) => t,
        TaskKind::XmlParams(t) => t,
        TaskKind::PreProcess(t) => t,
        TaskKind::File(t) => t,
        TaskKind::FsCli(t) => t,
    }
}

/// What a task sees while it contributes one run (one loop item) to the desired state.
pub(super) struct Cx<'a> {
    pub host: &'a Host,
    pub templates: &'a mut Templates,
    /// The variables of this run: the host's, the item, the task's.
    pub ctx: &'a Value,
    /// Every secret met so far; a task adds the values it renders into secret-named keys.
    pub redactor: &'a mut Redactor,
    /// The task's name, as its template errors name it.
    pub task: &'a str,
    /// The task as reports show it (with its item's label).
    pub shown: &'a str,
}

impl Cx<'_> {
    /// Render a playbook string over this run's variables.
    pub fn render(&self, text: &str) -> Result<String, DesiredError> {
        self.templates
            .render_str(&format!("task `{}`", self.shown), text, self.ctx)
            .map_err(|e| self.template_error(e))
    }

    pub fn template_error(&self, source: TemplateError) -> DesiredError {
        DesiredError::Template {
            host: self.host.name.clone(),
            task: self.task.to_string(),
            source: Box::new(source),
        }
    }

    pub fn fail(&self, problem: impl Into<TaskProblem>) -> DesiredError {
        DesiredError::Task {
            host: self.host.name.clone(),
            task: self.shown.to_string(),
            problem: problem.into(),
        }
    }

    /// Render the value of the key `name`; when the name says it is secret (a password),
    /// the value is masked wherever it shows from now on.
    pub fn render_value(&mut self, name: &str, text: &str) -> Result<String, DesiredError> {
        let value = self.render(text)?;
        if crate::secret::is_secret_name(name) {
            self.redactor.add(&value);
        }
        Ok(value)
    }
}
