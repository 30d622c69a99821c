//! `switchyard lint` on the Wavix guide's own configuration (tests/fixtures/guide): each of
//! the guide's mistakes is reported, with file and line.

use crate::harness::*;

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
    // switch.conf.xml under autoload_configs/default/ is never read.
    assert!(
        has(
            &f,
            "wrong-path",
            "autoload_configs/default/switch.conf.xml",
            1,
            "error"
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
    // Placeholder passwords.
    assert!(has(
        &f,
        "password",
        "sip_profiles/external/wavix.xml",
        2,
        "error"
    ));
    assert!(has(
        &f,
        "password",
        "directory/default/1000.xml",
        4,
        "error"
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
    let (code, f) = lint_json(&["--conf", &repo("tests/fixtures/conf")]);
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
