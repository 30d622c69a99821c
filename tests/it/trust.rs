//! Trust: secrets never leak, hosts never end half-configured, faults are reported per host,
//! and bad input gets one clear error.

use std::time::{Duration, Instant};

use crate::harness::*;

fn pb() -> String {
    repo("playbooks/wavix.yml")
}

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

#[test]
fn secrets_never_leak_into_any_output_channel() {
    let fleet = Fleet::new("secrets", 2);
    let kh = fleet.known_hosts.to_str().unwrap();
    let trunk = "Tr\"unk<&Pa55-v4ult";
    let trunk2 = "Tr0nk-Rot4ted-v4ult";
    for h in &fleet.hosts {
        h.set_provider_password("sip.test", "trunk1", trunk);
    }
    let ext = "ext-fr0m-env";
    let secret_file = fleet.dir.join("vm.secret");
    std::fs::write(&secret_file, "vm-fr0m-file\n").unwrap();
    let vaulted = encrypt_string(trunk, "wavix_password");
    assert!(
        vaulted.starts_with("wavix_password: {vault: \"-----BEGIN AGE ENCRYPTED FILE-----"),
        "{vaulted}"
    );
    assert!(!vaulted.contains(trunk));
    let sf = secret_file.display().to_string();
    let inv = fleet.inventory("inv.yml", &|_, _| {
        format!("{vaulted}caller_name_token: {{env: EXT_PW}}\nuser: {{id: \"1000\", password: {{env: EXT_PW}}, vm_password: {{file: {sf}}}, caller_id_name: Main, caller_id_number: \"16468097065\"}}\n")
    });
    let hist = fleet.dir.join("history.db");
    let env = [
        ("SWITCHYARD_VAULT_PASSWORD", VAULT_PASS),
        ("EXT_PW", ext),
        ("SWITCHYARD_HISTORY", hist.to_str().unwrap()),
    ];
    let mut outputs = Vec::new();
    let first = switchyard_env(
        &[
            "apply",
            "--diff",
            "--json",
            "-i",
            inv.to_str().unwrap(),
            &pb(),
            "--known-hosts",
            kh,
        ],
        &env,
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("gateway   wavix REGED"),
        "the vaulted password really registers:\n{}",
        first.stderr
    );
    outputs.push(first.all());

    // A rotated password, reviewed, planned, applied, drift-checked, listed.
    let vaulted2 = encrypt_string(trunk2, "wavix_password");
    let inv2 = fleet.inventory("inv2.yml", &|_, _| format!("{vaulted2}user: {{id: \"1000\", password: {{env: EXT_PW}}, vm_password: {{file: {sf}}}, caller_id_name: Main, caller_id_number: \"16468097065\"}}\n"));
    let plan = fleet.dir.join("plan.json");
    let md = fleet.dir.join("plan.md");
    for args in [
        vec![
            "apply",
            "--check",
            "--diff",
            "--json",
            "-i",
            inv2.to_str().unwrap(),
            &pb(),
            "--known-hosts",
            kh,
        ],
        vec![
            "plan",
            "-i",
            inv2.to_str().unwrap(),
            &pb(),
            "-o",
            plan.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
            "--known-hosts",
            kh,
        ],
        vec![
            "apply",
            "--diff",
            "--json-lines",
            "--no-verify",
            "-i",
            inv2.to_str().unwrap(),
            &pb(),
            "--known-hosts",
            kh,
        ],
        vec![
            "drift",
            "--json",
            "-i",
            inv.to_str().unwrap(),
            &pb(),
            "--known-hosts",
            kh,
        ],
        vec!["inventory", "--json", "-i", inv2.to_str().unwrap()],
        vec!["inventory", "-i", inv2.to_str().unwrap()],
        vec!["history", "--json", "--history", hist.to_str().unwrap()],
    ] {
        let out = switchyard_env(&args, &env);
        assert!(
            out.code == 0 || (args[0] == "drift" && out.code == 2),
            "{args:?}: {}",
            out.all()
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
    for (i, text) in outputs.iter().enumerate() {
        for secret in [trunk, escaped, trunk2, ext, "vm-fr0m-file", VAULT_PASS] {
            assert!(
                !text.contains(secret),
                "channel {i} leaks `{secret}`:\n{text}"
            );
        }
    }
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

/// Start `apply` in the background (stdout discarded, stderr kept for assertions).
/// `apply --no-verify` (then `extra`) in the background, stderr piped.
fn spawn_apply(
    fleet: &Fleet,
    inv: &std::path::Path,
    kh: &str,
    extra: &[&str],
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "apply",
            "-i",
            inv.to_str().unwrap(),
            &pb(),
            "--known-hosts",
            kh,
            "--no-verify",
        ])
        .args(extra)
        .env("SWITCHYARD_HISTORY", fleet.dir.join("h.db"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
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

#[test]
fn a_host_killed_mid_apply_keeps_every_file_whole_and_the_next_run_converges() {
    let mut fleet = Fleet::new("killed", 0);
    let i = slow_sync_host(&mut fleet, "pbx1");
    let kh = fleet.known_hosts.to_str().unwrap().to_string();
    let inv = fleet.inventory("inv.yml", &|_, _| "wavix_failover_proxy: sip.test\n".into());
    let managed = [
        "sip_profiles/external/wavix.xml",
        "sip_profiles/external/wavix_fo.xml",
        "dialplan/wavix.xml",
        "directory/default/1000.xml",
        "autoload_configs/switch.conf.xml",
    ];
    let stock: Vec<Option<String>> = managed
        .iter()
        .map(|r| std::fs::read_to_string(fleet.hosts[i].conf(r)).ok())
        .collect();
    // The converged content, from one full run.
    let ok = switchyard(&[
        "apply",
        "-i",
        inv.to_str().unwrap(),
        &pb(),
        "--known-hosts",
        &kh,
        "--no-verify",
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let converged: Vec<String> = managed.iter().map(|r| fleet.hosts[i].read(r)).collect();

    for delay_ms in [0u64, 350, 800, 1300, 1700] {
        // Back to the stock tree.
        for (r, s) in managed.iter().zip(&stock) {
            match s {
                Some(t) => std::fs::write(fleet.hosts[i].conf(r), t).unwrap(),
                None => {
                    let _ = std::fs::remove_file(fleet.hosts[i].conf(r));
                }
            }
        }
        let _ = std::fs::remove_file(fleet.hosts[i].conf(".switchyard/state.json"));
        let mut child = spawn_apply(&fleet, &inv, &kh, &[]);
        // Wait for the write phase (its first temp file), then cut everything at `delay_ms`.
        let deadline = Instant::now() + Duration::from_secs(20);
        while fleet.hosts[i].temp_leftovers().is_empty() {
            assert!(Instant::now() < deadline, "the write never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        fleet.hosts[i].kill_sessions();
        let _ = child.wait();
        let mut new_count = 0;
        for (k, r) in managed.iter().enumerate() {
            let now = std::fs::read_to_string(fleet.hosts[i].conf(r)).ok();
            if now.as_deref() == Some(converged[k].as_str()) {
                new_count += 1;
            } else {
                assert_eq!(
                    now, stock[k],
                    "{r} is neither entirely old nor entirely new (cut at +{delay_ms} ms)"
                );
            }
        }
        eprintln!(
            "cut at +{delay_ms} ms: {new_count} of {} files new, leftovers {:?}",
            managed.len(),
            fleet.hosts[i].temp_leftovers()
        );
        // The next run converges and leaves no temp file behind.
        let again = switchyard(&[
            "apply",
            "-i",
            inv.to_str().unwrap(),
            &pb(),
            "--known-hosts",
            &kh,
            "--no-verify",
        ]);
        assert_eq!(
            again.code, 0,
            "cut at +{delay_ms} ms, then: {}",
            again.stderr
        );
        for (k, r) in managed.iter().enumerate() {
            assert_eq!(fleet.hosts[i].read(r), converged[k]);
        }
        assert!(
            fleet.hosts[i].temp_leftovers().is_empty(),
            "{:?}",
            fleet.hosts[i].temp_leftovers()
        );
    }
}

#[test]
fn concurrent_runs_on_one_host_do_not_interleave() {
    let mut fleet = Fleet::new("concurrent", 0);
    let i = slow_sync_host(&mut fleet, "pbx1");
    let kh = fleet.known_hosts.to_str().unwrap().to_string();
    let inv_a = fleet.inventory("a.yml", &|_, _| "wavix_password: run-A-pass\n".into());
    let inv_b = fleet.inventory("b.yml", &|_, _| "wavix_password: run-B-pass\n".into());
    let a = spawn_apply(&fleet, &inv_a, &kh, &[]);
    let owner = fleet.hosts[i].conf(".switchyard/lock.owner");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !owner.exists() {
        assert!(Instant::now() < deadline, "run A never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    let b = switchyard(&[
        "apply",
        "-i",
        inv_b.to_str().unwrap(),
        &pb(),
        "--known-hosts",
        &kh,
        "--no-verify",
    ]);
    let a = a.wait_with_output().unwrap();
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(b.code, 1, "{}", b.stderr);
    assert!(
        b.stderr
            .contains("another switchyard run is changing this host (lock")
            && b.stderr.contains("pid"),
        "{}",
        b.stderr
    );
    let gw = fleet.hosts[i].read("sip_profiles/external/wavix.xml");
    assert!(gw.contains("run-A-pass") && !gw.contains("run-B-pass"));
    // The lock went with run A's session: the next run gets it.
    let c = switchyard(&[
        "apply",
        "-i",
        inv_b.to_str().unwrap(),
        &pb(),
        "--known-hosts",
        &kh,
        "--no-verify",
    ]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(fleet.hosts[i]
        .read("sip_profiles/external/wavix.xml")
        .contains("run-B-pass"));
}

#[test]
fn full_disk_and_timeouts_are_reported_per_host_while_others_complete() {
    let mut fleet = Fleet::new("faults", 2);
    // pbx1's conf root is a tiny tmpfs that is nearly full.
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
    assert!(std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cp -a {}/. {}/ && dd if=/dev/zero of={}/filler bs=1k count=$(( $(df -k --output=avail {} | tail -1) - 2 )) 2>/dev/null",
            saved.display(),
            conf.display(),
            conf.display(),
            conf.display()
        ))
        .status()
        .unwrap()
        .success());
    let before = fleet.hosts[0].read("autoload_configs/switch.conf.xml");
    // A third "host" accepts TCP but never speaks SSH.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bport = blackhole.local_addr().unwrap().port();
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let mut text = std::fs::read_to_string(&inv).unwrap();
    text.push_str(&format!("        silent:\n          ansible_host: 127.0.0.1\n          ansible_port: {bport}\n          ssh_connect_timeout: 1\n          ssh_retries: 0\n"));
    std::fs::write(&inv, text).unwrap();

    let out = fleet.run(
        "apply",
        &inv,
        &["--json", "--serial", "100%", "--no-verify"],
    );
    assert_eq!(out.code, 1);
    let hosts = out.json()["plays"][0]["hosts"].as_array().unwrap().clone();
    let by = |n: &str| hosts.iter().find(|h| h["host"] == n).unwrap().clone();
    let full = by("pbx1");
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
    let silent = by("silent");
    assert_eq!(silent["status"], "unreachable");
    assert!(
        silent["error"].as_str().unwrap().contains("timed out"),
        "{}",
        silent["error"]
    );
    assert_eq!(by("pbx2")["status"], "changed");
    drop(blackhole);
}

#[test]
fn permission_denied_is_reported_per_host() {
    let fleet = Fleet::new("noperm", 2);
    // pbx1 is reached with a login that may not write the conf tree (and cannot sudo).
    let inv = fleet.inventory("inv.yml", &|i, _| {
        if i == 0 {
            format!("ansible_user: {NOPRIV_USER}\nansible_become: false\n")
        } else {
            String::new()
        }
    });
    // The unprivileged login must be able to reach the conf tree to read it at all.
    assert!(std::process::Command::new("chmod")
        .args(["o+x"])
        .arg(&fleet.dir)
        .status()
        .unwrap()
        .success());
    let before = fleet.hosts[0].read("autoload_configs/switch.conf.xml");
    let out = fleet.run(
        "apply",
        &inv,
        &["--json", "--serial", "100%", "--no-verify"],
    );
    assert_eq!(out.code, 1);
    let hosts = out.json()["plays"][0]["hosts"].as_array().unwrap().clone();
    let denied = hosts.iter().find(|h| h["host"] == "pbx1").unwrap();
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
    assert_eq!(
        hosts.iter().find(|h| h["host"] == "pbx2").unwrap()["status"],
        "changed"
    );
}

/// The controller is killed (SIGKILL) at its first FreeSWITCH command, after the files were
/// written: the state record written with them keeps killgw + rescan owed, so `drift` does
/// not say "in sync", and the next run performs them and verifies the new password.
#[test]
fn a_controller_killed_before_its_freeswitch_steps_converges_on_the_next_run() {
    let fleet = Fleet::new("sigkill", 1);
    let h = &fleet.hosts[0];
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let out = fleet.run("apply", &inv, &[]);
    assert_eq!(out.code, 0, "{}", out.all());

    // The provider rotates the password. This run's fs_cli stops at its first command
    // (signalling the test), where the controller is killed.
    h.set_provider_password("sip.test", "trunk1", "secret2");
    let reached = fleet.dir.join("reached");
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
    let gated = fleet.inventory("gated.yml", &|_, _| {
        format!("wavix_password: secret2\nfs_cli: {}\n", gate.display())
    });
    let kh = fleet.known_hosts.to_str().unwrap().to_string();
    let mut child = spawn_apply(&fleet, &gated, &kh, &[]);
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
    assert!(h
        .read("sip_profiles/external/wavix.xml")
        .contains("secret2"));
    assert!(
        !h.fs_log().iter().any(|c| c.contains("killgw")),
        "{:?}",
        h.fs_log()
    );

    // Files in sync, but FreeSWITCH was never told: drift says so.
    let inv2 = fleet.inventory("inv2.yml", &|_, _| "wavix_password: secret2\n".into());
    let drift = fleet.run("drift", &inv2, &[]);
    assert_eq!(drift.code, 3, "{}", drift.all());
    assert!(drift.stderr.contains("steps owed"), "{}", drift.stderr);

    // The next run performs the owed steps and verifies the gateway on the new password.
    let out = fleet.run("apply", &inv2, &["--json"]);
    assert_eq!(out.code, 0, "{}", out.all());
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
    let clean = fleet.run("drift", &inv2, &[]);
    assert_eq!(clean.code, 0, "{}", clean.all());
    // Nothing drifted and no step is owed any more (the restart the harness never allows is
    // still pending, and said so).
    assert!(
        !clean.stderr.contains("steps owed") && !clean.stderr.contains("drift "),
        "{}",
        clean.stderr
    );
    assert!(
        clean.stderr.contains("pbx1: `restart FreeSWITCH` pending"),
        "{}",
        clean.stderr
    );
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
    let kh = fleet.known_hosts.to_str().unwrap().to_string();
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let child = spawn_apply(&fleet, &inv, &kh, &["--forks", "1"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while fleet.hosts[i].temp_leftovers().is_empty() {
        assert!(Instant::now() < deadline, "the write never started");
        std::thread::sleep(Duration::from_millis(5));
    }
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
