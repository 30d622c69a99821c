//! The command line: the global options, the list of verbs, and dispatch. Each verb's
//! arguments and work live in `src/commands/VERB.rs`; `crate::exit` decides exit codes.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::commands::{self, Context};
use crate::exit::{CommandResult, ExitStatus};
use crate::report::Style;

/// Push-based, agentless provisioner for fleets of FreeSWITCH PBXes.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about = None, after_help = crate::exit::HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// File holding the vault passphrase (else $SWITCHYARD_VAULT_PASSWORD_FILE, $SWITCHYARD_VAULT_PASSWORD)
    #[arg(long, global = true, value_name = "FILE", display_order = 900)]
    pub vault_password_file: Option<PathBuf>,
    /// age identity file for the vault (else $SWITCHYARD_VAULT_IDENTITY)
    #[arg(long, global = true, value_name = "FILE", display_order = 900)]
    pub vault_identity: Option<PathBuf>,
    /// Show each remote command's kind and timing (-v), and the command itself, secrets masked (-vv)
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count, display_order = 902)]
    pub verbose: u8,
    /// Colour on stderr: `auto` (a terminal, unless NO_COLOR is set), `always`, `never`
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN",
        display_order = 901
    )]
    pub color: Color,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// `always` and `never` win; `auto` is on for a terminal unless `NO_COLOR` is set
    /// (no-color.org) or `TERM=dumb`.
    pub fn style(self) -> Style {
        use std::io::IsTerminal;
        let color = match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
                    && std::env::var_os("TERM").is_some_and(|t| t != "dumb")
            }
        };
        Style { color }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply a playbook: plan, write what differs, reload FreeSWITCH, verify, roll back on failure
    Apply(commands::apply::ApplyArgs),
    /// Poll the gateways a playbook manages until they are healthy (REGED, or NOREG+UP); changes nothing
    Verify(commands::verify::VerifyArgs),
    /// Check a configuration without connecting: rendered playbook, or an existing conf dir
    Lint(commands::lint::LintArgs),
    /// Print hosts, groups and merged variables (secrets masked)
    Inventory(commands::inventory::InventoryArgs),
    /// Save a reviewable plan (hashes, masked diffs, reload steps; no secrets) without changing anything
    Plan(commands::plan::PlanArgs),
    /// Check every host for drift without changing anything (exit 0 none, 3 drift, 1 error)
    Drift(commands::drift::DriftArgs),
    /// Run as an agent: check (and with --fix correct) drift every interval, serve Prometheus metrics
    Watch(commands::watch::WatchArgs),
    /// Where each number goes on each PBX: the dialplan evaluated as FreeSWITCH hunts it, nothing contacted
    Route(commands::route::RouteArgs),
    /// Place one test call from a user through a PBX's own FreeSWITCH and dialplan; report answer, SIP status, causes, RTP both ways
    Call(commands::call::CallArgs),
    /// Provider trunks: `trunks measure` ranks candidate regions by round-trip time from each PBX
    #[command(subcommand)]
    Trunks(commands::trunks::TrunksCommand),
    /// List the run history, SQLite or PostgreSQL (`--keep 90d` prunes it; `history migrate` copies one into the other)
    History(commands::history::HistoryArgs),
    /// Encrypt and decrypt secrets with the vault (age)
    #[command(subcommand)]
    Vault(commands::vault::VaultCommand),
    /// Run the shipped Wavix playbook on a built-in demo fleet (no real PBX needed)
    Demo(commands::demo::DemoArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    Completions(commands::completions::CompletionsArgs),
    /// Print the JSON Schema of a playbook, inventory or vars file, for editors
    Schema(commands::schema::SchemaArgs),
    /// Adopt the PBXes you already run: read each conf tree (read-only) and map it onto the shipped playbook, saying what would change and why (`--as-is`: a project that changes nothing)
    Import(commands::import::ImportArgs),
    /// Print the man page (roff) of switchyard or of one verb; `--dir` writes them all, one per verb
    Man(commands::completions::ManArgs),
}

/// Run the command line; returns the process exit code.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // `--help` and `--version` are not errors.
            return if e.use_stderr() {
                ExitStatus::Usage.code()
            } else {
                ExitStatus::Success.code()
            };
        }
    };
    let status = match run(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            e.status()
        }
    };
    status.code()
}

fn run(cli: Cli) -> CommandResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let config = crate::inputs::config::Config::discover(
        &std::env::current_dir().map_err(|e| format!("the current folder: {e}"))?,
        std::env::var_os("HOME")
            .as_deref()
            .map(std::path::Path::new),
    )?;
    for w in &config.ignored {
        eprintln!("warning: {w}");
    }
    if let Some(p) = &config.path {
        eprintln!("using {}", p.display());
    }
    let cx = Context {
        vault: crate::inputs::vault::Vault::from_sources(
            cli.global.vault_password_file.as_deref(),
            cli.global.vault_identity.as_deref(),
        )?,
        style: cli.global.color.style(),
        verbose: cli.global.verbose,
        config,
    };
    rt.block_on(dispatch(cli.command, cx))
}

async fn dispatch(cmd: Command, cx: Context) -> CommandResult {
    use commands::*;
    match cmd {
        Command::Apply(a) => apply::run(a, &cx).await,
        Command::Verify(a) => verify::run(a, &cx).await,
        Command::Lint(a) => lint::run(a, &cx),
        Command::Inventory(a) => inventory::run(a, &cx),
        Command::Plan(a) => plan::run(a, &cx).await,
        Command::Drift(a) => drift::run(a, &cx).await,
        Command::Watch(a) => watch::run(a, cx).await,
        Command::History(a) => history::run(a, &cx),
        Command::Call(a) => call::run(a, &cx).await,
        Command::Trunks(t) => trunks::run(t, &cx).await,
        Command::Route(a) => route::run(a, &cx).await,
        Command::Vault(v) => vault::run(v, &cx),
        Command::Demo(a) => demo::run(a, &cx).await,
        Command::Completions(a) => completions::completions(a, Cli::command()),
        Command::Man(a) => completions::man(a, Cli::command()),
        Command::Schema(a) => schema::run(a),
        Command::Import(a) => import::run(a, &cx).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument clap may fill from the environment, on every verb, at any depth.
    fn env_args(cmd: &clap::Command, path: String, out: &mut Vec<(String, String, bool)>) {
        for a in cmd.get_arguments() {
            if let Some(var) = a.get_env() {
                out.push((
                    path.clone(),
                    var.to_string_lossy().into_owned(),
                    a.is_hide_env_values_set(),
                ));
            }
        }
        for s in cmd.get_subcommands() {
            env_args(s, format!("{path} {}", s.get_name()), out);
        }
    }

    /// `--help` prints `[env: NAME=VALUE]` for an argument read from the environment unless
    /// told not to: an empty `NAME=` looked like a broken setting (issue 27), and a value
    /// is the operator's, possibly a secret's path or the secret itself. So every `env =`
    /// argument hides its value, today's and tomorrow's.
    #[test]
    fn no_help_text_shows_an_environment_value() {
        let mut found = Vec::new();
        env_args(&Cli::command(), "switchyard".into(), &mut found);
        assert!(
            found.iter().any(|(_, v, _)| v == "SWITCHYARD_INVENTORY"),
            "{found:?}"
        );
        let shown: Vec<_> = found.iter().filter(|(_, _, hidden)| !hidden).collect();
        assert!(shown.is_empty(), "values shown in --help: {shown:?}");
    }
}
