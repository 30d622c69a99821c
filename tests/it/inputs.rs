//! Malformed and hostile input: one clear error each, no crash, nothing reaches a host.
//! Every case runs the real binary on local-transport hosts whose conf root does not exist,
//! so anything that got past validation would fail loudly.

use crate::harness::*;

struct Case {
    name: &'static str,
    inventory: &'static str,
    playbook: &'static str,
    template: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    code: i32,
    expect: &'static str,
}

const INV: &str = "all:\n  hosts:\n    pbx1:\n      ansible_connection: local\n      freeswitch_conf_root: /nonexistent/switchyard/conf\n";
const PB: &str = "- hosts: all\n  tasks:\n    - name: gw\n      template: {src: t.xml.j2, dest: sip_profiles/external/t.xml}\n";
const TPL: &str = "<include>\n  <x v=\"{{ inventory_hostname }}\"/>\n</include>\n";

fn cases() -> Vec<Case> {
    let c = |name, inventory, playbook, template, code, expect| Case {
        name,
        inventory,
        playbook,
        template,
        args: &[],
        env: &[],
        code,
        expect,
    };
    vec![
        c("yaml syntax", "all:\n  hosts:\n    pbx1: {a: b\n", PB, TPL, 1, "inv.yml:4:1: "),
        c("yaml wrong shape", "all:\n  hosts: [pbx1]\n", PB, TPL, 1, "inv.yml:2:10: all.hosts: invalid type: sequence, expected a map"),
        c("wrong type", "all:\n  hosts:\n    pbx1:\n      ansible_port: banana\n", PB, TPL, 1, "variable `ssh_port`: `banana` is not a port number"),
        c("unknown inventory key", "all:\n  hostz: {}\n", PB, TPL, 1, "unknown field `hostz`"),
        c("unknown play key", INV, "- hosts: all\n  taks: []\n", TPL, 1, "unknown field `taks`"),
        c("serial zero", INV, "- hosts: all\n  serial: 0\n  tasks: []\n", TPL, 1, "not a positive host count"),
        c(
            "alias bomb",
            "all:\n  vars:\n    a: &a [x, x, x, x, x, x, x, x, x]\n    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n  hosts:\n    pbx1:\n",
            PB,
            TPL,
            1,
            "repetition limit exceeded",
        ),
        c("host name with a path separator", "all:\n  hosts:\n    ../../etc:\n", PB, TPL, 1, "may only contain letters, digits"),
        c("dest escapes the conf root", INV, "- hosts: all\n  tasks:\n    - template: {src: t.xml.j2, dest: ../../etc/passwd}\n", TPL, 1, "may not contain `.`, `..`"),
        c("dest outside the conf root", INV, "- hosts: all\n  tasks:\n    - template: {src: t.xml.j2, dest: /etc/cron.d/x}\n", TPL, 1, "is outside the conf root"),
        c("template outside the template dirs", INV, "- hosts: all\n  tasks:\n    - template: {src: ../../../etc/passwd, dest: a.xml}\n", TPL, 1, "may not be absolute or contain `..`"),
        c("template recursion", INV, PB, "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", 1, "recursion"),
        c("template huge loop", INV, PB, "{% for i in range(100000000) %}x{% endfor %}", 1, "range"),
        c("template syntax", INV, PB, "<a>{{ unclosed </a>", 1, "template `t.xml.j2`"),
        c("secret file world-readable", INV, "- hosts: all\n  vars: {trunk_password: s3cr3t}\n  tasks:\n    - template: {src: t.xml.j2, dest: a.xml, mode: \"0644\"}\n", "<include>\n  <p v=\"{{ trunk_password }}\"/>\n</include>\n", 1, "mode 0644 would let every user"),
        c("missing environment secret", "all:\n  hosts:\n    pbx1:\n      trunk_password: {env: SWITCHYARD_TEST_UNSET_VAR}\n", PB, TPL, 1, "environment variable `SWITCHYARD_TEST_UNSET_VAR` is not set"),
        c("vault value without a key", "all:\n  hosts:\n    pbx1:\n      trunk_password: {vault: \"-----BEGIN AGE ENCRYPTED FILE-----\\nYWdl\\n-----END AGE ENCRYPTED FILE-----\\n\"}\n", PB, TPL, 1, "no vault key was given"),
        Case { args: &["--serial", "0%"], ..c("bad --serial", INV, PB, TPL, 2, "--serial: `0%` is not a percentage") },
        Case { args: &["--forks", "many"], ..c("bad --forks", INV, PB, TPL, 2, "invalid value 'many'") },
        Case {
            env: &[("SWITCHYARD_VAULT_PASSWORD", "wrong")],
            ..c("vault value with the wrong key", "all:\n  hosts:\n    pbx1:\n      trunk_password: {vault: \"-----BEGIN AGE ENCRYPTED FILE-----\\nYWdl\\n-----END AGE ENCRYPTED FILE-----\\n\"}\n", PB, TPL, 1, "cannot decrypt trunk_password")
        },
    ]
}

#[test]
fn every_bad_input_gets_one_clear_error() {
    let dir = std::env::temp_dir().join(format!("switchyard-it-inputs-{}", std::process::id()));
    for case in cases() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(dir.join("inv.yml"), case.inventory).unwrap();
        std::fs::write(dir.join("play.yml"), case.playbook).unwrap();
        std::fs::write(dir.join("templates/t.xml.j2"), case.template).unwrap();
        let inv = dir.join("inv.yml");
        let pb = dir.join("play.yml");
        let mut args = vec!["apply", "-i", inv.to_str().unwrap(), pb.to_str().unwrap()];
        args.extend_from_slice(case.args);
        let out = switchyard_env(&args, case.env);
        let all = out.all();
        assert_eq!(out.code, case.code, "{}: {all}", case.name);
        assert!(
            all.contains(case.expect),
            "{}: expected `{}` in:\n{all}",
            case.name,
            case.expect
        );
        assert!(
            !all.contains("panicked") && !all.contains("RUST_BACKTRACE"),
            "{}: crashed:\n{all}",
            case.name
        );
        assert!(!std::path::Path::new("/nonexistent/switchyard").exists());
    }
}

#[test]
fn xml_and_shell_metacharacters_in_values_stay_inert() {
    let dir = std::env::temp_dir().join(format!("switchyard-it-inputs3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    let conf = dir.join("conf");
    // switchyard never creates a conf root (a mistyped one would look like a new host).
    std::fs::create_dir_all(&conf).unwrap();
    let (me, grp) = switchyard::host::state::current_user_and_group();
    // A value that would close the attribute and inject an element, and one that would run a
    // command if anything were interpolated into a shell line unquoted.
    let inv = format!(
        "all:\n  hosts:\n    pbx1:\n      ansible_connection: local\n      freeswitch_conf_root: {}\n      freeswitch_owner: {}\n      freeswitch_group: {}\n      v: \"\\\"/><evil x=\\\"&amp;\"\n      f: \"$(touch pwned)`touch pwned`;'\"\n",
        conf.display(),
        me,
        grp,
    );
    std::fs::write(dir.join("inv.yml"), inv).unwrap();
    std::fs::write(
        dir.join("templates/t.xml.j2"),
        "<include>\n  <x v=\"{{ v }}\"/>\n</include>\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("play.yml"),
        "- hosts: all\n  tasks:\n    - template: {src: t.xml.j2, dest: \"sip_profiles/{{ f }}.xml\"}\n    - fs_cli: {command: \"{{ f }}\"}\n",
    )
    .unwrap();
    let out = switchyard(&[
        "apply",
        "--no-verify",
        "-i",
        dir.join("inv.yml").to_str().unwrap(),
        dir.join("play.yml").to_str().unwrap(),
    ]);
    // Local commands run in this process's folder: nothing named `pwned` may appear there.
    assert!(
        !std::path::Path::new("pwned").exists(),
        "a value was run as a command:\n{}",
        out.all()
    );
    let written = std::fs::read_dir(conf.join("sip_profiles"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&written).unwrap();
    assert_eq!(
        text,
        "<include>\n  <x v=\"&quot;/&gt;&lt;evil x=&quot;&amp;amp;\"/>\n</include>\n"
    );
    roxmltree::Document::parse(&text).unwrap();
    assert!(
        written
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains("$(touch"),
        "the file name is the literal value"
    );
}

#[test]
fn huge_and_non_utf8_files_are_refused() {
    let dir = std::env::temp_dir().join(format!("switchyard-it-inputs2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let inv = dir.join("inv.yml");
    let mut big = String::from("all:\n  vars:\n    filler: \"");
    big.push_str(&"x".repeat(9 * 1024 * 1024));
    big.push_str("\"\n");
    std::fs::write(&inv, big).unwrap();
    let out = switchyard(&["inventory", "-i", inv.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("is larger than 8388608 bytes"),
        "{}",
        out.stderr
    );
    std::fs::write(&inv, b"all:\n  hosts:\n    pbx\xff1:\n").unwrap();
    let out = switchyard(&["inventory", "-i", inv.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("not valid UTF-8 (byte offset 21)"),
        "{}",
        out.stderr
    );
}
