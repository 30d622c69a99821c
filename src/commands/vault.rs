//! `switchyard vault`: encrypt and decrypt secrets with age (a passphrase or an identity
//! file, from the global `--vault-*` options).

use std::path::PathBuf;

use clap::Subcommand;

use super::Context;
use crate::exit::{CommandError, CommandResult, ExitStatus};

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Encrypt a file (a vars file becomes group_vars/NAME.age or host_vars/NAME.age)
    Encrypt {
        /// The file to encrypt (a vars file, a secret)
        file: PathBuf,
        /// Output file (default: FILE.age)
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
    /// Decrypt a file to stdout (or -o FILE)
    Decrypt {
        /// The encrypted file
        file: PathBuf,
        /// Output file (default: stdout)
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
    /// Edit an encrypted file with $EDITOR, re-encrypting it afterwards
    Edit {
        /// The encrypted file
        file: PathBuf,
    },
    /// Encrypt one value read from stdin, printed as an inventory line `NAME: {vault: "..."}`
    EncryptString {
        /// The variable name printed before the value
        #[arg(long, default_value = "secret")]
        name: String,
    },
    /// Create a new age identity file (mode 0600) for --vault-identity
    Keygen {
        /// Where to write the identity (refused if it exists)
        #[arg(long, short = 'o')]
        out: PathBuf,
    },
}

pub fn run(cmd: VaultCommand, cx: &Context) -> CommandResult {
    let vault = &cx.vault;
    use std::io::{Read, Write};
    // Beside group_vars and host_vars, folders others may write to: never through a planted
    // link, never a predictable temp name (crate::atomic_file).
    let write_private = |path: &std::path::Path, data: &[u8]| -> Result<(), CommandError> {
        crate::atomic_file::write_private(path, data)
            .map_err(|e| format!("{}: {e}", path.display()).into())
    };
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    match cmd {
        VaultCommand::Encrypt { file, out } => {
            // group_vars/pbx.yml -> group_vars/pbx.age: the name the inventory loader reads.
            let out = out.unwrap_or_else(|| match file.extension().and_then(|e| e.to_str()) {
                Some("yml" | "yaml") => file.with_extension("age"),
                _ => PathBuf::from(format!("{}.age", file.display())),
            });
            write_private(&out, vault.encrypt(&read(&file)?)?.as_bytes())?;
            eprintln!(
                "encrypted {} -> {} (delete the plain file when you are done)",
                file.display(),
                out.display()
            );
        }
        VaultCommand::Decrypt { file, out } => {
            let plain = vault.decrypt(&read(&file)?, Some(&file.display().to_string()))?;
            match out {
                Some(o) => write_private(&o, &plain)?,
                None => std::io::stdout().write_all(&plain)?,
            }
        }
        VaultCommand::Edit { file } => {
            // A link is refused before the editor opens, not after the edits are made.
            crate::atomic_file::existing(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let plain = vault.decrypt(&read(&file)?, Some(&file.display().to_string()))?;
            let dir = std::env::temp_dir().join(format!("switchyard-vault-{}", std::process::id()));
            {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
            }
            let tmp = dir
                .join(file.file_name().unwrap_or_default())
                .with_extension("yml");
            write_private(&tmp, &plain)?;
            let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{editor} \"$1\""))
                .arg("sh")
                .arg(&tmp)
                .status();
            let edited = std::fs::read(&tmp);
            let _ = std::fs::remove_dir_all(&dir);
            if !status.map(|s| s.success()).unwrap_or(false) {
                return Err(format!("`{editor}` failed; {} unchanged", file.display()).into());
            }
            let edited = edited?;
            if edited != plain {
                write_private(&file, vault.encrypt(&edited)?.as_bytes())?;
                eprintln!("{} re-encrypted", file.display());
            }
        }
        VaultCommand::Keygen { out } => {
            use age::secrecy::ExposeSecret;
            if out.exists() {
                return Err(format!("{} exists; not overwriting a key", out.display()).into());
            }
            let id = age::x25519::Identity::generate();
            let text = format!(
                "# switchyard vault identity\n# public key: {}\n{}\n",
                id.to_public(),
                id.to_string().expose_secret()
            );
            write_private(&out, text.as_bytes())?;
            eprintln!("wrote {} (public key {})", out.display(), id.to_public());
        }
        VaultCommand::EncryptString { name } => {
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            let value = value.trim_end_matches(['\n', '\r']);
            println!(
                "{name}: {{vault: {}}}",
                serde_json::to_string(&vault.encrypt(value.as_bytes())?)?
            );
        }
    }
    Ok(ExitStatus::Success)
}
