//! Integration tests: the real binary against real sshd hosts (see `harness`).
//! One test binary, so the crate is linked once.

mod harness;
mod session;

mod agents;
mod ansible;
mod apply;
mod architecture;
mod cli;
mod contrib;
mod contrib_k8s;
mod controller_files;
mod errors;
mod fleet;
mod hashfirst;
mod history;
mod hostile;
mod hostkeys;
mod import;
mod import_mapped;
mod inputs;
mod lint;
mod live_hostile;
mod local_trust;
mod measure;
mod memory;
mod messages;
mod pg_history;
mod pgserver;
mod real;
mod reload;
mod review;
mod rollout;
mod rollout_lock;
mod route;
mod schema;
mod secrets;
mod snapshots;
mod trust;
