//! Verification: polling the gateways a play manages until each is healthy, fails, or time
//! runs out. One remote command per poll asks for every gateway of the host.

use std::time::{Duration, Instant};

use crate::freeswitch::reload::Action;
use crate::freeswitch::status::{self, GatewayStatus, Health};
use crate::plan::ManagedGateway;
use crate::script;
use crate::transport::Transport;

#[derive(Debug, Clone)]
pub struct Verdict {
    pub gateways: Vec<GatewayStatus>,
    /// `None` when every gateway is healthy.
    pub failure: Option<String>,
}

/// Poll `sofia xmlstatus gateway NAME` for every gateway.
pub async fn gateways(
    t: &mut Transport,
    fs_cli: &str,
    gws: &[ManagedGateway],
    timeout: Duration,
    interval: Duration,
) -> Verdict {
    let actions: Vec<Action> = gws
        .iter()
        .map(|g| Action::Api(format!("sofia xmlstatus gateway {}", g.name)))
        .collect();
    let cmd = script::steps(fs_cli, "true", &actions);
    let deadline = Instant::now() + timeout;
    loop {
        let mut states = Vec::new();
        let mut failed = Vec::new();
        let mut pending = Vec::new();
        match t.exec(&cmd, &[]).await {
            Ok(out) => {
                let text = out.stdout_text();
                let parts = script::split_steps(&text);
                for (i, g) in gws.iter().enumerate() {
                    let body = parts
                        .iter()
                        .find(|p| p.0 == i)
                        .map(|p| p.1.as_str())
                        .unwrap_or("");
                    match status::parse_xmlstatus(&g.name, body) {
                        Ok(s) => {
                            match s.health(g.registers) {
                                Health::Healthy => {}
                                Health::Pending => pending.push(format!("{} {}", g.name, s.state)),
                                Health::Failed => failed.push(format!(
                                    "gateway `{}` is {}{}{}",
                                    g.name,
                                    s.state,
                                    if s.state == "NOREG" && s.status == "DOWN" {
                                        "/DOWN (the provider did not answer its OPTIONS ping)"
                                    } else {
                                        ""
                                    },
                                    s.retry
                                        .as_deref()
                                        .map(|r| format!(" (retry in {r})"))
                                        .unwrap_or_default()
                                )),
                            }
                            states.push(s);
                        }
                        // FreeSWITCH still starting (after a restart): not an answer yet.
                        Err(status::ApiFailure::NotConnected(_)) => {
                            pending.push(format!("{} (FreeSWITCH not answering yet)", g.name))
                        }
                        Err(e) => failed.push(format!("gateway `{}`: {e}", g.name)),
                    }
                }
            }
            Err(e) => failed.push(format!("cannot poll gateways: {e}")),
        }
        if !failed.is_empty() {
            return Verdict {
                gateways: states,
                failure: Some(failed.join("; ")),
            };
        }
        if pending.is_empty() {
            return Verdict {
                gateways: states,
                failure: None,
            };
        }
        if Instant::now() + interval > deadline {
            return Verdict {
                gateways: states,
                failure: Some(format!(
                    "gateways not healthy after {:.0} s: {}",
                    timeout.as_secs_f64(),
                    pending
                        .iter()
                        .map(|p| p.replace("INVALID", "Invalid Gateway!"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
        }
        tokio::time::sleep(interval).await;
    }
}
