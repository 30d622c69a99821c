//! Playbooks: plays of typed, idempotent tasks, read from YAML.
//!
//! A play's own keys are here; a task's fields, one struct per kind with [`TaskKind`] as
//! the one enum over them (the mini-redis `Command` shape), are in `playbook/task.rs`.
//! Unknown fields are refused at parse time with the file, line and column; a task that
//! names no kind or two kinds is refused with its name.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

use crate::inputs::inventory::Vars;
use crate::inputs::source::{self, SourceError};

pub mod call_test;
mod task;
use task::RawTask;
pub use task::{
    FileState, FileTask, FsCliTask, Loop, LoopControl, LoopItems, PreProcessTask, Task, TaskKind,
    TemplateTask, XmlParamsTask,
};

#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{}: play `{play}`, task `{task}`: {message}", path.display())]
    Task {
        path: PathBuf,
        play: String,
        task: String,
        message: String,
    },
    #[error("{}: play `{play}`: {message}", path.display())]
    Play {
        path: PathBuf,
        play: String,
        message: String,
    },
}

/// A YAML scalar taken as text: `10000`, `true` and `"10000"` all mean the string `10000`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Any {
            Text(String),
            Int(i64),
            Float(f64),
            Bool(bool),
        }
        Ok(Scalar(match Any::deserialize(d)? {
            Any::Text(s) => s,
            Any::Int(i) => i.to_string(),
            Any::Float(f) => f.to_string(),
            Any::Bool(b) => b.to_string(),
        }))
    }
}

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Text; a number or a boolean is taken as its text.",
            "type": ["string", "number", "boolean"]
        })
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// File permission bits, written as in Ansible: `"0640"`, `0640` or `416`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Scalar::deserialize(d)?.0;
        // A YAML `0640` without quotes arrives as the decimal 640 in YAML 1.2: read every
        // form as octal digits, which is what operators mean.
        let digits = s.trim_start_matches("0o");
        u32::from_str_radix(digits, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Mode)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an octal file mode")))
    }
}

impl JsonSchema for Mode {
    fn schema_name() -> Cow<'static, str> {
        "Mode".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "File permission bits in octal, as in Ansible: \"0640\" (quoted) or 0640.",
            "type": ["string", "integer"],
            "pattern": "^(0o)?[0-7]{1,4}$"
        })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// Which tasks a run selects (`--tags`, `--skip-tags`), with Ansible's special tags:
/// `always` runs unless skipped by name, `never` only when asked for by name, and `all`,
/// `tagged`, `untagged` select by whether a task has tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagFilter {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl TagFilter {
    pub fn is_empty(&self) -> bool {
        self.only.is_empty() && self.skip.is_empty()
    }

    pub fn selects(&self, task_tags: &[String]) -> bool {
        let has = |t: &str| task_tags.iter().any(|x| x == t);
        let named = |list: &[String]| {
            list.iter().any(|t| {
                has(t)
                    || (t == "tagged" && !task_tags.is_empty())
                    || (t == "untagged" && task_tags.is_empty())
            })
        };
        let wanted = if self.only.is_empty() {
            !has("never")
        } else {
            named(&self.only)
                || has("always")
                || (self.only.iter().any(|t| t == "all") && !has("never"))
        };
        wanted && !named(&self.skip)
    }
}

/// How many hosts a batch takes: `serial: 2`, `serial: "25%"`, or a list for canaries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum BatchSize {
    Count(usize),
    Percent(u32),
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Scalar::deserialize(d)?.0;
        BatchSize::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl BatchSize {
    pub fn parse(s: &str) -> Result<BatchSize, String> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            match p.trim().parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => Ok(BatchSize::Percent(p)),
                _ => Err(format!("`{s}` is not a percentage from 1% to 100%")),
            }
        } else {
            match t.parse::<usize>() {
                Ok(n) if n > 0 => Ok(BatchSize::Count(n)),
                _ => Err(format!(
                    "`{s}` is not a positive host count or a percentage"
                )),
            }
        }
    }

    /// Hosts in this batch out of `total` (Ansible rounds percentages down, minimum one).
    pub fn of(&self, total: usize) -> usize {
        match self {
            BatchSize::Count(n) => *n,
            BatchSize::Percent(p) => ((total * *p as usize) / 100).max(1),
        }
    }
}

/// `serial:` as one batch size or a list, each checked with a clear message.
#[derive(Debug, Clone)]
struct RawSerial(Vec<BatchSize>);

impl JsonSchema for RawSerial {
    fn schema_name() -> Cow<'static, str> {
        "Serial".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let one = json_schema!({
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^\\s*\\+?[0-9]+(\\s*%)?\\s*$"}
            ]
        });
        json_schema!({"anyOf": [one, {"type": "array", "items": one}]})
    }
}

impl<'de> Deserialize<'de> for RawSerial {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            One(Scalar),
            Many(Vec<Scalar>),
        }
        let items = match Shape::deserialize(d).map_err(|_| {
            serde::de::Error::custom("`serial` must be a count, a percentage or a list of them")
        })? {
            Shape::One(s) => vec![s],
            Shape::Many(v) => v,
        };
        items
            .iter()
            .map(|s| BatchSize::parse(&s.0).map_err(serde::de::Error::custom))
            .collect::<Result<_, _>>()
            .map(RawSerial)
    }
}

pub use crate::freeswitch::reload::Disruption;

/// The order a play takes its hosts in: the inventory's (default), sorted by name, or
/// shuffled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HostOrder {
    #[default]
    Inventory,
    Sorted,
    Shuffle,
}

/// After a change: how long to wait for every managed gateway to be healthy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifySettings {
    /// Seconds to wait for every managed gateway to reach its healthy state.
    #[serde(default = "default_verify_timeout")]
    pub timeout: f64,
    /// Seconds between two looks at the gateways.
    #[serde(default = "default_verify_interval")]
    pub interval: f64,
}

fn default_verify_timeout() -> f64 {
    30.0
}
fn default_verify_interval() -> f64 {
    1.0
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            timeout: default_verify_timeout(),
            interval: default_verify_interval(),
        }
    }
}

/// A play: tasks run on the hosts a pattern selects, in batches.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Play")]
struct RawPlay {
    /// Shown in reports (default `play N`).
    name: Option<String>,
    /// A host pattern over the inventory: `pbx`, `pbx:!pbx_eu`, `pbx-nyc-*`, `all`.
    hosts: String,
    /// Variables for every host of the play: defaults that the inventory overrides.
    #[serde(default)]
    #[schemars(with = "crate::inputs::inventory::HostVars")]
    vars: Vars,
    #[serde(default)]
    tasks: Vec<RawTask>,
    /// Batch size: a host count, a percentage (`"25%"`), or a list for canaries
    /// (`[1, "100%"]`).
    serial: Option<RawSerial>,
    /// Stop the rollout when more than this percentage of a batch's hosts failed (0-100).
    max_fail_percentage: Option<f64>,
    /// Stop the rollout at the first failed host.
    #[serde(default)]
    any_errors_fatal: bool,
    #[serde(default)]
    order: HostOrder,
    /// The most disruptive step the play may take: `none` (reloadxml, rescan, killgw),
    /// `profile` (sofia profile restarts) or `restart` (FreeSWITCH restarts); steps beyond
    /// it are reported pending.
    #[serde(default)]
    allow: Disruption,
    #[serde(default)]
    verify: VerifySettings,
    /// Seconds to wait for active calls to drain before a disruptive step.
    #[serde(default = "default_drain")]
    drain_timeout: f64,
    /// Route tests: where numbers must go on every host of the play.
    #[serde(default)]
    routes: Vec<RouteTest>,
    /// Lint rules this play overrules: rule → the reason (shown with every finding it
    /// allows). Not `allow:`, which is the disruption a play may cause (`none/profile/restart`).
    #[serde(default)]
    lint_allow: BTreeMap<String, String>,
    /// Test calls placed on each host after its change is applied and verified; a failed
    /// one rolls the host back (`switchyard call` for the shape of each).
    #[serde(default)]
    call_tests: Vec<call_test::CallTest>,
    /// The most the call tests may take per host, in seconds (required with `call_tests`).
    call_test_seconds: Option<u64>,
}

/// A route test: where `number` must go on every host of the play (checked by `lint` and
/// before `apply` pushes anything, with `switchyard route`'s evaluator).
#[derive(Debug, Clone, Deserialize, serde::Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteTest {
    /// The number dialled.
    pub number: Scalar,
    /// Dialled by this directory user (default: the host's lowest user id).
    pub from: Option<Scalar>,
    /// Or delivered by the provider through this gateway.
    pub from_trunk: Option<String>,
    pub expect: RouteExpect,
}

/// What a route test expects of the call's first attempt.
#[derive(Debug, Clone, Deserialize, serde::Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RouteExpect {
    /// `refused`: the call is answered with a refusal (or finds no route).
    Word(String),
    /// `{gateway: wavix, number: "12125551234"}` or `{user: "1000"}`.
    #[schemars(extend("additionalProperties" = false))]
    Target {
        gateway: Option<String>,
        number: Option<Scalar>,
        user: Option<Scalar>,
    },
}

fn default_drain() -> f64 {
    300.0
}

#[derive(Debug, Clone)]
pub struct Play {
    pub name: String,
    pub hosts: String,
    pub vars: Vars,
    pub tasks: Vec<Task>,
    pub serial: Vec<BatchSize>,
    pub max_fail_percentage: Option<f64>,
    pub any_errors_fatal: bool,
    pub order: HostOrder,
    pub allow: Disruption,
    pub verify: VerifySettings,
    pub drain_timeout: f64,
    /// Route tests (`routes:`), evaluated per host before anything is pushed.
    pub routes: Vec<RouteTest>,
    /// `lint_allow:` rule → reason: findings of these rules do not block, and say why.
    pub lint_allow: BTreeMap<String, String>,
    /// `call_tests:`, checked ([`call_test::check`]), and their budget in seconds.
    pub call_tests: Vec<call_test::CallTest>,
    pub call_test_seconds: u64,
}

impl Play {
    /// The play with only the tasks `filter` selects (`--tags`, `--skip-tags`).
    pub fn with_tags(&self, filter: &TagFilter) -> Play {
        Play {
            tasks: self
                .tasks
                .iter()
                .filter(|t| filter.selects(&t.tags))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

impl Playbook {
    pub fn load(path: &Path) -> Result<Playbook, PlaybookError> {
        let text = source::read_text(path)?;
        Playbook::parse_str(path, &text)
    }

    /// Parse playbook text; `path` names it in errors and locates its templates.
    pub fn parse_str(path: &Path, text: &str) -> Result<Playbook, PlaybookError> {
        let raw: Vec<RawPlay> = source::parse_yaml(path, text)?;
        let mut plays = Vec::new();
        for (i, rp) in raw.into_iter().enumerate() {
            let play_name = rp.name.clone().unwrap_or_else(|| format!("play {}", i + 1));
            let mut tasks: Vec<Task> = Vec::new();
            for (j, rt) in rp.tasks.into_iter().enumerate() {
                let task_name = rt.name.clone().unwrap_or_else(|| format!("task {}", j + 1));
                let task = rt.into_task(task_name.clone(), &tasks).map_err(|message| {
                    PlaybookError::Task {
                        path: path.to_path_buf(),
                        play: play_name.clone(),
                        task: task_name,
                        message,
                    }
                })?;
                tasks.push(task);
            }
            // Handler references must name real tasks: a typo would silently never fire.
            for t in &tasks {
                if let TaskKind::FsCli(f) = &t.kind {
                    for n in &f.on_change {
                        if !tasks.iter().any(|o| &o.name == n) {
                            return Err(PlaybookError::Task {
                                path: path.to_path_buf(),
                                play: play_name.clone(),
                                task: t.name.clone(),
                                message: format!(
                                    "`on_change` names `{n}`, which is no task of this play"
                                ),
                            });
                        }
                    }
                }
            }
            if let Some(p) = rp.max_fail_percentage {
                if !(0.0..=100.0).contains(&p) {
                    return Err(PlaybookError::Play {
                        path: path.to_path_buf(),
                        play: play_name,
                        message: format!("max_fail_percentage `{p}` is not between 0 and 100"),
                    });
                }
            }
            for t in &rp.routes {
                let ok = match &t.expect {
                    RouteExpect::Word(w) => w == "refused",
                    RouteExpect::Target {
                        gateway,
                        user,
                        number,
                    } => {
                        gateway.is_some() != user.is_some()
                            && (number.is_none() || gateway.is_some())
                    }
                };
                if !ok || (t.from.is_some() && t.from_trunk.is_some()) {
                    return Err(PlaybookError::Play {
                        path: path.to_path_buf(),
                        play: play_name,
                        message: format!(
                            "route test for `{}`: `expect` is `refused`, `{{gateway: NAME, number: N}}` (number optional) or `{{user: ID}}`, and a test is `from` a user or `from_trunk`, not both",
                            t.number.0
                        ),
                    });
                }
            }
            for (rule, reason) in &rp.lint_allow {
                let known = crate::freeswitch::lint::RULES
                    .iter()
                    .any(|(r, _)| r == rule);
                if !known || reason.trim().is_empty() {
                    return Err(PlaybookError::Play {
                        path: path.to_path_buf(),
                        play: play_name,
                        message: if known {
                            format!("`lint_allow: {rule}` needs a reason: `{rule}: why it is right here`")
                        } else {
                            format!("`lint_allow`: no lint rule is called `{rule}` (the rules are listed in README \"Lint\")")
                        },
                    });
                }
            }
            if let Err(message) = call_test::check(&rp.call_tests, rp.call_test_seconds, &rp.vars) {
                return Err(PlaybookError::Play {
                    path: path.to_path_buf(),
                    play: play_name,
                    message,
                });
            }
            plays.push(Play {
                name: play_name,
                hosts: rp.hosts,
                vars: rp.vars,
                tasks,
                serial: rp.serial.map(|s| s.0).unwrap_or_default(),
                max_fail_percentage: rp.max_fail_percentage,
                any_errors_fatal: rp.any_errors_fatal,
                order: rp.order,
                allow: rp.allow,
                verify: rp.verify,
                drain_timeout: rp.drain_timeout,
                routes: rp.routes,
                lint_allow: rp.lint_allow,
                call_tests: rp.call_tests,
                call_test_seconds: rp.call_test_seconds.unwrap_or(0),
            });
        }
        Ok(Playbook {
            path: path.to_path_buf(),
            plays,
        })
    }

    /// The JSON Schema of a playbook file (`switchyard schema playbook`), from the very
    /// types [`Playbook::parse_str`] reads; draft-07, what editors read best.
    pub fn json_schema() -> Schema {
        let mut s = schemars::generate::SchemaSettings::draft07()
            .into_generator()
            .into_root_schema_for::<Vec<RawPlay>>();
        s.insert("title".into(), "switchyard playbook".into());
        s.insert(
            "description".into(),
            "A list of plays, each of typed tasks (README \"Playbooks\").".into(),
        );
        s
    }

    /// Folders searched for template sources, in order.
    pub fn template_dirs(&self) -> Vec<PathBuf> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        vec![dir.join("templates"), dir.join("../templates"), dir]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_select_as_ansible_selects_them() {
        let f = |only: &[&str], skip: &[&str]| TagFilter {
            only: only.iter().map(|s| s.to_string()).collect(),
            skip: skip.iter().map(|s| s.to_string()).collect(),
        };
        let t = |tags: &[&str]| tags.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let none = f(&[], &[]);
        assert!(none.selects(&t(&[])) && none.selects(&t(&["users"])));
        assert!(!none.selects(&t(&["never"])), "never runs only when named");
        let users = f(&["users"], &[]);
        assert!(users.selects(&t(&["users", "x"])));
        assert!(!users.selects(&t(&["trunks"])) && !users.selects(&t(&[])));
        assert!(
            users.selects(&t(&["always"])),
            "always runs with any --tags"
        );
        assert!(f(&["never"], &[]).selects(&t(&["never"])));
        assert!(f(&["untagged"], &[]).selects(&t(&[])));
        assert!(!f(&["tagged"], &[]).selects(&t(&[])));
        assert!(!f(&["all"], &[]).selects(&t(&["never"])));
        let skip = f(&[], &["users"]);
        assert!(!skip.selects(&t(&["users"])) && skip.selects(&t(&["trunks"])));
        assert!(!f(&[], &["always"]).selects(&t(&["always"])));
    }

    fn parse(text: &str) -> Result<Playbook, PlaybookError> {
        let dir = std::env::temp_dir().join(format!(
            "sy-pb-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("play.yml");
        std::fs::write(&p, text).unwrap();
        Playbook::load(&p)
    }

    #[test]
    fn unknown_task_field_is_located() {
        let err = parse("- hosts: all\n  tasks:\n    - name: gw\n      template:\n        src: a\n        dest: b\n        mdoe: '0640'\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains(":7:9: "), "{text}");
        assert!(text.contains("unknown field `mdoe`"), "{text}");
    }

    #[test]
    fn task_needs_exactly_one_kind() {
        let err = parse("- hosts: all\n  tasks:\n    - name: both\n      file: {dest: a}\n      fs_cli: {command: reloadxml}\n").unwrap_err();
        assert!(err.to_string().contains("task `both`"), "{err}");
    }

    #[test]
    fn serial_and_modes() {
        let pb = parse("- hosts: all\n  serial: [1, \"10%\", \"100%\"]\n  tasks:\n    - file: {dest: a, mode: 0640}\n").unwrap();
        let play = &pb.plays[0];
        assert_eq!(
            play.serial,
            vec![
                BatchSize::Count(1),
                BatchSize::Percent(10),
                BatchSize::Percent(100)
            ]
        );
        assert_eq!(BatchSize::Percent(10).of(5), 1);
        match &play.tasks[0].kind {
            TaskKind::File(f) => assert_eq!(f.mode, Some(Mode(0o640))),
            _ => panic!(),
        }
    }
}
