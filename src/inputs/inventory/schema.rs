//! JSON Schemas of an inventory file and of a `group_vars/`/`host_vars/` file, for editors
//! (`switchyard schema inventory|vars`, published in `schema/`).
//!
//! The group shape comes from the type the loader reads ([`RawGroup`], `deny_unknown_fields`
//! and all). Variables are free-form in Ansible and stay so here (an inventory carries
//! variables for other tools too); the ones switchyard or the shipped playbook reads are
//! listed in [`KNOWN`] with what they do, so an editor completes and explains them. The
//! shipped playbook's defaults are taken from the playbook itself.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::RawGroup;

/// How a known variable's value is written.
#[derive(Clone, Copy)]
enum Shape {
    /// Text, a number or a boolean (read as its text), or a secret reference.
    Scalar,
    /// A boolean, or the text `yes`/`no`/`true`/`false`/`on`/`off`/`1`/`0` in any case.
    Bool,
    /// One of these words.
    Word(&'static [&'static str]),
    List,
    Map,
    /// A list of mappings whose keys are described (free-form beyond those).
    ListOf(&'static [(&'static str, &'static str)]),
}

/// The variables switchyard itself and the shipped playbook read, with what they do.
const KNOWN: &[(&str, Shape, &str)] = &[
    // How the host is reached (README "Inventory").
    ("ansible_host", Shape::Scalar, "Address to connect to (default: the host name). Same as `ssh_host`."),
    ("ssh_host", Shape::Scalar, "Address to connect to (default: the host name)."),
    ("ansible_port", Shape::Scalar, "SSH port (default 22). Same as `ssh_port`."),
    ("ssh_port", Shape::Scalar, "SSH port (default 22)."),
    ("ansible_user", Shape::Scalar, "SSH login (default `root`). Same as `ssh_user`."),
    ("ssh_user", Shape::Scalar, "SSH login (default `root`)."),
    ("ansible_ssh_private_key_file", Shape::Scalar, "Private key file (default: ssh-agent, then ~/.ssh/id_{ed25519,ecdsa,rsa})."),
    ("ssh_private_key_file", Shape::Scalar, "Private key file (default: ssh-agent, then ~/.ssh/id_{ed25519,ecdsa,rsa})."),
    ("ansible_become", Shape::Bool, "Run every remote command through `sudo -n` (default: on unless the user is root). Same as `become`."),
    ("become", Shape::Bool, "Run every remote command through `sudo -n` (default: on unless the user is root)."),
    ("ansible_connection", Shape::Scalar, "`ssh` (default) or `local` (run on this machine); another plugin keeps the host in the inventory but switchyard never connects to it. Same as `connection`."),
    ("connection", Shape::Scalar, "`ssh` (default) or `local` (run on this machine)."),
    ("ssh_jump", Shape::Scalar, "Jump host(s): `user@bastion:port`, comma-separated or a list for several hops."),
    ("ansible_ssh_common_args", Shape::Scalar, "`-o ProxyJump=...`, `-J ...` and `-o ProxyCommand=\"ssh -W %h:%p host\"` become `ssh_jump`; other options are named in a warning."),
    ("ssh_connect_timeout", Shape::Scalar, "Seconds to wait for the SSH connection (default 10)."),
    ("command_timeout", Shape::Scalar, "Seconds a remote command may run before it and its children are ended (default 120)."),
    ("ssh_retries", Shape::Scalar, "Retries of a refused or timed-out connection, 0 to 10 (default 2)."),
    // Where FreeSWITCH is.
    ("freeswitch_conf_root", Shape::Scalar, "FreeSWITCH's conf folder, an absolute path (default `/usr/local/freeswitch/conf`; `/etc/freeswitch` for packaged installs). Every task's `dest` is inside it."),
    ("freeswitch_owner", Shape::Scalar, "Owner of the files switchyard writes whole (default `freeswitch`)."),
    ("freeswitch_group", Shape::Scalar, "Group of the files switchyard writes whole (default `freeswitch`)."),
    ("fs_cli", Shape::Scalar, "The fs_cli command line without `-x` (default `fs_cli`), e.g. `fs_cli -H 127.0.0.1 -P 8021 -p ClueCon`; its password never reaches a process's arguments."),
    ("freeswitch_max_file_bytes", Shape::Scalar, "A managed file larger than this is refused on the host, unread (default 8388608)."),
    ("freeswitch_restart_command", Shape::Scalar, "Shell command that restarts FreeSWITCH (default `systemctl restart freeswitch`); run only when a play allows restarts."),
    ("freeswitch_esl", Shape::Scalar, "The event socket as the PBX reaches it, `HOST:PORT` (default `127.0.0.1:8021` on an SSH host; a `connection: local` host must set it). Used by `watch --events` and `trunks measure`."),
    ("freeswitch_esl_password", Shape::Scalar, "The event socket's password (a secret: use `{vault: ...}`, `{env: ...}` or `{file: ...}`)."),
    // The shipped Wavix playbook (README "The shipped Wavix playbook"): not defaulted there.
    ("wavix_username", Shape::Scalar, "The Wavix trunk's SIP username (one carrier; see `carriers` for several)."),
    ("wavix_password", Shape::Scalar, "The Wavix trunk's SIP password (a secret: `{vault: ...}`, `{env: ...}` or `{file: ...}`)."),
    ("external_ip", Shape::Scalar, "The PBX's public address: written to vars.xml (`external_rtp_ip`, `external_sip_ip`) and to the external profile."),
    ("emergency_calls", Shape::Word(&["trunk", "refuse"]), "Required: `trunk` routes the numbering plan's emergency numbers to the trunk, `refuse` answers them with a refusal."),
    ("did_routes", Shape::ListOf(&[
        ("number", "The DID, E.164 with or without `+`."),
        ("extension", "The directory user it rings, e.g. \"1000\"."),
        ("transfer", "Or an extension of your own (a ring group, an IVR) it is transferred to."),
        ("context", "With `transfer`: the context of that extension (default `pbx_features_context`)."),
    ]), "Required: inbound numbers and where each goes (a user's `extension`, or `transfer` to an extension of your own)."),
    ("users", Shape::ListOf(&[
        ("id", "The extension, e.g. \"1000\"; one directory/default/ID.xml each."),
        ("password", "SIP password (keep real ones in the vault)."),
        ("vm_password", "Voicemail PIN."),
        ("caller_id_name", "Internal caller ID name."),
        ("caller_id_number", "Internal caller ID number."),
        ("outbound_caller_id_name", "Caller ID name towards the trunk."),
        ("outbound_caller_id_number", "Caller ID number towards the trunk."),
    ]), "Directory users, one file each; a user removed from the list has its file removed."),
    ("user", Shape::Map, "A single directory user (as one item of `users`), for a host with one."),
    ("user_secrets", Shape::Map, "Users' secrets kept apart from `users` (in a vault file, as `switchyard import` writes them): ID → {password, vm_password}, read when the user's entry has none."),
    ("carrier_passwords", Shape::Map, "Carriers' passwords kept apart from `carriers` (in a vault file, as `switchyard import` writes them): NAME → password, read when the carrier has none."),
    ("carriers", Shape::ListOf(&[
        ("name", "The carrier's name: its file is sip_profiles/external/carrier_NAME.xml."),
        ("username", "SIP username."),
        ("password", "SIP password (a secret: `{vault: ...}`, `{env: ...}` or `{file: ...}`)."),
        ("auth", "`register` (default) or `ip` (IP authentication)."),
        ("realm", "Realm that answers the challenge."),
        ("proxy", "Where REGISTER and INVITEs go (default: the realm)."),
        ("from_domain", "IP authentication: the From host the provider expects."),
        ("codecs", "Codecs offered to the carrier, in order."),
        ("expire_seconds", "Registration lifetime."),
        ("ping_seconds", "OPTIONS ping interval (>= 5; 0: none)."),
        ("inbound_addresses", "The carrier's signalling addresses (IPs or CIDRs), joined to the provider ACL."),
        ("gateways", "The carrier's gateways in failover order, each `{name, realm, proxy}` (its carrier's settings unless it gives its own)."),
    ]), "Several carriers in failover order (instead of the `wavix_*` trunk variables)."),
    ("wavix_regions", Shape::List, "`trunks measure` candidates: `HOST[:PORT]` or `{proxy: HOST[:PORT], realm: R}`."),
];

/// Descriptions of the shipped playbook's own variables (its `vars:` gives their defaults).
const PLAYBOOK_VARS: &[(&str, &str)] = &[
    ("wavix_realm", "The Wavix region's realm (answers the registration challenge)."),
    ("wavix_proxy", "Where REGISTER and INVITEs go; empty: the realm."),
    ("wavix_failover_proxy", "The failover region's proxy (gateway `wavix_fo`); empty: no failover gateway."),
    ("wavix_failover_realm", "The failover region's realm; empty: the failover proxy."),
    ("wavix_expire_seconds", "Registration lifetime in seconds."),
    ("wavix_ping_seconds", "OPTIONS ping interval (>= 5; mod_sofia ignores less); 0: none."),
    ("wavix_inbound_context", "The dialplan context inbound DIDs run in."),
    ("wavix_user_context", "The dialplan context the directory users dial from."),
    ("wavix_ip_auth", "IP authentication (gateway `wavix_ip`) instead of registration."),
    ("wavix_from_domain", "IP authentication: the From host the provider expects; empty: `external_ip`."),
    ("wavix_inbound_addresses", "The provider's signalling addresses (IPs or CIDRs): calls from them that name no gateway run in the inbound context."),
    ("wavix_acl_name", "Name of the provider ACL in autoload_configs/acl.conf.xml."),
    ("external_profile_context", "The external profile's own context (stock `public`), kept for calls from anywhere else."),
    ("caller_id_passthrough", "Pass the caller's ID through to the trunk."),
    ("wavix_codecs", "Codecs offered to the trunk, in order (e.g. [PCMU, PCMA]); []: the profile's."),
    ("pbx_features_context", "Where numbers no route matches go (stock `default`: voicemail, echo test...); empty: refused."),
    ("rtp_start_port", "First RTP port (autoload_configs/switch.conf.xml)."),
    ("rtp_end_port", "Last RTP port."),
    ("numbering_plan", "How users dial: a name from `numbering_plans` (us, ca, gb, nl, de, au, or your own)."),
    ("numbering_plans", "Numbering plans by name: country_code, international_prefix, national_prefix, national_number (a regex), national_without_prefix, emergency."),
    ("failover_causes", "Hangup causes after which a call tries the next gateway (the route failed; never busy or no answer)."),
];

/// The shipped playbook: its play's `vars:` are the defaults shown in editors.
const SHIPPED_PLAYBOOK: &str = include_str!("../../../playbooks/wavix.yml");

fn shipped_defaults() -> Map<String, Value> {
    let plays: Vec<Value> = yaml_serde::from_str(SHIPPED_PLAYBOOK).unwrap_or_default();
    plays
        .first()
        .and_then(|p| p.get("vars"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// `{vault: ...}`, `{env: ...}` or `{file: ...}`: a secret from outside the file.
fn secret_ref() -> Value {
    json!({
        "type": "object",
        "description": "A secret: `{vault: AGE ARMOR}`, `{env: VARIABLE}` or `{file: PATH}`.",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "vault": {"type": "string", "description": "age-encrypted text (`switchyard vault encrypt-string`)."},
            "env": {"type": "string", "description": "An environment variable of the controller."},
            "file": {"type": "string", "description": "A regular file of at most 1 MiB (trailing newline dropped)."}
        },
        "additionalProperties": false
    })
}

fn shape_schema(shape: Shape) -> Value {
    let scalar = json!({"type": ["string", "number", "boolean"]});
    match shape {
        Shape::Scalar => json!({"anyOf": [scalar, secret_ref()]}),
        // `yes`, `On`, `1`... are read as booleans too, in any case.
        Shape::Bool => json!({"type": ["boolean", "string", "integer"]}),
        Shape::Word(words) => json!({"type": "string", "enum": words}),
        Shape::List => json!({"type": "array"}),
        Shape::Map => json!({"type": "object"}),
        Shape::ListOf(keys) => {
            let properties: Map<String, Value> = keys
                .iter()
                .map(|(k, about)| (k.to_string(), json!({"description": about})))
                .collect();
            json!({"type": "array", "items": {"type": "object", "properties": properties}})
        }
    }
}

/// A host's (or group's, or a play's) variables: free-form, the known ones described.
pub struct HostVars;

impl JsonSchema for HostVars {
    fn schema_name() -> Cow<'static, str> {
        "HostVars".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut properties = Map::new();
        for (name, shape, about) in KNOWN {
            let mut s = shape_schema(*shape);
            s["description"] = json!(about);
            properties.insert(name.to_string(), s);
        }
        for (name, default) in shipped_defaults() {
            let about = PLAYBOOK_VARS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("A variable of the shipped playbook.", |(_, a)| a);
            properties.insert(
                name,
                json!({"description": format!("{about} (shipped playbook's default shown)"), "default": default}),
            );
        }
        json_schema!({
            "type": "object",
            "description": "Variables: the ones switchyard and the shipped playbook read are described; any other is allowed (an Ansible inventory carries variables for other tools too).",
            "properties": properties,
            "additionalProperties": true
        })
    }
}

/// An inventory file: its top-level groups (`all` and any others).
struct InventoryFile;

impl JsonSchema for InventoryFile {
    fn schema_name() -> Cow<'static, str> {
        "Inventory".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let group = generator.subschema_for::<Option<RawGroup>>();
        json_schema!({
            "type": "object",
            "description": "An Ansible-layout inventory: `all:` (and other top-level groups), each with `hosts:`, `vars:` and `children:`; `group_vars/` and `host_vars/` beside it.",
            "additionalProperties": group
        })
    }
}

/// `hosts:`: host name (or pattern such as `pbx-[01:50]`) → its variables, or one bare name.
pub(super) fn hosts(generator: &mut SchemaGenerator) -> Schema {
    let vars = generator.subschema_for::<Option<HostVars>>();
    json_schema!({
        "description": "The group's hosts: name (or range, `pbx-[01:50]`) → its variables; or one bare name.",
        "anyOf": [{"type": "object", "additionalProperties": vars}, {"type": "string"}, {"type": "null"}]
    })
}

/// `vars:`: the group's variables.
pub(super) fn vars(generator: &mut SchemaGenerator) -> Schema {
    let vars = generator.subschema_for::<HostVars>();
    json_schema!({
        "description": "Variables of every host of the group (host variables override them).",
        "anyOf": [vars, {"type": "null"}]
    })
}

/// `children:`: group name → group.
pub(super) fn children(generator: &mut SchemaGenerator) -> Schema {
    let group = generator.subschema_for::<Option<RawGroup>>();
    json_schema!({
        "description": "Groups inside this one: name → group (`hosts:`, `vars:`, `children:`).",
        "anyOf": [{"type": "object", "additionalProperties": group}, {"type": "string"}, {"type": "null"}]
    })
}

/// Draft-07: what VS Code's YAML extension and most editors read best.
fn generator() -> SchemaGenerator {
    schemars::generate::SchemaSettings::draft07().into_generator()
}

/// The JSON Schema of an inventory file (YAML layout).
pub fn inventory_schema() -> Schema {
    let mut s = generator().into_root_schema_for::<InventoryFile>();
    s.insert("title".into(), json!("switchyard inventory"));
    s
}

/// The JSON Schema of a `group_vars/NAME.yml` or `host_vars/NAME.yml` file.
pub fn vars_schema() -> Schema {
    let mut s = generator().into_root_schema_for::<HostVars>();
    s.insert(
        "title".into(),
        json!("switchyard group_vars / host_vars file"),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A variable added to the shipped playbook's `vars:` gets a description here.
    #[test]
    fn every_shipped_playbook_variable_is_described() {
        let defaults = shipped_defaults();
        assert!(defaults.contains_key("wavix_realm"), "{defaults:?}");
        let missing: Vec<&String> = defaults
            .keys()
            .filter(|k| !PLAYBOOK_VARS.iter().any(|(n, _)| n == k))
            .collect();
        assert!(missing.is_empty(), "describe in PLAYBOOK_VARS: {missing:?}");
        let unused: Vec<&&str> = PLAYBOOK_VARS
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !defaults.contains_key(**n))
            .collect();
        assert!(unused.is_empty(), "no longer in the playbook: {unused:?}");
    }
}
