//! `switchyard demo`: the shipped Wavix playbook on a built-in fleet of three PBX folders
//! (see `crate::demo`), through the same pipeline as `apply`.

use std::path::PathBuf;

use clap::Args;

use super::{Context, Output};
use crate::engine::outcome::Mode;
use crate::exit::CommandResult;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo fleet (created on first use, reused after)
    #[arg(long, default_value = "target/switchyard-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Start again from stock FreeSWITCH conf trees
    #[arg(long)]
    pub reset: bool,
    /// Dry run: show what would change, change nothing
    #[arg(long, short = 'C')]
    pub check: bool,
}

pub async fn run(a: DemoArgs, cx: &Context) -> CommandResult {
    let dir = crate::demo::prepare(&a.dir, a.reset)?;
    let inv = super::load_inventory(&[dir.join("inventory.yml")], &cx.vault)?;
    let pb = crate::inputs::playbook::Playbook::load(&dir.join("playbooks/wavix.yml"))?;
    let ssh = crate::host::transport::SshOptions {
        known_hosts: crate::host::transport::SshOptions::default_known_hosts(),
        accept_new_host_keys: false,
    };
    let mode = if a.check { Mode::Check } else { Mode::Apply };
    let opts = crate::engine::run::RunOptions {
        forks: 10,
        ..crate::engine::run::RunOptions::new(mode, ssh)
    };
    let (status, _) = super::execute(&inv, &pb, &opts, true, Output::Human, cx.style).await?;
    eprintln!(
        "\nThe demo fleet is in {}: run `switchyard demo` again and nothing changes; edit {} and run it again to see a diff.",
        dir.display(),
        dir.join("inventory.yml").display()
    );
    Ok(status)
}
