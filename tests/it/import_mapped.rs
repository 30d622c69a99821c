//! `switchyard import` in its default mode against real sshd hosts: each PBX's tree mapped
//! onto the shipped playbook's variables, secrets only in vault files, what every host
//! shares in group_vars; `apply --check` afterwards shows what switchyard would change, and
//! IMPORT.md says why.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::harness::*;

/// The vault passphrase, in a file both the binary and the test read.
fn vault_file(fleet: &Fleet) -> PathBuf {
    let p = fleet.dir.join("vault-pass");
    std::fs::write(&p, "import-map test vault passphrase\n").unwrap();
    p
}

pub(crate) fn import(fleet: &Fleet, inv: &Path, dir: &Path) -> Out {
    let vault = vault_file(fleet);
    switchyard(&[
        "--vault-password-file",
        vault.to_str().unwrap(),
        "import",
        "-i",
        inv.to_str().unwrap(),
        &repo("playbooks/wavix.yml"),
        "--write",
        dir.to_str().unwrap(),
        "--known-hosts",
        fleet.known_hosts.to_str().unwrap(),
    ])
}

pub(crate) fn apply(fleet: &Fleet, dir: &Path, check: bool) -> Out {
    let vault = vault_file(fleet);
    let mut args = vec![
        "--vault-password-file",
        vault.to_str().unwrap(),
        "apply",
        "-i",
        dir.join("inventory").to_str().unwrap().to_string().leak(),
        dir.join("playbook.yml")
            .to_str()
            .unwrap()
            .to_string()
            .leak(),
        "--known-hosts",
        fleet.known_hosts.to_str().unwrap(),
    ];
    if check {
        args.push("--check");
    }
    switchyard(&args)
}

/// Every host's variables as `apply` loads them from the imported project (vault files
/// decrypted).
fn loaded_vars(fleet: &Fleet, dir: &Path) -> Vec<(String, serde_json::Map<String, Value>)> {
    let vault =
        switchyard::inputs::vault::Vault::from_sources(Some(&vault_file(fleet)), None).unwrap();
    let inv = switchyard::inputs::inventory::Inventory::load_all(&[dir.join("inventory")], &vault)
        .unwrap();
    inv.hosts
        .into_iter()
        .map(|h| (h.name, h.vars.into_iter().collect()))
        .collect()
}

/// Connection settings and switchyard's own variables: not the playbook's.
fn playbook_vars(vars: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    vars.iter()
        .filter(|(k, _)| {
            !k.starts_with("ansible_")
                && !k.starts_with("ssh_")
                && !k.starts_with("freeswitch_")
                && !["fs_cli", "command_timeout", "inventory_hostname"].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every file under `dir` holding `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_holding(&p, needle));
        } else if String::from_utf8_lossy(&std::fs::read(&p).unwrap()).contains(needle) {
            out.push(p.display().to_string());
        }
    }
    out
}

/// A PBX provisioned by switchyard from playbooks/wavix.yml, imported into a fresh project:
/// `apply --check` there changes nothing, and the variables it loads are the ones the PBX
/// was provisioned from (the single `user:` as a one-entry `users:`, its password and PIN
/// in `user_secrets`); its secrets only in vault files.
#[test]
fn a_pbx_provisioned_by_switchyard_imports_to_its_own_variables() {
    let fleet = Fleet::new("import-map-rt", 1);
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let first = fleet.run("apply", &inv, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    let dir = tmp("import-map-rt-project").join("project");
    let out = import(&fleet, &inv, &dir);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        !out.stdout.contains(": why: ") && !out.stdout.contains(": not mapped: "),
        "{}",
        out.stdout
    );
    let c = apply(&fleet, &dir, true);
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(
        c.all().contains("hosts: 0 changed, 1 ok, 0 failed"),
        "{}",
        c.all()
    );

    let (name, vars) = &loaded_vars(&fleet, &dir)[0];
    assert_eq!(name, "pbx1");
    assert_eq!(
        Value::Object(playbook_vars(vars)),
        json!({
            "wavix_realm": "sip.test",
            "wavix_failover_proxy": "",
            "wavix_username": "trunk1",
            "wavix_password": "secret1",
            "users": [{"id": "1000", "caller_id_name": "Main", "caller_id_number": "16468097065"}],
            "user_secrets": {"1000": {"password": "ext-pass-1000", "vm_password": "4711"}},
            "did_routes": [{"number": "16468097065", "extension": "1000"}],
            "emergency_calls": "trunk",
        })
    );
    for secret in ["secret1", "ext-pass-1000", "4711"] {
        assert!(
            files_holding(&dir, secret).is_empty(),
            "{secret}: {:?}",
            files_holding(&dir, secret)
        );
        assert!(!out.all().contains(secret), "{}", out.all());
    }
    assert!(dir.join("inventory/group_vars/pbx.age").exists());
}

/// Write the Wavix guide's files on `h` as an operator following it would (the guide's
/// files from tests/fixtures/guide/, its placeholders filled in with this operator's
/// credentials, a voicemail PIN of their own instead of the guide's example `1000`; its
/// three vars.xml lines added to the stock vars.xml).
fn plant_guide(h: &TestHost, user: &str, password: &str, did: &str, ip: &str) {
    let g = |rel: &str| {
        std::fs::read_to_string(repo(&format!("tests/fixtures/guide/{rel}")))
            .unwrap()
            .replace("YOUR_SIP_TRUNK_ID", user)
            .replace("YOUR_SIP_TRUNK_PASSWORD", password)
            .replace("SET_EXTENSION_PASSWORD", &format!("Ext-{password}"))
            .replace("16468097065", did)
            .replace("123.123.123.123", ip)
            .replace(
                "\"vm-password\" value=\"1000\"",
                "\"vm-password\" value=\"4711\"",
            )
    };
    write_guide_files(h, &g);
}

/// The guide's files, each from tests/fixtures/guide/ through `g` (which fills in the
/// placeholders), where the guide puts them on `h`; its vars.xml lines added to the stock
/// vars.xml. Shared with the real-FreeSWITCH guide test.
pub(crate) fn write_guide_files(h: &TestHost, g: &dyn Fn(&str) -> String) {
    for (rel, from) in [
        (
            "sip_profiles/external/wavix.xml",
            "registration/sip_profiles/external/wavix.xml",
        ),
        (
            "sip_profiles/external/wavix_fo.xml",
            "failover/sip_profiles/external/wavix_fo.xml",
        ),
        (
            "dialplan/wavix_dialplan.xml",
            "failover/dialplan/wavix_dialplan.xml",
        ),
        (
            "directory/default/1000.xml",
            "registration/directory/default/1000.xml",
        ),
        (
            "autoload_configs/default/switch.conf.xml",
            "registration/autoload_configs/default/switch.conf.xml",
        ),
    ] {
        let p = h.conf(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, g(from)).unwrap();
    }
    let lines: String = g("ip-auth/vars.xml")
        .lines()
        .filter(|l| l.contains("PRE"))
        .map(|l| format!("  {l}\n"))
        .collect();
    let vars = h
        .read("vars.xml")
        .replacen("</include>", &format!("{lines}</include>"), 1);
    std::fs::write(h.conf("vars.xml"), vars).unwrap();
}

/// Every file `check` (an `apply --check`) changes or creates has a `why` line in
/// the import's output: how many there are.
fn changes_accounted_for(c: &Out, out: &Out) -> usize {
    let mut accounted = 0;
    for l in c.all().lines() {
        let Some(rel) = l
            .trim_start()
            .strip_prefix("changed")
            .or(l.trim_start().strip_prefix("created"))
        else {
            continue;
        };
        let rel = rel.split_whitespace().next().unwrap();
        assert!(
            out.stdout.contains(&format!("pbx1: why: {rel}: ")),
            "{rel}\n{}",
            out.stdout
        );
        accounted += 1;
    }
    accounted
}

/// A PBX configured by hand exactly as the Wavix guide says, mistakes included, imported
/// in the default mode: `apply --check` shows the files switchyard would change, and the
/// report (IMPORT.md and the import's output) names the guide's mistakes as the reasons;
/// what has no variable (the user's callgroup, the dial-as-is route) is listed, not guessed.
#[test]
fn a_pbx_configured_by_the_wavix_guide_imports_with_its_mistakes_explained() {
    let fleet = Fleet::new("import-map-guide", 1);
    let h = fleet.host("pbx1");
    plant_guide(
        h,
        "100001",
        "Trunk-Pass-77",
        "16468097065",
        "123.123.123.123",
    );
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let dir = tmp("import-map-guide-project").join("project");
    let out = import(&fleet, &inv, &dir);
    assert_eq!(out.code, 0, "{}", out.all());
    let report = std::fs::read_to_string(dir.join("IMPORT.md")).unwrap();
    for (file, why) in [
        ("dialplan/wavix_dialplan.xml", "continue_on_fail=true fails over on every cause"),
        ("dialplan/wavix_dialplan.xml", "no hangup_after_bridge=true"),
        ("dialplan/wavix_dialplan.xml", "toll fraud"),
        ("dialplan/wavix_dialplan.xml", "no route took the emergency numbers (911)"),
        ("vars.xml", "is not spelt `X-PRE-PROCESS`, so FreeSWITCH ignored it and `external_rtp_ip` was never set"),
        ("sip_profiles/external/wavix.xml", "extension=auto_to_user"),
        ("sip_profiles/external/wavix.xml", "`sip_cid_type` is a channel variable"),
        ("autoload_configs/default/switch.conf.xml", "never reads autoload_configs/default/"),
    ] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(&format!("pbx1: why: {file}: ")) && l.contains(why)),
            "{file}: {why}\n{}",
            out.all()
        );
        assert!(report.contains(why), "{why}\n{report}");
    }
    for (file, what) in [
        ("directory/default/1000.xml", "variable `callgroup`"),
        ("dialplan/wavix_dialplan.xml", "extension `out-wavix`"),
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("pbx1: not mapped: {file}: ")) && l.contains(what)),
            "{file}: {what}\n{}",
            out.all()
        );
    }
    for secret in ["Trunk-Pass-77", "Ext-Trunk-Pass-77"] {
        assert!(files_holding(&dir, secret).is_empty(), "{secret}");
        assert!(!out.all().contains(secret), "{}", out.all());
    }
    let c = apply(&fleet, &dir, true);
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(!c.all().contains("lint error"), "{}", c.all());
    for changed in [
        "sip_profiles/external/wavix.xml",
        "sip_profiles/external/wavix_fo.xml",
        "dialplan/wavix.xml",
        "directory/default/1000.xml",
        "vars.xml",
        "autoload_configs/switch.conf.xml",
    ] {
        assert!(c.all().contains(changed), "{changed}\n{}", c.all());
    }
    assert!(c.all().contains("hosts: 1 changed"), "{}", c.all());
    assert_eq!(changes_accounted_for(&c, &out), 6, "{}", c.all());
}

/// An inventory of the fleet in two groups, `east` (the first half) and `west`, under `pbx`.
fn two_group_inventory(fleet: &Fleet) -> PathBuf {
    let mut s = format!(
        "all:\n  children:\n    pbx:\n      vars:\n        ansible_user: {TEST_USER}\n        ansible_become: false\n        ansible_ssh_private_key_file: {}\n      children:\n",
        fleet.key.display()
    );
    let half = fleet.hosts.len() / 2;
    for (g, hosts) in [
        ("east", &fleet.hosts[..half]),
        ("west", &fleet.hosts[half..]),
    ] {
        s.push_str(&format!("        {g}:\n          hosts:\n"));
        for h in hosts {
            s.push_str(&format!(
                "            {}:\n              ansible_host: {}\n              ansible_port: {}\n              freeswitch_conf_root: {}\n              fs_cli: \"{}\"\n              freeswitch_restart_command: \"{} --standin-restart\"\n",
                h.name,
                h.addr,
                h.port,
                h.conf("").display(),
                h.fs_cli().display(),
                h.fs_cli().display()
            ));
        }
    }
    let p = fleet.dir.join("two-groups.yml");
    std::fs::write(&p, s).unwrap();
    p
}

/// A YAML vars file of the project as a map (empty when there is none).
fn vars_file(dir: &Path, rel: &str) -> serde_json::Map<String, Value> {
    std::fs::read_to_string(dir.join("inventory").join(rel))
        .map(|t| yaml_serde::from_str(&t).unwrap())
        .unwrap_or_default()
}

/// Twenty PBXes configured by hand from the Wavix guide, each with its own DID, user caller
/// ID and external address, the `east` half on one trunk account and the `west` half on
/// another: what all share is in group_vars/pbx.yml, each group's account in its group's
/// files (the password only in its vault file), each host's files hold only what is its
/// own, and no secret is anywhere in plain text; the project loads to each host's values.
#[test]
fn a_fleet_imports_to_shared_group_vars_and_small_host_vars() {
    let fleet = Fleet::new("import-map-fleet", 20);
    for (i, h) in fleet.hosts.iter().enumerate() {
        let (user, pw) = if i < 10 {
            ("100001", "East-Trunk-Pw")
        } else {
            ("100002", "West-Trunk-Pw")
        };
        plant_guide(
            h,
            user,
            pw,
            &format!("1646809{:04}", 7000 + i),
            &format!("198.51.100.{}", i + 1),
        );
    }
    let inv = two_group_inventory(&fleet);
    let dir = tmp("import-map-fleet-project").join("project");
    let out = import(&fleet, &inv, &dir);
    assert_eq!(out.code, 0, "{}", out.all());

    let pbx = vars_file(&dir, "group_vars/pbx.yml");
    for shared in ["emergency_calls", "ansible_user", "wavix_ping_seconds"] {
        assert!(pbx.contains_key(shared), "{shared}: {pbx:?}");
    }
    // What the playbook's own default gives (the failover region nl.wavix.net) is not written.
    assert!(!pbx.contains_key("wavix_failover_proxy"), "{pbx:?}");
    assert!(
        !pbx.contains_key("wavix_username") && !pbx.contains_key("external_ip"),
        "{pbx:?}"
    );
    assert_eq!(
        vars_file(&dir, "group_vars/east.yml")["wavix_username"],
        "100001"
    );
    assert_eq!(
        vars_file(&dir, "group_vars/west.yml")["wavix_username"],
        "100002"
    );
    assert!(
        dir.join("inventory/group_vars/east.age").exists()
            && dir.join("inventory/group_vars/west.age").exists()
    );
    for (i, h) in fleet.hosts.iter().enumerate() {
        let own = vars_file(&dir, &format!("host_vars/{}.yml", h.name));
        let mut keys: Vec<&str> = own.keys().map(String::as_str).collect();
        keys.retain(|k| {
            ![
                "ansible_host",
                "ansible_port",
                "freeswitch_conf_root",
                "fs_cli",
                "freeswitch_restart_command",
            ]
            .contains(k)
        });
        assert_eq!(keys, ["did_routes", "external_ip", "users"], "{}", h.name);
        assert_eq!(own["external_ip"], format!("198.51.100.{}", i + 1));
        // Its secrets are its group's: no vault file of its own.
        assert!(!dir
            .join(format!("inventory/host_vars/{}.age", h.name))
            .exists());
    }
    for secret in ["East-Trunk-Pw", "West-Trunk-Pw"] {
        assert!(files_holding(&dir, secret).is_empty(), "{secret}");
        assert!(!out.all().contains(secret));
    }
    let loaded = loaded_vars(&fleet, &dir);
    let (_, v) = loaded.iter().find(|(n, _)| n == "pbx16").unwrap();
    assert_eq!(
        (v["wavix_username"].clone(), v["wavix_password"].clone()),
        (json!("100002"), json!("West-Trunk-Pw"))
    );
    assert_eq!(
        v["did_routes"],
        json!([{"number": "16468097015", "extension": "1000"}])
    );
    assert_eq!(v["user_secrets"]["1000"]["password"], "Ext-West-Trunk-Pw");
}

/// The default mode maps onto the shipped Wavix playbook's variables: another playbook, or
/// none, is refused before any host is read, and nothing is written.
#[test]
fn import_onto_another_playbook_or_none_is_refused() {
    let d = tmp("import-map-refused");
    let inv = d.join("inv.yml");
    std::fs::write(
        &inv,
        "all:\n  hosts:\n    pbx1: {ansible_host: 127.0.0.1, ansible_port: 9}\n",
    )
    .unwrap();
    let other = playbook(&d, "other.yml", "- hosts: pbx\n  tasks: []\n");
    let dir = d.join("project");
    for pb in [Some(other.as_str()), None] {
        let mut args = vec![
            "import",
            "-i",
            inv.to_str().unwrap(),
            "--write",
            dir.to_str().unwrap(),
        ];
        args.extend(pb);
        let out = switchyard(&args);
        assert_eq!(out.code, 2, "{}", out.all());
        let why = if pb.is_some() {
            "does not define; adopt the PBXes as they are with --as-is"
        } else {
            "name the playbook to map the PBXes onto"
        };
        assert!(out.stderr.contains(why), "{}", out.all());
        assert!(!out.all().contains("pbx1:"), "{}", out.all());
        assert!(!dir.exists());
    }
}

/// The round trip with the playbook's richer variables: carriers (a registering carrier
/// with two regions, then an IP-authenticated backup with its provider addresses), three
/// users, DIDs to a user and to an extension, the `gb` numbering plan with emergency calls
/// refused, codecs, the external address and an RTP range of its own. `apply --check` of the
/// import changes nothing, the import explains no change, and the variables come back in
/// the form the playbook reads them.
#[test]
fn a_pbx_with_carriers_and_users_imports_to_equivalent_variables() {
    let fleet = Fleet::new("import-map-rich", 1);
    let vars = r#"wavix_password: unused-here
carriers:
  - {name: wavix, username: acct-7, password: Carrier-Pw-7, gateways: [{name: wavix, realm: sip.test}, {name: wavix_eu, realm: eu.sip.test}]}
  - {name: backup, auth: ip, proxy: sip.backup.test, inbound_addresses: [198.51.100.7, 198.51.100.0/28], gateways: [{name: backup1}]}
users:
  - {id: "1000", password: User-Pw-1000, vm_password: "8812", caller_id_name: "Front desk", caller_id_number: "442071230000"}
  - {id: "1001", password: User-Pw-1001, vm_password: "8813", caller_id_name: "Sales", caller_id_number: "442071230001", outbound_caller_id_name: "ACME Sales"}
  - {id: "1002", password: User-Pw-1002, vm_password: "8814", caller_id_name: "Ops", caller_id_number: "442071230002"}
did_routes: [{number: "+442071230000", extension: "1000"}, {number: "442071230009", transfer: sales}]
numbering_plan: gb
emergency_calls: refuse
wavix_codecs: [PCMU, PCMA]
external_ip: 203.0.113.44
rtp_start_port: 12000
rtp_end_port: 14000"#;
    let inv = fleet.inventory("inv.yml", &|_, _| vars.into());
    // (The stand-in FreeSWITCH knows no provider of these carriers: not verified.)
    let first = fleet.run("apply", &inv, &["--no-verify"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let dir = tmp("import-map-rich-project").join("project");
    let out = import(&fleet, &inv, &dir);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        !out.stdout.contains(": why: ") && !out.stdout.contains(": not mapped: "),
        "{}",
        out.stdout
    );
    let c = apply(&fleet, &dir, true);
    assert!(
        c.all().contains("hosts: 0 changed, 1 ok, 0 failed"),
        "{}",
        c.all()
    );

    let (_, v) = &loaded_vars(&fleet, &dir)[0];
    let v = playbook_vars(v);
    assert_eq!(
        v["carriers"],
        json!([
            {"name": "wavix", "username": "acct-7", "realm": "sip.test", "proxy": "sip.test", "gateways": [{"name": "wavix"}, {"name": "wavix_eu", "realm": "eu.sip.test", "proxy": "eu.sip.test"}]},
            {"name": "backup", "auth": "ip", "from_domain": "203.0.113.44", "proxy": "sip.backup.test", "gateways": [{"name": "backup1"}]},
        ])
    );
    assert_eq!(v["carrier_passwords"], json!({"wavix": "Carrier-Pw-7"}));
    assert_eq!(
        v["wavix_inbound_addresses"],
        json!(["198.51.100.7", "198.51.100.0/28"])
    );
    assert_eq!(
        v["users"][1],
        json!({"id": "1001", "caller_id_name": "Sales", "caller_id_number": "442071230001", "outbound_caller_id_name": "ACME Sales"})
    );
    assert_eq!(
        v["user_secrets"]["1002"],
        json!({"password": "User-Pw-1002", "vm_password": "8814"})
    );
    assert_eq!(
        v["did_routes"],
        json!([{"number": "442071230000", "extension": "1000"}, {"number": "442071230009", "transfer": "sales"}])
    );
    for (k, want) in [
        ("numbering_plan", json!("gb")),
        ("emergency_calls", json!("refuse")),
        ("wavix_codecs", json!(["PCMU", "PCMA"])),
        ("external_ip", json!("203.0.113.44")),
        ("rtp_start_port", json!(12000)),
        ("rtp_end_port", json!(14000)),
    ] {
        assert_eq!(v[k], want, "{k}");
    }
    for secret in ["Carrier-Pw-7", "User-Pw-1000", "8812"] {
        assert!(files_holding(&dir, secret).is_empty(), "{secret}");
    }
}

/// A PBX that cannot be read fails alone: the others are mapped and written (nothing
/// changed on them), the failed one is named and left out, and the exit status says not
/// every host was imported.
#[test]
fn an_unreachable_pbx_fails_alone_and_the_others_are_imported() {
    let mut fleet = Fleet::new("import-map-down", 2);
    plant_guide(
        fleet.host("pbx1"),
        "100001",
        "Trunk-Pass-77",
        "16468097065",
        "203.0.113.9",
    );
    fleet.hosts[1].stop();
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let dir = tmp("import-map-down-project").join("project");
    let before = crate::import::snapshot(&fleet.host("pbx1").conf(""));
    let out = import(&fleet, &inv, &dir);
    assert_eq!(out.code, 1, "{}", out.all());
    // Read-only: not a byte, mode or mtime changed on the PBX, no lock file created.
    assert!(crate::import::snapshot(&fleet.host("pbx1").conf("")) == before);
    assert!(out.stdout.contains("pbx2: failed: "), "{}", out.stdout);
    assert!(
        out.stdout.contains("1 host could not be read"),
        "{}",
        out.stdout
    );
    let hosts = std::fs::read_to_string(dir.join("inventory/hosts.yml")).unwrap();
    assert!(
        hosts.contains("\"pbx1\"") && !hosts.contains("pbx2"),
        "{hosts}"
    );
    let (_, v) = &loaded_vars(&fleet, &dir)[0];
    assert_eq!(v["external_ip"], "203.0.113.9");
}

/// Secrets are written only vault-encrypted: without a vault key the import stops before
/// anything is written, and says how to give one.
#[test]
fn without_a_vault_key_nothing_is_written() {
    let fleet = Fleet::new("import-map-novault", 1);
    plant_guide(
        fleet.host("pbx1"),
        "100001",
        "Trunk-Pass-77",
        "16468097065",
        "203.0.113.9",
    );
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let dir = tmp("import-map-novault-project").join("project");
    let out = switchyard(&[
        "import",
        "-i",
        inv.to_str().unwrap(),
        &repo("playbooks/wavix.yml"),
        "--write",
        dir.to_str().unwrap(),
        "--known-hosts",
        fleet.known_hosts.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("import writes only vault-encrypted"),
        "{}",
        out.all()
    );
    assert!(
        !dir.exists()
            && std::fs::read_dir(dir.parent().unwrap())
                .unwrap()
                .next()
                .is_none()
    );
    assert!(!out.all().contains("Trunk-Pass-77"));
}
