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

/// `promtool ARGS` in `dir`: (success, what it printed). promtool is Debian's `prometheus`
/// package, which scripts/test installs: a missing one fails the test, never skips it.
fn promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
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
