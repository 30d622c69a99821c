//! Keeping secrets out of everything switchyard prints or stores.
//!
//! A value is secret when its variable name says so (`password`, `secret`, `token`, ...,
//! anywhere in the name, at any depth) or when it is the `value` of an XML `<param>` whose
//! name says so. [`Redactor`] replaces every occurrence of every secret, raw or
//! XML-escaped, so a secret embedded in a larger value is masked too.

use serde_json::Value;

/// Variables as the inventory holds them (name → JSON value).
type Vars = std::collections::BTreeMap<String, serde_json::Value>;

pub const MASK: &str = "********";

/// The largest secret file read (a `{file: PATH}` value, a vault key file). A secret is a
/// password, a key or a certificate chain (a few KiB); every secret is kept for the whole run and searched for in every line
/// switchyard prints, so a reference to the wrong file (a log, `/dev/zero`) is refused, not
/// read until memory runs out.
pub const MAX_SECRET_BYTES: u64 = 1024 * 1024;

/// A secret value. Its `Debug` never shows it; code that needs the value says so with
/// [`Secret::expose`], which makes every use greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(********)")
    }
}

const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "passphrase",
    "api_key",
    "apikey",
];

/// Whether a variable or parameter name marks its value as secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| n.contains(w))
}

/// Replaces known secret strings with [`MASK`].
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn from_vars(vars: &Vars) -> Redactor {
        let mut r = Redactor::default();
        for (k, v) in vars {
            r.collect(k, v, false);
        }
        r
    }

    fn collect(&mut self, key: &str, v: &Value, inherited: bool) {
        let secret = inherited || is_secret_name(key);
        match v {
            Value::String(s) if secret => self.add(s),
            Value::Number(n) if secret => self.add(&n.to_string()),
            Value::Array(a) => a.iter().for_each(|x| self.collect(key, x, secret)),
            Value::Object(o) => o.iter().for_each(|(k, x)| self.collect(k, x, secret)),
            _ => {}
        }
    }

    pub fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        for form in [secret.to_string(), crate::xml::escape(secret)] {
            if !self.secrets.contains(&form) {
                self.secrets.push(form);
            }
        }
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn add_secrets(&mut self, secrets: &[Secret]) {
        for s in secrets {
            self.add(s.expose());
        }
    }

    pub fn merge(&mut self, other: &Redactor) {
        for s in &other.secrets {
            self.add(s);
        }
    }

    /// Whether `text` holds one of the known secret values (not just a password-like param).
    pub fn contains_known(&self, text: &str) -> bool {
        self.secrets.iter().any(|s| text.contains(s.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Mask every string inside a JSON value, before it is serialized (a secret holding a
    /// `"` would no longer match once escaped).
    pub fn redact_value(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.redact(s),
            Value::Array(a) => a.iter_mut().for_each(|x| self.redact_value(x)),
            Value::Object(o) => o.values_mut().for_each(|x| self.redact_value(x)),
            _ => {}
        }
    }

    /// Mask every known secret, and the value of every password-like XML param.
    /// A secret of [`SHORT`] characters or more is masked wherever it appears, inside larger
    /// values too. A shorter one (a voicemail PIN, a careless `x`) is masked only as a whole
    /// token — not next to a letter, digit, `_` or `-` — so `x` never turns `switch.conf.xml`
    /// into `switch.conf.********ml`, while `value="4711"` still shows `value="********"`.
    /// (Short secrets are also the guessable ones; plans never carry a plain hash of them,
    /// see [`crate::digest`].)
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if !out.contains(s.as_str()) {
                continue;
            }
            out = if s.chars().count() >= SHORT {
                out.replace(s.as_str(), MASK)
            } else {
                replace_tokens(&out, s)
            };
        }
        mask_secret_params(&out)
    }
}

/// Secrets shorter than this are masked only as whole tokens ([`Redactor::redact`]).
pub const SHORT: usize = 6;

fn replace_tokens(text: &str, secret: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (i, _) in text.match_indices(secret) {
        let end = i + secret.len();
        // Judged on the original text around the match.
        if word(text[..i].chars().next_back()) || word(text[end..].chars().next()) {
            continue;
        }
        out.push_str(&text[copied..i]);
        out.push_str(MASK);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// `<param name="password" value="x"/>` → `value="********"`, whatever the source of `x`;
/// likewise `data="trunk_password=x"` in pre-process lines. Works on diff lines too, and on
/// anything that quotes configuration (FreeSWITCH answers, lint findings).
pub fn mask_secret_params(text: &str) -> String {
    if !text.contains("name=\"") && !text.contains("data=\"") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        out.push_str(&mask_line(line));
    }
    out
}

fn mask_line(line: &str) -> String {
    let mut l = line.to_string();
    // <param name="password" value="...">
    if let Some(ns) = l.find("name=\"") {
        let rest = &l[ns + 6..];
        if let Some(ne) = rest.find('"') {
            if is_secret_name(&rest[..ne]) {
                if let Some(vs) = l[ns..].find("value=\"").map(|i| ns + i + 7) {
                    if let Some(ve) = l[vs..].find('"').map(|i| vs + i) {
                        l.replace_range(vs..ve, MASK);
                    }
                }
            }
        }
    }
    // <X-PRE-PROCESS cmd="set" data="trunk_password=..."/>
    if let Some(ds) = l.find("data=\"").map(|i| i + 6) {
        if let Some(de) = l[ds..].find('"').map(|i| ds + i) {
            if let Some(eq) = l[ds..de].find('=').map(|i| ds + i) {
                if is_secret_name(&l[ds..eq]) && &l[eq + 1..de] != MASK {
                    l.replace_range(eq + 1..de, MASK);
                }
            }
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_nested_embedded_and_escaped_secrets() {
        let vars: Vars = serde_json::from_str(
            r#"{"trunk": {"password": "s3<cr\"t", "user": "u"}, "api_token": "tok123", "realm": "r"}"#,
        )
        .unwrap();
        let r = Redactor::from_vars(&vars);
        assert_eq!(
            r.redact("url=https://x/?t=tok123&u=u"),
            "url=https://x/?t=********&u=u"
        );
        assert_eq!(r.redact("v=\"s3&lt;cr&quot;t\""), "v=\"********\"");
        assert_eq!(r.redact("realm r"), "realm r");
    }

    /// The rule for short secrets: whole tokens only, so output stays readable.
    #[test]
    fn short_secrets_are_masked_as_whole_tokens_only() {
        let mut r = Redactor::default();
        r.add("x");
        r.add("4711");
        assert_eq!(r.redact("switch.conf.xml"), "switch.conf.xml");
        assert_eq!(
            r.redact("<variable name=\"vm\" value=\"4711\"/>"),
            "<variable name=\"vm\" value=\"********\"/>"
        );
        assert_eq!(r.redact("pin 4711, not 47110"), "pin ********, not 47110");
        assert_eq!(r.redact("a=x b=xy"), "a=******** b=xy");
    }

    #[test]
    fn masks_password_params_from_any_source() {
        let r = Redactor::default();
        let text = "    <param name=\"password\" value=\"literal\"/>\n    <param name=\"realm\" value=\"x\"/>\n";
        assert_eq!(r.redact(text), "    <param name=\"password\" value=\"********\"/>\n    <param name=\"realm\" value=\"x\"/>\n");
        assert_eq!(
            r.redact("-  <param name=\"password\" value=\"old\"/>\n"),
            "-  <param name=\"password\" value=\"********\"/>\n"
        );
        assert_eq!(
            r.redact("+<X-PRE-PROCESS cmd=\"set\" data=\"trunk_password=x\"/>\n"),
            "+<X-PRE-PROCESS cmd=\"set\" data=\"trunk_password=********\"/>\n"
        );
    }
}
