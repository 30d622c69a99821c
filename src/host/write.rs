//! The write protocol: one round trip (`remote/write.sh`) that changes files on a host, and
//! the state record that rides in it.
//!
//! The engine decides *what* to write (from its plan); this module is how it is sent and
//! how its answer is read, so the runner, rollback and `trunks measure` all write the same
//! way: atomically, under the conf root, never through a planted link.

use std::collections::{BTreeMap, BTreeSet};

use crate::freeswitch::reload::Step;
use crate::host::script::{self, FileOp};
use crate::host::state::HostState;
use crate::host::transport::{Transport, TransportError};

/// Why a write round trip changed nothing (each file is renamed into place, so a failed
/// write leaves every file as it was or as it should be, never half-written).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The operations themselves were refused before anything was sent (a path outside
    /// the conf root).
    #[error("{0}")]
    Refused(String),
    /// The write program failed on the host: its exit status and what it said.
    #[error("writing files failed (exit {}): {stderr}", exit.map(|c| c.to_string()).unwrap_or_else(|| "none".into()))]
    Failed { exit: Option<u32>, stderr: String },
    #[error("writing files failed: {0}")]
    Transport(#[from] TransportError),
}

/// One write round trip (src/host/remote/write.sh), its outcome read from its answer.
/// `expect` lists, for files about to change, the sha256 they had when gathered: if any
/// moved on since, nothing is written.
pub async fn send(
    t: &mut Transport,
    conf_root: &str,
    ops: &[FileOp<'_>],
    expect: &[(&str, Option<&str>)],
) -> Result<(), WriteError> {
    let (cmd, stdin) = script::write(conf_root, ops, expect).map_err(WriteError::Refused)?;
    let out = t.exec(&cmd, &stdin).await?;
    if out.ok() && out.stdout_text().contains("switchyard-write-ok") {
        return Ok(());
    }
    Err(WriteError::Failed {
        exit: out.exit,
        stderr: out.stderr_text(),
    })
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
