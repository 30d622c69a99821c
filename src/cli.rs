//! Command-line interface: clap arguments, turned into validated options, dispatched.
//!
//! This is the one place that maps errors to text and exit codes: 0 success, 1 a host or
//! input failed, 2 a usage error (clap) — and for `drift`, 2 means drift found.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::inventory::Inventory;
use crate::playbook::{BatchSize, Disruption, Playbook};
use crate::report;
use crate::run::{self, Mode, RunOptions};
use crate::transport::SshOptions;
use crate::vault::Vault;

/// Push-based, agentless provisioner for fleets of FreeSWITCH PBXes.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// File holding the vault passphrase (else $SWITCHYARD_VAULT_PASSWORD_FILE, $SWITCHYARD_VAULT_PASSWORD)
    #[arg(long, global = true, value_name = "FILE")]
    pub vault_password_file: Option<PathBuf>,
    /// age identity file for the vault (else $SWITCHYARD_VAULT_IDENTITY)
    #[arg(long, global = true, value_name = "FILE")]
    pub vault_identity: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply a playbook: plan, write what differs, reload FreeSWITCH, verify, roll back on failure
    Apply(ApplyArgs),
    /// Poll the gateways a playbook manages until they are healthy (REGED, or NOREG+UP)
    Verify(ApplyArgs),
    /// Check a configuration without connecting: rendered playbook, or an existing conf dir
    Lint(LintArgs),
    /// Print hosts, groups and merged variables (secrets masked)
    Inventory(InventoryArgs),
    /// Save a reviewable plan (hashes, masked diffs, reload steps; no secrets) without changing anything
    Plan(PlanArgs),
    /// Check every host for drift without changing anything (exit 0 none, 2 drift, 1 error)
    Drift(DriftArgs),
    /// Run as an agent: check (and with --fix correct) drift every interval, serve Prometheus metrics
    Watch(WatchArgs),
    /// List the local run history
    History(HistoryArgs),
    /// Encrypt and decrypt secrets with the vault (age)
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Run the shipped Wavix playbook on a built-in demo fleet (no real PBX needed)
    Demo(DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Encrypt a file (a vars file becomes group_vars/NAME.age or host_vars/NAME.age)
    Encrypt {
        file: PathBuf,
        /// Output file (default: FILE.age)
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
    /// Decrypt a file to stdout (or -o FILE)
    Decrypt {
        file: PathBuf,
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
    /// Edit an encrypted file with $EDITOR, re-encrypting it afterwards
    Edit { file: PathBuf },
    /// Encrypt one value read from stdin, printed as an inventory line `NAME: {vault: "..."}`
    EncryptString {
        #[arg(long, default_value = "secret")]
        name: String,
    },
    /// Create a new age identity file (mode 0600) for --vault-identity
    Keygen {
        #[arg(long, short = 'o')]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PlanFormat {
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(long, short = 'i', value_name = "FILE")]
    pub inventory: PathBuf,
    pub playbook: PathBuf,
    /// Write the plan here (JSON: the input of `apply --plan`)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// Also write a review summary for a pull-request comment to this file
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub allow: Option<AllowArg>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[arg(long, short = 'i', value_name = "FILE")]
    pub inventory: PathBuf,
    pub playbook: PathBuf,
    /// Correct drifted hosts through the normal apply path (rollout policy, reloads, verification, rollback)
    #[arg(long)]
    pub fix: bool,
    /// Exit 2 for pending changes too, not only for drift
    #[arg(long)]
    pub fail_on_pending: bool,
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub allow: Option<AllowArg>,
    /// Run history file (default: $SWITCHYARD_HISTORY or ~/.local/state/switchyard/history.jsonl)
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[arg(long, short = 'i', value_name = "FILE")]
    pub inventory: PathBuf,
    pub playbook: PathBuf,
    /// Time between rounds: `30s`, `15m`, `1h`
    #[arg(long, default_value = "15m", value_name = "DURATION")]
    pub every: String,
    /// Random extra delay up to this much before each round (spreads fleets of agents)
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub jitter: String,
    /// Correct drift, not only report it
    #[arg(long)]
    pub fix: bool,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9477
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Stop after this many rounds
    #[arg(long, value_name = "N")]
    pub rounds: Option<u64>,
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub allow: Option<AllowArg>,
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Only this host
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Only entries newer than this: `2h`, `7d`, or seconds since the epoch
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AllowArg {
    None,
    Profile,
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

#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// known_hosts file used to check host keys
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Record the keys of hosts not yet in known_hosts instead of refusing them (a changed key is always refused)
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// How many hosts to work on at once
    #[arg(long, short = 'f', default_value_t = 100, value_name = "N")]
    pub forks: usize,
    /// Only hosts matching this pattern (host, group, glob, `a:b`, `!x`, `&y`)
    #[arg(long, short = 'l', value_name = "PATTERN")]
    pub limit: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Inventory file (Ansible YAML layout)
    #[arg(long, short = 'i', value_name = "FILE")]
    pub inventory: PathBuf,
    /// Playbook file
    pub playbook: PathBuf,
    /// Dry run: gather and plan, change nothing on any host
    #[arg(long, short = 'C')]
    pub check: bool,
    /// Show unified diffs of file changes (secrets masked)
    #[arg(long, short = 'D')]
    pub diff: bool,
    /// Write a machine-readable report to stdout
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
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Run history file (default: $SWITCHYARD_HISTORY or ~/.local/state/switchyard/history.jsonl)
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Inventory file
    #[arg(
        long,
        short = 'i',
        value_name = "FILE",
        requires = "playbook",
        conflicts_with = "conf"
    )]
    pub inventory: Option<PathBuf>,
    /// Playbook file
    pub playbook: Option<PathBuf>,
    /// Lint an existing FreeSWITCH conf directory instead
    #[arg(long, value_name = "DIR")]
    pub conf: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[arg(long, short = 'i', value_name = "FILE")]
    pub inventory: PathBuf,
    /// Only this host
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo fleet (created on first use, reused after)
    #[arg(long, default_value = "target/switchyard-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Start again from stock FreeSWITCH conf trees
    #[arg(long)]
    pub reset: bool,
    /// Dry run
    #[arg(long, short = 'C')]
    pub check: bool,
}

/// Run the command line; returns the process exit code.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    let vault = match crate::vault::Vault::from_sources(
        cli.vault_password_file.as_deref(),
        cli.vault_identity.as_deref(),
    ) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    match rt.block_on(dispatch(cli.command, &vault)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn dispatch(cmd: Command, vault: &Vault) -> Result<i32, BoxError> {
    match cmd {
        Command::Apply(a) => apply(a, if_check(Mode::Apply), vault).await,
        Command::Verify(a) => apply(a, |_| Mode::Verify, vault).await,
        Command::Lint(a) => lint(a, vault),
        Command::Inventory(a) => inventory(a, vault),
        Command::Plan(a) => plan(a, vault).await,
        Command::Drift(a) => drift(a, vault).await,
        Command::Watch(a) => watch(a).await,
        Command::Vault(v) => vault_cmd(v, vault),
        Command::History(a) => history(a),
        Command::Demo(a) => crate::demo::run(&a.dir, a.reset, a.check).await,
    }
}

fn base_options(mode: Mode, allow: Option<AllowArg>, c: &ConnectArgs) -> RunOptions {
    let ssh = SshOptions {
        known_hosts: c
            .known_hosts
            .clone()
            .unwrap_or_else(SshOptions::default_known_hosts),
        accept_new_host_keys: c.accept_new_host_keys,
    };
    RunOptions {
        allow: allow.map(Into::into),
        forks: c.forks,
        limit: c.limit.clone(),
        ..RunOptions::new(mode, ssh)
    }
}

async fn plan(a: PlanArgs, vault: &Vault) -> Result<i32, BoxError> {
    let inv = load_inventory(&a.inventory, vault)?;
    let pb = Playbook::load(&a.playbook)?;
    let opts = base_options(Mode::Check, a.allow, &a.connect);
    let (code, reports) = execute(&inv, &pb, &opts, false, Output::Human).await?;
    std::fs::write(&a.out, report::json(&reports))
        .map_err(|e| format!("{}: {e}", a.out.display()))?;
    eprintln!("plan written to {}", a.out.display());
    if let Some(md) = &a.markdown {
        std::fs::write(md, crate::review::markdown(&reports))
            .map_err(|e| format!("{}: {e}", md.display()))?;
        eprintln!("review summary written to {}", md.display());
    }
    Ok(code)
}

/// One line per host: what differs and why.
fn drift_line(h: &run::HostReport) -> String {
    use crate::plan::Difference;
    let of = |d: Difference| {
        h.files
            .iter()
            .filter(|f| f.difference == Some(d))
            .map(|f| f.rel.clone())
            .collect::<Vec<_>>()
    };
    let (drift, pending) = (of(Difference::Drift), of(Difference::Pending));
    if h.status.is_failure() {
        format!("{}: ERROR {}", h.host, h.error.as_deref().unwrap_or(""))
    } else if drift.is_empty() && pending.is_empty() && h.owed.is_empty() {
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
        format!("{}: {}", h.host, parts.join("; "))
    }
}

async fn drift(a: DriftArgs, vault: &Vault) -> Result<i32, BoxError> {
    use crate::plan::Difference;
    let inv = load_inventory(&a.inventory, vault)?;
    let pb = Playbook::load(&a.playbook)?;
    let history = a
        .history
        .clone()
        .unwrap_or_else(crate::history::default_path);
    let mut opts = base_options(Mode::Check, a.allow, &a.connect);
    let mut reports = Vec::new();
    let quiet: run::OnHost = Arc::new(|_| {});
    for play in &pb.plays {
        reports.push(run::run_play(&inv, &pb, play, &opts, quiet.clone()).await?);
    }
    for p in &reports {
        for h in &p.hosts {
            eprintln!("{}", drift_line(h));
        }
    }
    let _ = crate::history::record(&history, "drift", &reports);
    let hosts = || reports.iter().flat_map(|p| &p.hosts);
    let errors = hosts().any(|h| h.status.is_failure());
    let drifted: Vec<String> = hosts()
        .filter(|h| h.has_drift())
        .map(|h| h.host.clone())
        .collect();
    let pending = hosts().any(|h| {
        h.files
            .iter()
            .any(|f| f.difference == Some(Difference::Pending))
    });
    let mut fixed = Vec::new();
    if a.fix && !drifted.is_empty() {
        eprintln!("correcting drift on {}", drifted.join(", "));
        opts.mode = Mode::Apply;
        opts.limit = Some(drifted.join(":"));
        let (code, f) = execute(&inv, &pb, &opts, true, Output::Human).await?;
        let _ = crate::history::record(&history, "fix", &f);
        fixed = f;
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"drift": reports, "fix": fixed}))?
            );
        }
        return Ok(if code != 0 || errors { 1 } else { 0 });
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"drift": reports, "fix": fixed}))?
        );
    }
    Ok(if errors {
        1
    } else if !drifted.is_empty() || (a.fail_on_pending && pending) {
        2
    } else {
        0
    })
}

async fn watch(a: WatchArgs) -> Result<i32, BoxError> {
    let every = crate::history::parse_duration(&a.every)
        .ok_or_else(|| format!("--every: `{}` is not a duration like 30s, 15m, 1h", a.every))?;
    let jitter = crate::history::parse_duration(&a.jitter)
        .ok_or_else(|| format!("--jitter: `{}` is not a duration", a.jitter))?;
    crate::watch::watch(crate::watch::WatchOptions {
        inventory: a.inventory,
        playbook: a.playbook,
        every: std::time::Duration::from_secs(every),
        jitter: std::time::Duration::from_secs(jitter),
        fix: a.fix,
        listen: a.metrics,
        history: Some(a.history.unwrap_or_else(crate::history::default_path)),
        rounds: a.rounds,
        run: base_options(Mode::Check, a.allow, &a.connect),
    })
    .await
}

fn history(a: HistoryArgs) -> Result<i32, BoxError> {
    let path = a.history.unwrap_or_else(crate::history::default_path);
    let since = match &a.since {
        None => 0,
        Some(s) => match s.parse::<u64>() {
            Ok(epoch) => epoch,
            Err(_) => crate::state::now().saturating_sub(
                crate::history::parse_duration(s)
                    .ok_or_else(|| format!("--since: `{s}` is not a duration like 2h or 7d"))?,
            ),
        },
    };
    let entries: Vec<crate::history::Entry> = crate::history::read(&path)?
        .into_iter()
        .filter(|e| e.at >= since && a.host.as_ref().is_none_or(|h| &e.host == h))
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(0);
    }
    for e in &entries {
        let r = &e.report;
        let files: Vec<String> = r["files"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .filter(|f| f["status"] != "ok")
                    .map(|f| {
                        format!(
                            "{} {}",
                            f["rel"].as_str().unwrap_or(""),
                            f["difference"]
                                .as_str()
                                .unwrap_or(f["status"].as_str().unwrap_or(""))
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let steps: Vec<&str> = r["steps"]
            .as_array()
            .map(|s| s.iter().filter_map(|x| x["command"].as_str()).collect())
            .unwrap_or_default();
        println!(
            "{}  {:<6} {:<12} {:<18} {}{}{}",
            crate::history::iso(e.at),
            e.kind,
            e.host,
            r["status"].as_str().unwrap_or("?"),
            files.join(", "),
            if steps.is_empty() {
                String::new()
            } else {
                format!("  [{}]", steps.join("; "))
            },
            r["error"]
                .as_str()
                .map(|x| format!("  error: {x}"))
                .unwrap_or_default()
        );
    }
    Ok(0)
}

fn if_check(default: Mode) -> impl Fn(bool) -> Mode {
    move |check| if check { Mode::Check } else { default }
}

fn parse_serial(s: &str) -> Result<Vec<BatchSize>, String> {
    s.split(',').map(|x| BatchSize::parse(x.trim())).collect()
}

pub fn run_options(a: &ApplyArgs, mode: Mode) -> Result<RunOptions, BoxError> {
    Ok(RunOptions {
        serial: a
            .serial
            .as_deref()
            .map(parse_serial)
            .transpose()
            .map_err(|e| format!("--serial: {e}"))?,
        max_fail_percentage: a.max_fail_percentage,
        verify: !a.no_verify,
        shuffle_seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        ..base_options(mode, a.allow, &a.connect)
    })
}

async fn apply(a: ApplyArgs, mode: impl Fn(bool) -> Mode, vault: &Vault) -> Result<i32, BoxError> {
    crate::interrupt::install();
    let inv = load_inventory(&a.inventory, vault)?;
    let pb = Playbook::load(&a.playbook)?;
    let mut opts = run_options(&a, mode(a.check))?;
    if let Some(p) = &a.plan {
        opts.saved_plan = Some(Arc::new(crate::review::SavedPlan::load(p)?));
    }
    let output = if a.json_lines {
        Output::JsonLines
    } else if a.json {
        Output::Json
    } else {
        Output::Human
    };
    let (code, reports) = execute(&inv, &pb, &opts, a.diff, output).await?;
    if opts.mode == Mode::Apply {
        let path = a
            .history
            .clone()
            .unwrap_or_else(crate::history::default_path);
        if let Err(e) = crate::history::record(&path, "apply", &reports) {
            eprintln!("warning: cannot record history in {}: {e}", path.display());
        }
    }
    Ok(code)
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

/// Host blocks and a live progress line on stderr. The progress line is redrawn only on a
/// terminal and is always erased before anything else is written, so it never mixes with
/// diffs; elsewhere each host block is plain text.
struct Progress {
    tty: bool,
    done: usize,
    changed: usize,
    failed: usize,
    batch: usize,
}

impl Progress {
    fn host(&mut self, r: &run::HostReport, block: &str, json_line: Option<String>) {
        use std::io::Write;
        self.done += 1;
        self.batch = self.batch.max(r.batch);
        match r.status {
            run::HostStatus::Changed => self.changed += 1,
            s if s.is_failure() => self.failed += 1,
            _ => {}
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = write!(err, "{block}");
        if let Some(line) = json_line {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        if self.tty {
            let _ = write!(
                err,
                "[batch {}] {} hosts done: {} changed, {} failed",
                self.batch, self.done, self.changed, self.failed
            );
        }
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Run every play, print host blocks as they finish and the recap; returns the exit code.
pub async fn execute(
    inv: &Inventory,
    pb: &Playbook,
    opts: &RunOptions,
    diff: bool,
    output: Output,
) -> Result<(i32, Vec<run::PlayReport>), BoxError> {
    use std::io::IsTerminal;
    let mut reports = Vec::new();
    let mut code = 0;
    let mode = opts.mode;
    let progress = Arc::new(std::sync::Mutex::new(Progress {
        tty: std::io::stderr().is_terminal()
            && std::env::var_os("TERM").is_some_and(|t| t != "dumb"),
        done: 0,
        changed: 0,
        failed: 0,
        batch: 0,
    }));
    for play in &pb.plays {
        let progress = progress.clone();
        let play_name = play.name.clone();
        let on_host: run::OnHost = Arc::new(move |r| {
            let block = report::host_block(r, diff, mode);
            let line = (output == Output::JsonLines)
                .then(|| serde_json::json!({"play": play_name, "host": r}).to_string());
            progress
                .lock()
                .expect("progress lock")
                .host(r, &block, line);
        });
        match run::run_play(inv, pb, play, opts, on_host).await {
            Ok(r) => {
                if r.aborted.is_some()
                    || r.hosts.iter().any(|h| {
                        h.status.is_failure()
                            || !h
                                .findings
                                .iter()
                                .all(|f| f.severity == crate::freeswitch::lint::Severity::Warning)
                    })
                {
                    code = 1;
                }
                let stop = r.aborted.is_some();
                reports.push(r);
                if stop {
                    break;
                }
            }
            Err(run::RunError::Lint { errors, findings }) => {
                eprint!("{}", report::findings(&findings));
                eprintln!(
                    "error: lint found {errors} error(s) in play `{}`; nothing was pushed",
                    play.name
                );
                return Ok((1, reports));
            }
            Err(e) => return Err(e.into()),
        }
    }
    progress.lock().expect("progress lock").finish();
    eprint!("{}", report::recap(&reports));
    if output == Output::Json {
        println!("{}", report::json(&reports));
    }
    Ok((code, reports))
}

/// Load an inventory and say its warnings on stderr.
fn load_inventory(path: &std::path::Path, vault: &Vault) -> Result<Inventory, BoxError> {
    let inv = Inventory::load_with(path, vault)?;
    for w in &inv.warnings {
        eprintln!("warning: {w}");
    }
    Ok(inv)
}

fn lint(a: LintArgs, vault: &Vault) -> Result<i32, BoxError> {
    let mut findings = Vec::new();
    if let Some(dir) = &a.conf {
        let files = crate::source::read_conf_dir(dir)?;
        findings.extend(crate::freeswitch::lint::lint(None, &files));
    } else {
        let (Some(i), Some(p)) = (&a.inventory, &a.playbook) else {
            return Err("give `-i INVENTORY PLAYBOOK`, or `--conf DIR`".into());
        };
        let inv = load_inventory(i, vault)?;
        let pb = Playbook::load(p)?;
        for play in &pb.plays {
            for (h, d) in run::desired_states(&inv, &pb, play, None) {
                match d {
                    Ok(d) => findings.extend(run::lint_desired(h, &d)),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return Ok(1);
                    }
                }
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        print!("{}", report::findings(&findings));
    }
    Ok(
        if findings
            .iter()
            .any(|f| f.severity == crate::freeswitch::lint::Severity::Error)
        {
            1
        } else {
            0
        },
    )
}

fn inventory(a: InventoryArgs, vault: &Vault) -> Result<i32, BoxError> {
    let inv = load_inventory(&a.inventory, vault)?;
    let hosts: Vec<&crate::inventory::Host> = inv
        .hosts
        .iter()
        .filter(|h| a.host.as_ref().is_none_or(|n| &h.name == n))
        .collect();
    if hosts.is_empty() {
        return Err(format!(
            "no host `{}` in {}",
            a.host.unwrap_or_default(),
            a.inventory.display()
        )
        .into());
    }
    let masked = |h: &crate::inventory::Host| -> serde_json::Value {
        let mut vars = serde_json::to_value(&h.vars).unwrap_or_default();
        mask(&mut vars, false);
        // Values from the vault, the environment or secret files, whatever they are called,
        // wherever they ended up (an fs_cli line with `-p PASSWORD` included): masked in
        // every string before anything is serialized.
        let mut r = crate::secret::Redactor::default();
        r.add_secrets(&h.secrets);
        let mut v = serde_json::json!({
            "name": h.name,
            "groups": h.groups,
            "connection": h.connection,
            "freeswitch": h.freeswitch,
            "vars": vars,
        });
        r.redact_value(&mut v);
        v
    };
    if a.json {
        let v: Vec<serde_json::Value> = hosts.iter().map(|h| masked(h)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"hosts": v, "groups": inv.groups}))?
        );
    } else {
        for h in hosts {
            let v = masked(h);
            println!("{}:", h.name);
            println!(
                "  groups: {}",
                h.groups.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            let text = |p: &str| {
                v.pointer(p)
                    .and_then(|x| x.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            println!(
                "  connection: {} {}@{}:{}{}",
                v.pointer("/connection/kind")
                    .map(|k| k
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| k.to_string()))
                    .unwrap_or_default(),
                text("/connection/user"),
                text("/connection/address"),
                h.connection.port,
                if h.connection.become_root {
                    " (sudo)"
                } else {
                    ""
                }
            );
            println!(
                "  freeswitch: conf_root={} owner={}:{} fs_cli={}",
                text("/freeswitch/conf_root"),
                text("/freeswitch/owner"),
                text("/freeswitch/group"),
                text("/freeswitch/fs_cli"),
            );
            println!("  vars:");
            if let Some(o) = v["vars"].as_object() {
                for (k, val) in o {
                    println!("    {k}: {val}");
                }
            }
        }
    }
    Ok(0)
}

fn vault_cmd(cmd: VaultCommand, vault: &Vault) -> Result<i32, BoxError> {
    use std::io::{Read, Write};
    let write_private = |path: &std::path::Path, data: &[u8]| -> Result<(), BoxError> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("switchyard-tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(())
    };
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    match cmd {
        VaultCommand::Encrypt { file, out } => {
            // group_vars/pbx.yml -> group_vars/pbx.age: the name the inventory loader reads.
            let out = out.unwrap_or_else(|| match file.extension().and_then(|e| e.to_str()) {
                Some("yml" | "yaml") => file.with_extension("age"),
                _ => PathBuf::from(format!("{}.age", file.display())),
            });
            write_private(&out, vault.encrypt(&read(&file)?)?.as_bytes())?;
            eprintln!(
                "encrypted {} -> {} (delete the plain file when you are done)",
                file.display(),
                out.display()
            );
        }
        VaultCommand::Decrypt { file, out } => {
            let plain = vault.decrypt(&read(&file)?, Some(&file.display().to_string()))?;
            match out {
                Some(o) => write_private(&o, &plain)?,
                None => std::io::stdout().write_all(&plain)?,
            }
        }
        VaultCommand::Edit { file } => {
            let plain = vault.decrypt(&read(&file)?, Some(&file.display().to_string()))?;
            let dir = std::env::temp_dir().join(format!("switchyard-vault-{}", std::process::id()));
            {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
            }
            let tmp = dir
                .join(file.file_name().unwrap_or_default())
                .with_extension("yml");
            write_private(&tmp, &plain)?;
            let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{editor} \"$1\""))
                .arg("sh")
                .arg(&tmp)
                .status();
            let edited = std::fs::read(&tmp);
            let _ = std::fs::remove_dir_all(&dir);
            if !status.map(|s| s.success()).unwrap_or(false) {
                return Err(format!("`{editor}` failed; {} unchanged", file.display()).into());
            }
            let edited = edited?;
            if edited != plain {
                write_private(&file, vault.encrypt(&edited)?.as_bytes())?;
                eprintln!("{} re-encrypted", file.display());
            }
        }
        VaultCommand::Keygen { out } => {
            use age::secrecy::ExposeSecret;
            if out.exists() {
                return Err(format!("{} exists; not overwriting a key", out.display()).into());
            }
            let id = age::x25519::Identity::generate();
            let text = format!(
                "# switchyard vault identity\n# public key: {}\n{}\n",
                id.to_public(),
                id.to_string().expose_secret()
            );
            write_private(&out, text.as_bytes())?;
            eprintln!("wrote {} (public key {})", out.display(), id.to_public());
        }
        VaultCommand::EncryptString { name } => {
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            let value = value.trim_end_matches(['\n', '\r']);
            println!(
                "{name}: {{vault: {}}}",
                serde_json::to_string(&vault.encrypt(value.as_bytes())?)?
            );
        }
    }
    Ok(0)
}

fn mask(v: &mut serde_json::Value, secret: bool) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                mask(x, secret || crate::secret::is_secret_name(k));
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| mask(x, secret)),
        other if secret => *other = serde_json::Value::String(crate::secret::MASK.into()),
        _ => {}
    }
}
