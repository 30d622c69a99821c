//! A PBX at fleet size over real SSH: 50 users and 20 DIDs from lists, one file per user,
//! idempotent, and a user removed from the list is removed from the PBX.

use crate::harness::*;

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

#[test]
fn fifty_users_twenty_dids_then_no_change_then_one_user_removed() {
    let fleet = Fleet::new("bigpbx", 1);
    let inv = fleet.inventory("inv.yml", &|_, _| big_pbx(50, None));
    let first = fleet.run("apply", &inv, &["--json"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let h = fleet.host("pbx1");
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
    let again = fleet.run("apply", &inv, &["--json"]);
    assert_eq!(again.code, 0, "{}", again.all());
    let host = &again.json()["plays"][0]["hosts"][0];
    assert_eq!(host["status"], "ok", "{}", again.stderr);
    assert_eq!(host["remote_commands"], 1, "one round trip for a no-op");
    assert!(h.fs_log().is_empty(), "{:?}", h.fs_log());

    // User 1007 leaves: its file goes, FreeSWITCH re-reads the directory, nothing else moves.
    let inv2 = fleet.inventory("inv2.yml", &|_, _| big_pbx(50, Some(7)));
    let removed = fleet.run("apply", inv2.as_path(), &["--json"]);
    assert_eq!(removed.code, 0, "{}", removed.all());
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
    let settled = fleet.run("apply", inv2.as_path(), &["--json"]);
    assert_eq!(settled.json()["plays"][0]["hosts"][0]["status"], "ok");
}
