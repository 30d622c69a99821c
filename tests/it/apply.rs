//! The shipped Wavix playbook over real SSH: files, owners, modes, idempotence, dry runs.

use crate::assert_session;
use crate::harness::*;
use crate::session::exit;

/// Three hosts, three shapes: plain registration with failover, a second DID and caller-ID
/// passthrough off, and IP authentication with an external address.
fn three_shapes(i: usize, _h: &TestHost) -> String {
    match i {
        0 => "wavix_failover_proxy: sip.test\n".to_string(),
        1 => "caller_id_passthrough: false\ndid_routes: [{number: \"16468097065\", extension: \"1000\"}, {number: \"442071234567\", extension: \"1001\"}]\n".to_string(),
        _ => "wavix_ip_auth: true\nexternal_ip: 203.0.113.7\nwavix_inbound_addresses: [\"192.0.2.10\"]\n".to_string(),
    }
}

/// Host 1: registration + failover gateways, owned and moded as FreeSWITCH's, verified REGED;
/// the dialplan fails over on a down gateway only and ends a completed call with its bridge.
fn registration_with_failover_is_written_and_verified(h1: &TestHost, report: &serde_json::Value) {
    let gw = h1.read("sip_profiles/external/wavix.xml");
    assert!(gw.contains("<gateway name=\"wavix\">"));
    assert!(gw.contains("<param name=\"password\" value=\"secret1\"/>"));
    assert!(gw.contains("<param name=\"realm\" value=\"sip.test\"/>"));
    assert!(gw.contains("<variable name=\"sip_cid_type\" value=\"none\" direction=\"outbound\"/>"));
    assert!(h1.exists("sip_profiles/external/wavix_fo.xml"));
    assert_eq!(
        h1.meta("sip_profiles/external/wavix.xml"),
        ("freeswitch".into(), "freeswitch".into(), 0o640)
    );
    let dp = h1.read("dialplan/wavix.xml");
    let first_bridge = dp.find("sofia/gateway/wavix/$1").unwrap();
    let cof = dp.find("continue_on_fail=GATEWAY_DOWN,").unwrap();
    assert!(
        cof < first_bridge,
        "continue_on_fail before the first bridge"
    );
    assert!(
        dp.find("hangup_after_bridge=true").unwrap() < first_bridge,
        "a completed call must end with its bridge"
    );
    assert!(
        !dp.contains("continue_on_fail=true"),
        "fails over on busy too"
    );
    assert!(dp.contains("sofia/gateway/wavix_fo/$1"));
    assert!(h1
        .read("directory/default/1000.xml")
        .contains("<variable name=\"user_context\" value=\"wavix\"/>"));
    let sw = h1.read("autoload_configs/switch.conf.xml");
    assert!(sw.contains("    <param name=\"rtp-start-port\" value=\"10000\"/>\n    <param name=\"rtp-end-port\" value=\"20000\"/>\n"));
    assert!(
        !sw.contains("16384"),
        "the commented stock line was replaced in place"
    );
    let states: Vec<&str> = report["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["REGED", "REGED"]);
    assert_eq!(
        report["restart_pending"], true,
        "the RTP range needs a restart that was not allowed"
    );
    assert!(h1
        .fs_log()
        .contains(&"sofia profile external rescan".to_string()));
    assert!(
        !h1.fs_log().iter().any(|c| c.contains("restart")),
        "no restart without --allow"
    );
}

/// Host 2: second DID, no passthrough, no failover gateway.
fn second_did_without_passthrough(h2: &TestHost) {
    assert!(h2
        .read("dialplan/wavix.xml")
        .contains("^\\+?(442071234567)$"));
    assert!(!h2
        .read("sip_profiles/external/wavix.xml")
        .contains("caller-id-in-from"));
    assert!(!h2.exists("sip_profiles/external/wavix_fo.xml"));
}

/// Host 3: IP authentication; the external address replaces the stun-set definitions, and
/// the profile restart it needs is pending.
fn ip_authentication_with_an_external_address(h3: &TestHost, report: &serde_json::Value) {
    assert!(!h3.exists("sip_profiles/external/wavix.xml"));
    let ip = h3.read("sip_profiles/external/wavix_ip.xml");
    assert!(ip.contains("<param name=\"register\" value=\"false\"/>") && !ip.contains("password"));
    let vars = h3.read("vars.xml");
    assert!(vars.contains("  <X-PRE-PROCESS cmd=\"set\" data=\"external_rtp_ip=203.0.113.7\"/>\n"));
    assert!(vars.contains("<X-PRE-PROCESS cmd=\"set\" data=\"outbound_sip_ip=203.0.113.7\"/>"));
    assert!(
        !vars.contains("stun-set\" data=\"external_rtp_ip"),
        "the stun-set definition was replaced, not duplicated"
    );
    assert!(h3
        .read("dialplan/wavix.xml")
        .contains("sofia/gateway/wavix_ip/$1"));
    assert_eq!(report["gateways"][0]["state"], "NOREG");
    assert_eq!(report["gateways"][0]["status"], "UP");
    let pending: Vec<String> = report["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["action"]["command"]
                .as_str()
                .unwrap_or("restart")
                .to_string()
        })
        .collect();
    assert!(
        pending.contains(&"sofia profile external restart".to_string()),
        "ext IP change needs a profile restart: {pending:?}"
    );
}

#[test]
fn wavix_playbook_on_three_hosts_then_idempotent_then_check_diff() {
    let fleet = Fleet::new("wavix3", 3);
    let session = fleet.session_with(&three_shapes);
    let first = session.run(["apply", "--json"]).expect(exit::OK);
    let hosts = first.json()["plays"][0]["hosts"].clone();
    assert_eq!(hosts.as_array().unwrap().len(), 3);
    for h in ["pbx1", "pbx2", "pbx3"] {
        assert_eq!(
            host_report(&first, h)["status"],
            "changed",
            "{}",
            first.stderr
        );
    }
    registration_with_failover_is_written_and_verified(
        fleet.host("pbx1"),
        &host_report(&first, "pbx1"),
    );
    second_did_without_passthrough(fleet.host("pbx2"));
    ip_authentication_with_an_external_address(fleet.host("pbx3"), &host_report(&first, "pbx3"));

    // Second run: nothing to change, no FreeSWITCH command at all.
    let logs: Vec<usize> = fleet.hosts.iter().map(|h| h.fs_log().len()).collect();
    let second = session.run(["apply", "--json"]).expect(exit::OK);
    for h in second.json()["plays"][0]["hosts"].as_array().unwrap() {
        assert_eq!(h["status"], "ok", "{}", second.stderr);
        let files = h["files"].as_array().unwrap();
        assert!(files.iter().all(|f| f["status"] == "ok"));
        assert!(h["steps"].as_array().unwrap().is_empty());
        // One command after authentication: the fact gathering.
        assert_eq!(h["remote_commands"], 1);
    }
    let logs2: Vec<usize> = fleet.hosts.iter().map(|h| h.fs_log().len()).collect();
    assert_eq!(logs, logs2, "a no-op run sends FreeSWITCH nothing");

    // A password change, checked with --diff: shown as changed (one line that says so, not
    // two lines that look the same), masked, nothing written.
    let h1 = fleet.host("pbx1");
    let before = h1.read("sip_profiles/external/wavix.xml");
    let changed = session.vars(&|i, h| match i {
        0 => "wavix_password: N3w-Pa55\"<&\n".into(),
        _ => three_shapes(i, h),
    });
    let check = changed.run(["apply", "--check", "--diff"]).expect(exit::OK);
    check
        .shows(&[
            "~    <param name=\"password\" value=\"********\"/>  (secret changed)\n",
            "would run sofia profile external killgw wavix",
        ])
        .never_shows(&["+    <param name=\"password\" value=\"********\"/>"])
        .never_shows(&["secret1", "N3w-Pa55", "N3w-Pa55&quot;&lt;&amp;"]);
    assert_session!(check);
    let after = h1.read("sip_profiles/external/wavix.xml");
    assert_eq!(after, before, "--check wrote nothing");

    // Applied, the hostile password lands XML-escaped and the file stays well-formed.
    let applied = changed.run(["apply", "--no-verify", "--limit", "pbx1"]);
    applied.expect(exit::OK).never_shows(&["N3w-Pa55"]);
    let gw = h1.read("sip_profiles/external/wavix.xml");
    assert!(gw.contains("value=\"N3w-Pa55&quot;&lt;&amp;\""), "{gw}");
    roxmltree::Document::parse(&gw).expect("well-formed");
}

/// Replace a host's key in known_hosts by another key, as after a reinstall or an attack.
fn forget_key_for_another(fleet: &Fleet, host: &TestHost) {
    let other = fleet.dir.join("other_key");
    run(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other));
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut p = pubkey.split_whitespace();
    let (kind, key) = (p.next().unwrap(), p.next().unwrap());
    let line = format!("[{}]:{} {kind} {key}\n", host.addr, host.port);
    std::fs::write(&fleet.known_hosts, line).unwrap();
}

#[test]
fn unknown_and_changed_host_keys_are_refused() {
    let mut fleet = Fleet::new("hostkeys", 0);
    fleet.add_host("stranger", false);
    fleet.wait_ready();
    let session = fleet.session();

    let refused = session.run(["apply"]).expect(exit::FAILED);
    refused.shows(&["stranger [unreachable]", "is not in"]);
    assert_session!(refused);
    assert!(!fleet.hosts[0].exists("sip_profiles/external/wavix.xml"));

    // Accepting new keys records the key, then works without the flag.
    let learned = session.run(["apply", "--check", "--accept-new-host-keys"]);
    learned.expect(exit::OK);
    let known = std::fs::read_to_string(&fleet.known_hosts).unwrap();
    let stranger = &fleet.hosts[0];
    assert!(known.contains(&format!("[{}]:{}", stranger.addr, stranger.port)));
    session.run(["apply", "--check"]).expect(exit::OK);

    // A changed key is refused even with --accept-new-host-keys.
    forget_key_for_another(&fleet, stranger);
    let changed = session.run(["apply", "--check", "--accept-new-host-keys"]);
    changed.expect(exit::FAILED).shows(&["HAS CHANGED"]);
}

/// `switchyard apply ... 2>&1 | head` closes the pipe early: the run must not panic (it used
/// to exit 101 at its first write), and the hosts still converge.
#[test]
fn a_closed_output_pipe_ends_nothing_but_the_output() {
    let fleet = Fleet::new("epipe", 2);
    let mut child = fleet
        .session()
        .env("SWITCHYARD_HISTORY", fleet.dir.join("h.db"))
        .command(["apply", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close both read ends at once, as `head` does after its lines.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    for h in &fleet.hosts {
        assert!(h
            .read("sip_profiles/external/wavix.xml")
            .contains("secret1"));
    }
}

/// Issue 28: a first apply costs the PBX one gather, the lock, one write and one steps
/// command, no more: the record of what is still owed after the steps goes through the held
/// lock instead of a round trip of its own (5 commands before), and is whole on disk
/// afterwards: the ran rescan no longer owed, the restart that was not allowed still owed.
#[test]
fn a_first_apply_is_four_remote_commands_and_records_what_is_still_owed() {
    let fleet = Fleet::new("fourcmds", 1);
    let session = fleet.session();
    let out = session
        .run(["apply", "--json", "--no-verify"])
        .expect(exit::OK);
    let h = host_report(&out, "pbx1");
    assert_eq!(h["status"], "changed", "{}", out.all());
    assert_eq!(commands(&h), ["sofia profile external rescan"]);
    // gather, lock, write, steps
    assert_eq!(h["remote_commands"], 4, "{}", out.all());
    let host = fleet.host("pbx1");
    let record: serde_json::Value =
        serde_json::from_str(&host.read(".switchyard/state.json")).unwrap();
    let owed: Vec<String> = record["owed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].to_string())
        .collect();
    assert_eq!(owed.len(), 1, "only the restart stays owed: {owed:?}");
    assert!(!owed[0].contains("rescan"), "{owed:?}");
    assert!(record["files"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.ends_with("sip_profiles/external/wavix.xml")));
    // Nothing staged or half-written is left in the private folder.
    let mut left: Vec<String> = std::fs::read_dir(host.conf(".switchyard"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["lock", "lock.owner", "state.json"]);
    // And the next run is a no-op: one command.
    let again = session.run(["apply", "--json", "--no-verify"]);
    assert_eq!(host_report(&again, "pbx1")["remote_commands"], 1);
}
