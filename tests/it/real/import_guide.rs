//! A real FreeSWITCH configured by hand as the Wavix guide says, mistakes included, mapped
//! onto the shipped playbook by `switchyard import` and applied: then real SIP calls show
//! the guide's mistakes are gone (E.164 out, failover on a failed route only, DIDs in).

use std::time::Duration;

use super::*;
use crate::import_mapped::{apply, import};

const USER: &str = "1000";
const USER_PW: &str = "ext-pass-1000";
const DID: &str = "16468097065";

/// The guide's files on the real PBX, its placeholders filled in: the trunk account of the
/// test provider (its realm, `proxy` its address: the guide's regions are not reachable
/// from a test), the failover region at `backup`.
fn plant_guide(w: &World, backup: &str) {
    let h = w.pbx();
    let g = |rel: &str| {
        std::fs::read_to_string(crate::harness::repo(&format!("tests/fixtures/guide/{rel}")))
            .unwrap()
            .replace("YOUR_SIP_TRUNK_ID", TRUNK_USER)
            .replace("YOUR_SIP_TRUNK_PASSWORD", TRUNK_PASSWORD)
            .replace("SET_EXTENSION_PASSWORD", USER_PW)
            .replace("\"vm-password\" value=\"1000\"", "\"vm-password\" value=\"4711\"")
            .replace(
                "<param name=\"realm\" value=\"us.wavix.net\"/>",
                &format!("<param name=\"realm\" value=\"{PROVIDER_REALM}\"/><param name=\"proxy\" value=\"{}\"/>", w.provider.addr),
            )
            .replace(
                "<param name=\"proxy\" value=\"nl.wavix.net\"/>",
                &format!("<param name=\"realm\" value=\"{PROVIDER_REALM}\"/><param name=\"proxy\" value=\"{backup}\"/>"),
            )
            .replace("123.123.123.123", &h.addr)
    };
    crate::import_mapped::write_guide_files(h, &g);
}

/// The guide's PBX imported and applied; then, as the report says, the guide's own
/// dialplan file removed. Users dial a US number with `+` and the provider gets E.164
/// digits; a 503 from the primary region fails over to the backup, a 486 does not; the
/// DID rings user 1000.
#[test]
fn the_wavix_guide_pbx_imported_and_applied_places_and_takes_real_calls() {
    let w = World::new("real-import-guide", WrongPassword::Forbidden);
    let backup = Provider::start(&w.fleet.dir, WrongPassword::Forbidden);
    plant_guide(&w, &backup.addr);
    let inv = w.inventory("inv.yml", "");
    let dir = crate::harness::tmp("real-import-guide-project").join("project");
    let out = import(&w.fleet, &inv, &dir);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("pbx1: why: dialplan/wavix_dialplan.xml: context `wavix` is written by the playbook to dialplan/wavix.xml; remove this file"), "{}", out.stdout);
    let a = apply(&w.fleet, &dir, false);
    assert_eq!(a.code, 0, "{}", a.all());
    std::fs::remove_file(w.pbx().conf("dialplan/wavix_dialplan.xml")).unwrap();
    w.fs().api("reloadxml");
    w.fs()
        .wait_gateway("wavix", "REGED", None, Duration::from_secs(15));
    w.fs()
        .wait_gateway("wavix_fo", "REGED", None, Duration::from_secs(15));

    let scenario = |primary: Option<u16>| {
        let mut p = w.provider.callee(primary);
        let mut b = backup.callee(None);
        let call = Sipp::dial(&w.fleet.dir, &w.pbx().addr, USER, USER_PW, "+12125551234");
        p.finish(Duration::from_secs(5));
        b.finish(Duration::from_secs(3));
        (p.invites_received(), b.invites_received(), call)
    };
    let (p, b, call) = scenario(None);
    assert_eq!((p.len(), b.len()), (1, 0), "{p:?} {b:?}");
    assert_eq!(uri_user(&p[0]), "12125551234");
    assert_eq!(call.final_code(), Some(200), "{:#?}", call.messages());
    let (p, b, call) = scenario(Some(503));
    assert_eq!((p.len(), b.len()), (1, 1), "{p:?} {b:?}");
    assert_eq!(call.final_code(), Some(200), "{:#?}", call.messages());
    let (p, b, call) = scenario(Some(486));
    assert_eq!(
        (p.len(), b.len()),
        (1, 0),
        "the guide's continue_on_fail=true rang the callee twice: {p:?} {b:?}"
    );
    assert_eq!(call.final_code(), Some(486));

    let mut phone = Sipp::phone_answering(&w.fleet.dir, &w.pbx().addr, USER, USER_PW);
    let call = w.provider.call(DID, "12125550000", None);
    phone.finish(Duration::from_secs(5));
    assert_eq!(call.final_code(), Some(200), "{:#?}", call.messages());
    assert_eq!(
        phone.invites_received().len(),
        1,
        "the DID did not ring user {USER}"
    );
}
