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

mod error;
pub use error::{LockError, RecordError, SessionError, TransportError};

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

    /// Send `data` to the held session, reading nothing.
    async fn send(&mut self, data: &[u8]) -> Result<(), SessionError> {
        match self {
            Held::Ssh(ch) => Ok(ch.data(data).await?),
            Held::Local(local) => {
                use tokio::io::AsyncWriteExt;
                let input = local.0.stdin.as_mut().ok_or(SessionError::StdinClosed)?;
                input.write_all(data).await?;
                Ok(input.flush().await?)
            }
        }
    }

    /// Send a request to the held session and read its answer: everything up to the line
    /// `0x1d NONCE STATUS`, bounded in bytes (`max`) while reading; the caller bounds the
    /// time. A session that ends first (a failed write ends it) is an error carrying what
    /// it said.
    async fn request(
        &mut self,
        data: &[u8],
        nonce: &str,
        max: usize,
    ) -> Result<(String, i32), SessionError> {
        let marker = format!("\u{1d}{nonce} ");
        let mut buf = Vec::new();
        let mut err = Vec::new();
        let done = |buf: &[u8]| -> Option<(String, i32)> {
            let text = String::from_utf8_lossy(buf);
            let at = text.find(&marker)?;
            let rest = &text[at + marker.len()..];
            let (rc, _) = rest.split_once('\n')?;
            Some((text[..at].to_string(), rc.trim().parse().unwrap_or(-1)))
        };
        let room = |v: &Vec<u8>| max.saturating_sub(v.len());
        match self {
            Held::Ssh(ch) => {
                // A session that ended (a failed write) refuses the rest: its answer still
                // says why.
                let sent = ch.data(data).await;
                while let Some(msg) = ch.wait().await {
                    match msg {
                        russh::ChannelMsg::Data { data } => {
                            let n = data.len().min(room(&buf));
                            buf.extend_from_slice(&data[..n]);
                        }
                        russh::ChannelMsg::ExtendedData { data, .. } => {
                            let n = data.len().min(room(&err).min(4096));
                            err.extend_from_slice(&data[..n]);
                        }
                        russh::ChannelMsg::Eof | russh::ChannelMsg::Close => break,
                        _ => {}
                    }
                    if let Some(answer) = done(&buf) {
                        return Ok(answer);
                    }
                    if buf.len() >= max {
                        return Err(SessionError::TooLarge { max });
                    }
                }
                if let Err(e) = sent {
                    err.extend_from_slice(e.to_string().as_bytes());
                }
            }
            Held::Local(local) => {
                let (child, out) = &mut **local;
                use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
                if let Some(input) = child.stdin.as_mut() {
                    let _ = input.write_all(data).await;
                    let _ = input.flush().await;
                }
                loop {
                    let mut bounded = (&mut *out).take(room(&buf) as u64 + 1);
                    let n = bounded.read_until(b'\n', &mut buf).await?;
                    if let Some(answer) = done(&buf) {
                        return Ok(answer);
                    }
                    if n == 0 {
                        break;
                    }
                    if buf.len() >= max {
                        return Err(SessionError::TooLarge { max });
                    }
                }
                if let Some(e) = child.stderr.as_mut() {
                    let _ = e.take(4096).read_to_end(&mut err).await;
                }
            }
        }
        buf.extend_from_slice(&err);
        Err(SessionError::Ended {
            said: String::from_utf8_lossy(&buf).trim().to_string(),
        })
    }
}

/// The per-host lock: a kernel `flock` held by a command on the run's own SSH session, so a
/// crashed or disconnected run can never leave a stale lock behind. That command is also
/// the session that changes the host: writes, FreeSWITCH steps and the state record are
/// requests on its stdin (src/host/remote/lock.sh, [`crate::host::session`]).
pub struct HostLock {
    held: Held,
    timeout: Duration,
    /// Why the session can take no more requests (it ended, or an answer never came).
    dead: Option<SessionError>,
    commands: Arc<AtomicU64>,
    trace: Option<Trace>,
}

impl HostLock {
    /// Bounded like every command (a hung global `sync` on a host's stalled mount must not
    /// hold the rollout): after the command timeout the channel is dropped, which ends the
    /// lock with the session's command.
    pub async fn release(self) {
        let _ = tokio::time::timeout(self.timeout, self.held.release()).await;
    }

    /// The command timeout: each command a request starts on the host is bounded by it.
    pub fn command_timeout(&self) -> Duration {
        self.timeout
    }

    /// Send one request and read its answer (text, status), within `wait`. A session
    /// that did not answer is out of step with its requests: it takes no more.
    async fn request(
        &mut self,
        data: &[u8],
        nonce: &str,
        max: usize,
        wait: Duration,
    ) -> Result<(String, i32), SessionError> {
        if let Some(why) = &self.dead {
            return Err(SessionError::Dead(Box::new(why.clone())));
        }
        let e = match tokio::time::timeout(wait, self.held.request(data, nonce, max)).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => e,
            Err(_) => SessionError::NoAnswer {
                secs: wait.as_secs_f64(),
            },
        };
        self.dead = Some(e.clone());
        Err(e)
    }

    /// Tell `-v` of a request, and count it as a remote command.
    fn traced(&self, shown: &str, sent: usize, started: std::time::Instant, outcome: &str) {
        self.commands.fetch_add(1, Ordering::Relaxed);
        if let Some(trace) = &self.trace {
            trace(shown, sent, started.elapsed(), outcome);
        }
    }

    /// Write files through the session (src/host/remote/write.sh): the answer's text and
    /// status; a failed write ends the session. `shown` is what `-v` shows.
    pub async fn write(
        &mut self,
        req: &[u8],
        nonce: &str,
        shown: &str,
    ) -> Result<(String, i32), SessionError> {
        let started = std::time::Instant::now();
        let res = self
            .request(req, nonce, HELD_ANSWER_BYTES, self.timeout)
            .await;
        if let Ok((_, rc)) = &res {
            if *rc != 0 {
                self.dead = Some(SessionError::AfterFailedWrite);
            }
        }
        self.traced(shown, req.len(), started, &outcome(&res));
        res
    }

    /// Run a FreeSWITCH steps program through the session: its output. Each of its
    /// commands is bounded on the host by the command timeout, so the answer is awaited a
    /// little longer (the host's `timeout` ends a hung command first: the session goes on).
    pub async fn steps(
        &mut self,
        req: &[u8],
        nonce: &str,
        shown: &str,
    ) -> Result<String, SessionError> {
        let started = std::time::Instant::now();
        let wait = self.timeout * 4 + Duration::from_secs(u64::from(KILL_GRACE_SECS) * 2 + 5);
        let res = self.request(req, nonce, MAX_ANSWER_BYTES, wait).await;
        if res.is_ok() {
            // The session waits for this line before it reads the next request.
            if let Err(e) = self.held.send(b"\n").await {
                self.dead = Some(e);
            }
        }
        self.traced(shown, req.len(), started, &outcome(&res));
        res.map(|(text, _)| text)
    }

    /// Replace the state record (`.switchyard/state.json`) through the session: written to
    /// a temporary file, flushed together with `dirs` (folders a write left to this record
    /// to flush) and renamed over the old one, so a cut leaves the old record whole.
    /// `record` is serde_json's output: a raw control character never occurs in it, so the
    /// line holding only ASCII US ends it.
    pub async fn write_record(
        &mut self,
        record: &[u8],
        dirs: &[String],
    ) -> Result<(), RecordError> {
        if record.contains(&0x1f) || !record.ends_with(b"\n") {
            return Err(RecordError::Malformed);
        }
        let nonce = nonce();
        let mut req = format!("R {nonce} {}\n", dirs.len()).into_bytes();
        for d in dirs {
            req.extend_from_slice(d.as_bytes());
            req.push(b'\n');
        }
        req.extend_from_slice(record);
        req.extend_from_slice(b"\x1f\n");
        let answer = self
            .request(&req, &nonce, HELD_ANSWER_BYTES, self.timeout)
            .await?;
        if answer.0.trim_end() == "switchyard-record-ok" {
            Ok(())
        } else {
            Err(RecordError::Refused {
                answer: answer.0.trim().to_string(),
            })
        }
    }
}

/// A fresh nonce for one request to the held session (16 hex digits from the kernel's
/// random source): the end of its answer, which no output can forge.
pub fn nonce() -> String {
    crate::atomic_file::random_hex().unwrap_or_else(|_| {
        // No /dev/urandom: the time still makes a collision with FreeSWITCH output absurd.
        format!(
            "{:016x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        )
    })
}

/// Most a write or a record may answer: a few lines.
const HELD_ANSWER_BYTES: usize = 64 << 10;

fn outcome(res: &Result<(String, i32), SessionError>) -> String {
    match res {
        Ok((_, rc)) => format!("exit {rc}"),
        Err(e) => format!("failed: {e}"),
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
        Transport::connect_for(conn, opts, ssh::Flow::Bulk).await
    }

    /// A connection that will carry one mostly idle stream ([`Transport::tunnel`] to an
    /// event socket), held for long: its flow control sized for that ([`ssh::Flow::Idle`]).
    pub async fn connect_idle(
        conn: &Connection,
        opts: &SshOptions,
    ) -> Result<Transport, TransportError> {
        Transport::connect_for(conn, opts, ssh::Flow::Idle).await
    }

    async fn connect_for(
        conn: &Connection,
        opts: &SshOptions,
        flow: ssh::Flow,
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
                let fut = ssh::Ssh::connect(conn, opts, flow);
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
                // What came back: with hash first, a no-op's gather brings no file content.
                Ok(o) => match o.exit {
                    Some(c) => format!("exit {c}, {} bytes received", o.stdout.len()),
                    None => format!("no exit status, {} bytes received", o.stdout.len()),
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
                dead: None,
                commands: self.commands.clone(),
                trace: self.trace.clone(),
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
