//! Facts: the current state of every managed file of a host, gathered in one round trip.

use crate::script;
use crate::transport::{Transport, TransportError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFact {
    Missing,
    Present {
        owner: String,
        group: String,
        mode: u32,
        content: Vec<u8>,
    },
    /// Exists but cannot be read (permissions, not a regular file, ...).
    Unreadable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("gathering file state failed (exit {exit:?}): {stderr}")]
    Failed { exit: Option<u32>, stderr: String },
    #[error("unexpected answer while gathering file state: {0}")]
    Garbled(String),
}

/// Gather the state of `paths` (absolute) in one remote command.
pub async fn gather(t: &mut Transport, paths: &[&str]) -> Result<Vec<FileFact>, FactsError> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let out = t.exec(&script::gather(paths), &[]).await?;
    if !out.ok() {
        return Err(FactsError::Failed {
            exit: out.exit,
            stderr: out.stderr_text(),
        });
    }
    parse(&out.stdout, paths.len()).map_err(FactsError::Garbled)
}

/// Parse the framed output of [`script::gather`].
pub fn parse(mut out: &[u8], n: usize) -> Result<Vec<FileFact>, String> {
    let mut facts = Vec::with_capacity(n);
    for i in 0..n {
        let nl = out
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| format!("record {i} truncated"))?;
        let head =
            std::str::from_utf8(&out[..nl]).map_err(|_| format!("record {i}: header not UTF-8"))?;
        out = &out[nl + 1..];
        let mut words = head.split(' ');
        match words.next() {
            Some("M") => facts.push(FileFact::Missing),
            Some("E") => facts.push(FileFact::Unreadable(head[1..].trim().to_string())),
            Some("F") => {
                let w: Vec<&str> = words.collect();
                if w.len() != 4 {
                    return Err(format!("record {i}: bad header `{head}`"));
                }
                let mode = u32::from_str_radix(w[2], 8)
                    .map_err(|_| format!("record {i}: bad mode `{}`", w[2]))?;
                let size: usize = w[3]
                    .parse()
                    .map_err(|_| format!("record {i}: bad size `{}`", w[3]))?;
                if out.len() < size + 1 || out[size] != b'\n' {
                    return Err(format!("record {i}: file changed while it was read"));
                }
                facts.push(FileFact::Present {
                    owner: w[0].to_string(),
                    group: w[1].to_string(),
                    mode,
                    content: out[..size].to_vec(),
                });
                out = &out[size + 1..];
            }
            _ => return Err(format!("record {i}: bad header `{head}`")),
        }
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_framed_records() {
        let out = b"F freeswitch freeswitch 640 5\n<a/>\n\nM\nE not a regular file\nF root root 644 0\n\n";
        let f = parse(out, 4).unwrap();
        assert_eq!(
            f[0],
            FileFact::Present {
                owner: "freeswitch".into(),
                group: "freeswitch".into(),
                mode: 0o640,
                content: b"<a/>\n".to_vec()
            }
        );
        assert_eq!(f[1], FileFact::Missing);
        assert!(matches!(f[2], FileFact::Unreadable(_)));
        assert!(matches!(&f[3], FileFact::Present { content, .. } if content.is_empty()));
        assert!(parse(b"F a b 640 10\nshort\n", 1).is_err());
    }
}
