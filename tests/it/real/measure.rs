//! `trunks measure` on a real FreeSWITCH: two provider registrars (real Kamailio), one of
//! them behind an added network delay; the PBX's own OPTIONS pings must rank the near one
//! first, `--write host_vars` must propose it as primary and the far one as failover, and
//! the PBX must be left as it was (no probe gateway, no probe file, same process).
//!
//! The delay: this machine's kernel has no `netem` (nor `prio`) queueing discipline
//! (`tc qdisc add dev lo root netem delay 40ms` → "Specified qdisc kind is unknown", seen
//! in a fresh network namespace), so the far region sits behind a UDP relay that holds
//! each datagram towards the registrar for [`DELAY`]: the same added path latency, made in
//! user space.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// Added one-way latency towards the far registrar.
const DELAY: Duration = Duration::from_millis(120);

/// A UDP relay at `front:5060` → `back:5060`; datagrams towards `back` are held for
/// [`DELAY`], answers come back at once. Stops when dropped.
struct DelayRelay {
    front: String,
    stop: Arc<AtomicBool>,
}

impl DelayRelay {
    fn start(back: &str) -> DelayRelay {
        let front = next_addr();
        let outer = UdpSocket::bind(format!("{front}:5060")).unwrap();
        let inner = UdpSocket::bind(format!("{front}:0")).unwrap();
        let back: SocketAddr = format!("{back}:5060").parse().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        for s in [&outer, &inner] {
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
        }
        // Towards the registrar: each datagram leaves DELAY after it arrived, in order.
        let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
        {
            let (outer, stop, client) = (outer.try_clone().unwrap(), stop.clone(), client.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = outer.recv_from(&mut buf) {
                        *client.lock().unwrap() = Some(from);
                        let _ = tx.send((Instant::now() + DELAY, buf[..n].to_vec()));
                    }
                }
            });
        }
        {
            let (inner, stop) = (inner.try_clone().unwrap(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((due, d)) = rx.recv_timeout(Duration::from_millis(100)) {
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        let _ = inner.send_to(&d, back);
                    }
                }
            });
        }
        {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, _)) = inner.recv_from(&mut buf) {
                        if let Some(c) = *client.lock().unwrap() {
                            let _ = outer.send_to(&buf[..n], c);
                        }
                    }
                }
            });
        }
        DelayRelay { front, stop }
    }
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Every gateway of the external profile: `gwlist` names only gateways that are UP,
/// `gwlist down` the others.
fn gateways_listed(fs: &FreeSwitch) -> String {
    fs.api("sofia profile external gwlist up") + &fs.api("sofia profile external gwlist down")
}

/// A killed run left a probe loaded (and its file): the next run unloads it.
fn plant_a_leftover_probe(w: &World, near: &str) {
    std::fs::write(
        w.pbx().conf("sip_profiles/external/switchyard-probe.xml"),
        // `<include>` on a line of its own: switch_xml.c drops every line that has it.
        format!("<include>\n<gateway name=\"switchyard_probe_7\"><param name=\"proxy\" value=\"{near}\"/><param name=\"register\" value=\"false\"/></gateway>\n</include>\n"),
    )
    .unwrap();
    w.fs().api("sofia profile external rescan");
    let all = || gateways_listed(w.fs());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all().contains("switchyard_probe_7") {
        assert!(
            Instant::now() < deadline,
            "the planted probe never loaded: {}",
            all()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn measured_regions_choose_the_near_registrar() {
    let w = World::new("measure", WrongPassword::Forbidden);
    let near = w.provider.addr.clone();
    let far_registrar = Provider::start(&w.fleet.dir, WrongPassword::Forbidden);
    let far = DelayRelay::start(&far_registrar.addr);
    let fs_addr = w.fs().addr.clone();
    let pid = w.fs().pid();
    plant_a_leftover_probe(&w, &near);
    // The far region first: the order given must not decide.
    let session = w.session(&format!(
        "freeswitch_esl: \"{fs_addr}:8021\"\nfreeswitch_esl_password: {ESL_PASSWORD}\nwavix_regions:\n  - {{proxy: \"{}\", realm: sip.test}}\n  - {{proxy: \"{near}\", realm: sip.test}}\n",
        far.front
    ));
    let measure = ["trunks", "measure", "--samples", "3", "--json"];
    let out = session.run([&measure[..], &["--write", "host_vars"]].concat());
    assert_eq!(out.code, 0, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let regions = v[0]["regions"].as_array().unwrap();
    assert_eq!(regions[0]["region"], near.as_str(), "{}", out.stdout);
    assert_eq!(regions[1]["region"], far.front.as_str(), "{}", out.stdout);
    for r in regions {
        assert_eq!(
            r["samples_ms"].as_array().unwrap().len(),
            3,
            "{}",
            out.stdout
        );
        assert_eq!(r["lost"], 0, "{}", out.stdout);
    }
    let near_ms = regions[0]["median_ms"].as_f64().unwrap();
    let far_ms = regions[1]["median_ms"].as_f64().unwrap();
    // FreeSWITCH's own timing shows the added delay (and only once: answers are not held).
    assert!(
        far_ms >= DELAY.as_millis() as f64 && far_ms < near_ms + 3.0 * DELAY.as_millis() as f64,
        "near {near_ms} ms, far {far_ms} ms"
    );
    assert!(near_ms < 50.0, "near {near_ms} ms");

    // The proposal, for review: primary near, failover far, in host_vars beside the inventory.
    let hv = std::fs::read_to_string(
        session
            .inventory_path()
            .parent()
            .unwrap()
            .join("host_vars/pbx1.yml"),
    )
    .unwrap();
    for line in [
        format!("wavix_proxy: \"{near}\""),
        "wavix_realm: \"sip.test\"".to_string(),
        format!("wavix_failover_proxy: \"{}\"", far.front),
        "wavix_failover_realm: \"sip.test\"".to_string(),
    ] {
        assert!(hv.contains(&line), "{line} not in\n{hv}");
    }
    assert!(hv.contains("# switchyard trunks measure, "), "{hv}");
    assert!(
        out.stderr.contains("nothing was changed on the PBXes"),
        "{}",
        out.stderr
    );

    // The PBX is as it was: same FreeSWITCH, no probe gateway loaded, no probe file.
    assert_eq!(w.fs().pid(), pid);
    assert!(!gateways_listed(w.fs()).contains("switchyard_probe"));
    assert!(!w
        .pbx()
        .conf("sip_profiles/external/switchyard-probe.xml")
        .exists());
    assert!(
        !w.fs().api("sofia xmlstatus").contains("switchyard_probe"),
        "probe gateways still loaded"
    );
    // The XML in memory has no probe either: a rescan loads none again.
    w.fs().api("sofia profile external rescan");
    std::thread::sleep(Duration::from_secs(1));
    assert!(!gateways_listed(w.fs()).contains("switchyard_probe"));
}
