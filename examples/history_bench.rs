//! The history benchmark (`bench/history`): a year of 15-minute rounds on 1,000 PBXes
//! (35,040 rounds, 35 million host records) written through the history's own insert path,
//! a day of rounds per transaction (a bulk load, as a migration does); then ten more rounds
//! one transaction each, as `watch` records them, on the full database; then its size. The
//! query time is measured by `bench/history` on the real `switchyard history` command.
//!
//! The reports are shaped like real ones: a no-op report per host (five files, two
//! gateways REGED, one remote command) with a duration that varies every round, and about
//! one round in a hundred per host with drift on one file (a diff of its own).
//!
//! Usage: history_bench DB|postgres://USER@HOST/DB [--hosts 1000] [--days 365] [--every 900]
//! [--batch 96] (for a database, the password from PGPASSWORD; its size is not measured)

use std::time::Instant;

use switchyard::agent::history::{Entry, History, Location};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn report(host: &str, round: u64, drift: bool, seconds: f64) -> serde_json::Value {
    let file = |rel: &str, n: u64| {
        serde_json::json!({"rel": rel, "status": "ok", "mode": "0644",
            "old_sha256": format!("k1:{:064x}", n), "new_sha256": format!("k1:{:064x}", n),
            "diff": ""})
    };
    let mut files: Vec<serde_json::Value> = [
        "vars.xml",
        "sip_profiles/external/wavix.xml",
        "dialplan/public/00_wavix_inbound.xml",
        "dialplan/default/01_wavix_outbound.xml",
        "directory/default/1000.xml",
    ]
    .iter()
    .enumerate()
    .map(|(i, rel)| file(rel, i as u64 + host.len() as u64))
    .collect();
    if drift {
        files[0] = serde_json::json!({"rel": "vars.xml", "status": "changed",
            "difference": "drift", "mode": "0644",
            "old_sha256": format!("k1:{:064x}", round), "new_sha256": format!("k1:{:064x}", 0),
            "diff": format!("--- vars.xml\n+++ vars.xml\n-<X-PRE-PROCESS cmd=\"set\" data=\"rtp_start_port={}\"/>\n+<X-PRE-PROCESS cmd=\"set\" data=\"rtp_start_port=16384\"/>\n", round % 30000)});
    }
    serde_json::json!({
        "host": host, "batch": 0, "status": if drift { "changed" } else { "ok" },
        "files": files, "steps": [], "pending": [], "restart_pending": false,
        "gateways": [{"name": "wavix", "state": "REGED", "status": "UP", "ping_freq": 30, "ping_count": 3},
                     {"name": "wavix-backup", "state": "REGED", "status": "UP", "ping_freq": 30, "ping_count": 3}],
        "rollback": null, "findings": [], "remote_commands": 1, "seconds": seconds
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let db = args
        .get(1)
        .expect("usage: history_bench DB [--hosts N] [--days D]");
    let hosts = arg(&args, "--hosts", 1000);
    let days = arg(&args, "--days", 365);
    let every = arg(&args, "--every", 900);
    let batch = arg(&args, "--batch", 96).max(1);
    let names: Vec<String> = (0..hosts).map(|i| format!("pbx-{i:04}")).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let rounds = days * 86_400 / every;
    let start = now - (rounds + 10) * every;
    let noop: Vec<serde_json::Value> = names.iter().map(|h| report(h, 0, false, 0.0)).collect();
    let mut h =
        History::open(&Location::parse(db).expect("a file or a postgres:// URL")).expect("open");
    let t = Instant::now();
    let mut records = 0u64;
    // A cheap deterministic mix: which host drifts in which round.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    // The records of `batch` rounds, built once and rewritten in place (time, duration,
    // drift): the benchmark measures the history, not the building of reports.
    let mut buf: Vec<Entry> = (0..batch)
        .flat_map(|_| {
            names.iter().zip(&noop).map(|(host, noop)| Entry {
                at: 0,
                who: "switchyard@ctl-1".into(),
                kind: "drift".into(),
                play: "Wavix SIP trunk".into(),
                host: host.clone(),
                report: noop.clone(),
            })
        })
        .collect();
    let fill = |buf: &mut [Entry], first: u64, x: &mut u64| {
        for (i, e) in buf.iter_mut().enumerate() {
            let r = first + i as u64 / hosts;
            let h = (i as u64 % hosts) as usize;
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            let drift = (*x).is_multiple_of(100);
            let seconds = 0.2 + (*x % 1000) as f64 / 1000.0;
            e.at = start + r * every;
            if drift {
                e.report = report(&names[h], r, true, seconds);
            } else if e.report["status"] != "ok" {
                e.report = noop[h].clone();
            }
            e.report["seconds"] = seconds.into();
        }
    };
    let mut r = 0;
    while r < rounds {
        let n = (batch.min(rounds - r) * hosts) as usize;
        fill(&mut buf[..n], r, &mut x);
        h.insert_entries(&buf[..n]).expect("insert");
        records += n as u64;
        r += batch;
        if (r / batch).is_multiple_of(30) {
            eprintln!(
                "{records} records, {:.0} records/s",
                records as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    let secs = t.elapsed().as_secs_f64();
    // Ten rounds as `watch` records them: one transaction per round.
    let t = Instant::now();
    for r in rounds..rounds + 10 {
        let n = hosts as usize;
        fill(&mut buf[..n], r, &mut x);
        h.insert_entries(&buf[..n]).expect("insert");
        records += hosts;
    }
    let round_ms = t.elapsed().as_secs_f64() * 100.0;
    drop(h);
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{db}{s}")).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{{\"records\": {records}, \"rounds\": {}, \"hosts\": {hosts}, \"bulk_seconds\": {secs:.1}, \"bulk_records_per_second\": {:.0}, \"round_ms\": {round_ms:.1}, \"bytes\": {size}, \"bytes_per_record\": {:.1}}}",
        rounds + 10,
        (records - 10 * hosts) as f64 / secs,
        size as f64 / records as f64
    );
}
