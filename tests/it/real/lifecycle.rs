//! The acceptance runs of issue #9 against a real FreeSWITCH 1.10.12 and a real Kamailio
//! registrar: what an operator's rollout does to a live PBX, step by step.

use std::time::Duration;

use super::*;
use crate::session::exit;

fn conf_digest(h: &crate::harness::TestHost) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![h.dir.join("conf")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Check, first apply, no-op, password rotation, a changed param, drift: the life of a
/// registering trunk on one PBX.
#[test]
fn registering_trunk_from_check_to_drift_on_a_real_freeswitch() {
    let w = World::new("real-life", WrongPassword::Forbidden);
    let fs = w.fs();
    let inv = w.inventory("inv.yml", "");

    // A check run changes nothing on the host.
    let before = conf_digest(w.pbx());
    let check = w.apply(&inv, &["--check"]);
    assert_eq!(check.code, 0, "{}", check.all());
    assert_eq!(host_report(&check, "pbx1")["status"], "changed");
    assert_eq!(conf_digest(w.pbx()), before, "--check wrote to the host");
    assert_eq!(fs.gateway("wavix").0, "", "--check loaded a gateway");

    // First apply: files written, the profile rescanned, the gateway verified REGED.
    let first = w.apply(&inv, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    let r = host_report(&first, "pbx1");
    assert_eq!(r["status"], "changed", "{r:#}");
    assert!(
        commands(&r).contains(&"sofia profile external rescan".to_string()),
        "{r:#}"
    );
    assert_eq!(r["gateways"][0]["state"], "REGED", "{r:#}");
    assert_eq!(fs.gateway("wavix").0, "REGED");
    // The RTP range is read only at start-up: pending, not done, without --allow restart.
    assert_eq!(r["restart_pending"], true, "{r:#}");

    // Second run: nothing to write and no FreeSWITCH command, in one remote command.
    let again = w.apply(&inv, &[]);
    assert_eq!(again.code, 0, "{}", again.all());
    let r = host_report(&again, "pbx1");
    assert_eq!(r["status"], "ok", "{r:#}");
    assert_eq!(commands(&r), Vec::<String>::new());
    assert_eq!(r["remote_commands"], 1, "{r:#}");

    // The provider rotates the password: killgw + rescan, REGED on the new one.
    let mut w = w;
    w.provider.set_password("secret2");
    let inv2 = w.inventory("inv2.yml", "wavix_password: secret2\n");
    let rot = w.apply(&inv2, &[]);
    assert_eq!(rot.code, 0, "{}", rot.all());
    let r = host_report(&rot, "pbx1");
    assert_eq!(
        commands(&r),
        [
            "sofia profile external killgw wavix",
            "sofia profile external rescan"
        ],
        "{r:#}"
    );
    assert_eq!(r["gateways"][0]["state"], "REGED", "{r:#}");
    let fs = w.fs();
    assert_eq!(fs.gateway("wavix").0, "REGED");

    // A changed gateway param is what the running FreeSWITCH reports afterwards.
    let inv3 = w.inventory(
        "inv3.yml",
        "wavix_password: secret2\nwavix_expire_seconds: 900\n",
    );
    let param = w.apply(&inv3, &[]);
    assert_eq!(param.code, 0, "{}", param.all());
    let xml = fs.api("sofia xmlstatus gateway wavix");
    assert!(
        xml.contains("<freq>900</freq>") || xml.contains("<expires>900</expires>"),
        "{xml}"
    );

    // Drift: a hand edit on the PBX is found, labelled, and fixed through the normal path.
    let gw = w.pbx().conf("sip_profiles/external/wavix.xml");
    let text = std::fs::read_to_string(&gw).unwrap();
    std::fs::write(&gw, text.replace("900", "1200")).unwrap();
    let session = w.fleet.session_on(&inv3);
    session.run(["drift", "--json"]).expect(exit::DRIFT);
    session.run(["drift", "--fix"]).expect(exit::OK);
    assert!(std::fs::read_to_string(&gw).unwrap().contains("\"900\""));
    fs.wait_gateway("wavix", "REGED", None, Duration::from_secs(10));
    session.run(["drift"]).expect(exit::OK);
}

/// A wrong password is refused by the provider (403, or a new 401 challenge): the gateway
/// fails, the files are restored byte for byte, and the old gateway registers again.
#[test]
fn wrong_password_is_rolled_back_for_403_and_for_a_new_401() {
    for wrong in [WrongPassword::Forbidden, WrongPassword::Challenge] {
        let w = World::new(&format!("real-wrong-{wrong:?}"), wrong);
        let inv = w.inventory("inv.yml", "");
        let first = w.apply(&inv, &[]);
        assert_eq!(first.code, 0, "{}", first.all());
        let gw = w.pbx().conf("sip_profiles/external/wavix.xml");
        let good = std::fs::read(&gw).unwrap();

        let bad = w.inventory("bad.yml", "wavix_password: not-the-password\n");
        let out = w.apply(&bad, &[]);
        assert_eq!(out.code, 1, "{wrong:?}: {}", out.all());
        let r = host_report(&out, "pbx1");
        assert_eq!(r["status"], "rolled_back", "{wrong:?}: {r:#}");
        let reason = r["error"].as_str().unwrap();
        match wrong {
            // 403: FAILED then FAIL_WAIT at once.
            WrongPassword::Forbidden => assert!(reason.contains("FAIL"), "{reason}"),
            // A new challenge for every attempt: it never registers.
            WrongPassword::Challenge => {
                assert!(
                    reason.contains("FAIL") || reason.contains("not healthy"),
                    "{reason}"
                )
            }
        }
        assert!(!out.all().contains("not-the-password"), "secret in output");
        assert_eq!(
            std::fs::read(&gw).unwrap(),
            good,
            "{wrong:?}: file not restored"
        );
        w.fs()
            .wait_gateway("wavix", "REGED", None, Duration::from_secs(15));
    }
}

/// The PBX already holds a broken file (left by someone else): the real reloadxml rejects
/// the whole tree and keeps the old configuration; switchyard restores its files.
#[test]
fn xml_rejected_by_the_real_reloadxml_is_rolled_back() {
    let w = World::new("real-badxml", WrongPassword::Forbidden);
    let inv = w.inventory("inv.yml", "");
    assert_eq!(w.apply(&inv, &[]).code, 0);
    let dp = w.pbx().conf("dialplan/wavix.xml");
    let good = std::fs::read(&dp).unwrap();
    std::fs::write(
        w.pbx().conf("dialplan/zz_broken.xml"),
        "<include>\n  <context name=\"broken\">\n</include>\n",
    )
    .unwrap();
    let inv2 = w.inventory(
        "inv2.yml",
        "did_routes: [{number: \"16468097066\", extension: \"1000\"}]\n",
    );
    let out = w.apply(&inv2, &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    let r = host_report(&out, "pbx1");
    assert_eq!(r["status"], "rolled_back", "{r:#}");
    assert!(
        r["error"].as_str().unwrap().contains("rejected the XML"),
        "{r:#}"
    );
    assert_eq!(std::fs::read(&dp).unwrap(), good);
}

/// An RTP range change waits for `--allow restart`; then FreeSWITCH really restarts, every
/// gateway is verified REGED again, and the new range is what FreeSWITCH offers in SDP.
#[test]
fn rtp_range_restart_is_real_and_verified() {
    let w = World::new("real-rtp", WrongPassword::Forbidden);
    let inv = w.inventory("inv.yml", "");
    let first = w.apply(&inv, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(host_report(&first, "pbx1")["restart_pending"], true);
    let pid = w.fs().pid();

    let out = w.apply(&inv, &["--allow", "restart"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let r = host_report(&out, "pbx1");
    assert_eq!(commands(&r), ["restart FreeSWITCH"], "{r:#}");
    assert_eq!(r["restart_pending"], false, "{r:#}");
    assert_eq!(r["gateways"][0]["state"], "REGED", "{r:#}");
    assert_ne!(w.fs().pid(), pid, "FreeSWITCH was not restarted");

    // A call through the trunk: the SDP FreeSWITCH offers the provider uses the new range.
    let mut callee = w.provider.callee(None);
    let call = Sipp::dial(
        &w.fleet.dir,
        &w.pbx().addr,
        "1000",
        "ext-pass-1000",
        "2125551234",
    );
    callee.finish(Duration::from_secs(10));
    assert_eq!(call.final_code(), Some(200), "{:#?}", call.messages());
    let invite = callee
        .messages()
        .into_iter()
        .find(|m| !m.sent && m.first.starts_with("INVITE"))
        .expect("the provider got the call");
    let port: u32 = invite
        .text
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    assert!((10000..=20000).contains(&port), "offered RTP port {port}");
}

/// A profile setting that needs `sofia profile external restart`, applied right after
/// FreeSWITCH started: the real FreeSWITCH refuses ("must be up for at least 10 seconds",
/// no `-ERR`). With no time to wait (drain limit 1 s) the host fails and the restart stays
/// owed on the host; the next run waits as FreeSWITCH asks, restarts the profile, and
/// verifies the gateway registered again.
#[test]
fn refused_profile_restart_is_not_counted_as_done() {
    let w = World::new("real-profile", WrongPassword::Forbidden);
    // Another loopback address as the advertised external address: ext-sip-ip/ext-rtp-ip
    // change, which only a profile restart applies. Nothing is sent to it.
    let ext = next_addr();
    let inv = w.inventory("inv.yml", &format!("external_ip: \"{ext}\"\n"));
    let profile = w.fs().api("sofia status profile external");
    assert!(
        !profile.contains(&format!("Ext-SIP-IP       \t{ext}\n")),
        "{profile}"
    );
    let hurried = crate::harness::playbook(
        &w.fleet.dir,
        "hurried.yml",
        &std::fs::read_to_string(crate::harness::repo("playbooks/wavix.yml"))
            .unwrap()
            .replace("  allow: none\n", "  allow: none\n  drain_timeout: 1\n"),
    );
    let session = w.fleet.session_on(&inv).playbook(hurried);
    let out = session.run(["apply", "--json", "--allow", "profile"]);
    let out = out.expect(exit::FAILED);
    let r = host_report(&out, "pbx1");
    let err = r["error"].as_str().unwrap();
    assert!(err.contains("must be up for at least 10 seconds"), "{err}");
    assert!(err.contains("stays owed"), "{err}");
    let record = std::fs::read_to_string(w.pbx().conf(".switchyard/state.json")).unwrap();
    assert!(
        record.contains("sofia profile external restart"),
        "{record}"
    );

    // The next run (normal drain limit): owed, so performed, after waiting if FreeSWITCH
    // still asks to; then every gateway is verified again.
    let out = w.apply(&inv, &["--allow", "profile"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let r = host_report(&out, "pbx1");
    assert!(
        commands(&r).contains(&"sofia profile external restart".to_string()),
        "{r:#}"
    );
    assert_eq!(r["gateways"][0]["state"], "REGED", "{r:#}");
    let record = std::fs::read_to_string(w.pbx().conf(".switchyard/state.json")).unwrap();
    assert!(
        !record.contains("sofia profile external restart"),
        "{record}"
    );
    // The running profile really uses the new address now.
    let profile = w.fs().api("sofia status profile external");
    assert!(
        profile.contains(&format!("Ext-SIP-IP       \t{ext}\n")),
        "{profile}"
    );
}

/// Switching to IP authentication on a real FreeSWITCH: the registering gateway's file is
/// removed and the gateway unloaded (killgw), the IP-auth one loaded and verified.
#[test]
fn switching_to_ip_auth_unloads_the_registering_gateway() {
    let w = World::new("real-switch", WrongPassword::Forbidden);
    let inv = w.inventory("inv.yml", "");
    assert_eq!(w.apply(&inv, &[]).code, 0);
    assert_eq!(w.fs().gateway("wavix").0, "REGED");
    let ip = w.inventory(
        "ip.yml",
        &format!(
            "wavix_ip_auth: true\nwavix_inbound_addresses: [\"{}\"]\n",
            w.provider.addr
        ),
    );
    let out = w.apply(&ip, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let r = host_report(&out, "pbx1");
    assert!(
        commands(&r).contains(&"sofia profile external killgw wavix".to_string()),
        "{r:#}"
    );
    assert!(!w.pbx().exists("sip_profiles/external/wavix.xml"));
    // killgw is asynchronous: the gateway is reaped a moment later.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !w
        .fs()
        .api("sofia xmlstatus gateway wavix")
        .contains("Invalid Gateway")
    {
        assert!(std::time::Instant::now() < deadline, "wavix still loaded");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(w.fs().gateway("wavix_ip"), ("NOREG".into(), "UP".into()));
}
