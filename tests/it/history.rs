//! The run history in SQLite: JSON-lines histories of earlier versions migrate without
//! loss, `history --json` keeps its shape, `--keep` prunes.

use crate::harness::*;

/// Records as switchyard 0.1 wrote them, one JSON line each (a host report, masked).
fn old_lines(now: u64) -> Vec<serde_json::Value> {
    let report = |host: &str, status: &str, seconds: f64, files: serde_json::Value| {
        serde_json::json!({
            "host": host, "batch": 0, "status": status, "files": files, "steps": [],
            "pending": [], "restart_pending": false, "gateways": [], "rollback": null,
            "findings": [], "remote_commands": 1, "seconds": seconds
        })
    };
    let changed = serde_json::json!([{"rel": "vars.xml", "status": "changed",
        "difference": "drift", "diff": "-a\n+b\n"}]);
    let mut v = Vec::new();
    for (i, ago) in [40 * 86_400u64, 10 * 86_400, 3_600].iter().enumerate() {
        for host in ["pbx-nyc-1", "pbx-lon-1"] {
            let files = if i == 1 && host == "pbx-lon-1" {
                changed.clone()
            } else {
                serde_json::json!([])
            };
            v.push(serde_json::json!({
                "at": now - ago, "who": "ops@ctl", "kind": if i == 1 { "drift" } else { "apply" },
                "play": "trunks", "host": host,
                "report": report(host, if files.as_array().unwrap().is_empty() { "ok" } else { "changed" },
                    0.125 * (i + 1) as f64, files)
            }));
        }
    }
    v
}

fn history_json(path: &std::path::Path, extra: &[&str]) -> (Out, Vec<serde_json::Value>) {
    let mut args = vec!["history", "--json", "--history", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = switchyard(&args);
    assert_eq!(out.code, 0, "{}", out.all());
    let v: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    (out, v)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_json_lines_history_is_migrated_in_place_and_reads_the_same() {
    let dir = tmp("hist-inplace");
    let path = dir.join("runs.jsonl");
    let lines = old_lines(now());
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    text.push_str("{not json\n");
    std::fs::write(&path, &text).unwrap();

    let (out, got) = history_json(&path, &[]);
    assert!(
        out.stderr.contains("migrated 6 records")
            && out.stderr.contains("1 unreadable lines left out"),
        "{}",
        out.stderr
    );
    // The same records, the same shape, oldest first.
    assert_eq!(got, lines);
    // The file is a database now; the old one is kept beside it, byte for byte.
    assert!(std::fs::read(&path)
        .unwrap()
        .starts_with(b"SQLite format 3\0"));
    let backup = dir.join("runs.jsonl.jsonl-before-sqlite");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), text);

    // Migrated once: the next read says nothing of it and finds the same.
    let (again, got) = history_json(&path, &["--host", "pbx-lon-1", "--since", "11d"]);
    assert!(!again.stderr.contains("migrated"), "{}", again.stderr);
    assert_eq!(got, vec![lines[3].clone(), lines[5].clone()]);

    // The listing reads the migrated reports: the drifted file is named.
    let listing = switchyard(&["history", "--history", path.to_str().unwrap()]);
    assert!(
        listing.stdout.contains("pbx-lon-1") && listing.stdout.contains("vars.xml drift"),
        "{}",
        listing.stdout
    );
}

#[test]
fn the_old_default_history_beside_the_database_is_imported_once() {
    let dir = tmp("hist-sibling");
    let lines = old_lines(now());
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("history.jsonl"), &text).unwrap();
    let db = dir.join("history.db");
    let env = [("SWITCHYARD_HISTORY", db.to_str().unwrap())];

    let out = switchyard_env(&["history", "--json"], &env);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("migrated 6 records"), "{}", out.stderr);
    let got: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(got, lines);
    assert!(!dir.join("history.jsonl").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("history.jsonl.imported")).unwrap(),
        text
    );

    // A stale copy put back (a restored backup) is not imported twice.
    std::fs::write(dir.join("history.jsonl"), &text).unwrap();
    let (_, got) = history_json(&db, &[]);
    assert_eq!(got.len(), 6);
}

#[test]
fn keep_deletes_what_is_older_and_only_that() {
    let dir = tmp("hist-keep");
    let path = dir.join("h.jsonl");
    let lines = old_lines(now());
    std::fs::write(
        &path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();

    let (out, got) = history_json(&path, &["--keep", "30d"]);
    assert!(
        out.stderr.contains("2 records older than 30d deleted"),
        "{}",
        out.stderr
    );
    assert_eq!(got, lines[2..].to_vec());
    // Still there after another open; the bodies the kept records use survive.
    let (_, got) = history_json(&path, &[]);
    assert_eq!(got, lines[2..].to_vec());

    let bad = switchyard(&[
        "history",
        "--history",
        path.to_str().unwrap(),
        "--keep",
        "soon",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(bad.stderr.contains("--keep: `soon`"), "{}", bad.stderr);
}

#[test]
fn a_file_that_is_no_history_is_refused_and_left_alone() {
    let dir = tmp("hist-foreign");
    let path = dir.join("notes.txt");
    std::fs::write(&path, "my notes\n").unwrap();
    let out = switchyard(&["history", "--history", path.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("not a switchyard history"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "my notes\n");
}
