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
    // Bounded while reading, not by the size the file claims: `/dev/zero` claims 0 bytes.
    // A pipe is still read (`-i <(make-inventory)` is a process substitution).
    let file = std::fs::File::open(path).map_err(read_err)?;
    let bytes = read_at_most(file, MAX_INPUT_BYTES).map_err(|e| match e {
        FileRefusal::Io(e) => read_err(e),
        _ => SourceError::TooLarge {
            path: path.to_path_buf(),
        },
    })?;
    String::from_utf8(bytes).map_err(|e| SourceError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Why a file was not read by [`read_regular`] or [`read_at_most`]. The messages say what
/// the file is, never what it holds (these files may hold secrets).
#[derive(Debug, thiserror::Error)]
pub enum FileRefusal {
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is larger than {0} bytes")]
    TooLarge(u64),
}

/// What kind of file `m` describes, for [`FileRefusal::NotRegular`].
fn file_kind(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Open `path` only if it is a regular file (a link to one is followed), and give its
/// metadata as seen on the opened file. Checked before opening, so a device is never opened
/// (opening some has effects), and again on the opened file, which is what is read: the
/// open itself is non-blocking, so a FIFO swapped in between cannot hang the run.
pub fn open_regular(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), FileRefusal> {
    use std::os::unix::fs::OpenOptionsExt;
    let before = std::fs::metadata(path)?;
    if !before.is_file() {
        return Err(FileRefusal::NotRegular(file_kind(&before)));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(FileRefusal::NotRegular(file_kind(&meta)));
    }
    Ok((file, meta))
}

/// Read everything from `r`, refusing more than `limit` bytes as soon as they arrive (never
/// trusting a size the file claims).
pub fn read_at_most(r: impl std::io::Read, limit: u64) -> Result<Vec<u8>, FileRefusal> {
    use std::io::Read as _;
    let mut buf = Vec::new();
    r.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(FileRefusal::TooLarge(limit));
    }
    Ok(buf)
}

/// A regular file's bytes, at most `limit` of them ([`open_regular`], [`read_at_most`]).
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, FileRefusal> {
    let (file, meta) = open_regular(path)?;
    if meta.len() > limit {
        return Err(FileRefusal::TooLarge(limit));
    }
    read_at_most(file, limit)
}

/// Parse YAML text into `T`, mapping parser and type errors to `file:line:col`.
/// Parse YAML as Ansible users write it: YAML merge keys (`<<: *defaults`) are applied, and
/// a key given twice in one mapping is an error naming both lines (Ansible only warns and
/// keeps the last; a silent last-wins is how a conf root goes wrong).
///
/// Without merge keys the text is deserialized directly, so a type error keeps its
/// `file:line:col`; with them it goes through the merged value (located by the file only).
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, SourceError> {
    let mut value: yaml_serde::Value = yaml_serde::from_str(text).map_err(|e| {
        let located = yaml_error(path, &e);
        match (&located, duplicate_key(&e)) {
            (SourceError::Yaml { line, column, .. }, Some(key)) => {
                duplicate_error(path, text, &key, *line, *column).unwrap_or(located)
            }
            _ => located,
        }
    })?;
    if !text.contains("<<") {
        return yaml_serde::from_str(text).map_err(|e| yaml_error(path, &e));
    }
    value.apply_merge().map_err(|e| yaml_error(path, &e))?;
    T::deserialize(value).map_err(|e| SourceError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The key of a "duplicate entry with key ..." error.
fn duplicate_key(e: &yaml_serde::Error) -> Option<String> {
    let m = e.to_string();
    let (_, rest) = m.split_once("duplicate entry with key ")?;
    let rest = rest.split(" at line ").next().unwrap_or(rest);
    Some(rest.trim_matches('"').to_string())
}

/// Both places of a key given twice in the block mapping that starts at `line`:`column`.
fn duplicate_error(
    path: &Path,
    text: &str,
    key: &str,
    line: usize,
    column: usize,
) -> Option<SourceError> {
    let indent = column.saturating_sub(1);
    let mut found = Vec::new();
    for (n, l) in text.lines().enumerate().skip(line.saturating_sub(1)) {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let ind = l.len() - trimmed.len();
        if ind < indent && n + 1 > line {
            break;
        }
        let body = trimmed.strip_prefix("- ").filter(|_| ind + 2 == indent);
        let k = body.unwrap_or(trimmed);
        if ind == indent || body.is_some() {
            let name = k
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\'']);
            if name == key && k.contains(':') {
                found.push(n + 1);
            }
        }
    }
    let [first, second, ..] = found.as_slice() else {
        return None;
    };
    Some(SourceError::Yaml {
        path: path.to_path_buf(),
        line: *second,
        column,
        message: format!("duplicate key `{key}` (first given at line {first}): each key once"),
    })
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
            let e = e.map_err(read_err)?;
            let p = e.path();
            // The entry's own type, never a link's target: a tree its owner wrote may hold
            // `a -> .` loops, links to /dev/zero and FIFOs (read_regular refuses the last two
            // without blocking).
            let kind = e.file_type().map_err(read_err)?;
            if kind.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "xml") {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                if kind.is_symlink() {
                    return Err(SourceError::Read {
                        path: p,
                        source: std::io::Error::other("a symbolic link: not followed"),
                    });
                }
                let bytes = read_regular(&p, MAX_INPUT_BYTES).map_err(|e| SourceError::Read {
                    path: p.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                let text = String::from_utf8(bytes).map_err(|e| SourceError::Read {
                    path: p.clone(),
                    source: std::io::Error::other(format!(
                        "not valid UTF-8 (byte offset {})",
                        e.utf8_error().valid_up_to()
                    )),
                })?;
                out.insert(rel, text);
            }
        }
    }
    Ok(out)
}

/// Parts of a conf tree read as FreeSWITCH reads them, for `lint --conf`: FreeSWITCH passes
/// bytes through, so a file that is not UTF-8 is read with those bytes replaced (U+FFFD),
/// and a file too large or unreadable is left out; each is a note `(file, line, why)`
/// instead of stopping the whole tree at the first.
pub type ConfNotes = Vec<(String, usize, String)>;

pub fn read_conf_tree(
    dir: &Path,
) -> Result<(std::collections::BTreeMap<String, String>, ConfNotes), SourceError> {
    let mut out = std::collections::BTreeMap::new();
    let mut notes = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let read_err = |source| SourceError::Read {
            path: d.clone(),
            source,
        };
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if d == dir => return Err(read_err(e)),
            Err(e) => {
                let rel = d
                    .strip_prefix(dir)
                    .unwrap_or(&d)
                    .to_string_lossy()
                    .into_owned();
                notes.push((
                    rel,
                    0,
                    format!("folder not read ({e}): nothing in it was checked"),
                ));
                continue;
            }
        };
        for e in entries {
            let e = e.map_err(read_err)?;
            let p = e.path();
            let rel = p
                .strip_prefix(dir)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            // The entry's own type: a linked folder is not walked (`a -> .` loops forever),
            // a linked or special file not read (see read_conf_dir).
            let kind = e.file_type().map_err(read_err)?;
            if kind.is_dir() {
                stack.push(p);
                continue;
            }
            let xml = p.extension().is_some_and(|x| x == "xml");
            if kind.is_symlink() && !xml {
                notes.push((rel, 1, "a symbolic link: not followed".into()));
                continue;
            }
            if !xml {
                continue;
            }
            let bytes = if kind.is_symlink() {
                Err("a symbolic link: not followed".to_string())
            } else {
                read_regular(&p, MAX_INPUT_BYTES).map_err(|e| format!("not read ({e})"))
            };
            match bytes {
                Ok(b) => match String::from_utf8(b) {
                    Ok(t) => {
                        out.insert(rel, t);
                    }
                    Err(e) => {
                        let at = e.utf8_error().valid_up_to();
                        let b = e.into_bytes();
                        let line = b[..at].iter().filter(|&&c| c == b'\n').count() + 1;
                        notes.push((rel.clone(), line, format!("line {line} has bytes that are not UTF-8 (FreeSWITCH passes them through); checked with them replaced by U+FFFD")));
                        out.insert(rel, String::from_utf8_lossy(&b).into_owned());
                    }
                },
                Err(why) => notes.push((rel, 0, format!("{why}: nothing in it was checked"))),
            }
        }
    }
    Ok((out, notes))
}

/// One `-e/--extra-vars` argument as Ansible reads it: `@FILE` (YAML or JSON), an inline
/// YAML/JSON mapping (`{"a": 1}`), or `key=value` pairs separated by spaces (values are
/// strings). `n` is the argument's position among the `-e`s, for the error.
pub fn extra_vars(
    n: usize,
    arg: &str,
) -> Result<std::collections::BTreeMap<String, serde_json::Value>, SourceError> {
    type Vars = std::collections::BTreeMap<String, serde_json::Value>;
    let label = PathBuf::from(format!("-e #{n}"));
    if let Some(file) = arg.strip_prefix('@') {
        return load_yaml::<Vars>(Path::new(file));
    }
    let trimmed = arg.trim_start();
    if trimmed.starts_with('{') {
        return parse_yaml::<Vars>(&label, arg);
    }
    let mut vars = Vars::new();
    for pair in arg.split_whitespace() {
        let (k, v) = pair.split_once('=').ok_or_else(|| SourceError::Invalid {
            path: label.clone(),
            message: format!("`{pair}` is not `key=value`, `@file` or a {{...}} mapping"),
        })?;
        let valid = !k.is_empty()
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(SourceError::Invalid {
                path: label.clone(),
                message: format!("`{k}` is not a variable name"),
            });
        }
        vars.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    Ok(vars)
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

    #[test]
    fn merge_keys_are_applied_and_duplicate_keys_name_both_lines() {
        type M = indexmap::IndexMap<String, serde_json::Value>;
        let m: M = parse_yaml(
            Path::new("i.yml"),
            "defaults: &d\n  port: 22\n  user: ops\npbx:\n  <<: *d\n  user: root\n",
        )
        .unwrap();
        assert_eq!(m["pbx"], serde_json::json!({"port": 22, "user": "root"}));
        let e = parse_yaml::<M>(
            Path::new("i.yml"),
            "all:\n  hosts:\n    pbx1:\n      ssh_port: 22\n      user: a\n      ssh_port: 2222\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "i.yml:6:7: duplicate key `ssh_port` (first given at line 4): each key once"
        );
        // A key repeated in different mappings is fine.
        parse_yaml::<M>(Path::new("i.yml"), "a:\n  x: 1\nb:\n  x: 2\n").unwrap();
    }
}
