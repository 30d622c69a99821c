//! The evaluator against what mod_dialplan_xml does, case by case.

use super::calls::bridge_targets;
use super::*;

fn dp(files: &[(&str, &str)]) -> Dialplan {
    let m = files
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    Dialplan::load(&m).unwrap()
}

#[test]
fn conditions_breaks_anti_actions_and_captures_as_mod_dialplan_xml() {
    let d = dp(&[
        (
            "vars.xml",
            "<include>\n<X-PRE-PROCESS cmd=\"set\" data=\"cc=1\"/>\n</include>\n",
        ),
        (
            "dialplan/a.xml",
            r#"<include><context name="c">
  <extension name="tag" continue="true"><condition><action application="set" data="t=1"/></condition></extension>
  <extension name="partial">
<condition field="destination_number" expression="^9(\d+)$"><action application="set" data="seen=$1"/></condition>
<condition field="${nothing}" expression="^x$"/>
  </extension>
  <extension name="anti">
<condition field="destination_number" expression="^5"><action application="hangup"/><anti-action application="set" data="anti=yes"/></condition>
  </extension>
  <extension name="out">
<condition field="destination_number" expression="^(\d{10})$">
  <action application="set" data="continue_on_fail=GATEWAY_DOWN"/>
  <action application="bridge" data="sofia/gateway/a/$${cc}$1|sofia/gateway/b/$${cc}$1"/>
  <action application="bridge" data="{x=y}sofia/gateway/c/$1"/>
</condition>
  </extension>
</context></include>"#,
        ),
    ]);
    let call = Call {
        context: "c".into(),
        destination: "2125551234".into(),
        caller_id_number: "1000".into(),
        vars: BTreeMap::new(),
        fields: BTreeMap::new(),
    };
    let r = d.route(&call);
    assert!(r.unknown.is_none(), "{r:?}");
    // `anti` queued its anti-action and proceeded: the hunt ended there, `out` never ran.
    assert_eq!(r.hunts[0].extensions, ["tag", "anti"]);
    assert_eq!(
        r.hunts[0].actions,
        [
            ("set".to_string(), "t=1".to_string()),
            ("set".into(), "anti=yes".into())
        ]
    );
    assert_eq!(r.attempts.len(), 1, "{r:?}");
    assert!(
        matches!(&r.attempts[0].target, Target::Refused { why } if why.starts_with("no route"))
    );
    // A number starting 9: `partial` queues its set, then fails; the hunt goes on, and
    // the queued set stays (the FreeSWITCH gotcha).
    let r = d.route(&Call {
        destination: "91234".into(),
        ..call.clone()
    });
    assert_eq!(
        r.hunts[0].actions[1],
        ("set".to_string(), "seen=1234".to_string())
    );
    assert!(r.assumed_unset.contains("nothing"));
    // A number starting 5: `anti` matched, its action (hangup) refuses the call.
    let r = d.route(&Call {
        destination: "5551234567".into(),
        ..call.clone()
    });
    assert!(
        matches!(&r.attempts[0].target, Target::Refused { why } if why == "hangup"),
        "{r:?}"
    );
}

#[test]
fn legs_joined_by_a_comma_ring_at_once_and_brackets_separate_nothing() {
    let groups = bridge_targets(
        "{ignore_early_media=true,a=b}[leg_timeout=10,x=y]user/1000@d,<t=1,u=2>user/1001@d|sofia/gateway/gw/123",
    );
    let user = |u: &str| Target::User { user: u.into() };
    assert_eq!(
        groups,
        vec![
            vec![user("1000"), user("1001")],
            vec![Target::Gateway {
                gateway: "gw".into(),
                number: "123".into()
            }]
        ]
    );
    let d = dp(&[(
        "dialplan/a.xml",
        r#"<include><context name="c">
  <extension name="both"><condition field="destination_number" expression="^2000$">
<action application="bridge" data="user/1000@d,user/1001@d|user/1002@d"/>
  </condition></extension>
</context></include>"#,
    )]);
    let r = d.route(&Call {
        context: "c".into(),
        destination: "2000".into(),
        caller_id_number: "1".into(),
        vars: BTreeMap::new(),
        fields: BTreeMap::new(),
    });
    let shape: Vec<(bool, bool)> = r
        .attempts
        .iter()
        .map(|a| {
            (
                a.at_once_with_next,
                a.continue_on.as_ref().is_some_and(|c| c.is_empty()),
            )
        })
        .collect();
    // 1000 and 1001 ring together; if both fail, 1002 is tried.
    assert_eq!(shape, vec![(true, true), (false, true), (false, false)]);
}

#[test]
fn an_unset_variable_in_a_dial_string_is_a_warning_not_a_blank_gateway() {
    let d = dp(&[(
        "dialplan/a.xml",
        r#"<include><context name="c">
  <extension name="out"><condition field="destination_number" expression="^(\d+)$">
<action application="bridge" data="sofia/gateway/${gw}/${destination_number}"/>
  </condition></extension>
</context></include>"#,
    )]);
    let mut call = Call {
        context: "c".into(),
        destination: "2125551234".into(),
        caller_id_number: "1000".into(),
        vars: BTreeMap::new(),
        fields: BTreeMap::new(),
    };
    let r = d.route(&call);
    assert_eq!(
        r.warnings,
        ["`bridge sofia/gateway/${gw}/${destination_number}`: `${gw}` is unset, so FreeSWITCH dials `sofia/gateway//2125551234`"]
    );
    call.vars.insert("gw".into(), "wavix".into());
    let r = d.route(&call);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(
        r.first(),
        Some(&Target::Gateway {
            gateway: "wavix".into(),
            number: "2125551234".into()
        })
    );
}

#[test]
fn group_call_rings_the_directory_group_members() {
    let d = dp(&[
        (
            "dialplan/a.xml",
            r#"<include><context name="c">
  <extension name="all"><condition field="destination_number" expression="^2000$">
<action application="bridge" data="${group_call(sales@d)}"/>
  </condition></extension>
  <extension name="in-turn"><condition field="destination_number" expression="^2001$">
<action application="bridge" data="${group_call(sales@d+F)}"/>
  </condition></extension>
  <extension name="nobody"><condition field="destination_number" expression="^2002$">
<action application="bridge" data="${group_call(nosuch@d)}"/>
  </condition></extension>
</context></include>"#,
        ),
        (
            "directory/d.xml",
            r#"<include><domain name="d"><groups>
  <group name="default"><users>
<X-PRE-PROCESS cmd="include" data="d/*.xml"/>
  </users></group>
  <group name="sales"><users><user id="7" type="pointer"/><user id="8" type="pointer"/></users></group>
</groups></domain></include>"#,
        ),
        ("directory/d/7.xml", r#"<include><user id="7"/></include>"#),
        ("directory/d/8.xml", r#"<include><user id="8"/></include>"#),
    ]);
    let call = |n: &str| Call {
        context: "c".into(),
        destination: n.into(),
        caller_id_number: "7".into(),
        vars: BTreeMap::new(),
        fields: BTreeMap::new(),
    };
    let users =
        |r: &Route| -> Vec<Target> { r.attempts.iter().map(|a| a.target.clone()).collect() };
    let both = vec![
        Target::User { user: "7".into() },
        Target::User { user: "8".into() },
    ];
    assert_eq!(users(&d.route(&call("2000"))), both);
    assert_eq!(users(&d.route(&call("2001"))), both);
    // The `default` group is read with its includes.
    assert_eq!(d.groups["default"], ["7", "8"]);
    let r = d.route(&call("2002"));
    assert!(
        r.unknown
            .as_deref()
            .unwrap_or("")
            .contains("group_call(nosuch@d)"),
        "{r:?}"
    );
}

#[test]
fn dial_string_secrets_are_masked() {
    for (raw, shown) in [
        (
            "sofia/external/12125551234@trunk1:Lit-Pass-9@sip.example.com",
            "sofia/external/12125551234@trunk1:********@sip.example.com",
        ),
        (
            "{sip_auth_username=u,sip_auth_password=p4ss!}sofia/external/sip:1000@h",
            "{sip_auth_username=u,sip_auth_password=********}sofia/external/sip:1000@h",
        ),
        (
            "sofia/internal/sip:u:pw@[::1]:5060",
            "sofia/internal/sip:u:********@[::1]:5060",
        ),
        (
            "[api_key=k]sofia/gateway/gw/1|user/1000@d",
            "[api_key=********]sofia/gateway/gw/1|user/1000@d",
        ),
        (
            "sofia/internal/sip:1000@10.0.0.1:5060;transport=tcp",
            "sofia/internal/sip:1000@10.0.0.1:5060;transport=tcp",
        ),
        (
            "sofia/gateway/wavix/12125551234",
            "sofia/gateway/wavix/12125551234",
        ),
    ] {
        assert_eq!(mask_dial_secrets(raw), shown);
    }
    assert_eq!(
        mask_action_data("set", "sip_auth_password=two words"),
        "sip_auth_password=********"
    );
}

#[test]
fn bridges_fail_over_on_the_causes_continue_on_fail_names() {
    let d = dp(&[
        (
            "vars.xml",
            "<include>\n<X-PRE-PROCESS cmd=\"set\" data=\"cc=1\"/>\n</include>\n",
        ),
        (
            "dialplan/a.xml",
            r#"<include><context name="c">
  <extension name="out">
<condition field="destination_number" expression="^(\d{10})$">
  <action application="set" data="hangup_after_bridge=true"/>
  <action application="set" data="continue_on_fail=GATEWAY_DOWN,NORMAL_TEMPORARY_FAILURE"/>
  <action application="bridge" data="sofia/gateway/a/$${cc}$1"/>
  <action application="set" data="continue_on_fail=false"/>
  <action application="bridge" data="{x=y}sofia/gateway/b/$${cc}$1"/>
  <action application="bridge" data="sofia/gateway/never/1"/>
</condition>
  </extension>
  <extension name="to-user">
<condition field="destination_number" expression="^(10\d\d)$">
  <action application="transfer" data="u$1 XML users"/>
</condition>
  </extension>
</context>
<context name="users">
  <extension name="u"><condition field="destination_number" expression="^u(\d+)$">
<action application="bridge" data="user/$1@$${domain}"/>
  </condition></extension>
</context></include>"#,
        ),
    ]);
    let call = Call {
        context: "c".into(),
        destination: "2125551234".into(),
        caller_id_number: "1000".into(),
        vars: BTreeMap::new(),
        fields: BTreeMap::new(),
    };
    let r = d.route(&call);
    let t: Vec<(&Target, Option<&Vec<String>>)> = r
        .attempts
        .iter()
        .map(|a| (&a.target, a.continue_on.as_ref()))
        .collect();
    assert_eq!(t.len(), 2, "{r:?}");
    assert_eq!(
        t[0].0,
        &Target::Gateway {
            gateway: "a".into(),
            number: "12125551234".into()
        }
    );
    assert_eq!(
        t[0].1.unwrap(),
        &[
            "GATEWAY_DOWN".to_string(),
            "NORMAL_TEMPORARY_FAILURE".into()
        ]
    );
    assert_eq!(
        t[1].0,
        &Target::Gateway {
            gateway: "b".into(),
            number: "12125551234".into()
        }
    );
    assert!(t[1].1.is_none(), "the last bridge ends the call");
    // A transfer hunts again in the named context.
    let r = d.route(&Call {
        destination: "1007".into(),
        ..call
    });
    assert_eq!(r.hunts.len(), 2);
    assert_eq!(r.hunts[1].context, "users");
    assert_eq!(
        r.first(),
        Some(&Target::User {
            user: "1007".into()
        })
    );
}
