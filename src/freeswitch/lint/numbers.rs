//! What a number or a password looks like: the E.164 shape providers deliver and expect,
//! and the passwords a registration scanner tries first. No FreeSWITCH source makes these
//! true; the Wavix guide's table of wrongly formatted numbers is the test case.

/// Country codes whose national numbers drop their trunk `0` in E.164 (not Italy's 39).
const TRUNK_ZERO_CCS: [&str; 18] = [
    "44", "49", "33", "31", "32", "41", "43", "45", "46", "47", "34", "61", "64", "27", "91", "81",
    "86", "353",
];

/// E.164 without `+`: country code first, 8 to 15 digits, never a leading 0.
pub(super) fn e164_problem(num: &str) -> Option<String> {
    let n = num.trim_start_matches('+');
    if n.chars()
        .any(|c| c == ' ' || c == '-' || c == '(' || c == ')')
    {
        return Some("contains spaces or punctuation".into());
    }
    if !n.chars().all(|c| c.is_ascii_digit()) {
        return None; // not a number: a variable or a pattern
    }
    if n.starts_with("00") {
        return Some("starts with the international prefix `00`".into());
    }
    if n.starts_with("011") && n.len() > 11 {
        return Some("starts with the US international prefix `011`".into());
    }
    if n.starts_with('0') {
        return Some("starts with a national trunk prefix `0` (no country code)".into());
    }
    if n.len() == 10 && matches!(n.as_bytes()[0], b'2'..=b'9') && n.as_bytes()[1] != b'9' {
        return Some(
            "looks like a 10-digit North American national number without the country code `1`"
                .into(),
        );
    }
    for cc in TRUNK_ZERO_CCS {
        if n.len() > cc.len() + 1 && n.starts_with(cc) && n.as_bytes()[cc.len()] == b'0' {
            return Some(format!(
                "keeps the national trunk prefix `0` after the country code `{cc}`"
            ));
        }
    }
    if n.len() < 8 || n.len() > 15 {
        return Some(format!(
            "has {} digits (E.164 numbers have 8 to 15)",
            n.len()
        ));
    }
    None
}

/// How to write `num` in E.164, when the mistake is one of the usual ones.
pub(super) fn e164_fix(num: &str) -> String {
    let n = num
        .trim_start_matches('+')
        .replace([' ', '-', '(', ')'], "");
    if let Some(r) = n.strip_prefix("00") {
        format!("write it as `{r}` (E.164 digits, country code first)")
    } else if let Some(cc) = TRUNK_ZERO_CCS
        .iter()
        .find(|cc| n.len() > cc.len() + 1 && n.starts_with(**cc) && n.as_bytes()[cc.len()] == b'0')
    {
        format!(
            "write it as `{cc}{}` (drop the 0 after the country code)",
            &n[cc.len() + 1..]
        )
    } else if n.len() == 10 && !n.starts_with('0') {
        format!("write it as `1{n}` if it is a US/Canada number")
    } else {
        "write the full international number: country code, then the national number without its leading 0".into()
    }
}

/// Why a password is weak, if it is: empty, a placeholder left from an example, a value
/// from the examples everybody copies, or all digits shorter than 8 (a registration
/// scanner tries those first).
pub(super) fn weak_password(v: &str) -> Option<&'static str> {
    let lower = v.to_ascii_lowercase();
    if v.is_empty() {
        Some("empty")
    } else if v == "SET_EXTENSION_PASSWORD" || v.starts_with("YOUR_") || lower.contains("changeme")
    {
        Some("a placeholder")
    } else if [
        "password",
        "secret",
        "pass",
        "admin",
        "freeswitch",
        "fusionpbx",
    ]
    .contains(&lower.as_str())
    {
        Some("a common word")
    } else if v.len() < 8 && v.bytes().all(|b| b.is_ascii_digit()) {
        Some("only digits, fewer than 8")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's own table of wrongly formatted numbers, and its troubleshooting examples.
    #[test]
    fn e164() {
        assert!(e164_problem("6561223344")
            .unwrap()
            .contains("country code `1`"));
        assert!(e164_problem("020 1122 3344").unwrap().contains("spaces"));
        assert!(e164_problem("0041797000777").unwrap().contains("`00`"));
        assert!(e164_problem("9085594899").is_some());
        // The guide's troubleshooting example for the UK keeps the trunk 0.
        assert!(e164_problem("4408001218915")
            .unwrap()
            .contains("trunk prefix `0`"));
        assert_eq!(
            e164_fix("4408001218915"),
            "write it as `448001218915` (drop the 0 after the country code)"
        );
        assert_eq!(
            e164_fix("0041797000777"),
            "write it as `41797000777` (E.164 digits, country code first)"
        );
        for ok in [
            "16561223344",
            "442011223344",
            "41797000777",
            "19085594899",
            "448001218915",
            "16468097065",
            "390612345678",
        ] {
            assert!(e164_problem(ok).is_none(), "{ok}");
        }
    }
}
