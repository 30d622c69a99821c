//! Making changes take effect the way FreeSWITCH needs, over real sshd with the stand-in:
//! killgw+rescan for a changed gateway, verification, rollback, restarts only when allowed.

use crate::harness::*;
use crate::session::exit;

#[test]
fn changed_password_is_applied_with_killgw_rescan_and_verified() {
    let fleet = Fleet::new("pwchange", 1);
    let h = &fleet.hosts[0];
    let session = fleet.session();
    let first = session.apply_json(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(host_report(&first, "pbx1")["gateways"][0]["state"], "REGED");

    // The provider rotates the password; the inventory follows.
    h.set_provider_password("sip.test", "trunk1", "secret2");
    let session2 = fleet.session_with(&|_, _| "wavix_password: secret2\n".into());
    let log_before = h.fs_log().len();
    let out = session2.apply_json(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = host_report(&out, "pbx1");
    assert_eq!(r["status"], "changed");
    assert_eq!(
        commands(&r),
        [
            "sofia profile external killgw wavix",
            "sofia profile external rescan"
        ]
    );
    assert_eq!(r["gateways"][0]["state"], "REGED");
    assert_eq!(r["gateways"][0]["status"], "UP");
    let log: Vec<String> = h.fs_log()[log_before..].to_vec();
    assert_eq!(
        &log[..2],
        [
            "sofia profile external killgw wavix",
            "sofia profile external rescan"
        ]
    );
    assert!(
        log[2..]
            .iter()
            .all(|c| c == "sofia xmlstatus gateway wavix"),
        "{log:?}"
    );
    // The stand-in really runs the new credentials (rescan alone would have kept secret1).
    assert!(h
        .fs("sofia status gateway wavix")
        .contains("State   \tREGED"));
}

#[test]
fn wrong_password_fails_verification_and_rolls_back() {
    let fleet = Fleet::new("wrongpw", 1);
    let h = &fleet.hosts[0];
    let session = fleet.session();
    assert_eq!(session.apply_json(&[]).code, 0);
    let good = h.read("sip_profiles/external/wavix.xml");

    let bad = fleet.session_with(&|_, _| "wavix_password: wrongpass\n".into());
    let out = bad.apply_json(&[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let r = host_report(&out, "pbx1");
    assert_eq!(r["status"], "rolled_back", "{}", out.stderr);
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains("gateway `wavix` is FAIL") || error.contains("gateway `wavix` is FAILED"),
        "{error}"
    );
    assert_eq!(r["rollback"], "previous files restored and verified");
    assert_eq!(
        commands(&r),
        [
            "sofia profile external killgw wavix",
            "sofia profile external rescan",
            "(rollback) sofia profile external killgw wavix",
            "(rollback) sofia profile external rescan"
        ]
    );
    // Back on the old password, registered again.
    assert_eq!(h.read("sip_profiles/external/wavix.xml"), good);
    assert_eq!(r["gateways"][0]["state"], "REGED");
    assert!(h
        .fs("sofia xmlstatus gateway wavix")
        .contains("<state>REGED</state>"));
    assert!(
        !out.all().contains("wrongpass"),
        "the failed password is not printed"
    );
    // The record still describes the good state: the next run sees the same change again.
    let again = bad.run(["apply", "--check"]);
    assert!(
        again
            .stderr
            .contains("changed   sip_profiles/external/wavix.xml"),
        "{}",
        again.stderr
    );
}

#[test]
fn malformed_template_never_reaches_a_host() {
    let fleet = Fleet::new("malformed", 1);
    let h = &fleet.hosts[0];
    let session = fleet.session();
    let tdir = fleet.dir.join("playbooks/templates");
    std::fs::create_dir_all(&tdir).unwrap();
    // An unclosed attribute quote: the real FreeSWITCH answered +OK [Success] to this and
    // silently swallowed the next line (fs-outputs.md), so it must be caught before upload.
    std::fs::write(tdir.join("gw.xml.j2"), "<include>\n  <gateway name=\"wavix\">\n    <param name=\"password\" value=\"{{ wavix_password }}/>\n    <param name=\"realm\" value=\"sip.test\"/>\n  </gateway>\n</include>\n").unwrap();
    let pb = playbook(&fleet.dir, "broken.yml", "- hosts: pbx\n  tasks:\n    - name: gw\n      template: {src: gw.xml.j2, dest: sip_profiles/external/wavix.xml}\n");
    let out = session.playbook(pb).run(["apply"]).expect(exit::FAILED);
    out.shows(&["rendered to XML that is not well-formed"])
        .never_shows(&["secret1"]);
    crate::assert_session!(out);
    assert!(!h.exists("sip_profiles/external/wavix.xml"));
    assert!(h.fs_log().is_empty(), "FreeSWITCH was never asked anything");
}

#[test]
fn xml_rejected_by_freeswitch_is_rolled_back() {
    let fleet = Fleet::new("rejected", 1);
    let h = &fleet.hosts[0];
    let session = fleet.session();
    assert_eq!(session.apply_json(&[]).code, 0);
    let dialplan = h.read("dialplan/wavix.xml");
    // Someone left a broken file in the dialplan (not managed by switchyard): FreeSWITCH
    // will refuse the whole configuration at the next reloadxml, answering +OK [error].
    std::fs::write(
        h.conf("dialplan/99_broken.xml"),
        "this is not xml <<< & >\n<extension name=\"x\">\n",
    )
    .unwrap();
    let session2 = fleet.session_with(&|_, _| {
        "did_routes: [{number: \"16468097066\", extension: \"1000\"}]\n".into()
    });
    let out = session2.apply_json(&[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let r = host_report(&out, "pbx1");
    assert_eq!(r["status"], "rolled_back");
    assert!(
        r["error"].as_str().unwrap().contains(
            "FreeSWITCH rejected the XML and kept the old configuration: [error near line"
        ),
        "{}",
        r["error"]
    );
    assert_eq!(
        h.read("dialplan/wavix.xml"),
        dialplan,
        "the previous dialplan is back"
    );
    assert_eq!(commands(&r), ["reloadxml", "(rollback) reloadxml"]);
}

#[test]
fn rtp_range_change_is_pending_until_a_restart_is_allowed() {
    let fleet = Fleet::new("rtp", 1);
    let h = &fleet.hosts[0];
    let session = fleet.session();
    let out = session.apply_json(&[]);
    assert_eq!(out.code, 0);
    let r = host_report(&out, "pbx1");
    assert_eq!(r["restart_pending"], true);
    assert_eq!(r["pending"][0]["action"]["type"], "restart");
    assert!(!h.fs_log().iter().any(|c| c == "RESTART"));
    assert!(
        out.stderr.contains("pending   restart FreeSWITCH"),
        "{}",
        out.stderr
    );

    // Still owed on the next run, which changes nothing.
    let again = session.apply_json(&[]);
    let r = host_report(&again, "pbx1");
    assert_eq!(
        (r["status"].as_str(), r["restart_pending"].as_bool()),
        (Some("ok"), Some(true))
    );

    // Allowed: calls are counted first, then FreeSWITCH restarts and reads the new range,
    // and every gateway registers again: verified after the restart.
    let allowed = session.apply_json(&["--allow", "restart"]);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    let r = host_report(&allowed, "pbx1");
    assert_eq!(commands(&r), ["restart FreeSWITCH"]);
    assert_eq!(r["restart_pending"], false);
    let log = h.fs_log();
    let at = log.iter().rposition(|c| c == "RESTART").unwrap();
    assert_eq!(log[at - 1], "show calls count");
    assert!(
        !log[at + 1..].is_empty()
            && log[at + 1..]
                .iter()
                .all(|c| c == "sofia xmlstatus gateway wavix"),
        "{log:?}"
    );
    assert_eq!(r["gateways"][0]["state"], "REGED");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.dir.join("state/state.json")).unwrap())
            .unwrap();
    assert_eq!(st["rtp"], serde_json::json!(["10000", "20000"]));
    let done = session.apply_json(&[]);
    assert_eq!(host_report(&done, "pbx1")["restart_pending"], false);
}

/// Switching a host to IP authentication removes the registering gateways' files (they
/// hold the trunk password) and unloads them with killgw; a failed verification puts the
/// removed files back.
#[test]
fn switching_to_ip_auth_removes_the_registering_gateways() {
    let fleet = Fleet::new("absent", 1);
    let h = &fleet.hosts[0];
    let session = fleet.session_with(&|_, _| "wavix_failover_proxy: sip.test\n".into());
    let first = session.apply_json(&[]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(
        h.exists("sip_profiles/external/wavix.xml")
            && h.exists("sip_profiles/external/wavix_fo.xml")
    );
    let wavix = h.read("sip_profiles/external/wavix.xml");

    // IP auth towards a provider that does not answer pings: verification fails, and the
    // removed files come back.
    let bad = fleet.session_with(&|_, _| {
        "wavix_ip_auth: true\nwavix_proxy: nowhere.test\nwavix_failover_proxy: sip.test\nwavix_inbound_addresses: [\"192.0.2.10\"]\n".into()
    });
    let out = bad.apply_json(&[]);
    assert_eq!(out.code, 1, "{}", out.all());
    let r = host_report(&out, "pbx1");
    assert_eq!(r["status"], "rolled_back", "{r:#}");
    assert_eq!(h.read("sip_profiles/external/wavix.xml"), wavix);
    assert!(h.exists("sip_profiles/external/wavix_fo.xml"));
    assert!(!h.exists("sip_profiles/external/wavix_ip.xml"));

    let ip = fleet.session_with(&|_, _| {
        "wavix_ip_auth: true\nwavix_failover_proxy: sip.test\nwavix_inbound_addresses: [\"192.0.2.10\"]\n".into()
    });
    let out = ip.apply_json(&["--diff"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let r = host_report(&out, "pbx1");
    let removed: Vec<&str> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "removed")
        .map(|f| f["rel"].as_str().unwrap())
        .collect();
    assert_eq!(
        removed,
        [
            "sip_profiles/external/wavix.xml",
            "sip_profiles/external/wavix_fo.xml"
        ]
    );
    let steps = commands(&r);
    for gw in ["wavix", "wavix_fo"] {
        assert!(
            steps.contains(&format!("sofia profile external killgw {gw}")),
            "{steps:?}"
        );
    }
    assert!(
        !h.exists("sip_profiles/external/wavix.xml")
            && !h.exists("sip_profiles/external/wavix_fo.xml")
    );
    assert!(h
        .fs("sofia status gateway wavix")
        .contains("Invalid Gateway"));
    // The removal diff is masked like any other.
    assert!(!out.stdout.contains("secret1"), "{}", out.stdout);
    // And it stays removed: the next run changes nothing.
    let again = ip.apply_json(&[]);
    assert_eq!(
        host_report(&again, "pbx1")["status"],
        "ok",
        "{}",
        again.all()
    );
}

/// Removing `external_ip` takes switchyard's own pre-process lines out of vars.xml (a
/// profile restart then applies it); a host whose lines an operator wrote by hand keeps them.
#[test]
fn removing_external_ip_removes_only_switchyards_own_lines() {
    let fleet = Fleet::new("extip", 2);
    let ext = fleet.session_with(&|_, _| "external_ip: 203.0.113.7\n".into());
    let out = ext.apply_json(&[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let h = &fleet.hosts[0];
    assert!(h
        .read("vars.xml")
        .contains("data=\"external_rtp_ip=203.0.113.7\""));

    // pbx2: an operator's own line, never written by switchyard (its record forgets vars).
    let h2 = &fleet.hosts[1];
    let record = h2.conf(".switchyard/state.json");
    let mut st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    st.as_object_mut().unwrap().remove("vars");
    std::fs::write(&record, st.to_string()).unwrap();

    let none = fleet.session();
    let out = none.apply_json(&[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let vars = h.read("vars.xml");
    assert!(!vars.contains("203.0.113.7"), "{vars}");
    let r = host_report(&out, "pbx1");
    assert!(
        r["pending"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["action"]["command"] == "sofia profile external restart"),
        "{r:#}"
    );
    assert!(h2
        .read("vars.xml")
        .contains("data=\"external_rtp_ip=203.0.113.7\""));
    // Converged: nothing more to do.
    let again = none.apply_json(&[]);
    assert_eq!(
        host_report(&again, "pbx1")["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["status"] != "ok")
            .count(),
        0
    );
}
