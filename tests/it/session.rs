//! Sessions: one run of the binary against the test fleet, as a user types it, checked whole.
//!
//! A [`Session`] supplies what every fleet command needs — the inventory, the playbook (the
//! shipped Wavix one unless a test names another) and the fleet's known_hosts — so a test
//! writes only what it is about: `fleet.session().run(["apply", "--check"]).expect(exit::OK)`.
//! The [`Run`] it returns renders the command line, exit code, stdout and stderr as one text
//! for [`assert_session!`], with what changes from run to run filtered out (the fleet's and
//! the system's temporary folders, the repository path, host addresses and ports, durations,
//! dates), as uv's and jj's CLI tests do with insta.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{repo, switchyard_command, Fleet, Out, TestHost};

/// Exit codes of the binary (`switchyard --help` lists them; src/exit.rs).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const DRIFT: i32 = 3;
}

/// The inventory, playbook, known_hosts and environment of a series of runs on one fleet.
pub struct Session<'f> {
    fleet: &'f Fleet,
    inventory: PathBuf,
    playbook: String,
    known_hosts: bool,
    env: Vec<(String, String)>,
}

impl Fleet {
    /// A session on every host of the fleet with the harness's inventory vars and the
    /// shipped Wavix playbook.
    pub fn session(&self) -> Session<'_> {
        self.session_with(&|_, _| String::new())
    }

    /// A session whose inventory gives each host `extra` YAML lines of vars (by index).
    pub fn session_with(&self, extra: &dyn Fn(usize, &TestHost) -> String) -> Session<'_> {
        // Named by the fleet's own count, so that snapshots show the same name every run.
        let name = (1..)
            .map(|n| match n {
                1 => "inventory.yml".to_string(),
                n => format!("inventory-{n}.yml"),
            })
            .find(|f| !self.dir.join(f).exists())
            .unwrap();
        self.session_on(&self.inventory(&name, extra))
    }

    /// A session on an inventory file the test wrote itself.
    pub fn session_on(&self, inventory: &Path) -> Session<'_> {
        Session {
            fleet: self,
            inventory: inventory.to_path_buf(),
            playbook: repo("playbooks/wavix.yml"),
            known_hosts: true,
            env: Vec::new(),
        }
    }
}

impl<'f> Session<'f> {
    /// The same session with another inventory written from `extra` vars per host.
    pub fn vars(&self, extra: &dyn Fn(usize, &TestHost) -> String) -> Session<'f> {
        let s = self.fleet.session_with(extra);
        Session {
            playbook: self.playbook.clone(),
            known_hosts: self.known_hosts,
            env: self.env.clone(),
            ..s
        }
    }

    /// Use this playbook instead of the shipped Wavix one.
    pub fn playbook(mut self, path: impl Into<String>) -> Self {
        self.playbook = path.into();
        self
    }

    /// Run with this environment variable (it wins over the harness's own).
    pub fn env(mut self, key: &str, value: impl AsRef<Path>) -> Self {
        self.env.push((
            key.to_string(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
        self
    }

    /// Name no known_hosts file (the default one, or a project file's, is used).
    pub fn without_known_hosts(mut self) -> Self {
        self.known_hosts = false;
        self
    }

    pub fn inventory_path(&self) -> &Path {
        &self.inventory
    }

    pub fn fleet(&self) -> &'f Fleet {
        self.fleet
    }

    /// `command -i INVENTORY PLAYBOOK --known-hosts KH` then the rest of `args`.
    pub fn run<S: AsRef<str>>(&self, args: impl IntoIterator<Item = S>) -> Run {
        self.run_raw(self.full_args(args))
    }

    /// `apply --json`, then `extra`: the run most tests make.
    pub fn apply_json(&self, extra: &[&str]) -> Run {
        self.run([&["apply", "--json"][..], extra].concat())
    }

    /// Run exactly `args`, with the session's environment (commands that take no inventory).
    pub fn run_raw<S: AsRef<str>>(&self, args: impl IntoIterator<Item = S>) -> Run {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
        let out = self.command_raw(&args).output().expect("run switchyard");
        Run {
            out: Out {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            args,
            filters: filters(self.fleet),
        }
    }

    /// The command `run` would run, not yet started (for tests that hold its pipes).
    pub fn command<S: AsRef<str>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        self.command_raw(&self.full_args(args))
    }

    fn command_raw(&self, args: &[String]) -> Command {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        switchyard_command(Path::new(env!("CARGO_MANIFEST_DIR")), &argv, &env)
    }

    /// The whole argument list `run` would give the binary.
    pub fn full_args<S: AsRef<str>>(&self, args: impl IntoIterator<Item = S>) -> Vec<String> {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
        // `trunks measure` is one command of two words.
        let words = if args.first().is_some_and(|a| a == "trunks") {
            2
        } else {
            1
        };
        let (command, rest) = args.split_at(words.min(args.len()));
        assert!(!command.is_empty(), "a command");
        let mut full = command.to_vec();
        full.extend([
            "-i".into(),
            self.inventory.to_string_lossy().into_owned(),
            self.playbook.clone(),
        ]);
        if self.known_hosts {
            full.push("--known-hosts".into());
            full.push(self.fleet.known_hosts.to_string_lossy().into_owned());
        }
        full.extend(rest.iter().cloned());
        full
    }
}

/// What changes from run to run, as (regex, replacement), most specific first.
fn filters(fleet: &Fleet) -> Vec<(String, String)> {
    let mut f = vec![(
        regex_escape(&fleet.dir.to_string_lossy()),
        "[FLEET]".to_string(),
    )];
    f.push((regex_escape(env!("CARGO_MANIFEST_DIR")), "[REPO]".into()));
    f.push((
        format!(
            r"{}/switchyard-it-[\w-]*?\d+",
            regex_escape(&std::env::temp_dir().to_string_lossy())
        ),
        "[TMP]".into(),
    ));
    for h in &fleet.hosts {
        let (a, p) = (regex_escape(&h.addr), h.port);
        f.push((format!(r"\[{a}\]:{p}\b"), format!("[{}:PORT]", h.name)));
        f.push((format!(r"\b{a}:{p}\b"), format!("[{}:PORT]", h.name)));
        f.push((format!(r"\b{a}\b"), format!("[{}]", h.name)));
        f.push((format!(r"\bport {p}\b"), "port [PORT]".into()));
    }
    f.push((
        r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?".into(),
        "[DATE]".into(),
    ));
    f.push((
        r"\b\d+(\.\d+)? ?(ms|s|sec|seconds)\b".into(),
        "[TIME]".into(),
    ));
    f.push((r"SHA256:[A-Za-z0-9+/]{43}".into(), "[FINGERPRINT]".into()));
    // A recap line is cut to a fixed width, so how much of an error it shows (and whether
    // it is cut at all) depends on the lengths of the paths in it; the host's block above
    // shows the error whole.
    f.push((
        r"(?m)^(  \S+ +(?:failed|unreachable|rolled back) +)\S.*$".into(),
        "${1}[ERROR, AS ABOVE]".into(),
    ));
    f.push((
        r"(?m)^(  \S+ +\S+ +)[^\n]*\.\.\.$".into(),
        "${1}[CUT]".into(),
    ));
    f
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// One run of the binary: its arguments and what it printed.
pub struct Run {
    pub out: Out,
    args: Vec<String>,
    filters: Vec<(String, String)>,
}

impl std::ops::Deref for Run {
    type Target = Out;
    fn deref(&self) -> &Out {
        &self.out
    }
}

impl Run {
    /// The arguments the binary was given.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Assert the exit code, showing the whole session when it is not `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "\n{}", self.render());
        self
    }

    /// Assert that no channel (stdout, stderr) shows any of `secrets`.
    #[track_caller]
    pub fn never_shows(&self, secrets: &[&str]) -> &Self {
        for s in secrets {
            assert!(
                !self.all().contains(s),
                "`{s}` is in the output:\n{}",
                self.render()
            );
        }
        self
    }

    /// Assert that stderr or stdout contains every one of `texts`.
    #[track_caller]
    pub fn shows(&self, texts: &[&str]) -> &Self {
        for t in texts {
            assert!(
                self.all().contains(t),
                "`{t}` is not in the output:\n{}",
                self.render()
            );
        }
        self
    }

    /// The command line, exit code, stdout and stderr as one text, host blocks of stderr in
    /// name order (hosts finish in any order) — unfiltered; the snapshot settings filter.
    pub fn render(&self) -> String {
        format!(
            "$ switchyard {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            sort_host_blocks(&self.stderr)
        )
    }

    /// insta settings with this run's filters.
    pub fn settings(&self) -> insta::Settings {
        let mut s = insta::Settings::clone_current();
        for (re, to) in &self.filters {
            s.add_filter(re, to.as_str());
        }
        s
    }
}

/// Stderr with each run of host blocks (a line `NAME [status]…` and its indented lines, as
/// hosts finish) sorted by host name; everything else stays where it is.
fn sort_host_blocks(text: &str) -> String {
    let is_head = |l: &str| {
        !l.starts_with(' ')
            && l.split_once(' ')
                .is_some_and(|(name, rest)| !name.is_empty() && rest.starts_with('['))
    };
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, out: &mut Vec<String>| {
        run.sort();
        out.append(run);
    };
    for line in text.split_inclusive('\n') {
        if is_head(line) {
            run.push(line.to_string());
        } else if line.starts_with(' ') && !run.is_empty() {
            run.last_mut().unwrap().push_str(line);
        } else {
            flush(&mut run, &mut out);
            out.push(line.to_string());
        }
    }
    flush(&mut run, &mut out);
    out.concat()
}

/// Snapshot a [`Run`] (its rendering, filtered): `assert_session!(run)` or
/// `assert_session!("name", run)`.
#[macro_export]
macro_rules! assert_session {
    ($run:expr) => {{
        let run = &$run;
        run.settings()
            .bind(|| insta::assert_snapshot!(run.render()));
    }};
    ($name:expr, $run:expr) => {{
        let run = &$run;
        run.settings()
            .bind(|| insta::assert_snapshot!($name, run.render()));
    }};
}

#[test]
fn host_blocks_are_sorted_and_nothing_else_moves() {
    let text = "warning: x\npbx2 [ok]\n  ok a\npbx1 [changed]\n  created b\n\nRECAP apply: y\n  pbx2  ok\n  pbx1  changed\n";
    assert_eq!(
        sort_host_blocks(text),
        "warning: x\npbx1 [changed]\n  created b\npbx2 [ok]\n  ok a\n\nRECAP apply: y\n  pbx2  ok\n  pbx1  changed\n"
    );
}

/// The demo fleet (`switchyard demo`) laid out in a fresh scratch folder: PBX folders on this
/// machine, its inventory and the playbook it copies, for tests that need no sshd.
pub struct Demo {
    pub dir: PathBuf,
    pub inventory: String,
    pub playbook: String,
}

impl Demo {
    /// `demo --dir` in a fresh folder named by `tag`: with `applied`, the demo's first
    /// apply ran (its PBXes are configured); without, only laid out (`--check`).
    pub fn new(tag: &str, applied: bool) -> Demo {
        let dir = crate::harness::tmp(tag);
        let d = dir.to_str().unwrap();
        let check: &[&str] = if applied { &[] } else { &["--check"] };
        let args = [&["demo", "--dir", d, "--color", "never"][..], check].concat();
        let out = crate::harness::switchyard_env(&args, &[]);
        assert_eq!(out.code, 0, "{}", out.all());
        let path = |rel: &str| dir.join(rel).to_string_lossy().into_owned();
        Demo {
            inventory: path("inventory.yml"),
            playbook: path("playbooks/wavix.yml"),
            dir,
        }
    }
}
