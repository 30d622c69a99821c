//! Secrets in the channels that carry text switchyard did not write itself: FreeSWITCH's
//! answers, lint findings quoting configuration.

use crate::harness::*;

/// An `fs_cli` answer that quotes the secret (here the stand-in echoing an unknown command
/// built from it) is masked in the terminal, `--json` and the history alike.
#[test]
fn freeswitch_answers_are_masked_everywhere() {
    let fleet = Fleet::new("answers", 1);
    let pb = playbook(
        &fleet.dir,
        "echo.yml",
        "- hosts: pbx\n  tasks:\n    - name: gw\n      vars: {gateway_name: wavix, gateway_register: true, gateway_realm: sip.test, gateway_proxy: sip.test, wavix_expire_seconds: 600, wavix_ping_seconds: 0, wavix_inbound_context: in, caller_id_passthrough: false}\n      template: {src: gateway.xml.j2, dest: sip_profiles/external/wavix.xml}\n    - fs_cli: {command: \"{{ wavix_password }}-probe status\", on_change: [gw]}\n",
    );
    let inv = fleet.inventory("inv.yml", &|_, _| "wavix_password: Hunter2-s3cret\n".into());
    let hist = fleet.dir.join("h.jsonl");
    let out = switchyard_env(
        &[
            "apply",
            "-i",
            inv.to_str().unwrap(),
            &pb,
            "--known-hosts",
            fleet.known_hosts.to_str().unwrap(),
            "--json",
        ],
        &[("SWITCHYARD_HISTORY", hist.to_str().unwrap())],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    // The answer really was about the command (not some other failure).
    assert!(out.stdout.contains("Command not found"), "{}", out.stdout);
    let history = std::fs::read_to_string(&hist).unwrap();
    for (what, text) in [("output", out.all()), ("history", history)] {
        assert!(
            !text.contains("Hunter2-s3cret"),
            "{what} carries the secret:\n{text}"
        );
    }
}

/// `lint --conf` on a tree whose misspelt pre-process line sets a password: the finding
/// and its fix never quote the password, in text or JSON.
#[test]
fn lint_findings_never_quote_a_password() {
    let dir = std::env::temp_dir().join(format!("switchyard-it-lintsecret-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("vars.xml"),
        "<include>\n  <XPREPROCESS cmd=\"set\" data=\"default_password=Hunter2\"/>\n  <X-PRE-PROCESS cmd='set' data='trunk_password=Hunter3'/>\n</include>\n",
    )
    .unwrap();
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["lint", "--conf", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = switchyard(&args);
        assert!(out.all().contains("vars.xml"), "{}", out.all());
        assert!(
            !out.all().contains("Hunter2") && !out.all().contains("Hunter3"),
            "{}",
            out.all()
        );
    }
}
