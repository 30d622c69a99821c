//! `switchyard lint`: check a configuration without connecting: a playbook rendered for
//! every host of an inventory, or an existing FreeSWITCH conf directory.

use std::path::PathBuf;

use clap::{ArgGroup, Args};

use super::Context;
use crate::exit::{CommandResult, ExitStatus};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["inventory", "conf"])))]
pub struct LintArgs {
    /// Inventory (YAML, INI or a script; repeatable): lint the playbook as rendered for each of its hosts
    #[arg(
        long,
        short = 'i',
        value_name = "FILE",
        requires = "playbook",
        conflicts_with = "conf"
    )]
    pub inventory: Vec<PathBuf>,
    /// Playbook file (with -i)
    #[arg(value_name = "PLAYBOOK", requires = "inventory")]
    pub playbook: Option<PathBuf>,
    /// Lint an existing FreeSWITCH conf directory instead (e.g. /etc/freeswitch)
    #[arg(long, value_name = "DIR")]
    pub conf: Option<PathBuf>,
    /// Print the findings as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: LintArgs, cx: &Context) -> CommandResult {
    let mut findings = Vec::new();
    let checked;
    if let Some(dir) = &a.conf {
        let (files, notes) = crate::inputs::source::read_conf_tree(dir)?;
        let report = crate::freeswitch::lint::lint_tree(None, &files, &notes);
        checked = format!("{} files in {}", files.len(), dir.display());
        findings.extend(report.findings);
        // Say what was not judged, and why, rather than leave it silent.
        for (file, why) in &report.not_judged {
            eprintln!("lint: not judged: {file}: {why}");
        }
    } else {
        let (false, Some(p)) = (a.inventory.is_empty(), &a.playbook) else {
            unreachable!("clap requires -i with PLAYBOOK, or --conf");
        };
        let inv = super::load_inventory(&a.inventory, &cx.vault)?;
        let pb = crate::inputs::playbook::Playbook::load(p)?;
        let (mut hosts, mut files) = (std::collections::BTreeSet::new(), 0);
        for play in &pb.plays {
            for (h, d) in crate::engine::run::desired_states(&inv, &pb, play, None) {
                let d = d.map_err(|e| format!("{}: {e}", h.name))?;
                hosts.insert(h.name.clone());
                files += d.files.len();
                findings.extend(crate::engine::offline::lint_desired(
                    h,
                    &d,
                    &play.lint_allow,
                ));
                findings.extend(crate::engine::offline::route_findings(h, &d, play));
            }
        }
        // Inventory variables no play reads (a misspelt `wavix_relam`): warnings.
        let (unread, notes) = crate::inputs::unread::unread_vars(&inv, &a.inventory, &pb);
        findings.extend(unread);
        for n in &notes {
            eprintln!("lint: {n}");
        }
        checked = format!(
            "{} rendered for {} ({})",
            p.display(),
            crate::report::count(hosts.len(), "host"),
            crate::report::count(files, "file")
        );
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        print!("{}", crate::report::findings(&findings));
    }
    eprintln!("lint checked {checked}");
    Ok(if findings.iter().any(|f| f.blocks()) {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
