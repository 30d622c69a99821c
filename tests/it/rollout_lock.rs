//! Issue 29, item 2: the fleet rollout lock of a PostgreSQL history. Two rollouts of one
//! play to one fleet never interleave host by host; a holder killed with SIGKILL frees it
//! (the database ends its session); `--lock-timeout 0` fails at once naming the holder.

use std::io::Read;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::pgserver::{PgServer, PG_PASSWORD};

/// An `fs_cli` that logs `TAG begin` and `TAG end` around the stand-in's own work, slowly,
/// to one log shared by every host: what each rollout did where, in the order it happened.
fn logging_fs_cli(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("fs_cli.log");
    let wrap = dir.join("fs_cli_logged.sh");
    std::fs::write(
        &wrap,
        format!(
            "#!/bin/sh\ntag=$1; real=$2; shift 2\necho \"$tag begin\" >> {log}\nsleep 0.3\n\"$real\" \"$@\"; rc=$?\necho \"$tag end\" >> {log}\nexit $rc\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    (wrap, log)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_rollouts_of_one_play_never_interleave_the_second_waits_then_runs() {
    let fleet = Fleet::new("lock-two", 2);
    let pg = PgServer::start("lock-two");
    let url = pg.create_db("history");
    let (wrap, log) = logging_fs_cli(&fleet.dir);
    let session = |tag: &'static str| {
        let wrap = wrap.clone();
        fleet
            .session_with(&move |_, h| {
                format!(
                    "fs_cli: \"{} {tag} {}\"\nwavix_password: secret-{tag}-1",
                    wrap.display(),
                    h.fs_cli().display()
                )
            })
            .env("PGPASSWORD", PG_PASSWORD)
    };
    let (a, b) = (session("A"), session("B"));
    let args = ["apply", "--no-verify", "--history", url.as_str()];
    let mut first = a
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first rollout reached a host", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("A begin"))
    });
    let second = b.run(args).out;
    let status = first.wait().unwrap();
    let mut first_err = String::new();
    first
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut first_err)
        .unwrap();
    assert!(status.success(), "{first_err}");
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        second.stderr.contains(
            "waiting for the rollout lock of play `Wavix SIP trunk` on this fleet, held by"
        ) && second.stderr.contains("apply "),
        "{}",
        second.stderr
    );
    // Every host's FreeSWITCH saw all of the first rollout, then all of the second.
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l[..1].to_string())
        .collect();
    let switched = lines.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(lines.first().is_some_and(|t| t == "A") && lines.contains(&"B".to_string()));
    assert_eq!(switched, 1, "interleaved: {lines:?}");
    for h in ["pbx1", "pbx2"] {
        assert!(fleet
            .host(h)
            .read("sip_profiles/external/wavix.xml")
            .contains("secret-B-1"));
    }
}

#[test]
fn a_killed_holder_frees_the_lock_and_lock_timeout_0_names_the_holder() {
    let fleet = Fleet::new("lock-kill", 1);
    let pg = PgServer::start("lock-kill");
    let url = pg.create_db("history");
    // The holder's host answers TCP and nothing else: it holds the lock while connecting.
    let silent = TcpListener::bind(format!("{}:0", fleet.hosts[0].addr)).unwrap();
    let port = silent.local_addr().unwrap().port();
    let holder = fleet
        .session_with(&|_, _| format!("ansible_port: {port}\nssh_connect_timeout: 120"))
        .env("PGPASSWORD", PG_PASSWORD);
    let args = ["apply", "--no-verify", "--history", url.as_str()];
    let mut held = holder
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let holders = || {
        pg.psql("history", "SELECT count(*) FROM switchyard.locks l JOIN pg_locks p ON p.pid = l.pid AND p.locktype = 'advisory' AND p.granted")
    };
    wait_for("the holder took the lock", || {
        holders().is_ok_and(|n| n == "1")
    });

    let next = fleet.session().env("PGPASSWORD", PG_PASSWORD);
    let t = Instant::now();
    let refused = next.run([&args[..], &["--lock-timeout", "0"]].concat()).out;
    assert_eq!(refused.code, 1, "{}", refused.all());
    let who = format!(
        "{}@",
        std::env::var("USER").unwrap_or_else(|_| "root".into())
    );
    assert!(
        refused
            .stderr
            .contains("rollout lock of play `Wavix SIP trunk` on this fleet is held by")
            && refused.stderr.contains(&who)
            && refused.stderr.contains(&format!(
                "apply {}, pid {}",
                repo("playbooks/wavix.yml"),
                held.id()
            )),
        "{}",
        refused.stderr
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "at once, not after a wait"
    );
    assert!(!fleet.hosts[0].exists("sip_profiles/external/wavix.xml.switchyard-tmp"));
    assert!(!refused.all().contains(PG_PASSWORD));
    // Nor in any process argument: the holder's, or the server's sessions' titles.
    let cmdline = |pid: &str| std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let pids = std::fs::read_dir("/proc").unwrap().flatten();
    let pids: Vec<String> = pids
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!cmdline(&held.id().to_string()).is_empty());
    for pid in pids
        .iter()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        assert!(
            !String::from_utf8_lossy(&cmdline(pid)).contains(PG_PASSWORD),
            "pid {pid}"
        );
    }

    // SIGKILL: no cleanup runs; the database ends the session and its lock with it.
    held.kill().unwrap();
    held.wait().unwrap();
    let after = next
        .run([&args[..], &["--lock-timeout", "60"]].concat())
        .out;
    assert_eq!(after.code, 0, "{}", after.all());
    assert!(fleet.hosts[0]
        .read("sip_profiles/external/wavix.xml")
        .contains("secret1"));
    drop(silent);
}

/// With a shared history whose database cannot be reached, a rollout does not go ahead
/// unguarded: it stops before the first host. A check takes no lock and only warns that
/// it cannot record.
#[test]
fn no_database_no_rollout_but_a_check_still_runs() {
    let fleet = Fleet::new("lock-nodb", 1);
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://switchyard@127.0.0.1:{}/history",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let s = fleet.session().env("PGPASSWORD", PG_PASSWORD);
    let file = "sip_profiles/external/wavix.xml";
    let before = fleet.hosts[0]
        .exists(file)
        .then(|| fleet.hosts[0].read(file));
    let out = s
        .run(["apply", "--no-verify", "--history", url.as_str()])
        .out;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("cannot take the rollout lock: postgres://switchyard@127.0.0.1:"),
        "{}",
        out.stderr
    );
    let after = fleet.hosts[0]
        .exists(file)
        .then(|| fleet.hosts[0].read(file));
    assert_eq!(before, after, "no host touched");
    let check = s.run(["apply", "--check", "--history", url.as_str()]).out;
    assert!(!check.stderr.contains("rollout lock"), "{}", check.stderr);
    assert!(!check.all().contains(PG_PASSWORD));
}

/// `watch --fix --shard K/N` corrects with the fleet lock of the whole inventory, as `apply`
/// takes it: while an apply of the play holds it, the sharded agent defers its correction.
#[test]
fn an_apply_holding_the_lock_defers_a_sharded_watch_fix() {
    use switchyard::agent::history::lock::shard_of;
    let fleet = Fleet::new("lock-shard", 2);
    let pg = PgServer::start("lock-shard");
    let url = pg.create_db("history");
    let s = fleet.session().env("PGPASSWORD", PG_PASSWORD);
    let applied = s.run(["apply", "--no-verify"]).out;
    assert_eq!(applied.code, 0, "{}", applied.all());
    // pbx1's shard holds pbx1 alone: a key of the shard's hosts would differ from apply's.
    let k = shard_of("pbx1", 2) + 1;
    assert_ne!(
        shard_of("pbx2", 2) + 1,
        k,
        "the two hosts in different shards"
    );
    let file = "sip_profiles/external/wavix.xml";
    std::fs::write(fleet.hosts[0].conf(file), "<include/>\n").unwrap();

    let (mut held, silent) = silent_holder(&fleet, &url);
    wait_for("the apply took the lock", || {
        pg.psql("history", "SELECT count(*) FROM switchyard.locks l JOIN pg_locks p ON p.pid = l.pid AND p.locktype = 'advisory' AND p.granted")
            .is_ok_and(|n| n == "1")
    });
    let shard = format!("{k}/2");
    let out = s
        .run([
            "watch",
            "--fix",
            "--rounds",
            "1",
            "--shard",
            shard.as_str(),
            "--history",
            url.as_str(),
        ])
        .out;
    held.kill().unwrap();
    held.wait().unwrap();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("correction deferred to the next round")
            && out.stderr.contains("1 drifted"),
        "{}",
        out.stderr
    );
    assert_eq!(fleet.hosts[0].read(file), "<include/>\n", "not corrected");
    drop(silent);
}

/// The server end of a lock holder's session probes it within 30 s (the session sets the
/// server's `tcp_keepalives_*`), so a holder whose machine vanished frees the lock within
/// about a minute, not after the OS default keepalive of about 2 hours.
#[test]
fn the_server_side_of_a_lock_holders_session_keeps_it_alive_within_30_s() {
    let fleet = Fleet::new("lock-keepalive", 1);
    let pg = PgServer::start("lock-keepalive");
    let url = pg.create_db("history");
    let (mut held, silent) = silent_holder(&fleet, &url);
    let mut client_port = String::new();
    wait_for("the holder took the lock", || {
        client_port = pg
            .psql("history", "SELECT a.client_port FROM switchyard.locks l JOIN pg_locks p ON p.pid = l.pid AND p.locktype = 'advisory' AND p.granted JOIN pg_stat_activity a ON a.pid = l.pid")
            .unwrap_or_default();
        !client_port.is_empty()
    });
    // The server's socket of that session, as the kernel sees it: its keepalive timer (once
    // the last reply is acknowledged: until then the retransmission timer shows instead).
    let filter = format!("( sport = :{} and dport = :{client_port} )", pg.port);
    let mut ss = String::new();
    wait_for("the session idle, its keepalive timer shown", || {
        let out = std::process::Command::new("ss")
            .args(["-tnoH", "state", "established", &filter])
            .output()
            .unwrap();
        ss = String::from_utf8_lossy(&out.stdout).into_owned();
        ss.contains("timer:(keepalive,")
    });
    held.kill().unwrap();
    held.wait().unwrap();
    let timer = ss
        .split("timer:(keepalive,")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .unwrap_or_else(|| panic!("no keepalive timer on the server's socket: {ss}"));
    let secs: u32 = timer
        .strip_suffix("sec")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("keepalive due in {timer}, not within 30 s: {ss}"));
    assert!(secs <= 30, "{ss}");
    drop(silent);
}

/// An `apply` that takes the rollout lock and keeps it: its hosts answer TCP (the listener
/// returned, to be kept open) and nothing else, so it holds the lock while connecting.
fn silent_holder(fleet: &Fleet, url: &str) -> (std::process::Child, TcpListener) {
    let silent = TcpListener::bind(format!("{}:0", fleet.hosts[0].addr)).unwrap();
    let port = silent.local_addr().unwrap().port();
    let holder = fleet
        .session_with(&|_, _| format!("ansible_port: {port}\nssh_connect_timeout: 120"))
        .env("PGPASSWORD", PG_PASSWORD);
    let held = holder
        .command(["apply", "--no-verify", "--history", url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (held, silent)
}
