//! A throwaway PostgreSQL cluster per test (Debian's `postgresql`, installed by
//! `scripts/test`): initdb'ed in a temp folder as the `postgres` user (initdb refuses root),
//! listening on one 127.0.3.x address only, its Unix socket in the temp folder, password
//! (SCRAM) logins only, stopped by its pid when the test ends.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The login every test cluster has, and its password.
pub const PG_USER: &str = "switchyard";
pub const PG_PASSWORD: &str = "pg-Secret-7f3a9c";

pub struct PgServer {
    pub dir: PathBuf,
    pub addr: String,
    pub port: u16,
    child: Child,
}

/// A program of Debian's newest installed PostgreSQL (`/usr/lib/postgresql/VERSION/bin`).
pub fn bin(name: &str) -> PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .unwrap_or(15);
    let p = Path::new("/usr/lib/postgresql")
        .join(newest.to_string())
        .join("bin")
        .join(name);
    require(
        p.exists(),
        &format!("{} (Debian package postgresql)", p.display()),
    );
    p
}

fn postgres_ids() -> (u32, u32) {
    let line = run(Command::new("getent").args(["passwd", "postgres"]));
    let f: Vec<&str> = line.trim().split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

impl PgServer {
    pub fn start(tag: &str) -> PgServer {
        require(
            user_exists("postgres"),
            "user `postgres` (Debian package postgresql)",
        );
        let (uid, gid) = postgres_ids();
        let dir = tmp(&format!("pgsrv-{tag}"));
        let data = dir.join("data");
        let sock = dir.join("sock");
        for d in [&data, &sock] {
            std::fs::create_dir_all(d).unwrap();
            std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
        }
        let pw = dir.join("pw");
        std::fs::write(&pw, PG_PASSWORD).unwrap();
        std::os::unix::fs::chown(&pw, Some(uid), Some(gid)).unwrap();
        let out = Command::new(bin("initdb"))
            .uid(uid)
            .gid(gid)
            .args([
                "-U",
                PG_USER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pw.display()))
            .arg("-D")
            .arg(&data)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let k = NEXT.fetch_add(1, Ordering::SeqCst);
        let addr = format!("127.0.3.{}", 2 + ((std::process::id() * 5 + k) % 249));
        let port = TcpListener::bind(format!("{addr}:0"))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin("postgres"))
            .uid(uid)
            .gid(gid)
            .arg("-D")
            .arg(&data)
            .args(["-c", &format!("listen_addresses={addr}")])
            .args(["-p", &port.to_string()])
            .args(["-c", &format!("unix_socket_directories={}", sock.display())])
            .args([
                "-c",
                "fsync=off",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_connections=40",
            ])
            .args(["-c", "log_connections=on"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .unwrap();
        let s = PgServer {
            dir,
            addr,
            port,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while s.psql("postgres", "SELECT 1").is_err() {
            assert!(
                Instant::now() < deadline,
                "postgres did not start: {}",
                std::fs::read_to_string(s.dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// The URL of database `db` (no password: that comes from PGPASSWORD).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{PG_USER}@{}:{}/{db}", self.addr, self.port)
    }

    /// A new empty database.
    pub fn create_db(&self, db: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {db}"))
            .unwrap();
        self.url(db)
    }

    /// One statement through psql over TCP; its rows unaligned, `|`-separated.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        if TcpStream::connect((self.addr.as_str(), self.port)).is_err() {
            return Err("not listening".into());
        }
        let out = Command::new(bin("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .arg(self.url(db))
            .env("PGPASSWORD", PG_PASSWORD)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The server's log (connections are logged: `log_connections`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Environment of a switchyard run that logs in to this cluster.
    pub fn env(&self) -> [(&'static str, &'static str); 1] {
        [("PGPASSWORD", PG_PASSWORD)]
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Fast shutdown (SIGINT) of this cluster's postmaster only, then wait for it.
        // SAFETY: kill(2) on the pid of a child we started and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
