//! A PBX at fleet size over real SSH: 50 users and 20 DIDs from lists, one file per user,
//! idempotent, and a user removed from the list is removed from the PBX.

use crate::harness::*;
use crate::session::{exit, Session};

/// Host variables for a PBX with `users` users (1000, 1001, ...) and 20 DIDs: DID k rings
/// user 1000+k, the last two go to a ring group and an IVR the operator defines.
pub fn big_pbx(users: usize, skip: Option<usize>) -> String {
    let mut s = String::from("users:\n");
    for i in (0..users).filter(|i| Some(*i) != skip) {
        s.push_str(&format!(
            "  - {{id: \"{}\", password: \"ext-pw-{i}-x9\", vm_password: \"{:04}\", caller_id_name: \"User {i}\", caller_id_number: \"1646555{:04}\"}}\n",
            1000 + i,
            4000 + i,
            1000 + i
        ));
    }
    s.push_str("did_routes:\n");
    for k in 0..20 {
        let target = match k {
            18 => "transfer: sales".to_string(),
            19 => "transfer: ivr_main, context: default".to_string(),
            _ => format!("extension: \"{}\"", 1000 + k),
        };
        s.push_str(&format!(
            "  - {{number: \"1646555{:04}\", {target}}}\n",
            2000 + k
        ));
    }
    s
}

/// One PBX whose provider stand-in knows both carriers' accounts.
fn carrier_fleet(name: &str) -> Fleet {
    let fleet = Fleet::new(name, 1);
    let h = fleet.host("pbx1");
    h.set_provider_password("sip.test", "trunk1", "secret1");
    h.set_provider_password("eu.sip.test", "trunk1", "secret1");
    h.set_provider_password("backup.test", "b-1", "b-secret-7");
    fleet
}

/// The fleet-size PBX (50 users, 20 DIDs) with both carriers.
fn two_carriers(fleet: &Fleet) -> Session<'_> {
    fleet.session_with(&|_, _| format!("{}{TWO_CARRIERS}", big_pbx(50, None)))
}

#[test]
fn fifty_users_twenty_dids_two_carriers_then_no_change_then_one_user_removed() {
    let fleet = carrier_fleet("bigpbx");
    let h = fleet.host("pbx1");
    let session = two_carriers(&fleet);
    let first = session.run(["apply", "--json"]).expect(exit::OK);
    for i in 0..50 {
        let f = h.read(&format!("directory/default/{}.xml", 1000 + i));
        assert!(f.contains(&format!("value=\"ext-pw-{i}-x9\"")), "{f}");
    }
    assert_eq!(
        h.meta("directory/default/1049.xml"),
        ("freeswitch".into(), "freeswitch".into(), 0o640)
    );
    let dp = h.read("dialplan/wavix.xml");
    assert_eq!(dp.matches("<extension name=\"in-wavix-").count(), 20);
    assert!(
        dp.contains("<action application=\"transfer\" data=\"sales XML default\"/>"),
        "{dp}"
    );
    assert!(dp.contains("<action application=\"transfer\" data=\"ivr_main XML default\"/>"));
    // Per-item task names in the report, with the user's id as label, no password.
    let report = first.json();
    let files = report["plays"][0]["hosts"][0]["files"]
        .as_array()
        .unwrap()
        .clone();
    assert!(files
        .iter()
        .any(|f| f["tasks"][0] == "directory user (1007)"));
    assert!(!first.all().contains("ext-pw-"), "a password in the output");

    // The second run changes nothing and sends FreeSWITCH nothing.
    h.clear_fs_log();
    let again = session.run(["apply", "--json"]).expect(exit::OK);
    let host = &again.json()["plays"][0]["hosts"][0];
    assert_eq!(host["status"], "ok", "{}", again.stderr);
    assert_eq!(host["remote_commands"], 1, "one round trip for a no-op");
    assert!(h.fs_log().is_empty(), "{:?}", h.fs_log());

    // User 1007 leaves: its file goes, FreeSWITCH re-reads the directory, nothing else moves.
    let left = session.vars(&|_, _| format!("{}{TWO_CARRIERS}", big_pbx(50, Some(7))));
    let removed = left.run(["apply", "--json"]).expect(exit::OK);
    assert!(!h.exists("directory/default/1007.xml"));
    assert!(h.exists("directory/default/1008.xml"));
    let host = &removed.json()["plays"][0]["hosts"][0];
    let changed: Vec<(&str, &str)> = host["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] != "ok")
        .map(|f| (f["rel"].as_str().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    assert_eq!(changed, [("directory/default/1007.xml", "removed")]);
    assert_eq!(h.fs_log(), ["reloadxml"], "{}", removed.stderr);
    // And then it is settled.
    let settled = left.run(["apply", "--json"]);
    assert_eq!(settled.json()["plays"][0]["hosts"][0]["status"], "ok");
}

const TWO_CARRIERS: &str = "\
carriers:
  - name: wavix
    username: trunk1
    password: secret1
    gateways: [{name: wavix, realm: sip.test}, {name: wavix_eu, realm: eu.sip.test}]
  - name: backup
    username: b-1
    password: b-secret-7
    gateways: [{name: backup1, realm: backup.test}]
";

/// Outbound: every gateway in list order, failover only on route failures, the last bridge
/// ending the call with its own cause.
fn outbound_tries_every_gateway_in_order(dp: &str) {
    let out = &dp[dp.find("<extension name=\"out-e164\">").unwrap()..];
    let out = &out[..out.find("</extension>").unwrap()];
    let order: Vec<usize> = [
        "sofia/gateway/wavix/",
        "sofia/gateway/wavix_eu/",
        "sofia/gateway/backup1/",
    ]
    .iter()
    .map(|g| out.find(g).unwrap_or_else(|| panic!("{g} missing: {out}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{out}");
    assert_eq!(
        out.matches("continue_on_fail=GATEWAY_DOWN,").count(),
        2,
        "{out}"
    );
    assert!(out.contains("continue_on_fail=false"), "{out}");
}

/// The documented fleet-size PBX: 50 users, 20 DIDs, two carriers (Wavix with two
/// regions, then a backup provider), all from lists.
#[test]
fn two_carriers_in_failover_order_and_one_removed() {
    let fleet = carrier_fleet("carriers");
    let h = fleet.host("pbx1");
    let session = two_carriers(&fleet);
    let first = session.run(["apply", "--json"]).expect(exit::OK);
    // One file per carrier, every gateway verified registered.
    let wavix = h.read("sip_profiles/external/carrier_wavix.xml");
    assert!(
        wavix.contains("<gateway name=\"wavix\">") && wavix.contains("<gateway name=\"wavix_eu\">")
    );
    assert!(h
        .read("sip_profiles/external/carrier_backup.xml")
        .contains("<param name=\"password\" value=\"b-secret-7\"/>"));
    assert!(!h.exists("sip_profiles/external/wavix.xml"));
    let host = &first.json()["plays"][0]["hosts"][0];
    let states: Vec<(&str, &str)> = host["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["name"].as_str().unwrap(), g["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("wavix", "REGED"),
            ("wavix_eu", "REGED"),
            ("backup1", "REGED")
        ]
    );
    outbound_tries_every_gateway_in_order(&h.read("dialplan/wavix.xml"));
    assert!(!first.all().contains("b-secret-7"));

    // Idempotent.
    h.clear_fs_log();
    let again = session.run(["apply", "--json"]);
    assert_eq!(
        again.json()["plays"][0]["hosts"][0]["status"],
        "ok",
        "{}",
        again.stderr
    );
    assert!(h.fs_log().is_empty(), "{:?}", h.fs_log());

    // The backup provider is dropped: its file goes, its gateway is unloaded, the dialplan
    // no longer tries it.
    let one = TWO_CARRIERS
        .split("  - name: backup")
        .next()
        .unwrap()
        .to_string();
    let one_left = session.vars(&|_, _| format!("{}{one}", big_pbx(50, None)));
    one_left.run(["apply", "--json"]).expect(exit::OK);
    assert!(!h.exists("sip_profiles/external/carrier_backup.xml"));
    assert!(!h.read("dialplan/wavix.xml").contains("backup1"));
    let log = h.fs_log();
    assert!(
        log.iter()
            .any(|c| c == "sofia profile external killgw backup1"),
        "{log:?}"
    );
}

/// The shipped fleet-size example lints clean: 50 users, 20 DIDs, two carriers.
#[test]
fn the_shipped_large_pbx_example_lints_clean() {
    let inv = repo("inventory/large/hosts.yml");
    let out = switchyard_env(
        &["lint", "-i", &inv, &repo("playbooks/wavix.yml"), "--json"],
        &[("WAVIX_PASSWORD", "Xk9-trunk-pw")],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.json(), serde_json::json!([]));
    assert!(
        out.stderr.contains("rendered for 1 host (60 files)"),
        "{}",
        out.stderr
    );
    let hosts = switchyard_env(
        &["inventory", "-i", &inv, "--json"],
        &[("WAVIX_PASSWORD", "Xk9-trunk-pw")],
    );
    let v = &hosts.json()["hosts"][0]["vars"];
    assert_eq!(v["users"].as_array().unwrap().len(), 50);
    assert_eq!(v["did_routes"].as_array().unwrap().len(), 20);
    assert_eq!(v["carriers"].as_array().unwrap().len(), 2);
    assert!(
        !hosts.stdout.contains("Xk9-trunk-pw"),
        "the env secret is masked"
    );
}
