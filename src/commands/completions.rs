//! `switchyard completions SHELL` and `switchyard man`: generated from the clap definitions,
//! so they can never disagree with the real command line.

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

/// The man page (roff) for `switchyard` on stdout: `switchyard man > switchyard.1`.
pub fn man(cmd: clap::Command) -> CommandResult {
    let page = clap_mangen::Man::new(cmd);
    let mut out = Vec::new();
    page.render(&mut out)?;
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(ExitStatus::Success)
}
