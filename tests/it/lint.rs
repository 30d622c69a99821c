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
