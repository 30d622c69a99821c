//! `switchyard lint` on the Wavix guide's own configuration (tests/fixtures/guide): each of
//! the guide's mistakes is reported, with file and line.

use crate::harness::*;
use crate::session::exit;

fn lint_json(args: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let mut a = vec!["lint", "--json"];
    a.extend_from_slice(args);
    let out = switchyard(&a);
    let v: Vec<serde_json::Value> =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    (out.code, v)
}

fn has(findings: &[serde_json::Value], check: &str, file: &str, line: u64, severity: &str) -> bool {
    findings.iter().any(|f| {
        f["check"] == check && f["file"] == file && f["line"] == line && f["severity"] == severity
    })
}

#[test]
fn guide_registration_scenario() {
    let (code, f) = lint_json(&["--conf", &repo("tests/fixtures/guide/registration")]);
    assert_eq!(code, 1);
    // switch.conf.xml under autoload_configs/default/ is never read (FreeSWITCH runs on
    // the defaults without it: a warning, not an error).
    assert!(
        has(
            &f,
            "wrong-path",
            "autoload_configs/default/switch.conf.xml",
            1,
            "warning"
        ),
        "{f:#?}"
    );
    // The registering gateway has no `extension`: DIDs sent to its Contact never match
    // (shown on the real FreeSWITCH by real::calls::inbound_dids_ring_their_user...).
    assert!(
        has(
            &f,
            "inbound-did",
            "sip_profiles/external/wavix.xml",
            2,
            "error"
        ),
        "{f:#?}"
    );
    // The gateway's inbound context also routes any number back out through the trunk.
    assert!(
        has(
            &f,
            "toll-fraud",
            "dialplan/wavix_dialplan.xml",
            18,
            "warning"
        ),
        "{f:#?}"
    );
    // export after the bridge it should affect.
    assert!(
        has(
            &f,
            "action-order",
            "dialplan/wavix_dialplan.xml",
            19,
            "warning"
        ),
        "{f:#?}"
    );
    // sip_cid_type is not a gateway param.
    assert!(
        has(
            &f,
            "gateway-param",
            "sip_profiles/external/wavix.xml",
            2,
            "warning"
        ),
        "{f:#?}"
    );
    // Placeholder passwords: the trunk's cannot register (an error), the user's is weak
    // (FreeSWITCH accepts it: the one weak-password warning rule).
    assert!(has(
        &f,
        "gateway-credentials",
        "sip_profiles/external/wavix.xml",
        2,
        "error"
    ));
    assert!(has(
        &f,
        "password-weak",
        "directory/default/1000.xml",
        4,
        "warning"
    ));
    // Every finding says how to fix it.
    assert!(f.iter().all(|x| !x["fix"].as_str().unwrap().is_empty()));
}

#[test]
fn guide_ip_auth_scenario() {
    let (code, f) = lint_json(&["--conf", &repo("tests/fixtures/guide/ip-auth")]);
    assert_eq!(code, 1);
    // <XPREPROCESS ...> is silently ignored by FreeSWITCH.
    assert!(
        has(&f, "preprocess-misspelt", "vars.xml", 3, "error"),
        "{f:#?}"
    );
    assert!(has(&f, "preprocess-misspelt", "vars.xml", 4, "error"));
    // Gateway context `wavix_gateway_ip` vs dialplan context `wavix_ip`.
    assert!(
        has(
            &f,
            "context-missing",
            "sip_profiles/external/wavix_ip.xml",
            2,
            "error"
        ),
        "{f:#?}"
    );
    assert!(has(
        &f,
        "context-unused",
        "dialplan/wavix_ip.xml",
        3,
        "warning"
    ));
    // The IP-auth dialplan bridges to `wavix`, a gateway this setup does not define.
    assert!(has(
        &f,
        "gateway-missing",
        "dialplan/wavix_ip.xml",
        13,
        "error"
    ));
    // stun-set with a literal address; expire-seconds on a non-registering gateway.
    assert!(has(&f, "stun-set-literal", "vars.xml", 3, "warning"));
    assert!(has(
        &f,
        "gateway-noreg",
        "sip_profiles/external/wavix_ip.xml",
        2,
        "warning"
    ));
}

#[test]
fn guide_failover_scenario() {
    let (code, f) = lint_json(&["--conf", &repo("tests/fixtures/guide/failover")]);
    assert_eq!(code, 1);
    // continue_on_fail set after the first bridge: the failover bridge is never reached.
    assert!(
        has(
            &f,
            "action-order",
            "dialplan/wavix_dialplan.xml",
            20,
            "error"
        ),
        "{f:#?}"
    );
}

#[test]
fn guide_paths_and_owner_in_an_inventory() {
    let (code, f) = lint_json(&[
        "-i",
        &repo("tests/fixtures/guide/inventory.yml"),
        &repo("tests/fixtures/guide/playbook.yml"),
    ]);
    assert_eq!(code, 1);
    assert!(
        f.iter().any(|x| x["check"] == "conf-root"
            && x["message"]
                .as_str()
                .unwrap()
                .contains("/usr/local/FreeSwitch/conf")),
        "{f:#?}"
    );
    assert_eq!(f.iter().filter(|x| x["check"] == "owner").count(), 2);
}

#[test]
fn shipped_playbook_and_stock_conf_lint_clean() {
    let (code, f) = lint_json(&[
        "-i",
        &repo("inventory/pbx.yml"),
        &repo("playbooks/wavix.yml"),
        "--vault-identity",
        &repo("inventory/example-vault-identity.txt"),
    ]);
    assert_eq!((code, f.len()), (0, 0), "{f:#?}");
    let (code, f) = lint_json(&["--conf", &repo("stock/conf")]);
    assert_eq!(code, 0, "{f:#?}");
}

/// An IP-auth gateway whose profile has no ACL sending its provider's calls to the
/// gateway's context: those calls run in the profile's context instead.
#[test]
fn ip_auth_trunk_without_an_acl_to_its_context() {
    let dir =
        std::env::temp_dir().join(format!("switchyard-it-lint-ipauth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sip_profiles/external")).unwrap();
    std::fs::create_dir_all(dir.join("dialplan")).unwrap();
    std::fs::write(
        dir.join("sip_profiles/external/ip.xml"),
        "<include>\n  <gateway name=\"ip\">\n    <param name=\"proxy\" value=\"192.0.2.1\"/>\n    <param name=\"register\" value=\"false\"/>\n    <param name=\"context\" value=\"inbound\"/>\n  </gateway>\n</include>\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("dialplan/in.xml"),
        "<include>\n  <context name=\"inbound\">\n    <extension name=\"did\">\n      <condition field=\"destination_number\" expression=\"^(16465550100)$\">\n        <action application=\"bridge\" data=\"user/1000\"/>\n      </condition>\n    </extension>\n  </context>\n</include>\n",
    )
    .unwrap();
    let profile = |extra: &str| {
        format!("<profile name=\"external\">\n  <settings>\n    <param name=\"context\" value=\"public\"/>\n{extra}  </settings>\n</profile>\n")
    };
    std::fs::write(dir.join("sip_profiles/external.xml"), profile("")).unwrap();
    let (code, f) = lint_json(&["--conf", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        has(
            &f,
            "inbound-ip-auth",
            "sip_profiles/external/ip.xml",
            2,
            "error"
        ),
        "{f:#?}"
    );
    std::fs::write(
        dir.join("sip_profiles/external.xml"),
        profile("    <param name=\"apply-inbound-acl\" value=\"provider:inbound:public\"/>\n"),
    )
    .unwrap();
    let (_, f) = lint_json(&["--conf", dir.to_str().unwrap()]);
    assert!(!f.iter().any(|x| x["check"] == "inbound-ip-auth"), "{f:#?}");
}

/// `lint -i` checks the final content of files the playbook only edits in place (over the
/// stock file switchyard ships), so an inverted RTP range is caught offline, not first at
/// `apply --check` against a host.
#[test]
fn lint_checks_files_edited_in_place_offline() {
    let dir = std::env::temp_dir().join(format!("switchyard-it-lint-rtp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let inv = dir.join("inv.yml");
    std::fs::write(
        &inv,
        "all:\n  children:\n    pbx:\n      hosts:\n        pbx1:\n          ansible_connection: local\n          freeswitch_conf_root: /nonexistent/conf\n          wavix_username: u\n          wavix_password: not-a-placeholder-9\n          emergency_calls: trunk\n          user: {id: \"1000\", password: pw-1000-x, vm_password: \"4711\", caller_id_name: Main, caller_id_number: \"16468097065\"}\n          did_routes: [{number: \"16468097065\", extension: \"1000\"}]\n          rtp_start_port: 20000\n          rtp_end_port: 10000\n",
    )
    .unwrap();
    let (code, f) = lint_json(&["-i", inv.to_str().unwrap(), &repo("playbooks/wavix.yml")]);
    assert_eq!(code, 1, "{f:#?}");
    assert!(
        f.iter()
            .any(|x| x["file"] == "autoload_configs/switch.conf.xml" && x["severity"] == "error"),
        "{f:#?}"
    );
}

/// A condition field that is not a caller-profile field (a channel variable written
/// without `${}`) is an error; `${...}` and real fields are not.
#[test]
fn condition_fields_must_exist() {
    let dir = std::env::temp_dir().join(format!("switchyard-it-lint-field-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("dialplan")).unwrap();
    std::fs::write(
        dir.join("dialplan/x.xml"),
        "<include>\n  <context name=\"x\">\n    <extension name=\"a\">\n      <condition field=\"sip_to_user\" expression=\"^1$\"/>\n      <condition field=\"${sip_to_user}\" expression=\"^1$\"/>\n      <condition field=\"caller_id_number\" expression=\"^1$\">\n        <action application=\"hangup\"/>\n      </condition>\n    </extension>\n    <extension name=\"b\">\n      <condition field=\"destination_number\" expression=\"^\\+?(+1646)$\"/>\n      <condition field=\"destination_number\" expression=\"^(?!911)\\d+$\"/>\n    </extension>\n  </context>\n</include>\n",
    )
    .unwrap();
    let (code, f) = lint_json(&["--conf", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{f:#?}");
    let fields: Vec<_> = f
        .iter()
        .filter(|x| x["check"] == "condition-field")
        .collect();
    assert_eq!(fields.len(), 1, "{f:#?}");
    assert_eq!(fields[0]["line"], 4);
    // A `+` with nothing to repeat is refused; a look-ahead (valid PCRE) is not judged.
    let regex: Vec<_> = f.iter().filter(|x| x["check"] == "regex").collect();
    assert_eq!(regex.len(), 1, "{f:#?}");
    assert_eq!(regex[0]["line"], 11);
}

/// A trunk's inbound context that transfers calls into a context with outbound routes
/// lets trunk callers out again (toll fraud), as a bridge there would.
#[test]
fn transfer_from_the_inbound_context_to_outbound_routes_is_toll_fraud() {
    let dir = std::env::temp_dir().join(format!("switchyard-it-lint-xfer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("dialplan")).unwrap();
    std::fs::create_dir_all(dir.join("sip_profiles/external")).unwrap();
    std::fs::write(
        dir.join("sip_profiles/external/t.xml"),
        "<include>\n  <gateway name=\"t\">\n    <param name=\"username\" value=\"u\"/>\n    <param name=\"password\" value=\"a-long-secret\"/>\n    <param name=\"realm\" value=\"sip.example\"/>\n    <param name=\"extension\" value=\"auto_to_user\"/>\n    <param name=\"context\" value=\"in\"/>\n  </gateway>\n</include>\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("dialplan/d.xml"),
        "<include>\n  <context name=\"in\">\n    <extension name=\"all\">\n      <condition field=\"destination_number\" expression=\"^(.*)$\">\n        <action application=\"transfer\" data=\"$1 XML out\"/>\n      </condition>\n    </extension>\n  </context>\n  <context name=\"out\">\n    <extension name=\"trunk\">\n      <condition field=\"destination_number\" expression=\"^(\\d+)$\">\n        <action application=\"bridge\" data=\"sofia/gateway/t/$1\"/>\n      </condition>\n    </extension>\n  </context>\n</include>\n",
    )
    .unwrap();
    let (_, f) = lint_json(&["--conf", dir.to_str().unwrap()]);
    assert!(
        has(&f, "toll-fraud", "dialplan/d.xml", 5, "warning"),
        "{f:#?}"
    );
}

/// `(check, file, line)` of every finding, in order, for exact comparison.
fn keys(f: &[serde_json::Value]) -> Vec<(String, String, u64)> {
    let mut k: Vec<_> = f
        .iter()
        .map(|x| {
            assert_eq!(x["severity"], "warning", "{x:#}");
            (
                x["check"].as_str().unwrap().to_string(),
                x["file"].as_str().unwrap().to_string(),
                x["line"].as_u64().unwrap(),
            )
        })
        .collect();
    k.sort();
    k
}

/// `(check, file, line)` of a warning a test expects.
type Expected<'a> = (&'a str, &'a str, u64);

fn expect(list: &[Expected]) -> Vec<(String, String, u64)> {
    let mut k: Vec<_> = list
        .iter()
        .map(|(c, f, l)| (c.to_string(), f.to_string(), *l))
        .collect();
    k.sort();
    k
}

/// FreeSWITCH's own stock trees (v1.10.12 `conf/`) and FusionPBX's switch conf, which
/// FreeSWITCH loads and routes: `lint --conf` finds 0 errors in each, and exactly these
/// warnings, each true of the quoted source line.
#[test]
fn stock_trees_lint_without_errors() {
    let fs = |t: &str| repo(&format!("tests/fixtures/stock/freeswitch-1.10.12/{t}"));
    // sbc and insideout switch.conf.xml:4-15 `<key name="1" value="$${function_key_1}"/>`
    // ... `function_key_12`: their vars.xml defines none, so the console's F1-F12 keys are
    // empty.
    let function_keys: Vec<(&str, &str, u64)> = (4..=15)
        .map(|l| ("undefined-var", "autoload_configs/switch.conf.xml", l))
        .collect();
    // vanilla, testing and insideout directory/default/10NN.xml:4
    // `<param name="password" value="$${default_password}"/>`, and vars.xml
    // `default_password=1234`.
    let users: Vec<(&str, String, u64)> = (1000..=1019)
        .map(|u| ("password-weak", format!("directory/default/{u}.xml"), 4))
        .collect();
    let users: Vec<(&str, &str, u64)> =
        users.iter().map(|(c, f, l)| (*c, f.as_str(), *l)).collect();
    let cases: Vec<(String, Vec<Expected>)> = vec![
        (fs("curl"), vec![]),
        (fs("minimal"), vec![]),
        (fs("softphone"), vec![]),
        (fs("sbc"), function_keys.clone()),
        // internal-ipv6.xml:55 `<param name="tls-cert-dir" value="$${internal_ssl_dir}"/>`:
        // nothing defines internal_ssl_dir.
        (fs("testing"), {
            let mut v = users.clone();
            v.push(("undefined-var", "sip_profiles/internal-ipv6.xml", 55));
            v
        }),
        (fs("vanilla"), {
            let mut v = users.clone();
            v.extend([
                // internal-ipv6.xml:57, as in testing.
                ("undefined-var", "sip_profiles/internal-ipv6.xml", 57),
                // brian.xml:46 `<param name="password" value="$${default_password}"/>` (1234).
                ("password-weak", "directory/default/brian.xml", 46),
                // example.com.xml:22 `value="$${default_provider_password}"`, and vars.xml
                // `default_provider_password=password`.
                ("password-weak", "directory/default/example.com.xml", 22),
            ]);
            v
        }),
        (fs("insideout"), {
            let mut v = users.clone();
            v.extend(function_keys.iter().copied());
            v.extend([
                // brian.xml:44 `<param name="password" value="1234"/>`, a literal.
                ("password-weak", "directory/default/brian.xml", 44),
                ("password-weak", "directory/default/example.com.xml", 22),
            ]);
            v
        }),
        (
            repo("tests/fixtures/stock/fusionpbx"),
            vec![
                // presence_map.conf.xml:3 `<domain name="$${domain}">` and demo_ivr.xml:22
                // `bridge sofia/$${domain}/888@...`: FusionPBX's vars.xml sets no `domain`
                // (its Lua XML handler serves domains; the static files get an empty one).
                ("undefined-var", "autoload_configs/presence_map.conf.xml", 3),
                ("undefined-var", "ivr_menus/demo_ivr.xml", 22),
            ],
        ),
    ];
    for (tree, want) in cases {
        let out = switchyard(&["lint", "--json", "--conf", &tree]);
        assert_eq!(out.code, 0, "{tree}: {}", out.all());
        let f: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(keys(&f), expect(&want), "{tree}: {f:#?}");
    }
    // What was left out is said, with the reason: modules FusionPBX does not load, and
    // the insideout French phrases (ISO-8859-1, and not included from freeswitch.xml).
    let out = switchyard(&["lint", "--conf", &repo("tests/fixtures/stock/fusionpbx")]);
    assert!(out.stderr.contains("not judged: autoload_configs/lcr.conf.xml: configures mod_lcr, which modules.conf.xml does not load"), "{}", out.all());
    let out = switchyard(&["lint", "--conf", &fs("insideout")]);
    assert!(
        out.stderr
            .contains("not judged: lang/fr/vm/sounds.xml: not included from freeswitch.xml"),
        "{}",
        out.all()
    );
}

/// What made lint stop or block on working PBXes, in one copy of the stock vanilla tree:
/// a dialplan file that is not UTF-8, a commented-out gateway in a renamed profile folder,
/// FusionPBX's 0-byte dialplan file, an IP-auth gateway whose context comes from a profile
/// without one (`default`, as sofia.c decides), a literal `1234` password, and a mistake in
/// the configuration of a module modules.conf.xml does not load. FreeSWITCH loads and
/// routes all of it: 0 errors, every other finding still reported.
/// A copy of the stock vanilla tree in `dir` with what working PBXes have (see below).
fn what_working_pbxes_have(dir: &std::path::Path) {
    let src = std::path::PathBuf::from(repo("tests/fixtures/stock/freeswitch-1.10.12/vanilla"));
    crate::harness::run(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(format!("{}/.", src.display()))
            .arg(dir),
    );
    // ISO-8859-1 `é` in a comment of an included dialplan file.
    let mut latin1 = b"<include>\n  <!-- appel entrant: caf".to_vec();
    latin1.extend([0xe9]);
    latin1.extend(b" -->\n  <context name=\"latin\">\n  </context>\n</include>\n");
    std::fs::write(dir.join("dialplan/latin.xml"), latin1).unwrap();
    std::fs::write(dir.join("dialplan/empty.xml"), "").unwrap();
    std::fs::create_dir_all(dir.join("sip_profiles/old_external")).unwrap();
    std::fs::write(
        dir.join("sip_profiles/old_external/carrier.xml"),
        "<include>\n  <!--\n  <gateway name=\"carrier\">\n    <param name=\"proxy\" value=\"192.0.2.1\"/>\n  </gateway>\n  -->\n</include>\n",
    )
    .unwrap();
    // IP-auth gateway without `context` in a profile without one: both `default`.
    std::fs::write(
        dir.join("sip_profiles/lan.xml"),
        "<profile name=\"lan\">\n  <gateways>\n    <X-PRE-PROCESS cmd=\"include\" data=\"lan/*.xml\"/>\n  </gateways>\n  <settings>\n    <param name=\"sip-port\" value=\"5090\"/>\n  </settings>\n</profile>\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("sip_profiles/lan")).unwrap();
    std::fs::write(
        dir.join("sip_profiles/lan/pstn.xml"),
        "<include>\n  <gateway name=\"pstn\">\n    <param name=\"proxy\" value=\"127.0.0.9\"/>\n    <param name=\"register\" value=\"false\"/>\n  </gateway>\n</include>\n",
    )
    .unwrap();
    let user = std::fs::read_to_string(dir.join("directory/default/1000.xml")).unwrap();
    std::fs::write(
        dir.join("directory/default/1000.xml"),
        user.replace("$${default_password}", "1234"),
    )
    .unwrap();
    // mod_lcr is commented out in vanilla's modules.conf.xml.
    let lcr = std::fs::read_to_string(dir.join("autoload_configs/lcr.conf.xml")).unwrap();
    std::fs::write(
        dir.join("autoload_configs/lcr.conf.xml"),
        lcr.replacen(
            "<settings>",
            "<settings>\n    <param name=\"x\" value=\"$${sy_nowhere}\"/>",
            1,
        ),
    )
    .unwrap();
}

#[test]
fn a_tree_freeswitch_loads_is_never_an_error() {
    let dir = tmp("lint-working");
    what_working_pbxes_have(&dir);
    let out = switchyard(&["lint", "--json", "--conf", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let f: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert!(f.iter().all(|x| x["severity"] == "warning"), "{f:#?}");
    // The literal 1234 is the same warning as vanilla's `$${default_password}`; the
    // non-UTF-8 file is read (its context counts) and said to be read with a replacement,
    // on the line that holds the byte.
    for (check, file, line) in [
        ("password-weak", "directory/default/1000.xml", 4),
        ("password-weak", "directory/default/1001.xml", 4),
        ("not-evaluated", "dialplan/latin.xml", 2),
    ] {
        assert!(has(&f, check, file, line, "warning"), "{f:#?}");
    }
    assert!(
        !f.iter()
            .any(|x| x["file"] == "sip_profiles/old_external/carrier.xml"),
        "{f:#?}"
    );
    assert!(
        !f.iter()
            .any(|x| x["file"] == "autoload_configs/lcr.conf.xml"),
        "{f:#?}"
    );
    assert!(!f.iter().any(|x| x["check"] == "inbound-ip-auth"), "{f:#?}");
    assert!(
        out.stderr
            .contains("not judged: autoload_configs/lcr.conf.xml: configures mod_lcr"),
        "{}",
        out.all()
    );
    // `route` on the same tree is the route half's (issue 22 items 1-4).
}

/// An operator overrules a rule knowingly: the guide's registering gateway without
/// `extension` is an `inbound-did` error, blocking; a comment in the file allowing it, with
/// a reason, makes lint pass and shows the reason. An allow without a reason is refused.
#[test]
fn an_allowed_rule_passes_and_says_why() {
    let dir = tmp("lint-allow");
    crate::harness::run(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(format!("{}/.", repo("tests/fixtures/guide/registration")))
            .arg(&dir),
    );
    let gw = dir.join("sip_profiles/external/wavix.xml");
    let text = std::fs::read_to_string(&gw).unwrap();
    // Make the gateway's only other error go away, so inbound-did is what blocks.
    let text = text
        .replace("YOUR_SIP_TRUNK_ID", "416000")
        .replace("YOUR_SIP_TRUNK_PASSWORD", "kT9vQ2mZx7");
    std::fs::write(&gw, &text).unwrap();
    let (code, f) = lint_json(&["--conf", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{f:#?}");
    assert!(
        has(
            &f,
            "inbound-did",
            "sip_profiles/external/wavix.xml",
            2,
            "error"
        ),
        "{f:#?}"
    );

    std::fs::write(&gw, text.replace("<include>\n", "<include>\n<!-- switchyard: allow(inbound-did): DIDs arrive by the provider's IP, routed in public -->\n")).unwrap();
    let out = switchyard(&["lint", "--conf", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("allowed: DIDs arrive by the provider's IP, routed in public (sip_profiles/external/wavix.xml: switchyard: allow(inbound-did))"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("0 error(s)") && out.stdout.contains(", 1 allowed"),
        "{}",
        out.all()
    );

    std::fs::write(
        &gw,
        text.replace(
            "<include>\n",
            "<include>\n<!-- switchyard: allow(inbound-did) -->\n",
        ),
    )
    .unwrap();
    let (code, f) = lint_json(&["--conf", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{f:#?}");
    assert!(
        has(&f, "allow", "sip_profiles/external/wavix.xml", 2, "error"),
        "{f:#?}"
    );
    assert!(
        has(
            &f,
            "inbound-did",
            "sip_profiles/external/wavix.xml",
            3,
            "error"
        ),
        "{f:#?}"
    );
}

/// A play overrules `inbound-did` for the guide's own gateway file (no `extension`): without
/// `lint_allow:` apply refuses to push it; with it (and a reason) the file is applied, and
/// the plan, the report and the review markdown all show the rule and the reason.
#[test]
fn a_play_allows_a_rule_and_every_report_shows_it() {
    let fleet = Fleet::new("lint-allow-play", 1);
    let h = &fleet.hosts[0];
    let tdir = fleet.dir.join("playbooks/templates");
    std::fs::create_dir_all(&tdir).unwrap();
    std::fs::write(
        tdir.join("gw.xml.j2"),
        "<include>\n  <gateway name=\"wavix\">\n    <param name=\"username\" value=\"trunk1\"/>\n    <param name=\"password\" value=\"{{ wavix_password }}\"/>\n    <param name=\"realm\" value=\"sip.test\"/>\n    <param name=\"register\" value=\"true\"/>\n  </gateway>\n</include>\n",
    )
    .unwrap();
    // The play, rewritten in place with each `lint_allow` the test tries.
    let play = |allow: &str| {
        let text = format!("- hosts: pbx\n{allow}  tasks:\n    - name: gw\n      template: {{src: gw.xml.j2, dest: sip_profiles/external/wavix.xml}}\n");
        playbook(&fleet.dir, "gw.yml", &text)
    };
    let session = fleet.session().playbook(play(""));
    let out = session.run(["apply"]).expect(exit::FAILED);
    out.shows(&["inbound-did"]);
    assert!(!h.exists("sip_profiles/external/wavix.xml"));

    // An allow must name a rule and give a reason.
    play("  lint_allow: {inbound-dids: \"x\"}\n");
    let (plan, md) = (fleet.dir.join("plan.json"), fleet.dir.join("plan.md"));
    let (plan, md) = (plan.to_str().unwrap(), md.to_str().unwrap());
    let out = session.run(["plan", "-o", plan]);
    assert_ne!(out.code, 0, "{}", out.all());
    out.shows(&["no lint rule is called `inbound-dids`"]);

    let why = "DIDs reach us by the provider's IP into public";
    play(&format!("  lint_allow:\n    inbound-did: \"{why}\"\n"));
    let out = session
        .run(["plan", "-o", plan, "--markdown", md])
        .expect(exit::OK);
    out.shows(&["lint allow", why]);
    assert_eq!(out.all().matches("lint allow").count(), 1, "{}", out.all());
    crate::assert_session!(out);
    let md_text = std::fs::read_to_string(md).unwrap();
    assert!(
        md_text.contains("Lint rules allowed")
            && md_text.contains("**inbound-did** allowed: DIDs reach us"),
        "{md_text}"
    );
    let out = session.run(["apply", "--json"]).expect(exit::OK);
    let r = host_report(&out, &h.name);
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "inbound-did" && f["allowed"].as_str().unwrap().contains(why)),
        "{r:#}"
    );
    assert!(h.exists("sip_profiles/external/wavix.xml"));
}

/// The shipped fleet (inventory, playbook, templates) copied to a folder of its own.
fn shipped_copy(tag: &str) -> std::path::PathBuf {
    let dir = tmp(tag);
    for d in ["inventory", "playbooks", "templates"] {
        crate::harness::run(
            std::process::Command::new("cp")
                .arg("-r")
                .arg(repo(d))
                .arg(&dir),
        );
    }
    dir
}

/// `lint` of the shipped playbook on an inventory folder, run from that folder, text.
fn lint_shipped(dir: &std::path::Path) -> Out {
    switchyard_in(
        dir,
        &[
            "lint",
            "--vault-identity",
            "inventory/example-vault-identity.txt",
            "-i",
            "inventory/pbx.yml",
            "playbooks/wavix.yml",
        ],
        &[],
    )
}

/// `lint` exited 0 and printed each of `want` and the `summary` line.
fn assert_warned(out: &Out, want: &[String], summary: &str) {
    assert_eq!(out.code, 0, "a warning, not an error: {}", out.all());
    for w in want {
        assert!(out.stdout.contains(w), "{w}\n{}", out.all());
    }
    assert!(out.stdout.contains(summary), "{}", out.all());
}

/// Issue 27 item 2: `wavix_relam: de.wavix.net` in host_vars changed nothing, silently.
/// Now it is a warning at its file and line with the variable it was meant to be; the
/// correctly spelt `wavix_realm` (set in pbx.yml for pbx_eu) is not flagged, and the
/// shipped inventory as it is has no such warning.
#[test]
fn a_misspelt_inventory_variable_is_named_with_its_line() {
    let dir = shipped_copy("unread-shipped");
    let out = lint_shipped(&dir);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stdout.contains("unused-var"), "{}", out.all());

    let host_vars = dir.join("inventory/host_vars/pbx-ams-1.yml");
    let mut text = std::fs::read_to_string(&host_vars).unwrap();
    let line = text.lines().count() + 1;
    text.push_str("wavix_relam: de.wavix.net\n");
    std::fs::write(&host_vars, text).unwrap();
    let out = lint_shipped(&dir);
    let want = format!(
        "inventory/host_vars/pbx-ams-1.yml:{line}: warning[unused-var]: `wavix_relam` is set for `pbx-ams-1` but no template, task or playbook reads it, so it changes nothing; did you mean `wavix_realm`?\n        fix: rename it to `wavix_realm`\n"
    );
    assert_warned(&out, &[want], "0 error(s), 1 warning(s)");
    assert!(
        !out.stdout.contains("`wavix_realm` is set"),
        "{}",
        out.all()
    );
}

/// The same in an INI inventory, inline host and group vars, with a play of its own: each
/// place is named, with its did-you-mean when one is close; a variable nothing resembles
/// gets none; `ansible_*` and switchyard's own variables (`freeswitch_conf_root`) are never
/// flagged. `apply --check` says it on stderr before touching the host, exit code as before.
#[test]
fn unread_variables_in_an_ini_inventory_and_in_apply_check() {
    let dir = tmp("unread-ini");
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let (me, grp) = switchyard::host::state::current_user_and_group();
    std::fs::write(
        dir.join("hosts.ini"),
        format!(
            "[pbx]\npbx1 ansible_connection=local freeswitch_conf_root={} freeswitch_owner={me} freeswitch_group={grp} relam=eu.example.net\n\n[pbx:vars]\nrealm=us.example.net\nproxy_port=5060\nzzz_unrelated=1\n",
            conf.display()
        ),
    )
    .unwrap();
    let play = realm_play(&dir);
    let inv = dir.join("hosts.ini");
    let (inv, play) = (inv.to_str().unwrap(), play.as_str());
    let out = switchyard(&["lint", "-i", inv, play]);
    let want = [
        format!("{inv}:2: warning[unused-var]: `relam` is set for `pbx1` but no template, task or playbook reads it, so it changes nothing; did you mean `realm`?"),
        format!("{inv}:7: warning[unused-var]: `zzz_unrelated` is set for `pbx1` but no template, task or playbook reads it, so it changes nothing\n        fix: remove `zzz_unrelated`, or read it in a template or task"),
    ];
    assert_warned(&out, &want, "0 error(s), 2 warning(s)");

    let out = switchyard(&["apply", "--check", "-i", inv, play]);
    assert!(
        out.stderr
            .contains(&format!("warning: {inv}:2: `relam` is set for `pbx1`"))
            && out.stderr.contains("did you mean `realm`?"),
        "{}",
        out.all()
    );
    assert!(!out.stderr.contains("`realm` is set"), "{}", out.all());
    // The one with no near name is counted, not spelt out: it may be another playbook's.
    assert!(!out.stderr.contains("`zzz_unrelated`"), "{}", out.all());
    assert!(
        out.stderr
            .contains("note: 1 inventory variable setting(s) for these hosts are read by nothing"),
        "{}",
        out.all()
    );
    assert_eq!(out.code, 0, "a warning changes no exit code: {}", out.all());
    assert!(
        !conf.join("vars_test.xml").exists(),
        "--check writes nothing"
    );
}

/// A play reading `realm` and `proxy_port` through a template, in `dir`.
fn realm_play(dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("templates/t.xml.j2"),
        "<include>\n  <x realm=\"{{ realm }}\" port=\"{{ proxy_port }}\"/>\n</include>\n",
    )
    .unwrap();
    let play = dir.join("play.yml");
    std::fs::write(
        &play,
        "- hosts: pbx\n  tasks:\n    - template: {src: t.xml.j2, dest: vars_test.xml}\n",
    )
    .unwrap();
    play.to_str().unwrap().to_string()
}

/// Inline group vars and a `group_vars/` file of a YAML inventory, and a TOML inventory's
/// host table: each misspelling at its own file and line.
#[test]
fn unread_variables_in_group_vars_and_toml_inventories() {
    let dir = tmp("unread-groups");
    let play = realm_play(&dir);
    std::fs::create_dir_all(dir.join("group_vars")).unwrap();
    let yml = dir.join("inv.yml");
    std::fs::write(
        &yml,
        "all:\n  children:\n    pbx:\n      vars:\n        realm: r.example.net\n        proxy_prot: 5060\n      hosts:\n        pbx1:\n          ansible_connection: local\n          freeswitch_conf_root: /nonexistent/conf\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("group_vars/pbx.yml"),
        "# ports\nproxy_port: 5060\nrelm: x\n",
    )
    .unwrap();
    let yml = yml.to_str().unwrap();
    let out = switchyard(&["lint", "-i", yml, &play]);
    let gv = dir.join("group_vars/pbx.yml");
    let want = [
        format!("{yml}:6: warning[unused-var]: `proxy_prot` is set for `pbx1` but no template, task or playbook reads it, so it changes nothing; did you mean `proxy_port`?"),
        format!("{}:3: warning[unused-var]: `relm` is set for `pbx1` but no template, task or playbook reads it, so it changes nothing; did you mean `realm`?", gv.display()),
    ];
    assert_warned(&out, &want, "0 error(s), 2 warning(s)");

    let toml = dir.join("hosts.toml");
    std::fs::write(
        &toml,
        "[pbx.vars]\nrealm = \"r.example.net\"\nproxy_port = 5060\n\n[pbx.hosts.pbx1]\nansible_connection = \"local\"\nfreeswitch_conf_root = \"/nonexistent/conf\"\nrelam = \"eu.example.net\"\n",
    )
    .unwrap();
    std::fs::remove_file(&gv).unwrap();
    let toml = toml.to_str().unwrap();
    let out = switchyard(&["lint", "-i", toml, &play]);
    let want = [format!("{toml}:8: warning[unused-var]: `relam` is set for `pbx1` but no template, task or playbook reads it, so it changes nothing; did you mean `realm`?")];
    assert_warned(&out, &want, "0 error(s), 1 warning(s)");
}
