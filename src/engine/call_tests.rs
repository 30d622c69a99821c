//! A play's `call_tests:` after a host's change is applied and verified: each test call is
//! placed by the host's own FreeSWITCH (by the [`CallTester`] the command gives, so that the
//! engine does not depend on the agents that speak to the event socket), and one that
//! fails fails the host, which is then rolled back like a failed verification; the
//! rollout's `max_fail_percentage` decides the rest. A leaf of the engine: the pipeline
//! calls it, and it knows nothing of reports or settings.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::host::transport::Transport;
use crate::inputs::inventory::Host;
use crate::inputs::playbook::call_test::CallTest;

/// What became of one test call.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallTestReport {
    pub name: String,
    pub dial: String,
    pub passed: bool,
    /// One line: the verdict, SIP status, cause, gateway, RTP counts (escaped).
    pub summary: String,
    /// The full outcome (`switchyard call --json`'s fields).
    pub detail: serde_json::Value,
}

pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Vec<CallTestReport>> + Send + 'a>>;

/// Places `tests` on a host over its connection, within the budget, one report each.
pub type PlaceCalls = dyn for<'a> Fn(&'a mut Transport, &'a Host, &'a [CallTest], Duration) -> CallFuture<'a>
    + Send
    + Sync;

#[derive(Clone)]
pub struct CallTester(pub Arc<PlaceCalls>);

impl std::fmt::Debug for CallTester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallTester")
    }
}

/// The play's call tests on a host whose change is in effect and verified, their reports
/// into `reports`: `None` when they all passed (or there are none), else why the host fails.
pub(crate) async fn after_verify(
    t: &mut Transport,
    host: &Host,
    tests: &[CallTest],
    seconds: u64,
    tester: Option<&CallTester>,
    reports: &mut Vec<CallTestReport>,
) -> Option<String> {
    if tests.is_empty() {
        return None;
    }
    let Some(tester) = tester else {
        return Some("this command cannot place the play's call tests".into());
    };
    *reports = (tester.0)(t, host, tests, Duration::from_secs(seconds)).await;
    let failed: Vec<String> = reports
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("call test `{}` ({}): {}", c.name, c.dial, c.summary))
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}

/// What `--check` says a play's call tests would do.
pub fn listing(tests: &[CallTest], seconds: u64) -> String {
    let mut s = format!(
        "call tests each changed host would place after its verification (at most {seconds} s per host):\n"
    );
    for t in tests {
        s.push_str(&format!(
            "  {}: {} dials {}, expect {}\n",
            t.name,
            t.from,
            t.number(),
            match (&t.rings, t.expect) {
                (Some(u), _) => format!("it back inbound from the provider, ringing user {u}"),
                (None, crate::inputs::playbook::call_test::CallExpect::Answered) => {
                    "answered".into()
                }
                (None, crate::inputs::playbook::call_test::CallExpect::Refused) => {
                    "refused".into()
                }
            }
        ));
    }
    s
}
