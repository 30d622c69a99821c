//! The stand-in `fs_cli` (tests/fixtures/fs_cli_standin.py), kept faithful to the real
//! FreeSWITCH: the same commands, in the same situations, go to both, and what switchyard
//! makes of each answer (the parsers the engine uses) must be the same.

use std::time::{Duration, Instant};

use switchyard::freeswitch::status::{self, ApiFailure};

use super::*;
use crate::harness::TestHost;

/// What switchyard makes of an answer: the outcome class, never the free text (which
/// differs in addresses and line numbers).
fn class(cmd: &str, out: &str) -> String {
    if let Some(name) = cmd.strip_prefix("sofia xmlstatus gateway ") {
        return match status::parse_xmlstatus(name, out) {
            Ok(s) => format!(
                "{}/{} retry={} pingfreq={} pingcount={}",
                s.state,
                s.status,
                s.retry.is_some(),
                s.ping_freq,
                s.ping_count
            ),
            Err(e) => format!("error {e}"),
        };
    }
    if cmd == "show calls count" {
        return format!("{:?}", status::parse_calls_count(out));
    }
    match status::check_reply(cmd, out) {
        Ok(()) => format!("ok: {}", out.trim().lines().last().unwrap_or("")),
        Err(ApiFailure::XmlRejected(_)) => "xml rejected".into(),
        Err(ApiFailure::Refused { .. }) => "refused".into(),
        Err(ApiFailure::NotConnected(_)) => "not connected".into(),
        Err(ApiFailure::Error(e)) => format!("error: {e}"),
    }
}

struct Pair<'a> {
    standin: &'a TestHost,
    real: &'a TestHost,
}

impl Pair<'_> {
    fn write(&self, rel: &str, text: &str) {
        for h in [self.standin, self.real] {
            std::fs::write(h.conf(rel), text).unwrap();
        }
    }
    fn remove(&self, rel: &str) {
        for h in [self.standin, self.real] {
            std::fs::remove_file(h.conf(rel)).unwrap();
        }
    }
    /// Send `cmd` to both; their classes must agree. Returns the real answer.
    fn same(&self, cmd: &str) -> String {
        let s = self.standin.fs(cmd);
        let r = self.real.fs(cmd);
        assert_eq!(
            class(cmd, &s),
            class(cmd, &r),
            "`{cmd}`\nstand-in answered:\n{s}\nreal FreeSWITCH answered:\n{r}"
        );
        r
    }
    /// Poll `cmd` on both until each one's class starts with `want` (the stand-in's
    /// timings are shorter, so both are compared once settled).
    fn both_reach(&self, cmd: &str, want: &str, limit: Duration) {
        for h in [self.standin, self.real] {
            let deadline = Instant::now() + limit;
            loop {
                let got = class(cmd, &h.fs(cmd));
                if got.starts_with(want) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{}: `{cmd}` is `{got}`, not `{want}`",
                    h.name
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn gateway(name: &str, proxy: &str, password: &str, register: bool) -> String {
    format!(
        "<include>\n  <gateway name=\"{name}\">\n    <param name=\"username\" value=\"trunk1\"/>\n    <param name=\"password\" value=\"{password}\"/>\n    <param name=\"realm\" value=\"sip.test\"/>\n    <param name=\"proxy\" value=\"{proxy}\"/>\n    <param name=\"register\" value=\"{register}\"/>\n    <param name=\"retry-seconds\" value=\"30\"/>\n    <param name=\"ping\" value=\"5\"/>\n  </gateway>\n</include>\n"
    )
}

/// Each side's provider: the stand-in's accounts answer for `sip.test`, the real Kamailio
/// at its own address. Gateway files differ only in the proxy.
fn gateway_on_both(p: &Pair, provider: &str, text: &dyn Fn(&str) -> String) {
    for host in [p.standin, p.real] {
        let proxy = if host.freeswitch.is_some() {
            provider
        } else {
            "sip.test"
        };
        std::fs::write(host.conf("sip_profiles/external/cmp.xml"), text(proxy)).unwrap();
    }
}

/// Broken XML anywhere: rejected, old configuration kept.
fn broken_xml_is_rejected_and_the_old_configuration_kept(p: &Pair) {
    p.write(
        "dialplan/zz_broken.xml",
        "<include>\n  <context name=\"x\">\n</include>\n",
    );
    p.same("reloadxml");
    p.same("sofia profile external rescan");
    p.remove("dialplan/zz_broken.xml");
    p.same("reloadxml");
}

/// After 10 s up, a profile restart is done (the real one first, waiting until it is
/// allowed, then the stand-in).
fn restart_both_profiles_once_allowed(p: &Pair) {
    let real = p.real.freeswitch.as_ref().unwrap();
    let up = Instant::now();
    while real
        .api("sofia profile external restart")
        .contains("must be up")
    {
        assert!(up.elapsed() < Duration::from_secs(15));
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(1));
    p.standin.fs("sofia profile external restart");
}

#[test]
fn the_standin_answers_as_the_real_freeswitch_does() {
    let mut fleet = crate::harness::Fleet::new("real-standin", 1);
    fleet.add_real_host("real");
    let provider = Provider::start(&fleet.dir, WrongPassword::Forbidden);
    let p = Pair {
        standin: &fleet.hosts[0],
        real: &fleet.hosts[1],
    };
    let both = |text: &dyn Fn(&str) -> String| gateway_on_both(&p, &provider.addr, text);

    // Within 10 s of starting, a profile restart is refused (no -ERR).
    p.same("sofia profile external restart");
    p.same("show calls count");
    p.same("sofia xmlstatus gateway cmp");
    p.same("sofia profile external killgw cmp");
    p.same("sofia profile external startgw nosuch");
    p.same("sofia profile nosuch rescan");
    p.same("reloadxml");
    p.same("reloadacl");

    // A new registering gateway: rescan loads it, it registers.
    both(&|proxy| gateway("cmp", proxy, "secret1", true));
    p.same("sofia profile external rescan");
    p.both_reach(
        "sofia xmlstatus gateway cmp",
        "REGED/UP retry=false pingfreq=5",
        Duration::from_secs(10),
    );
    // Registered and pinging: the first OPTIONS (after the 5 s interval) is answered.
    p.both_reach(
        "sofia xmlstatus gateway cmp",
        "REGED/UP retry=false pingfreq=5 pingcount=1",
        Duration::from_secs(10),
    );
    // A changed password alone: rescan ignores the running gateway...
    both(&|proxy| gateway("cmp", proxy, "wrong", true));
    p.same("sofia profile external rescan");
    p.same("sofia xmlstatus gateway cmp");
    // ...killgw + rescan applies it, and the provider refuses it.
    p.same("sofia profile external killgw cmp");
    p.same("sofia profile external rescan");
    p.both_reach(
        "sofia xmlstatus gateway cmp",
        "FAIL_WAIT/DOWN retry=true pingfreq=5 pingcount=0",
        Duration::from_secs(10),
    );

    broken_xml_is_rejected_and_the_old_configuration_kept(&p);

    // An IP-auth gateway: UP as it loads, before any ping; then one ping answered.
    p.same("sofia profile external killgw cmp");
    both(&|proxy| gateway("cmp", proxy, "secret1", false));
    p.same("sofia profile external rescan");
    p.same("sofia xmlstatus gateway cmp");
    p.both_reach(
        "sofia xmlstatus gateway cmp",
        "NOREG/UP retry=false pingfreq=5 pingcount=1",
        Duration::from_secs(12),
    );

    restart_both_profiles_once_allowed(&p);
    // Both come back with the gateway loaded again.
    p.both_reach(
        "sofia xmlstatus gateway cmp",
        "NOREG/UP retry=false pingfreq=5",
        Duration::from_secs(10),
    );
}

/// switchyard hands fs_cli its event socket password in a conf file (`$HOME/.fs_cli_conf`,
/// profile `default`), never in an argument. The real fs_cli against a real FreeSWITCH and
/// the stand-in must both connect with the right password that way and both refuse a
/// wrong one alike: the steps program is run exactly as it runs on a PBX.
#[test]
fn the_password_reaches_fs_cli_through_its_conf_file_as_on_the_real_one() {
    use switchyard::freeswitch::reload::Action;
    let mut fleet = crate::harness::Fleet::new("real-fscliconf", 1);
    fleet.add_real_host("real");
    // The stand-in's event socket now wants the real one's password.
    let cfg_path = fleet.hosts[0].dir.join("bin/standin.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["esl_password"] = ESL_PASSWORD.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let real_line = fleet.hosts[1].freeswitch.as_ref().unwrap().fs_cli_command();
    let standin_line = format!(
        "{} -H 127.0.0.1 -P 8021 -p {ESL_PASSWORD}",
        fleet.hosts[0].fs_cli().display()
    );
    let run_steps = |line: &str| -> (i32, String) {
        let (cmd, stdin) =
            switchyard::host::script::steps(line, "true", &[Action::Api("status".into())]).unwrap();
        assert!(
            !cmd.contains(ESL_PASSWORD) && !cmd.contains("WrongPw9"),
            "{cmd}"
        );
        let mut child = std::process::Command::new("sh")
            .args(["-c", &cmd])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let parts = switchyard::host::script::split_steps(&text);
        assert_eq!(parts.len(), 1, "{text}");
        (parts[0].2, parts[0].1.clone())
    };
    for (pw, connects) in [(ESL_PASSWORD, true), ("WrongPw9", false)] {
        let mut seen = Vec::new();
        for line in [&standin_line, &real_line] {
            let line = line.replace(&format!("-p {ESL_PASSWORD}"), &format!("-p {pw}"));
            let (rc, body) = run_steps(&line);
            let class = if body.contains("UP ") {
                "answered"
            } else if body.contains("Error Connecting") {
                "refused"
            } else {
                "other"
            };
            seen.push((rc, class, body));
        }
        assert_eq!(
            (seen[0].0, seen[0].1),
            (seen[1].0, seen[1].1),
            "password {pw}: stand-in {:?}, real {:?}",
            seen[0],
            seen[1]
        );
        assert_eq!(
            seen[1].1,
            if connects { "answered" } else { "refused" },
            "{seen:?}"
        );
    }
}
