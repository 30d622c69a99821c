//! Change review and drift over real sshd: reviewed plans applied exactly, drift labelled,
//! corrected, recorded, and watched.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::assert_session;
use crate::harness::*;
use crate::session::exit;

fn statuses(json: &serde_json::Value) -> Vec<(String, String, String)> {
    json["plays"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().into(),
                h["status"].as_str().unwrap().into(),
                h["error"].as_str().unwrap_or("").into(),
            )
        })
        .collect()
}

/// A saved plan and its Markdown are for review: counts, commands and diffs, no secret, and
/// making them changed nothing on the hosts.
fn plan_is_reviewable_and_secret_free(fleet: &Fleet, plan: &std::path::Path, md: &std::path::Path) {
    let plan_text = std::fs::read_to_string(plan).unwrap();
    let md_text = std::fs::read_to_string(md).unwrap();
    for secret in ["secret1", "Rotated-42", "ext-pass-1000"] {
        assert!(
            !plan_text.contains(secret) && !md_text.contains(secret),
            "`{secret}` is in the plan"
        );
    }
    assert!(
        md_text.contains("**3 to change**")
            && md_text.contains("`sofia profile external killgw wavix`"),
        "{md_text}"
    );
    assert!(md_text.contains("```diff"), "{md_text}");
    assert!(
        fleet.hosts.iter().all(|h| h
            .read("sip_profiles/external/wavix.xml")
            .contains("secret1")),
        "plan changed nothing"
    );
}

#[test]
fn reviewed_plan_is_applied_exactly_and_refused_where_the_host_changed() {
    let fleet = Fleet::new("plan", 3);
    fleet.session().run(["apply"]).expect(exit::OK);

    // The change under review: a new trunk password everywhere.
    for h in &fleet.hosts {
        h.set_provider_password("sip.test", "trunk1", "Rotated-42");
    }
    let rotated = fleet.session_with(&|_, _| "wavix_password: Rotated-42\n".into());
    let (plan, md) = (fleet.dir.join("plan.json"), fleet.dir.join("plan.md"));
    let (plan_s, md_s) = (plan.to_str().unwrap(), md.to_str().unwrap());
    let planned = rotated.run(["plan", "-o", plan_s, "--markdown", md_s]);
    assert_session!(planned.expect(exit::OK));
    plan_is_reviewable_and_secret_free(&fleet, &plan, &md);

    // After review, someone edits pbx2 by hand.
    let p2 = fleet.host("pbx2");
    let edited = p2
        .read("sip_profiles/external/wavix.xml")
        .replace("</include>", "<!-- hand edit -->\n</include>");
    std::fs::write(p2.conf("sip_profiles/external/wavix.xml"), &edited).unwrap();

    let out = rotated.run(["apply", "--plan", plan_s, "--json", "--serial", "100%"]);
    let st = statuses(&out.expect(exit::FAILED).json());
    assert_eq!(
        (st[0].1.as_str(), st[2].1.as_str()),
        ("changed", "changed"),
        "{st:?}"
    );
    assert_eq!(st[1].1, "failed");
    assert!(
        st[1].2.contains(
            "refused: sip_profiles/external/wavix.xml: changed on the host since the plan was made"
        ),
        "{}",
        st[1].2
    );
    let after = p2.read("sip_profiles/external/wavix.xml");
    assert_eq!(after, edited, "the refused host was not touched");
    assert!(fleet
        .host("pbx1")
        .read("sip_profiles/external/wavix.xml")
        .contains("Rotated-42"));

    // Inputs changed since review: refused too.
    let other = fleet.session_with(&|_, _| "wavix_password: Other-43\n".into());
    let out = other.run([
        "apply",
        "--plan",
        plan_s,
        "--json",
        "--limit",
        "pbx3",
        "--no-verify",
    ]);
    let st = statuses(&out.json());
    assert!(
        st[0].2.contains("the inputs changed since review"),
        "{st:?}"
    );
    out.never_shows(&["Other-43"]);
}

/// The history of pbx1 has the drift check (found, changed nothing) and the correction, and
/// no secret is in its files.
fn history_has_the_drift_and_the_fix(hist: &std::path::Path) {
    let h = switchyard(&[
        "history",
        "--history",
        hist.to_str().unwrap(),
        "--host",
        "pbx1",
    ]);
    assert_eq!(h.code, 0);
    let lines: Vec<&str> = h.stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains(" drift ")
            && l.contains("drift found")
            && !l.contains("changed")
            && l.contains("sip_profiles/external/wavix.xml drift")),
        "{}",
        h.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" fix ") && l.contains("changed") && l.contains("killgw wavix")),
        "{}",
        h.stdout
    );
    assert!(!history_bytes(hist).contains("secret1"));
}

#[test]
fn drift_is_labelled_fixed_and_recorded() {
    let fleet = Fleet::new("drift", 2);
    let hist = fleet.dir.join("history.db");
    let with_history = ["--history", hist.to_str().unwrap()];
    let session = fleet.session();
    session
        .run([&["apply"][..], &with_history].concat())
        .expect(exit::OK);
    let ok = session.run([&["drift"][..], &with_history].concat());
    // Nothing drifted: only the restart the harness never allows is still pending.
    for h in ["pbx1: ", "pbx2: "] {
        let l = ok.stderr.lines().find(|l| l.starts_with(h)).unwrap_or("");
        assert!(
            l.ends_with("`restart FreeSWITCH` pending (the files need it; no run was allowed to: `--allow restart`)"),
            "{}",
            ok.stderr
        );
    }
    assert_session!("nothing_drifted", ok.expect(exit::OK));

    // A hand edit on pbx1 (drift) and a playbook input change for pbx2 (pending).
    let p1 = fleet.host("pbx1");
    let good = p1.read("sip_profiles/external/wavix.xml");
    let bad = good.replace("sip.test", "evil.example");
    std::fs::write(p1.conf("sip_profiles/external/wavix.xml"), bad).unwrap();
    let changed = session.vars(&|i, _| match i {
        1 => "rtp_end_port: 30000\n".into(),
        _ => String::new(),
    });
    let out = changed.run([&["drift", "--json"][..], &with_history].concat());
    // Drift has its own exit code (3): never confused with a mistyped command line (2).
    let out = out.expect(exit::DRIFT);
    out.shows(&[
        "pbx1: drift sip_profiles/external/wavix.xml",
        "pbx2: pending autoload_configs/switch.conf.xml",
    ]);
    let j = out.json();
    let files = j["drift"][0]["hosts"][0]["files"].as_array().unwrap();
    let f = files
        .iter()
        .find(|f| f["rel"] == "sip_profiles/external/wavix.xml")
        .unwrap();
    assert_eq!(f["difference"], "drift");
    assert!(f["diff"]
        .as_str()
        .unwrap()
        .contains("-    <param name=\"realm\" value=\"evil.example\"/>"));

    // --fix corrects the drifted host only, through the normal apply path.
    let fix = changed.run([&["drift", "--fix"][..], &with_history].concat());
    let fix = fix.expect(exit::OK);
    fix.shows(&[
        "ran       sofia profile external killgw wavix",
        "gateway   wavix REGED",
    ]);
    assert_session!("fixed", fix);
    assert_eq!(p1.read("sip_profiles/external/wavix.xml"), good);
    assert!(
        !fleet
            .host("pbx2")
            .read("autoload_configs/switch.conf.xml")
            .contains("30000"),
        "pending changes are not drift"
    );
    history_has_the_drift_and_the_fix(&hist);
}

fn metrics(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.split_once("\r\n\r\n").map(|x| x.1.to_string())
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

fn wait_for(port: u16, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(m) = metrics(port) {
            if cond(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{m}"
            );
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM: the agent finishes its round and exits; its status and what it printed.
pub(crate) fn stop_with_sigterm(
    mut child: std::process::Child,
) -> (std::process::ExitStatus, String) {
    send_signal(child.id(), 15);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "watch did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}

#[test]
fn watch_rounds_metrics_and_clean_stop() {
    let fleet = Fleet::new("watch", 2);
    let session = fleet.session();
    session.run(["apply"]).expect(exit::OK);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hist = fleet.dir.join("history.db");
    let child = session
        .command(["watch", "--every", "1s", "--fix"])
        .args(["--metrics", &format!("127.0.0.1:{port}")])
        .args(["--history", hist.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let m = wait_for(port, "two clean rounds", |m| {
        metric(m, "switchyard_rounds_total") >= 2.0
    });
    assert_eq!(metric(&m, "switchyard_hosts_checked"), 2.0);
    assert_eq!(metric(&m, "switchyard_hosts_drifted"), 0.0);
    assert!(
        m.contains("switchyard_gateway_state{gateway=\"wavix\",host=\"pbx1\",state=\"REGED\"} 1"),
        "{m}"
    );

    // Drift appears, and is corrected by the agent.
    let p2 = fleet.host("pbx2");
    let good = p2.read("sip_profiles/external/wavix.xml");
    let tampered = good.replace("secret1", "tampered");
    std::fs::write(p2.conf("sip_profiles/external/wavix.xml"), tampered).unwrap();
    let m = wait_for(port, "a correction", |m| {
        metric(m, "switchyard_corrections_total") >= 1.0
    });
    assert_eq!(
        metric(&m, "switchyard_hosts_drifted"),
        1.0,
        "the round that saw the drift"
    );
    assert_eq!(metric(&m, "switchyard_files_drifted"), 1.0);
    assert_eq!(p2.read("sip_profiles/external/wavix.xml"), good);
    let rounds = metric(&m, "switchyard_rounds_total");
    let m = wait_for(port, "a clean round after the correction", |m| {
        metric(m, "switchyard_rounds_total") > rounds
    });
    assert_eq!(metric(&m, "switchyard_hosts_drifted"), 0.0);

    let (status, err) = stop_with_sigterm(child);
    assert_eq!(status.code(), Some(0));
    assert!(err.contains("SIGTERM, stopping"), "{err}");
    assert!(!err.contains("secret1") && !err.contains("tampered"));
}

fn send_signal(pid: u32, sig: i32) {
    std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

/// Issue 27 item 6: what the shipped alerts need is on the page. pbx1 drifts, its
/// correction fails (another run holds pbx1's host lock), and the history database cannot
/// be written (its folder is a file): the page says `switchyard_host_drifted{host="pbx1"} 1`,
/// `switchyard_rollouts_failed_total` and `switchyard_history_write_failures_total` above 0
/// (none of them existed before).
#[test]
fn drift_a_failed_correction_and_history_failures_reach_the_metrics() {
    use std::io::BufRead;
    let fleet = Fleet::new("watch-alerts", 2);
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    assert_eq!(fleet.run("apply", &inv, &[]).code, 0);
    let p1 = fleet.host("pbx1");
    let good = p1.read("sip_profiles/external/wavix.xml");
    std::fs::write(
        p1.conf("sip_profiles/external/wavix.xml"),
        good.replace("secret1", "tampered"),
    )
    .unwrap();
    // Another run's lock, held as lock.sh holds it (flock on the conf root's lock file).
    let mut holder = std::process::Command::new("flock")
        .arg(p1.conf(".switchyard/lock"))
        .args(["-c", "echo held; exec sleep 300"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "held\n");
    let not_a_folder = fleet.dir.join("not-a-folder");
    std::fs::write(&not_a_folder, "").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_at = format!("127.0.0.1:{port}");
    let history = not_a_folder.join("history.db");
    let args = [
        "--every",
        "1s",
        "--fix",
        "--metrics",
        &metrics_at,
        "--history",
        history.to_str().unwrap(),
    ];
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "watch",
            "-i",
            inv.to_str().unwrap(),
            &repo("playbooks/wavix.yml"),
        ])
        .args(["--known-hosts", fleet.known_hosts.to_str().unwrap()])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let seen = std::panic::catch_unwind(|| {
        wait_for(port, "a failed correction", |m| {
            metric(m, "switchyard_rollouts_failed_total") >= 1.0
        })
    });
    for p in [&mut child, &mut holder] {
        let _ = p.kill();
        let _ = p.wait();
    }
    let m = seen.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(
        m.contains("switchyard_host_drifted{host=\"pbx1\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("switchyard_host_drifted{host=\"pbx2\"} 0"),
        "{m}"
    );
    assert!(
        metric(&m, "switchyard_history_write_failures_total") >= 1.0,
        "{m}"
    );
    assert_eq!(metric(&m, "switchyard_corrections_total"), 0.0, "{m}");
}
