//! The shipped Wavix playbook over real SSH: files, owners, modes, idempotence, dry runs.

use crate::harness::*;

fn wavix() -> String {
    repo("playbooks/wavix.yml")
}

#[test]
fn wavix_playbook_on_three_hosts_then_idempotent_then_check_diff() {
    let fleet = Fleet::new("wavix3", 3);
    // Three hosts, three shapes: plain registration, a second DID and caller-ID passthrough
    // off, and IP authentication with an external address.
    let extra = |i: usize, _h: &TestHost| {
        match i {
        0 => "wavix_failover_proxy: sip.test\n".to_string(),
        1 => "caller_id_passthrough: false\ndid_routes: [{number: \"16468097065\", extension: \"1000\"}, {number: \"442071234567\", extension: \"1001\"}]\n".to_string(),
        _ => "wavix_ip_auth: true\nexternal_ip: 203.0.113.7\nwavix_inbound_addresses: [\"192.0.2.10\"]\n".to_string(),
    }
    };
    let inv = fleet.inventory("inv.yml", &extra);
    let inv = inv.to_str().unwrap();
    let kh = fleet.known_hosts.to_str().unwrap();

    let first = switchyard(&["apply", "-i", inv, &wavix(), "--known-hosts", kh, "--json"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let report = first.json();
    let hosts = report["plays"][0]["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    assert!(
        hosts.iter().all(|h| h["status"] == "changed"),
        "{}",
        first.stderr
    );

    // Host 1: registration + failover gateways, verified REGED.
    let h1 = fleet.host("pbx1");
    let gw = h1.read("sip_profiles/external/wavix.xml");
    assert!(gw.contains("<gateway name=\"wavix\">"));
    assert!(gw.contains("<param name=\"password\" value=\"secret1\"/>"));
    assert!(gw.contains("<param name=\"realm\" value=\"sip.test\"/>"));
    assert!(gw.contains("<variable name=\"sip_cid_type\" value=\"none\" direction=\"outbound\"/>"));
    assert!(h1.exists("sip_profiles/external/wavix_fo.xml"));
    assert_eq!(
        h1.meta("sip_profiles/external/wavix.xml"),
        ("freeswitch".into(), "freeswitch".into(), 0o640)
    );
    let dp = h1.read("dialplan/wavix.xml");
    let first_bridge = dp.find("sofia/gateway/wavix/$1").unwrap();
    let cof = dp.find("continue_on_fail=GATEWAY_DOWN,").unwrap();
    assert!(
        cof < first_bridge,
        "continue_on_fail before the first bridge"
    );
    assert!(
        dp.find("hangup_after_bridge=true").unwrap() < first_bridge,
        "a completed call must end with its bridge"
    );
    assert!(
        !dp.contains("continue_on_fail=true"),
        "fails over on busy too"
    );
    assert!(dp.contains("sofia/gateway/wavix_fo/$1"));
    assert!(h1
        .read("directory/default/1000.xml")
        .contains("<variable name=\"user_context\" value=\"wavix\"/>"));
    let sw = h1.read("autoload_configs/switch.conf.xml");
    assert!(sw.contains("    <param name=\"rtp-start-port\" value=\"10000\"/>\n    <param name=\"rtp-end-port\" value=\"20000\"/>\n"));
    assert!(
        !sw.contains("16384"),
        "the commented stock line was replaced in place"
    );
    let h1_report = hosts.iter().find(|h| h["host"] == "pbx1").unwrap();
    let states: Vec<&str> = h1_report["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["REGED", "REGED"]);
    assert_eq!(
        h1_report["restart_pending"], true,
        "the RTP range needs a restart that was not allowed"
    );
    assert!(h1
        .fs_log()
        .contains(&"sofia profile external rescan".to_string()));
    assert!(
        !h1.fs_log().iter().any(|c| c.contains("restart")),
        "no restart without --allow"
    );

    // Host 2: second DID, no passthrough.
    let h2 = fleet.host("pbx2");
    assert!(h2
        .read("dialplan/wavix.xml")
        .contains("^\\+?(442071234567)$"));
    assert!(!h2
        .read("sip_profiles/external/wavix.xml")
        .contains("caller-id-in-from"));
    assert!(!h2.exists("sip_profiles/external/wavix_fo.xml"));

    // Host 3: IP authentication.
    let h3 = fleet.host("pbx3");
    assert!(!h3.exists("sip_profiles/external/wavix.xml"));
    let ip = h3.read("sip_profiles/external/wavix_ip.xml");
    assert!(ip.contains("<param name=\"register\" value=\"false\"/>") && !ip.contains("password"));
    let vars = h3.read("vars.xml");
    assert!(vars.contains("  <X-PRE-PROCESS cmd=\"set\" data=\"external_rtp_ip=203.0.113.7\"/>\n"));
    assert!(vars.contains("<X-PRE-PROCESS cmd=\"set\" data=\"outbound_sip_ip=203.0.113.7\"/>"));
    assert!(
        !vars.contains("stun-set\" data=\"external_rtp_ip"),
        "the stun-set definition was replaced, not duplicated"
    );
    assert!(h3
        .read("dialplan/wavix.xml")
        .contains("sofia/gateway/wavix_ip/$1"));
    let h3_report = hosts.iter().find(|h| h["host"] == "pbx3").unwrap();
    assert_eq!(h3_report["gateways"][0]["state"], "NOREG");
    assert_eq!(h3_report["gateways"][0]["status"], "UP");
    let pending: Vec<String> = h3_report["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["action"]["command"]
                .as_str()
                .unwrap_or("restart")
                .to_string()
        })
        .collect();
    assert!(
        pending.contains(&"sofia profile external restart".to_string()),
        "ext IP change needs a profile restart: {pending:?}"
    );

    // Second run: nothing to change, no FreeSWITCH command at all.
    let logs: Vec<usize> = fleet.hosts.iter().map(|h| h.fs_log().len()).collect();
    let second = switchyard(&["apply", "-i", inv, &wavix(), "--known-hosts", kh, "--json"]);
    assert_eq!(second.code, 0, "{}", second.all());
    let r2 = second.json();
    for h in r2["plays"][0]["hosts"].as_array().unwrap() {
        assert_eq!(h["status"], "ok", "{}", second.stderr);
        assert!(h["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "ok"));
        assert!(h["steps"].as_array().unwrap().is_empty());
        // One command after authentication: the fact gathering.
        assert_eq!(h["remote_commands"], 1);
    }
    let logs2: Vec<usize> = fleet.hosts.iter().map(|h| h.fs_log().len()).collect();
    assert_eq!(logs, logs2, "a no-op run sends FreeSWITCH nothing");

    // A password change, checked with --diff: shown as changed, masked, nothing written.
    let before = h1.read("sip_profiles/external/wavix.xml");
    let inv2 = fleet.inventory("inv2.yml", &|i, h| {
        if i == 0 {
            "wavix_password: N3w-Pa55\"<&\n".into()
        } else {
            extra(i, h)
        }
    });
    let check = switchyard(&[
        "apply",
        "--check",
        "--diff",
        "-i",
        inv2.to_str().unwrap(),
        &wavix(),
        "--known-hosts",
        kh,
    ]);
    assert_eq!(check.code, 0, "{}", check.all());
    // The changed password: one line that says so, not two lines that look the same.
    assert!(
        check
            .stderr
            .contains("~    <param name=\"password\" value=\"********\"/>  (secret changed)\n"),
        "{}",
        check.stderr
    );
    assert!(
        !check
            .stderr
            .contains("+    <param name=\"password\" value=\"********\"/>"),
        "{}",
        check.stderr
    );
    assert!(
        check
            .stderr
            .contains("would run sofia profile external killgw wavix"),
        "{}",
        check.stderr
    );
    for secret in ["secret1", "N3w-Pa55", "N3w-Pa55&quot;&lt;&amp;"] {
        assert!(
            !check.all().contains(secret),
            "`{secret}` leaked into the output"
        );
    }
    assert_eq!(
        h1.read("sip_profiles/external/wavix.xml"),
        before,
        "--check wrote nothing"
    );

    // Applied, the hostile password lands XML-escaped and the file stays well-formed.
    let applied = switchyard(&[
        "apply",
        "-i",
        inv2.to_str().unwrap(),
        &wavix(),
        "--known-hosts",
        kh,
        "--no-verify",
        "--limit",
        "pbx1",
    ]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    let gw = h1.read("sip_profiles/external/wavix.xml");
    assert!(gw.contains("value=\"N3w-Pa55&quot;&lt;&amp;\""), "{gw}");
    roxmltree::Document::parse(&gw).expect("well-formed");
    assert!(!applied.all().contains("N3w-Pa55"));
}

#[test]
fn unknown_and_changed_host_keys_are_refused() {
    let mut fleet = Fleet::new("hostkeys", 0);
    fleet.add_host("stranger", false);
    fleet.wait_ready();
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let kh = fleet.known_hosts.to_str().unwrap();
    let pb = repo("playbooks/wavix.yml");

    let refused = switchyard(&[
        "apply",
        "-i",
        inv.to_str().unwrap(),
        &pb,
        "--known-hosts",
        kh,
    ]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("stranger [unreachable]"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("is not in"), "{}", refused.stderr);
    assert!(!fleet.hosts[0].exists("sip_profiles/external/wavix.xml"));

    // Accepting new keys records the key, then works without the flag.
    let learned = switchyard(&[
        "apply",
        "--check",
        "-i",
        inv.to_str().unwrap(),
        &pb,
        "--known-hosts",
        kh,
        "--accept-new-host-keys",
    ]);
    assert_eq!(learned.code, 0, "{}", learned.all());
    assert!(std::fs::read_to_string(kh).unwrap().contains(&format!(
        "[{}]:{}",
        fleet.hosts[0].addr, fleet.hosts[0].port
    )));
    let again = switchyard(&[
        "apply",
        "--check",
        "-i",
        inv.to_str().unwrap(),
        &pb,
        "--known-hosts",
        kh,
    ]);
    assert_eq!(again.code, 0, "{}", again.all());

    // A changed key is refused even with --accept-new-host-keys.
    let other = fleet.dir.join("other_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut p = pubkey.split_whitespace();
    std::fs::write(
        kh,
        format!(
            "[{}]:{} {} {}\n",
            fleet.hosts[0].addr,
            fleet.hosts[0].port,
            p.next().unwrap(),
            p.next().unwrap()
        ),
    )
    .unwrap();
    let changed = switchyard(&[
        "apply",
        "--check",
        "-i",
        inv.to_str().unwrap(),
        &pb,
        "--known-hosts",
        kh,
        "--accept-new-host-keys",
    ]);
    assert_eq!(changed.code, 1);
    assert!(changed.stderr.contains("HAS CHANGED"), "{}", changed.stderr);
}

/// `switchyard apply ... 2>&1 | head` closes the pipe early: the run must not panic (it used
/// to exit 101 at its first write), and the hosts still converge.
#[test]
fn a_closed_output_pipe_ends_nothing_but_the_output() {
    let fleet = Fleet::new("epipe", 2);
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "apply",
            "-i",
            inv.to_str().unwrap(),
            &wavix(),
            "--known-hosts",
        ])
        .arg(&fleet.known_hosts)
        .arg("--json")
        .env("SWITCHYARD_HISTORY", fleet.dir.join("h.db"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close both read ends at once, as `head` does after its lines.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    for h in &fleet.hosts {
        assert!(h
            .read("sip_profiles/external/wavix.xml")
            .contains("secret1"));
    }
}

/// Issue 28: a first apply costs the PBX one gather, the lock, one write and one steps
/// command, no more: the record of what is still owed after the steps goes through the held
/// lock instead of a round trip of its own (5 commands before), and is whole on disk
/// afterwards: the ran rescan no longer owed, the restart that was not allowed still owed.
#[test]
fn a_first_apply_is_four_remote_commands_and_records_what_is_still_owed() {
    let fleet = Fleet::new("fourcmds", 1);
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let out = fleet.run("apply", &inv, &["--json", "--no-verify"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let h = host_report(&out, "pbx1");
    assert_eq!(h["status"], "changed", "{}", out.all());
    assert_eq!(commands(&h), ["sofia profile external rescan"]);
    // gather, lock, write, steps
    assert_eq!(h["remote_commands"], 4, "{}", out.all());
    let host = fleet.host("pbx1");
    let record: serde_json::Value =
        serde_json::from_str(&host.read(".switchyard/state.json")).unwrap();
    let owed: Vec<String> = record["owed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].to_string())
        .collect();
    assert_eq!(owed.len(), 1, "only the restart stays owed: {owed:?}");
    assert!(!owed[0].contains("rescan"), "{owed:?}");
    assert!(record["files"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.ends_with("sip_profiles/external/wavix.xml")));
    // Nothing staged or half-written is left in the private folder.
    let mut left: Vec<String> = std::fs::read_dir(host.conf(".switchyard"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["lock", "lock.owner", "state.json"]);
    // And the next run is a no-op: one command.
    let again = fleet.run("apply", &inv, &["--json", "--no-verify"]);
    assert_eq!(host_report(&again, "pbx1")["remote_commands"], 1);
}
