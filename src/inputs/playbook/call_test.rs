//! `call_tests:` of a play: real test calls placed on each PBX after its change is applied
//! and verified (`switchyard call` for each; a failed one rolls the host back), and the
//! numbers no test call may ever dial.

use schemars::JsonSchema;
use serde::Deserialize;

use super::Scalar;
use crate::inputs::inventory::Vars;

/// Emergency numbers no test call dials, whatever the play says: those of the numbering
/// plans the shipped playbook has and of the most common countries. A play's own
/// (`numbering_plans.*.emergency`) are refused too.
pub const EMERGENCY: &[&str] = &[
    "911", "112", "999", "000", "110", "118", "119", "100", "101", "102", "108", "933", "08",
    "061", "062", "063", "911911",
];

/// The most a play may spend on its test calls per host (`call_test_seconds`).
pub const MAX_CALL_TEST_SECONDS: u64 = 600;

/// One test call.
#[derive(Debug, Clone, Deserialize, serde::Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallTest {
    /// Shown in reports.
    pub name: String,
    /// The directory user the call is placed as.
    pub from: Scalar,
    /// The number as that user dials it, quoted (`"+12125550100"`): never an emergency
    /// number. Either this or `dial_did`.
    #[serde(default)]
    pub dial: String,
    /// One of the PBX's own DIDs (one of its `did_routes`), dialled out through the trunk
    /// so that the provider brings it back inbound: it must ring the user `rings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dial_did: Option<String>,
    /// With `dial_did`: the directory user the DID must ring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rings: Option<Scalar>,
    /// `answered` (default: answered with RTP both ways) or `refused` (not answered).
    /// With `dial_did`, `rings` says what is expected instead.
    #[serde(default)]
    pub expect: CallExpect,
}

impl CallTest {
    /// The number dialled: `dial`, or the DID of `dial_did`.
    pub fn number(&self) -> &str {
        self.dial_did.as_deref().unwrap_or(&self.dial)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallExpect {
    #[default]
    Answered,
    Refused,
}

/// A number as a user dials it: an optional `+`, then 2 to 20 digits.
pub fn valid_number(n: &str) -> bool {
    let d = n.strip_prefix('+').unwrap_or(n);
    (2..=20).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
}

/// A directory user id that can go into an originate string as it is.
pub fn valid_user(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Whether `number` is one of [`EMERGENCY`] or of `more` (as dialled, or after a `+`).
pub fn is_emergency(number: &str, more: &[String]) -> bool {
    let d = number.strip_prefix('+').unwrap_or(number);
    EMERGENCY.contains(&d) || more.iter().any(|e| e == d)
}

/// Every emergency number of every numbering plan in `vars` (`numbering_plans.*.emergency`).
pub fn emergency_numbers(vars: &Vars) -> Vec<String> {
    let Some(plans) = vars.get("numbering_plans").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    plans
        .values()
        .filter_map(|p| p.get("emergency")?.as_array())
        .flatten()
        .filter_map(|n| match n {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

/// The E.164 digits (no `+`) the host's numbering plan (`numbering_plans[numbering_plan]`)
/// turns `number` into, by the shipped dialplan's outbound routes in their order: `+` and
/// 7 to 15 digits; the international prefix and 7 to 15 digits; the national prefix and a
/// national number (country code added); a national number alone where
/// `national_without_prefix`. `None`: no route would send it to the trunk.
pub fn e164(number: &str, vars: &Vars) -> Option<String> {
    let plan = vars
        .get("numbering_plan")
        .and_then(|n| n.as_str())
        .and_then(|n| vars.get("numbering_plans")?.get(n))?;
    let field = |k: &str| match plan.get(k)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let international = |d: &str| {
        (7..=15).contains(&d.len()) && !d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit())
    };
    if let Some(d) = number.strip_prefix('+') {
        return international(d).then(|| d.to_string());
    }
    if let Some(d) = field("international_prefix")
        .and_then(|p| number.strip_prefix(p.as_str()).map(str::to_string))
    {
        if international(&d) {
            return Some(d);
        }
    }
    let cc = field("country_code")?;
    let national =
        pcre2::bytes::Regex::new(&format!("^(?:{})$", field("national_number")?)).ok()?;
    let is_national = |d: &str| national.is_match(d.as_bytes()).unwrap_or(false);
    if let Some(d) =
        field("national_prefix").and_then(|p| number.strip_prefix(p.as_str()).map(str::to_string))
    {
        if is_national(&d) {
            return Some(format!("{cc}{d}"));
        }
    }
    let short = plan
        .get("national_without_prefix")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    (short && is_national(number)).then(|| format!("{cc}{number}"))
}

/// The DIDs of `did_routes` in `vars`, as digits (what the shipped dialplan's inbound
/// routes match, `+` dropped).
pub fn did_numbers(vars: &Vars) -> Vec<String> {
    let Some(routes) = vars.get("did_routes").and_then(|r| r.as_array()) else {
        return Vec::new();
    };
    routes
        .iter()
        .filter_map(|r| match r.get("number")? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .map(|n| n.chars().filter(char::is_ascii_digit).collect())
        .collect()
}

/// The first `dial_did` of `tests` that is not a DID of `vars`'s `did_routes`.
pub fn foreign_did<'a>(tests: &'a [CallTest], vars: &Vars) -> Option<&'a str> {
    let dids = did_numbers(vars);
    tests
        .iter()
        .filter_map(|t| t.dial_did.as_deref())
        .find(|d| {
            let digits: String = d.chars().filter(char::is_ascii_digit).collect();
            !dids.contains(&digits)
        })
}

/// Where `dial_did: DID` is written in a playbook's text: (line, column) of the value,
/// 1-based, for a `file:line:col` error (the value found as written, quoted or not).
pub fn locate_dial_did(text: &str, did: &str) -> Option<(usize, usize)> {
    for (n, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(i) = line[from..].find("dial_did:") {
            let start = from + i + "dial_did:".len();
            let rest = &line[start..];
            let value = rest.trim_start();
            let col = start + (rest.len() - value.len());
            let bare = value.trim_start_matches(['"', '\'']);
            if bare.starts_with(did) && !bare[did.len()..].starts_with(|c: char| c.is_ascii_digit())
            {
                return Some((n + 1, col + 1));
            }
            from = start;
        }
    }
    None
}

/// A play's call tests, checked when the playbook is read: each a user and a number that
/// can be dialled, none an emergency number, names unique, and a stated total duration.
pub fn check(tests: &[CallTest], seconds: Option<u64>, vars: &Vars) -> Result<(), String> {
    if tests.is_empty() {
        return Ok(());
    }
    match seconds {
        None => {
            return Err(
                "`call_tests` needs `call_test_seconds`: the most the test calls may take per host, in seconds"
                    .into(),
            )
        }
        Some(s) if s == 0 || s > MAX_CALL_TEST_SECONDS => {
            return Err(format!(
                "call_test_seconds `{s}` is not between 1 and {MAX_CALL_TEST_SECONDS}"
            ))
        }
        Some(_) => {}
    }
    let emergency = emergency_numbers(vars);
    for (i, t) in tests.iter().enumerate() {
        let what = format!("call test `{}`", t.name);
        if tests[..i].iter().any(|o| o.name == t.name) {
            return Err(format!("{what}: two call tests have this name"));
        }
        if !valid_user(&t.from.0) {
            return Err(format!(
                "{what}: `from` is a directory user id (letters, digits, `._-`)"
            ));
        }
        match (&t.dial_did, &t.rings) {
            (Some(_), _) if !t.dial.is_empty() => {
                return Err(format!("{what}: `dial` or `dial_did`, not both"))
            }
            (Some(_), Some(u)) if valid_user(&u.0) => {}
            (Some(_), _) => {
                return Err(format!(
                    "{what}: `dial_did` needs `rings`: the directory user the DID must ring"
                ))
            }
            (None, Some(_)) => return Err(format!("{what}: `rings` goes with `dial_did`")),
            (None, None) => {}
        }
        let field = if t.dial_did.is_some() {
            "dial_did"
        } else {
            "dial"
        };
        if !valid_number(t.number()) {
            return Err(format!(
                "{what}: `{field}` is an optional `+` and 2 to 20 digits, quoted"
            ));
        }
        if is_emergency(t.number(), &emergency) {
            return Err(format!(
                "{what}: {} is an emergency number; a test call never dials one",
                t.number()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dial: &str) -> CallTest {
        CallTest {
            name: "x".into(),
            from: Scalar("1000".into()),
            dial: dial.into(),
            dial_did: None,
            rings: None,
            expect: CallExpect::Answered,
        }
    }

    /// As the shipped dialplan normalises (playbooks/wavix.yml's `us` and `gb` plans).
    #[test]
    fn numbers_in_e164_by_the_numbering_plan() {
        let vars = |plan: &str| -> Vars {
            serde_json::from_value(serde_json::json!({
                "numbering_plan": plan,
                "numbering_plans": {
                    "us": {"country_code": "1", "international_prefix": "011", "national_prefix": "1",
                           "national_number": "[2-9]\\d{9}", "national_without_prefix": true},
                    "gb": {"country_code": 44, "international_prefix": "00", "national_prefix": "0",
                           "national_number": "[1-9]\\d{8,9}", "national_without_prefix": false}
                }
            }))
            .unwrap()
        };
        let us = vars("us");
        for (n, want) in [
            ("2125550100", Some("12125550100")),
            ("12125550100", Some("12125550100")),
            ("+12125550100", Some("12125550100")),
            ("011442079460000", Some("442079460000")),
            ("1000", None),
            ("+0123", None),
        ] {
            assert_eq!(e164(n, &us).as_deref(), want, "{n}");
        }
        let gb = vars("gb");
        assert_eq!(e164("02079460000", &gb).as_deref(), Some("442079460000"));
        assert_eq!(e164("2079460000", &gb), None);
        assert_eq!(e164("2125550100", &Vars::new()), None);
    }

    #[test]
    fn a_dial_did_must_be_a_did_of_the_host_and_is_located() {
        let vars: Vars = serde_json::from_value(serde_json::json!({
            "did_routes": [{"number": "+1 415 555 0190", "extension": "1000"}, {"number": 14155550191_u64}]
        }))
        .unwrap();
        let did = |d: &str| CallTest {
            dial: String::new(),
            dial_did: Some(d.into()),
            rings: Some(Scalar("1000".into())),
            ..t("")
        };
        assert_eq!(
            foreign_did(&[did("14155550190"), did("+14155550191")], &vars),
            None
        );
        assert_eq!(
            foreign_did(&[did("14155550199")], &vars),
            Some("14155550199")
        );
        let text = "- hosts: pbx\n  call_tests:\n    - {name: a, from: \"1000\", dial_did: \"141555501900\", rings: \"1000\"}\n    - {name: b, from: \"1000\", dial_did: \"14155550199\", rings: \"1000\"}\n";
        assert_eq!(locate_dial_did(text, "14155550199"), Some((4, 41)));
        assert!(check(&[did("14155550199")], Some(60), &vars).is_ok());
        let mut no_rings = did("14155550199");
        no_rings.rings = None;
        assert!(check(&[no_rings], Some(60), &vars)
            .unwrap_err()
            .contains("needs `rings`"));
        let mut both = did("14155550199");
        both.dial = "2125550100".into();
        assert!(check(&[both], Some(60), &vars)
            .unwrap_err()
            .contains("not both"));
    }

    #[test]
    fn emergency_numbers_and_a_missing_budget_are_refused() {
        let vars: Vars = serde_json::from_value(serde_json::json!({
            "numbering_plans": {"nanp": {"emergency": ["911"]}, "xx": {"emergency": ["117", 17]}}
        }))
        .unwrap();
        assert!(check(&[t("12125550100")], Some(60), &vars).is_ok());
        for n in ["911", "+112", "117", "17", "000"] {
            let e = check(&[t(n)], Some(60), &vars).unwrap_err();
            assert!(e.contains("emergency"), "{n}: {e}");
        }
        assert!(check(&[t("12125550100")], None, &vars)
            .unwrap_err()
            .contains("call_test_seconds"));
        assert!(check(&[t("12125550100")], Some(601), &vars).is_err());
        assert!(check(&[t("12 3")], Some(60), &vars).is_err());
    }
}
