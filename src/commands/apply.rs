//! `switchyard apply`: plan, write what differs, run the FreeSWITCH steps, verify, roll
//! back on failure. `--check` stops after the plan.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{AllowArg, ConnectArgs, Context, Inputs, Output};
use crate::engine::outcome::Mode;
use crate::engine::run::RunOptions;
use crate::exit::{CommandError, CommandResult};
use crate::inputs::playbook::BatchSize;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Dry run: gather and plan, change nothing on any host
    #[arg(long, short = 'C')]
    pub check: bool,
    /// Show unified diffs of file changes (secrets masked)
    #[arg(long, short = 'D')]
    pub diff: bool,
    /// Write one machine-readable report to stdout at the end
    #[arg(long, conflicts_with = "json_lines")]
    pub json: bool,
    /// Stream one JSON object per host to stdout as each host finishes (for very large fleets)
    #[arg(long)]
    pub json_lines: bool,
    /// Disruptive steps allowed to make changes take effect (overrides the play's `allow:`)
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub allow: Option<AllowArg>,
    /// Hosts per batch: a count, a percentage, or a list such as `1,10%,100%` (overrides `serial:`)
    #[arg(long, value_name = "SIZES")]
    pub serial: Option<String>,
    /// Abort remaining batches when more than this percentage of a batch fails
    #[arg(long, value_name = "PCT")]
    pub max_fail_percentage: Option<f64>,
    /// Do not poll gateway registration after applying
    #[arg(long)]
    pub no_verify: bool,
    /// Apply exactly this reviewed plan (from `switchyard plan -o`); hosts whose change differs are refused
    #[arg(long, value_name = "FILE", conflicts_with = "check")]
    pub plan: Option<PathBuf>,
    /// Print the hosts each play would run on (after --limit), and stop: nothing is contacted
    #[arg(long)]
    pub list_hosts: bool,
    /// Print each play's tasks, and stop
    #[arg(long)]
    pub list_tasks: bool,
    #[command(flatten)]
    pub history: super::HistoryFile,
    #[command(flatten)]
    pub lock: super::LockArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

fn parse_serial(s: &str) -> Result<Vec<BatchSize>, String> {
    s.split(',').map(|x| BatchSize::parse(x.trim())).collect()
}

impl ApplyArgs {
    pub fn options(&self, cx: &Context) -> Result<RunOptions, CommandError> {
        let mode = if self.check { Mode::Check } else { Mode::Apply };
        Ok(RunOptions {
            serial: self
                .serial
                .as_deref()
                .map(parse_serial)
                .transpose()
                .map_err(|e| CommandError::usage(format!("--serial: {e}")))?,
            max_fail_percentage: self.max_fail_percentage,
            verify: !self.no_verify,
            shuffle_seed: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1),
            tags: self.inputs.tag_filter(),
            ..self.connect.options(mode, self.allow, cx)?
        })
    }
}

pub async fn run(a: ApplyArgs, cx: &Context) -> CommandResult {
    crate::interrupt::install();
    let mut opts = a.options(cx)?;
    let history = a.history.resolve(cx)?;
    let (inv, pb) = super::load(&a.inputs, cx)?;
    if a.list_hosts || a.list_tasks {
        return list(&inv, &pb, &opts, a.list_hosts, a.list_tasks);
    }
    if let Some(p) = &a.plan {
        opts.saved_plan = Some(Arc::new(crate::engine::plan::SavedPlan::load(p)?));
    }
    let output = if a.json_lines {
        Output::JsonLines
    } else if a.json {
        Output::Json
    } else {
        Output::Human
    };
    opts.call_tester = Some(crate::agent::call::tester());
    if opts.mode == Mode::Check {
        for play in pb.plays.iter().filter(|p| !p.call_tests.is_empty()) {
            eprint!(
                "{}: {}",
                play.name,
                crate::engine::call_tests::listing(&play.call_tests, play.call_test_seconds)
            );
        }
    }
    // A rollout (not a check) holds the fleet lock from before its first host to its end.
    let _fleet_lock = match opts.mode {
        Mode::Apply => history.rollout_lock(
            &inv,
            &pb,
            &format!("apply {}", a.inputs.playbook.display()),
            a.lock.wait(),
        )?,
        _ => None,
    };
    let (status, reports) = super::execute(&inv, &pb, &opts, a.diff, output, cx.style).await?;
    if opts.mode == Mode::Apply {
        history.record("apply", &reports);
        retry_file(&history.at.folder(), &a.inputs.playbook, &reports);
    }
    Ok(status)
}

/// After a rollout where hosts failed (or never ran), their names go to a retry file for
/// `--limit @FILE`; after one where none did, a stale retry file of that playbook is removed.
/// *Decision*: the file lives beside the run history (`PLAYBOOK-STEM.retry`), not beside the
/// playbook, so a rollout never leaves files in the repository it was run from. That folder
/// may be shared: the file is replaced by [`crate::atomic_file`], so a `.retry` link planted
/// there is refused, never written through (a stale one is removed as a link, never
/// followed).
fn retry_file(
    folder: &std::path::Path,
    playbook: &std::path::Path,
    reports: &[crate::engine::outcome::PlayReport],
) {
    let stem = playbook
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "playbook".into());
    let path = folder.join(format!("{stem}.retry"));
    let mut names: Vec<&str> = reports
        .iter()
        .flat_map(|p| &p.hosts)
        .filter(|h| h.status.is_failure() || h.status == crate::engine::outcome::HostStatus::NotRun)
        .map(|h| h.host.as_str())
        .collect();
    names.dedup();
    if names.is_empty() {
        let _ = std::fs::remove_file(&path);
        return;
    }
    let text: String = names.iter().map(|n| format!("{n}\n")).collect();
    let written = path
        .parent()
        .map(std::fs::create_dir_all)
        .unwrap_or(Ok(()))
        .and_then(|_| crate::atomic_file::write(&path, text.as_bytes()));
    match written {
        Ok(()) => eprintln!(
            "to retry the {} that did not succeed: --limit @{}",
            crate::report::count(names.len(), "host"),
            path.display()
        ),
        Err(e) => eprintln!(
            "warning: cannot write the retry file {}: {e}",
            path.display()
        ),
    }
}

/// `--list-hosts` / `--list-tasks`, as Ansible prints them: per play, its hosts (after
/// `--limit`) and its tasks. Nothing is rendered or contacted.
fn list(
    inv: &crate::inputs::inventory::Inventory,
    pb: &crate::inputs::playbook::Playbook,
    opts: &RunOptions,
    hosts: bool,
    tasks: bool,
) -> CommandResult {
    for play in &pb.plays {
        let selected: Vec<&str> = inv
            .select_limited(&play.hosts, opts.limit.as_deref())
            .into_iter()
            .map(|h| h.name.as_str())
            .collect();
        println!(
            "play: {} ({})",
            play.name,
            crate::report::count(selected.len(), "host")
        );
        if hosts {
            println!("  hosts:");
            for h in &selected {
                println!("    {h}");
            }
        }
        if tasks {
            println!("  tasks:");
            for t in play.with_tags(&opts.tags).tasks {
                if t.tags.is_empty() {
                    println!("    {}", t.name);
                } else {
                    println!("    {}  tags: [{}]", t.name, t.tags.join(", "));
                }
            }
        }
    }
    Ok(crate::exit::ExitStatus::Success)
}
