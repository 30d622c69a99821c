//! The requests the session that changes a host serves (src/host/remote/lock.sh): a write,
//! a FreeSWITCH steps program, a state record. They travel on the held lock's stdin, so a
//! change costs no new channel, login shell, `timeout` or walk to the private folder per
//! round trip, and nothing in them (hashes, content, passwords) is ever a process argument.
//!
//! Each request line carries a nonce the answer ends with (`0x1d NONCE STATUS`): output from
//! FreeSWITCH cannot pass for the end of an answer without it.

use std::fmt::Write as _;

use crate::freeswitch::reload::Action;
use crate::host::script::{quote, FileOp, FsCli};

pub use crate::host::transport::nonce;
use crate::host::transport::SessionError;

/// `path` as (folder relative to `root`, file name); `None` if it is not under `root`.
pub(crate) fn split_under<'p>(root: &str, path: &'p str) -> Option<(&'p str, &'p str)> {
    let rel = path
        .strip_prefix(root.trim_end_matches('/'))?
        .strip_prefix('/')?;
    let (dir, name) = rel.rsplit_once('/').unwrap_or((".", rel));
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some((if dir.is_empty() { "." } else { dir }, name))
}

/// A write request (src/host/remote/write.sh): its bytes, and the folders it writes to
/// (relative to `root`, for the state record that flushes them when `sync` is false).
///
/// `expect` lists, for files about to change, the sha256 they had when gathered (`None`:
/// absent); if any moved on since, nothing is written (exit 5). Content travels as one tar
/// archive, staged and checked whole before anything changes (exit 3 for a cut upload);
/// each folder's files are linked into place from inside the folder, reached without
/// following links. Every path must be under `root` and hold no line break.
pub fn write(
    root: &str,
    ops: &[FileOp<'_>],
    expect: &[(&str, Option<&str>)],
    nonce: &str,
    sync: bool,
) -> Result<(Vec<u8>, Vec<String>), String> {
    let outside = |p: &str| format!("{p} is not under the conf root {root}");
    let split = |p: &str| -> Result<(String, String), String> {
        if p.contains('\n') {
            return Err(format!(
                "{p:?}: a path holding a line break cannot be written"
            ));
        }
        let (d, n) = split_under(root, p).ok_or_else(|| outside(p))?;
        Ok((d.to_string(), n.to_string()))
    };
    let mut words: Vec<String> = Vec::new();
    for (path, sha) in expect {
        let (dir, name) = split(path)?;
        let sha = sha.unwrap_or("-");
        if sha.is_empty() || sha.contains(['\n', ' ']) {
            return Err(format!("bad expected hash for {path}"));
        }
        words.extend(["E".into(), dir, name, sha.into()]);
    }
    let mut archive = Tar::default();
    // The stage folder itself, so a write that only removes files has one too.
    archive.header("stage/", 0, 0o700, b'5', "", "");
    let mut dirs: Vec<String> = Vec::new();
    // Consecutive files of one folder share a stage folder and one `ln`; a name seen twice
    // starts another (ln would refuse the second).
    let mut stage: Option<(String, Vec<String>)> = None;
    let mut group = 0usize;
    for op in ops {
        match op {
            FileOp::Write {
                path,
                content,
                owner,
                group: grp,
                mode,
            } => {
                let (dir, name) = split(path)?;
                for w in [owner, grp] {
                    if w.contains(['\n', ':']) {
                        return Err(format!("bad owner or group {w:?} for {path}"));
                    }
                }
                let same =
                    matches!(&stage, Some((d, names)) if *d == dir && !names.contains(&name));
                if !same {
                    group += 1;
                    stage = Some((dir.clone(), Vec::new()));
                }
                if let Some((_, names)) = stage.as_mut() {
                    names.push(name.clone());
                }
                if !dirs.contains(&dir) {
                    dirs.push(dir.clone());
                }
                archive.file(&format!("stage/{group}/{name}"), content, *mode, owner, grp)?;
                words.extend([
                    "W".into(),
                    dir,
                    name,
                    owner.to_string(),
                    grp.to_string(),
                    group.to_string(),
                ]);
            }
            FileOp::Remove { path } => {
                let (dir, name) = split(path)?;
                stage = None;
                words.extend(["R".into(), dir, name]);
            }
        }
    }
    let mut req = format!("W {nonce} {} {}\n", if sync { 1 } else { 0 }, words.len()).into_bytes();
    for w in &words {
        req.extend_from_slice(w.as_bytes());
        req.push(b'\n');
    }
    req.extend_from_slice(&archive.finish());
    req.extend_from_slice(nonce.as_bytes());
    req.push(b'\n');
    Ok((req, dirs))
}

/// A FreeSWITCH steps request: the program [`crate::host::script::steps`] runs on a channel
/// of its own, here run by the session, each command under its own `timeout` of
/// `timeout_secs` (the session has none: it lives as long as the run). The `fs_cli`
/// line's password travels on stdin after the program (the session reads it into
/// `$sy_pw`, a shell variable: never an argument or an environment) and is handed to
/// fs_cli in `.fs_cli_conf` in the private folder (0700, emptied when the program ends).
pub fn steps(
    fs_cli: &str,
    restart_command: &str,
    steps: &[Action],
    timeout_secs: u64,
    nonce: &str,
) -> Result<Vec<u8>, String> {
    let cli = FsCli::parse(fs_cli)?;
    let mut s = String::new();
    let (env, tail) = match &cli.password {
        Some(p) => {
            s.push_str("umask 077; sy_home=$PWD; trap ': > \"$sy_home/.fs_cli_conf\"' EXIT; printf '[default]\\npassword => %s\\n' \"$sy_pw\" > \"$sy_home/.fs_cli_conf\" || exit 1; unset sy_pw\n");
            ("HOME=\"$sy_home\" ", format!("{p}\n"))
        }
        None => ("", String::new()),
    };
    // `timeout` runs a program: a line that starts with variable assignments goes through env.
    let first = cli.line.split_whitespace().next().unwrap_or("");
    let via_env = if first.contains('=') { "env " } else { "" };
    let bound = format!("timeout -k 5 {timeout_secs}");
    for (i, a) in steps.iter().enumerate() {
        let _ = writeln!(s, "printf '\\036{i}\\n'");
        match a {
            Action::Api(cmd) => {
                let _ = writeln!(
                    s,
                    "{env}{bound} {via_env}{} -x {} </dev/null 2>&1",
                    cli.line,
                    quote(cmd)
                );
            }
            Action::Restart => {
                let _ = writeln!(
                    s,
                    "{bound} sh -c {} </dev/null 2>&1",
                    quote(restart_command)
                );
            }
        }
        let _ = writeln!(
            s,
            "sy_rc=$?; [ $sy_rc -ne 124 ] || echo 'switchyard: timed out after {timeout_secs} s'; printf '\\037rc=%s\\n' \"$sy_rc\""
        );
    }
    if s.contains('\u{1f}') {
        return Err("a FreeSWITCH command holds ASCII US (0x1f)".into());
    }
    // The program's lines end at the US line; a password line follows only when needed.
    let with_pw = u8::from(!tail.is_empty());
    Ok(format!("S {nonce} {with_pw}\n{s}\u{1f}\n{tail}").into_bytes())
}

/// A tar archive (POSIX ustar, pax headers for long names) of regular files, padded to
/// whole 10240-byte records: GNU tar reading it with `-B` never reads past its end.
#[derive(Default)]
struct Tar {
    out: Vec<u8>,
}

const BLOCK: usize = 512;
const RECORD: usize = 20 * BLOCK;

impl Tar {
    fn file(
        &mut self,
        path: &str,
        content: &[u8],
        mode: u32,
        owner: &str,
        group: &str,
    ) -> Result<(), String> {
        let mut pax = String::new();
        let record = |pax: &mut String, key: &str, value: &str| {
            // "LEN key=value\n", LEN counting itself.
            let body = format!(" {key}={value}\n");
            let mut len = body.len() + 1;
            while format!("{len}").len() + body.len() != len {
                len += 1;
            }
            let _ = write!(pax, "{len}{body}");
        };
        if path.len() > 100 {
            record(&mut pax, "path", path);
        }
        if owner.len() > 31 {
            record(&mut pax, "uname", owner);
        }
        if group.len() > 31 {
            record(&mut pax, "gname", group);
        }
        if !pax.is_empty() {
            self.header("././@PaxHeader", pax.len(), 0o600, b'x', "", "");
            self.data(pax.as_bytes());
        }
        let short = |s: &str, n: usize| if s.len() > n { "" } else { s }.to_string();
        self.header(
            &short(path, 100),
            content.len(),
            mode & 0o7777,
            b'0',
            &short(owner, 31),
            &short(group, 31),
        );
        self.data(content);
        Ok(())
    }

    fn header(&mut self, name: &str, size: usize, mode: u32, kind: u8, owner: &str, group: &str) {
        let mut h = [0u8; BLOCK];
        let put = |h: &mut [u8; BLOCK], at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
        put(&mut h, 0, name.as_bytes());
        put(&mut h, 100, format!("{mode:07o}\0").as_bytes());
        put(&mut h, 108, b"0000000\0");
        put(&mut h, 116, b"0000000\0");
        put(&mut h, 124, format!("{size:011o}\0").as_bytes());
        put(&mut h, 136, b"00000000000\0");
        put(&mut h, 148, b"        ");
        h[156] = kind;
        put(&mut h, 257, b"ustar\x0000");
        put(&mut h, 265, owner.as_bytes());
        put(&mut h, 297, group.as_bytes());
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
        self.out.extend_from_slice(&h);
    }

    fn data(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
        let pad = (BLOCK - b.len() % BLOCK) % BLOCK;
        self.out.resize(self.out.len() + pad, 0);
    }

    /// The end-of-archive blocks, and zeros up to a whole record.
    fn finish(mut self) -> Vec<u8> {
        self.out.resize(self.out.len() + 2 * BLOCK, 0);
        let pad = (RECORD - self.out.len() % RECORD) % RECORD;
        self.out.resize(self.out.len() + pad, 0);
        self.out
    }
}

/// Where FreeSWITCH commands run: a command of their own on the connection (read-only
/// runs: check, verify), or the held session of a run that changes the host.
pub enum Via<'a> {
    Channel(&'a mut crate::host::transport::Transport),
    Session(&'a mut crate::host::transport::HostLock),
}

impl Via<'_> {
    /// Run `actions` (one steps program, [`crate::host::script::steps`]): its framed output.
    pub async fn run(
        &mut self,
        fs_cli: &str,
        restart_command: &str,
        actions: &[Action],
    ) -> Result<String, SessionError> {
        let (cmd, stdin) = crate::host::script::steps(fs_cli, restart_command, actions)
            .map_err(SessionError::Unsendable)?;
        match self {
            Via::Channel(t) => Ok(t.exec(&cmd, &stdin).await?.stdout_text()),
            Via::Session(lock) => {
                let n = nonce();
                let secs = lock.command_timeout().as_secs_f64().ceil().max(1.0) as u64;
                let req = self::steps(fs_cli, restart_command, actions, secs, &n)
                    .map_err(SessionError::Unsendable)?;
                // `-v` shows the commands as the channel form names them.
                lock.steps(&req, &n, &cmd).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::script::{gather, lock};

    /// The requests as the session reads them (the tar archive left out): neither the
    /// expected hash nor the event socket password ever is an argument.
    #[test]
    fn session_requests() {
        let (request, dirs) = write(
            "/etc/freeswitch",
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
            "n0nce",
            true,
        )
        .unwrap();
        assert_eq!(dirs, ["sip_profiles/external"]);
        let words = String::from_utf8_lossy(&request)
            .split("stage/")
            .next()
            .unwrap_or("")
            .to_string();
        let held = steps(
            "fs_cli -H 127.0.0.1 -p 'pw'",
            "systemctl restart freeswitch",
            &[
                Action::Api("sofia profile external rescan".into()),
                Action::Restart,
            ],
            30,
            "n0nce",
        )
        .unwrap();
        insta::assert_snapshot!(format!(
            "write request: {words:?}\n\nsteps request:\n{}",
            String::from_utf8_lossy(&held).replace('\u{1f}', "<US>")
        ));
        // A path outside the conf root, or holding a line break, is refused before any
        // request exists.
        for bad in ["/etc/passwd", "/etc/freeswitch/a\nb.xml"] {
            assert!(write(
                "/etc/freeswitch",
                &[FileOp::Remove { path: bad }],
                &[],
                "n",
                true
            )
            .is_err());
        }
    }

    /// Run a write request through the session program (lock.sh), locally: (exit code,
    /// stdout, everything it said on stdout and stderr).
    fn run_write(
        root: &str,
        ops: &[FileOp<'_>],
        expect: &[(&str, Option<&str>)],
    ) -> (Option<i32>, String, String) {
        let (req, _) = write(root, ops, expect, "n0nce", true).unwrap();
        let (code, out, err) = sh(&lock(root, "test"), &req);
        let all = format!("{out}{err}");
        (code, out, all)
    }

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
        let (code, out, err) = run_write(&root, &ops, &[]);
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
            .filter(|n| n != "lock" && n != "lock.owner")
            .collect();
        assert!(left.is_empty(), "{left:?}");

        // A file that changed since it was read stops the whole write.
        let (code, _, err) = run_write(&root, &ops, &[(b.as_str(), Some("0000"))]);
        assert_eq!(code, Some(5), "{err}");
        assert!(err.contains("changed since it was read"));
        assert_eq!(std::fs::read(&a).unwrap(), b"<a/>\n");

        // A short upload (connection cut in the content, or before its end line) changes
        // nothing.
        let ops2 = [FileOp::Write {
            path: &b,
            content: b"newer",
            owner: &me,
            group: &grp,
            mode: 0o600,
        }];
        let (req, _) = write(&root, &ops2, &[], "n1", true).unwrap();
        for cut in [req.len() - 10240 + 600, req.len() - 3] {
            let (code, _, err) = sh(&lock(&root, "t"), &req[..cut]);
            assert_eq!(code, Some(3), "{err}");
            assert_eq!(std::fs::read(&b).unwrap(), b"new\xff");
        }

        // Paths outside the conf root are refused before any command exists.
        assert!(write(
            &root,
            &[FileOp::Remove {
                path: "/etc/passwd"
            }],
            &[],
            "n",
            true
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
        let (code, out, err) = run_write(&root, &ops, &expect);
        assert_eq!(code, Some(5), "{err}");
        assert!(out.contains("b/f6.xml changed since it was read"), "{out}");
        for p in &paths {
            assert_eq!(std::fs::read_to_string(p).unwrap(), format!("old {p}"));
        }
        // All as read: every file written.
        shas[6] = sha(&paths[6]);
        let expect = expected(&paths, &shas);
        let (code, out, err) = run_write(&root, &ops, &expect);
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
        let (code, _, err) = run_write(&root, &ops[..2], &expect);
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
            run_write(&r, &ops, &[])
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

    /// A write that only removes files (a probe file taken away, a rollback of created
    /// files) has a stage too; an owner unknown on the host is an error, never a file
    /// silently owned by root (tar falls back to the archive's numeric id for a name it
    /// cannot find).
    #[test]
    fn removals_alone_and_unknown_owners() {
        let dir = scratch("owners");
        let root = dir.display().to_string();
        let a = format!("{root}/a.xml");
        std::fs::write(&a, "x").unwrap();
        let (code, out, all) = run_write(&root, &[FileOp::Remove { path: &a }], &[]);
        assert_eq!(code, Some(0), "{all}");
        assert!(out.contains("switchyard-write-ok"), "{all}");
        assert!(!std::path::Path::new(&a).exists());
        if crate::host::state::current_user_and_group().0 == "root" {
            let ops = [FileOp::Write {
                path: &a,
                content: b"<a/>",
                owner: "no-such-user-sy",
                group: "root",
                mode: 0o640,
            }];
            let (code, _, all) = run_write(&root, &ops, &[]);
            assert_eq!(code, Some(6), "{all}");
            assert!(all.contains("no user `no-such-user-sy`"), "{all}");
            assert!(!std::path::Path::new(&a).exists());
        }
    }
}
