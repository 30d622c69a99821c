//! The plan: desired state against gathered facts, computed by a pure function.
//!
//! Dry runs, drift checks and reviews are this same computation with nothing applied
//! after it; apply executes exactly what the plan says.

use serde::Serialize;

use crate::engine::desired::{apply_edits, DesiredFile, Edit, HostDesired};
use crate::engine::facts::FileFact;
use crate::freeswitch::reload::{self, Change, ReloadPlan};
use crate::freeswitch::{self, classify, FileKind};
use crate::host::state::HostState;
use crate::inputs::playbook::Disruption;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: {problem}")]
    File {
        path: String,
        #[source]
        problem: FileProblem,
    },
}

/// Why one managed file cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    /// The gather's sentence on why the file is not switchyard's to read or replace.
    #[error("{0}")]
    Unreadable(String),
    #[error("not UTF-8 text: cannot edit it in place")]
    NotUtf8,
    #[error("does not exist, and task{} `{}` only edit{} an existing file", if tasks.len() > 1 { "s" } else { "" }, tasks.join("`, `"), if tasks.len() > 1 { "" } else { "s" })]
    NothingToEdit { tasks: Vec<String> },
    /// An edit that cannot be applied (its own sentence).
    #[error(transparent)]
    Edit(#[from] crate::engine::desired::EditError),
    #[error(transparent)]
    NotWellFormed(#[from] Box<crate::inputs::template::TemplateError>),
    #[error("holds a secret, and mode {mode:04o} would let every user on the host read it: set `mode: \"0640\"` or tighter")]
    WorldReadableSecret { mode: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Ok,
    Changed,
    Created,
    /// Removed (`file: {state: absent}`).
    Removed,
}

impl std::fmt::Display for FileStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileStatus::Ok => "ok",
            FileStatus::Changed => "changed",
            FileStatus::Created => "created",
            FileStatus::Removed => "removed",
        })
    }
}

/// Why a file differs from what the playbook wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Difference {
    /// The host changed since switchyard last wrote the file (a hand edit, another tool).
    Drift,
    /// The host still holds what switchyard last wrote (or switchyard never wrote it): the
    /// playbook or inventory changed since.
    Pending,
}

#[derive(Debug, Clone, Serialize)]
pub struct FilePlan {
    pub rel: String,
    pub path: String,
    pub status: FileStatus,
    /// Set for files that differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<Difference>,
    pub content_changed: bool,
    /// Owner/group/mode corrections, e.g. `mode 0644 -> 0640`.
    pub meta_changes: Vec<String>,
    pub old_sha256: Option<String>,
    pub new_sha256: String,
    /// Unified diff with secrets masked (empty when the content is unchanged).
    pub diff: String,
    pub tasks: Vec<String>,
    /// The content (before or after) holds a secret: reports publish keyed digests for it
    /// ([`crate::digest`]), never its plain sha256.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// Remove the file instead of writing it (rolling back a file the apply created).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remove: bool,
    #[serde(skip)]
    pub old: Option<Vec<u8>>,
    #[serde(skip)]
    pub old_meta: Option<(String, String, u32)>,
    #[serde(skip)]
    pub new: Vec<u8>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// JSON: `"0640"`, as the playbook writes it and as `ls -l` people read it.
    #[serde(serialize_with = "octal_mode")]
    pub mode: Option<u32>,
}

/// A gateway the play manages on a host, and the state that means healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagedGateway {
    pub profile: String,
    pub name: String,
    pub registers: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostPlan {
    pub host: String,
    pub files: Vec<FilePlan>,
    pub reload: ReloadPlan,
    /// `fs_cli` handler commands triggered by this change.
    pub handlers: Vec<String>,
    pub gateways: Vec<ManagedGateway>,
    /// Pre-process variables switchyard has defined, per file, once this plan is applied
    /// (kept in the state record).
    pub vars_set: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl HostPlan {
    pub fn changed(&self) -> impl Iterator<Item = &FilePlan> {
        self.files.iter().filter(|f| f.status != FileStatus::Ok)
    }
    pub fn has_changes(&self) -> bool {
        self.changed().next().is_some()
    }
}

pub mod saved;

pub use crate::digest::sha256_hex;

fn octal_mode<S: serde::Serializer>(m: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.serialize_str(&format!("{m:04o}")),
        None => s.serialize_none(),
    }
}
pub use saved::SavedPlan;

/// Drift when the host's file is not what switchyard last wrote there; else pending (the
/// inputs changed).
fn difference_of(prior: Option<&HostState>, path: &str, old_sha256: Option<&str>) -> Difference {
    match prior.and_then(|p| p.files.get(path)) {
        Some(r) if Some(r.as_str()) != old_sha256 => Difference::Drift,
        _ => Difference::Pending,
    }
}

/// Whether any of `texts` holds a known secret or a password-like param's value.
fn holds_secret(desired: &HostDesired, texts: &[&str]) -> bool {
    texts
        .iter()
        .any(|t| desired.redactor.contains_known(t) || crate::secret::mask_secret_params(t) != *t)
}

/// Compute the plan of one host. Pure: no I/O.
///
/// `prior` is the host's state record: steps it still owes are folded into this plan.
pub fn plan(
    desired: &HostDesired,
    facts: &[FileFact],
    allow: Disruption,
    prior: Option<&HostState>,
) -> Result<HostPlan, PlanError> {
    assert_eq!(
        desired.files.len(),
        facts.len(),
        "one fact per desired file"
    );
    let mut files = Vec::new();
    let mut vars_set = prior.map(|p| p.vars.clone()).unwrap_or_default();
    for (d, fact) in desired.files.iter().zip(facts) {
        let edits = own_edits(d, vars_set.entry(d.path.clone()).or_default());
        let err = |problem: FileProblem| PlanError::File {
            path: d.path.clone(),
            problem,
        };
        let (old, old_meta) = match fact {
            FileFact::Missing => (None, None),
            FileFact::Present {
                owner,
                group,
                mode,
                content,
            } => (
                Some(content.clone()),
                Some((owner.clone(), group.clone(), *mode)),
            ),
            FileFact::Unreadable(m) => return Err(err(FileProblem::Unreadable(m.clone()))),
        };
        let before = Before {
            old,
            old_meta,
            prior,
        };
        if d.absent {
            // `state: absent`: nothing to do when it is already gone; else remove it.
            files.extend(plan_removal(desired, d, before));
        } else {
            files.push(plan_file(desired, d, &edits, before).map_err(err)?);
        }
    }

    let changes: Vec<Change> = files
        .iter()
        .filter(|f| f.content_changed)
        .map(|f| Change {
            rel: &f.rel,
            old: f.old.as_deref().and_then(|b| std::str::from_utf8(b).ok()),
            new: if f.remove {
                None
            } else {
                std::str::from_utf8(&f.new).ok()
            },
        })
        .collect();
    let owed = prior.map(|p| p.owed.as_slice()).unwrap_or(&[]);
    let reload = reload::plan(&changes, allow).with_owed(owed, allow);
    let handlers = handlers_to_run(desired, &files, &reload);
    let gateways = managed_gateways(
        files
            .iter()
            .map(|f| (f.rel.as_str(), std::str::from_utf8(&f.new).ok())),
    );
    vars_set.retain(|_, v| !v.is_empty());
    Ok(HostPlan {
        host: desired.host.clone(),
        files,
        reload,
        handlers,
        gateways,
        vars_set,
    })
}

/// A file's edits, with the removal of a pre-process variable kept only when switchyard
/// itself defined it there (`ours`, the state record's list for the file, updated).
fn own_edits(d: &DesiredFile, ours: &mut std::collections::BTreeSet<String>) -> Vec<Edit> {
    let edits: Vec<Edit> = d
        .edits
        .iter()
        .filter(|e| match e {
            Edit::PreProcessRemove { name, .. } => ours.contains(name),
            _ => true,
        })
        .cloned()
        .collect();
    for e in &d.edits {
        match e {
            Edit::PreProcess { name, .. } => {
                ours.insert(name.clone());
            }
            Edit::PreProcessRemove { name, .. } => {
                ours.remove(name);
            }
            _ => {}
        }
    }
    edits
}

/// The content the plan will want for `d` whatever the host holds (`None`: it depends on
/// the host's file: an edit in place, a removal, or the removal of a pre-process variable,
/// which the state record decides). The gather hashes the host's file against it and
/// brings the content only when it differs ([`crate::engine::facts::gather`]).
pub fn known_content(d: &DesiredFile) -> Option<String> {
    let removes_var = d
        .edits
        .iter()
        .any(|e| matches!(e, Edit::PreProcessRemove { .. }));
    match &d.base {
        Some(b) if !d.absent && !removes_var => apply_edits(b, &d.edits).ok(),
        _ => None,
    }
}

/// What the host has of one file, as gathered, and the state record.
struct Before<'a> {
    old: Option<Vec<u8>>,
    /// (owner, group, mode)
    old_meta: Option<(String, String, u32)>,
    prior: Option<&'a HostState>,
}

/// `state: absent`: the file's removal, or nothing when it is already gone.
fn plan_removal(desired: &HostDesired, d: &DesiredFile, before: Before<'_>) -> Option<FilePlan> {
    let old_bytes = before.old?;
    let text = String::from_utf8_lossy(&old_bytes).into_owned();
    let old_sha256 = Some(sha256_hex(&old_bytes));
    let difference = difference_of(before.prior, &d.path, old_sha256.as_deref());
    let secret = holds_secret(desired, &[&text]);
    Some(FilePlan {
        rel: d.rel.clone(),
        path: d.path.clone(),
        status: FileStatus::Removed,
        difference: Some(difference),
        content_changed: true,
        meta_changes: Vec::new(),
        old_sha256,
        new_sha256: String::new(),
        diff: crate::engine::diff::unified(
            &format!("{}:{}", desired.host, d.path),
            Some(&text),
            "",
            &desired.redactor,
        ),
        tasks: d.tasks.clone(),
        secret,
        remove: true,
        old: Some(old_bytes),
        old_meta: before.old_meta,
        new: Vec::new(),
        owner: None,
        group: None,
        mode: None,
    })
}

/// One file to be present: its new content (rendered, or edited in place), what changes,
/// and the owner and mode it ends with.
fn plan_file(
    desired: &HostDesired,
    d: &DesiredFile,
    edits: &[Edit],
    before: Before<'_>,
) -> Result<FilePlan, FileProblem> {
    let Before {
        old,
        old_meta,
        prior,
    } = before;
    let (old_text, new_text) = new_content(d, edits, old.as_deref())?;
    // A file that holds a secret is never made readable by every user.
    let mode_after = d.mode.or(old_meta.as_ref().map(|m| m.2)).unwrap_or(0o640);
    if mode_after & 0o007 != 0 && desired.redactor.contains_known(&new_text) {
        return Err(FileProblem::WorldReadableSecret { mode: mode_after });
    }
    let new = new_text.into_bytes();
    let content_changed = old.as_deref() != Some(new.as_slice());
    let meta_changes = meta_changes(d, old_meta.as_ref());
    let status = if old.is_none() {
        FileStatus::Created
    } else if content_changed || !meta_changes.is_empty() {
        FileStatus::Changed
    } else {
        FileStatus::Ok
    };
    let old_sha256 = old.as_deref().map(sha256_hex);
    let difference =
        (status != FileStatus::Ok).then(|| difference_of(prior, &d.path, old_sha256.as_deref()));
    let diff = if content_changed {
        match (&old, &old_text) {
            (Some(_), None) => "(binary content replaced)\n".to_string(),
            _ => crate::engine::diff::unified(
                &format!("{}:{}", desired.host, d.path),
                old_text.as_deref(),
                std::str::from_utf8(&new).expect("built from a String"),
                &desired.redactor,
            ),
        }
    } else {
        String::new()
    };
    // Perms of an existing file are kept unless a task sets them; new files get the
    // host's owner and a mode that never exposes a secret.
    let (owner, group, mode) = match &old_meta {
        Some((o, g, m)) => (
            Some(d.owner.clone().unwrap_or_else(|| o.clone())),
            Some(d.group.clone().unwrap_or_else(|| g.clone())),
            Some(d.mode.unwrap_or(*m)),
        ),
        None => (
            d.owner.clone(),
            d.group.clone(),
            Some(d.mode.unwrap_or(0o640)),
        ),
    };
    let texts: Vec<&str> = [old_text.as_deref(), std::str::from_utf8(&new).ok()]
        .into_iter()
        .flatten()
        .collect();
    let secret = holds_secret(desired, &texts);
    Ok(FilePlan {
        rel: d.rel.clone(),
        path: d.path.clone(),
        status,
        difference,
        content_changed,
        meta_changes,
        old_sha256,
        new_sha256: sha256_hex(&new),
        diff,
        tasks: d.tasks.clone(),
        secret,
        remove: false,
        old,
        old_meta,
        new,
        owner,
        group,
        mode,
    })
}

/// The file's current text (`None`: absent, or binary and replaced whole) and its text
/// after the run, checked well-formed when switchyard changed XML.
fn new_content(
    d: &DesiredFile,
    edits: &[Edit],
    old: Option<&[u8]>,
) -> Result<(Option<String>, String), FileProblem> {
    let old_text = match old {
        Some(b) => match std::str::from_utf8(b) {
            Ok(t) => Some(t.to_string()),
            Err(_) if d.base.is_some() && d.edits.is_empty() => None,
            Err(_) => return Err(FileProblem::NotUtf8),
        },
        None => None,
    };
    let new_text = match (&d.base, &old_text) {
        (Some(b), _) => apply_edits(b, edits).map_err(FileProblem::Edit)?,
        (None, Some(cur)) => apply_edits(cur, edits).map_err(FileProblem::Edit)?,
        (None, None) if old.is_none() => {
            return Err(FileProblem::NothingToEdit {
                tasks: d.tasks.clone(),
            })
        }
        (None, None) => unreachable!("non-UTF-8 edits are refused above"),
    };
    if d.rel.ends_with(".xml")
        && (!d.edits.is_empty() || d.base.is_some())
        && Some(&new_text) != old_text.as_ref()
    {
        crate::inputs::template::check_well_formed(&d.rel, &new_text).map_err(Box::new)?;
    }
    Ok((old_text, new_text))
}

/// The owner, group and mode a task sets that differ from the file's, in words.
fn meta_changes(d: &DesiredFile, old_meta: Option<&(String, String, u32)>) -> Vec<String> {
    let mut out = Vec::new();
    let Some((o, g, m)) = old_meta else {
        return out;
    };
    if let Some(w) = d.owner.as_ref().filter(|w| *w != o) {
        out.push(format!("owner {o} -> {w}"));
    }
    if let Some(w) = d.group.as_ref().filter(|w| *w != g) {
        out.push(format!("group {g} -> {w}"));
    }
    if let Some(w) = d.mode.filter(|w| w != m) {
        out.push(format!("mode {m:04o} -> {w:04o}"));
    }
    out
}

/// The handlers to run: those whose tasks changed a file (any change, for a handler that
/// names no task), minus commands the reload plan already runs.
fn handlers_to_run(desired: &HostDesired, files: &[FilePlan], reload: &ReloadPlan) -> Vec<String> {
    let changed_tasks: Vec<&String> = files
        .iter()
        .filter(|f| f.status != FileStatus::Ok)
        .flat_map(|f| f.tasks.iter())
        .collect();
    let planned: Vec<String> = reload.steps.iter().map(|s| s.action.to_string()).collect();
    desired
        .handlers
        .iter()
        .filter(|h| {
            if h.on_change.is_empty() {
                !changed_tasks.is_empty()
            } else {
                (h.on_change.iter()).any(|n| changed_tasks.iter().any(|t| names_task(n, t)))
            }
        })
        .map(|h| h.command.clone())
        .filter(|c| !planned.contains(c))
        .collect()
}

/// Whether `on_change: [name]` names the task a report calls `shown`: the task itself, or one
/// run of it when it loops (reports name each run `name (label)`, desired.rs), so a handler
/// fires when any item of a looped task changed its file.
fn names_task(name: &str, shown: &str) -> bool {
    shown == name
        || shown
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(" ("))
            .is_some_and(|rest| rest.ends_with(')'))
}

/// The gateways defined by gateway files (relative path, content; `None`: no content),
/// with their profile: what verification and the live monitor watch.
pub fn managed_gateways<'a>(
    files: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Vec<ManagedGateway> {
    let mut out = Vec::new();
    for (rel, text) in files {
        if let FileKind::Gateway { profile } = classify(rel) {
            for g in text.and_then(freeswitch::gateways).unwrap_or_default() {
                out.push(ManagedGateway {
                    profile: profile.clone(),
                    registers: g.registers(),
                    name: g.name,
                });
            }
        }
    }
    out
}

/// The plan that undoes an applied one: every changed file back to what it was.
pub fn reverse(p: &HostPlan, allow: Disruption) -> HostPlan {
    let files: Vec<FilePlan> = p
        .changed()
        .map(|f| FilePlan {
            status: if f.old.is_none() {
                FileStatus::Created
            } else {
                FileStatus::Changed
            },
            content_changed: f.content_changed,
            meta_changes: Vec::new(),
            // Undoing a removal writes the file back where there is none.
            old_sha256: (!f.remove).then(|| f.new_sha256.clone()),
            new_sha256: f.old_sha256.clone().unwrap_or_default(),
            diff: String::new(),
            old: (!f.remove).then(|| f.new.clone()),
            old_meta: None,
            new: f.old.clone().unwrap_or_default(),
            owner: f.old_meta.as_ref().map(|m| m.0.clone()),
            group: f.old_meta.as_ref().map(|m| m.1.clone()),
            mode: f.old_meta.as_ref().map(|m| m.2),
            // A file that did not exist before is removed on rollback.
            remove: f.old.is_none(),
            ..f.clone()
        })
        .collect();
    let changes: Vec<Change> = p
        .changed()
        .filter(|f| f.content_changed)
        .map(|f| Change {
            rel: &f.rel,
            old: std::str::from_utf8(&f.new).ok(),
            new: f.old.as_deref().and_then(|b| std::str::from_utf8(b).ok()),
        })
        .collect();
    let reload = reload::plan(&changes, allow);
    let gateways = managed_gateways(p.changed().map(|f| {
        (
            f.rel.as_str(),
            f.old.as_deref().and_then(|b| std::str::from_utf8(b).ok()),
        )
    }));
    HostPlan {
        host: p.host.clone(),
        files,
        reload,
        handlers: Vec::new(),
        gateways,
        // The rollback restores the prior state record as it was.
        vars_set: std::collections::BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::names_task;

    /// A handler's `on_change: [user]` fires for every run of a looped task `user`, which
    /// reports name `user (1000)`, `user (1001)`, ...; never for another task whose name only
    /// begins the same way.
    #[test]
    fn on_change_names_each_run_of_a_looped_task() {
        assert!(names_task("gw", "gw"));
        assert!(names_task("user", "user (1000)"));
        assert!(names_task("user", "user (alice, 1000)"));
        assert!(!names_task("user", "users (1000)"));
        assert!(!names_task("user", "user2"));
        assert!(!names_task("user", "user (1000"));
        assert!(!names_task("user (1000)", "user"));
    }
}
