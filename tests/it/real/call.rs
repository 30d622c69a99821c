//! `switchyard call`: a test call placed by the PBX's own FreeSWITCH (configured by the
//! shipped playbook) from user 1000, through its dialplan and trunk, to the provider
//! (Kamailio relaying to a SIPp): answered with media both ways, refused with 603, and
//! answered with no RTP from the far end (one-way audio).

use std::time::Duration;

use super::*;

/// One PBX applied with the shipped playbook, its trunk REGED.
pub(super) fn pbx(tag: &str) -> World {
    let w = World::new(tag, WrongPassword::Forbidden);
    let esl = format!(
        "freeswitch_esl: \"{}:8021\"\nfreeswitch_esl_password: {ESL_PASSWORD}\n",
        w.fs().addr
    );
    let inv = w.inventory("inv.yml", &esl);
    let out = w.apply(&inv, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    w.fs()
        .wait_gateway("wavix", "REGED", None, Duration::from_secs(20));
    w
}

/// The provider's callee answering and staying on the line for 20 s (switchyard must hang
/// up), echoing the RTP it gets (`-rtp_echo`) or sending none.
fn answering_callee(w: &World, echo: bool) -> Sipp {
    let dir = &w.provider.dir;
    let scenario = dir.join("answer-long.xml");
    let text = include_str!("../../fixtures/sipp/answer.xml").replace(
        "<pause milliseconds=\"1000\"/>",
        "<pause milliseconds=\"20000\"/>",
    );
    std::fs::write(&scenario, text).unwrap();
    let extra: &[&str] = if echo { &["-rtp_echo"] } else { &[] };
    let (mut c, log) = Sipp::command(
        dir,
        &scenario.display().to_string(),
        None,
        &w.provider.addr,
        5070,
        extra,
    );
    let child = c.spawn().expect("start sipp");
    let deadline = Instant::now() + Duration::from_secs(5);
    while UdpSocket::bind(format!("{}:5070", w.provider.addr)).is_ok() && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    Sipp {
        child: Some(child),
        log,
        status: None,
    }
}

fn call(w: &World, extra: &[&str]) -> crate::harness::Out {
    let inv = w.fleet.dir.join("inv.yml");
    let session = w.fleet.session_on(&inv);
    session
        .run(
            [
                &["call", "pbx1", "--from", "1000", "--dial", "2125550100"][..],
                extra,
            ]
            .concat(),
        )
        .out
}

/// No channel of the test call is left on the PBX.
fn no_channels_left(w: &World) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = w.fs().api("show channels count");
        if count.contains("0 total") {
            return;
        }
        assert!(Instant::now() < deadline, "channels left: {count}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn test_calls_report_answer_status_and_media_both_ways() {
    let w = pbx("real-call");

    // Answered, RTP echoed: passes, and switchyard hung up (the callee got a BYE while it
    // still meant to stay on for 20 s).
    let mut callee = answering_callee(&w, true);
    let out = call(&w, &["--json", "--hold", "2"]);
    callee.finish(Duration::from_secs(10));
    assert_eq!(out.code, 0, "{}", out.all());
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|_| panic!("{}", out.all()));
    assert_eq!(v["answered"], true, "{v:#}");
    assert_eq!(v["media"], true, "{v:#}");
    assert_eq!(v["leg"]["gateway"], "wavix", "{v:#}");
    assert_eq!(v["leg"]["sip_status"], "200", "{v:#}");
    assert!(v["leg"]["rtp_in_packets"].as_u64().unwrap() > 10, "{v:#}");
    assert!(v["leg"]["rtp_out_packets"].as_u64().unwrap() > 10, "{v:#}");
    assert!(v["leg"]["post_dial_delay_ms"].as_u64().is_some(), "{v:#}");
    // Through the real dialplan: the provider got the E.164 number and the user's caller ID.
    let got = callee.invites_received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(uri_user(&got[0]), "12125550100");
    assert!(
        callee.got_bye(),
        "switchyard did not hang up: {:#?}",
        callee.messages()
    );
    no_channels_left(&w);

    // Refused with 603: not answered, the status and cause shown, exit 1.
    let mut callee = w.provider.callee(Some(603));
    let out = call(&w, &[]);
    callee.finish(Duration::from_secs(5));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("NOT answered (FAILED)"),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("SIP 603"), "{}", out.all());
    assert!(out.stdout.contains("CALL_REJECTED"), "{}", out.all());
    assert!(out.stdout.contains("gateway wavix"), "{}", out.all());
    assert!(
        out.stdout
            .contains("why: 603 Declined: the provider refused the call"),
        "{}",
        out.all()
    );
    // ... which is what `--expect refused` asks for.
    let mut callee = w.provider.callee(Some(603));
    let out = call(&w, &["--expect", "refused"]);
    callee.finish(Duration::from_secs(5));
    assert_eq!(out.code, 0, "{}", out.all());
    no_channels_left(&w);

    // Answered, but the far end sends no RTP: one-way audio, exit 1.
    let mut callee = answering_callee(&w, false);
    let out = call(&w, &["--hold", "2"]);
    callee.finish(Duration::from_secs(10));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("answered, ONE-WAY media: nothing received from the far end (FAILED)"),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("RTP in 0 / out "), "{}", out.all());
    assert!(out.stdout.contains("`ext-rtp-ip`"), "{}", out.all());
    no_channels_left(&w);
}

/// Ctrl-C during an answered call: switchyard hangs it up before it exits (130), so the
/// provider gets a BYE and no channel stays on the PBX.
#[test]
fn an_interrupted_test_call_is_hung_up_first() {
    let w = pbx("real-call-int");
    let mut callee = answering_callee(&w, true);
    let inv = w.fleet.dir.join("inv.yml");
    let session = w.fleet.session_on(&inv);
    let mut child = session
        .command([
            "call",
            "pbx1",
            "--from",
            "1000",
            "--dial",
            "2125550100",
            "--hold",
            "60",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start switchyard");
    // Answered: the callee got its ACK.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !callee
        .messages()
        .iter()
        .any(|m| !m.sent && m.first.starts_with("ACK "))
    {
        assert!(Instant::now() < deadline, "the call was never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    run(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "switchyard did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(130), "{text}");
    callee.finish(Duration::from_secs(5));
    assert!(callee.got_bye(), "not hung up: {:#?}", callee.messages());
    no_channels_left(&w);
}

/// The provider rings and never answers: switchyard cancels the call at `--timeout`,
/// reports it not answered with the ringing's post-dial delay, and exits 1.
#[test]
fn a_call_never_answered_is_hung_up_at_the_timeout() {
    let w = pbx("real-call-ring");
    let scenario = w.provider.dir.join("ring.xml");
    std::fs::write(&scenario, RING).unwrap();
    let (mut c, log) = Sipp::command(
        &w.provider.dir,
        &scenario.display().to_string(),
        None,
        &w.provider.addr,
        5070,
        &[],
    );
    let child = c.spawn().expect("start sipp");
    let deadline = Instant::now() + Duration::from_secs(5);
    while UdpSocket::bind(format!("{}:5070", w.provider.addr)).is_ok() && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut callee = Sipp {
        child: Some(child),
        log,
        status: None,
    };
    let out = call(&w, &["--timeout", "5", "--json"]);
    callee.finish(Duration::from_secs(10));
    assert_eq!(out.code, 1, "{}", out.all());
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|_| panic!("{}", out.all()));
    assert_eq!(v["answered"], false, "{v:#}");
    assert_eq!(v["leg"]["gateway"], "wavix", "{v:#}");
    assert!(v["leg"]["post_dial_delay_ms"].as_u64().is_some(), "{v:#}");
    assert_eq!(
        v["explanation"], "it rang and was not answered in time",
        "{v:#}"
    );
    // switchyard hung it up: the provider got a CANCEL.
    assert!(
        callee
            .messages()
            .iter()
            .any(|m| !m.sent && m.first.starts_with("CANCEL ")),
        "{:#?}",
        callee.messages()
    );
    no_channels_left(&w);
}

/// A callee that rings (180) until the call is cancelled.
const RING: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="ringing callee">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]R[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <recv request="CANCEL"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]R[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]R[call_number]
      [last_Call-ID:]
      CSeq: [cseq] INVITE
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"#;

/// The shipped playbook with `call_tests:` (one call from user 1000 to `dial`), beside a
/// link to the shipped templates.
fn playbook_with_call_test(w: &World, dial: &str) -> String {
    playbook_with_call_tests(
        w,
        &format!("wavix-{dial}.yml"),
        &format!("    - {{name: us-mobile, from: \"1000\", dial: \"{dial}\"}}\n"),
    )
}

/// The shipped playbook, written to `file` with `call_tests:` given as YAML lines, beside
/// a link to the shipped templates.
pub(super) fn playbook_with_call_tests(w: &World, file: &str, tests: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = w.fleet.dir.join("pb");
    if !dir.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(repo.join("templates"), dir.join("templates")).unwrap();
    }
    let shipped = std::fs::read_to_string(repo.join("playbooks/wavix.yml")).unwrap();
    let text = shipped.replacen(
        "\n  max_fail_percentage: 0\n",
        &format!("\n  max_fail_percentage: 0\n  call_test_seconds: 60\n  call_tests:\n{tests}"),
        1,
    );
    assert_ne!(text, shipped);
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `call_tests:` gate a rollout: the provider refusing the test call with 603 rolls the
/// host back; answering with media lets the change stand; `--check` lists the call without
/// placing it; an emergency number is refused when the playbook is read.
#[test]
fn a_failed_call_test_rolls_the_host_back() {
    let w = World::new("real-call-gate", WrongPassword::Forbidden);
    let esl = format!(
        "freeswitch_esl: \"{}:8021\"\nfreeswitch_esl_password: {ESL_PASSWORD}\n",
        w.fs().addr
    );
    let inv = w.inventory("inv.yml", &esl);
    let session = |pb: &str| w.fleet.session_on(&inv).playbook(pb);
    let pb = playbook_with_call_test(&w, "2125550100");

    // --check: listed, not placed.
    let mut callee = w.provider.callee(None);
    let out = session(&pb).run(["apply", "--check"]).out;
    callee.finish(Duration::from_secs(2));
    assert!(
        out.stderr
            .contains("us-mobile: 1000 dials 2125550100, expect answered"),
        "{}",
        out.all()
    );
    assert!(callee.invites_received().is_empty());

    // 603: the host fails its call test and is rolled back.
    let mut callee = w.provider.callee(Some(603));
    let out = session(&pb).run(["apply", "--json"]).out;
    callee.finish(Duration::from_secs(5));
    assert_eq!(out.code, 1, "{}", out.all());
    let r = host_report(&out, "pbx1");
    assert_eq!(r["status"], "rolled_back", "{r:#}");
    let error = r["error"].as_str().unwrap_or("");
    assert!(error.contains("call test `us-mobile`"), "{error}");
    assert!(error.contains("SIP 603"), "{error}");
    assert!(r["rollback"].is_string(), "{r:#}");
    assert_eq!(r["call_tests"][0]["passed"], false, "{r:#}");
    assert_eq!(callee.invites_received().len(), 1);

    // Answered with media: the change stands.
    let mut callee = answering_callee(&w, true);
    let out = session(&pb).run(["apply", "--json"]).out;
    callee.finish(Duration::from_secs(10));
    assert_eq!(out.code, 0, "{}", out.all());
    let r = host_report(&out, "pbx1");
    assert_eq!(r["status"], "changed", "{r:#}");
    assert_eq!(r["call_tests"][0]["passed"], true, "{r:#}");
    assert_eq!(r["call_tests"][0]["detail"]["media"], true, "{r:#}");
    no_channels_left(&w);

    // An emergency number: the playbook is refused before anything is contacted.
    let pb = playbook_with_call_test(&w, "911");
    let out = session(&pb).run(["apply", "--check"]).out;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("911 is an emergency number"),
        "{}",
        out.all()
    );
}

/// The provider refuses with `488` (no common codec) and `404` (unknown number): each is
/// explained in plain words, the 404 with the number as the dialplan sent it. An emergency
/// number is never dialled.
#[test]
fn refusals_are_explained() {
    let w = pbx("real-call-why");
    for (code, why) in [
        (488, "why: no common codec"),
        (
            404,
            "why: the provider does not know the number in this form (sent as 12125550100)",
        ),
    ] {
        let mut callee = w.provider.callee(Some(code));
        let out = call(&w, &[]);
        callee.finish(Duration::from_secs(5));
        assert_eq!(out.code, 1, "{}", out.all());
        assert!(out.stdout.contains(&format!("SIP {code}")), "{}", out.all());
        assert!(out.stdout.contains(why), "{}", out.all());
    }
    no_channels_left(&w);

    // Emergency numbers are refused before anything is contacted (usage, exit 2).
    let mut callee = w.provider.callee(None);
    let out = w
        .fleet
        .session_on(&w.fleet.dir.join("inv.yml"))
        .run(["call", "pbx1", "--from", "1000", "--dial", "911"])
        .out;
    callee.finish(Duration::from_secs(2));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("emergency number"), "{}", out.all());
    assert!(callee.invites_received().is_empty());
}

/// Two PBXes, canary first (`serial: [1, "100%"]`, `max_fail_percentage: 0`): the provider
/// refuses the canary's test call with 603, so the canary is rolled back and the other PBX
/// is never touched (its FreeSWITCH has no trunk loaded).
#[test]
fn a_refused_call_test_stops_the_rollout_at_the_canary() {
    let mut fleet = crate::harness::Fleet::new("real-call-canary", 0);
    fleet.add_real_host("pbx1");
    fleet.add_real_host("pbx2");
    let provider = Provider::start(&fleet.dir, WrongPassword::Forbidden);
    let w = World { fleet, provider };
    let inv = w.fleet.inventory("inv.yml", &|_, h| {
        let fs = h.freeswitch.as_ref().expect("a real FreeSWITCH");
        format!(
            "wavix_proxy: \"{}\"\nwavix_ping_seconds: 5\nfreeswitch_esl: \"{}:8021\"\nfreeswitch_esl_password: {ESL_PASSWORD}\n",
            w.provider.addr, fs.addr
        )
    });
    let pb = playbook_with_call_test(&w, "2125550100");
    let mut callee = w.provider.callee(Some(603));
    let out = w
        .fleet
        .session_on(&inv)
        .playbook(&pb)
        .run(["apply", "--json"])
        .out;
    callee.finish(Duration::from_secs(5));
    assert_eq!(out.code, 1, "{}", out.all());
    let canary = host_report(&out, "pbx1");
    assert_eq!(canary["status"], "rolled_back", "{canary:#}");
    assert!(
        canary["error"].as_str().unwrap_or("").contains("SIP 603"),
        "{canary:#}"
    );
    let rest = host_report(&out, "pbx2");
    assert_eq!(rest["status"], "not_run", "{rest:#}");
    assert_eq!(callee.invites_received().len(), 1);
    let pbx2 = w.fleet.hosts[1].freeswitch.as_ref().unwrap();
    assert!(
        pbx2.api("sofia status gateway wavix")
            .contains("Invalid Gateway"),
        "{}",
        pbx2.api("sofia status gateway wavix")
    );
}

/// A wrong event-socket password: the call is not placed (exit 1), and the password tried
/// appears nowhere in the output.
#[test]
fn a_wrong_event_socket_password_is_refused_and_never_printed() {
    let w = World::new("real-call-eslpw", WrongPassword::Forbidden);
    let inv = w.inventory(
        "inv.yml",
        &format!(
            "freeswitch_esl: \"{}:8021\"\nfreeswitch_esl_password: Not-ClueCon-7731\n",
            w.fs().addr
        ),
    );
    let mut callee = w.provider.callee(None);
    let out = w
        .fleet
        .session_on(&inv)
        .run(["call", "pbx1", "--from", "1000", "--dial", "2125550100"])
        .out;
    callee.finish(Duration::from_secs(2));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("event socket refused the password"),
        "{}",
        out.all()
    );
    assert!(!out.all().contains("Not-ClueCon-7731"), "{}", out.all());
    assert!(callee.invites_received().is_empty());
}

/// A call's SIP trace, as `switchyard call` prints it: the provider asks the INVITE to
/// authenticate (407, a number under +1 617 555), then refuses it with 404. The output shows
/// the INVITE, the 407, the authenticated INVITE, the 404 and the explanation; the digest
/// answer FreeSWITCH sent (read off the provider's side of the wire) and the passwords
/// appear nowhere, whole messages included; and the profile no longer traces afterwards.
#[test]
fn the_sip_trace_of_a_refused_call_is_shown_with_its_credentials_masked() {
    let w = pbx("real-call-trace");
    let call = |extra: &[&str]| refused_call_with_credentials(&w, extra);
    let (out, response) = call(&["--full-trace"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let text = &out.stdout;
    let line = |needle: &str| {
        text.lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(
        text.contains("SIP trace (FreeSWITCH's, profile external):"),
        "{text}"
    );
    let invites = line("-> udp/");
    let invites: Vec<_> = invites
        .iter()
        .filter(|l| l.contains("INVITE sip:16175550100@"))
        .collect();
    assert_eq!(
        invites.len(),
        2,
        "the INVITE and its retry with credentials: {text}"
    );
    assert_eq!(
        line("<- udp/")
            .iter()
            .filter(|l| l.contains("SIP/2.0 407"))
            .count(),
        1,
        "{text}"
    );
    assert_eq!(
        line("<- udp/")
            .iter()
            .filter(|l| l.contains("SIP/2.0 404"))
            .count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("Proxy-Authorization: Digest username=\"trunk1\""),
        "{text}"
    );
    assert!(text.contains("response=********"), "{text}");
    assert!(
        text.contains(
            "why: the provider does not know the number in this form (sent as 16175550100)"
        ),
        "{text}"
    );
    for secret in [response.as_str(), TRUNK_PASSWORD, ESL_PASSWORD] {
        assert!(!out.all().contains(secret), "{secret} shown: {}", out.all());
    }

    // The JSON has the whole messages, masked alike.
    let (out, response) = call(&["--json"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let messages = v["sip_trace"]["messages"].as_array().expect("a trace");
    assert!(messages.iter().any(|m| m["first_line"]
        .as_str()
        .unwrap_or("")
        .starts_with("SIP/2.0 404")));
    let call_id = v["leg"]["call_id"].as_str().expect("the leg's Call-ID");
    assert!(messages.iter().all(|m| m["call_id"] == call_id), "{v:#}");
    for secret in [response.as_str(), TRUNK_PASSWORD, ESL_PASSWORD] {
        assert!(!out.all().contains(secret), "{secret} shown: {}", out.all());
    }
    no_channels_left(&w);
    profile_does_not_trace(&w);
}

/// `switchyard call` to a number the provider authenticates and then refuses (404), and the
/// digest answer FreeSWITCH proved it knows the password with, as the provider received it.
fn refused_call_with_credentials(w: &World, extra: &[&str]) -> (crate::harness::Out, String) {
    let mut callee = w.provider.callee(Some(404));
    let inv = w.fleet.dir.join("inv.yml");
    let args = [
        &["call", "pbx1", "--from", "1000", "--dial", "6175550100"][..],
        extra,
    ]
    .concat();
    let out = w.fleet.session_on(&inv).run(args).out;
    callee.finish(Duration::from_secs(5));
    // What FreeSWITCH proved it knows the password with, as the provider received it.
    let invite = callee
        .messages()
        .into_iter()
        .find(|m| !m.sent && m.first.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("no INVITE reached the provider: {}", out.all()));
    let response = invite
        .text
        .split("response=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no digest answer: {}", invite.text))
        .to_string();
    (out, response)
}

/// The external profile no longer traces: an OPTIONS sent to it is not in FreeSWITCH's log,
/// while one sent after `siptrace on` (by hand, the control) is.
fn profile_does_not_trace(w: &World) {
    let options = |tag: &str| {
        let sock = UdpSocket::bind(format!("{}:0", w.provider.addr)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (a, local) = (&w.fs().addr, sock.local_addr().unwrap());
        let msg = format!(
            "OPTIONS sip:{a}:5080 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{tag}\r\nFrom: <sip:probe@{a}>;tag={tag}\r\nTo: <sip:{a}>\r\nCall-ID: {tag}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        sock.send_to(msg.as_bytes(), format!("{a}:5080")).unwrap();
        let mut buf = [0u8; 4096];
        sock.recv(&mut buf).expect("FreeSWITCH answers the OPTIONS");
    };
    options("after-the-call");
    w.fs().api("sofia profile external siptrace on");
    options("control");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !w.fs().log().contains("Call-ID: control@probe") {
        assert!(Instant::now() < deadline, "the control was never traced");
        std::thread::sleep(Duration::from_millis(100));
    }
    w.fs().api("sofia profile external siptrace off");
    assert!(
        !w.fs().log().contains("Call-ID: after-the-call@probe"),
        "the profile still traced after the call"
    );
}

/// `--via GATEWAY`: the call goes through that gateway only, whatever the dialplan would
/// choose, with the number in the numbering plan's E.164 form. The primary region would
/// answer; the failover region (`wavix_fo`, named by `--via`) refuses with 603, and only it
/// was sent the call. A gateway the play does not define, or a name that is not plain, is
/// refused before anything is dialled.
#[test]
fn a_call_via_one_gateway_goes_through_that_gateway_only() {
    let w = World::new("real-call-via", WrongPassword::Forbidden);
    let backup = Provider::start(&w.fleet.dir, WrongPassword::Forbidden);
    let inv = w.inventory(
        "inv.yml",
        &format!(
            "wavix_failover_proxy: \"{}\"\nwavix_failover_realm: sip.test\nfreeswitch_esl: \"{}:8021\"\nfreeswitch_esl_password: {ESL_PASSWORD}\n",
            backup.addr,
            w.fs().addr
        ),
    );
    let out = w.apply(&inv, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    w.fs()
        .wait_gateway("wavix_fo", "REGED", None, Duration::from_secs(20));
    let call = |via: &str| {
        w.fleet
            .session_on(&inv)
            .run([
                "call",
                "pbx1",
                "--from",
                "1000",
                "--dial",
                "2125550100",
                "--via",
                via,
            ])
            .out
    };

    let mut primary = w.provider.callee(None);
    let mut region = backup.callee(Some(603));
    let out = call("wavix_fo");
    primary.finish(Duration::from_secs(2));
    region.finish(Duration::from_secs(5));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("gateway wavix_fo, SIP 603"),
        "{}",
        out.all()
    );
    assert!(
        out.stderr
            .contains("calling 2125550100 through gateway wavix_fo as 12125550100"),
        "{}",
        out.all()
    );
    assert!(
        primary.invites_received().is_empty(),
        "the dialplan's choice was used"
    );
    let got = region.invites_received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(uri_user(&got[0]), "12125550100");
    // Placed as the user: the caller ID the trunk routes send.
    let invite = region.messages().into_iter().find(|m| !m.sent).unwrap();
    assert!(invite.text.contains("sip:16468097065@"), "{}", invite.text);
    no_channels_left(&w);

    for bad in ["nosuch", "wavix;x=1"] {
        let mut primary = w.provider.callee(None);
        let out = call(bad);
        primary.finish(Duration::from_secs(1));
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(out.stderr.contains("--via"), "{}", out.all());
        assert!(primary.invites_received().is_empty());
    }
    let out = call("nosuch");
    assert!(
        out.stderr.contains("it defines: wavix, wavix_fo"),
        "{}",
        out.all()
    );
}
