//! Issue 21: a hostile PBX must not reach the controller or the fleet's monitoring. The
//! attacker owns one PBX's `freeswitch` user, so it decides what that PBX's event socket and
//! `sofia xmlstatus` say. Here each PBX's event socket is a small server of the test's own
//! (`FakeEsl`), on the PBX's address behind its real sshd, reached exactly as `watch --events`
//! reaches a real FreeSWITCH: an SSH `direct-tcpip` channel through that PBX's sshd.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;

/// What one fake event socket does.
#[derive(Clone)]
enum Mode {
    /// Answers as FreeSWITCH does; every gateway in `state`/`ping`; events on demand.
    Good(&'static str, &'static str),
    /// After the subscription's reply, one header line that never ends (`bytes` of it).
    EndlessLine(usize),
    /// `n` events of almost 4 MiB each before the reply to `event plain`.
    Flood(usize),
    /// `sofia xmlstatus` and events whose state carries a line break and forged lines.
    Inject(&'static str),
    /// The gateway flaps `n` times right after the subscription.
    Flap(usize),
}

struct FakeEsl {
    /// `IP:PORT` as the PBX's sshd reaches it.
    addr: String,
    subscribed: Arc<Mutex<Vec<TcpStream>>>,
}

fn event(state: &str, ping: &str) -> Vec<u8> {
    let body = format!(
        "Event-Name: CUSTOM\nCore-UUID: fake\nEvent-Subclass: sofia%3A%3Agateway_state\nGateway: wavix\nState: {state}\nPing-Status: {ping}\n\n"
    );
    format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
        body.len()
    )
    .into_bytes()
}

fn xmlstatus(name: &str, state: &str, status: &str) -> Vec<u8> {
    let body = format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n  <gateway>\n    <name>{name}</name>\n    <profile>external</profile>\n    <pingfreq>0</pingfreq>\n    <pingcount>0</pingcount>\n    <state>{state}</state>\n    <status>{status}</status>\n  </gateway>\n");
    format!(
        "Content-Type: api/response\nContent-Length: {}\n\n{body}",
        body.len()
    )
    .into_bytes()
}

impl FakeEsl {
    fn start(ip: &str, mode: Mode) -> FakeEsl {
        let l = TcpListener::bind(format!("{ip}:0")).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let subscribed = Arc::new(Mutex::new(Vec::new()));
        let subs = subscribed.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let (mode, subs) = (mode.clone(), subs.clone());
                std::thread::spawn(move || {
                    let _ = serve(s, mode, subs);
                });
            }
        });
        FakeEsl { addr, subscribed }
    }

    /// Push a state change to every subscribed connection.
    fn send(&self, state: &str, ping: &str) {
        for s in self.subscribed.lock().unwrap().iter_mut() {
            let _ = s.write_all(&event(state, ping));
        }
    }
}

fn serve(s: TcpStream, mode: Mode, subs: Arc<Mutex<Vec<TcpStream>>>) -> std::io::Result<()> {
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    w.write_all(b"Content-Type: auth/request\n\n")?;
    loop {
        let mut cmd = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line.trim().is_empty() {
                if !cmd.is_empty() {
                    break;
                }
                continue;
            }
            cmd.push_str(line.trim_end());
        }
        if cmd.starts_with("auth ") {
            w.write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")?;
        } else if cmd.starts_with("event ") {
            if let Mode::Flood(n) = mode {
                let filler = "y".repeat(4 * 1024 * 1024 - 4096);
                let body = format!("Event-Name: CUSTOM\nX-Filler: {filler}\n\n");
                let m = format!(
                    "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
                    body.len()
                );
                for _ in 0..n {
                    w.write_all(m.as_bytes())?;
                }
            }
            w.write_all(
                b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n",
            )?;
            match mode {
                Mode::EndlessLine(bytes) => {
                    w.write_all(b"Content-Type: ")?;
                    let chunk = vec![b'X'; 1024 * 1024];
                    for _ in 0..bytes / chunk.len() {
                        w.write_all(&chunk)?;
                    }
                }
                Mode::Flap(n) => {
                    for k in 0..n {
                        let (st, ping) = if k % 2 == 0 {
                            ("FAIL_WAIT", "DOWN")
                        } else {
                            ("REGED", "UP")
                        };
                        w.write_all(&event(st, ping))?;
                    }
                }
                Mode::Inject(forged) => {
                    let enc = forged
                        .bytes()
                        .map(|b| {
                            if b.is_ascii_alphanumeric() {
                                (b as char).to_string()
                            } else {
                                format!("%{b:02X}")
                            }
                        })
                        .collect::<String>();
                    w.write_all(&event(&format!("FAIL_WAIT{enc}"), "DOWN"))?;
                }
                _ => {}
            }
            subs.lock().unwrap().push(w.try_clone()?);
        } else if let Some(name) = cmd.strip_prefix("api sofia xmlstatus gateway ") {
            let answer = match mode {
                Mode::Good(st, ping) => xmlstatus(name, st, ping),
                Mode::Inject(forged) => {
                    let forged = forged.replace('\n', "&#10;").replace('"', "&quot;");
                    xmlstatus(name, &format!("REGED{forged}"), "UP")
                }
                _ => xmlstatus(name, "REGED", "UP"),
            };
            w.write_all(&answer)?;
        } else {
            w.write_all(b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")?;
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// `watch --events` over `fleet`, each host's event socket at `esl[i]`; stderr collected.
struct Agent {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Agent {
    fn start(fleet: &Fleet, esl: &[&FakeEsl], extra: &[&str], nofile: Option<u32>) -> Agent {
        let session = fleet.session_with(&|i, _| {
            format!(
                "freeswitch_esl: \"{}\"\nfreeswitch_esl_password: ClueCon\n",
                esl[i].addr
            )
        });
        let port = free_port();
        let metrics = format!("127.0.0.1:{port}");
        let args =
            session.full_args([&["watch", "--events", "--metrics", &metrics][..], extra].concat());
        let mut cmd = match nofile {
            // The descriptor limit a systemd service gets by default, scaled to the test.
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_switchyard"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_switchyard")),
        };
        let mut child = cmd
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (e, pipe) = (stderr.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut e = e.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        Agent {
            child,
            port,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until `ok` holds for the metrics page.
    fn wait_page(&self, what: &str, limit: Duration, ok: &dyn Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let page = get(self.port);
            if ok(&page) {
                return page;
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}\npage:\n{page}\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_stderr(&self, what: &str, limit: Duration) {
        let start = Instant::now();
        while !self.stderr().contains(what) {
            assert!(
                start.elapsed() < limit,
                "no `{what}` on stderr within {limit:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The controller's peak resident memory (VmHWM), MiB.
    fn peak_rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap()
            / 1024
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const REGED1: &str = "switchyard_gateway_state{gateway=\"wavix\",host=\"pbx1\",state=\"REGED\"} 1";

/// Item 1: one PBX sends a header line that never ends, another 60 events of 4 MiB before
/// answering `event plain`. Before the fix the controller grew by every byte (1.5 GiB in the
/// report); now each is cut off at its bound, shown UNKNOWN with the reason, and the healthy
/// PBX's changes still reach the metrics.
#[test]
fn a_pbx_flooding_its_event_socket_is_cut_off_and_the_others_never_notice() {
    let fleet = Fleet::new("live-flood", 3);
    let good = FakeEsl::start(&fleet.hosts[0].addr, Mode::Good("REGED", "UP"));
    let endless = FakeEsl::start(&fleet.hosts[1].addr, Mode::EndlessLine(300 << 20));
    let flood = FakeEsl::start(&fleet.hosts[2].addr, Mode::Flood(60));
    let agent = Agent::start(&fleet, &[&good, &endless, &flood], &["--every", "1h"], None);

    agent.wait_stderr(
        "pbx2: gateways UNKNOWN: event socket broke a limit: a header line longer than 8 KiB",
        Duration::from_secs(60),
    );
    agent.wait_stderr(
        "pbx3: gateways UNKNOWN: event socket broke a limit: more than 4 MiB",
        Duration::from_secs(60),
    );
    let page = agent.wait_page("pbx1 REGED", Duration::from_secs(30), &|p| {
        p.contains(REGED1)
    });
    for h in ["pbx2", "pbx3"] {
        assert!(
            page.contains(&format!(
                "switchyard_gateway_healthy{{gateway=\"wavix\",host=\"{h}\"}} -1"
            )),
            "{h} is not shown unknown:\n{page}"
        );
    }
    // The healthy PBX's change still arrives, while the others misbehave.
    good.send("FAIL_WAIT", "DOWN");
    agent.wait_page("pbx1's change", Duration::from_secs(10), &|p| {
        p.contains("switchyard_gateway_healthy{gateway=\"wavix\",host=\"pbx1\"} 0")
    });
    let peak = agent.peak_rss_mib();
    assert!(
        peak < 150,
        "the controller's memory reached {peak} MiB while 540 MiB came from two PBXes"
    );
    // They are retried with backoff, not given up on.
    agent.wait_stderr("pbx2: gateways UNKNOWN", Duration::from_secs(1));
    assert!(get(agent.port).contains("switchyard_event_socket_disconnects_total{host=\"pbx2\"}"));
}

/// Run `promtool check metrics` on a page: (success, what it printed).
fn promtool(page: &str) -> (bool, String) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    p.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Items 6 and 7: pbx2's owner puts line breaks and forged lines into the gateway state its
/// `sofia xmlstatus` (`&#10;`) and its events (`%0A`) report, to make pbx1 (down) look
/// healthy on the metrics page and in the log. The page has one series per real gateway,
/// passes promtool, and the forged text reaches neither.
#[test]
fn forged_gateway_states_neither_add_metrics_lines_nor_log_lines() {
    let fleet = Fleet::new("live-inject", 2);
    let down = FakeEsl::start(&fleet.hosts[0].addr, Mode::Good("FAIL_WAIT", "DOWN"));
    let forged = "\nswitchyard_gateway_healthy{gateway=\"wavix\",host=\"pbx1\"} 1\nwatch: pbx1: gateway wavix is healthy again: REGED UP";
    let liar = FakeEsl::start(&fleet.hosts[1].addr, Mode::Inject(forged));
    let agent = Agent::start(&fleet, &[&down, &liar], &["--every", "1h"], None);

    let page = agent.wait_page("both PBXes read", Duration::from_secs(30), &|p| {
        p.contains("switchyard_gateway_healthy{gateway=\"wavix\",host=\"pbx1\"} 0")
            && p.contains("switchyard_gateway_states_rejected_total{host=\"pbx2\"}")
    });
    let pbx1_healthy: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("switchyard_gateway_healthy{gateway=\"wavix\",host=\"pbx1\""))
        .collect();
    assert_eq!(
        pbx1_healthy,
        ["switchyard_gateway_healthy{gateway=\"wavix\",host=\"pbx1\"} 0"],
        "{page}"
    );
    assert!(
        page.contains(
            "switchyard_gateway_state{gateway=\"wavix\",host=\"pbx2\",state=\"UNKNOWN\"} 1"
        ),
        "{page}"
    );
    let (ok, said) = promtool(&page);
    assert!(ok, "promtool refused the page: {said}\n{page}");
    // No line of the log starts where the PBX wanted one.
    std::thread::sleep(Duration::from_millis(500));
    let err = agent.stderr();
    assert!(
        !err.lines().any(
            |l| l.starts_with("watch: pbx1: gateway wavix is healthy again")
                || l.starts_with("switchyard_")
        ),
        "{err}"
    );
}

/// The page without `--events` (the round's readings) passes promtool too.
#[test]
fn the_round_metrics_page_passes_promtool() {
    let fleet = Fleet::new("live-promtool", 1);
    let session = fleet.session();
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(session.full_args(["watch", "--every", "1h", "--metrics", &metrics]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let page = loop {
        let p = get(port);
        if p.contains("switchyard_rounds_total 1") {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no round: {p}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        page.contains("switchyard_gateway_state{gateway=\"wavix\",host=\"pbx1\""),
        "{page}"
    );
    let (ok, said) = promtool(&page);
    assert!(ok, "promtool refused the page: {said}\n{page}");
}

/// A webhook that accepts and never answers; how many of its connections were open at once.
fn silent_webhook() -> (u16, Arc<Mutex<(usize, usize)>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let open = Arc::new(Mutex::new((0usize, 0usize))); // (now, most)
    let o = open.clone();
    // One thread polls everything: before a new connection is counted, every earlier one is
    // drained and dropped if its peer closed it. A poster closes its connection before it
    // opens the next (loopback delivers the FIN first), so what is counted is what the
    // controller really held at once, never a close a busy reader thread had not seen yet.
    std::thread::spawn(move || {
        let mut conns: Vec<TcpStream> = Vec::new();
        let mut buf = [0u8; 4096];
        let drain = |conns: &mut Vec<TcpStream>, buf: &mut [u8]| {
            conns.retain_mut(|c| loop {
                match c.read(buf) {
                    Ok(0) => break false,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                    Err(_) => break false,
                }
            });
        };
        loop {
            match l.accept() {
                Ok((c, _)) => {
                    c.set_nonblocking(true).unwrap();
                    drain(&mut conns, &mut buf);
                    conns.push(c);
                    let mut o = o.lock().unwrap();
                    o.0 = conns.len();
                    o.1 = o.1.max(o.0);
                }
                Err(_) => {
                    drain(&mut conns, &mut buf);
                    o.lock().unwrap().0 = conns.len();
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    });
    (port, open)
}

/// Item 3: under a service's descriptor limit (scaled down: 256), pbx2's gateway flaps
/// 3,000 times towards a webhook that never answers, and 400 idle clients hold the metrics
/// port. pbx1 loses its connection meanwhile: it must reconnect (no `Too many open files`),
/// the page must still be served, and the history still written.
#[test]
fn a_flapping_trunk_and_idle_metrics_clients_leave_the_others_monitored() {
    let fleet = Fleet::new("live-fds", 2);
    let good = FakeEsl::start(&fleet.hosts[0].addr, Mode::Good("REGED", "UP"));
    let flapper = FakeEsl::start(&fleet.hosts[1].addr, Mode::Flap(3000));
    let (hook_port, hook) = silent_webhook();
    let webhook = format!("http://127.0.0.1:{hook_port}/hook");
    let history = fleet.dir.join("h.db");
    let agent = Agent::start(
        &fleet,
        &[&good, &flapper],
        &[
            "--every",
            "2s",
            "--webhook",
            &webhook,
            "--history",
            history.to_str().unwrap(),
        ],
        Some(256),
    );
    agent.wait_page("pbx1 REGED", Duration::from_secs(30), &|p| {
        p.contains(REGED1)
    });
    agent.wait_page("alerts dropped", Duration::from_secs(30), &|p| {
        p.lines()
            .any(|l| l.starts_with("switchyard_webhook_dropped_total ") && !l.ends_with(" 0"))
    });
    let idle: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", agent.port)).ok())
        .collect();
    assert!(idle.len() > 300, "only {} idle connections", idle.len());

    // pbx1's connection is cut while all that goes on: it comes back.
    assert!(fleet.hosts[0].kill_sessions() > 0);
    agent.wait_page("pbx1 reconnected", Duration::from_secs(30), &|p| {
        p.contains(REGED1)
            && p.contains("switchyard_event_socket_disconnects_total{host=\"pbx1\"} 1")
            && p.contains("switchyard_event_socket_up{host=\"pbx1\"} 1")
    });
    good.send("FAIL_WAIT", "DOWN");
    agent.wait_page("pbx1's change", Duration::from_secs(10), &|p| {
        p.contains("switchyard_gateway_healthy{gateway=\"wavix\",host=\"pbx1\"} 0")
    });
    // Rounds go on, and record their history.
    let rounds = |p: &str| {
        p.lines()
            .find_map(|l| l.strip_prefix("switchyard_rounds_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let now = rounds(&get(agent.port));
    agent.wait_page("another round", Duration::from_secs(30), &|p| {
        rounds(p) > now
    });
    drop(idle);
    let err = agent.stderr();
    assert!(!err.contains("Too many open files"), "{err}");
    assert!(!err.contains("cannot record history"), "{err}");
    let most = hook.lock().unwrap().1;
    assert!(
        most <= switchyard::agent::live::WEBHOOK_POSTS,
        "{most} webhook connections at once"
    );
}

/// A TLS certificate authority of the test's own, and a certificate for 127.0.0.1 it signed.
struct TestCa {
    pem: String,
    leaf: rustls::pki_types::CertificateDer<'static>,
    leaf_key: Vec<u8>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("switchyard test CA {name}"),
        );
        let ca =
            rcgen::CertifiedIssuer::self_signed(p, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        TestCa {
            pem: ca.pem(),
            leaf: leaf.der().clone(),
            leaf_key: key.serialize_der(),
        }
    }
}

/// What a TLS webhook receiver saw: JSON bodies, and TLS errors (an alert the client sent).
#[derive(Default)]
struct Received {
    bodies: Vec<serde_json::Value>,
    tls_errors: Vec<String>,
}

/// An HTTPS webhook receiver on 127.0.0.1 presenting `ca`'s certificate; answers 200.
fn tls_webhook(ca: &TestCa) -> (u16, Arc<Mutex<Received>>) {
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![ca.leaf.clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(ca.leaf_key.clone().into()),
            )
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Received::default()));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let (config, g) = (config.clone(), g.clone());
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, s);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = match tls.read(&mut chunk) {
                        Ok(0) => return,
                        Ok(n) => n,
                        Err(e) => {
                            g.lock().unwrap().tls_errors.push(e.to_string());
                            return;
                        }
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some(h) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text[..h]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length").then(|| v.trim())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= h + 4 + len {
                        if let Ok(v) = serde_json::from_slice(&buf[h + 4..h + 4 + len]) {
                            g.lock().unwrap().bodies.push(v);
                        }
                        let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                        let _ = tls.flush();
                        return;
                    }
                }
            });
        }
    });
    (port, got)
}

/// `watch --events` on one PBX, its alerts to `url`, trusting the CAs of `ca_file`.
fn https_agent(fleet: &Fleet, esl: &FakeEsl, url: &str, ca_file: &std::path::Path) -> Agent {
    let ca = ca_file.to_str().unwrap();
    let args = ["--every", "1h", "--webhook", url, "--webhook-ca", ca];
    Agent::start(fleet, &[esl], &args, None)
}

fn wait_until(what: &str, limit: Duration, ok: &dyn Fn() -> bool, stderr: &dyn Fn() -> String) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}\nstderr:\n{}",
            stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 26 item 5: hosted alert receivers speak only HTTPS. A receiver on 127.0.0.1 whose
/// certificate comes from a private CA gets the trunk-down alert when the agent is told to
/// trust that CA (`--webhook-ca`). Before, `https://` was refused at start.
#[test]
fn an_https_webhook_gets_the_alert_through_the_ca_it_was_told_to_trust() {
    let fleet = Fleet::new("live-https", 1);
    let down = FakeEsl::start(&fleet.hosts[0].addr, Mode::Good("FAIL_WAIT", "DOWN"));
    let ca = TestCa::new("a");
    let ca_file = fleet.dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (port, got) = tls_webhook(&ca);
    let url = format!("https://127.0.0.1:{port}/hook?token=t");
    let agent = https_agent(&fleet, &down, &url, &ca_file);
    wait_until(
        "the alert over TLS",
        Duration::from_secs(30),
        &|| !got.lock().unwrap().bodies.is_empty(),
        &|| agent.stderr(),
    );
    let got = got.lock().unwrap();
    let alert = &got.bodies[0];
    assert_eq!(alert["host"], "pbx1", "{alert}");
    assert_eq!(alert["gateway"], "wavix", "{alert}");
    assert_eq!(alert["healthy"], false, "{alert}");
    assert!(got.tls_errors.is_empty(), "{:?}", got.tls_errors);
    assert!(
        !agent.stderr().contains("watch: webhook"),
        "{}",
        agent.stderr()
    );
}

/// The agent never accepts a certificate it cannot verify: a receiver whose certificate a
/// different CA signed (someone on the path, or a misconfigured receiver) is refused during
/// the handshake (the receiver sees the client's `UnknownCA` alert), gets no alert, and the
/// log says why.
#[test]
fn an_https_webhook_signed_by_another_ca_gets_nothing() {
    let fleet = Fleet::new("live-https-bad", 1);
    let down = FakeEsl::start(&fleet.hosts[0].addr, Mode::Good("FAIL_WAIT", "DOWN"));
    let trusted = TestCa::new("trusted");
    let ca_file = fleet.dir.join("ca.pem");
    std::fs::write(&ca_file, &trusted.pem).unwrap();
    let (port, got) = tls_webhook(&TestCa::new("impostor"));
    let url = format!("https://127.0.0.1:{port}/hook");
    let agent = https_agent(&fleet, &down, &url, &ca_file);
    agent.wait_stderr(
        &format!("watch: webhook {url}: TLS:"),
        Duration::from_secs(30),
    );
    let err = agent.stderr();
    assert!(err.contains("certificate"), "{err}");
    let got = got.lock().unwrap();
    assert!(got.bodies.is_empty(), "{:?}", got.bodies);
    assert!(
        got.tls_errors.iter().any(|e| e.contains("UnknownCA")),
        "{:?}",
        got.tls_errors
    );
}

/// A webhook that accepts TCP and never answers the TLS handshake: each POST gives up after
/// its time bound and at most `WEBHOOK_POSTS` connections are ever open to it, while the
/// gateway flaps 200 times.
#[test]
fn a_silent_https_webhook_holds_at_most_the_post_limit() {
    let fleet = Fleet::new("live-https-silent", 1);
    let flapper = FakeEsl::start(&fleet.hosts[0].addr, Mode::Flap(200));
    let (hook_port, hook) = silent_webhook();
    let url = format!("https://127.0.0.1:{hook_port}/hook");
    let ca_file = fleet.dir.join("ca.pem");
    std::fs::write(&ca_file, TestCa::new("a").pem).unwrap();
    let agent = https_agent(&fleet, &flapper, &url, &ca_file);
    agent.wait_stderr(
        &format!("watch: webhook {url}: no answer within 5 s"),
        Duration::from_secs(30),
    );
    let most = hook.lock().unwrap().1;
    assert!(
        (1..=switchyard::agent::live::WEBHOOK_POSTS).contains(&most),
        "{most} webhook connections at once"
    );
}

/// A CA file that holds no certificate stops the agent at start (exit 1, the file named),
/// rather than silencing every alert later.
#[test]
fn a_webhook_ca_file_without_a_certificate_stops_the_agent_at_start() {
    let fleet = Fleet::new("live-https-ca", 1);
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let ca_file = fleet.dir.join("ca.pem");
    std::fs::write(&ca_file, "# our CA, to be pasted here\n").unwrap();
    let ca = ca_file.to_str().unwrap();
    let hook = [
        "--events",
        "--webhook",
        "https://127.0.0.1:9/hook",
        "--webhook-ca",
        ca,
    ];
    let out = fleet.run("watch", &inv, &hook);
    let err = &out.stderr;
    assert_eq!(out.code, 1, "{err}");
    assert!(
        err.contains(&format!("webhook CA file {}", ca_file.display()))
            && err.contains("no PEM certificate"),
        "{err}"
    );
}
