//! The JSON Schemas editors read (`schema/*.json`, named on the first line of every shipped
//! YAML file): in step with the loader's types, and agreeing with the loader on the shipped
//! files and on a misspelt key. Validation is python3-jsonschema's (Debian's package,
//! installed by scripts/test), the validator family VS Code's YAML extension follows.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{switchyard, tmp};

const KINDS: [&str; 3] = ["playbook", "inventory", "vars"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn published_schemas_are_what_the_loader_types_generate() {
    for kind in KINDS {
        let out = switchyard(&["schema", kind]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let path = root().join(format!("schema/{kind}.schema.json"));
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            published == out.stdout,
            "{} is not what the loader's types give: regenerate it with \
             `cargo run -q -- schema {kind} > schema/{kind}.schema.json`",
            path.display()
        );
    }
}

/// Which schema a shipped YAML file is: by where it lives.
fn kind_of(rel: &str) -> &'static str {
    if rel.starts_with("playbooks/") {
        "playbook"
    } else if rel.contains("group_vars/") || rel.contains("host_vars/") {
        "vars"
    } else {
        "inventory"
    }
}

/// The YAML files the repository ships for users: playbooks and the example inventories.
fn shipped_yaml() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    for dir in ["playbooks", "inventory"] {
        walk(&root().join(dir), &mut files);
    }
    let mut rel: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    rel.sort();
    rel
}

/// Validate YAML text against a schema file as an editor would: `Err` lists every error.
fn validate(schema: &Path, yaml: &str) -> Result<(), String> {
    let data: serde_json::Value = yaml_serde::from_str(yaml).expect("the YAML parses");
    let script = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(json.load(sys.stdin)), key=lambda e: list(map(str, e.absolute_path)))
for e in errors:
    print("/".join(map(str, e.absolute_path)) + ": " + " | ".join([e.message] + [c.message for c in (e.context or [])]))
sys.exit(1 if errors else 0)
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(data.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'jsonschema'"),
        "python3-jsonschema is missing: scripts/test installs it (apt-get install python3-jsonschema)"
    );
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => panic!("the validator failed: {stderr}"),
    }
}

#[test]
fn every_shipped_yaml_file_names_its_schema_and_validates_against_it() {
    let files = shipped_yaml();
    assert!(files.len() >= 6, "{files:?}");
    for rel in files {
        let text = std::fs::read_to_string(root().join(&rel)).unwrap();
        let kind = kind_of(&rel);
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{rel}: the first line must name its schema, not `{first}`"));
        let schema = root().join(&rel).parent().unwrap().join(target);
        assert_eq!(
            schema.canonicalize().ok(),
            root()
                .join(format!("schema/{kind}.schema.json"))
                .canonicalize()
                .ok(),
            "{rel} names `{target}`, not schema/{kind}.schema.json"
        );
        if let Err(e) = validate(&schema, &text) {
            panic!("{rel} does not validate against {target}:\n{e}");
        }
    }
}

#[test]
fn a_misspelt_task_key_is_refused_by_the_schema_as_by_the_loader() {
    let playbook = root().join("schema/playbook.schema.json");
    let shipped = std::fs::read_to_string(root().join("playbooks/wavix.yml")).unwrap();
    let dir = tmp("schema-typo");
    let inventory = dir.join("hosts.yml");
    std::fs::write(
        &inventory,
        "all:\n  hosts:\n    pbx1: {emergency_calls: trunk}\n",
    )
    .unwrap();
    for (right, wrong) in [
        ("      template:\n", "      tempalte:\n"),
        ("        mode: \"0640\"\n", "        mdoe: \"0640\"\n"),
        ("  serial:", "  serail:"),
    ] {
        assert!(shipped.contains(right), "{right:?}");
        let typo = shipped.replacen(right, wrong, 1);
        let key = wrong
            .trim()
            .trim_end_matches(':')
            .split(':')
            .next()
            .unwrap();
        let e = validate(&playbook, &typo).expect_err(wrong);
        assert!(e.contains(&format!("'{key}' was unexpected")), "{e}");
        // The loader says no too, naming the key.
        let p = dir.join("playbooks/wavix.yml");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &typo).unwrap();
        let out = switchyard(&[
            "lint",
            "-i",
            inventory.to_str().unwrap(),
            p.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(&format!("unknown field `{key}`")),
            "{}",
            out.stderr
        );
    }
    // A task naming no kind, or two, is refused by both as well.
    let two = shipped.replacen(
        "      template:\n        src: gateway.xml.j2",
        "      fs_cli: {command: reloadxml}\n      template:\n        src: gateway.xml.j2",
        1,
    );
    assert!(validate(&playbook, &two).is_err());
}

#[test]
fn inventory_groups_are_strict_and_variables_free() {
    let inventory = root().join("schema/inventory.schema.json");
    let vars = root().join("schema/vars.schema.json");
    // Variables switchyard does not read are Ansible's business: allowed, at every level.
    let ok = "all:\n  vars: {ntp_server: ntp.example.net}\n  hosts:\n    pbx1: {ansible_host: 192.0.2.1, backup_window: '02:00'}\n  children:\n    pbx:\n      hosts: pbx2\n";
    validate(&inventory, ok).unwrap();
    validate(
        &vars,
        "freeswitch_conf_root: /etc/freeswitch\nsomething_else: [1, 2]\n",
    )
    .unwrap();
    // Secrets come from outside the file.
    validate(&vars, "wavix_password: {env: WAVIX_PASSWORD}\n").unwrap();
    // A group key that is not hosts/vars/children is a typo that would drop hosts.
    let e = validate(&inventory, "all:\n  host:\n    pbx1: {}\n").unwrap_err();
    assert!(e.contains("'host' was unexpected"), "{e}");
    // A variable whose values are a fixed set is checked.
    let e = validate(&vars, "emergency_calls: maybe\n").unwrap_err();
    assert!(
        e.contains("emergency_calls") && e.contains("'maybe'"),
        "{e}"
    );
}
