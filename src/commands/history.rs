//! `switchyard history`: the run history, newest last (`--keep` prunes it first);
//! `switchyard history migrate`: an SQLite history copied into PostgreSQL.

use clap::Args;

use crate::agent::history::{postgres, sqlite, Location};
use crate::exit::{CommandError, CommandResult, ExitStatus};

use super::Context;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
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

#[derive(Debug, clap::Subcommand)]
pub enum HistoryCommand {
    /// Copy an SQLite history into a PostgreSQL one, in one transaction (once: a second run
    /// of the same file does nothing)
    Migrate {
        /// The SQLite history file (a JSON-lines history of older versions is converted first)
        #[arg(long, value_name = "FILE")]
        from: std::path::PathBuf,
        /// The database: postgres://USER@HOST[:PORT]/DB (password from PGPASSWORD or a password file)
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

pub fn run(a: HistoryArgs, cx: &Context) -> CommandResult {
    if let Some(HistoryCommand::Migrate { from, to }) = &a.command {
        return migrate(from, to);
    }
    let resolved = a.history.resolve(cx)?;
    let keep = resolved.keep;
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
    let mut history = crate::agent::history::History::open(&resolved.at)?;
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

fn migrate(from: &std::path::Path, to: &str) -> CommandResult {
    let target = match Location::parse(to).map_err(|e| CommandError::usage(e.to_string()))? {
        Location::Postgres(t) => t,
        Location::File(_) => {
            return Err(CommandError::usage(
                "history migrate: --to must be a postgres:// URL",
            ))
        }
    };
    if !from.exists() {
        return Err(format!("{}: no such history file", from.display()).into());
    }
    let mut source = sqlite::Sqlite::open(from)?;
    let mut pg = postgres::Pg::connect(&target)?;
    // The same file under another name is the same history: keyed by its full path.
    let key = from
        .canonicalize()
        .unwrap_or_else(|_| from.to_path_buf())
        .display()
        .to_string();
    match pg.migrate_from(&mut source, &key)? {
        Some(n) => eprintln!(
            "history: copied {n} records from {} to {target}",
            from.display()
        ),
        None => eprintln!(
            "history: {} was copied to {target} before; nothing done",
            from.display()
        ),
    }
    Ok(ExitStatus::Success)
}
