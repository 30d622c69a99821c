//! Loading YAML input files with errors that point at the file, line and column.
//!
//! Every user-facing YAML file (inventory, group/host vars, playbooks) goes through
//! [`load_yaml`], so a typo anywhere is reported the same way: `file:line:col: message`.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Largest input file we read. Inventories and playbooks are hand-written; anything
/// bigger is a mistake (or hostile) and would only make the YAML parser slow.
pub const MAX_INPUT_BYTES: u64 = 8 * 1024 * 1024;

/// A problem with an input file, located as precisely as the parser allows.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: file is larger than {MAX_INPUT_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: not valid UTF-8 (byte offset {offset})", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Yaml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// Read a text file with the size and encoding checks every input gets.
pub fn read_text(path: &Path) -> Result<String, SourceError> {
    let read_err = |source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_INPUT_BYTES {
        return Err(SourceError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    String::from_utf8(bytes).map_err(|e| SourceError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Parse YAML text into `T`, mapping parser and type errors to `file:line:col`.
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, SourceError> {
    yaml_serde::from_str(text).map_err(|e| yaml_error(path, &e))
}

/// Read and parse a YAML file.
pub fn load_yaml<T: DeserializeOwned>(path: &Path) -> Result<T, SourceError> {
    let text = read_text(path)?;
    parse_yaml(path, &text)
}

fn yaml_error(path: &Path, e: &yaml_serde::Error) -> SourceError {
    // yaml_serde appends " at line L column C" to its message; we print the location in
    // front instead, the way compilers do, so strip the suffix.
    let mut message = e.to_string();
    if let Some(idx) = message.rfind(" at line ") {
        message.truncate(idx);
    }
    match e.location() {
        Some(loc) => SourceError::Yaml {
            path: path.to_path_buf(),
            line: loc.line(),
            column: loc.column(),
            message,
        },
        None => SourceError::Invalid {
            path: path.to_path_buf(),
            message,
        },
    }
}

/// Every `.xml` file under `dir`, keyed by its `/`-separated path relative to `dir`.
pub fn read_conf_dir(
    dir: &Path,
) -> Result<std::collections::BTreeMap<String, String>, SourceError> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let read_err = |source| SourceError::Read {
            path: d.clone(),
            source,
        };
        for e in std::fs::read_dir(&d).map_err(read_err)? {
            let p = e.map_err(read_err)?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "xml") {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, read_text(&p)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let err = parse_yaml::<T>(Path::new("x.yml"), "a: 1\nb: [\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("x.yml:"), "{text}");
        assert!(
            matches!(err, SourceError::Yaml { line: 2 | 3, .. }),
            "{text}"
        );
    }

    #[test]
    fn unknown_field_is_located() {
        let err = parse_yaml::<T>(Path::new("x.yml"), "a: 1\nbogus: 2\n").unwrap_err();
        assert!(
            matches!(
                err,
                SourceError::Yaml {
                    line: 2,
                    column: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("unknown field `bogus`"));
    }
}
