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
//!
//! This file loads, merges and walks the groups; beside it: `sources.rs` (which reader a
//! source needs: YAML, INI, TOML, an inventory script), `vars_dir.rs` (`group_vars/`,
//! `host_vars/`), `host.rs` (a host's settings from its variables), `ssh_args.rs`
//! (`ansible_ssh_common_args`), `patterns.rs` (host patterns and ranges).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
    /// A `{env: ...}`, `{file: ...}` or `{vault: ...}` value that cannot be resolved:
    /// `origin` is the file (and line, when found), `place` the host or group it is under.
    #[error("{origin}: {}variable `{var}`: {message}", place.as_deref().map(|p| format!("{p}: ")).unwrap_or_default())]
    Secret {
        origin: String,
        place: Option<String>,
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

mod host;
mod ini;
mod patterns;
mod pyliteral;
mod schema;
mod secrets;
mod sources;
mod ssh_args;
mod toml_source;
mod vars_dir;

pub use host::{parse_bool, Connection, ConnectionKind};
pub use patterns::{expand_hosts, glob_match, MAX_RANGE_HOSTS};
use secrets::{all_values, resolve_top, resolve_vars, GroupSecrets};
use vars_dir::load_vars_dir;
pub(crate) use vars_dir::vars_file_names;

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

#[cfg(test)]
mod tests {
    use super::*;

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
