//! Controller memory (issue 28): a host that is done costs the controller what its report's
//! output needs, not its files. A fleet's run used to hold every PBX's managed files
//! (before and after) until the recap: about 94 KB per PBX, 188 MB at 2,000.

use std::process::{Command, Stdio};

use crate::harness::*;

/// Run `cmd` and return its exit code and peak resident set in KiB, as the kernel counted
/// it for that one process (`wait4`'s rusage). One malloc arena and no adaptive mmap
/// threshold: memory freed is given back, so the peak is what the run held at once, not
/// what the allocator kept.
// Reaped by `wait4` itself, which is what gives its rusage (std's `wait` would not).
#[allow(clippy::zombie_processes)]
fn peak_kib(mut cmd: Command) -> (i32, i64) {
    let child = cmd
        .env("MALLOC_ARENA_MAX", "1")
        .env("MALLOC_MMAP_THRESHOLD_", "131072")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run switchyard");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped; both pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

/// Six PBXes whose vars.xml is 2 MiB each (the play edits it): checked one after another
/// with `--json`, the run's peak is that of checking one of them, not one plus five PBXes'
/// files (before and after) held until the report — 20 MiB more on the old code.
#[test]
fn a_fleet_check_holds_no_pbxs_files_once_it_is_done() {
    const PAD: usize = 2 << 20;
    let fleet = Fleet::new("memory", 6);
    let mut padding = String::from("<!--\n");
    let mut i = 0;
    while padding.len() < PAD {
        // Numbered in letters: digits would spell the inventory's secrets (its voicemail
        // PIN is 4711), and a file holding one is refused at mode 0644.
        let name: String = format!("{i:08x}")
            .chars()
            .map(|c| (b'g' + c.to_digit(16).unwrap() as u8) as char)
            .collect();
        padding.push_str(&format!("  padding line {name} of a large vars.xml\n"));
        i += 1;
    }
    padding.push_str("-->\n");
    for h in &fleet.hosts {
        let vars = h.conf("vars.xml");
        let text = std::fs::read_to_string(&vars).unwrap();
        std::fs::write(&vars, format!("{text}{padding}")).unwrap();
    }
    let session = fleet.session();
    let args = ["apply", "--check", "--json", "--forks", "1"];
    let check = session.run(args);
    let report = check.json();
    let hosts = report["plays"][0]["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 6, "{}", check.all());
    assert!(
        hosts.iter().all(|h| h["status"] == "changed"),
        "{}",
        check.all()
    );

    let (code_one, one) = peak_kib(session.command([&args[..], &["--limit", "pbx1"]].concat()));
    let (code_all, all) = peak_kib(session.command(args));
    assert_eq!((code_one, code_all), (check.code, check.code));
    let grown = all - one;
    eprintln!("peak: six {all} KiB, one {one} KiB");
    assert!(
        grown < (2 * PAD / 1024) as i64,
        "six PBXes peaked at {all} KiB, one at {one} KiB: {grown} KiB more, as if done \
         PBXes' files were still held"
    );
}
