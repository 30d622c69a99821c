//! The fleet: hosts, groups and their variables, read from an Ansible-layout YAML inventory.
//!
//! The layout is Ansible's own (`all:` / `hosts:` / `children:` / `vars:`, with
//! `group_vars/` and `host_vars/` beside the file) so an operator's existing inventory of
//! PBXes loads unchanged. Connection settings accept the `ansible_*` names as well as
//! switchyard's own (`ssh_host`, `ssh_port`, ...); see [`Host::from_vars`].
//!
//! Variable precedence, lowest first (as in Ansible): `all` vars, then each group by depth
//! (parents before children, siblings by name), group vars inline in the inventory before
//! `group_vars/` files, then host vars inline, then `host_vars/` files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use crate::inputs::source::{self, SourceError};
use crate::inputs::vault::Vault;
use crate::secret::Secret;

/// Variables of a host or group. Ordered, so output and hashing are stable.
pub type Vars = BTreeMap<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Vault(#[from] crate::inputs::vault::VaultError),
    #[error("{origin}: variable `{var}`: {message}")]
    Secret {
        origin: String,
        var: String,
        message: String,
    },
    #[error("host `{host}`: variable `{var}`: {message}")]
    BadVar {
        host: String,
        var: String,
        message: String,
    },
}

mod ini;
mod pyliteral;
mod schema;
mod sources;
mod toml_source;

pub use schema::{inventory_schema, vars_schema, HostVars};

/// An inventory as its top-level groups (`all` and any others), before walking.
type Top = IndexMap<String, Option<RawGroup>>;

/// Add `from` to `into`: hosts and children are united (a host's variables merged, later
/// wins), group variables merged, later wins.
fn merge_top(into: &mut Top, from: Top) {
    for (name, group) in from {
        let Some(group) = group else {
            into.entry(name).or_insert(None);
            continue;
        };
        match into.entry(name).or_insert(None) {
            slot @ None => *slot = Some(group),
            Some(existing) => merge_group(existing, group),
        }
    }
}

fn merge_group(into: &mut RawGroup, from: RawGroup) {
    if let Some(hosts) = from.hosts {
        let mine = into.hosts.get_or_insert_with(IndexMap::new);
        for (h, vars) in hosts {
            match (mine.entry(h).or_insert(None), vars) {
                (slot @ None, v) => *slot = v,
                (Some(old), Some(v)) => old.extend(v),
                (Some(_), None) => {}
            }
        }
    }
    if let Some(vars) = from.vars {
        into.vars.get_or_insert_with(Vars::new).extend(vars);
    }
    if let Some(children) = from.children {
        merge_top(into.children.get_or_insert_with(IndexMap::new), children);
    }
}

/// *Decision*: a key other than `hosts`, `vars` and `children` is refused (Ansible warns and
/// skips it): a typo such as `host:` would otherwise drop hosts without a word.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "Group",
    description = "A group: `hosts:`, `vars:` and `children:`, nothing else."
)]
struct RawGroup {
    // IndexMap: hosts keep the order of the file (the default rollout order).
    #[serde(default, deserialize_with = "name_or_map")]
    #[schemars(schema_with = "schema::hosts")]
    hosts: Option<IndexMap<String, Option<Vars>>>,
    #[serde(default, deserialize_with = "name_or_map")]
    #[schemars(schema_with = "schema::vars")]
    vars: Option<Vars>,
    #[serde(default, deserialize_with = "name_or_map")]
    #[schemars(schema_with = "schema::children")]
    children: Option<IndexMap<String, Option<RawGroup>>>,
}

/// A mapping, or (as ansible-core's yaml.py allows) one bare name standing for a mapping
/// with that one key and no value: `hosts: pbx1` is `hosts: {pbx1: }`.
fn name_or_map<'de, D, M, V>(d: D) -> Result<Option<M>, D::Error>
where
    D: serde::Deserializer<'de>,
    M: Deserialize<'de> + Default + Extend<(String, V)>,
    V: Default,
{
    use serde::de::{MapAccess, Visitor};
    struct Vis<M, V>(std::marker::PhantomData<(M, V)>);
    impl<'de, M, V> Visitor<'de> for Vis<M, V>
    where
        M: Deserialize<'de> + Default + Extend<(String, V)>,
        V: Default,
    {
        type Value = Option<M>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a mapping, or one name")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
            let mut m = M::default();
            m.extend([(name.to_string(), V::default())]);
            Ok(Some(m))
        }
        fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
            M::deserialize(serde::de::value::MapAccessDeserializer::new(a)).map(Some)
        }
    }
    d.deserialize_option(Vis(std::marker::PhantomData))
}

/// The group names a parsed source declares, at any depth.
fn group_names(top: &Top, out: &mut BTreeSet<String>) {
    for (name, g) in top {
        out.insert(name.clone());
        if let Some(children) = g.as_ref().and_then(|g| g.children.as_ref()) {
            group_names(children, out);
        }
    }
}

/// How switchyard reaches a host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    /// russh to `address:port`.
    Ssh,
    /// Run commands on this machine (on the PBX itself, and for the demo fleet).
    Local,
    /// Another `ansible_connection` (`winrm`, `network_cli`, ...): the host stays in the
    /// inventory (groups, patterns, variables) and is refused only when a play targets it.
    Other(String),
}

/// Everything the transport needs to reach one host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Connection {
    pub kind: ConnectionKind,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub key_file: Option<PathBuf>,
    /// Run remote commands through `sudo -n` (defaults to on when `user` is not root).
    pub become_root: bool,
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
    #[serde(with = "secs")]
    pub command_timeout: Duration,
    /// ProxyJump-style chain of `user@host:port` jump hosts, outermost first.
    pub jump: Vec<String>,
    /// Extra connection attempts after a refused or timed-out connection.
    pub retries: u32,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

pub use crate::freeswitch::FreeSwitch;

/// One host of the inventory with its merged variables.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// Groups the host belongs to, directly or through a parent (always includes `all`).
    pub groups: BTreeSet<String>,
    pub vars: Vars,
    /// Values that came from the environment, secret files or the vault: masked everywhere,
    /// whatever their variable is called.
    pub secrets: Vec<Secret>,
    pub connection: Connection,
    pub freeswitch: FreeSwitch,
    /// Connection variables switchyard does not act on although they would change how
    /// Ansible connects (`ansible_password`, unknown `ansible_ssh_common_args` options).
    pub warnings: Vec<String>,
    /// The `-e` variables (also merged into `vars`): they win over a task's own `vars:`
    /// too, as extra variables do in Ansible.
    pub extra: Vars,
}

#[derive(Debug, Clone)]
pub struct Inventory {
    pub path: PathBuf,
    /// Hosts in inventory order (the order they first appear in the file).
    pub hosts: Vec<Host>,
    /// group -> member hosts (direct or inherited)
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// Things worth saying that are not errors (e.g. an `.age` file no group or host reads).
    pub warnings: Vec<String>,
}

struct GroupNode {
    depth: usize,
    vars: Vars,
    hosts: Vec<(String, Vars)>,
    parents: BTreeSet<String>,
}

/// Replace `{env: NAME}`, `{file: PATH}` and `{vault: ARMORED}` values by what they point at,
/// collecting the results as secrets.
fn resolve(
    v: &mut Value,
    var: &str,
    origin: &str,
    vault: &Vault,
    secrets: &mut Vec<Secret>,
) -> Result<(), InventoryError> {
    let err = |message: String| InventoryError::Secret {
        origin: origin.to_string(),
        var: var.to_string(),
        message,
    };
    match v {
        Value::Object(o)
            if o.len() == 1 && ["env", "file", "vault"].iter().any(|k| o.contains_key(*k)) =>
        {
            let (kind, arg) = o.iter().next().expect("one entry");
            let arg = arg
                .as_str()
                .ok_or_else(|| err(format!("`{kind}:` takes a string")))?;
            let value = match kind.as_str() {
                "env" => std::env::var(arg)
                    .map_err(|_| err(format!("environment variable `{arg}` is not set")))?,
                "file" => {
                    let refused = |e: source::FileRefusal| err(format!("secret file {arg}: {e}"));
                    let bytes =
                        source::read_regular(Path::new(arg), crate::secret::MAX_SECRET_BYTES)
                            .map_err(refused)?;
                    String::from_utf8(bytes)
                        .map_err(|_| err(format!("secret file {arg}: it is not valid UTF-8")))?
                        .trim_end_matches(['\n', '\r'])
                        .to_string()
                }
                _ => vault.decrypt_str(arg, var)?,
            };
            secrets.push(Secret::new(value.clone()));
            *v = Value::String(value);
        }
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                resolve(x, k, origin, vault, secrets)?;
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                resolve(x, var, origin, vault, secrets)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn resolve_vars(
    vars: &mut Vars,
    origin: &str,
    vault: &Vault,
    secrets: &mut Vec<Secret>,
) -> Result<(), InventoryError> {
    for (k, v) in vars.iter_mut() {
        resolve(v, k, origin, vault, secrets)?;
    }
    Ok(())
}

/// The secrets each group's inline variables (and its hosts' inline variables) resolved to.
type GroupSecrets = BTreeMap<String, Vec<Secret>>;

/// [`resolve_vars`] over every group of a source as written, before walking: a group's
/// secrets are filed under its name, whichever source or place in the tree named it.
fn resolve_top(
    top: &mut Top,
    origin: &str,
    vault: &Vault,
    secrets: &mut GroupSecrets,
) -> Result<(), InventoryError> {
    for (name, group) in top.iter_mut() {
        let Some(group) = group else { continue };
        let mine = secrets.entry(name.clone()).or_default();
        if let Some(vars) = group.vars.as_mut() {
            resolve_vars(vars, origin, vault, mine)?;
        }
        for vars in group
            .hosts
            .iter_mut()
            .flat_map(|h| h.values_mut())
            .flatten()
        {
            resolve_vars(vars, origin, vault, mine)?;
        }
        if let Some(children) = group.children.as_mut() {
            resolve_top(children, origin, vault, secrets)?;
        }
    }
    Ok(())
}

/// Every string and number of an encrypted vars file is a secret.
fn all_values(v: &Value, out: &mut Vec<Secret>) {
    match v {
        Value::String(s) => out.push(Secret::new(s.clone())),
        Value::Number(n) => out.push(Secret::new(n.to_string())),
        Value::Array(a) => a.iter().for_each(|x| all_values(x, out)),
        Value::Object(o) => o.values().for_each(|x| all_values(x, out)),
        _ => {}
    }
}

impl Inventory {
    /// Load with the vault key from the environment (if any).
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        Inventory::load_with(path, &Vault::from_sources(None, None)?)
    }

    pub fn load_with(path: &Path, vault: &Vault) -> Result<Inventory, InventoryError> {
        Inventory::load_all(&[path.to_path_buf()], vault)
    }

    /// Load one or more inventory sources (`-i a -i b`), merged in order: later sources add
    /// hosts and groups and override variables of earlier ones. Each source is a YAML
    /// inventory, an INI inventory (`.ini`, or text that starts like one), or an executable
    /// inventory script run with `--list` (Ansible's JSON with `_meta.hostvars`).
    /// `group_vars/` and `host_vars/` are read beside every source, in the same order.
    pub fn load_all(paths: &[PathBuf], vault: &Vault) -> Result<Inventory, InventoryError> {
        let paths = &sources::expand_folders(paths)?;
        let first = paths.first().ok_or_else(|| InventoryError::Invalid {
            path: PathBuf::from("-i"),
            message: "no inventory given".into(),
        })?;
        let mut top: Top = IndexMap::new();
        let mut group_secrets = GroupSecrets::new();
        for p in paths {
            let mut known = BTreeSet::new();
            group_names(&top, &mut known);
            // Resolved per source, before merging, because only here is it known who wrote
            // a value (see `sources::Author`).
            let (mut t, author) = sources::read(p, &known)?;
            if author == sources::Author::Operator {
                resolve_top(&mut t, &p.display().to_string(), vault, &mut group_secrets)?;
            }
            merge_top(&mut top, t);
        }
        let mut bases: Vec<PathBuf> = Vec::new();
        for p in paths {
            let b = p.parent().unwrap_or(Path::new(".")).to_path_buf();
            if !bases.contains(&b) {
                bases.push(b);
            }
        }
        Inventory::from_top(first, &bases, top, vault, group_secrets)
    }

    /// Parse inventory text (group_vars/ and host_vars/ are looked up beside `path`).
    pub fn parse_str(path: &Path, text: &str) -> Result<Inventory, InventoryError> {
        Inventory::parse_with(path, text, &Vault::none())
    }

    fn parse_with(path: &Path, text: &str, vault: &Vault) -> Result<Inventory, InventoryError> {
        let mut top: Top = source::parse_yaml(path, text)?;
        let mut group_secrets = GroupSecrets::new();
        resolve_top(
            &mut top,
            &path.display().to_string(),
            vault,
            &mut group_secrets,
        )?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Inventory::from_top(path, &[base], top, vault, group_secrets)
    }

    fn from_top(
        path: &Path,
        bases: &[PathBuf],
        top: Top,
        vault: &Vault,
        mut group_secrets: GroupSecrets,
    ) -> Result<Inventory, InventoryError> {
        let mut nodes: BTreeMap<String, GroupNode> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        // Ansible allows top-level groups beside `all`: they are children of `all`.
        let mut all = RawGroup::default();
        let mut others = IndexMap::new();
        for (name, group) in top {
            let group = group.unwrap_or_default();
            if name == "all" {
                all = group;
            } else {
                others.insert(name, Some(group));
            }
        }
        if !others.is_empty() {
            all.children
                .get_or_insert_with(IndexMap::new)
                .extend(others);
        }
        walk(path, "all", all, None, 0, &mut nodes, &mut order)?;
        // Ansible always has `ungrouped`, a child of `all`.
        nodes
            .entry("ungrouped".into())
            .or_insert_with(|| GroupNode {
                depth: 1,
                vars: Vars::new(),
                hosts: Vec::new(),
                parents: BTreeSet::from(["all".to_string()]),
            });

        let mut group_file_vars: BTreeMap<String, Vars> = BTreeMap::new();
        for g in nodes.keys() {
            for base in bases {
                if let Some(v) = load_vars_dir(
                    &base.join("group_vars"),
                    g,
                    vault,
                    group_secrets.entry(g.clone()).or_default(),
                )? {
                    group_file_vars.entry(g.clone()).or_default().extend(v);
                }
            }
        }

        // Membership: a host is in its group and every ancestor of it.
        let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut inline_host_vars: BTreeMap<String, Vars> = BTreeMap::new();
        for (g, node) in &nodes {
            for (h, v) in &node.hosts {
                direct.entry(h.clone()).or_default().insert(g.clone());
                inline_host_vars
                    .entry(h.clone())
                    .or_default()
                    .extend(v.clone());
            }
        }
        let mut hosts = Vec::new();
        let mut inventory_warnings = Vec::new();
        let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for name in &order {
            let mut member: BTreeSet<String> = BTreeSet::new();
            let mut stack: Vec<String> = direct.get(name).into_iter().flatten().cloned().collect();
            while let Some(g) = stack.pop() {
                if member.insert(g.clone()) {
                    stack.extend(nodes[&g].parents.iter().cloned());
                }
            }
            member.insert("all".into());
            // `ungrouped` as ansible-core's `reconcile_inventory` computes it: the hosts in
            // no group but `all` (and `ungrouped`), whichever section defined them.
            if member.iter().all(|g| g == "all" || g == "ungrouped") {
                member.insert("ungrouped".into());
            } else {
                member.remove("ungrouped");
            }
            let mut ordered: Vec<&String> = member.iter().collect();
            ordered.sort_by_key(|g| (nodes[*g].depth, (*g).clone()));
            let mut vars = Vars::new();
            for g in ordered {
                vars.extend(nodes[g].vars.clone());
                if let Some(v) = group_file_vars.get(g) {
                    vars.extend(v.clone());
                }
            }
            if let Some(v) = inline_host_vars.get(name) {
                vars.extend(v.clone());
            }
            let mut secrets: Vec<Secret> = member
                .iter()
                .flat_map(|g| group_secrets.get(g).cloned().unwrap_or_default())
                .collect();
            for base in bases {
                if let Some(v) = load_vars_dir(&base.join("host_vars"), name, vault, &mut secrets)?
                {
                    vars.extend(v);
                }
            }
            for g in &member {
                groups.entry(g.clone()).or_default().insert(name.clone());
            }
            let mut host = Host::from_vars(name, member, vars)?;
            host.secrets = secrets;
            inventory_warnings.extend(host.warnings.iter().cloned());
            hosts.push(host);
        }
        for g in nodes.keys() {
            groups.entry(g.clone()).or_default();
        }
        // An encrypted vars file named for no group or host is never read: say so, rather
        // than lose its variables silently (`vault encrypt` once wrote NAME.yml.age).
        let mut warnings = inventory_warnings;
        for (base, dir, names) in bases.iter().flat_map(|base| {
            [
                (
                    base,
                    "group_vars",
                    groups.keys().cloned().collect::<Vec<_>>(),
                ),
                (
                    base,
                    "host_vars",
                    hosts.iter().map(|h| h.name.clone()).collect(),
                ),
            ]
        }) {
            let Ok(entries) = std::fs::read_dir(base.join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some(stem) = file.strip_suffix(".age") else {
                    continue;
                };
                let stem = stem
                    .strip_suffix(".yml")
                    .or_else(|| stem.strip_suffix(".yaml"))
                    .unwrap_or(stem);
                if !names.iter().any(|n| n == stem) {
                    warnings.push(format!(
                        "{}: no {} is named `{stem}`, so this encrypted file is never read",
                        base.join(dir).join(&file).display(),
                        if dir == "group_vars" { "group" } else { "host" }
                    ));
                }
            }
        }
        Ok(Inventory {
            path: path.to_path_buf(),
            hosts,
            groups,
            warnings,
        })
    }

    /// Apply extra variables (`-e`) to every host, above everything else, and derive each
    /// host's connection and FreeSWITCH settings again (`-e ansible_user=ops` takes effect).
    pub fn override_vars(&mut self, extra: &Vars) -> Result<(), InventoryError> {
        if extra.is_empty() {
            return Ok(());
        }
        for h in &mut self.hosts {
            let mut vars = h.vars.clone();
            vars.extend(extra.clone());
            let secrets = std::mem::take(&mut h.secrets);
            *h = Host::from_vars(&h.name, h.groups.clone(), vars)?;
            h.secrets = secrets;
            h.extra = extra.clone();
        }
        Ok(())
    }

    /// Why switchyard cannot manage `host` (another `ansible_connection`), if it cannot: a
    /// play that targets such a host fails for that host with this message, and never
    /// connects to it; the other hosts of the play go on.
    pub fn unmanaged(host: &Host) -> Option<String> {
        match &host.connection.kind {
            ConnectionKind::Other(c) => Some(format!(
                "host `{}` has `ansible_connection: {c}`: switchyard manages only `ssh` and `local` hosts (leave it out of the play's `hosts:` or `--limit`)",
                host.name
            )),
            _ => None,
        }
    }

    /// Hosts a play's `hosts:` pattern selects, narrowed by `--limit` when given.
    pub fn select_limited(&self, pattern: &str, limit: Option<&str>) -> Vec<&Host> {
        let limited: Option<Vec<&Host>> = limit.map(|l| self.select(l));
        self.select(pattern)
            .into_iter()
            .filter(|h| {
                limited
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|x| x.name == h.name))
            })
            .collect()
    }

    /// Hosts matching an Ansible-style pattern, in inventory order.
    ///
    /// Supported: `all`, `*`, host or group names, globs with `*`, unions with `:` or `,`,
    /// intersections with `&name` and exclusions with `!name`.
    pub fn select(&self, pattern: &str) -> Vec<&Host> {
        let mut include: BTreeSet<&str> = BTreeSet::new();
        let mut intersect: Vec<BTreeSet<&str>> = Vec::new();
        let mut exclude: BTreeSet<&str> = BTreeSet::new();
        for term in pattern
            .split([':', ','])
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            if let Some(t) = term.strip_prefix('!') {
                exclude.extend(self.expand(t));
            } else if let Some(t) = term.strip_prefix('&') {
                intersect.push(self.expand(t));
            } else {
                include.extend(self.expand(term));
            }
        }
        self.hosts
            .iter()
            .filter(|h| include.contains(h.name.as_str()))
            .filter(|h| intersect.iter().all(|s| s.contains(h.name.as_str())))
            .filter(|h| !exclude.contains(h.name.as_str()))
            .collect()
    }

    fn expand(&self, term: &str) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for (g, members) in &self.groups {
            if glob_match(term, g) {
                out.extend(members.iter().map(String::as_str));
            }
        }
        for h in &self.hosts {
            if glob_match(term, &h.name) {
                out.insert(h.name.as_str());
            }
        }
        out
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(idx) = rest.find(part) {
            rest = &rest[idx + part.len()..];
        } else {
            return false;
        }
    }
    true
}

fn walk(
    path: &Path,
    name: &str,
    raw: RawGroup,
    parent: Option<&str>,
    depth: usize,
    nodes: &mut BTreeMap<String, GroupNode>,
    order: &mut Vec<String>,
) -> Result<(), InventoryError> {
    check_name(path, "group", name)?;
    if depth > 32 {
        return Err(InventoryError::Invalid {
            path: path.to_path_buf(),
            message: format!("group `{name}` is nested more than 32 levels deep"),
        });
    }
    let node = nodes.entry(name.to_string()).or_insert_with(|| GroupNode {
        depth,
        vars: Vars::new(),
        hosts: Vec::new(),
        parents: BTreeSet::new(),
    });
    node.depth = node.depth.max(depth);
    if let Some(p) = parent {
        node.parents.insert(p.to_string());
    }
    node.vars.extend(raw.vars.unwrap_or_default());
    for (pattern, v) in raw.hosts.unwrap_or_default() {
        let (pattern, port) = host_port(&pattern);
        let names = expand_hosts(pattern).map_err(|message| InventoryError::Invalid {
            path: path.to_path_buf(),
            message: format!("host `{pattern}`: {message}"),
        })?;
        let mut v = v.unwrap_or_default();
        if let Some(port) = port {
            v.entry("ansible_port".into()).or_insert(port);
        }
        for h in names {
            check_name(path, "host", &h)?;
            if !order.contains(&h) {
                order.push(h.clone());
            }
            nodes
                .get_mut(name)
                .expect("inserted above")
                .hosts
                .push((h, v.clone()));
        }
    }
    for (child, g) in raw.children.unwrap_or_default() {
        walk(
            path,
            &child,
            g.unwrap_or_default(),
            Some(name),
            depth + 1,
            nodes,
            order,
        )?;
    }
    Ok(())
}

/// A host entry's name and port, as ansible-core's `parse_address` splits them:
/// `badwolf.example.com:5309` and `[2001:db8::1]:5309` carry a port (which becomes the
/// host's `ansible_port`); an IPv6 address, or a name with ranges (`www[01:50]`), is all name.
fn host_port(entry: &str) -> (&str, Option<Value>) {
    let port = |p: &str| {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u64>().ok().map(Value::from))
            .flatten()
    };
    if let Some((inner, p)) = entry.strip_prefix('[').and_then(|r| r.rsplit_once("]:")) {
        if let Some(p) = port(p) {
            return (inner, Some(p));
        }
    }
    let mut depth = 0i32;
    let colons: Vec<usize> = entry
        .char_indices()
        .filter_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                ':' if depth == 0 => return Some(i),
                _ => {}
            }
            None
        })
        .collect();
    if let [i] = colons[..] {
        if let Some(p) = port(&entry[i + 1..]).filter(|_| i > 0) {
            return (&entry[..i], Some(p));
        }
    }
    (entry, None)
}

/// The most hosts one range pattern may stand for: more is a typo (`[1:100000]`), not a fleet.
pub const MAX_RANGE_HOSTS: usize = 10_000;

/// Ansible's host ranges: `pbx-us-[01:50].example.net` (leading zeros kept: both ends must
/// then have the same width), `[a:f]` (single letters), `[1:9:2]` (a step), several in one
/// name. A name without `[` is itself. A range that runs backwards or expands to more than
/// [`MAX_RANGE_HOSTS`] names is an error, never a silent empty or huge group.
pub fn expand_hosts(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or("`[` without `]`")?;
    let (head, spec, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = spec.split(':').collect();
    let (beg, end, step) = match parts.as_slice() {
        [b, e] => (*b, *e, 1usize),
        [b, e, s] => (
            *b,
            *e,
            s.parse::<usize>().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!("range `[{spec}]`: the step `{s}` is not a positive number")
            })?,
        ),
        _ => {
            return Err(format!(
                "range `[{spec}]` is not `[start:end]` or `[start:end:step]`"
            ))
        }
    };
    let items: Vec<String> = if let (Ok(b), Ok(e)) = (beg.parse::<usize>(), end.parse::<usize>()) {
        let width = if beg.len() > 1 && beg.starts_with('0') {
            if beg.len() != end.len() {
                return Err(format!(
                    "range `[{spec}]`: with leading zeros, start and end need the same width"
                ));
            }
            beg.len()
        } else {
            0
        };
        if b > e {
            return Err(format!("range `[{spec}]` runs backwards and names no host"));
        }
        if (e - b) / step + 1 > MAX_RANGE_HOSTS {
            return Err(format!(
                "range `[{spec}]` names {} hosts, more than {MAX_RANGE_HOSTS}",
                (e - b) / step + 1
            ));
        }
        (b..=e)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else {
        let letter = |s: &str| {
            let mut c = s.chars();
            match (c.next(), c.next()) {
                (Some(x), None) if x.is_ascii_alphabetic() => Some(x),
                _ => None,
            }
        };
        let (Some(b), Some(e)) = (letter(beg), letter(end)) else {
            return Err(format!(
                "range `[{spec}]`: ends must both be numbers or both single letters"
            ));
        };
        if b > e {
            return Err(format!("range `[{spec}]` runs backwards and names no host"));
        }
        (b..=e).step_by(step).map(String::from).collect()
    };
    let rest = expand_hosts(tail)?;
    if items.len() * rest.len() > MAX_RANGE_HOSTS {
        return Err(format!(
            "names {} hosts, more than {MAX_RANGE_HOSTS}",
            items.len() * rest.len()
        ));
    }
    Ok(items
        .iter()
        .flat_map(|i| rest.iter().map(move |r| format!("{head}{i}{r}")))
        .collect())
}

/// Host and group names end up in file names (`host_vars/NAME.yml`) and reports: refuse
/// anything that could walk out of a folder or hide in a terminal. Letters and digits of
/// any script are fine (`příbor`, as in Ansible's own tests); spaces, slashes, control and
/// formatting characters (bidi overrides) are not. *Decision*: Ansible takes any name.
fn check_name(path: &Path, what: &str, name: &str) -> Result<(), InventoryError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'));
    if ok {
        Ok(())
    } else {
        Err(InventoryError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "{what} name `{}` may only contain letters, digits and `-_.@:`",
                name.escape_debug()
            ),
        })
    }
}

/// `group_vars/NAME.yml`, `NAME.yaml`, `NAME` or every YAML file of the folder `NAME/`,
/// then the vault-encrypted `NAME.age` (also spelt `NAME.yml.age`, as older versions of
/// `vault encrypt` named it; all of whose values are secret).
fn load_vars_dir(
    dir: &Path,
    name: &str,
    vault: &Vault,
    secrets: &mut Vec<Secret>,
) -> Result<Option<Vars>, InventoryError> {
    let mut found: Option<Vars> = None;
    let mut merge = |p: &Path,
                     text: &str,
                     all_secret: bool,
                     secrets: &mut Vec<Secret>|
     -> Result<(), InventoryError> {
        let mut v: Vars = match source::parse_yaml::<Option<Vars>>(p, text) {
            Ok(v) => v.unwrap_or_default(),
            // Errors about a decrypted file never quote it: the location only.
            Err(SourceError::Yaml {
                path, line, column, ..
            }) if all_secret => {
                return Err(SourceError::Yaml {
                    path,
                    line,
                    column,
                    message: "the decrypted content is not a YAML map of variables (its text is secret, so not shown)".into(),
                }
                .into())
            }
            Err(e) if all_secret => {
                return Err(SourceError::Invalid {
                    path: p.to_path_buf(),
                    message: format!(
                        "the decrypted content is not a YAML map of variables ({})",
                        match e {
                            SourceError::TooLarge { .. } => "too large",
                            _ => "unreadable",
                        }
                    ),
                }
                .into())
            }
            Err(e) => return Err(e.into()),
        };
        resolve_vars(&mut v, &p.display().to_string(), vault, secrets)?;
        if all_secret {
            v.values().for_each(|x| all_values(x, secrets));
        }
        found.get_or_insert_with(Vars::new).extend(v);
        Ok(())
    };
    for candidate in [
        format!("{name}.yml"),
        format!("{name}.yaml"),
        name.to_string(),
        format!("{name}.age"),
        format!("{name}.yml.age"),
        format!("{name}.yaml.age"),
    ] {
        let p = dir.join(&candidate);
        if p.is_file() && candidate.ends_with(".age") {
            let bytes = std::fs::read(&p).map_err(|e| SourceError::Read {
                path: p.clone(),
                source: e,
            })?;
            let plain = vault.decrypt(&bytes, Some(&p.display().to_string()))?;
            let text = String::from_utf8(plain).map_err(|e| SourceError::NotUtf8 {
                path: p.clone(),
                offset: e.utf8_error().valid_up_to(),
            })?;
            merge(&p, &text, true, secrets)?;
        } else if p.is_file() {
            merge(&p, &source::read_text(&p)?, false, secrets)?;
        } else if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| SourceError::Read {
                    path: p.clone(),
                    source: e,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| matches!(f.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
                .collect();
            files.sort();
            for f in files {
                merge(&f, &source::read_text(&f)?, false, secrets)?;
            }
        }
    }
    Ok(found)
}

fn var_str(vars: &Vars, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match vars.get(*n) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

impl Host {
    /// Resolve connection and FreeSWITCH settings from merged variables.
    pub fn from_vars(
        name: &str,
        groups: BTreeSet<String>,
        vars: Vars,
    ) -> Result<Host, InventoryError> {
        let bad = |var: &str, message: String| InventoryError::BadVar {
            host: name.to_string(),
            var: var.to_string(),
            message,
        };
        let connection = var_str(&vars, &["ansible_connection", "connection"]);
        let plugin = connection.as_deref().map(|c| {
            c.strip_prefix("ansible.builtin.")
                .or_else(|| c.strip_prefix("ansible.legacy."))
                .unwrap_or(c)
        });
        let kind = match plugin {
            // paramiko speaks SSH too, as switchyard does.
            None | Some("ssh" | "smart" | "paramiko" | "paramiko_ssh") => ConnectionKind::Ssh,
            Some("local") => ConnectionKind::Local,
            // A switch, a Windows host, a container: it belongs to the inventory, and only
            // a play that targets it is refused (`Inventory::unmanaged`). Its SSH settings
            // mean nothing to switchyard, so they are not checked.
            Some(_) => {
                let other = connection.unwrap_or_default();
                return Ok(Host {
                    name: name.to_string(),
                    groups,
                    connection: Connection {
                        kind: ConnectionKind::Other(other),
                        address: var_str(&vars, &["ansible_host"])
                            .unwrap_or_else(|| name.to_string()),
                        port: 0,
                        user: String::new(),
                        key_file: None,
                        become_root: false,
                        connect_timeout: Duration::ZERO,
                        command_timeout: Duration::ZERO,
                        jump: Vec::new(),
                        retries: 0,
                    },
                    vars,
                    secrets: Vec::new(),
                    freeswitch: FreeSwitch {
                        conf_root: String::new(),
                        owner: String::new(),
                        group: String::new(),
                        fs_cli: String::new(),
                        restart_command: String::new(),
                    },
                    warnings: Vec::new(),
                    extra: Vars::new(),
                });
            }
        };
        let port = match var_str(&vars, &["ansible_port", "ssh_port"]) {
            None => 22,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad("ssh_port", format!("`{p}` is not a port number")))?,
        };
        let user = var_str(&vars, &["ansible_user", "ssh_user"]).unwrap_or_else(|| "root".into());
        let become_root = match var_str(&vars, &["ansible_become", "become"]) {
            Some(b) => {
                parse_bool(&b).ok_or_else(|| bad("become", format!("`{b}` is not a boolean")))?
            }
            None => user != "root",
        };
        let secs = |names: &[&str], default: f64| -> Result<Duration, InventoryError> {
            match var_str(&vars, names) {
                None => Ok(Duration::from_secs_f64(default)),
                Some(s) => s
                    .parse::<f64>()
                    .ok()
                    .filter(|v| *v > 0.0 && *v < 86400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| bad(names[0], format!("`{s}` is not a number of seconds"))),
            }
        };
        let mut warnings = unused_ansible_vars(&vars);
        let jump = match vars.get("ssh_jump") {
            Some(Value::String(s)) => s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            Some(_) => return Err(bad("ssh_jump", "takes `user@host:port[,...]`".into())),
            None => match vars.get("ansible_ssh_common_args") {
                None => Vec::new(),
                Some(Value::String(s)) => {
                    let (jump, ignored) =
                        ssh_common_args(s).map_err(|m| bad("ansible_ssh_common_args", m))?;
                    if !ignored.is_empty() {
                        warnings.push(format!(
                            "`ansible_ssh_common_args`: switchyard ignores `{}` (only ProxyJump, -J and `ProxyCommand=ssh -W %h:%p` are used)",
                            ignored.join(" ")
                        ));
                    }
                    jump
                }
                Some(_) => {
                    return Err(bad(
                        "ansible_ssh_common_args",
                        "takes a string of ssh options".into(),
                    ))
                }
            },
        };
        let connection = Connection {
            kind,
            address: var_str(&vars, &["ansible_host", "ssh_host"])
                .unwrap_or_else(|| name.to_string()),
            port,
            user,
            key_file: var_str(
                &vars,
                &["ansible_ssh_private_key_file", "ssh_private_key_file"],
            )
            .map(PathBuf::from),
            become_root,
            connect_timeout: secs(&["ssh_connect_timeout", "ansible_ssh_timeout"], 10.0)?,
            command_timeout: secs(&["command_timeout"], 120.0)?,
            jump,
            retries: match var_str(&vars, &["ssh_retries", "ansible_ssh_retries"]) {
                None => 2,
                Some(r) => r.parse().ok().filter(|r| *r <= 10).ok_or_else(|| {
                    bad("ssh_retries", format!("`{r}` is not a count from 0 to 10"))
                })?,
            },
        };
        let conf_root = var_str(&vars, &["freeswitch_conf_root"])
            .unwrap_or_else(|| "/usr/local/freeswitch/conf".into());
        if !conf_root.starts_with('/') || conf_root.split('/').any(|c| c == "..") {
            return Err(bad(
                "freeswitch_conf_root",
                format!("`{conf_root}` must be an absolute path without `..`"),
            ));
        }
        let freeswitch = FreeSwitch {
            conf_root: conf_root.trim_end_matches('/').to_string(),
            owner: var_str(&vars, &["freeswitch_owner"]).unwrap_or_else(|| "freeswitch".into()),
            group: var_str(&vars, &["freeswitch_group"]).unwrap_or_else(|| "freeswitch".into()),
            fs_cli: var_str(&vars, &["fs_cli"]).unwrap_or_else(|| "fs_cli".into()),
            restart_command: var_str(&vars, &["freeswitch_restart_command"])
                .unwrap_or_else(|| "systemctl restart freeswitch".into()),
        };
        Ok(Host {
            name: name.to_string(),
            groups,
            vars,
            secrets: Vec::new(),
            connection,
            freeswitch,
            warnings: warnings
                .into_iter()
                .map(|w| format!("host `{name}`: {w}"))
                .collect(),
            extra: Vars::new(),
        })
    }
}

/// `ansible_*` variables that would change how Ansible connects or runs, which switchyard
/// does not act on: named, so nobody believes they took effect.
fn unused_ansible_vars(vars: &Vars) -> Vec<String> {
    const USED: &[&str] = &[
        "ansible_host",
        "ansible_port",
        "ansible_user",
        "ansible_connection",
        "ansible_become",
        "ansible_ssh_private_key_file",
        "ansible_ssh_common_args",
        "ansible_ssh_timeout",
        "ansible_ssh_retries",
    ];
    // Harmless for switchyard: it runs `sh`, never Python.
    const IRRELEVANT: &[&str] = &["ansible_python_interpreter"];
    let mut out = Vec::new();
    for k in vars.keys().filter(|k| k.starts_with("ansible_")) {
        if USED.contains(&k.as_str()) || IRRELEVANT.contains(&k.as_str()) {
            continue;
        }
        let why = match k.as_str() {
            "ansible_password" | "ansible_ssh_pass" | "ansible_ssh_password" => {
                "password logins are not used (keys or the SSH agent only)"
            }
            "ansible_become_password" | "ansible_become_pass" => {
                "`sudo -n` is used: give the login passwordless sudo for sh"
            }
            "ansible_become_method" | "ansible_become_user" => {
                "becoming root is always `sudo -n` to root"
            }
            "ansible_become_method_flags" | "ansible_become_exe" | "ansible_become_flags" => {
                "becoming root is always `sudo -n` to root"
            }
            _ => "not used by switchyard",
        };
        if k == "ansible_become_method" && vars[k] == "sudo" {
            continue;
        }
        if k == "ansible_become_user" && vars[k] == "root" {
            continue;
        }
        out.push(format!("`{k}` is ignored: {why}"));
    }
    out
}

/// The jump hosts in Ansible's `ansible_ssh_common_args` (`-o ProxyJump=a,b`, `-J a`,
/// `-o ProxyCommand="ssh -W %h:%p [-p N] [user@]host"`), and the options it leaves unused.
fn ssh_common_args(s: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let words = shell_words(s)?;
    let mut jump = Vec::new();
    let mut ignored = Vec::new();
    let mut i = 0;
    let split_jumps = |v: &str| -> Vec<String> {
        v.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    };
    while i < words.len() {
        let w = &words[i];
        let option = if w == "-o" {
            i += 1;
            words.get(i).cloned()
        } else {
            w.strip_prefix("-o").map(String::from)
        };
        if let Some(o) = option {
            let (k, v) = o
                .split_once(['=', ' '])
                .map(|(k, v)| (k.trim(), v.trim()))
                .unwrap_or((o.as_str(), ""));
            if k.eq_ignore_ascii_case("ProxyJump") {
                jump.extend(split_jumps(v));
            } else if k.eq_ignore_ascii_case("ProxyCommand") {
                jump.push(proxy_command(v)?);
            } else {
                ignored.push(format!("-o {o}"));
            }
        } else if w == "-J" {
            i += 1;
            jump.extend(split_jumps(words.get(i).map(String::as_str).unwrap_or("")));
        } else if let Some(v) = w.strip_prefix("-J") {
            jump.extend(split_jumps(v));
        } else {
            ignored.push(w.clone());
        }
        i += 1;
    }
    Ok((jump, ignored))
}

/// `ssh -W %h:%p [-q] [-p N] [-l user] [user@]host` → `user@host:port`.
fn proxy_command(cmd: &str) -> Result<String, String> {
    let w = shell_words(cmd)?;
    let unsupported = || {
        format!("ProxyCommand `{cmd}` is not `ssh -W %h:%p [user@]host`: set `ssh_jump` instead")
    };
    if w.first().map(String::as_str) != Some("ssh") || !w.iter().any(|x| x == "-W") {
        return Err(unsupported());
    }
    let (mut port, mut user, mut host) = (None, None, None);
    let mut i = 1;
    while i < w.len() {
        match w[i].as_str() {
            "-W" => i += 1,
            "-p" => {
                i += 1;
                port = w.get(i).cloned();
            }
            "-l" => {
                i += 1;
                user = w.get(i).cloned();
            }
            "-q" | "-T" | "-4" | "-6" | "-C" => {}
            x if x.starts_with('-') => return Err(unsupported()),
            x => host = Some(x.to_string()),
        }
        i += 1;
    }
    let host = host.ok_or_else(unsupported)?;
    let host = match (user, host.contains('@')) {
        (Some(u), false) => format!("{u}@{host}"),
        _ => host,
    };
    Ok(match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// Split like a POSIX shell (single and double quotes, backslash), without expansions.
fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                any = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed ' in `{s}`")),
                    }
                }
            }
            '"' => {
                any = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => cur.extend(chars.next()),
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed \" in `{s}`")),
                    }
                }
            }
            '\\' => {
                any = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                any = true;
                cur.push(c);
            }
        }
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxyjump_in_ssh_common_args_becomes_the_jump_chain() {
        let j = |s: &str| ssh_common_args(s).unwrap();
        assert_eq!(j("-o ProxyJump=ops@bastion:2222").0, ["ops@bastion:2222"]);
        assert_eq!(j("-J a,b").0, ["a", "b"]);
        assert_eq!(
            j("-o ProxyCommand=\"ssh -W %h:%p -q -p 2200 ops@bastion\"").0,
            ["ops@bastion:2200"]
        );
        assert_eq!(
            j("-o StrictHostKeyChecking=no -J b"),
            (
                vec!["b".to_string()],
                vec!["-o StrictHostKeyChecking=no".to_string()]
            )
        );
        assert!(
            ssh_common_args("-o ProxyCommand=\"nc -X 5 -x proxy %h %p\"")
                .unwrap_err()
                .contains("set `ssh_jump` instead")
        );
        let mut vars = Vars::new();
        vars.insert("ansible_password".into(), "x".into());
        vars.insert(
            "ansible_python_interpreter".into(),
            "/usr/bin/python3".into(),
        );
        vars.insert("ansible_become_method".into(), "sudo".into());
        vars.insert(
            "ansible_ssh_common_args".into(),
            "-o ProxyJump=b -o Compression=yes".into(),
        );
        let h = Host::from_vars("pbx1", BTreeSet::new(), vars).unwrap();
        assert_eq!(h.connection.jump, ["b"]);
        assert_eq!(h.warnings.len(), 2, "{:?}", h.warnings);
        assert!(h.warnings[0].contains("`ansible_password` is ignored: password logins"));
        assert!(h.warnings[1].contains("ignores `-o Compression=yes`"));
    }

    #[test]
    fn host_ranges_expand_as_ansible_expands_them() {
        assert_eq!(
            expand_hosts("pbx-us-[01:03].example.net").unwrap(),
            [
                "pbx-us-01.example.net",
                "pbx-us-02.example.net",
                "pbx-us-03.example.net"
            ]
        );
        assert_eq!(expand_hosts("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert_eq!(expand_hosts("n[1:9:4]").unwrap(), ["n1", "n5", "n9"]);
        assert_eq!(
            expand_hosts("r[1:2]-[a:b]").unwrap(),
            ["r1-a", "r1-b", "r2-a", "r2-b"]
        );
        assert_eq!(expand_hosts("[8:10]").unwrap(), ["8", "9", "10"]);
        assert_eq!(expand_hosts("plain").unwrap(), ["plain"]);
        for (bad, why) in [
            ("x[5:1]", "runs backwards"),
            ("x[1:100000]", "100000 hosts, more than 10000"),
            ("x[001:10]", "same width"),
            ("x[1:3", "without `]`"),
            ("x[1:3:0]", "not a positive number"),
            ("x[a:3]", "both be numbers or both single letters"),
            ("x[1:200][1:100]", "more than 10000"),
        ] {
            let e = expand_hosts(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn ansible_layout_with_group_and_host_vars() {
        let dir = tempdir("inv");
        write(
            &dir,
            "hosts.yml",
            "all:\n  vars:\n    trunk_realm: us.wavix.net\n    level: all\n  children:\n    pbx:\n      vars:\n        level: pbx\n      hosts:\n        pbx1:\n          ansible_host: 10.0.0.1\n          ansible_port: 2222\n        pbx2:\n      children:\n        eu:\n          hosts:\n            pbx3:\n              ansible_user: deploy\n",
        );
        write(
            &dir,
            "group_vars/eu.yml",
            "trunk_realm: nl.wavix.net\nlevel: eu\n",
        );
        write(&dir, "host_vars/pbx2.yml", "level: host\n");
        let inv = Inventory::load(&dir.join("hosts.yml")).unwrap();
        let names: Vec<_> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["pbx1", "pbx2", "pbx3"]);
        let h1 = &inv.hosts[0];
        assert_eq!(h1.connection.address, "10.0.0.1");
        assert_eq!(h1.connection.port, 2222);
        assert!(!h1.connection.become_root);
        assert_eq!(h1.vars["level"], "pbx");
        assert_eq!(inv.hosts[1].vars["level"], "host");
        let h3 = &inv.hosts[2];
        assert_eq!(h3.vars["trunk_realm"], "nl.wavix.net");
        assert_eq!(h3.vars["level"], "eu");
        assert!(
            h3.connection.become_root,
            "non-root user becomes root via sudo"
        );
        assert!(h3.groups.contains("pbx") && h3.groups.contains("eu"));
        let sel: Vec<_> = inv
            .select("pbx:!eu")
            .iter()
            .map(|h| h.name.clone())
            .collect();
        assert_eq!(sel, ["pbx1", "pbx2"]);
        let sel: Vec<_> = inv
            .select("pbx*,&eu")
            .iter()
            .map(|h| h.name.clone())
            .collect();
        assert_eq!(sel, ["pbx3"]);
    }

    #[test]
    fn hostile_names_are_refused() {
        let dir = tempdir("inv-bad");
        write(&dir, "hosts.yml", "all:\n  hosts:\n    ../etc:\n");
        let err = Inventory::load(&dir.join("hosts.yml")).unwrap_err();
        assert!(err.to_string().contains("may only contain"), "{err}");
    }

    pub fn tempdir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "switchyard-unit-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}
