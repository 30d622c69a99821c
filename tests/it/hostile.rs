//! A hostile PBX: the `freeswitch` user owns the conf root (as on a packaged install) and
//! plants links and folders in it, before or between runs. switchyard writes there as root
//! over real sshd; nothing it does may follow a link out of the conf root or write through
//! a name the `freeswitch` user controls.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::*;
use crate::session::exit;

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
    let session = fleet.session();
    let first = session.run(["apply"]);
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
    let session2 = fleet.session_with(&|_, _| "wavix_password: rotated-pass\n".into());
    let out = session2.run(["apply"]);
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
    let out = session2.run(["apply"]);
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
    let out = session2.run(["apply"]);
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
    let out = session2.run(["apply"]);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn a_folder_linked_out_of_the_conf_root_is_refused() {
    let (fleet, victim, outside) = hostile("hostile-dir");
    let conf = fleet.hosts[0].dir.join("conf");
    let session = fleet.session();
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
        let out = session.run([&["apply"][..], extra].concat());
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
    let out = session.run(["apply", "--check", "--diff"]);
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

/// The sha256 of `bytes`, as `sha256sum` prints it.
fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sh")
        .args(["-c", "sha256sum | cut -d' ' -f1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `python3 -c PROGRAM` run directly as `user` (no runuser in between, so killing the
/// child kills the program).
fn python_as(user: &str, program: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let id = |flag: &str| -> u32 {
        run(Command::new("id").args([flag, user]))
            .trim()
            .parse()
            .unwrap()
    };
    let mut c = Command::new("python3");
    c.args(["-u", "-c", program])
        .uid(id("-u"))
        .gid(id("-g"))
        .env("HOME", "/");
    c
}

/// Every process's arguments on this machine (the PBX's side of the test fleet).
fn process_list() -> Vec<(u32, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            v.push((pid, String::from_utf8_lossy(&c).replace('\0', " ")));
        }
    }
    v
}

/// Item 2 of issue 21: `freeswitch` grows a managed file far beyond any conf file. The host
/// refuses it by its size before any of it travels, for that host only, naming the file and
/// the limit; the limit is the inventory's `freeswitch_max_file_bytes`.
#[test]
fn a_managed_file_over_the_size_limit_is_refused_on_the_host_unread() {
    let fleet = Fleet::new("hostile-big", 2);
    let conf = fleet.hosts[0].dir.join("conf");
    run(Command::new("chown")
        .args(["-R", "freeswitch:freeswitch"])
        .arg(&conf));
    let session = fleet.session();
    let first = session.run(["apply"]);
    assert_eq!(first.code, 0, "{}", first.all());

    let grow = as_freeswitch(&conf, "truncate -s 9M sip_profiles/external/wavix.xml");
    assert!(grow.status.success(), "{grow:?}");
    let out = session.run(["drift"]);
    let pbx1 = host_line(&out, "pbx1");
    assert!(
        pbx1.starts_with("pbx1: ERROR ")
            && pbx1.contains("sip_profiles/external/wavix.xml")
            && pbx1.contains("is 9437184 bytes, larger than the limit of 8388608 bytes"),
        "{}",
        out.all()
    );
    nothing_to_correct(&out, "pbx2");
    assert_ne!(out.code, 0);

    // pbx1 with its own `freeswitch_max_file_bytes`.
    let pbx1_limit = |limit: &str| {
        let line = format!("freeswitch_max_file_bytes: {limit}\n");
        fleet.session_with(&|i, _| match i {
            0 => line.clone(),
            _ => String::new(),
        })
    };
    // A larger limit for this host: the file is read, and is drift like any other change.
    let out = pbx1_limit("16777216").run(["drift"]);
    assert!(
        out.all()
            .contains("pbx1: drift sip_profiles/external/wavix.xml"),
        "{}",
        out.all()
    );
    assert_eq!(out.code, 3, "{}", out.all());

    // A limit that is not a number: one clear error for that host.
    let out = pbx1_limit("lots").run(["drift"]);
    assert!(
        out.all().contains(
            "pbx1: ERROR freeswitch_max_file_bytes: `\"lots\"` is not a positive number of bytes"
        ),
        "{}",
        out.all()
    );
    nothing_to_correct(&out, "pbx2");
}

/// Item 4 of issue 21: `freeswitch` swaps a managed file for a FIFO and back, over and
/// over, while switchyard gathers. Opening a FIFO for reading blocks until someone writes:
/// the gather used to hang until its timeout and leave a root `cat` blocked on the PBX.
/// Now no gather ever times out (the file is opened read-write, which never blocks, and
/// judged on its descriptor), and no switchyard process is left behind.
#[test]
fn a_managed_file_swapped_for_a_fifo_never_blocks_the_gather() {
    let (fleet, _, _) = hostile("hostile-fifo");
    let conf = fleet.hosts[0].dir.join("conf");
    let session = fleet.session_with(&|_, _| "command_timeout: 3\n".into());
    let first = session.run(["apply"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let dir = conf.join("sip_profiles/external");
    // The attacker: swap the file and a FIFO by rename(2), as fast as it can.
    let mut swapper = python_as(
        "freeswitch",
        "import os\nos.mkfifo('p')\nwhile True:\n    os.rename('wavix.xml', 't')\n    os.rename('p', 'wavix.xml')\n    os.rename('wavix.xml', 'p')\n    os.rename('t', 'wavix.xml')\n",
    );
    swapper.current_dir(&dir);
    let mut swapper = swapper.spawn().unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        let out = session.run(["drift"]);
        outcomes.push(out.all());
    }
    let _ = swapper.kill();
    let _ = swapper.wait();
    for o in &outcomes {
        assert!(!o.contains("timed out"), "a gather blocked: {o}");
    }
    let left: Vec<_> = process_list()
        .into_iter()
        .filter(|(_, c)| c.contains(&conf.display().to_string()) && !c.contains("python3"))
        .collect();
    assert!(left.is_empty(), "processes left on the PBX: {left:?}");
}

/// A managed file swapped for a link to a root-only file, as fast as the `freeswitch` user
/// can, while `drift` gathers again and again: the gather opens by name (`<>` follows a link),
/// so it must check that what it opened is what the name holds now and is no link; the
/// root-only content never reaches a diff (and no file appears at a dangling target).
#[test]
fn a_managed_file_swapped_for_a_link_never_shows_another_files_content() {
    let (fleet, _, _) = hostile("hostile-linkswap");
    let conf = fleet.hosts[0].dir.join("conf");
    let session = fleet.session_with(&|_, _| "command_timeout: 10\n".into());
    let first = session.run(["apply"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let secret = fleet.dir.join("root-only.txt");
    std::fs::write(&secret, "Root-Only-Shadow-Line-91\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let dir = conf.join("sip_profiles/external");
    let mut swapper = python_as(
        "freeswitch",
        &format!(
            "import os\nos.symlink({:?}, 'l')\nwhile True:\n    os.rename('wavix.xml', 't')\n    os.rename('l', 'wavix.xml')\n    os.rename('wavix.xml', 'l')\n    os.rename('t', 'wavix.xml')\n",
            secret.display().to_string()
        ),
    );
    swapper.current_dir(&dir);
    let mut swapper = swapper.spawn().unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        outcomes.push(session.run(["drift", "--diff"]).all());
    }
    let _ = swapper.kill();
    let _ = swapper.wait();
    for o in &outcomes {
        assert!(
            !o.contains("Root-Only-Shadow-Line-91"),
            "another file's content: {o}"
        );
    }
}

/// The same swap against the gather program alone, a thousand times in a row (the drift runs
/// above catch the race only now and then: the name is checked twice, by `-L` and `-ef`, and
/// was seen to be the file at one look and the link at the other). Nothing it answers may
/// hold the root-only line, and between swaps it still reads the real file.
#[test]
fn the_gather_never_reads_through_a_link_swapped_in_between_its_looks() {
    let (fleet, _, _) = hostile("hostile-gatherswap");
    let conf = fleet.hosts[0].dir.join("conf");
    let secret = fleet.dir.join("root-only.txt");
    std::fs::write(&secret, "Root-Only-Shadow-Line-92\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let dir = conf.join("sip_profiles/external");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("wavix.xml"), "<gateway name=\"wavix\"/>\n").unwrap();
    run(Command::new("chown").args(["-R", "freeswitch:"]).arg(&conf));
    let mut swapper = python_as(
        "freeswitch",
        &format!(
            "import os\nos.symlink({:?}, 'l')\nwhile True:\n    os.rename('wavix.xml', 't')\n    os.rename('l', 'wavix.xml')\n    os.rename('wavix.xml', 'l')\n    os.rename('t', 'wavix.xml')\n",
            secret.display().to_string()
        ),
    );
    let mut swapper = swapper.current_dir(&dir).spawn().unwrap();
    let file = dir.join("wavix.xml").display().to_string();
    let program = switchyard::host::script::gather(&conf.display().to_string(), 1 << 20, &[&file]);
    // Half the runs under bash (batches of 100), half where the login has no bash (a PATH
    // holding only what the POSIX sh program runs).
    let no_bash = fleet.dir.join("no-bash");
    std::fs::create_dir_all(&no_bash).unwrap();
    for tool in ["sh", "stat", "sha256sum", "readlink", "head"] {
        let at = run(Command::new("sh").args(["-c", &format!("command -v {tool}")]));
        std::os::unix::fs::symlink(at.trim(), no_bash.join(tool)).unwrap();
    }
    let (mut leaked, mut read) = (0, 0);
    for i in 0..1000 {
        let mut gather = Command::new("sh");
        if i % 2 == 1 {
            gather.env("PATH", &no_bash);
        }
        let out = gather
            .args(["-c", &program])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        leaked += usize::from(out.contains("Root-Only-Shadow-Line-92"));
        read += usize::from(out.contains("<gateway name="));
    }
    let _ = swapper.kill();
    let _ = swapper.wait();
    assert_eq!(leaked, 0, "answers holding the root-only file's content");
    assert!(read > 0, "the real file was never read between swaps");
}

/// The attacker of the process-list test: an unprivileged login printing every process's
/// arguments it sees, into a file (a pipe nobody reads while the applies run would fill
/// and stop it). The watcher and the file.
fn watch_process_lists(fleet: &Fleet) -> (std::process::Child, std::path::PathBuf) {
    let mut watcher = python_as(
        NOPRIV_USER,
        "import os\nseen = set()\nwhile True:\n    for p in os.listdir('/proc'):\n        try:\n            c = open('/proc/%s/cmdline' % p, 'rb').read()\n        except OSError:\n            continue\n        if c not in seen:\n            seen.add(c)\n            print(c.replace(b'\\0', b' ').decode('utf-8', 'replace').replace('\\n', ' '))\n",
    );
    let seen_path = fleet.dir.join("seen.txt");
    let watcher = watcher
        .stdout(std::fs::File::create(&seen_path).unwrap())
        .spawn()
        .unwrap();
    (watcher, seen_path)
}

/// Items 14 and 15 of issue 21: any local user of a PBX reads every process's arguments.
/// An unprivileged user watching /proc/*/cmdline throughout two applies (FreeSWITCH steps
/// run in both) never sees the event socket password of the `fs_cli` line, nor the plain
/// sha256 of a file that holds the trunk password; `-vv` shows neither; `inventory --host`
/// masks the password. The stand-in's event socket accepts only that password, so the
/// steps succeeding proves fs_cli received it (from its conf file).
#[test]
fn no_secret_or_secret_digest_is_ever_in_a_pbx_process_list() {
    const ESL: &str = "EslS3cretPw";
    let fleet = Fleet::new("hostile-ps", 1);
    let h = &fleet.hosts[0];
    let cfg_path = h.dir.join("bin/standin.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["esl_password"] = ESL.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let fs_cli = format!(
        "fs_cli: \"{} -H 127.0.0.1 -P 8021 -p {ESL}\"\n",
        h.fs_cli().display()
    );
    let session = fleet.session_with(&|_, _| fs_cli.clone());
    let (mut watcher, seen_path) = watch_process_lists(&fleet);
    session.run(["apply"]).expect(exit::OK);
    let old = std::fs::read(h.conf("sip_profiles/external/wavix.xml")).unwrap();
    // A rotated trunk password: the write expects the old file (its hash checked on the
    // host), and killgw + rescan run.
    let rotated = session.vars(&|_, _| format!("{fs_cli}wavix_password: rotated-pass\n"));
    h.set_provider_password("sip.test", "trunk1", "rotated-pass");
    let second = rotated.run(["apply", "-vv", "-D"]).expect(exit::OK);
    let new = std::fs::read(h.conf("sip_profiles/external/wavix.xml")).unwrap();
    assert!(
        h.fs_log().iter().any(|c| c.contains("killgw")),
        "{:?}",
        h.fs_log()
    );

    let _ = watcher.kill();
    let _ = watcher.wait();
    let seen = String::from_utf8_lossy(&std::fs::read(&seen_path).unwrap()).into_owned();
    // The watcher did see switchyard's FreeSWITCH commands run.
    assert!(
        seen.lines()
            .any(|l| l.contains("-x") && l.contains("bin/fs_cli")),
        "the watcher saw no fs_cli process:\n{seen}"
    );
    let digests = [sha256_hex(&old), sha256_hex(&new)];
    for l in seen.lines() {
        assert!(!l.contains(ESL), "the ESL password in a process list: {l}");
        for d in &digests {
            assert!(
                !l.contains(d.as_str()),
                "a secret file's sha256 in a process list: {l}"
            );
        }
    }
    // -vv shows the commands, never the password nor a plain digest of that file.
    assert!(second.stderr.contains("write"), "{}", second.stderr);
    second.never_shows(&[ESL, &digests[0], &digests[1]]);

    // The inventory listing masks it too.
    let inv = session.inventory_path().to_str().unwrap();
    for extra in [&[][..], &["--json"][..]] {
        let args = [&["inventory", "-i", inv, "--host", "pbx1"][..], extra].concat();
        let out = session.run_raw(args).expect(exit::OK);
        out.never_shows(&[ESL]).shows(&["-p ********"]);
    }
}

/// A remote command that outlives its timeout is ended on the host with everything it
/// started: closing the SSH channel alone left it running (as root) forever.
#[test]
fn a_command_timeout_leaves_no_process_behind_on_the_pbx() {
    let fleet = Fleet::new("hostile-timeout", 1);
    // An fs_cli that hangs (everything after `#` is a comment to the shell).
    let session =
        fleet.session_with(&|_, _| "fs_cli: \"sleep 3017 #\"\ncommand_timeout: 2\n".into());
    let out = session.run(["apply", "--no-verify"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.all().contains("timed out"), "{}", out.all());
    let hung = || -> Vec<(u32, String)> {
        process_list()
            .into_iter()
            .filter(|(_, c)| c.trim() == "sleep 3017")
            .collect()
    };
    // The host-side timeout ends it (TERM at once, KILL after a grace of 5 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !hung().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let left = hung();
    for (pid, _) in &left {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    assert!(left.is_empty(), "left running on the PBX: {left:?}");
}

/// What a PBX answers reaches the operator's terminal escaped: a FreeSWITCH answer carrying a
/// line break and an escape sequence can neither print a line that passes for another host's
/// block nor drive the terminal (issue 21, item 7).
#[test]
fn a_pbx_answer_cannot_forge_a_line_or_drive_the_terminal() {
    let fleet = Fleet::new("hostile-forge", 1);
    // An fs_cli whose every answer is an error with a forged host line and a screen clear
    // (everything after `#` is a comment to the shell; `\055` is the `-`, which as a word's
    // first character would be read as an fs_cli option).
    let session = fleet.session_with(&|_, _| {
        "fs_cli: \"printf '\\\\055ERR nope\\\\npbx-forged [ok]\\\\033[2J\\\\n' #\"\n".into()
    });
    let out = session.run(["apply", "--no-verify"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.all().contains("-ERR nope"), "{}", out.all());
    assert!(
        !out.all().contains('\u{1b}'),
        "an escape reached the terminal: {}",
        out.all()
    );
    assert!(out.all().contains("\\u{1b}[2J"), "{}", out.all());
    for l in out.all().lines() {
        assert!(
            !l.starts_with("pbx-forged"),
            "a forged host line: {}",
            out.all()
        );
    }
}

/// The drift line of `host` in `out` (empty when there is none).
fn host_line(out: &Out, host: &str) -> String {
    let prefix = format!("{host}: ");
    out.all()
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_default()
        .to_string()
}

/// `host` has a drift line and nothing to correct on it (its restart is still owed: the
/// harness allows none).
fn nothing_to_correct(out: &Out, host: &str) {
    let l = host_line(out, host);
    assert!(
        !l.is_empty() && !l.contains("ERROR") && !l.contains("drift "),
        "{}",
        out.all()
    );
}
