//! Fleet rollouts over real sshd: canary batches, failure budgets, unreachable hosts, bastions.

use crate::harness::*;

fn statuses(out: &Out) -> Vec<(String, String)> {
    out.json()["plays"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                h["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn failed_canary_stops_the_rollout_before_the_next_batch() {
    let fleet = Fleet::new("canary", 4);
    // The canary's trunk account does not accept the password: verification fails.
    fleet.hosts[0].set_provider_password("sip.test", "trunk1", "something-else");
    let session = fleet.session();
    let out = session.apply_json(&["--serial", "1,50%"]);
    assert_eq!(out.code, 1);
    let st = statuses(&out);
    assert_eq!(st[0], ("pbx1".into(), "rolled_back".into()), "{st:?}");
    for h in &st[1..] {
        assert_eq!(h.1, "not_run", "{st:?}");
    }
    for h in &fleet.hosts[1..] {
        assert!(
            !h.exists("sip_profiles/external/wavix.xml"),
            "{} was touched",
            h.name
        );
        assert!(h.fs_log().is_empty());
    }
    let batches: Vec<u64> = out.json()["plays"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["batch"].as_u64().unwrap())
        .collect();
    assert_eq!(batches, [1, 2, 2, 3]);
    assert!(out.stderr.contains("ROLLOUT ABORTED"), "{}", out.stderr);
    assert!(
        out.stderr.contains("never touched: pbx2, pbx3, pbx4"),
        "{}",
        out.stderr
    );
    // Recap lists failures first.
    let recap = out.stderr.split("RECAP").nth(1).unwrap();
    assert!(recap.find("pbx1").unwrap() < recap.find("pbx2").unwrap());
}

#[test]
fn max_fail_percentage_boundary_and_an_unreachable_host() {
    let mut fleet = Fleet::new("maxfail", 5);
    // pbx3 is down: 1 of the 4 hosts of the first batch (25%) fails.
    fleet.hosts[2].stop();
    let session = fleet.session_with(&|_, _| "ssh_retries: 1\nssh_connect_timeout: 3\n".into());

    // Above the budget (25% > 24%): the second batch never runs.
    let out = session.apply_json(&["--serial", "4,1", "--max-fail-percentage", "24"]);
    assert_eq!(out.code, 1);
    let st = statuses(&out);
    assert_eq!(
        st.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
        ["changed", "changed", "unreachable", "changed", "not_run"],
        "{st:?}"
    );
    let err = out.json()["plays"][0]["hosts"][2]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("cannot connect"), "{err}");
    // `ssh_retries: 1`: two attempts, and the message says so; the kind is for machines.
    assert!(err.ends_with("(2 attempts)"), "{err}");
    assert_eq!(
        out.json()["plays"][0]["hosts"][2]["error_kind"],
        "unreachable"
    );
    assert_eq!(out.json()["plays"][0]["hosts"][4]["error_kind"], "not_run");
    assert!(!fleet.hosts[4].exists("dialplan/wavix.xml"));

    // Exactly at the budget (25% = 25%): the rollout continues.
    let out = session.apply_json(&["--serial", "4,1", "--max-fail-percentage", "25"]);
    assert_eq!(out.code, 1, "an unreachable host still makes the run fail");
    let st = statuses(&out);
    assert_eq!(
        st.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
        ["ok", "ok", "unreachable", "ok", "changed"],
        "{st:?}"
    );
    assert!(fleet.hosts[4].exists("dialplan/wavix.xml"));
    assert!(!out.stderr.contains("ROLLOUT ABORTED"));
}

#[test]
fn host_reached_only_through_a_bastion() {
    let mut fleet = Fleet::new("bastion", 0);
    let target = fleet.add_host("pbx-behind", true);
    let (taddr, tport) = (fleet.hosts[target].addr.clone(), fleet.hosts[target].port);
    // The bastion forwards to the target and nowhere else, and logs what it forwards.
    let b = fleet.add_host_with(
        "bastion",
        true,
        &format!("PermitOpen {taddr}:{tport}\nLogLevel DEBUG1\n"),
    );
    fleet.wait_ready();
    let (baddr, bport) = (fleet.hosts[b].addr.clone(), fleet.hosts[b].port);
    let jump = format!("ssh_jump: \"{TEST_USER}@{baddr}:{bport}\"\n");
    let inv = fleet.inventory_of("inv.yml", &|h| h.name == "pbx-behind", &|_, _| jump.clone());
    let session = fleet.session_on(&inv);

    let out = session.apply_json(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        statuses(&out),
        [("pbx-behind".to_string(), "changed".to_string())]
    );
    assert!(fleet.hosts[target].exists("sip_profiles/external/wavix.xml"));
    let blog = std::fs::read_to_string(fleet.hosts[b].dir.join("sshd.log")).unwrap();
    assert!(
        blog.contains("direct-tcpip") && blog.contains(&tport.to_string()),
        "the bastion forwarded the connection:\n{blog}"
    );

    // Without the bastion the host is unreachable.
    fleet.hosts[b].stop();
    let out = fleet.session_on(&inv).apply_json(&[]);
    assert_eq!(out.code, 1);
    assert_eq!(
        statuses(&out),
        [("pbx-behind".to_string(), "unreachable".to_string())]
    );
}

/// A failed rollout leaves a retry file; `--limit @FILE` runs exactly those hosts; a run
/// without failures removes it. `-v` shows every remote command with its timing, `-vv`
/// the command itself.
#[test]
fn retry_files_and_verbose_output() {
    let fleet = Fleet::new("retry", 2);
    let dir = tmp("retry-files");
    let history = dir.join("h.db");
    let h = history.to_str().unwrap();
    // pbx2 cannot be rendered: a numbering plan nobody defined.
    let bad = fleet.session_with(&|i, _| {
        if i == 1 {
            "numbering_plan: atlantis\n".into()
        } else {
            String::new()
        }
    });
    let out = bad.run(["apply", "--history", h, "-v"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let retry = dir.join("wavix.retry");
    assert_eq!(
        std::fs::read_to_string(&retry).unwrap(),
        "pbx2\n",
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "to retry the 1 host that did not succeed: --limit @{}",
            retry.display()
        )),
        "{}",
        out.stderr
    );
    // -v: one line per remote command of pbx1 (pbx2 never connected).
    assert!(out.stderr.contains("pbx1: gather "), "{}", out.stderr);
    assert!(out.stderr.contains("pbx1: write "), "{}", out.stderr);
    assert!(!out.stderr.contains("pbx2: gather"), "{}", out.stderr);

    let good = fleet.session();
    let at = format!("@{}", retry.display());
    let again = good.run(["apply", "--history", h, "--limit", &at, "--json", "-vv"]);
    assert_eq!(again.code, 0, "{}", again.all());
    let hosts: Vec<String> = again.json()["plays"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["host"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hosts, ["pbx2"]);
    assert!(
        !retry.exists(),
        "a run with no failure removes the retry file"
    );
    // -vv: the program by name, its arguments as the shell gets them; no secret.
    assert!(
        again
            .stderr
            .contains("    sh -c <bash-or-sh> sh <gather.sh> "),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("    (session) write "),
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("secret1"), "{}", again.stderr);
    // An empty or missing retry file is an error, not "every host".
    std::fs::write(&retry, "\n").unwrap();
    let none = good.run(["apply", "--history", h, "--limit", &at]);
    assert_eq!(none.code, 1, "{}", none.all());
    assert!(
        none.stderr.contains("the file names no host"),
        "{}",
        none.stderr
    );
}
