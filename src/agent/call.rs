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
//! - `--via GATEWAY` originates `sofia/gateway/GATEWAY/E164` itself instead (no dialplan);
//!   a `dial_did` test exports `sip_h_X-Switchyard-Call=U` so that the provider's call back
//!   to the PBX carries the mark ([`crate::agent::call_outcome`] watches it); the SIP trace
//!   is read on the same connection ([`crate::agent::call_trace`]).
//!
//! Bounded twice: switchyard hangs the call up (`uuid_kill`) once it has held it `hold`
//! seconds after answer, at `timeout`, on any error and on Ctrl-C; and should the
//! controller vanish, FreeSWITCH itself ends it (`originate_timeout` while ringing, the
//! tone's `loops` once answered).

use std::time::Duration;

use crate::agent::call_outcome::Watch;
pub use crate::agent::call_outcome::{leg_line, CallOutcome, Leg};
use crate::agent::call_trace::DRAIN;
use crate::agent::live::LiveError;
use crate::engine::call_tests::CallTestReport;
use crate::freeswitch::esl::{Esl, EslError, Incoming};
use crate::host::transport::{SshOptions, Transport, TransportError, Tunnel};
use crate::inputs::inventory::Host;
use crate::inputs::playbook::call_test::CallTest;

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
    /// Through this gateway, bypassing the dialplan's choice (`--via`).
    pub via: Option<Via>,
    /// A `dial_did` test: the DID (digits) whose call back from the provider is watched.
    pub loop_did: Option<String>,
}

/// One gateway and the number it is sent, both checked plain ([`check`]).
#[derive(Debug, Clone)]
pub struct Via {
    pub gateway: String,
    /// E.164 digits, as the numbering plan normalises the dialled number.
    pub number: String,
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
            dial: t.number().to_string(),
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
            dial: t.number().to_string(),
            timeout,
            hold: PLAY_HOLD,
            trace: false,
            via: None,
            loop_did: t
                .dial_did
                .as_ref()
                .map(|d| d.chars().filter(char::is_ascii_digit).collect()),
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
            Ok(o) if t.rings.is_some() => {
                let (passed, summary) =
                    o.rang(&t.rings.as_ref().map(|r| r.0.clone()).unwrap_or_default());
                let detail = serde_json::to_value(&o).unwrap_or_default();
                out.push(report(passed, summary, detail));
            }
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
    if let Some(v) = &spec.via {
        if !valid_user(&v.gateway) || !valid_number(&v.number) || is_emergency(&v.number, emergency)
        {
            return Err(CallError::Refused(format!(
                "--via `{}` to {}: a gateway name is letters, digits, `._-`, and the number E.164 digits",
                crate::printable::printable(&v.gateway),
                crate::printable::printable(&v.number)
            )));
        }
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
    // Only this call's channels: the filter before the subscription.
    esl.send(&format!("filter variable_switchyard_call {uuid}"))
        .await?;
    // A `dial_did` test's call back from the provider (see `Watch::see_inbound`).
    let mut mark = String::new();
    if let Some(d) = &spec.loop_did {
        for f in [
            format!("variable_sip_h_X-Switchyard-Call {uuid}"),
            format!("Caller-Destination-Number {d}"),
            format!("Caller-Destination-Number +{d}"),
        ] {
            esl.send(&format!("filter {f}")).await?;
        }
        mark = format!("^export:nolocal:sip_h_X-Switchyard-Call={uuid}");
    }
    esl.send("event plain CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE")
        .await?;
    let loops = spec.hold + 5;
    let cmd = match &spec.via {
        None => format!(
            "bgapi originate '{{origination_uuid={uuid},origination_caller_id_number={from},origination_caller_id_name=switchyard-test,originate_timeout={t},switchyard_call={uuid}}}loopback/m:^:set_user:{from}@{domain}^export:nolocal:switchyard_call={uuid}^export:nolocal:media_mix_inbound_outbound_codecs=true{mark}^transfer:{dial} XML {context}/{context}/inline' &playback(tone_stream://%(1000,0,440);loops={loops})",
            from = spec.from,
            t = spec.timeout,
            dial = spec.dial,
        ),
        // `--via`: the gateway's leg itself, no dialplan (loopback's destination would end
        // at the dial string's first `/`), with the caller ID the user's calls to a trunk
        // carry (`outbound_caller_id_number`, if it is a plain number).
        Some(v) => {
            let cid = esl
                .api(&format!(
                    "user_data {}@{domain} var outbound_caller_id_number",
                    spec.from
                ))
                .await?;
            let cid = match cid.trim() {
                c if crate::inputs::playbook::call_test::valid_number(c) => c.to_string(),
                _ => spec.from.clone(),
            };
            format!(
                "bgapi originate '{{origination_uuid={uuid},origination_caller_id_number={cid},origination_caller_id_name=switchyard-test,originate_timeout={t},switchyard_call={uuid}}}sofia/gateway/{gw}/{number}' &playback(tone_stream://%(1000,0,440);loops={loops})",
                t = spec.timeout,
                gw = v.gateway,
                number = v.number,
            )
        }
    };
    // Tracing on last, right before the call: nothing above can leave it on.
    let longest = Duration::from_secs(spec.timeout + spec.hold + 5) + HANGUP_GRACE;
    let mut tracer = match spec.trace {
        true => Some(crate::agent::call_trace::Tracer::start(esl, &uuid, longest).await?),
        false => None,
    };
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
    let mut w = Watch::new(uuid.clone(), spec.loop_did.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emergency_and_malformed_numbers_are_refused_before_anything_is_dialled() {
        let spec = |d: &str| CallSpec {
            from: "1000".into(),
            dial: d.into(),
            timeout: 30,
            hold: 3,
            trace: false,
            via: None,
            loop_did: None,
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
}
