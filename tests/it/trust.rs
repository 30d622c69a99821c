//! Trust: secrets never leak, hosts never end half-configured, faults are reported per host,
//! and bad input gets one clear error.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::session::{exit, Session};

const VAULT_PASS: &str = "correct horse battery staple";

fn encrypt_string(value: &str, name: &str) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["vault", "encrypt-string", "--name", name])
        .env("SWITCHYARD_VAULT_PASSWORD", VAULT_PASS)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// No text in `outputs` (channel by channel) contains any of `secrets`.
fn no_channel_leaks(outputs: &[String], secrets: &[&str]) {
    for (i, text) in outputs.iter().enumerate() {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "channel {i} leaks `{secret}`:\n{text}"
            );
        }
    }
}

#[test]
fn secrets_never_leak_into_any_output_channel() {
    let fleet = Fleet::new("secrets", 2);
    let (trunk, trunk2, ext) = ("Tr\"unk<&Pa55-v4ult", "Tr0nk-Rot4ted-v4ult", "ext-fr0m-env");
    for h in &fleet.hosts {
        h.set_provider_password("sip.test", "trunk1", trunk);
    }
    let secret_file = fleet.dir.join("vm.secret");
    std::fs::write(&secret_file, "vm-fr0m-file\n").unwrap();
    let vaulted = encrypt_string(trunk, "wavix_password");
    assert!(
        vaulted.starts_with("wavix_password: {vault: \"-----BEGIN AGE ENCRYPTED FILE-----"),
        "{vaulted}"
    );
    assert!(!vaulted.contains(trunk));
    let sf = secret_file.display().to_string();
    let user = format!("user: {{id: \"1000\", password: {{env: EXT_PW}}, vm_password: {{file: {sf}}}, caller_id_name: Main, caller_id_number: \"16468097065\"}}\n");
    let hist = fleet.dir.join("history.db");
    let first = fleet
        .session_with(&|_, _| format!("{vaulted}caller_name_token: {{env: EXT_PW}}\n{user}"))
        .env("SWITCHYARD_VAULT_PASSWORD", VAULT_PASS)
        .env("EXT_PW", ext)
        .env("SWITCHYARD_HISTORY", &hist);
    let out = first.run(["apply", "--diff", "--json"]).expect(exit::OK);
    assert!(
        out.stderr.contains("gateway   wavix REGED"),
        "the vaulted password really registers:\n{}",
        out.stderr
    );
    let mut outputs = vec![out.all()];

    // A rotated password, reviewed, planned, applied, drift-checked, listed.
    let vaulted2 = encrypt_string(trunk2, "wavix_password");
    let rotated = first.vars(&|_, _| format!("{vaulted2}{user}"));
    let inv2 = rotated.inventory_path().to_str().unwrap();
    let (plan, md) = (fleet.dir.join("plan.json"), fleet.dir.join("plan.md"));
    let (plan_s, md_s) = (plan.to_str().unwrap(), md.to_str().unwrap());
    for out in [
        rotated.run(["apply", "--check", "--diff", "--json"]),
        rotated.run(["plan", "-o", plan_s, "--markdown", md_s]),
        rotated.run(["apply", "--diff", "--json-lines", "--no-verify"]),
        first.run(["drift", "--json"]),
        rotated.run_raw(["inventory", "--json", "-i", inv2]),
        rotated.run_raw(["inventory", "-i", inv2]),
        rotated.run_raw(["history", "--json", "--history", hist.to_str().unwrap()]),
    ] {
        let drift = out.args()[0] == "drift";
        assert!(
            out.code == 0 || (drift && out.code == 2),
            "{}",
            out.render()
        );
        outputs.push(out.all());
    }
    outputs.push(std::fs::read_to_string(&plan).unwrap());
    outputs.push(std::fs::read_to_string(&md).unwrap());
    outputs.push(history_bytes(&hist));
    for h in &fleet.hosts {
        outputs.push(std::fs::read_to_string(h.conf(".switchyard/state.json")).unwrap());
        outputs.push(std::fs::read_to_string(h.conf(".switchyard/lock.owner")).unwrap_or_default());
    }
    let escaped = "Tr&quot;unk&lt;&amp;Pa55-v4ult";
    no_channel_leaks(
        &outputs,
        &[trunk, escaped, trunk2, ext, "vm-fr0m-file", VAULT_PASS],
    );
    assert!(
        outputs[1].contains("********"),
        "masked values are still shown as changed"
    );
    // On the host the secret is where FreeSWITCH needs it, XML-escaped, in a 0640 file.
    let h1 = fleet.host("pbx1");
    assert!(h1
        .read("sip_profiles/external/wavix.xml")
        .contains("value=\"Tr0nk-Rot4ted-v4ult\""));
    assert_eq!(h1.meta("sip_profiles/external/wavix.xml").2, 0o640);
    assert!(h1
        .read("directory/default/1000.xml")
        .contains("value=\"ext-fr0m-env\""));
}

/// `apply --no-verify` (then `extra`) in the background, stdout discarded, stderr piped.
fn spawn_apply(session: &Session, extra: &[&str]) -> std::process::Child {
    session
        .command([&["apply", "--no-verify"][..], extra].concat())
        .env("SWITCHYARD_HISTORY", session.fleet().dir.join("h.db"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until `what` holds (polling), failing the test after 20 s with `never`.
fn wait_until(never: &str, what: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !what() {
        assert!(Instant::now() < deadline, "{never}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn slow_sync_host(fleet: &mut Fleet, name: &str) -> usize {
    // fsync takes 0.3 s per call on this host, so a multi-file write spans seconds.
    let i = fleet.add_host_with(name, true, "");
    let h = &fleet.hosts[i];
    let bin = h.dir.join("slowbin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("sync"),
        "#!/bin/sh\nsleep 0.3\nexec /bin/sync \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("sync"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = h.dir.join("sshd_config");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin\n",
        bin.display()
    ));
    std::fs::write(&cfg, text).unwrap();
    let mut host = fleet.hosts.remove(i);
    host.stop();
    fleet.start(&mut host);
    fleet.hosts.insert(i, host);
    fleet.wait_ready();
    i
}

const MANAGED: [&str; 5] = [
    "sip_profiles/external/wavix.xml",
    "sip_profiles/external/wavix_fo.xml",
    "dialplan/wavix.xml",
    "directory/default/1000.xml",
    "autoload_configs/switch.conf.xml",
];

/// Put the managed files back as `stock` had them (absent where `None`), record included.
fn back_to_stock(h: &TestHost, stock: &[Option<String>]) {
    for (r, s) in MANAGED.iter().zip(stock) {
        match s {
            Some(t) => std::fs::write(h.conf(r), t).unwrap(),
            None => {
                let _ = std::fs::remove_file(h.conf(r));
            }
        }
    }
    let _ = std::fs::remove_file(h.conf(".switchyard/state.json"));
}

/// Every managed file is entirely new (`converged`) or entirely old (`stock`); how many new.
fn each_file_whole(h: &TestHost, stock: &[Option<String>], converged: &[String], at: u64) -> usize {
    let mut new_count = 0;
    for (k, r) in MANAGED.iter().enumerate() {
        let now = std::fs::read_to_string(h.conf(r)).ok();
        if now.as_deref() == Some(converged[k].as_str()) {
            new_count += 1;
        } else {
            assert_eq!(
                now, stock[k],
                "{r} is neither entirely old nor entirely new (cut at +{at} ms)"
            );
        }
    }
    new_count
}

#[test]
fn a_host_killed_mid_apply_keeps_every_file_whole_and_the_next_run_converges() {
    let mut fleet = Fleet::new("killed", 0);
    let i = slow_sync_host(&mut fleet, "pbx1");
    let session = fleet.session_with(&|_, _| "wavix_failover_proxy: sip.test\n".into());
    let h = &fleet.hosts[i];
    let stock: Vec<Option<String>> = MANAGED
        .iter()
        .map(|r| std::fs::read_to_string(h.conf(r)).ok())
        .collect();
    // The converged content, from one full run.
    session.run(["apply", "--no-verify"]).expect(exit::OK);
    let converged: Vec<String> = MANAGED.iter().map(|r| h.read(r)).collect();

    for delay_ms in [0u64, 350, 800, 1300, 1700] {
        back_to_stock(h, &stock);
        let mut child = spawn_apply(&session, &[]);
        // Wait for the write phase (its first temp file), then cut everything at `delay_ms`.
        wait_until("the write never started", || !h.temp_leftovers().is_empty());
        std::thread::sleep(Duration::from_millis(delay_ms));
        h.kill_sessions();
        let _ = child.wait();
        // A write or record the kill missed (started after the process list was read) goes
        // on, holding the host lock, until its last rename: the next run comes after it.
        let lock = h.conf(".switchyard/lock");
        wait_until("the killed run never let the host lock go", || {
            std::process::Command::new("flock")
                .args(["-n", "-E", "75"])
                .arg(&lock)
                .arg("true")
                .status()
                .is_ok_and(|s| s.success())
        });
        let new_count = each_file_whole(h, &stock, &converged, delay_ms);
        eprintln!(
            "cut at +{delay_ms} ms: {new_count} of {} files new, leftovers {:?}",
            MANAGED.len(),
            h.temp_leftovers()
        );
        // The next run converges and leaves no temp file behind.
        let again = session.run(["apply", "--no-verify"]);
        assert_eq!(
            again.code, 0,
            "cut at +{delay_ms} ms, then: {}",
            again.stderr
        );
        for (k, r) in MANAGED.iter().enumerate() {
            assert_eq!(h.read(r), converged[k]);
        }
        assert!(h.temp_leftovers().is_empty(), "{:?}", h.temp_leftovers());
    }
}

#[test]
fn concurrent_runs_on_one_host_do_not_interleave() {
    let mut fleet = Fleet::new("concurrent", 0);
    let i = slow_sync_host(&mut fleet, "pbx1");
    let run_a = fleet.session_with(&|_, _| "wavix_password: run-A-pass\n".into());
    let run_b = fleet.session_with(&|_, _| "wavix_password: run-B-pass\n".into());
    let a = spawn_apply(&run_a, &[]);
    let owner = fleet.hosts[i].conf(".switchyard/lock.owner");
    wait_until("run A never took the lock", || owner.exists());
    let b = run_b.run(["apply", "--no-verify"]);
    let a = a.wait_with_output().unwrap();
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    b.expect(exit::FAILED)
        .shows(&["another switchyard run is changing this host (lock", "pid"]);
    let gw = fleet.hosts[i].read("sip_profiles/external/wavix.xml");
    assert!(gw.contains("run-A-pass") && !gw.contains("run-B-pass"));
    // The lock went with run A's session: the next run gets it.
    run_b.run(["apply", "--no-verify"]).expect(exit::OK);
    assert!(fleet.hosts[i]
        .read("sip_profiles/external/wavix.xml")
        .contains("run-B-pass"));
}

/// pbx1's conf root becomes a tiny tmpfs, with its files, that is nearly full.
fn fill_conf_tmpfs(fleet: &mut Fleet) {
    let conf = fleet.hosts[0].dir.join("conf");
    let saved = fleet.dir.join("conf-copy");
    assert!(std::process::Command::new("cp")
        .arg("-a")
        .arg(&conf)
        .arg(&saved)
        .status()
        .unwrap()
        .success());
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&conf)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root");
    fleet.hosts[0].mounted = Some(conf.clone());
    let (saved, conf) = (saved.display(), conf.display());
    assert!(std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cp -a {saved}/. {conf}/ && dd if=/dev/zero of={conf}/filler bs=1k count=$(( $(df -k --output=avail {conf} | tail -1) - 2 )) 2>/dev/null",
        ))
        .status()
        .unwrap()
        .success());
}

/// A host's report in a run's JSON.
fn by<'a>(hosts: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    hosts.iter().find(|h| h["host"] == name).unwrap()
}

#[test]
fn full_disk_and_timeouts_are_reported_per_host_while_others_complete() {
    let mut fleet = Fleet::new("faults", 2);
    fill_conf_tmpfs(&mut fleet);
    let before = fleet.hosts[0].read("autoload_configs/switch.conf.xml");
    // A third "host" accepts TCP but never speaks SSH.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bport = blackhole.local_addr().unwrap().port();
    let session = fleet.session();
    let inv = session.inventory_path();
    let mut text = std::fs::read_to_string(inv).unwrap();
    text.push_str(&format!("        silent:\n          ansible_host: 127.0.0.1\n          ansible_port: {bport}\n          ssh_connect_timeout: 1\n          ssh_retries: 0\n"));
    std::fs::write(inv, text).unwrap();

    let out = session.run(["apply", "--json", "--serial", "100%", "--no-verify"]);
    let hosts = out.expect(exit::FAILED).json()["plays"][0]["hosts"].clone();
    let hosts = hosts.as_array().unwrap();
    let full = by(hosts, "pbx1");
    assert_eq!(full["status"], "failed");
    assert!(
        full["error"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{}",
        full["error"]
    );
    assert_eq!(
        fleet.hosts[0].read("autoload_configs/switch.conf.xml"),
        before,
        "nothing half-written"
    );
    assert!(!fleet.hosts[0].exists("sip_profiles/external/wavix.xml"));
    assert!(
        fleet.hosts[0].temp_leftovers().is_empty(),
        "{:?}",
        fleet.hosts[0].temp_leftovers()
    );
    let silent = by(hosts, "silent");
    assert_eq!(silent["status"], "unreachable");
    assert!(
        silent["error"].as_str().unwrap().contains("timed out"),
        "{}",
        silent["error"]
    );
    assert_eq!(by(hosts, "pbx2")["status"], "changed");
    drop(blackhole);
}

#[test]
fn permission_denied_is_reported_per_host() {
    let fleet = Fleet::new("noperm", 2);
    // pbx1 is reached with a login that may not write the conf tree (and cannot sudo).
    let session = fleet.session_with(&|i, _| match i {
        0 => format!("ansible_user: {NOPRIV_USER}\nansible_become: false\n"),
        _ => String::new(),
    });
    // The unprivileged login must be able to reach the conf tree to read it at all.
    assert!(std::process::Command::new("chmod")
        .args(["o+x"])
        .arg(&fleet.dir)
        .status()
        .unwrap()
        .success());
    let before = fleet.hosts[0].read("autoload_configs/switch.conf.xml");
    let out = session.run(["apply", "--json", "--serial", "100%", "--no-verify"]);
    let hosts = out.expect(exit::FAILED).json()["plays"][0]["hosts"].clone();
    let hosts = hosts.as_array().unwrap();
    let denied = by(hosts, "pbx1");
    assert_eq!(denied["status"], "failed");
    assert!(
        denied["error"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{}",
        denied["error"]
    );
    assert_eq!(
        fleet.hosts[0].read("autoload_configs/switch.conf.xml"),
        before
    );
    assert!(fleet.hosts[0].temp_leftovers().is_empty());
    assert_eq!(by(hosts, "pbx2")["status"], "changed");
}

/// An fs_cli that touches `reached` and then holds the command for 30 s before running the
/// host's own: a run using it can be stopped at its first FreeSWITCH command.
fn gated_fs_cli(fleet: &Fleet, h: &TestHost, reached: &std::path::Path) -> std::path::PathBuf {
    let gate = fleet.dir.join("gated-fs_cli");
    std::fs::write(
        &gate,
        format!(
            "#!/bin/sh\ntouch {}\nsleep 30\nexec {} \"$@\"\n",
            reached.display(),
            h.fs_cli().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gate, std::fs::Permissions::from_mode(0o755)).unwrap();
    gate
}

/// Start a run and SIGKILL it as soon as its fs_cli is reached; then end its host sessions.
fn kill_at_first_freeswitch_command(session: &Session, h: &TestHost, reached: &std::path::Path) {
    let mut child = spawn_apply(session, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reached.exists() {
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "never reached a FreeSWITCH command: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    h.kill_sessions();
}

/// The controller is killed (SIGKILL) at its first FreeSWITCH command, after the files were
/// written: the state record written with them keeps killgw + rescan owed, so `drift` does
/// not say "in sync", and the next run performs them and verifies the new password.
#[test]
fn a_controller_killed_before_its_freeswitch_steps_converges_on_the_next_run() {
    let fleet = Fleet::new("sigkill", 1);
    let h = &fleet.hosts[0];
    fleet.session().run(["apply"]).expect(exit::OK);

    // The provider rotates the password. This run's fs_cli stops at its first command
    // (signalling the test), where the controller is killed.
    h.set_provider_password("sip.test", "trunk1", "secret2");
    let reached = fleet.dir.join("reached");
    let gate = gated_fs_cli(&fleet, h, &reached);
    let gated = fleet
        .session_with(&|_, _| format!("wavix_password: secret2\nfs_cli: {}\n", gate.display()));
    kill_at_first_freeswitch_command(&gated, h, &reached);
    assert!(h
        .read("sip_profiles/external/wavix.xml")
        .contains("secret2"));
    assert!(
        !h.fs_log().iter().any(|c| c.contains("killgw")),
        "{:?}",
        h.fs_log()
    );

    // Files in sync, but FreeSWITCH was never told: drift says so.
    let rotated = fleet.session_with(&|_, _| "wavix_password: secret2\n".into());
    let drift = rotated.run(["drift"]).expect(exit::DRIFT);
    drift.shows(&["steps owed"]);
    crate::assert_session!("steps_owed", drift);

    // The next run performs the owed steps and verifies the gateway on the new password.
    let out = rotated.run(["apply", "--json"]).expect(exit::OK);
    let r = host_report(&out, "pbx1");
    assert_eq!(
        commands(&r),
        [
            "sofia profile external killgw wavix",
            "sofia profile external rescan"
        ],
        "{r:#}"
    );
    assert_eq!(r["gateways"][0]["state"], "REGED", "{r:#}");
    // Nothing drifted and no step is owed any more (the restart the harness never allows is
    // still pending, and said so).
    let clean = rotated.run(["drift"]).expect(exit::OK);
    clean
        .never_shows(&["steps owed", "drift "])
        .shows(&["pbx1: `restart FreeSWITCH` pending"]);
    crate::assert_session!("in_sync", clean);
}

/// SIGTERM during a rollout: the host being written finishes (files whole, steps run), no
/// other host starts, and the run exits non-zero saying so.
#[test]
fn sigterm_lets_hosts_in_flight_finish_and_starts_no_other() {
    let mut fleet = Fleet::new("sigterm", 0);
    let i = slow_sync_host(&mut fleet, "pbx1");
    for n in 2..=3 {
        fleet.add_host(&format!("pbx{n}"), true);
    }
    fleet.wait_ready();
    let session = fleet.session();
    let child = spawn_apply(&session, &["--forks", "1"]);
    wait_until("the write never started", || {
        !fleet.hosts[i].temp_leftovers().is_empty()
    });
    run(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 130: interrupted, whatever the hosts in flight did.
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // pbx1 (in flight) finished: its files are complete and FreeSWITCH was told.
    let h1 = &fleet.hosts[i];
    assert!(h1
        .read("sip_profiles/external/wavix.xml")
        .contains("secret1"));
    assert!(h1.temp_leftovers().is_empty(), "{:?}", h1.temp_leftovers());
    assert!(
        h1.fs_log().iter().any(|c| c.contains("rescan")),
        "{:?}",
        h1.fs_log()
    );
    // The others never started.
    for h in &fleet.hosts[1..] {
        assert!(
            !h.exists("sip_profiles/external/wavix.xml"),
            "{} was changed",
            h.name
        );
        assert!(stderr.contains(&format!("{}  not run", h.name)), "{stderr}");
    }
}
