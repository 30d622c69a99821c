//! `switchyard watch`: a long-lived drift agent.
//!
//! Each round re-reads the inventory and playbook, checks every host (the same pipeline as
//! `drift`, stopped after the plan, plus one read of each managed gateway's state), and with
//! `--fix` corrects drifted hosts through the normal apply path. Rounds never overlap; a
//! round in progress is finished before a SIGTERM or SIGINT stops the agent, so no host is
//! left between a write and its reload. It keeps no state of its own (the hosts' records
//! and the history file survive restarts). The latest results are served as Prometheus
//! metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::inventory::Inventory;
use crate::outcome::{HostReport, HostStatus, Mode, OnEvent, PlayReport};
use crate::plan::Difference;
use crate::playbook::Playbook;
use crate::run::{self, RunOptions};
use crate::vault::Vault;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub struct WatchOptions {
    pub inventory: Vec<PathBuf>,
    pub playbook: PathBuf,
    /// Every round re-reads the inventory, vault-encrypted values included.
    pub vault: Vault,
    /// `-e` variables, applied over the inventory every round.
    pub extra_vars: crate::inventory::Vars,
    pub every: Duration,
    pub jitter: Duration,
    pub fix: bool,
    pub listen: Option<SocketAddr>,
    pub history: Option<PathBuf>,
    /// History retention in seconds (`--keep`).
    pub keep: Option<u64>,
    /// Stop after this many rounds (for tests and one-shot timers).
    pub rounds: Option<u64>,
    /// Keep each PBX's gateway states current from its event socket (`--events`).
    pub events: bool,
    /// POST trunk alerts here (`--webhook`).
    pub webhook: Option<String>,
    pub run: RunOptions,
}

#[derive(Debug, Default)]
struct Metrics {
    rounds: u64,
    round_failures: u64,
    last_round: f64,
    last_duration: f64,
    hosts_checked: u64,
    hosts_drifted: u64,
    hosts_unreachable: u64,
    files_drifted: u64,
    files_pending: u64,
    corrections: u64,
    failures: u64,
    gateways: BTreeMap<(String, String), String>,
}

impl Metrics {
    fn render(&self) -> String {
        let mut s = String::new();
        let mut g = |name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(s, "# HELP switchyard_{name} {help}\n# TYPE switchyard_{name} {kind}\nswitchyard_{name} {v}");
        };
        g(
            "rounds_total",
            "counter",
            "Drift rounds completed.",
            self.rounds.to_string(),
        );
        g(
            "round_failures_total",
            "counter",
            "Rounds that could not run (bad inventory or playbook).",
            self.round_failures.to_string(),
        );
        g(
            "last_round_timestamp_seconds",
            "gauge",
            "End of the last round (epoch seconds).",
            format!("{:.0}", self.last_round),
        );
        g(
            "last_round_duration_seconds",
            "gauge",
            "Duration of the last round.",
            format!("{:.3}", self.last_duration),
        );
        g(
            "hosts_checked",
            "gauge",
            "Hosts checked in the last round.",
            self.hosts_checked.to_string(),
        );
        g(
            "hosts_drifted",
            "gauge",
            "Hosts with drift in the last round.",
            self.hosts_drifted.to_string(),
        );
        g(
            "hosts_unreachable",
            "gauge",
            "Hosts unreachable or failing in the last round.",
            self.hosts_unreachable.to_string(),
        );
        g(
            "files_drifted",
            "gauge",
            "Files changed on hosts since switchyard wrote them.",
            self.files_drifted.to_string(),
        );
        g(
            "files_pending",
            "gauge",
            "Files whose playbook or inventory changed since they were written.",
            self.files_pending.to_string(),
        );
        g(
            "corrections_total",
            "counter",
            "Hosts corrected by --fix.",
            self.corrections.to_string(),
        );
        g(
            "failures_total",
            "counter",
            "Host failures (check or correction).",
            self.failures.to_string(),
        );
        let _ = writeln!(s, "# HELP switchyard_gateway_state Managed gateway state at the last round (1 for the current state).\n# TYPE switchyard_gateway_state gauge");
        for ((host, gw), state) in &self.gateways {
            let _ = writeln!(
                s,
                "switchyard_gateway_state{{host=\"{host}\",gateway=\"{gw}\",state=\"{state}\"}} 1"
            );
        }
        s
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Mutex<String>>,
    live: Option<Arc<Mutex<crate::live::LiveState>>>,
) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        let live = live.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if req.starts_with("GET /metrics ") || req.starts_with("GET / ") {
                let mut text = metrics.lock().expect("metrics lock").clone();
                // Live gateway states are rendered at request time: current to the event.
                if let Some(l) = &live {
                    text.push_str(&l.lock().expect("live state").render());
                }
                ("200 OK", text)
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return max;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    Duration::from_millis((nanos / 1000) % (max.as_millis() as u64 + 1))
}

/// One round: check, optionally fix; returns the reports (check, then fix).
async fn round(
    o: &WatchOptions,
    m: &mut Metrics,
) -> Result<(Vec<PlayReport>, Vec<PlayReport>), BoxError> {
    let mut inv = Inventory::load_all(&o.inventory, &o.vault)?;
    inv.override_vars(&o.extra_vars)?;
    let pb = Playbook::load(&o.playbook)?;
    let quiet: OnEvent = Arc::new(|_| {});
    let mut checks = Vec::new();
    let mut fixes = Vec::new();
    let check_opts = RunOptions {
        mode: Mode::Check,
        gateway_snapshot: true,
        ..o.run.clone()
    };
    for play in &pb.plays {
        let report = run::run_play(&inv, &pb, play, &check_opts, quiet.clone()).await?;
        let drifted: Vec<String> = report
            .hosts
            .iter()
            .filter(|h| h.has_drift())
            .map(|h| h.host.clone())
            .collect();
        if o.fix && !drifted.is_empty() {
            let fix_opts = RunOptions {
                mode: Mode::Apply,
                limit: Some(drifted.join(":")),
                ..o.run.clone()
            };
            match run::run_play(&inv, &pb, play, &fix_opts, quiet.clone()).await {
                Ok(f) => {
                    m.corrections += f
                        .hosts
                        .iter()
                        .filter(|h| h.status == HostStatus::Changed)
                        .count() as u64;
                    m.failures += f.hosts.iter().filter(|h| h.status.is_failure()).count() as u64;
                    fixes.push(f);
                }
                Err(e) => {
                    m.failures += drifted.len() as u64;
                    eprintln!("watch: correction refused: {e}");
                }
            }
        }
        checks.push(report);
    }
    Ok((checks, fixes))
}

/// The PBXes and managed gateways `--events` watches: every host of every play, with the
/// gateways its rendered configuration defines.
fn live_targets(o: &WatchOptions) -> Result<Vec<crate::live::Target>, BoxError> {
    let mut inv = Inventory::load_all(&o.inventory, &o.vault)?;
    inv.override_vars(&o.extra_vars)?;
    let pb = Playbook::load(&o.playbook)?;
    let mut out: Vec<crate::live::Target> = Vec::new();
    for play in &pb.plays {
        for (h, d) in run::desired_states(&inv, &pb, play, o.run.limit.as_deref()) {
            let d = d.map_err(|e| format!("{}: {e}", h.name))?;
            let gateways: Vec<(String, bool)> = crate::plan::managed_gateways(
                d.files
                    .iter()
                    .filter(|f| !f.absent)
                    .map(|f| (f.rel.as_str(), f.base.as_deref())),
            )
            .into_iter()
            .map(|g| (g.name, g.registers))
            .collect();
            if !gateways.is_empty() && !out.iter().any(|t| t.host.name == h.name) {
                out.push(crate::live::Target {
                    host: h.clone(),
                    gateways,
                });
            }
        }
    }
    Ok(out)
}

pub async fn watch(o: WatchOptions) -> Result<(), BoxError> {
    let text = Arc::new(Mutex::new(Metrics::default().render()));
    let live = if o.events {
        let state = Arc::new(Mutex::new(crate::live::LiveState::default()));
        let targets = live_targets(&o)?;
        eprintln!(
            "watch: events from {} PBX(es), {} gateway(s)",
            targets.len(),
            targets.iter().map(|t| t.gateways.len()).sum::<usize>()
        );
        crate::live::spawn(
            targets,
            Arc::new(crate::live::LiveOptions {
                ssh: o.run.ssh.clone(),
                webhook: o.webhook.clone(),
            }),
            state.clone(),
        );
        Some(state)
    } else {
        None
    };
    if let Some(addr) = o.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        eprintln!(
            "watch: metrics on http://{}/metrics",
            listener.local_addr()?
        );
        tokio::spawn(serve(listener, text.clone(), live.clone()));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut m = Metrics::default();
    loop {
        let started = Instant::now();
        // A round is never interrupted: a signal during it is handled when it ends.
        let result = round(&o, &mut m).await;
        m.rounds += 1;
        m.last_round = crate::clock::now() as f64;
        m.last_duration = started.elapsed().as_secs_f64();
        match result {
            Ok((checks, fixes)) => {
                let hosts: Vec<&HostReport> = checks.iter().flat_map(|p| &p.hosts).collect();
                m.hosts_checked = hosts.len() as u64;
                m.hosts_drifted = hosts.iter().filter(|h| h.has_drift()).count() as u64;
                m.hosts_unreachable = hosts.iter().filter(|h| h.status.is_failure()).count() as u64;
                m.failures += m.hosts_unreachable;
                let files = hosts.iter().flat_map(|h| &h.files);
                m.files_drifted = files
                    .clone()
                    .filter(|f| f.difference == Some(Difference::Drift))
                    .count() as u64;
                m.files_pending = files
                    .filter(|f| f.difference == Some(Difference::Pending))
                    .count() as u64;
                m.gateways.clear();
                for h in &hosts {
                    for g in &h.gateways {
                        m.gateways
                            .insert((h.host.clone(), g.name.clone()), g.state.clone());
                    }
                }
                eprintln!(
                    "watch: round {}: {} hosts, {} drifted ({} files), {} pending files, {} unreachable/failed, {} corrected",
                    m.rounds,
                    m.hosts_checked,
                    m.hosts_drifted,
                    m.files_drifted,
                    m.files_pending,
                    m.hosts_unreachable,
                    fixes.iter().flat_map(|p| &p.hosts).filter(|h| h.status == HostStatus::Changed).count()
                );
                if let Some(path) = &o.history {
                    let record = |kind, plays: &[crate::outcome::PlayReport]| {
                        if let Err(e) = crate::history::record(path, o.keep, kind, plays) {
                            eprintln!("watch: cannot record history: {e}");
                        }
                    };
                    record("drift", &checks);
                    if !fixes.is_empty() {
                        record("fix", &fixes);
                    }
                }
            }
            Err(e) => {
                m.round_failures += 1;
                eprintln!("watch: round {} could not run: {e}", m.rounds);
            }
        }
        if live.is_some() {
            // Live states replace the once-per-round reading (same series names).
            m.gateways.clear();
        }
        *text.lock().expect("metrics lock") = m.render();
        if o.rounds.is_some_and(|n| m.rounds >= n) {
            return Ok(());
        }
        let pause = o.every + jitter(o.jitter);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = term.recv() => { eprintln!("watch: SIGTERM, stopping"); return Ok(()); }
            _ = int.recv() => { eprintln!("watch: interrupted, stopping"); return Ok(()); }
        }
    }
}
