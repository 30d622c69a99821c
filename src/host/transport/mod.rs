//! How commands reach a host: one interface over SSH (russh) and the local machine.
//!
//! Two backends behind an enum rather than a trait object (async trait methods are not
//! object-safe without boxing, and there are exactly two). Everything above this module
//! sees only [`Transport::exec`]: a command line, bytes for its stdin, and its output.

pub mod known_hosts;
mod local;
mod ssh;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::host::script;
use crate::inputs::inventory::{Connection, ConnectionKind};

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
    /// A bug: the record would end the lock program's input early.
    #[error("a state record must end with a line break and hold no 0x1f")]
    Malformed,
    #[error("no answer within {secs:.0} s while writing the state record")]
    NoAnswer { secs: f64 },
    #[error("the lock's stdin is closed")]
    StdinClosed,
    #[error("{0}")]
    Ssh(#[from] russh::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The lock program's answer (escaped: it is the host's text).
    #[error("the state record could not be written: {}", crate::printable::printable(.answer))]
    Refused { answer: String },
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

/// The most one remote command may answer (stdout and stderr together) unless its caller
/// bounds it otherwise ([`Transport::exec_bounded`]): FreeSWITCH's answers and switchyard's
/// own programs' are kilobytes; a host flooding the channel is cut off here instead of
/// filling the controller's memory.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Seconds a remote command's processes get, after the host-side timeout's TERM, before
/// they are KILLed.
const KILL_GRACE_SECS: u32 = 5;

/// Options for every SSH connection of a run.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub known_hosts: PathBuf,
    /// Record unknown host keys instead of refusing them (never accepts a changed key).
    pub accept_new_host_keys: bool,
}

impl SshOptions {
    pub fn default_known_hosts() -> PathBuf {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"))
            .join(".ssh/known_hosts")
    }
}

#[derive(Debug)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the command ended without an exit status (killed by a signal).
    pub exit: Option<u32>,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.exit == Some(0)
    }
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

/// A remote command kept running (and its channel open) on purpose: the host lock.
pub enum Held {
    Ssh(russh::Channel<russh::client::Msg>),
    /// The child and its stdout (the lock program answers each state record written).
    Local(
        Box<(
            tokio::process::Child,
            tokio::io::BufReader<tokio::process::ChildStdout>,
        )>,
    ),
}

/// Most a held command may answer to one request: its answers are one short line.
const HELD_ANSWER_BYTES: usize = 4096;

impl Held {
    /// End the command: close its stdin and wait for it to exit.
    pub async fn release(self) {
        match self {
            Held::Ssh(mut ch) => {
                let _ = ch.eof().await;
                while ch.wait().await.is_some() {}
            }
            Held::Local(local) => {
                let (mut child, _) = *local;
                drop(child.stdin.take());
                let _ = child.wait().await;
            }
        }
    }

    /// Send `data` to the held command and read its answer: one line, bounded in bytes
    /// ([`HELD_ANSWER_BYTES`]) while reading; the caller bounds the time.
    async fn ask(&mut self, data: &[u8]) -> Result<String, RecordError> {
        let mut line = Vec::new();
        match self {
            Held::Ssh(ch) => {
                ch.data(data).await?;
                while let Some(msg) = ch.wait().await {
                    match msg {
                        russh::ChannelMsg::Data { data } => line.extend_from_slice(&data),
                        russh::ChannelMsg::Eof | russh::ChannelMsg::Close => break,
                        _ => {}
                    }
                    if line.contains(&b'\n') || line.len() > HELD_ANSWER_BYTES {
                        break;
                    }
                }
            }
            Held::Local(local) => {
                let (child, out) = &mut **local;
                use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
                let input = child.stdin.as_mut().ok_or(RecordError::StdinClosed)?;
                input.write_all(data).await?;
                input.flush().await?;
                let mut bounded = out.take(HELD_ANSWER_BYTES as u64 + 1);
                bounded.read_until(b'\n', &mut line).await?;
            }
        }
        line.truncate(HELD_ANSWER_BYTES);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }
}

/// The per-host lock: a kernel `flock` held by a command on the run's own SSH session, so a
/// crashed or disconnected run can never leave a stale lock behind.
pub struct HostLock {
    held: Held,
    timeout: Duration,
}

impl HostLock {
    /// Bounded like every command (a hung global `sync` on a host's stalled mount must not
    /// hold the rollout): after the command timeout the channel is dropped, which ends the
    /// lock with the session's command.
    pub async fn release(self) {
        let _ = tokio::time::timeout(self.timeout, self.held.release()).await;
    }

    /// Replace the state record (`.switchyard/state.json`) through the lock's own command
    /// (src/host/remote/lock.sh): no new channel, login shell or walk to the private folder,
    /// where the lock program already is. The record is written to a temporary file,
    /// flushed and renamed over the old one, so a cut leaves the old record whole.
    /// `record` is serde_json's output: a raw control character never occurs in it, so
    /// the line holding only ASCII US (0x1f) ends it.
    pub async fn write_record(&mut self, record: &[u8]) -> Result<(), RecordError> {
        if record.contains(&0x1f) || !record.ends_with(b"\n") {
            return Err(RecordError::Malformed);
        }
        let mut data = record.to_vec();
        data.extend_from_slice(b"\x1f\n");
        let answer = tokio::time::timeout(self.timeout, self.held.ask(&data))
            .await
            .map_err(|_| RecordError::NoAnswer {
                secs: self.timeout.as_secs_f64(),
            })??;
        if answer.trim_end() == "switchyard-record-ok" {
            Ok(())
        } else {
            Err(RecordError::Refused {
                answer: answer.trim().to_string(),
            })
        }
    }
}

enum Backend {
    Ssh(ssh::Ssh),
    Local(local::Local),
}

/// An open connection to one host.
pub struct Transport {
    backend: Backend,
    become_root: bool,
    command_timeout: Duration,
    /// Remote commands run on this connection (reported, and checked by the benchmark).
    pub commands: Arc<AtomicU64>,
    /// Told of every remote command after it ran (`-v`): the command as given (not yet
    /// wrapped in sudo), its stdin length, how long it took, its outcome.
    pub trace: Option<Trace>,
}

/// A stream through [`Transport::tunnel`].
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}
pub type Tunnel = Box<dyn Stream>;

/// See [`Transport::trace`].
pub type Trace = Arc<dyn Fn(&str, usize, Duration, &str) + Send + Sync>;

/// russh's errors are boxed (one of them holds three lists): a `Result` carrying a
/// `TransportError` stays small on the happy path.
impl From<russh::Error> for TransportError {
    fn from(e: russh::Error) -> TransportError {
        TransportError::Ssh(Box::new(e))
    }
}

impl TransportError {
    /// Worth another try: the network or the host may be back in a moment. Host-key,
    /// authentication and key-file problems will not fix themselves.
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Connect { .. }
            | TransportError::Jump { .. }
            | TransportError::Tcp { .. }
            | TransportError::ConnectTimeout { .. } => true,
            TransportError::Retried { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// The connection was never made (as opposed to a command failing on an open one).
    pub fn is_unreachable(&self) -> bool {
        match self {
            TransportError::Connect { .. }
            | TransportError::Jump { .. }
            | TransportError::Tcp { .. }
            | TransportError::Unsupported { .. }
            | TransportError::ConnectTimeout { .. }
            | TransportError::UnknownHostKey { .. }
            | TransportError::ChangedHostKey { .. }
            | TransportError::RevokedHostKey { .. }
            | TransportError::KnownHosts(_)
            | TransportError::Auth { .. }
            | TransportError::Key { .. } => true,
            TransportError::Retried { source, .. } => source.is_unreachable(),
            TransportError::Ssh(_)
            | TransportError::Tunnel { .. }
            | TransportError::CommandTimeout { .. }
            | TransportError::Spawn(_)
            | TransportError::TooLarge { .. } => false,
        }
    }
}

impl Transport {
    /// Connect, trying again after transient failures (a refused or timed-out connection)
    /// up to `retries` more times with a doubling pause. `on_retry(attempt, of)` is called
    /// before each new attempt; a final error says how many attempts were made.
    pub async fn connect_with_retries(
        conn: &Connection,
        opts: &SshOptions,
        retries: u32,
        on_retry: impl Fn(u32, u32),
    ) -> Result<Transport, TransportError> {
        let mut delay = std::time::Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match Transport::connect(conn, opts).await {
                Err(e) if e.is_transient() && attempt <= retries => {
                    attempt += 1;
                    on_retry(attempt, retries + 1);
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) if attempt > 1 => {
                    return Err(TransportError::Retried {
                        attempts: attempt,
                        source: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
                Ok(t) => return Ok(t),
            }
        }
    }

    pub async fn connect(
        conn: &Connection,
        opts: &SshOptions,
    ) -> Result<Transport, TransportError> {
        let backend = match conn.kind {
            ConnectionKind::Local => Backend::Local(local::Local),
            ConnectionKind::Other(ref c) => {
                return Err(TransportError::Unsupported {
                    addr: conn.address.clone(),
                    kind: c.clone(),
                })
            }
            ConnectionKind::Ssh => {
                let fut = ssh::Ssh::connect(conn, opts);
                match tokio::time::timeout(conn.connect_timeout, fut).await {
                    Ok(r) => Backend::Ssh(r?),
                    Err(_) => {
                        return Err(TransportError::ConnectTimeout {
                            addr: format!("{}:{}", conn.address, conn.port),
                            secs: conn.connect_timeout.as_secs_f64(),
                        })
                    }
                }
            }
        };
        Ok(Transport {
            backend,
            become_root: conn.become_root,
            command_timeout: conn.command_timeout,
            commands: Arc::new(AtomicU64::new(0)),
            trace: None,
        })
    }

    /// Run `command` through the host's shell with `stdin`, as root when becoming; its
    /// answer bounded by [`MAX_ANSWER_BYTES`].
    pub async fn exec(&mut self, command: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        self.exec_bounded(command, stdin, MAX_ANSWER_BYTES).await
    }

    /// [`Transport::exec`], reading at most `max` bytes of answer (stdout and stderr
    /// together): more is [`TransportError::TooLarge`], found while reading, and the
    /// command is ended.
    pub async fn exec_bounded(
        &mut self,
        command: &str,
        stdin: &[u8],
        max: usize,
    ) -> Result<Output, TransportError> {
        let started = std::time::Instant::now();
        let result = self.exec_untraced(command, stdin, max).await;
        if let Some(trace) = &self.trace {
            let outcome = match &result {
                Ok(o) => match o.exit {
                    Some(c) => format!("exit {c}"),
                    None => "no exit status".into(),
                },
                Err(e) => format!("failed: {e}"),
            };
            trace(command, stdin.len(), started.elapsed(), &outcome);
        }
        result
    }

    async fn exec_untraced(
        &mut self,
        command: &str,
        stdin: &[u8],
        max: usize,
    ) -> Result<Output, TransportError> {
        let timeout = self.command_timeout;
        // The host bounds the command's time itself: coreutils' `timeout` ends the command
        // and every process it started (its process group: TERM, then KILL after a grace)
        // when the controller's own timeout fires, or when the controller is gone. Closing
        // the channel alone would leave a process blocked on the PBX (a `cat` on a FIFO,
        // a hung `fs_cli`) running as root forever. It runs inside sudo, as root, so it may
        // signal what runs as root.
        let bounded = format!(
            "exec timeout -k {KILL_GRACE_SECS} {} {command}",
            timeout.as_secs_f64().ceil().max(1.0) as u64
        );
        let cmd = if self.become_root {
            script::become_root(&bounded)
        } else {
            bounded
        };
        let cmd = cmd.as_str();
        self.commands.fetch_add(1, Ordering::Relaxed);
        let fut = async {
            match &mut self.backend {
                Backend::Ssh(s) => s.exec(cmd, stdin, max).await,
                Backend::Local(l) => l.exec(cmd, stdin, max).await,
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::CommandTimeout {
                secs: timeout.as_secs_f64(),
            }),
        }
    }

    /// A byte stream to `host:port` as the host reaches it: an SSH `direct-tcpip` channel,
    /// or a plain TCP connection on the local transport.
    pub async fn tunnel(&mut self, host: &str, port: u16) -> Result<Tunnel, TransportError> {
        self.commands.fetch_add(1, Ordering::Relaxed);
        match &mut self.backend {
            Backend::Ssh(s) => Ok(Box::new(s.tunnel(host, port).await?)),
            Backend::Local(_) => {
                let s = tokio::net::TcpStream::connect((host, port))
                    .await
                    .map_err(|source| TransportError::Tcp {
                        addr: format!("{host}:{port}"),
                        source,
                    })?;
                Ok(Box::new(s))
            }
        }
    }

    /// Take the host lock in `<conf_root>/.switchyard` (src/host/remote/lock.sh), held until the
    /// returned guard is released or the connection drops.
    pub async fn lock(&mut self, conf_root: &str, owner: &str) -> Result<HostLock, LockError> {
        let path = format!("{conf_root}/.switchyard/lock");
        // Exit 75 (`-E`) means held by another run; any other failure (no permission, no
        // flock, a planted link) speaks for itself on stderr.
        let body = script::lock(conf_root, owner);
        let cmd = if self.become_root {
            script::become_root(&body)
        } else {
            body
        };
        self.commands.fetch_add(1, Ordering::Relaxed);
        // Bounded in time like every other command: a host that never answers the lock
        // command fails this host, not the run.
        let timeout = self.command_timeout;
        let res = match &mut self.backend {
            Backend::Ssh(s) => tokio::time::timeout(timeout, s.hold(&cmd)).await,
            Backend::Local(l) => tokio::time::timeout(timeout, l.hold(&cmd)).await,
        };
        let Ok(res) = res else {
            return Err(LockError::NoAnswer {
                path,
                secs: timeout.as_secs(),
            });
        };
        match res {
            Ok((line, held)) if line.starts_with("switchyard-locked") => Ok(HostLock {
                held,
                timeout: self.command_timeout,
            }),
            Ok((line, held)) => {
                held.release().await;
                Err(match line.trim().strip_prefix("LOCKED ") {
                    Some(who) => LockError::Held {
                        path,
                        owner: who.to_string(),
                    },
                    None => LockError::Refused {
                        path,
                        answer: line.trim().to_string(),
                    },
                })
            }
            Err(source) => Err(LockError::Transport { path, source }),
        }
    }

    pub async fn close(self) {
        if let Backend::Ssh(s) = self.backend {
            s.close().await;
        }
    }
}
