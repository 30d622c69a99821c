//! Bad input gets one clear error, located, and nothing reaches a host.

use crate::harness::*;

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let d = tmp("badyaml");
    let inv = d.join("hosts.yml");
    std::fs::write(
        &inv,
        "all:\n  hosts:\n    pbx1:\n      ansible_host: [127.0.0.1\n",
    )
    .unwrap();
    let out = switchyard(&["inventory", "-i", inv.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    let first = out.stderr.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("error: {}:", inv.display())),
        "{first}"
    );
    assert!(regex_like_location(first), "{first}");

    let pb = d.join("play.yml");
    std::fs::write(&pb, "- hosts: all\n  tasks:\n    - name: gw\n      template:\n        src: gateway.xml.j2\n        dest: a.xml\n        onwer: root\n").unwrap();
    std::fs::write(&inv, "all:\n  hosts:\n    pbx1:\n").unwrap();
    let out = switchyard(&[
        "apply",
        "--check",
        "-i",
        inv.to_str().unwrap(),
        pb.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!("{}:7:9: ", pb.display())),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("unknown field `onwer`"),
        "{}",
        out.stderr
    );
}

fn regex_like_location(line: &str) -> bool {
    // `error: PATH:LINE:COL: message`
    let rest = line.rsplit_once(".yml:").map(|x| x.1).unwrap_or("");
    let mut parts = rest.splitn(3, ':');
    parts.next().is_some_and(|l| l.parse::<u32>().is_ok())
        && parts.next().is_some_and(|c| c.parse::<u32>().is_ok())
}

#[test]
fn undefined_template_variable_names_template_line_and_variable() {
    let d = tmp("undef");
    let inv = d.join("hosts.yml");
    std::fs::write(&inv, "all:\n  hosts:\n    pbx1:\n      ansible_connection: local\n      freeswitch_conf_root: /nonexistent/conf\n").unwrap();
    std::fs::create_dir_all(d.join("templates")).unwrap();
    std::fs::write(d.join("templates/gw.xml.j2"), "<include>\n  <gateway name=\"{{ gateway }}\">\n    <param name=\"password\" value=\"{{ trunk_pasword }}\"/>\n  </gateway>\n</include>\n").unwrap();
    let pb = d.join("play.yml");
    std::fs::write(&pb, "- hosts: all\n  vars: {gateway: wavix, trunk_password: x}\n  tasks:\n    - name: gw\n      template: {src: gw.xml.j2, dest: sip_profiles/external/w.xml}\n").unwrap();
    let out = switchyard(&["apply", "-i", inv.to_str().unwrap(), pb.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("template `gw.xml.j2` line 3: undefined variable `trunk_pasword`"),
        "{}",
        out.stderr
    );
    let lint = switchyard(&["lint", "-i", inv.to_str().unwrap(), pb.to_str().unwrap()]);
    assert_eq!(lint.code, 1);
    assert!(
        lint.stderr.contains("undefined variable `trunk_pasword`"),
        "{}",
        lint.all()
    );
}
