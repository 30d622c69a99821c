//! The small record switchyard keeps on each host: what it last wrote, and which
//! FreeSWITCH steps are still owed.
//!
//! Kept at `<conf root>/.switchyard/state.json` (hashes only, never content or secrets),
//! read in the fact-gathering round trip and written in the file-writing one. It is what
//! lets a later run tell **drift** (the host changed since switchyard wrote it) from
//! **pending** (the playbook or inventory changed), and what keeps a `restart pending`
//! visible after the run that caused it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::freeswitch::reload::Step;

/// Path of the record, relative to the conf root.
pub const STATE_REL: &str = ".switchyard/state.json";

/// Present while a write is in progress (src/host/remote/write.sh): left behind by a run killed
/// mid-write, with its staged files, which the next run removes under the host lock.
pub const WRITING_REL: &str = ".switchyard/writing";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    pub version: u32,
    /// Seconds since the epoch of the last apply that wrote files.
    pub applied_at: u64,
    /// `user@machine` that ran it.
    pub applied_by: String,
    /// Absolute path → sha256 of the content switchyard last wrote there.
    pub files: BTreeMap<String, String>,
    /// Steps a past apply's files need and nobody has confirmed done: written in the same
    /// round trip as the files (so a controller killed before its FreeSWITCH steps leaves
    /// them owed, and the next run runs them), cleared once each ran and the gateways were
    /// verified. Disruptive steps not allowed stay here until a run may perform them.
    /// (Older records call it `pending`.)
    #[serde(alias = "pending")]
    pub owed: Vec<Step>,
    /// Absolute path → pre-process variables switchyard defined there: the only ones a
    /// `preprocess: {state: absent}` task removes (an operator's own lines are not ours).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl HostState {
    pub fn parse(bytes: &[u8]) -> Option<HostState> {
        serde_json::from_slice(bytes).ok()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("state serializes");
        v.push(b'\n');
        v
    }
}

/// Name of this process's user and primary group (`id -un`, `id -gn`), `root` if unknown:
/// the owner of files on the local transport (demo, tests).
pub fn current_user_and_group() -> (String, String) {
    let id = |flag: &str| {
        std::process::Command::new("id")
            .arg(flag)
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "root".into())
    };
    (id("-un"), id("-gn"))
}

/// `user@machine` of this controller, for the record and history.
/// What the host lock says of its holder: who, doing what, which process, since when.
pub fn lock_owner(doing: &str) -> String {
    format!(
        "{} {doing} pid {} since {}",
        who(),
        std::process::id(),
        crate::clock::iso(crate::clock::now())
    )
}

pub fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}
