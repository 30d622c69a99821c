//! The run history: one record per host per run (apply, drift check, correction), behind one
//! interface with two stores:
//! - [`sqlite`]: an embedded SQLite file, the default: nothing to run, one operator's machine;
//! - [`postgres`]: a shared PostgreSQL database (`--history postgres://user@host/db`), for
//!   teams, CI runners that keep no files, and agents in pairs; it also holds the fleet
//!   rollout lock ([`postgres::RolloutLock`]).
//!
//! Both keep the same schema (see [`sqlite`]'s doc for why bodies are deduplicated), fill it
//! through the one [`insert`] below, and answer the same queries, so `history --json` is the
//! same whichever store wrote it. Every record is built from reports that are already
//! masked: it holds hashes and masked diffs, never a secret.

pub mod lock;
pub mod postgres;
pub mod sqlite;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::outcome::PlayReport;

pub use self::sqlite::default_path;

/// Where a history lives: a file (SQLite) or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Postgres(postgres::Target),
}

impl Location {
    /// `postgres://…` or `postgresql://…` is a database (refused if it holds a password);
    /// anything else a file.
    pub fn parse(s: &str) -> Result<Location, HistoryError> {
        if postgres::is_url(s) {
            Ok(Location::Postgres(postgres::Target::parse(s)?))
        } else {
            Ok(Location::File(PathBuf::from(s)))
        }
    }

    /// Where files kept beside the history go (retry files): the history's folder, or for
    /// a database the default history's folder on this machine.
    pub fn folder(&self) -> PathBuf {
        let file = match self {
            Location::File(p) => p.clone(),
            Location::Postgres(_) => default_path(),
        };
        file.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Postgres(t) => write!(f, "{t}"),
        }
    }
}

/// One host's record of one run: the shape of `history --json`, the same as when the history
/// was a JSON-lines file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Seconds since the epoch.
    pub at: u64,
    pub who: String,
    /// `apply`, `check`, `drift`, `fix`, `verify`.
    pub kind: String,
    pub play: String,
    pub host: String,
    /// The host's full (masked) report.
    pub report: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: not a switchyard history (neither SQLite nor JSON lines)")]
    Foreign { path: PathBuf },
    #[error("{path}: written by a newer switchyard (schema {found}, this one knows {known})")]
    Newer {
        path: String,
        found: i64,
        known: i64,
    },
    /// A PostgreSQL history: where (never with a password) and what went wrong (with any
    /// password the message might echo blanked out).
    #[error("{target}: {message}")]
    Pg { target: String, message: String },
    /// A `postgres://` history that cannot be used as given (a password in it, a bad URL).
    #[error("history: {0}")]
    Url(String),
}

/// An open history.
pub enum History {
    Sqlite(sqlite::Sqlite),
    Postgres(Box<postgres::Pg>),
}

impl History {
    /// Open (or create) the history at `at`; see [`sqlite::Sqlite::open`] for the migration
    /// of JSON-lines files of earlier versions.
    pub fn open(at: &Location) -> Result<History, HistoryError> {
        Ok(match at {
            Location::File(p) => History::Sqlite(sqlite::Sqlite::open(p)?),
            Location::Postgres(t) => History::Postgres(Box::new(postgres::Pg::connect(t)?)),
        })
    }

    /// Append one record per host of every play, in one transaction.
    pub fn record(&mut self, kind: &str, plays: &[PlayReport]) -> Result<(), HistoryError> {
        let at = crate::clock::now();
        let who = crate::host::state::who();
        let reports: Vec<(&str, &str, serde_json::Value)> = plays
            .iter()
            .flat_map(|p| {
                p.hosts.iter().map(|h| {
                    (
                        p.play.as_str(),
                        h.host.as_str(),
                        serde_json::to_value(h).unwrap_or_default(),
                    )
                })
            })
            .collect();
        let rows = reports.iter().map(|(play, host, report)| Row {
            at,
            who: &who,
            kind,
            play,
            host,
            report,
        });
        self.insert_rows(rows)
    }

    /// Insert entries as they are (migration, benchmarks): one transaction.
    pub fn insert_entries<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<(), HistoryError> {
        self.insert_rows(entries.into_iter().map(Row::of))
    }

    fn insert_rows<'a>(&mut self, rows: impl Iterator<Item = Row<'a>>) -> Result<(), HistoryError> {
        match self {
            History::Sqlite(s) => s.insert_rows(rows),
            History::Postgres(p) => p.insert_rows(rows),
        }
    }

    /// Records at or after `since`, of one host or all, oldest first.
    pub fn query(&mut self, host: Option<&str>, since: u64) -> Result<Vec<Entry>, HistoryError> {
        match self {
            History::Sqlite(s) => s.query(host, since),
            History::Postgres(p) => p.query(host, since),
        }
    }

    /// Delete what is older than `before` (seconds since the epoch): records, runs, and the
    /// report bodies no remaining record uses. Returns the number of records deleted.
    pub fn prune(&mut self, before: u64) -> Result<u64, HistoryError> {
        match self {
            History::Sqlite(s) => s.prune(before),
            History::Postgres(p) => p.prune(before),
        }
    }
}

/// The fleet rollout lock of `plays` on the fleet of `hosts`, where the history is a
/// database; `None` for a file: SQLite is one machine's, so only the per-host locks apply.
pub fn rollout_lock(
    at: &Location,
    plays: &[&str],
    hosts: &[&str],
    command: &str,
    wait: lock::Wait,
) -> Result<Option<lock::RolloutLock>, lock::LockError> {
    match at {
        Location::File(_) => Ok(None),
        Location::Postgres(t) => Ok(Some(lock::RolloutLock::acquire(
            t, plays, hosts, command, wait,
        )?)),
    }
}

/// Record a run, then drop what is older than `keep` seconds, if given.
pub fn record(
    at: &Location,
    keep: Option<u64>,
    kind: &str,
    plays: &[PlayReport],
) -> Result<(), HistoryError> {
    let mut h = History::open(at)?;
    h.record(kind, plays)?;
    if let Some(keep) = keep {
        h.prune(crate::clock::now().saturating_sub(keep))?;
    }
    Ok(())
}

/// What one host's report adds: everything but its duration goes to a shared body.
#[derive(Clone, Copy)]
pub(crate) struct Row<'a> {
    at: u64,
    who: &'a str,
    kind: &'a str,
    play: &'a str,
    host: &'a str,
    report: &'a serde_json::Value,
}

impl<'a> Row<'a> {
    pub(crate) fn of(e: &'a Entry) -> Row<'a> {
        Row {
            at: e.at,
            who: &e.who,
            kind: &e.kind,
            play: &e.play,
            host: &e.host,
            report: &e.report,
        }
    }
}

/// A report as stored in `bodies`: without its `seconds`, which go to the record.
struct Body<'a>(&'a serde_json::Value);

impl Serialize for Body<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            serde_json::Value::Object(o) => {
                let mut m = s.serialize_map(None)?;
                for (k, v) in o.iter().filter(|(k, _)| *k != "seconds") {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            other => other.serialize(s),
        }
    }
}

/// The statements of one store that [`insert`] drives, inside one transaction.
pub(crate) trait Writer {
    type Error;
    /// The id of a host name, added if new.
    fn host(&mut self, name: &str) -> Result<i64, Self::Error>;
    /// A new run's id.
    fn run(&mut self, at: i64, who: &str, kind: &str, play: &str) -> Result<i64, Self::Error>;
    /// The id of a body by its digest, added if new (its `last_at` at least `at`).
    fn body(&mut self, digest: &[u8; 32], at: i64, text: &str) -> Result<i64, Self::Error>;
    /// One record, replacing one of the same host, time and run.
    fn record(&mut self, r: [i64; 4], seconds: f64, body: i64) -> Result<(), Self::Error>;
    /// Raise a body's `last_at` to at least `at`.
    fn touch(&mut self, body: i64, at: i64) -> Result<(), Self::Error>;
}

/// The one insert path of both stores: hosts and runs interned, bodies shared by digest.
pub(crate) fn insert<'a, W: Writer>(
    w: &mut W,
    rows: impl Iterator<Item = Row<'a>>,
) -> Result<(), W::Error> {
    let mut hosts: HashMap<&'a str, i64> = HashMap::new();
    // A run's id and how many of its records are in: `seq` keeps the report's host order.
    let mut runs: HashMap<(u64, &'a str, &'a str, &'a str), (i64, i64)> = HashMap::new();
    // Bodies met in this transaction: one upsert each, their `last_at` raised once at the end.
    let mut bodies: HashMap<[u8; 32], (i64, u64)> = HashMap::new();
    let mut text: Vec<u8> = Vec::new();
    for row in rows {
        let host = match hosts.get(row.host) {
            Some(id) => *id,
            None => {
                let id = w.host(row.host)?;
                hosts.insert(row.host, id);
                id
            }
        };
        let key = (row.at, row.who, row.kind, row.play);
        let (run, seq) = match runs.get_mut(&key) {
            Some((id, seq)) => {
                *seq += 1;
                (*id, *seq)
            }
            None => {
                let id = w.run(row.at as i64, row.who, row.kind, row.play)?;
                runs.insert(key, (id, 0));
                (id, 0)
            }
        };
        let seconds = row
            .report
            .get("seconds")
            .and_then(|s| s.as_f64())
            .unwrap_or(0.0);
        text.clear();
        // A `Value` always serializes.
        serde_json::to_writer(&mut text, &Body(row.report)).unwrap_or_default();
        let digest: [u8; 32] = Sha256::digest(&text).into();
        let body = match bodies.get_mut(&digest) {
            Some((id, last)) => {
                *last = (*last).max(row.at);
                *id
            }
            None => {
                // serde_json writes UTF-8.
                let id = w.body(&digest, row.at as i64, &String::from_utf8_lossy(&text))?;
                bodies.insert(digest, (id, row.at));
                id
            }
        };
        w.record([host, row.at as i64, run, seq], seconds, body)?;
    }
    for (id, at) in bodies.values() {
        w.touch(*id, *at as i64)?;
    }
    Ok(())
}

/// A stored body and its record's `seconds`, as `history --json` shows the report.
fn report_of(body: &str, seconds: f64) -> serde_json::Value {
    let mut report: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    if let Some(o) = report.as_object_mut() {
        o.insert("seconds".into(), seconds.into());
    }
    report
}

/// The parts of a recorded host report that the `history` listing shows, read with types
/// (records written by older versions may lack some; they read as empty).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub status: String,
    pub files: Vec<FileSummary>,
    pub steps: Vec<StepSummary>,
    pub error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileSummary {
    pub rel: String,
    pub status: String,
    pub difference: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StepSummary {
    pub command: String,
}

impl Entry {
    pub fn summary(&self) -> Summary {
        Summary::deserialize(&self.report).unwrap_or_default()
    }
}
