//! Encrypted secrets: the vault, with age (passphrase or identity file).
//!
//! Secrets reach switchyard three ways, each resolved when the inventory loads and each
//! marked secret whatever its variable is called:
//!
//! ```yaml
//! wavix_password: {env: WAVIX_PASSWORD}            # from the controller's environment
//! wavix_password: {file: /etc/switchyard/wavix}     # from a file (trailing newline dropped)
//! wavix_password: {vault: "-----BEGIN AGE ENCRYPTED FILE-----\n..."}   # encrypt-string
//! ```
//!
//! and whole vars files encrypted with `switchyard vault encrypt` (`group_vars/pbx.age`,
//! `host_vars/pbx1.age`: every value in them is secret). The key comes from
//! `--vault-identity FILE` / `SWITCHYARD_VAULT_IDENTITY` (an age identity file), or
//! `--vault-password-file FILE` / `SWITCHYARD_VAULT_PASSWORD_FILE` /
//! `SWITCHYARD_VAULT_PASSWORD` (a passphrase).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use age::secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// `what`: the file (or value) that needed the key.
    #[error("{}no vault key was given to decrypt it: set SWITCHYARD_VAULT_IDENTITY (an age identity file) or SWITCHYARD_VAULT_PASSWORD, or pass --vault-identity or --vault-password-file", what.as_deref().map(|w| format!("{w}: ")).unwrap_or_default())]
    NoKey { what: Option<String> },
    #[error("cannot read vault key {}: {message}", path.display())]
    Key { path: PathBuf, message: String },
    #[error("cannot decrypt{}: {message} (wrong vault key?)", what.as_deref().map(|w| format!(" {w}")).unwrap_or_default())]
    Decrypt {
        what: Option<String>,
        message: String,
    },
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
}

enum Key {
    Passphrase(SecretString),
    Identities(Vec<age::x25519::Identity>),
}

/// The vault key of a run, and a cache so a value shared by many hosts is decrypted once.
pub struct Vault {
    key: Option<Key>,
    cache: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(********)")
    }
}

/// A passphrase or identity file, bounded while reading (1 MiB: a key is a line; an
/// identity file a few). A pipe is still read: `--vault-password-file <(pass show vault)`.
fn read_key_file(path: &Path) -> Result<String, VaultError> {
    let key_err = |message: String| VaultError::Key {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| key_err(e.to_string()))?;
    let bytes = crate::inputs::source::read_at_most(file, crate::secret::MAX_SECRET_BYTES)
        .map_err(|e| key_err(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| key_err("it is not valid UTF-8".into()))
}

impl Vault {
    /// No key: loading an inventory with encrypted values fails with a clear error.
    pub fn none() -> Vault {
        Vault {
            key: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// From the command line (if given), else the environment.
    pub fn from_sources(
        password_file: Option<&Path>,
        identity: Option<&Path>,
    ) -> Result<Vault, VaultError> {
        // Set but empty (`SWITCHYARD_VAULT_IDENTITY=`) is unset, not a file named "".
        let env_path = |n: &str| {
            std::env::var_os(n)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let key = if let Some(id) = identity
            .map(Path::to_path_buf)
            .or_else(|| env_path("SWITCHYARD_VAULT_IDENTITY"))
        {
            let text = read_key_file(&id)?;
            let ids: Vec<age::x25519::Identity> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| {
                    age::x25519::Identity::from_str(l).map_err(|e| VaultError::Key {
                        path: id.clone(),
                        message: e.to_string(),
                    })
                })
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Err(VaultError::Key {
                    path: id,
                    message: "no AGE-SECRET-KEY line".into(),
                });
            }
            Some(Key::Identities(ids))
        } else if let Some(pf) = password_file
            .map(Path::to_path_buf)
            .or_else(|| env_path("SWITCHYARD_VAULT_PASSWORD_FILE"))
        {
            let text = read_key_file(&pf)?;
            Some(Key::Passphrase(SecretString::from(
                text.trim_end_matches(['\n', '\r']).to_string(),
            )))
        } else {
            std::env::var("SWITCHYARD_VAULT_PASSWORD")
                .ok()
                .map(|p| Key::Passphrase(SecretString::from(p)))
        };
        Ok(Vault {
            key,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Encrypt to armored text (for files and `encrypt-string`).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, VaultError> {
        let err = |e: age::EncryptError| VaultError::Encrypt(e.to_string());
        match self.key.as_ref().ok_or(VaultError::NoKey { what: None })? {
            Key::Passphrase(p) => {
                age::encrypt_and_armor(&age::scrypt::Recipient::new(p.clone()), plaintext)
                    .map_err(err)
            }
            Key::Identities(ids) => {
                age::encrypt_and_armor(&ids[0].to_public(), plaintext).map_err(err)
            }
        }
    }

    /// Decrypt armored or binary age data; `what` names it in errors (never the content).
    pub fn decrypt(&self, ciphertext: &[u8], what: Option<&str>) -> Result<Vec<u8>, VaultError> {
        let err = |e: age::DecryptError| VaultError::Decrypt {
            what: what.map(str::to_string),
            message: e.to_string(),
        };
        let no_key = || VaultError::NoKey {
            what: what.map(str::to_string),
        };
        match self.key.as_ref().ok_or_else(no_key)? {
            Key::Passphrase(p) => {
                age::decrypt(&age::scrypt::Identity::new(p.clone()), ciphertext).map_err(err)
            }
            Key::Identities(ids) => {
                let mut last = None;
                for id in ids {
                    match age::decrypt(id, ciphertext) {
                        Ok(v) => return Ok(v),
                        Err(e) => last = Some(e),
                    }
                }
                Err(err(last.expect("at least one identity")))
            }
        }
    }

    /// Decrypt an inline `{vault: ...}` value to text, once per distinct ciphertext.
    pub fn decrypt_str(&self, armored: &str, what: &str) -> Result<String, VaultError> {
        if let Some(v) = self.cache.lock().expect("vault cache").get(armored) {
            return Ok(v.clone());
        }
        let plain = self.decrypt(armored.as_bytes(), Some(what))?;
        let text = String::from_utf8(plain).map_err(|_| VaultError::Decrypt {
            what: Some(what.into()),
            message: "not UTF-8 text".into(),
        })?;
        self.cache
            .lock()
            .expect("vault cache")
            .insert(armored.to_string(), text.clone());
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trip_and_wrong_key() {
        let id = age::x25519::Identity::generate();
        let dir = std::env::temp_dir().join(format!("sy-vault-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("key.txt");
        use age::secrecy::ExposeSecret;
        std::fs::write(
            &f,
            format!("# test key\n{}\n", id.to_string().expose_secret()),
        )
        .unwrap();
        let v = Vault::from_sources(None, Some(&f)).unwrap();
        let armored = v.encrypt(b"s3cr\"et<").unwrap();
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert_eq!(v.decrypt_str(&armored, "x").unwrap(), "s3cr\"et<");
        let other = age::x25519::Identity::generate();
        std::fs::write(&f, other.to_string().expose_secret()).unwrap();
        let w = Vault::from_sources(None, Some(&f)).unwrap();
        let e = w
            .decrypt_str(&armored, "wavix_password")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot decrypt wavix_password") && !e.contains("s3cr"),
            "{e}"
        );
        assert!(matches!(
            Vault::none().decrypt_str(&armored, "x"),
            Err(VaultError::NoKey { .. })
        ));
    }
}
