//! `switchyard plan`: save a reviewable plan (hashes, masked diffs, reload steps; no
//! secrets) and optionally a pull-request summary, changing nothing.

use std::path::PathBuf;

use clap::Args;

use super::{AllowArg, ConnectArgs, Context, Inputs, Output};
use crate::exit::CommandResult;
use crate::outcome::Mode;

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

pub async fn run(a: PlanArgs, cx: &Context) -> CommandResult {
    let (inv, pb) = super::load(&a.inputs, cx)?;
    let mut opts = a.connect.options(Mode::Check, a.allow, cx)?;
    opts.tags = a.inputs.tag_filter();
    let (status, reports) =
        super::execute(&inv, &pb, &opts, false, Output::Human, cx.style).await?;
    std::fs::write(&a.out, crate::report::json(&reports))
        .map_err(|e| format!("{}: {e}", a.out.display()))?;
    eprintln!("plan written to {}", a.out.display());
    if let Some(md) = &a.markdown {
        std::fs::write(md, crate::review::markdown(&reports))
            .map_err(|e| format!("{}: {e}", md.display()))?;
        eprintln!("review summary written to {}", md.display());
    }
    Ok(status)
}
