//! The POSIX `sh` programs switchyard runs on a host, one per round trip.
//!
//! Every value that comes from an inventory or playbook enters a script only through
//! [`quote`]; no content ever travels inside a command line (it goes on stdin), so command
//! lines stay small whatever the files' size.

use std::fmt::Write as _;

/// Quote one word for POSIX `sh`: `'...'` with embedded `'` written as `'\''`.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'.' | b'_' | b'-' | b'=' | b':' | b',' | b'+' | b'@'
                )
        })
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Wrap a script so it runs as root through `sudo -n` (never prompting).
pub fn become_root(script: &str) -> String {
    format!("sudo -n -- sh -c {}", quote(script))
}

/// Frame markers: ASCII record/unit separators never appear in FreeSWITCH output or XML.
pub const REC: char = '\u{1e}';
pub const END: char = '\u{1f}';

/// The shell functions every program that changes a host starts with (`sy_enter`,
/// `sy_private`): how a folder of the conf root is reached without following links.
const COMMON: &str = include_str!("remote/common.sh");
const GATHER: &str = include_str!("remote/gather.sh");
const WRITE: &str = include_str!("remote/write.sh");
const LOCK: &str = include_str!("remote/lock.sh");
const IMPORT: &str = include_str!("remote/import.sh");

/// `sh -c PROGRAM sh ARG...`: the program's text (comment lines dropped) and every value as
/// a quoted positional argument, never spliced into the program.
fn program(parts: &[&str], args: &[&str]) -> String {
    with_args(format!("sh -c {} sh", quote(&text(parts))), args)
}

/// [`program`], run by bash when the host has it, else by `sh`, the program's text being the
/// launcher's first argument (never spliced into it). For the programs that hold a
/// descriptor per file (gather.sh): bash can name descriptors past 9, so it reads in batches
/// of 100 where a POSIX sh reads in batches of 7, each batch a `stat` and a `sha256sum`.
/// The bash tried is the login's `PATH`'s, as every other program here.
fn program_bash_first(parts: &[&str], args: &[&str]) -> String {
    with_args(
        format!("sh -c {} sh {}", quote(BASH_FIRST), quote(&text(parts))),
        args,
    )
}

/// The launcher of [`program_bash_first`].
const BASH_FIRST: &str = r#"p=$1; shift; if command -v bash >/dev/null 2>&1; then exec bash -c "$p" sh "$@"; fi; eval "$p""#;

/// The programs' text, comment lines dropped.
fn text(parts: &[&str]) -> String {
    let mut text = String::new();
    for part in parts {
        for line in part.lines() {
            let t = line.trim_start();
            if t.is_empty() || (t.starts_with('#') && !t.starts_with("#!")) {
                continue;
            }
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

fn with_args(mut cmd: String, args: &[&str]) -> String {
    for a in args {
        cmd.push(' ');
        cmd.push_str(&quote(a));
    }
    cmd
}

/// Gather owner, group, mode and content of every path (absolute, under `root`) in one
/// command (src/host/remote/gather.sh). Each file is opened read-write (never blocking on a FIFO)
/// and judged on that descriptor: only a regular file of at most `limit` bytes is read, and
/// never more than its size. The answer comes in batches of up to 7 paths, each a class
/// line per path, `S`, stat lines, `C`, the contents, `.` ([`crate::engine::facts::parse`]).
pub fn gather(root: &str, limit: u64, paths: &[&str]) -> String {
    let limit = limit.to_string();
    let mut args = vec![root, &limit];
    args.extend_from_slice(paths);
    program_bash_first(&[GATHER], &args)
}

/// The host lock and the session that changes the host (src/host/remote/lock.sh, serving
/// write.sh's writes and [`crate::host::session`]'s requests), held in switchyard's private
/// folder of `root`.
pub fn lock(root: &str, owner: &str) -> String {
    program(&[COMMON, WRITE, LOCK], &[root, owner])
}

/// `switchyard import`'s read of a whole conf tree (src/host/remote/import.sh, then
/// gather.sh over what it lists): every `*.xml` file and every link under `root`, at most
/// `max_files` of them, each read as [`gather`] reads it; nothing is written on the host.
pub fn import(root: &str, limit: u64, max_files: usize) -> String {
    program_bash_first(
        &[COMMON, IMPORT, GATHER],
        &[root, &limit.to_string(), &max_files.to_string()],
    )
}

/// A remote command as `-vv` shows it: the fixed program named by its file in src/host/remote/,
/// the values switchyard passed shown as the quoted arguments the shell receives; the
/// FreeSWITCH steps program (short) as it is.
pub fn describe(cmd: &str) -> String {
    if let Some(rest) = cmd.strip_prefix(SESSION_WRITE) {
        return format!("(session) write{rest}");
    }
    for (name, prefix) in [
        (
            "sh -c <bash-or-sh> sh <gather.sh>",
            program_bash_first(&[GATHER], &[]),
        ),
        (
            "sh -c <common.sh+write.sh+lock.sh> sh",
            program(&[COMMON, WRITE, LOCK], &[]),
        ),
        (
            "sh -c <bash-or-sh> sh <common.sh+import.sh+gather.sh>",
            program_bash_first(&[COMMON, IMPORT, GATHER], &[]),
        ),
    ] {
        if let Some(rest) = cmd.strip_prefix(&prefix) {
            return format!("{name}{rest}");
        }
    }
    // The steps program ([`steps`]): its commands, without the framing `printf`s.
    if let Some(inner) = cmd.strip_prefix("sh -c ").and_then(unquote) {
        return inner
            .lines()
            .filter(|l| !l.starts_with("printf ") && *l != FS_CLI_HOME)
            .map(|l| l.strip_prefix(FS_CLI_ENV).unwrap_or(l))
            .collect::<Vec<_>>()
            .join("; ");
    }
    cmd.to_string()
}

/// The inverse of [`quote`] for one word.
fn unquote(word: &str) -> Option<String> {
    if !word.starts_with('\'') {
        return (!word.contains([' ', '\'', '"', '\\'])).then(|| word.to_string());
    }
    let mut out = String::new();
    let mut rest = word;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("\\'") {
            out.push('\'');
            rest = r;
            continue;
        }
        let body = rest.strip_prefix('\'')?;
        let end = body.find('\'')?;
        out.push_str(&body[..end]);
        rest = &body[end + 1..];
    }
    Some(out)
}

/// How a write request through the session is shown to `-v` (the files it writes; never
/// the hashes or the content).
pub const SESSION_WRITE: &str = "session-write";

/// What a remote command is, in one word, for `-v`.
pub fn kind(cmd: &str) -> &'static str {
    if cmd.starts_with(&program_bash_first(&[GATHER], &[])) {
        "gather"
    } else if cmd.starts_with(&program(&[COMMON, WRITE, LOCK], &[])) {
        "lock"
    } else if cmd.starts_with(SESSION_WRITE) {
        "write"
    } else if cmd.starts_with(&program_bash_first(&[COMMON, IMPORT, GATHER], &[])) {
        "import"
    } else {
        "FreeSWITCH"
    }
}

/// One file operation of a write round trip.
#[derive(Debug, Clone)]
pub enum FileOp<'a> {
    /// Write `content` atomically, with owner/group/mode set before it takes the name (an
    /// empty owner keeps the login's own).
    Write {
        path: &'a str,
        content: &'a [u8],
        owner: &'a str,
        group: &'a str,
        mode: u32,
    },
    /// Remove a file (rolling back a file switchyard created).
    Remove { path: &'a str },
}

/// A host's `fs_cli` line (a command line prefix such as `fs_cli -H 127.0.0.1 -P 8021 -p
/// ClueCon`) with its event socket password taken out.
///
/// No secret may appear in a process's arguments on a PBX: any local user reads
/// `/proc/*/cmdline`. So the password (`-p X`, `-pX`, `--password X`, `--password=X`, or a
/// short-option cluster ending in `p`, as fs_cli's `getopt_long` reads them) is removed from
/// the line on the controller and handed to fs_cli in a file: fs_cli (libs/esl/fs_cli.c)
/// reads `$HOME/.fs_cli_conf` (else `/etc/fs_cli.conf`), and with no profile named uses the
/// one called `default`; its `-H`/`-P`/`-u` still override the file's. The steps program
/// reads the password from stdin, writes `[default]` / `password => X` with the shell's
/// builtin `printf` (no process, so no argv) into a fresh 0700 `mktemp -d` folder, runs
/// each fs_cli with `HOME` pointed there, and removes the folder on exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsCli {
    /// The line without its password: safe in any process's arguments and in `-vv`.
    pub line: String,
    /// The line with its password shown as `********` (for `inventory`).
    pub masked: String,
    pub password: Option<String>,
}

/// fs_cli's options that take an argument (short, long), from its `getopt_long` table.
const FS_CLI_ARG_SHORT: &str = "HPupdxltTs";
const FS_CLI_ARG_LONG: [&str; 10] = [
    "host",
    "port",
    "user",
    "password",
    "debug",
    "execute",
    "loglevel",
    "timeout",
    "connect-timeout",
    "set-log-uuid",
];

/// The words of a shell command line: (raw text as written, value after quote removal),
/// split by the shlex crate as sh splits them. A word ends at the first blank after which
/// the text so far splits cleanly (no open quote, no dangling backslash): a blank inside
/// quotes or after a backslash does not end it. A `#` that starts a word starts a comment,
/// which sh skips: so are its words. A line sh could not read (an unclosed quote) ends in
/// one last word, its value the text without quotes and backslashes.
fn shell_words(line: &str) -> Vec<(String, String)> {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\n');
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let ends = line
        .char_indices()
        .chain(std::iter::once((line.len(), ' ')));
    for (i, c) in ends {
        match start {
            None if !blank(c) => start = Some(i),
            Some(s) if blank(c) => match shlex::split(&line[s..i]) {
                Some(mut value) if value.len() == 1 => {
                    words.push((line[s..i].to_string(), value.remove(0)));
                    start = None;
                }
                Some(value) if value.is_empty() => return words,
                _ => {}
            },
            _ => {}
        }
    }
    if let Some(s) = start {
        let raw = &line[s..];
        words.push((raw.to_string(), raw.replace(['\'', '"', '\\'], "")));
    }
    words
}

impl FsCli {
    /// Split `line`; a password fs_cli could not read back from its conf file (a line
    /// break, leading blanks, `;;`, which its parser strips or cuts at) is an error.
    pub fn parse(line: &str) -> Result<FsCli, String> {
        let c = FsCli::split(line);
        if let Some(p) = &c.password {
            let cut = p.find(';').is_some_and(|k| p[k + 1..].starts_with(';'));
            if p.contains(['\n', '\r', '\0']) || p.starts_with([' ', '\t']) || cut {
                return Err("the event socket password in `fs_cli` cannot be handed to fs_cli in its conf file (it holds a line break, starts with a blank or holds `;;`, which fs_cli's conf parser drops); choose another password".into());
            }
        }
        Ok(c)
    }

    /// Split `line`, whatever its password holds (for masking it).
    pub fn split(line: &str) -> FsCli {
        const MASK: &str = "********";
        let words = shell_words(line);
        let (mut kept, mut masked) = (Vec::new(), Vec::new());
        let mut password = None;
        let mut i = 0;
        while i < words.len() {
            let (raw, value) = &words[i];
            i += 1;
            if value == "--" {
                kept.push(raw.clone());
                masked.push(raw.clone());
                kept.extend(words[i..].iter().map(|w| w.0.clone()));
                masked.extend(words[i..].iter().map(|w| w.0.clone()));
                break;
            }
            if let Some(long) = value.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (long, None),
                };
                // getopt_long takes any unambiguous prefix (`--pass`; `--p` is ambiguous
                // with `--port`).
                let full = FS_CLI_ARG_LONG
                    .iter()
                    .filter(|o| !name.is_empty() && o.starts_with(name))
                    .collect::<Vec<_>>();
                let takes_arg = full.len() == 1 || FS_CLI_ARG_LONG.contains(&name);
                if takes_arg && (name == "password" || (full == [&"password"] && name.len() > 2)) {
                    match inline {
                        Some(v) => password = Some(v.to_string()),
                        None if i < words.len() => {
                            password = Some(words[i].1.clone());
                            i += 1;
                        }
                        None => {}
                    }
                    masked.push(format!("--password={MASK}"));
                    continue;
                }
                kept.push(raw.clone());
                masked.push(raw.clone());
                if takes_arg && inline.is_none() && i < words.len() {
                    kept.push(words[i].0.clone());
                    masked.push(words[i].0.clone());
                    i += 1;
                }
                continue;
            }
            if value.len() > 1 && value.starts_with('-') {
                // A cluster of short options: flags until one that takes an argument, whose
                // argument is the rest of the word, or the next word.
                let body = &value[1..];
                let at = body
                    .char_indices()
                    .find(|(_, c)| FS_CLI_ARG_SHORT.contains(*c));
                if let Some((k, opt)) = at {
                    let rest = &body[k + opt.len_utf8()..];
                    if opt == 'p' {
                        password = Some(if rest.is_empty() && i < words.len() {
                            i += 1;
                            words[i - 1].1.clone()
                        } else {
                            rest.to_string()
                        });
                        if k > 0 {
                            kept.push(quote(&format!("-{}", &body[..k])));
                            masked.push(quote(&format!("-{}", &body[..k])));
                        }
                        masked.push(format!("-p {MASK}"));
                        continue;
                    }
                    kept.push(raw.clone());
                    masked.push(raw.clone());
                    if rest.is_empty() && i < words.len() {
                        kept.push(words[i].0.clone());
                        masked.push(words[i].0.clone());
                        i += 1;
                    }
                    continue;
                }
            }
            kept.push(raw.clone());
            masked.push(raw.clone());
        }
        FsCli {
            line: if password.is_some() {
                kept.join(" ")
            } else {
                line.to_string()
            },
            masked: if password.is_some() {
                masked.join(" ")
            } else {
                line.to_string()
            },
            password,
        }
    }
}

/// The first line of a steps program that hands fs_cli its password ([`FsCli`]): read it
/// from stdin, write it to a conf file in a private folder removed on exit.
const FS_CLI_HOME: &str = "umask 077; IFS= read -r sy_pw || exit 1; sy_home=$(mktemp -d) || exit 1; trap 'rm -rf -- \"$sy_home\"' EXIT; trap 'exit 129' HUP INT TERM; printf '[default]\\npassword => %s\\n' \"$sy_pw\" > \"$sy_home/.fs_cli_conf\" || exit 1; unset sy_pw";

/// How each fs_cli command of such a program starts.
const FS_CLI_ENV: &str = "HOME=\"$sy_home\" ";

/// Run FreeSWITCH steps in one command: (command, stdin). Each step's output is framed as
/// `REC index \n output END rc=N \n`. The `fs_cli` line's password, if any, travels on
/// stdin, never in an argument ([`FsCli`]); every step's own stdin is /dev/null.
pub fn steps(
    fs_cli: &str,
    restart_command: &str,
    steps: &[crate::freeswitch::reload::Action],
) -> Result<(String, Vec<u8>), String> {
    let cli = FsCli::parse(fs_cli)?;
    let mut s = String::new();
    let (env, stdin) = match &cli.password {
        Some(p) => {
            s.push_str(FS_CLI_HOME);
            s.push('\n');
            (FS_CLI_ENV, format!("{p}\n").into_bytes())
        }
        None => ("", Vec::new()),
    };
    for (i, a) in steps.iter().enumerate() {
        let _ = writeln!(s, "printf '\\036{i}\\n'");
        match a {
            crate::freeswitch::reload::Action::Api(cmd) => {
                let _ = writeln!(s, "{env}{} -x {} </dev/null 2>&1", cli.line, quote(cmd));
            }
            crate::freeswitch::reload::Action::Restart => {
                let _ = writeln!(s, "{restart_command} </dev/null 2>&1");
            }
        }
        let _ = writeln!(s, "printf '\\037rc=%s\\n' \"$?\"");
    }
    Ok((format!("sh -c {}", quote(&s)), stdin))
}

/// Split the framed output of [`steps`]: (index, output, exit code).
pub fn split_steps(out: &str) -> Vec<(usize, String, i32)> {
    let mut res = Vec::new();
    for rec in out.split(REC).skip(1) {
        let (head, rest) = rec.split_once('\n').unwrap_or((rec, ""));
        let Ok(idx) = head.trim().parse::<usize>() else {
            continue;
        };
        let (body, tail) = rest.rsplit_once(END).unwrap_or((rest, "rc=-1"));
        let rc = tail.trim().trim_start_matches("rc=").parse().unwrap_or(-1);
        res.push((idx, body.to_string(), rc));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated commands as a reviewer reads them: the fixed program (a file of
    /// src/host/remote/) named, every value switchyard passes shown as the quoted argument the
    /// host's shell receives.
    #[test]
    fn generated_commands() {
        let named = |cmd: String, parts: &[&str], name: &str| -> String {
            let rest = cmd
                .strip_prefix(&program(parts, &[]))
                .map(|rest| format!("sh -c <{name}> sh{rest}"))
                .or_else(|| {
                    let rest = cmd.strip_prefix(&program_bash_first(parts, &[]))?;
                    Some(format!("sh -c <bash-or-sh> sh <{name}>{rest}"))
                });
            rest.unwrap_or_else(|| panic!("{name}: not the program: {cmd}"))
        };
        let root = "/etc/freeswitch";
        let gathered = gather(
            root,
            8388608,
            &[
                "/etc/freeswitch/sip_profiles/external/wavix.xml",
                "/etc/freeswitch/dialplan/it's $(x).xml",
            ],
        );
        let locked = lock(root, "ops@ctl pid 42 since 2026-11-27T10:00:00Z");
        let (stepped, step_stdin) = steps(
            "fs_cli -H 127.0.0.1 -p 'pw'",
            "systemctl restart freeswitch",
            &[
                crate::freeswitch::reload::Action::Api("sofia profile external rescan".into()),
                crate::freeswitch::reload::Action::Restart,
            ],
        )
        .unwrap();
        // Neither the expected hash nor the event socket password is an argument.
        assert!(!stepped.contains("pw'"));
        assert_eq!(step_stdin, b"pw\n");
        insta::assert_snapshot!(format!(
            "{}\n\n{}\n\n{}\nstdin: {:?}\n\n{}",
            named(gathered, &[GATHER], "gather.sh"),
            named(locked, &[COMMON, WRITE, LOCK], "common.sh+write.sh+lock.sh"),
            stepped,
            String::from_utf8_lossy(&step_stdin),
            become_root("echo 'hi'"),
        ));
        // -vv shows the steps as the commands they are; the program files by name.
        assert_eq!(
            describe(
                &steps(
                    "fs_cli -p 'it'\\''s'",
                    "systemctl restart freeswitch",
                    &[crate::freeswitch::reload::Action::Api("reloadxml".into())]
                )
                .unwrap()
                .0
            ),
            "fs_cli -x reloadxml </dev/null 2>&1"
        );
        assert_eq!(
            describe(
                &steps(
                    "fs_cli -P 8021",
                    "true",
                    &[crate::freeswitch::reload::Action::Api("reloadxml".into())]
                )
                .unwrap()
                .0
            ),
            "fs_cli -P 8021 -x reloadxml </dev/null 2>&1"
        );
        assert!(describe(&lock(root, "o")).starts_with("sh -c <common.sh+write.sh+lock.sh> sh "));
        assert_eq!(
            kind(&gather(root, 1024, &["/etc/freeswitch/a.xml"])),
            "gather"
        );
    }

    /// The password comes out of the `fs_cli` line in every spelling fs_cli's getopt_long
    /// accepts; everything else stays as written.
    #[test]
    fn fs_cli_password_is_taken_out_of_the_line() {
        let cases = [
            (
                "fs_cli -H 127.0.0.1 -P 8021 -p ClueCon",
                "fs_cli -H 127.0.0.1 -P 8021",
                "ClueCon",
            ),
            ("fs_cli -pClueCon -t 10000", "fs_cli -t 10000", "ClueCon"),
            (
                "fs_cli --password=Clue\\ Con -H h",
                "fs_cli -H h",
                "Clue Con",
            ),
            ("fs_cli --password 'it'\\''s'", "fs_cli", "it's"),
            ("fs_cli --pass \"a\\\"b\"", "fs_cli", "a\"b"),
            ("fs_cli -qp S3cret -x x", "fs_cli -q -x x", "S3cret"),
            // `-H -p` is the host `-p`; `-P` is the port.
            ("fs_cli -H -p -P 1 -p pw", "fs_cli -H -p -P 1", "pw"),
            (
                "/opt/fs/bin/fs_cli -p pwA -p pwB",
                "/opt/fs/bin/fs_cli",
                "pwB",
            ),
        ];
        for (line, kept, pw) in cases {
            let c = FsCli::parse(line).unwrap();
            assert_eq!(c.line, kept, "{line}");
            assert_eq!(c.password.as_deref(), Some(pw), "{line}");
            assert!(
                c.masked.contains("********") && !c.masked.contains(pw),
                "{line}: {}",
                c.masked
            );
        }
        let plain = FsCli::parse("fs_cli -H 127.0.0.1 --port 8021").unwrap();
        assert_eq!(
            (plain.line.as_str(), plain.password),
            ("fs_cli -H 127.0.0.1 --port 8021", None)
        );
        for bad in ["fs_cli -p ' lead'", "fs_cli -p 'a;;b'", "fs_cli -p 'a\nb'"] {
            assert!(FsCli::parse(bad).is_err(), "{bad}");
        }
    }

    /// gather.sh under bash (batches of 100), under a POSIX sh (dash: batches of 7) and
    /// under busybox (its sh and applets only, as on an Alpine-style PBX: its `readlink`
    /// takes one name) answers the same for the same files, but for the batch framing: the
    /// same classes, stat lines and contents, in order, with digests on stdin for some.
    #[test]
    fn the_gather_answers_alike_under_bash_and_sh() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("sy-gather-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("d")).unwrap();
        let root = dir.display().to_string();
        let mut paths = Vec::new();
        let mut stdin = String::new();
        for i in 0..20 {
            let p = format!("{root}/d/f{i}.xml");
            let body = format!("<x n=\"{i}\"/>\n");
            if i != 13 {
                std::fs::write(&p, &body).unwrap();
            }
            stdin.push_str(&match i % 3 {
                0 => format!(
                    "{} {}\n",
                    body.len(),
                    crate::digest::sha256_hex(body.as_bytes())
                ),
                _ => "-\n".into(),
            });
            paths.push(p);
        }
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let limit = "4096".to_string();
        let args: Vec<&str> = [root.as_str(), limit.as_str()]
            .into_iter()
            .chain(paths.iter().copied())
            .collect();
        let busybox = dir.join("busybox-bin");
        std::fs::create_dir_all(&busybox).unwrap();
        let at = std::process::Command::new("sh")
            .args(["-c", "command -v busybox"])
            .output()
            .unwrap();
        let at = String::from_utf8(at.stdout).unwrap();
        assert!(
            !at.trim().is_empty(),
            "busybox is needed (scripts/test installs it)"
        );
        for applet in ["sh", "stat", "sha256sum", "readlink", "head"] {
            std::os::unix::fs::symlink(at.trim(), busybox.join(applet)).unwrap();
        }
        let run_with = |shell: &str, path: Option<&std::path::Path>, cmd: &str| -> String {
            let mut c = std::process::Command::new(shell);
            if let Some(p) = path {
                c.env("PATH", p);
            }
            let mut c = c
                .args(["-c", cmd])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{shell}");
            String::from_utf8(out.stdout).unwrap()
        };
        let bash = run_with("sh", None, &program_bash_first(&[GATHER], &args));
        let sh = run_with("sh", None, &program(&[GATHER], &args));
        let bb = run_with(
            &busybox.join("sh").display().to_string(),
            Some(&busybox),
            &program_bash_first(&[GATHER], &args),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(bb, sh, "busybox and dash, both batches of 7");
        // Per batch: class lines, `S`, stat lines, `C`, contents, `.`; as one stream.
        let flat = |a: &str| -> (Vec<String>, usize) {
            let lines: Vec<String> = a
                .lines()
                .filter(|l| !matches!(*l, "S" | "C" | "."))
                .map(str::to_string)
                .collect();
            (lines, a.lines().filter(|l| *l == ".").count())
        };
        let ((b, b_batches), (s, s_batches)) = (flat(&bash), flat(&sh));
        assert_eq!((b_batches, s_batches), (1, 3));
        let mut b = b;
        let mut s = s;
        b.sort();
        s.sort();
        assert_eq!(b, s);
        assert_eq!(
            bash.matches("\n=\n").count() + bash.starts_with("=\n") as usize,
            7
        );
        assert!(bash.contains("<x n=\"19\"/>") && bash.lines().any(|l| l == "M"));
        // One stat line per `F` or `=`, in their order; a read file's carries its sha256.
        let lines: Vec<&str> = bash.lines().collect();
        let (s_at, c_at) = (
            lines.iter().position(|l| *l == "S").unwrap(),
            lines.iter().position(|l| *l == "C").unwrap(),
        );
        let classes: Vec<&str> = lines[..s_at]
            .iter()
            .copied()
            .filter(|l| matches!(*l, "F" | "="))
            .collect();
        let stats = &lines[s_at + 1..c_at];
        assert_eq!(stats.len(), classes.len(), "{bash}");
        for (class, stat) in classes.iter().zip(stats) {
            let words = stat.split(' ').count();
            assert_eq!(words, if *class == "F" { 5 } else { 4 }, "{stat}");
        }
    }

    #[test]
    fn quoting_survives_hostile_values() {
        assert_eq!(quote("reloadxml"), "reloadxml");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's $(rm -rf /)"), "'it'\\''s $(rm -rf /)'");
        assert_eq!(quote(""), "''");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf %s {}",
                quote("x'; echo pwned; '`id`$HOME\"")
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "x'; echo pwned; '`id`$HOME\""
        );
    }
}
