//! The SIP exchange of one `switchyard call`, captured by FreeSWITCH's own SIP tracing
//! ([`crate::freeswitch::siptrace`]) on the connection that places the call.
//!
//! - *What is traced*: the profiles a call to a trunk leaves through (those holding a
//!   gateway), only for the call's duration. mod_sofia traces a whole profile, so every
//!   message is read and kept only if its `Call-ID` is one of the call's outbound legs'
//!   (`sip_call_id`): other calls' messages are dropped as they are read.
//! - *Turned back*: FreeSWITCH cannot say whether a profile traces now, so each is put back
//!   to its configured `sip-trace` (off unless the profile says `yes`). Should switchyard
//!   vanish before it does, FreeSWITCH's scheduler does it (`sched_api`, set before the
//!   trace is turned on, deleted after): no profile is left tracing.
//! - *Bounded*: one message at most [`siptrace::MAX_MESSAGE`] bytes; the call's messages at
//!   most [`MAX_KEPT`] and [`MAX_KEPT_BYTES`] (then marked truncated); messages read before
//!   the call's `Call-ID` is known wait in a window of [`MAX_PENDING_BYTES`], oldest dropped.
//!   The reading is the call's own, bounded in time by its timeout, plus [`DRAIN`].

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use crate::freeswitch::esl::{Esl, EslError, Message};
use crate::freeswitch::siptrace::{self, SipMessage};

/// Messages of the call kept, and their bytes: a call with failover over a few gateways is
/// a few dozen messages of 1-2 KiB.
pub const MAX_KEPT: usize = 200;
pub const MAX_KEPT_BYTES: usize = 512 * 1024;
/// Messages not yet known to be the call's (its `Call-ID` is learnt from its channel's
/// events, which can come after the INVITE is logged).
pub const MAX_PENDING_BYTES: usize = 256 * 1024;
/// How long after the call's last hangup event the log is still read: the last ACK or
/// `200` to a BYE is logged after the channel is gone.
pub const DRAIN: Duration = Duration::from_millis(500);
/// Seconds after which FreeSWITCH turns a profile's tracing off by itself, beyond the
/// call's own longest duration.
const SAFETY_MARGIN: u64 = 60;

/// The call's SIP exchange as FreeSWITCH traced it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SipTrace {
    /// The profiles traced.
    pub profiles: Vec<String>,
    pub messages: Vec<SipMessage>,
    /// More messages than [`MAX_KEPT`]/[`MAX_KEPT_BYTES`]: the rest are not shown.
    pub truncated: bool,
    /// Why there is no trace, or why it is partial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Tracing on for one call, until [`Tracer::stop`].
pub struct Tracer {
    profiles: Vec<String>,
    /// Profiles whose configuration traces: left on.
    configured_on: Vec<String>,
    group: String,
    call_ids: Vec<String>,
    pending: VecDeque<SipMessage>,
    pending_bytes: usize,
    trace: SipTrace,
    kept_bytes: usize,
    stopped: bool,
}

impl Tracer {
    /// Ask for the log, arm the scheduler's safety net, turn tracing on. `uuid` names the
    /// scheduled tasks; `longest` is the most the call can last.
    pub async fn start<S>(
        esl: &mut Esl<S>,
        uuid: &str,
        longest: Duration,
    ) -> Result<Tracer, EslError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    {
        let mut t = Tracer {
            profiles: Vec::new(),
            configured_on: Vec::new(),
            group: format!("switchyard-trace-{uuid}"),
            call_ids: Vec::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            trace: SipTrace::default(),
            kept_bytes: 0,
            stopped: false,
        };
        let Some(level) = siptrace::trace_level(&esl.api("sofia tracelevel").await?) else {
            t.trace.note = Some("FreeSWITCH did not say its `sofia tracelevel`".into());
            t.stopped = true;
            return Ok(t);
        };
        t.profiles = siptrace::profiles(&esl.api("sofia status").await?);
        if t.profiles.is_empty() {
            t.trace.note = Some("FreeSWITCH has no SIP profile to trace".into());
            t.stopped = true;
            return Ok(t);
        }
        t.configured_on = siptrace::configured_tracing(
            &esl.api("xml_locate configuration configuration name sofia.conf")
                .await?,
        );
        // The log first: nothing traced is missed.
        esl.send(&format!("log {level}")).await?;
        let after = longest.as_secs() + SAFETY_MARGIN;
        for p in t.to_turn_off() {
            esl.api(&format!(
                "sched_api +{after} {} sofia profile {p} siptrace off",
                t.group
            ))
            .await?;
        }
        for p in &t.profiles {
            esl.api(&format!("sofia profile {p} siptrace on")).await?;
        }
        t.trace.profiles = t.profiles.clone();
        Ok(t)
    }

    fn to_turn_off(&self) -> Vec<String> {
        self.profiles
            .iter()
            .filter(|p| !self.configured_on.contains(p))
            .cloned()
            .collect()
    }

    /// A log line read on the connection.
    pub fn see(&mut self, log: &Message) {
        let Some(m) = siptrace::parse_log(&log.body) else {
            return;
        };
        match &m.call_id {
            Some(id) if self.call_ids.contains(id) => self.keep(m),
            Some(_) => {
                self.pending_bytes += m.text.len();
                self.pending.push_back(m);
                while self.pending_bytes > MAX_PENDING_BYTES {
                    match self.pending.pop_front() {
                        Some(old) => self.pending_bytes -= old.text.len(),
                        None => break,
                    }
                }
            }
            None => {}
        }
    }

    /// One of the call's outbound legs has this `Call-ID`: its messages are kept.
    pub fn learn(&mut self, call_id: &str) {
        if self.call_ids.iter().any(|c| c == call_id) || self.call_ids.len() >= 16 {
            return;
        }
        self.call_ids.push(call_id.to_string());
        let (theirs, rest): (VecDeque<_>, VecDeque<_>) = self
            .pending
            .drain(..)
            .partition(|m| m.call_id.as_deref() == Some(call_id));
        self.pending = rest;
        self.pending_bytes = self.pending.iter().map(|m| m.text.len()).sum();
        for m in theirs {
            self.keep(m);
        }
    }

    fn keep(&mut self, m: SipMessage) {
        if self.trace.messages.len() >= MAX_KEPT || self.kept_bytes + m.text.len() > MAX_KEPT_BYTES
        {
            self.trace.truncated = true;
            return;
        }
        self.kept_bytes += m.text.len();
        self.trace.messages.push(m);
    }

    /// Tracing back as configured, the safety net removed, the log no longer sent. Done
    /// once; on a broken connection, the scheduler's task does it.
    pub async fn stop<S>(&mut self, esl: &mut Esl<S>) -> Result<(), EslError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    {
        if std::mem::replace(&mut self.stopped, true) {
            return Ok(());
        }
        for p in self.to_turn_off() {
            esl.api(&format!("sofia profile {p} siptrace off")).await?;
        }
        esl.api(&format!("sched_del {}", self.group)).await?;
        esl.send("nolog").await?;
        Ok(())
    }

    /// The call's messages, in the order FreeSWITCH logged them.
    pub fn finish(self) -> SipTrace {
        let mut t = self.trace;
        if t.note.is_none() && t.messages.is_empty() {
            t.note = Some(if self.call_ids.is_empty() {
                "no SIP leg was created (the call never reached a SIP profile)".into()
            } else {
                "FreeSWITCH logged no SIP message of this call".into()
            });
        }
        t
    }
}

/// The trace as lines under a call's report: time, offset from the first message,
/// direction, far end, first line (escaped); with `full`, each whole message below its line.
pub fn render(t: &SipTrace, full: bool) -> String {
    use crate::printable::{printable, printable_block};
    let mut s = String::new();
    if t.messages.is_empty() {
        if let Some(n) = &t.note {
            s.push_str(&format!("  SIP trace: none ({})\n", printable(n)));
        }
        return s;
    }
    s.push_str(&format!(
        "  SIP trace (FreeSWITCH's, profile {}):\n",
        printable(&t.profiles.join(", "))
    ));
    let first = t.messages[0].micros_of_day();
    for m in &t.messages {
        let offset = match (first, m.micros_of_day()) {
            // Across the PBX's midnight: a day later.
            (Some(f), Some(x)) => {
                format!("+{} ms", (x + 86_400_000_000 - f) % 86_400_000_000 / 1000)
            }
            _ => String::new(),
        };
        let arrow = if m.direction == "sent" { "->" } else { "<-" };
        s.push_str(&format!(
            "    {} {offset} {arrow} {}  {}\n",
            printable(&m.at),
            printable(&m.peer),
            printable(&m.first_line)
        ));
        if full {
            s.push_str("        ");
            s.push_str(&printable_block(m.text.trim_end(), "        "));
            s.push('\n');
        }
    }
    if t.truncated {
        s.push_str(&format!(
            "    ... more messages than switchyard keeps ({MAX_KEPT}, {} KiB)\n",
            MAX_KEPT_BYTES / 1024
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(call_id: &str, first: &str, at: &str) -> Message {
        Message {
            headers: Default::default(),
            body: format!("send 10 bytes to udp/[127.0.0.9]:5060 at {at}:\n-----\n{first}\nCall-ID: {call_id}\nContent-Length: 0\n\n"),
        }
    }

    fn tracer() -> Tracer {
        Tracer {
            profiles: vec!["external".into()],
            configured_on: Vec::new(),
            group: "g".into(),
            call_ids: Vec::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            trace: SipTrace {
                profiles: vec!["external".into()],
                ..Default::default()
            },
            kept_bytes: 0,
            stopped: false,
        }
    }

    /// Only the call's messages are kept, those logged before its Call-ID was known
    /// included; other calls' are dropped; the window of unknown ones stays bounded.
    #[test]
    fn only_the_calls_messages_are_kept() {
        let mut t = tracer();
        t.see(&log("ours", "INVITE sip:1@x SIP/2.0", "10:00:00.000000"));
        t.see(&log("theirs", "OPTIONS sip:x SIP/2.0", "10:00:00.001000"));
        t.learn("ours");
        t.see(&log("ours", "SIP/2.0 404 Not Found", "10:00:00.050000"));
        t.see(&log("theirs", "SIP/2.0 200 OK", "10:00:00.060000"));
        let firsts: Vec<_> = t
            .trace
            .messages
            .iter()
            .map(|m| m.first_line.clone())
            .collect();
        assert_eq!(firsts, ["INVITE sip:1@x SIP/2.0", "SIP/2.0 404 Not Found"]);
        for i in 0..10_000 {
            t.see(&log(
                &format!("other{i}"),
                "OPTIONS sip:x SIP/2.0",
                "10:00:01.000000",
            ));
        }
        assert!(t.pending_bytes <= MAX_PENDING_BYTES);
        let text = render(&t.finish(), false);
        let line = |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap_or("");
        assert!(
            line("INVITE").contains("10:00:00.000000 +0 ms -> udp/127.0.0.9:5060"),
            "{text}"
        );
        assert!(
            line("404 Not Found").contains("+50 ms -> udp/127.0.0.9:5060"),
            "{text}"
        );
        assert!(text.contains("profile external"), "{text}");
    }
}
