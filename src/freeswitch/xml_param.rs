//! Setting `<param name=".." value=".."/>` in an existing XML file without reformatting it.
//!
//! Operators' files (and the stock ones: `switch.conf.xml` ships the RTP range commented
//! out, `external.xml` has `ext-rtp-ip`) are full of comments and layout that matter to
//! them, so this edits text, not a parsed tree: only the value attribute of the param (or
//! the one comment around it, or one inserted line) changes; every other byte stays.

use crate::xml::escape as xml_escape;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlParamError {
    #[error("no `<{0}>` element outside comments")]
    NoSection(String),
    #[error("`<{0}>` is not closed")]
    Unclosed(String),
    #[error("a `<param name=\"{0}\">` tag is not closed")]
    BadParam(String),
    #[error("`{0}` is not a parameter name (letters, digits, `-_.:` only)")]
    BadName(String),
    #[error("the file is not well-formed XML ({0}); refusing to edit it in place")]
    Malformed(String),
    #[error("the value of `{0}` holds a control character, which XML cannot carry")]
    BadValue(String),
}

/// Byte ranges the editor must not look into: comments, CDATA sections and processing
/// instructions (an unclosed one runs to the end). The flag marks comments.
fn comments(text: &str) -> Vec<(usize, usize, bool)> {
    const KINDS: [(&str, &str, bool); 3] = [
        ("<!--", "-->", true),
        ("<![CDATA[", "]]>", false),
        ("<?", "?>", false),
    ];
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let next = KINDS
            .iter()
            .filter_map(|(open, close, is_comment)| {
                text[from..]
                    .find(open)
                    .map(|i| (from + i, *open, *close, *is_comment))
            })
            .min_by_key(|x| x.0);
        let Some((start, open, close, is_comment)) = next else {
            break;
        };
        let end = text[start + open.len()..]
            .find(close)
            .map(|e| start + open.len() + e + close.len())
            .unwrap_or(text.len());
        out.push((start, end, is_comment));
        from = end;
    }
    out
}

fn in_any(ranges: &[(usize, usize, bool)], pos: usize) -> Option<(usize, usize)> {
    ranges
        .iter()
        .find(|(s, e, _)| pos >= *s && pos < *e)
        .map(|(s, e, _)| (*s, *e))
}

/// Find `<tag` (followed by `>`, `/` or whitespace) from `from`, outside comments.
fn find_open(text: &str, cmts: &[(usize, usize, bool)], tag: &str, from: usize) -> Option<usize> {
    let needle = format!("<{tag}");
    let mut at = from;
    while let Some(i) = text[at..].find(&needle) {
        let pos = at + i;
        let next = text[pos + needle.len()..].chars().next();
        if in_any(cmts, pos).is_none() && matches!(next, Some('>' | '/' | ' ' | '\t' | '\n' | '\r'))
        {
            return Some(pos);
        }
        at = pos + needle.len();
    }
    None
}

fn attr_range(tag: &str, name: &str) -> Option<(usize, usize)> {
    for quote in ['"', '\''] {
        let needle = format!("{name}={quote}");
        let mut from = 0;
        while let Some(i) = tag[from..].find(&needle) {
            let start = from + i;
            if tag[..start].ends_with(|c: char| c.is_whitespace()) {
                let vstart = start + needle.len();
                let vend = tag[vstart..].find(quote)? + vstart;
                return Some((vstart, vend));
            }
            from = start + needle.len();
        }
    }
    None
}

/// Value of `name` in an attribute list (as written, entities not decoded).
pub fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    attr_range(tag, name).map(|(s, e)| &tag[s..e])
}

/// Set `name` to `value` among the `<param>` children of the first `<section>` element.
///
/// 1. An active `<param name="NAME" ...>` exists: its `value` attribute is replaced.
/// 2. Only a comment holding nothing but that param exists (the stock
///    `<!-- <param name="rtp-start-port" value="16384"/> -->`): the comment is replaced by
///    the active param, in place.
/// 3. Otherwise a line is inserted before `</section>`, indented like its neighbours.
pub fn set_param(
    text: &str,
    section: &str,
    name: &str,
    value: &str,
) -> Result<String, XmlParamError> {
    // Names are matched as written in the file: one that needs escaping could never be found
    // again, and every run would insert it once more (found by the `xml_param` fuzz target).
    for n in [name, section] {
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            return Err(XmlParamError::BadName(n.to_string()));
        }
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(XmlParamError::BadValue(name.to_string()));
    }
    // A broken file has no reliable structure to edit (and FreeSWITCH would reject it anyway).
    if let Err(e) = crate::xml::well_formed(text) {
        return Err(XmlParamError::Malformed(format!(
            "line {}, column {}: {}",
            e.line, e.column, e.message
        )));
    }
    let cmts = comments(text);
    let open = find_open(text, &cmts, section, 0)
        .ok_or_else(|| XmlParamError::NoSection(section.into()))?;
    let close_tag = format!("</{section}>");
    let mut close = None;
    let mut at = open;
    while let Some(i) = text[at..].find(&close_tag) {
        let pos = at + i;
        if in_any(&cmts, pos).is_none() {
            close = Some(pos);
            break;
        }
        at = pos + close_tag.len();
    }
    let close = close.ok_or_else(|| XmlParamError::Unclosed(section.into()))?;
    let escaped = xml_escape(value);

    // 1. active params
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut found_active = false;
    let mut from = open;
    while let Some(p) = find_open(text, &cmts, "param", from) {
        if p >= close {
            break;
        }
        let end = text[p..]
            .find('>')
            .map(|e| p + e)
            .ok_or_else(|| XmlParamError::BadParam(name.into()))?;
        let tag = &text[p..end];
        if attr(tag, "name") == Some(name) {
            found_active = true;
            match attr_range(tag, "value") {
                Some((vs, ve)) => {
                    if tag[vs..ve] != escaped {
                        edits.push((p + vs, p + ve, escaped.clone()));
                    }
                }
                None => {
                    let ins = if tag.ends_with('/') { end - 1 } else { end };
                    let ins = text[..ins].trim_end().len();
                    edits.push((ins, ins, format!(" value=\"{escaped}\"")));
                }
            }
        }
        from = end;
    }
    let wanted_tag = format!("<param name=\"{}\" value=\"{escaped}\"/>", xml_escape(name));
    if found_active {
        let mut out = text.to_string();
        for (s, e, r) in edits.into_iter().rev() {
            out.replace_range(s..e, &r);
        }
        return Ok(out);
    }

    // 2. a comment holding only this param
    for (cs, ce, _) in cmts
        .iter()
        .copied()
        .filter(|(s, _, is_comment)| *is_comment && *s > open && *s < close)
    {
        let inner = text[cs + 4..ce.saturating_sub(3).max(cs + 4)].trim();
        if inner.starts_with("<param") && inner.ends_with("/>") && inner.matches('<').count() == 1 {
            let tag = &inner[..inner.len() - 2];
            if attr(tag, "name") == Some(name) {
                let mut out = text.to_string();
                out.replace_range(cs..ce, &wanted_tag);
                return Ok(out);
            }
        }
    }

    // 3. insert before </section>
    let line_start = text[..close].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let before_close = &text[line_start..close];
    let indent = text[open..line_start.max(open)]
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("<param"))
        .map(|l| l[..l.len() - l.trim_start().len()].to_string())
        .unwrap_or_else(|| format!("{before_close}  "));
    let mut out = String::with_capacity(text.len() + wanted_tag.len() + indent.len() + 1);
    if before_close.trim().is_empty() {
        out.push_str(&text[..line_start]);
        out.push_str(&indent);
        out.push_str(&wanted_tag);
        out.push('\n');
        out.push_str(&text[line_start..]);
    } else {
        out.push_str(&text[..close]);
        out.push_str(&wanted_tag);
        out.push_str(&text[close..]);
    }
    Ok(out)
}

/// Active (uncommented) `<param>` values in the first `<section>`, as written.
pub fn params(text: &str, section: &str) -> Vec<(String, String)> {
    let cmts = comments(text);
    let Some(open) = find_open(text, &cmts, section, 0) else {
        return Vec::new();
    };
    let close = text[open..]
        .find(&format!("</{section}>"))
        .map(|i| open + i)
        .unwrap_or(text.len());
    let mut out = Vec::new();
    let mut from = open;
    while let Some(p) = find_open(text, &cmts, "param", from) {
        if p >= close {
            break;
        }
        let end = text[p..].find('>').map(|e| p + e).unwrap_or(text.len());
        let tag = &text[p..end];
        if let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value")) {
            out.push((n.to_string(), v.to_string()));
        }
        from = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = "<configuration name=\"switch.conf\" description=\"Core Configuration\">\n  <settings>\n    <param name=\"colorize-console\" value=\"true\"/>\n    <!-- RTP port range -->\n    <!-- <param name=\"rtp-start-port\" value=\"16384\"/> -->\n    <!-- <param name=\"rtp-end-port\" value=\"32768\"/> -->\n    <param name=\"max-sessions\" value=\"1000\"/>\n  </settings>\n</configuration>\n";

    #[test]
    fn uncomments_a_commented_param() {
        let out = set_param(SWITCH, "settings", "rtp-start-port", "10000").unwrap();
        assert_eq!(
            out,
            SWITCH.replace(
                "<!-- <param name=\"rtp-start-port\" value=\"16384\"/> -->",
                "<param name=\"rtp-start-port\" value=\"10000\"/>"
            )
        );
        let again = set_param(&out, "settings", "rtp-start-port", "10000").unwrap();
        assert_eq!(again, out, "idempotent");
    }

    #[test]
    fn changes_an_active_value_only() {
        let out = set_param(SWITCH, "settings", "max-sessions", "2000").unwrap();
        assert_eq!(out, SWITCH.replace("value=\"1000\"", "value=\"2000\""));
    }

    #[test]
    fn inserts_an_absent_param_with_neighbours_indent() {
        let out = set_param(SWITCH, "settings", "ext-rtp-ip", "a\"<&b").unwrap();
        assert!(out.contains("    <param name=\"max-sessions\" value=\"1000\"/>\n    <param name=\"ext-rtp-ip\" value=\"a&quot;&lt;&amp;b\"/>\n  </settings>"), "{out}");
        assert!(roxmltree::Document::parse(&out).is_ok());
    }

    #[test]
    fn ignores_settings_inside_comments() {
        let text = "<x>\n<!-- <settings></settings> -->\n<settings>\n</settings>\n</x>\n";
        let out = set_param(text, "settings", "a", "1").unwrap();
        assert_eq!(out, "<x>\n<!-- <settings></settings> -->\n<settings>\n  <param name=\"a\" value=\"1\"/>\n</settings>\n</x>\n");
        assert_eq!(
            set_param("<x/>", "settings", "a", "1"),
            Err(XmlParamError::NoSection("settings".into()))
        );
        assert_eq!(
            set_param(text, "settings", "- <param name", "1"),
            Err(XmlParamError::BadName("- <param name".into()))
        );
        assert!(matches!(
            set_param("<x><settings></x>", "settings", "a", "1"),
            Err(XmlParamError::Malformed(_))
        ));
        // <settings> and </settings> on one line.
        assert_eq!(
            set_param("<x><settings></settings></x>", "settings", "a", "1").unwrap(),
            "<x><settings><param name=\"a\" value=\"1\"/></settings></x>"
        );
    }
}
