//! Verification: polling the gateways a play manages until each is healthy, fails, or time
//! runs out. One remote command per poll asks for every gateway of the host.

use std::time::{Duration, Instant};

use crate::engine::plan::ManagedGateway;
use crate::freeswitch::reload::Action;
use crate::freeswitch::status::{self, GatewayStatus, Health};
use crate::host::script;
use crate::host::session::Via;

#[derive(Debug, Clone)]
pub struct Verdict {
    pub gateways: Vec<GatewayStatus>,
    /// `None` when every gateway is healthy.
    pub failure: Option<String>,
}

/// Poll `sofia xmlstatus gateway NAME` for every gateway, the first time after
/// `first_after`: right after a rescan, a `killgw` or a restart no gateway can have
/// registered yet (mod_sofia sends a gateway's REGISTER from its profile worker, which
/// looks at the gateways once a second), so a poll then is a wasted fs_cli on the PBX.
pub async fn gateways(
    t: &mut Via<'_>,
    fs_cli: &str,
    gws: &[ManagedGateway],
    timeout: Duration,
    interval: Duration,
    first_after: Duration,
) -> Verdict {
    let actions: Vec<Action> = gws
        .iter()
        .map(|g| Action::Api(format!("sofia xmlstatus gateway {}", g.name)))
        .collect();
    if let Err(e) = script::FsCli::parse(fs_cli) {
        return Verdict {
            gateways: Vec::new(),
            failure: Some(e),
        };
    }
    let deadline = Instant::now() + timeout;
    tokio::time::sleep(first_after.min(timeout)).await;
    let mut polls = 0u32;
    loop {
        polls += 1;
        let Poll {
            states,
            failed,
            pending,
        } = match t.run(fs_cli, "true", &actions).await {
            Ok(out) => read_poll(gws, &out),
            Err(e) => Poll {
                failed: vec![format!("cannot poll gateways: {e}")],
                ..Poll::default()
            },
        };
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
                    "gateways not healthy after {:.0} s ({polls} {}): {}",
                    timeout.as_secs_f64(),
                    if polls == 1 { "poll" } else { "polls" },
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

/// What one poll says of every gateway.
#[derive(Default)]
struct Poll {
    states: Vec<GatewayStatus>,
    /// Gateways that failed, in words.
    failed: Vec<String>,
    /// Gateways not registered yet (or FreeSWITCH not answering yet).
    pending: Vec<String>,
}

/// Judge each gateway's `sofia xmlstatus gateway` answer in one poll's output.
fn read_poll(gws: &[ManagedGateway], text: &str) -> Poll {
    let mut poll = Poll::default();
    let parts = script::split_steps(text);
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
                    Health::Pending => poll.pending.push(format!("{} {}", g.name, s.state)),
                    Health::Failed => poll.failed.push(format!(
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
                poll.states.push(s);
            }
            // FreeSWITCH still starting (after a restart): not an answer yet.
            Err(status::ApiFailure::NotConnected(_)) => poll
                .pending
                .push(format!("{} (FreeSWITCH not answering yet)", g.name)),
            Err(e) => poll.failed.push(format!("gateway `{}`: {e}", g.name)),
        }
    }
    poll
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::transport::Transport;
    use crate::inputs::inventory::{Connection, ConnectionKind};

    /// A gateway that never leaves TRYING: the failure says how long and how many polls.
    #[tokio::test]
    async fn a_timeout_says_how_long_and_how_many_polls() {
        let dir = std::env::temp_dir().join(format!("switchyard-verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fs_cli = dir.join("fs_cli");
        std::fs::write(
            &fs_cli,
            "#!/bin/sh\nprintf '<gateway><name>wavix</name><state>TRYING</state><status>UP</status></gateway>\\n'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fs_cli, std::fs::Permissions::from_mode(0o755)).unwrap();
        let conn = Connection {
            kind: ConnectionKind::Local,
            address: "localhost".into(),
            port: 0,
            user: "root".into(),
            key_file: None,
            become_root: false,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            jump: Vec::new(),
            retries: 0,
        };
        let ssh = crate::host::transport::SshOptions {
            known_hosts: dir.join("known_hosts"),
            accept_new_host_keys: false,
        };
        let mut t = Transport::connect(&conn, &ssh).await.unwrap();
        let gw = ManagedGateway {
            profile: "external".into(),
            name: "wavix".into(),
            registers: true,
        };
        let v = gateways(
            &mut Via::Channel(&mut t),
            &fs_cli.to_string_lossy(),
            &[gw],
            Duration::from_millis(250),
            Duration::from_millis(100),
            Duration::ZERO,
        )
        .await;
        let f = v.failure.expect("TRYING is not healthy");
        // Polled at 0, 100 and 200 ms (fewer if the machine is slow), then given up.
        assert!(f.starts_with("gateways not healthy after 0 s ("), "{f}");
        assert!(f.ends_with(" polls): wavix TRYING"), "{f}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
