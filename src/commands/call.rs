//! `switchyard call`: one test call placed by a PBX's own FreeSWITCH, from one of its users
//! through the real dialplan, reported (answered, SIP status, causes, gateway, post-dial
//! delay, RTP both ways) and judged ([`crate::agent::call`]).

use clap::{Args, ValueEnum};

use super::{ConnectArgs, Context, Inputs};
use crate::agent::call::{CallOutcome, CallSpec, Leg};
use crate::engine::outcome::Mode;
use crate::exit::{CommandError, CommandResult, ExitStatus};
use crate::printable::printable;

#[derive(Debug, Args)]
#[command(after_help = "Exit codes:
  0    the call met --expect (answered: answered with RTP both ways; refused: not answered)
  1    it did not, or it could not be placed (the reason on stderr)
  2    usage: the command line is wrong, or the number is an emergency number (never dialled)
  130  interrupted (the call is hung up first)")]
pub struct CallArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// The PBX (an inventory host the playbook selects)
    #[arg(value_name = "HOST")]
    pub host: String,
    /// The directory user the call is placed as (its context, caller ID and routes)
    #[arg(long, value_name = "USER")]
    pub from: String,
    /// The number, as the user would dial it (never an emergency number)
    #[arg(long, value_name = "NUMBER")]
    pub dial: String,
    /// Seconds the call may take to be answered before switchyard hangs it up
    #[arg(long, value_name = "S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(5..=120))]
    pub timeout: u64,
    /// Seconds an answered call is held (media is measured meanwhile), then hung up
    #[arg(long, value_name = "S", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub hold: u64,
    /// What counts as success: `answered` (with RTP both ways) or `refused` (not answered)
    #[arg(long, value_enum, default_value = "answered")]
    pub expect: Expect,
    /// Print the outcome as JSON on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Expect {
    Answered,
    Refused,
}

pub async fn run(a: CallArgs, cx: &Context) -> CommandResult {
    let (inv, pb) = super::load(&a.inputs, cx)?;
    let opts = a.connect.options(Mode::Check, None, cx)?;
    let Some((host, play)) = pb.plays.iter().find_map(|p| {
        inv.select_limited(&p.hosts, None)
            .into_iter()
            .find(|h| h.name == a.host)
            .map(|h| (h, p))
    }) else {
        return Err(CommandError::usage(format!(
            "host `{}`: no play of the playbook selects it",
            printable(&a.host)
        )));
    };
    let vars = crate::engine::desired::context(host, &play.vars);
    let spec = CallSpec {
        from: a.from.clone(),
        dial: a.dial.clone(),
        timeout: a.timeout,
        hold: a.hold,
    };
    crate::agent::call::check(&spec, &emergency_numbers(&vars))
        .map_err(|e| CommandError::usage(e.to_string()))?;
    let mut red = crate::secret::Redactor::from_vars(&vars);
    red.add_secrets(&host.secrets);
    crate::interrupt::install();
    eprintln!(
        "{}: calling {} as user {} (answer within {} s, held {} s)",
        host.name, spec.dial, spec.from, spec.timeout, spec.hold
    );
    let outcome = crate::agent::call::place(host, &opts.ssh, &spec).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "{}: the call could not be placed: {}",
                host.name,
                red.redact(&printable(&e.to_string()))
            );
            return Ok(ExitStatus::Failure);
        }
    };
    if a.json {
        let mut v = serde_json::to_value(&outcome)?;
        red.redact_value(&mut v);
        v["host"] = host.name.clone().into();
        v["passed"] = met(&outcome, a.expect).into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", red.redact(&render(&host.name, &outcome, a.expect)));
    }
    Ok(if crate::interrupt::requested() {
        ExitStatus::Interrupted
    } else if met(&outcome, a.expect) {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn met(o: &CallOutcome, expect: Expect) -> bool {
    o.incomplete.is_none()
        && match expect {
            Expect::Answered => o.passed(),
            Expect::Refused => !o.answered,
        }
}

/// The play's emergency numbers: `numbering_plans[numbering_plan].emergency`.
fn emergency_numbers(vars: &crate::inputs::inventory::Vars) -> Vec<String> {
    let plan = vars.get("numbering_plan").and_then(|p| p.as_str());
    plan.and_then(|p| vars.get("numbering_plans")?.get(p)?.get("emergency"))
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|v| printable(&v.to_string()).into_owned())
        .unwrap_or_else(|| "-".into())
}

fn leg_line(l: &Leg) -> String {
    format!(
        "gateway {}, SIP {}, cause {}, post-dial delay {}, RTP in {} / out {} packets",
        opt(&l.gateway),
        opt(&l.sip_status),
        opt(&l.hangup_cause),
        l.post_dial_delay_ms
            .map(|m| format!("{m} ms"))
            .unwrap_or_else(|| "-".into()),
        opt(&l.rtp_in_packets),
        opt(&l.rtp_out_packets),
    )
}

/// The human report: the verdict first, then what FreeSWITCH said (escaped).
fn render(host: &str, o: &CallOutcome, expect: Expect) -> String {
    let verdict = match (o.answered, o.media, &o.incomplete) {
        (_, _, Some(why)) => format!("INCOMPLETE: {why}"),
        (true, true, _) => "answered, media both ways".into(),
        (true, false, _) => {
            let l = o.leg.clone().unwrap_or_default();
            match (
                l.rtp_in_packets.unwrap_or(0),
                l.rtp_out_packets.unwrap_or(0),
            ) {
                (0, 0) => "answered, NO media either way".into(),
                (0, _) => "answered, ONE-WAY media: nothing received from the far end".into(),
                _ => "answered, ONE-WAY media: nothing sent to the far end".into(),
            }
        }
        (false, _, _) => "NOT answered".into(),
    };
    let mut s = format!(
        "{host}: {verdict} ({})\n",
        if met(o, expect) {
            "as expected"
        } else {
            "FAILED"
        }
    );
    match &o.leg {
        Some(l) => s.push_str(&format!("  {}\n", leg_line(l))),
        None => s.push_str("  no gateway was tried (the dialplan did not reach the trunk)\n"),
    }
    s.push_str(&format!(
        "  hangup cause {}, bridge hangup cause {}\n",
        opt(&o.hangup_cause),
        opt(&o.bridge_hangup_cause)
    ));
    if o.attempts.len() > 1 {
        for (i, l) in o.attempts.iter().enumerate() {
            s.push_str(&format!("  attempt {}: {}\n", i + 1, leg_line(l)));
        }
    }
    s
}
