//! What an operator reads when something is wrong on day one (issue 27 item 5): each error
//! names what to change and where, and says nothing twice. Each test runs the command and
//! checks its exit code and what it printed.

use crate::harness::*;

const VAULT_VALUE: &str =
    "{vault: \"-----BEGIN AGE ENCRYPTED FILE-----\\nYWdl\\n-----END AGE ENCRYPTED FILE-----\\n\"}";

/// A vault value and no key: the error names the file and line, the host, the variable,
/// and the environment variable the README starts with.
#[test]
fn a_missing_vault_key_names_the_file_and_switchyard_vault_identity() {
    let d = tmp("msg-vault");
    let inv = d.join("hosts.yml");
    let text = format!("all:\n  hosts:\n    pbx1:\n      trunk_password: {VAULT_VALUE}\n");
    std::fs::write(&inv, text).unwrap();
    let out = switchyard(&["inventory", "-i", inv.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.all());
    let want = format!(
        "{}:4: host `pbx1`: variable `trunk_password`: ",
        inv.display()
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(
        out.stderr.contains("no vault key was given"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("SWITCHYARD_VAULT_IDENTITY"),
        "{}",
        out.stderr
    );
}

/// `SWITCHYARD_VAULT_IDENTITY=` (set, empty) is no key file: nothing reads a file named "".
#[test]
fn an_empty_vault_identity_variable_is_unset() {
    let d = tmp("msg-vault-empty");
    let inv = d.join("hosts.yml");
    std::fs::write(&inv, "all:\n  hosts:\n    pbx1:\n      x: 1\n").unwrap();
    let env = [("SWITCHYARD_VAULT_IDENTITY", "")];
    let out = switchyard_env(&["inventory", "-i", inv.to_str().unwrap()], &env);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        !out.stderr.contains("cannot read vault key"),
        "{}",
        out.stderr
    );
    // With a vault value it is the missing key that is said, not an unreadable file.
    let text = format!("all:\n  hosts:\n    pbx1:\n      trunk_password: {VAULT_VALUE}\n");
    std::fs::write(&inv, text).unwrap();
    let out = switchyard_env(&["inventory", "-i", inv.to_str().unwrap()], &env);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("no vault key was given"),
        "{}",
        out.stderr
    );
}

/// `{env: NAME}` unset: the file and line, and the host.
#[test]
fn a_missing_env_secret_names_the_host_and_the_line() {
    let d = tmp("msg-env");
    let inv = d.join("hosts.yml");
    std::fs::write(
        &inv,
        "all:\n  hosts:\n    pbx-lon:\n      x: 1\n    pbx-nyc:\n      ansible_host: 127.0.0.1\n      wavix_password: {env: SWITCHYARD_TEST_UNSET_SECRET}\n",
    )
    .unwrap();
    let out = switchyard(&["inventory", "-i", inv.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.all());
    let want = format!(
        "{}:7: host `pbx-nyc`: variable `wavix_password`: environment variable `SWITCHYARD_TEST_UNSET_SECRET` is not set",
        inv.display()
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
}

/// `-i playbook.yml inventory.yml`: the file read as an inventory is said to look like a
/// playbook, instead of `invalid type: sequence, expected a map`.
#[test]
fn a_playbook_given_as_the_inventory_is_named_as_such() {
    let d = tmp("msg-swap");
    let inv = d.join("hosts.yml");
    std::fs::write(&inv, "all:\n  hosts:\n    pbx1:\n").unwrap();
    let pb = playbook(&d, "site.yml", "- hosts: all\n  tasks: []\n");
    let out = switchyard(&["lint", "-i", &pb, inv.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("read as an inventory (`-i`), but it is a list, as a playbook is"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("expected a map"), "{}", out.stderr);
}

/// A template error is shown after the host's name once: no `pbx-nyc: host `pbx-nyc``.
#[test]
fn a_render_error_names_the_host_once() {
    let d = tmp("msg-render");
    let inv = d.join("hosts.yml");
    std::fs::write(&inv, "all:\n  hosts:\n    pbx-nyc:\n").unwrap();
    let pb = playbook(
        &d,
        "site.yml",
        "- hosts: all\n  tasks:\n    - name: t1\n      template: {src: nowhere.xml.j2, dest: autoload_configs/x.xml}\n",
    );
    let out = switchyard(&["lint", "-i", inv.to_str().unwrap(), &pb]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("pbx-nyc: task `t1`: template `nowhere.xml.j2`"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("host `pbx-nyc`"), "{}", out.stderr);
}

/// `inventory` shows no `root@pbx-nyc:22` for a host that is reached by no address.
#[test]
fn a_local_host_is_listed_without_an_address() {
    let d = tmp("msg-local");
    let inv = d.join("hosts.yml");
    std::fs::write(
        &inv,
        "all:\n  hosts:\n    pbx-nyc:\n      ansible_connection: local\n",
    )
    .unwrap();
    let out = switchyard(&["inventory", "-i", inv.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("  connection: local (commands run on this machine)\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("root@pbx-nyc"), "{}", out.stdout);
}

/// A wrong `freeswitch_conf_root`: the conf root is said to be missing, not a file in it.
#[test]
fn a_wrong_conf_root_is_said_to_be_missing() {
    let d = tmp("msg-conf-root");
    let root = d.join("no-such-conf");
    let inv = d.join("hosts.yml");
    std::fs::write(
        &inv,
        format!(
            "all:\n  hosts:\n    pbx-nyc:\n      ansible_connection: local\n      freeswitch_conf_root: {}\n",
            root.display()
        ),
    )
    .unwrap();
    let pb = playbook(
        &d,
        "site.yml",
        "- hosts: all\n  tasks:\n    - name: edit\n      xml_params: {dest: vars.xml, section: x, params: {y: z}}\n",
    );
    let out = switchyard(&["apply", "--check", "-i", inv.to_str().unwrap(), &pb]);
    assert_eq!(out.code, 1, "{}", out.all());
    let want = format!(
        "the conf root {} does not exist on the host: is `freeswitch_conf_root` right?",
        root.display()
    );
    assert!(out.all().contains(&want), "{}", out.all());
    assert!(!root.exists(), "a check creates nothing");
}

/// The README's table of the variables the shipped playbook requires, in step with the
/// playbook (issue 27 item 5: `did_routes` was required and the README did not say so): a
/// host with exactly the variables the table lists lints clean, so none is missing from it,
/// and a host without any one of them gets an error naming it, so none is listed in vain.
#[test]
fn the_readmes_required_variables_are_the_playbooks() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let start = readme
        .find("Variables the shipped playbook requires")
        .expect("the README's table of required variables");
    let required: Vec<String> = readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .flat_map(|row| {
            let first = row.split('|').nth(1).unwrap_or_default();
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    // A value for each, as an operator would write it.
    let sample = |name: &str| match name {
        "did_routes" => r#"[{number: "16465550100", extension: "1000"}]"#,
        "emergency_calls" => "trunk",
        "wavix_username" => r#""100001""#,
        "wavix_password" => "pw-Secr3t",
        other => panic!("README lists `{other}`: give this test a value for it"),
    };
    assert!(!required.is_empty(), "no variable in the table");
    let d = tmp("msg-required");
    let lint = |leave_out: Option<&str>| {
        // In group `pbx`, which the shipped play targets.
        let mut text = "pbx:\n  hosts:\n    pbx1:\n      ansible_connection: local\n".to_string();
        for v in required.iter().filter(|v| Some(v.as_str()) != leave_out) {
            text.push_str(&format!("      {v}: {}\n", sample(v)));
        }
        let inv = d.join("hosts.yml");
        std::fs::write(&inv, text).unwrap();
        let pb = repo("playbooks/wavix.yml");
        switchyard(&["lint", "-i", inv.to_str().unwrap(), &pb])
    };
    let all = lint(None);
    assert_eq!(
        all.code,
        0,
        "a variable the playbook requires is missing from the README's table:\n{}",
        all.all()
    );
    assert!(all.stderr.contains("rendered for 1 host"), "{}", all.all());
    for v in &required {
        let out = lint(Some(v));
        assert_eq!(out.code, 1, "without `{v}`:\n{}", out.all());
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("error: pbx1: ") && l.contains(v.as_str())),
            "without `{v}`, no error names it:\n{}",
            out.all()
        );
    }
}

/// A mistyped `freeswitch_conf_root` on a run that would only create files (no file to edit
/// to give it away): `apply` used to create the whole tree there, where FreeSWITCH never
/// reads it, and report success. Now the host fails, saying the conf root is missing, and
/// no folder is created, on `apply` as on `--check`.
#[test]
fn apply_refuses_a_conf_root_that_does_not_exist() {
    let d = tmp("msg-conf-root-apply");
    let root = d.join("freeswich").join("conf");
    let inv = d.join("hosts.yml");
    std::fs::write(
        &inv,
        format!(
            "all:\n  hosts:\n    pbx-nyc:\n      ansible_connection: local\n      freeswitch_conf_root: {}\n",
            root.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("templates")).unwrap();
    std::fs::write(d.join("templates/gw.xml.j2"), "<include/>\n").unwrap();
    let pb = playbook(
        &d,
        "site.yml",
        "- hosts: all\n  tasks:\n    - name: gw\n      template: {src: gw.xml.j2, dest: sip_profiles/external/gw.xml}\n",
    );
    let want = format!(
        "the conf root {} does not exist on the host: is `freeswitch_conf_root` right?",
        root.display()
    );
    for check in [true, false] {
        let mut args = vec!["apply", "-i", inv.to_str().unwrap(), &pb];
        if check {
            args.insert(1, "--check");
        }
        let out = switchyard(&args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.all());
        assert!(out.all().contains(&want), "{args:?}: {}", out.all());
        assert!(
            !d.join("freeswich").exists(),
            "{args:?}: nothing is created at a conf root that does not exist"
        );
    }
}
