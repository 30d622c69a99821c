//! `switchyard inventory`: hosts, groups and merged variables as switchyard reads them,
//! every secret masked.

use std::path::PathBuf;

use clap::Args;

use super::Context;
use crate::exit::{CommandResult, ExitStatus};

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Inventory: YAML, INI or an executable inventory script; repeat to merge several in order (default: `inventory` in switchyard.toml)
    #[arg(
        long,
        short = 'i',
        value_name = "FILE",
        env = "SWITCHYARD_INVENTORY",
        hide_env_values = true
    )]
    pub inventory: Vec<PathBuf>,
    /// Extra variables, as for `apply -e` (shows what a run would see)
    #[arg(long = "extra-vars", short = 'e', value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Only this host
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Print JSON on stdout (hosts with their groups, connection and variables; groups)
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: InventoryArgs, cx: &Context) -> CommandResult {
    let extra = super::extra_vars(&a.extra_vars)?;
    let sources = cx.inventories(&a.inventory)?;
    let mut inv = super::load_inventory(&sources, &cx.vault)?;
    inv.override_vars(&extra)?;
    let hosts: Vec<&crate::inputs::inventory::Host> = inv
        .hosts
        .iter()
        .filter(|h| a.host.as_ref().is_none_or(|n| &h.name == n))
        .collect();
    // An inventory of groups with no hosts yet lists as empty, as in Ansible; a `--host`
    // that names no host is an error.
    if hosts.is_empty() && a.host.is_some() {
        return Err(format!(
            "no host `{}` in {}",
            a.host.unwrap_or_default(),
            sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into());
    }
    let masked = |h: &crate::inputs::inventory::Host| -> serde_json::Value {
        let mut vars = serde_json::to_value(&h.vars).unwrap_or_default();
        mask(&mut vars, false);
        // Values from the vault, the environment or secret files, whatever they are called,
        // wherever they ended up (an fs_cli line with `-p PASSWORD` included): masked in
        // every string before anything is serialized.
        let mut r = crate::secret::Redactor::default();
        r.add_secrets(&h.secrets);
        // The event socket password of an `fs_cli` line given in plain text: its
        // `-p`/`--password` value shown as `********`, in the line and in `vars`.
        let mut fs = h.freeswitch.clone();
        let c = crate::host::script::FsCli::split(&fs.fs_cli);
        if c.password.is_some() {
            if let Some(v) = vars
                .get_mut("fs_cli")
                .filter(|v| v.as_str() == Some(&fs.fs_cli))
            {
                *v = c.masked.clone().into();
            }
            fs.fs_cli = c.masked;
        }
        let mut v = serde_json::json!({
            "name": h.name,
            "groups": h.groups,
            "connection": h.connection,
            "freeswitch": fs,
            "vars": vars,
        });
        r.redact_value(&mut v);
        v
    };
    if a.json {
        let v: Vec<serde_json::Value> = hosts.iter().map(|h| masked(h)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"hosts": v, "groups": inv.groups}))?
        );
    } else {
        for h in hosts {
            let v = masked(h);
            println!("{}:", h.name);
            println!(
                "  groups: {}",
                h.groups.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            let text = |p: &str| {
                v.pointer(p)
                    .and_then(|x| x.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let sudo = if h.connection.become_root {
                " (sudo)"
            } else {
                ""
            };
            // A local host is reached by no address, user or port: none is shown.
            if h.connection.kind == crate::inputs::inventory::ConnectionKind::Local {
                println!("  connection: local (commands run on this machine){sudo}");
            } else {
                println!(
                    "  connection: {} {}@{}:{}{}",
                    v.pointer("/connection/kind")
                        .map(|k| k
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| k.to_string()))
                        .unwrap_or_default(),
                    text("/connection/user"),
                    text("/connection/address"),
                    h.connection.port,
                    sudo
                );
            }
            println!(
                "  freeswitch: conf_root={} owner={}:{} fs_cli={}",
                text("/freeswitch/conf_root"),
                text("/freeswitch/owner"),
                text("/freeswitch/group"),
                text("/freeswitch/fs_cli"),
            );
            println!("  vars:");
            if let Some(o) = v["vars"].as_object() {
                for (k, val) in o {
                    println!("    {k}: {val}");
                }
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn mask(v: &mut serde_json::Value, secret: bool) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                mask(x, secret || crate::secret::is_secret_name(k));
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| mask(x, secret)),
        other if secret => *other = serde_json::Value::String(crate::secret::MASK.into()),
        _ => {}
    }
}
