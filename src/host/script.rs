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
    let mut cmd = format!("sh -c {} sh", quote(&text));
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
    program(&[GATHER], &args)
}

/// The host lock (src/host/remote/lock.sh), held in switchyard's private folder of `root`.
pub fn lock(root: &str, owner: &str) -> String {
    program(&[COMMON, LOCK], &[root, owner])
}

/// `switchyard import`'s read of a whole conf tree (src/host/remote/import.sh, then
/// gather.sh over what it lists): every `*.xml` file and every link under `root`, at most
/// `max_files` of them, each read as [`gather`] reads it; nothing is written on the host.
pub fn import(root: &str, limit: u64, max_files: usize) -> String {
    program(
        &[COMMON, IMPORT, GATHER],
        &[root, &limit.to_string(), &max_files.to_string()],
    )
}

/// A remote command as `-vv` shows it: the fixed program named by its file in src/host/remote/,
/// the values switchyard passed shown as the quoted arguments the shell receives; the
/// FreeSWITCH steps program (short) as it is.
pub fn describe(cmd: &str) -> String {
    for (name, prefix) in [
        ("gather.sh", program(&[GATHER], &[])),
        ("common.sh+lock.sh", program(&[COMMON, LOCK], &[])),
        (
            "common.sh+import.sh+gather.sh",
            program(&[COMMON, IMPORT, GATHER], &[]),
        ),
        ("common.sh+write.sh", program(&[COMMON, WRITE], &[])),
    ] {
        if let Some(rest) = cmd.strip_prefix(&prefix) {
            return format!("sh -c <{name}> sh{rest}");
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

/// What a remote command is, in one word, for `-v`.
pub fn kind(cmd: &str) -> &'static str {
    if cmd.starts_with(&program(&[GATHER], &[])) {
        "gather"
    } else if cmd.starts_with(&program(&[COMMON, LOCK], &[])) {
        "lock"
    } else if cmd.starts_with(&program(&[COMMON, WRITE], &[])) {
        "write"
    } else if cmd.starts_with(&program(&[COMMON, IMPORT, GATHER], &[])) {
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

/// `path` as (folder relative to `root`, file name); `None` if it is not under `root`.
fn split_under<'p>(root: &str, path: &'p str) -> Option<(&'p str, &'p str)> {
    let rel = path
        .strip_prefix(root.trim_end_matches('/'))?
        .strip_prefix('/')?;
    let (dir, name) = rel.rsplit_once('/').unwrap_or((".", rel));
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some((if dir.is_empty() { "." } else { dir }, name))
}

/// The write round trip (src/host/remote/write.sh): the command and the bytes for its stdin.
///
/// `expect` lists, for files about to change, the sha256 they had when gathered (`None`:
/// absent); if any moved on since, nothing is written (exit 5). Content is staged and its
/// length checked before anything changes (exit 3 for a cut upload); each file is prepared
/// in switchyard's private folder and renamed into place from inside its folder, reached
/// without following links. Every path must be under `root`.
pub fn write(
    root: &str,
    ops: &[FileOp<'_>],
    expect: &[(&str, Option<&str>)],
) -> Result<(String, Vec<u8>), String> {
    let outside = |p: &str| format!("{p} is not under the conf root {root}");
    // The expected hashes go first on stdin, one line each, never in an argument.
    let mut head = Vec::new();
    let mut stdin = Vec::new();
    let mut words: Vec<String> = Vec::new();
    for (path, sha) in expect {
        let (dir, name) = split_under(root, path).ok_or_else(|| outside(path))?;
        words.extend(["E".into(), dir.into(), name.into()]);
        let sha = sha.unwrap_or("-");
        if sha.is_empty() || sha.contains('\n') {
            return Err(format!("bad expected hash for {path}"));
        }
        head.extend_from_slice(sha.as_bytes());
        head.push(b'\n');
    }
    for op in ops {
        match op {
            FileOp::Write {
                path,
                content,
                owner,
                group,
                mode,
            } => {
                let (dir, name) = split_under(root, path).ok_or_else(|| outside(path))?;
                words.extend([
                    "W".into(),
                    dir.into(),
                    name.into(),
                    owner.to_string(),
                    group.to_string(),
                    format!("{mode:o}"),
                    content.len().to_string(),
                ]);
                stdin.extend_from_slice(content);
            }
            FileOp::Remove { path } => {
                let (dir, name) = split_under(root, path).ok_or_else(|| outside(path))?;
                words.extend(["R".into(), dir.into(), name.into()]);
            }
        }
    }
    let total = stdin.len().to_string();
    let mut args: Vec<&str> = vec![root, &total];
    args.extend(words.iter().map(String::as_str));
    head.extend_from_slice(&stdin);
    Ok((program(&[COMMON, WRITE], &args), head))
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

/// The words of a shell command line: (raw text as written, value after quote removal).
fn shell_words(line: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return words;
        }
        let (mut raw, mut value) = (String::new(), String::new());
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            raw.push(c);
            match c {
                '\'' => {
                    for c in chars.by_ref() {
                        raw.push(c);
                        if c == '\'' {
                            break;
                        }
                        value.push(c);
                    }
                }
                '"' => {
                    while let Some(c) = chars.next() {
                        raw.push(c);
                        match c {
                            '"' => break,
                            '\\' => {
                                if let Some(n) = chars.next() {
                                    raw.push(n);
                                    if !matches!(n, '"' | '\\' | '$' | '`') {
                                        value.push('\\');
                                    }
                                    value.push(n);
                                }
                            }
                            c => value.push(c),
                        }
                    }
                }
                '\\' => {
                    if let Some(n) = chars.next() {
                        raw.push(n);
                        value.push(n);
                    }
                }
                c => value.push(c),
            }
        }
        words.push((raw, value));
    }
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
            let prefix = program(parts, &[]);
            let rest = cmd
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{name}: not the program: {cmd}"));
            format!("sh -c <{name}> sh{rest}")
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
        let (written, stdin) = write(
            root,
            &[
                FileOp::Write {
                    path: "/etc/freeswitch/sip_profiles/external/wavix.xml",
                    content: b"<include/>\n",
                    owner: "freeswitch",
                    group: "freeswitch",
                    mode: 0o640,
                },
                FileOp::Remove {
                    path: "/etc/freeswitch/directory/default/1001.xml",
                },
            ],
            &[
                (
                    "/etc/freeswitch/sip_profiles/external/wavix.xml",
                    Some("ab12"),
                ),
                ("/etc/freeswitch/directory/default/1001.xml", None),
            ],
        )
        .unwrap();
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
        assert!(!written.contains("ab12") && !stepped.contains("pw'"));
        assert_eq!(step_stdin, b"pw\n");
        insta::assert_snapshot!(format!(
            "{}\n\n{}\n\n{}\nstdin: {:?}\n\n{}\nstdin: {:?}\n\n{}",
            named(gathered, &[GATHER], "gather.sh"),
            named(locked, &[COMMON, LOCK], "common.sh+lock.sh"),
            named(written, &[COMMON, WRITE], "common.sh+write.sh"),
            String::from_utf8_lossy(&stdin),
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
        assert!(describe(&lock(root, "o")).starts_with("sh -c <common.sh+lock.sh> sh "));
        assert_eq!(
            kind(&gather(root, 1024, &["/etc/freeswitch/a.xml"])),
            "gather"
        );
        // A path outside the conf root is refused before any command exists.
        assert!(write(
            root,
            &[FileOp::Remove {
                path: "/etc/passwd"
            }],
            &[]
        )
        .is_err());
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

    /// Run a program locally with `stdin`: (exit code, stdout, stderr).
    fn sh(cmd: &str, stdin: &[u8]) -> (Option<i32>, String, String) {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sy-script-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn write_script_is_atomic_and_local_run_works() {
        let dir = scratch("atomic");
        let root = dir.display().to_string();
        let a = format!("{root}/sub dir/a'x.xml");
        let b = format!("{root}/b.xml");
        std::fs::write(&b, "old").unwrap();
        let (me, grp) = crate::host::state::current_user_and_group();
        let ops = [
            FileOp::Write {
                path: &a,
                content: b"<a/>\n",
                owner: &me,
                group: &grp,
                mode: 0o640,
            },
            FileOp::Write {
                path: &b,
                content: b"new\xff",
                owner: &me,
                group: &grp,
                mode: 0o600,
            },
        ];
        let (cmd, stdin) = write(&root, &ops, &[]).unwrap();
        let (code, out, err) = sh(&cmd, &stdin);
        assert_eq!(code, Some(0), "{out}{err}");
        assert_eq!(std::fs::read(&a).unwrap(), b"<a/>\n");
        assert_eq!(std::fs::read(&b).unwrap(), b"new\xff");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&a), 0o640);
        assert_eq!(mode(&b), 0o600);
        // A folder switchyard created is readable by the file's group (FreeSWITCH).
        assert_eq!(mode(&format!("{root}/sub dir")), 0o750);
        // The private folder: 0700, nothing staged is left behind.
        assert_eq!(mode(&format!("{root}/.switchyard")), 0o700);
        let left: Vec<_> = std::fs::read_dir(dir.join(".switchyard"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");

        // A file that changed since it was read stops the whole write.
        let (guarded, _) = write(&root, &ops, &[(b.as_str(), Some("0000"))]).unwrap();
        let (code, _, err) = sh(&guarded, &stdin);
        assert_eq!(code, Some(5), "{err}");
        assert!(err.contains("changed since it was read"));
        assert_eq!(std::fs::read(&a).unwrap(), b"<a/>\n");

        // A short upload (connection cut) changes nothing.
        let (code, _, _) = sh(&cmd, &stdin[..3]);
        assert_eq!(code, Some(3));
        assert_eq!(std::fs::read(&b).unwrap(), b"new\xff");

        // Paths outside the conf root are refused before any command exists.
        assert!(write(
            &root,
            &[FileOp::Remove {
                path: "/etc/passwd"
            }],
            &[]
        )
        .is_err());
    }

    /// Expected hashes are checked on opened descriptors, five to a `sha256sum`: a file
    /// changed in the second batch still stops the whole write, and a file swapped for a
    /// FIFO is judged changed, never read (the write would block on it).
    /// Each path expected to have its sha.
    fn expected<'a>(paths: &'a [String], shas: &'a [String]) -> Vec<(&'a str, Option<&'a str>)> {
        paths
            .iter()
            .zip(shas)
            .map(|(p, s)| (p.as_str(), Some(s.as_str())))
            .collect()
    }

    #[test]
    fn expectations_in_batches_stop_the_whole_write() {
        let dir = scratch("batches");
        let root = dir.display().to_string();
        let (me, grp) = crate::host::state::current_user_and_group();
        let paths: Vec<String> = (0..8)
            .map(|i| format!("{root}/{}/f{i}.xml", if i < 4 { "a" } else { "b" }))
            .collect();
        for p in &paths {
            std::fs::create_dir_all(std::path::Path::new(p).parent().unwrap()).unwrap();
            std::fs::write(p, format!("old {p}")).unwrap();
        }
        let sha = |p: &str| crate::digest::sha256_hex(&std::fs::read(p).unwrap());
        let ops: Vec<FileOp> = paths
            .iter()
            .map(|p| FileOp::Write {
                path: p,
                content: b"new",
                owner: &me,
                group: &grp,
                mode: 0o640,
            })
            .collect();
        let mut shas: Vec<String> = paths.iter().map(|p| sha(p)).collect();
        shas[6] = "0".repeat(64);
        let expect = expected(&paths, &shas);
        let (cmd, stdin) = write(&root, &ops, &expect).unwrap();
        let (code, _, err) = sh(&cmd, &stdin);
        assert_eq!(code, Some(5), "{err}");
        assert!(err.contains("b/f6.xml changed since it was read"), "{err}");
        for p in &paths {
            assert_eq!(std::fs::read_to_string(p).unwrap(), format!("old {p}"));
        }
        // All as read: every file written.
        shas[6] = sha(&paths[6]);
        let expect = expected(&paths, &shas);
        let (cmd, stdin) = write(&root, &ops, &expect).unwrap();
        let (code, out, err) = sh(&cmd, &stdin);
        assert_eq!(code, Some(0), "{out}{err}");
        for p in &paths {
            assert_eq!(std::fs::read_to_string(p).unwrap(), "new");
        }
        // A FIFO where a file was read: judged changed, not opened for reading.
        std::fs::remove_file(&paths[1]).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(&paths[1])
            .status()
            .unwrap();
        assert!(fifo.success());
        let new_sha = crate::digest::sha256_hex(b"new");
        let expect = [(paths[1].as_str(), Some(new_sha.as_str()))];
        let (cmd, stdin) = write(&root, &ops[..2], &expect).unwrap();
        let (code, _, err) = sh(&cmd, &stdin);
        assert_eq!(code, Some(5), "{err}");
    }

    /// What the `freeswitch` user can plant under the conf root never turns a write, the
    /// lock or a gather against the machine: links to folders and files outside, a link
    /// as switchyard's private folder, a private folder someone else owns.
    #[test]
    fn planted_links_are_refused_never_followed() {
        let dir = scratch("links");
        let root = dir.join("conf");
        let outside = dir.join("outside");
        std::fs::create_dir_all(root.join("sip_profiles")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim"), "precious").unwrap();
        let r = root.display().to_string();
        let (me, grp) = crate::host::state::current_user_and_group();
        let w = |rel: &str| {
            let p = format!("{r}/{rel}");
            let ops = [FileOp::Write {
                path: &p,
                content: b"<x/>\n",
                owner: &me,
                group: &grp,
                mode: 0o640,
            }];
            let (cmd, stdin) = write(&r, &ops, &[]).unwrap();
            sh(&cmd, &stdin)
        };

        // A folder on the way is a link out of the conf root.
        std::os::unix::fs::symlink(&outside, root.join("sip_profiles/external")).unwrap();
        let (code, _, err) = w("sip_profiles/external/wavix.xml");
        assert_eq!(code, Some(6), "{err}");
        assert!(err.contains("`external` is a symbolic link"), "{err}");
        assert!(!outside.join("wavix.xml").exists());
        // The gather says so too, without reading through it.
        let g = gather(&r, 1024, &[&format!("{r}/sip_profiles/external/wavix.xml")]);
        let (code, out, _) = sh(&g, b"");
        assert_eq!(code, Some(0));
        assert!(
            out.starts_with(&format!(
                "O {}\n",
                outside.canonicalize().unwrap().display()
            )),
            "{out}"
        );

        // The managed file itself is a link to a file outside: read as a link, and the
        // write replaces the link, never writing through it.
        std::fs::remove_file(root.join("sip_profiles/external")).unwrap();
        std::fs::create_dir_all(root.join("sip_profiles/external")).unwrap();
        std::os::unix::fs::symlink(
            outside.join("victim"),
            root.join("sip_profiles/external/wavix.xml"),
        )
        .unwrap();
        let (_, out, _) = sh(
            &gather(&r, 1024, &[&format!("{r}/sip_profiles/external/wavix.xml")]),
            b"",
        );
        assert!(out.starts_with("L\n"), "{out}");
        let (code, _, err) = w("sip_profiles/external/wavix.xml");
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(
            std::fs::read_to_string(outside.join("victim")).unwrap(),
            "precious"
        );
        assert!(!root.join("sip_profiles/external/wavix.xml").is_symlink());

        // switchyard's private folder planted as a link: the lock and the write refuse it.
        std::fs::remove_dir_all(root.join(".switchyard")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join(".switchyard")).unwrap();
        let (code, _, err) = w("dialplan/x.xml");
        assert_eq!(code, Some(6), "{err}");
        assert!(
            err.contains(".switchyard in the conf root is a symbolic link"),
            "{err}"
        );
        let (code, out, err) = sh(&lock(&r, "me"), b"");
        assert_eq!(code, Some(6), "{out}{err}");
        assert!(!outside.join("lock").exists() && !outside.join("lock.owner").exists());

        // A private folder that belongs to someone else (planted by `freeswitch`).
        std::fs::remove_file(root.join(".switchyard")).unwrap();
        std::fs::create_dir(root.join(".switchyard")).unwrap();
        if crate::host::state::current_user_and_group().0 == "root" {
            let status = std::process::Command::new("chown")
                .args(["nobody", &format!("{r}/.switchyard")])
                .status()
                .unwrap();
            assert!(status.success());
            let (code, _, err) = w("dialplan/x.xml");
            assert_eq!(code, Some(6), "{err}");
            assert!(err.contains("belongs to nobody"), "{err}");
        }
    }
}
