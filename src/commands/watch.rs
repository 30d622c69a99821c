//! `switchyard watch`: the scheduled drift agent (see `crate::agent::watch`).

use clap::Args;

use super::{AllowArg, ConnectArgs, Context, Inputs};
use crate::engine::outcome::Mode;
use crate::exit::{CommandError, CommandResult};

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub inputs: Inputs,
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
    /// With a PostgreSQL history, watch only shard K of N of the fleet (by a stable hash of each host's name), e.g. `--shard 2/3`; each shard elects its own leader
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
    /// Stop after this many rounds
    #[arg(long, value_name = "N")]
    pub rounds: Option<u64>,
    /// Keep every managed gateway's state current from the PBX's event socket (through the SSH connection): metrics at once, alerts on changes
    #[arg(long)]
    pub events: bool,
    /// With --events: POST a JSON alert here when a trunk leaves its healthy state or comes back (https://host/path, or http:// for a local relay)
    #[arg(long, value_name = "URL", requires = "events")]
    pub webhook: Option<String>,
    /// PEM file of the CA(s) an https:// webhook's certificate must chain to, instead of the system's roots (also `webhook_ca` in switchyard.toml)
    #[arg(long, value_name = "FILE", requires = "webhook")]
    pub webhook_ca: Option<std::path::PathBuf>,
    /// Disruptive steps a correction may take (overrides the play's `allow:`)
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub allow: Option<AllowArg>,
    /// Also place the plays' `call_tests:` on every PBX, in the first round and then in
    /// the first round at least this long after (e.g. 1h); results as metrics
    #[arg(long, value_name = "DURATION")]
    pub call_tests: Option<String>,
    #[command(flatten)]
    pub history: super::HistoryFile,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(a: WatchArgs, cx: Context) -> CommandResult {
    let duration = |flag: &str, v: &str| {
        crate::clock::parse_duration(v)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| {
                CommandError::usage(format!("{flag}: `{v}` is not a duration like 30s, 15m, 1h"))
            })
    };
    let every = duration("--every", &a.every)?;
    if let Some(w) = &a.webhook {
        crate::agent::webhook::check_url(w).map_err(|e| CommandError::usage(e.to_string()))?;
    }
    let jitter = duration("--jitter", &a.jitter)?;
    let call_tests = match &a.call_tests {
        Some(v) => Some(duration("--call-tests", v)?),
        None => None,
    };
    // The CA file (or the system's roots) is read now: a bad one stops the agent at start,
    // not every alert later. The command line's CA wins over switchyard.toml's.
    let webhook = match &a.webhook {
        Some(url) => {
            let ca = a
                .webhook_ca
                .clone()
                .or_else(|| cx.config.webhook_ca.clone());
            Some(crate::agent::webhook::Webhook::new(url, ca.as_deref())?)
        }
        None => None,
    };
    let history = a.history.resolve(&cx)?;
    let extra_vars = a.inputs.extra()?;
    let tags = a.inputs.tag_filter();
    let run = crate::engine::run::RunOptions {
        tags,
        // `--fix` applies: a play's call tests gate the correction too.
        call_tester: Some(crate::agent::call::tester()),
        ..a.connect.options(Mode::Check, a.allow, &cx)?
    };
    crate::agent::watch::watch(crate::agent::watch::WatchOptions {
        extra_vars,
        inventory: cx.inventories(&a.inputs.inventory)?,
        playbook: a.inputs.playbook,
        vault: cx.vault,
        every,
        jitter,
        fix: a.fix,
        listen: a.metrics,
        history: Some(history.at),
        shard: a.shard,
        keep: history.keep,
        rounds: a.rounds,
        events: a.events,
        webhook,
        call_tests,
        run,
    })
    .await?;
    Ok(crate::exit::ExitStatus::Success)
}

/// `K/N` with 1 <= K <= N.
fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not K/N with 1 <= K <= N, e.g. 2/3");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}
