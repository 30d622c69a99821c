//! `switchyard drift`: check every host for drift without changing anything (the apply
//! pipeline stopped after the plan), and with `--fix` correct the drifted hosts through
//! the normal apply path.

use clap::Args;

use super::{AllowArg, ConnectArgs, Context, Inputs, Output};
use crate::engine::outcome::{HostReport, Mode};
use crate::engine::plan::Difference;
use crate::exit::{CommandResult, ExitStatus};

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Correct drifted hosts through the normal apply path (rollout policy, reloads, verification, rollback)
    #[arg(long)]
    pub fix: bool,
    /// Exit 3 for pending changes too (inputs changed, not yet applied), not only for drift
    #[arg(long)]
    pub fail_on_pending: bool,
    /// Show the masked diff of every drifted or pending file
    #[arg(long, short = 'D')]
    pub diff: bool,
    /// Write the drift (and correction) reports to stdout as JSON
    #[arg(long)]
    pub json: bool,
    /// Disruptive steps a correction may take (overrides the play's `allow:`)
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub allow: Option<AllowArg>,
    #[command(flatten)]
    pub history: super::HistoryFile,
    #[command(flatten)]
    pub lock: super::LockArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// One line per host: what differs and why.
pub fn drift_line(h: &HostReport) -> String {
    let of = |d: Difference| {
        h.files
            .iter()
            .filter(|f| f.difference == Some(d))
            .map(|f| f.rel.clone())
            .collect::<Vec<_>>()
    };
    let (drift, pending) = (of(Difference::Drift), of(Difference::Pending));
    if h.status.is_failure() {
        format!(
            "{}: ERROR {}",
            h.host,
            crate::printable::printable_block(h.error_text().unwrap_or(""), "    ")
        )
    } else if drift.is_empty() && pending.is_empty() && h.owed.is_empty() && h.pending.is_empty() {
        format!("{}: in sync", h.host)
    } else {
        let mut parts = Vec::new();
        if !drift.is_empty() {
            parts.push(format!("drift {}", drift.join(", ")));
        }
        if !h.owed.is_empty() {
            parts.push(format!(
                "steps owed {} (a past apply wrote the files, FreeSWITCH was never told)",
                h.owed
                    .iter()
                    .map(|s| format!("`{}`", s.action))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !pending.is_empty() {
            parts.push(format!("pending {}", pending.join(", ")));
        }
        // A disruptive step the files already need but no run was allowed to take: the
        // files are as the playbook says, FreeSWITCH does not run them yet.
        if !h.pending.is_empty() {
            parts.push(format!(
                "{} (the files need it; no run was allowed to: `--allow {}`)",
                h.pending
                    .iter()
                    .map(|p| format!("`{}` pending", p.action))
                    .collect::<Vec<_>>()
                    .join(", "),
                if h.pending
                    .iter()
                    .any(|p| p.disruption == crate::freeswitch::reload::Disruption::Restart)
                {
                    "restart"
                } else {
                    "profile"
                }
            ));
        }
        format!("{}: {}", h.host, parts.join("; "))
    }
}

pub async fn run(a: DriftArgs, cx: &Context) -> CommandResult {
    let (inv, pb) = super::load(&a.inputs, cx)?;
    let history = a.history.resolve(cx)?;
    let mut opts = a.connect.options(Mode::Check, a.allow, cx)?;
    opts.tags = a.inputs.tag_filter();
    let mut reports = Vec::new();
    for play in &pb.plays {
        reports.push(crate::engine::run::run_play(&inv, &pb, play, &opts, super::quiet()).await?);
    }
    for h in reports.iter().flat_map(|p| &p.hosts) {
        eprintln!("{}", drift_line(h));
        if a.diff {
            for f in h.files.iter().filter(|f| f.difference.is_some()) {
                eprint!("{}", cx.style.diff(&f.diff));
            }
        }
    }
    history.record("drift", &reports);
    let hosts = || reports.iter().flat_map(|p| &p.hosts);
    let errors = hosts().any(|h| h.status.is_failure());
    let drifted: Vec<String> = hosts()
        .filter(|h| h.has_drift())
        .map(|h| h.host.clone())
        .collect();
    // Pending: inputs changed but not yet applied, or a step the files need still not
    // taken (a restart no run was allowed to make).
    let pending = hosts().any(|h| {
        !h.pending.is_empty()
            || h.files
                .iter()
                .any(|f| f.difference == Some(Difference::Pending))
    });
    let found = if errors {
        ExitStatus::Failure
    } else if !drifted.is_empty() || (a.fail_on_pending && pending) {
        ExitStatus::Drift
    } else {
        ExitStatus::Success
    };
    let mut fixed = Vec::new();
    let mut status = found;
    if a.fix && !drifted.is_empty() {
        // A correction is a rollout: it holds the fleet lock as `apply` does.
        let _fleet_lock = history.rollout_lock(
            &inv,
            &pb,
            &format!("drift --fix {}", a.inputs.playbook.display()),
            a.lock.wait(),
        )?;
        eprintln!("correcting drift on {}", drifted.join(", "));
        opts.mode = Mode::Apply;
        opts.limit = Some(drifted.join(":"));
        opts.call_tester = Some(crate::agent::call::tester());
        let (fix_status, f) =
            super::execute(&inv, &pb, &opts, true, Output::Human, cx.style).await?;
        history.record("fix", &f);
        fixed = f;
        // Corrected: the fleet is as the playbook says, unless the correction (or the
        // check of another host) failed.
        status = if errors {
            ExitStatus::Failure
        } else {
            fix_status
        };
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"drift": reports, "fix": fixed}))?
        );
    }
    Ok(status)
}
