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

/// Gather owner, group, mode and content of every path in one command.
///
/// Shell builtins classify each path (`F` regular file, `M` missing, `E` anything else),
/// then one `stat` and one `cat` cover every regular file: two processes per host whatever
/// the number of files (a no-op run's host-side cost is mostly process start-ups).
/// Output: one class line per path; `S`; one `owner group mode size` line per regular file;
/// `C`; the files' contents back to back.
pub fn gather(paths: &[&str]) -> String {
    let script = "for f do\n  shift\n  if [ -f \"$f\" ]; then echo F; set -- \"$@\" \"$f\"\n  elif [ -e \"$f\" ]; then echo E\n  else echo M\n  fi\ndone\necho S\n[ $# -eq 0 ] || stat -c '%U %G %a %s' -- \"$@\" || exit 1\necho C\n[ $# -eq 0 ] || exec cat -- \"$@\"\n";
    let mut cmd = format!("sh -c {} sh", quote(script));
    for p in paths {
        cmd.push(' ');
        cmd.push_str(&quote(p));
    }
    cmd
}

/// One file operation of a write round trip.
#[derive(Debug, Clone)]
pub enum FileOp<'a> {
    /// Write `content` atomically, with owner/group/mode set before any content lands.
    Write {
        path: &'a str,
        content: &'a [u8],
        owner: &'a str,
        group: &'a str,
        mode: u32,
    },
    /// Only set owner/group/mode of an existing file.
    Perms {
        path: &'a str,
        owner: Option<&'a str>,
        group: Option<&'a str>,
        mode: Option<u32>,
    },
    /// Remove a file (rolling back a file switchyard created).
    Remove { path: &'a str },
}

/// The write round trip: the script and the bytes to send on its stdin.
///
/// All content is staged first and its length checked, so a connection cut during the
/// upload changes nothing. Each file then goes to a temp file in its own folder (created
/// 0600 under `umask 077`, chowned and chmodded before content is written, fsynced) and
/// only when every temp file is complete are they renamed over their targets. A cut during
/// the renames leaves each file entirely old or entirely new.
///
/// `expect` lists, for files about to change, the sha256 they had when gathered (`None`:
/// absent). The script checks them first and changes nothing if any file moved on since
/// (another run, a hand edit), exiting 5.
pub fn write(ops: &[FileOp<'_>], expect: &[(&str, Option<&str>)]) -> (String, Vec<u8>) {
    let mut stdin = Vec::new();
    let mut s = String::new();
    let total: usize = ops
        .iter()
        .map(|o| match o {
            FileOp::Write { content, .. } => content.len(),
            _ => 0,
        })
        .sum();
    s.push_str("set -eu\numask 077\n");
    for (path, sha) in expect {
        let p = quote(path);
        match sha {
            Some(h) => {
                let _ = writeln!(
                    s,
                    "[ -f {p} ] && [ \"$(sha256sum < {p} | cut -d' ' -f1)\" = {h} ] || {{ echo 'switchyard: '{p}' changed since it was read; nothing written' >&2; exit 5; }}"
                );
            }
            None => {
                let _ = writeln!(s, "[ ! -e {p} ] || {{ echo 'switchyard: '{p}' appeared since it was read; nothing written' >&2; exit 5; }}");
            }
        }
    }
    s.push_str("stage=$(mktemp)\n");
    let temps: Vec<String> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            FileOp::Write { path, .. } => Some(format!("{}.\"$$\".{i}", quote(&temp_name(path)))),
            _ => None,
        })
        .collect();
    let _ = writeln!(s, "cleanup() {{ rm -f \"$stage\" {}; }}", temps.join(" "));
    s.push_str("trap cleanup EXIT\ntrap 'exit 129' HUP INT TERM PIPE\n");
    s.push_str("cat > \"$stage\"\n");
    let _ = writeln!(
        s,
        "[ \"$(wc -c < \"$stage\")\" -eq {total} ] || {{ echo 'switchyard: upload incomplete, nothing changed' >&2; exit 3; }}"
    );
    let mut off = 0usize;
    let mut renames = String::new();
    let mut after = String::new();
    let mut dirs: Vec<String> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            FileOp::Write {
                path,
                content,
                owner,
                group,
                mode,
            } => {
                let dir = parent(path);
                let t = format!("{}.\"$$\".{i}", quote(&temp_name(path)));
                let _ = writeln!(s, "mkdir -p -- {}", quote(dir));
                if !dirs.iter().any(|d| d == dir) {
                    // Temp files a killed run left behind (never included: no .xml suffix).
                    let _ = writeln!(s, "rm -f -- {}/.*.switchyard-tmp.*", quote(dir));
                }
                let _ = writeln!(s, ": > {t}");
                let _ = writeln!(s, "chown -- {} {t}", quote(&format!("{owner}:{group}")));
                let _ = writeln!(s, "chmod {:o} {t}", mode);
                let _ = writeln!(
                    s,
                    "tail -c +{} \"$stage\" | head -c {} > {t}",
                    off + 1,
                    content.len()
                );
                let _ = writeln!(s, "[ \"$(wc -c < {t})\" -eq {} ]", content.len());
                let _ = writeln!(s, "sync -- {t} 2>/dev/null || sync");
                let _ = writeln!(renames, "mv -f -- {t} {}", quote(path));
                if !dirs.iter().any(|d| d == dir) {
                    dirs.push(dir.to_string());
                }
                stdin.extend_from_slice(content);
                off += content.len();
            }
            FileOp::Perms {
                path,
                owner,
                group,
                mode,
            } => {
                match (owner, group) {
                    (Some(o), Some(g)) => {
                        let _ = writeln!(
                            after,
                            "chown -- {} {}",
                            quote(&format!("{o}:{g}")),
                            quote(path)
                        );
                    }
                    (Some(o), None) => {
                        let _ = writeln!(after, "chown -- {} {}", quote(o), quote(path));
                    }
                    (None, Some(g)) => {
                        let _ = writeln!(after, "chgrp -- {} {}", quote(g), quote(path));
                    }
                    (None, None) => {}
                }
                if let Some(m) = mode {
                    let _ = writeln!(after, "chmod {m:o} {}", quote(path));
                }
            }
            FileOp::Remove { path } => {
                let _ = writeln!(after, "rm -f -- {}", quote(path));
            }
        }
    }
    s.push_str(&renames);
    s.push_str(&after);
    if !dirs.is_empty() {
        let _ = writeln!(
            s,
            "sync -- {} 2>/dev/null || true",
            dirs.iter().map(|d| quote(d)).collect::<Vec<_>>().join(" ")
        );
    }
    s.push_str("echo switchyard-write-ok\n");
    (format!("sh -c {}", quote(&s)), stdin)
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

fn temp_name(path: &str) -> String {
    let (dir, file) = path.rsplit_once('/').unwrap_or((".", path));
    format!("{dir}/.{file}.switchyard-tmp")
}

/// Run FreeSWITCH steps in one command. Each step's output is framed as
/// `REC index \n output END rc=N \n`.
pub fn steps(
    fs_cli: &str,
    restart_command: &str,
    steps: &[crate::freeswitch::reload::Action],
) -> String {
    let mut s = String::new();
    for (i, a) in steps.iter().enumerate() {
        let _ = writeln!(s, "printf '\\036{i}\\n'");
        match a {
            crate::freeswitch::reload::Action::Api(cmd) => {
                let _ = writeln!(s, "{fs_cli} -x {} 2>&1", quote(cmd));
            }
            crate::freeswitch::reload::Action::Restart => {
                let _ = writeln!(s, "{restart_command} 2>&1");
            }
        }
        let _ = writeln!(s, "printf '\\037rc=%s\\n' \"$?\"");
    }
    format!("sh -c {}", quote(&s))
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

    #[test]
    fn write_script_is_atomic_and_local_run_works() {
        let dir = std::env::temp_dir().join(format!("sy-script-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let a = format!("{}/sub dir/a'x.xml", dir.display());
        let b = format!("{}/b.xml", dir.display());
        std::fs::write(&b, "old").unwrap();
        let (me, grp) = crate::state::current_user_and_group();
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
        let (cmd, stdin) = write(&ops, &[]);
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(std::fs::read(&a).unwrap(), b"<a/>\n");
        assert_eq!(std::fs::read(&b).unwrap(), b"new\xff");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&a).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(
            std::fs::metadata(&b).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        // no temp files left behind
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            left.iter()
                .all(|n| !n.to_string_lossy().contains("switchyard-tmp")),
            "{left:?}"
        );

        // A file that changed since it was read stops the whole write.
        let (guarded, _) = write(&ops, &[(b.as_str(), Some("0000"))]);
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&guarded)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(5),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("changed since it was read"));
        assert_eq!(std::fs::read(&a).unwrap(), b"<a/>\n");

        // A short upload (connection cut) changes nothing.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&stdin[..3]).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(std::fs::read(&b).unwrap(), b"new\xff");
    }
}
