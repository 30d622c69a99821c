//! The stock-shaped FreeSWITCH conf files switchyard ships (`stock/conf/` at the top of the
//! repository, next to the shipped playbooks and templates, not among test fixtures): what
//! demo and test hosts start from, and the base `lint -i` edits in place when it checks the
//! final content of files a playbook only edits (it does not connect, so it cannot read the
//! host's own).

/// The stock-shaped conf tree every demo (and test) host starts from.
pub const STOCK_CONF: &[(&str, &str)] = &[
    ("vars.xml", include_str!("../stock/conf/vars.xml")),
    (
        "autoload_configs/switch.conf.xml",
        include_str!("../stock/conf/autoload_configs/switch.conf.xml"),
    ),
    (
        "autoload_configs/event_socket.conf.xml",
        include_str!("../stock/conf/autoload_configs/event_socket.conf.xml"),
    ),
    (
        "sip_profiles/external.xml",
        include_str!("../stock/conf/sip_profiles/external.xml"),
    ),
    (
        "sip_profiles/external/example.xml",
        include_str!("../stock/conf/sip_profiles/external/example.xml"),
    ),
    (
        "dialplan/public.xml",
        include_str!("../stock/conf/dialplan/public.xml"),
    ),
    (
        "dialplan/default.xml",
        include_str!("../stock/conf/dialplan/default.xml"),
    ),
    (
        "directory/default/1000.xml",
        include_str!("../stock/conf/directory/default/1000.xml"),
    ),
];
