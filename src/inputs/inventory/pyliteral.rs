//! Python literals, as ansible-core's INI inventory reads every value: `ast.literal_eval`
//! when that succeeds, else the text as it is (ini.py `_parse_value`).
//!
//! So `8080` is a number, `True` a boolean, `'a b'` the string inside the quotes, `[1, 2]`
//! a list, and `0640`, `yes` or `ntp.example.com` stay text (Python refuses them as
//! literals). A Python comment after a literal is part of Python's syntax, which is why
//! `http_port=8080 # all members` in a `[group:vars]` section is the number 8080 while
//! `proxy=p.example.com # note` keeps its comment: that text is no literal at all.
//!
//! What JSON cannot hold is refused as a literal, so the value stays text: complex numbers,
//! integers beyond 64 bits, and bytes that are not UTF-8. Nesting is bounded.

use serde_json::{Map, Value};

/// How deeply lists and mappings may nest in one value (Python's own parser stops near 200).
const MAX_DEPTH: usize = 64;

/// `ast.literal_eval(text)`, as JSON; `None` where Python would raise.
pub(super) fn literal_eval(text: &str) -> Option<Value> {
    // literal_eval strips leading spaces and tabs itself.
    let mut p = Parser {
        s: text.trim_start_matches([' ', '\t']).as_bytes(),
        text: text.trim_start_matches([' ', '\t']),
        i: 0,
        depth: 0,
    };
    let v = p.tuple_or_value(None)?;
    p.blank();
    (p.i == p.s.len()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Spaces, and a comment up to the end of the line (one logical line: INI values).
    fn blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\x0c' => self.i += 1,
                b'#' => self.i = self.s.len(),
                _ => break,
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.blank();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `a, b` without brackets is a tuple (a list in JSON); `close` ends a bracketed one.
    fn tuple_or_value(&mut self, close: Option<u8>) -> Option<Value> {
        let first = self.value()?;
        if !self.eat(b',') {
            return Some(first);
        }
        let mut items = vec![first];
        loop {
            self.blank();
            match self.peek() {
                None => break,
                Some(c) if Some(c) == close => break,
                _ => {}
            }
            items.push(self.value()?);
            if !self.eat(b',') {
                break;
            }
        }
        Some(Value::Array(items))
    }

    fn value(&mut self) -> Option<Value> {
        self.blank();
        if self.depth >= MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'[' => {
                self.i += 1;
                self.depth += 1;
                let items = self.items(b']')?;
                self.depth -= 1;
                Some(Value::Array(items))
            }
            b'(' => {
                self.i += 1;
                self.depth += 1;
                if self.eat(b')') {
                    self.depth -= 1;
                    return Some(Value::Array(Vec::new()));
                }
                let v = self.tuple_or_value(Some(b')'))?;
                self.depth -= 1;
                self.eat(b')').then_some(v)
            }
            b'{' => {
                self.i += 1;
                self.depth += 1;
                let v = self.braces()?;
                self.depth -= 1;
                Some(v)
            }
            b'-' | b'+' => {
                let neg = self.peek() == Some(b'-');
                self.i += 1;
                self.blank();
                match self.number()? {
                    Value::Number(n) if neg => {
                        if let Some(i) = n.as_i64() {
                            Some(Value::from(i.checked_neg()?))
                        } else if let Some(u) = n.as_u64() {
                            // -(2**63) is the one negative number whose magnitude is a u64.
                            (u == 1 << 63).then_some(Value::from(i64::MIN))
                        } else {
                            Value::from(-n.as_f64()?)
                                .as_number()
                                .cloned()
                                .map(Value::Number)
                        }
                    }
                    n => Some(n),
                }
            }
            b'0'..=b'9' | b'.' => self.number(),
            _ => self.name_or_string(),
        }
    }

    /// Comma-separated values up to `close` (a trailing comma allowed).
    fn items(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            if self.eat(close) {
                return Some(out);
            }
            out.push(self.value()?);
            if !self.eat(b',') {
                return self.eat(close).then_some(out);
            }
        }
    }

    /// `{}` a dict, `{k: v, ...}` a dict, `{a, b}` a set (a list in JSON).
    fn braces(&mut self) -> Option<Value> {
        if self.eat(b'}') {
            return Some(Value::Object(Map::new()));
        }
        let first = self.value()?;
        if !self.eat(b':') {
            let mut items = vec![first];
            if self.eat(b',') {
                items.extend(self.items(b'}')?);
                return Some(Value::Array(items));
            }
            return self.eat(b'}').then_some(Value::Array(items));
        }
        let mut map = Map::new();
        let mut key = first;
        loop {
            let v = self.value()?;
            map.insert(json_key(&key)?, v);
            if !self.eat(b',') {
                return self.eat(b'}').then_some(Value::Object(map));
            }
            if self.eat(b'}') {
                return Some(Value::Object(map));
            }
            key = self.value()?;
            if !self.eat(b':') {
                return None;
            }
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        let rest = &self.text[start..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        let mut word = &rest[..end];
        // An exponent's sign: `1e-3`, `2E+5`.
        let mut len = end;
        if (word.ends_with(['e', 'E']) && !word.starts_with("0x") && !word.starts_with("0X"))
            && rest[end..].starts_with(['-', '+'])
        {
            let more = rest[end + 1..]
                .find(|c: char| !(c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len() - end - 1);
            len = end + 1 + more;
            word = &rest[..len];
        }
        self.i = start + len;
        python_number(word)
    }

    fn name_or_string(&mut self) -> Option<Value> {
        let rest = &self.text[self.i..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        let after = rest[end..].chars().next();
        if matches!(after, Some('\'' | '"')) && is_prefix(word) {
            self.i += end;
            return self.strings(word);
        }
        self.i += end;
        match word {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            _ => None,
        }
    }

    /// One or more adjacent string literals, concatenated as Python does.
    fn strings(&mut self, first_prefix: &str) -> Option<Value> {
        let mut out = String::new();
        let mut prefix = first_prefix.to_ascii_lowercase();
        let mut bytes_kind: Option<bool> = None;
        loop {
            let is_bytes = prefix.contains('b');
            // Python refuses to concatenate bytes and str.
            if *bytes_kind.get_or_insert(is_bytes) != is_bytes {
                return None;
            }
            out.push_str(&self.string(prefix.contains('r'), is_bytes)?);
            self.blank();
            let rest = &self.text[self.i..];
            let end = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            if matches!(rest[end..].chars().next(), Some('\'' | '"')) && is_prefix(&rest[..end]) {
                prefix = rest[..end].to_ascii_lowercase();
                self.i += end;
            } else {
                return Some(Value::String(out));
            }
        }
    }

    fn string(&mut self, raw: bool, bytes: bool) -> Option<String> {
        let q = self.peek()?;
        let triple = self.s[self.i..].starts_with(&[q, q, q]);
        self.i += if triple { 3 } else { 1 };
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek()?;
            if c == q && (!triple || self.s[self.i..].starts_with(&[q, q, q])) {
                self.i += if triple { 3 } else { 1 };
                break;
            }
            if c == b'\n' && !triple {
                return None;
            }
            if bytes && c >= 0x80 {
                return None; // bytes literals hold ASCII only
            }
            if c != b'\\' {
                out.push(c);
                self.i += 1;
                continue;
            }
            let e = *self.s.get(self.i + 1)?;
            if raw {
                out.extend([b'\\', e]);
                self.i += 2;
                continue;
            }
            self.i += 2;
            let simple = match e {
                b'\n' => Some(None),
                b'\\' => Some(Some('\\')),
                b'\'' => Some(Some('\'')),
                b'"' => Some(Some('"')),
                b'a' => Some(Some('\x07')),
                b'b' => Some(Some('\x08')),
                b'f' => Some(Some('\x0c')),
                b'n' => Some(Some('\n')),
                b'r' => Some(Some('\r')),
                b't' => Some(Some('\t')),
                b'v' => Some(Some('\x0b')),
                _ => None,
            };
            if let Some(c) = simple {
                if let Some(c) = c {
                    push_char(&mut out, c);
                }
                continue;
            }
            match e {
                b'0'..=b'7' => {
                    let mut n = u32::from(e - b'0');
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'7') => {
                                n = n * 8 + u32::from(d - b'0');
                                self.i += 1;
                            }
                            _ => break,
                        }
                    }
                    if bytes {
                        out.push(u8::try_from(n).ok()?);
                    } else {
                        push_char(&mut out, char::from_u32(n)?);
                    }
                }
                b'x' => {
                    let n = self.hex(2)?;
                    if bytes {
                        out.push(u8::try_from(n).ok()?);
                    } else {
                        push_char(&mut out, char::from_u32(n)?);
                    }
                }
                b'u' if !bytes => push_char(&mut out, char::from_u32(self.hex(4)?)?),
                b'U' if !bytes => push_char(&mut out, char::from_u32(self.hex(8)?)?),
                // `\N{NAME}` needs Unicode's name table: not a literal switchyard reads.
                b'N' if !bytes => return None,
                // Python keeps an unknown escape as written.
                _ => out.extend([b'\\', e]),
            }
        }
        String::from_utf8(out).ok()
    }

    fn hex(&mut self, digits: usize) -> Option<u32> {
        let h = self.text.get(self.i..self.i + digits)?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.i += digits;
        u32::from_str_radix(h, 16).ok()
    }
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn is_prefix(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "" | "r" | "u" | "b" | "br" | "rb"
    )
}

/// Python's number syntax: `0`, `1_000`, `0x1f`, `0o17`, `0b1`, `1.5`, `.5`, `1.`, `1e3`.
/// Decimal integers never start with `0` (`0640` is refused), except zeros alone.
fn python_number(word: &str) -> Option<Value> {
    let underscores_ok = |digits: &str, ok: &dyn Fn(char) -> bool| {
        !digits.is_empty()
            && !digits.starts_with('_')
            && !digits.ends_with('_')
            && !digits.contains("__")
            && digits.chars().all(|c| c == '_' || ok(c))
    };
    let lower = word.to_ascii_lowercase();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(d) = lower.strip_prefix(prefix) {
            let d = d.strip_prefix('_').unwrap_or(d);
            if !underscores_ok(d, &|c| c.is_digit(radix)) {
                return None;
            }
            return u64::from_str_radix(&d.replace('_', ""), radix)
                .ok()
                .map(Value::from);
        }
    }
    if lower.ends_with('j') {
        return None; // complex
    }
    let is_digits = |d: &str| underscores_ok(d, &|c| c.is_ascii_digit());
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (lower.as_str(), None),
    };
    if let Some(e) = exponent {
        if !is_digits(e.strip_prefix(['-', '+']).unwrap_or(e)) {
            return None;
        }
    }
    let float = match mantissa.split_once('.') {
        Some((a, b)) => {
            if (a.is_empty() && b.is_empty())
                || (!a.is_empty() && !is_digits(a))
                || (!b.is_empty() && !is_digits(b))
            {
                return None;
            }
            true
        }
        None => {
            if !is_digits(mantissa) {
                return None;
            }
            exponent.is_some()
        }
    };
    let clean = lower.replace('_', "");
    if float {
        let f: f64 = clean.parse().ok()?;
        return f.is_finite().then(|| Value::from(f));
    }
    if clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0') {
        return None; // `0640`: Python 3 refuses leading zeros
    }
    clean
        .parse::<i64>()
        .map(Value::from)
        .or_else(|_| clean.parse::<u64>().map(Value::from))
        .ok()
}

/// A Python dict key as `json.dumps` writes it.
fn json_key(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::literal_eval as ev;
    use serde_json::json;

    #[test]
    fn python_literals_as_ast_literal_eval_reads_them() {
        for (text, want) in [
            ("8080", json!(8080)),
            (
                "8080 # all members of 'web' will inherit these",
                json!(8080),
            ),
            ("True # vars in child groups", json!(true)),
            ("-3", json!(-3)),
            ("+3", json!(3)),
            ("1_000", json!(1000)),
            ("0x1F", json!(31)),
            ("0o17", json!(15)),
            ("00", json!(0)),
            ("1.5", json!(1.5)),
            (".5", json!(0.5)),
            ("1e3", json!(1000.0)),
            ("-1.5e-1", json!(-0.15)),
            ("'a b'", json!("a b")),
            ("\"it's\"", json!("it's")),
            ("'03#pa33w0rd'", json!("03#pa33w0rd")),
            ("'a' \"b\"", json!("ab")),
            ("'\\x41\\n\\q'", json!("A\n\\q")),
            ("r'\\n'", json!("\\n")),
            ("b'x'", json!("x")),
            ("None", json!(null)),
            ("[1, 'a', [True]]", json!([1, "a", [true]])),
            ("(1,)", json!([1])),
            ("()", json!([])),
            ("(1)", json!(1)),
            ("1, 2", json!([1, 2])),
            (
                "{'a': 1, 2: [3], True: None}",
                json!({"a": 1, "2": [3], "true": null}),
            ),
            ("{}", json!({})),
            ("{'x': {'y': 1,},}", json!({"x": {"y": 1}})),
        ] {
            assert_eq!(ev(text), Some(want), "{text}");
        }
        for text in [
            "0640",
            "yes",
            "ntp.atlanta.example.com",
            "proxy.example.com # note",
            "'open",
            "1 2",
            "[1,",
            "{'a' 1}",
            "1j",
            "--1",
            "f'x'",
            "99999999999999999999999",
            "'a' b'b'",
            "1__0",
            "inf",
            "",
            "# only a comment",
        ] {
            assert_eq!(ev(text), None, "{text}");
        }
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(ev(&deep), None);
    }
}
