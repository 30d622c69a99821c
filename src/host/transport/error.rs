//! Why a host could not be reached, locked or changed: the transport's typed errors, each
//! keeping its source, so the host's [`ErrorKind`](crate::engine::outcome::ErrorKind) is
//! read from the error rather than chosen by its caller.

use std::path::PathBuf;
use std::sync::Arc;

use super::known_hosts;

/// Why the host lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it (its owner as the lock program reported it).
    #[error("another switchyard run is changing this host (lock {path} held by {owner})")]
    Held { path: String, owner: String },
    /// The lock command gave no answer within the command timeout.
    #[error("cannot take the host lock {path}: no answer within {secs} s")]
    NoAnswer { path: String, secs: u64 },
    /// The lock program answered something else (no permission, no flock, a planted link).
    #[error("cannot take the host lock {path}: {answer}")]
    Refused { path: String, answer: String },
    /// The lock command could not be started.
    #[error("cannot take the host lock {path}: {source}")]
    Transport {
        path: String,
        #[source]
        source: TransportError,
    },
}

/// Why the state record could not be replaced through the lock's command.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A bug: the record would end the session's input early.
    #[error("a state record must end with a line break and hold no 0x1f")]
    Malformed,
    /// The session did not carry the request to its end (it ended, or did not answer).
    #[error("while writing the state record: {0}")]
    Session(#[from] SessionError),
    /// The session's answer (escaped: it is the host's text).
    #[error("the state record could not be written: {}", crate::printable::printable(.answer))]
    Refused { answer: String },
}

/// Why the session that changes a host (the held lock's command, [`HostLock`]) did not
/// carry a request to its end, or why a FreeSWITCH steps program did not run ([`crate::host::session::Via::run`]).
///
/// Clone (its sources shared) because a session that failed once is dead: every later
/// request is refused with the same error, as [`SessionError::Dead`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    /// The SSH channel refused the request.
    #[error("{0}")]
    Ssh(#[source] Arc<russh::Error>),
    /// The local session's pipes failed.
    #[error("{0}")]
    Io(#[source] Arc<std::io::Error>),
    #[error("the session's stdin is closed")]
    StdinClosed,
    /// The session ended before its answer was complete: what it said (the host's text,
    /// escaped).
    #[error("the host's session ended: {}", crate::printable::printable(.said))]
    Ended { said: String },
    /// The answer grew past what the request can legitimately produce: reading stopped.
    #[error("the host's answer exceeded {max} bytes")]
    TooLarge { max: usize },
    /// No answer within the wait: the session is out of step with its requests.
    #[error("the host's session did not answer within {secs:.0} s")]
    NoAnswer { secs: f64 },
    /// A write failed, which ends the session's program.
    #[error("the host's session ended after a failed write")]
    AfterFailedWrite,
    /// A request after the session died: why it died.
    #[error("{0}")]
    Dead(Box<SessionError>),
    /// The steps program ran on a channel of its own ([`crate::host::session::Via::Channel`]),
    /// and that command failed.
    #[error("{0}")]
    Channel(#[source] Arc<TransportError>),
    /// The steps program cannot be built: the `fs_cli` line cannot be run as given, or a
    /// command holds the byte that ends the request (the reason, as
    /// [`crate::host::script::FsCli::parse`] words it).
    #[error("{0}")]
    Unsendable(String),
}

impl From<TransportError> for SessionError {
    fn from(e: TransportError) -> SessionError {
        SessionError::Channel(Arc::new(e))
    }
}

impl From<russh::Error> for SessionError {
    fn from(e: russh::Error) -> SessionError {
        SessionError::Ssh(Arc::new(e))
    }
}

impl From<std::io::Error> for SessionError {
    fn from(e: std::io::Error) -> SessionError {
        SessionError::Io(Arc::new(e))
    }
}

/// Why a host could not be reached, or a command on it did not run to its end.
///
/// Sources are kept (russh's, the I/O error's) so that what went wrong is a type, not a
/// sentence: [`TransportError::is_transient`] and the host's
/// [`ErrorKind`](crate::engine::outcome::ErrorKind) are read from it.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The TCP connection or the SSH handshake failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: Box<russh::Error>,
    },
    /// The jump host would not open a channel to the next hop.
    #[error("cannot connect to {addr}: through jump host {jump}: {source}")]
    Jump {
        addr: String,
        jump: String,
        #[source]
        source: Box<russh::Error>,
    },
    /// A plain TCP connection (the local transport's tunnel) failed.
    #[error("cannot connect to {addr}: {source}")]
    Tcp {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {addr}: `ansible_connection: {kind}` is not one switchyard speaks")]
    Unsupported { addr: String, kind: String },
    #[error("connecting to {addr} timed out after {secs:.0} s")]
    ConnectTimeout { addr: String, secs: f64 },
    #[error("remote command timed out after {secs:.0} s")]
    CommandTimeout { secs: f64 },
    #[error("host key of {host} is not in {} (fingerprint {fingerprint}); check it and add it, or pass `--accept-new-host-keys`", known_hosts.display())]
    UnknownHostKey {
        host: String,
        fingerprint: String,
        known_hosts: PathBuf,
    },
    #[error("HOST KEY OF {host} HAS CHANGED (it does not match line {line} of {}); refusing to connect: someone may be intercepting the connection, or the host was reinstalled", known_hosts.display())]
    ChangedHostKey {
        host: String,
        line: usize,
        known_hosts: PathBuf,
    },
    #[error("HOST KEY OF {host} IS REVOKED (line {line} of {}); refusing to connect", known_hosts.display())]
    RevokedHostKey {
        host: String,
        line: usize,
        known_hosts: PathBuf,
    },
    /// known_hosts could not be read or written, or speaks of certificates only.
    #[error("ssh: {0}")]
    KnownHosts(#[from] Box<known_hosts::KnownHostsError>),
    #[error("authentication as `{user}` failed (tried: {tried})")]
    Auth { user: String, tried: String },
    #[error("cannot load key {}: {source}", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: Box<russh::keys::Error>,
    },
    /// The SSH session failed on an open connection (a channel refused, the peer gone).
    #[error("ssh: {0}")]
    Ssh(#[source] Box<russh::Error>),
    /// The host refused a `direct-tcpip` channel.
    #[error("ssh: tunnel to {target}: {source}")]
    Tunnel {
        target: String,
        #[source]
        source: Box<russh::Error>,
    },
    #[error("cannot run local command: {0}")]
    Spawn(#[source] std::io::Error),
    /// The host answered more than the command can legitimately produce: reading stopped
    /// there and the command was ended.
    #[error("the host's answer exceeded {max} bytes; stopped reading it")]
    TooLarge { max: usize },
    /// The last of several connection attempts failed with this.
    #[error("{source} ({attempts} attempts)")]
    Retried {
        attempts: u32,
        #[source]
        source: Box<TransportError>,
    },
}
