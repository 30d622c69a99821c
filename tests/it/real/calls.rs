//! Real SIP calls through a real FreeSWITCH configured by the shipped playbook: phones
//! (SIPp, directory user 1000) dial as users dial, the provider's side (Kamailio relaying to
//! a SIPp) sees what the PBX sends, and the provider's calls reach the right phone.

use std::time::Duration;

use super::*;
use crate::session::exit;

const USER: &str = "1000";
const USER_PW: &str = "ext-pass-1000";
const DID: &str = "16468097065";

/// One PBX applied with the shipped playbook (and `extra` vars, given the provider's
/// address), its trunk REGED.
fn pbx(tag: &str, extra: &dyn Fn(&str) -> String) -> World {
    let w = World::new(tag, WrongPassword::Forbidden);
    let inv = w.inventory("inv.yml", &extra(&w.provider.addr));
    let out = w.apply(&inv, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    w
}

/// A phone dials `number`; returns what the provider received (request URIs) and the
/// phone's final response code.
fn dial(w: &World, number: &str, refuse: Option<u16>) -> (Vec<String>, Option<u16>, Sipp) {
    let mut callee = w.provider.callee(refuse);
    let call = Sipp::dial(&w.fleet.dir, &w.pbx().addr, USER, USER_PW, number);
    callee.finish(Duration::from_secs(5));
    (callee.invites_received(), call.final_code(), call)
}

/// Users dial the way people dial (10 digits, 1+10, +E.164, 011 international) and the
/// provider always gets the E.164 digits it requires; emergency calls go out as dialled.
#[test]
fn numbers_as_users_dial_them_reach_the_provider_in_e164() {
    let w = pbx("real-e164", &|_| String::new());
    for (dialled, sent) in [
        ("2125551234", "12125551234"),
        ("12125551234", "12125551234"),
        ("+12125551234", "12125551234"),
        ("011442071234567", "442071234567"),
        ("+442071234567", "442071234567"),
        ("911", "911"),
    ] {
        let mut callee = w.provider.callee(None);
        let call = Sipp::dial(&w.fleet.dir, &w.pbx().addr, USER, USER_PW, dialled);
        callee.finish(Duration::from_secs(5));
        let got = callee.invites_received();
        assert_eq!(
            call.final_code(),
            Some(200),
            "{dialled}: {:#?}",
            call.messages()
        );
        assert_eq!(got.len(), 1, "{dialled}: {got:?}");
        assert_eq!(uri_user(&got[0]), sent, "{dialled}: {got:?}");
        // The provider sees the user's E.164 caller ID, not the extension.
        let invite = callee
            .messages()
            .into_iter()
            .find(|m| !m.sent && m.first.starts_with("INVITE"))
            .unwrap();
        let from = invite
            .text
            .lines()
            .find(|l| l.starts_with("From:"))
            .unwrap_or("")
            .to_string();
        assert!(from.contains("sip:16468097065@"), "{dialled}: {from}");
    }
    // The PBX's own features still work for users (the stock echo test, 9196).
    let (got, code, call) = dial(&w, "9196", None);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(code, Some(200), "{:#?}", call.messages());
    // Not a number of this plan: refused by the PBX, nothing reaches the trunk.
    let (got, code, _) = dial(&w, "0123", None);
    assert!(got.is_empty(), "{got:?}");
    assert!(code.is_some_and(|c| c >= 400), "{code:?}");
}

/// `emergency_calls: refuse`: the phone hears a refusal, the trunk sees nothing.
#[test]
fn emergency_calls_refused_when_the_operator_says_so() {
    let w = pbx("real-911", &|_| "emergency_calls: refuse\n".into());
    let (got, code, _) = dial(&w, "911", None);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(code, Some(403));
}

/// Failover: the primary region answers 503 (the route failed) and the failover gateway
/// carries the call. A busy callee (486) is not rung again through the failover, and a
/// completed call (the callee hung up first) is not dialled again.
#[test]
fn failover_only_when_the_route_failed() {
    let mut w = World::new("real-failover", WrongPassword::Forbidden);
    let backup = Provider::start(&w.fleet.dir, WrongPassword::Forbidden);
    let inv = w.inventory(
        "inv.yml",
        &format!(
            "wavix_failover_proxy: \"{}\"\nwavix_failover_realm: sip.test\n",
            backup.addr
        ),
    );
    let out = w.apply(&inv, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    w.fs()
        .wait_gateway("wavix_fo", "REGED", None, Duration::from_secs(10));

    let scenario = |w: &World, primary: Option<u16>| {
        let mut p = w.provider.callee(primary);
        let mut b = backup.callee(None);
        let call = Sipp::dial(&w.fleet.dir, &w.pbx().addr, USER, USER_PW, "2125551234");
        p.finish(Duration::from_secs(5));
        b.finish(Duration::from_secs(3));
        (p.invites_received(), b.invites_received(), call)
    };

    // 503 from the primary: the backup gets the call, and the phone is connected.
    let (p, b, call) = scenario(&w, Some(503));
    assert_eq!((p.len(), b.len()), (1, 1), "{p:?} {b:?}");
    assert_eq!(uri_user(&b[0]), "12125551234");
    assert_eq!(call.final_code(), Some(200), "{:#?}", call.messages());

    // 486 busy: the caller hears busy; the callee is not rung again through the backup.
    let (p, b, call) = scenario(&w, Some(486));
    assert_eq!((p.len(), b.len()), (1, 0), "{p:?} {b:?}");
    assert_eq!(call.final_code(), Some(486));

    // Answered, then the callee hangs up first: the call ends; nothing is dialled again.
    let (p, b, call) = scenario(&w, None);
    assert_eq!((p.len(), b.len()), (1, 0), "redialled: {p:?} {b:?}");
    assert_eq!(call.final_code(), Some(200));
    assert!(
        call.got_bye(),
        "the phone was not hung up: {:#?}",
        call.messages()
    );

    // The primary region down: a failed OPTIONS ping marks its gateway DOWN (mod_sofia also
    // drops a REGED registration to FAILED then), and calls fail over at once.
    w.provider.stop();
    // Usually within a ping interval (the closed port answers the OPTIONS with ICMP); when
    // a ping was already in flight, only after its SIP timeout (timer F, 32 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while w.fs().gateway("wavix").1 != "DOWN" {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            w.fs().gateway("wavix")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut b = backup.callee(None);
    let call = Sipp::dial(&w.fleet.dir, &w.pbx().addr, USER, USER_PW, "2125551234");
    b.finish(Duration::from_secs(3));
    assert_eq!(b.invites_received().len(), 1);
    assert_eq!(call.final_code(), Some(200));
}

/// Inbound from a registering trunk: the DID in `To` (the provider relays to the PBX's
/// registered Contact `gw+wavix`) and the DID as the request URI (sent straight to the
/// PBX from the provider's address, allowed by the ACL) both ring user 1000. A number that
/// is not a DID never goes back out through the trunk.
#[test]
fn inbound_dids_ring_their_user_and_nothing_else_gets_through() {
    let w = pbx("real-inbound", &|p| {
        format!("wavix_inbound_addresses: [\"{p}\"]\n")
    });
    let dir = &w.fleet.dir;
    let pbx = w.pbx().addr.clone();

    for (how, to_pbx, did) in [
        ("DID in To, via the registrar", None, DID.to_string()),
        ("DID in To with +", None, format!("+{DID}")),
        (
            "DID as the request URI",
            Some(pbx.as_str()),
            DID.to_string(),
        ),
    ] {
        let mut phone = Sipp::phone_answering(dir, &pbx, USER, USER_PW);
        let call = w.provider.call(&did, "12125550000", to_pbx);
        phone.finish(Duration::from_secs(5));
        assert_eq!(
            call.final_code(),
            Some(200),
            "{how}: {:#?}",
            call.messages()
        );
        let rang = phone.invites_received();
        assert_eq!(rang.len(), 1, "{how}: user {USER} did not ring: {rang:?}");
        assert_eq!(uri_user(&rang[0]), USER, "{how}");
    }

    // Not a DID: refused, and the trunk's outbound side never sees it (toll fraud).
    let mut out = w.provider.callee(None);
    let call = w.provider.call("12125559999", "12125550000", None);
    out.finish(Duration::from_secs(2));
    assert!(
        out.invites_received().is_empty(),
        "went back out: {:?}",
        out.invites_received()
    );
    assert!(
        call.final_code().is_some_and(|c| c >= 400),
        "{:#?}",
        call.messages()
    );
    let log = w.fs().log();
    assert!(
        log.contains("->12125559999 in context wavix_inbound"),
        "the call did not run in the inbound context"
    );
}

/// The header line `name` of the first `method` request `sipp` received.
fn header_received(sipp: &Sipp, method: &str, name: &str) -> String {
    let request = sipp
        .messages()
        .into_iter()
        .find(|m| !m.sent && m.first.starts_with(method))
        .unwrap();
    request
        .text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap()
        .to_string()
}

/// The provider's DID call, as the provider makes it, but sent from address `from`.
fn provider_call_from(dir: &std::path::Path, pbx: &str, from: &str) -> Sipp {
    Sipp::run(
        dir,
        "provider_call.xml",
        Some(&format!("{pbx}:5080")),
        from,
        5091,
        &[
            "-s",
            DID,
            "-key",
            "did",
            DID,
            "-key",
            "caller",
            "12125550000",
            "-key",
            "domain",
            PROVIDER_REALM,
        ],
    )
}

/// IP authentication: the gateway is healthy only after a real OPTIONS answer; calls from
/// the provider's address are routed by DID, calls from any other address are not; the
/// provider sees the From host it knows this PBX by; a provider that goes away is DOWN.
#[test]
fn ip_auth_trunk_on_a_real_freeswitch() {
    let mut w = World::new("real-ipauth", WrongPassword::Forbidden);
    let inv = w.inventory(
        "inv.yml",
        &format!(
            "wavix_ip_auth: true\nwavix_from_domain: pbx1.example.net\nwavix_inbound_addresses: [\"{}\"]\n",
            w.provider.addr
        ),
    );
    let session = w.fleet.session_on(&inv);
    let out = session.run(["apply", "--json"]).expect(exit::OK);
    let r = host_report(&out, "pbx1");
    let gw = &r["gateways"][0];
    assert_eq!(
        (
            gw["name"].as_str(),
            gw["state"].as_str(),
            gw["status"].as_str()
        ),
        (Some("wavix_ip"), Some("NOREG"), Some("UP")),
        "{r:#}"
    );
    assert!(
        gw["ping_count"].as_u64().unwrap_or(0) >= 1,
        "verified before any ping was answered: {r:#}"
    );
    assert!(commands(&r).contains(&"reloadacl".to_string()), "{r:#}");

    // Outbound: the provider sees From: ...@pbx1.example.net.
    let mut callee = w.provider.callee(None);
    let call = Sipp::dial(&w.fleet.dir, &w.pbx().addr, USER, USER_PW, "2125551234");
    callee.finish(Duration::from_secs(5));
    assert_eq!(call.final_code(), Some(200), "{:#?}", call.messages());
    let from = header_received(&callee, "INVITE", "From:");
    assert!(from.contains("@pbx1.example.net"), "{from}");

    // Inbound from the provider's address: routed by DID to the user.
    let dir = &w.fleet.dir;
    let pbx = w.pbx().addr.clone();
    let mut phone = Sipp::phone_answering(dir, &pbx, USER, USER_PW);
    let call = w.provider.call(DID, "12125550000", Some(&pbx));
    phone.finish(Duration::from_secs(5));
    assert_eq!(call.final_code(), Some(200), "{:#?}", call.messages());
    assert_eq!(phone.invites_received().len(), 1);

    // The same call from another address is not let into the inbound context.
    let mut phone = Sipp::phone_answering(dir, &pbx, USER, USER_PW);
    let call = provider_call_from(dir, &pbx, &next_addr());
    phone.finish(Duration::from_secs(3));
    assert!(
        phone.invites_received().is_empty(),
        "a stranger's call rang the user"
    );
    assert!(
        call.final_code().is_some_and(|c| c >= 400),
        "{:#?}",
        call.messages()
    );

    // The provider goes away: the gateway goes DOWN, and `verify` says so.
    w.provider.stop();
    w.fs()
        .wait_gateway("wavix_ip", "NOREG", Some("DOWN"), Duration::from_secs(45));
    let v = session.run(["verify"]).expect(exit::FAILED);
    v.shows(&["did not answer its OPTIONS ping"]);

    // It comes back: the next ping finds it, and `verify` passes again.
    w.provider.resume();
    w.fs()
        .wait_gateway("wavix_ip", "NOREG", Some("UP"), Duration::from_secs(45));
    session.run(["verify"]).expect(exit::OK);
}
