//! `switchyard route` offline and route tests in a playbook: on the demo fleet's
//! configuration, nothing contacted. (Agreement with the real FreeSWITCH:
//! tests/it/real/route.rs.)

use crate::harness::switchyard_env;
use crate::session::Demo;

/// The demo fleet laid out in a fresh folder; returns (folder, inventory, playbook).
fn demo(tag: &str) -> (std::path::PathBuf, String, String) {
    let d = Demo::new(tag, false);
    (d.dir, d.inventory, d.playbook)
}

#[test]
fn what_an_operator_sees_for_the_readme_numbers() {
    let (d, inv, pb) = demo("route-readme");
    let user = switchyard_env(
        &[
            "route",
            "-i",
            &inv,
            &pb,
            "-l",
            "pbx-nyc",
            "2125551234",
            "011442071234567",
            "911",
        ],
        &[],
    );
    assert_eq!(user.code, 0, "{}", user.all());
    let trunk = switchyard_env(
        &[
            "route",
            "-i",
            &inv,
            &pb,
            "-l",
            "pbx-nyc",
            "--from-trunk",
            "wavix",
            "+16465550100",
            "12125551234",
        ],
        &[],
    );
    assert_eq!(trunk.code, 0, "{}", trunk.all());
    insta::assert_snapshot!(format!("{}{}", user.stdout, trunk.stdout));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_broken_route_test_stops_lint_and_apply_naming_host_number_and_path() {
    let (d, inv, pb) = demo("route-tests");
    let text = std::fs::read_to_string(&pb).unwrap();
    let with = |tests: &str| {
        let p = d.join("playbooks/tested.yml");
        std::fs::write(
            &p,
            text.replacen("  tasks:\n", &format!("  routes:\n{tests}  tasks:\n"), 1),
        )
        .unwrap();
        p.to_string_lossy().into_owned()
    };
    // Tests that hold on every host of the demo fleet.
    let good = with(
        "    - {number: \"+442071234567\", expect: {gateway: wavix, number: \"442071234567\"}}\n    - {number: \"1000\", expect: {user: \"1000\"}}\n    - {number: \"12125559999\", from_trunk: wavix, expect: refused}\n",
    );
    let out = switchyard_env(&["lint", "-i", &inv, &good], &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    // One that the configuration breaks: lint says where the number goes now.
    let bad = with("    - {number: \"911\", expect: refused}\n");
    let out = switchyard_env(&["lint", "-i", &inv, &bad], &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("pbx-nyc: routes:0: error[route-test]: route test `911` from user 1000: expected refused, but it now goes wavix [emergency] -> gateway wavix with 911"),
        "{}",
        out.stdout
    );
    // apply refuses to push it anywhere.
    let out = switchyard_env(&["apply", "-i", &inv, &bad], &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("nothing was pushed"), "{}", out.stderr);
    assert!(!d.join("hosts/pbx-nyc/conf/dialplan/wavix.xml").exists());
    // A malformed expectation is refused when the playbook is read.
    let odd = with("    - {number: \"1\", expect: {gateway: a, user: \"1\"}}\n");
    let out = switchyard_env(&["lint", "-i", &inv, &odd], &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("`expect` is `refused`"),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// `route --diff`: the check pipeline reads each host's current files; only the numbers
/// whose route the change alters are shown, before and after.
#[test]
fn diff_shows_only_the_routes_a_change_alters() {
    let Demo {
        dir: d,
        inventory: inv,
        playbook: pb,
    } = Demo::new("route-diff", true);
    // The DID of pbx-nyc moves from user 1000 to the IVR.
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(
        &inv,
        text.replace(
            "did_routes: [{number: \"16465550100\", extension: \"1000\"}]",
            "did_routes: [{number: \"16465550100\", transfer: ivr_main}]",
        ),
    )
    .unwrap();
    let out = switchyard_env(
        &[
            "route",
            "-i",
            &inv,
            &pb,
            "--diff",
            "--color",
            "never",
            "--from-trunk",
            "wavix",
            "16465550100",
            "12125551234",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("pbx-dal: no route changes"),
        "{}",
        out.stdout
    );
    let nyc = &out.stdout[out.stdout.find("pbx-nyc:").unwrap()..];
    let nyc = &nyc[..nyc.find("\npbx-").map(|i| i + 1).unwrap_or(nyc.len())];
    assert_eq!(
        nyc,
        "pbx-nyc:\n  16465550100 from trunk wavix:\n-   user 1000, then refused (hangup)\n+   unknown (default -> ivr_main: context `default` is the host's own (a file switchyard does not manage): evaluate it with `route --conf` on the host's tree)\n",
        "{}",
        out.stdout
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// `plan --markdown`: the play's route tests whose route the change moves, per host.
#[test]
fn the_review_summary_lists_the_route_tests_a_change_moves() {
    let Demo {
        dir: d,
        inventory: inv,
        playbook: pb,
    } = Demo::new("route-plan", true);
    let text = std::fs::read_to_string(&pb).unwrap();
    let tested = d.join("playbooks/tested.yml");
    std::fs::write(
        &tested,
        text.replacen(
            "  tasks:\n",
            "  routes:\n    - {number: \"16465550100\", from_trunk: wavix, expect: {user: \"1000\"}}\n    - {number: \"+442071234567\", expect: {gateway: wavix}}\n  tasks:\n",
            1,
        ),
    )
    .unwrap();
    let inv_text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(
        &inv,
        inv_text.replace(
            "did_routes: [{number: \"16465550100\", extension: \"1000\"}]",
            "did_routes: [{number: \"16465550100\", transfer: ivr_main}]",
        ),
    )
    .unwrap();
    let md = d.join("plan.md");
    let out = switchyard_env(
        &[
            "plan",
            "-i",
            &inv,
            tested.to_str().unwrap(),
            "-o",
            d.join("plan.json").to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        out.code,
        1,
        "the broken route test is a lint error: {}",
        out.all()
    );
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("### Routes: Wavix SIP trunk"), "{md}");
    assert!(
        md.contains(
            "| pbx-nyc | `16465550100` | trunk wavix | user 1000, then refused (hangup) | **unknown (default -> ivr_main"
        ),
        "{md}"
    );
    assert!(
        !md.contains("| pbx-dal | `"),
        "only the host whose route moved: {md}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Item 16: passwords inside dial strings never reach route output, whether the inventory
/// knows them as secrets (`wavix_password` rendered into a bridge string, in a URI, in a
/// channel variable, in a parameter whose name says nothing) or they are literals of the
/// configuration (a `--conf` tree): text, `--json` and `--diff` alike.
#[test]
fn route_output_never_shows_a_password_inside_a_dial_string() {
    let (d, inv, _) = demo("route-secrets");
    std::fs::write(
        d.join("templates/direct.xml.j2"),
        "<include>\n  <context name=\"direct\">\n    <extension name=\"direct-out\">\n      <condition field=\"destination_number\" expression=\"^(\\d+)$\">\n        <action application=\"set\" data=\"sip_auth_password={{ wavix_password }}\"/>\n        <action application=\"bridge\" data=\"{sip_auth_password={{ wavix_password }}}sofia/external/$1@{{ wavix_username }}:{{ wavix_password }}@{{ wavix_realm }};x-auth={{ wavix_password }}|sofia/external/$1@ops:Lit-Only-Pass@backup.example.com\"/>\n      </condition>\n    </extension>\n  </context>\n</include>\n",
    )
    .unwrap();
    let pb = d.join("playbooks/direct.yml");
    std::fs::write(
        &pb,
        "- name: direct\n  hosts: pbx-nyc\n  tasks:\n    - name: direct dialplan\n      template: {src: direct.xml.j2, dest: dialplan/direct.xml}\n",
    )
    .unwrap();
    let pb = pb.to_string_lossy().into_owned();
    let route = |extra: &[&str]| {
        let mut args = vec!["route", "-i", &inv, &pb, "--context", "direct"];
        args.extend_from_slice(extra);
        args.push("12125551234");
        let out = switchyard_env(&args, &[]);
        assert_eq!(out.code, 0, "{}", out.all());
        out.all()
    };
    let text = route(&[]);
    assert!(
        text.contains(
            "1. bridge sofia/external/12125551234@100001:********@us.wavix.net;x-auth=********"
        ),
        "{text}"
    );
    assert!(
        text.contains("2. bridge sofia/external/12125551234@ops:********@backup.example.com"),
        "{text}"
    );
    let json = route(&["--json"]);
    assert!(json.contains("sip_auth_password=********"), "{json}");
    let diff = route(&["--diff", "--color", "never"]);
    assert!(diff.contains("+   bridge sofia/external/"), "{diff}");
    // The same tree as it is on disk after an apply, read with `--conf`: no inventory, so
    // only the forms themselves say what is secret.
    let out = switchyard_env(&["apply", "-i", &inv, &pb], &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let conf = d.join("hosts/pbx-nyc/conf");
    let conf = conf.to_str().unwrap();
    let outputs = [("text", text), ("--json", json), ("--diff", diff)];
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["route", "--conf", conf, "--context", "direct"];
        args.extend_from_slice(extra);
        args.push("12125551234");
        let out = switchyard_env(&args, &[]);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(
            out.stdout.contains("100001:********@us.wavix.net"),
            "{}",
            out.stdout
        );
        assert!(!out.all().contains("Lit-Only-Pass"), "{}", out.all());
        // Only a parameter whose name says nothing (`x-auth`) needs the inventory to know
        // its value is a secret.
        assert_eq!(
            out.all().matches("nyc-Secr3t").count(),
            out.all().matches("x-auth=nyc-Secr3t").count(),
            "{}",
            out.all()
        );
    }
    for (what, out) in outputs {
        assert!(
            !out.contains("nyc-Secr3t"),
            "{what} shows the trunk password:\n{out}"
        );
        assert!(
            !out.contains("Lit-Only-Pass"),
            "{what} shows the literal password:\n{out}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}
