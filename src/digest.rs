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
    data_encoding::HEXLOWER.encode(bytes)
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

/// 32 bytes from the kernel's random source: getrandom(2), else /dev/urandom (a container
/// without the device still has the system call, an old kernel without the call has the
/// device).
fn random_key() -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut k = vec![0u8; 32];
    // SAFETY: the buffer is valid for k.len() bytes; flags 0 blocks only until the pool is
    // initialised at boot.
    let n = unsafe { libc::getrandom(k.as_mut_ptr().cast(), k.len(), 0) };
    if usize::try_from(n).is_ok_and(|n| n == k.len()) {
        return Ok(k);
    }
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut k))
        .map_err(|e| format!("getrandom and /dev/urandom: {e}"))?;
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
        Err(e) => match random_key() {
            // Still never a plain hash of a secret: a key for this process only (plans it
            // writes then verify only within this run).
            Ok(k) => {
                eprintln!("warning: digest key: {e}; using a key for this run only");
                k
            }
            // No key can be made at all. A fixed key would make every keyed digest as
            // guessable as a plain hash, so switchyard stops rather than publish one.
            Err(r) => {
                eprintln!(
                    "error: digest key: {e}, and no random key can be made ({r}): refusing to \
                     publish any digest of a secret-bearing file"
                );
                // Exit status 1, failure (src/exit.rs).
                std::process::exit(1)
            }
        },
    })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    data_encoding::HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()
}

/// HMAC-SHA256 (RFC 2104), by the `hmac` crate already in the build for known_hosts.
fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
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
    fn a_key_file_reads_back_as_written_in_either_case() {
        let k = random_key().unwrap();
        assert_eq!(k.len(), 32);
        assert_ne!(k, vec![0u8; 32]);
        assert_eq!(hex_decode(&hex(&k)), Some(k.clone()));
        assert_eq!(hex_decode(&hex(&k).to_uppercase()), Some(k));
        assert_eq!(hex_decode("abc"), None);
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
