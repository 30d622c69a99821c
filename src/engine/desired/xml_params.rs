//! `xml_params`: `<param name value>`s set in place in the host's current file (applied by
//! `freeswitch::xml_param` when the plan meets the file's content).

use super::task::{Cx, Destination, Reload, TaskBehaviour};
use super::{DesiredError, DesiredFile, Edit};
use crate::inputs::playbook::XmlParamsTask;

impl TaskBehaviour for XmlParamsTask {
    fn destination(&self) -> Option<Destination<'_>> {
        Some(Destination::new(
            &self.dest,
            &self.owner,
            &self.group,
            self.mode,
        ))
    }

    fn contribute(&self, file: &mut DesiredFile, cx: &mut Cx<'_>) -> Result<(), DesiredError> {
        for (name, value) in &self.params {
            let value = cx.render_value(name, &value.0)?;
            file.edits.push(Edit::Param {
                section: self.section.clone(),
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
