//! `fs_cli`: no file; the task is a handler, an API command run when a task it watches
//! changed something.

use super::task::{Cx, Destination, Reload, TaskBehaviour};
use super::{DesiredError, DesiredFile};
use crate::inputs::playbook::FsCliTask;

impl TaskBehaviour for FsCliTask {
    fn destination(&self) -> Option<Destination<'_>> {
        None
    }

    fn contribute(&self, _: &mut DesiredFile, _: &mut Cx<'_>) -> Result<(), DesiredError> {
        Ok(())
    }

    fn reload(&self) -> Reload<'_> {
        Reload::Handler {
            command: &self.command,
            on_change: &self.on_change,
        }
    }
}
