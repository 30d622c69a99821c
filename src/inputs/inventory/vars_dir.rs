//! Vars folders: `group_vars/` and `host_vars/` next to an inventory, plain YAML or
//! vault-encrypted.

use std::path::{Path, PathBuf};

use super::{all_values, resolve_vars, InventoryError, Vars};
use crate::inputs::source::{self, SourceError};
use crate::inputs::vault::Vault;
use crate::secret::Secret;

/// The names a group's or host's vars file may have in `group_vars/` or `host_vars/`, in
/// the order they are read (a bare name may be a folder of files).
pub(crate) fn vars_file_names(name: &str) -> [String; 6] {
    [
        format!("{name}.yml"),
        format!("{name}.yaml"),
        name.to_string(),
        format!("{name}.age"),
        format!("{name}.yml.age"),
        format!("{name}.yaml.age"),
    ]
}

/// `group_vars/NAME.yml`, `NAME.yaml`, `NAME` or every YAML file of the folder `NAME/`,
/// then the vault-encrypted `NAME.age` (also spelt `NAME.yml.age`, as older versions of
/// `vault encrypt` named it; all of whose values are secret).
pub(super) fn load_vars_dir(
    dir: &Path,
    name: &str,
    vault: &Vault,
    secrets: &mut Vec<Secret>,
) -> Result<Option<Vars>, InventoryError> {
    let mut found: Option<Vars> = None;
    let mut merge = |p: &Path,
                     text: &str,
                     all_secret: bool,
                     secrets: &mut Vec<Secret>|
     -> Result<(), InventoryError> {
        let mut v: Vars = match source::parse_yaml::<Option<Vars>>(p, text) {
            Ok(v) => v.unwrap_or_default(),
            // Errors about a decrypted file never quote it: the location only.
            Err(SourceError::Yaml {
                path, line, column, ..
            }) if all_secret => {
                return Err(SourceError::Yaml {
                    path,
                    line,
                    column,
                    message: "the decrypted content is not a YAML map of variables (its text is secret, so not shown)".into(),
                }
                .into())
            }
            Err(e) if all_secret => {
                return Err(SourceError::Invalid {
                    path: p.to_path_buf(),
                    message: format!(
                        "the decrypted content is not a YAML map of variables ({})",
                        match e {
                            SourceError::TooLarge { .. } => "too large",
                            _ => "unreadable",
                        }
                    ),
                }
                .into())
            }
            Err(e) => return Err(e.into()),
        };
        resolve_vars(&mut v, &p.display().to_string(), vault, secrets)?;
        if all_secret {
            v.values().for_each(|x| all_values(x, secrets));
        }
        found.get_or_insert_with(Vars::new).extend(v);
        Ok(())
    };
    for candidate in vars_file_names(name) {
        let p = dir.join(&candidate);
        if p.is_file() && candidate.ends_with(".age") {
            let bytes = std::fs::read(&p).map_err(|e| SourceError::Read {
                path: p.clone(),
                source: e,
            })?;
            let plain = vault.decrypt(&bytes, Some(&p.display().to_string()))?;
            let text = String::from_utf8(plain).map_err(|e| SourceError::NotUtf8 {
                path: p.clone(),
                offset: e.utf8_error().valid_up_to(),
            })?;
            merge(&p, &text, true, secrets)?;
        } else if p.is_file() {
            merge(&p, &source::read_text(&p)?, false, secrets)?;
        } else if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| SourceError::Read {
                    path: p.clone(),
                    source: e,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| matches!(f.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
                .collect();
            files.sort();
            for f in files {
                merge(&f, &source::read_text(&f)?, false, secrets)?;
            }
        }
    }
    Ok(found)
}
