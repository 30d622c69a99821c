//! known_hosts, read the way OpenSSH reads it (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT").
//!
//! russh's own helper skips neither `@revoked` nor `@cert-authority` lines and treats a key
//! of another type as unknown, which `--accept-new-host-keys` then appended: a host that
//! presents an ed25519 key where known_hosts holds its RSA key is a host whose key changed
//! (OpenSSH: `REMOTE HOST IDENTIFICATION HAS CHANGED`), whatever the type.

use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::PublicKey;
use sha1::Sha1;

/// Why known_hosts could not vouch for a host's key (other than the key being unknown,
/// changed or revoked, which are [`TransportError`](super::TransportError)s of their own).
#[derive(Debug, thiserror::Error)]
pub enum KnownHostsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--accept-new-host-keys` could not append the key.
    #[error("cannot record host key in {}: {source}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} names this host only in @cert-authority line(s) {lines:?}: host certificates are not supported; list the host's own key", path.display())]
    CertificateOnly { path: PathBuf, lines: Vec<usize> },
    #[error("the host presented a certificate: host certificates (@cert-authority) are not supported; list the host's own key in known_hosts")]
    Certificate,
}

/// What known_hosts says about a host's presented key.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A plain entry for the host holds this key.
    Known,
    /// The key is listed `@revoked` (line).
    Revoked(usize),
    /// The host has entries, none with this key (their lines): a changed key.
    Changed(Vec<usize>),
    /// Only `@cert-authority` entries name the host (lines): host certificates are not
    /// supported, and a plain key is not what those entries vouch for.
    CertificateOnly(Vec<usize>),
    /// Nothing names the host.
    Unknown,
}

struct Entry {
    line: usize,
    marker: Option<String>,
    patterns: String,
    key: Option<PublicKey>,
}

fn parse(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut words = l.split_whitespace();
        let mut first = words.next().unwrap_or("");
        let marker = if first.starts_with('@') {
            let m = first.to_string();
            first = words.next().unwrap_or("");
            Some(m)
        } else {
            None
        };
        let _key_type = words.next();
        let key = words
            .next()
            .and_then(|b64| russh::keys::parse_public_key_base64(b64).ok());
        out.push(Entry {
            line: i + 1,
            marker,
            patterns: first.to_string(),
            key,
        });
    }
    out
}

/// A parsed known_hosts file, indexed: an entry whose patterns are all plain names (no
/// wildcard, negation or hash) is found by name; the others are tried on every host.
///
/// *Why*: every connection judges its host's key and picks its key algorithms from
/// known_hosts. Parsing the file (a base64 key decoded per line) for each of them made a
/// 2,000-PBX run parse a 2,000-line file 4,000 times; the table is parsed once per file
/// version ([`table`]) and a host's entries are a hash lookup.
struct Table {
    entries: Vec<Entry>,
    exact: std::collections::HashMap<String, Vec<usize>>,
    other: Vec<usize>,
}

impl Table {
    fn new(entries: Vec<Entry>) -> Table {
        let mut exact: std::collections::HashMap<String, Vec<usize>> = Default::default();
        let mut other = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let plain = e
                .patterns
                .split(',')
                .all(|p| !p.starts_with('!') && !p.starts_with("|1|") && !p.contains(['*', '?']));
            if plain {
                let mut seen: Vec<String> = Vec::new();
                for p in e.patterns.split(',').map(str::to_ascii_lowercase) {
                    if !seen.contains(&p) {
                        exact.entry(p.clone()).or_default().push(i);
                        seen.push(p);
                    }
                }
            } else {
                other.push(i);
            }
        }
        Table {
            entries,
            exact,
            other,
        }
    }

    /// The entries that may name `name`, in file order (the verdict names lines in order).
    fn candidates(&self, name: &str) -> Vec<&Entry> {
        let mut idx: Vec<usize> = self
            .exact
            .get(&name.to_ascii_lowercase())
            .map(|v| v.to_vec())
            .unwrap_or_default();
        idx.extend_from_slice(&self.other);
        idx.sort_unstable();
        idx.into_iter().map(|i| &self.entries[i]).collect()
    }
}

/// The table of the known_hosts file at `path`, parsed once per version of the file (its
/// device, inode, size and modification time: `--accept-new-host-keys` appending a key
/// makes a new version). A missing file is an empty table.
fn table(path: &Path) -> std::io::Result<std::sync::Arc<Table>> {
    use std::os::unix::fs::MetadataExt;
    use std::sync::{Arc, Mutex, OnceLock};
    type Version = (u64, u64, u64, i64, i64);
    type Parsed = (PathBuf, Version, Arc<Table>);
    static CACHE: OnceLock<Mutex<Vec<Parsed>>> = OnceLock::new();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Arc::new(Table::new(Vec::new())))
        }
        Err(e) => return Err(e),
    };
    let version = (
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some((_, _, t)) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(p, v, _)| p == path && *v == version)
    {
        return Ok(t.clone());
    }
    let text = std::fs::read_to_string(path)?;
    let t = Arc::new(Table::new(parse(&text)));
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache.retain(|(p, _, _)| p != path);
    cache.push((path.to_path_buf(), version, t.clone()));
    Ok(t)
}

/// `*` and `?` wildcards, as in OpenSSH's match_pattern.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn hashed(entry: &str, name: &str) -> bool {
    let mut parts = entry.trim_start_matches("|1|").split('|');
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        BASE64.decode(salt.as_bytes()),
        BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    let Ok(mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// Whether a comma-separated pattern list names the host (`name` is `host` on port 22,
/// else `[host]:port`); a matching `!pattern` excludes it.
fn names(patterns: &str, name: &str) -> bool {
    let mut hit = false;
    for p in patterns.split(',') {
        let (neg, p) = match p.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, p),
        };
        let m = if p.starts_with("|1|") {
            hashed(p, name)
        } else {
            wildcard(&p.to_ascii_lowercase(), &name.to_ascii_lowercase())
        };
        if m && neg {
            return false;
        }
        hit |= m;
    }
    hit
}

/// The host name as known_hosts writes it.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Judge `key` presented by `host:port` against the known_hosts file at `path` (a missing
/// file knows nothing).
pub fn check(
    path: &Path,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<Verdict, KnownHostsError> {
    let table = table(path).map_err(|source| KnownHostsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = host_name(host, port);
    Ok(judge(&table.candidates(&name), &name, key))
}

fn judge(entries: &[&Entry], name: &str, key: &PublicKey) -> Verdict {
    let same = |e: &Entry| {
        e.key
            .as_ref()
            .is_some_and(|k| k.key_data() == key.key_data())
    };
    if let Some(e) = entries
        .iter()
        .find(|e| e.marker.as_deref() == Some("@revoked") && same(e) && names(&e.patterns, name))
    {
        return Verdict::Revoked(e.line);
    }
    let plain: Vec<&Entry> = entries
        .iter()
        .copied()
        .filter(|e| e.marker.is_none() && names(&e.patterns, name))
        .collect();
    if plain.iter().any(|e| same(e)) {
        return Verdict::Known;
    }
    if !plain.is_empty() {
        return Verdict::Changed(plain.iter().map(|e| e.line).collect());
    }
    let ca: Vec<usize> = entries
        .iter()
        .filter(|e| e.marker.as_deref() == Some("@cert-authority") && names(&e.patterns, name))
        .map(|e| e.line)
        .collect();
    if !ca.is_empty() {
        return Verdict::CertificateOnly(ca);
    }
    Verdict::Unknown
}

/// Append `key` for `host:port` to the known_hosts file at `path` (created, with its
/// folder, when missing), as OpenSSH's `StrictHostKeyChecking=accept-new` does, and say so
/// on stderr (host, key type, fingerprint, file), as OpenSSH's "Permanently added" does.
/// A line break is written first only when the file does not already end with one: a new
/// file starts with the entry (russh's own helper started it with an empty line).
pub fn learn(path: &Path, host: &str, port: u16, key: &PublicKey) -> Result<(), KnownHostsError> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let record = |source: std::io::Error| KnownHostsError::Record {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(record)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(record)?;
    let len = file.metadata().map_err(record)?.len();
    let mut last = [b'\n'];
    if len > 0 {
        file.seek(SeekFrom::End(-1)).map_err(record)?;
        file.read_exact(&mut last).map_err(record)?;
    }
    let openssh = key
        .to_openssh()
        .map_err(|e| record(std::io::Error::other(e.to_string())))?;
    let mut line = String::new();
    if last[0] != b'\n' {
        line.push('\n');
    }
    line.push_str(&format!("{} {openssh}\n", host_name(host, port)));
    file.write_all(line.as_bytes()).map_err(record)?;
    eprintln!(
        "added the host key of {} to {} (--accept-new-host-keys): {} {}",
        host_name(host, port),
        path.display(),
        key.algorithm(),
        key.fingerprint(russh::keys::HashAlg::Sha256)
    );
    Ok(())
}

/// The key algorithms known_hosts lists for the host, to offer the server first (so a host
/// with both an RSA and an ed25519 key presents the one on record).
pub fn known_algorithms(path: &Path, host: &str, port: u16) -> Vec<russh::keys::Algorithm> {
    let Ok(table) = table(path) else {
        return Vec::new();
    };
    let name = host_name(host, port);
    let mut out = Vec::new();
    for e in table.candidates(&name) {
        if e.marker.is_none() && names(&e.patterns, &name) {
            if let Some(k) = &e.key {
                // An RSA key is signed with SHA-2 in the handshake (`ssh-rsa`, SHA-1, is off
                // in current OpenSSH).
                let algs = match k.algorithm() {
                    russh::keys::Algorithm::Rsa { .. } => vec![
                        russh::keys::Algorithm::Rsa {
                            hash: Some(russh::keys::HashAlg::Sha256),
                        },
                        russh::keys::Algorithm::Rsa {
                            hash: Some(russh::keys::HashAlg::Sha512),
                        },
                    ],
                    a => vec![a],
                };
                for a in algs {
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIMONBVyiYEjveH0Wl7jXxe+TZ5Og2cfjsPTRpVIRkEl0";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOr2fsH4pciqX63uR7DErS0JNk+ZkegV53K3jp9j34cX";
    const RSA: &str = "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDd+l3M5wweIVp70YTb3GdQAZRjrhAjUQiYn1KYKwp0idTFXDC7LvG7r7G9eYDh1MG07z/3Hgcgwk3/f6jd8VYPaCWAWU8VUUXQ30qS7GyNcUwtfYmzVTDorhGOa6ldr2YHYPJHb+RX95FDBVBIcd0IAYMShd8RPEo1udDewz3Evw==";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    #[test]
    fn openssh_semantics() {
        let kh = format!(
            "# comment\n[10.0.0.1]:2222 ssh-ed25519 {ED}\n@revoked * ssh-ed25519 {ED2}\n@cert-authority *.ca.example ssh-ed25519 {ED}\npbx-*.example,!pbx-bad.example ssh-ed25519 {ED}\n"
        );
        let e = Table::new(parse(&kh));
        let judge = |t: &Table, name: &str, k: &str| judge(&t.candidates(name), name, &key(k));
        assert_eq!(judge(&e, "[10.0.0.1]:2222", ED), Verdict::Known);
        assert_eq!(judge(&e, "[10.0.0.1]:2222", ED2), Verdict::Revoked(3));
        assert_eq!(judge(&e, "10.0.0.1", ED), Verdict::Unknown);
        assert_eq!(judge(&e, "pbx-1.example", ED), Verdict::Known);
        assert_eq!(judge(&e, "pbx-bad.example", ED), Verdict::Unknown);
        assert_eq!(
            judge(&e, "h.ca.example", ED),
            Verdict::CertificateOnly(vec![4])
        );
        // A key of another type for a known host is a changed key, not a new one; names
        // are found whatever their case, on every line that lists them, in line order.
        let kh2 = format!("[h]:2200 ssh-rsa {RSA}\nb,[H]:2200 ssh-ed25519 {ED2}\n");
        assert_eq!(
            judge(&Table::new(parse(&kh2)), "[h]:2200", ED),
            Verdict::Changed(vec![1, 2])
        );
    }

    /// The parsed table is kept per file version: a key learned (appended) is seen by the
    /// next check in the same process, and a file replaced by another is read again.
    #[test]
    fn a_file_changed_since_it_was_parsed_is_read_again() {
        let dir = std::env::temp_dir().join(format!("sy-kh-{}", std::process::id()));
        let path = dir.join("known_hosts");
        assert_eq!(check(&path, "h", 2200, &key(ED)).unwrap(), Verdict::Unknown);
        learn(&path, "h", 2200, &key(ED)).unwrap();
        assert_eq!(check(&path, "h", 2200, &key(ED)).unwrap(), Verdict::Known);
        assert_eq!(known_algorithms(&path, "h", 2200).len(), 1);
        let other = dir.join("other");
        std::fs::write(&other, format!("[h]:2200 ssh-ed25519 {ED2}\n")).unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(
            check(&path, "h", 2200, &key(ED)).unwrap(),
            Verdict::Changed(vec![1])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hashed_names() {
        // `ssh-keygen -H` form of "[127.0.0.5]:2222": salt, then HMAC-SHA1(salt, name).
        let salt = [7u8; 20];
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt).unwrap();
        mac.update(b"[127.0.0.5]:2222");
        let h = format!(
            "|1|{}|{}",
            BASE64.encode(&salt),
            BASE64.encode(&mac.finalize().into_bytes())
        );
        assert!(names(&h, "[127.0.0.5]:2222"));
        assert!(!names(&h, "[127.0.0.5]:2223"));
    }
}
