//! Per-host desired state: what every managed file should be, computed without touching
//! the host.
//!
//! A file's content is either rendered whole from a template, or the host's current content
//! with in-place edits (`xml_params`, `preprocess`) applied; several tasks may touch one
//! file, in play order. Owner, group and mode come from the tasks or the host's defaults.
//!
//! [`build`] walks the play (loops, `when`, variables, labels) and hands each run to its
//! task kind's behaviour, one file per kind under `desired/` (`task.rs` says why there).

use std::collections::BTreeMap;

use minijinja::value::Value;
use serde::Serialize;

use crate::freeswitch::preprocess::PreProcessError;
use crate::freeswitch::xml_param::XmlParamError;
use crate::inputs::inventory::{Host, Vars};
use crate::inputs::playbook::{LoopItems, Play, Task};
use crate::inputs::template::{FromSerde, TemplateError, Templates};
use crate::secret::Redactor;

mod file;
mod fs_cli;
mod preprocess;
mod task;
mod template;
mod xml_params;

use task::{behaviour, Cx, Destination, Reload};

#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    #[error("host `{host}`, task `{task}`: {source}")]
    Template {
        host: String,
        task: String,
        source: Box<TemplateError>,
    },
    #[error("host `{host}`, task `{task}`: {problem}")]
    Task {
        host: String,
        task: String,
        problem: TaskProblem,
    },
}

/// What is wrong with one task on one host (named by [`DesiredError::Task`]).
#[derive(Debug, thiserror::Error)]
pub enum TaskProblem {
    #[error("`loop`: `{expr}` is {what}, not a list")]
    LoopNotAList { expr: String, what: &'static str },
    #[error(transparent)]
    Destination(#[from] DestinationError),
    #[error("`{dest}` is not a `{suffix}` file directly in `{dir}`, where `prune` looks")]
    OutsidePrune {
        dest: String,
        suffix: String,
        dir: String,
    },
    #[error(transparent)]
    PreProcess(#[from] PreProcessError),
    #[error("{rel}: tasks `{}` both write and remove it", tasks.join("`, `"))]
    WriteAndRemove { rel: String, tasks: Vec<String> },
}

/// A task's `dest` that names no file switchyard may manage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("destination `{0}` is not a file path")]
    NotAFile(String),
    #[error("destination `{0}` may not contain `.`, `..` or empty path components")]
    Relative(String),
    #[error("destination `{dest}` is outside the conf root `{conf_root}` (set `outside_conf_root: true` on the task if that is intended)")]
    OutsideConfRoot { dest: String, conf_root: String },
}

/// Why a file's in-place edits cannot be applied to its content.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot set param `{name}`: {source}")]
    Param { name: String, source: XmlParamError },
    #[error(transparent)]
    PreProcess(#[from] PreProcessError),
}

/// An in-place edit of an existing file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "edit", rename_all = "snake_case")]
pub enum Edit {
    Param {
        section: String,
        name: String,
        value: String,
    },
    PreProcess {
        cmd: String,
        name: String,
        value: String,
    },
    /// Remove the `cmd` definitions of `name`.
    PreProcessRemove { cmd: String, name: String },
}

#[derive(Debug, Clone)]
pub struct DesiredFile {
    /// Path relative to the conf root, `/`-separated (absolute when outside it).
    pub rel: String,
    /// Absolute path on the host.
    pub path: String,
    /// Whole content from a template; `None` means "the host's current content".
    pub base: Option<String>,
    pub edits: Vec<Edit>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
    /// Tasks that touch this file, in order.
    pub tasks: Vec<String>,
    /// A `file` task with `state: absent`: the file must not exist.
    pub absent: bool,
}

/// A handler-style `fs_cli` task.
#[derive(Debug, Clone, Serialize)]
pub struct Handler {
    pub task: String,
    pub command: String,
    /// Tasks that trigger it; empty: any.
    pub on_change: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HostDesired {
    pub host: String,
    pub conf_root: String,
    pub files: Vec<DesiredFile>,
    pub handlers: Vec<Handler>,
    pub redactor: Redactor,
    /// Folders where files of looped `prune` tasks live: (absolute folder, file-name
    /// ending, task).
    pub prune: Vec<(String, String, String)>,
}

impl HostDesired {
    /// Files switchyard wrote (per the host's state record, `written`) under a pruned
    /// task's folder that no item asks for any more: to be removed. Only direct children
    /// of the folder with the task's file-name ending are candidates.
    pub fn stale<'a>(&self, written: impl Iterator<Item = &'a String>) -> Vec<DesiredFile> {
        let mut out: Vec<DesiredFile> = Vec::new();
        for path in written {
            for (dir, suffix, task) in &self.prune {
                let Some(name) = path
                    .strip_prefix(dir.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                else {
                    continue;
                };
                let ok = name.len() > suffix.len()
                    && name.ends_with(suffix.as_str())
                    && !name.contains('/')
                    && !name.starts_with('.');
                if !ok
                    || self.files.iter().any(|f| &f.path == path)
                    || out.iter().any(|f| &f.path == path)
                {
                    continue;
                }
                let rel = path
                    .strip_prefix(self.conf_root.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                    .unwrap_or(path)
                    .to_string();
                out.push(DesiredFile {
                    rel,
                    path: path.clone(),
                    base: None,
                    edits: Vec::new(),
                    owner: None,
                    group: None,
                    mode: None,
                    tasks: vec![format!("{task} (item gone)")],
                    absent: true,
                });
            }
        }
        out
    }
}

/// Template context: play vars are defaults, inventory vars override them (the inventory
/// says what differs per host), plus `inventory_hostname` and `group_names`.
pub fn context(host: &Host, play_vars: &Vars) -> Vars {
    let mut vars = play_vars.clone();
    vars.extend(host.vars.clone());
    vars.insert("inventory_hostname".into(), host.name.clone().into());
    vars.insert(
        "group_names".into(),
        host.groups
            .iter()
            .filter(|g| *g != "all")
            .cloned()
            .collect::<Vec<_>>()
            .into(),
    );
    vars.insert(
        "freeswitch_conf_root".into(),
        host.freeswitch.conf_root.clone().into(),
    );
    vars
}

/// Resolve `dest` against the conf root, refusing escapes (an absolute path elsewhere only
/// with `outside`).
pub fn resolve_dest(
    conf_root: &str,
    dest: &str,
    outside: bool,
) -> Result<(String, String), DestinationError> {
    let d = dest.trim();
    if d.is_empty() || d.ends_with('/') {
        return Err(DestinationError::NotAFile(dest.to_string()));
    }
    if d.split('/').any(|c| c == ".." || c == ".") || d.contains("//") || d.contains('\0') {
        return Err(DestinationError::Relative(dest.to_string()));
    }
    if let Some(abs) = d.strip_prefix('/') {
        let root = conf_root.trim_start_matches('/');
        match abs.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
            Some(rel) => Ok((rel.to_string(), d.to_string())),
            None if outside => Ok((d.to_string(), d.to_string())),
            None => Err(DestinationError::OutsideConfRoot {
                dest: dest.to_string(),
                conf_root: conf_root.to_string(),
            }),
        }
    } else {
        Ok((d.to_string(), format!("{conf_root}/{d}")))
    }
}

/// Build the desired state of one host for one play: each task's runs (one, or one per
/// loop item) in play order, each handed to its kind's behaviour (`desired/task.rs`).
pub fn build(
    host: &Host,
    play: &Play,
    templates: &mut Templates,
) -> Result<HostDesired, DesiredError> {
    let vars = context(host, &play.vars);
    let mut redactor = Redactor::from_vars(&vars);
    redactor.add_secrets(&host.secrets);
    let mut b = Builder {
        host,
        templates,
        vars,
        redactor,
        files: Vec::new(),
        index: BTreeMap::new(),
        handlers: Vec::new(),
        prune: Vec::new(),
    };
    for task in &play.tasks {
        b.task(task)?;
    }
    b.finish()
}

/// The desired state of one host while its play's tasks are added to it.
struct Builder<'a> {
    host: &'a Host,
    templates: &'a mut Templates,
    /// The host's template variables ([`context`]).
    vars: Vars,
    redactor: Redactor,
    files: Vec<DesiredFile>,
    /// Absolute path → position in `files`: several tasks may touch one file.
    index: BTreeMap<String, usize>,
    handlers: Vec<Handler>,
    prune: Vec<(String, String, String)>,
}

/// One run of a task: the loop variable and its item, or `None` for a task without `loop`.
type Item = Option<(String, serde_json::Value)>;

impl Builder<'_> {
    fn task(&mut self, task: &Task) -> Result<(), DesiredError> {
        let items = self.items(task)?;
        if let Some((dir, suffix)) = &task.prune {
            let (_, abs) = resolve_dest(
                &self.host.freeswitch.conf_root,
                &format!("{dir}/x{suffix}"),
                task.outside_conf_root,
            )
            .map_err(|e| self.fail(&task.name, e))?;
            let abs_dir = abs
                .rsplit_once('/')
                .map(|x| x.0.to_string())
                .unwrap_or_default();
            self.prune
                .push((abs_dir, suffix.clone(), task.name.clone()));
        }
        for (position, item) in items.into_iter().enumerate() {
            self.run(task, position, item)?;
        }
        Ok(())
    }

    /// The task's runs: one, or one per item of its `loop`.
    fn items(&self, task: &Task) -> Result<Vec<Item>, DesiredError> {
        let Some(l) = &task.looping else {
            return Ok(vec![None]);
        };
        let list = match &l.items {
            LoopItems::List(a) => a.clone(),
            LoopItems::Expr(expr) => {
                let host_ctx = Value::from_serde(&self.vars);
                let not_a_list = |what| TaskProblem::LoopNotAList {
                    expr: expr.clone(),
                    what,
                };
                match self
                    .templates
                    .eval_value(&format!("loop of `{}`", task.name), expr, &host_ctx)
                    .map_err(|e| self.template_error(&task.name, e))?
                {
                    serde_json::Value::Array(a) => a,
                    serde_json::Value::Null => {
                        return Err(self.fail(&task.name, not_a_list("undefined")))
                    }
                    other => return Err(self.fail(&task.name, not_a_list(json_kind(&other)))),
                }
            }
        };
        Ok(list
            .into_iter()
            .map(|item| Some((l.var.clone(), item)))
            .collect())
    }

    /// One run of a task: its variables, its `when`, then its kind's contribution.
    fn run(&mut self, task: &Task, position: usize, item: Item) -> Result<(), DesiredError> {
        let ctx = self.run_context(task, &item)?;
        let shown = self.shown(task, position, &item, &ctx)?;
        if let Some(w) = &task.when {
            if !self
                .templates
                .eval_bool(&format!("when of `{}`", task.name), w, &ctx)
                .map_err(|e| self.template_error(&task.name, e))?
            {
                return Ok(());
            }
        }
        let kind = behaviour(&task.kind);
        let mut cx = Cx {
            host: self.host,
            templates: self.templates,
            ctx: &ctx,
            redactor: &mut self.redactor,
            task: &task.name,
            shown: &shown,
        };
        if let Reload::Handler { command, on_change } = kind.reload() {
            self.handlers.push(Handler {
                task: task.name.clone(),
                command: cx.render(command)?,
                on_change: on_change.to_vec(),
            });
        }
        let Some(d) = kind.destination() else {
            return Ok(());
        };
        let file = place(&mut self.files, &mut self.index, task, &d, &cx)?;
        kind.contribute(file, &mut cx)
    }

    /// The variables of one run: the host's, the item (its secrets masked), then the task's
    /// own (rendered over those) and `-e` over all.
    fn run_context(&mut self, task: &Task, item: &Item) -> Result<Value, DesiredError> {
        let mut vars = self.vars.clone();
        if let Some((var, value)) = item {
            // Secrets inside items (a user's password) are masked like any other.
            let mut one = Vars::new();
            one.insert(var.clone(), value.clone());
            self.redactor.merge(&Redactor::from_vars(&one));
            vars.insert(var.clone(), value.clone());
        }
        let item_ctx = Value::from_serde(&vars);
        if task.vars.is_empty() {
            return Ok(item_ctx);
        }
        // Task vars may refer to host vars (and the item): render them first.
        for (k, val) in &task.vars {
            let rendered = match val {
                serde_json::Value::String(s) => serde_json::Value::String(
                    self.templates
                        .render_str(&format!("task `{}` var `{k}`", task.name), s, &item_ctx)
                        .map_err(|e| self.template_error(&task.name, e))?,
                ),
                other => other.clone(),
            };
            if crate::secret::is_secret_name(k) {
                if let Some(s) = rendered.as_str() {
                    self.redactor.add(s);
                }
            }
            vars.insert(k.clone(), rendered);
        }
        // `-e` wins over task vars too (Ansible's extra variables).
        vars.extend(self.host.extra.clone());
        Ok(Value::from_serde(&vars))
    }

    /// The task as reports name it: with a short, masked label per item.
    fn shown(
        &self,
        task: &Task,
        position: usize,
        item: &Item,
        ctx: &Value,
    ) -> Result<String, DesiredError> {
        let (Some(l), Some((_, value))) = (&task.looping, item) else {
            return Ok(task.name.clone());
        };
        let label = match &l.label {
            Some(t) => self
                .templates
                .render_str(&format!("label of `{}`", task.name), t, ctx)
                .map_err(|e| self.template_error(&task.name, e))?,
            None => default_label(value, position),
        };
        let label = self.redactor.redact(&label);
        let label: String = if label.chars().count() > 40 {
            format!("{}...", label.chars().take(40).collect::<String>())
        } else {
            label
        };
        Ok(format!("{} ({label})", task.name))
    }

    /// The desired state, refused when one file is both written and removed.
    fn finish(self) -> Result<HostDesired, DesiredError> {
        if let Some(f) = self
            .files
            .iter()
            .find(|f| f.absent && (f.base.is_some() || !f.edits.is_empty()))
        {
            return Err(self.fail(
                f.tasks.last().map(String::as_str).unwrap_or_default(),
                TaskProblem::WriteAndRemove {
                    rel: f.rel.clone(),
                    tasks: f.tasks.clone(),
                },
            ));
        }
        Ok(HostDesired {
            host: self.host.name.clone(),
            conf_root: self.host.freeswitch.conf_root.clone(),
            files: self.files,
            handlers: self.handlers,
            redactor: self.redactor,
            prune: self.prune,
        })
    }

    fn template_error(&self, task: &str, source: TemplateError) -> DesiredError {
        DesiredError::Template {
            host: self.host.name.clone(),
            task: task.to_string(),
            source: Box::new(source),
        }
    }

    fn fail(&self, task: &str, problem: impl Into<TaskProblem>) -> DesiredError {
        DesiredError::Task {
            host: self.host.name.clone(),
            task: task.to_string(),
            problem: problem.into(),
        }
    }
}

/// The file a run's destination names (found, or added in play order), with the task
/// recorded on it and the owner, group and mode it asks for.
fn place<'f>(
    files: &'f mut Vec<DesiredFile>,
    index: &mut BTreeMap<String, usize>,
    task: &Task,
    d: &Destination<'_>,
    cx: &Cx<'_>,
) -> Result<&'f mut DesiredFile, DesiredError> {
    let dest = cx.render(d.dest)?;
    let (rel, path) = resolve_dest(&cx.host.freeswitch.conf_root, &dest, task.outside_conf_root)
        .map_err(|e| cx.fail(e))?;
    if let Some((dir, suffix)) = &task.prune {
        let inside = rel
            .rsplit_once('/')
            .is_some_and(|(d, name)| d == dir && name.ends_with(suffix.as_str()));
        if !inside {
            return Err(cx.fail(TaskProblem::OutsidePrune {
                dest,
                suffix: suffix.clone(),
                dir: dir.clone(),
            }));
        }
    }
    let i = *index.entry(path.clone()).or_insert_with(|| {
        files.push(DesiredFile {
            rel,
            path,
            base: None,
            edits: Vec::new(),
            owner: None,
            group: None,
            mode: None,
            tasks: Vec::new(),
            absent: false,
        });
        files.len() - 1
    });
    let f = &mut files[i];
    f.tasks.push(cx.shown.to_string());
    if let Some(o) = d.owner {
        f.owner = Some(cx.render(o)?);
    }
    if let Some(g) = d.group {
        f.group = Some(cx.render(g)?);
    }
    if let Some(m) = d.mode {
        f.mode = Some(m.0);
    }
    Ok(f)
}

/// What a loop item is called when the task gives no `label`: a scalar itself; a mapping
/// by its `name`, `id`, `number` or `label`; else its position.
fn default_label(item: &serde_json::Value, index: usize) -> String {
    match item {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => item.to_string(),
        serde_json::Value::Object(o) => ["name", "id", "number", "label"]
            .iter()
            .find_map(|k| match o.get(*k) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(v @ serde_json::Value::Number(_)) => Some(v.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| format!("#{}", index + 1)),
        _ => format!("#{}", index + 1),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// Apply a file's edits to `base`.
pub fn apply_edits(base: &str, edits: &[Edit]) -> Result<String, EditError> {
    let mut text = base.to_string();
    for e in edits {
        text = match e {
            Edit::Param {
                section,
                name,
                value,
            } => crate::freeswitch::xml_param::set_param(&text, section, name, value).map_err(
                |source| EditError::Param {
                    name: name.clone(),
                    source,
                },
            )?,
            Edit::PreProcess { cmd, name, value } => {
                crate::freeswitch::preprocess::ensure(&text, cmd, name, value)?
            }
            Edit::PreProcessRemove { cmd, name } => {
                crate::freeswitch::preprocess::remove(&text, cmd, name)
            }
        };
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_stay_inside_the_conf_root() {
        let root = "/etc/freeswitch";
        assert_eq!(
            resolve_dest(root, "vars.xml", false).unwrap(),
            ("vars.xml".into(), "/etc/freeswitch/vars.xml".into())
        );
        assert_eq!(
            resolve_dest(root, "/etc/freeswitch/sip_profiles/external/w.xml", false)
                .unwrap()
                .0,
            "sip_profiles/external/w.xml"
        );
        assert!(resolve_dest(root, "/etc/passwd", false).is_err());
        assert!(resolve_dest(root, "/etc/freeswitchx/a.xml", false).is_err());
        assert!(resolve_dest(root, "../x.xml", false).is_err());
        assert!(resolve_dest(root, "a/../../x.xml", false).is_err());
        // An explicit opt-in allows an absolute path elsewhere, never `..`.
        assert_eq!(
            resolve_dest(root, "/etc/default/freeswitch", true)
                .unwrap()
                .1,
            "/etc/default/freeswitch"
        );
        assert!(resolve_dest(root, "/etc/../etc/passwd", true).is_err());
    }

    fn build_one(inventory: &str, playbook: &str) -> Result<HostDesired, DesiredError> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("switchyard-loop-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(
            dir.join("templates/user.xml.j2"),
            "<include><user id=\"{{ u.id }}\"><params><param name=\"password\" value=\"{{ u.password }}\"/></params></user></include>\n",
        )
        .unwrap();
        let inv =
            crate::inputs::inventory::Inventory::parse_str(&dir.join("i.yml"), inventory).unwrap();
        let pb =
            crate::inputs::playbook::Playbook::parse_str(&dir.join("p.yml"), playbook).unwrap();
        let mut t = Templates::new(pb.template_dirs());
        let r = build(&inv.hosts[0], &pb.plays[0], &mut t);
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    const INV: &str = "all:\n  hosts:\n    pbx1:\n      users:\n        - {id: \"1000\", password: s3cret-a}\n        - {id: \"1001\", password: s3cret-b, off: true}\n        - {id: \"1002\", password: s3cret-c}\n";

    #[test]
    fn a_loop_writes_one_file_per_item_with_when_per_item_and_masked_labels() {
        let d = build_one(INV, "- hosts: all\n  tasks:\n    - name: user\n      template: {src: user.xml.j2, dest: \"directory/default/{{ u.id }}.xml\"}\n      loop: \"{{ users }}\"\n      loop_control: {loop_var: u}\n      when: not (u.off | default(false))\n").unwrap();
        let rels: Vec<&str> = d.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            rels,
            ["directory/default/1000.xml", "directory/default/1002.xml"]
        );
        assert_eq!(d.files[0].tasks, ["user (1000)"]);
        assert!(d.files[1].base.as_deref().unwrap().contains("s3cret-c"));
        // Every item's password is a known secret, masked wherever it would show.
        assert_eq!(d.redactor.redact("s3cret-b"), "********");
        // A label naming a secret is masked too; a long one is cut.
        let d = build_one(INV, "- hosts: all\n  tasks:\n    - name: user\n      template: {src: user.xml.j2, dest: \"directory/default/{{ u.id }}.xml\"}\n      loop: \"{{ users }}\"\n      loop_control: {loop_var: u, label: \"{{ u.id }} {{ u.password }}\"}\n").unwrap();
        assert_eq!(d.files[0].tasks, ["user (1000 ********)"]);
    }

    #[test]
    fn extra_vars_win_over_task_vars() {
        let dir = std::env::temp_dir().join(format!("switchyard-extra-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(dir.join("templates/t.xml.j2"), "<x/>\n").unwrap();
        let mut inv = crate::inputs::inventory::Inventory::parse_str(
            &dir.join("i.yml"),
            "all:\n  hosts:\n    pbx1: {}\n",
        )
        .unwrap();
        let pb = crate::inputs::playbook::Playbook::parse_str(
            &dir.join("p.yml"),
            "- hosts: all\n  tasks:\n    - name: t\n      vars: {gw: task}\n      template: {src: t.xml.j2, dest: \"{{ gw }}.xml\"}\n",
        )
        .unwrap();
        let mut extra = Vars::new();
        extra.insert("gw".into(), "cli".into());
        inv.override_vars(&extra).unwrap();
        let mut t = Templates::new(pb.template_dirs());
        let d = build(&inv.hosts[0], &pb.plays[0], &mut t).unwrap();
        assert_eq!(d.files[0].rel, "cli.xml");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_loop_over_something_else_than_a_list_is_one_clear_error() {
        for (over, want) in [
            (
                "\"{{ users[0] }}\"",
                "`loop`: `users[0]` is a mapping, not a list",
            ),
            (
                "\"{{ nobody }}\"",
                "`loop`: `nobody` is undefined, not a list",
            ),
        ] {
            let e = build_one(INV, &format!("- hosts: all\n  tasks:\n    - name: user\n      template: {{src: user.xml.j2, dest: \"d/{{{{ item.id }}}}.xml\"}}\n      loop: {over}\n")).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("pbx1"), "{e}");
        }
        // Written in the playbook: refused when the playbook is read.
        let e = crate::inputs::playbook::Playbook::parse_str(
            std::path::Path::new("p.yml"),
            "- hosts: all\n  tasks:\n    - name: t\n      file: {dest: a.xml, state: absent}\n      loop: 5\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`loop` takes a list or `{{ variable }}`, not `5`"),
            "{e}"
        );
    }

    /// The errors are typed now; their words are what operators already read, unchanged.
    #[test]
    fn each_tasks_refusal_reads_as_before() {
        for (task, want) in [
            (
                "template: {src: user.xml.j2, dest: /etc/passwd}",
                "host `pbx1`, task `t`: destination `/etc/passwd` is outside the conf root `/usr/local/freeswitch/conf` (set `outside_conf_root: true` on the task if that is intended)",
            ),
            (
                "file: {dest: a/../b.xml}",
                "host `pbx1`, task `t`: destination `a/../b.xml` may not contain `.`, `..` or empty path components",
            ),
            (
                "xml_params: {dest: \"dir/\", params: {a: b}}",
                "host `pbx1`, task `t`: destination `dir/` is not a file path",
            ),
            (
                "preprocess: {vars: {v: \"a\\\"b\"}}",
                "host `pbx1`, task `t`: value of `v` contains a double quote, which a pre-process line cannot carry",
            ),
            (
                "template: {src: user.xml.j2, dest: \"d/{{ item.id }}.xml\"}\n      loop: [{id: \"x/1\", password: p}]\n      prune: true",
                "host `pbx1`, task `t (x/1)`: `d/x/1.xml` is not a `.xml` file directly in `d`, where `prune` looks",
            ),
        ] {
            let e = build_one(INV, &format!("- hosts: all\n  tasks:\n    - name: t\n      {task}\n"))
                .unwrap_err()
                .to_string();
            assert_eq!(e, want);
        }
        let e = build_one(INV, "- hosts: all\n  tasks:\n    - name: w\n      xml_params: {dest: a.xml, params: {x: y}}\n    - name: r\n      file: {dest: a.xml, state: absent}\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "host `pbx1`, task `r`: a.xml: tasks `w`, `r` both write and remove it"
        );
        // A handler writes no file, and its command is rendered over the host's variables.
        let d = build_one(INV, "- hosts: all\n  tasks:\n    - name: h\n      fs_cli: {command: \"reload {{ inventory_hostname }}\"}\n").unwrap();
        assert!(d.files.is_empty());
        assert_eq!(d.handlers[0].command, "reload pbx1");
    }
}
