//! `switchyard.toml`: a project's defaults, so that the commands people type every day stay
//! short (`switchyard apply playbooks/wavix.yml`).
//!
//! ```toml
//! inventory = ["inventory/pbx.yml"]   # or one path; relative to this file
//! forks = 50
//! known_hosts = "ssh/known_hosts"      # relative to this file
//! ```
//!
//! *Decision*: the file is looked for in the current folder and then its parents (as git
//! and cargo look for theirs), so a command run anywhere inside a project finds it.
//! Precedence: the command line, then the environment (`SWITCHYARD_INVENTORY`), then this
//! file, then built-in defaults. Unknown keys are errors with file, line and column.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::source::{self, SourceError};

/// The file name looked for.
pub const FILE: &str = "switchyard.toml";

#[derive(Debug, Default, Clone)]
pub struct Config {
    /// Where it was read from (`None`: no file, built-in defaults).
    pub path: Option<PathBuf>,
    pub inventory: Vec<PathBuf>,
    pub forks: Option<u32>,
    pub known_hosts: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    inventory: Option<OneOrMany>,
    forks: Option<u32>,
    known_hosts: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl Config {
    /// The nearest `switchyard.toml` from `start` upwards, or the defaults.
    pub fn discover(start: &Path) -> Result<Config, SourceError> {
        for dir in start.ancestors() {
            let p = dir.join(FILE);
            if p.is_file() {
                return Config::load(&p);
            }
        }
        Ok(Config::default())
    }

    pub fn load(path: &Path) -> Result<Config, SourceError> {
        let text = source::read_text(path)?;
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
        })
    }
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
            "inventory = \"inventory/pbx.yml\"\nforks = 20\nknown_hosts = \"kh\"\n",
        )
        .unwrap();
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
