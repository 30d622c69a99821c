//! Files the controller writes, in folders someone else may write to (issue 21): what a
//! local user plants there must never make switchyard write through a link, and what
//! switchyard keeps there must not be readable by everyone.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::harness::*;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

/// Item 9: a history folder shared with the `freeswitch` group; its member plants
/// `wavix.retry -> a root-only file`. A failed rollout must not truncate that file.
#[test]
fn a_retry_link_planted_in_a_shared_history_folder_is_never_written_through() {
    let fleet = Fleet::new("retrylink", 1);
    let dir = tmp("retry-link");
    let shared = dir.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o775)).unwrap();
    let fs_gid = run(std::process::Command::new("id").args(["-g", "freeswitch"]));
    std::os::unix::fs::chown(&shared, None, Some(fs_gid.trim().parse().unwrap())).unwrap();
    let victim = dir.join("root-only.conf");
    std::fs::write(&victim, "root only\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let planted = shared.join("wavix.retry");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let fs_uid = run(std::process::Command::new("id").args(["-u", "freeswitch"]));
    std::os::unix::fs::lchown(&planted, Some(fs_uid.trim().parse().unwrap()), None).unwrap();
    // pbx1 cannot be rendered: the rollout fails and names it in a retry file.
    let session = fleet.session_with(&|_, _| "numbering_plan: atlantis\n".into());
    let history = shared.join("history.db");
    let out = session.run(["apply", "--history", history.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root only\n");
    assert_eq!(mode(&victim), 0o600);
    assert!(
        out.stderr.contains("cannot write the retry file") && out.stderr.contains("symbolic link"),
        "{}",
        out.stderr
    );
    // The link is left as planted; nothing else appeared beside the history.
    assert!(std::fs::symlink_metadata(&planted)
        .unwrap()
        .file_type()
        .is_symlink());
    let mut names: Vec<String> = std::fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("history.db"))
        .collect();
    names.sort();
    assert_eq!(names, ["wavix.retry"]);

    // Without the link, the retry file is written, private to its owner.
    std::fs::remove_file(&planted).unwrap();
    let out = session.run(["apply", "--history", history.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "pbx1\n");
    assert_eq!(mode(&planted), 0o600);
}

/// Item 10: the history holds every host's reports. A new one is created 0600 in a 0700
/// folder; an existing one others can read is reported, every time it is opened.
#[test]
fn the_history_is_private_and_a_readable_one_is_reported() {
    let dir = tmp("history-mode");
    let history = dir.join("state/switchyard/history.db");
    let h = history.to_str().unwrap();
    let out = switchyard(&["history", "--history", h]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(mode(&history), 0o600);
    assert_eq!(mode(&dir.join("state/switchyard")), 0o700);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);

    std::fs::set_permissions(&history, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = switchyard(&["history", "--history", h]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains(&format!(
            "warning: history {h} is open to other users (mode 0644)"
        )),
        "{}",
        out.stderr
    );
    // Left as it is: its owner may mean to share it.
    assert_eq!(mode(&history), 0o644);
}

/// The same rule for the vault, which writes beside group_vars and host_vars: its old
/// predictable `NAME.switchyard-tmp`, planted as a link, is never written through, and a
/// decrypted file is 0600 even over a 0644 one.
#[test]
fn the_vault_never_writes_through_a_planted_link() {
    let dir = tmp("vault-link");
    let plain = dir.join("pbx.yml");
    std::fs::write(&plain, "wavix_password: hunter2-long-secret\n").unwrap();
    let victim = dir.join("root-only.conf");
    std::fs::write(&victim, "root only\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("pbx.switchyard-tmp")).unwrap();
    let env = [("SWITCHYARD_VAULT_PASSWORD", "correct horse battery")];
    let out = switchyard_env(&["vault", "encrypt", plain.to_str().unwrap()], &env);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root only\n");
    let age = dir.join("pbx.age");
    assert!(std::fs::read_to_string(&age)
        .unwrap()
        .contains("AGE ENCRYPTED"));
    assert_eq!(mode(&age), 0o600);

    let back = dir.join("back.yml");
    std::fs::write(&back, "").unwrap();
    std::fs::set_permissions(&back, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = switchyard_env(
        &[
            "vault",
            "decrypt",
            age.to_str().unwrap(),
            "--out",
            back.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "wavix_password: hunter2-long-secret\n"
    );
    assert_eq!(mode(&back), 0o600);
}
