//! `switchyard import`: adopt the PBXes an operator already runs. By default each is mapped
//! onto the shipped playbook's variables ([`mapped`]: what would change, and why); with
//! `--as-is`, exactly as they are. Each host's conf tree is read in one round trip (read-only, under the host lock when
//! it has one: [`crate::engine::import`]); the project written to `--write DIR` holds the
//! hosts (`inventory/`), one template per adopted file (`templates/`, secrets taken out into
//! vault-encrypted vars files) and `playbook.yml`, so `apply --check` right after changes
//! nothing. What cannot be adopted is listed per host with its reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::{ConnectArgs, Context};
use crate::engine::import::{self, Adopted, Skipped};
use crate::engine::outcome::Mode;
use crate::exit::{CommandError, CommandResult, ExitStatus};
use crate::host::transport::Transport;
use crate::inputs::inventory::{ConnectionKind, Host, Inventory};
use crate::printable::printable;

mod mapped;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Inventory of the PBXes to adopt (as for `apply`)
    #[arg(
        long,
        short = 'i',
        value_name = "FILE",
        env = "SWITCHYARD_INVENTORY",
        hide_env_values = true
    )]
    pub inventory: Vec<PathBuf>,
    /// The playbook to map the PBXes onto (the shipped playbooks/wavix.yml, or a copy of it); not needed with --as-is
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: Option<PathBuf>,
    /// Adopt every file exactly as it is: one template per file, so `apply --check` after the import changes nothing
    #[arg(long)]
    pub as_is: bool,
    /// Write the project here (must not exist, or be an empty folder)
    #[arg(long, value_name = "DIR")]
    pub write: PathBuf,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// What one host's read gave.
pub(super) struct HostRead {
    pub(super) adopted: Vec<Adopted>,
    pub(super) skipped: Vec<Skipped>,
    /// rel → content as read (to prove the templates print it back).
    pub(super) originals: BTreeMap<String, Vec<u8>>,
    locked: bool,
}

pub async fn run(a: ImportArgs, cx: &Context) -> CommandResult {
    let target = match (&a.playbook, a.as_is) {
        (_, true) => None,
        (Some(p), false) => Some(mapped::Target::load(p)?),
        (None, false) => {
            return Err(CommandError::usage(
                "name the playbook to map the PBXes onto (playbooks/wavix.yml), or adopt them as they are with --as-is",
            ))
        }
    };
    if dir_is_occupied(&a.write)? {
        return Err(format!(
            "{} exists and is not an empty folder; import writes a new project, never into an existing one",
            a.write.display()
        )
        .into());
    }
    let inv = super::load_inventory(&cx.inventories(&a.inventory)?, &cx.vault)?;
    let opts = a.connect.options(Mode::Check, None, cx)?;
    let hosts: Vec<Host> = inv
        .select_limited("all", opts.limit.as_deref())
        .into_iter()
        .cloned()
        .collect();
    if hosts.is_empty() {
        return Err(CommandError::usage(
            "no host to import (check -i and --limit)",
        ));
    }
    let reads = read_all(&hosts, &opts, cx.verbose).await;
    let mut ok: Vec<(Host, HostRead)> = Vec::new();
    let mut failed = 0;
    for (host, r) in hosts.into_iter().zip(reads) {
        let name = printable(&host.name).into_owned();
        match r {
            Err(e) => {
                failed += 1;
                println!("{name}: failed: {}", printable(&e.to_string()));
            }
            Ok(r) if target.is_some() => {
                // The mapping prints what it did not read with the rest of its report.
                println!(
                    "{name}: {} read{}",
                    crate::report::count(r.originals.len(), "file"),
                    if r.locked {
                        " (under the host lock)"
                    } else {
                        ""
                    }
                );
                ok.push((host, r));
            }
            Ok(r) => {
                println!(
                    "{name}: {} adopted, {} not adopted{}",
                    crate::report::count(r.adopted.len(), "file"),
                    r.skipped.len(),
                    if r.locked {
                        " (read under the host lock)"
                    } else {
                        ""
                    }
                );
                for s in &r.skipped {
                    println!(
                        "{name}: not adopted: {}: {}",
                        printable(&s.rel),
                        printable(&s.reason)
                    );
                }
                ok.push((host, r));
            }
        }
    }
    if ok.is_empty() {
        return Err("no host could be read; nothing written".into());
    }
    let summary = match &target {
        None => write_project(&a.write, |tmp| fill(tmp, &ok, &inv, cx))?,
        Some(t) => write_project(&a.write, |tmp| mapped::fill(tmp, &ok, t, &inv, cx))?,
    };
    println!(
        "wrote {}: {summary}\nnext: switchyard apply --check -i {}/inventory {}/playbook.yml",
        a.write.display(),
        a.write.display(),
        a.write.display()
    );
    if failed > 0 {
        println!(
            "{} could not be read and are not in the project",
            crate::report::count(failed, "host")
        );
        return Ok(ExitStatus::Failure);
    }
    Ok(ExitStatus::Success)
}

/// Whether `dir` exists as anything but an empty folder (a link to one counts as occupied).
fn dir_is_occupied(dir: &Path) -> Result<bool, CommandError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{}: {e}", dir.display()).into()),
        Ok(m) if m.is_dir() => Ok(std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .next()
            .is_some()),
        Ok(_) => Ok(true),
    }
}

/// Read every host, `forks` at a time; a host that fails never stops the others.
async fn read_all(
    hosts: &[Host],
    opts: &crate::engine::run::RunOptions,
    verbose: u8,
) -> Vec<Result<HostRead, ReadError>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.forks.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, host) in hosts.iter().enumerate() {
        let host = host.clone();
        let ssh = opts.ssh.clone();
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, read_host(&host, &ssh, verbose).await)
        });
    }
    let mut out: Vec<Result<HostRead, ReadError>> =
        hosts.iter().map(|_| Err(ReadError::NoResult)).collect();
    while let Some(r) = set.join_next().await {
        if let Ok((i, r)) = r {
            out[i] = r;
        }
    }
    out
}

/// Why one host's conf tree could not be read (the host fails; the others go on).
#[derive(Debug, thiserror::Error)]
enum ReadError {
    /// The inventory says switchyard does not manage this host (its own sentence).
    #[error("{0}")]
    Unmanaged(String),
    #[error(transparent)]
    Settings(#[from] crate::engine::pipeline::GatherError),
    #[error(transparent)]
    Transport(#[from] crate::host::transport::TransportError),
    /// The read of the tree failed (its own sentence, the host's text escaped in it).
    #[error("{0}")]
    Tree(String),
    #[error("internal error: its read ended without a result")]
    NoResult,
}

async fn read_host(
    host: &Host,
    ssh: &crate::host::transport::SshOptions,
    verbose: u8,
) -> Result<HostRead, ReadError> {
    if let Some(why) = Inventory::unmanaged(host) {
        return Err(ReadError::Unmanaged(why));
    }
    let limit = crate::engine::pipeline::max_file_bytes(host)?;
    let mut t =
        Transport::connect_with_retries(&host.connection, ssh, host.connection.retries, |_, _| {})
            .await?;
    if verbose > 0 {
        let mut red = crate::secret::Redactor::from_vars(&host.vars);
        red.add_secrets(&host.secrets);
        t.trace = Some(crate::engine::pipeline::trace(host, &red, verbose));
    }
    let tree = import::read_tree(&mut t, &host.freeswitch.conf_root, limit).await;
    t.close().await;
    let tree = tree.map_err(ReadError::Tree)?;
    let (adopted, skipped) = import::adopt(&tree);
    let originals = tree
        .entries
        .iter()
        .filter_map(|e| match &e.fact {
            crate::engine::facts::FileFact::Present { content, .. } => {
                Some((e.rel.clone(), content.clone()))
            }
            _ => None,
        })
        .collect();
    Ok(HostRead {
        adopted,
        skipped,
        originals,
        locked: tree.locked,
    })
}

/// Create `path` (new, 0600) in the project being written with `data`.
pub(super) fn put(path: &Path, data: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// How each host is reached, as inventory variables (no password: an `fs_cli` line with one
/// goes into the host's vault file instead).
pub(super) fn connection_vars(
    host: &Host,
) -> (serde_json::Map<String, serde_json::Value>, Option<String>) {
    use serde_json::json;
    let c = &host.connection;
    let fs = &host.freeswitch;
    let mut v = serde_json::Map::new();
    if c.kind == ConnectionKind::Local {
        v.insert("ansible_connection".into(), json!("local"));
    }
    v.insert("ansible_host".into(), json!(c.address));
    v.insert("ansible_port".into(), json!(c.port));
    v.insert("ansible_user".into(), json!(c.user));
    if let Some(k) = &c.key_file {
        v.insert("ansible_ssh_private_key_file".into(), json!(k));
    }
    v.insert("ansible_become".into(), json!(c.become_root));
    v.insert(
        "ssh_connect_timeout".into(),
        json!(c.connect_timeout.as_secs_f64()),
    );
    v.insert(
        "command_timeout".into(),
        json!(c.command_timeout.as_secs_f64()),
    );
    v.insert("ssh_retries".into(), json!(c.retries));
    if !c.jump.is_empty() {
        v.insert("ssh_jump".into(), json!(c.jump));
    }
    v.insert("freeswitch_conf_root".into(), json!(fs.conf_root));
    v.insert("freeswitch_owner".into(), json!(fs.owner));
    v.insert("freeswitch_group".into(), json!(fs.group));
    v.insert(
        "freeswitch_restart_command".into(),
        json!(fs.restart_command),
    );
    if let Some(m) = host.vars.get("freeswitch_max_file_bytes") {
        v.insert("freeswitch_max_file_bytes".into(), m.clone());
    }
    let secret_fs_cli = crate::host::script::FsCli::split(&fs.fs_cli)
        .password
        .is_some();
    if !secret_fs_cli {
        v.insert("fs_cli".into(), json!(fs.fs_cli));
    }
    (v, secret_fs_cli.then(|| fs.fs_cli.clone()))
}

/// Write the project into a fresh private folder beside `dir`, check that every template
/// prints back what was read, then rename it to `dir`: no half-written project is ever left.
fn write_project(
    dir: &Path,
    fill: impl FnOnce(&Path) -> Result<String, CommandError>,
) -> Result<String, CommandError> {
    let name = dir
        .file_name()
        .ok_or_else(|| format!("{}: not a folder name", dir.display()))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = parent.join(format!(
        ".{}.import-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    let result = fill(&tmp).and_then(|summary| {
        std::fs::rename(&tmp, dir)
            .map(|()| summary)
            .map_err(|e| format!("{}: {e}", dir.display()).into())
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn fill(
    tmp: &Path,
    hosts: &[(Host, HostRead)],
    inv: &Inventory,
    cx: &Context,
) -> Result<String, CommandError> {
    let per_host: Vec<(String, Vec<Adopted>)> = hosts
        .iter()
        .map(|(h, r)| (h.name.clone(), r.adopted.clone()))
        .collect();
    let tasks = import::tasks(&per_host);
    for t in &tasks {
        put(&tmp.join("templates").join(&t.src), t.template.as_bytes())?;
    }
    put(
        &tmp.join("playbook.yml"),
        import::playbook_yaml(&tasks).as_bytes(),
    )?;

    // Secrets: one value on every host → group_vars/all.age; else the host's own file.
    let mut values: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for (h, r) in hosts {
        for f in &r.adopted {
            for (var, value) in &f.secrets {
                values
                    .entry(var)
                    .or_default()
                    .insert(&h.name, value.as_str());
            }
        }
    }
    let mut shared = serde_json::Map::new();
    let mut own: BTreeMap<&str, serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
    for (var, by_host) in &values {
        let first = by_host.values().next().copied().unwrap_or_default();
        if by_host.len() == hosts.len() && hosts.len() > 1 && by_host.values().all(|v| *v == first)
        {
            shared.insert(var.to_string(), first.into());
        } else {
            for (h, v) in by_host {
                own.entry(h)
                    .or_default()
                    .insert(var.to_string(), (*v).into());
            }
        }
    }
    let needs_vault =
        !values.is_empty() || hosts.iter().any(|(h, _)| connection_vars(h).1.is_some());
    if needs_vault && !cx.vault.has_key() {
        return Err(CommandError::usage(
            "the conf trees hold secrets, which import writes only vault-encrypted: give a vault passphrase (SWITCHYARD_VAULT_PASSWORD, --vault-password-file) or identity (--vault-identity); nothing written",
        ));
    }
    let yaml = |m: &serde_json::Map<String, serde_json::Value>| {
        yaml_serde::to_string(m).expect("variables serialize")
    };
    let encrypted =
        |m: &serde_json::Map<String, serde_json::Value>| -> Result<String, CommandError> {
            Ok(cx.vault.encrypt(yaml(m).as_bytes())?)
        };
    let inv_dir = tmp.join("inventory");
    if !shared.is_empty() {
        put(
            &inv_dir.join("group_vars/all.age"),
            encrypted(&shared)?.as_bytes(),
        )?;
    }
    // The hosts, in the groups they were in (flattened: each group lists its hosts).
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut all_hosts = serde_json::Map::new();
    for (h, _) in hosts {
        all_hosts.insert(h.name.clone(), serde_json::json!({}));
        for g in &h.groups {
            if g != "all" && g != "ungrouped" && inv.groups.contains_key(g) {
                groups.entry(g).or_default().push(&h.name);
            }
        }
        let (mut conn, fs_cli) = connection_vars(h);
        for (var, value) in tasks.iter().flat_map(|t| t.values.get(&h.name)).flatten() {
            conn.insert(var.clone(), value.clone().into());
        }
        put(
            &inv_dir.join(format!("host_vars/{}.yml", h.name)),
            yaml(&conn).as_bytes(),
        )?;
        let mut secrets = own.remove(h.name.as_str()).unwrap_or_default();
        if let Some(line) = fs_cli {
            secrets.insert("fs_cli".into(), line.into());
        }
        if !secrets.is_empty() {
            put(
                &inv_dir.join(format!("host_vars/{}.age", h.name)),
                encrypted(&secrets)?.as_bytes(),
            )?;
        }
    }
    let mut children = serde_json::Map::new();
    for (g, members) in groups {
        let hs: serde_json::Map<String, serde_json::Value> = members
            .into_iter()
            .map(|m| (m.to_string(), serde_json::json!({})))
            .collect();
        children.insert(g.to_string(), serde_json::json!({ "hosts": hs }));
    }
    let mut all = serde_json::Map::new();
    all.insert("hosts".into(), all_hosts.into());
    if !children.is_empty() {
        all.insert("children".into(), children.into());
    }
    put(
        &inv_dir.join("hosts.yml"),
        format!(
            "# Written by `switchyard import`: the imported hosts; how each is reached is in host_vars/.\n{}",
            yaml(&serde_json::Map::from_iter([("all".to_string(), all.into())]))
        )
        .as_bytes(),
    )?;
    prove_round_trip(tmp, &tasks, hosts)?;
    let shared_tasks = tasks.iter().filter(|t| t.hosts.is_none()).count();
    Ok(format!(
        "{} for {} ({shared_tasks} for every host, {} for some), {} in vault files",
        crate::report::count(tasks.len(), "template task"),
        crate::report::count(hosts.len(), "host"),
        tasks.len() - shared_tasks,
        crate::report::count(values.len(), "secret variable")
    ))
}

/// Render every written template with each host's secrets and compare with what was read
/// there: the promise that `apply --check` changes nothing, checked before the project
/// takes its name.
fn prove_round_trip(
    tmp: &Path,
    tasks: &[import::Task],
    hosts: &[(Host, HostRead)],
) -> Result<(), CommandError> {
    use crate::inputs::template::{FromSerde, Templates};
    let mut templates = Templates::new(vec![tmp.join("templates")]);
    for (h, r) in hosts {
        let vars: BTreeMap<&str, &str> = r
            .adopted
            .iter()
            .flat_map(|f| &f.secrets)
            .chain(tasks.iter().flat_map(|t| t.values.get(&h.name)).flatten())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let ctx = minijinja::value::Value::from_serde(vars);
        for f in &r.adopted {
            let t = tasks
                .iter()
                .find(|t| t.rel == f.rel && t.hosts.as_ref().is_none_or(|hs| hs.contains(&h.name)))
                .ok_or_else(|| format!("internal error: no task for {}", f.rel))?;
            let text = templates.render_file(&t.src, &ctx)?;
            if r.originals.get(&f.rel).map(Vec::as_slice) != Some(text.as_bytes()) {
                return Err(format!(
                    "internal error: the template for {} does not print back what {} holds; nothing written",
                    printable(&f.rel),
                    printable(&h.name)
                )
                .into());
            }
        }
    }
    Ok(())
}
