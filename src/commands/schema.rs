//! `switchyard schema playbook|inventory|vars`: the JSON Schema of each input file, for
//! editors (VS Code's YAML extension and others). The shipped copies in `schema/` are this
//! output; a test fails when they differ.

use clap::{Args, ValueEnum};

use crate::exit::{CommandResult, ExitStatus};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    /// A playbook (`playbooks/*.yml`)
    Playbook,
    /// An inventory file (`all:` / `hosts:` / `children:` / `vars:`)
    Inventory,
    /// A `group_vars/NAME.yml` or `host_vars/NAME.yml` file
    Vars,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which file's schema (e.g. `switchyard schema playbook > schema/playbook.schema.json`)
    #[arg(value_enum)]
    pub kind: SchemaKind,
}

/// The schema's text: pretty JSON, one trailing newline.
pub fn text(kind: SchemaKind) -> String {
    let schema = match kind {
        SchemaKind::Playbook => crate::inputs::playbook::Playbook::json_schema(),
        SchemaKind::Inventory => crate::inputs::inventory::inventory_schema(),
        SchemaKind::Vars => crate::inputs::inventory::vars_schema(),
    };
    let mut out = serde_json::to_string_pretty(&schema).expect("a schema is JSON");
    out.push('\n');
    out
}

pub fn run(a: SchemaArgs) -> CommandResult {
    std::io::Write::write_all(&mut std::io::stdout(), text(a.kind).as_bytes())?;
    Ok(ExitStatus::Success)
}
