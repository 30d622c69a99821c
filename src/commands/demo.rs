//! `switchyard demo`: the shipped Wavix playbook on a built-in fleet of three PBX folders
//! (see `crate::demo`), through the same pipeline as `apply`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Context, Output};
use crate::engine::outcome::Mode;
use crate::exit::CommandResult;
use crate::host::script::quote;

/// Where the demo fleet goes unless `--dir` says otherwise.
const DEFAULT_DIR: &str = "target/switchyard-demo";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo fleet (created on first use, reused after)
    #[arg(long, default_value = DEFAULT_DIR, value_name = "DIR")]
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
    let mut again = "demo".to_string();
    if a.dir != Path::new(DEFAULT_DIR) {
        again.push_str(&format!(" --dir {}", quote(&a.dir.to_string_lossy())));
    }
    let again = how_to_run(&again);
    if a.check {
        eprintln!(
            "\nThe demo fleet is in {}: nothing was changed; run {again} to make these changes.",
            dir.display()
        );
    } else {
        eprintln!(
            "\nThe demo fleet is in {}: run {again} again and nothing changes; edit {} and run it again to see a diff.",
            dir.display(),
            dir.join("inventory.yml").display()
        );
    }
    Ok(status)
}

/// `args` as the user can type them next, from where they are: the hint once said
/// `switchyard demo` to someone who had typed `cargo run -- demo` and had no `switchyard` on
/// PATH (issue 27). `switchyard ARGS` when that name on PATH is this very binary; else the
/// binary's path (relative to the current folder when inside it); under `cargo run`, which
/// sets `CARGO` and `CARGO_PKG_NAME` for what it runs, `cargo run -- ARGS` and the path.
fn how_to_run(args: &str) -> String {
    let exe = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let on_path = exe.as_ref().is_some_and(|exe| {
        std::env::var_os("PATH").is_some_and(|p| {
            std::env::split_paths(&p)
                .any(|d| d.join("switchyard").canonicalize().ok().as_ref() == Some(exe))
        })
    });
    if on_path {
        return format!("`switchyard {args}`");
    }
    let path = match &exe {
        Some(exe) => {
            let cwd = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
            match cwd.as_deref().and_then(|d| exe.strip_prefix(d).ok()) {
                Some(rel) if rel.parent().is_some_and(|p| p != Path::new("")) => rel.to_path_buf(),
                Some(rel) => Path::new(".").join(rel),
                None => exe.clone(),
            }
        }
        None => PathBuf::from("switchyard"),
    };
    let path = format!("`{} {args}`", quote(&path.to_string_lossy()));
    let cargo_run = std::env::var_os("CARGO").is_some()
        && std::env::var("CARGO_PKG_NAME").as_deref() == Ok(env!("CARGO_PKG_NAME"));
    if cargo_run {
        format!("`cargo run -- {args}` (or {path})")
    } else {
        path
    }
}
