//! `lint` against the real FreeSWITCH: no false errors on the stock tree, and each mistake
//! it reports really breaks something on a running FreeSWITCH.

use super::*;

/// The untouched stock 1.10.12 tree (which loads with `+OK [Success]`) lints clean.
#[test]
fn the_stock_tree_lints_clean() {
    let conf = prefix().join("etc/freeswitch");
    let out = crate::harness::switchyard(&["lint", "--conf", conf.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("0 error(s), 0 warning(s)"),
        "{}",
        out.all()
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
