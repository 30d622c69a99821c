//! A hostile PBX: the `freeswitch` user owns the conf root (as on a packaged install) and
//! plants links and folders in it, before or between runs. switchyard writes there as root
//! over real sshd; nothing it does may follow a link out of the conf root or write through
//! a name the `freeswitch` user controls.

use std::path::Path;
use std::process::Command;

use crate::harness::*;

/// Run a shell command as the `freeswitch` user (the attacker), in `dir`.
fn as_freeswitch(dir: &Path, cmd: &str) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "freeswitch", "--", "sh", "-c", cmd])
        .current_dir(dir)
        .output()
        .expect("runuser")
}

/// A one-host fleet whose conf root belongs to `freeswitch`, plus a root-owned file
/// outside it that the attacker would love root to overwrite.
fn hostile(tag: &str) -> (Fleet, std::path::PathBuf, std::path::PathBuf) {
    let fleet = Fleet::new(tag, 1);
    let conf = fleet.hosts[0].dir.join("conf");
    run(Command::new("chown")
        .args(["-R", "freeswitch:freeswitch"])
        .arg(&conf));
    let victim = fleet.dir.join("victim");
    std::fs::write(&victim, "root's precious file\n").unwrap();
    let outside = fleet.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    run(Command::new("chown")
        .args(["freeswitch:freeswitch"])
        .arg(&outside));
    (fleet, victim, outside)
}

#[test]
fn the_lock_and_state_record_never_follow_a_planted_link() {
    let (fleet, victim, _) = hostile("hostile-lock");
    let conf = fleet.hosts[0].dir.join("conf");
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    let first = fleet.run("apply", &inv, &[]);
    assert_eq!(first.code, 0, "{}", first.all());

    // switchyard's folder is its own: 0700, owned by the login; `freeswitch` cannot plant
    // anything in it.
    let planted = as_freeswitch(
        &conf,
        &format!("ln -s {} .switchyard/lock.owner", victim.display()),
    );
    assert!(
        !planted.status.success(),
        "freeswitch could write in .switchyard"
    );

    // So it replaces the whole folder (it owns the conf root): its own folder, with the
    // lock and the owner file linked to the victim.
    let swap = as_freeswitch(
        &conf,
        &format!(
            "mv .switchyard .old && mkdir .switchyard && for f in lock lock.owner; do ln -s {} .switchyard/$f; done",
            victim.display()
        ),
    );
    assert!(swap.status.success(), "{swap:?}");
    let inv2 = fleet.inventory("inv2.yml", &|_, _| "wavix_password: rotated-pass\n".into());
    let out = fleet.run("apply", &inv2, &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.all().contains("belongs to freeswitch"), "{}", out.all());
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root's precious file\n"
    );

    // The record linked to the victim: never read, never written.
    let swap = as_freeswitch(
        &conf,
        &format!("ln -s {} .switchyard/state.json", victim.display()),
    );
    assert!(swap.status.success(), "{swap:?}");
    let out = fleet.run("apply", &inv2, &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.all().contains("state.json is a symbolic link"),
        "{}",
        out.all()
    );
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root's precious file\n"
    );

    // Or a link as the folder itself.
    let swap = as_freeswitch(
        &conf,
        &format!(
            "rm -r .switchyard && ln -s {} .switchyard",
            fleet.dir.display()
        ),
    );
    assert!(swap.status.success(), "{swap:?}");
    let out = fleet.run("apply", &inv2, &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.all().contains(".switchyard"), "{}", out.all());
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root's precious file\n"
    );
    assert!(!fleet.dir.join("lock").exists() && !fleet.dir.join("state.json").exists());

    // The operator removes it; the next run converges.
    std::fs::remove_file(conf.join(".switchyard")).unwrap();
    fleet.hosts[0].set_provider_password("sip.test", "trunk1", "rotated-pass");
    let out = fleet.run("apply", &inv2, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn a_folder_linked_out_of_the_conf_root_is_refused() {
    let (fleet, victim, outside) = hostile("hostile-dir");
    let conf = fleet.hosts[0].dir.join("conf");
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    // Before the first run: the gateway folder is a link to a folder outside.
    let swap = as_freeswitch(
        &conf,
        &format!(
            "mv sip_profiles/external x && ln -s {} sip_profiles/external",
            outside.display()
        ),
    );
    assert!(swap.status.success(), "{swap:?}");
    for extra in [&[][..], &["--check"][..]] {
        let out = fleet.run("apply", &inv, extra);
        assert_eq!(out.code, 1, "{extra:?}: {}", out.all());
        assert!(
            out.all().contains("outside the conf root"),
            "{extra:?}: {}",
            out.all()
        );
    }
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "a file was written outside"
    );

    // The managed file itself a link to a root file: refused with a clear error, the
    // target untouched (never read into a diff, never written).
    as_freeswitch(
        &conf,
        "rm sip_profiles/external && mv x sip_profiles/external",
    );
    let link = as_freeswitch(
        &conf,
        &format!("ln -s {} sip_profiles/external/wavix.xml", victim.display()),
    );
    assert!(link.status.success(), "{link:?}");
    let out = fleet.run("apply", &inv, &["--check", "--diff"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.all().contains("is a symbolic link"), "{}", out.all());
    assert!(
        !out.all().contains("precious"),
        "the link was read: {}",
        out.all()
    );
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root's precious file\n"
    );
}
