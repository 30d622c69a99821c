//! `switchyard completions SHELL` and `switchyard man`: generated from the clap definitions,
//! so they can never disagree with the real command line.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::exit::{CommandResult, ExitStatus};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    #[value(name = "powershell")]
    PowerShell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for (e.g. `switchyard completions bash > /etc/bash_completion.d/switchyard`)
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `cmd` is the whole command line's definition (`Cli::command()`).
pub fn completions(a: CompletionsArgs, mut cmd: clap::Command) -> CommandResult {
    use clap_complete::Shell as S;
    let shell = match a.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::PowerShell => S::PowerShell,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "switchyard", &mut out);
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(ExitStatus::Success)
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page, `switchyard.1` and one per verb (`switchyard-apply.1`,
    /// `switchyard-trunks-measure.1`, ...), into this folder, e.g. /usr/local/share/man/man1
    #[arg(long, value_name = "DIR", conflicts_with = "verb")]
    pub dir: Option<PathBuf>,
    /// Print this verb's page instead of the top one (`switchyard man trunks measure`)
    #[arg(value_name = "VERB")]
    pub verb: Vec<String>,
}

/// Man pages as git has them: `switchyard(1)` lists the verbs, and each verb has its own
/// page with its options (`man switchyard-apply`); one page for everything left every verb's
/// options out. `cmd` is the whole command line's definition (`Cli::command()`).
pub fn man(a: ManArgs, cmd: clap::Command) -> CommandResult {
    // As clap_mangen::generate_to: no `help` verb, and the definition built, so that each
    // verb knows its full name (`switchyard-apply`) and carries the global options.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = a.dir else {
        let mut page = &cmd;
        for word in &a.verb {
            page = page
                .get_subcommands()
                .find(|s| s.get_name() == word && !s.is_hide_set())
                .ok_or_else(|| {
                    crate::exit::CommandError::usage(format!(
                        "no man page for `{}`: not a verb of `{}`",
                        word,
                        page.get_bin_name().unwrap_or(page.get_name())
                    ))
                })?;
        }
        std::io::Write::write_all(&mut std::io::stdout(), &render(page)?)?;
        return Ok(ExitStatus::Success);
    };
    let mut pages = Vec::new();
    collect(&cmd, &mut pages);
    for page in pages {
        let path = dir.join(format!(
            "{}.1",
            page.get_display_name().unwrap_or(page.get_name())
        ));
        // Replaced whole, never through a link planted in a shared man folder.
        crate::atomic_file::write(&path, &render(page)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitStatus::Success)
}

/// `cmd` and every verb under it, at any depth, hidden ones left out.
fn collect<'c>(cmd: &'c clap::Command, out: &mut Vec<&'c clap::Command>) {
    out.push(cmd);
    for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(s, out);
    }
}

fn render(page: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    // Every page says which switchyard it documents (a verb has no version of its own).
    clap_mangen::Man::new(page.clone())
        .source(format!("switchyard {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)?;
    Ok(out)
}
