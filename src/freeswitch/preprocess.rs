//! `X-PRE-PROCESS` lines: parsing, validating and editing them in `vars.xml`.
//!
//! FreeSWITCH's pre-processor is line-based and textual, not XML: a directive must sit on
//! one line, `cmd` and `data` must be double-quoted, `data` is taken raw (no entity
//! decoding, no `"`), and a line containing `<include>`, `</include>` or `<?` is dropped
//! whole. The editor here keeps every other line of the file byte for byte.

/// Pre-processor commands FreeSWITCH knows (switch_xml.c `preprocess()`).
pub const KNOWN_CMDS: &[&str] = &[
    "set", "stun-set", "env-set", "exec-set", "include", "exec", "comment", "reset",
];

/// The commands that define a `$${variable}`.
pub const SETTING_CMDS: &[&str] = &["set", "stun-set", "env-set", "exec-set"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// 1-based line number.
    pub line: usize,
    pub cmd: String,
    pub data: String,
    /// The tag was spelt right (`X-PRE-PROCESS`); `false` for look-alikes such as the
    /// guide's `XPREPROCESS`, which FreeSWITCH silently ignores.
    pub well_spelt: bool,
}

impl Directive {
    /// `name` and `value` of a setting directive (`data="name=value"`).
    pub fn assignment(&self) -> Option<(&str, &str)> {
        if SETTING_CMDS.contains(&self.cmd.as_str()) {
            self.data.split_once('=')
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PreProcessError {
    #[error("variable name `{0}` may only contain letters, digits, `_`, `-` and `.`")]
    BadName(String),
    #[error("value of `{name}` contains {what}, which a pre-process line cannot carry")]
    BadValue { name: String, what: &'static str },
}

/// Why a value cannot go raw into `data="..."`, if it cannot.
pub fn unsafe_data(value: &str) -> Option<&'static str> {
    if value.contains('"') {
        Some("a double quote")
    } else if value.contains('\n') || value.contains('\r') {
        Some("a line break")
    } else if value.contains("<include>") || value.contains("</include>") || value.contains("<?") {
        Some("`<include>`, `</include>` or `<?` (the pre-processor drops such lines)")
    } else {
        None
    }
}

fn check(name: &str, value: &str) -> Result<(), PreProcessError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(PreProcessError::BadName(name.to_string()));
    }
    if let Some(what) = unsafe_data(value) {
        return Err(PreProcessError::BadValue {
            name: name.to_string(),
            what,
        });
    }
    Ok(())
}

/// The canonical line for one setting.
pub fn line_for(cmd: &str, name: &str, value: &str) -> String {
    format!("<X-PRE-PROCESS cmd=\"{cmd}\" data=\"{name}={value}\"/>")
}

/// Parse one line as a pre-process directive, ignoring lines inside comments.
pub(crate) fn parse_line(line: &str) -> Option<(String, String, bool)> {
    let t = line.trim_start();
    let (rest, well_spelt) = if let Some(r) = t.strip_prefix("<X-PRE-PROCESS") {
        (r, true)
    } else {
        let upper = t.get(..16).unwrap_or(t).to_ascii_uppercase();
        let look_alike = [
            "<XPREPROCESS",
            "<X-PREPROCESS",
            "<XPRE-PROCESS",
            "<X_PRE_PROCESS",
        ]
        .iter()
        .find(|p| upper.starts_with(*p))?;
        (&t[look_alike.len()..], false)
    };
    let cmd = attr(rest, "cmd")?;
    let data = attr(rest, "data").unwrap_or_default();
    Some((cmd, data, well_spelt))
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(idx) = tag[from..].find(&needle) {
        let start = from + idx;
        let before = tag[..start].chars().last();
        if before.is_none_or(|c| c.is_whitespace()) {
            let v = &tag[start + needle.len()..];
            return v.find('"').map(|end| v[..end].to_string());
        }
        from = start + needle.len();
    }
    None
}

/// Each line of `content` with what lies inside `<!-- -->` comments removed.
pub fn visible_lines(content: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_comment = false;
    for line in content.lines() {
        let mut visible = String::new();
        let mut rest = line;
        loop {
            if in_comment {
                match rest.find("-->") {
                    Some(e) => {
                        rest = &rest[e + 3..];
                        in_comment = false;
                    }
                    None => break,
                }
            } else {
                match rest.find("<!--") {
                    Some(s) => {
                        visible.push_str(&rest[..s]);
                        rest = &rest[s + 4..];
                        in_comment = true;
                    }
                    None => {
                        visible.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push(visible);
    }
    out
}

/// Every directive of a file, skipping those inside `<!-- -->` comments.
pub fn parse(content: &str) -> Vec<Directive> {
    visible_lines(content)
        .iter()
        .enumerate()
        .filter_map(|(i, visible)| {
            let (cmd, data, well_spelt) = parse_line(visible)?;
            Some(Directive {
                line: i + 1,
                cmd,
                data,
                well_spelt,
            })
        })
        .collect()
}

/// Remove every definition of `name` made with `cmd` (the lines an `ensure` with the same
/// `cmd` wrote). Definitions by other commands stay: a stock `stun-set` line is not
/// switchyard's to remove.
pub fn remove(content: &str, cmd: &str, name: &str) -> String {
    let defs: Vec<usize> = parse(content)
        .into_iter()
        .filter(|d| d.cmd == cmd && d.data.split_once('=').map(|(n, _)| n) == Some(name))
        .map(|d| d.line)
        .collect();
    content
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| !defs.contains(&(i + 1)))
        .map(|(_, l)| l)
        .collect()
}

/// Ensure `name` is defined exactly once, by `cmd`, with `value`.
///
/// The first existing definition of `name` (by any setting command, or by a misspelt
/// look-alike) is replaced in place keeping its indentation; later ones are removed, since
/// the last definition would otherwise win. Without one, the line is added before the
/// closing `</include>` (or at the end).
pub fn ensure(
    content: &str,
    cmd: &str,
    name: &str,
    value: &str,
) -> Result<String, PreProcessError> {
    check(name, value)?;
    let wanted = line_for(cmd, name, value);
    let defs: Vec<usize> = parse(content)
        .into_iter()
        .filter(|d| {
            (SETTING_CMDS.contains(&d.cmd.as_str()) || !d.well_spelt)
                && d.data.split_once('=').map(|(n, _)| n) == Some(name)
        })
        .map(|d| d.line)
        .collect();
    let mut out = String::with_capacity(content.len() + wanted.len() + 8);
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    if defs.is_empty() {
        let close = lines.iter().rposition(|l| l.trim() == "</include>");
        let indent = lines
            .iter()
            .find(|l| l.trim_start().starts_with("<X-PRE-PROCESS"))
            .map(|l| &l[..l.len() - l.trim_start().len()])
            .unwrap_or("  ");
        for (i, l) in lines.iter().enumerate() {
            if Some(i) == close {
                out.push_str(indent);
                out.push_str(&wanted);
                out.push('\n');
            }
            out.push_str(l);
        }
        if close.is_none() {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&wanted);
            out.push('\n');
        }
        return Ok(out);
    }
    for (i, l) in lines.iter().enumerate() {
        let n = i + 1;
        if n == defs[0] {
            let indent = &l[..l.len() - l.trim_start().len()];
            let eol = if l.ends_with("\r\n") {
                "\r\n"
            } else if l.ends_with('\n') {
                "\n"
            } else {
                ""
            };
            out.push_str(indent);
            out.push_str(&wanted);
            out.push_str(eol);
        } else if !defs[1..].contains(&n) {
            out.push_str(l);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: &str = "<include>\n  <X-PRE-PROCESS cmd=\"set\" data=\"domain=$${local_ip_v4}\"/>\n  <!-- <X-PRE-PROCESS cmd=\"set\" data=\"external_rtp_ip=1.2.3.4\"/> -->\n  <X-PRE-PROCESS cmd=\"stun-set\" data=\"external_rtp_ip=stun:stun.freeswitch.org\"/>\n</include>\n";

    #[test]
    fn replaces_existing_definition_in_place() {
        let out = ensure(VARS, "set", "external_rtp_ip", "203.0.113.7").unwrap();
        assert_eq!(
            out,
            "<include>\n  <X-PRE-PROCESS cmd=\"set\" data=\"domain=$${local_ip_v4}\"/>\n  <!-- <X-PRE-PROCESS cmd=\"set\" data=\"external_rtp_ip=1.2.3.4\"/> -->\n  <X-PRE-PROCESS cmd=\"set\" data=\"external_rtp_ip=203.0.113.7\"/>\n</include>\n"
        );
        assert_eq!(
            ensure(&out, "set", "external_rtp_ip", "203.0.113.7").unwrap(),
            out,
            "idempotent"
        );
    }

    #[test]
    fn adds_missing_definition_before_include_end() {
        let out = ensure(VARS, "set", "outbound-sip-ip", "203.0.113.7").unwrap();
        assert!(
            out.ends_with(
                "  <X-PRE-PROCESS cmd=\"set\" data=\"outbound-sip-ip=203.0.113.7\"/>\n</include>\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn misspelt_directive_is_replaced_and_flagged() {
        let text = "<include>\n<XPREPROCESS cmd=\"stun-set\" data=\"external_sip_ip=1.2.3.4\"/>\n</include>\n";
        let d = parse(text);
        assert_eq!(d.len(), 1);
        assert!(!d[0].well_spelt);
        let out = ensure(text, "set", "external_sip_ip", "1.2.3.4").unwrap();
        assert!(out.contains("<X-PRE-PROCESS cmd=\"set\" data=\"external_sip_ip=1.2.3.4\"/>"));
        assert!(!out.contains("XPREPROCESS"));
    }

    #[test]
    fn refuses_values_the_preprocessor_would_break() {
        assert!(matches!(
            ensure(VARS, "set", "a", "x\"y"),
            Err(PreProcessError::BadValue { .. })
        ));
        assert!(matches!(
            ensure(VARS, "set", "a", "x\ny"),
            Err(PreProcessError::BadValue { .. })
        ));
        assert!(matches!(
            ensure(VARS, "set", "a b", "x"),
            Err(PreProcessError::BadName(_))
        ));
        // `&` and `<` are fine raw: data is not entity-decoded.
        assert!(ensure(VARS, "set", "a", "x&y<z")
            .unwrap()
            .contains("data=\"a=x&y<z\""));
    }
}
