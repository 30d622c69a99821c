//! Running commands on this machine, for a switchyard run on the PBX itself and the demo.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::{Output, TransportError};

pub struct Local;

impl Local {
    pub async fn exec(&mut self, cmd: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(TransportError::Spawn)?;
        let mut input = child.stdin.take().expect("piped");
        let data = stdin.to_vec();
        // Feed stdin concurrently with reading output, so large inputs cannot deadlock.
        let feeder = tokio::spawn(async move {
            let _ = input.write_all(&data).await;
            let _ = input.shutdown().await;
        });
        let out = child
            .wait_with_output()
            .await
            .map_err(TransportError::Spawn)?;
        let _ = feeder.await;
        Ok(Output {
            stdout: out.stdout,
            stderr: out.stderr,
            exit: out.status.code().map(|c| c as u32),
        })
    }
}
