//! Issue 29, item 3: `watch` agents in pairs on one PostgreSQL history. Both check; one
//! leads and alone corrects drift and records rounds; when it is killed, the other leads
//! from its next round; one change is never corrected twice.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::pgserver::{PgServer, PG_PASSWORD};

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Agent {
    child: Child,
    log: std::path::PathBuf,
}

impl Agent {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `kind: fix` records of the history.
fn fixes(url: &str) -> usize {
    let out = switchyard_env(
        &["history", "--json", "--history", url],
        &[("PGPASSWORD", PG_PASSWORD)],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let v: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    v.iter().filter(|e| e["kind"] == "fix").count()
}

#[test]
fn the_standby_agent_acts_within_a_round_of_the_leaders_death_and_nothing_is_fixed_twice() {
    let fleet = Fleet::new("agents", 1);
    let pg = PgServer::start("agents");
    let url = pg.create_db("history");
    let s = fleet.session().env("PGPASSWORD", PG_PASSWORD);
    let applied = s
        .run(["apply", "--no-verify", "--history", url.as_str()])
        .out;
    assert_eq!(applied.code, 0, "{}", applied.all());
    let host = &fleet.hosts[0];
    let file = "sip_profiles/external/wavix.xml";
    let start = |name: &str| {
        let log = fleet.dir.join(format!("{name}.log"));
        let child = s
            .command(["watch", "--fix", "--every", "1s", "--history", url.as_str()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Agent { child, log }
    };
    let mut agents = [start("a"), start("b")];
    wait_for("one leads, the other stands by", || {
        let logs: Vec<String> = agents.iter().map(Agent::log).collect();
        logs.iter().any(|l| l.contains(": leading")) && logs.iter().any(|l| l.contains(": standby"))
    });
    let leader = agents
        .iter()
        .position(|a| a.log().contains(": leading"))
        .unwrap();
    let standby = 1 - leader;
    assert!(!agents[standby].log().contains(": leading"), "two leaders");
    let named = format!("(watch, pid {})", agents[leader].child.id());
    assert!(
        agents[standby].log().contains(&named),
        "{}",
        agents[standby].log()
    );

    // A change while both run: corrected once, by the leader.
    std::fs::write(host.conf(file), "<include/>\n").unwrap();
    wait_for("the leader corrects it", || {
        host.read(file).contains("secret1")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(fixes(&url), 1, "one correction for one change");
    assert!(!agents[standby]
        .log()
        .lines()
        .any(|l| l.contains(" corrected") && !l.ends_with(" 0 corrected")));

    // The leader dies without a word; the next change is corrected by the other.
    agents[leader].child.kill().unwrap();
    agents[leader].child.wait().unwrap();
    let seen = agents[standby].log().len();
    std::fs::write(host.conf(file), "<include/>\n").unwrap();
    wait_for("the other agent corrects it", || {
        host.read(file).contains("secret1")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(fixes(&url), 2, "one correction for each change");
    let after = agents[standby].log()[seen..].to_string();
    let first_lead = after.find(": leading").expect("took over");
    assert!(
        after[..first_lead].matches(": standby").count() <= 1,
        "took over within one round: {after}"
    );
    assert!(!after.contains(PG_PASSWORD) && !agents[leader].log().contains(PG_PASSWORD));
}

/// `--shard K/N`: each agent checks only its shard's hosts (a stable hash of the name), each
/// shard has its own leader, and every host is checked by exactly one of them.
#[test]
fn shards_split_the_fleet_and_each_elects_its_own_leader() {
    use switchyard::agent::history::lock::shard_of;
    let fleet = Fleet::new("shards", 3);
    let pg = PgServer::start("shards");
    let url = pg.create_db("history");
    let s = fleet.session().env("PGPASSWORD", PG_PASSWORD);
    let names = ["pbx1", "pbx2", "pbx3"];
    for k in 1..=2u32 {
        let mine: Vec<&str> = names
            .iter()
            .copied()
            .filter(|h| shard_of(h, 2) == k - 1)
            .collect();
        assert!(!mine.is_empty(), "the hash gives shard {k} a host");
        let shard = format!("{k}/2");
        let out = s
            .run([
                "watch",
                "--rounds",
                "1",
                "--shard",
                shard.as_str(),
                "--history",
                url.as_str(),
            ])
            .out;
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(
            out.stderr
                .contains(&format!("round 1: leading shard {shard}")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("{} hosts,", mine.len())),
            "{}",
            out.stderr
        );
    }
    let out = switchyard_env(
        &["history", "--json", "--history", &url],
        &[("PGPASSWORD", PG_PASSWORD)],
    );
    let v: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let mut hosts: Vec<&str> = v.iter().map(|e| e["host"].as_str().unwrap()).collect();
    hosts.sort_unstable();
    assert_eq!(
        hosts, names,
        "each host checked once, by its shard's leader"
    );

    let bad = s
        .run(["watch", "--shard", "3/2", "--history", url.as_str()])
        .out;
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(bad.stderr.contains("is not K/N"), "{}", bad.stderr);
}

/// `--events` with `--shard K/N`: each shard's agent watches (and alerts for) only its own
/// shard's PBXes, not the whole fleet's.
#[test]
fn events_watch_only_the_shards_own_pbxes() {
    use switchyard::agent::history::lock::shard_of;
    let fleet = Fleet::new("shard-events", 3);
    let pg = PgServer::start("shard-events");
    let url = pg.create_db("history");
    let s = fleet.session().env("PGPASSWORD", PG_PASSWORD);
    for k in 1..=2u32 {
        let mine = ["pbx1", "pbx2", "pbx3"]
            .iter()
            .filter(|h| shard_of(h, 2) == k - 1)
            .count();
        assert!(mine < 3, "shard {k} is not the whole fleet");
        let shard = format!("{k}/2");
        let out = s
            .run([
                "watch",
                "--events",
                "--rounds",
                "1",
                "--shard",
                shard.as_str(),
                "--history",
                url.as_str(),
            ])
            .out;
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(
            out.stderr
                .contains(&format!("watch: events from {mine} PBX(es)")),
            "{}",
            out.stderr
        );
    }
}

/// `--call-tests EVERY`: the interval starts when calls are placed, not when a round starts.
/// A standby round places none, so the agent that takes over places them in its first
/// leading round rather than an interval later, out of phase with the dead leader.
#[test]
fn a_standby_round_leaves_the_call_tests_due_for_the_first_leading_round() {
    use std::io::Write;
    use switchyard::agent::history::lock::leader_key;
    let fleet = Fleet::new("agents-calls", 1);
    let pg = PgServer::start("agents-calls");
    let url = pg.create_db("history");
    let s = fleet.session().env("PGPASSWORD", PG_PASSWORD);
    let applied = s
        .run(["apply", "--no-verify", "--history", url.as_str()])
        .out;
    assert_eq!(applied.code, 0, "{}", applied.all());
    // A leader stand-in: a psql session holding the group's leadership lock.
    let key = leader_key(&["Wavix SIP trunk"], None);
    let mut leader = std::process::Command::new(crate::pgserver::bin("psql"))
        .args(["-X", "-q", &url])
        .env("PGPASSWORD", PG_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = leader.stdin.as_mut().unwrap();
    writeln!(stdin, "SELECT pg_advisory_lock({key});").unwrap();
    stdin.flush().unwrap();
    wait_for("the stand-in leads", || {
        pg.psql(
            "history",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
        )
        .is_ok_and(|n| n == "1")
    });
    let log = fleet.dir.join("calls.log");
    let child = s
        .command([
            "watch",
            "--every",
            "1s",
            "--call-tests",
            "1h",
            "--history",
            url.as_str(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let agent = Agent { child, log };
    wait_for("a standby round", || {
        agent.log().contains("round 1: standby")
    });
    // The leader dies; the agent leads from its next round, and places the calls then.
    leader.kill().unwrap();
    leader.wait().unwrap();
    wait_for("the agent leads", || agent.log().contains(": leading"));
    wait_for("the calls placed in a leading round", || {
        let l = agent.log();
        l.find(": leading")
            .is_some_and(|at| l[at..].contains("watch: call tests:"))
    });
    assert!(
        !agent.log()[..agent.log().find(": leading").unwrap()].contains("watch: call tests:"),
        "no calls while standing by: {}",
        agent.log()
    );
}
