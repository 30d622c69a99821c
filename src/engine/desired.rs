//! Per-host desired state: what every managed file should be, computed without touching
//! the host.
//!
//! A file's content is either rendered whole from a template, or the host's current content
//! with in-place edits (`xml_params`, `preprocess`) applied; several tasks may touch one
//! file, in play order. Owner, group and mode come from the tasks or the host's defaults.

use std::collections::BTreeMap;

use minijinja::value::Value;
use serde::Serialize;

use crate::inputs::inventory::{Host, Vars};
use crate::inputs::playbook::{LoopItems, Play, TaskKind};
use crate::inputs::template::{FromSerde, TemplateError, Templates};
use crate::secret::Redactor;

#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    #[error("host `{host}`, task `{task}`: {source}")]
    Template {
        host: String,
        task: String,
        source: Box<TemplateError>,
    },
    #[error("host `{host}`, task `{task}`: {message}")]
    Task {
        host: String,
        task: String,
        message: String,
    },
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
) -> Result<(String, String), String> {
    let d = dest.trim();
    if d.is_empty() || d.ends_with('/') {
        return Err(format!("destination `{dest}` is not a file path"));
    }
    if d.split('/').any(|c| c == ".." || c == ".") || d.contains("//") || d.contains('\0') {
        return Err(format!(
            "destination `{dest}` may not contain `.`, `..` or empty path components"
        ));
    }
    if let Some(abs) = d.strip_prefix('/') {
        let root = conf_root.trim_start_matches('/');
        match abs.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
            Some(rel) => Ok((rel.to_string(), d.to_string())),
            None if outside => Ok((d.to_string(), d.to_string())),
            None => Err(format!(
                "destination `{dest}` is outside the conf root `{conf_root}` (set `outside_conf_root: true` on the task if that is intended)"
            )),
        }
    } else {
        Ok((d.to_string(), format!("{conf_root}/{d}")))
    }
}

/// Build the desired state of one host for one play.
pub fn build(
    host: &Host,
    play: &Play,
    templates: &mut Templates,
) -> Result<HostDesired, DesiredError> {
    let vars = context(host, &play.vars);
    let host_ctx = Value::from_serde(&vars);
    let mut redactor = Redactor::from_vars(&vars);
    redactor.add_secrets(&host.secrets);
    let mut files: Vec<DesiredFile> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut handlers = Vec::new();
    let mut prune = Vec::new();
    let conf_root = host.freeswitch.conf_root.clone();

    for task in &play.tasks {
        let terr = |source| DesiredError::Template {
            host: host.name.clone(),
            task: task.name.clone(),
            source: Box::new(source),
        };
        let err = |message: String| DesiredError::Task {
            host: host.name.clone(),
            task: task.name.clone(),
            message,
        };
        // One run of the task, or one per item of its `loop`: (the item's variable, if any).
        let items: Vec<Option<(String, serde_json::Value)>> = match &task.looping {
            None => vec![None],
            Some(l) => {
                let list = match &l.items {
                    LoopItems::List(a) => a.clone(),
                    LoopItems::Expr(e) => {
                        match templates
                            .eval_value(&format!("loop of `{}`", task.name), e, &host_ctx)
                            .map_err(terr)?
                        {
                            serde_json::Value::Array(a) => a,
                            serde_json::Value::Null => {
                                return Err(err(format!("`loop`: `{e}` is undefined, not a list")))
                            }
                            other => {
                                return Err(err(format!(
                                    "`loop`: `{e}` is {}, not a list",
                                    json_kind(&other)
                                )))
                            }
                        }
                    }
                };
                list.into_iter()
                    .map(|item| Some((l.var.clone(), item)))
                    .collect()
            }
        };
        if let Some((dir, suffix)) = &task.prune {
            let (_, abs) = resolve_dest(
                &conf_root,
                &format!("{dir}/x{suffix}"),
                task.outside_conf_root,
            )
            .map_err(err)?;
            let abs_dir = abs
                .rsplit_once('/')
                .map(|x| x.0.to_string())
                .unwrap_or_default();
            prune.push((abs_dir, suffix.clone(), task.name.clone()));
        }
        for (position, item) in items.into_iter().enumerate() {
            let mut vars = vars.clone();
            if let Some((var, value)) = &item {
                // Secrets inside items (a user's password) are masked like any other.
                let mut one = Vars::new();
                one.insert(var.clone(), value.clone());
                redactor.merge(&Redactor::from_vars(&one));
                vars.insert(var.clone(), value.clone());
            }
            let item_ctx = Value::from_serde(&vars);
            let ctx = if task.vars.is_empty() {
                item_ctx.clone()
            } else {
                // Task vars may refer to host vars (and the item): render them first.
                let mut v = vars.clone();
                for (k, val) in &task.vars {
                    let rendered = match val {
                        serde_json::Value::String(s) => serde_json::Value::String(
                            templates
                                .render_str(
                                    &format!("task `{}` var `{k}`", task.name),
                                    s,
                                    &item_ctx,
                                )
                                .map_err(terr)?,
                        ),
                        other => other.clone(),
                    };
                    if crate::secret::is_secret_name(k) {
                        if let Some(s) = rendered.as_str() {
                            redactor.add(s);
                        }
                    }
                    v.insert(k.clone(), rendered);
                }
                // `-e` wins over task vars too (Ansible's extra variables).
                v.extend(host.extra.clone());
                Value::from_serde(&v)
            };
            // The task as reports name it: with a short, masked label per item.
            let shown = match (&task.looping, &item) {
                (Some(l), Some((_, value))) => {
                    let label = match &l.label {
                        Some(t) => templates
                            .render_str(&format!("label of `{}`", task.name), t, &ctx)
                            .map_err(terr)?,
                        None => default_label(value, position),
                    };
                    let label = redactor.redact(&label);
                    let label: String = if label.chars().count() > 40 {
                        format!("{}...", label.chars().take(40).collect::<String>())
                    } else {
                        label
                    };
                    format!("{} ({label})", task.name)
                }
                _ => task.name.clone(),
            };
            let err = |message: String| DesiredError::Task {
                host: host.name.clone(),
                task: shown.clone(),
                message,
            };
            if let Some(w) = &task.when {
                if !templates
                    .eval_bool(&format!("when of `{}`", task.name), w, &ctx)
                    .map_err(terr)?
                {
                    continue;
                }
            }
            let render = |s: &str| templates.render_str(&format!("task `{}`", shown), s, &ctx);
            let (dest, owner, group, mode) = match &task.kind {
                TaskKind::Template(t) => (&t.dest, &t.owner, &t.group, t.mode),
                TaskKind::XmlParams(t) => (&t.dest, &t.owner, &t.group, t.mode),
                TaskKind::PreProcess(t) => (&t.dest, &t.owner, &t.group, t.mode),
                TaskKind::File(t) => (&t.dest, &t.owner, &t.group, t.mode),
                TaskKind::FsCli(f) => {
                    handlers.push(Handler {
                        task: task.name.clone(),
                        command: render(&f.command).map_err(terr)?,
                        on_change: f.on_change.clone(),
                    });
                    continue;
                }
            };
            let dest = render(dest).map_err(terr)?;
            let (rel, path) =
                resolve_dest(&conf_root, &dest, task.outside_conf_root).map_err(err)?;
            if let Some((dir, suffix)) = &task.prune {
                let inside = rel
                    .rsplit_once('/')
                    .is_some_and(|(d, name)| d == dir && name.ends_with(suffix.as_str()));
                if !inside {
                    return Err(err(format!(
                        "`{dest}` is not a `{suffix}` file directly in `{dir}`, where `prune` looks"
                    )));
                }
            }
            let i = *index.entry(path.clone()).or_insert_with(|| {
                files.push(DesiredFile {
                    rel: rel.clone(),
                    path: path.clone(),
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
            f.tasks.push(shown.clone());
            if let Some(o) = owner {
                f.owner = Some(render(o).map_err(terr)?);
            }
            if let Some(g) = group {
                f.group = Some(render(g).map_err(terr)?);
            }
            if let Some(m) = mode {
                f.mode = Some(m.0);
            }
            match &task.kind {
                TaskKind::Template(t) => {
                    let text = templates.render_file(&t.src, &ctx).map_err(terr)?;
                    if rel.ends_with(".xml") {
                        crate::inputs::template::check_well_formed(&t.src, &text).map_err(terr)?;
                    }
                    // A template replaces whatever earlier edits did.
                    f.base = Some(text);
                    f.edits.clear();
                    // Whole files written by switchyard default to the host's owner and 0640:
                    // gateway files hold trunk passwords.
                    f.owner.get_or_insert_with(|| host.freeswitch.owner.clone());
                    f.group.get_or_insert_with(|| host.freeswitch.group.clone());
                    f.mode.get_or_insert(0o640);
                }
                TaskKind::XmlParams(t) => {
                    for (name, value) in &t.params {
                        let value = render(&value.0).map_err(terr)?;
                        if crate::secret::is_secret_name(name) {
                            redactor.add(&value);
                        }
                        f.edits.push(Edit::Param {
                            section: t.section.clone(),
                            name: name.clone(),
                            value,
                        });
                    }
                }
                TaskKind::PreProcess(t)
                    if t.state == crate::inputs::playbook::FileState::Absent =>
                {
                    for name in t.vars.keys() {
                        f.edits.push(Edit::PreProcessRemove {
                            cmd: t.cmd.clone(),
                            name: name.clone(),
                        });
                    }
                }
                TaskKind::PreProcess(t) => {
                    for (name, value) in &t.vars {
                        let value = render(&value.0).map_err(terr)?;
                        if let Some(what) = crate::freeswitch::preprocess::unsafe_data(&value) {
                            return Err(err(format!("value of `{name}` contains {what}, which a pre-process line cannot carry")));
                        }
                        if crate::secret::is_secret_name(name) {
                            redactor.add(&value);
                        }
                        f.edits.push(Edit::PreProcess {
                            cmd: t.cmd.clone(),
                            name: name.clone(),
                            value,
                        });
                    }
                }
                TaskKind::File(t) if t.state == crate::inputs::playbook::FileState::Absent => {
                    f.absent = true;
                }
                TaskKind::File(_) | TaskKind::FsCli(_) => {}
            }
        }
    }
    if let Some(f) = files
        .iter()
        .find(|f| f.absent && (f.base.is_some() || !f.edits.is_empty()))
    {
        return Err(DesiredError::Task {
            host: host.name.clone(),
            task: f.tasks.last().cloned().unwrap_or_default(),
            message: format!(
                "{}: tasks `{}` both write and remove it",
                f.rel,
                f.tasks.join("`, `")
            ),
        });
    }
    Ok(HostDesired {
        host: host.name.clone(),
        conf_root,
        files,
        handlers,
        redactor,
        prune,
    })
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
pub fn apply_edits(base: &str, edits: &[Edit]) -> Result<String, String> {
    let mut text = base.to_string();
    for e in edits {
        text = match e {
            Edit::Param {
                section,
                name,
                value,
            } => crate::freeswitch::xml_param::set_param(&text, section, name, value)
                .map_err(|e| format!("cannot set param `{name}`: {e}"))?,
            Edit::PreProcess { cmd, name, value } => {
                crate::freeswitch::preprocess::ensure(&text, cmd, name, value)
                    .map_err(|e| e.to_string())?
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
}
