//! `template`: a whole file rendered from a template; it replaces whatever edits earlier
//! tasks made to the same file.

use super::task::{Cx, Destination, Reload, TaskBehaviour};
use super::{DesiredError, DesiredFile};
use crate::inputs::playbook::TemplateTask;

impl TaskBehaviour for TemplateTask {
    fn destination(&self) -> Option<Destination<'_>> {
        Some(Destination::new(
            &self.dest,
            &self.owner,
            &self.group,
            self.mode,
        ))
    }

    fn contribute(&self, file: &mut DesiredFile, cx: &mut Cx<'_>) -> Result<(), DesiredError> {
        let text = cx
            .templates
            .render_file(&self.src, cx.ctx)
            .map_err(|e| cx.template_error(e))?;
        if file.rel.ends_with(".xml") {
            crate::inputs::template::check_well_formed(&self.src, &text)
                .map_err(|e| cx.template_error(e))?;
        }
        file.base = Some(text);
        file.edits.clear();
        // Whole files written by switchyard default to the host's owner and 0640: gateway
        // files hold trunk passwords.
        let fs = &cx.host.freeswitch;
        file.owner.get_or_insert_with(|| fs.owner.clone());
        file.group.get_or_insert_with(|| fs.group.clone());
        file.mode.get_or_insert(0o640);
        Ok(())
    }

    fn reload(&self) -> Reload<'_> {
        Reload::ByFile
    }
}
