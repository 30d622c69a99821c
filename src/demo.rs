//! The built-in demo fleet.
//!
//! `switchyard demo` lays out three PBX folders with stock-shaped FreeSWITCH conf trees,
//! an inventory that reaches them with the local transport, and the shipped Wavix playbook,
//! then runs the normal pipeline on them (diffs, reloads, verification, recap). FreeSWITCH
//! itself is played by the test suite's stand-in `fs_cli` (tests/fixtures), with a fake
//! provider that accepts the demo trunk passwords, so the demo needs no PBX.

use std::path::{Path, PathBuf};

use crate::host::script::quote;
use crate::BoxError;

pub use crate::stock::STOCK_CONF;

/// The FreeSWITCH stand-in (a test fixture, see its header).
pub const FS_CLI_STANDIN: &str = include_str!("../tests/fixtures/fs_cli_standin.py");

const PLAYBOOK: &str = include_str!("../playbooks/wavix.yml");
const TEMPLATES: &[(&str, &str)] = &[
    (
        "gateway.xml.j2",
        include_str!("../templates/gateway.xml.j2"),
    ),
    (
        "dialplan.xml.j2",
        include_str!("../templates/dialplan.xml.j2"),
    ),
    ("user.xml.j2", include_str!("../templates/user.xml.j2")),
    (
        "carrier.xml.j2",
        include_str!("../templates/carrier.xml.j2"),
    ),
    (
        "acl.conf.xml.j2",
        include_str!("../templates/acl.conf.xml.j2"),
    ),
];

fn write(path: &Path, text: &str) -> Result<(), BoxError> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Lay out a FreeSWITCH-like host folder: conf tree, stand-in `fs_cli`, provider accounts.
pub fn make_host(dir: &Path, accounts: &serde_json::Value) -> Result<(), BoxError> {
    for (rel, text) in STOCK_CONF {
        write(&dir.join("conf").join(rel), text)?;
    }
    let fs_cli = dir.join("bin/fs_cli");
    write(&fs_cli, FS_CLI_STANDIN)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fs_cli, std::fs::Permissions::from_mode(0o755))?;
    let cfg = serde_json::json!({
        "conf_root": dir.join("conf"),
        "state": dir.join("state"),
        "accounts": accounts,
    });
    write(
        &dir.join("bin/standin.json"),
        &serde_json::to_string_pretty(&cfg)?,
    )
}

/// Lay out the demo fleet in `dir` (created on first use, kept after; `reset` starts again
/// from stock conf trees) with the shipped playbook and templates; returns the folder.
pub fn prepare(dir: &Path, reset: bool) -> Result<PathBuf, BoxError> {
    if !Path::new("/usr/bin/python3").exists() {
        return Err("the demo's stand-in FreeSWITCH (tests/fixtures/fs_cli_standin.py) needs /usr/bin/python3: `apt-get install python3-minimal`".into());
    }
    if reset && dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let fresh = !dir.join("inventory.yml").exists();
    // (name, realm, failover, password, did)
    let hosts = [
        (
            "pbx-nyc",
            "us.wavix.net",
            "nl.wavix.net",
            "nyc-Secr3t!",
            "16465550100",
        ),
        (
            "pbx-dal",
            "us.wavix.net",
            "nl.wavix.net",
            "dal-Secr3t!",
            "14695550101",
        ),
        (
            "pbx-ams",
            "nl.wavix.net",
            "us.wavix.net",
            "ams-Secr3t!",
            "31205550102",
        ),
    ];
    if fresh {
        let (user, group) = crate::host::state::current_user_and_group();
        let mut inv = String::from("# Demo fleet: three PBX folders reached with the local transport.\nall:\n  children:\n    pbx:\n      vars:\n        ansible_connection: local\n");
        inv.push_str(&format!("        freeswitch_owner: {user}\n        freeswitch_group: {group}\n        wavix_username: \"100001\"\n        emergency_calls: trunk\n      hosts:\n"));
        for (name, realm, failover, pw, did) in hosts {
            let hdir = dir.join("hosts").join(name);
            let mut accounts = serde_json::Map::new();
            for r in ["us.wavix.net", "nl.wavix.net"] {
                accounts.insert(r.into(), serde_json::json!({"100001": pw}));
            }
            make_host(&hdir, &serde_json::Value::Object(accounts))?;
            let fs_cli = quote(&hdir.join("bin/fs_cli").to_string_lossy());
            inv.push_str(&format!(
                "        {name}:\n          freeswitch_conf_root: {}\n          fs_cli: {}\n          freeswitch_restart_command: {}\n          wavix_realm: {realm}\n          wavix_failover_proxy: {failover}\n          wavix_password: {}\n          did_routes: [{{number: \"{did}\", extension: \"1000\"}}]\n          user: {{id: \"1000\", password: \"ext-{name}-pw\", vm_password: \"4711\", caller_id_name: \"{name}\", caller_id_number: \"{did}\"}}\n",
                serde_json::to_string(&hdir.join("conf"))?,
                serde_json::to_string(&fs_cli)?,
                serde_json::to_string(&format!("{fs_cli} --standin-restart"))?,
                serde_json::to_string(pw)?,
            ));
        }
        write(&dir.join("inventory.yml"), &inv)?;
        eprintln!("demo fleet created in {}", dir.display());
    }
    // The playbook and templates are the shipped ones, as built into this binary; the
    // playbook's first line names ../schema/playbook.schema.json for editors.
    write(&dir.join("playbooks/wavix.yml"), PLAYBOOK)?;
    let schema = crate::inputs::playbook::Playbook::json_schema();
    write(
        &dir.join("schema/playbook.schema.json"),
        &serde_json::to_string_pretty(&schema)?,
    )?;
    for (n, t) in TEMPLATES {
        write(&dir.join("templates").join(n), t)?;
    }
    Ok(dir)
}
