//! The write protocol: a request to the session that changes a host (`remote/write.sh`
//! served by `remote/lock.sh`), and the state record that rides in it.
//!
//! The engine decides *what* to write (from its plan); this module is how it is sent and
//! how its answer is read, so the runner, rollback and `trunks measure` all write the same
//! way: atomically, under the conf root, never through a planted link.

use std::collections::{BTreeMap, BTreeSet};

use crate::freeswitch::reload::Step;
use crate::host::script::FileOp;
use crate::host::state::HostState;
use crate::host::transport::HostLock;

/// Why a write changed nothing (each file is renamed into place, so a failed write leaves
/// every file as it was or as it should be, never half-written).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The operations themselves were refused before anything was sent (a path outside
    /// the conf root).
    #[error("{0}")]
    Refused(String),
    /// The write program failed on the host: its exit status and what it said.
    #[error("writing files failed (exit {exit}): {answer}")]
    Failed { exit: i32, answer: String },
    /// The session did not carry the request to its end (it ended, or did not answer).
    #[error("writing files failed: {0}")]
    Session(#[from] crate::host::transport::SessionError),
}

/// One write through the held session (src/host/remote/write.sh), its outcome read from its
/// answer. `expect` lists, for files about to change, the sha256 they had when gathered: if
/// any moved on since, nothing is written. With `sync` false the folders written to are
/// left for the next state record to flush ([`HostLock::write_record`]): they are returned.
pub async fn send(
    lock: &mut HostLock,
    conf_root: &str,
    ops: &[FileOp<'_>],
    expect: &[(&str, Option<&str>)],
    sync: bool,
) -> Result<Vec<String>, WriteError> {
    let nonce = crate::host::session::nonce();
    let (req, dirs) = crate::host::session::write(conf_root, ops, expect, &nonce, sync)
        .map_err(WriteError::Refused)?;
    let shown = std::iter::once(crate::host::script::SESSION_WRITE.to_string())
        .chain(ops.iter().map(|op| match op {
            FileOp::Write { path, .. } => crate::host::script::quote(path),
            FileOp::Remove { path } => format!("-{}", crate::host::script::quote(path)),
        }))
        .collect::<Vec<_>>()
        .join(" ");
    match lock.write(&req, &nonce, &shown).await {
        Ok((text, 0)) if text.contains("switchyard-write-ok") => Ok(dirs),
        Ok((text, rc)) => Err(WriteError::Failed {
            exit: rc,
            answer: text.trim().to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Writing the state record: in switchyard's private folder, owned by the login, 0600.
pub fn record_op<'a>(path: &'a str, content: &'a [u8]) -> FileOp<'a> {
    FileOp::Write {
        path,
        content,
        owner: "",
        group: "",
        mode: 0o600,
    }
}

/// The state record after a write: `written` (path → new sha256, `None` for a file
/// removed) over the prior record's hashes, and the steps still `owed`.
pub fn new_record<'a>(
    prior: Option<&HostState>,
    written: impl Iterator<Item = (&'a str, Option<&'a str>)>,
    owed: Vec<Step>,
    vars: BTreeMap<String, BTreeSet<String>>,
) -> Vec<u8> {
    let mut files = prior.map(|x| x.files.clone()).unwrap_or_default();
    for (path, sha) in written {
        match sha {
            None => files.remove(path),
            Some(sha) => files.insert(path.to_string(), sha.to_string()),
        };
    }
    HostState {
        version: 1,
        applied_at: crate::clock::now(),
        applied_by: crate::host::state::who(),
        files,
        owed,
        vars,
    }
    .to_bytes()
}
