//! The fleet rollout lock (PostgreSQL histories only): a rollout of a play to a fleet holds
//! it from before its first host to its end, so a second rollout of the same play to the
//! same fleet waits (or fails, `--lock-timeout`) instead of interleaving with the first host
//! by host (the per-host lock only serialises them one host at a time).
//!
//! *How*: a session-level advisory lock (`pg_try_advisory_lock`), as Terraform's `pg`
//! backend does. The database releases it when the session ends, however it ends: a holder
//! killed with SIGKILL, or whose machine vanished, frees it as soon as its connection is
//! gone (TCP keepalives and `tcp_user_timeout` bound that to about a minute for a machine
//! that vanished), never by a timeout guess. Who holds it is written by the holder into
//! `switchyard.locks` (user@machine, since when, which command), read by the one that waits.
//!
//! *The key*: a stable 64-bit hash of the play's name and the inventory's host names
//! (sorted), not of file paths: two CI runners check the same repository out in different
//! folders and must still meet on one lock. A `--limit` does not change it (a rollout to
//! part of the fleet still excludes another of the same play).

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::postgres::{Session, Target};
use super::HistoryError;

/// How long to wait for a held lock.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    Forever,
    /// Give up after this long (zero: at once).
    For(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Db(#[from] HistoryError),
    #[error("rollout lock of play `{play}` on this fleet is held by {holder}{waited}")]
    Held {
        play: String,
        holder: String,
        waited: String,
    },
    #[error("interrupted while waiting for the rollout lock of play `{0}`")]
    Interrupted(String),
}

/// Held rollout locks: released (and their holder rows deleted) when dropped, or by the
/// database when the process dies.
pub struct RolloutLock {
    session: Session,
    keys: Vec<i64>,
}

/// The lock key of `play` on a fleet of `hosts`.
pub fn key(play: &str, hosts: &[&str]) -> i64 {
    let mut names: Vec<&str> = hosts.to_vec();
    names.sort_unstable();
    names.dedup();
    let mut h = Sha256::new();
    h.update(b"switchyard rollout lock v1\0");
    h.update(play.as_bytes());
    for n in names {
        h.update(b"\0");
        h.update(n.as_bytes());
    }
    let d = h.finalize();
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

impl RolloutLock {
    /// Take the locks of `plays` (each a play's name) on the fleet of `hosts`, in key order
    /// (two runs of the same plays cannot each hold one the other waits for), writing
    /// `command` and this user@machine as their holder.
    pub fn acquire(
        t: &Target,
        plays: &[&str],
        hosts: &[&str],
        command: &str,
        wait: Wait,
    ) -> Result<RolloutLock, LockError> {
        let mut wanted: Vec<(i64, &str)> = plays.iter().map(|p| (key(p, hosts), *p)).collect();
        wanted.sort_unstable();
        wanted.dedup_by_key(|w| w.0);
        let session = super::postgres::Pg::connect(t)?.into_session();
        let mut lock = RolloutLock {
            session,
            keys: Vec::new(),
        };
        let who = crate::host::state::who();
        let command = format!("{command}, pid {}", std::process::id());
        let started = Instant::now();
        for (key, play) in wanted {
            let mut told = false;
            loop {
                if lock.try_take(key, play, &who, &command)? {
                    lock.keys.push(key);
                    break;
                }
                let holder = lock.holder(key)?;
                let out_of_time = match wait {
                    Wait::Forever => false,
                    Wait::For(d) => started.elapsed() >= d,
                };
                if out_of_time {
                    return Err(LockError::Held {
                        play: play.to_string(),
                        holder,
                        waited: match wait {
                            Wait::For(d) if !d.is_zero() => {
                                format!(" (waited {} s, --lock-timeout)", d.as_secs())
                            }
                            _ => String::new(),
                        },
                    });
                }
                if !told {
                    eprintln!(
                        "waiting for the rollout lock of play `{play}` on this fleet, held by {holder}"
                    );
                    told = true;
                }
                if crate::interrupt::requested() {
                    return Err(LockError::Interrupted(play.to_string()));
                }
                super::postgres::blocking(|| std::thread::sleep(Duration::from_millis(250)));
            }
        }
        Ok(lock)
    }

    fn try_take(
        &mut self,
        key: i64,
        play: &str,
        who: &str,
        command: &str,
    ) -> Result<bool, HistoryError> {
        let since = crate::clock::now() as i64;
        self.session.run(|c| {
            let got: bool = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])?
                .get(0);
            if got {
                c.execute(
                    "INSERT INTO locks(key, what, who, since, command, pid)
                     VALUES ($1, $2, $3, $4, $5, pg_backend_pid())
                     ON CONFLICT(key) DO UPDATE SET what = EXCLUDED.what, who = EXCLUDED.who,
                     since = EXCLUDED.since, command = EXCLUDED.command, pid = EXCLUDED.pid",
                    &[&key, &play, &who, &since, &command],
                )?;
            }
            Ok(got)
        })
    }

    /// Who holds `key`, as its holder wrote it (a row left by a holder that died is never
    /// read: only the row of the session holding the lock now).
    fn holder(&mut self, key: i64) -> Result<String, HistoryError> {
        let row = self.session.run(|c| {
            c.query_opt(
                "SELECT l.who, l.since, l.command FROM locks l
                 JOIN pg_locks p ON p.pid = l.pid AND p.locktype = 'advisory' AND p.granted
                 WHERE l.key = $1",
                &[&key],
            )
        })?;
        Ok(match row {
            Some(r) => format!(
                "{} since {} ({})",
                crate::printable::printable(&r.get::<_, String>(0)),
                crate::clock::iso(r.get::<_, i64>(1) as u64),
                crate::printable::printable(&r.get::<_, String>(2)),
            ),
            None => "another run (it has not written who it is yet)".into(),
        })
    }
}

impl Drop for RolloutLock {
    fn drop(&mut self) {
        let keys = std::mem::take(&mut self.keys);
        // Best effort: closing the session releases the locks in any case.
        let _ = self.session.run(move |c| {
            for k in &keys {
                c.execute(
                    "DELETE FROM locks WHERE key = $1 AND pid = pg_backend_pid()",
                    &[k],
                )?;
                c.query_one("SELECT pg_advisory_unlock($1)", &[k])?;
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_play_and_the_set_of_host_names() {
        let k = key("Wavix SIP trunk", &["pbx2", "pbx1"]);
        assert_eq!(k, key("Wavix SIP trunk", &["pbx1", "pbx2", "pbx1"]));
        assert_ne!(k, key("Wavix SIP trunk", &["pbx1"]));
        assert_ne!(k, key("Other", &["pbx1", "pbx2"]));
        // Stable across versions and machines: a lock taken by one build meets another's.
        assert_eq!(key("p", &["h"]), key("p", &["h"]));
    }
}
