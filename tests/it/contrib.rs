//! What `contrib/` ships for the ecosystem operators already run (issue 27, item 6):
//! Prometheus alerting rules, tested with `promtool test rules`, and a Grafana dashboard;
//! both may use only metric names the agent really exports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::repo;

fn contrib(rel: &str) -> PathBuf {
    PathBuf::from(repo(&format!("contrib/{rel}")))
}

/// `tool ARGS` in `dir`: (exit code, stdout and stderr). The tools come from Debian
/// packages scripts/test installs (`package`): a missing one fails the test, never skips it.
fn run_tool(tool: &str, package: &str, dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool} (Debian package {package}; scripts/test installs it): {e}")
        });
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let (code, said) = run_tool("promtool", "prometheus", dir, args);
    (code == Some(0), said)
}

/// The rules load, and each alert fires (and stays quiet) as its unit tests say: trunk
/// down, no events from a PBX, drift found, a failed correction, history writes failing,
/// rounds that cannot run.
#[test]
fn the_alerting_rules_pass_promtools_checks_and_unit_tests() {
    let dir = contrib("prometheus");
    let (ok, said) = promtool(&dir, &["check", "rules", "switchyard.rules.yml"]);
    assert!(ok, "{said}");
    let (ok, said) = promtool(&dir, &["test", "rules", "switchyard.rules.test.yml"]);
    assert!(ok, "{said}");
    let rules = std::fs::read_to_string(dir.join("switchyard.rules.yml")).unwrap();
    for alert in [
        "SwitchyardTrunkDown",
        "SwitchyardNoEventsFromPbx",
        "SwitchyardDriftFound",
        "SwitchyardRolloutFailed",
        "SwitchyardHistoryWriteFailing",
    ] {
        assert!(rules.contains(&format!("alert: {alert}\n")), "{alert}");
    }
}

/// Every `switchyard_…` name in a text.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("switchyard_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        out.insert(name);
    }
    out
}

/// The alerting rules, their tests' input series and the dashboard's queries name only
/// metrics the agent exports (its one registry, with and without `--events`): a renamed
/// metric fails here instead of silencing an alert or blanking a panel.
#[test]
fn contrib_uses_only_metrics_the_agent_exports() {
    let exported = switchyard::agent::watch::metric_names();
    let mut used = BTreeSet::new();
    for rel in [
        "prometheus/switchyard.rules.yml",
        "prometheus/switchyard.rules.test.yml",
        "grafana/switchyard-fleet.json",
    ] {
        let text = std::fs::read_to_string(contrib(rel)).unwrap();
        let names = metric_names_in(&text);
        assert!(!names.is_empty(), "{rel} names no metric");
        for n in &names {
            assert!(
                exported.contains(n),
                "{rel} uses `{n}`, which the agent does not export; it exports:\n{exported:#?}"
            );
        }
        used.extend(names);
    }
    // The metrics the alerts need are among them.
    for n in [
        "switchyard_gateway_healthy",
        "switchyard_event_socket_up",
        "switchyard_host_drifted",
        "switchyard_rollouts_failed_total",
        "switchyard_history_write_failures_total",
    ] {
        assert!(used.contains(n), "{n} unused");
    }
}

/// The dashboard is JSON Grafana can import: every panel's queries have an expression, the
/// PBX variable drives a per-PBX row, and fleet state and changes over time are shown.
#[test]
fn the_dashboard_has_fleet_changes_and_per_pbx_panels() {
    let text = std::fs::read_to_string(contrib("grafana/switchyard-fleet.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = d["panels"].as_array().unwrap();
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for t in ["Fleet", "Changes over time", "PBX $host"] {
        assert!(titles.contains(&t), "{titles:?}");
    }
    let row = panels.iter().find(|p| p["title"] == "PBX $host").unwrap();
    assert_eq!(row["repeat"], "host");
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            assert!(
                t["expr"]
                    .as_str()
                    .is_some_and(|e| e.contains("switchyard_")),
                "{}: {t}",
                p["title"]
            );
        }
    }
}

/// The shipped units, their `ExecStart` pointed at the binary just built (verify needs it
/// to exist), in a folder of their own.
fn units_with_built_binary() -> PathBuf {
    let dir = crate::harness::tmp("contrib-systemd");
    for unit in [
        "switchyard-watch.service",
        "switchyard-drift.service",
        "switchyard-drift.timer",
    ] {
        let text = std::fs::read_to_string(contrib(&format!("systemd/{unit}"))).unwrap();
        if unit.ends_with(".service") {
            assert!(
                text.contains("ExecStart=/usr/local/bin/switchyard "),
                "{unit}"
            );
        }
        let text = text.replace(
            "/usr/local/bin/switchyard",
            env!("CARGO_BIN_EXE_switchyard"),
        );
        std::fs::write(dir.join(unit), text).unwrap();
    }
    dir
}

/// `systemd-analyze ARGS` in `dir`. No systemd as PID 1 is needed for `verify` and
/// `security --offline`.
fn systemd_analyze(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    run_tool("systemd-analyze", "systemd", dir, args)
}

/// Issue 27 item 8: the shipped units are valid for systemd (verify exits 0 even on an
/// unknown or misspelt key, so any output fails too) and sandboxed: systemd's own exposure
/// score at most 2.0 of 10 (the unit shipped before scored 9.0, "UNSAFE"), with the
/// settings the README promises, the same in both services.
#[test]
fn the_systemd_units_verify_and_are_hardened() {
    let dir = units_with_built_binary();
    for units in [
        &["switchyard-watch.service"][..],
        &["switchyard-drift.service", "switchyard-drift.timer"][..],
    ] {
        let mut args = vec!["verify"];
        args.extend_from_slice(units);
        let (code, said) = systemd_analyze(&dir, &args);
        assert_eq!(code, Some(0), "{units:?}: {said}");
        assert_eq!(said.trim(), "", "{units:?}: systemd-analyze verify warned");
    }
    let hardening = |unit: &str| {
        let text = std::fs::read_to_string(dir.join(unit)).unwrap();
        text[text.find("# --- Hardening ---").expect(unit)..]
            .lines()
            .take_while(|l| !l.starts_with('['))
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let watch = hardening("switchyard-watch.service");
    assert_eq!(watch, hardening("switchyard-drift.service"));
    for setting in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=switchyard",
        "PrivateTmp=yes",
        "ProtectHome=read-only",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "CapabilityBoundingSet=",
    ] {
        assert!(watch.iter().any(|l| l == setting), "{setting} missing");
    }
    for unit in ["switchyard-watch.service", "switchyard-drift.service"] {
        let text = std::fs::read_to_string(dir.join(unit)).unwrap();
        assert!(text.contains("\nLimitNOFILE=65536\n"), "{unit}");
        // /etc/switchyard is not writable: only the state folder is.
        assert!(!text.contains("ReadWritePaths"), "{unit}");
        let (code, said) =
            systemd_analyze(&dir, &["security", "--offline=yes", "--threshold=20", unit]);
        assert_eq!(code, Some(0), "{unit}: exposure over 2.0:\n{said}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
