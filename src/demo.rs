//! The built-in demo fleet and reading conf directories.

use std::collections::BTreeMap;
use std::path::Path;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every `.xml` file under `dir`, keyed by its `/`-separated path relative to `dir`.
pub fn read_conf_dir(dir: &Path) -> Result<BTreeMap<String, String>, BoxError> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "xml") {
                let rel = p.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
                out.insert(rel, crate::source::read_text(&p)?);
            }
        }
    }
    Ok(out)
}

pub async fn run(_dir: &Path, _reset: bool, _check: bool) -> Result<i32, BoxError> {
    Err("demo not yet built".into())
}
