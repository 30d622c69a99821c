//! `switchyard trunks measure`: each PBX's own FreeSWITCH measures its SIP round-trip time to
//! every candidate region of its carrier, so the primary and failover regions can be chosen
//! by measurement instead of by hand (the provider's guide asks operators to ping the
//! regions and pick).
//!
//! Per PBX, over its one SSH connection: take the host lock (a rollout and a measurement
//! never interleave), open the event socket through an SSH `direct-tcpip` channel,
//! subscribe to `sofia::gateway_state`, write a probe file of ping-only gateways (one per
//! region; [`crate::freeswitch::probe`]) in the same safe write round trip as an apply,
//! `rescan` the external profile, and read one sample per ping event; then remove the file,
//! `reloadxml` so no later rescan or restart loads the probes again, and `killgw` them.
//! Probes a killed run left behind are unloaded (and their file rewritten, then removed)
//! the next time. Nothing else changes on the PBX — but `rescan` re-reads the XML as
//! `reloadxml` does, so edits made on the host by hand and never loaded take effect too,
//! as on any apply.
//!
//! Candidates: the host variable `wavix_regions` (a list of `host` or `host:port`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::agent::live::LiveError;
use crate::freeswitch::esl::{Esl, EslError};
use crate::freeswitch::probe::{self, RegionRtt};
use crate::host::script::FileOp;
use crate::host::transport::{LockError, SshOptions, Transport, TransportError, Tunnel};
use crate::host::write::WriteError;
use crate::inputs::inventory::Host;

/// Why a PBX's measurement failed (reported, masked, as that host's `error`).
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The event socket could not be opened.
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Esl(#[from] EslError),
    /// Writing the probe file failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// FreeSWITCH's answer to the rescan (the host's text).
    #[error("sofia profile {profile} rescan: {answer}")]
    Rescan {
        profile: &'static str,
        answer: String,
    },
    #[error("measured, but the probe file stays: {0}")]
    ProbeFileStays(#[source] WriteError),
    #[error("measured, but reloadxml failed: {0}")]
    ReloadFailed(#[source] EslError),
    #[error("measured, but FreeSWITCH still has the probe gateways {} loaded", .0.join(", "))]
    ProbesLoaded(Vec<String>),
}

/// One PBX and the regions to measure from it.
pub struct Candidates {
    pub host: Host,
    pub regions: Vec<String>,
}

pub struct MeasureOptions {
    pub ssh: SshOptions,
    /// Answered-or-lost pings per region.
    pub samples: u32,
    /// Seconds between pings (at least [`probe::MIN_INTERVAL`]).
    pub interval: u32,
    pub forks: usize,
    /// How long one PBX may take, from its connection to its clean-up: a PBX whose SSH
    /// or event socket goes silent is given up then ([`default_budget`]).
    pub budget: Duration,
}

/// Set-up before the first ping: SSH connection (its own timeout and retries), host lock,
/// event socket, probe file, `rescan`.
const SETUP_ALLOWANCE: u64 = 30;
/// After the last ping: the longest an unanswered OPTIONS takes to time out (32 s, SIP
/// timer F) and a margin.
const LAST_PING_ALLOWANCE: u64 = 40;
/// Clean-up: the probe file removed, `reloadxml`, `killgw`, and up to 15 s until
/// FreeSWITCH has unloaded the probes.
const CLEANUP_ALLOWANCE: u64 = 30;

/// How long a healthy PBX takes at most: set-up, the pings ([`ping_limit`]), clean-up.
/// With the defaults (5 samples, 5 s): 130 s, where a healthy PBX answers in about 35 s.
pub fn default_budget(samples: u32, interval: u32) -> Duration {
    Duration::from_secs(SETUP_ALLOWANCE + CLEANUP_ALLOWANCE) + ping_limit(samples, interval)
}

/// The pings' phase when every region answers: the last of `samples` pings leaves
/// `samples × interval` s after the probes load (the first leaves one interval after).
pub fn pings_answered(samples: u32, interval: u32) -> Duration {
    Duration::from_secs(u64::from(interval) * u64::from(samples))
}

/// The pings' phase at most, when a region does not answer: an unanswered ping is reported
/// only when its SIP transaction times out (32 s), so the phase ends `samples + 1`
/// intervals and the last ping's timeout after the probes load.
pub fn ping_limit(samples: u32, interval: u32) -> Duration {
    Duration::from_secs(u64::from(interval) * (u64::from(samples) + 1) + LAST_PING_ALLOWANCE)
}

/// What a host's measurement is doing, for the report of one that went silent.
#[derive(Default)]
struct Phase(std::sync::Mutex<&'static str>);

impl Phase {
    fn set(&self, what: &'static str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = what;
    }
    fn get(&self) -> &'static str {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one PBX measured: its regions, best first.
#[derive(Debug, Clone, Serialize)]
pub struct HostRtt {
    pub host: String,
    pub regions: Vec<RegionRtt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why no region answered, from what FreeSWITCH reported ([`probe::no_answer_hint`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Measure every PBX, `forks` at a time. `done` is called with each host's result as it
/// completes (a silent PBX never holds back the others' results); the results are
/// returned in the order given.
///
/// Deadlines: each PBX has `o.budget` from the moment it starts, after which it is given up
/// and reported with what it was doing; the whole run has the budget once per round of
/// `forks` hosts, a backstop should a host's task not end when told.
pub async fn measure(
    targets: Vec<Candidates>,
    o: Arc<MeasureOptions>,
    mut done: impl FnMut(&HostRtt),
) -> Vec<HostRtt> {
    let forks = o.forks.max(1);
    let gate = Arc::new(tokio::sync::Semaphore::new(forks));
    let names: Vec<String> = targets.iter().map(|c| c.host.name.clone()).collect();
    let rounds = names.len().div_ceil(forks) as u32;
    let run_deadline = tokio::time::Instant::now() + o.budget * rounds + Duration::from_secs(5);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, HostRtt)>();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, c) in targets.into_iter().enumerate() {
        let (o, gate, tx) = (o.clone(), gate.clone(), tx.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire().await;
            let mut red = crate::secret::Redactor::from_vars(&c.host.vars);
            red.add_secrets(&c.host.secrets);
            let phase = Phase::default();
            let res = tokio::time::timeout(o.budget, measure_host(&c, &o, &phase)).await;
            let r = match res {
                Ok(Ok(regions)) => {
                    let waited = ping_limit(o.samples, o.interval).as_secs();
                    HostRtt {
                        host: c.host.name.clone(),
                        hint: probe::no_answer_hint(&regions, waited),
                        regions: probe::rank(regions),
                        error: None,
                    }
                }
                // Host and FreeSWITCH answers are untrusted text: masked.
                Ok(Err(e)) => HostRtt {
                    host: c.host.name.clone(),
                    regions: Vec::new(),
                    error: Some(red.redact(&e.to_string())),
                    hint: None,
                },
                Err(_) => HostRtt {
                    host: c.host.name.clone(),
                    regions: Vec::new(),
                    error: Some(format!(
                        "silent: not finished after {} s, given up while {} (probes it may have loaded are removed by the next measure)",
                        o.budget.as_secs(),
                        phase.get()
                    )),
                    hint: None,
                },
            };
            let _ = tx.send((i, r));
        });
    }
    drop(tx);
    let mut out: Vec<Option<HostRtt>> = vec![None; names.len()];
    let mut late = false;
    loop {
        match tokio::time::timeout_at(run_deadline, rx.recv()).await {
            Ok(Some((i, r))) => {
                done(&r);
                out[i] = Some(r);
            }
            Ok(None) => break,
            Err(_) => {
                late = true;
                break;
            }
        }
    }
    tasks.abort_all();
    names
        .into_iter()
        .zip(out)
        .map(|(host, r)| {
            r.unwrap_or_else(|| {
                // A host whose task died (or outlived the run's deadline) is reported,
                // never left out of the results.
                let r = HostRtt {
                    host,
                    regions: Vec::new(),
                    error: Some(if late {
                        "silent: not finished by the run's deadline".into()
                    } else {
                        "internal error: its measurement ended without a result".into()
                    }),
                    hint: None,
                };
                done(&r);
                r
            })
        })
        .collect()
}

async fn measure_host(
    c: &Candidates,
    o: &MeasureOptions,
    phase: &Phase,
) -> Result<Vec<RegionRtt>, MeasureError> {
    phase.set("connecting over SSH");
    let mut tr = Transport::connect(&c.host.connection, &o.ssh).await?;
    let fs = &c.host.freeswitch;
    phase.set("taking the host lock");
    let mut lock = match tr
        .lock(
            &fs.conf_root,
            &crate::host::state::lock_owner("trunks measure"),
        )
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tr.close().await;
            return Err(e.into());
        }
    };
    let res = probe_regions(&mut tr, &mut lock, c, o, phase).await;
    lock.release().await;
    tr.close().await;
    res
}

async fn probe_regions(
    tr: &mut Transport,
    lock: &mut crate::host::transport::HostLock,
    c: &Candidates,
    o: &MeasureOptions,
    phase: &Phase,
) -> Result<Vec<RegionRtt>, MeasureError> {
    let fs = &c.host.freeswitch;
    phase.set("opening the event socket");
    let mut esl = crate::agent::live::open_esl(tr, &c.host).await?;
    phase.set("loading the probes");
    // Subscribe before the probes load: no ping event can be missed.
    esl.send("event plain CUSTOM sofia::gateway_state").await?;
    let profile = probe::PROBE_PROFILE;
    // A killed run's probes: unloaded first, so none pings under a reused name.
    for g in loaded_probes(&mut esl).await? {
        esl.api(&format!("sofia profile {profile} killgw {g}"))
            .await?;
    }
    let probes: Vec<(String, String)> = c
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("{}{i}", probe::PROBE_PREFIX), r.clone()))
        .collect();
    let path = format!("{}/{}", fs.conf_root, probe::PROBE_FILE);
    let xml = probe::probe_xml(&probes, o.interval);
    crate::host::write::send(
        lock,
        &fs.conf_root,
        &[FileOp::Write {
            path: &path,
            content: xml.as_bytes(),
            owner: &fs.owner,
            group: &fs.group,
            mode: 0o640,
        }],
        &[],
        true,
    )
    .await?;
    phase.set("waiting for pings");
    let measured = sample(&mut esl, &probes, o).await;
    phase.set("removing the probes");
    // Clean up whatever happened: file, XML in memory, gateways.
    let removed = crate::host::write::send(
        lock,
        &fs.conf_root,
        &[FileOp::Remove { path: &path }],
        &[],
        true,
    )
    .await;
    let reloaded = esl.api("reloadxml").await;
    for (g, _) in &probes {
        let _ = esl
            .api(&format!("sofia profile {profile} killgw {g}"))
            .await;
    }
    // `killgw` only marks a gateway for deletion; the profile's worker removes it within
    // a second or so. The PBX is left as found before this returns.
    let gone = wait_unloaded(&mut esl).await;
    let regions = measured?;
    removed.map_err(MeasureError::ProbeFileStays)?;
    reloaded.map_err(MeasureError::ReloadFailed)?;
    gone?;
    Ok(regions)
}

/// Probe gateways FreeSWITCH has loaded. `gwlist` names only the gateways that are UP,
/// `gwlist down` the others (sofia_glue.c `sofia_glue_gateway_list`): both are asked.
async fn loaded_probes(esl: &mut Esl<Tunnel>) -> Result<Vec<String>, EslError> {
    let mut all = String::new();
    for which in ["up", "down"] {
        let list = esl
            .api(&format!(
                "sofia profile {} gwlist {which}",
                probe::PROBE_PROFILE
            ))
            .await?;
        all.push_str(&list);
        all.push(' ');
    }
    Ok(probe::leftover_probes(&all))
}

async fn wait_unloaded(esl: &mut Esl<Tunnel>) -> Result<(), MeasureError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = loaded_probes(esl).await?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(MeasureError::ProbesLoaded(left));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Load the probes and read one sample per ping event until every region has `samples`
/// or the time is up (a region that never answers loses its pings to timeouts).
async fn sample(
    esl: &mut Esl<Tunnel>,
    probes: &[(String, String)],
    o: &MeasureOptions,
) -> Result<Vec<RegionRtt>, MeasureError> {
    let profile = probe::PROBE_PROFILE;
    let answer = esl.api(&format!("sofia profile {profile} rescan")).await?;
    if !answer.contains("+OK") {
        return Err(MeasureError::Rescan {
            profile,
            answer: answer.trim().to_string(),
        });
    }
    // Per probe: answered round trips, and the SIP status of each lost ping.
    let mut got: BTreeMap<&str, (Vec<f64>, Vec<u16>)> = probes
        .iter()
        .map(|(g, _)| (g.as_str(), (Vec::new(), Vec::new())))
        .collect();
    let deadline = Instant::now() + ping_limit(o.samples, o.interval);
    let count = |(s, lost): &(Vec<f64>, Vec<u16>)| (s.len() + lost.len()) as u32;
    let done =
        |got: &BTreeMap<&str, (Vec<f64>, Vec<u16>)>| got.values().all(|e| count(e) >= o.samples);
    while !done(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ev = match tokio::time::timeout(left, esl.event()).await {
            Ok(e) => e?,
            Err(_) => break,
        };
        let Some(g) = ev.header("Gateway") else {
            continue;
        };
        let Some(entry) = got.get_mut(g) else {
            continue;
        };
        if count(entry) >= o.samples {
            continue;
        }
        let status: u16 = ev
            .header("Status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if !probe::ping_answered(status) {
            entry.1.push(status);
            continue;
        }
        let x = esl.api(&format!("sofia xmlstatus gateway {g}")).await?;
        match probe::ping_time(&x) {
            Some(ms) => entry.0.push(ms),
            None => entry.1.push(status),
        }
    }
    Ok(probes
        .iter()
        .map(|(g, region)| {
            let (samples, mut lost) = got.remove(g.as_str()).unwrap_or_default();
            // Pings never answered nor timed out before the deadline count as lost (0).
            let missing = o
                .samples
                .saturating_sub((samples.len() + lost.len()) as u32);
            lost.extend(std::iter::repeat_n(0, missing as usize));
            let mut r = RegionRtt::new(region, samples, lost.len() as u32);
            r.lost_status = lost;
            r
        })
        .collect())
}
