//! A host: how it is reached and how it is changed.
//!
//! - [`transport`]: one SSH (russh) or local connection per host behind one interface, with
//!   known_hosts checked by our own reader;
//! - [`script`]: the fixed `sh` programs (`remote/*.sh`: gather, lock, write) and the
//!   arguments and stdin each round trip sends;
//! - [`session`]: the requests the session that changes a host serves (write, steps,
//!   state record) on the held lock's stdin;
//! - [`state`]: the record kept on each host (last written hashes, steps still owed);
//! - [`write`](mod@write): the write round trip and the state record that rides in it, the one way
//!   the runner, rollback and `trunks measure` change files on a host.

pub mod script;
pub mod session;
pub mod state;
pub mod transport;
pub mod write;
