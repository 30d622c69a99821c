//! `switchyard plan`: save a reviewable plan (hashes, masked diffs, reload steps; no
//! secrets) and optionally a pull-request summary, changing nothing.

use std::path::PathBuf;

use clap::Args;

use super::{AllowArg, ConnectArgs, Context, Inputs, Output};
use crate::engine::outcome::Mode;
use crate::exit::CommandResult;

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Write the plan here (JSON: the input of `apply --plan`)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// Also write a review summary for a pull-request comment to this file
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Disruptive steps the plan may include (overrides the play's `allow:`)
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub allow: Option<AllowArg>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The review summary's route section: the play's route tests whose route the change
/// alters, per host (a test the change breaks also stops `apply`; this shows the ones it
/// moves).
fn route_section(
    inv: &crate::inputs::inventory::Inventory,
    pb: &crate::inputs::playbook::Playbook,
    reports: &[crate::engine::outcome::PlayReport],
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (play, report) in pb.plays.iter().zip(reports) {
        if play.routes.is_empty() {
            continue;
        }
        let rows: Vec<String> = report
            .hosts
            .iter()
            .flat_map(|h| {
                let red = super::route::host_redactor(inv, &h.host);
                super::route::test_changes(h, &play.routes, &red)
                    .into_iter()
                    .map(move |(n, from, before, after)| {
                        format!("| {} | `{n}` | {from} | {before} | **{after}** |", h.host)
                    })
            })
            .collect();
        let _ = writeln!(s, "### Routes: {}\n", play.name);
        if rows.is_empty() {
            let _ = writeln!(
                s,
                "The change moves none of the play's {} route tests.\n",
                play.routes.len()
            );
        } else {
            s.push_str("| host | number | from | before | after |\n|---|---|---|---|---|\n");
            for r in rows {
                let _ = writeln!(s, "{r}");
            }
            s.push('\n');
        }
    }
    s
}

pub async fn run(a: PlanArgs, cx: &Context) -> CommandResult {
    let (inv, pb) = super::load(&a.inputs, cx)?;
    let mut opts = a.connect.options(Mode::Check, a.allow, cx)?;
    opts.tags = a.inputs.tag_filter();
    // The review summary's route section reads each file's contents before and after.
    opts.keep_contents = a.markdown.is_some();
    let (status, reports) =
        super::execute(&inv, &pb, &opts, false, Output::Human, cx.style).await?;
    // Never through a link planted at the name (a shared checkout): src/atomic_file.rs.
    crate::atomic_file::write(&a.out, crate::report::json(&reports).as_bytes())
        .map_err(|e| format!("{}: {e}", a.out.display()))?;
    eprintln!("plan written to {}", a.out.display());
    if let Some(md) = &a.markdown {
        let mut text = crate::engine::review::markdown(&reports);
        text.push_str(&route_section(&inv, &pb, &reports));
        crate::atomic_file::write(md, text.as_bytes())
            .map_err(|e| format!("{}: {e}", md.display()))?;
        eprintln!("review summary written to {}", md.display());
    }
    Ok(status)
}
