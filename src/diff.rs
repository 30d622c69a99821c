//! Unified diffs of file changes, with secrets masked.

use similar::TextDiff;

use crate::secret::Redactor;

/// A unified diff of `old` → `new` (labelled with `label`), every secret masked.
///
/// The diff is computed on the real text and masked afterwards, so a line whose only
/// change is a password still shows as changed (`-...********` / `+...********`).
pub fn unified(label: &str, old: Option<&str>, new: &str, redactor: &Redactor) -> String {
    let old_text = old.unwrap_or("");
    let diff = TextDiff::from_lines(old_text, new);
    let before = if old.is_some() {
        format!("{label} (before)")
    } else {
        "/dev/null".to_string()
    };
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&before, &format!("{label} (after)"))
        .missing_newline_hint(true)
        .to_string();
    redactor.redact(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_change_is_shown_but_masked() {
        let mut r = Redactor::default();
        r.add("newsecret");
        let old = "<gateway name=\"wavix\">\n  <param name=\"password\" value=\"oldsecret\"/>\n  <param name=\"realm\" value=\"us.wavix.net\"/>\n</gateway>\n";
        let new = old.replace("oldsecret", "newsecret");
        let d = unified(
            "pbx1:/etc/freeswitch/sip_profiles/external/wavix.xml",
            Some(old),
            &new,
            &r,
        );
        insta::assert_snapshot!(d);
        assert!(!d.contains("oldsecret") && !d.contains("newsecret"));
    }
}
