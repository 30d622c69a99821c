//! A task as the loader reads it: the fields of each of the five kinds, and the keys every
//! kind shares (`name`, `when`, `vars`, `tags`, `loop`, `prune`).
//!
//! This is data only. What each kind does to a host's desired state (its destination, its
//! part of the file, how its change takes effect) lives in one file per kind under
//! `src/engine/desired/`: that behaviour builds the engine's `DesiredFile`s, and `inputs/`
//! may not import from `engine/` (`tests/it/architecture.rs`).

use std::collections::BTreeMap;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

use super::{Mode, Scalar};
use crate::inputs::inventory::Vars;

/// Render a template file to `dest`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateTask {
    /// Template path, looked up in `templates/` beside or above the playbook.
    pub src: String,
    /// Destination, relative to the host's conf root (or absolute inside it).
    pub dest: String,
    /// Owner of the file (a template); default for whole files: the host's `freeswitch_owner`.
    pub owner: Option<String>,
    /// Group of the file (a template); default for whole files: the host's `freeswitch_group`.
    pub group: Option<String>,
    /// Permission bits (`"0640"`); default for whole files: 0640.
    pub mode: Option<Mode>,
}

/// Set `<param name=".." value=".."/>` entries inside an existing XML file, in place.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XmlParamsTask {
    /// The file, relative to the host's conf root (or absolute inside it); a template.
    pub dest: String,
    /// `<param>` name → value (a template).
    pub params: BTreeMap<String, Scalar>,
    /// The element whose `<param>` children are edited.
    #[serde(default = "default_section")]
    pub section: String,
    /// Owner of the file (a template); default for whole files: the host's `freeswitch_owner`.
    pub owner: Option<String>,
    /// Group of the file (a template); default for whole files: the host's `freeswitch_group`.
    pub group: Option<String>,
    /// Permission bits (`"0640"`); default for whole files: 0640.
    pub mode: Option<Mode>,
}

fn default_section() -> String {
    "settings".into()
}

/// Ensure `<X-PRE-PROCESS cmd=".." data="name=value"/>` lines (vars.xml).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreProcessTask {
    /// The file, relative to the host's conf root (or absolute inside it); a template.
    #[serde(default = "default_vars_xml")]
    pub dest: String,
    /// `set`, `stun-set`, `env-set` or `exec-set`.
    #[serde(default = "default_cmd")]
    #[schemars(schema_with = "cmd_schema")]
    pub cmd: String,
    /// Pre-processor variable name → value (a template).
    pub vars: BTreeMap<String, Scalar>,
    /// Owner of the file (a template); default for whole files: the host's `freeswitch_owner`.
    pub owner: Option<String>,
    /// Group of the file (a template); default for whole files: the host's `freeswitch_group`.
    pub group: Option<String>,
    /// Permission bits (`"0640"`); default for whole files: 0640.
    pub mode: Option<Mode>,
    /// `absent`: remove the `cmd` definitions of these variables (values ignored).
    #[serde(default)]
    pub state: FileState,
}

/// The pre-process commands the loader accepts, as the loader's own list.
fn cmd_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "The pre-process command: `set` (default), `stun-set`, `env-set`, `exec-set`, ...",
        "type": "string",
        "enum": crate::freeswitch::preprocess::KNOWN_CMDS,
        "default": "set"
    })
}

fn default_vars_xml() -> String {
    "vars.xml".into()
}
fn default_cmd() -> String {
    "set".into()
}

/// Ensure owner, group and mode of an existing file, or (`state: absent`) that it is gone.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileTask {
    /// The file, relative to the host's conf root (or absolute inside it); a template.
    pub dest: String,
    /// Owner of the file (a template); default for whole files: the host's `freeswitch_owner`.
    pub owner: Option<String>,
    /// Group of the file (a template); default for whole files: the host's `freeswitch_group`.
    pub group: Option<String>,
    /// Permission bits (`"0640"`); default for whole files: 0640.
    pub mode: Option<Mode>,
    /// `present` (default) or `absent`.
    #[serde(default)]
    pub state: FileState,
}

/// Whether a `file` task wants the file there (default) or removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    #[default]
    Present,
    /// Removed: a gateway file's removal plans `killgw`, any other XML `reloadxml`.
    Absent,
}

/// Run an `fs_cli -x` command, handler-style: only when a task it watches changed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsCliTask {
    /// The API command, as `fs_cli -x` takes it (a template).
    pub command: String,
    /// Names of tasks whose change triggers the command; empty means any task of the play.
    #[serde(default)]
    pub on_change: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum TaskKind {
    Template(TemplateTask),
    XmlParams(XmlParamsTask),
    PreProcess(PreProcessTask),
    File(FileTask),
    FsCli(FsCliTask),
}

impl TaskKind {
    pub fn keyword(&self) -> &'static str {
        match self {
            TaskKind::Template(_) => "template",
            TaskKind::XmlParams(_) => "xml_params",
            TaskKind::PreProcess(_) => "preprocess",
            TaskKind::File(_) => "file",
            TaskKind::FsCli(_) => "fs_cli",
        }
    }
}

/// A task: exactly one of `template`, `xml_params`, `preprocess`, `file`, `fs_cli`, with
/// the keys every kind shares.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Task")]
#[schemars(extend("oneOf" = [
    {"required": ["template"]},
    {"required": ["xml_params"]},
    {"required": ["preprocess"]},
    {"required": ["file"]},
    {"required": ["fs_cli"]}
]))]
pub(super) struct RawTask {
    /// Shown in reports, named by `on_change` (default `task N`); unique in its play.
    pub(super) name: Option<String>,
    /// An expression over the host's variables, as Ansible's `when`; false skips the task.
    when: Option<String>,
    /// Variables for this task only, over the host's (their values may be templates).
    #[serde(default)]
    vars: Vars,
    /// Let this task's destination be an absolute path outside the host's conf root.
    #[serde(default)]
    outside_conf_root: bool,
    template: Option<TemplateTask>,
    xml_params: Option<XmlParamsTask>,
    preprocess: Option<PreProcessTask>,
    file: Option<FileTask>,
    fs_cli: Option<FsCliTask>,
    /// `--tags` / `--skip-tags` select tasks by these (Ansible's `always`, `never` too).
    #[serde(default)]
    tags: Option<Tags>,
    /// Run the task once per item: a list, or one `{{ expression }}` naming a list.
    #[serde(rename = "loop", default)]
    #[schemars(schema_with = "loop_schema")]
    looping: Option<serde_json::Value>,
    loop_control: Option<LoopControl>,
    /// With `loop`: files this task wrote for items that are gone are removed.
    #[serde(default)]
    prune: bool,
}

/// `tags: web` or `tags: [web, db]` (a comma-separated string too, as Ansible takes it).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
enum Tags {
    One(String),
    Many(Vec<String>),
}

fn loop_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"anyOf": [{"type": "array"}, {"type": "string", "pattern": "^\\s*\\{\\{.*\\}\\}\\s*$"}]})
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoopControl {
    /// The name of the loop variable (default `item`), for loops inside included templates.
    pub loop_var: Option<String>,
    /// What to show for each item (a template), instead of the item itself.
    pub label: Option<String>,
}

/// What a task loops over.
#[derive(Debug, Clone)]
pub enum LoopItems {
    /// A list written in the playbook.
    List(Vec<serde_json::Value>),
    /// An expression over the host's variables (`loop: "{{ users }}"` → `users`).
    Expr(String),
}

/// Ansible's `loop:` on a task: the task runs once per item, with the item in `loop_var`.
#[derive(Debug, Clone)]
pub struct Loop {
    pub items: LoopItems,
    pub var: String,
    pub label: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    /// A minijinja expression over the host's variables; the task is skipped when false.
    pub when: Option<String>,
    /// Variables for this task only (over the host's), e.g. one gateway template rendered
    /// twice with different names.
    pub vars: Vars,
    /// The destination may lie outside the conf root (an explicit opt-in per task).
    pub outside_conf_root: bool,
    pub kind: TaskKind,
    /// `tags:`, for `--tags` / `--skip-tags`.
    pub tags: Vec<String>,
    /// `loop:`: one run of the task per item, each its own managed file.
    pub looping: Option<Loop>,
    /// `prune: true` (with `loop`): the folder and file-name ending its `dest` names
    /// (`directory/default/{{ u.id }}.xml` → `directory/default`, `.xml`); files switchyard
    /// wrote there for items no longer in the loop are removed.
    pub prune: Option<(String, String)>,
}

impl RawTask {
    /// The task named `name`, checked; the error is the message its caller locates.
    pub(super) fn into_task(mut self, name: String, earlier: &[Task]) -> Result<Task, String> {
        let kind = self.kind()?;
        if let TaskKind::PreProcess(p) = &kind {
            if !crate::freeswitch::preprocess::KNOWN_CMDS.contains(&p.cmd.as_str()) {
                return Err(format!(
                    "pre-process cmd `{}` is not one of {}",
                    p.cmd,
                    crate::freeswitch::preprocess::KNOWN_CMDS.join(", ")
                ));
            }
        }
        if earlier.iter().any(|t| t.name == name) {
            return Err("two tasks of the play have this name".into());
        }
        let tags = match self.tags {
            None => Vec::new(),
            Some(Tags::One(s)) => s
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            Some(Tags::Many(v)) => v,
        };
        let looping = looping(self.looping, self.loop_control, &kind)?;
        let prune = if self.prune {
            let dest = match &kind {
                TaskKind::Template(t) => &t.dest,
                _ => return Err("`prune` is for looped `template` tasks".into()),
            };
            if looping.is_none() {
                return Err(
                    "`prune` needs `loop` (it removes the files of items that are gone)".into(),
                );
            }
            Some(prune_pattern(dest)?)
        } else {
            None
        };
        Ok(Task {
            name,
            when: self.when,
            vars: self.vars,
            outside_conf_root: self.outside_conf_root,
            kind,
            tags,
            looping,
            prune,
        })
    }

    /// The one kind the task names.
    fn kind(&mut self) -> Result<TaskKind, String> {
        let mut kinds = Vec::new();
        if let Some(t) = self.template.take() {
            kinds.push(TaskKind::Template(t));
        }
        if let Some(t) = self.xml_params.take() {
            kinds.push(TaskKind::XmlParams(t));
        }
        if let Some(t) = self.preprocess.take() {
            kinds.push(TaskKind::PreProcess(t));
        }
        if let Some(t) = self.file.take() {
            kinds.push(TaskKind::File(t));
        }
        if let Some(t) = self.fs_cli.take() {
            kinds.push(TaskKind::FsCli(t));
        }
        if kinds.len() != 1 {
            return Err(format!(
                "a task needs exactly one of `template`, `xml_params`, `preprocess`, `file`, `fs_cli` (found {})",
                if kinds.is_empty() {
                    "none".to_string()
                } else {
                    kinds.iter().map(|k| format!("`{}`", k.keyword())).collect::<Vec<_>>().join(", ")
                }
            ));
        }
        Ok(kinds.pop().expect("one kind"))
    }
}

/// `loop:` and `loop_control:`, checked.
fn looping(
    items: Option<serde_json::Value>,
    control: Option<LoopControl>,
    kind: &TaskKind,
) -> Result<Option<Loop>, String> {
    let items = match (items, control.is_some()) {
        (None, false) => return Ok(None),
        (None, true) => return Err("`loop_control` without `loop`".into()),
        (Some(items), _) => items,
    };
    let items = match items {
        serde_json::Value::Array(a) => LoopItems::List(a),
        serde_json::Value::String(s) => {
            let t = s.trim();
            match t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
                Some(expr) if !expr.contains("{{") => LoopItems::Expr(expr.trim().to_string()),
                _ => {
                    return Err(format!(
                    "`loop: {s}` is neither a list nor one `{{{{ expression }}}}` naming a list"
                ))
                }
            }
        }
        other => {
            return Err(format!(
                "`loop` takes a list or `{{{{ variable }}}}`, not `{other}`"
            ))
        }
    };
    let control = control.unwrap_or(LoopControl {
        loop_var: None,
        label: None,
    });
    let var = control.loop_var.unwrap_or_else(|| "item".into());
    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`loop_var: {var}` is not a variable name"));
    }
    if matches!(kind, TaskKind::FsCli(_)) {
        return Err(
            "`loop` on an `fs_cli` handler is not supported: write one handler per command".into(),
        );
    }
    Ok(Some(Loop {
        items,
        var,
        label: control.label,
    }))
}

/// The fixed folder and file-name ending of a pruned task's `dest`: the folder may not
/// depend on the item (else nothing says which files were the task's), and the name must
/// end in fixed text after its last `}}`.
fn prune_pattern(dest: &str) -> Result<(String, String), String> {
    let bad = || {
        format!("`prune` needs a `dest` whose folder is fixed and whose file name ends in fixed text, like `directory/default/{{{{ item.id }}}}.xml` (got `{dest}`)")
    };
    let first = dest.find("{{").ok_or_else(bad)?;
    let (dir, _) = dest[..first].rsplit_once('/').ok_or_else(bad)?;
    let last = dest.rfind("}}").ok_or_else(bad)? + 2;
    let suffix = &dest[last..];
    if dir.is_empty()
        || dir.contains("{%")
        || suffix.is_empty()
        || suffix.contains('/')
        || dest[first..].contains('/')
    {
        return Err(bad());
    }
    Ok((dir.trim_end_matches('/').to_string(), suffix.to_string()))
}
