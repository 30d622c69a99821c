//! `dial_did` call tests: a PBX dials one of its own DIDs out through its trunk; the
//! provider (Kamailio, which delivers calls to +1 415 555 019x back to the account's
//! registered Contact, as it delivers any call to a DID) brings it back inbound, and the
//! PBX's DID route must ring the mapped user, here a SIPp phone registered as 1000.

use std::time::Duration;

use super::call::playbook_with_call_tests as playbook_with;
use super::*;

/// A PBX and its provider; the inventory names its event socket and one DID route.
fn world(tag: &str, did: &str, extension: &str) -> (World, std::path::PathBuf) {
    let w = World::new(tag, WrongPassword::Forbidden);
    let inv = w.inventory(
        "inv.yml",
        &format!(
            "freeswitch_esl: \"{}:8021\"\nfreeswitch_esl_password: {ESL_PASSWORD}\ndid_routes: [{{number: \"{did}\", extension: \"{extension}\"}}]\n",
            w.fs().addr
        ),
    );
    (w, inv)
}

#[test]
fn a_dial_did_call_test_comes_back_inbound_and_rings_the_mapped_user() {
    let (w, inv) = world("real-call-did", "+14155550190", "1000");
    let session = |pb: &str| w.fleet.session_on(&inv).playbook(pb);

    // A DID that is not one of the host's: refused when read, at the test's place.
    let pb = playbook_with(
        &w,
        "foreign.yml",
        "    - {name: did, from: \"1000\", dial_did: \"14155550199\", rings: \"1000\"}\n",
    );
    let out = session(&pb).run(["apply", "--check"]).out;
    assert_eq!(out.code, 1, "{}", out.all());
    let text = std::fs::read_to_string(&pb).unwrap();
    let (line, col) = text
        .lines()
        .enumerate()
        .find_map(|(n, l)| Some((n + 1, l.find("\"14155550199\"")? + 1)))
        .unwrap();
    assert!(
        out.stderr.contains(&format!(
            "foreign.yml:{line}:{col}: dial_did 14155550199: not a DID of host pbx1"
        )),
        "{}",
        out.all()
    );

    // User 1000's phone, registered (with the stock password the PBX has before the
    // rollout), answers the call its DID brings.
    let mut phone = Sipp::phone_answering(&w.fleet.dir, &w.pbx().addr, "1000", "1234");
    let pb = playbook_with(
        &w,
        "did.yml",
        "    - {name: did-1000, from: \"1000\", dial_did: \"+14155550190\", rings: \"1000\"}\n",
    );
    let out = session(&pb).run(["apply", "--json"]).out;
    phone.finish(Duration::from_secs(10));
    assert_eq!(out.code, 0, "{}", out.all());
    let r = host_report(&out, "pbx1");
    assert_eq!(r["status"], "changed", "{r:#}");
    let t = &r["call_tests"][0];
    assert_eq!(t["passed"], true, "{r:#}");
    let summary = t["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("DID 14155550190 came back inbound, reached user 1000, answered"),
        "{summary}"
    );
    assert_eq!(t["detail"]["inbound"]["user"], "1000", "{t:#}");
    // Out through the trunk as E.164, and the phone of user 1000 was the one called.
    assert_eq!(t["detail"]["leg"]["number_sent"], "14155550190", "{t:#}");
    let rung: Vec<_> = phone
        .messages()
        .into_iter()
        .filter(|m| !m.sent && m.first.starts_with("INVITE sip:1000@"))
        .collect();
    assert_eq!(rung.len(), 1, "{:#?}", phone.messages());
}

/// The DID's route sends it to user 1001 (whose phone is not registered) while the test
/// expects user 1000: the call back is seen reaching 1001 without ringing, the test fails
/// saying so, and the host is rolled back like any failed call test.
#[test]
fn a_dial_did_that_reaches_another_user_fails_and_rolls_the_host_back() {
    let (w, inv) = world("real-call-did-wrong", "+14155550191", "1001");
    // The stock PBX has no trunk dialplan: rolled back, it has none again.
    assert!(!w.pbx().conf("dialplan/wavix.xml").exists());
    let pb = playbook_with(
        &w,
        "did.yml",
        "    - {name: did-1000, from: \"1000\", dial_did: \"14155550191\", rings: \"1000\"}\n",
    );
    let out = w
        .fleet
        .session_on(&inv)
        .playbook(&pb)
        .run(["apply", "--json"])
        .out;
    assert_eq!(out.code, 1, "{}", out.all());
    let r = host_report(&out, "pbx1");
    assert_eq!(r["status"], "rolled_back", "{r:#}");
    let t = &r["call_tests"][0];
    assert_eq!(t["passed"], false, "{r:#}");
    let summary = t["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("DID 14155550191 came back inbound, reached user 1001, did NOT ring"),
        "{summary}"
    );
    assert!(summary.contains("expected user 1000"), "{summary}");
    assert_eq!(
        t["detail"]["inbound"]["bridge_cause"], "USER_NOT_REGISTERED",
        "{t:#}"
    );
    assert!(
        !w.pbx().conf("dialplan/wavix.xml").exists(),
        "not rolled back"
    );
}
