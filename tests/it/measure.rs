//! `trunks measure` against a PBX that stays silent (issue 21, item 5): the run has a
//! deadline, each PBX's result is printed as it completes, the silent one is named as such.
//! The PBXes are real sshd hosts; their event sockets (reached through SSH `direct-tcpip`,
//! as on a real PBX) are listeners of this test: one accepts and never answers, the other
//! hangs up at once. (`real::measure` measures on a real FreeSWITCH.)

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;

/// A listener on `addr` that accepts every connection and then does what `then` does
/// with it; the accepted sockets are kept open until the listener's owner exits.
fn esl_listener(addr: &str, hang_up: bool) -> (String, Arc<Mutex<Vec<TcpStream>>>) {
    let l = TcpListener::bind(format!("{addr}:0")).unwrap();
    let at = l.local_addr().unwrap().to_string();
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let keep = held.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            if !hang_up {
                keep.lock().unwrap().push(s);
            }
        }
    });
    (at, held)
}

/// `trunks measure`: one sample, 5 s apart, with this time limit per host.
fn measure_once(timeout: &str) -> Vec<&str> {
    let once = ["trunks", "measure", "--samples", "1", "--interval", "5"];
    [&once[..], &["--timeout", timeout]].concat()
}

#[test]
fn a_silent_pbx_is_given_up_and_never_holds_back_the_others() {
    let fleet = Fleet::new("measure-silent", 2);
    let (silent, held) = esl_listener(&fleet.hosts[0].addr, false);
    let (hangs_up, _) = esl_listener(&fleet.hosts[1].addr, true);
    // pbx1, the silent one, comes first in the inventory.
    let session = fleet.session_with(&|i, _| {
        format!(
            "freeswitch_esl: \"{}\"\nwavix_regions: [\"127.0.0.1:5060\"]\n",
            if i == 0 { &silent } else { &hangs_up }
        )
    });
    let history = tmp("measure-silent-history").join("history.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(session.full_args(measure_once("8")))
        .env("SWITCHYARD_HISTORY", &history)
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Not a timing assertion: a guard so that a run that never ends fails the test
    // instead of hanging it (today's binary ran for minutes).
    let guard = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > guard {
            let _ = child.kill();
            let _ = child.wait();
            panic!("trunks measure still running after 120 s with a silent PBX");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let all = format!("{stdout}{stderr}");
    assert_eq!(status.code(), Some(1), "{all}");
    assert!(
        !held.lock().unwrap().is_empty(),
        "the silent event socket was never reached: {all}"
    );
    assert!(
        stderr.contains("one not done after 8 s is given up"),
        "{stderr}"
    );
    // pbx2 was done first and printed first, though listed second.
    let (p1, p2) = (
        stdout.find("pbx1\n").expect(&all),
        stdout.find("pbx2\n").expect(&all),
    );
    assert!(p2 < p1, "{stdout}");
    assert!(
        stdout.contains(
            "pbx1\n  error: silent: not finished after 8 s, given up while opening the event socket"
        ),
        "{stdout}"
    );
    // pbx2's event socket hung up: its own error, not a timeout.
    let pbx2 = &stdout[p2..p1];
    assert!(pbx2.contains("error: "), "{stdout}");
    assert!(!pbx2.contains("silent"), "{stdout}");
}

/// A `connection: local` host that names no event socket is refused before anything is sent:
/// the default `127.0.0.1:8021` there is whatever FreeSWITCH runs on the operator's own
/// machine (the demo fleet once reloaded it). (Issue 27, item 1.)
#[test]
fn a_local_host_without_an_event_socket_is_never_given_this_machines() {
    let fleet = Fleet::new("measure-local", 1);
    let root = tmp("measure-local-root");
    let session = fleet.session_with(&|_, _| {
        format!(
            "ansible_connection: local\nfreeswitch_conf_root: \"{}\"\nwavix_regions: [\"127.0.0.1:5060\"]\n",
            root.display()
        )
    });
    let out = session
        .without_known_hosts()
        .env(
            "SWITCHYARD_HISTORY",
            tmp("measure-local-history").join("h.db"),
        )
        .run(measure_once("20"));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.all()
            .contains("is `connection: local` and names no event socket"),
        "{}",
        out.all()
    );
    // Nothing was loaded: no probe file was ever written.
    assert!(
        !root
            .join("sip_profiles/external/switchyard-probe.xml")
            .exists(),
        "{}",
        out.all()
    );
}
