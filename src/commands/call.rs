//! `switchyard call`: one test call placed by a PBX's own FreeSWITCH, from one of its users
//! through the real dialplan, reported (answered, SIP status, causes, gateway, post-dial
//! delay, RTP both ways) and judged ([`crate::agent::call`]).

use clap::{Args, ValueEnum};

use super::{ConnectArgs, Context, Inputs};
use crate::agent::call::{leg_line, CallOutcome, CallSpec};
use crate::engine::outcome::Mode;
use crate::exit::{CommandError, CommandResult, ExitStatus};
use crate::inputs::playbook::call_test::CallExpect;
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
    /// Through this gateway only (one the play defines), bypassing the dialplan's choice:
    /// the number is sent in the E.164 form the host's numbering plan gives it
    #[arg(long, value_name = "GATEWAY")]
    pub via: Option<String>,
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
    /// Do not capture the call's SIP exchange (FreeSWITCH's own SIP trace, on for the
    /// call's duration on the profiles holding gateways)
    #[arg(long)]
    pub no_trace: bool,
    /// Print each traced SIP message whole (credentials masked), not only its first line
    #[arg(long, conflicts_with = "no_trace")]
    pub full_trace: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Expect {
    Answered,
    Refused,
}

impl From<Expect> for CallExpect {
    fn from(e: Expect) -> CallExpect {
        match e {
            Expect::Answered => CallExpect::Answered,
            Expect::Refused => CallExpect::Refused,
        }
    }
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
    let mut spec = CallSpec {
        from: a.from.clone(),
        dial: a.dial.clone(),
        timeout: a.timeout,
        hold: a.hold,
        trace: !a.no_trace,
        loop_did: None,
        via: None,
    };
    let mut red = crate::secret::Redactor::from_vars(&vars);
    red.add_secrets(&host.secrets);
    let emergency = crate::inputs::playbook::call_test::emergency_numbers(&vars);
    let check = |spec: &CallSpec| {
        crate::agent::call::check(spec, &emergency).map_err(|e| CommandError::usage(e.to_string()))
    };
    // The number first (an emergency number is refused as such), then the gateway.
    check(&spec)?;
    if let Some(g) = &a.via {
        spec.via = Some(via(g, &a.dial, host, play, &pb, &vars, &red)?);
        check(&spec)?;
    }
    crate::interrupt::install();
    let through = spec
        .via
        .as_ref()
        .map(|v| format!(" through gateway {} as {}", v.gateway, v.number))
        .unwrap_or_default();
    eprintln!(
        "{}: calling {}{through} as user {} (answer within {} s, held {} s)",
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
        v["explanation"] = outcome.explanation().into();
        red.redact_value(&mut v);
        v["host"] = host.name.clone().into();
        v["passed"] = outcome.met(a.expect.into()).into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!(
            "{}",
            red.redact(&render(&host.name, &outcome, a.expect, a.full_trace))
        );
    }
    Ok(if crate::interrupt::requested() {
        ExitStatus::Interrupted
    } else if outcome.met(a.expect.into()) {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// `--via GATEWAY`: a gateway the play's rendered configuration defines for this host, and
/// the number as the numbering plan sends it to a trunk.
fn via(
    gateway: &str,
    dial: &str,
    host: &crate::inputs::inventory::Host,
    play: &crate::inputs::playbook::Play,
    pb: &crate::inputs::playbook::Playbook,
    vars: &crate::inputs::inventory::Vars,
    red: &crate::secret::Redactor,
) -> Result<crate::agent::call::Via, CommandError> {
    if !crate::inputs::playbook::call_test::valid_user(gateway) {
        return Err(CommandError::usage(format!(
            "--via `{}`: a gateway name is letters, digits, `._-`",
            printable(gateway)
        )));
    }
    let mut templates = crate::inputs::template::Templates::new(pb.template_dirs());
    let desired = crate::engine::desired::build(host, play, &mut templates)
        .map_err(|e| CommandError::usage(red.redact(&format!("{}: {e}", host.name))))?;
    let defined: Vec<String> = crate::engine::plan::managed_gateways(
        desired
            .files
            .iter()
            .filter(|f| !f.absent)
            .map(|f| (f.rel.as_str(), f.base.as_deref())),
    )
    .into_iter()
    .map(|g| g.name)
    .collect();
    if !defined.iter().any(|g| g == gateway) {
        return Err(CommandError::usage(format!(
            "--via {gateway}: not a gateway the play defines for {} (it defines: {})",
            host.name,
            if defined.is_empty() {
                "none".to_string()
            } else {
                defined.join(", ")
            }
        )));
    }
    let Some(number) = crate::inputs::playbook::call_test::e164(dial, vars) else {
        return Err(CommandError::usage(format!(
            "--dial {}: the host's numbering plan gives it no E.164 form, which --via sends (dial it as `+` and the country code, or as the plan's users dial)",
            printable(dial)
        )));
    };
    Ok(crate::agent::call::Via {
        gateway: gateway.to_string(),
        number,
    })
}

/// The human report: the verdict first, then what FreeSWITCH said (escaped).
fn render(host: &str, o: &CallOutcome, expect: Expect, full_trace: bool) -> String {
    let mut s = format!(
        "{host}: {} ({})\n",
        o.verdict(),
        if o.met(expect.into()) {
            "as expected"
        } else {
            "FAILED"
        }
    );
    match &o.leg {
        Some(l) => s.push_str(&format!("  {}\n", leg_line(l))),
        None => s.push_str("  no gateway was tried (the dialplan did not reach the trunk)\n"),
    }
    let opt = |v: &Option<String>| {
        v.as_deref()
            .map(printable)
            .unwrap_or("-".into())
            .into_owned()
    };
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
    if let Some(t) = &o.sip_trace {
        s.push_str(&crate::agent::call_trace::render(t, full_trace));
    }
    if let Some(why) = o.explanation().filter(|_| !o.met(expect.into())) {
        s.push_str(&format!("  why: {why}\n"));
    }
    s
}
