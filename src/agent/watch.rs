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
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use prometheus::{
    Gauge, GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::engine::outcome::{HostReport, HostStatus, Mode, OnEvent, PlayReport};
use crate::engine::plan::Difference;
use crate::engine::run::{self, RunOptions};
use crate::inputs::inventory::Inventory;
use crate::inputs::playbook::Playbook;
use crate::inputs::vault::Vault;
use crate::BoxError;

pub struct WatchOptions {
    pub inventory: Vec<PathBuf>,
    pub playbook: PathBuf,
    /// Every round re-reads the inventory, vault-encrypted values included.
    pub vault: Vault,
    /// `-e` variables, applied over the inventory every round.
    pub extra_vars: crate::inputs::inventory::Vars,
    pub every: Duration,
    pub jitter: Duration,
    pub fix: bool,
    pub listen: Option<SocketAddr>,
    pub history: Option<crate::agent::history::Location>,
    /// `--shard K/N` (1-based K): only the hosts whose name hashes to shard K of N.
    pub shard: Option<(u32, u32)>,
    /// History retention in seconds (`--keep`).
    pub keep: Option<u64>,
    /// Stop after this many rounds (for tests and one-shot timers).
    pub rounds: Option<u64>,
    /// Keep each PBX's gateway states current from its event socket (`--events`).
    pub events: bool,
    /// POST trunk alerts here (`--webhook`, `--webhook-ca`).
    pub webhook: Option<crate::agent::webhook::Webhook>,
    /// Place the plays' call tests in the first round and then in the first round at least
    /// this long after the last ones (`--call-tests`).
    pub call_tests: Option<Duration>,
    pub run: RunOptions,
}

/// Metrics connections served at once. A scrape takes milliseconds; past this many, the
/// oldest connection is closed to make room, so idle clients (1,300 of them exhausted the
/// service's 1,024 descriptors) can neither take the process's descriptors nor lock a
/// scraper out.
pub const MAX_METRICS_CONNECTIONS: usize = 64;
/// A metrics connection's whole life: request read and page written.
pub const METRICS_CONNECTION_TIME: Duration = Duration::from_secs(10);
/// A metrics request's head must have arrived this soon after the connection opened (a
/// scraper sends it at once; an idle client is cut).
pub const METRICS_REQUEST_TIME: Duration = Duration::from_secs(5);

#[derive(Debug, Default, Clone)]
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
    /// (host, gateway) → state, only states FreeSWITCH reports (others are `UNKNOWN`).
    gateways: BTreeMap<(String, String), String>,
    /// Per host: gateway states read in rounds that FreeSWITCH never reports.
    rejected: BTreeMap<String, u64>,
    /// Per host checked in the last round: whether drift was found on it.
    drifted: BTreeMap<String, bool>,
    /// `--fix` corrections that did not complete (refused, stopped, a host failed).
    rollouts_failed: u64,
    /// History records that could not be written.
    history_failures: u64,
    /// `--call-tests`: the last results.
    calls: crate::agent::watch_calls::CallMetrics,
}

impl Metrics {
    /// Into `r`; the round's gateway states only when `gateways` (else the live ones are).
    fn register(&self, r: &Registry, gateways: bool, rejected: &IntCounterVec) {
        let counter = |name: &str, help: &str, v: u64| {
            let c = IntCounter::new(format!("switchyard_{name}"), help).expect("constant name");
            c.inc_by(v);
            r.register(Box::new(c)).expect("registered once");
        };
        let gauge = |name: &str, help: &str, v: f64| {
            let g = Gauge::new(format!("switchyard_{name}"), help).expect("constant name");
            g.set(v);
            r.register(Box::new(g)).expect("registered once");
        };
        counter("rounds_total", "Drift rounds completed.", self.rounds);
        counter(
            "round_failures_total",
            "Rounds that could not run (bad inventory or playbook).",
            self.round_failures,
        );
        gauge(
            "last_round_timestamp_seconds",
            "End of the last round (epoch seconds).",
            self.last_round.round(),
        );
        gauge(
            "last_round_duration_seconds",
            "Duration of the last round.",
            self.last_duration,
        );
        let n = |v: u64| v as f64;
        gauge(
            "hosts_checked",
            "Hosts checked in the last round.",
            n(self.hosts_checked),
        );
        gauge(
            "hosts_drifted",
            "Hosts with drift in the last round.",
            n(self.hosts_drifted),
        );
        gauge(
            "hosts_unreachable",
            "Hosts unreachable or failing in the last round.",
            n(self.hosts_unreachable),
        );
        gauge(
            "files_drifted",
            "Files changed on hosts since switchyard wrote them.",
            n(self.files_drifted),
        );
        gauge(
            "files_pending",
            "Files whose playbook or inventory changed since they were written.",
            n(self.files_pending),
        );
        counter(
            "corrections_total",
            "Hosts corrected by --fix.",
            self.corrections,
        );
        counter(
            "failures_total",
            "Host failures (check or correction).",
            self.failures,
        );
        counter(
            "rollouts_failed_total",
            "--fix corrections that did not complete: refused, stopped by the rollout policy, or a host failed or was rolled back.",
            self.rollouts_failed,
        );
        counter(
            "history_write_failures_total",
            "Round results that could not be written to the history database.",
            self.history_failures,
        );
        let drifted = IntGaugeVec::new(
            Opts::new(
                "switchyard_host_drifted",
                "1 if the last round found drift on the host (files changed behind switchyard's back), else 0.",
            ),
            &["host"],
        )
        .expect("constant name");
        for (h, d) in &self.drifted {
            drifted.with_label_values(&[h]).set(i64::from(*d));
        }
        r.register(Box::new(drifted)).expect("registered once");
        for (h, k) in &self.rejected {
            rejected.with_label_values(&[h]).inc_by(*k);
        }
        self.register_calls(r);
        if gateways {
            let state = IntGaugeVec::new(
                Opts::new(
                    "switchyard_gateway_state",
                    "Managed gateway state at the last round (1 for the current state).",
                ),
                &["host", "gateway", "state"],
            )
            .expect("constant name");
            for ((host, gw), st) in &self.gateways {
                state.with_label_values(&[host, gw, st]).set(1);
            }
            r.register(Box::new(state)).expect("registered once");
        }
    }
}

impl Metrics {
    /// `--call-tests`' families, once call tests have been placed.
    fn register_calls(&self, r: &Registry) {
        let c = &self.calls;
        if !c.enabled {
            return;
        }
        let vec = |name: &str, help: &str| {
            GaugeVec::new(
                Opts::new(format!("switchyard_{name}"), help),
                &["host", "test"],
            )
            .expect("constant name")
        };
        let passed = vec(
            "call_test_passed",
            "1 if the play's test call passed when last placed by watch --call-tests, else 0.",
        );
        let pdd = vec(
            "call_test_post_dial_delay_seconds",
            "Post-dial delay of the test call when last placed (INVITE to ringing, early media or answer).",
        );
        for ((host, test), (ok, delay)) in &c.results {
            passed
                .with_label_values(&[host, test])
                .set(if *ok { 1.0 } else { 0.0 });
            if let Some(d) = delay {
                pdd.with_label_values(&[host, test]).set(*d);
            }
        }
        r.register(Box::new(passed)).expect("registered once");
        r.register(Box::new(pdd)).expect("registered once");
        for (name, help, v) in [
            (
                "call_tests_total",
                "Test calls placed by watch --call-tests.",
                c.placed,
            ),
            (
                "call_test_failures_total",
                "Test calls placed by watch --call-tests that failed.",
                c.failed,
            ),
        ] {
            let counter =
                IntCounter::new(format!("switchyard_{name}"), help).expect("constant name");
            counter.inc_by(v);
            r.register(Box::new(counter)).expect("registered once");
        }
        let last = Gauge::new(
            "switchyard_last_call_tests_timestamp_seconds",
            "End of the last call tests of watch --call-tests (epoch seconds).",
        )
        .expect("constant name");
        last.set(c.last.round());
        r.register(Box::new(last)).expect("registered once");
    }
}

/// The whole metrics page, in Prometheus's text format as its client library writes it:
/// each family once, every label value escaped.
fn page(m: &Metrics, live: Option<&crate::agent::live::LiveState>) -> String {
    let mut out = String::new();
    if let Err(e) = TextEncoder::new().encode_utf8(&registry(m, live).gather(), &mut out) {
        eprintln!("watch: metrics page: {e}");
    }
    out
}

/// The name of every metric family the page can hold, with and without `--events`: what
/// the alerting rules and the dashboard in `contrib/` may use (a test fails when they use
/// a name this does not list, so a renamed metric cannot silently break an alert).
pub fn metric_names() -> std::collections::BTreeSet<String> {
    let mut m = Metrics::default();
    let host = || "pbx1".to_string();
    m.gateways.insert((host(), "wavix".into()), "REGED".into());
    m.rejected.insert(host(), 1);
    m.drifted.insert(host(), true);
    m.calls
        .results
        .insert((host(), "us-mobile".into()), (true, Some(0.1)));
    m.calls.placed = 1;
    m.calls.enabled = true;
    let live = crate::agent::live::LiveState::example();
    [registry(&m, None), registry(&m, Some(&live))]
        .iter()
        .flat_map(|r| r.gather())
        .map(|f| f.name().to_string())
        .collect()
}

/// The page's one registry, filled from the last round (and the live states).
fn registry(m: &Metrics, live: Option<&crate::agent::live::LiveState>) -> Registry {
    let r = Registry::new();
    let rejected = IntCounterVec::new(
        Opts::new(
            "switchyard_gateway_states_rejected_total",
            "Gateway states or ping statuses a PBX reported that FreeSWITCH never does (shown as UNKNOWN).",
        ),
        &["host"],
    )
    .expect("constant name");
    r.register(Box::new(rejected.clone()))
        .expect("registered once");
    // Live gateway states replace the once-per-round reading (same series names).
    m.register(&r, live.is_none(), &rejected);
    if let Some(l) = live {
        l.register(&r, &rejected);
    }
    r
}

/// One request's answer: the page at `/metrics` (and `/`), else 404.
fn answer(
    req: &hyper::Request<hyper::body::Incoming>,
    metrics: &Mutex<Metrics>,
    live: Option<&Mutex<crate::agent::live::LiveState>>,
) -> hyper::Response<Full<Bytes>> {
    let (status, body) =
        if req.method() == hyper::Method::GET && matches!(req.uri().path(), "/metrics" | "/") {
            let m = metrics.lock().expect("metrics lock").clone();
            // Live states are read at request time: current to the event.
            let text = match live {
                Some(l) => page(&m, Some(&l.lock().expect("live state"))),
                None => page(&m, None),
            };
            (hyper::StatusCode::OK, text)
        } else {
            (hyper::StatusCode::NOT_FOUND, "not found\n".to_string())
        };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

/// Serve `/metrics` with hyper's HTTP/1 server: one request per connection, its head read
/// within [`METRICS_REQUEST_TIME`] and at most 8 KiB, the whole connection within
/// [`METRICS_CONNECTION_TIME`], at most [`MAX_METRICS_CONNECTIONS`] at once.
async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Mutex<Metrics>>,
    live: Option<Arc<Mutex<crate::agent::live::LiveState>>>,
) {
    let mut open: std::collections::VecDeque<tokio::task::AbortHandle> = Default::default();
    let mut warned: Option<Instant> = None;
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                // Out of descriptors (or memory): retrying at once spins a core. Pause,
                // say so at most once a minute.
                if warned.is_none_or(|w| w.elapsed() > Duration::from_secs(60)) {
                    eprintln!("watch: metrics: cannot accept a connection: {e}");
                    warned = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        open.retain(|h| !h.is_finished());
        if open.len() >= MAX_METRICS_CONNECTIONS {
            if let Some(oldest) = open.pop_front() {
                oldest.abort();
            }
        }
        let metrics = metrics.clone();
        let live = live.clone();
        let task = tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let resp = answer(&req, &metrics, live.as_deref());
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .title_case_headers(true)
                .max_buf_size(8192)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(METRICS_REQUEST_TIME)
                .serve_connection(hyper_util::rt::TokioIo::new(sock), service);
            let _ = tokio::time::timeout(METRICS_CONNECTION_TIME, conn).await;
        });
        open.push_back(task.abort_handle());
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

/// One round: check, optionally fix; returns the reports (check, then fix), whether this
/// agent acted and whether it placed the due test calls.
/// `act`: this agent leads its group (always, without a PostgreSQL history) and may fix.
async fn round(
    o: &WatchOptions,
    m: &mut Metrics,
    calls_due: bool,
    leader: Option<&mut crate::agent::history::lock::Leadership>,
) -> Result<(Vec<PlayReport>, Vec<PlayReport>, bool, bool), BoxError> {
    let mut inv = Inventory::load_all(&o.inventory, &o.vault)?;
    inv.override_vars(&o.extra_vars)?;
    // The fleet lock's key is the whole inventory's, as `apply` takes it (before any shard
    // is cut out): a sharded correction and an apply of the same play exclude each other.
    let fleet: Vec<String> = inv.hosts.iter().map(|h| h.name.clone()).collect();
    keep_shard(&mut inv, o.shard);
    let pb = Playbook::load(&o.playbook)?;
    let act = match leader {
        None => true,
        Some(l) => acting(l, o, &pb, m.rounds + 1),
    };
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
        // A correction is a rollout: it takes the fleet lock (PostgreSQL histories) without
        // waiting. Held by a rollout: deferred to the next round, which checks again, rather
        // than correcting with what this round saw after the rollout changed it.
        let fleet_lock = match &o.history {
            Some(at) if act && o.fix && !drifted.is_empty() => {
                let hosts: Vec<&str> = fleet.iter().map(String::as_str).collect();
                crate::agent::history::rollout_lock(
                    at,
                    &[play.name.as_str()],
                    &hosts,
                    "watch --fix",
                    crate::agent::history::lock::Wait::For(Duration::ZERO),
                )
                .map_err(|e| eprintln!("watch: correction deferred to the next round: {e}"))
            }
            _ => Ok(None),
        };
        if act && o.fix && !drifted.is_empty() && fleet_lock.is_ok() {
            let fix_opts = RunOptions {
                mode: Mode::Apply,
                limit: Some(drifted.join(":")),
                ..o.run.clone()
            };
            match run::run_play(&inv, &pb, play, &fix_opts, quiet.clone()).await {
                Ok(f) => {
                    if f.aborted.is_some() || f.hosts.iter().any(|h| h.status.is_failure()) {
                        m.rollouts_failed += 1;
                    }
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
                    m.rollouts_failed += 1;
                    eprintln!("watch: correction refused: {e}");
                }
            }
        }
        checks.push(report);
    }
    // Test calls are an action, as fixes are: only the agent that leads places them.
    if calls_due && act {
        let placed = crate::agent::watch_calls::place(&inv, &pb, &o.run).await;
        let failed: Vec<String> = placed
            .iter()
            .filter(|(_, r)| !r.passed)
            .map(|(h, r)| format!("{h}: call test `{}` ({}): {}", r.name, r.dial, r.summary))
            .collect();
        for (h, r) in &placed {
            m.calls.record(h, r);
        }
        m.calls.last = crate::clock::now() as f64;
        eprintln!(
            "watch: call tests: {} placed, {} failed",
            placed.len(),
            failed.len()
        );
        for f in failed {
            eprintln!("watch: {}", crate::printable::printable(&f));
        }
    }
    Ok((checks, fixes, act, calls_due && act))
}

/// With `--shard K/N`, keep only the hosts of shard K: what this agent checks, corrects and
/// (with `--events`) watches.
fn keep_shard(inv: &mut Inventory, shard: Option<(u32, u32)>) {
    if let Some((k, n)) = shard {
        use crate::agent::history::lock::shard_of;
        inv.hosts.retain(|h| shard_of(&h.name, n) == k - 1);
    }
}

/// Whether this agent leads its group this round (see [`Leadership`]); said on stderr when
/// that changes, and each standby round names the leader.
///
/// [`Leadership`]: crate::agent::history::lock::Leadership
fn acting(
    l: &mut crate::agent::history::lock::Leadership,
    o: &WatchOptions,
    pb: &Playbook,
    n: u64,
) -> bool {
    let shard = o
        .shard
        .map(|(k, n)| format!(" shard {k}/{n}"))
        .unwrap_or_default();
    let plays: Vec<&str> = pb.plays.iter().map(|p| p.name.as_str()).collect();
    let what = format!("watch{shard}: {}", plays.join(", "));
    let key = crate::agent::history::lock::leader_key(&plays, o.shard);
    match l.round(&what, key) {
        Ok(true) => {
            eprintln!("watch: round {n}: leading{shard}");
            true
        }
        Ok(false) => {
            eprintln!(
                "watch: round {n}: standby{shard}, the leader is {}",
                l.leader()
            );
            false
        }
        Err(e) => {
            eprintln!("watch: round {n}: standby{shard}: cannot tell who leads: {e}");
            false
        }
    }
}

/// The PBXes and managed gateways `--events` watches: every host of every play, with the
/// gateways its rendered configuration defines; with `--shard`, of this shard's hosts only
/// (each shard's agents alert for their own hosts, not the whole fleet's).
fn live_targets(o: &WatchOptions) -> Result<Vec<crate::agent::live::Target>, BoxError> {
    let mut inv = Inventory::load_all(&o.inventory, &o.vault)?;
    inv.override_vars(&o.extra_vars)?;
    keep_shard(&mut inv, o.shard);
    let pb = Playbook::load(&o.playbook)?;
    let mut out: Vec<crate::agent::live::Target> = Vec::new();
    for play in &pb.plays {
        for (h, d) in run::desired_states(&inv, &pb, play, o.run.limit.as_deref()) {
            let d = d.map_err(|e| format!("{}: {e}", h.name))?;
            let gateways: Vec<(String, bool)> = crate::engine::plan::managed_gateways(
                d.files
                    .iter()
                    .filter(|f| !f.absent)
                    .map(|f| (f.rel.as_str(), f.base.as_deref())),
            )
            .into_iter()
            .map(|g| (g.name, g.registers))
            .collect();
            if !gateways.is_empty() && !out.iter().any(|t| t.host.name == h.name) {
                out.push(crate::agent::live::Target {
                    host: h.clone(),
                    gateways,
                });
            }
        }
    }
    Ok(out)
}

pub async fn watch(o: WatchOptions) -> Result<(), BoxError> {
    let text = Arc::new(Mutex::new(Metrics::default()));
    let live = if o.events {
        let state = Arc::new(Mutex::new(crate::agent::live::LiveState::default()));
        let targets = live_targets(&o)?;
        eprintln!(
            "watch: events from {} PBX(es), {} gateway(s)",
            targets.len(),
            targets.iter().map(|t| t.gateways.len()).sum::<usize>()
        );
        crate::agent::live::spawn(
            targets,
            Arc::new(crate::agent::live::LiveOptions {
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
    m.calls.enabled = o.call_tests.is_some();
    let mut calls_at: Option<Instant> = None;
    let mut leader = match &o.history {
        Some(crate::agent::history::Location::Postgres(t)) => {
            Some(crate::agent::history::lock::Leadership::new(t))
        }
        _ => None,
    };
    loop {
        let started = Instant::now();
        let calls_due = o
            .call_tests
            .is_some_and(|every| calls_at.is_none_or(|t| t.elapsed() >= every));
        // A round is never interrupted: a signal during it is handled when it ends.
        let result = round(&o, &mut m, calls_due, leader.as_mut()).await;
        // The interval runs from calls actually placed: a standby round or a failed one
        // leaves them due, so the next round (or the new leader after failover) places them.
        if matches!(result, Ok((_, _, _, true))) {
            calls_at = Some(started);
        }
        m.rounds += 1;
        m.last_round = crate::clock::now() as f64;
        m.last_duration = started.elapsed().as_secs_f64();
        match result {
            Ok((checks, fixes, act, _)) => {
                let hosts: Vec<&HostReport> = checks.iter().flat_map(|p| &p.hosts).collect();
                m.hosts_checked = hosts.len() as u64;
                m.hosts_drifted = hosts.iter().filter(|h| h.has_drift()).count() as u64;
                m.drifted = hosts
                    .iter()
                    .map(|h| (h.host.clone(), h.has_drift()))
                    .collect();
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
                        // A state FreeSWITCH never says came from whoever owns the PBX.
                        let state = match crate::freeswitch::status::known_state(&g.state) {
                            Some(s) => s,
                            None => {
                                *m.rejected.entry(h.host.clone()).or_default() += 1;
                                "UNKNOWN"
                            }
                        };
                        m.gateways
                            .insert((h.host.clone(), g.name.clone()), state.to_string());
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
                // A standby agent records nothing: its leader records the round.
                if let Some(path) = o.history.as_ref().filter(|_| act) {
                    let mut record = |kind, plays: &[crate::engine::outcome::PlayReport]| {
                        if let Err(e) = crate::agent::history::record(path, o.keep, kind, plays) {
                            eprintln!("watch: cannot record history: {e}");
                            m.history_failures += 1;
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
        *text.lock().expect("metrics lock") = m.clone();
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
