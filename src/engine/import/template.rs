//! A conf file as a template: its secrets (and, across hosts, the values its copies differ
//! in) taken out into variables, everything else printed back byte for byte.

/// Whether a `<param>`/`<variable>` name or a pre-process variable holds a secret: the
/// names the masker treats as secret (`password`, `secret`, `token`, ...), plus digest
/// passwords (`a1-hash`), database DSNs (which carry credentials), PINs, Erlang cookies and
/// pre-shared keys.
pub fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    crate::secret::is_secret_name(&n)
        || n.contains("a1-hash")
        || n.ends_with("dsn")
        || n == "pin"
        || n.ends_with("-pin")
        || n.ends_with("_pin")
        || n.contains("cookie")
        || n == "psk"
        || n.ends_with("-psk")
}

/// Every attribute of a tag's text (`<remote host="h" password="p"/>`): its name and the
/// byte range of its value.
fn attributes(tag: &str) -> Vec<(&str, usize, usize)> {
    let b = tag.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // A name: after whitespace, up to `=` (blanks around it allowed), then a quote.
        if !(i > 0
            && b[i - 1].is_ascii_whitespace()
            && (b[i].is_ascii_alphanumeric() || b[i] == b'_'))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = &tag[start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&q) = b.get(i).filter(|q| matches!(q, b'"' | b'\'')) else {
            continue;
        };
        let Some(len) = tag[i + 1..].find(q as char) else {
            break;
        };
        out.push((name, i + 1, i + 1 + len));
        i += len + 2;
    }
    out
}

/// A value that only refers to another variable (`$${default_password}`) is no secret, nor
/// is a switch (`allow-empty-password-auth` = `true`): both stay in the template, readable.
/// Anything else under a secret-looking name is taken out: a setting vaulted for nothing
/// costs readability, a password left in a template would leak.
fn is_reference(v: &str) -> bool {
    let switch = ["true", "false", "yes", "no", "on", "off"];
    v.is_empty() || v.contains("${") || switch.iter().any(|w| v.eq_ignore_ascii_case(w))
}

/// Every value in `text`'s tags, named: a `<param>`/`<variable>`'s `value` by its `name`
/// (`ext-rtp-ip`), the value part of an `X-PRE-PROCESS` `data="NAME=VALUE"` by NAME, any
/// other attribute by its own name (`<remote password="..."/>`). Tags inside comments count
/// too (a real password in a comment is still a password).
pub(super) fn value_spans(text: &str) -> Vec<(usize, usize, String)> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find('<').map(|i| i + from) {
        from = i + 1;
        let end = text[from..]
            .find(['<', '>'])
            .map_or(text.len(), |e| from + e);
        let tag = &text[i..end];
        let attrs = attributes(tag);
        let get = |want: &str| attrs.iter().find(|(n, _, _)| *n == want);
        let element = tag[1..]
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let mut own = "";
        if element == "X-PRE-PROCESS" {
            own = "data";
            if let Some((_, s, e)) = get("data") {
                let data = &tag[*s..*e];
                match data.find('=') {
                    Some(eq) => spans.push((i + s + eq + 1, i + e, data[..eq].trim().to_string())),
                    None => spans.push((i + s, i + e, "data".to_string())),
                }
            }
        } else if matches!(element, "param" | "variable") {
            if let (Some((_, ns, ne)), Some((_, vs, ve))) = (get("name"), get("value")) {
                own = "value";
                spans.push((i + vs, i + ve, tag[*ns..*ne].to_string()));
            }
        }
        for (name, s, e) in &attrs {
            if *name != own {
                spans.push((i + s, i + e, name.to_string()));
            }
        }
    }
    spans.sort();
    spans.dedup_by(|b, a| b.0 < a.1);
    spans
}

/// The spans of secret values in `text`: the [`value_spans`] whose name is secret, unless
/// the value only refers to another variable or is a switch.
fn secret_spans(text: &str) -> Vec<(usize, usize, String)> {
    value_spans(text)
        .into_iter()
        .filter(|(s, e, name)| is_secret_param(name) && !is_reference(&text[*s..*e]))
        .collect()
}

/// `text` as a lowercase identifier (`sip_profiles/external/wavix.xml` →
/// `sip_profiles_external_wavix`).
pub(super) fn slug(text: &str) -> String {
    let mut s = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('_') {
            s.push('_');
        }
    }
    s.trim_matches('_').to_string()
}

/// Variable names the inventory loader or the template context give a meaning (how a host
/// is reached, its conf root, `item`): an imported variable never takes one of them.
const RESERVED: [&str; 10] = [
    "ansible_",
    "freeswitch_",
    "ssh_",
    "fs_cli",
    "command_timeout",
    "become",
    "connection",
    "inventory_hostname",
    "group_names",
    "item",
];

/// The variable for value `name` of the file whose slug is `stem`: `vars_default_password`;
/// prefixed `conf_` where it would not be an identifier, or would take a name with a meaning (`freeswitch.xml`'s `conf-root`
/// would otherwise become `freeswitch_conf_root`, and move the host's conf root).
pub(super) fn var_name(stem: &str, name: &str) -> String {
    let v = format!("{stem}_{}", slug(name));
    // A name may not start with a digit either (`1000.xml` at the top of the tree).
    if RESERVED.iter().any(|r| v.starts_with(r)) || v.starts_with(|c: char| c.is_ascii_digit()) {
        format!("conf_{v}")
    } else {
        v
    }
}

/// Text that minijinja prints as it is: every `{` that could open a tag (`{{`, `{%`, `{#`,
/// or a `{` right before a printed variable) is written `{{ "{" }}`.
fn jinja_literal(s: &str, out: &mut String) {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '{' && matches!(chars.peek(), None | Some('{' | '%' | '#')) {
            out.push_str("{{ \"{\" }}");
        } else {
            out.push(c);
        }
    }
}

/// XML entities back to text (the five predefined ones).
pub(super) fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The template for file `rel` and its secrets (variable, value). A value kept as the text
/// it is (`&amp;` and all) when XML escaping of the plain text would not print it back
/// byte for byte: then printed `|safe`.
pub fn templatize(rel: &str, text: &str) -> (String, Vec<(String, String)>) {
    let stem = slug(rel.strip_suffix(".xml").unwrap_or(rel));
    let mut out = String::with_capacity(text.len());
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut at = 0;
    for (s, e, name) in secret_spans(text) {
        jinja_literal(&text[at..s], &mut out);
        let base = var_name(&stem, &name);
        let mut var = base.clone();
        let mut k = 1;
        while secrets.iter().any(|(v, _)| *v == var) {
            k += 1;
            var = format!("{base}_{k}");
        }
        let raw = &text[s..e];
        let plain = xml_unescape(raw);
        if crate::xml::escape(&plain) == raw {
            out.push_str(&format!("{{{{ {var} }}}}"));
            secrets.push((var, plain));
        } else {
            out.push_str(&format!("{{{{ {var} | safe }}}}"));
            secrets.push((var, raw.to_string()));
        }
        at = e;
    }
    jinja_literal(&text[at..], &mut out);
    (out, secrets)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub(in crate::engine::import) fn render(
        template: &str,
        secrets: &[(String, String)],
    ) -> String {
        let dir = std::env::temp_dir().join(format!(
            "sy-import-{}-{}",
            std::process::id(),
            slug(&template[..template.len().min(20)])
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("t.xml"), template).unwrap();
        let mut t = crate::inputs::template::Templates::new(vec![dir.clone()]);
        let ctx: BTreeMap<&str, &str> = secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        use crate::inputs::template::FromSerde;
        let out = t
            .render_file("t.xml", &minijinja::value::Value::from_serde(ctx))
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    /// Every secret comes out into a variable, the template prints the file back byte for
    /// byte (jinja-looking text, escaped values and references included).
    #[test]
    fn templates_print_the_file_back_without_its_secrets() {
        let text = "<include>\n  <X-PRE-PROCESS cmd=\"set\" data=\"default_password=S3cr&t\"/>\n  <X-PRE-PROCESS cmd=\"set\" data=\"domain=$${local_ip_v4}\"/>\n  <!-- {{ not a tag }} {% neither %} {# nor #} { -->\n  <gateway name=\"g\">\n    <param name=\"password\" value=\"p&amp;w&apos;d\"/>\n    <param name = 'vm-password' value = '4711' />\n    <param name=\"password\" value=\"$${default_password}\"/>\n    <param name=\"realm\" value=\"sip.example.com\"/>\n    <param name=\"allow-empty-password-auth\" value=\"true\"/>\n    <param name=\"password\" value=\"it's\"/>\n  </gateway>\n  <!-- <remote name=\"t\" host=\"h\" password=\"Remote-Pw\" interval=\"1\"/> -->\n  <param name=\"cookie\" value=\"Erl-Cookie\"/>\n{</include>\n";
        let (template, secrets) = templatize("sip_profiles/external/g.xml", text);
        let names: Vec<&str> = secrets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "sip_profiles_external_g_default_password",
                "sip_profiles_external_g_password",
                "sip_profiles_external_g_vm_password",
                "sip_profiles_external_g_password_2",
                "sip_profiles_external_g_password_3",
                "sip_profiles_external_g_cookie",
            ]
        );
        assert_eq!(secrets[1].1, "p&w'd");
        // A name with a meaning to the loader is never taken.
        let (_, s) = templatize(
            "freeswitch.xml",
            "<x><param name=\"password\" value=\"p1\"/></x>\n",
        );
        assert_eq!(s[0].0, "conf_freeswitch_password");
        let top = "<x><param name=\"password\" value=\"p1\"/></x>\n";
        let (t, s) = templatize("1000.xml", top);
        assert_eq!(s[0].0, "conf_1000_password");
        assert_eq!(render(&t, &s), top);
        for s in [
            "S3cr&t",
            "p&amp;w",
            "p&w",
            "4711",
            "it's",
            "Remote-Pw",
            "Erl-Cookie",
        ] {
            assert!(!template.contains(s), "{s} in {template}");
        }
        assert!(template.contains("$${default_password}"));
        assert_eq!(render(&template, &secrets), text);
    }
}
