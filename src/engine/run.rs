//! The runner: the one pipeline every command goes through, host by host, batch by batch.
//!
//! inventory + playbook → desired state (no connection) → lint ([`crate::engine::offline`])
//! → per host ([`crate::engine::pipeline`]): connect, gather facts (one round trip) → plan
//! (pure) → [stop here for check, drift, review] → write (one round trip) → FreeSWITCH
//! steps (one round trip, [`crate::engine::steps`]) → verify → rollback on failure → report.
//! This module holds the batches: their order, their size, and when the rollout stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::engine::desired::{self, HostDesired};
use crate::engine::offline;
use crate::engine::outcome::{ErrorKind, Event, HostReport, Mode, OnEvent, PlayReport};
use crate::engine::pipeline::{process_host, HostSettings, NoDesired};
use crate::freeswitch::lint::Finding;
use crate::host::transport::SshOptions;
use crate::inputs::inventory::{Host, Inventory};
use crate::inputs::playbook::{BatchSize, Disruption, HostOrder, Play, Playbook};
use crate::inputs::template::Templates;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
    /// Override of the play's `allow:`.
    pub allow: Option<Disruption>,
    pub forks: usize,
    pub limit: Option<String>,
    pub ssh: SshOptions,
    /// Override of the play's `serial:`.
    pub serial: Option<Vec<BatchSize>>,
    pub max_fail_percentage: Option<f64>,
    /// Verify gateways after applying a change (default on).
    pub verify: bool,
    /// Seed for `order: shuffle` (reproducible runs in tests).
    pub shuffle_seed: u64,
    /// Apply only what this reviewed plan holds (`apply --plan`).
    pub saved_plan: Option<Arc<crate::engine::plan::SavedPlan>>,
    /// In check mode, also read each managed gateway's state once (drift agents).
    pub gateway_snapshot: bool,
    /// `--tags` / `--skip-tags`: tasks left out are neither written nor removed.
    pub tags: crate::inputs::playbook::TagFilter,
    /// `-v`: one line per remote command (what, how long); `-vv`: the command itself,
    /// secrets masked.
    pub verbose: u8,
    /// Places a play's `call_tests:` (`apply`, `drift --fix` and `watch --fix` give one;
    /// without it, as in `demo`, a play that has call tests fails its changed hosts rather
    /// than skip them).
    pub call_tester: Option<crate::engine::call_tests::CallTester>,
    /// Keep each file's contents (before and after) in the reports returned: only `route
    /// --diff` and `plan --markdown` read them. Without it a host's report is cut down to
    /// what its JSON, the recap and the history hold as soon as the host is done
    /// ([`HostReport::compact`]): a fleet's run no longer holds every PBX's files until
    /// the end (about 94 KB per PBX before).
    pub keep_contents: bool,
}

impl RunOptions {
    /// Defaults: every host at once up to 100, the play's own rollout and disruption
    /// settings, verification on.
    pub fn new(mode: Mode, ssh: SshOptions) -> RunOptions {
        RunOptions {
            mode,
            allow: None,
            forks: 100,
            limit: None,
            ssh,
            serial: None,
            max_fail_percentage: None,
            verify: true,
            shuffle_seed: 1,
            saved_plan: None,
            gateway_snapshot: false,
            tags: Default::default(),
            verbose: 0,
            call_tester: None,
            keep_contents: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no host of the inventory matches `{0}`")]
    NoHosts(String),
    #[error("lint found {errors} error(s); nothing was pushed")]
    Lint {
        errors: usize,
        findings: Vec<Finding>,
    },
}

/// The selected hosts, each with its desired state or why it has none.
pub type Selected<'a> = Vec<(&'a Host, Result<HostDesired, NoDesired>)>;

/// Build every selected host's desired state (no connection).
pub fn desired_states<'a>(
    inv: &'a Inventory,
    pb: &Playbook,
    play: &Play,
    limit: Option<&str>,
) -> Selected<'a> {
    let mut templates = Templates::new(pb.template_dirs());
    inv.select_limited(&play.hosts, limit)
        .into_iter()
        .map(|h| match Inventory::unmanaged(h) {
            Some(why) => (h, Err(NoDesired::Unmanaged(why))),
            None => (
                h,
                desired::build(h, play, &mut templates).map_err(NoDesired::from),
            ),
        })
        .collect()
}

fn batches(n: usize, serial: &[BatchSize]) -> Vec<usize> {
    if serial.is_empty() {
        return vec![n];
    }
    let mut out = Vec::new();
    let mut left = n;
    let mut i = 0;
    while left > 0 {
        let size = serial[i.min(serial.len() - 1)].of(n).min(left).max(1);
        out.push(size);
        left -= size;
        i += 1;
    }
    out
}

/// `order: shuffle`: a uniform Fisher-Yates shuffle by a kept generator (fastrand's wyrand),
/// seeded per run (`RunOptions::shuffle_seed`), so a test can fix it.
fn shuffle<T>(v: &mut [T], seed: u64) {
    fastrand::Rng::with_seed(seed).shuffle(v);
}

/// Run one play: every selected host's desired state, lint (a configuration with errors
/// is never pushed), then the hosts batch by batch.
pub async fn run_play(
    inv: &Inventory,
    pb: &Playbook,
    play: &Play,
    opts: &RunOptions,
    on_event: OnEvent,
) -> Result<PlayReport, RunError> {
    let selected;
    let play = if opts.tags.is_empty() {
        play
    } else {
        selected = play.with_tags(&opts.tags);
        &selected
    };
    let hosts = ordered_hosts(inv, pb, play, opts)?;
    // Lint first: a configuration with errors is never pushed.
    let mut findings = Vec::new();
    for (h, d) in &hosts {
        if let Ok(d) = d {
            findings.extend(offline::lint_desired(h, d, &play.lint_allow));
            findings.extend(offline::route_findings(h, d, play));
        }
    }
    let errors = findings.iter().filter(|f| f.blocks()).count();
    if errors > 0 && opts.mode == Mode::Apply {
        return Err(RunError::Lint { errors, findings });
    }
    on_event(Event::Selected { hosts: hosts.len() });

    let serial = opts.serial.clone().unwrap_or_else(|| play.serial.clone());
    let sizes = batches(hosts.len(), &serial);
    let rollout = Rollout {
        sem: Arc::new(Semaphore::new(opts.forks.max(1))),
        settings: Arc::new(settings(play, opts)),
        on_event,
        findings,
        keep_contents: opts.keep_contents,
    };
    let mut reports: Vec<HostReport> = Vec::new();
    let mut aborted = None;
    let mut queue = hosts.into_iter();
    for (b, size) in sizes.iter().enumerate() {
        let batch: Vec<_> = queue.by_ref().take(*size).collect();
        if let Some(why) = &aborted {
            for (h, _) in batch {
                let r = HostReport::new(&h.name, b + 1).fail(
                    ErrorKind::NotRun,
                    format!("the rollout stopped before this batch: {why}"),
                );
                (rollout.on_event)(Event::Done(&r));
                reports.push(r);
            }
            continue;
        }
        let batch_reports = rollout.run_batch(b + 1, batch).await;
        if crate::interrupt::requested() {
            aborted.get_or_insert_with(|| "interrupted (SIGINT/SIGTERM)".into());
        }
        if opts.mode == Mode::Apply && b + 1 < sizes.len() {
            if let Some(why) = stop_after(play, opts, b + 1, &batch_reports) {
                aborted = Some(why);
            }
        }
        reports.extend(batch_reports);
    }
    Ok(PlayReport {
        play: play.name.clone(),
        mode: opts.mode,
        hosts: reports,
        aborted,
    })
}

/// The play's hosts (limited), each with its desired state, in the play's `order:`.
fn ordered_hosts<'a>(
    inv: &'a Inventory,
    pb: &Playbook,
    play: &Play,
    opts: &RunOptions,
) -> Result<Selected<'a>, RunError> {
    let mut hosts = desired_states(inv, pb, play, opts.limit.as_deref());
    if hosts.is_empty() {
        return Err(RunError::NoHosts(match &opts.limit {
            Some(l) => format!("{} (limited to `{l}`)", play.hosts),
            None => play.hosts.clone(),
        }));
    }
    match play.order {
        HostOrder::Inventory => {}
        HostOrder::Sorted => hosts.sort_by(|a, b| a.0.name.cmp(&b.0.name)),
        HostOrder::Shuffle => shuffle(&mut hosts, opts.shuffle_seed),
    }
    Ok(hosts)
}

/// What every host runs with: the play's settings, overridden by the command line's.
fn settings(play: &Play, opts: &RunOptions) -> HostSettings {
    HostSettings {
        mode: opts.mode,
        allow: opts.allow.unwrap_or(play.allow),
        ssh: opts.ssh.clone(),
        verify: opts.verify,
        verify_timeout: Duration::from_secs_f64(play.verify.timeout),
        verify_interval: Duration::from_secs_f64(play.verify.interval),
        drain_timeout: Duration::from_secs_f64(play.drain_timeout),
        saved_plan: opts.saved_plan.clone(),
        gateway_snapshot: opts.gateway_snapshot,
        verbose: opts.verbose,
        lint_allow: play.lint_allow.clone(),
        call_tests: play.call_tests.clone(),
        call_test_seconds: play.call_test_seconds,
        call_tester: opts.call_tester.clone(),
    }
}

/// Why the rollout stops after batch `b` (numbered from 1), if it does: `any_errors_fatal`,
/// `max_fail_percentage`, or (by default) every host of the batch failed.
fn stop_after(play: &Play, opts: &RunOptions, b: usize, reports: &[HostReport]) -> Option<String> {
    let failed = reports.iter().filter(|r| r.status.is_failure()).count();
    let n = reports.len();
    let pct = 100.0 * failed as f64 / n.max(1) as f64;
    if failed > 0 && play.any_errors_fatal {
        return Some(format!(
            "batch {b} had {failed} failed host(s) and the play sets any_errors_fatal"
        ));
    }
    match opts.max_fail_percentage.or(play.max_fail_percentage) {
        Some(m) => (pct > m).then(|| {
            format!("batch {b} failed on {failed} of {n} hosts ({pct:.0}%), more than max_fail_percentage {m}%")
        }),
        None => (failed == n && n > 0).then(|| format!("every host of batch {b} failed")),
    }
}

/// What the hosts of every batch share.
struct Rollout {
    sem: Arc<Semaphore>,
    settings: Arc<HostSettings>,
    on_event: OnEvent,
    /// Lint before the run, for every host.
    findings: Vec<Finding>,
    /// See [`RunOptions::keep_contents`].
    keep_contents: bool,
}

impl Rollout {
    /// Run one batch's hosts at once (up to `forks`): their reports in the batch's order.
    async fn run_batch(
        &self,
        batch: usize,
        hosts: Vec<(&Host, Result<HostDesired, NoDesired>)>,
    ) -> Vec<HostReport> {
        let mut set = tokio::task::JoinSet::new();
        for (i, (h, d)) in hosts.into_iter().enumerate() {
            let host_findings: Vec<Finding> = self
                .findings
                .iter()
                .filter(|f| f.host.as_deref() == Some(&h.name))
                .cloned()
                .collect();
            let host = h.clone();
            let (settings, on_event) = (self.settings.clone(), self.on_event.clone());
            let keep_contents = self.keep_contents;
            // Hosts take their turn in the batch's order (the inventory's, or the play's
            // `order:`): with `--forks 1` they run one after another in that order, and the
            // output is the same from run to run. A permit freed by a finished host goes to
            // the next one here.
            let free_at_once = self.sem.available_permits();
            let permit = self
                .sem
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            set.spawn(async move {
                let _permit = permit;
                // Spread the connection set-up of the hosts that start together, so a large
                // fleet does not hit a bastion's MaxStartups all at once (the later ones
                // start as earlier ones finish, spread already).
                if free_at_once > 0 && i < 100 {
                    tokio::time::sleep(Duration::from_millis(i as u64 * 2)).await;
                }
                let mut r = run_host(&host, d, &settings, batch, &on_event, host_findings).await;
                // The host's block (diffs included) is shown now; what is kept until the
                // end is what the recap, the JSON and the history read.
                on_event(Event::Done(&r));
                if !keep_contents {
                    r.compact();
                }
                (i, r)
            });
        }
        let mut reports: Vec<(usize, HostReport)> = Vec::new();
        while let Some(res) = set.join_next().await {
            match res {
                Ok(x) => reports.push(x),
                Err(e) => reports.push((
                    usize::MAX,
                    HostReport::new("?", batch)
                        .fail(ErrorKind::Internal, format!("internal error: {e}")),
                )),
            }
        }
        reports.sort_by_key(|x| x.0);
        reports.into_iter().map(|x| x.1).collect()
    }
}

/// One host of a batch, unless an interrupt came first; lint before the run first in its
/// findings, the same finding found again on the final files only once.
async fn run_host(
    host: &Host,
    d: Result<HostDesired, NoDesired>,
    settings: &HostSettings,
    batch: usize,
    on_event: &OnEvent,
    findings: Vec<Finding>,
) -> HostReport {
    if crate::interrupt::requested() {
        return HostReport::new(&host.name, batch).fail(
            ErrorKind::NotRun,
            "interrupted (SIGINT/SIGTERM) before this host started",
        );
    }
    let started = Instant::now();
    let mut r = process_host(host, d, settings, batch, on_event).await;
    let after = std::mem::replace(&mut r.findings, findings);
    for f in after {
        if !r.findings.contains(&f) {
            r.findings.push(f);
        }
    }
    r.seconds = started.elapsed().as_secs_f64();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `order: shuffle` is a permutation of the hosts, the same for the same seed (a test
    /// can fix it) and another for another seed (each run seeds it from the clock).
    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let hosts: Vec<u32> = (0..40).collect();
        let shuffled = |seed| {
            let mut v = hosts.clone();
            shuffle(&mut v, seed);
            v
        };
        let (a, b) = (shuffled(7), shuffled(8));
        assert_eq!(a, shuffled(7));
        assert_ne!(a, hosts);
        assert_ne!(a, b);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, hosts);
    }

    #[test]
    fn batch_sizes() {
        assert_eq!(batches(10, &[]), vec![10]);
        assert_eq!(
            batches(10, &[BatchSize::Count(1), BatchSize::Percent(50)]),
            vec![1, 5, 4]
        );
        assert_eq!(
            batches(3, &[BatchSize::Count(1), BatchSize::Percent(100)]),
            vec![1, 2]
        );
        assert_eq!(batches(5, &[BatchSize::Count(2)]), vec![2, 2, 1]);
    }
}
