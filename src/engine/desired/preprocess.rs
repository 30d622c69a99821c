//! `preprocess`: `<X-PRE-PROCESS>` definitions ensured (or, `state: absent`, removed) in
//! place; a value that a pre-process line cannot carry is refused here, before any host is
//! reached.

use super::task::{Cx, Destination, Reload, TaskBehaviour};
use super::{DesiredError, DesiredFile, Edit};
use crate::freeswitch::preprocess::{unsafe_data, PreProcessError};
use crate::inputs::playbook::{FileState, PreProcessTask};

impl TaskBehaviour for PreProcessTask {
    fn destination(&self) -> Option<Destination<'_>> {
        Some(Destination::new(
            &self.dest,
            &self.owner,
            &self.group,
            self.mode,
        ))
    }

    fn contribute(&self, file: &mut DesiredFile, cx: &mut Cx<'_>) -> Result<(), DesiredError> {
        if self.state == FileState::Absent {
            // Values are ignored: only the names say what to remove.
            for name in self.vars.keys() {
                file.edits.push(Edit::PreProcessRemove {
                    cmd: self.cmd.clone(),
                    name: name.clone(),
                });
            }
            return Ok(());
        }
        for (name, value) in &self.vars {
            let value = cx.render_value(name, &value.0)?;
            if let Some(what) = unsafe_data(&value) {
                return Err(cx.fail(PreProcessError::BadValue {
                    name: name.clone(),
                    what,
                }));
            }
            file.edits.push(Edit::PreProcess {
                cmd: self.cmd.clone(),
                name: name.clone(),
                value,
            });
        }
        Ok(())
    }

    fn reload(&self) -> Reload<'_> {
        Reload::ByFile
    }
}
