//! What switchyard knows about FreeSWITCH, kept in one place.
//!
//! - [`classify`]: what kind of configuration a conf-root-relative path is;
//! - [`gateways`]: the gateways a gateway file defines, with their params;
//! - [`reload`]: the least disruptive commands that make a set of changes take effect;
//! - [`status`]: parsing `fs_cli` answers, which always exit 0 and must be read as text;
//! - [`lint`]: checks of a whole configuration, including the Wavix guide's mistakes;
//! - [`preprocess`] and [`xml_param`]: editors for `vars.xml` lines and `<param>`s;
//! - [`siptrace`]: mod_sofia's SIP trace as the event socket streams it, credentials masked.
//!
//! The rules come from FreeSWITCH's source and from outputs recorded on a real 1.10.12
//! (see `shared/reference/freeswitch-facts.md`).

pub mod apps;
pub mod dialplan;
pub mod esl;
pub mod lint;
pub mod preprocess;
pub mod probe;
pub mod reload;
pub mod siptrace;
pub mod sofia;
pub mod status;
pub mod tod;
pub mod xml_param;

use std::collections::BTreeMap;

/// What a file under the conf root configures, which decides how a change to it takes effect.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileKind {
    /// `sip_profiles/<profile>/*.xml`: gateways of a sofia profile.
    Gateway {
        profile: String,
    },
    /// `sip_profiles/<profile>.xml`: the profile's own settings.
    Profile {
        profile: String,
    },
    /// `autoload_configs/switch.conf.xml`: core settings read only at start-up.
    SwitchConf,
    /// `autoload_configs/acl.conf.xml`: network lists, loaded by `reloadacl`.
    Acl,
    /// `vars.xml`: pre-processor variables.
    Vars,
    Dialplan,
    Directory,
    /// Anything else under the conf root.
    Other,
}

/// Classify a path relative to the conf root.
pub fn classify(rel: &str) -> FileKind {
    let parts: Vec<&str> = rel.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["sip_profiles", profile, file] if file.ends_with(".xml") => FileKind::Gateway {
            profile: (*profile).to_string(),
        },
        ["sip_profiles", file] if file.ends_with(".xml") => FileKind::Profile {
            profile: file.trim_end_matches(".xml").to_string(),
        },
        ["autoload_configs", "switch.conf.xml"] => FileKind::SwitchConf,
        ["autoload_configs", "acl.conf.xml"] => FileKind::Acl,
        ["vars.xml"] => FileKind::Vars,
        ["dialplan", ..] => FileKind::Dialplan,
        ["directory", ..] => FileKind::Directory,
        _ => FileKind::Other,
    }
}

/// One `<gateway>` of a gateway file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    pub name: String,
    /// `<param>`s (entities decoded).
    pub params: BTreeMap<String, String>,
    /// `<variable>`s set on calls through the gateway.
    pub variables: BTreeMap<String, String>,
    /// 1-based line of the `<gateway>` tag.
    pub line: usize,
}

/// Where FreeSWITCH lives on a host and how to talk to it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FreeSwitch {
    /// Conf root: `/usr/local/freeswitch/conf` for source builds, `/etc/freeswitch` for packages.
    pub conf_root: String,
    pub owner: String,
    pub group: String,
    /// The `fs_cli` command line (without `-x`), e.g. `fs_cli -H 127.0.0.1 -P 8021 -p ClueCon`.
    pub fs_cli: String,
    /// Shell command that restarts FreeSWITCH (only ever run when a play allows restarts).
    pub restart_command: String,
}

/// FreeSWITCH's `switch_true()` (switch_utils.h): `yes`, `on`, `true`, `t`, `enabled`,
/// `active`, `allow` (any case) or a non-zero number. Anything else is false: mod_sofia
/// leaves a gateway unregistered unless `register` is one of these (`if
/// (!switch_true(register_str)) gateway->state = REG_STATE_NOREG;`, sofia.c), so
/// `register="maybe"` does not register.
pub fn switch_true(v: &str) -> bool {
    let v = v.trim();
    ["yes", "on", "true", "t", "enabled", "active", "allow"]
        .iter()
        .any(|w| v.eq_ignore_ascii_case(w))
        || (!v.is_empty()
            && v.trim_start_matches(['-', '+'])
                .chars()
                .all(|c| c.is_ascii_digit())
            && !v
                .trim_start_matches(['-', '+'])
                .trim_start_matches('0')
                .is_empty())
}

impl Gateway {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// `register` defaults to true in mod_sofia.
    pub fn registers(&self) -> bool {
        self.param("register").is_none_or(switch_true)
    }

    /// An OPTIONS ping is configured (`ping` > 0).
    pub fn pings(&self) -> bool {
        self.param("ping")
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| p > 0)
    }
}

/// Gateways defined in a gateway file; `None` when the file is not well-formed.
pub fn gateways(text: &str) -> Option<Vec<Gateway>> {
    let cleaned: String = text
        .split_inclusive('\n')
        .map(|l| {
            if l.trim_start().starts_with("<?") || l.trim_start().starts_with("<X-PRE-PROCESS") {
                "\n"
            } else {
                l
            }
        })
        .collect();
    let doc = roxmltree::Document::parse(&cleaned).ok()?;
    Some(
        doc.descendants()
            .filter(|n| n.has_tag_name("gateway"))
            .filter_map(|g| {
                let name = g.attribute("name")?.to_string();
                let line = doc.text_pos_at(g.range().start).row as usize;
                Some(Gateway {
                    name,
                    params: name_values(g, "param"),
                    variables: name_values(g, "variable"),
                    line,
                })
            })
            .collect(),
    )
}

/// The `name`/`value` pairs of the `tag` elements under `node` (`<param>`s of a gateway or a
/// user, `<variable>`s), in document order; an element missing either is skipped.
pub(crate) fn name_values<T: FromIterator<(String, String)>>(
    node: roxmltree::Node,
    tag: &str,
) -> T {
    node.descendants()
        .filter(|n| n.has_tag_name(tag))
        .filter_map(|n| {
            Some((
                n.attribute("name")?.to_string(),
                n.attribute("value")?.to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_conf_tree() {
        assert_eq!(
            classify("sip_profiles/external/wavix.xml"),
            FileKind::Gateway {
                profile: "external".into()
            }
        );
        assert_eq!(
            classify("sip_profiles/external.xml"),
            FileKind::Profile {
                profile: "external".into()
            }
        );
        assert_eq!(
            classify("autoload_configs/switch.conf.xml"),
            FileKind::SwitchConf
        );
        assert_eq!(classify("vars.xml"), FileKind::Vars);
        assert_eq!(
            classify("dialplan/default/01_wavix.xml"),
            FileKind::Dialplan
        );
        assert_eq!(classify("directory/default/1000.xml"), FileKind::Directory);
    }

    #[test]
    fn reads_gateways() {
        let g = gateways("<include>\n  <gateway name=\"wavix\">\n    <param name=\"register\" value=\"false\"/>\n  </gateway>\n</include>\n").unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, "wavix");
        assert_eq!(g[0].line, 2);
        assert!(!g[0].registers());
    }

    #[test]
    fn register_is_read_as_mod_sofia_reads_it() {
        for yes in [
            "true", "TRUE", "yes", "on", "t", "enabled", "active", "allow", "1", "2",
        ] {
            assert!(switch_true(yes), "{yes}");
        }
        for no in ["false", "no", "off", "0", "maybe", "", "-", "00"] {
            assert!(!switch_true(no), "{no}");
        }
        let gw = |v: &str| {
            gateways(&format!("<include><gateway name=\"g\"><param name=\"register\" value=\"{v}\"/></gateway></include>"))
                .unwrap()
                .remove(0)
        };
        // Not one of switch_true's words: mod_sofia leaves the gateway unregistered.
        assert!(!gw("maybe").registers());
        assert!(gw("yes").registers());
    }
}
