//! `watch --call-tests EVERY`: the plays' `call_tests:` placed on every PBX at that pace,
//! as a rollout places them after a change (`switchyard call` for each, within the play's
//! `call_test_seconds`), their results kept for the metrics page. A failed test changes
//! nothing on the host: it is reported, never rolled back (nothing was applied).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::call_tests::CallTestReport;
use crate::engine::run::RunOptions;
use crate::host::transport::Transport;
use crate::inputs::inventory::{Host, Inventory};
use crate::inputs::playbook::Playbook;

/// The last results, per (host, test).
#[derive(Debug, Default, Clone)]
pub struct CallMetrics {
    /// `--call-tests` was given: the families are on the page from the start (counters at
    /// 0, so `increase()` sees the first failure).
    pub enabled: bool,
    /// (host, test) → passed, post-dial delay in seconds (when it rang or was answered).
    pub results: BTreeMap<(String, String), (bool, Option<f64>)>,
    pub placed: u64,
    pub failed: u64,
    /// When the last call tests ended (epoch seconds).
    pub last: f64,
}

impl CallMetrics {
    pub fn record(&mut self, host: &str, r: &CallTestReport) {
        let pdd = r.detail["leg"]["post_dial_delay_ms"]
            .as_u64()
            .map(|ms| ms as f64 / 1000.0);
        self.results
            .insert((host.to_string(), r.name.clone()), (r.passed, pdd));
        self.placed += 1;
        self.failed += u64::from(!r.passed);
    }
}

/// Every play's call tests on every host it selects (`--limit` too), `forks` hosts at a
/// time, each host's tests one after the other over one connection: (host, report) each.
/// A host that cannot be reached fails each of its tests.
pub async fn place(
    inv: &Inventory,
    pb: &Playbook,
    o: &RunOptions,
) -> Vec<(String, CallTestReport)> {
    let gate = Arc::new(tokio::sync::Semaphore::new(o.forks.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for play in pb.plays.iter().filter(|p| !p.call_tests.is_empty()) {
        for h in inv.select_limited(&play.hosts, o.limit.as_deref()) {
            if Inventory::unmanaged(h).is_some() {
                continue;
            }
            let (host, tests, ssh, gate) = (
                h.clone(),
                play.call_tests.clone(),
                o.ssh.clone(),
                gate.clone(),
            );
            let budget = Duration::from_secs(play.call_test_seconds);
            tasks.spawn(async move {
                let _turn = gate.acquire_owned().await;
                on_host(host, tests, ssh, budget).await
            });
        }
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.extend(r.unwrap_or_default());
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn on_host(
    host: Host,
    tests: Vec<crate::inputs::playbook::call_test::CallTest>,
    ssh: crate::host::transport::SshOptions,
    budget: Duration,
) -> Vec<(String, CallTestReport)> {
    let reports = match Transport::connect(&host.connection, &ssh).await {
        Ok(mut tr) => {
            let r = crate::agent::call::run_tests(&mut tr, &host, &tests, budget).await;
            tr.close().await;
            r
        }
        Err(e) => {
            let why = crate::printable::printable(&e.to_string()).into_owned();
            tests
                .iter()
                .map(|t| CallTestReport {
                    name: t.name.clone(),
                    dial: t.number().to_string(),
                    passed: false,
                    summary: format!("not placed: {why}"),
                    detail: serde_json::Value::Null,
                })
                .collect()
        }
    };
    reports
        .into_iter()
        .map(|r| (host.name.clone(), r))
        .collect()
}
