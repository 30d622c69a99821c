//! `watch --call-tests EVERY`: the play's test calls placed by the drift agent on its own
//! pace, their results on the metrics page; a failed one changes nothing on the PBX.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::call::{pbx, playbook_with_call_tests};

fn scrape(addr: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut page = String::new();
    let _ = s.read_to_string(&mut page);
    page
}

#[test]
fn watch_places_the_plays_call_tests_and_shows_them_as_metrics() {
    let w = pbx("real-call-watch");
    let inv = w.fleet.dir.join("inv.yml");
    let pb = playbook_with_call_tests(
        &w,
        "watch.yml",
        "    - {name: us-mobile, from: \"1000\", dial: \"2125550100\"}\n",
    );
    let before = std::fs::read_to_string(w.pbx().conf("sip_profiles/external/wavix.xml")).unwrap();
    let addr = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let mut callee = w.provider.callee(Some(603));
    let child = w
        .fleet
        .session_on(&inv)
        .playbook(&pb)
        .command([
            "watch",
            "--every",
            "1s",
            "--call-tests",
            "1h",
            "--metrics",
            &addr,
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start watch");
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let page = scrape(&addr);
        if page.contains("switchyard_call_tests_total") {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "no call test on the page: {page}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (status, err) = crate::review::stop_with_sigterm(child);
    callee.finish(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        page.contains("switchyard_call_test_passed{host=\"pbx1\",test=\"us-mobile\"} 0"),
        "{page}"
    );
    assert!(
        page.contains("switchyard_call_test_failures_total 1"),
        "{page}"
    );
    assert!(page.contains("switchyard_call_tests_total 1"), "{page}");
    assert!(
        err.contains("watch: call tests: 1 placed, 1 failed"),
        "{err}"
    );
    assert!(err.contains("SIP 603"), "{err}");
    assert_eq!(callee.invites_received().len(), 1);
    // Reported, not rolled back: nothing was applied.
    let after = std::fs::read_to_string(w.pbx().conf("sip_profiles/external/wavix.xml")).unwrap();
    assert_eq!(before, after);
}
