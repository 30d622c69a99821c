//! What one `switchyard call` did: its outbound SIP legs (one per gateway tried), what each
//! reported when it hung up, the verdict and its plain-language explanation, read from the
//! call's channels' events as they arrive ([`crate::agent::call`] places the call).

use serde::Serialize;

use crate::freeswitch::esl::Message;
use crate::inputs::playbook::call_test::CallExpect;

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
    /// A `dial_did` test's call back from the provider, once seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound: Option<Inbound>,
}

/// The PBX's inbound leg of a `dial_did` test: the provider's call to the DID.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Inbound {
    /// The number the provider delivered.
    pub did: Option<String>,
    /// The directory user the PBX's DID route bridged it to (`dialed_user`).
    pub user: Option<String>,
    /// It rang (ringing or early media passed back) or was answered.
    pub rang: bool,
    pub answered: bool,
    pub hangup_cause: Option<String>,
    /// How the bridge to the user ended (`originate_disposition`, else
    /// `bridge_hangup_cause`): `USER_NOT_REGISTERED` for a phone that is not there.
    pub bridge_cause: Option<String>,
}

impl CallOutcome {
    /// A `dial_did` test's verdict: the DID came back inbound and rang `user`; and a line
    /// saying what happened.
    pub fn rang(&self, user: &str) -> (bool, String) {
        let p = |v: &Option<String>| {
            v.as_deref()
                .map(|s| crate::printable::printable(s).into_owned())
                .unwrap_or_else(|| "-".into())
        };
        if let Some(why) = &self.incomplete {
            return (false, format!("INCOMPLETE: {why}"));
        }
        let Some(i) = &self.inbound else {
            let leg = self
                .leg
                .as_ref()
                .map(leg_line)
                .unwrap_or_else(|| "no gateway was tried".to_string());
            return (
                false,
                format!("the DID never came back inbound from the provider ({leg})"),
            );
        };
        let reached = i.user.as_deref() == Some(user);
        let what = format!(
            "DID {} came back inbound, reached user {}, {} (cause {}, bridge {})",
            p(&i.did),
            p(&i.user),
            match (i.answered, i.rang) {
                (true, _) => "answered",
                (false, true) => "rang",
                _ => "did NOT ring",
            },
            p(&i.hangup_cause),
            p(&i.bridge_cause),
        );
        if reached && i.rang {
            (true, what)
        } else if !reached {
            (false, format!("{what}: expected user {user}; check the DID's route (`did_routes`, `switchyard route --from-trunk`)"))
        } else {
            (false, format!("{what}: is user {user}'s phone registered?"))
        }
    }
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

/// This call's channels, as their events arrive.
pub(crate) struct Watch {
    uuid: String,
    /// A `dial_did` test's DID (digits): its call back from the provider is watched too.
    did: Option<String>,
    /// Every channel of the call: (uuid, is an outbound SIP leg, hung up).
    channels: Vec<(String, bool, bool)>,
    pub(crate) legs: Vec<(String, Leg)>,
    pub(crate) answered_at: Option<tokio::time::Instant>,
    pub(crate) outcome: CallOutcome,
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
    pub(crate) fn new(uuid: String, did: Option<String>) -> Watch {
        Watch {
            uuid,
            did,
            channels: Vec::new(),
            legs: Vec::new(),
            answered_at: None,
            outcome: CallOutcome::default(),
        }
    }

    pub(crate) fn see(&mut self, e: &Message, now: tokio::time::Instant) {
        if e.header("variable_switchyard_call") != Some(self.uuid.as_str()) {
            self.see_inbound(e);
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

    /// The provider's call back to the PBX in a `dial_did` test: an inbound SIP channel
    /// carrying the header the call's outbound leg sent (`X-Switchyard-Call`), or, from a
    /// provider that drops unknown headers, delivering the DID.
    fn see_inbound(&mut self, e: &Message) {
        let Some(did) = &self.did else { return };
        let sip = e
            .header("Channel-Name")
            .is_some_and(|n| n.starts_with("sofia/"));
        if e.header("Call-Direction") != Some("inbound") || !sip {
            return;
        }
        let to = e
            .header("Caller-Destination-Number")
            .unwrap_or("")
            .trim_start_matches('+');
        match e.header("variable_sip_h_X-Switchyard-Call") {
            Some(u) if u == self.uuid => {}
            None if to == did => {}
            _ => return,
        }
        let Some(id) = e.header("Unique-ID").map(str::to_string) else {
            return;
        };
        if !self.channels.iter().any(|c| c.0 == id) {
            if self.channels.len() >= 64 {
                return;
            }
            self.channels.push((id.clone(), false, false));
        }
        let i = self.outcome.inbound.get_or_insert_with(Inbound::default);
        if i.did.is_none() {
            i.did = var_s(e, "Caller-Destination-Number");
        }
        if let Some(u) = var_s(e, "variable_dialed_user") {
            i.user = Some(u);
        }
        match e.header("Event-Name").unwrap_or("") {
            "CHANNEL_PROGRESS" | "CHANNEL_PROGRESS_MEDIA" => i.rang = true,
            "CHANNEL_ANSWER" => (i.rang, i.answered) = (true, true),
            "CHANNEL_HANGUP_COMPLETE" => {
                let at = |name: &str| var_u64(e, name).is_some_and(|t| t > 0);
                i.answered |= at("variable_answer_uepoch");
                i.rang |= i.answered
                    || at("variable_progress_uepoch")
                    || at("variable_progress_media_uepoch");
                i.hangup_cause =
                    var_s(e, "variable_hangup_cause").or_else(|| var_s(e, "Hangup-Cause"));
                i.bridge_cause = var_s(e, "variable_originate_disposition")
                    .or_else(|| var_s(e, "variable_bridge_hangup_cause"));
                if let Some(c) = self.channels.iter_mut().find(|c| c.0 == id) {
                    c.2 = true;
                }
            }
            _ => {}
        }
    }

    /// The test call's own channel and every other one seen have hung up.
    pub(crate) fn done(&self) -> bool {
        self.channels.iter().any(|c| c.0 == self.uuid) && self.channels.iter().all(|c| c.2)
    }

    pub(crate) fn finish(mut self) -> CallOutcome {
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

    /// The events of a call the provider refused with 603 and of one it answered without
    /// sending RTP (shapes as FreeSWITCH 1.10 sends them).
    #[test]
    fn outcome_from_events() {
        let u = "a-uuid";
        let now = tokio::time::Instant::now();
        let mut w = Watch::new(u.into(), None);
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

        let mut w = Watch::new(u.into(), None);
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

    /// A `dial_did` test: the provider's call back (marked by the header the outbound leg
    /// sent) is judged by the user it reached; another test's call back, and an inbound
    /// call to another number, are not this call's.
    #[test]
    fn a_did_loop_is_judged_by_the_user_its_call_back_reached() {
        let u = "a-uuid";
        let now = tokio::time::Instant::now();
        let inbound = |uuid: &str, mark: Option<&str>, to: &str, user: &str| {
            let mut h = vec![
                ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
                ("Unique-ID", uuid),
                ("Channel-Name", "sofia/external/14155550190"),
                ("Call-Direction", "inbound"),
                ("Caller-Destination-Number", to),
                ("variable_dialed_user", user),
                ("variable_answer_uepoch", "0"),
                ("variable_progress_uepoch", "1000"),
                ("variable_originate_disposition", "ORIGINATOR_CANCEL"),
            ];
            if let Some(m) = mark {
                h.push(("variable_sip_h_X-Switchyard-Call", m));
            }
            ev(&h)
        };
        let mut w = Watch::new(u.into(), Some("14155550190".into()));
        w.see(
            &inbound("other-test", Some("another-uuid"), "14155550190", "1001"),
            now,
        );
        w.see(&inbound("stranger", None, "12125550100", "1002"), now);
        assert!(w.outcome.inbound.is_none());
        w.see(&inbound("back", Some(u), "+14155550190", "1000"), now);
        let o = w.finish();
        let (passed, line) = o.rang("1000");
        assert!(passed, "{line}");
        assert!(line.contains("reached user 1000, rang"), "{line}");
        let (passed, line) = o.rang("1001");
        assert!(!passed && line.contains("expected user 1001"), "{line}");
        let (passed, line) = Watch::new(u.into(), Some("1".into())).finish().rang("1000");
        assert!(
            !passed && line.contains("never came back inbound"),
            "{line}"
        );
    }
}
