//! The real parts of a PBX's world, for tests where FreeSWITCH's behaviour is at stake:
//!
//! - [`FreeSwitch`]: a real FreeSWITCH 1.10.12 process per test PBX, with its own copy of the
//!   stock conf tree, its own loopback address (SIP profiles 5060/5080, event socket 8021 on
//!   it) and its own log/run/db folders, reached by switchyard over the host's real sshd;
//! - [`Provider`]: the trunk provider, a real Kamailio registrar (digest auth) and proxy on an
//!   address of its own, whose calls' far end is a SIPp;
//! - [`Sipp`]: SIPp processes as phones, callees and the provider's callers, and what they
//!   saw on the wire.
//!
//! Every address is in 127.0.0.0/8. `scripts/test` installs FreeSWITCH, Kamailio and SIPp;
//! a missing one fails the test that needs it (never a skip).

pub mod call;
pub mod call_did;
pub mod call_watch;
pub mod calls;
pub mod import_guide;
pub mod lifecycle;
pub mod lint;
pub mod live;
pub mod measure;
pub mod route;
pub mod standin;

use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use crate::harness::{commands, host_report};
use crate::harness::{require, run};

static NEXT_ADDR: AtomicU32 = AtomicU32::new(0);

/// A fresh loopback address for one real part (PBX, provider, phone). 127.20.0.0 and up,
/// offset by process so two test runs at once do not meet; the stand-in hosts use 127.0.0.x.
pub fn next_addr() -> String {
    let k = NEXT_ADDR.fetch_add(1, Ordering::SeqCst);
    let second = 20 + std::process::id() % 200;
    format!("127.{second}.{}.{}", k / 250, 2 + k % 250)
}

/// Where FreeSWITCH is installed: `FREESWITCH_PREFIX` (scripts/test exports what
/// scripts/install-freeswitch found), else the source-install default.
pub fn prefix() -> PathBuf {
    let p = PathBuf::from(
        std::env::var("FREESWITCH_PREFIX").unwrap_or_else(|_| "/usr/local/freeswitch".into()),
    );
    require(
        p.join("bin/freeswitch").exists() && p.join("bin/fs_cli").exists(),
        &format!(
            "a real FreeSWITCH at {} (bin/freeswitch, bin/fs_cli): scripts/install-freeswitch",
            p.display()
        ),
    );
    p
}

/// The stock conf tree every test PBX starts from (`FREESWITCH_STOCK_CONF`, else the
/// install's own `etc/freeswitch`).
fn stock_conf() -> PathBuf {
    match std::env::var("FREESWITCH_STOCK_CONF") {
        Ok(p) => PathBuf::from(p),
        Err(_) => prefix().join("etc/freeswitch"),
    }
}

/// The event socket password of every test PBX.
pub const ESL_PASSWORD: &str = "ClueCon";

/// One real FreeSWITCH process, stopped (by pid) when dropped.
pub struct FreeSwitch {
    pub addr: String,
    pub dir: PathBuf,
}

impl FreeSwitch {
    /// Copy the stock conf tree into `hdir/conf`, changed only where this machine needs it:
    /// - `local_ip_v4` set to the PBX's own address (profiles and `$${domain}` follow it);
    /// - `stun-set` of the external addresses replaced by `set` to that address (no internet
    ///   here: a failed STUN lookup keeps mod_sofia from loading at all);
    /// - the event socket on that address instead of `::` (one per PBX);
    /// - the internal profile's WebSocket bindings (`:5066`, `:7443` on every address)
    ///   and the IPv6 profiles left out (they would collide between PBXes).
    ///
    /// Owned by `freeswitch`, as on a packaged PBX.
    pub fn lay_out(hdir: &Path, addr: &str) {
        let conf = hdir.join("conf");
        std::fs::create_dir_all(hdir).unwrap();
        run(Command::new("cp").arg("-a").arg(stock_conf()).arg(&conf));
        let edit = |rel: &str, f: &dyn Fn(String) -> String| {
            let p = conf.join(rel);
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
            let new = f(text.clone());
            assert_ne!(
                new, text,
                "stock {rel} did not have what the test set-up changes"
            );
            std::fs::write(&p, new).unwrap();
        };
        edit("vars.xml", &|t| {
            let t = t.replacen(
                "<include>",
                &format!("<include>\n  <X-PRE-PROCESS cmd=\"set\" data=\"local_ip_v4={addr}\"/>"),
                1,
            );
            t.lines()
                .map(|l| {
                    if l.contains("cmd=\"stun-set\" data=\"external_rtp_ip=") {
                        format!("  <X-PRE-PROCESS cmd=\"set\" data=\"external_rtp_ip={addr}\"/>")
                    } else if l.contains("cmd=\"stun-set\" data=\"external_sip_ip=") {
                        format!("  <X-PRE-PROCESS cmd=\"set\" data=\"external_sip_ip={addr}\"/>")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        });
        edit("autoload_configs/event_socket.conf.xml", &|t| {
            t.replace(
                "name=\"listen-ip\" value=\"::\"",
                &format!("name=\"listen-ip\" value=\"{addr}\""),
            )
        });
        edit("sip_profiles/internal.xml", &|t| {
            t.lines()
                .filter(|l| !l.contains("\"ws-binding\"") && !l.contains("\"wss-binding\""))
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        });
        for p in ["internal-ipv6.xml", "external-ipv6.xml"] {
            let from = conf.join("sip_profiles").join(p);
            if from.exists() {
                std::fs::rename(&from, from.with_extension("xml.no-ipv6")).unwrap();
            }
        }
        for d in ["log", "run", "db", "cache", "storage", "recordings"] {
            std::fs::create_dir_all(hdir.join("fs").join(d)).unwrap();
        }
        run(Command::new("chown")
            .args(["-R", "freeswitch:freeswitch"])
            .arg(&conf));
        // The host's restart command, what `systemctl restart freeswitch` is on a packaged
        // PBX: stop by pid, start again, return once FreeSWITCH is up (-ncwait).
        let f = hdir.join("fs");
        let args = format!(
            "-ncwait -nonat -conf {c} -log {f}/log -run {f}/run -db {f}/db -cache {f}/cache -storage {f}/storage -recordings {f}/recordings",
            c = conf.display(),
            f = f.display()
        );
        let script = format!(
            "#!/bin/sh\n# Restart this test PBX's FreeSWITCH (stop by pid, start, wait until it is up).\npidf={f}/run/freeswitch.pid\nif [ -f \"$pidf\" ]; then\n  pid=$(cat \"$pidf\")\n  kill \"$pid\" 2>/dev/null\n  i=0\n  while kill -0 \"$pid\" 2>/dev/null; do\n    i=$((i + 1)); [ $i -lt 300 ] || kill -9 \"$pid\" 2>/dev/null\n    sleep 0.1\n  done\n  rm -f \"$pidf\"\nfi\n{bin} {args} </dev/null >{f}/log/console.log 2>&1\n",
            f = f.display(),
            bin = prefix().join("bin/freeswitch").display(),
        );
        let restart = hdir.join("restart-freeswitch");
        std::fs::write(&restart, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&restart, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Start the FreeSWITCH laid out in `hdir` and wait until its event socket answers.
    pub fn start(hdir: &Path, addr: &str) -> FreeSwitch {
        let fs = FreeSwitch {
            addr: addr.to_string(),
            dir: hdir.to_path_buf(),
        };
        run(&mut Command::new(fs.dir.join("restart-freeswitch")));
        fs.wait_up(Duration::from_secs(60));
        fs
    }

    pub fn restart_command(&self) -> String {
        self.dir.join("restart-freeswitch").display().to_string()
    }

    pub fn fs_cli_command(&self) -> String {
        format!(
            "{} -H {} -P 8021 -p {ESL_PASSWORD} -t 10000",
            prefix().join("bin/fs_cli").display(),
            self.addr
        )
    }

    /// One API command through the real `fs_cli`, as an operator at the PBX would.
    pub fn api(&self, cmd: &str) -> String {
        let out = Command::new(prefix().join("bin/fs_cli"))
            .args([
                "-H",
                &self.addr,
                "-P",
                "8021",
                "-p",
                ESL_PASSWORD,
                "-t",
                "10000",
            ])
            .args(["-x", cmd])
            .output()
            .expect("run fs_cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn wait_up(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.api("status").contains("UP ") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "FreeSWITCH at {} did not come up; log:\n{}",
                self.addr,
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("fs/run/freeswitch.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    pub fn log(&self) -> String {
        String::from_utf8_lossy(
            &std::fs::read(self.dir.join("fs/log/freeswitch.log")).unwrap_or_default(),
        )
        .into_owned()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// A gateway's `<state>` and `<status>` from `sofia xmlstatus gateway`.
    pub fn gateway(&self, name: &str) -> (String, String) {
        let x = self.api(&format!("sofia xmlstatus gateway {name}"));
        let tag = |t: &str| {
            x.split(&format!("<{t}>"))
                .nth(1)
                .and_then(|r| r.split(&format!("</{t}>")).next())
                .unwrap_or("")
                .to_string()
        };
        (tag("state"), tag("status"))
    }

    /// Poll until `gateway`'s state is `state` (and status `status` if given).
    pub fn wait_gateway(&self, name: &str, state: &str, status: Option<&str>, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let (st, su) = self.gateway(name);
            if st == state && status.is_none_or(|s| s == su) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gateway {name} on {} is {st}/{su}, not {state}/{status:?} after {limit:?}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn stop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            let _ = std::fs::remove_file(self.dir.join("fs/run/freeswitch.pid"));
        }
    }
}

impl Drop for FreeSwitch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a wrong trunk password gets from the provider.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WrongPassword {
    /// `403 Forbidden` (most providers).
    Forbidden,
    /// A new `401` challenge (the variant some providers run).
    Challenge,
}

/// The trunk provider: a real Kamailio (registrar with digest auth, OPTIONS responder,
/// proxy both ways; `tests/fixtures/provider/kamailio.cfg`) at `addr:5060`, whose outbound
/// calls go to a SIPp callee at `addr:5070` that the test starts ([`Provider::callee`]).
pub struct Provider {
    pub addr: String,
    pub dir: PathBuf,
    pub user: String,
    password: String,
    wrong: WrongPassword,
    child: Option<Child>,
}

pub const PROVIDER_REALM: &str = "sip.test";
pub const TRUNK_USER: &str = "trunk1";
pub const TRUNK_PASSWORD: &str = "secret1";

impl Provider {
    pub fn start(dir: &Path, wrong: WrongPassword) -> Provider {
        require(
            which("kamailio"),
            "kamailio (Debian package kamailio): the trunk provider's registrar",
        );
        require(which("sipp"), "sipp (Debian package sip-tester)");
        let addr = next_addr();
        let dir = dir.join(format!("provider-{addr}"));
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let mut p = Provider {
            addr,
            dir,
            user: TRUNK_USER.into(),
            password: TRUNK_PASSWORD.into(),
            wrong,
            child: None,
        };
        p.launch();
        p
    }

    fn launch(&mut self) {
        let cfg = include_str!("../../fixtures/provider/kamailio.cfg")
            .replace("@IP@", &self.addr)
            .replace("@PORT@", "5060")
            .replace("@REALM@", PROVIDER_REALM)
            .replace("@USER@", &self.user)
            .replace("@PASSWORD@", &self.password)
            .replace(
                "@WRONG@",
                match self.wrong {
                    WrongPassword::Forbidden => "403",
                    WrongPassword::Challenge => "401",
                },
            )
            .replace("@UAS@", &format!("{}:5070", self.addr));
        let path = self.dir.join("kamailio.cfg");
        std::fs::write(&path, cfg).unwrap();
        let log = std::fs::File::create(self.dir.join("kamailio.log")).unwrap();
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&path)
            .arg("-P")
            .arg(self.dir.join("kamailio.pid"))
            .arg("-Y")
            .arg(self.dir.join("run"))
            .args(["-DD", "-E"])
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: Kamailio forks workers, and stopping must take them too.
            .process_group(0)
            .spawn()
            .expect("start kamailio");
        self.child = Some(child);
        self.wait_up();
    }

    /// Wait until Kamailio answers an OPTIONS.
    fn wait_up(&self) {
        let sock = UdpSocket::bind(format!("{}:0", self.addr)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let local = sock.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 2048];
        loop {
            let msg = format!(
                "OPTIONS sip:{a}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-probe{n}\r\nFrom: <sip:probe@{a}>;tag=probe\r\nTo: <sip:{a}>\r\nCall-ID: probe-{n}@{a}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                a = self.addr,
                n = Instant::now().elapsed().as_nanos()
            );
            let _ = sock.send_to(msg.as_bytes(), format!("{}:5060", self.addr));
            if let Ok(n) = sock.recv(&mut buf) {
                if buf[..n].starts_with(b"SIP/2.0 200") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "kamailio at {} did not answer: {}",
                self.addr,
                std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
            );
        }
    }

    /// The provider accepts another password from now on (Kamailio restarted with it).
    pub fn set_password(&mut self, password: &str) {
        self.stop();
        self.password = password.into();
        self.launch();
    }

    /// The provider goes away (unreachable) until [`Provider::resume`]: Kamailio and its
    /// workers (its process group) are stopped.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let group = format!("-{}", c.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = c.wait();
        }
    }

    pub fn resume(&mut self) {
        if self.child.is_none() {
            self.launch();
        }
    }

    /// The provider's call side: a SIPp that takes the calls the PBX sends to the trunk,
    /// answering them (`None`) or refusing with a SIP code.
    pub fn callee(&self, refuse: Option<u16>) -> Sipp {
        Sipp::callee(&self.dir, &self.addr, 5070, refuse)
    }

    /// A call from the provider to the PBX: sent to this registrar for the trunk account
    /// (relayed to the PBX's registered Contact, DID in `To`) when `to_pbx` is `None`, or
    /// straight to the PBX's external profile at `to_pbx` with the DID in the request URI
    /// (what an IP-auth provider does). Runs to its end.
    pub fn call(&self, did: &str, caller: &str, to_pbx: Option<&str>) -> Sipp {
        let (target, service) = match to_pbx {
            None => (format!("{}:5060", self.addr), self.user.clone()),
            Some(pbx) => (format!("{pbx}:5080"), did.to_string()),
        };
        Sipp::run(
            &self.dir,
            "provider_call.xml",
            Some(&target),
            &self.addr,
            5091,
            &[
                "-s",
                &service,
                "-key",
                "did",
                did,
                "-key",
                "caller",
                caller,
                "-key",
                "domain",
                PROVIDER_REALM,
            ],
        )
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn which(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// One SIPp process and the messages it sent and received (its `-trace_msg` log).
pub struct Sipp {
    child: Option<Child>,
    pub log: PathBuf,
    pub status: Option<i32>,
}

/// One SIP message from a SIPp trace: `sent` or received, and its first line.
#[derive(Debug, Clone)]
pub struct Msg {
    pub sent: bool,
    pub first: String,
    pub text: String,
}

static NEXT_SIPP: AtomicU32 = AtomicU32::new(0);

impl Sipp {
    fn command(
        dir: &Path,
        scenario: &str,
        target: Option<&str>,
        addr: &str,
        port: u16,
        extra: &[&str],
    ) -> (Command, PathBuf) {
        let n = NEXT_SIPP.fetch_add(1, Ordering::SeqCst);
        let stem = Path::new(scenario)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let log = dir.join(format!("sipp-{n}-{stem}.log"));
        let mut c = Command::new("sipp");
        if let Some(t) = target {
            c.arg(t);
        }
        let path = if scenario.contains('/') {
            PathBuf::from(scenario)
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/sipp")
                .join(scenario)
        };
        c.arg("-sf")
            .arg(path)
            .args([
                "-i",
                addr,
                "-p",
                &port.to_string(),
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "40",
                "-timeout_error",
            ])
            .args(["-trace_msg", "-message_file"])
            .arg(&log)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log.with_extension("stderr")).unwrap());
        (c, log)
    }

    /// Run a client scenario to its end.
    pub fn run(
        dir: &Path,
        scenario: &str,
        target: Option<&str>,
        addr: &str,
        port: u16,
        extra: &[&str],
    ) -> Sipp {
        let (mut c, log) = Sipp::command(dir, scenario, target, addr, port, extra);
        let status = c.status().expect("run sipp").code();
        Sipp {
            child: None,
            log,
            status,
        }
    }

    /// A callee listening at `addr:port` for one call (in the background).
    pub fn callee(dir: &Path, addr: &str, port: u16, refuse: Option<u16>) -> Sipp {
        // SIPp checks a status line's code when it loads the scenario, before any `-key`
        // is substituted: the refusing scenario is written out per code.
        let scenario = match refuse {
            None => "answer.xml".to_string(),
            Some(code) => {
                let text = include_str!("../../fixtures/sipp/refuse.xml")
                    .replace("[code]", &code.to_string());
                let p = dir.join(format!("refuse-{code}.xml"));
                std::fs::write(&p, text).unwrap();
                p.display().to_string()
            }
        };
        let (mut c, log) = Sipp::command(dir, &scenario, None, addr, port, &[]);
        let child = c.spawn().expect("start sipp");
        // SIPp binds its port at once; give it a moment before a call can reach it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while UdpSocket::bind(format!("{addr}:{port}")).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        Sipp {
            child: Some(child),
            log,
            status: None,
        }
    }

    /// A phone (directory user `user`, password `password`) on its own address dials
    /// `number` through the PBX's internal profile; runs to its end.
    pub fn dial(dir: &Path, pbx: &str, user: &str, password: &str, number: &str) -> Sipp {
        let phone = next_addr();
        Sipp::run(
            dir,
            "phone.xml",
            Some(&format!("{pbx}:5060")),
            &phone,
            5090,
            &[
                "-s", number, "-key", "user", user, "-key", "domain", pbx, "-au", user, "-ap",
                password,
            ],
        )
    }

    /// A phone registers as `user` on the PBX and answers the next call (in the background).
    pub fn phone_answering(dir: &Path, pbx: &str, user: &str, password: &str) -> Sipp {
        let phone = next_addr();
        let callee = Sipp::callee(dir, &phone, 5090, None);
        let reg = Sipp::run(
            dir,
            "register.xml",
            Some(&format!("{pbx}:5060")),
            &phone,
            5095,
            &[
                "-key",
                "user",
                user,
                "-key",
                "domain",
                pbx,
                "-key",
                "contact",
                &format!("{phone}:5090"),
                "-au",
                user,
                "-ap",
                password,
            ],
        );
        assert_eq!(
            reg.status,
            Some(0),
            "phone {user} did not register: {:#?}",
            reg.messages()
        );
        callee
    }

    /// Wait (up to `limit`) for a background SIPp to finish; kill it after that.
    pub fn finish(&mut self, limit: Duration) -> &mut Sipp {
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + limit;
            loop {
                if let Some(s) = c.try_wait().unwrap() {
                    self.status = s.code();
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = c.kill();
                    self.status = c.wait().ok().and_then(|s| s.code());
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self
    }

    pub fn messages(&self) -> Vec<Msg> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.split("----------------------------------------------- ")
            .filter_map(|block| {
                let mut lines = block.lines();
                lines.next()?; // time stamp
                let kind = lines.next()?;
                let sent = kind.contains("sent");
                let rest: Vec<&str> = lines.skip_while(|l| l.trim().is_empty()).collect();
                let first = rest.first()?.trim().to_string();
                Some(Msg {
                    sent,
                    first,
                    text: rest.join("\n"),
                })
            })
            .collect()
    }

    /// The request URIs of the INVITEs this SIPp received.
    pub fn invites_received(&self) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|m| !m.sent && m.first.starts_with("INVITE "))
            .map(|m| m.first.split_whitespace().nth(1).unwrap_or("").to_string())
            .collect()
    }

    /// The final response this SIPp received for its INVITE (a code >= 200).
    pub fn final_code(&self) -> Option<u16> {
        self.messages()
            .into_iter()
            .filter(|m| !m.sent && m.first.starts_with("SIP/2.0 ") && m.text.contains(" INVITE"))
            .filter_map(|m| m.first.split_whitespace().nth(1)?.parse::<u16>().ok())
            .rfind(|c| *c >= 200 && *c != 407)
    }

    /// Whether the far end hung up this call (a BYE received).
    pub fn got_bye(&self) -> bool {
        self.messages()
            .iter()
            .any(|m| !m.sent && m.first.starts_with("BYE "))
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The user part of a SIP URI (`sip:USER@host;...`).
pub fn uri_user(uri: &str) -> &str {
    uri.trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap_or("")
}

/// One real PBX (sshd + FreeSWITCH) and its trunk provider, with helpers for the shipped
/// Wavix playbook against them.
pub struct World {
    pub fleet: crate::harness::Fleet,
    pub provider: Provider,
}

impl World {
    pub fn new(tag: &str, wrong: WrongPassword) -> World {
        let mut fleet = crate::harness::Fleet::new(tag, 0);
        fleet.add_real_host("pbx1");
        let provider = Provider::start(&fleet.dir, wrong);
        World { fleet, provider }
    }

    pub fn pbx(&self) -> &crate::harness::TestHost {
        &self.fleet.hosts[0]
    }

    pub fn fs(&self) -> &FreeSwitch {
        self.pbx().freeswitch.as_ref().expect("a real FreeSWITCH")
    }

    /// The test inventory for this PBX: the trunk registers with the provider
    /// (`wavix_proxy` = its address, realm `sip.test`), pings every 5 s, then `extra` vars.
    pub fn inventory(&self, file: &str, extra: &str) -> PathBuf {
        let vars = self.vars(extra);
        self.fleet.inventory(file, &|_, _| vars.clone())
    }

    fn vars(&self, extra: &str) -> String {
        format!(
            "wavix_proxy: \"{}\"\nwavix_ping_seconds: 5\n{extra}",
            self.provider.addr
        )
    }

    /// A session whose inventory is [`World::inventory`]'s with `extra` vars.
    pub fn session(&self, extra: &str) -> crate::session::Session<'_> {
        let vars = self.vars(extra);
        self.fleet.session_with(&|_, _| vars.clone())
    }

    /// `switchyard apply --json` with the shipped playbook.
    pub fn apply(&self, inv: &Path, extra: &[&str]) -> crate::harness::Out {
        let session = self.fleet.session_on(inv);
        session.run([&["apply", "--json"][..], extra].concat()).out
    }
}
