use super::*;

/// The shipped playbook's play `vars:`.
pub(crate) fn defaults() -> Map<String, Value> {
    let pb = crate::inputs::playbook::Playbook::parse_str(
        std::path::Path::new("playbooks/wavix.yml"),
        include_str!("../../../../playbooks/wavix.yml"),
    )
    .unwrap();
    pb.plays[0].vars.clone().into_iter().collect()
}

/// The Wavix guide's configuration, mistakes included: registration and failover
/// gateways, its dialplan with failover, user 1000, the IP-auth section's vars.xml lines and
/// the RTP range in the never-read autoload_configs/default/.
fn guide_tree() -> BTreeMap<String, String> {
    [
        ("sip_profiles/external/wavix.xml", include_str!("../../../../tests/fixtures/guide/registration/sip_profiles/external/wavix.xml")),
        ("sip_profiles/external/wavix_fo.xml", include_str!("../../../../tests/fixtures/guide/failover/sip_profiles/external/wavix_fo.xml")),
        ("dialplan/wavix_dialplan.xml", include_str!("../../../../tests/fixtures/guide/failover/dialplan/wavix_dialplan.xml")),
        ("directory/default/1000.xml", include_str!("../../../../tests/fixtures/guide/registration/directory/default/1000.xml")),
        ("autoload_configs/default/switch.conf.xml", include_str!("../../../../tests/fixtures/guide/registration/autoload_configs/default/switch.conf.xml")),
        ("vars.xml", include_str!("../../../../tests/fixtures/guide/ip-auth/vars.xml")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn notes_on<'a>(m: &'a Mapping, file: &str) -> Vec<&'a str> {
    m.notes
        .iter()
        .filter(|n| n.file == file)
        .map(|n| n.text.as_str())
        .collect()
}

/// What was not mapped, as `FILE: reason` lines.
fn unmapped_lines(m: &Mapping) -> Vec<String> {
    m.unmapped
        .iter()
        .map(|s| format!("{}: {}", s.rel, s.reason))
        .collect()
}

#[test]
fn the_guide_maps_onto_the_wavix_variables_and_its_mistakes_are_named() {
    let m = map(&guide_tree(), &defaults());
    let v = &m.vars;
    assert_eq!(v["wavix_username"], "YOUR_SIP_TRUNK_ID");
    assert_eq!(v["wavix_password"], "YOUR_SIP_TRUNK_PASSWORD");
    assert_eq!(v["wavix_realm"], "us.wavix.net");
    assert_eq!(v["wavix_proxy"], "");
    assert_eq!(v["wavix_failover_proxy"], "nl.wavix.net");
    assert_eq!(v["wavix_failover_realm"], "");
    assert_eq!(v["wavix_ip_auth"], false);
    assert_eq!(v["caller_id_passthrough"], true);
    assert_eq!(v["external_ip"], "123.123.123.123");
    assert_eq!(
        (v["rtp_start_port"].clone(), v["rtp_end_port"].clone()),
        (json!(10000), json!(20000))
    );
    assert_eq!(
        v["did_routes"],
        json!([{"number": "16468097065", "extension": "1000"}])
    );
    assert_eq!(v["users"][0]["id"], "1000");
    assert!(v["users"][0].get("password").is_none());
    assert_eq!(
        v["user_secrets"]["1000"],
        json!({"password": "SET_EXTENSION_PASSWORD", "vm_password": "1000"})
    );
    assert_eq!(v["users"][0]["caller_id_number"], "16468097065");
    assert_eq!(v["wavix_user_context"], "wavix");
    // The inbound context was the users' own: not carried over (toll fraud).
    assert!(!v.contains_key("wavix_inbound_context"));
    assert_eq!(v["emergency_calls"], "refuse");
    let dp = notes_on(&m, "dialplan/wavix_dialplan.xml").join("\n");
    for why in [
        "continue_on_fail=true",
        "hangup_after_bridge",
        "toll fraud",
        "`export sip_from_uri` after the bridge",
        "emergency numbers (911)",
        "remove this file",
    ] {
        assert!(dp.contains(why), "{why}: {dp}");
    }
    let gw = notes_on(&m, "sip_profiles/external/wavix.xml").join("\n");
    assert!(
        gw.contains("sip_cid_type` is a channel variable") && gw.contains("auto_to_user"),
        "{gw}"
    );
    let vars = notes_on(&m, "vars.xml").join("\n");
    assert!(
        vars.contains("line 3: the tag is not spelt `X-PRE-PROCESS`")
            && vars.contains("outbound-sip-ip"),
        "{vars}"
    );
    assert!(notes_on(&m, "autoload_configs/default/switch.conf.xml")[0].contains("never reads"));
    assert!(notes_on(&m, "directory/default/1000.xml")
        .iter()
        .any(|n| n.contains("the voicemail PIN is the extension number")));
    // What has no variable is listed, with its file: the user's callgroup, the dialled-as-is route.
    let un = unmapped_lines(&m);
    assert!(
        un.iter()
            .any(|u| u.starts_with("directory/default/1000.xml") && u.contains("`callgroup`")),
        "{un:?}"
    );
    assert!(
        un.iter()
            .any(|u| u.starts_with("dialplan/wavix_dialplan.xml") && u.contains("out-wavix")),
        "{un:?}"
    );
    // No reason or note quotes a password.
    for t in m
        .notes
        .iter()
        .map(|n| &n.text)
        .chain(m.unmapped.iter().map(|s| &s.reason))
    {
        assert!(
            !t.contains("YOUR_SIP_TRUNK_PASSWORD") && !t.contains("SET_EXTENSION_PASSWORD"),
            "{t}"
        );
    }
}

#[test]
fn other_providers_become_carriers_in_the_order_the_dialplan_bridges_them() {
    let gw = |name: &str, extra: &str| {
        format!("<include>\n<gateway name=\"{name}\">\n<param name=\"proxy\" value=\"{name}.example\"/>\n{extra}<param name=\"context\" value=\"from_trunk\"/>\n<param name=\"retry-seconds\" value=\"30\"/>\n<param name=\"codec-prefs\" value=\"PCMU\"/>\n</gateway>\n</include>\n")
    };
    let files: BTreeMap<String, String> = [
        ("sip_profiles/external/carrier_a.xml", gw("a1", "<param name=\"register\" value=\"false\"/>\n")),
        ("sip_profiles/external/b.xml", gw("b1", "<param name=\"username\" value=\"u\"/><param name=\"password\" value=\"Pw-b-123\"/><param name=\"extension\" value=\"auto_to_user\"/>\n")),
        ("dialplan/out.xml", "<include><context name=\"from_trunk\">\n<extension name=\"d\"><condition field=\"destination_number\" expression=\"^\\+?(15551230000|15551230001)$\"><action application=\"transfer\" data=\"sales XML default\"/></condition></extension>\n<extension name=\"same-context\"><condition field=\"destination_number\" expression=\"^(15551230002)$\"><action application=\"transfer\" data=\"ivr\"/></condition></extension>\n<extension name=\"weird\"><condition field=\"destination_number\" expression=\"^9$\"><action application=\"playback\" data=\"x.wav\"/></condition></extension>\n</context>\n<context name=\"wavix\"><extension name=\"o\"><condition field=\"destination_number\" expression=\"^\\+(\\d+)$\"><action application=\"set\" data=\"hangup_after_bridge=true\"/><action application=\"set\" data=\"continue_on_fail=GATEWAY_DOWN\"/><action application=\"bridge\" data=\"{sip_cid_type=none}sofia/gateway/b1/$1\"/><action application=\"bridge\" data=\"sofia/gateway/a1/$1\"/></condition></extension></context></include>\n".to_string()),
        ("directory/default/1001.xml", "<include><user id=\"1001\"><params><param name=\"password\" value=\"p\"/><param name=\"vm-password\" value=\"1\"/></params><variables><variable name=\"user_context\" value=\"wavix\"/><variable name=\"effective_caller_id_number\" value=\"1001\"/><variable name=\"outbound_caller_id_number\" value=\"+15551230001\"/></variables></user></include>\n".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let m = map(&files, &defaults());
    let c = &m.vars["carriers"];
    assert_eq!(c[0]["name"], "b");
    assert_eq!(c[0]["gateways"], json!([{"name": "b1"}]));
    assert_eq!(
        c[1],
        json!({"name": "a", "auth": "ip", "proxy": "a1.example", "gateways": [{"name": "a1"}]})
    );
    assert_eq!(m.vars["carrier_passwords"], json!({"b": "Pw-b-123"}));
    assert_eq!(m.vars["failover_causes"], json!(["GATEWAY_DOWN"]));
    assert_eq!(
        m.vars["did_routes"],
        json!([{"number": "15551230000", "transfer": "sales"}, {"number": "15551230001", "transfer": "sales"}])
    );
    assert_eq!(m.vars["wavix_inbound_context"], "from_trunk");
    let un = unmapped_lines(&m);
    assert!(
        un.iter()
            .any(|u| u.contains("`codec-prefs`") && u.starts_with("sip_profiles/external/b.xml")),
        "{un:?}"
    );
    assert!(un.iter().any(|u| u.contains("extension `weird`")), "{un:?}");
    assert!(
        un.iter().any(|u| u.contains("extension `same-context`")),
        "{un:?}"
    );
    assert!(notes_on(&m, "sip_profiles/external/b.xml")
        .iter()
        .any(|n| n.contains("carrier_b.xml")));
}

/// A name from the PBX that would be a path or a secret reference is not written.
#[test]
fn names_that_would_be_paths_or_secret_references_are_not_mapped() {
    let user = |id: &str| {
        format!("<include><user id=\"{id}\"><params><param name=\"password\" value=\"p\"/><param name=\"vm-password\" value=\"1\"/></params><variables><variable name=\"outbound_caller_id_number\" value=\"15551230001\"/></variables></user></include>\n")
    };
    let gw = "<include><gateway name=\"g\"><param name=\"username\" value=\"u\"/><param name=\"password\" value=\"CONTROLLER_SECRET\"/></gateway></include>\n";
    let files: BTreeMap<String, String> = [
        ("sip_profiles/external/env.xml".to_string(), gw.to_string()),
        ("directory/default/a.xml".to_string(), user("../../vars")),
        ("directory/default/b.xml".to_string(), user("vault")),
        // A group's pointer to a user is no user of its own (the stock directory/default.xml).
        ("directory/default.xml".to_string(), "<include><domain><groups><group name=\"g\"><users><user id=\"1000\" type=\"pointer\"/></users></group></groups></domain></include>\n".to_string()),
    ]
    .into_iter()
    .collect();
    let m = map(&files, &defaults());
    assert!(
        !m.vars.contains_key("carrier_passwords") && !m.vars.contains_key("users"),
        "{:?}",
        m.vars
    );
    let un = unmapped_lines(&m);
    assert!(
        un.iter()
            .any(|u| u.starts_with("sip_profiles/external/env.xml")
                && u.contains("secret references")),
        "{un:?}"
    );
    assert!(
        un.iter().any(
            |u| u.starts_with("directory/default/a.xml") && u.contains("not a plain file name")
        ),
        "{un:?}"
    );
    assert!(
        un.iter()
            .any(|u| u.starts_with("directory/default/b.xml") && u.contains("secret references")),
        "{un:?}"
    );
    assert!(
        !un.iter().any(|u| u.starts_with("directory/default.xml")),
        "{un:?}"
    );
}

/// The guide's IP-authentication section: the trunk maps to `wavix_ip_auth`, its address to
/// `external_ip`, and the missing from-domain (the guide's `sip_from_host` in the dialplan
/// never reaches the gateway leg) is named as the reason the gateway changes.
#[test]
fn the_guides_ip_auth_trunk_maps_to_wavix_ip_auth() {
    let files: BTreeMap<String, String> = [
        (
            "sip_profiles/external/wavix_ip.xml",
            include_str!(
                "../../../../tests/fixtures/guide/ip-auth/sip_profiles/external/wavix_ip.xml"
            ),
        ),
        (
            "dialplan/wavix_ip.xml",
            include_str!("../../../../tests/fixtures/guide/ip-auth/dialplan/wavix_ip.xml"),
        ),
        (
            "vars.xml",
            include_str!("../../../../tests/fixtures/guide/ip-auth/vars.xml"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let m = map(&files, &defaults());
    assert_eq!(m.vars["wavix_ip_auth"], true);
    assert_eq!(m.vars["wavix_realm"], "us.wavix.net");
    assert_eq!(m.vars["external_ip"], "123.123.123.123");
    assert_eq!(m.vars["wavix_inbound_context"], "wavix_gateway_ip");
    let gw = notes_on(&m, "sip_profiles/external/wavix_ip.xml").join("\n");
    assert!(gw.contains("no from-domain"), "{gw}");
    assert!(unmapped_lines(&m)
        .iter()
        .any(|u| u.contains("`wavix_inbound_addresses`")));
    assert!(!m.vars.contains_key("wavix_username") && !m.vars.contains_key("wavix_password"));
}
