//! Unified diffs of file changes, with secrets masked.

use similar::TextDiff;

use crate::secret::Redactor;

/// A unified diff of `old` → `new` (labelled with `label`), every secret masked.
///
/// The diff is computed on the real text and masked afterwards, so a line whose only
/// change is a password still shows as changed: such a `-`/`+` pair, identical once masked,
/// is shown as one line marked `~` and ending `(secret changed)`, not as two lines that
/// look the same. (The diff is for reading: a masked diff can never be applied anyway.)
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
    mark_secret_changes(&redactor.redact(&text))
}

/// Fold each `-` line whose `+` counterpart (same place in the next run of `+` lines) is
/// identical after masking into one `~ ... (secret changed)` line.
fn mark_secret_changes(diff: &str) -> String {
    let lines: Vec<&str> = diff.split_inclusive('\n').collect();
    let mut out = String::with_capacity(diff.len());
    let mut i = 0;
    while i < lines.len() {
        let is_del = |l: &str| l.starts_with('-') && !l.starts_with("---");
        let is_add = |l: &str| l.starts_with('+') && !l.starts_with("+++");
        if !is_del(lines[i]) {
            out.push_str(lines[i]);
            i += 1;
            continue;
        }
        let dels = lines[i..].iter().take_while(|l| is_del(l)).count();
        let adds = lines[i + dels..].iter().take_while(|l| is_add(l)).count();
        let (del, add) = (&lines[i..i + dels], &lines[i + dels..i + dels + adds]);
        let same = |k: usize| k < adds && k < dels && del[k][1..] == add[k][1..];
        for (k, l) in del.iter().enumerate() {
            if same(k) {
                let body = l[1..].trim_end_matches('\n');
                out.push_str(&format!("~{body}  (secret changed)\n"));
            } else {
                out.push_str(l);
            }
        }
        for (k, l) in add.iter().enumerate() {
            if !same(k) {
                out.push_str(l);
            }
        }
        i += dels + adds;
    }
    out
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
        assert!(
            d.contains("~  <param name=\"password\" value=\"********\"/>  (secret changed)\n"),
            "{d}"
        );
        // A line that really changed around a secret stays a -/+ pair.
        let both = old
            .replace("oldsecret", "newsecret")
            .replace("us.wavix", "nl.wavix");
        let d = unified("x", Some(old), &both, &r);
        assert!(d.contains("-  <param name=\"realm\" value=\"us.wavix.net\"/>\n+  <param name=\"realm\" value=\"nl.wavix.net\"/>\n"), "{d}");
        // More lines added than removed (and the reverse): nothing lost, nothing invented.
        let grown = format!("{old}<extra/>\n<more/>\n").replacen("<gateway", "<x/>\n<gateway", 1);
        let d = unified("x", Some(old), &grown, &r);
        assert!(d.contains("+<x/>\n") && d.contains("+<more/>\n"), "{d}");
        let d = unified("x", Some(&grown), old, &r);
        assert!(d.contains("-<x/>\n") && d.contains("-<more/>\n"), "{d}");
        let d = unified("x", Some("a\nb\n"), "c\nd\ne\n", &r);
        let added = d
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"));
        assert_eq!(added.count(), 3, "{d}");
    }
}
