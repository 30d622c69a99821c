//! SSH through russh: one connection per host, host keys checked against known_hosts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::client::{self, Handle};
use russh::keys::{self, HashAlg, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, Disconnect};

use super::known_hosts::KnownHostsError;
use super::{Held, Output, SshOptions, TransportError};
use crate::inputs::inventory::Connection;

#[derive(Debug)]
enum KeyProblem {
    Unknown(String),
    Changed(usize),
    Revoked(usize),
    KnownHosts(KnownHostsError),
}

struct Checker {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    accept_new: bool,
    problem: Arc<Mutex<Option<KeyProblem>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.problem.lock().expect("lock") =
                Some(KeyProblem::KnownHosts(KnownHostsError::Certificate));
            return Ok(false);
        };
        let verdict = check_key(
            &self.host,
            self.port,
            key,
            &self.known_hosts,
            self.accept_new,
        );
        match verdict {
            Ok(()) => Ok(true),
            Err(p) => {
                *self.problem.lock().expect("lock") = Some(p);
                Ok(false)
            }
        }
    }
}

fn check_key(
    host: &str,
    port: u16,
    key: &PublicKey,
    path: &Path,
    accept_new: bool,
) -> Result<(), KeyProblem> {
    use super::known_hosts::Verdict;
    match super::known_hosts::check(path, host, port, key).map_err(KeyProblem::KnownHosts)? {
        Verdict::Known => Ok(()),
        Verdict::Revoked(line) => Err(KeyProblem::Revoked(line)),
        // Any key on record for the host, of any type: a different one is a changed key,
        // never a new one (even with --accept-new-host-keys).
        Verdict::Changed(lines) => Err(KeyProblem::Changed(lines[0])),
        Verdict::CertificateOnly(lines) => {
            Err(KeyProblem::KnownHosts(KnownHostsError::CertificateOnly {
                path: path.to_path_buf(),
                lines,
            }))
        }
        Verdict::Unknown if accept_new => {
            super::known_hosts::learn(path, host, port, key).map_err(KeyProblem::KnownHosts)
        }
        Verdict::Unknown => Err(KeyProblem::Unknown(
            key.fingerprint(HashAlg::Sha256).to_string(),
        )),
    }
}

pub struct Ssh {
    handle: Handle<Checker>,
    /// Jump-host connections this one tunnels through, kept alive with it.
    _jumps: Vec<Handle<Checker>>,
}

/// What a connection carries, which decides how much the host may send ahead of what was
/// read (russh's flow control) and so what a connection can cost the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Commands and their answers (gathers of whole conf trees, writes): russh's defaults,
    /// a 2 MiB window of 32 KiB packets, 100 messages queued per channel.
    Bulk,
    /// One mostly idle stream (`watch --events`: a gateway state change now and then, held
    /// for days on every PBX at once): see [`IDLE_WINDOW`].
    Idle,
}

/// *Decision*: an event channel lets its PBX send at most 64 KiB ahead of what the
/// controller read, in packets of at most 8 KiB, 16 of them queued: an event is a few
/// hundred bytes and is read as it comes, so this never slows one, and a PBX that floods
/// (or a burst on 2,000 PBXes at once) is held back on its own side instead of growing the
/// controller by up to 2 MiB per connection. The read buffer grows to the largest packet
/// and stays that size, so smaller packets keep it small too.
const IDLE_WINDOW: u32 = 64 * 1024;
const IDLE_PACKET: u32 = 8 * 1024;
const IDLE_CHANNEL_MESSAGES: usize = 16;

fn config(known: &[russh::keys::Algorithm], flow: Flow) -> Arc<client::Config> {
    // russh's default algorithm order: ML-KEM768+X25519 (post-quantum, cheap) when the
    // server offers it, else curve25519-sha256; it has no sntrup761, whose client-side
    // cost (about 150 ms CPU per connection) dominates OpenSSH's own default.
    let mut preferred = russh::Preferred::default();
    if !known.is_empty() {
        // Ask first for the host key types known_hosts has for this host (as OpenSSH
        // does), so a host with several keys presents the one on record.
        let mut keys: Vec<russh::keys::Algorithm> = known.to_vec();
        keys.extend(preferred.key.iter().filter(|a| !known.contains(a)).cloned());
        preferred.key = keys.into();
    }
    let defaults = client::Config::default();
    let (window_size, maximum_packet_size, channel_buffer_size) = match flow {
        Flow::Bulk => (
            defaults.window_size,
            defaults.maximum_packet_size,
            defaults.channel_buffer_size,
        ),
        Flow::Idle => (IDLE_WINDOW, IDLE_PACKET, IDLE_CHANNEL_MESSAGES),
    };
    Arc::new(client::Config {
        inactivity_timeout: None,
        nodelay: true,
        preferred,
        window_size,
        maximum_packet_size,
        channel_buffer_size,
        ..defaults
    })
}

/// `user@host:port` → parts (user defaults to the target's, port to 22).
fn parse_jump(spec: &str, default_user: &str) -> (String, String, u16) {
    let (user, rest) = spec
        .split_once('@')
        .map(|(u, r)| (u.to_string(), r))
        .unwrap_or((default_user.to_string(), spec));
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse().unwrap_or(22)),
        _ => (rest.to_string(), 22),
    };
    (user, host, port)
}

impl Ssh {
    pub async fn connect(
        conn: &Connection,
        opts: &SshOptions,
        flow: Flow,
    ) -> Result<Ssh, TransportError> {
        let mut hops: Vec<(String, String, u16)> = conn
            .jump
            .iter()
            .map(|j| parse_jump(j, &conn.user))
            .collect();
        hops.push((conn.user.clone(), conn.address.clone(), conn.port));
        let mut jumps: Vec<Handle<Checker>> = Vec::new();
        for (i, (user, host, port)) in hops.iter().enumerate() {
            let problem = Arc::new(Mutex::new(None));
            let checker = Checker {
                host: host.clone(),
                port: *port,
                known_hosts: opts.known_hosts.clone(),
                accept_new: opts.accept_new_host_keys,
                problem: problem.clone(),
            };
            let addr = format!("{host}:{port}");
            let cfg = config(
                &super::known_hosts::known_algorithms(&opts.known_hosts, host, *port),
                flow,
            );
            let result = match jumps.last() {
                None => client::connect(cfg, (host.as_str(), *port), checker).await,
                Some(prev) => {
                    let ch = prev
                        .channel_open_direct_tcpip(host.clone(), *port as u32, "127.0.0.1", 0)
                        .await
                        .map_err(|source| TransportError::Jump {
                            addr: addr.clone(),
                            jump: hops[i - 1].1.clone(),
                            source: Box::new(source),
                        })?;
                    client::connect_stream(cfg, ch.into_stream(), checker).await
                }
            };
            let mut handle = match result {
                Ok(h) => h,
                Err(e) => {
                    let p = problem.lock().expect("lock").take();
                    return Err(match p {
                        Some(KeyProblem::Unknown(fingerprint)) => TransportError::UnknownHostKey {
                            host: addr,
                            fingerprint,
                            known_hosts: opts.known_hosts.clone(),
                        },
                        Some(KeyProblem::Changed(line)) => TransportError::ChangedHostKey {
                            host: addr,
                            line,
                            known_hosts: opts.known_hosts.clone(),
                        },
                        Some(KeyProblem::Revoked(line)) => TransportError::RevokedHostKey {
                            host: addr,
                            line,
                            known_hosts: opts.known_hosts.clone(),
                        },
                        Some(KeyProblem::KnownHosts(k)) => TransportError::KnownHosts(Box::new(k)),
                        None => TransportError::Connect {
                            addr,
                            source: Box::new(e),
                        },
                    });
                }
            };
            authenticate(&mut handle, user, conn.key_file.as_deref()).await?;
            jumps.push(handle);
        }
        let handle = jumps.pop().expect("at least the target");
        Ok(Ssh {
            handle,
            _jumps: jumps,
        })
    }

    /// Run `cmd`, reading at most `max` bytes of answer: beyond that the channel is closed
    /// (the host's `timeout` and SIGPIPE end the command) and the answer refused.
    pub async fn exec(
        &mut self,
        cmd: &str,
        stdin: &[u8],
        max: usize,
    ) -> Result<Output, TransportError> {
        let mut ch = self.handle.channel_open_session().await?;
        ch.exec(true, cmd).await?;
        if !stdin.is_empty() {
            ch.data(stdin).await?;
        }
        ch.eof().await?;
        let mut out = Output {
            stdout: Vec::new(),
            stderr: Vec::new(),
            exit: None,
        };
        // Read until the channel closes, not just until EOF or the exit status: data can
        // still follow either.
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => out.exit = Some(exit_status),
                _ => {}
            }
            if out.stdout.len() + out.stderr.len() > max {
                let _ = ch.close().await;
                return Err(TransportError::TooLarge { max });
            }
        }
        Ok(out)
    }

    /// Start `cmd` and wait for its first line of output; the channel stays open (and the
    /// command running) until the returned guard is released or the connection ends.
    pub async fn hold(&mut self, cmd: &str) -> Result<(String, Held), TransportError> {
        let mut ch = self.handle.channel_open_session().await?;
        ch.exec(true, cmd).await?;
        // Only stdout decides: stderr arrives on its own stream, in no fixed order with it,
        // and is reported only when no line came.
        // Bounded while reading, as every answer from a host: the lock's first line is a few
        // dozen bytes; a host that sends more without a line break is cut at this size.
        const MAX_LINE: usize = 4096;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    let room = MAX_LINE.saturating_sub(out.len());
                    out.extend_from_slice(&data[..data.len().min(room)]);
                    if out.contains(&b'\n') || out.len() >= MAX_LINE {
                        break;
                    }
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    let room = MAX_LINE.saturating_sub(err.len());
                    err.extend_from_slice(&data[..data.len().min(room)]);
                }
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => {}
            }
        }
        if out.is_empty() {
            out = err;
        }
        Ok((String::from_utf8_lossy(&out).into_owned(), Held::Ssh(ch)))
    }

    /// A TCP connection to `host:port` as seen from the host (`direct-tcpip`): the event
    /// socket on the PBX's own loopback is reached without ever being exposed.
    pub async fn tunnel(
        &mut self,
        host: &str,
        port: u16,
    ) -> Result<russh::ChannelStream<russh::client::Msg>, TransportError> {
        let ch = self
            .handle
            .channel_open_direct_tcpip(host, port as u32, "127.0.0.1", 0)
            .await
            .map_err(|source| TransportError::Tunnel {
                target: format!("{host}:{port}"),
                source: Box::new(source),
            })?;
        Ok(ch.into_stream())
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

async fn authenticate(
    handle: &mut Handle<Checker>,
    user: &str,
    key_file: Option<&Path>,
) -> Result<(), TransportError> {
    let mut tried = Vec::new();
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    let mut candidates: Vec<PathBuf> = Vec::new();
    match key_file {
        Some(k) => candidates.push(expand_home(k)),
        None => {
            // ssh-agent first, as OpenSSH does.
            if std::env::var_os("SSH_AUTH_SOCK").is_some() {
                tried.push("ssh-agent".to_string());
                if let Ok(mut agent) = keys::agent::client::AgentClient::connect_env().await {
                    if let Ok(ids) = agent.request_identities().await {
                        for id in ids {
                            let pk = id.public_key().into_owned();
                            if let Ok(r) = handle
                                .authenticate_publickey_with(user, pk, rsa_hash, &mut agent)
                                .await
                            {
                                if r.success() {
                                    return Ok(());
                                }
                            }
                        }
                    }
                }
            }
            if let Some(home) = std::env::var_os("HOME") {
                for n in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                    let p = PathBuf::from(&home).join(".ssh").join(n);
                    if p.is_file() {
                        candidates.push(p);
                    }
                }
            }
        }
    }
    for path in candidates {
        tried.push(path.display().to_string());
        let key = keys::load_secret_key(&path, None).map_err(|source| TransportError::Key {
            path: path.clone(),
            source: Box::new(source),
        })?;
        let r = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash))
            .await?;
        if r.success() {
            return Ok(());
        }
    }
    Err(TransportError::Auth {
        user: user.to_string(),
        tried: if tried.is_empty() {
            "no keys found".into()
        } else {
            tried.join(", ")
        },
    })
}

fn expand_home(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(rest))
            .unwrap_or_else(|| p.to_path_buf()),
        Err(_) => p.to_path_buf(),
    }
}
