//! Where each imported variable is written: the value every host shares in the play's group
//! (`group_vars/pbx.yml`), a value all hosts of one of their groups share in that group's
//! file, and only what differs in `host_vars/HOST.yml`; a value the playbook's own default
//! already gives is not written at all. (Secret-bearing variables, see
//! [`super::map::SECRET_VARS`], then go to the `.age` twin of each file.)
//!
//! Precedence is the loader's: play vars (defaults), then groups (the top group before its
//! children, children by name), then the host. The layout is checked against it: each
//! host's effective value is computed here as the loader will, and the host keeps its own
//! value whenever a group's would differ.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One imported host: its name, its groups (below the top group, in precedence order) and
/// every variable mapped for it.
pub struct HostVars {
    pub name: String,
    pub groups: Vec<String>,
    pub vars: Map<String, Value>,
}

/// Group or host → its variables.
pub type Files = BTreeMap<String, Map<String, Value>>;

#[derive(Debug, Default, PartialEq)]
pub struct Layout {
    pub groups: Files,
    pub hosts: Files,
}

/// Lay the hosts' variables out over `top` (the group the play targets, every host in it),
/// their other groups and their own files.
pub fn layout(hosts: &[HostVars], top: &str, defaults: &Map<String, Value>) -> Layout {
    let mut out = Layout::default();
    let names: std::collections::BTreeSet<&String> =
        hosts.iter().flat_map(|h| h.vars.keys()).collect();
    // Groups by name, with their members.
    let mut members: BTreeMap<&str, Vec<&HostVars>> = BTreeMap::new();
    for h in hosts {
        for g in &h.groups {
            members.entry(g).or_default().push(h);
        }
    }
    for var in names {
        let shared = |hs: &[&HostVars]| -> Option<Value> {
            let first = hs.first()?.vars.get(var)?;
            hs.iter()
                .all(|h| h.vars.get(var) == Some(first))
                .then(|| first.clone())
        };
        let all: Vec<&HostVars> = hosts.iter().collect();
        let mut by_group: BTreeMap<&str, Value> = BTreeMap::new();
        if let Some(v) = shared(&all) {
            if defaults.get(var) != Some(&v) {
                by_group.insert(top, v);
            }
        } else {
            for (g, hs) in &members {
                match shared(hs) {
                    Some(v) if hs.len() > 1 && defaults.get(var) != Some(&v) => {
                        by_group.insert(g, v);
                    }
                    _ => {}
                }
            }
        }
        for (g, v) in &by_group {
            out.groups
                .entry(g.to_string())
                .or_default()
                .insert(var.clone(), v.clone());
        }
        for h in hosts {
            let Some(own) = h.vars.get(var) else { continue };
            // The loader's order: defaults, the top group, the host's groups by name.
            let mut effective = defaults.get(var);
            if let Some(v) = by_group.get(top) {
                effective = Some(v);
            }
            let mut mine: Vec<&String> = h.groups.iter().collect();
            mine.sort();
            for g in mine {
                if let Some(v) = by_group.get(g.as_str()) {
                    effective = Some(v);
                }
            }
            if effective != Some(own) {
                out.hosts
                    .entry(h.name.clone())
                    .or_default()
                    .insert(var.clone(), own.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host(name: &str, groups: &[&str], vars: Value) -> HostVars {
        HostVars {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            vars: vars.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn shared_values_go_to_groups_and_hosts_keep_only_what_differs() {
        let defaults = json!({"rtp_start_port": 10000})
            .as_object()
            .unwrap()
            .clone();
        let hosts = [
            host(
                "a",
                &["eu"],
                json!({"u": "x", "ip": "1", "r": "nl", "rtp_start_port": 10000}),
            ),
            host(
                "b",
                &["eu"],
                json!({"u": "x", "ip": "2", "r": "nl", "rtp_start_port": 10000}),
            ),
            host(
                "c",
                &["us"],
                json!({"u": "x", "ip": "3", "r": "us", "rtp_start_port": 10000}),
            ),
            host(
                "d",
                &["us"],
                json!({"u": "x", "ip": "4", "r": "us2", "rtp_start_port": 12000}),
            ),
        ];
        let l = layout(&hosts, "pbx", &defaults);
        assert_eq!(l.groups["pbx"], *json!({"u": "x"}).as_object().unwrap());
        assert_eq!(l.groups["eu"], *json!({"r": "nl"}).as_object().unwrap());
        assert!(!l.groups.contains_key("us"));
        assert_eq!(l.hosts["a"], *json!({"ip": "1"}).as_object().unwrap());
        assert_eq!(
            l.hosts["c"],
            *json!({"ip": "3", "r": "us"}).as_object().unwrap()
        );
        // A value the playbook's default gives is not written; one that differs is.
        assert_eq!(
            l.hosts["d"],
            *json!({"ip": "4", "r": "us2", "rtp_start_port": 12000})
                .as_object()
                .unwrap()
        );
    }
}
