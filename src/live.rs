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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::freeswitch::esl::Esl;
use crate::freeswitch::status::{self, Health};
use crate::inventory::Host;
use crate::transport::{SshOptions, Transport};

/// One managed gateway as the event socket last told it.
#[derive(Debug, Clone, Serialize)]
pub struct Gateway {
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

/// Every managed gateway of every PBX: (host, gateway) → state.
#[derive(Debug, Default)]
pub struct LiveState {
    pub gateways: BTreeMap<(String, String), Gateway>,
}

impl LiveState {
    /// Prometheus lines for the live gateways.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "# HELP switchyard_gateway_state Managed gateway state from the PBX's event socket (1 for the current state; UNKNOWN without a connection).\n# TYPE switchyard_gateway_state gauge");
        for ((h, g), v) in &self.gateways {
            let _ = writeln!(
                s,
                "switchyard_gateway_state{{host=\"{h}\",gateway=\"{g}\",state=\"{}\"}} 1",
                v.state
            );
        }
        let _ = writeln!(s, "# HELP switchyard_gateway_healthy 1 healthy, 0 not, -1 unknown.\n# TYPE switchyard_gateway_healthy gauge");
        for ((h, g), v) in &self.gateways {
            let x = match v.healthy {
                Some(true) => 1,
                Some(false) => 0,
                None => -1,
            };
            let _ = writeln!(
                s,
                "switchyard_gateway_healthy{{host=\"{h}\",gateway=\"{g}\"}} {x}"
            );
        }
        let _ = writeln!(s, "# HELP switchyard_gateway_state_changes_total Gateway state changes seen.\n# TYPE switchyard_gateway_state_changes_total counter");
        for ((h, g), v) in &self.gateways {
            let _ = writeln!(
                s,
                "switchyard_gateway_state_changes_total{{host=\"{h}\",gateway=\"{g}\"}} {}",
                v.changes
            );
        }
        let _ = writeln!(s, "# HELP switchyard_gateway_last_change_timestamp_seconds When the gateway's state last changed.\n# TYPE switchyard_gateway_last_change_timestamp_seconds gauge");
        for ((h, g), v) in &self.gateways {
            let _ = writeln!(s, "switchyard_gateway_last_change_timestamp_seconds{{host=\"{h}\",gateway=\"{g}\"}} {:.0}", v.since);
        }
        s
    }
}

/// One PBX to watch: its inventory entry and managed gateways (name, registers).
pub struct Target {
    pub host: Host,
    pub gateways: Vec<(String, bool)>,
}

pub struct LiveOptions {
    pub ssh: SshOptions,
    /// `http://host:port/path` to POST each trunk alert to.
    pub webhook: Option<String>,
}

/// Watch every target until the process ends.
pub fn spawn(targets: Vec<Target>, o: Arc<LiveOptions>, state: Arc<Mutex<LiveState>>) {
    {
        let mut s = state.lock().expect("live state");
        for t in &targets {
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
    for t in targets {
        let (o, state) = (o.clone(), state.clone());
        tokio::spawn(async move {
            let mut backoff = 1u64;
            loop {
                let connected = std::sync::atomic::AtomicBool::new(false);
                let why = session(&t, &o, &state, &connected).await;
                unknown(&t, &o, &state);
                if connected.load(std::sync::atomic::Ordering::Relaxed) {
                    backoff = 1;
                }
                eprintln!(
                    "watch: {}: event socket: {why}; again in {backoff} s",
                    t.host.name
                );
                tokio::time::sleep(Duration::from_secs(backoff)).await;
                backoff = (backoff * 2).min(30);
            }
        });
    }
}

/// The PBX's event socket through an SSH `direct-tcpip` channel of `tr`, authenticated.
pub async fn open_esl(
    tr: &mut Transport,
    host: &Host,
) -> Result<Esl<crate::transport::Tunnel>, String> {
    let (addr, port) = esl_address(host);
    let stream = tr.tunnel(&addr, port).await.map_err(|e| e.to_string())?;
    let password = host
        .vars
        .get("freeswitch_esl_password")
        .and_then(|v| v.as_str())
        .unwrap_or("ClueCon")
        .to_string();
    Esl::connect(stream, &password)
        .await
        .map_err(|e| e.to_string())
}

fn esl_address(h: &Host) -> (String, u16) {
    let v = h
        .vars
        .get("freeswitch_esl")
        .and_then(|v| v.as_str())
        .unwrap_or("127.0.0.1:8021");
    match v.rsplit_once(':') {
        Some((a, p)) => (a.to_string(), p.parse().unwrap_or(8021)),
        None => (v.to_string(), 8021),
    }
}

async fn session(
    t: &Target,
    o: &LiveOptions,
    state: &Arc<Mutex<LiveState>>,
    connected: &std::sync::atomic::AtomicBool,
) -> String {
    let mut tr = match Transport::connect(&t.host.connection, &o.ssh).await {
        Ok(tr) => tr,
        Err(e) => return e.to_string(),
    };
    let mut esl = match open_esl(&mut tr, &t.host).await {
        Ok(e) => e,
        Err(e) => return e,
    };
    // Subscribe first, then read the state: a change in between is not lost.
    if let Err(e) = esl.send("event plain CUSTOM sofia::gateway_state").await {
        return e.to_string();
    }
    for (g, _) in &t.gateways {
        match esl.api(&format!("sofia xmlstatus gateway {g}")).await {
            Ok(x) => {
                if let Ok(s) = status::parse_xmlstatus(g, &x) {
                    update(t, o, state, g, &s.state, &s.status);
                }
            }
            Err(e) => return e.to_string(),
        }
    }
    connected.store(true, std::sync::atomic::Ordering::Relaxed);
    loop {
        let e = match esl.event().await {
            Ok(e) => e,
            Err(e) => return e.to_string(),
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
        let ping = e.header("Ping-Status").unwrap_or("");
        update(t, o, state, g, st, ping);
    }
}

/// Every gateway of a PBX whose connection dropped: unknown, never healthy.
fn unknown(t: &Target, o: &LiveOptions, state: &Arc<Mutex<LiveState>>) {
    for (g, _) in &t.gateways {
        update(t, o, state, g, "UNKNOWN", "");
    }
}

fn update(
    t: &Target,
    o: &LiveOptions,
    state: &Arc<Mutex<LiveState>>,
    g: &str,
    st: &str,
    ping: &str,
) {
    let alert = {
        let mut s = state.lock().expect("live state");
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
                    ping.trim_end_matches(" (ping)").into()
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
        eprintln!("watch: {}: gateway {g} {what}: {st} {ping}", t.host.name);
        if let Some(url) = &o.webhook {
            let body = serde_json::json!({
                "host": t.host.name, "gateway": g, "state": st, "ping": ping,
                "healthy": up, "at": crate::clock::now(),
            })
            .to_string();
            let url = url.clone();
            tokio::spawn(async move {
                if let Err(e) = post(&url, &body).await {
                    eprintln!("watch: webhook {url}: {e}");
                }
            });
        }
    }
}

/// `http://host:port/path` → (host:port, path); anything else is refused up front.
pub fn parse_webhook(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("--webhook `{url}`: only http:// URLs (a local relay for anything else)")
    })?;
    let (hostport, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    if hostport.is_empty() {
        return Err(format!("--webhook `{url}`: no host"));
    }
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    Ok((hostport, path))
}

/// POST `body` as JSON; succeeds on a 2xx answer.
async fn post(url: &str, body: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (hostport, path) = parse_webhook(url)?;
    let io = async {
        let mut s = tokio::net::TcpStream::connect(&hostport)
            .await
            .map_err(|e| e.to_string())?;
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp).await;
        let line = String::from_utf8_lossy(&resp)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        if line
            .split_whitespace()
            .nth(1)
            .is_some_and(|c| c.starts_with('2'))
        {
            Ok(())
        } else {
            Err(format!("answered `{line}`"))
        }
    };
    tokio::time::timeout(Duration::from_secs(5), io)
        .await
        .map_err(|_| "no answer within 5 s".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        assert_eq!(
            parse_webhook("http://127.0.0.1:9000/hook").unwrap(),
            ("127.0.0.1:9000".into(), "/hook".into())
        );
        assert_eq!(
            parse_webhook("http://alerts.example").unwrap(),
            ("alerts.example:80".into(), "/".into())
        );
        assert!(parse_webhook("https://x").is_err());
    }
}
