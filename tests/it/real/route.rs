//! `switchyard route` against the real FreeSWITCH: for a corpus of numbers, as a user dials
//! them and as the provider delivers them, what `route --conf` predicts is compared with
//! what FreeSWITCH 1.10.12 does for the same call: a `loopback/NUMBER/CONTEXT` call is
//! originated and the dialplan's own debug log (`Processing ... in context`, `Action
//! app(data)`, `ANTI-Action ...`) is read back. Every hunt route evaluated must be the hunt
//! FreeSWITCH made, action for action; any disagreement fails the test.

use std::time::{Duration, Instant};

use super::*;

/// Numbers as users dial them (context `wavix`, the users' `user_context`).
const FROM_USER: &[&str] = &[
    "2125551234",
    "6465550100",
    "3105550199",
    "12125551234",
    "16465550100",
    "+12125551234",
    "+16465550100",
    "+442071234567",
    "011442071234567",
    "01131201234567",
    "+31201234567",
    "+61291234567",
    "0116129123456",
    "911",
    "933",
    "112",
    "999",
    "1000",
    "1001",
    "1019",
    "1099",
    "12",
    "123",
    "12345",
    "1234567",
    "5550100",
    "02125551234",
    "1212555123",
    "121255512345",
    "21255512345",
    "212555123",
    "+1",
    "+0123456789",
    "011",
    "0",
    "18005551234",
    "+18005551234",
    "+447700900123",
    "*98",
    "9196",
    "5000",
];

/// Numbers as the provider delivers them through the registered gateway.
const FROM_TRUNK: &[&str] = &[
    "16468097065",
    "+16468097065",
    "16465550123",
    "+16465550123",
    "16465550199",
    "16465550100",
    "1000",
    "911",
    "12125551234",
    "+442071234567",
];

/// Numbers arriving in the stock `public` context (calls no gateway or ACL claims): its
/// `continue="true"` and `break="never"` extensions, anti-actions and transfers.
const IN_PUBLIC: &[&str] = &[
    "1000",
    "1019",
    "1020",
    "5551212",
    "3000",
    "9999",
    "+16468097065",
];

/// FreeSWITCH's hunts for the call just made: (context, [(application, data)]).
fn hunts_in_log(log: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut hunts: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in log.lines() {
        if let Some(i) = line.find("Processing ") {
            if let Some(c) = line[i..].find(" in context ") {
                let ctx = line[i + c + " in context ".len()..].trim().to_string();
                hunts.push((ctx, Vec::new()));
            }
            continue;
        }
        let Some(d) = line.find("Dialplan: loopback/") else {
            continue;
        };
        let rest = &line[d..];
        let action = rest
            .find(" ANTI-Action ")
            .map(|k| &rest[k + " ANTI-Action ".len()..])
            .or_else(|| rest.find(" Action ").map(|k| &rest[k + " Action ".len()..]));
        let Some(a) = action else { continue };
        let a = a.trim_end().trim_end_matches("INLINE").trim_end();
        let (app, data) = match (a.find('('), a.rfind(')')) {
            (Some(o), Some(c)) if o < c => (a[..o].to_string(), a[o + 1..c].to_string()),
            _ => (a.to_string(), String::new()),
        };
        if let Some(h) = hunts.last_mut() {
            h.1.push((app, data));
        }
    }
    hunts
}

/// Originate one call into `context` (in the background: a bridge out may ring for a long
/// time) and return FreeSWITCH's hunts for it, once it made `expect` of them (or after a
/// few seconds, when it did not: the comparison then shows the difference).
fn real_hunts(
    fs: &FreeSwitch,
    number: &str,
    context: &str,
    caller: &str,
    expect: usize,
) -> Vec<(String, Vec<(String, String)>)> {
    let start = fs.log().len();
    fs.api(&format!(
        "bgapi originate {{origination_caller_id_number={caller},originate_timeout=5}}loopback/{number}/{context}/XML &park"
    ));
    let deadline = Instant::now() + Duration::from_secs(4);
    let hunts = loop {
        std::thread::sleep(Duration::from_millis(150));
        let log = fs.log();
        let hunts = hunts_in_log(&log[start.min(log.len())..]);
        if hunts.len() >= expect.max(1) || Instant::now() > deadline {
            break hunts;
        }
    };
    // A hunt's actions are logged together; let the last one finish.
    std::thread::sleep(Duration::from_millis(150));
    fs.api("hupall NORMAL_CLEARING");
    let log = fs.log();
    let all = hunts_in_log(&log[start.min(log.len())..]);
    if all.len() >= hunts.len() {
        all
    } else {
        hunts
    }
}

fn predicted(conf: &std::path::Path, from: &[&str], numbers: &[&str]) -> serde_json::Value {
    // The install's module folder: modules.conf.xml loads mod_enum, which is not built
    // here, and FreeSWITCH's `${module_exists(mod_enum)}` says false.
    let mods = prefix().join("lib/freeswitch/mod");
    let mut args = vec![
        "route",
        "--conf",
        conf.to_str().unwrap(),
        "--mod-dir",
        mods.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(from);
    args.extend_from_slice(numbers);
    let out = crate::harness::switchyard(&args);
    assert!(out.code == 0 || out.code == 1, "{}", out.all());
    out.json()
}

fn compare(fs: &FreeSwitch, routes: &serde_json::Value, context: &str, caller: &str) -> usize {
    let mut compared = 0;
    for r in routes[0]["routes"].as_array().unwrap() {
        let number = r["number"].as_str().unwrap();
        let ours = r["route"]["hunts"].as_array().unwrap();
        let theirs = real_hunts(fs, number, context, caller, ours.len());
        let unknown = !r["route"]["unknown"].is_null();
        // Every hunt route completed must be FreeSWITCH's; a hunt it stopped in (a time
        // condition it will not guess) is not compared.
        let complete = if unknown {
            ours.len().saturating_sub(1)
        } else {
            ours.len()
        };
        assert!(
            theirs.len() >= ours.len(),
            "{number} in {context}: route predicted {} hunts, FreeSWITCH made {}: {theirs:?}\nroute: {r}",
            ours.len(),
            theirs.len()
        );
        if !unknown {
            assert_eq!(
                theirs.len(),
                ours.len(),
                "{number} in {context}: {theirs:?}\nroute: {r}"
            );
        }
        for (k, h) in ours.iter().enumerate() {
            assert_eq!(
                h["context"],
                theirs[k].0.as_str(),
                "{number}: hunt {k}: {theirs:?}"
            );
            if k >= complete {
                break;
            }
            let acts: Vec<(String, String)> = h["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a[0].as_str().unwrap().to_string(),
                        a[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            assert_eq!(
                acts, theirs[k].1,
                "{number} in {context}, hunt {k}: route disagrees with FreeSWITCH\nroute: {r}"
            );
        }
        compared += 1;
    }
    compared
}

#[test]
fn route_agrees_with_the_real_freeswitch_on_every_number_of_the_corpus() {
    let w = World::new("route", WrongPassword::Forbidden);
    // Registration with a failover gateway, three DIDs (one to another user, one to an
    // extension of the stock dialplan).
    let inv = w.inventory(
        "inv.yml",
        &format!(
            "wavix_failover_proxy: \"{0}\"\nwavix_failover_realm: sip.test\ndid_routes: [{{number: \"16468097065\", extension: \"1000\"}}, {{number: \"+16465550123\", extension: \"1001\"}}, {{number: \"16465550199\", transfer: \"9196\"}}]\n",
            w.provider.addr
        ),
    );
    let out = w.apply(&inv, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let fs = w.fs();
    let conf = w.pbx().dir.join("conf");

    let user = predicted(&conf, &["--from", "1000"], FROM_USER);
    let trunk = predicted(&conf, &["--from-trunk", "wavix"], FROM_TRUNK);
    // The predictions are the ones an operator would check (a few spelled out).
    let first = |v: &serde_json::Value, n: &str| {
        v[0]["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["number"] == n)
            .unwrap()["route"]["attempts"][0]["target"]
            .clone()
    };
    assert_eq!(
        first(&user, "2125551234"),
        serde_json::json!({"kind": "gateway", "gateway": "wavix", "number": "12125551234"})
    );
    let second = |v: &serde_json::Value, n: &str| {
        v[0]["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["number"] == n)
            .unwrap()["route"]["attempts"][1]
            .clone()
    };
    assert_eq!(second(&user, "2125551234")["target"]["gateway"], "wavix_fo");
    assert!(
        second(&user, "2125551234")["continue_on"].is_null(),
        "the last gateway ends the call"
    );
    assert_eq!(
        first(&user, "011442071234567"),
        serde_json::json!({"kind": "gateway", "gateway": "wavix", "number": "442071234567"})
    );
    assert_eq!(
        first(&user, "911"),
        serde_json::json!({"kind": "gateway", "gateway": "wavix", "number": "911"})
    );
    assert_eq!(
        first(&user, "1001"),
        serde_json::json!({"kind": "user", "user": "1001"})
    );
    assert_eq!(
        first(&trunk, "+16468097065"),
        serde_json::json!({"kind": "user", "user": "1000"})
    );
    assert_eq!(first(&trunk, "12125551234")["kind"], "refused");

    let public = predicted(&conf, &["--context", "public"], IN_PUBLIC);
    let n = compare(fs, &user, "wavix", "1000")
        + compare(fs, &trunk, "wavix_inbound", "2125550000")
        + compare(fs, &public, "public", "0000000000");
    assert_eq!(n, FROM_USER.len() + FROM_TRUNK.len() + IN_PUBLIC.len());
    assert!(n >= 40);

    // The same PBX switched to IP authentication: one gateway, calls from the provider's
    // address land in the inbound context by ACL.
    let ip = w.inventory(
        "ip.yml",
        &format!(
            "wavix_ip_auth: true\nwavix_inbound_addresses: [\"{}\"]\ndid_routes: [{{number: \"16468097065\", extension: \"1000\"}}]\n",
            w.provider.addr
        ),
    );
    let out = w.apply(&ip, &["--allow", "profile"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let numbers = &[
        "2125551234",
        "+442071234567",
        "011442071234567",
        "911",
        "1000",
        "12345",
    ];
    let user = predicted(&conf, &["--from", "1000"], numbers);
    assert_eq!(
        first(&user, "2125551234"),
        serde_json::json!({"kind": "gateway", "gateway": "wavix_ip", "number": "12125551234"})
    );
    let acl = predicted(
        &conf,
        &["--context", "wavix_inbound"],
        &["16468097065", "+16468097065", "12125551234"],
    );
    assert_eq!(
        compare(fs, &user, "wavix", "1000") + compare(fs, &acl, "wavix_inbound", "2125550000"),
        9
    );
}

/// `route --conf` on the stock vanilla tree as installed (tod/holiday examples included),
/// at a fixed weekday 10:00 and with the install's module folder: the answers issue 22
/// found wrong or "unknown" (88 calls: 5 answered, 83 unknown; 16 wrong without the
/// examples), as FreeSWITCH 1.10.12 routes them on this install.
#[test]
fn route_on_the_stock_vanilla_tree_follows_freeswitchs_applications() {
    let conf = prefix().join("etc/freeswitch");
    let mods = prefix().join("lib/freeswitch/mod");
    let route = |from: &[&str], numbers: &[&str]| {
        let mut args = vec![
            "route",
            "--conf",
            conf.to_str().unwrap(),
            "--mod-dir",
            mods.to_str().unwrap(),
            "--at",
            "2026-01-13 10:00",
            "--json",
        ];
        args.extend_from_slice(from);
        args.extend_from_slice(numbers);
        let out = crate::harness::switchyard(&args);
        assert!(out.code == 0 || out.code == 1, "{}", out.all());
        out.json()[0]["routes"].as_array().unwrap().clone()
    };
    let user = route(
        &["--from", "1000"],
        &[
            "1001", "9000", "0", "operator", "6001", "9196", "5000", "99",
        ],
    );
    let get = |rs: &[serde_json::Value], n: &str| {
        rs.iter().find(|r| r["number"] == n).unwrap()["route"].clone()
    };
    let contexts = |r: &serde_json::Value| -> Vec<String> {
        r["hunts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["context"].as_str().unwrap().to_string())
            .collect()
    };
    let apps = |r: &serde_json::Value| -> Vec<String> {
        r["executed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a[0].as_str().unwrap().to_string())
            .collect()
    };
    for r in &user {
        assert!(r["route"]["unknown"].is_null(), "{r}");
        // The time conditions were evaluated, and the output says at what time.
        assert_eq!(r["route"]["at"], "2026-01-13 10:00:00 (Tue)", "{r}");
    }
    // Local_Extension: bind_meta_app and the rest return; the call rings user/1001, then
    // (continue_on_fail=true) goes to voicemail through loopback.
    let r = get(&user, "1001");
    assert_eq!(r["hunts"][0]["extensions"][0], "tod_example");
    assert_eq!(
        r["attempts"][0]["target"],
        serde_json::json!({"kind": "user", "user": "1001"})
    );
    assert!(apps(&r).contains(&"bind_meta_app".to_string()));
    // 9000: eval and playback return; the queue runs out.
    let r = get(&user, "9000");
    assert_eq!(apps(&r)[apps(&r).len() - 2..], ["eval", "playback"]);
    // 0 and operator: three hunts (default, features, default).
    for n in ["0", "operator"] {
        assert_eq!(
            contexts(&get(&user, n)),
            ["default", "features", "default"],
            "{n}"
        );
    }
    // valet_park's look-ahead `^((?!6000)60\d{2})$` runs on PCRE; mod_valet_parking is not
    // built here, so FreeSWITCH hangs up.
    let r = get(&user, "6001");
    assert_eq!(
        r["hunts"][0]["extensions"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        "valet_park"
    );
    assert!(r["attempts"][0]["target"]["why"]
        .as_str()
        .unwrap()
        .contains("mod_valet_parking is not loaded"));
    assert_eq!(get(&user, "9196")["attempts"][0]["target"]["kind"], "held");
    assert_eq!(
        get(&user, "5000")["attempts"][0]["target"]["application"],
        "ivr"
    );
    // `${module_exists(mod_enum)}` is false here (not built): acknowledge_call, ring_ready
    // and playback return, and the queue runs out.
    let r = get(&user, "99");
    let ext = r["hunts"][0]["extensions"].as_array().unwrap();
    assert_eq!(ext.last().unwrap(), "acknowledge_call");
    assert!(!ext.iter().any(|e| e == "enum"));

    // From outside, into `public`: the DID of the stock example goes to 1000 in default.
    let public = route(&["--context", "public"], &["5551212", "1000"]);
    for n in ["5551212", "1000"] {
        let r = get(&public, n);
        assert_eq!(contexts(&r), ["public", "default"], "{n}");
        assert_eq!(r["attempts"][0]["target"]["user"], "1000", "{n}");
    }
}
