//! Inventories and command-line habits as Ansible users have them: host ranges, YAML merge
//! keys, duplicate keys refused with both lines, `-e` extra variables, `--list-hosts` and
//! `--list-tasks`. Nothing here connects to a host.

use crate::harness::{repo, switchyard_env, tmp};

const INVENTORY: &str = "\
all:
  children:
    pbx:
      children:
        us:
          hosts:
            pbx-us-[01:03].example.net: &pbx
              ansible_user: ops
              ansible_port: 2222
              wavix_realm: us.wavix.net
        eu:
          hosts:
            pbx-eu-[a:b].example.net:
              <<: *pbx
              wavix_realm: nl.wavix.net
";

fn inventory_json(dir: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let inv = dir.join("hosts.yml");
    let mut args = vec!["inventory", "-i", inv.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = switchyard_env(&args, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    out.json()
}

#[test]
fn ranges_and_merge_keys_load_as_ansible_reads_them() {
    let d = tmp("ansible-ranges");
    std::fs::write(d.join("hosts.yml"), INVENTORY).unwrap();
    std::fs::create_dir_all(d.join("group_vars")).unwrap();
    std::fs::write(
        d.join("group_vars/eu.yml"),
        "wavix_failover_proxy: us.wavix.net\n",
    )
    .unwrap();
    let v = inventory_json(&d, &[]);
    let hosts = v["hosts"].as_array().unwrap();
    let names: Vec<&str> = hosts.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "pbx-us-01.example.net",
            "pbx-us-02.example.net",
            "pbx-us-03.example.net",
            "pbx-eu-a.example.net",
            "pbx-eu-b.example.net"
        ]
    );
    let us = &hosts[1];
    assert_eq!(us["connection"]["user"], "ops");
    assert_eq!(us["connection"]["port"], 2222);
    assert_eq!(us["vars"]["wavix_realm"], "us.wavix.net");
    assert!(us["vars"].get("<<").is_none(), "{us}");
    // The merge gives defaults; the host's own key wins; group_vars/ apply.
    let eu = &hosts[4];
    assert_eq!(eu["vars"]["wavix_realm"], "nl.wavix.net");
    assert_eq!(eu["vars"]["wavix_failover_proxy"], "us.wavix.net");
    assert_eq!(eu["groups"], serde_json::json!(["all", "eu", "pbx"]));
}

#[test]
fn a_key_given_twice_or_a_runaway_range_is_one_located_error() {
    let d = tmp("ansible-dups");
    let inv = d.join("hosts.yml");
    std::fs::write(
        &inv,
        "all:\n  hosts:\n    pbx1:\n      ansible_host: 127.0.0.1\n      wavix_realm: us.wavix.net\n      ansible_host: 10.0.0.1\n",
    )
    .unwrap();
    let out = switchyard_env(&["inventory", "-i", inv.to_str().unwrap()], &[]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: {}:6:7: duplicate key `ansible_host` (first given at line 4): each key once\n",
            inv.display()
        )
    );
    for (range, why) in [
        ("pbx-[1:100000]", "names 100000 hosts, more than 10000"),
        ("pbx-[9:1]", "runs backwards and names no host"),
    ] {
        std::fs::write(&inv, format!("all:\n  hosts:\n    {range}:\n")).unwrap();
        let out = switchyard_env(&["inventory", "-i", inv.to_str().unwrap()], &[]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr
                .starts_with(&format!("error: {}: host `{range}`", inv.display()))
                && out.stderr.contains(why),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn extra_vars_win_over_everything_and_bad_ones_are_named() {
    let d = tmp("ansible-extra");
    std::fs::write(d.join("hosts.yml"), INVENTORY).unwrap();
    std::fs::write(
        d.join("more.yml"),
        "wavix_realm: file.example\nansible_port: 2200\n",
    )
    .unwrap();
    let pb = repo("playbooks/wavix.yml");
    let inv = d.join("hosts.yml");
    let list = |extra: &[&str]| {
        let mut args = vec!["apply", "-i", inv.to_str().unwrap(), &pb, "--list-hosts"];
        args.extend_from_slice(extra);
        switchyard_env(&args, &[])
    };
    // --list-hosts: per play, the hosts after --limit; nothing contacted, exit 0.
    let out = list(&["--limit", "eu:pbx-us-02*"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        out.stdout,
        "play: Wavix SIP trunk (3 hosts)\n  hosts:\n    pbx-us-02.example.net\n    pbx-eu-a.example.net\n    pbx-eu-b.example.net\n"
    );
    let tasks = switchyard_env(
        &["apply", "-i", inv.to_str().unwrap(), &pb, "--list-tasks"],
        &[],
    );
    assert_eq!(tasks.code, 0, "{}", tasks.all());
    assert!(tasks.stdout.contains("  tasks:\n    "), "{}", tasks.stdout);

    // -e is applied above the inventory (connection settings included): `key=value`, a
    // mapping, a file; later wins.
    let v = inventory_json(
        &d,
        &[
            "-e",
            "ansible_port=2022 wavix_realm=cli.example",
            "-e",
            "{\"x\": [1, 2]}",
        ],
    );
    let h = &v["hosts"][3];
    assert_eq!(h["connection"]["port"], 2022, "{h}");
    assert_eq!(h["vars"]["wavix_realm"], "cli.example");
    assert_eq!(h["vars"]["x"], serde_json::json!([1, 2]));
    let at = format!("@{}", d.join("more.yml").display());
    let v = inventory_json(&d, &["-e", "wavix_realm=first", "-e", &at]);
    assert_eq!(v["hosts"][0]["vars"]["wavix_realm"], "file.example");
    assert_eq!(v["hosts"][0]["connection"]["port"], 2200);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "apply",
            "-i",
            inv.to_str().unwrap(),
            &pb,
            "--list-hosts",
            "-l",
            "pbx-eu-a*",
        ];
        args.extend_from_slice(extra);
        switchyard_env(&args, &[])
    };
    for (bad, why) in [
        ("novalue", "-e #1: `novalue` is not `key=value`"),
        ("1x=2", "-e #1: `1x` is not a variable name"),
        ("{a: [", "-e #1:"),
        ("@/no/such/file.yml", "/no/such/file.yml: cannot read"),
    ] {
        let out = run(&["-e", bad]);
        assert_eq!(out.code, 1, "{bad}: {}", out.all());
        assert!(out.stderr.contains(why), "{bad}: {}", out.stderr);
    }
}

/// Group → every host in it (directly or through children), from `ansible-inventory --list`.
fn ansible_membership(
    doc: &serde_json::Value,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    fn members(doc: &serde_json::Value, g: &str, out: &mut BTreeSet<String>) {
        for h in doc[g]["hosts"].as_array().into_iter().flatten() {
            out.insert(h.as_str().unwrap().to_string());
        }
        for c in doc[g]["children"].as_array().into_iter().flatten() {
            members(doc, c.as_str().unwrap(), out);
        }
    }
    let mut m = BTreeMap::new();
    for g in doc.as_object().unwrap().keys().filter(|g| *g != "_meta") {
        let mut s = BTreeSet::new();
        members(doc, g, &mut s);
        m.insert(g.clone(), s);
    }
    m
}

/// The same inventory, in YAML and as its INI twin, loads with exactly the hosts, groups
/// and merged variables `ansible-inventory --list` (ansible-core 2.19) gives for it.
#[test]
fn yaml_and_ini_inventories_load_as_ansible_inventory_lists_them() {
    for (file, recorded) in [
        ("hosts.yml", "ansible-inventory-yml.json"),
        ("hosts.ini", "ansible-inventory-ini.json"),
    ] {
        let inv = repo(&format!("tests/fixtures/ansible/{file}"));
        let out = switchyard_env(&["inventory", "-i", &inv, "--json"], &[]);
        assert_eq!(out.code, 0, "{file}: {}", out.all());
        let ours = out.json();
        let theirs: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(repo(&format!("tests/fixtures/ansible/{recorded}"))).unwrap(),
        )
        .unwrap();
        let hostvars = theirs["_meta"]["hostvars"].as_object().unwrap();
        let hosts = ours["hosts"].as_array().unwrap();
        let names: std::collections::BTreeSet<&str> =
            hosts.iter().map(|h| h["name"].as_str().unwrap()).collect();
        let want: std::collections::BTreeSet<&str> = hostvars.keys().map(String::as_str).collect();
        assert_eq!(names, want, "{file}: hosts");
        for h in hosts {
            let name = h["name"].as_str().unwrap();
            assert_eq!(h["vars"], hostvars[name], "{file}: variables of {name}");
        }
        let membership = ansible_membership(&theirs);
        for (group, members) in membership {
            if group == "ungrouped" && members.is_empty() {
                continue; // Ansible always lists an empty `ungrouped`.
            }
            let mine: std::collections::BTreeSet<String> = ours["groups"][&group]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: no group {group}"))
                .iter()
                .map(|h| h.as_str().unwrap().to_string())
                .collect();
            assert_eq!(mine, members, "{file}: members of {group}");
        }
    }
}

#[test]
fn scripts_several_sources_and_the_environment() {
    let d = tmp("ansible-sources");
    // A dynamic inventory (what NetBox or a CMDB plugin prints), run with --list.
    let script = d.join("netbox");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = --list ] || exit 2\ncat <<'JSON'\n{\"pbx\": {\"hosts\": [\"cmdb-1\"], \"vars\": {\"wavix_realm\": \"us.wavix.net\"}},\n \"_meta\": {\"hostvars\": {\"cmdb-1\": {\"ansible_host\": \"127.0.0.9\", \"ansible_port\": 2200}}}}\nJSON\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A second source adds a host and overrides a group variable.
    std::fs::write(
        d.join("extra.ini"),
        "[pbx]\nini-1 ansible_port=2201\n[pbx:vars]\nwavix_realm=nl.wavix.net\n",
    )
    .unwrap();
    let s = script.to_str().unwrap();
    let ini = d.join("extra.ini");
    let out = switchyard_env(
        &["inventory", "-i", s, "-i", ini.to_str().unwrap(), "--json"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let v = out.json();
    let names: Vec<&str> = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cmdb-1", "ini-1"]);
    assert_eq!(v["hosts"][0]["connection"]["address"], "127.0.0.9");
    assert_eq!(v["hosts"][0]["connection"]["port"], 2200);
    assert_eq!(
        v["hosts"][0]["vars"]["wavix_realm"], "nl.wavix.net",
        "later source wins"
    );
    // SWITCHYARD_INVENTORY stands in for -i.
    let env = switchyard_env(&["inventory", "--json"], &[("SWITCHYARD_INVENTORY", s)]);
    assert_eq!(env.code, 0, "{}", env.all());
    assert_eq!(env.json()["hosts"][0]["name"], "cmdb-1");

    // A failing script, invalid JSON, an INI line that does not parse: one clear error each.
    for (body, want) in [
        (
            "#!/bin/sh\necho 'netbox: 503 Service Unavailable' >&2\nexit 3\n",
            "the inventory script exited 3: netbox: 503 Service Unavailable",
        ),
        (
            "#!/bin/sh\necho '{\"pbx\": [\"a\",]}'\n",
            "`--list` printed invalid JSON (line 1, column",
        ),
    ] {
        std::fs::write(&script, body).unwrap();
        let out = switchyard_env(&["inventory", "-i", s], &[]);
        assert_eq!(out.code, 1, "{}", out.all());
        assert!(
            out.stderr.starts_with(&format!("error: {s}: {want}")),
            "{}",
            out.stderr
        );
    }
    std::fs::write(&ini, "[pbx]\nini-1 port\n").unwrap();
    let out = switchyard_env(&["inventory", "-i", ini.to_str().unwrap()], &[]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!("error: {}:2:7: `port` is not `key=value`\n", ini.display())
    );
}

#[test]
fn tags_pick_the_tasks_of_the_shipped_playbook() {
    let inv = repo("tests/fixtures/ansible/hosts.yml");
    let pb = repo("playbooks/wavix.yml");
    let list = |extra: &[&str]| {
        let mut args = vec!["apply", "-i", &inv, &pb, "--list-tasks"];
        args.extend_from_slice(extra);
        let out = switchyard_env(&args, &[]);
        assert_eq!(out.code, 0, "{}", out.all());
        out.stdout
    };
    assert_eq!(
        list(&["--tags", "users"]),
        "play: Wavix SIP trunk (5 hosts)\n  tasks:\n    directory user  tags: [users]\n"
    );
    let no_network = list(&["--skip-tags", "network,trunk"]);
    assert!(
        no_network.contains("    dialplan  tags: [dialplan]\n"),
        "{no_network}"
    );
    assert!(
        !no_network.contains("RTP port range") && !no_network.contains("gateway"),
        "{no_network}"
    );
    assert!(list(&[]).contains("    RTP port range  tags: [network]\n"));
}

/// `switchyard.toml` in the project (found from a subfolder too) gives the inventory and
/// forks; the command line still wins; a mistake in it is located.
#[test]
fn a_project_file_gives_the_defaults() {
    let d = tmp("ansible-config");
    std::fs::create_dir_all(d.join("inventory")).unwrap();
    std::fs::create_dir_all(d.join("deep/er")).unwrap();
    std::fs::write(d.join("inventory/hosts.yml"), INVENTORY).unwrap();
    std::fs::write(
        d.join("switchyard.toml"),
        "inventory = \"inventory/hosts.yml\"\nforks = 7\n",
    )
    .unwrap();
    let pb = repo("playbooks/wavix.yml");
    let run = |cwd: &std::path::Path, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .current_dir(cwd)
            .env_remove("SWITCHYARD_INVENTORY")
            .output()
            .unwrap()
    };
    let out = run(&d.join("deep/er"), &["apply", &pb, "--list-hosts"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("play: Wavix SIP trunk (5 hosts)"),
        "{stdout}"
    );
    // -i wins over the file.
    std::fs::write(d.join("other.ini"), "[pbx]\nsolo\n").unwrap();
    let other = d.join("other.ini");
    let out = run(
        &d,
        &["apply", "-i", other.to_str().unwrap(), &pb, "--list-hosts"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(1 host)"));
    // A mistake in the file: located, exit 1.
    std::fs::write(
        d.join("switchyard.toml"),
        "inventory = \"inventory/hosts.yml\"\nforcks = 7\n",
    )
    .unwrap();
    let out = run(&d, &["inventory"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("switchyard.toml:2:1: unknown field `forcks`"),
        "{err}"
    );
    // No inventory anywhere: a usage error that says where one can come from.
    let bare = tmp("ansible-config-none");
    let out = run(&bare, &["inventory"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no inventory: give `-i FILE`"));
}

/// What a corpus case's groups are, as `ansible-inventory --list` shows them: every group
/// named as a key or as anyone's child (groups with no hosts appear only as children),
/// each with its hosts, direct or through children.
fn ansible_groups(
    list: &serde_json::Value,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut groups = ansible_membership(list);
    for body in list.as_object().unwrap().values() {
        for c in body["children"].as_array().into_iter().flatten() {
            groups.entry(c.as_str().unwrap().to_string()).or_default();
        }
    }
    groups
}

/// Cases where switchyard deliberately reads an inventory otherwise than ansible-core:
/// (case, what switchyard says instead, why). The README's agreement table lists them.
const DELIBERATE: &[(&str, &str, &str)] = &[(
    "it-int-hostname-yml",
    "switchyard loads it",
    "a YAML host key written as a number (`1234:`) is the host named `1234`; Ansible asks for quotes",
)];

/// One corpus case loaded by switchyard and compared with what ansible-core recorded:
/// (hosts, the differences, whether ansible-core refused it).
fn compare_with_ansible(dir: &std::path::Path) -> (usize, Vec<String>, bool) {
    use std::collections::{BTreeMap, BTreeSet};
    let source = std::fs::read_to_string(dir.join("SOURCE")).unwrap();
    let sources: Vec<std::path::PathBuf> = source
        .lines()
        .find_map(|l| l.strip_prefix("inventory:"))
        .unwrap()
        .split_whitespace()
        .map(|s| dir.join(s))
        .collect();
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ansible.json")).unwrap()).unwrap();
    let ours = switchyard::inputs::inventory::Inventory::load_all(
        &sources,
        &switchyard::inputs::vault::Vault::none(),
    );
    let mut problems: Vec<String> = Vec::new();
    let hosts_n;
    match (&recorded.get("error"), &ours) {
        (Some(_), Err(_)) => hosts_n = 0,
        (Some(e), Ok(inv)) => {
            hosts_n = inv.hosts.len();
            problems.push(format!(
                "ansible-core refuses it ({e}), switchyard loads it"
            ));
        }
        (None, Err(e)) => {
            hosts_n = 0;
            problems.push(format!("switchyard refuses it: {e}"));
        }
        (None, Ok(inv)) => {
            let theirs_vars = recorded["host"].as_object().unwrap();
            hosts_n = theirs_vars.len();
            let want: BTreeSet<&str> = theirs_vars.keys().map(String::as_str).collect();
            let got: BTreeSet<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
            if want != got {
                problems.push(format!("hosts: ansible {want:?}, switchyard {got:?}"));
            }
            let theirs_groups = ansible_groups(&recorded["list"]);
            let ours_groups: BTreeMap<String, BTreeSet<String>> = inv.groups.clone();
            for g in theirs_groups.keys().chain(ours_groups.keys()) {
                let (a, b) = (theirs_groups.get(g), ours_groups.get(g));
                if a != b {
                    problems.push(format!("group {g}: ansible {a:?}, switchyard {b:?}"));
                }
            }
            for h in &inv.hosts {
                let Some(theirs) = theirs_vars.get(&h.name) else {
                    continue;
                };
                let mine = serde_json::to_value(&h.vars).unwrap();
                if &mine != theirs {
                    problems.push(format!(
                        "variables of {}: ansible {theirs}, switchyard {mine}",
                        h.name
                    ));
                }
            }
        }
    }
    problems.dedup();
    (hosts_n, problems, recorded.get("error").is_some())
}

/// Ansible's own inventories (its integration tests, its inventory guide, its plugins'
/// documentation: tests/fixtures/ansible/corpus/*/SOURCE) load as ansible-core 2.19 reads
/// them (recorded in each case's ansible.json by tests/fixtures/ansible/record.py): the
/// same hosts, the same groups with the same members (`ungrouped` included), every
/// host's merged variables with their types; or both refuse the inventory.
#[test]
fn the_ansible_corpus_loads_as_ansible_core_reads_it() {
    let root = std::path::PathBuf::from(repo("tests/fixtures/ansible/corpus"));
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    let mut rows = Vec::new();
    let mut disagreements = Vec::new();
    for dir in &cases {
        let case = dir.file_name().unwrap().to_str().unwrap().to_string();
        let (hosts_n, problems, refused) = compare_with_ansible(dir);
        let deliberate = DELIBERATE.iter().find(|(c, _, _)| *c == case);
        let verdict = match (problems.is_empty(), deliberate) {
            (true, None) => "agree".to_string(),
            (false, Some((_, says, why))) => {
                assert!(
                    problems.iter().any(|p| p.contains(says)),
                    "{case}: a deliberate difference changed: {problems:?}"
                );
                format!("deliberate: {why}")
            }
            (true, Some(_)) => {
                disagreements.push(format!("{case}: listed as deliberate but agrees now"));
                "agree (listed as deliberate!)".into()
            }
            (false, None) => {
                disagreements.push(format!("{case}:\n    {}", problems.join("\n    ")));
                "DIFFERENT".into()
            }
        };
        let refused = if refused { " (refused)" } else { "" };
        rows.push(format!("| {case} | {hosts_n}{refused} | {verdict} |"));
    }
    let agree = rows.iter().filter(|r| r.ends_with("| agree |")).count();
    eprintln!(
        "| case | hosts | switchyard |\n|---|---|---|\n{}\n{} cases, {agree} agree, {} deliberate differences",
        rows.join("\n"),
        rows.len(),
        DELIBERATE.len()
    );
    assert!(cases.len() >= 40, "the corpus lost cases");
    assert!(
        disagreements.is_empty(),
        "{} of {} cases differ from ansible-core:\n{}",
        disagreements.len(),
        rows.len(),
        disagreements.join("\n")
    );
}

/// `switchyard inventory --json` of an inventory written into a fresh folder.
fn load_text(tag: &str, file: &str, text: &str) -> (std::path::PathBuf, crate::harness::Out) {
    let d = tmp(tag);
    std::fs::write(d.join(file), text).unwrap();
    let out = switchyard_env(
        &["inventory", "-i", d.join(file).to_str().unwrap(), "--json"],
        &[],
    );
    (d, out)
}

/// Issue 23, from Ansible's inventory guide and ini.py's documentation: `host:port` is the
/// port, a comment after a value or a section header is a comment, and values have
/// ansible-core's types.
#[test]
fn ini_ports_comments_and_types_as_ansible_reads_them() {
    let (_, out) = load_text(
        "ansible-ini-port",
        "hosts",
        "badwolf.example.com:5309\n[web]\nhost2 ansible_port=222 # defined inline\n[web:vars]\nhttp_port=8080 # all members of 'web' will inherit these\nproxy=proxy.example.com\n[pbx:children] # child groups\nweb\n",
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let v = out.json();
    let badwolf = &v["hosts"][0];
    assert_eq!(badwolf["name"], "badwolf.example.com");
    assert_eq!(badwolf["connection"]["address"], "badwolf.example.com");
    assert_eq!(badwolf["connection"]["port"], 5309);
    let host2 = &v["hosts"][1];
    assert_eq!(host2["connection"]["port"], 222);
    assert_eq!(
        host2["vars"]["http_port"], 8080,
        "the number, comment dropped"
    );
    assert_eq!(host2["vars"]["proxy"], "proxy.example.com");
    assert_eq!(v["groups"]["pbx"], serde_json::json!(["host2"]));
}

/// Issue 23: a host with another connection stays in the inventory; a play that targets it
/// fails for that host with a message naming it, and the other hosts still run.
#[test]
fn hosts_with_another_connection_stay_and_are_refused_only_when_targeted() {
    let d = tmp("ansible-other-connection");
    let inv = d.join("hosts.yml");
    std::fs::write(
        &inv,
        "all:\n  children:\n    switches:\n      hosts:\n        sw1:\n          ansible_connection: network_cli\n          ansible_network_os: ios\n        win1:\n          ansible_connection: winrm\n    pbx:\n      hosts:\n        pbx1:\n          ansible_connection: local\n",
    )
    .unwrap();
    let out = switchyard_env(&["inventory", "-i", inv.to_str().unwrap(), "--json"], &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let v = out.json();
    assert_eq!(v["groups"]["switches"], serde_json::json!(["sw1", "win1"]));
    assert_eq!(v["hosts"][0]["vars"]["ansible_network_os"], "ios");
    // Listed as Ansible lists them (nothing is contacted)...
    let pb = d.join("pb.yml");
    let wavix = std::fs::read_to_string(repo("playbooks/wavix.yml")).unwrap();
    std::fs::write(&pb, wavix.replacen("  hosts: pbx\n", "  hosts: all\n", 1)).unwrap();
    let (i, p) = (inv.to_str().unwrap(), pb.to_str().unwrap());
    let out = switchyard_env(&["apply", "-i", i, p, "--list-hosts"], &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("    sw1\n    win1\n"), "{}", out.stdout);
    // ...but a play that targets them is refused for them, naming them.
    let out = switchyard_env(&["lint", "-i", i, p], &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("host `sw1` has `ansible_connection: network_cli`: switchyard manages only `ssh` and `local` hosts"),
        "{}",
        out.stderr
    );
    // The shipped playbook targets `pbx`: the switches never get in its way.
    let wavix = repo("playbooks/wavix.yml");
    let out = switchyard_env(&["apply", "-i", i, &wavix, "--list-hosts"], &[]);
    assert_eq!(
        out.stdout,
        "play: Wavix SIP trunk (1 host)\n  hosts:\n    pbx1\n"
    );
}

/// Issue 23: `ansible.builtin.toml` inventories, from toml.py's documentation.
#[test]
fn toml_inventories_load() {
    let (_, out) = load_text(
        "ansible-toml",
        "hosts.toml",
        "[all.vars]\nhas_java = false\n\n[web]\nchildren = [\"apache\"]\nvars = { http_port = 8080 }\n\n[web.hosts]\nhost2 = { ansible_port = 222 }\n\n[apache.hosts]\ntomcat1 = {}\n",
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let v = out.json();
    assert_eq!(v["hosts"][0]["connection"]["port"], 222);
    assert_eq!(v["hosts"][1]["vars"]["http_port"], 8080);
    assert_eq!(v["hosts"][1]["vars"]["has_java"], false);
    assert_eq!(v["groups"]["web"], serde_json::json!(["host2", "tomcat1"]));
}

/// Issue 23: `-i inventory.sh` is the script in the current folder, not one on PATH.
#[test]
fn a_script_named_without_a_slash_is_the_one_in_the_current_folder() {
    let d = tmp("ansible-script-cwd");
    let script = d.join("inventory.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"pbx\": {\"hosts\": [\"here-1\"]}}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["inventory", "-i", "inventory.sh", "--json"])
        .current_dir(&d)
        .env_remove("SWITCHYARD_INVENTORY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hosts"][0]["name"], "here-1");
}

/// Issue 23: `ungrouped` as Ansible computes it, bare-string YAML hosts, non-ASCII names,
/// children never defined, and groups without hosts.
#[test]
fn ungrouped_bare_hosts_names_children_and_empty_groups_as_ansible() {
    // Hosts defined only under `all:` (YAML) or `[all]` (INI) are ungrouped; a host in
    // `ungrouped` and another group is not.
    let (_, out) = load_text(
        "ansible-ungrouped-yml",
        "hosts.yml",
        "all:\n  hosts:\n    lone:\n    příbor:\n  children:\n    web:\n      hosts: tomcat1 # a bare name\n",
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let v = out.json();
    assert_eq!(
        v["groups"]["ungrouped"],
        serde_json::json!(["lone", "příbor"])
    );
    assert_eq!(v["groups"]["web"], serde_json::json!(["tomcat1"]));
    let (_, out) = load_text(
        "ansible-ungrouped-ini",
        "hosts",
        "early\n[all]\nhostinall\n[web]\nearly\n",
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        out.json()["groups"]["ungrouped"],
        serde_json::json!(["hostinall"])
    );
    // `[usa:children]` naming a group no section declares: refused, as Ansible refuses it.
    let (d, out) = load_text(
        "ansible-undefined-child",
        "hosts",
        "[atlanta]\nhost1\n[usa:children]\natlanta\nnortheast\n",
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: {}:5:1: section [usa:children] names the group `northeast`, which no `[northeast]` or `[northeast:children]` declares\n",
            d.join("hosts").display()
        )
    );
    // Groups, no hosts yet: an empty inventory, not an error.
    let (_, out) = load_text(
        "ansible-no-hosts",
        "hosts.yml",
        "a_group:\n  vars:\n    testvar: a\nb_group:\n  vars:\n    testvar: b\n",
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let v = out.json();
    assert_eq!(v["hosts"], serde_json::json!([]));
    assert_eq!(v["groups"]["a_group"], serde_json::json!([]));
}

/// Issue 23: a rollout whose play also targets a host switchyard cannot reach (a Windows host
/// on `winrm` in the PBX group) configures the PBXes and fails that host alone, by name.
#[test]
fn a_rollout_with_a_winrm_host_configures_the_pbxes_and_fails_that_host_alone() {
    let fleet = crate::harness::Fleet::new("ansible-mixed-apply", 1);
    let session = fleet.session();
    let other = fleet.dir.join("windows.yml");
    std::fs::write(
        &other,
        "all:\n  children:\n    pbx:\n      hosts:\n        win1:\n          ansible_connection: winrm\n          ansible_host: 192.0.2.10\n",
    )
    .unwrap();
    let other = other.to_str().unwrap();
    let out = session.run(["apply", "-i", other, "--no-verify"]);
    let out = out.expect(crate::session::exit::FAILED);
    out.shows(&["host `win1` has `ansible_connection: winrm`"]);
    // The PBX was configured all the same.
    let gw = fleet.hosts[0].conf("sip_profiles/external/wavix.xml");
    assert!(gw.exists(), "{}", out.all());
    let recap = out
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("pbx1 "))
        .unwrap_or("");
    assert!(recap.contains("changed"), "{}", out.all());
}

/// `ansible_ssh_common_args` is split as ansible-core splits it (Python's `shlex.split`): a
/// backslash inside double quotes stays, one outside quotes escapes the next character.
/// The jump hosts `inventory` shows are the ones Ansible's ssh would be given.
#[test]
fn ssh_common_args_keep_backslashes_as_ansible_does() {
    let d = tmp("ansible-ssh-args");
    std::fs::write(
        d.join("hosts.yml"),
        "all:\n  hosts:\n    pbx-quoted:\n      ansible_ssh_common_args: '-J \"ops@jump\\host\"'\n    pbx-bare:\n      ansible_ssh_common_args: '-o \"ProxyJump=a\\$b\" -J ops@jump\\host'\n",
    )
    .unwrap();
    let v = inventory_json(&d, &[]);
    let jump = |i: usize| v["hosts"][i]["connection"]["jump"].clone();
    // Python: ['-J', 'ops@jump\\host'] and ['-o', 'ProxyJump=a\\$b', '-J', 'ops@jumphost'].
    assert_eq!(jump(0), serde_json::json!(["ops@jump\\host"]));
    assert_eq!(jump(1), serde_json::json!(["a\\$b", "ops@jumphost"]));
    // An unclosed quote (Python: "No closing quotation") is refused, naming the variable.
    std::fs::write(
        d.join("open.yml"),
        "all:\n  hosts:\n    pbx-open:\n      ansible_ssh_common_args: '-J \"ops@jump'\n",
    )
    .unwrap();
    let open = d.join("open.yml");
    let out = switchyard_env(&["inventory", "-i", open.to_str().unwrap()], &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("ansible_ssh_common_args") && out.stderr.contains("unclosed quote"),
        "{}",
        out.stderr
    );
}
