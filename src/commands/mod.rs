//! One module per verb of the command line. Each holds its clap arguments and a `run` that
//! returns an [`ExitStatus`] or a [`CommandError`]; `crate::cli` dispatches, and
//! `crate::exit` is the only place either becomes an exit code.
//!
//! Every verb that touches hosts goes through [`execute`] (or `run::run_play` directly for
//! quiet checks): the same pipeline, stopped where the verb needs it.

pub mod apply;
pub mod call;
pub mod completions;
pub mod demo;
pub mod drift;
pub mod history;
pub mod import;
pub mod inventory;
pub mod lint;
pub mod plan;
pub mod route;
pub mod schema;
pub mod trunks;
pub mod vault;
pub mod verify;
pub mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::{Args, ValueEnum};

use crate::engine::outcome::{Event, HostStatus, OnEvent, PlayReport};
use crate::engine::run::{self, RunOptions};
use crate::exit::{CommandError, ExitStatus};
use crate::freeswitch::reload::Disruption;
use crate::host::transport::SshOptions;
use crate::inputs::inventory::Inventory;
use crate::inputs::playbook::Playbook;
use crate::inputs::vault::Vault;
use crate::report::{self, Style};

/// What every command gets from the global options.
pub struct Context {
    pub vault: Vault,
    /// Colour for stderr.
    pub style: Style,
    /// `-v` count: remote commands and timings on stderr.
    pub verbose: u8,
    /// `switchyard.toml` (or the defaults).
    pub config: crate::inputs::config::Config,
}

impl Context {
    /// The inventory sources: `-i` (or `SWITCHYARD_INVENTORY`), else `switchyard.toml`.
    pub fn inventories(&self, given: &[PathBuf]) -> Result<Vec<PathBuf>, CommandError> {
        if !given.is_empty() {
            return Ok(given.to_vec());
        }
        if !self.config.inventory.is_empty() {
            return Ok(self.config.inventory.clone());
        }
        Err(CommandError::usage(format!(
            "no inventory: give `-i FILE`, set SWITCHYARD_INVENTORY, or set `inventory` in a {} of this folder or a parent",
            crate::inputs::config::FILE
        )))
    }
}

/// Disruptive steps a run may take (`--allow`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AllowArg {
    /// Only reloadxml, rescan, killgw and the like: no call is dropped
    None,
    /// Sofia profile restarts too (drops that profile's calls)
    Profile,
    /// Full FreeSWITCH restarts too
    Restart,
}

impl From<AllowArg> for Disruption {
    fn from(a: AllowArg) -> Disruption {
        match a {
            AllowArg::None => Disruption::None,
            AllowArg::Profile => Disruption::Profile,
            AllowArg::Restart => Disruption::Restart,
        }
    }
}

/// The inventory and playbook every host-facing verb reads.
#[derive(Debug, Args, Clone)]
pub struct Inputs {
    /// Inventory: YAML, INI or an executable inventory script, with group_vars/ and host_vars/ beside it; repeat to merge several in order (default: `inventory` in switchyard.toml)
    #[arg(
        long,
        short = 'i',
        value_name = "FILE",
        env = "SWITCHYARD_INVENTORY",
        hide_env_values = true
    )]
    pub inventory: Vec<std::path::PathBuf>,
    /// Playbook file (e.g. playbooks/wavix.yml)
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: std::path::PathBuf,
    /// Extra variables, above every other source: `key=value ...`, `{"key": value}` (YAML/JSON) or `@file.yml`; repeatable, later wins
    #[arg(long = "extra-vars", short = 'e', value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Only tasks with one of these tags (comma-separated; `always` tasks too, `never` ones only by name)
    #[arg(long, short = 't', value_name = "TAGS", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Leave out tasks with one of these tags (comma-separated)
    #[arg(long, value_name = "TAGS", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
}

impl Inputs {
    pub fn tag_filter(&self) -> crate::inputs::playbook::TagFilter {
        crate::inputs::playbook::TagFilter {
            only: self.tags.clone(),
            skip: self.skip_tags.clone(),
        }
    }

    /// Every `-e`, merged in order.
    pub fn extra(&self) -> Result<crate::inputs::inventory::Vars, CommandError> {
        extra_vars(&self.extra_vars)
    }
}

/// How hosts are reached and which of them.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// known_hosts file used to check host keys (default: ~/.ssh/known_hosts)
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<std::path::PathBuf>,
    /// Record the keys of hosts not yet in known_hosts instead of refusing them (a changed key is always refused)
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// How many hosts to work on at once (at least 1; default 100, or `forks` in switchyard.toml)
    #[arg(long, short = 'f', value_name = "N", value_parser = parse_forks)]
    pub forks: Option<u32>,
    /// Only hosts matching this pattern (host, group, glob, `a:b`, `!x`, `&y`)
    #[arg(long, short = 'l', value_name = "PATTERN")]
    pub limit: Option<String>,
}

fn parse_forks(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("at least one host must be worked on at a time".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a number of hosts")),
    }
}

impl ConnectArgs {
    /// The run options these arguments ask for. `--limit @FILE` reads host names, one per
    /// line, from FILE (the retry file a failed rollout writes).
    pub fn options(
        &self,
        mode: crate::engine::outcome::Mode,
        allow: Option<AllowArg>,
        cx: &Context,
    ) -> Result<RunOptions, CommandError> {
        let limit = match self.limit.as_deref() {
            Some(l) if l.starts_with('@') => {
                let path = std::path::Path::new(&l[1..]);
                let text = crate::inputs::source::read_text(path)?;
                let names: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect();
                if names.is_empty() {
                    return Err(format!("--limit {l}: the file names no host").into());
                }
                Some(names.join(":"))
            }
            other => other.map(String::from),
        };
        let ssh = SshOptions {
            known_hosts: self
                .known_hosts
                .clone()
                .or_else(|| cx.config.known_hosts.clone())
                .unwrap_or_else(SshOptions::default_known_hosts),
            accept_new_host_keys: self.accept_new_host_keys,
        };
        Ok(RunOptions {
            allow: allow.map(Into::into),
            forks: self.forks.or(cx.config.forks).unwrap_or(100) as usize,
            limit,
            verbose: cx.verbose,
            ..RunOptions::new(mode, ssh)
        })
    }
}

/// `-e` arguments, merged in order (later wins).
pub fn extra_vars(args: &[String]) -> Result<crate::inputs::inventory::Vars, CommandError> {
    let mut vars = crate::inputs::inventory::Vars::new();
    for (i, arg) in args.iter().enumerate() {
        vars.extend(crate::inputs::source::extra_vars(i + 1, arg)?);
    }
    Ok(vars)
}

/// Load an inventory and say its warnings on stderr.
pub fn load_inventory(paths: &[PathBuf], vault: &Vault) -> Result<Inventory, CommandError> {
    let inv = Inventory::load_all(paths, vault)?;
    for w in &inv.warnings {
        eprintln!("warning: {w}");
    }
    Ok(inv)
}

/// Load both inputs of a host-facing verb.
pub fn load(inputs: &Inputs, cx: &Context) -> Result<(Inventory, Playbook), CommandError> {
    let extra = inputs.extra()?;
    let paths = cx.inventories(&inputs.inventory)?;
    let mut inv = load_inventory(&paths, &cx.vault)?;
    inv.override_vars(&extra)?;
    let pb = Playbook::load(&inputs.playbook)?;
    dial_dids_are_dids(&inv, &pb)?;
    // An inventory variable nothing reads changes nothing: say so before any host is
    // touched, with no change to the exit code. *Decision*: only the likely misspellings
    // (a read variable is close) are spelt out here; an inventory is often shared by several
    // playbooks, and the variables only another playbook reads would otherwise be repeated on
    // every run of this one. The rest is one line; `lint` lists every one as a finding.
    let (unread, _) = crate::inputs::unread::unread_vars(&inv, &paths, &pb);
    let open: Vec<_> = unread.iter().filter(|f| f.allowed.is_none()).collect();
    let (misspelt, others): (Vec<_>, Vec<_>) = open
        .into_iter()
        .partition(|f| crate::inputs::unread::has_near_name(f));
    for f in misspelt {
        eprintln!("warning: {}:{}: {}", f.file, f.line, f.message);
    }
    if !others.is_empty() {
        eprintln!(
            "note: {} inventory variable setting(s) for these hosts are read by nothing in this \
             playbook (perhaps by another); `switchyard lint -i INVENTORY PLAYBOOK` lists them",
            others.len()
        );
    }
    Ok((inv, pb))
}

/// Every `dial_did` of a play's call tests is a DID of each host the play selects (its
/// `did_routes`, inventory and play vars together): else the call would come back to no
/// route. Refused before anything is contacted, at the test's `file:line:col`.
fn dial_dids_are_dids(inv: &Inventory, pb: &Playbook) -> Result<(), CommandError> {
    use crate::inputs::playbook::call_test::{foreign_did, locate_dial_did};
    for play in &pb.plays {
        if play.call_tests.iter().all(|t| t.dial_did.is_none()) {
            continue;
        }
        for h in inv.select(&play.hosts) {
            let vars = crate::engine::desired::context(h, &play.vars);
            let Some(did) = foreign_did(&play.call_tests, &vars) else {
                continue;
            };
            let text = crate::inputs::source::read_text(&pb.path).unwrap_or_default();
            let (line, column) = locate_dial_did(&text, did).unwrap_or((1, 1));
            return Err(crate::inputs::playbook::PlaybookError::from(
                crate::inputs::source::SourceError::Yaml {
                    path: pb.path.clone(),
                    line,
                    column,
                    message: format!(
                        "dial_did {}: not a DID of host {} (its did_routes: {}); the provider would bring the call back to no route",
                        crate::printable::printable(did),
                        h.name,
                        crate::inputs::playbook::call_test::did_numbers(&vars).join(", ")
                    ),
                },
            )
            .into());
        }
    }
    Ok(())
}

/// Where runs are recorded (`apply`, `drift`, `watch`) and read (`history`).
#[derive(Debug, Args, Clone)]
pub struct HistoryFile {
    /// Run history: an SQLite file, or a shared PostgreSQL database `postgres://USER@HOST[:PORT]/DB` whose password comes from PGPASSWORD or a password file, never the URL (default: $SWITCHYARD_HISTORY, `history` in switchyard.toml, ~/.local/state/switchyard/history.db)
    #[arg(long = "history", value_name = "FILE|URL")]
    pub file: Option<String>,
    /// Retention: delete history records older than this (`90d`, `12h`) after recording
    #[arg(long, value_name = "AGE")]
    pub keep: Option<String>,
}

/// A history resolved from the command line, the environment and `switchyard.toml`.
pub struct HistoryAt {
    pub at: crate::agent::history::Location,
    /// `--keep` in seconds.
    pub keep: Option<u64>,
}

impl HistoryFile {
    /// `--history`, else `$SWITCHYARD_HISTORY`, else `history` in switchyard.toml, else the
    /// default file; a `postgres://` URL holding a password is refused here, before any use.
    pub fn resolve(&self, cx: &Context) -> Result<HistoryAt, CommandError> {
        use crate::agent::history::Location;
        let given = self
            .file
            .clone()
            .or_else(|| {
                std::env::var_os("SWITCHYARD_HISTORY")
                    .filter(|v| !v.is_empty())
                    .map(|v| v.to_string_lossy().into_owned())
            })
            .or_else(|| cx.config.history.clone());
        let at = match given {
            Some(s) => Location::parse(&s).map_err(|e| CommandError::usage(e.to_string()))?,
            None => Location::File(crate::agent::history::default_path()),
        };
        Ok(HistoryAt {
            at,
            keep: self.keep()?,
        })
    }

    /// `--keep` in seconds.
    pub fn keep(&self) -> Result<Option<u64>, CommandError> {
        self.keep
            .as_deref()
            .map(|k| {
                crate::clock::parse_duration(k).ok_or_else(|| {
                    CommandError::usage(format!("--keep: `{k}` is not a duration like 90d or 12h"))
                })
            })
            .transpose()
    }
}

/// `--lock-timeout` of the verbs that change hosts (`apply`, `drift --fix`).
#[derive(Debug, Args, Clone)]
pub struct LockArgs {
    /// With a PostgreSQL history: seconds to wait while another rollout of the same play to this fleet holds the fleet lock (0: fail at once, naming its holder; default: wait)
    #[arg(long, value_name = "SECONDS")]
    pub lock_timeout: Option<u64>,
}

impl LockArgs {
    pub fn wait(&self) -> crate::agent::history::lock::Wait {
        use crate::agent::history::lock::Wait;
        match self.lock_timeout {
            None => Wait::Forever,
            Some(s) => Wait::For(std::time::Duration::from_secs(s)),
        }
    }
}

impl HistoryAt {
    /// The fleet rollout lock of the playbook's plays on this inventory, held until dropped
    /// (`None` with an SQLite history: see [`crate::agent::history::lock`]).
    pub fn rollout_lock(
        &self,
        inv: &Inventory,
        pb: &Playbook,
        command: &str,
        wait: crate::agent::history::lock::Wait,
    ) -> Result<Option<crate::agent::history::lock::RolloutLock>, CommandError> {
        let plays: Vec<&str> = pb.plays.iter().map(|p| p.name.as_str()).collect();
        let hosts: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        crate::agent::history::rollout_lock(&self.at, &plays, &hosts, command, wait)
            .map_err(|e| CommandError::Failed(e.into()))
    }

    /// Record a run; a history that cannot be written is a warning, never a failed rollout.
    pub fn record(&self, kind: &str, plays: &[crate::engine::outcome::PlayReport]) {
        if let Err(e) = crate::agent::history::record(&self.at, self.keep, kind, plays) {
            eprintln!("warning: cannot record history: {e}");
        }
    }
}

/// What goes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Nothing: human text goes to stderr.
    Human,
    /// One JSON document at the end.
    Json,
    /// One JSON line per host as it finishes.
    JsonLines,
}

/// Host blocks and a live progress line on stderr. The progress line is drawn only on a
/// terminal and is always erased before anything else is written, so it never mixes with
/// diffs; elsewhere each host block is plain text.
///
/// *Decision* (issue 26 item 5, "a progress crate if it serves"): it does not serve here.
/// The line is one counter sentence redrawn with `\r` and an erase when a host finishes;
/// indicatif would bring its own draw thread, terminal probing and a dependency tree for
/// that, and host blocks would still have to go through its `suspend` to stay unmixed.
struct Progress {
    tty: bool,
    total: usize,
    done: usize,
    changed: usize,
    failed: usize,
    /// Hosts whose connection is being tried again, and the attempt.
    retrying: std::collections::BTreeMap<String, (u32, u32)>,
}

impl Progress {
    fn line(&self) -> String {
        let mut s = format!(
            "{}/{} hosts, {} changed, {} failed",
            self.done, self.total, self.changed, self.failed
        );
        if !self.retrying.is_empty() {
            let names: Vec<String> = self
                .retrying
                .iter()
                .take(3)
                .map(|(h, (a, of))| format!("{h} {a}/{of}"))
                .collect();
            s.push_str(&format!(
                ", retrying {}{}",
                names.join(", "),
                if self.retrying.len() > 3 { ", ..." } else { "" }
            ));
        }
        s
    }

    fn event(&mut self, e: Event<'_>, block: Option<&str>, json_line: Option<String>) {
        use std::io::Write;
        match e {
            Event::Selected { hosts } => self.total += hosts,
            Event::Retrying { host, attempt, of } => {
                self.retrying.insert(host.to_string(), (attempt, of));
            }
            Event::Done(r) => {
                self.done += 1;
                self.retrying.remove(&r.host);
                match r.status {
                    HostStatus::Changed => self.changed += 1,
                    s if s.is_failure() => self.failed += 1,
                    _ => {}
                }
            }
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        if let Some(b) = block {
            let _ = write!(err, "{b}");
        }
        if let Some(line) = json_line {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        if self.tty {
            let _ = write!(err, "{}", self.line());
        }
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Run every play, print host blocks as they finish and the recap.
pub async fn execute(
    inv: &Inventory,
    pb: &Playbook,
    opts: &RunOptions,
    diff: bool,
    output: Output,
    style: Style,
) -> Result<(ExitStatus, Vec<PlayReport>), CommandError> {
    use std::io::IsTerminal;
    let mut reports = Vec::new();
    let mode = opts.mode;
    let progress = Arc::new(Mutex::new(Progress {
        tty: std::io::stderr().is_terminal()
            && std::env::var_os("TERM").is_some_and(|t| t != "dumb"),
        total: 0,
        done: 0,
        changed: 0,
        failed: 0,
        retrying: Default::default(),
    }));
    for play in &pb.plays {
        let shown = progress.clone();
        let play_name = play.name.clone();
        let on_event: OnEvent = Arc::new(move |e| {
            let (block, line) = match &e {
                Event::Done(r) => (
                    Some(report::host_block(r, diff, mode, style)),
                    (output == Output::JsonLines)
                        .then(|| serde_json::json!({"play": play_name, "host": r}).to_string()),
                ),
                _ => (None, None),
            };
            shown
                .lock()
                .expect("progress lock")
                .event(e, block.as_deref(), line);
        });
        match run::run_play(inv, pb, play, opts, on_event).await {
            Ok(r) => {
                let stop = r.aborted.is_some();
                reports.push(r);
                if stop {
                    break;
                }
            }
            Err(run::RunError::Lint { errors, findings }) => {
                progress.lock().expect("progress lock").finish();
                eprint!("{}", report::findings(&findings));
                eprintln!(
                    "error: lint found {errors} error(s) in play `{}`; nothing was pushed",
                    play.name
                );
                return Ok((ExitStatus::Failure, reports));
            }
            Err(e) => return Err(e.into()),
        }
    }
    progress.lock().expect("progress lock").finish();
    eprint!("{}", report::recap(&reports, style));
    if output == Output::Json {
        println!("{}", report::json(&reports));
    }
    Ok((ExitStatus::of_run(&reports), reports))
}

/// A runner callback that shows nothing (checks whose output is a summary of their own).
pub fn quiet() -> OnEvent {
    Arc::new(|_| {})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::outcome::{ErrorKind, HostReport};

    #[test]
    fn the_progress_line_counts_against_the_total_and_names_retries() {
        let mut p = Progress {
            tty: false,
            total: 0,
            done: 0,
            changed: 0,
            failed: 0,
            retrying: Default::default(),
        };
        p.event(Event::Selected { hosts: 100 }, None, None);
        for i in 0..37 {
            let r = HostReport::new(&format!("pbx{i}"), 1);
            let r = match i {
                0 | 1 => r.fail(ErrorKind::Unreachable, "down"),
                2 => HostReport {
                    status: HostStatus::Changed,
                    ..r
                },
                _ => r,
            };
            p.event(Event::Done(&r), None, None);
        }
        p.event(
            Event::Retrying {
                host: "pbx40",
                attempt: 2,
                of: 3,
            },
            None,
            None,
        );
        assert_eq!(
            p.line(),
            "37/100 hosts, 1 changed, 2 failed, retrying pbx40 2/3"
        );
        // A host that finishes is no longer shown as retrying.
        p.event(Event::Done(&HostReport::new("pbx40", 1)), None, None);
        assert_eq!(p.line(), "38/100 hosts, 1 changed, 2 failed");
    }
}
