//! The fleet rollout lock (PostgreSQL histories only): a rollout of a play to a fleet holds
//! it from before its first host to its end, so a second rollout of the same play to the
//! same fleet waits (or fails, `--lock-timeout`) instead of interleaving with the first host
//! by host (the per-host lock only serialises them one host at a time).
//!
//! *How*: a session-level advisory lock (`pg_try_advisory_lock`), as Terraform's `pg`
//! backend does. The database releases it when the session ends, however it ends: a holder
//! killed with SIGKILL, or whose machine vanished, frees it as soon as its connection is
//! gone (the server's TCP keepalives and `tcp_user_timeout`, which each session sets, bound
//! that to about a minute for a machine that vanished), never by a timeout guess. Who holds it is written by the holder into
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
    /// No lock without its database: a rollout configured with a shared history does not
    /// go ahead unguarded.
    #[error("cannot take the rollout lock: {0}")]
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

/// The lock key of the leadership of the `watch` agents of `plays` (their names, in the
/// playbook's order) on shard `shard` (K, N): a stable identity, not the host list, which
/// two agents reading the inventory at different moments would see differently and so each
/// lead. A prefix of its own keeps it apart from every rollout lock's key.
pub fn leader_key(plays: &[&str], shard: Option<(u32, u32)>) -> i64 {
    let mut h = Sha256::new();
    h.update(b"switchyard watch leader v1\0");
    if let Some((k, n)) = shard {
        h.update(format!("{k}/{n}").as_bytes());
    }
    for p in plays {
        h.update(b"\0");
        h.update(p.as_bytes());
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
        self.session.run(|c| {
            let got: bool = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])?
                .get(0);
            if got {
                write_holder(c, key, play, who, command)?;
            }
            Ok(got)
        })
    }

    fn holder(&mut self, key: i64) -> Result<String, HistoryError> {
        holder(&mut self.session, key)
    }
}

/// Who holds `key`, as its holder wrote it (a row left by a holder that died is never read:
/// only the row of the session holding the lock now).
fn holder(session: &mut Session, key: i64) -> Result<String, HistoryError> {
    // A bigint advisory key is split over classid (high half) and objid (low half).
    let row = session.run(|c| {
        c.query_opt(
            "SELECT l.who, l.since, l.command FROM locks l
             JOIN pg_locks p ON p.pid = l.pid AND p.locktype = 'advisory' AND p.granted
              AND p.objsubid = 1 AND ((p.classid::bigint << 32) | p.objid::bigint) = l.key
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

/// Write this session as the holder of `key`.
fn write_holder(
    c: &mut postgres::Client,
    key: i64,
    what: &str,
    who: &str,
    command: &str,
) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO locks(key, what, who, since, command, pid)
         VALUES ($1, $2, $3, $4, $5, pg_backend_pid())
         ON CONFLICT(key) DO UPDATE SET what = EXCLUDED.what, who = EXCLUDED.who,
         since = EXCLUDED.since, command = EXCLUDED.command, pid = EXCLUDED.pid",
        &[&key, &what, &who, &(crate::clock::now() as i64), &command],
    )?;
    Ok(())
}

/// The leadership of a group of `watch` agents that share a PostgreSQL history (agents in
/// pairs): exactly one acts — corrects drift, records rounds — while every one checks and
/// serves metrics and events. The leader holds a session-level advisory lock; the others
/// try to take it at the start of each round, so when the leader dies (its session ends
/// with it) another one acts from its next round on. A leader checks at the start of each
/// round that its session still holds the lock, and stands down if it cannot tell (the
/// database unreachable): an agent that does not know it leads never acts.
pub struct Leadership {
    target: Target,
    session: Option<Session>,
    key: i64,
    leading: bool,
}

impl Leadership {
    pub fn new(target: &Target) -> Leadership {
        Leadership {
            target: target.clone(),
            session: None,
            key: 0,
            leading: false,
        }
    }

    /// Whether this agent acts this round, as the leader of the group `what` (its lock
    /// `key`: [`leader_key`], plays and shard). A new key (the playbook changed) starts over.
    pub fn round(&mut self, what: &str, key: i64) -> Result<bool, HistoryError> {
        if key != self.key {
            self.session = None;
            self.leading = false;
            self.key = key;
        }
        let session = match &mut self.session {
            Some(s) => s,
            None => self
                .session
                .insert(super::postgres::Pg::connect(&self.target)?.into_session()),
        };
        let leading = self.leading;
        let who = crate::host::state::who();
        let command = format!("watch, pid {}", std::process::id());
        let out = session.run(move |c| {
            if leading {
                let held: i64 = c
                    .query_one(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                         AND pid = pg_backend_pid()",
                        &[],
                    )?
                    .get(0);
                return Ok(held > 0);
            }
            let got: bool = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])?
                .get(0);
            if got {
                write_holder(c, key, what, &who, &command)?;
            }
            Ok(got)
        });
        match out {
            Ok(l) => {
                self.leading = l;
                Ok(l)
            }
            Err(e) => {
                // Stand down: a new session next round, the lock freed with this one.
                self.session = None;
                self.leading = false;
                Err(e)
            }
        }
    }

    /// Who leads now, for a standby agent's log line.
    pub fn leader(&mut self) -> String {
        match &mut self.session {
            Some(s) => holder(s, self.key).unwrap_or_else(|e| e.to_string()),
            None => "unknown (no database session)".into(),
        }
    }
}

/// Which of `n` shards a host belongs to (0-based): a stable hash of its name, the same on
/// every machine and version, so agents given `--shard K/N` split the fleet without overlap.
pub fn shard_of(host: &str, n: u32) -> u32 {
    let d = Sha256::digest(host.as_bytes());
    (u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) % u64::from(n.max(1))) as u32
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

    #[test]
    fn the_leader_key_is_the_plays_and_the_shard_whatever_the_hosts() {
        let k = leader_key(&["Wavix SIP trunk"], Some((1, 2)));
        // Fixed value: agents of any build, any inventory reading, meet on one key.
        assert_eq!(k, leader_key(&["Wavix SIP trunk"], Some((1, 2))));
        assert_ne!(k, leader_key(&["Wavix SIP trunk"], Some((2, 2))));
        assert_ne!(k, leader_key(&["Wavix SIP trunk"], None));
        assert_ne!(k, leader_key(&["Other"], Some((1, 2))));
        assert_ne!(leader_key(&["p"], None), key("p", &[]));
    }
}
