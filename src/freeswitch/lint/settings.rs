//! Checks of settings outside the dialplan and the trunks: the core's RTP ports, and where
//! the inventory says FreeSWITCH is installed.

use std::collections::BTreeMap;

use super::tree::Tree;
use super::{Ctx, Severity};
use crate::freeswitch::{classify, xml_param, FileKind, FreeSwitch};

/// `rtp-range`: switch_core.c `switch_load_core_config()` passes `rtp-start-port` and
/// `rtp-end-port` to switch_rtp.c `switch_rtp_set_start_port()`/`..._end_port()`, which
/// take any number; switch_core_port_allocator.c `switch_core_port_allocator_new()` then
/// hands out even ports (RTP, the odd one above for RTCP) from that range.
pub(super) fn rtp_range(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    if classify(rel) != FileKind::SwitchConf || !tree.parsed.contains_key(rel) {
        return;
    }
    let text = tree.files[rel].as_str();
    let params: BTreeMap<String, String> =
        xml_param::params(text, "settings").into_iter().collect();
    let line_of = |name: &str| {
        text.lines()
            .position(|l| l.contains(&format!("\"{name}\"")) && !l.trim_start().starts_with("<!--"))
            .map(|i| i + 1)
            .unwrap_or(1)
    };
    let get = |n: &str| params.get(n).and_then(|v| v.parse::<u32>().ok());
    for n in ["rtp-start-port", "rtp-end-port"] {
        if let Some(v) = params.get(n) {
            match v.parse::<u32>() {
                Ok(p) if (1024..=65535).contains(&p) => {}
                _ => cx.push(
                    Severity::Error,
                    rel,
                    line_of(n),
                    "rtp-range",
                    format!("`{n}` is `{v}`, not a port from 1024 to 65535"),
                    "use an unprivileged port range such as 16384-32768".into(),
                ),
            }
        }
    }
    if let (Some(s), Some(e)) = (get("rtp-start-port"), get("rtp-end-port")) {
        if s >= e {
            cx.push(
                Severity::Error,
                rel,
                line_of("rtp-end-port"),
                "rtp-range",
                format!("RTP range {s}-{e} is empty or reversed"),
                "make rtp-start-port lower than rtp-end-port".into(),
            );
        }
        if s % 2 == 1 {
            cx.push(
                Severity::Error,
                rel,
                line_of("rtp-start-port"),
                "rtp-range",
                format!("rtp-start-port {s} is odd: RTP uses even ports, RTCP the odd one above"),
                format!("use {}", s + 1),
            );
        }
    }
}

/// `conf-root`: FreeSWITCH reads its configuration from the `conf` folder it was built or
/// packaged with (switch_core.c `switch_core_set_globals()`: `SWITCH_GLOBAL_dirs.conf_dir`);
/// paths are case-sensitive on Linux.
pub(super) fn conf_root(cx: &mut Ctx<'_>, fs: &FreeSwitch) {
    let lower = fs.conf_root.to_ascii_lowercase();
    if lower.contains("/freeswitch") && !fs.conf_root.contains("/freeswitch") {
        cx.push(Severity::Error, "inventory", 0, "conf-root",
            format!("conf root `{}`: paths are case-sensitive on Linux; FreeSWITCH lives in `{}`", fs.conf_root, lower),
            "set `freeswitch_conf_root` to `/usr/local/freeswitch/conf` (source builds) or `/etc/freeswitch` (packages)".into());
    }
}

/// `owner`: the packages run FreeSWITCH as user and group `freeswitch` (switch.c `main()`
/// takes `-u`/`-g`; debian/freeswitch-systemd.freeswitch.service passes `-u ${USER} -g
/// ${GROUP}`, both `freeswitch`); names are case-sensitive.
pub(super) fn owner(cx: &mut Ctx<'_>, fs: &FreeSwitch) {
    for (what, v) in [
        ("freeswitch_owner", &fs.owner),
        ("freeswitch_group", &fs.group),
    ] {
        if v.eq_ignore_ascii_case("freeswitch") && v != "freeswitch" {
            cx.push(Severity::Error, "inventory", 0, "owner",
                format!("`{what}` is `{v}`: user and group names are case-sensitive; packages run FreeSWITCH as `freeswitch`"),
                format!("set `{what}` to `freeswitch`"));
        }
    }
}
