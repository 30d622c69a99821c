//! The command line as a user meets it: each test runs the binary and snapshots what the
//! user sees — the command, the exit code, stdout and stderr — with temporary paths and
//! timings filtered out. `INSTA_UPDATE=always cargo test --test it -- cli` updates them.

use std::path::Path;

use crate::harness::{repo, switchyard_env};
use crate::session::Demo;

/// Replace what changes from run to run: the temporary folder, the repository path, and
/// durations (`0.42 s`, `1.3s`).
fn filter(text: &str, tmp: Option<&Path>) -> String {
    let mut t = text.to_string();
    if let Some(d) = tmp {
        t = t.replace(&d.to_string_lossy().into_owned(), "[TMP]");
    }
    t = t.replace(env!("CARGO_MANIFEST_DIR"), "[REPO]");
    // Durations: digits, '.', digits, optional space, 's' followed by a non-letter.
    let b = t.as_bytes();
    let mut out = String::with_capacity(t.len());
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j < b.len() && b[j] == b'.' {
                let mut k = j + 1;
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
                let mut s = k;
                if s < b.len() && b[s] == b' ' {
                    s += 1;
                }
                if k > j + 1
                    && s < b.len()
                    && b[s] == b's'
                    && (s + 1 == b.len() || !b[s + 1].is_ascii_alphabetic())
                {
                    out.push_str("[TIME]");
                    i = s + 1;
                    continue;
                }
            }
        }
        let c = t[start..].chars().next().unwrap();
        out.push(c);
        i = start + c.len_utf8();
    }
    out
}

/// One session: the command line, its exit code, stdout and stderr, as one snapshot text.
fn session(args: &[&str], env: &[(&str, &str)], tmp: Option<&Path>) -> String {
    let out = switchyard_env(args, env);
    let shown: Vec<String> = args.iter().map(|a| filter(a, tmp)).collect();
    format!(
        "$ switchyard {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        shown.join(" "),
        out.code,
        filter(&out.stdout, tmp),
        filter(&out.stderr, tmp)
    )
}

#[test]
fn the_filter_hides_only_what_changes() {
    assert_eq!(
        filter("took 0.42 s, 1.3s; v1.2 and 10 ms and 3.5sec", None),
        "took [TIME], [TIME]; v1.2 and 10 ms and 3.5sec"
    );
}

#[test]
fn no_command_is_a_usage_error_with_the_exit_codes_in_help() {
    insta::assert_snapshot!(session(&[], &[], None));
    let help = switchyard_env(&["--help"], &[]);
    assert_eq!(help.code, 0);
    insta::assert_snapshot!(help.stdout);
}

#[test]
fn every_option_of_apply_says_what_it_does() {
    let help = switchyard_env(&["apply", "--help"], &[]);
    assert_eq!(help.code, 0);
    insta::assert_snapshot!(help.stdout);
    // No option or argument without a help text, on any verb.
    for verb in [
        "apply",
        "verify",
        "lint",
        "inventory",
        "plan",
        "drift",
        "watch",
        "history",
        "demo",
        "completions",
        "route",
        "trunks measure",
    ] {
        let args: Vec<&str> = verb.split(' ').chain(["--help"]).collect();
        let h = switchyard_env(&args, &[]).stdout;
        let mut lines = h.lines().peekable();
        while let Some(l) = lines.next() {
            let t = l.trim_start();
            // Options and arguments; not the `- value: text` lines of a value list.
            let is_item = (t.starts_with('-') || t.starts_with('<'))
                && !t.starts_with("- ")
                && l.starts_with("  ");
            if !is_item {
                continue;
            }
            // clap puts the help after the names on the same line, or on the next line
            // (long help), indented further.
            let has_text = t.split("  ").filter(|p| !p.trim().is_empty()).count() > 1
                || lines
                    .peek()
                    .is_some_and(|n| n.starts_with("          ") && !n.trim().is_empty());
            assert!(
                has_text,
                "`switchyard {verb} --help`: `{t}` has no help text"
            );
        }
    }
}

#[test]
fn lint_without_arguments_is_a_usage_error() {
    insta::assert_snapshot!(session(&["lint"], &[], None));
}

#[test]
fn verify_refuses_the_flags_of_apply() {
    for flag in [
        "--check",
        "--diff",
        "--no-verify",
        "--serial=1",
        "--plan=x.json",
    ] {
        let out = switchyard_env(&["verify", "-i", "inv.yml", "pb.yml", flag], &[]);
        assert_eq!(out.code, 2, "verify {flag}: {}", out.stderr);
        assert!(
            out.stderr.contains("unexpected argument"),
            "verify {flag}: {}",
            out.stderr
        );
    }
    insta::assert_snapshot!(session(
        &["verify", "-i", "inv.yml", "pb.yml", "--check"],
        &[],
        None
    ));
}

#[test]
fn zero_forks_and_bad_values_are_usage_errors() {
    insta::assert_snapshot!(session(
        &["apply", "-i", "inv.yml", "pb.yml", "--forks", "0"],
        &[],
        None
    ));
    // Values clap cannot judge are still usage errors (2), said before any file is read.
    insta::assert_snapshot!(session(
        &["apply", "-i", "no-such.yml", "pb.yml", "--serial", "0%"],
        &[],
        None
    ));
    insta::assert_snapshot!(session(
        &["watch", "-i", "no-such.yml", "pb.yml", "--every", "5x"],
        &[],
        None
    ));
    // A missing input is not a usage error: 1, naming the file.
    let out = switchyard_env(&["apply", "-i", "no-such.yml", "pb.yml"], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("no-such.yml"), "{}", out.stderr);
}

#[test]
fn lint_says_what_it_checked() {
    let conf = repo("tests/fixtures/guide/registration");
    let out = switchyard_env(&["lint", "--conf", &conf], &[]);
    assert!(
        out.stderr.contains("lint checked ") && out.stderr.contains(" files in "),
        "{}",
        out.stderr
    );
    let Demo {
        dir,
        inventory: inv,
        playbook: pb,
    } = Demo::new("cli-lint", false);
    insta::assert_snapshot!(session(&["lint", "-i", &inv, &pb], &[], Some(&dir)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_and_man_page_come_from_the_real_command_line() {
    let bash = switchyard_env(&["completions", "bash"], &[]);
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    // Every verb and an option of one are completed.
    for word in ["apply", "drift", "--fail-on-pending", "--vault-identity"] {
        assert!(bash.stdout.contains(word), "{word} not completed");
    }
    let zsh = switchyard_env(&["completions", "zsh"], &[]);
    assert!(
        zsh.stdout.starts_with("#compdef switchyard"),
        "{}",
        zsh.stdout
    );
    let man = switchyard_env(&["man"], &[]);
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(man.stdout.contains(".TH switchyard"), "{}", man.stdout);
    assert!(man.stdout.contains("drift"), "{}", man.stdout);
}

/// A first session with the demo fleet, as the README tells a new user to run it: the
/// dry run, the apply with its recap, and the run after that which changes nothing. Host
/// order is fixed with `--forks 1` so the snapshot is stable.
#[test]
fn a_new_users_session_with_the_demo_fleet() {
    let demo = Demo::new("cli-demo", false);
    let dir = &demo.dir;
    let (inv, pb) = (demo.inventory.as_str(), demo.playbook.as_str());
    let hist = dir.join("history.db");
    let env = [("SWITCHYARD_HISTORY", hist.to_str().unwrap())];
    let run = |extra: &[&str]| {
        let mut args = vec!["apply", "-i", inv, pb, "--forks", "1", "--color", "never"];
        args.extend_from_slice(extra);
        session(&args, &env, Some(dir))
    };
    insta::assert_snapshot!("demo_check", run(&["--check", "--limit", "pbx-nyc"]));
    insta::assert_snapshot!("demo_apply", run(&[]));
    insta::assert_snapshot!("demo_again", run(&[]));

    // A changed password: one line that says so; modes in JSON as people write them.
    let text = std::fs::read_to_string(inv).unwrap();
    std::fs::write(inv, text.replace("nyc-Secr3t!", "nyc-N3w-Secr3t!")).unwrap();
    insta::assert_snapshot!(
        "demo_password_diff",
        run(&["--check", "--diff", "--limit", "pbx-nyc"])
    );
    let json = switchyard_env(
        &[
            "apply", "-i", inv, pb, "--check", "--json", "--limit", "pbx-nyc",
        ],
        &env,
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let modes: Vec<&serde_json::Value> = v["plays"][0]["hosts"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["mode"])
        .filter(|m| !m.is_null())
        .collect();
    // Secret-bearing files 0640 as the playbook says, the others 0644: strings, not 416.
    assert!(modes.contains(&&serde_json::json!("0640")), "{modes:?}");
    assert!(
        modes.iter().all(|m| m.as_str().is_some_and(|s| s.len() == 4
            && s.starts_with('0')
            && s.chars().all(|c| ('0'..='7').contains(&c)))),
        "{modes:?}"
    );
    // Typed errors: the kind is in the JSON, for machines; none here.
    assert!(v["plays"][0]["hosts"][0].get("error_kind").is_none());

    // Colour: asked for, the statuses and diff lines are coloured; NO_COLOR does not
    // override an explicit `--color always`, and `auto` off a terminal stays plain.
    let coloured = switchyard_env(
        &[
            "apply", "-i", inv, pb, "--check", "--diff", "--color", "always", "-l", "pbx-nyc",
        ],
        &[("NO_COLOR", "1")],
    );
    assert!(
        coloured.stderr.contains("[\x1b[33mchanged\x1b[0m]"),
        "{}",
        coloured.stderr
    );
    assert!(coloured.stderr.contains("\x1b[33m~"), "{}", coloured.stderr);
    let plain = switchyard_env(&["apply", "-i", inv, pb, "--check", "--diff"], &[]);
    assert!(!plain.stderr.contains('\x1b'), "{}", plain.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn drift_shows_its_diff_and_has_its_own_exit_code() {
    let Demo {
        dir,
        inventory: inv,
        playbook: pb,
    } = Demo::new("cli-drift", true);
    // Someone edits a managed file on one PBX.
    let gw = dir.join("hosts/pbx-dal/conf/sip_profiles/external/wavix.xml");
    let text = std::fs::read_to_string(&gw).unwrap();
    std::fs::write(
        &gw,
        text.replace("expire-seconds\" value=\"", "expire-seconds\" value=\"1"),
    )
    .unwrap();
    let hist = dir.join("history.db");
    insta::assert_snapshot!(session(
        &["drift", "-i", &inv, &pb, "--diff", "--color", "never"],
        &[("SWITCHYARD_HISTORY", hist.to_str().unwrap())],
        Some(&dir)
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A restart the files need but no run was allowed to make is not "in sync": `drift` says it
/// is pending on every demo PBX (the demo never restarts), and `--fail-on-pending` fails on
/// it with the drift exit code (issue 27, item 3).
#[test]
fn drift_shows_a_restart_still_pending_and_fails_on_it_when_asked() {
    let Demo {
        dir,
        inventory: inv,
        playbook: pb,
    } = Demo::new("cli-drift-pending", true);
    let hist = dir.join("history.db");
    let env = [("SWITCHYARD_HISTORY", hist.to_str().unwrap())];
    let args = ["drift", "-i", &inv, &pb];
    let out = switchyard_env(&args, &env);
    assert_eq!(out.code, 0, "{}", out.all());
    for h in ["pbx-nyc", "pbx-dal", "pbx-ams"] {
        assert!(
            out.stderr
                .contains(&format!("{h}: `restart FreeSWITCH` pending")),
            "{}",
            out.all()
        );
    }
    assert!(!out.stderr.contains("in sync"), "{}", out.all());
    let strict = switchyard_env(&[&args[..], &["--fail-on-pending"]].concat(), &env);
    assert_eq!(strict.code, 3, "{}", strict.all());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--help` names the environment variable an option reads, never its value: unset, empty
/// (once shown as `[env: SWITCHYARD_INVENTORY=]`, which read as a broken setting) or set to
/// a path, it prints the same text (issue 27, item 5).
#[test]
fn help_names_the_inventory_variable_never_its_value() {
    for verb in ["apply", "inventory", "drift"] {
        for value in [None, Some(""), Some("/home/op/secret-fleet.yml")] {
            let mut cmd = crate::harness::switchyard_command(
                Path::new(env!("CARGO_MANIFEST_DIR")),
                &[verb, "--help"],
                &[],
            );
            match value {
                Some(v) => cmd.env("SWITCHYARD_INVENTORY", v),
                None => cmd.env_remove("SWITCHYARD_INVENTORY"),
            };
            let out = cmd.output().unwrap();
            assert_eq!(out.status.code(), Some(0));
            let help = String::from_utf8_lossy(&out.stdout);
            assert!(
                help.contains("[env: SWITCHYARD_INVENTORY]"),
                "{verb} with {value:?}:\n{help}"
            );
            assert!(
                !help.contains("SWITCHYARD_INVENTORY=") && !help.contains("secret-fleet"),
                "{verb} with {value:?}:\n{help}"
            );
        }
    }
}

/// The demo's closing hint is a command the user can type next: it once said `switchyard
/// demo` to someone who had run `cargo run -- demo` with no `switchyard` on PATH (issue 27,
/// item 5). Run by its path, it names that path; found on PATH, `switchyard`; under `cargo
/// run` (which sets `CARGO` and `CARGO_PKG_NAME` for the program), `cargo run --` and the path.
#[test]
fn the_demos_closing_hint_is_a_command_the_user_can_type() {
    let dir = crate::harness::tmp("cli-demo-hint");
    let fleet = dir.join("fleet");
    let d = fleet.to_str().unwrap();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_switchyard")).unwrap();
    let on_path = format!("{}:/usr/bin:/bin", exe.parent().unwrap().display());
    // The demo's last line, run as `program` with the harness's environment less what
    // `cargo test` itself set, then `env`.
    let last_line = |program: &Path, env: &[(&str, &str)]| {
        let base = crate::harness::switchyard_command(&dir, &["demo", "--dir", d], &[]);
        let mut cmd = std::process::Command::new(program);
        cmd.args(base.get_args()).current_dir(&dir);
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.env_remove("CARGO").env_remove("CARGO_PKG_NAME");
        let out = cmd.envs(env.iter().copied()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{err}");
        err.lines().last().unwrap_or_default().to_string()
    };
    let path_form = format!("`{} demo --dir {d}`", exe.display());
    // By its path, with a PATH that has no `switchyard`.
    let last = last_line(&exe, &[("PATH", "/usr/bin:/bin")]);
    assert!(last.contains(&format!("run {path_form} again")), "{last}");
    assert!(!last.contains("`switchyard demo"), "{last}");
    // Found on PATH, as after `cargo install`.
    let last = last_line(Path::new("switchyard"), &[("PATH", &on_path)]);
    assert!(
        last.contains(&format!("run `switchyard demo --dir {d}` again")),
        "{last}"
    );
    // Under `cargo run`.
    let cargo = [
        ("PATH", "/usr/bin:/bin"),
        ("CARGO", "/usr/bin/cargo"),
        ("CARGO_PKG_NAME", "switchyard"),
    ];
    let last = last_line(&exe, &cargo);
    assert!(
        last.contains(&format!(
            "run `cargo run -- demo --dir {d}` (or {path_form}) again"
        )),
        "{last}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Man pages as git has them (issue 27, item 5: the one page had none of the verbs'
/// options): `man --dir` writes `switchyard.1` and one page per verb, at any depth, each
/// listing every option of that verb as the real command line defines it; `man VERB...`
/// prints the same page.
#[test]
fn every_verb_has_a_man_page_listing_its_options() {
    use clap::CommandFactory;
    let dir = crate::harness::tmp("cli-man");
    let out = switchyard_env(&["man", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let mut cmd = switchyard::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let top = std::fs::read_to_string(dir.join("switchyard.1")).unwrap();
    let mut verbs = vec![(Vec::<String>::new(), &cmd)];
    let mut pages = 0;
    while let Some((words, c)) = verbs.pop() {
        for s in c.get_subcommands().filter(|s| !s.is_hide_set()) {
            verbs.push(([&words[..], &[s.get_name().to_string()]].concat(), s));
        }
        if words.is_empty() {
            continue;
        }
        let name = format!("switchyard-{}.1", words.join("-"));
        let page = std::fs::read_to_string(dir.join(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}; written: {}", out.stderr));
        pages += 1;
        assert!(
            page.contains(&format!(".TH {}", &name[..name.len() - 2])),
            "{page}"
        );
        // Every option, globals included, as roff writes it: `\fB\-\-check\fR`.
        for long in c
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
        {
            let shown = format!("\\fB\\-\\-{}\\fR", long.replace('-', "\\-"));
            assert!(page.contains(&shown), "{name} lacks `{shown}`:\n{page}");
        }
        // `switchyard man VERB...` prints that very page.
        let args: Vec<&str> = ["man"]
            .into_iter()
            .chain(words.iter().map(String::as_str))
            .collect();
        assert_eq!(switchyard_env(&args, &[]).stdout, page, "{args:?}");
    }
    assert!(pages >= 20, "{pages} pages");
    // Options an operator looks up, named here so that the check cannot pass empty.
    let drift = std::fs::read_to_string(dir.join("switchyard-drift.1")).unwrap();
    assert!(
        drift.contains("\\fB\\-\\-fail\\-on\\-pending\\fR"),
        "{drift}"
    );
    let measure = std::fs::read_to_string(dir.join("switchyard-trunks-measure.1")).unwrap();
    assert!(measure.contains("\\fB\\-\\-timeout\\fR"), "{measure}");
    assert!(top.contains("switchyard\\-apply(1)"), "{top}");
    let unknown = switchyard_env(&["man", "nope"], &[]);
    assert_eq!(unknown.code, 2, "{}", unknown.all());
    let _ = std::fs::remove_dir_all(&dir);
}

/// What stands for the operator's own machine around the demo: a FreeSWITCH event socket
/// on 127.0.0.1:8021 (its default, where the demo once sent `rescan` and reloads), and
/// programs on PATH that a host which named none would run (`fs_cli`, `systemctl`, ...),
/// each recording that it ran.
struct OperatorsMachine {
    esl: std::net::TcpListener,
    path: String,
    ran: std::path::PathBuf,
    home: std::path::PathBuf,
}

impl OperatorsMachine {
    fn new(dir: &Path) -> OperatorsMachine {
        use std::os::unix::fs::PermissionsExt;
        let esl = std::net::TcpListener::bind("127.0.0.1:8021").unwrap_or_else(|e| {
            panic!("127.0.0.1:8021 is taken ({e}): this test stands a FreeSWITCH there")
        });
        esl.set_nonblocking(true).unwrap();
        let (bin, home) = (dir.join("operator-bin"), dir.join("home"));
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let ran = dir.join("operator-programs-ran.log");
        for p in [
            "fs_cli",
            "freeswitch",
            "systemctl",
            "service",
            "sudo",
            "ssh",
        ] {
            let script = format!(
                "#!/bin/sh\necho \"{p} $*\" >> '{}'\nexit 1\n",
                ran.display()
            );
            std::fs::write(bin.join(p), script).unwrap();
            std::fs::set_permissions(bin.join(p), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!("{}:/usr/bin:/bin", bin.display());
        OperatorsMachine {
            esl,
            path,
            ran,
            home,
        }
    }

    /// Assert that nothing of the machine's was contacted, run or written.
    #[track_caller]
    fn untouched(&self) {
        match self.esl.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the FreeSWITCH on 127.0.0.1:8021 was contacted: {other:?}"),
        }
        let ran = std::fs::read_to_string(&self.ran).unwrap_or_default();
        assert!(
            ran.is_empty(),
            "programs outside the demo folder ran:\n{ran}"
        );
        let home: Vec<_> = std::fs::read_dir(&self.home).unwrap().collect();
        assert!(home.is_empty(), "written in HOME: {home:?}");
    }
}

/// `switchyard demo` and what a new user runs next on its fleet touch nothing outside the
/// demo folder (issue 27): the FreeSWITCH the operator may run on 127.0.0.1:8021 gets no
/// connection, no `fs_cli`, `systemctl`, `sudo` or `ssh` of the machine's runs, HOME gets
/// nothing; the demo's own stand-in `fs_cli` does the FreeSWITCH work (its `rescan` shows).
#[test]
fn the_demo_contacts_nothing_outside_its_folder() {
    let dir = crate::harness::tmp("cli-demo-alone");
    let machine = OperatorsMachine::new(&dir);
    let env = [
        ("PATH", machine.path.as_str()),
        ("HOME", machine.home.to_str().unwrap()),
    ];
    let demo = dir.join("demo");
    let d = demo.to_str().unwrap();
    let run = |args: &[&str], code: i32| {
        let out = crate::harness::switchyard_in(&dir, args, &env);
        assert_eq!(out.code, code, "{args:?}:\n{}", out.all());
        out
    };
    let first = run(&["demo", "--dir", d], 0);
    assert!(first.stderr.contains("rescan"), "{}", first.stderr);
    run(&["demo", "--dir", d], 0);
    let (inv, pb) = (
        format!("{d}/inventory.yml"),
        format!("{d}/playbooks/wavix.yml"),
    );
    let on_fleet = |verb: &[&str], rest: &[&str], code: i32| {
        run(&[verb, &["-i", &inv, &pb], rest].concat(), code)
    };
    on_fleet(&["drift"], &[], 0);
    on_fleet(&["verify"], &[], 0);
    on_fleet(&["route"], &["16465550100"], 0);
    let regions = r#"{"wavix_regions": ["127.0.0.1:5060"]}"#;
    on_fleet(&["trunks", "measure"], &["-e", regions], 1);
    on_fleet(
        &["watch"],
        &["--events", "--rounds", "1", "--every", "1s"],
        0,
    );
    machine.untouched();
    let _ = std::fs::remove_dir_all(&dir);
}
