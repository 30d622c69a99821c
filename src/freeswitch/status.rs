//! Reading `fs_cli -x` answers.
//!
//! `fs_cli` exits 0 whatever the API said (only a connection failure or timeout differs),
//! and `reloadxml` answers `+OK [...]` even when it rejected the XML and kept the old
//! configuration. So every answer is parsed as text here; exit codes are never trusted.

use serde::Serialize;

/// Why a command's answer is a failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiFailure {
    #[error("FreeSWITCH rejected the XML and kept the old configuration: {0}")]
    XmlRejected(String),
    #[error("cannot reach FreeSWITCH's event socket: {0}")]
    NotConnected(String),
    /// FreeSWITCH declined to do it now (`sofia profile P restart` within 10 s of the
    /// profile starting: `Profile P must be up for at least 10 seconds to stop/restart.` /
    /// `Please wait N seconds`, with no `-ERR`). Nothing was done; it may be tried again
    /// after `retry_after` seconds.
    #[error("FreeSWITCH refused: {text}")]
    Refused { text: String, retry_after: u64 },
    #[error("{0}")]
    Error(String),
}

/// Check the answer to `command` (as printed by `fs_cli -x`).
pub fn check_reply(command: &str, out: &str) -> Result<(), ApiFailure> {
    let text = out.trim();
    if text.contains("Error Connecting") || (text.starts_with("[ERROR]") && text.contains("fs_cli"))
    {
        return Err(ApiFailure::NotConnected(first_line(text)));
    }
    // `reloadxml` and everything that runs it first (`rescan`, `startgw`, `restart`).
    for line in text.lines() {
        let l = line.trim();
        let inner = l
            .strip_prefix("+OK [")
            .or_else(|| l.strip_prefix("Reload XML ["));
        if let Some(inner) = inner {
            let inner = inner.strip_suffix(']').unwrap_or(inner);
            if inner != "Success" {
                return Err(ApiFailure::XmlRejected(inner.to_string()));
            }
        }
    }
    if text.contains("must be up for at least") {
        let retry_after = text
            .split("Please wait ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(10);
        return Err(ApiFailure::Refused {
            text: text.lines().map(str::trim).collect::<Vec<_>>().join(" "),
            retry_after,
        });
    }
    // A profile that does not exist, or is down while it restarts: no `-ERR` either.
    if text.starts_with("Invalid Profile") {
        return Err(ApiFailure::Error(first_line(text)));
    }
    if text.starts_with("-ERR") || text.starts_with("-USAGE") {
        // Killing a gateway that is not loaded (a previous apply never got it running) is
        // not a failure of this apply: the goal, no such gateway running, holds.
        if command.contains(" killgw ") && text.contains("no such gateway") {
            return Ok(());
        }
        return Err(ApiFailure::Error(first_line(text)));
    }
    if text.is_empty() && !command.starts_with("show ") {
        return Err(ApiFailure::Error("no answer".into()));
    }
    Ok(())
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// A gateway's registration state (`sofia xmlstatus gateway NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayStatus {
    pub name: String,
    /// `REGED`, `NOREG`, `FAIL_WAIT`, ..., or `INVALID` for `Invalid Gateway!`.
    pub state: String,
    /// `UP` or `DOWN` (a trailing ` (ping)` removed).
    pub status: String,
    pub retry: Option<String>,
    /// OPTIONS ping interval in seconds (`<pingfreq>`; 0: no pings).
    #[serde(skip_serializing_if = "is_zero")]
    pub ping_freq: u32,
    /// Pings answered in a row (`<pingcount>`): mod_sofia counts an answer other than 408
    /// and 503 up (to `ping-max`) and a failure down.
    #[serde(skip_serializing_if = "is_zero")]
    pub ping_count: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Every gateway state mod_sofia 1.10 names (`sofia_state_names` in mod_sofia.c, `DOWN` as
/// /work/shared/reference/freeswitch-facts.md lists it), and `INVALID`, ours for `Invalid
/// Gateway!`. A PBX's owner chooses what its event socket and `sofia xmlstatus` say: only
/// these reach metrics, logs and webhooks, anything else is shown as `UNKNOWN`.
pub const GATEWAY_STATES: &[&str] = &[
    "UNREGED",
    "TRYING",
    "REGISTER",
    "REGED",
    "UNREGISTER",
    "FAILED",
    "FAIL_WAIT",
    "EXPIRED",
    "NOREG",
    "DOWN",
    "TIMEOUT",
    "INVALID",
];

/// `state` when FreeSWITCH could have said it, else `None`.
pub fn known_state(state: &str) -> Option<&'static str> {
    GATEWAY_STATES.iter().copied().find(|s| *s == state)
}

/// A ping status as FreeSWITCH says it (`UP`, `DOWN`, `INVALID`, with ` (ping)` while an
/// OPTIONS is in flight), without the suffix; `None` for anything else.
pub fn known_ping(status: &str) -> Option<&'static str> {
    let s = status.strip_suffix(" (ping)").unwrap_or(status);
    ["UP", "DOWN", "INVALID"].into_iter().find(|k| *k == s)
}

/// What a verification poll makes of a gateway state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Transient (`TRYING`, `REGISTER`, `UNREGED`, ...): keep polling.
    Pending,
    Failed,
}

/// Parse `sofia xmlstatus gateway NAME`.
pub fn parse_xmlstatus(name: &str, out: &str) -> Result<GatewayStatus, ApiFailure> {
    let text = out.trim();
    if text.starts_with("Invalid Gateway!") {
        return Ok(GatewayStatus {
            name: name.into(),
            state: "INVALID".into(),
            status: "DOWN".into(),
            retry: None,
            ping_freq: 0,
            ping_count: 0,
        });
    }
    check_reply("sofia xmlstatus gateway", text)?;
    // The answer declares ISO-8859-1; roxmltree only reads UTF-8, and the fields we read are
    // ASCII, so drop the declaration.
    let body = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("<?xml"))
        .collect::<Vec<_>>()
        .join("\n");
    let doc = roxmltree::Document::parse(&body)
        .map_err(|e| ApiFailure::Error(format!("unreadable xmlstatus: {e}")))?;
    let field = |n: &str| {
        doc.root_element()
            .children()
            .find(|c| c.has_tag_name(n))
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
    };
    Ok(GatewayStatus {
        name: field("name").unwrap_or_else(|| name.into()),
        state: field("state")
            .ok_or_else(|| ApiFailure::Error("xmlstatus without <state>".into()))?,
        status: field("status")
            .map(|s| s.trim_end_matches(" (ping)").to_string())
            .unwrap_or_default(),
        retry: field("retry"),
        ping_freq: field("pingfreq").and_then(|v| v.parse().ok()).unwrap_or(0),
        ping_count: field("pingcount").and_then(|v| v.parse().ok()).unwrap_or(0),
    })
}

impl GatewayStatus {
    /// Healthy: a registering gateway `REGED` (and `UP` when it pings); an IP-auth gateway
    /// `NOREG`, `UP`, and — when it pings — with at least one ping answered. mod_sofia marks
    /// an IP-auth gateway `UP` as it loads, before its first OPTIONS (sent only after the
    /// ping interval), so `UP` alone says nothing about the provider being there.
    pub fn health(&self, registers: bool) -> Health {
        let answered = self.ping_freq == 0 || self.ping_count > 0;
        match self.state.as_str() {
            "REGED" if registers => {
                if self.status == "UP" || self.ping_freq == 0 {
                    Health::Healthy
                } else {
                    Health::Pending
                }
            }
            "NOREG" if !registers => match (self.status.as_str(), answered) {
                ("UP", true) => Health::Healthy,
                // UP as loaded, first ping not answered yet.
                ("UP", false) => Health::Pending,
                // mod_sofia marks an IP-auth gateway DOWN only when a ping failed (it
                // loads UP): the provider did not answer.
                _ => Health::Failed,
            },
            "FAILED" | "FAIL_WAIT" | "EXPIRED" | "TIMEOUT" => Health::Failed,
            "INVALID" => Health::Pending,
            "REGED" | "NOREG" => Health::Failed,
            _ => Health::Pending,
        }
    }
}

/// `show calls count` answers `N total.`
pub fn parse_calls_count(out: &str) -> Option<u64> {
    out.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Verbatim from fs-outputs.md (FreeSWITCH 1.10.12).
    const FAIL_WAIT: &str = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n  <gateway>\n    <name>wavix</name>\n    <profile>external</profile>\n    <scheme>Digest</scheme>\n    <realm>us.wavix.test</realm>\n    <username>trunk1</username>\n    <password>yes</password>\n    <from>&lt;sip:trunk1@127.0.0.2:5060&gt;</from>\n    <contact>&lt;sip:gw+wavix@127.0.0.1:5080;transport=udp;gw=wavix&gt;</contact>\n    <exten>trunk1</exten>\n    <to>sip:trunk1@127.0.0.2:5060</to>\n    <proxy>sip:127.0.0.2:5060</proxy>\n    <context>wavix</context>\n    <expires>3600</expires>\n    <freq>3600</freq>\n    <ping>0</ping>\n    <pingfreq>0</pingfreq>\n    <pingmin>0</pingmin>\n    <pingcount>0</pingcount>\n    <pingmax>0</pingmax>\n    <pingtime>0.00</pingtime>\n    <pinging>0</pinging>\n    <state>FAIL_WAIT</state>\n    <status>DOWN</status>\n    <uptime-usec>0</uptime-usec>\n    <calls-in>0</calls-in>\n    <calls-out>0</calls-out>\n    <failed-calls-in>0</failed-calls-in>\n    <failed-calls-out>0</failed-calls-out>\n    <retry>74s</retry>\n  </gateway>\n\n";

    #[test]
    fn reads_recorded_xmlstatus() {
        let s = parse_xmlstatus("wavix", FAIL_WAIT).unwrap();
        assert_eq!(
            (s.state.as_str(), s.status.as_str(), s.retry.as_deref()),
            ("FAIL_WAIT", "DOWN", Some("74s"))
        );
        assert_eq!(s.health(true), Health::Failed);
        let reged = FAIL_WAIT
            .replace("FAIL_WAIT", "REGED")
            .replace("DOWN", "UP")
            .replace("    <retry>74s</retry>\n", "");
        assert_eq!(
            parse_xmlstatus("wavix", &reged).unwrap().health(true),
            Health::Healthy
        );
        let inv = parse_xmlstatus("wavix", "Invalid Gateway!\n\n").unwrap();
        assert_eq!(inv.state, "INVALID");
    }

    /// Answers recorded from the real FreeSWITCH (tests/fixtures/fs-outputs-extra.md) that
    /// carry no `-ERR` and still are not success.
    #[test]
    fn refusals_and_invalid_profiles_are_not_success() {
        let r = check_reply(
            "sofia profile external restart",
            "Profile external must be up for at least 10 seconds to stop/restart.\nPlease wait 8 seconds\n",
        );
        match r {
            Err(ApiFailure::Refused { retry_after, .. }) => assert_eq!(retry_after, 8),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check_reply(
                "sofia profile external rescan",
                "Invalid Profile [external]\n"
            ),
            Err(ApiFailure::Error(_))
        ));
        assert!(check_reply(
            "sofia profile external restart",
            "Reload XML [Success]\nrestarting: external"
        )
        .is_ok());
        assert!(check_reply("reloadacl", "+OK acl reloaded\n").is_ok());
    }

    #[test]
    fn reloadxml_ok_is_not_success() {
        assert_eq!(check_reply("reloadxml", "+OK [Success]\n\n"), Ok(()));
        assert_eq!(
            check_reply(
                "reloadxml",
                "+OK [[error near line 3496]: unexpected closing tag </gateways>]\n\n"
            ),
            Err(ApiFailure::XmlRejected(
                "[error near line 3496]: unexpected closing tag </gateways>".into()
            ))
        );
        assert!(matches!(
            check_reply("sofia profile external rescan", "Reload XML [[error near line 3496]: unexpected closing tag </gateways>]\n+OK scan complete\n\n"),
            Err(ApiFailure::XmlRejected(_))
        ));
        assert_eq!(
            check_reply(
                "sofia profile external rescan",
                "Reload XML [Success]\n+OK scan complete\n\n"
            ),
            Ok(())
        );
        assert_eq!(
            check_reply(
                "sofia profile external killgw wavix",
                "+OK gateway marked for deletion.\n\n"
            ),
            Ok(())
        );
        assert!(matches!(
            check_reply(
                "status",
                "[ERROR] fs_cli.c:1699 main() Error Connecting []\n"
            ),
            Err(ApiFailure::NotConnected(_))
        ));
    }
}
