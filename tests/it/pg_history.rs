//! Issue 29, item 1: the PostgreSQL history's own faults: migration from SQLite once and
//! whole, the password kept out of URLs, process arguments and error messages, password
//! files as libpq reads them, and `history = "postgres://…"` in switchyard.toml.

use crate::harness::*;
use crate::pgserver::{PgServer, PG_PASSWORD, PG_USER};

fn records(pg: &PgServer, db: &str) -> i64 {
    pg.psql(db, "SELECT count(*) FROM switchyard.records")
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn an_sqlite_history_is_migrated_once_and_whole() {
    let pg = PgServer::start("migrate");
    let url = pg.create_db("history");
    let dir = tmp("pg-migrate");
    let db = dir.join("history.db");
    // A real SQLite history: two check runs of a fleet's hosts written by switchyard itself
    // (records are made here through `history migrate`'s own reader of an SQLite file).
    let lines: Vec<serde_json::Value> = (0..3u64)
        .flat_map(|i| {
            ["pbx-a", "pbx-b"].map(|h| {
                serde_json::json!({"at": 1_700_000_000 + i * 86_400 * 2, "who": "ops@ctl",
                    "kind": "drift", "play": "trunks", "host": h,
                    "report": {"host": h, "status": "ok", "files": [], "seconds": 0.5 + i as f64}})
            })
        })
        .collect();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&db, text).unwrap();
    let before = switchyard(&["history", "--json", "--history", db.to_str().unwrap()]);
    assert_eq!(before.code, 0, "{}", before.all());

    let migrate = |to: &str| {
        switchyard_env(
            &[
                "history",
                "migrate",
                "--from",
                db.to_str().unwrap(),
                "--to",
                to,
            ],
            &pg.env(),
        )
    };
    let out = migrate(&url);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("copied 6 records"), "{}", out.stderr);
    let after = switchyard_env(&["history", "--json", "--history", &url], &pg.env());
    assert_eq!(after.stdout, before.stdout, "the same `history --json`");

    // Again: nothing copied twice.
    let again = migrate(&url);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(again.stderr.contains("nothing done"), "{}", again.stderr);
    assert_eq!(records(&pg, "history"), 6);

    // Into a database that refuses the schema (a read-only login): nothing half-written.
    pg.psql("postgres", "CREATE DATABASE ro").unwrap();
    pg.psql(
        "ro",
        &format!("CREATE ROLE reader LOGIN PASSWORD '{PG_PASSWORD}'; REVOKE CREATE ON SCHEMA public FROM PUBLIC; REVOKE CREATE ON DATABASE ro FROM PUBLIC"),
    )
    .unwrap();
    let ro = url
        .replace(&format!("{PG_USER}@"), "reader@")
        .replace("/history", "/ro");
    let refused = migrate(&ro);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.stderr.contains("permission denied"),
        "{}",
        refused.stderr
    );
    let schemas = pg
        .psql(
            "ro",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'switchyard'",
        )
        .unwrap();
    assert_eq!(schemas, "0");
}

#[test]
fn a_password_never_goes_in_the_url_and_never_comes_out_of_an_error() {
    let pg = PgServer::start("secret");
    let url = pg.create_db("history");
    // In the URL: refused before anything is sent, without repeating it.
    let connections = || pg.log().matches("connection received").count();
    let before = connections();
    let with_pw = url.replace(&format!("{PG_USER}@"), &format!("{PG_USER}:{PG_PASSWORD}@"));
    for arg in [with_pw.clone(), format!("{url}?password={PG_PASSWORD}")] {
        let out = switchyard(&["history", "--history", &arg]);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(
            out.stderr.contains("must not hold a password"),
            "{}",
            out.stderr
        );
        assert!(!out.all().contains(PG_PASSWORD), "{}", out.all());
    }
    assert_eq!(connections(), before, "nothing reached the server");

    // A right password with a wrong database, and a wrong password: errors that name the
    // server and the cause, never the password given.
    let no_db = url.replace("/history", "/nosuchdb");
    let out = switchyard_env(&["history", "--history", &no_db], &pg.env());
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("nosuchdb") && out.stderr.contains("does not exist"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains(PG_PASSWORD), "{}", out.all());
    let wrong = "wrong-Pw-93c1";
    let out = switchyard_env(&["history", "--history", &url], &[("PGPASSWORD", wrong)]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("password authentication failed"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains(wrong), "{}", out.all());
}

#[test]
fn a_password_file_is_read_as_libpq_reads_it_and_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let pg = PgServer::start("passfile");
    let url = pg.create_db("history");
    let dir = tmp("pg-passfile");
    let file = dir.join("pgpass");
    std::fs::write(
        &file,
        format!(
            "# ops\n{}:{}:history:{PG_USER}:{PG_PASSWORD}\n",
            pg.addr, pg.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let with_file = format!("{url}?passfile={}", file.display());
    let open = switchyard(&["history", "--history", &with_file]);
    assert_eq!(open.code, 1, "{}", open.all());
    assert!(open.stderr.contains("chmod 600"), "{}", open.stderr);

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ok = switchyard(&["history", "--json", "--history", &with_file]);
    assert_eq!(ok.code, 0, "{}", ok.all());
    assert_eq!(ok.stdout.trim(), "[]");
    // PGPASSFILE names it as well.
    let ok = switchyard_env(
        &["history", "--json", "--history", &url],
        &[("PGPASSFILE", file.to_str().unwrap())],
    );
    assert_eq!(ok.code, 0, "{}", ok.all());
}

#[test]
fn switchyard_toml_can_name_a_postgres_history() {
    let pg = PgServer::start("toml");
    let url = pg.create_db("history");
    let dir = tmp("pg-toml");
    std::fs::write(
        dir.join("switchyard.toml"),
        format!("history = \"{url}\"\n"),
    )
    .unwrap();
    let mut env = pg.env().to_vec();
    // The harness's own SWITCHYARD_HISTORY would win over the file: set it empty.
    env.push(("SWITCHYARD_HISTORY", ""));
    let out = switchyard_in(&dir, &["history", "--json"], &env);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        pg.psql(
            "history",
            "SELECT value FROM switchyard.meta WHERE key = 'schema'"
        )
        .unwrap(),
        "1",
        "the database was opened"
    );
}

#[test]
fn a_password_past_a_slash_in_the_userinfo_is_refused_and_never_echoed() {
    // The client reads the userinfo up to the first `@`, so `ops:pa/ss@` holds the password
    // `pa/ss`; the bad port would make its parser fail with a message quoting the URL.
    for arg in [
        "postgres://ops:pa/ss-7f3e@127.0.0.1:99999/db",
        "postgresql://ops:pa/ss-7f3e@127.0.0.1:5432/db?connect_timeout=1",
    ] {
        let out = switchyard(&["history", "--history", arg]);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(
            out.stderr.contains("must not hold a password"),
            "{}",
            out.stderr
        );
        assert!(!out.all().contains("pa/ss-7f3e"), "{}", out.all());
    }
}

/// Another role's objects never stand in for the history's: a `switchyard` schema owned by
/// someone else is refused, and a function another role may plant in our own schema
/// (here one shadowing `pg_backend_pid()`, which a `watch` leader writes in its holder row)
/// is not taken for the built-in.
#[test]
fn another_roles_schema_or_functions_never_stand_in_for_the_historys() {
    let pg = PgServer::start("schema");
    let theirs = pg.create_db("theirs");
    pg.psql(
        "theirs",
        &format!("CREATE ROLE other LOGIN PASSWORD '{PG_PASSWORD}'; CREATE SCHEMA switchyard AUTHORIZATION other"),
    )
    .unwrap();
    let out = switchyard_env(&["history", "--history", &theirs], &pg.env());
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("schema `switchyard` is owned by role \"other\""),
        "{}",
        out.stderr
    );
    assert_eq!(
        pg.psql(
            "theirs",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'switchyard'"
        )
        .unwrap(),
        "0",
        "nothing created in it"
    );

    let fleet = Fleet::new("pg-schema", 1);
    let url = pg.create_db("history");
    let s = fleet.session().env("PGPASSWORD", PG_PASSWORD);
    let first = s
        .run(["apply", "--no-verify", "--history", url.as_str()])
        .out;
    assert_eq!(first.code, 0, "{}", first.all());
    pg.psql(
        "history",
        "GRANT USAGE, CREATE ON SCHEMA switchyard TO other; SET ROLE other; \
         CREATE FUNCTION switchyard.pg_backend_pid() RETURNS integer LANGUAGE sql AS 'SELECT 4242'",
    )
    .unwrap();
    let watch = s
        .run(["watch", "--rounds", "1", "--history", url.as_str()])
        .out;
    assert_eq!(watch.code, 0, "{}", watch.all());
    assert!(watch.stderr.contains("leading"), "{}", watch.stderr);
    let pid = pg
        .psql(
            "history",
            "SELECT pid FROM switchyard.locks WHERE command LIKE 'watch%'",
        )
        .unwrap();
    assert!(
        !pid.is_empty() && pid != "4242",
        "the leader's row holds its real backend pid, not the planted function's: {pid:?}"
    );
}
