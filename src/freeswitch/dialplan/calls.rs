//! Calls and dial strings: who places a test call, `${group_call(...)}` answered from the
//! directory, a bridge's legs as switch_ivr_originate reads them, and secrets masked in
//! what is shown.

use std::collections::BTreeMap;

use super::execute::{API, API_END};
use super::{Call, Dialplan, Target};

impl Dialplan {
    /// Who places a call: a directory user (`from`), the provider through a gateway
    /// (`from_trunk`), else the lowest user id. Returns how to name the caller, and the call.
    pub fn call_for(
        &self,
        from: Option<&str>,
        from_trunk: Option<&str>,
        number: &str,
    ) -> (String, Result<Call, String>) {
        match (from_trunk, from) {
            (Some(gw), _) => (format!("trunk {gw}"), self.call_from_gateway(gw, number)),
            (None, Some(u)) => (format!("user {u}"), self.call_from_user(u, number)),
            (None, None) => match self.users().next() {
                Some(u) => (format!("user {u}"), self.call_from_user(u, number)),
                None => (
                    "nobody".into(),
                    Err("no directory user to call from: name one (`from`)".into()),
                ),
            },
        }
    }

    /// The directory's user ids, in order.
    pub fn users(&self) -> impl Iterator<Item = &String> {
        self.users.keys()
    }

    /// A call placed by directory user `id` to `number`: in the user's `user_context`
    /// (`default` without one), with the user's variables.
    pub fn call_from_user(&self, id: &str, number: &str) -> Result<Call, String> {
        let mut vars = self
            .users
            .get(id)
            .ok_or_else(|| format!("no directory user `{id}`"))?
            .clone();
        let context = vars
            .get("user_context")
            .cloned()
            .unwrap_or_else(|| "default".into());
        // What mod_sofia gives the call of a phone that authenticated as `id` (sofia.c,
        // sofia_reg.c): the user's directory variables, who it is, that it authorized, and
        // (late negotiation, the stock profiles' setting) no SDP decided yet.
        vars.entry("user_name".into())
            .or_insert_with(|| id.to_string());
        if let Some(d) = self.globals.get("domain") {
            vars.entry("domain_name".into())
                .or_insert_with(|| d.clone());
        }
        vars.insert("sip_authorized".into(), "true".into());
        vars.insert("endpoint_disposition".into(), "DELAYED NEGOTIATION".into());
        let mut fields = BTreeMap::new();
        fields.insert("source".to_string(), "mod_sofia".to_string());
        fields.insert("caller_id_name".to_string(), id.to_string());
        fields.insert("ani".to_string(), id.to_string());
        fields.insert("username".to_string(), id.to_string());
        fields.insert("rdnis".to_string(), String::new());
        Ok(Call {
            context,
            destination: number.to_string(),
            caller_id_number: id.to_string(),
            vars,
            fields,
        })
    }

    /// A call arriving through gateway `name` for `number`: in the gateway's context.
    pub fn call_from_gateway(&self, name: &str, number: &str) -> Result<Call, String> {
        let context = self
            .gateway_context
            .get(name)
            .ok_or_else(|| format!("no gateway `{name}`"))?
            .clone();
        Ok(Call {
            context,
            destination: number.to_string(),
            ..Call::outside("", number)
        })
    }

    /// `${group_call(GROUP[@DOMAIN][+FLAGS])}` in a dial string answered from the
    /// directory's groups, as mod_commands.c:985 builds it: each member's dial string
    /// (shown as `user/ID@DOMAIN`, which FreeSWITCH expands to the same), joined by `,`
    /// (at once; `+F` one after the other, `|`; `+E` enterprise, `:_:`). A group the
    /// directory does not have stays an API call (unknown).
    pub(super) fn group_calls(&self, data: &str) -> String {
        let mut out = String::new();
        let mut rest = data;
        while let Some(i) = rest.find(API) {
            let after = &rest[i + API.len()..];
            let end = after.find(API_END).unwrap_or(after.len());
            let call = &after[..end];
            let next = after.get(end + API_END.len_utf8()..).unwrap_or("");
            let args = call
                .strip_prefix("group_call(")
                .and_then(|a| a.strip_suffix(')'));
            let (group, flags) = args
                .map(|a| a.split_once('+').unwrap_or((a, "")))
                .unwrap_or(("", ""));
            let (name, domain) = group.split_once('@').unwrap_or((group, ""));
            match (args, self.groups.get(name)) {
                (Some(_), Some(members)) if !domain.is_empty() => {
                    let delim = match flags.chars().rev().find(|c| "FAE".contains(*c)) {
                        Some('F') => "|",
                        Some('E') => ":_:",
                        _ => ",",
                    };
                    out.push_str(&rest[..i]);
                    out.push_str(
                        &members
                            .iter()
                            .map(|id| format!("user/{id}@{domain}"))
                            .collect::<Vec<_>>()
                            .join(delim),
                    );
                }
                // Left as it was: the API call with its marks.
                _ => out.push_str(&rest[..rest.len() - next.len()]),
            }
            rest = next;
        }
        out.push_str(rest);
        out
    }
}

/// An action's data for output: `set`-like data whose variable is password-like has its
/// whole value masked (it may hold spaces); any data then goes through [`mask_dial_secrets`].
pub(super) fn mask_action_data(app: &str, data: &str) -> String {
    if matches!(
        app,
        "set" | "export" | "set_global" | "bridge_export" | "push" | "unshift"
    ) {
        if let Some((k, _)) = data.split_once('=') {
            if crate::secret::is_secret_name(k) {
                return format!("{k}={}", crate::secret::MASK);
            }
        }
    }
    mask_dial_secrets(data)
}

/// A dial string (or any action data) with its secrets masked: the password of every
/// `user:password@` (after an optional `sip:`/`sips:` scheme), and the value of every
/// `name=value` whose name is password-like (channel variables in `{...}`, `[...]`, `<...>`,
/// URI parameters). `sip:1000@host` and `NUM@host` are left as they are.
pub fn mask_dial_secrets(s: &str) -> String {
    use crate::secret::{is_secret_name, MASK};
    // Where a token before `@` or `=` starts.
    let starts = |c: char| "/@{}[]<>,|;?&^ \t\n\"'=".contains(c);
    // Where a variable's value ends.
    let ends = |c: char| ",}]>;&|^ \t\n\"'".contains(c);
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().expect("in bounds");
        let token = || &s[s[..i].rfind(starts).map_or(0, |p| p + 1)..i];
        if c == '@' {
            let token = token();
            let user = token
                .strip_prefix("sips:")
                .or_else(|| token.strip_prefix("sip:"))
                .unwrap_or(token);
            if let Some(colon) = user.find(':') {
                if &user[colon + 1..] != MASK && colon + 1 < user.len() {
                    let keep = out.len() - (user.len() - colon - 1);
                    out.truncate(keep);
                    out.push_str(MASK);
                }
            }
        } else if c == '=' && !token().is_empty() && is_secret_name(token()) {
            let end = s[i + 1..].find(ends).map_or(s.len(), |p| i + 1 + p);
            out.push('=');
            out.push_str(MASK);
            i = end;
            continue;
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// A dial string's legs, as `switch_ivr_originate` reads them: groups separated by `|` are
/// tried one after the other; the legs of one group, separated by `,`, ring at the same
/// time. Separators inside `{...}`, `[...]` and `<...>` (channel variables such as
/// `[leg_timeout=10,origination_caller_id_number=1]`) separate nothing.
pub(super) fn bridge_targets(data: &str) -> Vec<Vec<Target>> {
    let s = strip_var_block(data.trim());
    split_top(s, '|')
        .into_iter()
        .map(|group| {
            split_top(group, ',')
                .into_iter()
                .map(|leg| leg_target(strip_var_block(leg.trim())))
                .collect()
        })
        .collect()
}

/// `s` cut at every `sep` that is not inside brackets.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0usize, 0usize, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' | '[' | '<' => depth += 1,
            '}' | ']' | '>' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `s` without the channel-variable blocks (`{...}`, `[...]`, `<...>`) it starts with.
fn strip_var_block(mut s: &str) -> &str {
    while let Some(close) = match s.chars().next() {
        Some('{') => Some('}'),
        Some('[') => Some(']'),
        Some('<') => Some('>'),
        _ => None,
    } {
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in s.char_indices() {
            if matches!(c, '{' | '[' | '<') {
                depth += 1;
            } else if matches!(c, '}' | ']' | '>') {
                depth -= 1;
                if depth == 0 && c == close {
                    end = Some(i + 1);
                    break;
                }
            }
        }
        match end {
            Some(e) => s = s[e..].trim_start(),
            None => break,
        }
    }
    s
}

fn leg_target(leg: &str) -> Target {
    if let Some(rest) = leg.strip_prefix("sofia/gateway/") {
        let (gw, num) = rest.split_once('/').unwrap_or((rest, ""));
        Target::Gateway {
            gateway: gw.to_string(),
            number: num.to_string(),
        }
    } else if let Some(rest) = leg.strip_prefix("user/") {
        Target::User {
            user: rest.split('@').next().unwrap_or("").to_string(),
        }
    } else if leg.starts_with("error/") {
        Target::Refused {
            why: leg.to_string(),
        }
    } else {
        Target::Other {
            application: "bridge".into(),
            data: leg.to_string(),
        }
    }
}
