//! `switchyard history`: the local run history, newest last (`--keep` prunes it first).

use clap::Args;

use crate::exit::{CommandError, CommandResult, ExitStatus};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub history: super::HistoryFile,
    /// Only this host
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Only entries newer than this: `2h`, `7d`, or seconds since the epoch
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Print the entries as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: HistoryArgs) -> CommandResult {
    let path = a.history.path();
    let keep = a.history.keep()?;
    let since = match &a.since {
        None => 0,
        Some(s) => match s.parse::<u64>() {
            Ok(epoch) => epoch,
            Err(_) => crate::clock::now().saturating_sub(
                crate::clock::parse_duration(s).ok_or_else(|| {
                    CommandError::usage(format!("--since: `{s}` is not a duration like 2h or 7d"))
                })?,
            ),
        },
    };
    let mut history = crate::agent::history::History::open(&path)?;
    if let Some(keep) = keep {
        let n = history.prune(crate::clock::now().saturating_sub(keep))?;
        eprintln!(
            "history: {n} records older than {} deleted",
            a.history.keep.as_deref().unwrap_or("")
        );
    }
    let entries = history.query(a.host.as_deref(), since)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitStatus::Success);
    }
    for e in &entries {
        let r = e.summary();
        let files: Vec<String> = r
            .files
            .iter()
            .filter(|f| f.status != "ok")
            .map(|f| format!("{} {}", f.rel, f.difference.as_deref().unwrap_or(&f.status)))
            .collect();
        let steps: Vec<&str> = r.steps.iter().map(|s| s.command.as_str()).collect();
        // A drift check changes nothing: its report's `changed` means "would change", so it
        // is shown as what the check found.
        let status = match (e.kind.as_str(), r.status.as_str()) {
            (_, "") => "?",
            ("drift", "changed")
                if r.files
                    .iter()
                    .any(|f| f.difference.as_deref() == Some("drift")) =>
            {
                "drift found"
            }
            ("drift", "changed") => "pending",
            ("drift", "ok") => "in sync",
            (_, s) => s,
        };
        println!(
            "{}  {:<6} {:<12} {:<18} {}{}{}",
            crate::clock::iso(e.at),
            e.kind,
            e.host,
            status,
            files.join(", "),
            if steps.is_empty() {
                String::new()
            } else {
                format!("  [{}]", steps.join("; "))
            },
            r.error
                .as_deref()
                .map(|x| format!("  error: {x}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitStatus::Success)
}
