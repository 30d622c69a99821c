//! Text from a PBX made safe to print. Everything a PBX says (gateway names and states, event
//! headers, error answers) is controlled by whoever owns its `freeswitch` user: a `%0A` in an
//! event header or a `&#10;` in `sofia xmlstatus` decodes to a line break, which printed as
//! is forges a log line of its own (`watch: pbx-ams: gateway wavix is healthy again`), and
//! an escape sequence rewrites the operator's terminal. A leaf: anything may use it.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with every control character (C0, DEL, C1: line breaks, tabs, escapes) written as
/// `\n`, `\r`, `\t` or `\u{..}`, and a backslash doubled so that an escape cannot be faked;
/// borrowed when there is nothing to escape (the common case).
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Multi-line text from a PBX (a host error, a FreeSWITCH answer, a diff of a file it holds)
/// for a block whose every line after the first is indented by `indent`: line breaks stay
/// line breaks, but no line can start at the left margin (where a host's header or another
/// host's block would), and everything else [`printable`] escapes is escaped, tabs but for
/// being kept (they are common in conf files and drive nothing).
pub fn printable_block(s: &str, indent: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        for part in line.split_inclusive('\t') {
            let (body, tab) = match part.strip_suffix('\t') {
                Some(b) => (b, true),
                None => (part, false),
            };
            out.push_str(&printable(body));
            if tab {
                out.push('\t');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_line_or_drive_a_terminal() {
        assert!(matches!(printable("wavix REGED"), Cow::Borrowed(_)));
        assert_eq!(
            printable("x\nwatch: pbx-ams: gateway wavix is healthy again"),
            "x\\nwatch: pbx-ams: gateway wavix is healthy again"
        );
        assert_eq!(printable("a\r\x1b[2Jb\u{85}"), "a\\r\\u{1b}[2Jb\\u{85}");
        assert_eq!(printable("tab\there"), "tab\\there");
        // A literal backslash-n in the input stays distinguishable from an escaped newline.
        assert_eq!(printable("a\\nb"), "a\\\\nb");
        assert_eq!(printable("\u{7f}é"), "\\u{7f}é");
    }

    #[test]
    fn a_block_keeps_its_lines_indented_and_escapes_the_rest() {
        assert_eq!(
            printable_block("-ERR bad\npbx-ams [ok]\r\x1b[2J\tx", "    "),
            "-ERR bad\n    pbx-ams [ok]\\r\\u{1b}[2J\tx"
        );
    }
}
