//! `switchyard route`: where each number goes on each PBX, evaluated the way
//! mod_dialplan_xml hunts it (`crate::freeswitch::dialplan`), over the configuration a run
//! would leave: the playbook rendered for every host over the stock tree switchyard ships
//! (the same desired state `apply` starts from, nothing contacted), or an existing conf
//! folder (`--conf`).

use std::path::PathBuf;

use clap::{ArgGroup, Args};

use super::Context;
use crate::exit::{CommandError, CommandResult, ExitStatus};
use crate::freeswitch::dialplan::{Call, Dialplan, Route, Target};
use crate::freeswitch::tod::At;
use crate::secret::Redactor;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["inventory", "conf"])))]
pub struct RouteArgs {
    /// Inventory (YAML, INI or a script; repeatable): evaluate the playbook as rendered for each host
    #[arg(long, short = 'i', value_name = "FILE", conflicts_with = "conf")]
    pub inventory: Vec<PathBuf>,
    /// Evaluate an existing FreeSWITCH conf folder instead (e.g. /etc/freeswitch)
    #[arg(long, value_name = "DIR")]
    pub conf: Option<PathBuf>,
    /// The call is placed by this directory user (default: the lowest user id)
    #[arg(long, value_name = "USER", conflicts_with = "from_trunk")]
    pub from: Option<String>,
    /// The call arrives from the provider through this gateway (the number is the DID dialled)
    #[arg(long, value_name = "GATEWAY")]
    pub from_trunk: Option<String>,
    /// Start the call in this context instead (as `originate loopback/NUMBER/CONTEXT` would): e.g. `public`, for calls from addresses no gateway or ACL claims
    #[arg(long, value_name = "CONTEXT", conflicts_with_all = ["from", "from_trunk"])]
    pub context: Option<String>,
    /// Evaluate time-of-day conditions at this local wall-clock time of the PBX
    /// (`YYYY-MM-DD HH:MM[:SS]`; default: now, in this machine's time zone)
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<At>,
    /// The PBX's module folder (e.g. /usr/local/freeswitch/lib/freeswitch/mod): a module
    /// modules.conf.xml loads but the folder lacks is not loaded, nor are its applications
    #[arg(long, value_name = "DIR", requires = "conf")]
    pub mod_dir: Option<PathBuf>,
    /// Show only the numbers whose route the change alters, before and after (connects to
    /// each host to read its current files: the check pipeline, nothing changed)
    #[arg(long, requires = "inventory")]
    pub diff: bool,
    /// Print the routes as JSON on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
    /// With -i: the playbook, then the numbers; with --conf: the numbers (as dialled)
    #[arg(value_name = "[PLAYBOOK] NUMBER", required = true)]
    pub args: Vec<String>,
    #[arg(skip)]
    pub numbers: Vec<String>,
}

fn parse_at(s: &str) -> Result<At, String> {
    At::parse(s).ok_or_else(|| format!("`{s}`: give a local time as YYYY-MM-DD HH:MM[:SS]"))
}

/// The routes of one PBX.
#[derive(Debug, serde::Serialize)]
pub struct HostRoutes {
    pub host: String,
    pub routes: Vec<NumberRoute>,
}

#[derive(Debug, serde::Serialize)]
pub struct NumberRoute {
    pub number: String,
    pub from: String,
    pub call: Option<Call>,
    pub route: Option<Route>,
    pub error: Option<String>,
}

/// Route `numbers` on one dialplan.
pub fn evaluate(dp: &Dialplan, a: &RouteArgs) -> Vec<NumberRoute> {
    let at = a.at.unwrap_or_else(At::now_local);
    a.numbers
        .iter()
        .map(|n| {
            if let Some(ctx) = &a.context {
                let c = Call::outside(ctx, n);
                return NumberRoute {
                    number: n.clone(),
                    from: format!("context {ctx}"),
                    route: Some(dp.route_at(&c, &at)),
                    call: Some(c),
                    error: None,
                };
            }
            let (from, call) = dp.call_for(a.from.as_deref(), a.from_trunk.as_deref(), n);
            match call {
                Ok(c) => NumberRoute {
                    number: n.clone(),
                    from,
                    route: Some(dp.route_at(&c, &at)),
                    call: Some(c),
                    error: None,
                },
                Err(e) => NumberRoute {
                    number: n.clone(),
                    from,
                    call: None,
                    route: None,
                    error: Some(e),
                },
            }
        })
        .collect()
}

/// The human text of one number's route.
pub fn describe(r: &NumberRoute) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let Some(route) = &r.route else {
        let _ = writeln!(
            s,
            "  {} from {}: {}",
            r.number,
            r.from,
            r.error.as_deref().unwrap_or("")
        );
        return s;
    };
    let _ = writeln!(s, "  {} from {}:", r.number, r.from);
    for h in &route.hunts {
        let _ = writeln!(
            s,
            "    {} -> {} [{}]",
            h.context,
            h.destination,
            if h.extensions.is_empty() {
                "no extension".to_string()
            } else {
                h.extensions.join(", ")
            }
        );
    }
    for (i, a) in route.attempts.iter().enumerate() {
        let what = match &a.target {
            Target::Gateway { gateway, number } => {
                format!("gateway {}, sends {number}", gateway_name(gateway))
            }
            Target::User { user } => format!("user {user}"),
            Target::Refused { why } => format!("refused ({why})"),
            Target::Other { application, data } => format!("{application} {data}"),
            Target::Held {
                application,
                data,
                class,
            } => format!("{application} {data}  (the call stays there: {class})"),
        };
        let then = match (&a.target, &a.continue_on) {
            _ if a.at_once_with_next => "  (rings at the same time as the next)".into(),
            (Target::Refused { .. } | Target::Held { .. }, _) => String::new(),
            (_, None) => "  (if it fails, the call ends)".into(),
            (_, Some(c)) if c.is_empty() => "  (if it fails: next)".into(),
            (_, Some(c)) => format!("  (on {}: next)", c.join(", ")),
        };
        let _ = writeln!(s, "    {}. {what}{then}", i + 1);
    }
    for w in &route.warnings {
        let _ = writeln!(s, "    !  warning: {w}");
    }
    if let Some(u) = &route.unknown {
        let _ = writeln!(s, "    ?  {u}");
    }
    for u in route.unevaluated.iter().skip(1) {
        let _ = writeln!(s, "    ?  also not evaluated: {u}");
    }
    if let Some(at) = &route.at {
        let _ = writeln!(
            s,
            "    (time conditions evaluated at {at}, the PBX's local time)"
        );
    }
    if !route.assumed_unset.is_empty() {
        let _ = writeln!(
            s,
            "    (taken as unset: {})",
            route
                .assumed_unset
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s
}

/// A gateway's name as shown: one the dial string left empty (an unset variable) is
/// shown as such, never as a blank.
fn gateway_name(name: &str) -> &str {
    if name.is_empty() {
        "\"\" (no name: the dial string's variable is unset)"
    } else {
        name
    }
}

/// One line for a route: its first attempt and what follows it.
pub fn summary(r: &Route) -> String {
    if let Some(u) = &r.unknown {
        return format!("unknown ({u})");
    }
    let legs: Vec<String> = r
        .attempts
        .iter()
        .map(|a| match &a.target {
            Target::Gateway { gateway, number } => {
                format!("gateway {} ({number})", gateway_name(gateway))
            }
            Target::User { user } => format!("user {user}"),
            Target::Refused { why } => format!("refused ({why})"),
            Target::Other { application, data } => format!("{application} {data}"),
            Target::Held {
                application, data, ..
            } => format!("{application} {data}"),
        })
        .collect();
    legs.join(", then ")
}

/// The redactor of an inventory host: every value it keeps as a secret or holds under a
/// password-like name, for what `--diff` and the review print about its routes.
pub fn host_redactor(inv: &crate::inputs::inventory::Inventory, host: &str) -> Redactor {
    let mut r = Redactor::default();
    if let Some(h) = inv.hosts.iter().find(|h| h.name == host) {
        r.merge(&Redactor::from_vars(&h.vars));
        r.add_secrets(&h.secrets);
    }
    r
}

/// A host's routes as JSON, masked: the host's known secrets in every string, and the value
/// of every password-like channel variable a call starts with (a user's `<variables>`).
fn masked_json(h: &HostRoutes, red: &Redactor) -> Result<serde_json::Value, CommandError> {
    fn by_name(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if x.is_string() && crate::secret::is_secret_name(k) {
                        *x = crate::secret::MASK.into();
                    } else {
                        by_name(x);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(by_name),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(h)?;
    by_name(&mut v);
    red.redact_value(&mut v);
    Ok(v)
}

/// A host's dialplan before and after its plan: the stock tree with every managed file as
/// the host has it now (`old`), and as the plan leaves it.
fn dialplans(h: &crate::engine::outcome::HostReport) -> Option<(Dialplan, Dialplan)> {
    use std::collections::BTreeMap;
    let stock: BTreeMap<String, String> = crate::stock::STOCK_CONF
        .iter()
        .map(|(r, t)| (r.to_string(), t.to_string()))
        .collect();
    let (mut before, mut after) = (stock.clone(), stock);
    for f in &h.files {
        match &f.old {
            Some(b) => {
                before.insert(f.rel.clone(), String::from_utf8_lossy(b).into_owned());
            }
            None => {
                before.remove(&f.rel);
            }
        }
        if f.remove {
            after.remove(&f.rel);
        } else {
            after.insert(f.rel.clone(), String::from_utf8_lossy(&f.new).into_owned());
        }
    }
    let managed = h.files.iter().map(|f| f.rel.clone()).collect();
    Some((
        Dialplan::load_managed(&before, &managed).ok()?,
        Dialplan::load_managed(&after, &managed).ok()?,
    ))
}

/// Numbers whose route a host's plan changes: (number, from, before, after).
pub fn changes(
    h: &crate::engine::outcome::HostReport,
    a: &RouteArgs,
    red: &Redactor,
) -> Vec<(String, String, String, String)> {
    let Some((b, n)) = dialplans(h) else {
        return Vec::new();
    };
    evaluate(&b, a)
        .into_iter()
        .zip(evaluate(&n, a))
        .filter_map(|(x, y)| {
            let sx = x
                .route
                .as_ref()
                .map(summary)
                .unwrap_or_else(|| x.error.clone().unwrap_or_default());
            let sy = y
                .route
                .as_ref()
                .map(summary)
                .unwrap_or_else(|| y.error.clone().unwrap_or_default());
            (sx != sy).then(|| (x.number, y.from, red.redact(&sx), red.redact(&sy)))
        })
        .collect()
}

/// Route tests (`routes:` of a play) whose route a host's plan changes, for the review
/// summary: (number, from, before, after).
pub fn test_changes(
    h: &crate::engine::outcome::HostReport,
    tests: &[crate::inputs::playbook::RouteTest],
    red: &Redactor,
) -> Vec<(String, String, String, String)> {
    let Some((b, n)) = dialplans(h) else {
        return Vec::new();
    };
    let one = |dp: &Dialplan, t: &crate::inputs::playbook::RouteTest| {
        let (from, call) = dp.call_for(
            t.from.as_ref().map(|s| s.0.as_str()),
            t.from_trunk.as_deref(),
            &t.number.0,
        );
        (
            from,
            call.map(|c| summary(&dp.route(&c))).unwrap_or_else(|e| e),
        )
    };
    tests
        .iter()
        .filter_map(|t| {
            let ((from, x), (_, y)) = (one(&b, t), one(&n, t));
            (x != y).then(|| (t.number.0.clone(), from, red.redact(&x), red.redact(&y)))
        })
        .collect()
}

fn diffs(
    report: &crate::engine::outcome::PlayReport,
    a: &RouteArgs,
    inv: &crate::inputs::inventory::Inventory,
    style: crate::report::Style,
) {
    for h in &report.hosts {
        if let Some(e) = h.error_text() {
            eprintln!("{}: {}", h.host, style.failed(e));
            continue;
        }
        let c = changes(h, a, &host_redactor(inv, &h.host));
        if c.is_empty() {
            println!("{}: no route changes", h.host);
            continue;
        }
        println!("{}:", h.host);
        for (n, from, before, after) in c {
            println!("  {n} from {from}:");
            println!("{}", style.diff(&format!("-   {before}\n+   {after}")));
        }
    }
}

pub async fn run(mut a: RouteArgs, cx: &Context) -> CommandResult {
    let playbook = if a.conf.is_some() {
        None
    } else {
        Some(PathBuf::from(a.args.remove(0)))
    };
    a.numbers = std::mem::take(&mut a.args);
    if a.numbers.is_empty() {
        return Err(CommandError::usage("give at least one NUMBER to route"));
    }
    // Each host's routes with the redactor that masks them: a `--conf` tree has no
    // inventory, so only password-like params and dial-string passwords are known there.
    let mut all: Vec<(HostRoutes, Redactor)> = Vec::new();
    if let Some(dir) = &a.conf {
        let files = crate::inputs::source::read_conf_dir(dir)?;
        let mut dp = Dialplan::load(&files)?;
        if let Some(m) = &a.mod_dir {
            let installed = std::fs::read_dir(m)
                .map_err(|e| format!("--mod-dir {}: {e}", m.display()))?
                .filter_map(|e| {
                    let name = e.ok()?.file_name().to_string_lossy().into_owned();
                    Some(name.strip_suffix(".so")?.to_string())
                })
                .collect();
            dp = dp.with_installed_modules(installed);
        }
        all.push((
            HostRoutes {
                host: dir.display().to_string(),
                routes: evaluate(&dp, &a),
            },
            Redactor::default(),
        ));
    } else {
        let Some(p) = &playbook else {
            return Err(CommandError::usage(
                "give `-i INVENTORY PLAYBOOK NUMBER...`, or `--conf DIR NUMBER...`",
            ));
        };
        let inv = super::load_inventory(&a.inventory, &cx.vault)?;
        let pb = crate::inputs::playbook::Playbook::load(p)?;
        for play in &pb.plays {
            if a.diff {
                let opts = crate::engine::run::RunOptions {
                    // `dialplans` reads each file's contents before and after.
                    keep_contents: true,
                    ..a.connect
                        .options(crate::engine::outcome::Mode::Check, None, cx)?
                };
                let report =
                    crate::engine::run::run_play(&inv, &pb, play, &opts, super::quiet()).await?;
                diffs(&report, &a, &inv, cx.style);
                continue;
            }
            for (h, d) in
                crate::engine::run::desired_states(&inv, &pb, play, a.connect.limit.as_deref())
            {
                let d = d.map_err(|e| format!("{}: {e}", h.name))?;
                let dp = crate::engine::offline::offline_dialplan(&d)?;
                all.push((
                    HostRoutes {
                        host: h.name.clone(),
                        routes: evaluate(&dp, &a),
                    },
                    d.redactor.clone(),
                ));
            }
        }
    }
    // Nothing a route shows may carry a secret.
    if a.json {
        let hosts = all
            .iter()
            .map(|(h, red)| masked_json(h, red))
            .collect::<Result<Vec<_>, _>>()?;
        println!("{}", serde_json::to_string_pretty(&hosts)?);
    } else {
        for (h, red) in &all {
            println!("{}:", h.host);
            for r in &h.routes {
                print!("{}", red.redact(&describe(r)));
            }
        }
    }
    let unknown = all
        .iter()
        .flat_map(|(h, _)| &h.routes)
        .any(|r| r.route.as_ref().is_none_or(|x| x.unknown.is_some()));
    Ok(if unknown {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
