//! Digests that are safe to publish.
//!
//! A plan, a `--json` report or the history shows each changed file's masked diff and a
//! hash of its content. For a file that holds a secret, a plain sha256 next to the masked
//! text would let anyone try guesses offline (a 4-digit voicemail PIN falls in
//! milliseconds). Such files are given a keyed digest instead, `hmac-sha256:HEX`, whose key
//! stays on the controller: `$SWITCHYARD_DIGEST_KEY_FILE`, else
//! `$XDG_STATE_HOME/switchyard/digest.key` (`~/.local/state/...`), 32 random bytes created
//! 0600 on first use. A plan made on one machine verifies (`apply --plan`) on another only
//! if both have the same key file; files without secrets keep a plain sha256.

use std::path::PathBuf;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The prefix that marks a keyed digest in reports and plans.
pub const KEYED: &str = "hmac-sha256:";

fn key_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SWITCHYARD_DIGEST_KEY_FILE") {
        return Some(PathBuf::from(p));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("switchyard/digest.key"))
}

fn random_key() -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut k = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut k))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(k)
}

fn load_or_create() -> Result<Vec<u8>, String> {
    let path = key_path().ok_or("no HOME for the digest key")?;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return hex_decode(text.trim())
                .filter(|k| k.len() >= 16)
                .ok_or(format!("{}: not a digest key", path.display()))
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("{}: {e}", path.display()))
        }
        Err(_) => {}
    }
    let key = random_key()?;
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            writeln!(f, "{}", hex(&key)).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(key)
        }
        // Another run created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn key() -> &'static [u8] {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| match load_or_create() {
        Ok(k) => k,
        Err(e) => {
            // Still never a plain hash of a secret: a key for this process only (plans it
            // writes then verify only within this run).
            eprintln!("warning: digest key: {e}; using a key for this run only");
            random_key().unwrap_or_else(|_| vec![0x5a; 32])
        }
    })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// What reports publish for a file whose plain sha256 is `plain_hex`.
pub fn published(plain_hex: &str, secret: bool) -> String {
    if secret {
        keyed(plain_hex)
    } else {
        plain_hex.to_string()
    }
}

/// The publishable digest of a secret-bearing file whose plain sha256 is `plain_hex`.
pub fn keyed(plain_hex: &str) -> String {
    format!("{KEYED}{}", hex(&hmac(key(), plain_hex.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
