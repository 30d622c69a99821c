//! The run history, in SQLite and in PostgreSQL: JSON-lines histories of earlier versions
//! migrate without loss, `history --json` keeps its shape, `--keep` prunes. The cases that
//! are not about SQLite files run against both stores ([`Store::both`]).

use crate::harness::*;
use crate::pgserver::PgServer;

/// Where a test's history lives: an SQLite file, or a database on a throwaway cluster.
pub enum Store {
    File(std::path::PathBuf),
    Pg(Box<PgServer>, String),
}

impl Store {
    /// Both stores, empty: `dir/name` as a file, and a fresh database.
    pub fn both(dir: &std::path::Path, name: &str) -> [Store; 2] {
        let pg = PgServer::start(&format!(
            "{}-{name}",
            dir.file_name().unwrap().to_string_lossy()
        ));
        let url = pg.create_db("history");
        [Store::File(dir.join(name)), Store::Pg(Box::new(pg), url)]
    }

    pub fn arg(&self) -> String {
        match self {
            Store::File(p) => p.display().to_string(),
            Store::Pg(_, url) => url.clone(),
        }
    }

    pub fn env(&self) -> Vec<(&'static str, &'static str)> {
        match self {
            Store::File(_) => Vec::new(),
            Store::Pg(pg, _) => pg.env().to_vec(),
        }
    }

    /// `switchyard ARGS --history STORE`.
    pub fn run(&self, args: &[&str]) -> Out {
        let arg = self.arg();
        let mut all = args.to_vec();
        all.extend(["--history", arg.as_str()]);
        switchyard_env(&all, &self.env())
    }

    /// Fill the store with JSON lines of an earlier version: a file migrated in place on its
    /// first use, a database by `history migrate` from such a file.
    fn seed(&self, dir: &std::path::Path, lines: &[serde_json::Value]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        match self {
            Store::File(p) => std::fs::write(p, text).unwrap(),
            Store::Pg(_, url) => {
                let from = dir.join("seed.jsonl");
                std::fs::write(&from, text).unwrap();
                let out = switchyard_env(
                    &[
                        "history",
                        "migrate",
                        "--from",
                        from.to_str().unwrap(),
                        "--to",
                        url,
                    ],
                    &self.env(),
                );
                assert_eq!(out.code, 0, "{}", out.all());
                let n = lines.len();
                assert!(
                    out.stderr.contains(&format!("copied {n} records")),
                    "{}",
                    out.stderr
                );
            }
        }
    }

    /// How many report bodies the store keeps (shared by records that differ only in time).
    fn bodies(&self) -> i64 {
        match self {
            Store::File(p) => rusqlite::Connection::open(p)
                .unwrap()
                .query_row("SELECT count(*) FROM bodies", [], |r| r.get(0))
                .unwrap(),
            Store::Pg(pg, _) => pg
                .psql("history", "SELECT count(*) FROM switchyard.bodies")
                .unwrap()
                .parse()
                .unwrap(),
        }
    }
}

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
    store_json(&Store::File(path.to_path_buf()), extra)
}

fn store_json(store: &Store, extra: &[&str]) -> (Out, Vec<serde_json::Value>) {
    let mut args = vec!["history", "--json"];
    args.extend_from_slice(extra);
    let out = store.run(&args);
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
    for store in Store::both(&dir, "h.jsonl") {
        let lines = old_lines(now());
        store.seed(&dir, &lines);

        let (out, got) = store_json(&store, &["--keep", "30d"]);
        assert!(
            out.stderr.contains("2 records older than 30d deleted"),
            "{}",
            out.stderr
        );
        assert_eq!(got, lines[2..].to_vec());
        // Still there after another open; the bodies the kept records use survive.
        let (_, got) = store_json(&store, &[]);
        assert_eq!(got, lines[2..].to_vec());

        let bad = store.run(&["history", "--keep", "soon"]);
        assert_eq!(bad.code, 2, "{}", bad.all());
        assert!(bad.stderr.contains("--keep: `soon`"), "{}", bad.stderr);
    }
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

/// Issue 29, item 1: the same records, filters, listing and shared bodies from either store.
#[test]
fn records_read_back_the_same_from_either_store() {
    let dir = tmp("hist-parity");
    for store in Store::both(&dir, "h.jsonl") {
        let lines = old_lines(now());
        store.seed(&dir, &lines);
        let (_, got) = store_json(&store, &[]);
        assert_eq!(got, lines, "{}", store.arg());
        let (_, got) = store_json(&store, &["--host", "pbx-lon-1", "--since", "11d"]);
        assert_eq!(got, vec![lines[3].clone(), lines[5].clone()]);
        // Three reports that differ only in duration share a body: nyc's one, lon's two.
        assert_eq!(store.bodies(), 3, "{}", store.arg());
        let listing = store.run(&["history"]);
        assert!(
            listing.stdout.contains("pbx-lon-1") && listing.stdout.contains("vars.xml drift"),
            "{}",
            listing.stdout
        );
    }
}

/// Issue 29, item 1: a drift check of a real fleet is recorded, and read back, by either store.
#[test]
fn a_fleet_check_is_recorded_in_either_store() {
    let fleet = Fleet::new("hist-fleet", 2);
    let dir = tmp("hist-fleet-store");
    for store in Store::both(&dir, "h.db") {
        let mut s = fleet.session();
        for (k, v) in store.env() {
            s = s.env(k, v);
        }
        let arg = store.arg();
        let run = s.run(["drift", "--history", arg.as_str()]).out;
        assert!(
            !run.stderr.contains("cannot record history"),
            "{}",
            run.all()
        );
        let (_, got) = store_json(&store, &[]);
        let hosts: Vec<(&str, &str)> = got
            .iter()
            .map(|e| (e["kind"].as_str().unwrap(), e["host"].as_str().unwrap()))
            .collect();
        assert_eq!(hosts, [("drift", "pbx1"), ("drift", "pbx2")], "{}", arg);
    }
}
