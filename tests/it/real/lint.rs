//! `lint` against the real FreeSWITCH: no false errors on the stock tree, and each mistake
//! it reports really breaks something on a running FreeSWITCH.

use super::*;

/// The untouched stock 1.10.12 tree (which loads with `+OK [Success]`) lints without an
/// error. 23 warnings, all true: internal-ipv6.xml uses `$${internal_ssl_dir}`, which
/// nothing defines (FreeSWITCH expands it to nothing, and the empty tls-cert-dir means the
/// default), and 22 users log in with `$${default_password}` (1234) or
/// `$${default_provider_password}` (`password`).
#[test]
fn the_stock_tree_lints_clean() {
    let conf = prefix().join("etc/freeswitch");
    let out = crate::harness::switchyard(&["lint", "--conf", conf.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("0 error(s), 23 warning(s)"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains(
            "sip_profiles/internal-ipv6.xml:57: warning[undefined-var]: `$${internal_ssl_dir}`"
        ),
        "{}",
        out.all()
    );
    assert_eq!(
        out.stdout.matches("warning[password-weak]").count(),
        22,
        "{}",
        out.all()
    );
}

/// Gateways that are silently wrong on the real FreeSWITCH, and flagged by lint: a
/// `$${var}` nothing defines (the proxy becomes the gateway's own name), and a gateway in a
/// folder no profile includes (never loaded).
#[test]
fn gateway_mistakes_lint_flags_are_real() {
    let mut fleet = crate::harness::Fleet::new("real-lint-gw", 0);
    fleet.add_real_host("pbx1");
    let h = &fleet.hosts[0];
    let fs = h.freeswitch.as_ref().unwrap();
    let gw = |name: &str, proxy: &str| {
        format!("<include>\n  <gateway name=\"{name}\">\n    <param name=\"proxy\" value=\"{proxy}\"/>\n    <param name=\"register\" value=\"false\"/>\n  </gateway>\n</include>\n")
    };
    std::fs::write(
        h.conf("sip_profiles/external/undef.xml"),
        gw("undef", "$${sy_nope_proxy}"),
    )
    .unwrap();
    std::fs::write(
        h.conf("sip_profiles/external/spaced.xml"),
        gw("wavix us", "192.0.2.1"),
    )
    .unwrap();
    std::fs::create_dir_all(h.conf("sip_profiles/carrier2")).unwrap();
    std::fs::write(
        h.conf("sip_profiles/carrier2/lost.xml"),
        gw("lost", "192.0.2.1"),
    )
    .unwrap();
    assert!(fs
        .api("sofia profile external rescan")
        .contains("+OK scan complete"));
    let x = fs.api("sofia xmlstatus gateway undef");
    assert!(x.contains("<proxy>sip:undef</proxy>"), "{x}");
    assert!(fs
        .api("sofia xmlstatus gateway lost")
        .contains("Invalid Gateway!"));
    let out = crate::harness::switchyard(&["lint", "--conf", h.dir.join("conf").to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("sip_profiles/external/undef.xml:3: error[undefined-var]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("sip_profiles/carrier2/lost.xml:1: warning[gateway-unincluded]"),
        "{}",
        out.stdout
    );
    // A name mod_sofia refuses: never loaded, and said only in its log.
    assert!(
        fs.log().contains("Ignoring invalid name 'wavix us'"),
        "{}",
        fs.log_tail(20)
    );
    assert!(
        out.stdout
            .contains("sip_profiles/external/spaced.xml:2: error[gateway-name]"),
        "{}",
        out.stdout
    );
}

/// Pre-process lines FreeSWITCH silently ignores or drops: the real one really leaves the
/// variable unset, and lint flags each line.
#[test]
fn preprocess_mistakes_lint_flags_are_real() {
    let mut fleet = crate::harness::Fleet::new("real-lint", 0);
    fleet.add_real_host("pbx1");
    let h = &fleet.hosts[0];
    let fs = h.freeswitch.as_ref().unwrap();
    let vars = h.conf("vars.xml");
    let text = std::fs::read_to_string(&vars).unwrap();
    let lines = [
        (
            "sy_ok",
            "  <X-PRE-PROCESS cmd=\"set\" data=\"sy_ok=1\"/>",
            None,
        ),
        (
            "sy_quotes",
            "  <X-PRE-PROCESS cmd='set' data='sy_quotes=1'/>",
            Some("preprocess-quotes"),
        ),
        (
            "sy_misspelt",
            "  <XPREPROCESS cmd=\"set\" data=\"sy_misspelt=1\"/>",
            Some("preprocess-misspelt"),
        ),
        (
            "sy_dropped",
            "  <X-PRE-PROCESS cmd=\"set\" data=\"sy_dropped=1\"/></include>",
            Some("include-line"),
        ),
    ];
    let mut new = text.trim_end().trim_end_matches("</include>").to_string();
    let first = new.lines().count() + 1;
    for (_, l, _) in &lines {
        new.push_str(l);
        new.push('\n');
    }
    new.push_str("</include>\n");
    std::fs::write(&vars, new).unwrap();
    assert!(fs.api("reloadxml").contains("+OK [Success]"));
    let out = crate::harness::switchyard(&["lint", "--conf", h.dir.join("conf").to_str().unwrap()]);
    for (k, (var, _, check)) in lines.iter().enumerate() {
        let value = fs.api(&format!("global_getvar {var}"));
        let line = first + k;
        match check {
            None => {
                assert_eq!(value.trim(), "1", "{var}");
                assert!(
                    !out.stdout.contains(&format!("vars.xml:{line}:")),
                    "{}",
                    out.stdout
                );
            }
            Some(check) => {
                // An unset global: fs_cli prints `-ERR no reply` (the API answered nothing).
                assert!(
                    value.trim().is_empty() || value.trim() == "-ERR no reply",
                    "{var} is set on the real FreeSWITCH: {value}"
                );
                assert!(
                    out.stdout
                        .contains(&format!("vars.xml:{line}: error[{check}]")),
                    "{var}: {}",
                    out.stdout
                );
            }
        }
    }
}

/// A condition on a name that is not a caller-profile field (here `destination`, where
/// `destination_number` was meant) is matched against an empty string on the real
/// FreeSWITCH; lint says so.
#[test]
fn condition_field_lint_is_real() {
    let mut fleet = crate::harness::Fleet::new("real-lint-field", 0);
    fleet.add_real_host("pbx1");
    let h = &fleet.hosts[0];
    let fs = h.freeswitch.as_ref().unwrap();
    std::fs::write(
        h.conf("dialplan/sy_field.xml"),
        "<include>\n  <context name=\"sy_field\">\n    <extension name=\"wrong_field\">\n      <condition field=\"destination\" expression=\"^9999$\">\n        <action application=\"hangup\"/>\n      </condition>\n    </extension>\n    <extension name=\"bad_regex\">\n      <condition field=\"destination_number\" expression=\"^\\+?(+9999)$\">\n        <action application=\"hangup\"/>\n      </condition>\n    </extension>\n  </context>\n</include>\n",
    )
    .unwrap();
    assert!(fs.api("reloadxml").contains("+OK [Success]"));
    fs.api("originate loopback/9999/sy_field &park");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !fs.log().contains("[wrong_field] destination() =~ /^9999$/") {
        assert!(std::time::Instant::now() < deadline, "{}", fs.log_tail(30));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(fs
        .log()
        .contains("Regex (FAIL) [wrong_field] destination() =~ /^9999$/"));
    // The expression PCRE rejects: a compile error, and the extension never matches.
    let log = fs.log();
    assert!(
        log.contains("nothing to repeat") || log.contains("Regular Expression Error"),
        "{}",
        fs.log_tail(40)
    );
    assert!(
        !log.contains("Regex (PASS) [bad_regex]"),
        "{}",
        fs.log_tail(40)
    );
    let out = crate::harness::switchyard(&["lint", "--conf", h.dir.join("conf").to_str().unwrap()]);
    for want in [
        "dialplan/sy_field.xml:4: error[condition-field]",
        "dialplan/sy_field.xml:9: error[regex]",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
}
