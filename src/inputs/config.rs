//! `switchyard.toml`: a project's defaults, so that the commands people type every day stay
//! short (`switchyard apply playbooks/wavix.yml`).
//!
//! ```toml
//! inventory = ["inventory/pbx.yml"]   # or one path; relative to this file
//! forks = 50
//! known_hosts = "ssh/known_hosts"      # relative to this file
//! webhook_ca = "ca/alerts.pem"         # `watch --webhook https://…`: trust only these CAs
//! history = "postgres://ops@db.example/switchyard"  # or a file, relative to this file
//! ```
//!
//! *Decision*: the file is looked for in the current folder and then its parents (as git
//! and cargo look for theirs), so a command run anywhere inside a project finds it.
//! Precedence: the command line, then the environment (`SWITCHYARD_INVENTORY`), then this
//! file, then built-in defaults. Unknown keys are errors with file, line and column.
//!
//! *Decision*, like git's `safe.directory`: the file names inventory scripts switchyard runs
//! and the known_hosts that decides which hosts are genuine, so a file found by walking up
//! is used only if someone the invoker already trusts wrote it: the file and its folder
//! belong to the invoking user or root and neither is writable by group or others (the
//! folder too, because the file's relative paths point into it: a `switchyard.toml` of
//! root's in `/tmp` would name files anyone can plant). The walk stops at the user's home
//! and at a repository root (a folder holding `.git`), so a job folder under a shared
//! `/tmp` never reaches a file another user left above it. The nearest file found is the
//! one judged: an untrusted one is ignored with a warning saying why (the walk does not go
//! on past it), and the file used is named in one line on stderr.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::inputs::source::{self, SourceError};

/// The file name looked for.
pub const FILE: &str = "switchyard.toml";

#[derive(Debug, Default, Clone)]
pub struct Config {
    /// Where it was read from (`None`: no file, built-in defaults).
    pub path: Option<PathBuf>,
    pub inventory: Vec<PathBuf>,
    pub forks: Option<u32>,
    pub known_hosts: Option<PathBuf>,
    /// The CA(s) an `https://` webhook must chain to (`--webhook-ca`), else the system's.
    pub webhook_ca: Option<PathBuf>,
    /// The run history (`--history`): a file (made absolute) or a `postgres://` URL.
    pub history: Option<String>,
    /// A file found but not used, and why (printed as warnings).
    pub ignored: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    inventory: Option<OneOrMany>,
    forks: Option<u32>,
    known_hosts: Option<PathBuf>,
    webhook_ca: Option<PathBuf>,
    history: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl Config {
    /// The nearest `switchyard.toml` from `start` upwards, up to `home` or a repository
    /// root, if its owner and modes make it trustworthy (see the module's doc); else the
    /// defaults, with the file ignored named in [`Config::ignored`].
    pub fn discover(start: &Path, home: Option<&Path>) -> Result<Config, SourceError> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let home = home.and_then(|h| h.canonicalize().ok());
        for dir in start.ancestors() {
            let p = dir.join(FILE);
            if std::fs::symlink_metadata(&p).is_ok() {
                return Config::load_found(&p, dir, me);
            }
            if dir.join(".git").exists() || home.as_deref() == Some(dir) {
                break;
            }
        }
        Ok(Config::default())
    }

    /// Read a file found by [`Config::discover`] in `dir`, judged on the opened file.
    fn load_found(path: &Path, dir: &Path, me: u32) -> Result<Config, SourceError> {
        let read_err = |source| SourceError::Read {
            path: path.to_path_buf(),
            source,
        };
        let ignored = |why: String| {
            Ok(Config {
                ignored: vec![format!(
                    "ignoring {}: {why}; give `-i` (and `--known-hosts`) on the command line, or fix its owner and mode",
                    path.display()
                )],
                ..Config::default()
            })
        };
        let (file, meta) = match source::open_regular(path) {
            Ok(x) => x,
            // Not readable (a dangling link, a file of another user's that is not ours to
            // read): ignored like any untrusted file, so nobody can stop switchyard by
            // planting one.
            Err(e) => return ignored(e.to_string()),
        };
        if let Some(why) = untrusted("it", &meta, me) {
            return ignored(why);
        }
        match std::fs::metadata(dir) {
            Ok(m) => {
                if let Some(why) = untrusted(&format!("its folder {}", dir.display()), &m, me) {
                    return ignored(why);
                }
            }
            Err(e) => return Err(read_err(e)),
        }
        let text = source::read_at_most(file, source::MAX_INPUT_BYTES)
            .map_err(|e| SourceError::Invalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
            .and_then(|b| {
                String::from_utf8(b).map_err(|e| SourceError::NotUtf8 {
                    path: path.to_path_buf(),
                    offset: e.utf8_error().valid_up_to(),
                })
            })?;
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, SourceError> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            SourceError::Yaml {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        if raw.forks == Some(0) {
            return Err(SourceError::Invalid {
                path: path.to_path_buf(),
                message: "`forks` must be at least 1".into(),
            });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        Ok(Config {
            path: Some(path.to_path_buf()),
            inventory: match raw.inventory {
                None => Vec::new(),
                Some(OneOrMany::One(p)) => vec![rel(p)],
                Some(OneOrMany::Many(v)) => v.into_iter().map(rel).collect(),
            },
            forks: raw.forks,
            known_hosts: raw.known_hosts.map(rel),
            webhook_ca: raw.webhook_ca.map(rel),
            // A URL as it is (checked where it is used); a file relative to this one.
            history: raw.history.map(|h| {
                if h.contains("://") {
                    h
                } else {
                    rel(PathBuf::from(h)).display().to_string()
                }
            }),
            ignored: Vec::new(),
        })
    }
}

/// Why a file or folder (`what`) must not be trusted by user `me`, if it must not: it
/// belongs to someone else than `me` and root, or group or others may write to it.
fn untrusted(what: &str, m: &std::fs::Metadata, me: u32) -> Option<String> {
    if m.uid() != me && m.uid() != 0 {
        return Some(format!(
            "{what} belongs to uid {} (another user than you and root)",
            m.uid()
        ));
    }
    let mode = m.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "{what} is writable by {} (mode {mode:04o})",
            if mode & 0o002 != 0 {
                "every user"
            } else {
                "its group"
            }
        ));
    }
    None
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_defaults_relative_to_the_file_and_locates_mistakes() {
        let c = Config::parse(
            Path::new("/srv/pbx/switchyard.toml"),
            "inventory = \"inventory/pbx.yml\"\nforks = 20\nknown_hosts = \"kh\"\nwebhook_ca = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(c.webhook_ca, Some(PathBuf::from("/srv/pbx/ca.pem")));
        assert_eq!(c.inventory, [PathBuf::from("/srv/pbx/inventory/pbx.yml")]);
        assert_eq!(c.forks, Some(20));
        assert_eq!(c.known_hosts, Some(PathBuf::from("/srv/pbx/kh")));
        let e = Config::parse(Path::new("s.toml"), "forks = 2\nfork = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:2:1: unknown field `fork`"), "{e}");
        let e = Config::parse(Path::new("s.toml"), "forks = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
    }
}
