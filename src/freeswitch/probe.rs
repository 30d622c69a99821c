//! Measuring the SIP round-trip time from a PBX to candidate provider regions with
//! FreeSWITCH's own OPTIONS pings (`switchyard trunks measure`).
//!
//! What FreeSWITCH 1.10 does, from `sofia.c` and `sofia_reg.c`:
//! - a gateway with `ping` ≥ 5 (less is ignored) sends OPTIONS every `ping` seconds, the
//!   first `ping` seconds after it is loaded, also when it does not register (`NOREG`);
//! - on the answer it sets `ping_time` to the milliseconds since the OPTIONS left
//!   (`<pingtime>` in `sofia xmlstatus gateway`, two decimals) — for any final answer from
//!   200 to 599 but 408 and 503, which count as failed pings;
//! - with `ping-monitoring` it fires a `sofia::gateway_state` event after *every* ping,
//!   with the SIP `Status` of the answer, after `ping_time` is set: one event per sample;
//! - `sofia profile P rescan` re-reads the XML and loads new gateways (no restart, calls
//!   untouched); `killgw` unloads one.
//!
//! A probe gateway never registers and carries no credentials: it only pings.

use std::fmt::Write as _;

/// The probe file, relative to the conf root: in the external profile's gateway folder
/// (the stock `external.xml` includes `external/*.xml`).
pub const PROBE_FILE: &str = "sip_profiles/external/switchyard-probe.xml";
/// The profile the probes are loaded into.
pub const PROBE_PROFILE: &str = "external";
/// Probe gateway names: `switchyard_probe_N`.
pub const PROBE_PREFIX: &str = "switchyard_probe_";
/// mod_sofia ignores a ping interval under 5 s.
pub const MIN_INTERVAL: u32 = 5;

/// A candidate region as the provider names it: `host` or `host:port`. Only what a SIP
/// host can be, so it can go into XML and a command line as it is.
pub fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 253
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        && !r.starts_with(['-', '.', ':'])
}

/// The probe gateways' file: one gateway per region, `(name, region)`.
pub fn probe_xml(probes: &[(String, String)], interval: u32) -> String {
    let mut s = String::from(
        "<include>\n  <!-- switchyard trunks measure: temporary probe gateways (OPTIONS pings only,\n       no registration, no credentials). Removed when the measurement ends. -->\n",
    );
    for (name, region) in probes {
        let _ = write!(
            s,
            "  <gateway name=\"{name}\">\n    <param name=\"realm\" value=\"{r}\"/>\n    <param name=\"proxy\" value=\"{r}\"/>\n    <param name=\"register\" value=\"false\"/>\n    <param name=\"ping\" value=\"{interval}\"/>\n    <param name=\"ping-monitoring\" value=\"true\"/>\n  </gateway>\n",
            r = crate::xml::escape(region)
        );
    }
    s.push_str("</include>\n");
    s
}

/// mod_sofia's reading of a ping answer (`sofia_handle_sip_r_options`): answered unless
/// 408 or 503, or outside 200–599.
pub fn ping_answered(status: u16) -> bool {
    (200..600).contains(&status) && status != 408 && status != 503
}

/// `<pingtime>` (milliseconds) of a `sofia xmlstatus gateway` answer.
pub fn ping_time(xmlstatus: &str) -> Option<f64> {
    let start = xmlstatus.find("<pingtime>")? + "<pingtime>".len();
    let end = start + xmlstatus[start..].find("</pingtime>")?;
    xmlstatus[start..end].trim().parse().ok()
}

/// The probe gateways `sofia profile P gwlist up` and `… gwlist down` answers name (left
/// over by a run that was killed before it could remove them). Mind that `gwlist` alone
/// names only the gateways that are UP.
pub fn leftover_probes(gwlist: &str) -> Vec<String> {
    gwlist
        .split_whitespace()
        .filter(|g| {
            g.strip_prefix(PROBE_PREFIX)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(String::from)
        .collect()
}

/// One region's samples, ranked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegionRtt {
    pub region: String,
    /// Round-trip times of answered pings, milliseconds, in the order measured.
    pub samples_ms: Vec<f64>,
    /// Pings without an answer (timeout, 408, 503).
    pub lost: u32,
    pub median_ms: Option<f64>,
    /// Max minus min of the answered pings.
    pub spread_ms: Option<f64>,
    /// The SIP status of each lost ping as FreeSWITCH reported it (408 timed out, 503 could
    /// not be sent or refused); 0 for a ping it never reported before the deadline.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost_status: Vec<u16>,
}

impl RegionRtt {
    pub fn new(region: &str, samples_ms: Vec<f64>, lost: u32) -> RegionRtt {
        let mut sorted = samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let median_ms = match sorted.len() {
            0 => None,
            n if n % 2 == 1 => Some(sorted[n / 2]),
            n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
        };
        let spread_ms = sorted.first().zip(sorted.last()).map(|(a, b)| b - a);
        RegionRtt {
            region: region.to_string(),
            samples_ms,
            lost,
            median_ms,
            spread_ms,
            lost_status: Vec::new(),
        }
    }
}

/// Why no region answered a PBX's pings, from the statuses FreeSWITCH reported for them
/// (`regions` all without an answer); `None` if one answered. What each means in mod_sofia
/// (`sofia_reg.c`, `sofia_handle_sip_r_options`, and sofia-sip's own answers):
/// - 408: the OPTIONS got no answer before SIP timer F (32 s): nothing answers SIP there;
/// - 503: sofia-sip could not send it (the name does not resolve from the PBX, no route) or
///   the region refused it as overloaded;
/// - nothing reported: the probe gateway never pinged (not loaded, profile not running).
pub fn no_answer_hint(regions: &[RegionRtt], waited_s: u64) -> Option<String> {
    if regions.is_empty() || regions.iter().any(|r| r.median_ms.is_some()) {
        return None;
    }
    let all = || regions.iter().flat_map(|r| &r.lost_status);
    let mut why = Vec::new();
    if all().any(|&s| s == 408) {
        why.push(
            "pings timed out (408, no answer within 32 s): nothing answers SIP at those              addresses from the PBX (outbound SIP blocked by a firewall, no route, or a wrong              host or port)"
                .to_string(),
        );
    }
    if all().any(|&s| s == 503) {
        why.push(
            "FreeSWITCH could not send the pings or they were refused (503): a region name              the PBX cannot resolve, no route, or the region overloaded"
                .to_string(),
        );
    }
    let mut other: Vec<u16> = all()
        .copied()
        .filter(|s| ![0, 408, 503].contains(s))
        .collect();
    other.sort_unstable();
    other.dedup();
    if !other.is_empty() {
        let list: Vec<String> = other.iter().map(u16::to_string).collect();
        why.push(format!(
            "the pings were answered with SIP status {}, which carries no round-trip time",
            list.join(", ")
        ));
    }
    if all().any(|&s| s == 0) || all().next().is_none() {
        why.push(format!(
            "FreeSWITCH reported no ping within {waited_s} s: the probe gateways did not              load or did not ping (is the `{PROBE_PROFILE}` SIP profile running?              `sofia status profile {PROBE_PROFILE}` on the PBX)"
        ));
    }
    Some(format!("no region answered: {}", why.join("; ")))
}

/// Best first: regions that answered every ping, by median; then those that lost some, by
/// how many they lost and then median; regions that never answered last. A region that
/// drops pings is worse than a slower one that does not: calls set up through it fail.
pub fn rank(mut regions: Vec<RegionRtt>) -> Vec<RegionRtt> {
    regions.sort_by(|a, b| {
        let key = |r: &RegionRtt| (r.median_ms.is_none(), r.lost);
        key(a).cmp(&key(b)).then_with(|| {
            a.median_ms
                .unwrap_or(f64::MAX)
                .total_cmp(&b.median_ms.unwrap_or(f64::MAX))
        })
    });
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_file_pings_without_registering() {
        let x = probe_xml(&[("switchyard_probe_0".into(), "us.wavix.net".into())], 5);
        let gws = crate::freeswitch::gateways(&x).unwrap();
        assert_eq!(gws.len(), 1);
        assert!(!gws[0].registers() && gws[0].pings());
        assert_eq!(gws[0].param("proxy"), Some("us.wavix.net"));
        assert_eq!(gws[0].param("ping-monitoring"), Some("true"));
        assert!(gws[0].param("password").is_none());
    }

    #[test]
    fn regions_are_host_names_only() {
        for ok in ["us.wavix.net", "127.0.0.5:5060", "[2001:db8::1]:5060"] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in ["", "a b", "x\"/><param", "-x", "a;rm", "x\ny"] {
            assert!(!valid_region(bad), "{bad:?}");
        }
    }

    #[test]
    fn answers_counted_as_mod_sofia_does() {
        assert!(ping_answered(200) && ping_answered(404) && ping_answered(486));
        assert!(!ping_answered(408) && !ping_answered(503) && !ping_answered(100));
    }

    #[test]
    fn pingtime_and_leftovers_are_read() {
        assert_eq!(
            ping_time("<gateway>\n  <pingtime>12.34</pingtime>\n</gateway>"),
            Some(12.34)
        );
        assert_eq!(ping_time("Invalid Gateway!"), None);
        assert_eq!(
            leftover_probes("wavix switchyard_probe_0 switchyard_probe_12 switchyard_probe_x"),
            vec!["switchyard_probe_0", "switchyard_probe_12"]
        );
    }

    #[test]
    fn no_answer_is_explained_by_what_freeswitch_reported() {
        let lost = |region: &str, statuses: &[u16]| {
            let mut r = RegionRtt::new(region, vec![], statuses.len() as u32);
            r.lost_status = statuses.to_vec();
            r
        };
        let h = no_answer_hint(&[lost("a", &[408, 408]), lost("b", &[408, 408])], 50).unwrap();
        assert!(h.contains("timed out (408") && !h.contains("503"), "{h}");
        let h = no_answer_hint(&[lost("a", &[503]), lost("b", &[0])], 50).unwrap();
        assert!(
            h.contains("(503)") && h.contains("no ping within 50 s"),
            "{h}"
        );
        let h = no_answer_hint(&[lost("a", &[200])], 50).unwrap();
        assert!(h.contains("SIP status 200"), "{h}");
        let answered = RegionRtt::new("c", vec![9.0], 0);
        assert_eq!(no_answer_hint(&[lost("a", &[408]), answered], 50), None);
    }

    #[test]
    fn ranking_prefers_reliable_then_fast() {
        let r = rank(vec![
            RegionRtt::new("slow", vec![80.0, 81.0, 95.0], 0),
            RegionRtt::new("dead", vec![], 3),
            RegionRtt::new("lossy", vec![5.0, 6.0], 1),
            RegionRtt::new("fast", vec![10.0, 12.0, 11.0, 30.0], 0),
        ]);
        let order: Vec<&str> = r.iter().map(|x| x.region.as_str()).collect();
        assert_eq!(order, ["fast", "slow", "lossy", "dead"]);
        assert_eq!(r[0].median_ms, Some(11.5));
        assert_eq!(r[0].spread_ms, Some(20.0));
    }
}
