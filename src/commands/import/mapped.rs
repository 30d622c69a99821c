//! `switchyard import` (default mode): each PBX's tree mapped onto the shipped playbook's
//! variables ([`crate::engine::import::map`]) and written as a project: the playbook and
//! its templates copied in, `inventory/` with what every host shares in `group_vars/`, what
//! differs in `host_vars/`, every secret only in `.age` vault files (see `map::SECRET_VARS`), and
//! `IMPORT.md`: per host, why each file `apply --check` will show changes, what could not be
//! mapped and what could not be read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{connection_vars, put, HostRead};
use crate::commands::Context;
use crate::engine::import::layers::{self, HostVars};
use crate::engine::import::map::{self, Mapping};
use crate::exit::CommandError;
use crate::freeswitch::lint::Finding;
use crate::inputs::inventory::{Host, Inventory};
use crate::inputs::playbook::Playbook;
use crate::printable::printable;

/// The playbook the PBXes are mapped onto.
pub struct Target {
    path: PathBuf,
    /// Its first play's `vars:` (the defaults a mapped value may equal).
    defaults: Map<String, Value>,
    /// The group its play targets: every imported host is put in it.
    top: String,
    /// Its template folder's files (name → bytes), copied into the project.
    templates: Vec<(String, Vec<u8>)>,
}

impl Target {
    /// Load `path` and check it reads the variables import maps onto (the shipped Wavix
    /// playbook's); its templates are the files of the first of its template folders.
    pub fn load(path: &Path) -> Result<Target, CommandError> {
        let pb = Playbook::load(path)?;
        let Some(play) = pb.plays.first() else {
            return Err(format!("{}: no play to map the PBXes onto", path.display()).into());
        };
        if ![
            "numbering_plans",
            "wavix_inbound_context",
            "failover_causes",
        ]
        .iter()
        .all(|v| play.vars.contains_key(*v))
        {
            return Err(CommandError::usage(format!(
                "{}: import maps PBXes onto the shipped Wavix playbook's variables (playbooks/wavix.yml), which this playbook does not define; adopt the PBXes as they are with --as-is instead",
                path.display()
            )));
        }
        let top = play.hosts.clone();
        if top.is_empty()
            || !top
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "{}: its play targets `{top}`, not one group; import puts every host in the group the play targets",
                path.display()
            )
            .into());
        }
        let mut templates = Vec::new();
        if let Some(dir) = pb.template_dirs().into_iter().take(2).find(|d| d.is_dir()) {
            for e in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
                let p = e.map_err(|e| format!("{}: {e}", dir.display()))?.path();
                if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
                    let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                    templates.push((
                        p.file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned(),
                        bytes,
                    ));
                }
            }
        }
        Ok(Target {
            path: path.to_path_buf(),
            defaults: play.vars.clone().into_iter().collect(),
            top,
            templates,
        })
    }
}

/// Whether `var` goes to a vault file: a secret variable, or an `fs_cli` line with the
/// event socket password in it.
fn is_secret(var: &str, value: &Value) -> bool {
    map::SECRET_VARS.contains(&var)
        || (var == "fs_cli"
            && value
                .as_str()
                .is_some_and(|l| crate::host::script::FsCli::split(l).password.is_some()))
}

/// One host's section of the report, also printed (escaped and masked).
fn host_report(
    name: &str,
    m: &Mapping,
    findings: &[Finding],
    skipped: &[crate::engine::import::Skipped],
    read: &BTreeMap<String, String>,
    red: &crate::secret::Redactor,
) -> (Vec<String>, String) {
    let clean = |s: &str| red.redact(&printable(s));
    let mut lines = Vec::new();
    let mut md = format!("## {}\n\n", clean(name));
    let mut section = |title: &str, items: Vec<(String, String)>, tag: &str| {
        if items.is_empty() {
            return;
        }
        md.push_str(&format!("### {title}\n\n"));
        for (file, text) in items {
            md.push_str(&format!("- `{}`: {}\n", clean(&file), clean(&text)));
            lines.push(format!(
                "{}: {tag}: {}: {}",
                clean(name),
                clean(&file),
                clean(&text)
            ));
        }
        md.push('\n');
    };
    section(
        "Why files change (each finding on the file where it was found; `apply --check` shows the changes)",
        m.notes
            .iter()
            .map(|n| (n.file.clone(), n.text.clone()))
            .collect(),
        "why",
    );
    section(
        "Lint findings on the PBX as it is",
        findings
            .iter()
            .map(|f| {
                (
                    format!("{}:{}", f.file, f.line),
                    format!(
                        "{}[{}]: {}",
                        match f.severity {
                            crate::freeswitch::lint::Severity::Error => "error",
                            crate::freeswitch::lint::Severity::Warning => "warning",
                        },
                        f.check,
                        f.message
                    ),
                )
            })
            .collect(),
        "finding",
    );
    section(
        "Not mapped (left as it is where the playbook does not write the file; dropped where it does)",
        m.unmapped.iter().map(|s| (s.rel.clone(), s.reason.clone())).collect(),
        "not mapped",
    );
    section(
        "Not read",
        skipped
            .iter()
            .filter(|s| !read.contains_key(&s.rel))
            .map(|s| (s.rel.clone(), s.reason.clone()))
            .collect(),
        "not read",
    );
    (lines, md)
}

/// One host's tree as read and as mapped.
struct Mapped<'a> {
    host: &'a Host,
    read: &'a HostRead,
    files: BTreeMap<String, String>,
    m: Mapping,
}

/// Map every host and write the project into `tmp` (renamed into place by the caller).
pub fn fill(
    tmp: &Path,
    hosts: &[(Host, HostRead)],
    t: &Target,
    inv: &Inventory,
    cx: &Context,
) -> Result<String, CommandError> {
    let mut per_host = Vec::new();
    let mut mapped = Vec::new();
    for (h, r) in hosts {
        // Every file read that is UTF-8 and well-formed XML. (Unlike --as-is, a
        // world-readable file holding a secret is read too: import writes no file back, and
        // apply refuses to write a secret into a world-readable file itself.)
        let files: BTreeMap<String, String> = r
            .originals
            .iter()
            .filter_map(|(rel, bytes)| {
                let text = String::from_utf8(bytes.clone()).ok()?;
                crate::xml::well_formed(&text).ok()?;
                Some((rel.clone(), text))
            })
            .collect();
        let m = map::map(&files, &t.defaults);
        let (mut vars, fs_cli) = connection_vars(h);
        if let Some(line) = fs_cli {
            vars.insert("fs_cli".into(), json!(line));
        }
        vars.extend(m.vars.clone());
        per_host.push(HostVars {
            name: h.name.clone(),
            groups: h
                .groups
                .iter()
                .filter(|g| {
                    !["all", "ungrouped", t.top.as_str()].contains(&g.as_str())
                        && inv.groups.contains_key(*g)
                })
                .cloned()
                .collect(),
            vars,
        });
        mapped.push(Mapped {
            host: h,
            read: r,
            files,
            m,
        });
    }
    let layout = layers::layout(&per_host, &t.top, &t.defaults);
    write_inventory(&tmp.join("inventory"), &layout, &per_host, &t.top, cx)?;
    put(
        &tmp.join("playbook.yml"),
        &std::fs::read(&t.path).map_err(|e| format!("{}: {e}", t.path.display()))?,
    )?;
    for (name, bytes) in &t.templates {
        put(&tmp.join("templates").join(name), bytes)?;
    }
    let loaded = prove_layout(tmp, &per_host, &t.defaults, cx)?;
    let mut report = String::from(
        "# What `switchyard import` found\n\n`switchyard apply --check -i inventory playbook.yml` shows what switchyard would change on each PBX; each file it changes is explained below by the finding on that file. Import wrote nothing on the PBXes.\n\n",
    );
    let (mut unmapped, mut notes) = (0, 0);
    let pb = Playbook::load(&tmp.join("playbook.yml"))?;
    let mut templates = crate::inputs::template::Templates::new(pb.template_dirs());
    for mut x in mapped {
        if let (Some(play), Some(h)) = (
            pb.plays.first(),
            loaded.hosts.iter().find(|l| l.name == x.host.name),
        ) {
            account_for_changes(h, play, &mut templates, &x.files, x.read, &mut x.m);
        }
        let findings = crate::freeswitch::lint::lint(None, &x.files);
        let mut red = crate::secret::Redactor::from_vars(&x.m.vars.clone().into_iter().collect());
        red.merge(&crate::secret::Redactor::from_vars(&x.host.vars));
        let (lines, md) = host_report(
            &x.host.name,
            &x.m,
            &findings,
            &x.read.skipped,
            &x.files,
            &red,
        );
        for l in lines {
            println!("{l}");
        }
        report.push_str(&md);
        unmapped += x.m.unmapped.len();
        notes += x.m.notes.len();
    }
    put(&tmp.join("IMPORT.md"), report.as_bytes())?;
    Ok(format!(
        "{} mapped onto {}: {} shared in group_vars, {} with variables of their own; {} explained, {} not mapped (see IMPORT.md)",
        crate::report::count(hosts.len(), "host"),
        t.path.display(),
        layout.groups.values().map(Map::len).sum::<usize>(),
        layout.hosts.len(),
        crate::report::count(notes, "change"),
        crate::report::count(unmapped, "item"),
    ))
}

/// Every file the playbook will write otherwise than the host has it (content, owner,
/// group or mode), rendered offline as `apply` renders it: one without a finding of the
/// mapping gets a note saying so, so the report accounts for every change `apply --check`
/// will show, and a change nothing explains is visible as such.
fn account_for_changes(
    host: &Host,
    play: &crate::inputs::playbook::Play,
    templates: &mut crate::inputs::template::Templates,
    files: &BTreeMap<String, String>,
    read: &HostRead,
    m: &mut Mapping,
) {
    let d = match crate::engine::desired::build(host, play, templates) {
        Ok(d) => d,
        Err(e) => {
            m.unmapped.push(crate::engine::import::Skipped {
                rel: "(the playbook)".into(),
                reason: format!(
                    "rendering it for this host failed, so the changes are not listed here: {e}"
                ),
            });
            return;
        }
    };
    for f in &d.files {
        let have = files.get(&f.rel);
        let explained = |m: &Mapping| m.notes.iter().any(|n| n.file == f.rel);
        if f.absent {
            if have.is_some() && !explained(m) {
                m.notes.push(map::Note {
                    file: f.rel.clone(),
                    text: "the playbook removes this file (its task `file: state: absent`)".into(),
                });
            }
            continue;
        }
        let Some(base) = f.base.clone().or_else(|| have.cloned()) else {
            continue;
        };
        let Ok(want) = crate::engine::desired::apply_edits(&base, &f.edits) else {
            continue;
        };
        let meta = read.adopted.iter().find(|a| a.rel == f.rel);
        let meta_differs = meta.is_some_and(|a| {
            f.owner.as_ref().is_some_and(|o| *o != a.owner)
                || f.group.as_ref().is_some_and(|g| *g != a.group)
                || f.mode.is_some_and(|md| md != a.mode)
        });
        if have.is_some_and(|h| *h == want) && !meta_differs {
            continue;
        }
        if have.is_none() {
            m.notes.push(map::Note {
                file: f.rel.clone(),
                text: "a new file the playbook writes".into(),
            });
        } else if !explained(m) {
            let what = if have.is_some_and(|h| *h == want) {
                "its owner, group or mode"
            } else {
                "its content"
            };
            m.notes.push(map::Note { file: f.rel.clone(), text: format!("the playbook writes {what} in its own form; no finding explains a difference in behaviour (see `apply --check --diff`)") });
        }
    }
}

/// `group_vars/`, `host_vars/` (plain `.yml`, secret-bearing `.age`) and `hosts.yml`.
fn write_inventory(
    dir: &Path,
    layout: &layers::Layout,
    hosts: &[HostVars],
    top: &str,
    cx: &Context,
) -> Result<(), CommandError> {
    let yaml = |m: &Map<String, Value>| yaml_serde::to_string(m).expect("variables serialize");
    let any_secret = layout
        .groups
        .values()
        .chain(layout.hosts.values())
        .flatten()
        .any(|(k, v)| is_secret(k, v));
    if any_secret && !cx.vault.has_key() {
        return Err(CommandError::usage(
            "the PBXes hold secrets, which import writes only vault-encrypted: give a vault passphrase (SWITCHYARD_VAULT_PASSWORD, --vault-password-file) or identity (--vault-identity); nothing written",
        ));
    }
    for (kind, files) in [("group_vars", &layout.groups), ("host_vars", &layout.hosts)] {
        for (name, vars) in files {
            let (secret, plain): (Map<_, _>, Map<_, _>) =
                vars.clone().into_iter().partition(|(k, v)| is_secret(k, v));
            if !plain.is_empty() {
                put(&dir.join(format!("{kind}/{name}.yml")), format!("# Written by `switchyard import`; secret-bearing variables are in {name}.age.\n{}", yaml(&plain)).as_bytes())?;
            }
            if !secret.is_empty() {
                put(
                    &dir.join(format!("{kind}/{name}.age")),
                    cx.vault.encrypt(yaml(&secret).as_bytes())?.as_bytes(),
                )?;
            }
        }
    }
    // Written as text, so the hosts keep the order they had (the first is the canary of
    // the playbook's `serial: [1, ...]`); names are JSON-quoted, which YAML reads as is.
    let q = |n: &str| serde_json::to_string(n).expect("a name serializes");
    // The play's group under `all` (or `all` itself, for a play over every host).
    let (head, pad) = if top == "all" {
        (String::from("all:\n"), "")
    } else {
        (format!("all:\n  children:\n    {}:\n", q(top)), "    ")
    };
    let mut text = format!(
        "# Written by `switchyard import`: the imported hosts; their variables are in group_vars/ and host_vars/.\n{head}{pad}  hosts:\n"
    );
    for h in hosts {
        text.push_str(&format!("{pad}    {}: {{}}\n", q(&h.name)));
    }
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for h in hosts {
        for g in &h.groups {
            groups.entry(g).or_default().push(&h.name);
        }
    }
    if !groups.is_empty() {
        text.push_str(&format!("{pad}  children:\n"));
    }
    for (g, members) in groups {
        text.push_str(&format!("{pad}    {}:\n{pad}      hosts:\n", q(g)));
        for m in members {
            text.push_str(&format!("{pad}        {}: {{}}\n", q(m)));
        }
    }
    put(&dir.join("hosts.yml"), text.as_bytes())?;
    Ok(())
}

/// Load the written inventory as `apply` will and check that every host gets exactly the
/// values mapped for it: the layout's promise, checked before the project takes its name.
fn prove_layout(
    tmp: &Path,
    hosts: &[HostVars],
    defaults: &Map<String, Value>,
    cx: &Context,
) -> Result<Inventory, CommandError> {
    let inv = Inventory::load_all(&[tmp.join("inventory")], &cx.vault)?;
    for h in hosts {
        let loaded = inv.hosts.iter().find(|x| x.name == h.name).ok_or_else(|| {
            format!(
                "internal error: {} is not in the written inventory",
                printable(&h.name)
            )
        })?;
        for (k, v) in &h.vars {
            if loaded.vars.get(k).or(defaults.get(k)) != Some(v) {
                return Err(format!(
                    "internal error: the written inventory does not give {} its `{k}`; nothing written",
                    printable(&h.name)
                )
                .into());
            }
        }
    }
    Ok(inv)
}
