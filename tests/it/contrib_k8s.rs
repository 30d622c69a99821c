//! Issue 29, item 4: the deployment examples for a shared PostgreSQL history — Kubernetes
//! manifests (the agent pair, a scheduled drift check, their Secret) and a systemd unit for
//! two ops hosts.
//!
//! *Decision*: no cluster and no kubeconform here (neither is in Debian; kubectl's
//! `--dry-run=client` still asks a server for its API list), so the manifests get a
//! structural check of what a cluster would reject or what would break switchyard: every
//! reference resolves (Secret keys, volumes, ports), the pods cannot write their image or
//! gain privileges, and the password reaches the process only through the Secret, never an
//! argument. Each `args` list is parsed by the built binary's own command line.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::harness::{repo, switchyard, tmp};

fn manifests() -> Vec<Value> {
    let text = std::fs::read_to_string(repo("contrib/kubernetes/switchyard.yaml")).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("a YAML document"))
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// One pod spec: its references resolve against `secret`, and it is locked down.
fn check_pod(name: &str, pod: &Value, secret: &Value) {
    let keys = secret["stringData"].as_object().expect("stringData");
    let secret_name = &secret["metadata"]["name"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
    let volumes: Vec<&Value> = pod["volumes"].as_array().unwrap().iter().collect();
    for v in &volumes {
        if let Some(s) = v.get("secret") {
            assert_eq!(&s["secretName"], secret_name, "{name}");
            for item in s["items"].as_array().unwrap() {
                assert!(
                    keys.contains_key(item["key"].as_str().unwrap()),
                    "{name}: {item}"
                );
            }
        }
    }
    for c in pod["containers"].as_array().unwrap() {
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{name}");
        let mounts = c["volumeMounts"].as_array().unwrap();
        for m in mounts {
            assert!(
                volumes.iter().any(|v| v["name"] == m["name"]),
                "{name}: {m}"
            );
        }
        let env = c["env"].as_array().unwrap();
        let var = |n: &str| {
            env.iter()
                .find(|e| e["name"] == n)
                .unwrap_or_else(|| panic!("{name}: {n}"))
        };
        let pw = &var("PGPASSWORD")["valueFrom"]["secretKeyRef"];
        assert_eq!(&pw["name"], secret_name, "{name}");
        assert!(keys.contains_key(pw["key"].as_str().unwrap()), "{name}");
        // A read-only root: the state folder (retry files) must be a writable mount.
        let state = var("XDG_STATE_HOME")["value"].as_str().unwrap();
        assert!(mounts
            .iter()
            .any(|m| m["mountPath"] == state && m.get("readOnly").is_none()));
        for file in ["SWITCHYARD_VAULT_IDENTITY", "SWITCHYARD_DIGEST_KEY_FILE"] {
            let path = var(file)["value"].as_str().unwrap();
            assert!(mounts
                .iter()
                .any(|m| path.starts_with(m["mountPath"].as_str().unwrap())));
        }
        check_args(name, c["args"].as_array().unwrap());
    }
}

/// The arguments hold no password, name a postgres:// history, and the binary's own
/// command line accepts them (`--help` appended: parsed, nothing run).
fn check_args(name: &str, args: &[Value]) {
    let args: Vec<&str> = args.iter().map(|a| a.as_str().unwrap()).collect();
    let history = args[args.iter().position(|a| *a == "--history").unwrap() + 1];
    assert!(history.starts_with("postgres://"), "{name}");
    let userinfo = history["postgres://".len()..].split('@').next().unwrap();
    assert!(!userinfo.contains(':'), "{name}: a password in the URL");
    // The history URL is checked by the binary's own parser (a password would be refused).
    let out = switchyard(&[
        "history",
        "migrate",
        "--from",
        "/nonexistent.db",
        "--to",
        history,
    ]);
    assert!(
        out.stderr.contains("no such history file"),
        "{name}: {}",
        out.all()
    );
    let mut parsed = args.clone();
    parsed.push("--help");
    let out = switchyard(&parsed);
    assert_eq!(out.code, 0, "{name}: {:?}: {}", args, out.all());
}

#[test]
fn the_kubernetes_manifests_hold_together_and_keep_the_password_in_the_secret() {
    let docs = manifests();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Secret", "Deployment", "CronJob"]);
    for d in &docs {
        assert_eq!(d["metadata"]["namespace"], "switchyard", "{}", d["kind"]);
    }
    let secret = of_kind(&docs, "Secret");
    let deployment = &of_kind(&docs, "Deployment")["spec"];
    assert_eq!(deployment["replicas"], 2, "agents in pairs");
    let labels = deployment["template"]["metadata"]["labels"]
        .as_object()
        .unwrap();
    for (k, v) in deployment["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(labels.get(k), Some(v), "the selector selects the pods");
    }
    let pod = &deployment["template"]["spec"];
    check_pod("Deployment", pod, secret);
    let agent = &pod["containers"][0];
    assert_eq!(agent["args"][0], "watch");
    assert!(agent["args"]
        .as_array()
        .unwrap()
        .contains(&Value::from("--fix")));
    let port = &agent["livenessProbe"]["httpGet"]["port"];
    assert!(agent["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| &p["name"] == port));

    let cron = &of_kind(&docs, "CronJob")["spec"];
    assert_eq!(
        cron["schedule"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        5
    );
    assert_eq!(cron["concurrencyPolicy"], "Forbid");
    let pod = &cron["jobTemplate"]["spec"]["template"]["spec"];
    assert!(["Never", "OnFailure"].contains(&pod["restartPolicy"].as_str().unwrap()));
    check_pod("CronJob", pod, secret);
    assert_eq!(pod["containers"][0]["args"][0], "drift");
}

/// The pair's unit: valid for systemd, hardened exactly as the single agent's, and its
/// password handed over as a credential file, never in an argument or the environment.
#[test]
fn the_systemd_unit_for_a_pair_verifies_and_keeps_the_password_out_of_its_arguments() {
    let dir = tmp("contrib-pair");
    let hardening = |text: &str| -> Vec<String> {
        text[text.find("# --- Hardening ---").unwrap()..]
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(String::from)
            .collect()
    };
    let read = |u: &str| std::fs::read_to_string(repo(&format!("contrib/systemd/{u}"))).unwrap();
    let pair = read("switchyard-watch-pair.service");
    assert_eq!(
        hardening(&pair),
        hardening(&read("switchyard-watch.service"))
    );
    let exec = pair.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(exec.contains("--history postgres://switchyard@"), "{exec}");
    assert!(
        !pair.contains("PGPASSWORD"),
        "no password in the environment"
    );
    assert!(pair.contains("\nLoadCredential=pgpass:/etc/switchyard/pgpass\n"));
    assert!(pair.contains("\nEnvironment=PGPASSFILE=%d/pgpass\n"));
    let unit: PathBuf = dir.join("switchyard-watch-pair.service");
    std::fs::write(
        &unit,
        pair.replace(
            "/usr/local/bin/switchyard",
            env!("CARGO_BIN_EXE_switchyard"),
        ),
    )
    .unwrap();
    let analyze = |args: &[&str]| {
        let out = Command::new("systemd-analyze")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("systemd-analyze (Debian package systemd; scripts/test installs it)");
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), said)
    };
    let (code, said) = analyze(&["verify", "switchyard-watch-pair.service"]);
    assert_eq!((code, said.trim()), (Some(0), ""), "{said}");
    let (code, said) = analyze(&[
        "security",
        "--offline=yes",
        "--threshold=20",
        "switchyard-watch-pair.service",
    ]);
    assert_eq!(code, Some(0), "exposure over 2.0:\n{said}");
    let words = shlex::split(&exec["ExecStart=".len()..]).unwrap();
    let mut parsed: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    parsed.push("--help");
    assert_eq!(switchyard(&parsed).code, 0, "{exec}");
}
