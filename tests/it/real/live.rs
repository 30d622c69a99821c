//! `watch --events` on a real FreeSWITCH: the gateway's state changes reach the metrics
//! page and the webhook from the PBX's own event socket (through the SSH connection), the
//! trunk's recovery too, and a dropped connection shows the PBX unknown, then reconnects
//! and reads the state again.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::session::exit;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metrics(port: u16) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Wait until the metrics page has `line`.
fn wait_metric(port: u16, line: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        if metrics(port).contains(line) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "no `{line}` within {limit:?}:\n{}",
            metrics(port)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A webhook receiver: every POST body, in order.
fn webhook() -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Headers, then Content-Length bytes of body.
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some(h) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= h + 4 + len {
                        let body = &text[h + 4..h + 4 + len];
                        if let Ok(v) = serde_json::from_str(body) {
                            g.lock().unwrap().push(v);
                        }
                        break;
                    }
                }
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, got)
}

/// Wait (up to 60 s) until FreeSWITCH itself says gateway `wavix` is no longer REGED, or
/// DOWN.
fn when_freeswitch_sees_the_gateway_leave(fs: &FreeSwitch) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (state, status) = fs.gateway("wavix");
        if state != "REGED" || status == "DOWN" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "FreeSWITCH never noticed the provider left"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first webhook whose `healthy` is `healthy`, waiting for it up to 5 s.
fn wait_for_hook(
    hooks: &Arc<Mutex<Vec<serde_json::Value>>>,
    healthy: bool,
    never: &str,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(h) = hooks
            .lock()
            .unwrap()
            .iter()
            .find(|h| h["healthy"] == healthy)
        {
            return h.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{never}: {:?}",
            hooks.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn trunk_state_changes_reach_metrics_and_webhook_from_the_event_socket() {
    let mut w = World::new("live", WrongPassword::Forbidden);
    let fs_addr = w.fs().addr.clone();
    let esl =
        format!("freeswitch_esl: \"{fs_addr}:8021\"\nfreeswitch_esl_password: {ESL_PASSWORD}\n");
    let session = w.session(&esl);
    session.run(["apply", "--json"]).expect(exit::OK);

    let (hook_port, hooks) = webhook();
    let port = free_port();
    let (metrics_at, hook) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{hook_port}/hook"),
    );
    let history = w.fleet.dir.join("h.db");
    let agent = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(session.full_args(["watch", "--events", "--every", "1h"]))
        .args(["--metrics", &metrics_at, "--webhook", &hook])
        .arg("--history")
        .arg(&history)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let reged = "switchyard_gateway_state{gateway=\"wavix\",host=\"pbx1\",state=\"REGED\"} 1";
    wait_metric(port, reged, Duration::from_secs(30));
    assert!(metrics(port).contains("switchyard_gateway_healthy{gateway=\"wavix\",host=\"pbx1\"} 1"));

    // The provider goes away: once FreeSWITCH itself says the gateway is no longer REGED,
    // the metrics say so, and the webhook is told. With `--every 1h` the next drift round
    // is an hour away: only the event socket can bring the change within these waits, so
    // they are generous (a loaded CI machine must not fail them) and no lag is asserted
    // (bench/ measures how fast events reach the page).
    w.provider.stop();
    when_freeswitch_sees_the_gateway_leave(w.fs());
    wait_metric(
        port,
        "switchyard_gateway_healthy{gateway=\"wavix\",host=\"pbx1\"} 0",
        Duration::from_secs(60),
    );
    let down = wait_for_hook(&hooks, false, "no webhook for the trunk going down");
    assert_eq!(down["host"], "pbx1");
    assert_eq!(down["gateway"], "wavix");

    // It comes back: recovery reported.
    w.provider.resume();
    w.fs()
        .wait_gateway("wavix", "REGED", None, Duration::from_secs(60));
    wait_metric(port, reged, Duration::from_secs(60));
    wait_for_hook(&hooks, true, "no recovery webhook");

    // The connection to the PBX is cut: unknown, never healthy; then reconnected, the state
    // read again.
    assert!(w.pbx().kill_sessions() > 0);
    wait_metric(
        port,
        "switchyard_gateway_state{gateway=\"wavix\",host=\"pbx1\",state=\"UNKNOWN\"} 1",
        Duration::from_secs(60),
    );
    wait_metric(port, reged, Duration::from_secs(60));
    // No secret on the metrics page.
    assert!(!metrics(port).contains("secret1") && !metrics(port).contains(ESL_PASSWORD));

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status();
    let out = agent.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gateway wavix left its healthy state"),
        "{err}"
    );
    assert!(err.contains("gateway wavix is healthy again"), "{err}");
    assert!(!err.contains(ESL_PASSWORD), "{err}");
}
