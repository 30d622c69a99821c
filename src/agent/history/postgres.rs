//! The shared store of the run history: a PostgreSQL database (`--history
//! postgres://user@host:port/db`), for histories that must outlive the machine that ran
//! switchyard (CI runners, CronJobs), be the same for every operator, and carry the fleet
//! rollout lock ([`RolloutLock`]).
//!
//! The tables are those of the SQLite store (see [`super::sqlite`]), in a schema
//! `switchyard` of their own, so a database shared with other programs keeps its names.
//!
//! *The password* never comes from the command line or the URL (both are in the process
//! list, shell histories and CI logs): a URL with one is refused. It comes from
//! `PGPASSWORD`, else a password file in libpq's `.pgpass` format (`?passfile=PATH`, else
//! `PGPASSFILE`, else `~/.pgpass`), which must be its owner's alone, as libpq requires.
//! Any error text that would echo the password has it blanked out.
//!
//! *No TLS*: the client speaks plain TCP (or a Unix socket: `?host=/run/postgresql`). For a
//! database on another machine, reach it through an SSH tunnel, a WireGuard link or a local
//! TLS proxy (stunnel, pgbouncer with `server_tls_sslmode`); `sslmode=require` is refused
//! by the client rather than silently sent in clear.
//!
//! *Time bounds*: connecting gives up after 10 s (`?connect_timeout=` to change), every
//! statement after 5 minutes (`statement_timeout`), and a peer that stops answering is
//! noticed by TCP keepalives and `tcp_user_timeout` (30 s), on both sides: the session
//! sets the server's own, so a lock held by a vanished machine is freed within a minute.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls};

use super::{Entry, HistoryError, Row};

/// Is `s` a PostgreSQL URL (rather than a file name)?
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// A database to connect to: its URL without a password and without `passfile`, and the
/// password file named in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    url: String,
    passfile: Option<PathBuf>,
}

/// Why a URL's password is refused (the URL itself is never repeated: it holds it).
const PASSWORD_IN_URL: &str = "a postgres:// URL must not hold a password (it would be seen in the process list, shell histories and CI logs): give it in PGPASSWORD or a password file (`?passfile=PATH`, PGPASSFILE or ~/.pgpass)";

impl Target {
    pub fn parse(s: &str) -> Result<Target, HistoryError> {
        let refused = |m: &str| HistoryError::Url(m.to_string());
        let rest = s.split_once("://").map(|x| x.1).unwrap_or_default();
        let (head, query) = rest.split_once('?').unwrap_or((rest, ""));
        // The userinfo as the client reads it (tokio-postgres's `UrlParser::parse_credentials`:
        // everything up to the first `@` anywhere, `/` and `?` included), so that
        // `ops:pa/ss@host` is seen to hold a password as the client would see it.
        if let Some((userinfo, _)) = rest.split_once('@') {
            if userinfo.contains(':') {
                return Err(refused(PASSWORD_IN_URL));
            }
        }
        let mut passfile = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "password" => return Err(refused(PASSWORD_IN_URL)),
                "passfile" => passfile = Some(PathBuf::from(percent_decode(v))),
                "sslmode" if v != "disable" && v != "prefer" => {
                    return Err(refused(
                        "sslmode: this client speaks no TLS; reach a remote database through an SSH tunnel or a local TLS proxy (see README, \"History\")",
                    ))
                }
                _ => kept.push(pair),
            }
        }
        let url = if kept.is_empty() {
            head.to_string()
        } else {
            format!("{head}?{}", kept.join("&"))
        };
        let scheme = if s.starts_with("postgresql://") {
            "postgresql://"
        } else {
            "postgres://"
        };
        let url = format!("{scheme}{url}");
        let config: postgres::Config = url
            .parse()
            .map_err(|e| HistoryError::Url(format!("{}: {e}", without_userinfo(&url))))?;
        if config.get_password().is_some() {
            return Err(refused(PASSWORD_IN_URL));
        }
        Ok(Target { url, passfile })
    }

    fn config(&self) -> Result<(postgres::Config, Option<String>), HistoryError> {
        let mut c: postgres::Config = self
            .url
            .parse()
            .map_err(|e| HistoryError::Url(format!("{}: {e}", without_userinfo(&self.url))))?;
        if c.get_connect_timeout().is_none() {
            c.connect_timeout(Duration::from_secs(10));
        }
        c.keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .tcp_user_timeout(Duration::from_secs(30))
            .application_name("switchyard");
        let password = self.password(&c)?;
        if let Some(p) = &password {
            c.password(p.as_bytes());
        }
        Ok((c, password))
    }

    /// `PGPASSWORD`, else the first matching line of the password file, else none.
    fn password(&self, c: &postgres::Config) -> Result<Option<String>, HistoryError> {
        if let Some(p) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
            return Ok(Some(p));
        }
        let (file, named) = match (&self.passfile, std::env::var_os("PGPASSFILE")) {
            (Some(f), _) => (f.clone(), true),
            (None, Some(f)) if !f.is_empty() => (PathBuf::from(f), true),
            _ => match std::env::var_os("HOME") {
                Some(h) => (PathBuf::from(h).join(".pgpass"), false),
                None => return Ok(None),
            },
        };
        let err = |m: String| HistoryError::Pg {
            target: self.to_string(),
            message: format!("password file {}: {m}", file.display()),
        };
        let text = match read_passfile(&file) {
            Ok(t) => t,
            Err(e) if !named && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let host = match c.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432).to_string();
        let user = c.get_user().map(str::to_string).unwrap_or_else(login_name);
        let db = c.get_dbname().unwrap_or(&user).to_string();
        Ok(passfile_lookup(&text, [&host, &port, &db, &user]))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// `url` with its userinfo (as the client finds it: up to the first `@`) cut out, for error
/// messages: whatever the checks before missed, a parse error never quotes a password.
fn without_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let rest = rest.split_once('@').map_or(rest, |x| x.1);
    format!("{scheme}://{rest}")
}

/// The user libpq would log in as when the URL names none.
fn login_name() -> String {
    std::env::var("PGUSER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default()
}

/// A password file, at most 64 KiB, refused if group or others may read it (libpq ignores
/// such a file; switchyard says so instead of failing to log in for no visible reason).
fn read_passfile(path: &std::path::Path) -> std::io::Result<String> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "group or others may read it (mode {:04o}); `chmod 600` it",
            meta.mode() & 0o777
        )));
    }
    let mut text = String::new();
    f.take(64 * 1024).read_to_string(&mut text)?;
    Ok(text)
}

/// libpq's `.pgpass`: `host:port:db:user:password` lines, `*` matching anything, `\` escaping
/// `:` and `\`; the first matching line wins.
fn passfile_lookup(text: &str, want: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = vec![String::new()];
        let mut chars = line.chars();
        while let Some(ch) = chars.next() {
            match ch {
                '\\' => fields.last_mut()?.extend(chars.next()),
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => fields.last_mut()?.push(c),
            }
        }
        if fields.len() == 5
            && fields[..4]
                .iter()
                .zip(want)
                .all(|(f, w)| f == "*" || f == w)
        {
            return fields.pop();
        }
    }
    None
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |x: u8| (x as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Run blocking client work from anywhere: the `postgres` client drives its connection on a
/// runtime of its own, which tokio forbids inside a runtime's thread.
pub(crate) fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| {
            s.spawn(f)
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        }),
        Err(_) => f(),
    }
}

/// A session with the database, closed (off any runtime thread) when dropped.
pub(crate) struct Session {
    client: Option<Client>,
    target: Target,
    password: Option<String>,
}

impl Session {
    pub(crate) fn open(t: &Target) -> Result<Session, HistoryError> {
        let (config, password) = t.config()?;
        let mut s = Session {
            client: None,
            target: t.clone(),
            password,
        };
        let client = blocking(|| config.connect(NoTls)).map_err(|e| s.err(e))?;
        s.client = Some(client);
        // The keepalives above guard this side only. The server's backend holding an
        // advisory lock for a machine that vanished would otherwise notice only after the
        // OS keepalive (about 2 h): its own keepalives (30 s idle, 3 probes 10 s apart) and
        // `tcp_user_timeout` end that session, and free its locks, within about a minute.
        // All four are user-settable; over a Unix socket the server ignores them.
        s.run(|c| {
            c.batch_execute(
                "SET statement_timeout = '5min'; SET search_path = pg_catalog, switchyard; \
                 SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; \
                 SET tcp_keepalives_count = 3; SET tcp_user_timeout = 30000",
            )
        })?;
        Ok(s)
    }

    /// Run `work` on the client; its error told with the target, never the password.
    pub(crate) fn run<T: Send>(
        &mut self,
        work: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, HistoryError> {
        let client = self.client.as_mut().expect("an open session");
        let out = blocking(|| work(client));
        out.map_err(|e| self.err(e))
    }

    pub(crate) fn err(&self, e: postgres::Error) -> HistoryError {
        // The client's own text is its kind ("db error"); the cause says what happened.
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text = format!("{text}: {c}");
            cause = c.source();
        }
        self.message(text)
    }

    pub(crate) fn message(&self, mut message: String) -> HistoryError {
        if let Some(p) = self.password.as_deref().filter(|p| !p.is_empty()) {
            message = message.replace(p, "********");
        }
        HistoryError::Pg {
            target: self.target.to_string(),
            message,
        }
    }
}

impl Session {
    /// Refuse a schema `switchyard` that another role owns (checked before it is used, and
    /// again once created): its owner could put in it tables, functions or operators that
    /// stand in for ours or for built-ins (the CVE-2018-1058 pattern). `pg_catalog` comes
    /// first in the search path as well, so no built-in is shadowed by a schema we own.
    fn schema_owned(&mut self) -> Result<(), HistoryError> {
        let owner: Option<(String, String)> = self.run(|c| {
            Ok(c.query_opt(
                "SELECT pg_catalog.pg_get_userbyid(nspowner)::text, current_user::text
                 FROM pg_catalog.pg_namespace WHERE nspname = 'switchyard'",
                &[],
            )?
            .map(|r| (r.get(0), r.get(1))))
        })?;
        match owner {
            Some((owner, me)) if owner != me => Err(self.message(format!(
                "schema `switchyard` is owned by role {owner:?}, not by {me:?} who logs in: refused (its owner could shadow the history's tables and functions); have it owned by the login (ALTER SCHEMA switchyard OWNER TO {me:?}) or use another database"
            ))),
            _ => Ok(()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            blocking(move || drop(c));
        }
    }
}

const SCHEMA_VERSION: i64 = 1;
/// The advisory lock key that serialises schema creation by first-time runs (an arbitrary
/// constant: "switchyd" in ASCII).
const SCHEMA_LOCK: i64 = 0x7377_6974_6368_7964;
const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS switchyard;
CREATE TABLE IF NOT EXISTS switchyard.hosts(id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS switchyard.runs(
    id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL,
    who TEXT NOT NULL, kind TEXT NOT NULL, play TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_at ON switchyard.runs(at);
CREATE TABLE IF NOT EXISTS switchyard.bodies(
    id BIGSERIAL PRIMARY KEY, digest BYTEA NOT NULL UNIQUE,
    last_at BIGINT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS bodies_last_at ON switchyard.bodies(last_at);
CREATE TABLE IF NOT EXISTS switchyard.records(
    host BIGINT NOT NULL, at BIGINT NOT NULL, run BIGINT NOT NULL,
    seq BIGINT NOT NULL, seconds DOUBLE PRECISION NOT NULL, body BIGINT NOT NULL,
    PRIMARY KEY(host, at, run));
CREATE TABLE IF NOT EXISTS switchyard.meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS switchyard.locks(
    key BIGINT PRIMARY KEY, what TEXT NOT NULL, who TEXT NOT NULL, since BIGINT NOT NULL,
    command TEXT NOT NULL, pid INTEGER NOT NULL);
";

/// An open PostgreSQL history.
pub struct Pg {
    s: Session,
}

impl Pg {
    pub fn connect(t: &Target) -> Result<Pg, HistoryError> {
        let mut s = Session::open(t)?;
        s.schema_owned()?;
        // Made before (the usual case): one read, no DDL round trips on every command.
        let known: Option<i64> = s.run(|c| {
            Ok(
                c.query_opt("SELECT value FROM meta WHERE key = 'schema'", &[])
                    .ok()
                    .flatten()
                    .and_then(|r| r.get::<_, String>(0).parse().ok()),
            )
        })?;
        if known == Some(SCHEMA_VERSION) {
            return Ok(Pg { s });
        }
        let found: Option<i64> = s.run(|c| {
            let mut tx = c.transaction()?;
            // Two first runs at once would both create the tables: one waits for the other.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            tx.batch_execute(SCHEMA)?;
            let found = tx
                .query_opt("SELECT value FROM meta WHERE key = 'schema'", &[])?
                .and_then(|r| r.get::<_, String>(0).parse().ok());
            if found.is_none() {
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema', $1)",
                    &[&SCHEMA_VERSION.to_string()],
                )?;
            }
            tx.commit()?;
            Ok(found)
        })?;
        s.schema_owned()?;
        if let Some(found) = found.filter(|v| *v > SCHEMA_VERSION) {
            return Err(HistoryError::Newer {
                path: t.to_string(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        Ok(Pg { s })
    }

    /// The session, for the rollout lock (the schema is there once connected).
    pub(crate) fn into_session(self) -> Session {
        self.s
    }

    /// Insert rows in one transaction, tried again (up to three times) if the database
    /// aborted it for a deadlock with another run's insert.
    pub(crate) fn insert_rows<'a>(
        &mut self,
        rows: impl Iterator<Item = Row<'a>>,
    ) -> Result<(), HistoryError> {
        let rows: Vec<Row> = rows.collect();
        let client = self.s.client.as_mut().expect("an open session");
        let mut tries = 0;
        loop {
            tries += 1;
            let out = blocking(|| {
                let mut tx = client.transaction()?;
                super::insert(&mut Writer::new(&mut tx)?, rows.iter().copied())?;
                tx.commit()
            });
            match out {
                Err(e) if tries < 3 && is_deadlock(&e) => {}
                other => return other.map_err(|e| self.s.err(e)),
            }
        }
    }

    pub fn query(&mut self, host: Option<&str>, since: u64) -> Result<Vec<Entry>, HistoryError> {
        query(&mut self.s, host, since)
    }

    pub fn prune(&mut self, before: u64) -> Result<u64, HistoryError> {
        let before = before as i64;
        self.s.run(|c| {
            let mut tx = c.transaction()?;
            // `host = ANY(...)`: one range delete per host on the primary key, not a scan.
            let deleted = tx.execute(
                "DELETE FROM records WHERE host = ANY(ARRAY(SELECT id FROM hosts)) AND at < $1",
                &[&before],
            )?;
            tx.execute("DELETE FROM runs WHERE at < $1", &[&before])?;
            // A body last used before the cut-off is used by no remaining record.
            tx.execute("DELETE FROM bodies WHERE last_at < $1", &[&before])?;
            tx.commit()?;
            Ok(deleted)
        })
    }

    /// Copy every record of an SQLite history in, in one transaction (nothing half-copied
    /// if it fails), a day at a time so memory stays bounded; a history copied once is not
    /// copied again. Returns how many records were copied (`None`: done before).
    pub fn migrate_from(
        &mut self,
        from: &mut super::sqlite::Sqlite,
        key: &str,
    ) -> Result<Option<u64>, HistoryError> {
        let key = format!("migrated:{key}");
        let span = from.span()?;
        let s = &mut self.s;
        let client = s.client.as_mut().expect("an open session");
        let out = blocking(move || -> Result<Option<u64>, MigrateError> {
            let mut tx = client.transaction()?;
            tx.execute("LOCK TABLE meta IN EXCLUSIVE MODE", &[])?;
            if tx
                .query_opt("SELECT 1 FROM meta WHERE key = $1", &[&key])?
                .is_some()
            {
                return Ok(None);
            }
            let mut n = 0u64;
            if let Some((first, last)) = span {
                // Day windows: a run (one `at`) is never split, so its records keep their
                // order within it.
                let mut at = first;
                while at <= last {
                    let entries = from.query_between(at, at.saturating_add(86_400))?;
                    n += entries.len() as u64;
                    super::insert(&mut Writer::new(&mut tx)?, entries.iter().map(Row::of))?;
                    at = at.saturating_add(86_400);
                }
            }
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ($1, $2)",
                &[&key, &n.to_string()],
            )?;
            tx.commit()?;
            Ok(Some(n))
        });
        out.map_err(|e| match e {
            MigrateError::Pg(e) => s.err(e),
            MigrateError::From(e) => e,
        })
    }
}

enum MigrateError {
    Pg(postgres::Error),
    From(HistoryError),
}

impl From<postgres::Error> for MigrateError {
    fn from(e: postgres::Error) -> Self {
        MigrateError::Pg(e)
    }
}

impl From<HistoryError> for MigrateError {
    fn from(e: HistoryError) -> Self {
        MigrateError::From(e)
    }
}

fn query(s: &mut Session, host: Option<&str>, since: u64) -> Result<Vec<Entry>, HistoryError> {
    // As in SQLite, the hosts drive the loop: one range of the (host, at, run) key per host
    // (LATERAL), never a scan of the whole table for a recent hour of the fleet.
    const SQL: &str = "SELECT r.at, runs.who, runs.kind, runs.play, h.name, r.seconds, b.body
         FROM hosts h CROSS JOIN LATERAL
           (SELECT * FROM records WHERE records.host = h.id AND records.at >= $2) r
         JOIN runs ON runs.id = r.run JOIN bodies b ON b.id = r.body
         WHERE $1::text IS NULL OR h.name = $1
         ORDER BY r.at, r.run, r.seq";
    let since = since as i64;
    let rows = s.run(|c| c.query(SQL, &[&host, &since]))?;
    Ok(rows
        .iter()
        .map(|r| Entry {
            at: r.get::<_, i64>(0) as u64,
            who: r.get(1),
            kind: r.get(2),
            play: r.get(3),
            host: r.get(4),
            report: super::report_of(r.get(6), r.get(5)),
        })
        .collect())
}

/// [`super::insert`]'s statements, prepared once per transaction.
struct Writer<'t, 'c> {
    tx: &'t mut postgres::Transaction<'c>,
    st: [postgres::Statement; 5],
}

impl<'t, 'c> Writer<'t, 'c> {
    fn new(tx: &'t mut postgres::Transaction<'c>) -> Result<Self, postgres::Error> {
        let st = [
            tx.prepare(
                "INSERT INTO hosts(name) VALUES ($1)
                 ON CONFLICT(name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            )?,
            tx.prepare(
                "INSERT INTO runs(at, who, kind, play) VALUES ($1, $2, $3, $4) RETURNING id",
            )?,
            tx.prepare(
                "INSERT INTO bodies(digest, last_at, body) VALUES ($1, $2, $3)
                 ON CONFLICT(digest) DO UPDATE
                 SET last_at = GREATEST(bodies.last_at, EXCLUDED.last_at) RETURNING id",
            )?,
            tx.prepare(
                "INSERT INTO records(host, at, run, seq, seconds, body)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT(host, at, run) DO UPDATE
                 SET seq = EXCLUDED.seq, seconds = EXCLUDED.seconds, body = EXCLUDED.body",
            )?,
            tx.prepare("UPDATE bodies SET last_at = GREATEST(last_at, $1) WHERE id = $2")?,
        ];
        Ok(Writer { tx, st })
    }
}

impl super::Writer for Writer<'_, '_> {
    type Error = postgres::Error;
    fn host(&mut self, name: &str) -> Result<i64, postgres::Error> {
        Ok(self.tx.query_one(&self.st[0], &[&name])?.get(0))
    }
    fn run(&mut self, at: i64, who: &str, kind: &str, play: &str) -> Result<i64, postgres::Error> {
        Ok(self
            .tx
            .query_one(&self.st[1], &[&at, &who, &kind, &play])?
            .get(0))
    }
    fn body(&mut self, digest: &[u8; 32], at: i64, text: &str) -> Result<i64, postgres::Error> {
        Ok(self
            .tx
            .query_one(&self.st[2], &[&digest.as_slice(), &at, &text])?
            .get(0))
    }
    fn record(&mut self, r: [i64; 4], seconds: f64, body: i64) -> Result<(), postgres::Error> {
        self.tx
            .execute(&self.st[3], &[&r[0], &r[1], &r[2], &r[3], &seconds, &body])?;
        Ok(())
    }
    fn touch(&mut self, body: i64, at: i64) -> Result<(), postgres::Error> {
        self.tx.execute(&self.st[4], &[&at, &body])?;
        Ok(())
    }
}

/// Is this the database telling that it aborted a transaction for a deadlock?
fn is_deadlock(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_a_password_is_refused_without_repeating_it() {
        for url in [
            "postgres://ops:hunter2@127.0.0.1/db",
            "postgresql://ops:hunter2@[::1]:5433/db",
            "postgres://ops@127.0.0.1/db?password=hunter2",
            "postgres://127.0.0.1/db?user=ops&password=hunter2",
            // The client takes the userinfo up to the first `@`, past a `/`; the bad port
            // would make its parser fail with a message quoting the URL.
            "postgres://ops:hun/ter2@127.0.0.1:99999/db",
            "postgres://ops:hunter2/x@127.0.0.1/db",
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(e.contains("must not hold a password"), "{url}: {e}");
            assert!(!e.contains("hunter2") && !e.contains("hun/ter2"), "{e}");
        }
        assert_eq!(
            without_userinfo("postgres://ops:x@y@127.0.0.1/db"),
            "postgres://y@127.0.0.1/db"
        );
        let t = Target::parse(
            "postgres://ops@127.0.0.1:5433/db?passfile=%2Ftmp%2Fpw&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(t.passfile.as_deref(), Some(std::path::Path::new("/tmp/pw")));
        assert_eq!(
            t.to_string(),
            "postgres://ops@127.0.0.1:5433/db?connect_timeout=3"
        );
    }

    #[test]
    fn password_files_read_as_libpq_reads_them() {
        let text = "# comment\nother:5432:*:ops:no\n127.0.0.1:*:hist:ops:a\\:b\\\\c\n*:*:*:*:any\n";
        assert_eq!(
            passfile_lookup(text, ["127.0.0.1", "5433", "hist", "ops"]).as_deref(),
            Some("a:b\\c")
        );
        assert_eq!(
            passfile_lookup(text, ["db", "5432", "x", "y"]).as_deref(),
            Some("any")
        );
        assert_eq!(passfile_lookup("h:1:d:u\n", ["h", "1", "d", "u"]), None);
    }
}
