//! Live trunks (`watch --events`): one SSH connection per PBX, through it an SSH
//! `direct-tcpip` channel to the PBX's own event socket (never exposed on the network),
//! FreeSWITCH's `sofia::gateway_state` events, and the state of every managed gateway kept
//! current the moment it changes: for the metrics page, the log, and a webhook when a trunk
//! leaves its healthy state and when it comes back. A PBX whose connection drops is shown
//! as unknown (never as healthy) and reconnected with backoff; the state is read again on
//! every connection.
//!
//! Per host: `freeswitch_esl` (`HOST:PORT` as the PBX reaches it, default
//! `127.0.0.1:8021`) and `freeswitch_esl_password` (default `ClueCon`; masked like any
//! secret).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Serialize;

use crate::freeswitch::esl::{Esl, EslError};
use crate::freeswitch::status::{self, Health};
use crate::host::transport::{SshOptions, Transport, TransportError};
use crate::inputs::inventory::Host;
use crate::printable::printable;

/// Webhook POSTs in flight at once. Each holds a socket for up to 5 s; a gateway flapping
/// thousands of times to a webhook that never answers once held one socket per flap and
/// exhausted the service's descriptors, so other PBXes failed with `Too many open files`.
pub const WEBHOOK_POSTS: usize = 4;
/// Alerts waiting for a free POST; beyond, the oldest is dropped (and counted in
/// `switchyard_webhook_dropped_total`): the newest state is the one worth telling.
pub const WEBHOOK_QUEUE: usize = 1000;

/// One managed gateway as the event socket last told it.
#[derive(Debug, Clone, Serialize)]
pub struct Gateway {
    /// One of [`status::GATEWAY_STATES`], or `UNKNOWN`.
    pub state: String,
    pub ping: String,
    /// `None`: unknown (no connection to the PBX).
    pub healthy: Option<bool>,
    pub changes: u64,
    /// When the state last changed (epoch seconds).
    pub since: f64,
    #[serde(skip)]
    registers: bool,
}

/// One PBX's event-socket connection.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub up: bool,
    pub disconnects: u64,
    /// States or ping statuses FreeSWITCH never says, shown as `UNKNOWN` instead.
    pub rejected: u64,
}

/// Every managed gateway of every PBX: (host, gateway) → state.
#[derive(Debug, Default)]
pub struct LiveState {
    pub gateways: BTreeMap<(String, String), Gateway>,
    pub hosts: BTreeMap<String, Connection>,
    pub webhook_dropped: u64,
}

fn vec_of<T: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    m: Result<T, prometheus::Error>,
) -> T {
    let m = m.expect("metric names and labels are constants");
    r.register(Box::new(m.clone()))
        .expect("each metric is registered once per page");
    m
}

impl LiveState {
    /// One PBX with one gateway, for listing the metrics this state produces.
    pub fn example() -> LiveState {
        let mut s = LiveState::default();
        s.hosts.insert("pbx1".into(), Connection::default());
        s.gateways.insert(
            ("pbx1".into(), "wavix".into()),
            Gateway {
                state: "REGED".into(),
                ping: "UP".into(),
                healthy: Some(true),
                changes: 1,
                since: 0.0,
                registers: true,
            },
        );
        s
    }

    /// The live gateways' metrics, into `r` (rendered by the Prometheus client library,
    /// which escapes every label value). `rejected` is shared with the round's readings.
    pub fn register(&self, r: &Registry, rejected: &IntCounterVec) {
        let g = |name: &str, help: &str, labels: &[&str]| {
            vec_of(r, IntGaugeVec::new(Opts::new(name, help), labels))
        };
        let state = g(
            "switchyard_gateway_state",
            "Managed gateway state from the PBX's event socket (1 for the current state; UNKNOWN without a connection or for a state FreeSWITCH never reports).",
            &["host", "gateway", "state"],
        );
        let healthy = g(
            "switchyard_gateway_healthy",
            "1 healthy, 0 not, -1 unknown.",
            &["host", "gateway"],
        );
        let since = g(
            "switchyard_gateway_last_change_timestamp_seconds",
            "When the gateway's state last changed.",
            &["host", "gateway"],
        );
        let changes = vec_of(
            r,
            IntCounterVec::new(
                Opts::new(
                    "switchyard_gateway_state_changes_total",
                    "Gateway state changes seen.",
                ),
                &["host", "gateway"],
            ),
        );
        for ((h, gw), v) in &self.gateways {
            state.with_label_values(&[h, gw, &v.state]).set(1);
            healthy.with_label_values(&[h, gw]).set(match v.healthy {
                Some(true) => 1,
                Some(false) => 0,
                None => -1,
            });
            since.with_label_values(&[h, gw]).set(v.since as i64);
            changes.with_label_values(&[h, gw]).inc_by(v.changes);
        }
        let up = g(
            "switchyard_event_socket_up",
            "1 while the PBX's event socket is connected and read.",
            &["host"],
        );
        let disconnects = vec_of(
            r,
            IntCounterVec::new(
                Opts::new(
                    "switchyard_event_socket_disconnects_total",
                    "Event-socket connections lost or cut (a PBX that broke a limit included).",
                ),
                &["host"],
            ),
        );
        for (h, c) in &self.hosts {
            up.with_label_values(&[h]).set(i64::from(c.up));
            disconnects.with_label_values(&[h]).inc_by(c.disconnects);
            if c.rejected > 0 {
                rejected.with_label_values(&[h]).inc_by(c.rejected);
            }
        }
        let dropped = vec_of(
            r,
            prometheus::IntCounter::new(
                "switchyard_webhook_dropped_total",
                "Trunk alerts dropped, oldest first, while the webhook was not keeping up.",
            ),
        );
        dropped.inc_by(self.webhook_dropped);
    }
}

/// One PBX to watch: its inventory entry and managed gateways (name, registers).
pub struct Target {
    pub host: Host,
    pub gateways: Vec<(String, bool)>,
}

pub struct LiveOptions {
    pub ssh: SshOptions,
    /// Where to POST each trunk alert.
    pub webhook: Option<crate::agent::webhook::Webhook>,
}

/// What every PBX's task shares.
struct Shared {
    o: Arc<LiveOptions>,
    state: Arc<Mutex<LiveState>>,
    hooks: Option<Arc<Hooks>>,
}

/// Trunk alerts waiting for the webhook: at most [`WEBHOOK_POSTS`] in flight, at most
/// [`WEBHOOK_QUEUE`] waiting.
struct Hooks {
    hook: crate::agent::webhook::Webhook,
    queue: Mutex<VecDeque<String>>,
    ready: tokio::sync::Notify,
}

impl Hooks {
    fn push(&self, body: String, state: &Mutex<LiveState>) {
        let dropped = {
            let mut q = self.queue.lock().expect("webhook queue");
            let dropped = q.len() >= WEBHOOK_QUEUE && q.pop_front().is_some();
            q.push_back(body);
            dropped
        };
        if dropped {
            let n = {
                let mut s = state.lock().expect("live state");
                s.webhook_dropped += 1;
                s.webhook_dropped
            };
            if n == 1 || n % 1000 == 0 {
                eprintln!(
                    "watch: webhook {}: not keeping up; {n} alert(s) dropped so far, oldest first",
                    self.hook.url()
                );
            }
        }
        self.ready.notify_one();
    }

    async fn worker(self: Arc<Self>) {
        loop {
            let next = self.queue.lock().expect("webhook queue").pop_front();
            match next {
                Some(body) => {
                    if let Err(e) = self.hook.post(body).await {
                        eprintln!(
                            "watch: webhook {}: {}",
                            self.hook.url(),
                            printable(&e.to_string())
                        );
                    }
                }
                None => self.ready.notified().await,
            }
        }
    }
}

/// Watch every target until the process ends.
pub fn spawn(targets: Vec<Target>, o: Arc<LiveOptions>, state: Arc<Mutex<LiveState>>) {
    {
        let mut s = state.lock().expect("live state");
        for t in &targets {
            s.hosts.entry(t.host.name.clone()).or_default();
            for (g, registers) in &t.gateways {
                s.gateways.insert(
                    (t.host.name.clone(), g.clone()),
                    Gateway {
                        state: "UNKNOWN".into(),
                        ping: String::new(),
                        healthy: None,
                        changes: 0,
                        since: crate::clock::now() as f64,
                        registers: *registers,
                    },
                );
            }
        }
    }
    let hooks = o.webhook.clone().map(|hook| {
        let h = Arc::new(Hooks {
            hook,
            queue: Mutex::new(VecDeque::new()),
            ready: tokio::sync::Notify::new(),
        });
        for _ in 0..WEBHOOK_POSTS {
            tokio::spawn(h.clone().worker());
        }
        h
    });
    let shared = Arc::new(Shared { o, state, hooks });
    for t in targets {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut backoff = 1u64;
            loop {
                let connected = std::sync::atomic::AtomicBool::new(false);
                let why = session(&t, &shared, &connected).await;
                unknown(&t, &shared);
                {
                    let mut s = shared.state.lock().expect("live state");
                    let c = s.hosts.entry(t.host.name.clone()).or_default();
                    c.up = false;
                    c.disconnects += 1;
                }
                // A PBX that broke a limit keeps its backoff growing: it is not let back in
                // every second to do it again.
                if connected.load(std::sync::atomic::Ordering::Relaxed) && !why.broke_limit() {
                    backoff = 1;
                }
                eprintln!(
                    "watch: {}: gateways UNKNOWN: {}; again in {backoff} s",
                    t.host.name,
                    printable(&why.to_string())
                );
                tokio::time::sleep(Duration::from_secs(backoff)).await;
                backoff = (backoff * 2).min(30);
            }
        });
    }
}

/// Why a PBX's live session ended (or never began).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A `connection: local` host names no event socket (see `esl_address`).
    #[error("host `{host}` is `connection: local` and names no event socket: set `freeswitch_esl` (and `freeswitch_esl_password`); switchyard never assumes the FreeSWITCH on this machine is this host's")]
    NoEventSocket { host: String },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Esl(#[from] EslError),
}

impl LiveError {
    /// The PBX broke one of the event socket's limits (its backoff keeps growing).
    fn broke_limit(&self) -> bool {
        matches!(self, LiveError::Esl(EslError::Limit(_)))
    }
}

/// The PBX's event socket through an SSH `direct-tcpip` channel of `tr`, authenticated.
pub async fn open_esl(
    tr: &mut Transport,
    host: &Host,
) -> Result<Esl<crate::host::transport::Tunnel>, LiveError> {
    let (addr, port) = esl_address(host)?;
    let stream = tr.tunnel(&addr, port).await?;
    let password = host
        .vars
        .get("freeswitch_esl_password")
        .and_then(|v| v.as_str())
        .unwrap_or("ClueCon");
    Ok(Esl::connect(stream, password).await?)
}

/// Where the host's event socket listens, as seen from the host: `freeswitch_esl`, else
/// `127.0.0.1:8021` *on the PBX* (through the SSH channel, FreeSWITCH's default).
///
/// *Decision*: a `connection: local` host must say where its FreeSWITCH is. There the
/// default would be this machine's own port 8021: the demo fleet (local hosts) once sent
/// `rescan` and reloads to whatever FreeSWITCH the operator runs on their laptop.
fn esl_address(h: &Host) -> Result<(String, u16), LiveError> {
    let v = match h.vars.get("freeswitch_esl").and_then(|v| v.as_str()) {
        Some(v) => v,
        None if h.connection.kind == crate::inputs::inventory::ConnectionKind::Local => {
            return Err(LiveError::NoEventSocket {
                host: h.name.clone(),
            })
        }
        None => "127.0.0.1:8021",
    };
    Ok(match v.rsplit_once(':') {
        Some((a, p)) => (a.to_string(), p.parse().unwrap_or(8021)),
        None => (v.to_string(), 8021),
    })
}

/// A state and ping status as a PBX told them, reduced to what FreeSWITCH can say: anything
/// else is `UNKNOWN` (never healthy) and counted against the host.
fn sanitize(t: &Target, sh: &Shared, state: &str, ping: &str) -> (&'static str, &'static str) {
    let ping = if ping.is_empty() {
        Some("")
    } else {
        status::known_ping(ping)
    };
    match (status::known_state(state), ping) {
        (Some(s), Some(p)) => (s, p),
        _ => {
            let mut s = sh.state.lock().expect("live state");
            s.hosts.entry(t.host.name.clone()).or_default().rejected += 1;
            ("UNKNOWN", "")
        }
    }
}

/// One connection's life, until it ends: why.
async fn session(t: &Target, sh: &Shared, connected: &std::sync::atomic::AtomicBool) -> LiveError {
    let mut tr = match Transport::connect_idle(&t.host.connection, &sh.o.ssh).await {
        Ok(tr) => tr,
        Err(e) => return e.into(),
    };
    let mut esl = match open_esl(&mut tr, &t.host).await {
        Ok(e) => e,
        Err(why) => return why,
    };
    // Subscribe first, then read the state: a change in between is not lost.
    if let Err(e) = esl.send("event plain CUSTOM sofia::gateway_state").await {
        return e.into();
    }
    for (g, _) in &t.gateways {
        match esl.api(&format!("sofia xmlstatus gateway {g}")).await {
            Ok(x) => {
                if let Ok(s) = status::parse_xmlstatus(g, &x) {
                    let (st, ping) = sanitize(t, sh, &s.state, &s.status);
                    update(t, sh, g, st, ping);
                }
            }
            Err(e) => return e.into(),
        }
    }
    connected.store(true, std::sync::atomic::Ordering::Relaxed);
    sh.state
        .lock()
        .expect("live state")
        .hosts
        .entry(t.host.name.clone())
        .or_default()
        .up = true;
    loop {
        let e = match esl.event().await {
            Ok(e) => e,
            Err(e) => return e.into(),
        };
        if e.header("Event-Subclass") != Some("sofia::gateway_state") {
            continue;
        }
        let (Some(g), Some(st)) = (e.header("Gateway"), e.header("State")) else {
            continue;
        };
        if !t.gateways.iter().any(|(n, _)| n == g) {
            continue;
        }
        let (st, ping) = sanitize(t, sh, st, e.header("Ping-Status").unwrap_or(""));
        update(t, sh, g, st, ping);
    }
}

/// Every gateway of a PBX whose connection dropped: unknown, never healthy.
fn unknown(t: &Target, sh: &Shared) {
    for (g, _) in &t.gateways {
        update(t, sh, g, "UNKNOWN", "");
    }
}

/// Record a gateway's state (`st` and `ping` already reduced to what FreeSWITCH says).
fn update(t: &Target, sh: &Shared, g: &str, st: &str, ping: &str) {
    let alert = {
        let mut s = sh.state.lock().expect("live state");
        let Some(v) = s.gateways.get_mut(&(t.host.name.clone(), g.to_string())) else {
            return;
        };
        let healthy = if st == "UNKNOWN" {
            None
        } else {
            let gs = status::GatewayStatus {
                name: g.into(),
                state: st.into(),
                status: if ping.is_empty() {
                    "UP".into()
                } else {
                    ping.into()
                },
                retry: None,
                ping_freq: 0,
                ping_count: 0,
            };
            Some(gs.health(v.registers) == Health::Healthy)
        };
        let changed = v.state != st || v.ping != ping;
        let was = v.healthy;
        if changed {
            v.state = st.to_string();
            v.ping = ping.to_string();
            v.changes += 1;
            v.since = crate::clock::now() as f64;
        }
        v.healthy = healthy;
        match (was, healthy) {
            (Some(a), Some(b)) if a != b => Some(b),
            (None, Some(false)) => Some(false),
            _ => None,
        }
    };
    if let Some(up) = alert {
        let what = if up {
            "is healthy again"
        } else {
            "left its healthy state"
        };
        eprintln!(
            "watch: {}: gateway {} {what}: {st} {ping}",
            t.host.name,
            printable(g)
        );
        if let Some(hooks) = &sh.hooks {
            let body = serde_json::json!({
                "host": t.host.name, "gateway": g, "state": st, "ping": ping,
                "healthy": up, "at": crate::clock::now(),
            })
            .to_string();
            hooks.push(body, &sh.state);
        }
    }
}
