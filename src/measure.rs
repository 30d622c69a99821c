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

use crate::freeswitch::probe::{self, RegionRtt};
use crate::inventory::Host;
use crate::script::FileOp;
use crate::transport::{SshOptions, Transport};

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
}

/// What one PBX measured: its regions, best first.
#[derive(Debug, Clone, Serialize)]
pub struct HostRtt {
    pub host: String,
    pub regions: Vec<RegionRtt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Measure every PBX, `forks` at a time; results in the order given.
pub async fn measure(targets: Vec<Candidates>, o: Arc<MeasureOptions>) -> Vec<HostRtt> {
    let gate = Arc::new(tokio::sync::Semaphore::new(o.forks.max(1)));
    let names: Vec<String> = targets.iter().map(|c| c.host.name.clone()).collect();
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|c| {
            let (o, gate) = (o.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await;
                let mut red = crate::secret::Redactor::from_vars(&c.host.vars);
                red.add_secrets(&c.host.secrets);
                match measure_host(&c, &o).await {
                    Ok(regions) => HostRtt {
                        host: c.host.name.clone(),
                        regions: probe::rank(regions),
                        error: None,
                    },
                    // Host and FreeSWITCH answers are untrusted text: masked.
                    Err(e) => HostRtt {
                        host: c.host.name.clone(),
                        regions: Vec::new(),
                        error: Some(red.redact(&e)),
                    },
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for (t, host) in tasks.into_iter().zip(names) {
        // A host whose task died is reported, never left out of the results.
        out.push(t.await.unwrap_or_else(|e| HostRtt {
            host,
            regions: Vec::new(),
            error: Some(format!("internal error: {e}")),
        }));
    }
    out
}

async fn measure_host(c: &Candidates, o: &MeasureOptions) -> Result<Vec<RegionRtt>, String> {
    let mut tr = Transport::connect(&c.host.connection, &o.ssh)
        .await
        .map_err(|e| e.to_string())?;
    let fs = &c.host.freeswitch;
    let lock = match tr
        .lock(&fs.conf_root, &crate::state::lock_owner("trunks measure"))
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tr.close().await;
            return Err(e.to_string());
        }
    };
    let res = probe_regions(&mut tr, c, o).await;
    lock.release().await;
    tr.close().await;
    res
}

async fn probe_regions(
    tr: &mut Transport,
    c: &Candidates,
    o: &MeasureOptions,
) -> Result<Vec<RegionRtt>, String> {
    let fs = &c.host.freeswitch;
    let mut esl = crate::live::open_esl(tr, &c.host).await?;
    let api = |r: Result<String, crate::freeswitch::esl::EslError>| r.map_err(|e| e.to_string());
    // Subscribe before the probes load: no ping event can be missed.
    esl.send("event plain CUSTOM sofia::gateway_state")
        .await
        .map_err(|e| e.to_string())?;
    let profile = probe::PROBE_PROFILE;
    // A killed run's probes: unloaded first, so none pings under a reused name.
    for g in loaded_probes(&mut esl).await? {
        api(esl
            .api(&format!("sofia profile {profile} killgw {g}"))
            .await)?;
    }
    let probes: Vec<(String, String)> = c
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("{}{i}", probe::PROBE_PREFIX), r.clone()))
        .collect();
    let path = format!("{}/{}", fs.conf_root, probe::PROBE_FILE);
    let xml = probe::probe_xml(&probes, o.interval);
    crate::run::send_write(
        tr,
        &fs.conf_root,
        &[FileOp::Write {
            path: &path,
            content: xml.as_bytes(),
            owner: &fs.owner,
            group: &fs.group,
            mode: 0o640,
        }],
        &[],
    )
    .await?;
    let measured = sample(&mut esl, &probes, o).await;
    // Clean up whatever happened: file, XML in memory, gateways.
    let removed =
        crate::run::send_write(tr, &fs.conf_root, &[FileOp::Remove { path: &path }], &[]).await;
    let reloaded = api(esl.api("reloadxml").await);
    for (g, _) in &probes {
        let _ = esl
            .api(&format!("sofia profile {profile} killgw {g}"))
            .await;
    }
    // `killgw` only marks a gateway for deletion; the profile's worker removes it within
    // a second or so. The PBX is left as found before this returns.
    let gone = wait_unloaded(&mut esl).await;
    let regions = measured?;
    removed.map_err(|e| format!("measured, but the probe file stays: {e}"))?;
    reloaded.map_err(|e| format!("measured, but reloadxml failed: {e}"))?;
    gone?;
    Ok(regions)
}

/// Probe gateways FreeSWITCH has loaded. `gwlist` names only the gateways that are UP,
/// `gwlist down` the others (sofia_glue.c `sofia_glue_gateway_list`): both are asked.
async fn loaded_probes(
    esl: &mut crate::freeswitch::esl::Esl<crate::transport::Tunnel>,
) -> Result<Vec<String>, String> {
    let mut all = String::new();
    for which in ["up", "down"] {
        let list = esl
            .api(&format!(
                "sofia profile {} gwlist {which}",
                probe::PROBE_PROFILE
            ))
            .await
            .map_err(|e| e.to_string())?;
        all.push_str(&list);
        all.push(' ');
    }
    Ok(probe::leftover_probes(&all))
}

async fn wait_unloaded(
    esl: &mut crate::freeswitch::esl::Esl<crate::transport::Tunnel>,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = loaded_probes(esl).await?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "measured, but FreeSWITCH still has the probe gateways {} loaded",
                left.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Load the probes and read one sample per ping event until every region has `samples`
/// or the time is up (a region that never answers loses its pings to timeouts).
async fn sample(
    esl: &mut crate::freeswitch::esl::Esl<crate::transport::Tunnel>,
    probes: &[(String, String)],
    o: &MeasureOptions,
) -> Result<Vec<RegionRtt>, String> {
    let profile = probe::PROBE_PROFILE;
    let answer = esl
        .api(&format!("sofia profile {profile} rescan"))
        .await
        .map_err(|e| e.to_string())?;
    if !answer.contains("+OK") {
        return Err(format!("sofia profile {profile} rescan: {}", answer.trim()));
    }
    let mut got: BTreeMap<&str, (Vec<f64>, u32)> = probes
        .iter()
        .map(|(g, _)| (g.as_str(), (Vec::new(), 0)))
        .collect();
    // The first ping leaves `interval` s after loading; an unanswered one ends when the
    // SIP transaction times out (32 s).
    let deadline = Instant::now()
        + Duration::from_secs(u64::from(o.interval) * (u64::from(o.samples) + 1) + 40);
    let done = |got: &BTreeMap<&str, (Vec<f64>, u32)>| {
        got.values()
            .all(|(s, lost)| s.len() as u32 + lost >= o.samples)
    };
    while !done(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ev = match tokio::time::timeout(left, esl.event()).await {
            Ok(e) => e.map_err(|e| e.to_string())?,
            Err(_) => break,
        };
        let Some(g) = ev.header("Gateway") else {
            continue;
        };
        let Some(entry) = got.get_mut(g) else {
            continue;
        };
        if entry.0.len() as u32 + entry.1 >= o.samples {
            continue;
        }
        let status: u16 = ev
            .header("Status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if !probe::ping_answered(status) {
            entry.1 += 1;
            continue;
        }
        let x = esl
            .api(&format!("sofia xmlstatus gateway {g}"))
            .await
            .map_err(|e| e.to_string())?;
        match probe::ping_time(&x) {
            Some(ms) => entry.0.push(ms),
            None => entry.1 += 1,
        }
    }
    Ok(probes
        .iter()
        .map(|(g, region)| {
            let (samples, lost) = got.remove(g.as_str()).unwrap_or_default();
            // Pings never answered nor timed out before the deadline count as lost.
            let missing = o.samples.saturating_sub(samples.len() as u32 + lost);
            RegionRtt::new(region, samples, lost + missing)
        })
        .collect())
}
