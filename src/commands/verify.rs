//! `switchyard verify`: poll the gateways a playbook manages until they are healthy
//! (REGED, or NOREG and UP for IP-authenticated trunks). Changes nothing.

use clap::Args;

use super::{ConnectArgs, Context, Inputs, Output};
use crate::engine::outcome::Mode;
use crate::exit::CommandResult;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Write one machine-readable report to stdout at the end
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(a: VerifyArgs, cx: &Context) -> CommandResult {
    let (inv, pb) = super::load(&a.inputs, cx)?;
    let mut opts = a.connect.options(Mode::Verify, None, cx)?;
    opts.tags = a.inputs.tag_filter();
    let output = if a.json { Output::Json } else { Output::Human };
    let (status, _) = super::execute(&inv, &pb, &opts, false, output, cx.style).await?;
    Ok(status)
}
