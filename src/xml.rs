//! XML as FreeSWITCH reads it: escaping values, and telling whether a file parses.
//!
//! A leaf module: templates, the FreeSWITCH editors and the secret masker all need it, and
//! none of them should depend on another for it.

/// Escape for XML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Where and why a file is not well-formed XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Check that `text` is well-formed XML as FreeSWITCH will see it.
///
/// FreeSWITCH's pre-processor consumes `X-PRE-PROCESS` lines (whose `data` is raw and may
/// hold `&` or `<`) and drops lines with `<?`, so those are blanked before parsing, keeping
/// line numbers.
pub fn well_formed(text: &str) -> Result<(), Malformed> {
    let cleaned: String = text
        .split_inclusive('\n')
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("<X-PRE-PROCESS") || t.starts_with("<?") {
                if l.ends_with('\n') {
                    "\n"
                } else {
                    ""
                }
            } else {
                l
            }
        })
        .collect();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1_000_000,
        ..Default::default()
    };
    match roxmltree::Document::parse_with_options(&cleaned, opts) {
        Ok(_) => Ok(()),
        Err(e) => {
            let pos = e.pos();
            Err(Malformed {
                line: pos.row,
                column: pos.col,
                message: e.to_string(),
            })
        }
    }
}
