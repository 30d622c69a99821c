//! Test fleet: real OpenSSH `sshd` processes on 127.0.0.x, each with its own host key, a
//! FreeSWITCH-like conf tree (the shipped `stock/conf`) and the stand-in `fs_cli`
//! (tests/fixtures), and a known_hosts file written by the test. The tool under test is the
//! real binary.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Login used by the tests: uid 0 with `/bin/sh` and a plain home, so sshd sessions do not
/// source root's `.bashrc` (real PBXes have plain shells). `scripts/test` creates it.
pub const TEST_USER: &str = "switchyard-test";

/// An unprivileged login (no root, no sudo), for permission faults. `scripts/test` creates it.
pub const NOPRIV_USER: &str = "switchyard-nopriv";

static NEXT: AtomicU32 = AtomicU32::new(0);

pub fn require(cond: bool, what: &str) {
    assert!(cond, "test prerequisite missing: {what}. Run `scripts/test`, which installs and creates what the tests need.");
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn user_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["passwd", name])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub struct TestHost {
    pub name: String,
    /// Unmounted when the host is dropped (full-disk tests).
    pub mounted: Option<PathBuf>,
    pub addr: String,
    pub port: u16,
    pub dir: PathBuf,
    pub host_pub: String,
    sshd: Option<Child>,
    /// The real FreeSWITCH of a host made by `Fleet::add_real_host` (else the stand-in).
    pub freeswitch: Option<crate::real::FreeSwitch>,
}

impl TestHost {
    pub fn conf(&self, rel: &str) -> PathBuf {
        self.dir.join("conf").join(rel)
    }
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.conf(rel))
            .unwrap_or_else(|e| panic!("{}: {rel}: {e}", self.name))
    }
    pub fn exists(&self, rel: &str) -> bool {
        self.conf(rel).exists()
    }
    /// `fs_cli` commands the stand-in has received, in order.
    /// Forget the FreeSWITCH commands logged so far.
    pub fn clear_fs_log(&self) {
        let _ = std::fs::remove_file(self.dir.join("state/commands.log"));
    }

    pub fn fs_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("state/commands.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
    pub fn fs_cli(&self) -> PathBuf {
        self.dir.join("bin/fs_cli")
    }
    /// Ask the stand-in directly (as an operator at the PBX would).
    pub fn fs(&self, cmd: &str) -> String {
        if let Some(fs) = &self.freeswitch {
            return fs.api(cmd);
        }
        run(Command::new(self.fs_cli()).args(["-x", cmd]))
    }
    /// Set the provider's accepted password for the trunk account.
    pub fn set_provider_password(&self, realm: &str, user: &str, password: &str) {
        let p = self.dir.join("bin/standin.json");
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        cfg["accounts"][realm] = serde_json::json!({ user: password });
        std::fs::write(&p, serde_json::to_string(&cfg).unwrap()).unwrap();
    }
    pub fn stop(&mut self) {
        if let Some(fs) = self.freeswitch.as_mut() {
            fs.stop();
        }
        if let Some(mut c) = self.sshd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    /// Owner name and octal mode of a conf file.
    pub fn meta(&self, rel: &str) -> (String, String, u32) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(self.conf(rel)).unwrap();
        let name = |id: u32, db: &str| {
            run(Command::new("getent").args([db, &id.to_string()]))
                .split(':')
                .next()
                .unwrap_or("")
                .to_string()
        };
        (
            name(m.uid(), "passwd"),
            name(m.gid(), "group"),
            m.mode() & 0o7777,
        )
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.stop();
        if let Some(m) = self.mounted.take() {
            let _ = Command::new("umount").arg(&m).status();
        }
    }
}

impl TestHost {
    pub fn sshd_pid(&self) -> u32 {
        self.sshd.as_ref().expect("running").id()
    }

    /// SIGKILL every process below this host's sshd (its sessions and all they run), as if
    /// the host lost power mid-command; sshd itself keeps listening.
    pub fn kill_sessions(&self) -> usize {
        let mut children: std::collections::HashMap<u32, Vec<u32>> =
            std::collections::HashMap::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(rest) = stat.rsplit_once(')') else {
                continue;
            };
            let ppid: u32 = rest
                .1
                .split_whitespace()
                .nth(1)
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            children.entry(ppid).or_default().push(pid);
        }
        let mut victims = Vec::new();
        let mut stack = children.get(&self.sshd_pid()).cloned().unwrap_or_default();
        while let Some(p) = stack.pop() {
            victims.push(p);
            stack.extend(children.get(&p).cloned().unwrap_or_default());
        }
        for p in &victims {
            let _ = Command::new("kill")
                .args(["-KILL", &p.to_string()])
                .status();
        }
        victims.len()
    }

    /// Files a write in progress (or a killed one) stages: in switchyard's private folder
    /// (`.switchyard/stage.*`), or beside their target in older versions.
    pub fn temp_leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.join("conf")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().contains("switchyard-tmp")
                    || p.to_string_lossy().contains("/.switchyard/stage")
                {
                    out.push(p.display().to_string());
                }
            }
        }
        out
    }
}

pub struct Fleet {
    pub dir: PathBuf,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    pub hosts: Vec<TestHost>,
}

impl Fleet {
    /// `n` hosts, each a real sshd on its own 127.0.0.x address.
    pub fn new(tag: &str, n: usize) -> Fleet {
        require(
            Path::new("/usr/sbin/sshd").exists(),
            "/usr/sbin/sshd (package openssh-server)",
        );
        require(user_exists("freeswitch"), "user `freeswitch`");
        require(user_exists(TEST_USER), "uid-0 test login `switchyard-test`");
        require(
            user_exists(NOPRIV_USER),
            "unprivileged test login `switchyard-nopriv`",
        );
        require(
            Path::new("/usr/bin/python3").exists(),
            "/usr/bin/python3 (the stand-in fs_cli)",
        );
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = std::env::temp_dir().join(format!("switchyard-it-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("client_key");
        run(Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "switchyard-test",
                "-f",
            ])
            .arg(&key));
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, "").unwrap();
        let mut fleet = Fleet {
            dir,
            key,
            known_hosts,
            hosts: Vec::new(),
        };
        for i in 0..n {
            fleet.add_host(&format!("pbx{}", i + 1), true);
        }
        fleet.wait_ready();
        fleet
    }

    /// Start one more host; `trusted` adds its key to known_hosts.
    pub fn add_host(&mut self, name: &str, trusted: bool) -> usize {
        self.add_host_with(name, trusted, "")
    }

    /// Like `add_host`, with extra sshd_config lines.
    pub fn add_host_with(&mut self, name: &str, trusted: bool, sshd_extra: &str) -> usize {
        let k = NEXT.fetch_add(1, Ordering::SeqCst);
        // Spread over 127.0.0.2-127.0.0.250, by process too, so parallel runs do not collide.
        let octet = 2 + ((std::process::id() * 7 + k) % 249);
        let addr = format!("127.0.0.{octet}");
        self.add_sshd_host(name, &addr, trusted, sshd_extra, &|hdir| {
            let accounts = serde_json::json!({ "sip.test": { "trunk1": "secret1" } });
            switchyard::demo::make_host(hdir, &accounts).unwrap();
        })
    }

    /// A PBX running a real FreeSWITCH (see `real`): sshd and FreeSWITCH on one address of
    /// their own, the stock conf tree in `conf/`, FreeSWITCH started and answering.
    pub fn add_real_host(&mut self, name: &str) -> usize {
        let addr = crate::real::next_addr();
        let i = self.add_sshd_host(name, &addr, true, "", &|hdir| {
            crate::real::FreeSwitch::lay_out(hdir, &addr);
        });
        self.wait_ready();
        let h = &mut self.hosts[i];
        h.freeswitch = Some(crate::real::FreeSwitch::start(&h.dir, &h.addr));
        i
    }

    /// Start sshd for a host at `addr` whose folder `make` fills (conf tree, tools).
    fn add_sshd_host(
        &mut self,
        name: &str,
        addr: &str,
        trusted: bool,
        sshd_extra: &str,
        make: &dyn Fn(&Path),
    ) -> usize {
        let addr = addr.to_string();
        let port = TcpListener::bind(format!("{addr}:0"))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let hdir = self.dir.join(name);
        make(&hdir);
        let hk = hdir.join("host_key");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&hk));
        let host_pub = std::fs::read_to_string(hdir.join("host_key.pub")).unwrap();
        let client_pub = std::fs::read_to_string(self.key.with_extension("pub")).unwrap();
        std::fs::write(hdir.join("authorized_keys"), client_pub).unwrap();
        let cfg = format!(
            "ListenAddress {addr}:{port}\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\nAllowUsers {TEST_USER} root {NOPRIV_USER} switchyard-noshell\nMaxStartups 1000:30:1000\nMaxSessions 100\n{log}{sshd_extra}",
            log = if sshd_extra.contains("LogLevel") { "" } else { "LogLevel ERROR\n" },
            hk = hk.display(),
            pid = hdir.join("sshd.pid").display(),
            ak = hdir.join("authorized_keys").display(),
        );
        std::fs::write(hdir.join("sshd_config"), cfg).unwrap();
        let mut host = TestHost {
            name: name.to_string(),
            mounted: None,
            addr,
            port,
            dir: hdir,
            host_pub,
            sshd: None,
            freeswitch: None,
        };
        self.start(&mut host);
        if trusted {
            self.trust(&host);
        }
        self.hosts.push(host);
        self.hosts.len() - 1
    }

    pub fn start(&self, host: &mut TestHost) {
        let log = std::fs::File::create(host.dir.join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(host.dir.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        host.sshd = Some(child);
    }

    pub fn trust(&self, host: &TestHost) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.known_hosts)
            .unwrap();
        let mut parts = host.host_pub.split_whitespace();
        writeln!(
            f,
            "[{}]:{} {} {}",
            host.addr,
            host.port,
            parts.next().unwrap(),
            parts.next().unwrap()
        )
        .unwrap();
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for h in &self.hosts {
            let sa: SocketAddr = format!("{}:{}", h.addr, h.port).parse().unwrap();
            while TcpStream::connect_timeout(&sa, Duration::from_millis(200)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "sshd for {} did not come up: {}",
                    h.name,
                    std::fs::read_to_string(h.dir.join("sshd.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Run `command` (apply, plan, drift, ...) with the shipped Wavix playbook, this fleet's
    /// known_hosts and `inv`, then `extra` arguments. New tests use [`Fleet::session`], which
    /// also checks exit codes and snapshots; this stays for tests written in parallel with
    /// the move to sessions, so that merging them does not break the build.
    #[allow(dead_code)]
    pub fn run(&self, command: &str, inv: &Path, extra: &[&str]) -> Out {
        let session = self.session_on(inv);
        session.run([&[command][..], extra].concat()).out
    }

    pub fn host(&self, name: &str) -> &TestHost {
        self.hosts.iter().find(|h| h.name == name).unwrap()
    }

    /// An inventory of every host, with `extra` YAML lines of vars per host (by index).
    pub fn inventory(&self, file: &str, extra: &dyn Fn(usize, &TestHost) -> String) -> PathBuf {
        self.inventory_of(file, &|_| true, extra)
    }

    /// An inventory of the hosts `keep` selects.
    pub fn inventory_of(
        &self,
        file: &str,
        keep: &dyn Fn(&TestHost) -> bool,
        extra: &dyn Fn(usize, &TestHost) -> String,
    ) -> PathBuf {
        let mut s = String::from("all:\n  children:\n    pbx:\n      vars:\n");
        s.push_str(&format!("        ansible_user: {TEST_USER}\n        ansible_become: false\n        ansible_ssh_private_key_file: {}\n        wavix_realm: sip.test\n        wavix_failover_proxy: \"\"\n        wavix_username: trunk1\n        wavix_password: secret1\n", self.key.display()));
        s.push_str("        user: {id: \"1000\", password: \"ext-pass-1000\", vm_password: \"4711\", caller_id_name: \"Main\", caller_id_number: \"16468097065\"}\n        did_routes: [{number: \"16468097065\", extension: \"1000\"}]\n        emergency_calls: trunk\n");
        s.push_str("      hosts:\n");
        for (i, h) in self.hosts.iter().enumerate().filter(|(_, h)| keep(h)) {
            let (fs_cli, restart) = match &h.freeswitch {
                Some(fs) => (fs.fs_cli_command(), fs.restart_command()),
                None => (
                    h.fs_cli().display().to_string(),
                    format!("{} --standin-restart", h.fs_cli().display()),
                ),
            };
            // A key the test gives in `extra` replaces the harness's own (an inventory that
            // gives a key twice is refused, as it should be).
            let extra = extra(i, h);
            let overridden = |key: &str| {
                extra
                    .lines()
                    .any(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))
            };
            s.push_str(&format!("        {}:\n", h.name));
            for (key, value) in [
                ("ansible_host", h.addr.clone()),
                ("ansible_port", h.port.to_string()),
                (
                    "freeswitch_conf_root",
                    h.dir.join("conf").display().to_string(),
                ),
                ("fs_cli", format!("\"{fs_cli}\"")),
                ("freeswitch_restart_command", format!("\"{restart}\"")),
            ] {
                if !overridden(key) {
                    s.push_str(&format!("          {key}: {value}\n"));
                }
            }
            for line in extra.lines() {
                s.push_str(&format!("          {line}\n"));
            }
        }
        let p = self.dir.join(file);
        std::fs::write(&p, s).unwrap();
        p
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            h.stop();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The result of one run of the switchyard binary.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.stdout, self.stderr)
        })
    }
}

pub fn switchyard(args: &[&str]) -> Out {
    switchyard_env(args, &[])
}

/// Run the binary with extra environment variables.
pub fn switchyard_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    switchyard_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, env)
}

/// Run the binary in folder `cwd` (where it looks for `switchyard.toml`).
pub fn switchyard_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = switchyard_command(cwd, args, env)
        .output()
        .expect("run switchyard");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The binary's command, not yet run, with the test run's history and digest key.
pub fn switchyard_command(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        // Never write the developer's own run history; tests that read it pass --history
        // or set SWITCHYARD_HISTORY in `env`, which comes last and wins.
        .env("SWITCHYARD_HISTORY", {
            // A folder of this test run: retry files are written beside the history.
            let d = std::env::temp_dir().join(format!("switchyard-it-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&d);
            d.join("history.db")
        })
        // Keyed digests (src/digest.rs) with a key of this test run, not the developer's.
        .env(
            "SWITCHYARD_DIGEST_KEY_FILE",
            std::env::temp_dir().join(format!("switchyard-it-digest-{}.key", std::process::id())),
        )
        .envs(env.iter().copied());
    cmd
}

/// A fresh, empty scratch folder for one test (emptied if a past run left it).
pub fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("switchyard-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Repository path of a shipped file.
pub fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// A playbook file written for one test (templates from the repo's `templates/`).
pub fn playbook(dir: &Path, name: &str, text: &str) -> String {
    let pdir = dir.join("playbooks");
    std::fs::create_dir_all(&pdir).unwrap();
    let tdir = dir.join("templates");
    if !tdir.exists() {
        std::os::unix::fs::symlink(repo("templates"), &tdir).unwrap();
    }
    let p = pdir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// The report of host `host` in a `--json` run's output.
pub fn host_report(out: &Out, host: &str) -> serde_json::Value {
    out.json()["plays"][0]["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no host reports: {}", out.all()))
        .iter()
        .find(|h| h["host"] == host)
        .unwrap()
        .clone()
}

/// The FreeSWITCH commands a host report says were run, in order.
pub fn commands(r: &serde_json::Value) -> Vec<String> {
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["command"].as_str().unwrap().to_string())
        .collect()
}

/// A history database and its write-ahead log, as text (lossy): what a reader of the raw
/// files would find, e.g. a secret stored in clear.
pub fn history_bytes(path: &Path) -> String {
    let mut s = String::new();
    for p in [
        path.to_path_buf(),
        PathBuf::from(format!("{}-wal", path.display())),
    ] {
        if let Ok(b) = std::fs::read(&p) {
            s.push_str(&String::from_utf8_lossy(&b));
        }
    }
    s
}
