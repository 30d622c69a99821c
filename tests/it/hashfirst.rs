//! Hash first (issue 28 item 3): the gather asks the host for a digest of every file whose
//! content the controller knows, and brings the content only of files that differ. A no-op
//! of a big PBX then moves no file content; a changed file still shows its whole diff.

use crate::harness::*;
use crate::session::exit;

/// The bytes `-v` says the gather brought back (`pbx1: gather 3.1 ms, exit 0, N bytes
/// received, ...`).
fn gather_received(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pbx1: gather "))
        .unwrap_or_else(|| panic!("no gather line in:\n{stderr}"));
    let (_, rest) = line.split_once("exit 0, ").expect(line);
    rest.split(' ').next().unwrap().parse().expect(line)
}

/// A PBX of 24 users (a directory file each, every one holding a password): the no-op's
/// gather brings back only what the controller cannot know (the files edited in place, the
/// state record) and each file's owner and mode, where it used to bring every managed
/// file's content, every run; a file hand-edited to another content of the same size is still read
/// and shown as drift with its diff, and the apply that follows puts it back.
#[test]
fn a_no_op_of_a_big_pbx_moves_no_file_content_and_a_changed_file_still_shows_its_diff() {
    let fleet = Fleet::new("hashfirst", 1);
    let users: Vec<String> = (0..24)
        .map(|i| {
            format!(
                "{{id: \"{}\", password: \"ext-pass-{i}\", vm_password: \"{}\", caller_id_name: \"User {i}\", caller_id_number: \"1646555{:04}\"}}",
                1000 + i,
                4000 + i,
                1000 + i
            )
        })
        .collect();
    let session = fleet.session_with(&|_, _| format!("users: [{}]\n", users.join(", ")));
    session.run(["apply"]).expect(exit::OK);

    let noop = session.run(["apply", "--json", "-v"]).expect(exit::OK);
    let report = noop.out.json();
    let files = report["plays"][0]["hosts"][0]["files"].as_array().unwrap();
    assert!(files.len() > 24, "{files:?}");
    assert!(files.iter().all(|f| f["status"] == "ok"), "{files:?}");
    let h = &fleet.hosts[0];
    let managed: usize = files
        .iter()
        .map(|f| h.read(f["rel"].as_str().unwrap()).len())
        .sum();
    // What must still travel: the two files the playbook edits in place (their content is
    // the host's), the state record, and two short lines per path (class; owner, group,
    // mode, size).
    let must = [
        "vars.xml",
        "autoload_configs/switch.conf.xml",
        ".switchyard/state.json",
    ]
    .iter()
    .map(|rel| h.read(rel).len())
    .sum::<usize>()
        + 64 * (files.len() + 2);
    let received = gather_received(&noop.out.stderr);
    assert!(
        received <= must && must < managed,
        "the no-op's gather brought {received} bytes back ({must} at most), for {managed} bytes of managed files"
    );

    // A hand edit of the same size: its digest differs, so its content travels and the
    // drift shows the change (secrets masked).
    let rel = "directory/default/1007.xml";
    let before = h.read(rel);
    assert!(before.contains("User 7"), "{before}");
    std::fs::write(h.conf(rel), before.replace("User 7", "Evil 7")).unwrap();
    let drift = session.run(["drift", "--diff"]).expect(exit::DRIFT);
    drift
        .shows(&[&format!("pbx1: drift {rel}"), "Evil 7"])
        .never_shows(&["ext-pass-7"]);
    session.run(["apply"]).expect(exit::OK);
    assert_eq!(h.read(rel), before);
}
