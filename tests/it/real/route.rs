//! `switchyard route` against the real FreeSWITCH: for a corpus of numbers, as a user dials
//! them and as the provider delivers them, what `route --conf` predicts is compared with
//! what FreeSWITCH 1.10.12 does for the same call, placed as in life: a SIPp phone that
//! authenticates as the directory user (what a registered phone's call carries:
//! `sip_authorized`, late negotiation, the user's variables), the provider's Kamailio
//! relaying to the registered trunk or sending from its own address, a caller from outside
//! into `public`. The dialplan's own debug log (`Processing ... in context`, `parsing
//! [ctx->ext]`, `Action app(data)`, `ANTI-Action ...`, `EXECUTE`) is read back per call
//! (its session UUID). Every hunt route evaluated must be the hunt FreeSWITCH made, action
//! for action, and the applications FreeSWITCH ran those route says run; any disagreement
//! fails the test.

use std::time::{Duration, Instant};

use super::*;
use crate::session::exit;

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

/// One hunt as FreeSWITCH's own dialplan log tells it (mod_dialplan_xml's `Processing ...
/// in context`, `parsing [ctx->ext]`, `Action app(data)`, `ANTI-Action ...` lines).
#[derive(Debug, Clone)]
struct LogHunt {
    context: String,
    /// The local wall-clock time of the `Processing` line (`YYYY-MM-DD HH:MM:SS`).
    at: String,
    /// Extensions in the order parsed, and whether each queued an action.
    parsed: Vec<(String, bool)>,
    actions: Vec<(String, String)>,
}

impl LogHunt {
    /// The extensions that queued something.
    fn extensions(&self) -> Vec<String> {
        self.parsed
            .iter()
            .filter(|(_, a)| *a)
            .map(|(e, _)| e.clone())
            .collect()
    }
}

/// The hunts of the call to `number` that started in `context`, from the part of the log
/// written since the calls were placed. Calls run in parallel, so the call is found by its
/// first `Processing ...->NUMBER in context CONTEXT` line and followed by the session UUID
/// FreeSWITCH puts at the start of each of its lines (a transfer keeps the UUID; the legs
/// a bridge creates have their own).
fn hunts_in_log(log: &str, number: &str, context: &str) -> Vec<LogHunt> {
    let Some(uuid) = call_uuid(log, number, context) else {
        return Vec::new();
    };
    let mut hunts: Vec<LogHunt> = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix(uuid).and_then(|r| r.strip_prefix(' ')) else {
            continue;
        };
        if let Some(i) = rest.find(" Processing ") {
            if let Some(c) = rest[i..].find(" in context ") {
                hunts.push(LogHunt {
                    context: rest[i + c + " in context ".len()..].trim().to_string(),
                    // `2026-01-13 10:00:00.123456 ...`
                    at: rest.get(..19).unwrap_or("").to_string(),
                    parsed: Vec::new(),
                    actions: Vec::new(),
                });
            }
            continue;
        }
        let Some(d) = rest.strip_prefix("Dialplan: ") else {
            continue;
        };
        let Some(h) = hunts.last_mut() else { continue };
        if let Some(p) = d.find(" parsing [") {
            let inner = &d[p + " parsing [".len()..];
            if let Some((_, ext)) = inner.split_once("->") {
                if let Some(e) = ext.rfind("] continue=") {
                    h.parsed.push((ext[..e].to_string(), false));
                }
            }
            continue;
        }
        let action = d
            .find(" ANTI-Action ")
            .map(|k| &d[k + " ANTI-Action ".len()..])
            .or_else(|| d.find(" Action ").map(|k| &d[k + " Action ".len()..]));
        let Some(a) = action else { continue };
        let a = a.trim_end().trim_end_matches("INLINE").trim_end();
        let (app, data) = match (a.find('('), a.rfind(')')) {
            (Some(o), Some(c)) if o < c => (a[..o].to_string(), a[o + 1..c].to_string()),
            _ => (a.to_string(), String::new()),
        };
        if let Some(last) = h.parsed.last_mut() {
            last.1 = true;
        }
        h.actions.push((app, data));
    }
    hunts
}

/// The session UUID of the call to `number` that started in `context`.
fn call_uuid<'a>(log: &'a str, number: &str, context: &str) -> Option<&'a str> {
    let first = format!("->{number} in context {context}");
    log.lines().find_map(|l| {
        let (uuid, rest) = l.split_once(' ')?;
        (rest.contains(" Processing ") && rest.trim_end().ends_with(&first)).then_some(uuid)
    })
}

/// The applications FreeSWITCH ran on that call's own queue, in order (its `EXECUTE
/// [depth=0]` lines; what an application runs inside itself is deeper).
fn executed_in_log(log: &str, number: &str, context: &str) -> Vec<String> {
    let Some(uuid) = call_uuid(log, number, context) else {
        return Vec::new();
    };
    log.lines()
        .filter_map(|l| l.strip_prefix(uuid)?.strip_prefix(" EXECUTE [depth=0] "))
        .filter_map(|l| {
            let (_channel, app) = l.split_once(' ')?;
            Some(app.split('(').next()?.to_string())
        })
        .collect()
}

/// How a call of the corpus reaches the real FreeSWITCH.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// A phone that authenticates as this directory user (digest, as a registered SIP
    /// phone does) sends the INVITE to the internal profile (5060).
    Phone { user: &'a str, password: &'a str },
    /// A SIP call from an address nothing claims, to the external profile (5080).
    Outside,
    /// The provider (the Kamailio at this address) relays the call for the DID to the
    /// PBX's registered trunk (`gw+NAME` Contact), the DID in `To`.
    Trunk { provider: &'a str },
    /// The provider sends the call from its own address straight to the external profile,
    /// the DID as the request URI (what an IP-auth provider does; the ACL lets it in).
    FromProviderAddress { provider: &'a str },
}

static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(5200);

/// A SIPp scenario of the fixtures, changed to stay in the call up to 60 s after it is
/// answered (the stock `global` extension sleeps 10 s before a transfer's next hunt).
fn patient(dir: &std::path::Path, scenario: &str) {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sipp")
            .join(scenario),
    )
    .unwrap();
    let patient = text.replace("timeout=\"8000\"", "timeout=\"60000\"");
    assert_ne!(patient, text, "{scenario} has no 8 s BYE wait to lengthen");
    std::fs::write(dir.join(format!("patient-{scenario}")), patient).unwrap();
}

/// Place one call (in the background); the SIPp, if one places it, is stopped when dropped.
fn place(dir: &std::path::Path, fs: &FreeSwitch, via: Via, number: &str) -> Sipp {
    let spawn = |scenario: &str, addr: &str, port: u16, target: String, extra: &[&str]| {
        let scenario = dir.join(scenario).display().to_string();
        let (mut c, log) = Sipp::command(dir, &scenario, Some(&target), addr, port, extra);
        Sipp {
            child: Some(c.spawn().expect("start sipp")),
            log,
            status: None,
        }
    };
    let pbx = |port: u16| format!("{}:{port}", fs.addr);
    let provider_call = |from: &str, service: &str, target: String, domain: &str| {
        let port = NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        spawn(
            "patient-provider_call.xml",
            from,
            port,
            target,
            &[
                "-s",
                service,
                "-key",
                "did",
                number,
                "-key",
                "caller",
                "2125550000",
                "-key",
                "domain",
                domain,
            ],
        )
    };
    match via {
        Via::Phone { user, password } => spawn(
            "patient-phone.xml",
            &next_addr(),
            5090,
            pbx(5060),
            &[
                "-s", number, "-key", "user", user, "-key", "domain", &fs.addr, "-au", user, "-ap",
                password,
            ],
        ),
        Via::Outside => provider_call(&next_addr(), number, pbx(5080), &fs.addr),
        Via::Trunk { provider } => provider_call(
            &next_addr(),
            TRUNK_USER,
            format!("{provider}:5060"),
            PROVIDER_REALM,
        ),
        Via::FromProviderAddress { provider } => {
            provider_call(provider, number, pbx(5080), PROVIDER_REALM)
        }
    }
}

/// `switchyard route --conf` for `numbers`, time conditions at `at`.
fn predicted(
    conf: &std::path::Path,
    at: &str,
    from: &[&str],
    numbers: &[&str],
) -> serde_json::Value {
    // The install's module folder: modules.conf.xml loads modules this install does not
    // build (mod_enum, mod_conference...), and FreeSWITCH does not have them.
    let mods = prefix().join("lib/freeswitch/mod");
    let mut args = vec![
        "route",
        "--conf",
        conf.to_str().unwrap(),
        "--mod-dir",
        mods.to_str().unwrap(),
        "--at",
        at,
        "--json",
    ];
    args.extend_from_slice(from);
    args.extend_from_slice(numbers);
    let out = crate::harness::switchyard(&args);
    assert!(out.code == 0 || out.code == 1, "{}", out.all());
    out.json()
}

/// FreeSWITCH's local wall-clock time now, `YYYY-MM-DD HH:MM:SS`. When it is less than two
/// minutes before the hour, this waits for the next hour first: the time conditions of the
/// trees compared (`hour`, `wday`, `mday`, `mon`) change only on the hour, so calls placed
/// within the returned time's hour see the time conditions route evaluated at that time
/// (each hunt's own log time is checked against it).
fn fs_time(fs: &FreeSwitch) -> String {
    loop {
        let now = fs.api("strftime %Y-%m-%d %H:%M:%S").trim().to_string();
        assert_eq!(now.len(), 19, "strftime: {now:?}");
        let minute: u32 = now[14..16].parse().unwrap();
        if minute < 58 {
            return now;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// `$${name}` route left as written (a global FreeSWITCH computes when it starts:
/// `conf_dir`, `temp_dir`...) replaced by that global's value in the running FreeSWITCH,
/// which substituted it when it read the file.
fn with_globals(fs: &FreeSwitch, text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("$${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let e = after.find('}').expect("a closed $${");
        let value = fs.api(&format!("global_getvar {}", &after[..e]));
        out.push_str(value.trim_end_matches('\n'));
        rest = &after[e + 1..];
    }
    out.push_str(rest);
    out
}

/// Route's text equals FreeSWITCH's, except that where route masks what looks like a
/// secret (`********`: a `user:password@` or a password-like variable's value, masked in
/// every output) FreeSWITCH's text has something non-empty.
fn masked_equal(shown: &str, real: &str) -> bool {
    const MASK: &str = "********";
    let parts: Vec<&str> = shown.split(MASK).collect();
    let Some(mut rest) = real.strip_prefix(parts[0]) else {
        return false;
    };
    for (k, p) in parts.iter().enumerate().skip(1) {
        let at = if k + 1 == parts.len() {
            (rest.len() > p.len() && rest.ends_with(p)).then(|| rest.len() - p.len())
        } else {
            rest.get(1..).and_then(|r| r.find(p)).map(|i| i + 1)
        };
        match at {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    parts.len() > 1 || rest.is_empty()
}

/// `route --conf` for `numbers` at FreeSWITCH's time now, then those calls placed and
/// compared (see [`compare`]): each group of calls gets its own time, so a long test never
/// straddles an hour the time conditions could see.
fn check(
    dir: &std::path::Path,
    fs: &FreeSwitch,
    conf: &std::path::Path,
    from: &[&str],
    numbers: &[&str],
    via: Via,
    context: &str,
) -> usize {
    let at = fs_time(fs);
    let routes = predicted(conf, &at, from, numbers);
    compare(dir, fs, &routes, via, context, &at)
}

/// Place every call of `routes` on the real FreeSWITCH at once (`via`, starting in
/// `context`), read FreeSWITCH's hunts for each back from its log, and compare each hunt
/// route evaluated with FreeSWITCH's: the context, the extensions that queued actions and
/// every queued action (application and data). Returns how many calls were compared.
fn compare(
    dir: &std::path::Path,
    fs: &FreeSwitch,
    routes: &serde_json::Value,
    via: Via,
    context: &str,
    at: &str,
) -> usize {
    let routes = routes[0]["routes"].as_array().unwrap();
    patient(dir, "phone.xml");
    patient(dir, "provider_call.xml");
    let start = fs.log().len();
    let mut calls = Vec::new();
    for r in routes {
        let number = r["number"].as_str().unwrap();
        // One at a time, until FreeSWITCH takes it: on a busy machine FreeSWITCH refuses
        // calls while its idle CPU is under `min-idle-cpu` (503 "Maximum Calls In
        // Progress", switch.conf.xml); such a call never reached the dialplan and is
        // placed again.
        let mut tries = 0;
        'placed: loop {
            tries += 1;
            assert!(
                tries <= 20,
                "{number}: FreeSWITCH refused the call 20 times"
            );
            let mut call = place(dir, fs, via, number);
            let until = Instant::now() + Duration::from_secs(8);
            while Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
                let log = fs.log();
                if !hunts_in_log(&log[start.min(log.len())..], number, context).is_empty() {
                    calls.push(call);
                    break 'placed;
                }
                let ended = call
                    .child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_some());
                if ended {
                    break;
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    // Wait until FreeSWITCH made as many hunts as route predicts for every call (a hunt's
    // actions are logged together), or until a call could not have made them.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let log = fs.log();
        let log = &log[start.min(log.len())..];
        let done = routes.iter().all(|r| {
            let ours = r["route"]["hunts"].as_array().unwrap().len();
            hunts_in_log(log, r["number"].as_str().unwrap(), context).len() >= ours.max(1)
        });
        if done || Instant::now() > deadline {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = fs.log();
    let log = &log[start.min(log.len())..];
    drop(calls);
    fs.api("hupall NORMAL_CLEARING");

    let mut compared = 0;
    for r in routes {
        let number = r["number"].as_str().unwrap();
        let ours = r["route"]["hunts"].as_array().unwrap();
        let theirs = hunts_in_log(log, number, context);
        let unknown = !r["route"]["unknown"].is_null();
        // Every hunt route completed must be FreeSWITCH's; a hunt it stopped in (with the
        // reason printed) is not compared beyond its context.
        let complete = if unknown {
            ours.len().saturating_sub(1)
        } else {
            ours.len()
        };
        assert!(
            theirs.len() >= ours.len(),
            "{number} in {context}: route predicted {} hunts, FreeSWITCH made {}: {theirs:#?}\nroute: {r}",
            ours.len(),
            theirs.len()
        );
        if !unknown {
            assert_eq!(
                theirs.len(),
                ours.len(),
                "{number} in {context}: {theirs:#?}\nroute: {r}"
            );
        }
        for (k, h) in ours.iter().enumerate() {
            let real = &theirs[k];
            assert_eq!(
                (&real.at[..13], &real.at[..10]),
                (&at[..13], &at[..10]),
                "{number}: hunt {k} was made in another hour than route evaluated"
            );
            assert_eq!(
                h["context"],
                real.context.as_str(),
                "{number}: hunt {k}: {theirs:#?}"
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
                        // FreeSWITCH's session log lines carry no `'` (the
                        // `xml_locate dialplan` of the same FreeSWITCH shows the
                        // action's `'reloadxml'` quoted; its `Action log(...)` line
                        // shows `reloadxml`): the one thing the log cannot show.
                        with_globals(fs, a[1].as_str().unwrap()).replace('\'', ""),
                    )
                })
                .collect();
            let same = |i: usize| match (acts.get(i), real.actions.get(i)) {
                (Some((a, x)), Some((b, y))) => a == b && masked_equal(x, y),
                (x, y) => x == y,
            };
            let n = acts.len().max(real.actions.len());
            if (0..n).any(|i| !same(i)) {
                let i = (0..n).find(|&i| !same(i)).unwrap();
                panic!(
                    "{number} in {context}, hunt {k}: route disagrees with FreeSWITCH at action {i}: route {:?}, FreeSWITCH {:?}\nroute: {r}\nFreeSWITCH: {:?}",
                    acts.get(i),
                    real.actions.get(i),
                    real.actions
                );
            }
            let exts: Vec<String> = h["extensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                exts,
                real.extensions(),
                "{number} in {context}, hunt {k}: not the extensions FreeSWITCH ran\nroute: {r}"
            );
        }
        // The applications FreeSWITCH ran are the ones route says run, in the same order,
        // as far as FreeSWITCH got before the call was hung up (route also lists what
        // follows a bridge that fails) or route could tell.
        let ran = executed_in_log(log, number, context);
        let said: Vec<&str> = r["route"]["executed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a[0].as_str().unwrap())
            .collect();
        let n = if unknown {
            ran.len().min(said.len())
        } else {
            assert!(
                ran.len() <= said.len(),
                "{number} in {context}: FreeSWITCH ran {ran:?}, route says {said:?}"
            );
            ran.len()
        };
        assert_eq!(
            ran[..n],
            said[..n],
            "{number} in {context}: FreeSWITCH ran {ran:?}, route says {said:?}"
        );
        compared += 1;
    }
    compared
}

/// User 1000 of the playbook's directory, as a phone that authenticates (its password is
/// the one the test inventory gives it).
const PHONE: Via = Via::Phone {
    user: "1000",
    password: "ext-pass-1000",
};

/// The `n`th attempt (from 0) of the route of `number` in a `route --json` document.
fn attempt(v: &serde_json::Value, number: &str, n: usize) -> serde_json::Value {
    v[0]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["number"] == number)
        .unwrap()["route"]["attempts"][n]
        .clone()
}

/// The first attempt's target of the route of `number`.
fn first(v: &serde_json::Value, number: &str) -> serde_json::Value {
    attempt(v, number, 0)["target"].clone()
}

/// The corpus predictions an operator would check, a few spelled out: from user 1000 (the
/// failover gateway second and last) and from the trunk.
fn spelled_out_predictions(user: &serde_json::Value, trunk: &serde_json::Value) {
    assert_eq!(
        first(user, "2125551234"),
        serde_json::json!({"kind": "gateway", "gateway": "wavix", "number": "12125551234"})
    );
    let second = attempt(user, "2125551234", 1);
    assert_eq!(second["target"]["gateway"], "wavix_fo");
    assert!(
        second["continue_on"].is_null(),
        "the last gateway ends the call"
    );
    assert_eq!(
        first(user, "011442071234567"),
        serde_json::json!({"kind": "gateway", "gateway": "wavix", "number": "442071234567"})
    );
    assert_eq!(
        first(user, "911"),
        serde_json::json!({"kind": "gateway", "gateway": "wavix", "number": "911"})
    );
    assert_eq!(
        first(user, "1001"),
        serde_json::json!({"kind": "user", "user": "1001"})
    );
    assert_eq!(
        first(trunk, "+16468097065"),
        serde_json::json!({"kind": "user", "user": "1000"})
    );
    assert_eq!(first(trunk, "12125551234")["kind"], "refused");
}

#[test]
fn route_agrees_with_the_real_freeswitch_on_every_number_of_the_corpus() {
    let w = World::new("route", WrongPassword::Forbidden);
    // Registration with a failover gateway, three DIDs (one to another user, one to an
    // extension of the stock dialplan).
    let vars = format!(
        "wavix_failover_proxy: \"{0}\"\nwavix_failover_realm: sip.test\ndid_routes: [{{number: \"16468097065\", extension: \"1000\"}}, {{number: \"+16465550123\", extension: \"1001\"}}, {{number: \"16465550199\", transfer: \"9196\"}}]\n",
        w.provider.addr
    );
    w.session(&vars).run(["apply", "--json"]).expect(exit::OK);
    let fs = w.fs();
    let conf = w.pbx().dir.join("conf");

    let dir = &w.fleet.dir;
    let at = fs_time(fs);
    let user = predicted(&conf, &at, &["--from", "1000"], FROM_USER);
    let trunk = predicted(&conf, &at, &["--from-trunk", "wavix"], FROM_TRUNK);
    // The predictions are the ones an operator would check (a few spelled out).
    spelled_out_predictions(&user, &trunk);

    let trunk_via = Via::Trunk {
        provider: &w.provider.addr,
    };
    let check = |from: &[&str], numbers: &[&str], via: Via, context: &str| {
        check(dir, fs, &conf, from, numbers, via, context)
    };
    let n = check(&["--from", "1000"], FROM_USER, PHONE, "wavix")
        + check(
            &["--from-trunk", "wavix"],
            FROM_TRUNK,
            trunk_via,
            "wavix_inbound",
        )
        + check(&["--context", "public"], IN_PUBLIC, Via::Outside, "public");
    assert_eq!(n, FROM_USER.len() + FROM_TRUNK.len() + IN_PUBLIC.len());
    assert!(n >= 40);

    // The same PBX switched to IP authentication: one gateway, calls from the provider's
    // address land in the inbound context by ACL.
    let vars = format!(
        "wavix_ip_auth: true\nwavix_inbound_addresses: [\"{}\"]\ndid_routes: [{{number: \"16468097065\", extension: \"1000\"}}]\n",
        w.provider.addr
    );
    w.session(&vars)
        .run(["apply", "--json", "--allow", "profile"])
        .expect(exit::OK);
    let numbers = &[
        "2125551234",
        "+442071234567",
        "011442071234567",
        "911",
        "1000",
        "12345",
    ];
    let at = fs_time(fs);
    let user = predicted(&conf, &at, &["--from", "1000"], numbers);
    assert_eq!(
        first(&user, "2125551234"),
        serde_json::json!({"kind": "gateway", "gateway": "wavix_ip", "number": "12125551234"})
    );
    let acl = &["16468097065", "+16468097065", "12125551234"];
    let from_provider = Via::FromProviderAddress {
        provider: &w.provider.addr,
    };
    let n = check(&["--from", "1000"], numbers, PHONE, "wavix")
        + check(
            &["--context", "wavix_inbound"],
            acl,
            from_provider,
            "wavix_inbound",
        );
    assert_eq!(n, 9);
}

/// `route --conf` on the stock vanilla tree as installed (tod/holiday examples included),
/// at a fixed weekday 10:00 and with the install's module folder: the answers issue 22
/// found wrong or "unknown" (88 calls: 5 answered, 83 unknown; 16 wrong without the
/// examples), as FreeSWITCH 1.10.12 routes them on this install.
#[test]
fn route_on_the_stock_vanilla_tree_follows_freeswitchs_applications() {
    let user = stock_route(
        &["--from", "1000"],
        &[
            "1001", "9000", "0", "operator", "6001", "9196", "5000", "99",
        ],
    );
    for r in &user {
        assert!(r["route"]["unknown"].is_null(), "{r}");
        // The time conditions were evaluated, and the output says at what time.
        assert_eq!(r["route"]["at"], "2026-01-13 10:00:00 (Tue)", "{r}");
    }
    // Local_Extension: bind_meta_app and the rest return; the call rings user/1001, then
    // (continue_on_fail=true) goes to voicemail through loopback.
    let r = route_of(&user, "1001");
    assert_eq!(r["hunts"][0]["extensions"][0], "tod_example");
    assert_eq!(
        r["attempts"][0]["target"],
        serde_json::json!({"kind": "user", "user": "1001"})
    );
    assert!(apps(&r).contains(&"bind_meta_app".to_string()));
    // 9000: eval and playback return; the queue runs out.
    let r = route_of(&user, "9000");
    assert_eq!(apps(&r)[apps(&r).len() - 2..], ["eval", "playback"]);
    // 0 and operator: three hunts (default, features, default).
    for n in ["0", "operator"] {
        assert_eq!(
            contexts(&route_of(&user, n)),
            ["default", "features", "default"],
            "{n}"
        );
    }
    // valet_park's look-ahead `^((?!6000)60\d{2})$` runs on PCRE; mod_valet_parking is not
    // built here, so FreeSWITCH hangs up.
    let r = route_of(&user, "6001");
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
    assert_eq!(
        route_of(&user, "9196")["attempts"][0]["target"]["kind"],
        "held"
    );
    assert_eq!(
        route_of(&user, "5000")["attempts"][0]["target"]["application"],
        "ivr"
    );
    // `${module_exists(mod_enum)}` is false here (not built): acknowledge_call, ring_ready
    // and playback return, and the queue runs out.
    let r = route_of(&user, "99");
    let ext = r["hunts"][0]["extensions"].as_array().unwrap();
    assert_eq!(ext.last().unwrap(), "acknowledge_call");
    assert!(!ext.iter().any(|e| e == "enum"));
}

/// `route` on the installed stock tree at a fixed weekday 10:00, then `args`.
fn route_stock_tree(args: &[&str]) -> crate::harness::Out {
    let (conf, mods) = (
        prefix().join("etc/freeswitch"),
        prefix().join("lib/freeswitch/mod"),
    );
    let (conf, mods) = (conf.to_str().unwrap(), mods.to_str().unwrap());
    let at = "2026-01-13 10:00";
    let base = ["route", "--conf", conf, "--mod-dir", mods, "--at", at];
    crate::harness::switchyard(&[&base[..], args].concat())
}

/// `route --json` on the installed stock tree at a fixed time, `from` then `numbers`: the
/// routes it reports.
fn stock_route(from: &[&str], numbers: &[&str]) -> Vec<serde_json::Value> {
    let out = route_stock_tree(&[&["--json"][..], from, numbers].concat());
    assert!(out.code == 0 || out.code == 1, "{}", out.all());
    out.json()[0]["routes"].as_array().unwrap().clone()
}

/// The route of `number` among `routes`.
fn route_of(routes: &[serde_json::Value], number: &str) -> serde_json::Value {
    routes.iter().find(|r| r["number"] == number).unwrap()["route"].clone()
}

/// The contexts a route hunted, in order.
fn contexts(r: &serde_json::Value) -> Vec<String> {
    r["hunts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["context"].as_str().unwrap().to_string())
        .collect()
}

/// The applications a route executed, in order.
fn apps(r: &serde_json::Value) -> Vec<String> {
    r["executed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a[0].as_str().unwrap().to_string())
        .collect()
}

/// `2000` rings the directory's `sales` group: `${group_call(sales@...)}`, each member at
/// once (mod_commands.c:985).
#[test]
fn route_on_the_stock_vanilla_tree_rings_a_group_call_member_by_member() {
    let r = route_of(&stock_route(&["--from", "1000"], &["2000"]), "2000");
    let rung: Vec<&str> = r["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target"]["user"].as_str().unwrap())
        .collect();
    assert_eq!(rung, ["1000", "1001", "1002", "1003", "1004"], "{r}");
}

/// The example gateway's extensions dial `sofia/gateway/${default_gateway}/...`, and
/// vanilla's `default_gateway` is `$${default_provider}`, which no file sets: the route says
/// so, and never shows a blank gateway.
#[test]
fn route_on_the_stock_vanilla_tree_says_when_the_default_gateway_is_unset() {
    let out = route_stock_tree(&["--from", "1000", "5551234", "12125551234"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stdout.contains("gateway , sends"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "!  warning: `bridge sofia/gateway/${default_gateway}/1${default_areacode}5551234`: `${default_gateway}` is unset, so FreeSWITCH dials `sofia/gateway//19185551234`"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("!  warning:").count(),
        2,
        "{}",
        out.stdout
    );
    let r = route_of(
        &stock_route(&["--from", "1000"], &["12125551234", "1001"]),
        "12125551234",
    );
    assert_eq!(
        r["warnings"],
        serde_json::json!(["`bridge sofia/gateway/${default_gateway}/12125551234`: `${default_gateway}` is unset, so FreeSWITCH dials `sofia/gateway//12125551234`"])
    );
}

/// From outside, into `public`: the DID of the stock example goes to 1000 in default.
#[test]
fn route_on_the_stock_vanilla_tree_takes_a_did_from_public_to_default() {
    let public = stock_route(&["--context", "public"], &["5551212", "1000"]);
    for n in ["5551212", "1000"] {
        let r = route_of(&public, n);
        assert_eq!(contexts(&r), ["public", "default"], "{n}");
        assert_eq!(r["attempts"][0]["target"]["user"], "1000", "{n}");
    }
}

/// Numbers user 1000 dials on the stock vanilla tree: local users, intercept, redial,
/// eavesdrop, call return, group calls, intercom, operator, voicemail, conferences, IVR,
/// page, park/valet park, fax, ringback tests, echo, music on hold, the example gateway's
/// 7/10/11-digit and international numbers, and numbers that match nothing.
const VANILLA_FROM_USER: &[&str] = &[
    "1000",
    "1001",
    "1019",
    "1099",
    "886",
    "*8",
    "**1001",
    "870",
    "redial",
    "9001",
    "9000",
    "881001",
    "779",
    "*69",
    "8001",
    "8101",
    "8201",
    "8301",
    "81001",
    "2000",
    "2001",
    "2002",
    "0",
    "operator",
    "4000",
    "*98",
    "vmain",
    "3000",
    "3100",
    "3200",
    "3300",
    "3500",
    "3600",
    "9888",
    "0911",
    "0912",
    "0913",
    "5000",
    "5001",
    "7243",
    "5900",
    "5901",
    "6000",
    "6001",
    "wait",
    "9178",
    "9179",
    "9180",
    "9181",
    "9182",
    "9183",
    "9184",
    "9191",
    "9192",
    "9195",
    "9196",
    "9197",
    "9198",
    "9664",
    "9386",
    "ruri",
    "7004",
    "5551234",
    "2125551234",
    "12125551234",
    "011442071234567",
    "+442071234567",
    "99",
    "12345",
];

/// Numbers arriving from outside (the external profile, context `public`).
const VANILLA_FROM_OUTSIDE: &[&str] = &[
    "1000",
    "1001",
    "1019",
    "1020",
    "3500",
    "3800",
    "5551212",
    "9196",
    "0",
    "12125551234",
];

/// The stock vanilla tree as shipped (the tod/holiday examples, `sleep 10000` for the
/// default password, the example gateway's extensions), on the real FreeSWITCH 1.10.12:
/// user 1000 (registered, password 1234 as vanilla sets it) dials, and calls arrive from
/// outside; every hunt `route --conf` evaluates is the one FreeSWITCH's log shows.
#[test]
fn route_agrees_with_the_real_freeswitch_on_the_stock_vanilla_tree() {
    let mut fleet = crate::harness::Fleet::new("route-vanilla", 0);
    fleet.add_real_host("pbx1");
    let host = &fleet.hosts[0];
    let fs = host.freeswitch.as_ref().expect("a real FreeSWITCH");
    let conf = host.dir.join("conf");
    let dir = &fleet.dir;
    // Registered as user 1000, as a phone is before it places calls.
    let _phone = Sipp::phone_answering(dir, &fs.addr, "1000", "1234");
    let at = fs_time(fs);
    let user = predicted(&conf, &at, &["--from", "1000"], VANILLA_FROM_USER);
    let outside = predicted(&conf, &at, &["--context", "public"], VANILLA_FROM_OUTSIDE);
    let phone = Via::Phone {
        user: "1000",
        password: "1234",
    };
    let n = check(
        dir,
        fs,
        &conf,
        &["--from", "1000"],
        VANILLA_FROM_USER,
        phone,
        "default",
    ) + check(
        dir,
        fs,
        &conf,
        &["--context", "public"],
        VANILLA_FROM_OUTSIDE,
        Via::Outside,
        "public",
    );
    assert_eq!(n, VANILLA_FROM_USER.len() + VANILLA_FROM_OUTSIDE.len());
    assert!(n >= 60);

    // Where route says "unknown", it says why, and the why is run-time state outside the
    // configuration: FreeSWITCH's hash table (`redial`, call return, intercept, eavesdrop
    // by extension: what earlier calls stored) and mod_db's groups (`group insert`, by
    // `81NN`). (`2000`'s `${group_call(sales@...)}` is the directory's group: answered.)
    let mut unknown: Vec<(String, String)> = Vec::new();
    for routes in [&user, &outside] {
        for r in routes[0]["routes"].as_array().unwrap() {
            if let Some(why) = r["route"]["unknown"].as_str() {
                unknown.push((r["number"].as_str().unwrap().to_string(), why.to_string()));
            }
        }
    }
    let numbers: Vec<&str> = unknown.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        numbers,
        ["886", "*8", "**1001", "870", "redial", "881001", "*69", "8201", "8301"],
        "{unknown:#?}"
    );
    for (number, why) in &unknown {
        let runtime = why.contains("${hash(select/") || why.contains("${group(call:");
        assert!(
            runtime && why.contains("API call switchyard cannot evaluate"),
            "{number}: {why}"
        );
    }
}
