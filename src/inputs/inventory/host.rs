//! A host's connection and FreeSWITCH settings, read from its merged variables as Ansible
//! reads `ansible_*` variables ([`Host::from_vars`]).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{ssh_args, FreeSwitch, Host, InventoryError, Vars};

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
                    let (jump, ignored) = ssh_args::ssh_common_args(s)
                        .map_err(|m| bad("ansible_ssh_common_args", m))?;
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

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}
