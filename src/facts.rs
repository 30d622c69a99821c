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
    /// Exists but is not switchyard's to read or replace: not a regular file, a symbolic
    /// link, or in a folder that resolves outside the conf root. Says why, as a sentence.
    Unreadable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("gathering file state failed ({}): {}", exit_text(*.exit), reason(*.exit, .stderr))]
    Failed { exit: Option<u32>, stderr: String },
    #[error("unexpected answer while gathering file state: {0}")]
    Garbled(String),
}

fn exit_text(exit: Option<u32>) -> String {
    match exit {
        Some(c) => format!("exit {c}"),
        None => "no exit status".into(),
    }
}

/// What the host said, or what its silence means.
fn reason(exit: Option<u32>, stderr: &str) -> String {
    let s = stderr.trim();
    if !s.is_empty() {
        return s.to_string();
    }
    match exit {
        // sshd runs every command through the login's shell; /bin/false and nologin fail
        // at once, silently.
        Some(1) => "the command printed nothing: the login's shell refused to run it (is it /bin/false or nologin? switchyard needs a login that runs `sh`)".into(),
        _ => "the command printed nothing".into(),
    }
}

/// Gather the state of `paths` (absolute, under `root`) in one remote command.
pub async fn gather(
    t: &mut Transport,
    root: &str,
    paths: &[&str],
) -> Result<Vec<FileFact>, FactsError> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let out = t.exec(&script::gather(root, paths), &[]).await?;
    if !out.ok() {
        return Err(FactsError::Failed {
            exit: out.exit,
            stderr: out.stderr_text(),
        });
    }
    parse(&out.stdout, paths.len()).map_err(FactsError::Garbled)
}

/// Parse the output of [`script::gather`].
pub fn parse(out: &[u8], n: usize) -> Result<Vec<FileFact>, String> {
    let mut lines = out.split(|b| *b == b'\n');
    let mut classes = Vec::with_capacity(n);
    let mut outside = Vec::new();
    for i in 0..n {
        match lines.next() {
            Some(b"F") => classes.push('F'),
            Some(b"M") => classes.push('M'),
            Some(b"E") => classes.push('E'),
            Some(b"L") => classes.push('L'),
            Some(l) if l.starts_with(b"O ") => {
                classes.push('O');
                outside.push(String::from_utf8_lossy(&l[2..]).into_owned());
            }
            other => {
                return Err(format!(
                    "record {i}: unexpected `{}`",
                    String::from_utf8_lossy(other.unwrap_or_default())
                ))
            }
        }
    }
    if lines.next() != Some(b"S") {
        return Err("missing stat section".into());
    }
    let mut metas = Vec::new();
    for _ in classes.iter().filter(|c| **c == 'F') {
        let line = lines.next().ok_or("stat section truncated")?;
        let text = std::str::from_utf8(line).map_err(|_| "stat line not UTF-8")?;
        let w: Vec<&str> = text.split(' ').collect();
        if w.len() != 4 {
            return Err(format!("bad stat line `{text}`"));
        }
        let mode = u32::from_str_radix(w[2], 8).map_err(|_| format!("bad mode `{}`", w[2]))?;
        let size: usize = w[3].parse().map_err(|_| format!("bad size `{}`", w[3]))?;
        metas.push((w[0].to_string(), w[1].to_string(), mode, size));
    }
    if lines.next() != Some(b"C") {
        return Err("missing content section".into());
    }
    // Everything after the `C` line is the files' contents, back to back.
    let header_len: usize = out.len() - lines.map(|l| l.len() + 1).sum::<usize>() + 1;
    let mut content = out.get(header_len.min(out.len())..).unwrap_or_default();
    let total: usize = metas.iter().map(|m| m.3).sum();
    if content.len() != total {
        return Err("a file changed while it was read".into());
    }
    let mut metas = metas.into_iter();
    let mut outside = outside.into_iter();
    let mut facts = Vec::with_capacity(n);
    for c in classes {
        facts.push(match c {
            'F' => {
                let (owner, group, mode, size) = metas.next().expect("one stat line per file");
                let (this, rest) = content.split_at(size);
                content = rest;
                FileFact::Present {
                    owner,
                    group,
                    mode,
                    content: this.to_vec(),
                }
            }
            'M' => FileFact::Missing,
            'L' => FileFact::Unreadable(
                "is a symbolic link; switchyard never follows links under the conf root (replace the link with the file itself)".into(),
            ),
            'O' => FileFact::Unreadable(format!(
                "its folder resolves to {}, outside the conf root (a link on the way); refusing to write there",
                outside.next().unwrap_or_default()
            )),
            _ => FileFact::Unreadable("is not a regular file".into()),
        });
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_framed_records() {
        let out = b"F\nM\nE\nF\nS\nfreeswitch freeswitch 640 5\nroot root 644 0\nC\n<a/>\n";
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
        assert!(parse(b"F\nS\na b 640 10\nC\nshort\n", 1).is_err());
        // Content may hold newlines and look like headers.
        let f = parse(b"F\nF\nS\na b 600 4\na b 600 2\nC\nM\nS\nC\n", 2).unwrap();
        assert!(matches!(&f[0], FileFact::Present { content, .. } if content == b"M\nS\n"));
        assert!(matches!(&f[1], FileFact::Present { content, .. } if content == b"C\n"));
    }
}
