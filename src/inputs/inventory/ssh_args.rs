//! `ansible_ssh_common_args`: the jump hosts Ansible would go through, read from the ssh
//! options as ansible-core splits them.

/// The jump hosts in Ansible's `ansible_ssh_common_args` (`-o ProxyJump=a,b`, `-J a`,
/// `-o ProxyCommand="ssh -W %h:%p [-p N] [user@]host"`), and the options it leaves unused.
pub(super) fn ssh_common_args(s: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let words = split(s)?;
    let mut jump = Vec::new();
    let mut ignored = Vec::new();
    let mut i = 0;
    let split_jumps = |v: &str| -> Vec<String> {
        v.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    };
    while i < words.len() {
        let w = &words[i];
        let option = if w == "-o" {
            i += 1;
            words.get(i).cloned()
        } else {
            w.strip_prefix("-o").map(String::from)
        };
        if let Some(o) = option {
            let (k, v) = o
                .split_once(['=', ' '])
                .map(|(k, v)| (k.trim(), v.trim()))
                .unwrap_or((o.as_str(), ""));
            if k.eq_ignore_ascii_case("ProxyJump") {
                jump.extend(split_jumps(v));
            } else if k.eq_ignore_ascii_case("ProxyCommand") {
                jump.push(proxy_command(v)?);
            } else {
                ignored.push(format!("-o {o}"));
            }
        } else if w == "-J" {
            i += 1;
            jump.extend(split_jumps(words.get(i).map(String::as_str).unwrap_or("")));
        } else if let Some(v) = w.strip_prefix("-J") {
            jump.extend(split_jumps(v));
        } else {
            ignored.push(w.clone());
        }
        i += 1;
    }
    Ok((jump, ignored))
}

/// `ssh -W %h:%p [-q] [-p N] [-l user] [user@]host` → `user@host:port`.
fn proxy_command(cmd: &str) -> Result<String, String> {
    // ssh runs ProxyCommand with the user's shell: POSIX sh words, not Python's.
    let w = shlex::split(cmd)
        .ok_or_else(|| format!("unclosed quote or trailing backslash in `{cmd}`"))?;
    let unsupported = || {
        format!("ProxyCommand `{cmd}` is not `ssh -W %h:%p [user@]host`: set `ssh_jump` instead")
    };
    if w.first().map(String::as_str) != Some("ssh") || !w.iter().any(|x| x == "-W") {
        return Err(unsupported());
    }
    let (mut port, mut user, mut host) = (None, None, None);
    let mut i = 1;
    while i < w.len() {
        match w[i].as_str() {
            "-W" => i += 1,
            "-p" => {
                i += 1;
                port = w.get(i).cloned();
            }
            "-l" => {
                i += 1;
                user = w.get(i).cloned();
            }
            "-q" | "-T" | "-4" | "-6" | "-C" => {}
            x if x.starts_with('-') => return Err(unsupported()),
            x => host = Some(x.to_string()),
        }
        i += 1;
    }
    let host = host.ok_or_else(unsupported)?;
    let host = match (user, host.contains('@')) {
        (Some(u), false) => format!("{u}@{host}"),
        _ => host,
    };
    Ok(match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// Python's shlex reads three characters as POSIX sh (and the shlex crate) do not: `#` starts
/// no comment (`shlex.split` has `comments=False`), and inside double quotes a backslash
/// escapes only `"` and `\\`, so before `$` or a backtick it is kept. Each is swapped for a
/// private-use character, which both read as an ordinary one, and swapped back.
const PYTHON_ONLY: [(char, char); 3] = [('#', '\u{E000}'), ('$', '\u{E001}'), ('`', '\u{E002}')];

/// Split `s` into words as ansible-core does: Python's `shlex.split` (POSIX mode). A
/// backslash outside quotes escapes the next character; inside double quotes only before
/// `\\` or `"`; inside single quotes it is kept. The two inputs Python reads differently
/// from the shlex crate in ways no swap can mend (a carriage return, which Python splits
/// at, and a backslash before a line break) are refused rather than read otherwise.
fn split(s: &str) -> Result<Vec<String>, String> {
    let swapped_in = |c: char| PYTHON_ONLY.iter().any(|(_, p)| *p == c);
    if s.chars().any(swapped_in) {
        return Err(format!(
            "`{s}` holds a private-use character (U+E000 to U+E002): not a shell word"
        ));
    }
    if s.contains('\r') || s.contains("\\\n") {
        return Err(format!(
            "`{s}` holds a carriage return or a backslash before a line break: write it on one line"
        ));
    }
    let swap = |w: &str, from: fn(&(char, char)) -> char, to: fn(&(char, char)) -> char| {
        w.chars()
            .map(|c| {
                PYTHON_ONLY
                    .iter()
                    .find(|x| from(x) == c)
                    .map(to)
                    .unwrap_or(c)
            })
            .collect::<String>()
    };
    let words = shlex::split(&swap(s, |x| x.0, |x| x.1))
        .ok_or_else(|| format!("unclosed quote or trailing backslash in `{s}`"))?;
    Ok(words.iter().map(|w| swap(w, |x| x.1, |x| x.0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::inventory::{Host, Vars};
    use std::collections::BTreeSet;

    /// Every expected value is what Python 3's `shlex.split` returns for the input (the
    /// splitter ansible-core hands `ansible_ssh_common_args` to).
    #[test]
    fn words_are_split_as_pythons_shlex_splits_them() {
        let cases: &[(&str, &[&str])] = &[
            ("-J jump\\ host", &["-J", "jump host"]),
            ("-J ops@jump\\host", &["-J", "ops@jumphost"]),
            ("-J \"ops@jump\\host\"", &["-J", "ops@jump\\host"]),
            ("-J 'ops@jump\\host'", &["-J", "ops@jump\\host"]),
            ("-J \"a\\\\b\"", &["-J", "a\\b"]),
            ("-J \"a\\\"b\"", &["-J", "a\"b"]),
            ("-o \"ProxyJump=a\\$b\"", &["-o", "ProxyJump=a\\$b"]),
            ("-o \"ProxyJump=a\\`b\"", &["-o", "ProxyJump=a\\`b"]),
            ("-o ProxyJump=a\\$b", &["-o", "ProxyJump=a$b"]),
            ("-o \"ProxyJump=a\\#b\"", &["-o", "ProxyJump=a\\#b"]),
            ("-J a #b", &["-J", "a", "#b"]),
            (
                "-o ProxyCommand=\"ssh -W %h:%p -l o\\\\ps bastion\"",
                &["-o", "ProxyCommand=ssh -W %h:%p -l o\\ps bastion"],
            ),
            (
                "-o ProxyCommand=\"ssh -W %h:%p -p 2200 \\\"ops@bastion\\\"\"",
                &["-o", "ProxyCommand=ssh -W %h:%p -p 2200 \"ops@bastion\""],
            ),
            ("-J\ta  b", &["-J", "a", "b"]),
            ("-J ''", &["-J", ""]),
        ];
        for (input, want) in cases {
            assert_eq!(split(input).unwrap(), *want, "{input}");
        }
        for bad in ["-J 'a", "-J \"a", "-J a\\", "-J a\rb", "-J a\\\nb"] {
            assert!(split(bad).is_err(), "{bad:?}");
        }
    }

    /// The jump chain follows from the words: a backslash inside double quotes stays in
    /// the host (as Ansible's ssh would be given it), one outside is taken away; inside a
    /// ProxyCommand, which ssh hands to sh, sh's rules take it away again.
    #[test]
    fn backslashes_reach_the_jump_chain_as_ansible_passes_them() {
        let j = |s: &str| ssh_common_args(s).unwrap().0;
        assert_eq!(j("-J \"ops@jump\\host\""), ["ops@jump\\host"]);
        assert_eq!(j("-J ops@jump\\host"), ["ops@jumphost"]);
        assert_eq!(
            j("-o ProxyCommand=\"ssh -W %h:%p -l o\\\\ps bastion\""),
            ["ops@bastion"]
        );
        assert_eq!(j("-o ProxyJump=a\\,b"), ["a", "b"]);
    }

    #[test]
    fn proxyjump_in_ssh_common_args_becomes_the_jump_chain() {
        let j = |s: &str| ssh_common_args(s).unwrap();
        assert_eq!(j("-o ProxyJump=ops@bastion:2222").0, ["ops@bastion:2222"]);
        assert_eq!(j("-J a,b").0, ["a", "b"]);
        assert_eq!(
            j("-o ProxyCommand=\"ssh -W %h:%p -q -p 2200 ops@bastion\"").0,
            ["ops@bastion:2200"]
        );
        assert_eq!(
            j("-o StrictHostKeyChecking=no -J b"),
            (
                vec!["b".to_string()],
                vec!["-o StrictHostKeyChecking=no".to_string()]
            )
        );
        assert!(
            ssh_common_args("-o ProxyCommand=\"nc -X 5 -x proxy %h %p\"")
                .unwrap_err()
                .contains("set `ssh_jump` instead")
        );
        let mut vars = Vars::new();
        vars.insert("ansible_password".into(), "x".into());
        vars.insert(
            "ansible_python_interpreter".into(),
            "/usr/bin/python3".into(),
        );
        vars.insert("ansible_become_method".into(), "sudo".into());
        vars.insert(
            "ansible_ssh_common_args".into(),
            "-o ProxyJump=b -o Compression=yes".into(),
        );
        let h = Host::from_vars("pbx1", BTreeSet::new(), vars).unwrap();
        assert_eq!(h.connection.jump, ["b"]);
        assert_eq!(h.warnings.len(), 2, "{:?}", h.warnings);
        assert!(h.warnings[0].contains("`ansible_password` is ignored: password logins"));
        assert!(h.warnings[1].contains("ignores `-o Compression=yes`"));
    }
}
