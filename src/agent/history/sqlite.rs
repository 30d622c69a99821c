//! The embedded store of the run history (the default): one SQLite file on the machine that
//! runs switchyard.
//!
//! *Why SQLite*: a year of 15-minute rounds on 1,000 PBXes is 35 million host records; a
//! JSON-lines file had to be read whole for every `history --host X --since 7d`. SQLite is
//! one file, nothing to run, safe for concurrent runs (WAL, busy timeout), and its B-trees
//! answer a host's last week without reading the rest (`bench/history`, README).
//!
//! *Why this schema*: almost every record of a watched fleet is the same no-op report as the
//! host's previous round, apart from its duration. A report is stored once (`bodies`, keyed
//! by the SHA-256 of its masked JSON without `seconds`) and a record is six small integers
//! and a float: the 35M-record year stays a few gigabytes. `records` is clustered on
//! `(host, at, run)` — the host-and-time index *is* the table — and `runs` carries who, what
//! and which play once per run. Every record is built from reports that are already masked:
//! it holds hashes and masked diffs, never a secret.
//!
//! Default location: `$SWITCHYARD_HISTORY`, else `$XDG_STATE_HOME/switchyard/history.db`,
//! else `~/.local/state/switchyard/history.db`. A JSON-lines history of earlier versions is
//! migrated on first use, in place or from `history.jsonl` beside the database (see
//! [`Sqlite::open`]).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::{Entry, HistoryError, Row};

pub fn default_path() -> PathBuf {
    // A `postgres://` URL there names no file: the folder below keeps the local files.
    if let Some(p) = std::env::var_os("SWITCHYARD_HISTORY")
        .filter(|p| !p.is_empty() && !super::postgres::is_url(&p.to_string_lossy()))
    {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    base.join("switchyard/history.db")
}

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
pub(crate) const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hosts(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY, at INTEGER NOT NULL,
    who TEXT NOT NULL, kind TEXT NOT NULL, play TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_at ON runs(at);
CREATE TABLE IF NOT EXISTS bodies(
    id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE,
    last_at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS bodies_last_at ON bodies(last_at);
CREATE TABLE IF NOT EXISTS records(
    host INTEGER NOT NULL, at INTEGER NOT NULL, run INTEGER NOT NULL,
    seq INTEGER NOT NULL, seconds REAL NOT NULL, body INTEGER NOT NULL,
    PRIMARY KEY(host, at, run)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// An open history database.
pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
}

impl Sqlite {
    /// Open (or create) the history at `path`.
    ///
    /// Migration from the JSON-lines history of earlier versions, converging if killed:
    /// - `path` itself holds JSON lines (a `--history x.jsonl` kept from before): the records
    ///   go to `path.migrating`, the old file is kept as `path.jsonl-before-sqlite` (a hard
    ///   link), then `path.migrating` replaces `path` in one rename.
    /// - `history.jsonl` lies beside a `history.db` (the old default): its records are
    ///   imported in one transaction that also notes the import, then it is renamed
    ///   `history.jsonl.imported`.
    pub fn open(path: &Path) -> Result<Sqlite, HistoryError> {
        let io = |source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // A folder switchyard creates is its user's alone: the retry files and the
            // digest key live there too.
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        match sniff(path).map_err(io)? {
            Kind::Sqlite | Kind::Missing => {}
            Kind::JsonLines => migrate_in_place(path)?,
            Kind::Foreign => {
                return Err(HistoryError::Foreign {
                    path: path.to_path_buf(),
                })
            }
        }
        let mut h = Sqlite::connect(path)?;
        let sibling = path.with_extension("jsonl");
        if sibling != path && path.extension().is_some_and(|e| e == "db") && sibling.exists() {
            h.import_sibling(&sibling)?;
        }
        Ok(h)
    }

    fn connect(path: &Path) -> Result<Sqlite, HistoryError> {
        let db = db_err(path);
        create_private(path).map_err(|source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let conn = Connection::open(path).map_err(db)?;
        // Concurrent runs (a rollout while `watch` records a round) wait for each other.
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db)?;
        let _: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db)?;
        // NORMAL in WAL mode: a commit survives a crash of switchyard, and at worst the
        // last rounds of a power cut. 32 MiB of page cache: a round touches a page per host.
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768;")
            .map_err(db)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        if version > SCHEMA_VERSION {
            return Err(HistoryError::Newer {
                path: path.display().to_string(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
        .map_err(db)?;
        Ok(Sqlite {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Run `work` in one transaction: committed when it succeeds, rolled back if not.
    fn in_transaction<T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, HistoryError> {
        let db = db_err(&self.path);
        let tx = self.conn.transaction().map_err(db)?;
        let out = work(&tx).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    /// Insert rows in one transaction.
    pub(crate) fn insert_rows<'a>(
        &mut self,
        rows: impl Iterator<Item = Row<'a>>,
    ) -> Result<(), HistoryError> {
        self.in_transaction(|tx| super::insert(&mut Writer(tx), rows))
    }

    /// Records at or after `since`, of one host or all, oldest first.
    pub fn query(&self, host: Option<&str>, since: u64) -> Result<Vec<Entry>, HistoryError> {
        self.query_until(host, since, i64::MAX as u64)
    }

    /// Records from `since` up to (not including) `until`, of all hosts, oldest first.
    pub fn query_between(&self, since: u64, until: u64) -> Result<Vec<Entry>, HistoryError> {
        self.query_until(None, since, until)
    }

    /// The first and last record times, if any.
    pub fn span(&self) -> Result<Option<(u64, u64)>, HistoryError> {
        let (first, last): (Option<i64>, Option<i64>) = self
            .conn
            .query_row("SELECT min(at), max(at) FROM runs", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(db_err(&self.path))?;
        Ok(first.zip(last).map(|(f, l)| (f as u64, l as u64)))
    }

    fn query_until(
        &self,
        host: Option<&str>,
        since: u64,
        until: u64,
    ) -> Result<Vec<Entry>, HistoryError> {
        // The host-and-time primary key answers both: one range per host. Without a host,
        // the hosts table drives the loop (CROSS JOIN keeps that order), so a week of the
        // fleet is 1,000 range scans, not a scan of the year.
        let sql = "SELECT r.at, runs.who, runs.kind, runs.play, h.name, r.seconds, b.body
             FROM hosts h CROSS JOIN records r ON r.host = h.id
             JOIN runs ON runs.id = r.run JOIN bodies b ON b.id = r.body
             WHERE (?1 IS NULL OR h.name = ?1) AND r.at >= ?2 AND r.at < ?3
             ORDER BY r.at, r.run, r.seq";
        let db = db_err(&self.path);
        let mut st = self.conn.prepare(sql).map_err(db)?;
        let rows = st
            .query_map(
                params![host, since as i64, until.min(i64::MAX as u64) as i64],
                |r| {
                    let at: i64 = r.get(0)?;
                    let body: String = r.get(6)?;
                    let report = super::report_of(&body, r.get(5)?);
                    Ok(Entry {
                        at: at as u64,
                        who: r.get(1)?,
                        kind: r.get(2)?,
                        play: r.get(3)?,
                        host: r.get(4)?,
                        report,
                    })
                },
            )
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Delete what is older than `before` (seconds since the epoch): records, runs, and the
    /// report bodies no remaining record uses. Returns the number of records deleted.
    pub fn prune(&mut self, before: u64) -> Result<u64, HistoryError> {
        let before = before as i64;
        self.in_transaction(|tx| {
            // `host IN (...)`: one range delete per host on the clustered key, not a scan.
            let deleted = tx.execute(
                "DELETE FROM records WHERE host IN (SELECT id FROM hosts) AND at < ?1",
                [before],
            )?;
            tx.execute("DELETE FROM runs WHERE at < ?1", [before])?;
            // A body last used before the cut-off is used by no remaining record.
            tx.execute("DELETE FROM bodies WHERE last_at < ?1", [before])?;
            Ok(deleted as u64)
        })
    }

    fn import_sibling(&mut self, sibling: &Path) -> Result<(), HistoryError> {
        let key = format!("imported:{}", sibling.display());
        let done: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err(&self.path))?;
        if done.is_none() {
            let (entries, skipped) = read_json_lines(sibling)?;
            // The records and the note that they are in: one transaction, so a killed
            // import is redone whole.
            self.in_transaction(|tx| {
                super::insert(&mut Writer(tx), entries.iter().map(Row::of))?;
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)",
                    params![key, entries.len().to_string()],
                )
            })?;
            report_migration(sibling, &self.path, entries.len(), skipped);
        }
        let kept = PathBuf::from(format!("{}.imported", sibling.display()));
        std::fs::rename(sibling, &kept).map_err(|source| HistoryError::Io {
            path: sibling.to_path_buf(),
            source,
        })
    }
}

/// Create the database file 0600 before SQLite opens it (SQLite would create it 0644, and
/// gives its `-wal` and `-shm` files the database's own mode): it holds every host's
/// reports, which name hosts, addresses and changed lines. An existing one that other users
/// can read is left as it is, with a warning: its owner may mean to share it.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            for p in [
                path.to_path_buf(),
                PathBuf::from(format!("{}-wal", path.display())),
                PathBuf::from(format!("{}-shm", path.display())),
            ] {
                if let Ok(m) = std::fs::metadata(&p) {
                    let mode = m.mode() & 0o777;
                    if mode & 0o077 != 0 {
                        eprintln!(
                            "warning: history {} is open to other users (mode {mode:04o}): it holds every host's reports; `chmod 600` it",
                            p.display()
                        );
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// How a database error of the history at `path` is reported.
fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> HistoryError + Copy + '_ {
    move |source| HistoryError::Db {
        path: path.to_path_buf(),
        source,
    }
}

/// [`super::insert`]'s statements on an SQLite transaction (prepared once, then cached).
struct Writer<'t, 'c>(&'t rusqlite::Transaction<'c>);

impl super::Writer for Writer<'_, '_> {
    type Error = rusqlite::Error;
    fn host(&mut self, name: &str) -> rusqlite::Result<i64> {
        self.0
            .prepare_cached(
                "INSERT INTO hosts(name) VALUES (?1) ON CONFLICT(name) DO UPDATE SET name = name
                 RETURNING id",
            )?
            .query_row([name], |r| r.get(0))
    }
    fn run(&mut self, at: i64, who: &str, kind: &str, play: &str) -> rusqlite::Result<i64> {
        self.0
            .prepare_cached("INSERT INTO runs(at, who, kind, play) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![at, who, kind, play])?;
        Ok(self.0.last_insert_rowid())
    }
    fn body(&mut self, digest: &[u8; 32], at: i64, text: &str) -> rusqlite::Result<i64> {
        self.0
            .prepare_cached(
                "INSERT INTO bodies(digest, last_at, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(digest) DO UPDATE SET last_at = max(last_at, excluded.last_at)
                 RETURNING id",
            )?
            .query_row(params![digest.as_slice(), at, text], |r| r.get(0))
    }
    fn record(&mut self, r: [i64; 4], seconds: f64, body: i64) -> rusqlite::Result<()> {
        self.0
            .prepare_cached(
                "INSERT OR REPLACE INTO records(host, at, run, seq, seconds, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![r[0], r[1], r[2], r[3], seconds, body])?;
        Ok(())
    }
    fn touch(&mut self, body: i64, at: i64) -> rusqlite::Result<()> {
        self.0
            .prepare_cached("UPDATE bodies SET last_at = max(last_at, ?1) WHERE id = ?2")?
            .execute(params![at, body])?;
        Ok(())
    }
}

enum Kind {
    Missing,
    Sqlite,
    JsonLines,
    Foreign,
}

fn sniff(path: &Path) -> std::io::Result<Kind> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Kind::Missing),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(if n == 0 {
        // An empty file (created by hand, or by an older switchyard that died): nothing
        // to keep; SQLite makes an empty file a database.
        Kind::Sqlite
    } else if &head[..n] == SQLITE_MAGIC {
        Kind::Sqlite
    } else if head[..n]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_none_or(|b| *b == b'{')
    {
        Kind::JsonLines
    } else {
        Kind::Foreign
    })
}

fn migrate_in_place(path: &Path) -> Result<(), HistoryError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| HistoryError::Io { path: p, source }
    };
    let (entries, skipped) = read_json_lines(path)?;
    let tmp = PathBuf::from(format!("{}.migrating", path.display()));
    for stale in [tmp.clone(), PathBuf::from(format!("{}-wal", tmp.display()))] {
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&stale)(e)),
            _ => {}
        }
    }
    {
        let mut h = Sqlite::connect(&tmp)?;
        h.insert_rows(entries.iter().map(Row::of))?;
        // Fold the write-ahead log in, so the one renamed file is the whole database.
        h.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;")
            .map_err(db_err(&h.path))?;
    }
    let backup = PathBuf::from(format!("{}.jsonl-before-sqlite", path.display()));
    match std::fs::remove_file(&backup) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&backup)(e)),
        _ => {}
    }
    std::fs::hard_link(path, &backup).map_err(io(&backup))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    report_migration(path, path, entries.len(), skipped);
    Ok(())
}

fn report_migration(from: &Path, to: &Path, n: usize, skipped: usize) {
    eprintln!(
        "history: migrated {n} records from the JSON-lines file {} to {}{}",
        from.display(),
        to.display(),
        if skipped > 0 {
            format!(" ({skipped} unreadable lines left out; the old file is kept)")
        } else {
            String::new()
        }
    );
}

/// The records of a JSON-lines history, and how many lines could not be read.
fn read_json_lines(path: &Path) -> Result<(Vec<Entry>, usize), HistoryError> {
    let io = |source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut entries = Vec::new();
    let mut skipped = 0;
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(e) => entries.push(e),
            Err(_) => skipped += 1,
        }
    }
    Ok((entries, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: u64, host: &str, status: &str, seconds: f64) -> Entry {
        Entry {
            at,
            who: "ops@ctl".into(),
            kind: "drift".into(),
            play: "trunks".into(),
            host: host.into(),
            report: serde_json::json!({"host": host, "status": status, "files": [],
                "seconds": seconds, "remote_commands": 1}),
        }
    }

    #[test]
    fn records_read_back_in_the_json_lines_shape_and_share_bodies() {
        let dir = std::env::temp_dir().join(format!("swy-hist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("history.db");
        let mut h = Sqlite::open(&path).unwrap();
        let entries: Vec<Entry> = (0..100)
            .flat_map(|i| {
                [
                    entry(1000 + i * 900, "pbx1", "ok", 0.25 + i as f64),
                    entry(1000 + i * 900, "pbx2", "ok", 0.5),
                ]
            })
            .collect();
        h.insert_rows(entries.iter().map(Row::of)).unwrap();
        let bodies: i64 = h
            .conn
            .query_row("SELECT count(*) FROM bodies", [], |r| r.get(0))
            .unwrap();
        assert_eq!(bodies, 2, "a no-op report is stored once per host");
        let got = h.query(Some("pbx1"), 1000 + 98 * 900).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            serde_json::to_value(&got[1]).unwrap(),
            serde_json::to_value(&entries[198]).unwrap()
        );
        assert_eq!(h.query(None, 0).unwrap().len(), 200);
        assert_eq!(h.prune(1000 + 50 * 900).unwrap(), 100);
        assert_eq!(h.query(None, 0).unwrap().len(), 100);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Issue 21, item 10: the database, its write-ahead log and shared memory, and a folder
    /// it creates are the owner's alone.
    #[test]
    fn the_database_and_its_wal_are_private() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("swy-hist-mode-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state/history.db");
        let mut h = Sqlite::open(&path).unwrap();
        h.insert_rows(std::iter::once(Row::of(&entry(1000, "pbx1", "ok", 0.5))))
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        // While it is open: all three files exist.
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        assert_eq!(mode(&dir.join("state")), 0o700);
        drop(h);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
