//! `file`: owner, group and mode of a file (the destination carries them), or, with
//! `state: absent`, its removal.

use super::task::{Cx, Destination, Reload, TaskBehaviour};
use super::{DesiredError, DesiredFile};
use crate::inputs::playbook::{FileState, FileTask};

impl TaskBehaviour for FileTask {
    fn destination(&self) -> Option<Destination<'_>> {
        Some(Destination::new(
            &self.dest,
            &self.owner,
            &self.group,
            self.mode,
        ))
    }

    fn contribute(&self, file: &mut DesiredFile, _: &mut Cx<'_>) -> Result<(), DesiredError> {
        if self.state == FileState::Absent {
            file.absent = true;
        }
        Ok(())
    }

    /// A removal is a change of content too: a gateway file's plans `killgw`, other XML's
    /// `reloadxml`.
    fn reload(&self) -> Reload<'_> {
        Reload::ByFile
    }
}
