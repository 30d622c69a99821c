//! `switchyard call`: one test call placed *by the PBX's own FreeSWITCH*, as one of its users
//! would place it, to prove that a trunk carries calls (a registered trunk can still refuse
//! every call: max call rate, number format, codecs, IP auth, one-way audio behind NAT).
//!
//! Over the host's one SSH connection, through an SSH `direct-tcpip` channel to its event
//! socket (as `watch --events` and `trunks measure` do), switchyard sends
//!
//! ```text
//! bgapi originate '{origination_uuid=U,switchyard_call=U,origination_caller_id_number=USER,
//!     originate_timeout=T}loopback/m:^:set_user:USER@DOMAIN^export:nolocal:switchyard_call=U
//!     ^export:nolocal:media_mix_inbound_outbound_codecs=true^transfer:NUMBER XML CONTEXT
//!     /CONTEXT/inline' &playback(tone_stream://%(1000,0,440);loops=N)
//! ```
//!
//! - `loopback` puts a second channel into the dialplan; `set_user` gives it the user's
//!   directory variables (outbound caller ID, `user_context`, ...) exactly as a registered
//!   phone's call has them, and `transfer` runs the user's own context on NUMBER: number
//!   normalisation, gateway order and failover are the real ones.
//! - `switchyard_call=U` is on every channel of the call (the originate variables on both
//!   loopback channels, `export` on each outbound leg), so one event filter sees this call's
//!   channels and no other call's. (`call_uuid` would not do: FreeSWITCH resets it to each
//!   channel's own UUID when the channel routes.)
//! - The trunk is offered the codecs the SIP profile (or the gateway's
//!   `absolute_codec_string`) offers: FreeSWITCH 1.10 otherwise offers only the originating
//!   channel's codec, here loopback's L16 (`switch_core_media_prepare_codecs`), so
//!   `media_mix_inbound_outbound_codecs` is exported to the outbound leg.
//! - The originating side plays a tone, so the outbound leg has audio to send: its
//!   `rtp_audio_out_packet_count` says the PBX sent media, `rtp_audio_in_packet_count` that the
//!   far end did (FreeSWITCH sets both when a channel hangs up, `switch_core_media.c`).
//! - The outbound SIP legs (`sofia/...`) report what the provider said: `sip_term_status`,
//!   `hangup_cause`, `sip_gateway_name`, `start_uepoch`/`progress_uepoch`/`answer_uepoch`;
//!   the dialplan's channel reports `bridge_hangup_cause`/`originate_disposition`.
//!
//! Bounded twice: switchyard hangs the call up (`uuid_kill`) once it has held it `hold`
//! seconds after answer, at `timeout`, on any error and on Ctrl-C; and should the
//! controller vanish, FreeSWITCH itself ends it (`originate_timeout` while ringing, the
//! tone's `loops` once answered).

use std::time::Duration;

use serde::Serialize;

use crate::agent::call_trace::DRAIN;
use crate::agent::live::LiveError;
use crate::engine::call_tests::CallTestReport;
use crate::freeswitch::esl::{Esl, EslError, Incoming, Message};
use crate::host::transport::{SshOptions, Transport, TransportError, Tunnel};
use crate::inputs::inventory::Host;
use crate::inputs::playbook::call_test::{CallExpect, CallTest};

/// How long after hanging up switchyard waits for FreeSWITCH's last hangup events.
const HANGUP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Esl(#[from] EslError),
    /// Refused before connecting or before dialling (the text is ours, or escaped).
    #[error("{0}")]
    Refused(String),
}

/// One test call to place.
pub struct CallSpec {
    /// A directory user of the PBX (digits, letters, `._-`).
    pub from: String,
    /// The number as the user would dial it (`+` and digits).
    pub dial: String,
    /// Seconds until the call must be answered.
    pub timeout: u64,
    /// Seconds the answered call is held to measure media.
    pub hold: u64,
    /// Capture the call's SIP exchange ([`crate::agent::call_trace`]).
    pub trace: bool,
}

/// One outbound SIP leg (one gateway tried).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Leg {
    pub gateway: Option<String>,
    /// The number as the dialplan sent it to the gateway (after normalisation).
    pub number_sent: Option<String>,
    pub sip_status: Option<String>,
    pub hangup_cause: Option<String>,
    pub answered: bool,
    /// Milliseconds from the INVITE to the first ringing or early media (else to answer).
    pub post_dial_delay_ms: Option<u64>,
    pub rtp_in_packets: Option<u64>,
    pub rtp_out_packets: Option<u64>,
    /// The leg's SIP `Call-ID` (`sip_call_id`): its messages in the trace.
    pub call_id: Option<String>,
}

/// What the call did. Every text is the PBX's, to be escaped before it is shown.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallOutcome {
    pub answered: bool,
    /// The leg that carried the call (answered, else the last tried).
    pub leg: Option<Leg>,
    /// Every gateway tried, in order (failover shows here).
    pub attempts: Vec<Leg>,
    /// The dialplan channel's view: `bridge_hangup_cause`, else `originate_disposition`.
    pub bridge_hangup_cause: Option<String>,
    /// The test call's own hangup cause (a dialplan that never reached a gateway shows here).
    pub hangup_cause: Option<String>,
    /// Set when switchyard could not see the call end (its report is then partial).
    pub incomplete: Option<String>,
    /// Media both ways on the leg that carried the call.
    pub media: bool,
    /// The call's SIP exchange, when it was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_trace: Option<crate::agent::call_trace::SipTrace>,
}

impl CallOutcome {
    /// Answered, with RTP received and sent.
    pub fn passed(&self) -> bool {
        self.answered && self.media
    }
}

impl CallOutcome {
    /// The verdict in a few words (for a report's first line).
    pub fn verdict(&self) -> String {
        if let Some(why) = &self.incomplete {
            return format!("INCOMPLETE: {why}");
        }
        match (self.answered, self.media) {
            (true, true) => "answered, media both ways".into(),
            (true, false) => {
                let l = self.leg.clone().unwrap_or_default();
                match (
                    l.rtp_in_packets.unwrap_or(0),
                    l.rtp_out_packets.unwrap_or(0),
                ) {
                    (0, 0) => "answered, NO media either way".into(),
                    (0, _) => "answered, ONE-WAY media: nothing received from the far end".into(),
                    _ => "answered, ONE-WAY media: nothing sent to the far end".into(),
                }
            }
            (false, _) => "NOT answered".into(),
        }
    }

    /// Whether the call did what was expected (and was seen to its end).
    pub fn met(&self, expect: CallExpect) -> bool {
        self.incomplete.is_none()
            && match expect {
                CallExpect::Answered => self.passed(),
                CallExpect::Refused => !self.answered,
            }
    }
}

impl CallOutcome {
    /// A plain-language reading of a failed call, from a table of known causes (README
    /// "A test call"). `None` for a call that passed or a cause not in the table.
    pub fn explanation(&self) -> Option<String> {
        let Some(l) = &self.leg else {
            return (!self.answered).then(|| {
                "no gateway was tried: the number matched no trunk route of the user's context (see `switchyard route`)".into()
            });
        };
        if self.answered {
            return match (l.rtp_in_packets.unwrap_or(0), l.rtp_out_packets.unwrap_or(0)) {
                (0, _) => Some("no RTP from the far end: its audio does not reach the PBX; usually NAT, the SDP advertising an address the provider cannot send to (`ext-rtp-ip`), or a firewall in front of the RTP ports".into()),
                (_, 0) => Some("the PBX sent no RTP: check the codecs (transcoding) and that the far end's SDP address is reachable from the PBX".into()),
                _ => None,
            };
        }
        let sent = l
            .number_sent
            .as_deref()
            .map(|n| format!(" (sent as {})", crate::printable::printable(n)))
            .unwrap_or_default();
        let failover = if self.attempts.len() > 1 {
            format!(
                "; {} gateways were tried in turn (failover)",
                self.attempts.len()
            )
        } else {
            String::new()
        };
        let text = match l.sip_status.as_deref().unwrap_or("") {
            "603" => "603 Declined: the provider refused the call; usually the account's maximum call rate, or an account not registered/allowed to call out".to_string(),
            "404" | "484" => format!("the provider does not know the number in this form{sent}: check the numbering plan's normalisation to E.164"),
            "488" | "415" => "no common codec: the provider accepts none of the codecs offered (the profile's, or the gateway's `codecs`/`wavix_codecs`)".to_string(),
            "401" | "407" | "403" => "refused as unauthorised: wrong credentials, or the provider does not accept calls from this PBX's source address (IP authentication)".to_string(),
            "408" | "503" | "502" | "504" => format!("the provider's region did not answer or is unavailable{failover}"),
            "486" | "600" => "the callee is busy".to_string(),
            "480" | "487" | "" if l.post_dial_delay_ms.is_some() => "it rang and was not answered in time".to_string(),
            _ => return None,
        };
        Some(text)
    }
}

/// One line for a leg: gateway, SIP status, cause, post-dial delay, RTP (escaped).
pub fn leg_line(l: &Leg) -> String {
    fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
        v.as_ref()
            .map(|v| crate::printable::printable(&v.to_string()).into_owned())
            .unwrap_or_else(|| "-".into())
    }
    format!(
        "gateway {}, SIP {}, cause {}, post-dial delay {}, RTP in {} / out {} packets",
        opt(&l.gateway),
        opt(&l.sip_status),
        opt(&l.hangup_cause),
        l.post_dial_delay_ms
            .map(|m| format!("{m} ms"))
            .unwrap_or_else(|| "-".into()),
        opt(&l.rtp_in_packets),
        opt(&l.rtp_out_packets),
    )
}

/// What places a play's call tests during a rollout (`apply`, and `drift`/`watch --fix`).
pub fn tester() -> crate::engine::call_tests::CallTester {
    crate::engine::call_tests::CallTester(std::sync::Arc::new(|t, host, tests, budget| {
        Box::pin(run_tests(t, host, tests, budget))
    }))
}

/// Seconds an answered test call of a play is held.
const PLAY_HOLD: u64 = 3;
/// Seconds a test call of a play may ring at most (less when the budget is short).
const PLAY_TIMEOUT: u64 = 30;

/// A play's call tests on one host, over its connection, one after the other within
/// `budget` (a call that would not fit is not placed, and fails).
pub async fn run_tests(
    tr: &mut Transport,
    host: &Host,
    tests: &[CallTest],
    budget: Duration,
) -> Vec<CallTestReport> {
    let started = tokio::time::Instant::now();
    let emergency = crate::inputs::playbook::call_test::emergency_numbers(&host.vars);
    let mut esl = None;
    let mut out = Vec::new();
    for t in tests {
        let report = |passed: bool, summary: String, detail: serde_json::Value| CallTestReport {
            name: t.name.clone(),
            dial: t.dial.clone(),
            passed,
            summary,
            detail,
        };
        let left = budget.saturating_sub(started.elapsed()).as_secs();
        // Ringing, the hold, and the hang-up's grace must all fit.
        let timeout = PLAY_TIMEOUT.min(left.saturating_sub(PLAY_HOLD + 5 + HANGUP_GRACE.as_secs()));
        if timeout < 5 {
            out.push(report(
                false,
                "not placed: call_test_seconds used up".into(),
                serde_json::Value::Null,
            ));
            continue;
        }
        let spec = CallSpec {
            from: t.from.0.clone(),
            dial: t.dial.clone(),
            timeout,
            hold: PLAY_HOLD,
            trace: false,
        };
        if let Err(e) = check(&spec, &emergency) {
            out.push(report(
                false,
                format!("not placed: {e}"),
                serde_json::Value::Null,
            ));
            continue;
        }
        if esl.is_none() {
            match crate::agent::live::open_esl(tr, host).await {
                Ok(e) => esl = Some(e),
                Err(e) => {
                    let why = crate::printable::printable(&e.to_string()).into_owned();
                    out.push(report(
                        false,
                        format!("not placed: {why}"),
                        serde_json::Value::Null,
                    ));
                    continue;
                }
            }
        }
        let Some(conn) = esl.as_mut() else { continue };
        match call_over(conn, &spec).await {
            Ok(o) => {
                let mut summary = o.verdict();
                if let Some(l) = &o.leg {
                    summary.push_str(&format!(" ({})", leg_line(l)));
                }
                if let Some(why) = o.explanation().filter(|_| !o.met(t.expect)) {
                    summary.push_str(&format!(": {why}"));
                }
                let detail = serde_json::to_value(&o).unwrap_or_default();
                out.push(report(o.met(t.expect), summary, detail));
            }
            Err(e) => {
                let why = crate::printable::printable(&e.to_string()).into_owned();
                out.push(report(
                    false,
                    format!("failed: {why}"),
                    serde_json::Value::Null,
                ));
                // The connection is unusable after an error: a new one for the next call.
                esl = None;
            }
        }
    }
    out
}

/// `s` is safe inside an originate string (no space, quote, brace, comma, slash, caret).
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Check a call before anything is contacted.
pub fn check(spec: &CallSpec, emergency: &[String]) -> Result<(), CallError> {
    use crate::inputs::playbook::call_test::{is_emergency, valid_number, valid_user};
    if !valid_number(&spec.dial) {
        return Err(CallError::Refused(format!(
            "--dial `{}`: a number is an optional `+` and 2 to 20 digits",
            crate::printable::printable(&spec.dial)
        )));
    }
    if is_emergency(&spec.dial, emergency) {
        return Err(CallError::Refused(format!(
            "--dial {}: an emergency number; switchyard never places a test call to one",
            spec.dial
        )));
    }
    if !valid_user(&spec.from) {
        return Err(CallError::Refused(format!(
            "--from `{}`: a directory user id (letters, digits, `._-`)",
            crate::printable::printable(&spec.from)
        )));
    }
    Ok(())
}

/// Place the call on `host` and report it. Refused numbers never reach here ([`check`]).
pub async fn place(
    host: &Host,
    ssh: &SshOptions,
    spec: &CallSpec,
) -> Result<CallOutcome, CallError> {
    let mut tr = Transport::connect(&host.connection, ssh).await?;
    let res = async {
        let mut esl = crate::agent::live::open_esl(&mut tr, host).await?;
        call_over(&mut esl, spec).await
    }
    .await;
    tr.close().await;
    res
}

/// An answer of FreeSWITCH's, trimmed, if it is a plain word (else `None`: never put into a
/// command).
fn word(answer: &str) -> Option<String> {
    let a = answer.trim();
    plain(a).then(|| a.to_string())
}

async fn call_over(esl: &mut Esl<Tunnel>, spec: &CallSpec) -> Result<CallOutcome, CallError> {
    let refused = |m: String| Err(CallError::Refused(m));
    let Some(domain) = word(&esl.api("global_getvar domain").await?) else {
        return refused("FreeSWITCH's `domain` variable is not a plain host name".into());
    };
    let exists = esl
        .api(&format!("user_exists id {} {domain}", spec.from))
        .await?;
    if exists.trim() != "true" {
        return refused(format!(
            "user {} is not in the directory of domain {domain}",
            spec.from
        ));
    }
    let context = esl
        .api(&format!(
            "user_data {}@{domain} var user_context",
            spec.from
        ))
        .await?;
    let context = match context.trim() {
        "" => "default".to_string(),
        c => match word(c) {
            Some(c) => c,
            None => return refused("the user's `user_context` is not a plain name".into()),
        },
    };
    let uuid = esl.api("create_uuid").await?.trim().to_string();
    if uuid.len() != 36 || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return refused("FreeSWITCH's `create_uuid` answered no UUID".into());
    }
    let longest = Duration::from_secs(spec.timeout + spec.hold + 5) + HANGUP_GRACE;
    let mut tracer = match spec.trace {
        true => Some(crate::agent::call_trace::Tracer::start(esl, &uuid, longest).await?),
        false => None,
    };
    // Only this call's channels: the filter before the subscription.
    esl.send(&format!("filter variable_switchyard_call {uuid}"))
        .await?;
    esl.send("event plain CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE")
        .await?;
    let loops = spec.hold + 5;
    let cmd = format!(
        "bgapi originate '{{origination_uuid={uuid},origination_caller_id_number={from},origination_caller_id_name=switchyard-test,originate_timeout={t},switchyard_call={uuid}}}loopback/m:^:set_user:{from}@{domain}^export:nolocal:switchyard_call={uuid}^export:nolocal:media_mix_inbound_outbound_codecs=true^transfer:{dial} XML {context}/{context}/inline' &playback(tone_stream://%(1000,0,440);loops={loops})",
        from = spec.from,
        t = spec.timeout,
        dial = spec.dial,
    );
    let reply = esl.send(&cmd).await?;
    if !reply
        .header("Reply-Text")
        .is_some_and(|t| t.starts_with("+OK"))
    {
        if let Some(t) = tracer.as_mut() {
            t.stop(esl).await?;
        }
        return refused(format!(
            "FreeSWITCH refused the originate: {}",
            crate::printable::printable(reply.header("Reply-Text").unwrap_or(""))
        ));
    }
    let mut w = Watch::new(uuid.clone());
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(spec.timeout + 5);
    let mut killed_at: Option<tokio::time::Instant> = None;
    let mut done_at: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let result = loop {
        let now = tokio::time::Instant::now();
        // Hang up: held long enough, out of time, or asked to stop.
        let hold_over = w
            .answered_at
            .is_some_and(|a| now >= a + Duration::from_secs(spec.hold));
        if killed_at.is_none() && (hold_over || now >= deadline || crate::interrupt::requested()) {
            if let Err(e) = esl.api(&format!("uuid_kill {uuid}")).await {
                break Err(e);
            }
            killed_at = Some(now);
        }
        if w.done() {
            // With a trace, the log is read a little longer: the last ACK, or the 200 to a
            // BYE, is logged after the channel is gone.
            let since = *done_at.get_or_insert(now);
            if tracer.is_none() || now >= since + DRAIN {
                break Ok(());
            }
        }
        if killed_at.is_some_and(|k| now >= k + HANGUP_GRACE) {
            w.outcome.incomplete = Some("the call's hangup events did not all arrive".into());
            break Ok(());
        }
        let ready = tokio::select! {
            r = esl.readable() => r.map(|_| true),
            _ = tick.tick() => Ok(false),
        };
        match ready {
            Ok(true) => match esl.incoming().await {
                Ok(Incoming::Event(e)) => {
                    w.see(&e, tokio::time::Instant::now());
                    if let Some(t) = tracer.as_mut() {
                        w.legs
                            .iter()
                            .filter_map(|l| l.1.call_id.as_deref())
                            .for_each(|id| t.learn(id));
                    }
                }
                Ok(Incoming::Log(l)) => {
                    if let Some(t) = tracer.as_mut() {
                        t.see(&l);
                    }
                }
                Err(e) => break Err(e),
            },
            Ok(false) => {}
            Err(e) => break Err(e),
        }
    };
    if let Err(e) = result {
        // Whatever went wrong, the call does not outlive switchyard's interest in it, nor
        // its tracing (else FreeSWITCH's scheduler turns that off).
        let _ = esl.api(&format!("uuid_kill {uuid}")).await;
        if let Some(t) = tracer.as_mut() {
            let _ = t.stop(esl).await;
        }
        return Err(e.into());
    }
    let mut outcome = w.finish();
    if let Some(mut t) = tracer {
        t.stop(esl).await?;
        outcome.sip_trace = Some(t.finish());
    }
    Ok(outcome)
}

/// This call's channels, as their events arrive.
struct Watch {
    uuid: String,
    /// Every channel of the call: (uuid, is an outbound SIP leg, hung up).
    channels: Vec<(String, bool, bool)>,
    legs: Vec<(String, Leg)>,
    answered_at: Option<tokio::time::Instant>,
    outcome: CallOutcome,
}

fn var_u64(e: &Message, name: &str) -> Option<u64> {
    e.header(name).and_then(|v| v.trim().parse().ok())
}

fn var_s(e: &Message, name: &str) -> Option<String> {
    e.header(name)
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(200).collect())
}

impl Watch {
    fn new(uuid: String) -> Watch {
        Watch {
            uuid,
            channels: Vec::new(),
            legs: Vec::new(),
            answered_at: None,
            outcome: CallOutcome::default(),
        }
    }

    fn see(&mut self, e: &Message, now: tokio::time::Instant) {
        if e.header("variable_switchyard_call") != Some(self.uuid.as_str()) {
            return;
        }
        let Some(id) = e.header("Unique-ID").map(str::to_string) else {
            return;
        };
        let sofia = e
            .header("Channel-Name")
            .is_some_and(|n| n.starts_with("sofia/"));
        if !self.channels.iter().any(|c| c.0 == id) {
            if self.channels.len() >= 64 {
                return;
            }
            self.channels.push((id.clone(), sofia, false));
            if sofia {
                self.legs.push((id.clone(), Leg::default()));
            }
        }
        let event = e.header("Event-Name").unwrap_or("");
        if let Some((_, leg)) = self.legs.iter_mut().find(|l| l.0 == id) {
            if leg.gateway.is_none() {
                leg.gateway = var_s(e, "variable_sip_gateway_name");
            }
            if leg.number_sent.is_none() {
                leg.number_sent = var_s(e, "Caller-Destination-Number");
            }
            if leg.call_id.is_none() {
                leg.call_id = var_s(e, "variable_sip_call_id");
            }
            if event == "CHANNEL_ANSWER" {
                leg.answered = true;
                self.answered_at.get_or_insert(now);
            }
            if event == "CHANNEL_HANGUP_COMPLETE" {
                leg.sip_status = var_s(e, "variable_sip_term_status");
                leg.hangup_cause =
                    var_s(e, "variable_hangup_cause").or_else(|| var_s(e, "Hangup-Cause"));
                leg.rtp_in_packets = var_u64(e, "variable_rtp_audio_in_packet_count");
                leg.rtp_out_packets = var_u64(e, "variable_rtp_audio_out_packet_count");
                leg.answered |= var_u64(e, "variable_answer_uepoch").is_some_and(|t| t > 0);
                // From the channel's creation (the INVITE) to ringing or early media, else
                // to the answer: FreeSWITCH's microsecond times, where a time that never
                // came is 0 (its `progressmsec` is 0 both then and for a sub-millisecond
                // 180 on a fast network).
                let at = |name: &str| var_u64(e, name).filter(|t| *t > 0);
                let reached = [
                    at("variable_progress_uepoch"),
                    at("variable_progress_media_uepoch"),
                ]
                .into_iter()
                .flatten()
                .min()
                .or(at("variable_answer_uepoch").filter(|_| leg.answered));
                leg.post_dial_delay_ms = match (reached, at("variable_start_uepoch")) {
                    (Some(r), Some(s)) => Some(r.saturating_sub(s) / 1000),
                    _ => None,
                };
                // FreeSWITCH sets `sip_term_status` for a final failure response or a BYE it
                // received; an answered call it hung up itself was a `200`.
                if leg.sip_status.is_none() && leg.answered {
                    leg.sip_status = Some("200".into());
                }
            }
        }
        if event == "CHANNEL_HANGUP_COMPLETE" {
            if let Some(c) = self.channels.iter_mut().find(|c| c.0 == id) {
                c.2 = true;
            }
            if id == self.uuid {
                self.outcome.hangup_cause =
                    var_s(e, "variable_hangup_cause").or_else(|| var_s(e, "Hangup-Cause"));
            } else if !sofia {
                // The dialplan's channel (loopback's second leg).
                if let Some(c) = var_s(e, "variable_bridge_hangup_cause")
                    .or_else(|| var_s(e, "variable_last_bridge_hangup_cause"))
                    .or_else(|| var_s(e, "variable_originate_disposition"))
                {
                    self.outcome.bridge_hangup_cause = Some(c);
                }
            }
        }
    }

    /// The test call's own channel and every other one seen have hung up.
    fn done(&self) -> bool {
        self.channels.iter().any(|c| c.0 == self.uuid) && self.channels.iter().all(|c| c.2)
    }

    fn finish(mut self) -> CallOutcome {
        let attempts: Vec<Leg> = self.legs.into_iter().map(|l| l.1).collect();
        let leg = attempts
            .iter()
            .find(|l| l.answered)
            .or(attempts.last())
            .cloned();
        self.outcome.answered = leg.as_ref().is_some_and(|l| l.answered);
        self.outcome.media = leg.as_ref().is_some_and(|l| {
            l.rtp_in_packets.unwrap_or(0) > 0 && l.rtp_out_packets.unwrap_or(0) > 0
        });
        self.outcome.leg = leg;
        self.outcome.attempts = attempts;
        self.outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(pairs: &[(&str, &str)]) -> Message {
        Message {
            headers: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: String::new(),
        }
    }

    #[test]
    fn emergency_and_malformed_numbers_are_refused_before_anything_is_dialled() {
        let spec = |d: &str| CallSpec {
            from: "1000".into(),
            dial: d.into(),
            timeout: 30,
            hold: 3,
            trace: false,
        };
        for n in ["911", "+112", "999", "000"] {
            assert!(
                matches!(check(&spec(n), &[]), Err(CallError::Refused(m)) if m.contains("emergency")),
                "{n}"
            );
        }
        assert!(check(&spec("117"), &["117".into()]).is_err());
        assert!(check(&spec("12125550100"), &["117".into()]).is_ok());
        for bad in ["1 2", "12'x", "12/34", "", "+", "1^2"] {
            assert!(check(&spec(bad), &[]).is_err(), "{bad}");
        }
        let mut s = spec("12125550100");
        s.from = "1000 &hangup".into();
        assert!(check(&s, &[]).is_err());
    }

    /// The events of a call the provider refused with 603 and of one it answered without
    /// sending RTP (shapes as FreeSWITCH 1.10 sends them).
    #[test]
    fn outcome_from_events() {
        let u = "a-uuid";
        let now = tokio::time::Instant::now();
        let mut w = Watch::new(u.into());
        for e in [
            ev(&[
                ("Event-Name", "CHANNEL_CREATE"),
                ("variable_switchyard_call", u),
                ("Unique-ID", u),
                ("Channel-Name", "loopback/x-a"),
            ]),
            ev(&[
                ("Event-Name", "CHANNEL_CREATE"),
                ("variable_switchyard_call", u),
                ("Unique-ID", "b"),
                ("Channel-Name", "loopback/x-b"),
            ]),
            ev(&[
                ("Event-Name", "CHANNEL_CREATE"),
                ("variable_switchyard_call", u),
                ("Unique-ID", "s"),
                ("Channel-Name", "sofia/external/1212@p"),
                ("variable_sip_gateway_name", "wavix"),
            ]),
            ev(&[
                ("Event-Name", "CHANNEL_CREATE"),
                ("variable_switchyard_call", "other"),
                ("Unique-ID", "o"),
                ("Channel-Name", "sofia/x"),
            ]),
            ev(&[
                ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
                ("variable_switchyard_call", u),
                ("Unique-ID", "s"),
                ("Channel-Name", "sofia/external/1212@p"),
                ("variable_sip_term_status", "603"),
                ("variable_hangup_cause", "CALL_REJECTED"),
                ("variable_start_uepoch", "1000000"),
                ("variable_progress_uepoch", "0"),
                ("variable_answer_uepoch", "0"),
            ]),
            ev(&[
                ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
                ("variable_switchyard_call", u),
                ("Unique-ID", "b"),
                ("Channel-Name", "loopback/x-b"),
                ("variable_originate_disposition", "CALL_REJECTED"),
            ]),
        ] {
            w.see(&e, now);
        }
        assert!(!w.done());
        w.see(
            &ev(&[
                ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
                ("variable_switchyard_call", u),
                ("Unique-ID", u),
                ("Channel-Name", "loopback/x-a"),
                ("variable_hangup_cause", "CALL_REJECTED"),
            ]),
            now,
        );
        assert!(w.done());
        let o = w.finish();
        assert!(!o.answered && !o.passed());
        let leg = o.leg.unwrap();
        assert_eq!(leg.sip_status.as_deref(), Some("603"));
        assert_eq!(leg.gateway.as_deref(), Some("wavix"));
        assert_eq!(o.bridge_hangup_cause.as_deref(), Some("CALL_REJECTED"));
        assert_eq!(o.attempts.len(), 1);

        let mut w = Watch::new(u.into());
        w.see(
            &ev(&[
                ("Event-Name", "CHANNEL_ANSWER"),
                ("variable_switchyard_call", u),
                ("Unique-ID", "s"),
                ("Channel-Name", "sofia/external/1212@p"),
            ]),
            now,
        );
        w.see(
            &ev(&[
                ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
                ("variable_switchyard_call", u),
                ("Unique-ID", "s"),
                ("Channel-Name", "sofia/external/1212@p"),
                ("variable_sip_term_status", "200"),
                ("variable_rtp_audio_in_packet_count", "0"),
                ("variable_rtp_audio_out_packet_count", "150"),
                ("variable_start_uepoch", "1000000"),
                ("variable_progress_uepoch", "0"),
                ("variable_progress_media_uepoch", "0"),
                ("variable_answer_uepoch", "1042000"),
            ]),
            now,
        );
        let o = w.finish();
        assert!(o.answered && !o.media && !o.passed());
        assert_eq!(o.leg.unwrap().post_dial_delay_ms, Some(42));
    }
}
