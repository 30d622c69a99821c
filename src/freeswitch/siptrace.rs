//! FreeSWITCH's own SIP trace, as its event socket streams it.
//!
//! `sofia profile P siptrace on` sets sofia-sip's `TPTAG_LOG` on the profile: its transport
//! layer then logs every SIP message it sends or receives (`tport_log_msg`, one log call
//! per message, cut at 16,000 bytes) through mod_sofia's `logger()`, at the level
//! `sofia tracelevel` names (`CONSOLE`, 0, unless changed). An event socket that asked
//! for the log (`log N`) gets each one as a `log/data` message whose body is
//!
//! ```text
//! send 1034 bytes to udp/[127.20.0.3]:5060 at 23:41:46.812190:
//! ------------------------------------------------------------------------
//! INVITE sip:12125550100@127.20.0.3 SIP/2.0
//! ...
//! ```
//!
//! (`tport_stamp`: `recv N bytes from`, or `send N bytes to`, the transport, peer address
//! and port, and the PBX's local time of day.) Nothing in FreeSWITCH reports whether a
//! profile traces now: `TPTAG_LOG` is write-only from the API, so what a profile was is
//! read from its configuration (`<param name="sip-trace">`, [`configured_tracing`]).
//!
//! Every text here is the PBX's (and the far end's): bounded, escaped before printing, and
//! its credentials masked ([`mask_credentials`]) before anything keeps it.

use serde::Serialize;

/// The most of one message kept: sofia-sip itself logs at most 16,000 bytes of one.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// One SIP message as the PBX sent or received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipMessage {
    /// The PBX's local time of day, `HH:MM:SS.uuuuuu`.
    pub at: String,
    /// `sent` by the PBX, or `received`.
    pub direction: &'static str,
    /// The far end, `udp/127.20.0.3:5060`.
    pub peer: String,
    /// The request or status line.
    pub first_line: String,
    pub call_id: Option<String>,
    /// The whole message, credentials masked.
    pub text: String,
}

impl SipMessage {
    /// Microseconds since the PBX's midnight (for offsets between messages).
    pub fn micros_of_day(&self) -> Option<u64> {
        let (hms, us) = self.at.split_once('.')?;
        let mut p = hms.split(':').map(|x| x.parse::<u64>().ok());
        let (h, m, s) = (p.next()??, p.next()??, p.next()??);
        Some(((h * 60 + m) * 60 + s) * 1_000_000 + us.parse::<u64>().ok()?)
    }
}

/// A `log/data` body, if it is a traced SIP message; its credentials masked.
pub fn parse_log(body: &str) -> Option<SipMessage> {
    let (stamp, rest) = body.split_once('\n')?;
    // recv 324 bytes from udp/[127.77.0.9]:43558 at 23:41:46.812190:
    let mut w = stamp.split(' ');
    let direction = match w.next()? {
        "send" => "sent",
        "recv" => "received",
        _ => return None,
    };
    w.next()?.parse::<u64>().ok()?;
    if w.next()? != "bytes" || !matches!(w.next()?, "to" | "from") {
        return None;
    }
    let peer = w.next()?;
    if w.next()? != "at" {
        return None;
    }
    let at = w.next()?.strip_suffix(':')?;
    let time_ok = at.len() == 15
        && at.bytes().enumerate().all(|(i, b)| match i {
            2 | 5 => b == b':',
            8 => b == b'.',
            _ => b.is_ascii_digit(),
        });
    if !time_ok || w.next().is_some() {
        return None;
    }
    // udp/[127.77.0.9]:43558 → udp/127.77.0.9:43558
    let peer: String = peer
        .chars()
        .filter(|c| *c != '[' && *c != ']')
        .take(80)
        .collect();
    let text = rest
        .strip_prefix(|c| c == '-')
        .map(|r| r.trim_start_matches('-'))
        .and_then(|r| r.strip_prefix('\n'))
        .unwrap_or(rest);
    let mut cut = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let text = mask_credentials(text[..cut].trim_end_matches('\n'));
    let first_line = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    Some(SipMessage {
        at: at.to_string(),
        direction,
        peer,
        first_line,
        call_id: header(&text, &["call-id", "i"]).map(|v| v.chars().take(200).collect()),
        text,
    })
}

/// The first value of a header (by any of its names, compact form included) in a
/// message's header block.
pub fn header(text: &str, names: &[&str]) -> Option<String> {
    text.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            names
                .iter()
                .any(|x| n.trim().eq_ignore_ascii_case(x))
                .then(|| v.trim().to_string())
        })
}

/// Headers whose parameters carry credentials: the digest `response` is the password's
/// hash over a nonce the far end chose (open to an offline guess), `rspauth` likewise, and
/// a non-digest scheme's token is the credential itself.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "authentication-info",
    "proxy-authentication-info",
];

/// Parameters of those headers that are kept: who, where and how, never a proof.
const KEPT_PARAMS: &[&str] = &["username", "realm", "uri", "algorithm", "qop"];

/// `text` (a SIP message) with the credentials of its `Authorization`,
/// `Proxy-Authorization` and `Authentication-Info` headers (and their folded continuation
/// lines) masked: the scheme and `username`, `realm`, `uri`, `algorithm`, `qop` stay;
/// every other parameter's value, and any bare token, becomes `********`. In the body, the
/// SDP's media keys (SDES `a=crypto:` `inline:` keys, `a=key-mgmt:` MIKEY data) are masked
/// too: they decrypt the call's SRTP.
pub fn mask_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_headers = true;
    let mut masking = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let eol = &line[bare.len()..];
        if i == 0 {
            out.push_str(line);
            continue;
        }
        if !in_headers {
            out.push_str(&mask_media_keys(bare));
            out.push_str(eol);
            continue;
        }
        if bare.is_empty() {
            in_headers = false;
            out.push_str(line);
            continue;
        }
        if bare.starts_with([' ', '\t']) {
            if masking {
                out.push_str(&mask_params(bare, false));
                out.push_str(eol);
            } else {
                out.push_str(line);
            }
            continue;
        }
        match bare.split_once(':') {
            Some((name, value))
                if CREDENTIAL_HEADERS
                    .iter()
                    .any(|h| name.trim().eq_ignore_ascii_case(h)) =>
            {
                masking = true;
                out.push_str(name);
                out.push(':');
                out.push_str(&mask_params(value, true));
                out.push_str(eol);
            }
            _ => {
                masking = false;
                out.push_str(line);
            }
        }
    }
    out
}

/// One token (no blank, comma or quote), or one quoted string whose only quotes are its
/// ends and escaped ones.
fn plain_value(v: &str) -> bool {
    if let Some(inner) = v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let mut escaped = false;
        for c in inner.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return false,
                _ => {}
            }
        }
        return !escaped;
    }
    !v.is_empty() && !v.contains([' ', '\t', ',', '"'])
}

/// An SDP line with its SRTP keying masked: `a=crypto:1 SUITE inline:KEY|2^20` →
/// `a=crypto:1 SUITE inline:********`; `a=key-mgmt:mikey DATA` → `a=key-mgmt:mikey ********`.
fn mask_media_keys(line: &str) -> String {
    if let Some(rest) = line.strip_prefix("a=crypto:") {
        let words: Vec<String> = rest
            .split(' ')
            .map(|w| match w.get(..7) {
                Some(p) if p.eq_ignore_ascii_case("inline:") => {
                    format!("{p}{}", crate::secret::MASK)
                }
                _ => w.to_string(),
            })
            .collect();
        return format!("a=crypto:{}", words.join(" "));
    }
    if let Some(rest) = line.strip_prefix("a=key-mgmt:") {
        let proto = rest.split(' ').next().unwrap_or("");
        return format!("a=key-mgmt:{proto} {}", crate::secret::MASK);
    }
    line.to_string()
}

/// ` Digest username="u", response="x"` → ` Digest username="u", response=********`.
/// `scheme`: the value starts with the auth scheme (a header's first line).
fn mask_params(value: &str, scheme: bool) -> String {
    let lead = &value[..value.len() - value.trim_start().len()];
    let mut rest = value.trim_start();
    let mut out = lead.to_string();
    if scheme {
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        let word = &rest[..end];
        if !word.contains('=') && !word.contains(',') {
            out.push_str(word);
            rest = &rest[end..];
            // Another scheme's token (`Bearer ...`, `Basic ...`) is the credential itself,
            // `=` padding and all.
            if !word.eq_ignore_ascii_case("digest") && !rest.trim().is_empty() {
                out.push(' ');
                out.push_str(crate::secret::MASK);
                return out;
            }
        }
    }
    // Split on commas outside quotes.
    let mut items = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, c) in rest.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            // A quoted-pair (`\"`) inside a quoted string is not its end (RFC 3261 25.1).
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&rest[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&rest[start..]);
    let masked: Vec<String> = items
        .iter()
        .map(|item| {
            let pad = &item[..item.len() - item.trim_start().len()];
            let body = item.trim();
            if body.is_empty() {
                return item.to_string();
            }
            match body.split_once('=') {
                // Kept only when its value is one token or one quoted string: anything
                // else may hold what a splitter fooled by odd quoting let through.
                Some((k, v))
                    if KEPT_PARAMS.iter().any(|p| k.trim().eq_ignore_ascii_case(p))
                        && plain_value(v.trim()) =>
                {
                    item.to_string()
                }
                // A parameter name is a token; anything else is not shown even in part.
                Some((k, _))
                    if k.trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
                {
                    format!("{pad}{}={}", k.trim(), crate::secret::MASK)
                }
                _ => format!("{pad}{}", crate::secret::MASK),
            }
        })
        .collect();
    out.push_str(&masked.join(","));
    out
}

/// `+OK tracelevel is CONSOLE` → 0: the log level the SIP trace is logged at
/// (`sofia tracelevel`), which `log N` must reach.
pub fn trace_level(answer: &str) -> Option<u8> {
    let name = answer.trim().strip_prefix("+OK tracelevel is ")?.trim();
    let levels = [
        "CONSOLE", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG",
    ];
    levels
        .iter()
        .position(|l| l.eq_ignore_ascii_case(name))
        .map(|p| p as u8)
}

/// The profiles a call to a trunk leaves through, from `sofia status`: those that hold a
/// gateway (`external::wavix gateway ...`), else (a dialplan that dials
/// `sofia/PROFILE/...` itself) every profile. Names that are not plain words are left out
/// (never put into a command).
pub fn profiles(sofia_status: &str) -> Vec<String> {
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let mut with_gateway = Vec::new();
    let mut all = Vec::new();
    for line in sofia_status.lines() {
        let mut w = line.split_whitespace();
        let (Some(name), Some(kind)) = (w.next(), w.next()) else {
            continue;
        };
        let (list, name) = match kind {
            "gateway" => (&mut with_gateway, name.split("::").next().unwrap_or("")),
            "profile" => (&mut all, name),
            _ => continue,
        };
        if plain(name) && !list.iter().any(|p: &String| p == name) {
            list.push(name.to_string());
        }
    }
    if with_gateway.is_empty() {
        all
    } else {
        with_gateway
    }
}

/// The profiles whose configuration turns tracing on (`<param name="sip-trace"
/// value="yes"/>`), from `xml_locate configuration configuration name sofia.conf`. An
/// answer that does not parse names none: every profile traced for a call is then turned
/// off afterwards, the safe way to be wrong.
pub fn configured_tracing(sofia_conf: &str) -> Vec<String> {
    let Ok(doc) = roxmltree::Document::parse(sofia_conf.trim()) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.has_tag_name("profile"))
        .filter(|p| {
            p.descendants().any(|n| {
                n.has_tag_name("param")
                    && n.attribute("name") == Some("sip-trace")
                    && n.attribute("value").is_some_and(super::switch_true)
            })
        })
        .filter_map(|p| p.attribute("name").map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As FreeSWITCH 1.10.12 sent it on `log 0` (recorded), with a digest answer added.
    const RECV: &str = "recv 324 bytes from udp/[127.77.0.9]:43558 at 23:41:46.812190:\n------------------------------------------------------------------------\nINVITE sip:12125550100@127.77.0.2 SIP/2.0\nVia: SIP/2.0/UDP 127.77.0.9:43558;branch=z9hG4bK-x1\nCall-ID: probe-abc@x\nProxy-Authorization: Digest username=\"trunk1\", realm=\"sip.test\", nonce=\"n1\", uri=\"sip:x\",\n  response=\"deadbeefcafe\", cnonce=\"c0ffee\", qop=auth, nc=00000001\nAuthorization: Bearer abc.def==\nContent-Length: 0\n\n";

    #[test]
    fn a_traced_message_is_parsed_and_its_credentials_masked() {
        let m = parse_log(RECV).unwrap();
        assert_eq!(m.direction, "received");
        assert_eq!(m.peer, "udp/127.77.0.9:43558");
        assert_eq!(m.at, "23:41:46.812190");
        assert_eq!(m.first_line, "INVITE sip:12125550100@127.77.0.2 SIP/2.0");
        assert_eq!(m.call_id.as_deref(), Some("probe-abc@x"));
        for secret in ["deadbeefcafe", "c0ffee", "abc.def", "n1"] {
            assert!(!m.text.contains(secret), "{secret}: {}", m.text);
        }
        assert!(
            m.text.contains("Proxy-Authorization: Digest username=\"trunk1\", realm=\"sip.test\", nonce=********, uri=\"sip:x\",\n  response=********, cnonce=********, qop=auth, nc=********"),
            "{}",
            m.text
        );
        assert!(
            m.text.contains("Authorization: Bearer ********"),
            "{}",
            m.text
        );
        assert_eq!(m.micros_of_day(), Some(85_306_812_190));
    }

    /// A quoted-pair in a kept parameter does not end its string early (the `response`
    /// after it stays masked), and an SDP body's SRTP keys are masked.
    #[test]
    fn escaped_quotes_and_media_keys_never_let_a_secret_through() {
        let m = mask_credentials(
            "INVITE sip:x SIP/2.0\nAuthorization: Digest username=\"a\\\"\", response=\"S3cr3tResp\", realm=\"r\"\nContent-Type: application/sdp\n\nv=0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\na=key-mgmt:mikey AQAFgM0XflABAAAAAAAAAAAAAAsAyONQ6gAAAAAJAAAQ\na=rtpmap:0 PCMU/8000\n",
        );
        for secret in ["S3cr3tResp", "WVNfX19zZW1jdGwg", "AQAFgM0Xfl"] {
            assert!(!m.contains(secret), "{secret}: {m}");
        }
        assert!(
            m.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:********"),
            "{m}"
        );
        assert!(
            m.contains("a=key-mgmt:mikey ********") && m.contains("a=rtpmap:0 PCMU/8000"),
            "{m}"
        );
        assert!(
            m.contains("username=\"a\\\"\"") && m.contains("realm=\"r\""),
            "{m}"
        );
    }

    #[test]
    fn only_trace_stamps_are_messages() {
        for body in [
            "",
            "2026-12-07 [NOTICE] something else\n",
            "recv many bytes from udp/[1.2.3.4]:5 at 23:41:46.812190:\nX",
            "recv 3 bytes from udp/[1.2.3.4]:5 at yesterday:\nX",
        ] {
            assert!(parse_log(body).is_none(), "{body}");
        }
        // A compact Call-ID (`i:`) is read too; a message cut short stays within bounds.
        let big = format!(
            "send 9 bytes to tcp/[1.2.3.4]:5060 at 00:00:01.000000:\n----\nSIP/2.0 404 Not Found\ni: abc\n{}",
            "é".repeat(MAX_MESSAGE)
        );
        let m = parse_log(&big).unwrap();
        assert_eq!(m.call_id.as_deref(), Some("abc"));
        assert!(m.text.len() <= MAX_MESSAGE);
        assert_eq!(m.first_line, "SIP/2.0 404 Not Found");
    }

    #[test]
    fn levels_profiles_and_configured_tracing() {
        assert_eq!(trace_level("+OK tracelevel is CONSOLE"), Some(0));
        assert_eq!(trace_level("+OK tracelevel is DEBUG\n"), Some(7));
        assert_eq!(trace_level("-ERR"), None);
        let status = "                     Name\t   Type\t                                      Data\tState\n=====\n               127.0.0.1\t  alias\t                                  internal\tALIASED\n                 external\tprofile\t             sip:mod_sofia@127.0.0.1:5080\tRUNNING (0)\n    external::wavix\tgateway\t                   sip:trunk1@sip.test\tREGED\n                 internal\tprofile\t             sip:mod_sofia@127.0.0.1:5060\tRUNNING (0)\n";
        assert_eq!(profiles(status), ["external"]);
        let no_gw = status.replace("external::wavix\tgateway", "x\tother");
        assert_eq!(profiles(&no_gw), ["external", "internal"]);
        let conf = "<configuration name=\"sofia.conf\"><profiles><profile name=\"external\"><settings><param name=\"sip-trace\" value=\"no\"></param></settings></profile><profile name=\"internal\"><settings><param name=\"sip-trace\" value=\"yes\"/></settings></profile></profiles></configuration>";
        assert_eq!(configured_tracing(conf), ["internal"]);
        assert!(configured_tracing("-ERR no such thing").is_empty());
    }
}
