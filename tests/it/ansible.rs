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
