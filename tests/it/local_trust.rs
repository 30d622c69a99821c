//! What switchyard finds on the controller's own disk and in its inventory sources, when
//! someone other than the operator wrote it: another local user who can write into a shared
//! folder such as `/tmp`, or whoever feeds an inventory script.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

/// Run `sh -c script` as the unprivileged test user: the other local user of the controller.
fn as_nopriv(script: &str) {
    require(
        user_exists(NOPRIV_USER),
        "unprivileged login `switchyard-nopriv`",
    );
    require(
        Path::new("/usr/sbin/runuser").exists(),
        "/usr/sbin/runuser (util-linux)",
    );
    run(Command::new("/usr/sbin/runuser").args(["-u", NOPRIV_USER, "--", "sh", "-c", script]));
}

fn mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// A shared sticky world-writable folder `shared` with a job folder in it, under a fresh
/// scratch folder: (scratch, shared, job).
fn shared_folder(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let d = tmp(tag);
    mode(&d, 0o755);
    let shared = d.join("shared");
    let job = shared.join("job");
    std::fs::create_dir_all(&job).unwrap();
    mode(&shared, 0o1777);
    (d, shared, job)
}

/// Item 11: a `switchyard.toml` another user planted above the job folder, in a sticky
/// world-writable folder, names an inventory script that would run as root and a
/// known_hosts of theirs: it is ignored, with a warning naming it and why. A root-owned
/// file in such a folder is ignored too (its relative paths point where anyone can plant).
#[test]
fn a_switchyard_toml_in_a_shared_folder_is_ignored_whoever_owns_it() {
    let (d, shared, job) = shared_folder("config-trust");
    let marker = d.join("ran-as-root");
    // The other user plants a project file and the script it names, as themselves.
    as_nopriv(&format!(
        "cd {shared} && printf '#!/bin/sh\\ntouch {marker}\\necho {{}}\\n' > evil && chmod 755 evil && printf 'inventory = \"evil\"\\nknown_hosts = \"kh\"\\n' > switchyard.toml",
        shared = shared.display(),
        marker = marker.display()
    ));
    let planted = shared.join("switchyard.toml");
    let out = switchyard_in(&job, &["inventory"], &[]);
    assert!(!marker.exists(), "the planted inventory script ran as root");
    assert_eq!(out.code, 2, "no inventory is left to use: {}", out.all());
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&planted).unwrap());
    assert_ne!(uid, 0, "planted by the other user");
    assert!(
        out.stderr.contains(&format!(
            "warning: ignoring {}: it belongs to uid {uid} (another user than you and root)",
            planted.display()
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("using "), "{}", out.stderr);

    // Root's own file in the sticky folder: its folder is writable by every user.
    std::fs::remove_file(&planted).unwrap();
    std::fs::write(&planted, "inventory = \"evil\"\n").unwrap();
    let out = switchyard_in(&job, &["inventory"], &[]);
    assert!(!marker.exists(), "the script next to root's file ran");
    assert!(
        out.stderr.contains(&format!(
            "warning: ignoring {}: its folder {} is writable by every user (mode 1777)",
            planted.display(),
            shared.display()
        )),
        "{}",
        out.stderr
    );
}

/// A project folder `proj` with a subfolder `sub`, the inventory `inv` copied in and a
/// `switchyard.toml` naming it and an empty known_hosts (so a host is only reachable with
/// `--known-hosts`): (proj, sub, toml).
fn project(d: &Path, inv: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let proj = d.join("proj");
    std::fs::create_dir_all(proj.join("sub")).unwrap();
    std::fs::copy(inv, proj.join("inv.yml")).unwrap();
    std::fs::write(proj.join("kh"), "").unwrap();
    let toml = proj.join("switchyard.toml");
    std::fs::write(&toml, "inventory = \"inv.yml\"\nknown_hosts = \"kh\"\n").unwrap();
    (proj.clone(), proj.join("sub"), toml)
}

/// A safe one is used and named in one line; `-i` and `--known-hosts` on the command line
/// beat the file.
#[test]
fn a_trusted_switchyard_toml_is_used_and_the_command_line_beats_it() {
    let d = tmp("config-used");
    let fleet = Fleet::new("config-used", 1);
    let (proj, sub, toml) = project(&d, fleet.session().inventory_path());
    let out = switchyard_in(&sub, &["inventory"], &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("using "))
            .collect::<Vec<_>>(),
        [format!("using {}", toml.display())],
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("pbx1"), "{}", out.stdout);

    // The file's known_hosts (empty) is used when the command line names none: the host's key
    // is unknown. `--known-hosts` beats it; `-i` beats its inventory.
    let pb = repo("playbooks/wavix.yml");
    let out = switchyard_in(&sub, &["apply", &pb, "--check"], &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    let unknown = format!("is not in {}", proj.join("kh").display());
    assert!(out.all().contains(&unknown), "{}", out.all());
    let fleet_kh = fleet.known_hosts.to_str().unwrap();
    let out = switchyard_in(
        &sub,
        &["apply", &pb, "--check", "--known-hosts", fleet_kh],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let other = d.join("other.ini");
    std::fs::write(&other, "[pbx]\nsolo ansible_connection=local\n").unwrap();
    let out = switchyard_in(&sub, &["inventory", "-i", other.to_str().unwrap()], &[]);
    assert!(
        out.stdout.contains("solo") && !out.stdout.contains("pbx1"),
        "{}",
        out.all()
    );
}

/// A group-writable file is refused as well; the walk stops at a repository root and at the
/// home folder.
#[test]
fn the_walk_for_switchyard_toml_stops_at_a_repository_and_at_home() {
    let d = tmp("config-walk");
    let inv = d.join("fleet.yml");
    let yaml = "all:\n  hosts:\n    pbx1:\n      ansible_connection: local\n";
    std::fs::write(&inv, yaml).unwrap();
    let (proj, sub, toml) = project(&d, &inv);
    mode(&toml, 0o664);
    let out = switchyard_in(&sub, &["inventory"], &[]);
    assert!(
        out.stderr
            .contains("it is writable by its group (mode 0664)"),
        "{}",
        out.stderr
    );
    mode(&toml, 0o644);

    std::fs::create_dir(sub.join(".git")).unwrap();
    let out = switchyard_in(&sub, &["inventory"], &[]);
    assert_eq!(
        out.code,
        2,
        "the file above the repository was used: {}",
        out.all()
    );
    std::fs::remove_dir(sub.join(".git")).unwrap();
    let out = switchyard_in(&sub, &["inventory"], &[("HOME", sub.to_str().unwrap())]);
    assert_eq!(
        out.code,
        2,
        "the file above the home folder was used: {}",
        out.all()
    );
    let out = switchyard_in(&sub, &["inventory"], &[("HOME", proj.to_str().unwrap())]);
    assert_eq!(
        out.code,
        0,
        "the home folder's own file is used: {}",
        out.all()
    );
}

/// Item 12: an inventory script's output is data. Values shaped like `{env: ...}` and
/// `{file: ...}` stay mappings: the controller's vault passphrase and a root-only file never
/// reach the PBX's gateway file (before, the passphrase was pushed as the trunk password).
#[test]
fn an_inventory_scripts_values_are_never_resolved() {
    let fleet = Fleet::new("script-data", 1);
    let secret_file = fleet.dir.join("root-only");
    std::fs::write(&secret_file, "Root-Only-Content-77\n").unwrap();
    mode(&secret_file, 0o600);
    // The fleet's inventory as an inventory script prints it (Ansible's `--list` JSON).
    let inv = std::fs::read_to_string(fleet.session().inventory_path()).unwrap();
    let yaml: serde_json::Value = yaml_serde::from_str(&inv).unwrap();
    let pbx = &yaml["all"]["children"]["pbx"];
    let mut vars = pbx["vars"].clone();
    vars["wavix_password"] = serde_json::json!({"env": "SWITCHYARD_VAULT_PASSWORD"});
    vars["wavix_username"] = serde_json::json!({"file": secret_file});
    let hosts = pbx["hosts"].as_object().unwrap();
    let list = serde_json::json!({
        "pbx": {"hosts": hosts.keys().collect::<Vec<_>>(), "vars": vars},
        "_meta": {"hostvars": hosts},
    });
    let json = fleet.dir.join("list.json");
    std::fs::write(&json, list.to_string()).unwrap();
    let script = fleet.dir.join("cmdb");
    std::fs::write(&script, format!("#!/bin/sh\ncat {}\n", json.display())).unwrap();
    mode(&script, 0o755);
    let passphrase = "Controller-Vault-Pass-4242";
    let env = [("SWITCHYARD_VAULT_PASSWORD", passphrase)];
    let s = script.to_str().unwrap();

    let out = switchyard_env(&["inventory", "-i", s, "--json"], &env);
    assert_eq!(out.code, 0, "{}", out.all());
    // Still mappings (`inventory` masks whatever sits under a password-like name).
    let host = &out.json()["hosts"][0]["vars"];
    assert_eq!(
        host["wavix_password"],
        serde_json::json!({"env": "********"}),
        "{}",
        out.stdout
    );
    assert_eq!(
        host["wavix_username"],
        serde_json::json!({"file": secret_file}),
        "{}",
        out.stdout
    );

    let out = fleet
        .session_on(&script)
        .env("SWITCHYARD_VAULT_PASSWORD", passphrase)
        .run(["apply", "--no-verify"]);
    let pushed = std::fs::read_dir(fleet.hosts[0].conf("sip_profiles/external"))
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect::<String>()
        })
        .unwrap_or_default();
    // The gateway was written, with the reference as plain text: the data it was.
    assert!(
        pushed.contains("value=\"{&apos;env&apos;: &apos;SWITCHYARD_VAULT_PASSWORD&apos;}\""),
        "{}\n{pushed}",
        out.all()
    );
    for (what, text) in [
        ("the PBX's gateway files", &pushed),
        ("the output", &out.all()),
    ] {
        assert!(
            !text.contains(passphrase),
            "{what} carry the vault passphrase:\n{text}"
        );
        assert!(
            !text.contains("Root-Only-Content"),
            "{what} carry the root-only file:\n{text}"
        );
    }
}

/// Run with a guard: a switchyard still running after a minute (the old code blocked on
/// a FIFO forever) is killed and the test fails. Not a timing assertion: the fixed code
/// answers at once, the guard only keeps a regression from hanging the suite.
fn switchyard_guarded(args: &[&str]) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("switchyard {args:?} still running after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Item 13: a `{file: ...}` secret must be a regular file of at most 1 MiB. A FIFO (which
/// blocked the run forever), `/dev/zero` (read until memory ran out) and a 2 MiB file get
/// one error each naming the variable and the file, never any content.
#[test]
fn file_secrets_are_regular_files_of_bounded_size() {
    let d = tmp("file-secrets");
    let fifo = d.join("fifo");
    run(Command::new("mkfifo").arg(&fifo));
    let big = d.join("big");
    std::fs::write(&big, "Big-Secret-Content-".repeat(2 * 1024 * 1024 / 19 + 1)).unwrap();
    for (file, why) in [
        (fifo.to_str().unwrap(), "it is a FIFO, not a regular file"),
        ("/dev/zero", "it is a character device, not a regular file"),
        (big.to_str().unwrap(), "it is larger than 1048576 bytes"),
    ] {
        let inv = d.join("inv.yml");
        std::fs::write(
            &inv,
            format!("all:\n  hosts:\n    pbx1:\n      ansible_connection: local\n      trunk_password: {{file: {file}}}\n"),
        )
        .unwrap();
        let out = switchyard_guarded(&["inventory", "-i", inv.to_str().unwrap()]);
        assert_eq!(out.code, 1, "{}", out.all());
        assert_eq!(
            out.stderr.trim(),
            format!(
                "error: {}:5: host `pbx1`: variable `trunk_password`: secret file {file}: {why}",
                inv.display()
            ),
        );
        assert!(!out.all().contains("Big-Secret"), "{}", out.all());
    }
    // A regular file just under the limit is read (a trailing newline dropped), and masked.
    std::fs::write(&big, format!("{}\n", "k".repeat(1024 * 1024 - 1))).unwrap();
    let out = switchyard_guarded(&["inventory", "-i", d.join("inv.yml").to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("trunk_password: \"********\""),
        "{}",
        out.stdout
    );
}
