//! `switchyard trunks measure`: rank each PBX's candidate provider regions by the SIP
//! round-trip time its own FreeSWITCH measures ([`crate::agent::measure`]), and with
//! `--write host_vars` propose the primary and failover region per host as an inventory
//! change to review (never applied by this command).
//!
//! Candidates per host: `wavix_regions`, a list of regions, each `HOST[:PORT]` (realm and
//! proxy alike, as Wavix names its regional gateways) or `{proxy: HOST[:PORT], realm: R}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};

use super::{ConnectArgs, Context, Inputs};
use crate::agent::measure::{Candidates, HostRtt, MeasureOptions};
use crate::engine::outcome::Mode;
use crate::exit::{CommandError, CommandResult, ExitStatus};
use crate::freeswitch::probe;

#[derive(Debug, Subcommand)]
pub enum TrunksCommand {
    /// Rank each PBX's candidate regions (`wavix_regions`) by SIP round-trip time, measured by its own FreeSWITCH
    Measure(MeasureArgs),
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// OPTIONS pings per region
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub samples: u32,
    /// Seconds between pings (FreeSWITCH's minimum is 5)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(5..=60))]
    pub interval: u32,
    /// Write the chosen primary and failover region of each host to host_vars/HOST.yml beside the inventory, for review
    #[arg(long, value_name = "WHERE")]
    pub write: Option<WriteTo>,
    /// Give up on a PBX that has not finished after SECONDS (default: set-up, the pings and
    /// the last one's timeout, clean-up: 130 s with the default samples and interval)
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: Option<u64>,
    /// Print the measurements as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WriteTo {
    /// `host_vars/HOST.yml` beside the (first) inventory
    #[value(name = "host_vars", alias = "host-vars")]
    HostVars,
}

/// A candidate region: where the pings (and later REGISTER and INVITEs) go, and the realm
/// that answers the provider's challenge there.
#[derive(Debug, Clone, PartialEq)]
struct Region {
    proxy: String,
    realm: String,
}

pub async fn run(cmd: TrunksCommand, cx: &Context) -> CommandResult {
    match cmd {
        TrunksCommand::Measure(a) => measure(a, cx).await,
    }
}

async fn measure(a: MeasureArgs, cx: &Context) -> CommandResult {
    let (inv, pb) = super::load(&a.inputs, cx)?;
    let opts = a.connect.options(Mode::Check, None, cx)?;
    let mut targets = Vec::new();
    let mut regions_of: std::collections::BTreeMap<String, Vec<Region>> = Default::default();
    let mut without = Vec::new();
    // Each host's secrets, to mask its host_vars diff with.
    let mut redactors: std::collections::BTreeMap<String, crate::secret::Redactor> =
        Default::default();
    for play in &pb.plays {
        for host in inv.select_limited(&play.hosts, opts.limit.as_deref()) {
            if regions_of.contains_key(&host.name) || without.contains(&host.name) {
                continue;
            }
            let vars = crate::engine::desired::context(host, &play.vars);
            match candidates(&host.name, vars.get("wavix_regions"))? {
                Some(r) => {
                    targets.push(Candidates {
                        host: host.clone(),
                        regions: r.iter().map(|r| r.proxy.clone()).collect(),
                    });
                    regions_of.insert(host.name.clone(), r);
                    let mut red = crate::secret::Redactor::from_vars(&vars);
                    red.add_secrets(&host.secrets);
                    redactors.insert(host.name.clone(), red);
                }
                None => without.push(host.name.clone()),
            }
        }
    }
    if targets.is_empty() {
        // A value missing from the inventory, not a mistyped command line: exit 1, as for
        // any refused inventory, naming the hosts and where the value goes.
        let inventories = cx.inventories(&a.inputs.inventory)?;
        return Err(no_regions(&without, &inventories).into());
    }
    for h in &without {
        eprintln!("{h}: no `wavix_regions`, not measured");
    }
    let budget = a
        .timeout
        .map(std::time::Duration::from_secs)
        .unwrap_or_else(|| crate::agent::measure::default_budget(a.samples, a.interval));
    eprintln!("{}", announcement(targets.len(), &a, opts.forks, budget));
    let results = crate::agent::measure::measure(
        targets,
        Arc::new(MeasureOptions {
            ssh: opts.ssh.clone(),
            samples: a.samples,
            interval: a.interval,
            forks: opts.forks,
            budget,
        }),
        // Each PBX's ranking as soon as it is measured; JSON is one document, at the end.
        |r| {
            if !a.json {
                print!("{}", render(std::slice::from_ref(r), a.samples));
            }
        },
    )
    .await;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    if let Some(WriteTo::HostVars) = a.write {
        let inventories = cx.inventories(&a.inputs.inventory)?;
        let dir = host_vars_dir(&inventories[0]);
        let mut unwritten = 0;
        for r in &results {
            let Some((primary, failover)) = choice(r, &regions_of[&r.host]) else {
                if r.error.is_none() {
                    eprintln!("{}: no region answered; host_vars left as they are", r.host);
                }
                continue;
            };
            let path = dir.join(format!("{}.yml", r.host));
            match write_choice(&path, r, &primary, failover.as_ref(), &redactors[&r.host]) {
                Ok(Some(diff)) => eprint!("{diff}"),
                Ok(None) => eprintln!("{}: already {}", path.display(), primary.proxy),
                // One host's file refused (a planted link, a block value) leaves the
                // others written; the run fails.
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    unwritten += 1;
                }
            }
        }
        eprintln!(
            "review the host_vars change, commit it, then apply: nothing was changed on the PBXes"
        );
        if unwritten > 0 {
            return Ok(ExitStatus::Failure);
        }
    }
    // A PBX where no region answered measured nothing to choose from: a failure, with its
    // hint printed under it.
    Ok(
        if results
            .iter()
            .any(|r| r.error.is_some() || r.hint.is_some())
        {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        },
    )
}

/// What the run will do and how long it takes, from the same limits the measurement uses:
/// the pings' phase when every region answers and at most (a region that does not answer
/// is reported only when its ping times out), `forks` PBXes at a time, set-up and clean-up
/// on top (seconds, mostly the SSH connection and FreeSWITCH unloading the probes).
fn announcement(
    hosts: usize,
    a: &MeasureArgs,
    forks: usize,
    budget: std::time::Duration,
) -> String {
    use crate::agent::measure::{ping_limit, pings_answered};
    let rounds = hosts.div_ceil(forks.max(1)) as u64;
    let answered = pings_answered(a.samples, a.interval).as_secs();
    let most = ping_limit(a.samples, a.interval).as_secs();
    let batches = if rounds > 1 {
        format!(
            " ({rounds} batches of {forks}: about {} s in all, up to {} s)",
            answered * rounds,
            most * rounds
        )
    } else {
        String::new()
    };
    format!(
        "measuring {hosts} PBX(es): {} OPTIONS pings per region, every {} s: pinging takes about {answered} s per PBX when every region answers, up to {most} s when one does not (an unanswered ping is reported after 32 s), plus set-up and clean-up{batches}; one not done after {} s is given up",
        a.samples,
        a.interval,
        budget.as_secs()
    )
}

/// The error when no targeted host has `wavix_regions`: the hosts, and where to set it.
fn no_regions(hosts: &[String], inventories: &[PathBuf]) -> String {
    let files: Vec<String> = inventories
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let host_vars = inventories
        .first()
        .map(|i| host_vars_dir(i).display().to_string())
        .unwrap_or_else(|| "host_vars".into());
    format!(
        "no host to measure: {} in {} {} no `wavix_regions`; set it (a list of regions, e.g. `wavix_regions: [us.wavix.net, nl.wavix.net]`) in the inventory or in {host_vars}/HOST.yml",
        if hosts.is_empty() {
            "the play targets no host".to_string()
        } else {
            hosts.join(", ")
        },
        files.join(", "),
        if hosts.len() == 1 { "has" } else { "have" }
    )
}

/// `wavix_regions` of one host; `None` when it has none.
fn candidates(
    host: &str,
    v: Option<&serde_json::Value>,
) -> Result<Option<Vec<Region>>, CommandError> {
    let Some(v) = v else { return Ok(None) };
    // A bad inventory value: exit 1 like any refused inventory (not 2: the command line is fine).
    let bad = |why: &str| CommandError::from(format!("{host}: wavix_regions: {why}"));
    let list = v
        .as_array()
        .ok_or_else(|| bad("a list of regions is expected"))?;
    let mut out = Vec::new();
    for item in list {
        let (proxy, realm) = match item {
            serde_json::Value::String(s) => (s.clone(), s.clone()),
            serde_json::Value::Object(o) => {
                let proxy = o
                    .get("proxy")
                    .and_then(|p| p.as_str())
                    .ok_or_else(|| bad("a region map needs `proxy`"))?;
                let realm = o.get("realm").and_then(|p| p.as_str()).unwrap_or(proxy);
                (proxy.to_string(), realm.to_string())
            }
            _ => return Err(bad("each region is `HOST[:PORT]` or `{proxy, realm}`")),
        };
        for x in [&proxy, &realm] {
            if !probe::valid_region(x) {
                return Err(bad(&format!("`{x}` is not a host name or address")));
            }
        }
        if out.iter().any(|r: &Region| r.proxy == proxy) {
            return Err(bad(&format!("`{proxy}` is listed twice")));
        }
        out.push(Region { proxy, realm });
    }
    if out.is_empty() {
        return Err(bad("the list is empty"));
    }
    Ok(Some(out))
}

fn render(results: &[HostRtt], samples: u32) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for r in results {
        let _ = writeln!(s, "{}", r.host);
        if let Some(e) = &r.error {
            let _ = writeln!(
                s,
                "  error: {}",
                crate::printable::printable_block(e, "    ")
            );
            continue;
        }
        for (i, x) in r.regions.iter().enumerate() {
            let ms = |v: Option<f64>| {
                v.map(|v| format!("{v:8.2} ms"))
                    .unwrap_or_else(|| "       - ms".into())
            };
            let role = match (i, x.median_ms.is_some()) {
                (0, true) => "  primary",
                (1, true) => "  failover",
                _ => "",
            };
            let _ = writeln!(
                s,
                "  {}. {:<28} median {}  spread {}  {}/{} answered{role}",
                i + 1,
                x.region,
                ms(x.median_ms),
                ms(x.spread_ms),
                x.samples_ms.len(),
                samples,
            );
        }
        if let Some(h) = &r.hint {
            let _ = writeln!(s, "  hint: {h}");
        }
    }
    s
}

/// The best and second-best regions that answered.
fn choice(r: &HostRtt, regions: &[Region]) -> Option<(Region, Option<Region>)> {
    let find = |proxy: &str| regions.iter().find(|x| x.proxy == proxy).cloned();
    let mut answered = r
        .regions
        .iter()
        .filter(|x| x.median_ms.is_some())
        .filter_map(|x| find(&x.region));
    let primary = answered.next()?;
    Some((primary, answered.next()))
}

/// `host_vars/` beside an inventory file (or inside an inventory folder).
fn host_vars_dir(inventory: &Path) -> PathBuf {
    if inventory.is_dir() {
        inventory.join("host_vars")
    } else {
        inventory
            .parent()
            .unwrap_or(Path::new("."))
            .join("host_vars")
    }
}

/// Why a host's measured regions were not written to its host_vars file (that file is
/// left as it was).
#[derive(Debug, thiserror::Error)]
enum HostVarsError {
    /// Reading or replacing the file (a planted link, no permission).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("`{key}` is not a one-line value here; set it by hand")]
    NotOneLine { key: String },
    /// The file after the change would not load (a bug in the edit, caught before writing).
    #[error("{0}")]
    Unloadable(#[from] Box<crate::inputs::source::SourceError>),
}

/// Set the region variables in a host_vars file, keeping everything else (comments,
/// order); returns the diff, masked with `red`, or `None` if nothing changes.
/// The folder may be writable by others (a shared checkout): the file is read and replaced
/// by [`crate::atomic_file`], which refuses a planted link and keeps the file's mode and
/// owner, so a 0600 host_vars file of passwords stays 0600.
fn write_choice(
    path: &Path,
    r: &HostRtt,
    primary: &Region,
    failover: Option<&Region>,
    red: &crate::secret::Redactor,
) -> Result<Option<String>, HostVarsError> {
    let (old, was) = match crate::atomic_file::read(path)? {
        Some((bytes, was)) => (
            Some(String::from_utf8(bytes).map_err(|_| HostVarsError::NotUtf8)?),
            Some(was),
        ),
        None => (None, None),
    };
    let median = |proxy: &str| {
        r.regions
            .iter()
            .find(|x| x.region == proxy)
            .and_then(|x| x.median_ms)
            .map(|m| format!("{m:.1} ms"))
            .unwrap_or_default()
    };
    let mut keys = vec![
        ("wavix_realm", primary.realm.clone()),
        ("wavix_proxy", primary.proxy.clone()),
    ];
    if let Some(f) = failover {
        keys.push(("wavix_failover_proxy", f.proxy.clone()));
        keys.push(("wavix_failover_realm", f.realm.clone()));
    }
    let note = format!(
        "# switchyard trunks measure, {}: median SIP round trip from the PBX: {}{}",
        crate::clock::iso(crate::clock::now()),
        format_args!("{} {}", primary.proxy, median(&primary.proxy)),
        failover
            .map(|f| format!(", {} {}", f.proxy, median(&f.proxy)))
            .unwrap_or_default()
    );
    let new = set_keys(old.as_deref().unwrap_or(""), &keys, &note)?;
    if old.as_deref() == Some(new.as_str()) {
        return Ok(None);
    }
    // The result must still be a mapping our own loader reads.
    crate::inputs::source::parse_yaml::<yaml_serde::Mapping>(path, &new).map_err(Box::new)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::atomic_file::replace(path, new.as_bytes(), was.as_ref())?;
    let label = path.display().to_string();
    Ok(Some(crate::engine::diff::unified(
        &label,
        old.as_deref(),
        &new,
        red,
    )))
}

/// Replace top-level `key: value` lines in place, append the others under `note`. A key
/// whose value spans lines (a block) is refused: it is for a person to edit.
fn set_keys(text: &str, keys: &[(&str, String)], note: &str) -> Result<String, HostVarsError> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut missing = Vec::new();
    for (key, value) in keys {
        let line = format!("{key}: \"{value}\"");
        let found = lines
            .iter()
            .position(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')));
        match found {
            Some(i) => {
                let rest = lines[i][key.len() + 1..].trim();
                let next_indented = lines
                    .get(i + 1)
                    .is_some_and(|n| n.starts_with([' ', '\t', '-']) && !n.trim().is_empty());
                if rest.is_empty() || rest.starts_with(['|', '>', '&', '*', '!']) || next_indented {
                    return Err(HostVarsError::NotOneLine {
                        key: key.to_string(),
                    });
                }
                lines[i] = line;
            }
            None => missing.push(line),
        }
    }
    let mut out = lines.join("\n");
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !missing.is_empty() || !keys.is_empty() {
        // The note always says when and what was measured, above the appended keys or at
        // the end.
        if let Some(i) = out.find("# switchyard trunks measure, ") {
            let end = out[i..].find('\n').map(|e| i + e + 1).unwrap_or(out.len());
            out.replace_range(i..end, &format!("{note}\n"));
        } else {
            out.push_str(note);
            out.push('\n');
        }
    }
    for l in missing {
        out.push_str(&l);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_vars_keep_what_they_had_and_replace_only_the_regions() {
        let text = "# nyc\nwavix_realm: us.wavix.net   # old\nnumbering_plan: us\n";
        let out = set_keys(
            text,
            &[
                ("wavix_realm", "nl.wavix.net".into()),
                ("wavix_failover_proxy", "us.wavix.net".into()),
            ],
            "# switchyard trunks measure, T: x",
        )
        .unwrap();
        assert_eq!(
            out,
            "# nyc\nwavix_realm: \"nl.wavix.net\"\nnumbering_plan: us\n# switchyard trunks measure, T: x\nwavix_failover_proxy: \"us.wavix.net\"\n"
        );
        // Measured again: the note is replaced, nothing piles up.
        let again = set_keys(
            &out,
            &[
                ("wavix_realm", "nl.wavix.net".into()),
                ("wavix_failover_proxy", "us.wavix.net".into()),
            ],
            "# switchyard trunks measure, T2: y",
        )
        .unwrap();
        assert_eq!(again, out.replace("T: x", "T2: y"));
        let block = set_keys("wavix_realm:\n  - a\n", &[("wavix_realm", "b".into())], "#");
        assert!(block.unwrap_err().to_string().contains("by hand"));
    }

    /// What an attacker with write access to a group-writable `host_vars/` plants, and what
    /// an operator sees (issue 21, item 8).
    #[test]
    fn host_vars_are_written_without_following_planted_links_or_leaking() {
        use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!("switchyard-hv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let r = HostRtt {
            host: "pbx-nyc".into(),
            regions: probe::rank(vec![probe::RegionRtt::new("nl.wavix.net", vec![9.0], 0)]),
            error: None,
            hint: None,
        };
        let nl = Region {
            proxy: "nl.wavix.net".into(),
            realm: "nl.wavix.net".into(),
        };
        let mut red = crate::secret::Redactor::default();
        red.add("hunter2-long-secret");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;

        // The temp name the old code used, planted as a link to root's authorized_keys.
        let keys = dir.join("authorized_keys");
        std::fs::write(&keys, "ssh-ed25519 AAAA root@ctl\n").unwrap();
        let nyc = dir.join("pbx-nyc.yml");
        symlink(&keys, dir.join("pbx-nyc.yml.switchyard-tmp")).unwrap();
        // A 0600 host_vars file of passwords.
        std::fs::write(&nyc, "backup_password: hunter2-long-secret\n").unwrap();
        std::fs::set_permissions(&nyc, std::fs::Permissions::from_mode(0o600)).unwrap();
        let diff = write_choice(&nyc, &r, &nl, None, &red).unwrap().unwrap();
        assert_eq!(
            std::fs::read_to_string(&keys).unwrap(),
            "ssh-ed25519 AAAA root@ctl\n"
        );
        assert_eq!(mode(&nyc), 0o600);
        assert!(!diff.contains("hunter2"), "{diff}");
        assert!(diff.contains("+wavix_proxy: \"nl.wavix.net\""), "{diff}");
        let text = std::fs::read_to_string(&nyc).unwrap();
        assert!(text.starts_with("backup_password: hunter2-long-secret\n"));

        // host_vars/pbx-lon.yml planted as a link to a 0600 secrets file: refused, the
        // secrets neither copied nor printed.
        let secrets = dir.join("secrets.yml");
        std::fs::write(&secrets, "root_password: hunter2-long-secret\n").unwrap();
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
        let lon = dir.join("pbx-lon.yml");
        symlink(&secrets, &lon).unwrap();
        let e = write_choice(&lon, &r, &nl, None, &red)
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!e.contains("hunter2"));
        assert!(std::fs::symlink_metadata(&lon)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(mode(&secrets), 0o600);
        assert_eq!(
            std::fs::read_to_string(&secrets).unwrap(),
            "root_password: hunter2-long-secret\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_ranking_reads_as_a_choice() {
        let r = HostRtt {
            host: "pbx-nyc-1".into(),
            regions: probe::rank(vec![
                probe::RegionRtt::new("nl.wavix.net", vec![81.0, 80.5, 90.25], 0),
                probe::RegionRtt::new("us.wavix.net", vec![12.0, 11.5, 13.0], 0),
                probe::RegionRtt::new("sg.wavix.net", vec![], 3),
            ]),
            error: None,
            hint: None,
        };
        let failed = HostRtt {
            host: "pbx-lon-1".into(),
            regions: vec![],
            error: Some("cannot take the host lock".into()),
            hint: None,
        };
        assert_eq!(
            render(&[r, failed], 3),
            "pbx-nyc-1
  1. us.wavix.net                 median    12.00 ms  spread     1.50 ms  3/3 answered  primary
  2. nl.wavix.net                 median    81.00 ms  spread     9.75 ms  3/3 answered  failover
  3. sg.wavix.net                 median        - ms  spread        - ms  0/3 answered
pbx-lon-1
  error: cannot take the host lock
"
        );
    }

    #[test]
    fn candidates_are_checked() {
        let v =
            serde_json::json!(["us.wavix.net", {"proxy": "127.0.0.5:5060", "realm": "sip.test"}]);
        let r = candidates("h", Some(&v)).unwrap().unwrap();
        assert_eq!(r[1].realm, "sip.test");
        for bad in [
            serde_json::json!("us.wavix.net"),
            serde_json::json!([]),
            serde_json::json!(["a b"]),
            serde_json::json!(["x", "x"]),
            serde_json::json!([{"proxy": "x", "realm": "a"}, {"proxy": "x", "realm": "b"}]),
        ] {
            assert!(candidates("h", Some(&bad)).is_err(), "{bad}");
        }
    }
}
