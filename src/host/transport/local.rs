//! Running commands on this machine, for a switchyard run on the PBX itself and the demo.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::{Held, Output, TransportError};

pub struct Local;

/// `sh -c cmd` with every stream piped, killed if dropped.
fn spawn(cmd: &str) -> Result<tokio::process::Child, TransportError> {
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(TransportError::Spawn)
}

impl Local {
    /// Start `cmd`, wait for its first line; it runs until the guard is released or dropped.
    pub async fn hold(&mut self, cmd: &str) -> Result<(String, Held), TransportError> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let mut child = spawn(cmd)?;
        let mut line = String::new();
        let mut out = tokio::io::BufReader::new(child.stdout.take().expect("piped"));
        let _ = (&mut out).take(4096).read_line(&mut line).await;
        if line.is_empty() {
            if let Some(e) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let mut buf = Vec::new();
                let _ = e.take(4096).read_to_end(&mut buf).await;
                line = String::from_utf8_lossy(&buf).into_owned();
            }
        }
        Ok((line, Held::Local(Box::new((child, out)))))
    }

    /// Run `cmd`, reading at most `max` bytes of answer (stdout and stderr together).
    pub async fn exec(
        &mut self,
        cmd: &str,
        stdin: &[u8],
        max: usize,
    ) -> Result<Output, TransportError> {
        use tokio::io::AsyncReadExt;
        let mut child = spawn(cmd)?;
        let mut input = child.stdin.take().expect("piped");
        let data = stdin.to_vec();
        // Feed stdin concurrently with reading output, so large inputs cannot deadlock.
        let feeder = tokio::spawn(async move {
            let _ = input.write_all(&data).await;
            let _ = input.shutdown().await;
        });
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        let (mut so, mut se) = (
            child.stdout.take().expect("piped").take(limit),
            child.stderr.take().expect("piped").take(limit),
        );
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let (a, b) = tokio::join!(so.read_to_end(&mut stdout), se.read_to_end(&mut stderr));
        a.map_err(TransportError::Spawn)?;
        b.map_err(TransportError::Spawn)?;
        if stdout.len() + stderr.len() > max {
            let _ = child.kill().await;
            return Err(TransportError::TooLarge { max });
        }
        let status = child.wait().await.map_err(TransportError::Spawn)?;
        let _ = feeder.await;
        Ok(Output {
            stdout,
            stderr,
            exit: status.code().map(|c| c as u32),
        })
    }
}
