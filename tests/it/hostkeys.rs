//! Host keys as OpenSSH judges them, over real sshd: a key of another type for a known host
//! is a changed key; `@revoked` keys are refused; `@cert-authority` is said to be
//! unsupported; the key type on record is asked for first.

use std::process::Command;

use crate::assert_session;
use crate::harness::*;
use crate::session::{exit, Run};

fn keygen(path: &std::path::Path, kind: &str) -> String {
    let _ = std::fs::remove_file(path);
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-f"])
        .arg(path));
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let mut w = public.split_whitespace();
    format!("{} {}", w.next().unwrap(), w.next().unwrap())
}

/// `apply --check` on the fleet, then `extra`.
fn check(fleet: &Fleet, extra: &[&str]) -> Run {
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let session = fleet.session_on(&inv);
    session.run([&["apply", "--check"][..], extra].concat())
}

#[test]
fn known_hosts_is_judged_as_openssh_does() {
    let mut fleet = Fleet::new("hostkeys2", 0);
    // The host has an ed25519 key and an RSA key.
    let rsa_path = fleet.dir.join("host_rsa");
    let rsa = keygen(&rsa_path, "rsa");
    let i = fleet.add_host_with("pbx1", false, &format!("HostKey {}\n", rsa_path.display()));
    fleet.wait_ready();
    let h = &fleet.hosts[i];
    let name = format!("[{}]:{}", h.addr, h.port);
    let ed = {
        let mut w = h.host_pub.split_whitespace();
        format!("{} {}", w.next().unwrap(), w.next().unwrap())
    };
    let kh = &fleet.known_hosts;

    // known_hosts lists only its RSA key: switchyard asks for RSA first and connects.
    std::fs::write(kh, format!("{name} {rsa}\n")).unwrap();
    check(&fleet, &[]).expect(exit::OK);

    // known_hosts lists an RSA key the host no longer has; the host presents ed25519:
    // changed, even with --accept-new-host-keys, and known_hosts is left alone.
    let stale = keygen(&fleet.dir.join("stale_rsa"), "rsa");
    let mut other = fleet.hosts.remove(i);
    other.stop();
    let cfg = other.dir.join("sshd_config");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(&format!("HostKey {}\n", rsa_path.display()), ""),
    )
    .unwrap();
    fleet.start(&mut other);
    fleet.hosts.insert(i, other);
    fleet.wait_ready();
    std::fs::write(kh, format!("{name} {stale}\n")).unwrap();
    let out = check(&fleet, &["--accept-new-host-keys"]).expect(exit::FAILED);
    out.shows(&["HAS CHANGED"]);
    assert_session!("changed", out);
    assert_eq!(
        std::fs::read_to_string(kh).unwrap(),
        format!("{name} {stale}\n")
    );

    // The right key, but revoked.
    std::fs::write(kh, format!("{name} {ed}\n@revoked * {ed}\n")).unwrap();
    let out = check(&fleet, &[]).expect(exit::FAILED);
    out.shows(&["IS REVOKED (line 2"]);
    assert_session!("revoked", out);

    // Only a certificate authority for the host: said plainly.
    std::fs::write(kh, format!("@cert-authority {name} {ed}\n")).unwrap();
    let out = check(&fleet, &["--accept-new-host-keys"]).expect(exit::FAILED);
    out.shows(&["host certificates are not supported"]);
    assert_session!("cert_authority", out);
}

/// A login whose shell is /bin/false: the host error says what happened, not an empty
/// reason with `exit Some(1)`.
#[test]
fn a_login_that_cannot_run_commands_is_told_so() {
    require(
        user_exists("switchyard-noshell"),
        "login `switchyard-noshell` (scripts/test)",
    );
    let fleet = Fleet::new("noshell", 1);
    let session = fleet
        .session_with(&|_, _| "ansible_user: switchyard-noshell\nansible_become: false\n".into());
    let out = session.run(["apply", "--check"]).expect(exit::FAILED);
    assert_session!(out);
    assert!(out.stderr.contains("(exit 1)"), "{}", out.stderr);
    assert!(
        out.stderr.contains("shell refused to run it"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("Some(1)"), "{}", out.stderr);
}

/// `--accept-new-host-keys` with no known_hosts yet: the file starts with the host's entry
/// (no empty first line), and the run says which key it recorded, where.
#[test]
fn accepting_a_new_host_key_says_which_and_starts_no_empty_line() {
    let mut fleet = Fleet::new("hostkeys-new", 0);
    fleet.add_host("pbx1", false);
    fleet.wait_ready();
    let h = &fleet.hosts[0];
    let name = format!("[{}]:{}", h.addr, h.port);
    let kh = fleet.dir.join("fresh/known_hosts");
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let pb = repo("playbooks/wavix.yml");
    let args = [
        "apply",
        "--check",
        "-i",
        inv.to_str().unwrap(),
        &pb,
        "--known-hosts",
        kh.to_str().unwrap(),
        "--accept-new-host-keys",
    ];
    let out = switchyard(&args);
    assert_eq!(out.code, 0, "{}", out.all());
    let text = std::fs::read_to_string(&kh).unwrap();
    let mut key = h.host_pub.split_whitespace();
    let entry = format!("{name} {} {}\n", key.next().unwrap(), key.next().unwrap());
    assert_eq!(text, entry, "one line, the host's");
    let said = format!(
        "added the host key of {name} to {} (--accept-new-host-keys): ",
        kh.display()
    );
    assert!(out.stderr.contains(&said), "{}", out.stderr);
    assert!(out.stderr.contains("SHA256:"), "{}", out.stderr);
    // Known now: nothing more is added, nothing said.
    let again = switchyard(&args);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), entry);
    assert!(
        !again.stderr.contains("added the host key"),
        "{}",
        again.stderr
    );
}
