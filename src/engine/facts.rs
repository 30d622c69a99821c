//! Facts: the current state of every managed file of a host, gathered in one round trip.

use crate::host::script;
use crate::host::transport::{Transport, TransportError};

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

/// The default for `freeswitch_max_file_bytes`: the largest managed file switchyard reads.
/// A FreeSWITCH conf file is kilobytes; a file beyond this is refused on the host before
/// its content travels (a `freeswitch` user truncating one to 1 GiB used to cost the
/// controller about nine copies of it in memory).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 8 << 20;

/// Bytes of a gather's answer besides the files' contents, per path (class and stat lines,
/// a folder name): the rest of the bound on what is read from the host.
const HEADER_BYTES_PER_PATH: u64 = 8 << 10;

/// Gather the state of `paths` (absolute, under `root`) in one remote command. A file over
/// `max_file_bytes` is never read (see [`script::gather`]); the whole answer is bounded
/// while it is read by what the paths may hold.
///
/// Hash first: `want[i]`, when given, is the content the controller wants at `paths[i]`;
/// the host hashes the file and sends its content only if it differs (so a no-op of a big
/// PBX moves no file content). The digests go on stdin and stay in memory (README
/// "Secrets"). A path without one (`want` shorter, or `None`) has its content sent.
///
/// Each path's fact, and whether the conf root itself does not exist (then every path is
/// [`FileFact::Missing`]).
pub async fn gather(
    t: &mut Transport,
    root: &str,
    paths: &[&str],
    want: &[Option<&[u8]>],
    max_file_bytes: u64,
) -> Result<(Vec<FileFact>, bool), FactsError> {
    if paths.is_empty() {
        return Ok((Vec::new(), false));
    }
    // The paths whose content travels anyway (no digest) go first: the host answers in
    // batches (of 100 under bash, 7 under a POSIX sh) and starts its reading programs
    // (readlink, head) once per batch that reads, so gathered together they are read in as
    // few batches as they fill.
    let order = content_first(paths.len(), want);
    let paths: Vec<&str> = order.iter().map(|&i| paths[i]).collect();
    let want: Vec<Option<&[u8]>> = order
        .iter()
        .map(|&i| want.get(i).copied().flatten())
        .collect();
    let (facts, root_missing) = gather_in_order(t, root, &paths, &want, max_file_bytes).await?;
    let mut back: Vec<Option<FileFact>> = (0..facts.len()).map(|_| None).collect();
    for (fact, &i) in facts.into_iter().zip(&order) {
        back[i] = Some(fact);
    }
    Ok((back.into_iter().flatten().collect(), root_missing))
}

/// The order in which to gather `n` paths: those without a wanted digest first, each
/// group in the order given.
fn content_first(n: usize, want: &[Option<&[u8]>]) -> Vec<usize> {
    let hashed = |i: &usize| want.get(*i).copied().flatten().is_some();
    let (mut order, rest): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| !hashed(i));
    order.extend(rest);
    order
}

async fn gather_in_order(
    t: &mut Transport,
    root: &str,
    paths: &[&str],
    want: &[Option<&[u8]>],
    max_file_bytes: u64,
) -> Result<(Vec<FileFact>, bool), FactsError> {
    let n = paths.len() as u64;
    let bound = n
        .saturating_mul(max_file_bytes.saturating_add(HEADER_BYTES_PER_PATH))
        .saturating_add(HEADER_BYTES_PER_PATH);
    let out = t
        .exec_bounded(
            &script::gather(root, max_file_bytes, paths),
            &wanted_digests(paths.len(), want),
            usize::try_from(bound).unwrap_or(usize::MAX),
        )
        .await?;
    if !out.ok() {
        return Err(FactsError::Failed {
            exit: out.exit,
            stderr: out.stderr_text(),
        });
    }
    let (answer, root_missing) = match out.stdout.strip_prefix(b"R\n") {
        Some(rest) => (rest, true),
        None => (&out.stdout[..], false),
    };
    let facts = parse(answer, paths.len(), max_file_bytes, want).map_err(FactsError::Garbled)?;
    Ok((facts, root_missing))
}

/// gather.sh's stdin: per path, `SIZE SHA256` of the wanted content, or `-`.
fn wanted_digests(n: usize, want: &[Option<&[u8]>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 72);
    for i in 0..n {
        match want.get(i).copied().flatten() {
            Some(c) => out.extend_from_slice(
                format!("{} {}\n", c.len(), crate::digest::sha256_hex(c)).as_bytes(),
            ),
            None => out.extend_from_slice(b"-\n"),
        }
    }
    out
}

/// One line of `out` from `*at` (without its newline); `*at` moves past it.
fn line<'a>(out: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = out.get(*at..)?;
    let end = rest.iter().position(|b| *b == b'\n')?;
    *at += end + 1;
    Some(&rest[..end])
}

/// Parse the output of [`script::gather`]: batches of class lines, `S`, stat lines, `C`,
/// contents, `.`, until `n` paths are answered. A path answered `=` holds `want[i]`, the
/// content the controller asked to be hashed, which is not sent again.
pub fn parse(
    out: &[u8],
    n: usize,
    limit: u64,
    want: &[Option<&[u8]>],
) -> Result<Vec<FileFact>, String> {
    let mut at = 0;
    let mut facts = Vec::with_capacity(n);
    while facts.len() < n {
        let mut batch: Vec<FileFact> = Vec::new();
        // (index in the batch, the content it holds when the host said `=`)
        let mut present: Vec<(usize, Option<&[u8]>)> = Vec::new();
        loop {
            let i = facts.len() + batch.len();
            let l = line(out, &mut at).ok_or("answer truncated")?;
            batch.push(match l {
                b"S" => break,
                _ if i >= n => return Err("more answers than paths".into()),
                b"F" => {
                    present.push((batch.len(), None));
                    FileFact::Missing // replaced below
                }
                b"=" => {
                    let held = want
                        .get(i)
                        .copied()
                        .flatten()
                        .ok_or_else(|| format!("record {i}: `=` for a file not hashed"))?;
                    present.push((batch.len(), Some(held)));
                    FileFact::Missing // replaced below
                }
                b"M" => FileFact::Missing,
                b"E" => FileFact::Unreadable("is not a regular file".into()),
                b"L" => FileFact::Unreadable(
                    "is a symbolic link; switchyard never follows links under the conf root (replace the link with the file itself)".into(),
                ),
                b"W" => FileFact::Unreadable(
                    "cannot be opened for reading and writing by this login (Permission denied): switchyard opens managed files read-write, which never blocks on a FIFO swapped in, and the login must be able to replace them anyway".into(),
                ),
                l if l.starts_with(b"O ") => FileFact::Unreadable(format!(
                    "its folder resolves to {}, outside the conf root (a link on the way); refusing to write there",
                    String::from_utf8_lossy(&l[2..])
                )),
                l if l.starts_with(b"B ") => FileFact::Unreadable(format!(
                    "is {} bytes, larger than the limit of {limit} bytes (freeswitch_max_file_bytes); not read",
                    String::from_utf8_lossy(&l[2..])
                )),
                other => {
                    return Err(format!(
                        "record {i}: unexpected `{}`",
                        String::from_utf8_lossy(other)
                    ))
                }
            });
        }
        let mut metas = Vec::with_capacity(present.len());
        for (_, held) in &present {
            let text = line(out, &mut at).ok_or("stat section truncated")?;
            let text = std::str::from_utf8(text).map_err(|_| "stat line not UTF-8")?;
            let w: Vec<&str> = text.split(' ').collect();
            // A file read (`F`) comes with the sha256 of its content, hashed on the host.
            if w.len() != if held.is_some() { 4 } else { 5 } {
                return Err(format!("bad stat line `{text}`"));
            }
            let mode = u32::from_str_radix(w[2], 8).map_err(|_| format!("bad mode `{}`", w[2]))?;
            let size: usize = w[3].parse().map_err(|_| format!("bad size `{}`", w[3]))?;
            let sha = w.get(4).map(|h| h.to_string());
            metas.push((w[0].to_string(), w[1].to_string(), mode, size, sha));
        }
        if line(out, &mut at) != Some(b"C") {
            return Err("missing content section".into());
        }
        for ((k, held), (owner, group, mode, size, sha)) in present.into_iter().zip(metas) {
            let content = match held {
                Some(c) if c.len() == size => c,
                Some(_) => return Err(format!("bad size {size} for a file hashed equal")),
                None => {
                    let c = out
                        .get(at..at + size)
                        .ok_or("a file changed while it was read")?;
                    at += size;
                    // Files that grew and shrank together between the host's stat and its
                    // read shift bytes from one slice into another with every size right:
                    // each slice must be the content the host hashed.
                    if sha.as_deref() != Some(crate::digest::sha256_hex(c).as_str()) {
                        return Err("a file changed while it was read".into());
                    }
                    c
                }
            };
            batch[k] = FileFact::Present {
                owner,
                group,
                mode,
                content: content.to_vec(),
            };
        }
        // Anything but the end mark here: a file grew or shrank while it was read.
        if out.get(at..at + 2) != Some(b".\n") {
            return Err("a file changed while it was read".into());
        }
        at += 2;
        facts.extend(batch);
    }
    if at != out.len() {
        return Err("a file changed while it was read".into());
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_whose_content_travels_are_gathered_first_in_their_order() {
        let c: &[u8] = b"x";
        let want = [Some(c), None, Some(c), None];
        // The fifth path has no entry in `want` at all: its content travels too.
        assert_eq!(content_first(5, &want), [1, 3, 4, 0, 2]);
        assert_eq!(content_first(2, &[]), [0, 1]);
    }

    /// The sha256 the host sends with a file it reads.
    fn sha(content: &str) -> String {
        crate::digest::sha256_hex(content.as_bytes())
    }

    #[test]
    fn parses_framed_records() {
        let out = format!(
            "F\nM\nE\nF\nS\nfreeswitch freeswitch 640 5 {}\nroot root 644 0 {}\nC\n<a/>\n.\n",
            sha("<a/>\n"),
            sha("")
        );
        let f = parse(out.as_bytes(), 4, 100, &[]).unwrap();
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
        let short = format!("F\nS\na b 640 10 {}\nC\nshort\n.\n", sha("short\n"));
        assert!(parse(short.as_bytes(), 1, 100, &[]).is_err());
        // A file that grew by a byte after its size was taken.
        let grew = format!("F\nS\na b 640 2 {}\nC\nabc.\n", sha("ab"));
        assert!(parse(grew.as_bytes(), 1, 100, &[]).is_err());
        // Content may hold newlines and look like headers; batches follow one another.
        let out = format!(
            "F\nF\nS\na b 600 4 {}\na b 600 2 {}\nC\nM\nS\nC\n.\nB 200\nS\nC\n.\n",
            sha("M\nS\n"),
            sha("C\n")
        );
        let f = parse(out.as_bytes(), 3, 100, &[]).unwrap();
        assert!(matches!(&f[0], FileFact::Present { content, .. } if content == b"M\nS\n"));
        assert!(matches!(&f[1], FileFact::Present { content, .. } if content == b"C\n"));
        assert!(
            matches!(&f[2], FileFact::Unreadable(m) if m.contains("200 bytes, larger than the limit of 100 bytes")),
            "{f:?}"
        );
        // Trailing bytes, or more answers than paths, are refused.
        assert!(parse(b"M\nS\nC\n.\nx", 1, 100, &[]).is_err());
        assert!(parse(b"M\nM\nS\nC\n.\n", 1, 100, &[]).is_err());
    }

    #[test]
    fn a_file_hashed_equal_holds_the_wanted_content_and_nothing_else_is_read() {
        let want: [Option<&[u8]>; 3] = [Some(b"<a/>\n"), None, Some(b"xyz")];
        let out = format!(
            "=\nF\nF\nS\nfs fs 640 5\nfs fs 600 2 {}\nr r 644 1 {}\nC\nhiQ.\n",
            sha("hi"),
            sha("Q")
        );
        let f = parse(out.as_bytes(), 3, 100, &want).unwrap();
        assert!(
            matches!(&f[0], FileFact::Present { content, mode: 0o640, .. } if content == b"<a/>\n")
        );
        assert!(matches!(&f[1], FileFact::Present { content, .. } if content == b"hi"));
        assert!(matches!(&f[2], FileFact::Present { content, .. } if content == b"Q"));
        // `=` for a path the controller did not ask to hash, or of another size, is refused.
        assert!(parse(b"=\nS\na b 640 1\nC\n.\n", 1, 100, &[None]).is_err());
        assert!(parse(b"=\nS\na b 640 4\nC\n.\n", 1, 100, &want).is_err());
    }

    /// Two files that grew and shrank together between the host's stat and its read: every
    /// size lines up, but bytes of the first land in the second's slice. Each slice must be
    /// what the host hashed, or the answer is refused; a file read without its hash too.
    #[test]
    fn bytes_shifted_from_one_file_into_the_next_are_refused() {
        let shifted = format!(
            "F\nF\nS\na b 600 3 {}\nr r 600 3 {}\nC\nabXYZ.\n",
            sha("abc"),
            sha("XYZ")
        );
        // Sizes 3 and 3, content "abX" + "YZ?": the first grew by one byte (X), the second
        // lost one; the total is unchanged.
        assert!(parse(shifted.as_bytes(), 2, 100, &[]).is_err());
        let fine = format!(
            "F\nF\nS\na b 600 3 {}\nr r 600 3 {}\nC\nabXYZW.\n",
            sha("abX"),
            sha("YZW")
        );
        assert!(parse(fine.as_bytes(), 2, 100, &[]).is_ok());
        assert!(parse(b"F\nS\na b 600 3\nC\nabc.\n", 1, 100, &[]).is_err());
    }

    #[test]
    fn wanted_digests_name_size_and_sha256_or_ask_for_the_content() {
        let want: [Option<&[u8]>; 2] = [None, Some(b"abc")];
        assert_eq!(
            String::from_utf8(wanted_digests(3, &want)).unwrap(),
            "-\n3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n-\n"
        );
    }
}
