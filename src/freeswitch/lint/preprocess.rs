//! Checks of what FreeSWITCH's pre-processor (switch_xml.c `preprocess()`) does to a file
//! before any module reads it: directives, the lines it drops whole, the variables it
//! expands, and whether what is left is XML at all.

use std::collections::BTreeMap;

use super::tree::Tree;
use super::{Ctx, Severity};
use crate::freeswitch::{classify, preprocess, FileKind};

/// `wrong-path`: switch_core.c `switch_load_core_config("switch.conf")` asks for the
/// `switch.conf` configuration, which freeswitch.xml includes from `autoload_configs/*.xml`
/// only.
pub(super) fn wrong_path(cx: &mut Ctx<'_>, _: &Tree<'_>, rel: &str) {
    if rel.starts_with("autoload_configs/default/") && rel.ends_with("switch.conf.xml") {
        // FreeSWITCH runs without it (on the defaults), so it is not an error; but
        // whatever the operator meant it to set is not set.
        cx.push(Severity::Warning, rel, 1, "wrong-path",
            "FreeSWITCH reads switch.conf.xml from `autoload_configs/`, not `autoload_configs/default/`: this file is never loaded".into(),
            "write it to `autoload_configs/switch.conf.xml`".into());
    }
}

/// `preprocess-misspelt`: switch_xml.c `preprocess()` looks for `<X-PRE-PROCESS` with
/// `strstr`; a look-alike is an unknown tag, dropped by the parser.
pub(super) fn misspelt(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    let Some(text) = tree.xml_text(rel) else {
        return;
    };
    for d in preprocess::parse(text)
        .into_iter()
        .filter(|d| !d.well_spelt)
    {
        let tag = text
            .lines()
            .nth(d.line - 1)
            .unwrap_or("")
            .split_whitespace()
            .next();
        let tag = tag.unwrap_or("").trim_start_matches('<');
        cx.push(Severity::Error, rel, d.line, "preprocess-misspelt",
            format!("`{tag}` is not `X-PRE-PROCESS`: FreeSWITCH silently ignores this line, so `{}` is never set", d.data.split('=').next().unwrap_or("")),
            format!("spell it `<X-PRE-PROCESS cmd=\"{}\" data=\"{}\"/>`", d.cmd, d.data));
    }
}

/// `preprocess-cmd`: switch_xml.c `preprocess()` compares `cmd` with each command it
/// knows (`set`, `stun-set`, `include`, ...) and does nothing for any other.
pub(super) fn unknown_cmd(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    let Some(text) = tree.xml_text(rel) else {
        return;
    };
    for d in preprocess::parse(text) {
        if d.well_spelt && !preprocess::KNOWN_CMDS.contains(&d.cmd.as_str()) {
            cx.push(
                Severity::Error,
                rel,
                d.line,
                "preprocess-cmd",
                format!("unknown pre-process cmd `{}`", d.cmd),
                format!("use one of {}", preprocess::KNOWN_CMDS.join(", ")),
            );
        }
    }
}

/// `stun-set-literal`: switch_xml.c `preprocess_stun_set()` runs a STUN lookup of the
/// value on every pre-processing and keeps the old value when it fails.
pub(super) fn stun_set_literal(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    let Some(text) = tree.xml_text(rel) else {
        return;
    };
    for d in preprocess::parse(text) {
        let Some((name, value)) = d.assignment() else {
            continue;
        };
        if d.cmd == "stun-set" && value.parse::<std::net::IpAddr>().is_ok() {
            cx.push(Severity::Warning, rel, d.line, "stun-set-literal",
                format!("`stun-set` of `{name}` to a literal address: stun-set runs a STUN lookup on every reloadxml and keeps the old value when it fails"),
                format!("use `<X-PRE-PROCESS cmd=\"set\" data=\"{name}={value}\"/>` for a fixed address"));
        }
    }
}

/// What a line loses besides `tag` when the pre-processor drops it whole (switch_xml.c
/// `preprocess()`: a plain `strstr` on the raw line, comments or not). What that loses is
/// the line's text outside comments (`visible`), less the tag itself.
fn dropped_with(line: &str, visible: &str, tag: &str) -> Option<String> {
    line.find(tag)?;
    let lost = match visible.find(tag) {
        Some(pos) => {
            let after = &visible[pos + tag.len()..];
            let after = if tag == "<?" {
                after.split_once("?>").map_or("", |x| x.1)
            } else {
                after
            };
            format!("{}{}", &visible[..pos], after)
        }
        None => visible.to_string(),
    };
    let lost = lost.trim();
    (!lost.is_empty()).then(|| lost.to_string())
}

/// `include-line`: switch_xml.c `preprocess()` skips every line holding `<include>`,
/// `</include>` or `<?`, whatever else is on it.
pub(super) fn include_line(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    let Some(text) = tree.xml_text(rel) else {
        return;
    };
    let visible = preprocess::visible_lines(text);
    for (i, line) in text.lines().enumerate() {
        for tag in ["<include>", "</include>", "<?"] {
            if let Some(lost) = dropped_with(line, &visible[i], tag) {
                cx.push(Severity::Error, rel, i + 1, "include-line",
                    format!("FreeSWITCH's pre-processor drops this whole line because it holds `{tag}`, so `{}` is lost", lost.chars().take(60).collect::<String>()),
                    format!("put `{tag}` on a line of its own"));
            }
        }
    }
}

/// `preprocess-quotes`: switch_xml.c `preprocess()`, after `cmd` and `=`, looks for a
/// double quote and silently skips the line when there is none; `data` likewise.
pub(super) fn quotes(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    let Some(text) = tree.xml_text(rel) else {
        return;
    };
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("<X-PRE-PROCESS")
            && t.trim_end().ends_with('>')
            && (!t.contains("cmd=\"") || !t.contains("data=\""))
        {
            cx.push(
                Severity::Error,
                rel,
                i + 1,
                "preprocess-quotes",
                "FreeSWITCH reads a pre-process directive's `cmd` and `data` only in double quotes; this line is silently ignored".into(),
                format!("write `{}`", t.trim_end().replace('\'', "\"")),
            );
        }
    }
}

/// `preprocess-split`: switch_xml.c `preprocess()` reads directives line by line.
pub(super) fn split(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    let Some(text) = tree.xml_text(rel) else {
        return;
    };
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("<X-PRE-PROCESS") && !t.trim_end().ends_with('>') {
            cx.push(
                Severity::Error,
                rel,
                i + 1,
                "preprocess-split",
                "a pre-process directive must stand on one line".into(),
                "join the directive onto one line".into(),
            );
        }
    }
}

/// `xml`: switch_xml.c `switch_xml_parse_str()` refuses the whole document.
pub(super) fn not_xml(cx: &mut Ctx<'_>, tree: &Tree<'_>, rel: &str) {
    if let Some((line, e)) = tree.xml_errors.get(rel) {
        cx.push(Severity::Error, rel, *line, "xml",
            format!("not well-formed XML: {e} (FreeSWITCH would reject the whole configuration at reloadxml, or worse, silently swallow lines)"),
            "fix the XML; switchyard refuses to push it".into());
    }
}

/// Variables FreeSWITCH's core sets before any configuration is read (switch_core.c
/// `switch_core_set_variable` at v1.10.12), usable as `$${name}` without a definition.
const CORE_VARS: &[&str] = &[
    "base_dir",
    "cache_dir",
    "certs_dir",
    "conf_dir",
    "core_uuid",
    "data_dir",
    "db_dir",
    "exclude_error_log_from_xml_cdr",
    "fonts_dir",
    "grammar_dir",
    "hostname",
    "htdocs_dir",
    "images_dir",
    "local_ip_v4",
    "local_ip_v6",
    "local_mask_v4",
    "localstate_dir",
    "log_dir",
    "mod_dir",
    "recordings_dir",
    "rtp_retain_crypto_keys",
    "run_dir",
    "script_dir",
    "sound_prefix",
    "sounds_dir",
    "spawn_instead_of_system",
    "storage_dir",
    "temp_dir",
];

/// `undefined-var`: switch_xml.c `expand_vars()` replaces a `$${name}` nothing defines
/// with nothing, silently, so a param becomes empty (a gateway without a proxy, a profile
/// without an address). Judged only when vars.xml is among the files (otherwise what is
/// defined is not known); definitions anywhere count, comments do not.
pub(super) fn undefined_var(cx: &mut Ctx<'_>, tree: &Tree<'_>) {
    let files: &BTreeMap<String, String> = tree.files;
    if !files.contains_key("vars.xml") {
        return;
    }
    let mut defined: std::collections::BTreeSet<String> =
        CORE_VARS.iter().map(|s| s.to_string()).collect();
    for text in files.values() {
        for d in preprocess::parse(text).into_iter().filter(|d| d.well_spelt) {
            if let Some((name, _)) = d.assignment() {
                defined.insert(name.to_string());
            }
        }
    }
    for (rel, text) in files {
        for (i, line) in preprocess::visible_lines(text).iter().enumerate() {
            let mut rest = line.as_str();
            while let Some(pos) = rest.find("$${") {
                let after = &rest[pos + 3..];
                let Some(end) = after.find('}') else { break };
                let name = &after[..end];
                if !name.is_empty() && !defined.contains(name) {
                    // In a gateway an empty value drops or breaks the trunk; elsewhere an
                    // empty param often means "the default" (stock internal-ipv6.xml's
                    // tls-cert-dir relies on it), so there it is a warning.
                    let severity = if matches!(classify(rel), FileKind::Gateway { .. }) {
                        Severity::Error
                    } else {
                        Severity::Warning
                    };
                    cx.push(severity, rel, i + 1, "undefined-var",
                        format!("`$${{{name}}}` is defined by no pre-process line: FreeSWITCH replaces it with nothing, silently"),
                        format!("define it in vars.xml: `<X-PRE-PROCESS cmd=\"set\" data=\"{name}=...\"/>`"));
                }
                rest = &after[end..];
            }
        }
    }
}
