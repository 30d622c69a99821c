//! `switchyard import --as-is`: a PBX's conf tree read in one round trip, and the project
//! (templates with the secrets taken out, one template task per file) that writes every
//! adopted file back byte for byte, so `apply --check` right after the import changes nothing.
//!
//! Which files: every `*.xml` under the conf root (what FreeSWITCH's `X-PRE-PROCESS
//! include`s name; `vars.xml`, `autoload_configs/`, `sip_profiles/`, `dialplan/`,
//! `directory/`, ...), read by the same hardened gather as `apply` (src/host/remote/gather.sh:
//! no link followed, a FIFO or device never opened for reading, each file bounded by
//! `freeswitch_max_file_bytes`), at most [`MAX_FILES`] files and [`MAX_TREE_BYTES`] bytes of
//! content per host. Whatever cannot be adopted is listed with its reason, never dropped.

use std::collections::BTreeMap;

use crate::engine::facts::{self, FileFact};

pub mod layers;
pub mod map;
mod template;
use crate::host::script;
use crate::host::transport::{Transport, TransportError};
pub use template::{is_secret_param, templatize};
use template::{slug, value_spans, var_name, xml_unescape};

/// The most files one host's import reads: a stock tree holds about 300 XML files.
pub const MAX_FILES: usize = 4096;
/// The most bytes of file content one host's import reads (a stock tree is about 2 MiB).
pub const MAX_TREE_BYTES: u64 = 64 << 20;
/// Bytes of the answer besides the contents, per path (its name, class and stat lines).
const HEADER_BYTES_PER_PATH: u64 = 8 << 10;

/// One path under the conf root and what the gather found there.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Relative to the conf root, as the host named it (lossily decoded if not UTF-8).
    pub rel: String,
    pub name_is_utf8: bool,
    pub fact: FileFact,
}

/// A host's conf tree as read.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The read held the host lock (the host has one: switchyard ran there before).
    pub locked: bool,
    pub entries: Vec<Entry>,
    /// Files whose name holds a line break: counted, never listed or read.
    pub line_break_names: usize,
}

/// Read every `*.xml` file and link under `root` (src/host/remote/import.sh), under the
/// host lock when the host has one; nothing is written on the host.
pub async fn read_tree(t: &mut Transport, root: &str, limit: u64) -> Result<Tree, String> {
    let bound =
        MAX_TREE_BYTES.saturating_add((MAX_FILES as u64 + 1).saturating_mul(HEADER_BYTES_PER_PATH));
    let out = t
        .exec_bounded(
            &script::import(root, limit, MAX_FILES),
            &[],
            usize::try_from(bound).unwrap_or(usize::MAX),
        )
        .await
        .map_err(|e| match e {
            TransportError::TooLarge { .. } => format!(
                "the conf tree is larger than one import reads ({MAX_TREE_BYTES} bytes of files, {MAX_FILES} files); stopped reading it"
            ),
            e => e.to_string(),
        })?;
    match out.exit {
        Some(0) => parse_tree(&out.stdout, limit),
        Some(75) => Err(format!(
            "another switchyard run is changing this host (lock held by {}); import again when it is done",
            out.stdout_text().trim().trim_start_matches("LOCKED ")
        )),
        exit => Err(format!(
            "reading the conf tree failed ({}): {}",
            exit.map_or("no exit status".into(), |c| format!("exit {c}")),
            out.stderr_text().trim()
        )),
    }
}

/// Split one line off `out`.
fn split_line(out: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = out.iter().position(|b| *b == b'\n')?;
    Some((&out[..i], &out[i + 1..]))
}

/// Parse [`read_tree`]'s answer: a header, the listed paths, the gather's answer for them.
pub fn parse_tree(out: &[u8], limit: u64) -> Result<Tree, String> {
    let garbled = |what: &str| format!("unexpected answer while reading the conf tree: {what}");
    let (head, mut rest) = split_line(out).ok_or_else(|| garbled("no header"))?;
    let head = std::str::from_utf8(head).map_err(|_| garbled("header not UTF-8"))?;
    let words: Vec<&str> = head.split(' ').collect();
    let [tag, locked, n, k] = words[..] else {
        return Err(garbled("bad header"));
    };
    let n: usize = n.parse().map_err(|_| garbled("bad count"))?;
    let k: usize = k.parse().map_err(|_| garbled("bad count"))?;
    if tag != "switchyard-import" || !matches!(locked, "locked" | "unlocked") || n > MAX_FILES {
        return Err(garbled("bad header"));
    }
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        let (l, r) = split_line(rest).ok_or_else(|| garbled("path list truncated"))?;
        rest = r;
        let l = l.strip_prefix(b"./").ok_or_else(|| garbled("bad path"))?;
        names.push((
            String::from_utf8_lossy(l).into_owned(),
            std::str::from_utf8(l).is_ok(),
        ));
    }
    let facts = facts::parse(rest, n, limit, &[]).map_err(|e| garbled(&e))?;
    Ok(Tree {
        locked: locked == "locked",
        entries: names
            .into_iter()
            .zip(facts)
            .map(|((rel, name_is_utf8), fact)| Entry {
                rel,
                name_is_utf8,
                fact,
            })
            .collect(),
        line_break_names: k,
    })
}

/// A file adopted from one host: its template and the secrets taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    pub rel: String,
    pub template: String,
    /// Variable → its value on this host (the text the template prints back).
    pub secrets: Vec<(String, String)>,
    pub owner: String,
    pub group: String,
    pub mode: u32,
}

/// A path left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub rel: String,
    pub reason: String,
}

/// Sort a host's tree into what is adopted and what is left alone (with its reason).
pub fn adopt(tree: &Tree) -> (Vec<Adopted>, Vec<Skipped>) {
    let mut adopted = Vec::new();
    let mut skipped = Vec::new();
    let mut skip = |rel: &str, reason: String| {
        skipped.push(Skipped {
            rel: rel.to_string(),
            reason,
        })
    };
    for e in &tree.entries {
        let rel = e.rel.as_str();
        if !e.name_is_utf8 {
            skip(rel, "its name is not UTF-8".into());
            continue;
        }
        if rel.contains(['{', '}']) || rel.chars().any(char::is_control) {
            skip(rel, "its name holds `{`, `}` or a control character, which a task's `dest` (a template) cannot carry".into());
            continue;
        }
        let (owner, group, mode, content) = match &e.fact {
            FileFact::Missing => {
                skip(rel, "disappeared while the tree was read".into());
                continue;
            }
            FileFact::Unreadable(why) => {
                skip(rel, format!("{why}; not read"));
                continue;
            }
            FileFact::Present {
                owner,
                group,
                mode,
                content,
            } => (owner, group, *mode, content),
        };
        let Ok(text) = std::str::from_utf8(content) else {
            skip(rel, "is not UTF-8 text (a template is text)".into());
            continue;
        };
        if let Err(m) = crate::xml::well_formed(text) {
            skip(
                rel,
                format!(
                    "is not well-formed XML (line {}, column {}: {}); switchyard writes only well-formed XML",
                    m.line, m.column, m.message
                ),
            );
            continue;
        }
        let (template, secrets) = templatize(rel, text);
        if !secrets.is_empty() && mode & 0o007 != 0 {
            skip(rel, format!("holds a secret and every user on the host may read it (mode {mode:04o}); switchyard refuses to manage such a file: `chmod o-rwx` it on the host and import again"));
            continue;
        }
        adopted.push(Adopted {
            rel: rel.to_string(),
            template,
            secrets,
            owner: owner.clone(),
            group: group.clone(),
            mode,
        });
    }
    if tree.line_break_names > 0 {
        skip(
            "(names not shown)",
            format!(
                "{} file(s) whose name holds a line break; never listed or read",
                tree.line_break_names
            ),
        );
    }
    (adopted, skipped)
}

/// Where a shared template or one host variant's template lives under `templates/`.
pub fn template_path(rel: &str, variant_of: Option<&str>) -> String {
    match variant_of {
        None => rel.to_string(),
        Some(host) => format!("variants/{host}/{rel}"),
    }
}

/// Host → variables (name, value).
pub type HostValues = BTreeMap<String, Vec<(String, String)>>;

/// One distinct copy of a file and the hosts that have it.
type Variant<'a> = (&'a Adopted, Vec<String>);

/// One template task of the generated playbook: a file and the hosts it is written for
/// (`None`: every host, the same template).
#[derive(Debug, Clone)]
pub struct Task {
    pub rel: String,
    pub src: String,
    pub owner: String,
    pub group: String,
    pub mode: u32,
    pub hosts: Option<Vec<String>>,
    pub template: String,
    /// Host → the plain (not secret) values its copy of the file differs in, as variables
    /// of the host (`vars_external_rtp_ip: 203.0.113.7`).
    pub values: HostValues,
}

/// One template for the variants of a file that differ only in values (attribute values,
/// pre-process values): those become per-host variables. `None` when the variants differ in
/// anything else, or in a value that holds template text (a secret's placeholder on one
/// host, a literal on another), or in owner, group or mode.
fn merge(rel: &str, variants: &[Variant<'_>]) -> Option<(String, HostValues)> {
    let first = variants[0].0;
    if variants
        .iter()
        .any(|(a, _)| (&a.owner, &a.group, a.mode) != (&first.owner, &first.group, first.mode))
    {
        return None;
    }
    // Each variant as (pieces between values, values with their names).
    let split = |t: &str| {
        let spans = value_spans(t);
        let mut pieces = Vec::with_capacity(spans.len() + 1);
        let mut at = 0;
        for (s, e, _) in &spans {
            pieces.push(t[at..*s].to_string());
            at = *e;
        }
        pieces.push(t[at..].to_string());
        let values: Vec<(String, String)> = spans
            .into_iter()
            .map(|(s, e, n)| (n, t[s..e].to_string()))
            .collect();
        (pieces, values)
    };
    let split: Vec<_> = variants.iter().map(|(a, _)| split(&a.template)).collect();
    let (pieces, values0) = &split[0];
    let same_shape = split.iter().all(|(p, v)| {
        p == pieces && v.len() == values0.len() && v.iter().zip(values0).all(|(a, b)| a.0 == b.0)
    });
    if !same_shape {
        return None;
    }
    let stem = slug(rel.strip_suffix(".xml").unwrap_or(rel));
    let mut taken: Vec<String> = variants
        .iter()
        .flat_map(|(a, _)| a.secrets.iter().map(|(v, _)| v.clone()))
        .collect();
    let mut template = String::new();
    let mut per_host = HostValues::new();
    for (k, (name, v0)) in values0.iter().enumerate() {
        template.push_str(&pieces[k]);
        let at_k: Vec<&str> = split.iter().map(|(_, v)| v[k].1.as_str()).collect();
        if at_k.iter().all(|v| v == v0) {
            template.push_str(v0);
            continue;
        }
        if at_k.iter().any(|v| v.contains(['{', '}'])) {
            return None;
        }
        let base = var_name(&stem, name);
        let mut var = base.clone();
        let mut n = 1;
        while taken.contains(&var) {
            n += 1;
            var = format!("{base}_{n}");
        }
        taken.push(var.clone());
        let plain = at_k
            .iter()
            .all(|v| crate::xml::escape(&xml_unescape(v)) == *v);
        template.push_str(&if plain {
            format!("{{{{ {var} }}}}")
        } else {
            format!("{{{{ {var} | safe }}}}")
        });
        for ((_, hosts), value) in variants.iter().zip(&at_k) {
            let value = if plain {
                xml_unescape(value)
            } else {
                value.to_string()
            };
            for h in hosts {
                per_host
                    .entry(h.clone())
                    .or_default()
                    .push((var.clone(), value.clone()));
            }
        }
    }
    template.push_str(&pieces[values0.len()]);
    Some((template, per_host))
}

/// Group every host's adopted files into tasks: a file whose template, owner, group and mode
/// are the same on every host is one shared task; one whose copies differ only in values
/// (an external IP, a caller ID) is one template with a per-host variable for each value
/// that differs; otherwise each distinct variant is a task for the hosts that have it (named
/// after the first of them). Secrets are variables, so files that differ only in their
/// passwords are shared.
pub fn tasks(hosts: &[(String, Vec<Adopted>)]) -> Vec<Task> {
    let mut by_rel: BTreeMap<&str, Vec<(&str, &Adopted)>> = BTreeMap::new();
    for (host, files) in hosts {
        for f in files {
            by_rel.entry(&f.rel).or_default().push((host, f));
        }
    }
    let mut out = Vec::new();
    for (rel, have) in by_rel {
        let mut variants: Vec<Variant<'_>> = Vec::new();
        for (host, f) in have {
            let same = |a: &Adopted| {
                (&a.template, &a.owner, &a.group, a.mode)
                    == (&f.template, &f.owner, &f.group, f.mode)
            };
            match variants.iter_mut().find(|(a, _)| same(a)) {
                Some((_, hs)) => hs.push(host.to_string()),
                None => variants.push((f, vec![host.to_string()])),
            }
        }
        // Variants of one shape (same text but for values, same owner, group and mode) are
        // one template; a file of another shape on some hosts is its own task.
        let shape = |a: &Adopted| {
            let spans = value_spans(&a.template);
            let mut at = 0;
            let mut key = vec![a.owner.clone(), a.group.clone(), format!("{:o}", a.mode)];
            for (s, e, n) in spans {
                key.push(a.template[at..s].to_string());
                key.push(n);
                at = e;
            }
            key.push(a.template[at..].to_string());
            key
        };
        let mut groups: Vec<(Vec<String>, Vec<Variant<'_>>)> = Vec::new();
        for v in variants {
            let k = shape(v.0);
            match groups.iter_mut().find(|(g, _)| *g == k) {
                Some((_, members)) => members.push(v),
                None => groups.push((k, vec![v])),
            }
        }
        let single = groups.len() == 1;
        for (_, group) in groups {
            let merged = if group.len() > 1 {
                merge(rel, &group)
            } else {
                None
            };
            let parts: Vec<(&Adopted, Vec<String>, String, BTreeMap<_, _>)> = match merged {
                Some((template, values)) => {
                    let mut hs: Vec<String> = group.iter().flat_map(|(_, hs)| hs.clone()).collect();
                    hs.sort_by_key(|h| hosts.iter().position(|(n, _)| n == h));
                    vec![(group[0].0, hs, template, values)]
                }
                None => group
                    .into_iter()
                    .map(|(f, hs)| (f, hs, f.template.clone(), BTreeMap::new()))
                    .collect(),
            };
            let alone = single && parts.len() == 1;
            for (f, hs, template, values) in parts {
                let everywhere = alone && hs.len() == hosts.len();
                out.push(Task {
                    rel: rel.to_string(),
                    src: template_path(rel, (!everywhere).then_some(hs[0].as_str())),
                    owner: f.owner.clone(),
                    group: f.group.clone(),
                    mode: f.mode,
                    hosts: (!everywhere).then_some(hs),
                    template,
                    values,
                });
            }
        }
    }
    out
}

/// The generated playbook: one play over every imported host, one template task per task.
pub fn playbook_yaml(tasks: &[Task]) -> String {
    use serde_json::json;
    let tasks: Vec<serde_json::Value> = tasks
        .iter()
        .map(|t| {
            let mut task = json!({
                "name": match &t.hosts {
                    None => t.rel.clone(),
                    Some(hs) => format!("{} ({})", t.rel, hs.join(", ")),
                },
                "template": {
                    "src": t.src,
                    "dest": t.rel,
                    "owner": t.owner,
                    "group": t.group,
                    "mode": format!("{:04o}", t.mode),
                },
            });
            if let Some(hs) = &t.hosts {
                task["when"] = json!(format!(
                    "inventory_hostname in {}",
                    serde_json::to_string(hs).expect("names serialize")
                ));
            }
            task
        })
        .collect();
    let play = json!([{
        "name": "adopted as-is by switchyard import",
        "hosts": "all",
        "tasks": tasks,
    }]);
    format!(
        "# Written by `switchyard import --as-is`: every adopted file as it was on its host.\n{}",
        yaml_serde::to_string(&play).expect("playbook serializes")
    )
}

#[cfg(test)]
mod tests {
    use super::template::tests::render;
    use super::*;

    /// `text` adopted as `vars.xml` with `mode`.
    fn vars_xml(text: &str, mode: u32) -> Adopted {
        let (template, secrets) = templatize("vars.xml", text);
        Adopted {
            rel: "vars.xml".into(),
            template,
            secrets,
            owner: "freeswitch".into(),
            group: "freeswitch".into(),
            mode,
        }
    }

    #[test]
    fn files_that_differ_only_in_secrets_share_one_task() {
        let file = |pw: &str, mode: u32| {
            vars_xml(
                &format!("<include><X-PRE-PROCESS cmd=\"set\" data=\"default_password={pw}\"/></include>\n"),
                mode,
            )
        };
        let hosts = vec![
            ("a".to_string(), vec![file("one", 0o640)]),
            ("b".to_string(), vec![file("two", 0o640)]),
        ];
        let t = tasks(&hosts);
        assert_eq!(t.len(), 1);
        assert!(t[0].hosts.is_none() && t[0].src == "vars.xml");
        // A different mode is another variant, one task each, for the hosts that have it.
        let hosts = vec![
            ("a".to_string(), vec![file("one", 0o640)]),
            ("b".to_string(), vec![file("two", 0o600)]),
            ("c".to_string(), vec![file("x", 0o640)]),
        ];
        let t = tasks(&hosts);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].hosts.as_deref(), Some(&["a".into(), "c".into()][..]));
        assert_eq!(t[0].src, "variants/a/vars.xml");
        let yaml = playbook_yaml(&t);
        assert!(
            yaml.contains("inventory_hostname in [\\\"a\\\",\\\"c\\\"]")
                || yaml.contains("inventory_hostname in [\"a\",\"c\"]"),
            "{yaml}"
        );
    }

    /// Run the import program locally (as the local transport does), with `bin` first on
    /// PATH: (exit code, stdout, stderr).
    fn run_local(root: &std::path::Path, bin: &std::path::Path) -> (Option<i32>, Vec<u8>, String) {
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script::import(
                &root.display().to_string(),
                1 << 20,
                MAX_FILES,
            ))
            .env("PATH", path)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A run that takes the lock of a never-locked host while its tree is read (here: the
    /// moment the gather's first `stat` runs) fails the import, which created nothing
    /// itself; with the lock file there, the read holds it shared and writes nothing.
    #[test]
    fn a_lock_taken_during_an_unlocked_read_fails_it() {
        let dir = std::env::temp_dir().join(format!("sy-import-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (root, bin) = (dir.join("conf"), dir.join("bin"));
        std::fs::create_dir_all(root.join("dialplan")).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(root.join("vars.xml"), "<include/>\n").unwrap();
        std::fs::write(root.join("dialplan/a.xml"), "<include/>\n").unwrap();
        let (code, out, err) = run_local(&root, &bin);
        assert_eq!(code, Some(0), "{err}");
        let tree = parse_tree(&out, 1 << 20).unwrap();
        assert_eq!(tree.entries.len(), 2);
        assert!(!tree.locked && !root.join(".switchyard").exists());

        // A `stat` that, like a run starting meanwhile, takes the lock first.
        use std::os::unix::fs::PermissionsExt;
        let real = ["/usr/bin/stat", "/bin/stat"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap();
        let fake = bin.join("stat");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\nmkdir -p -m 700 {r}/.switchyard && : > {r}/.switchyard/lock\nexec {real} \"$@\"\n",
                r = root.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (code, _, err) = run_local(&root, &bin);
        assert_eq!(code, Some(76), "{err}");
        assert!(
            err.contains("took the host lock while the conf tree was read"),
            "{err}"
        );

        // Now the host has a lock file: read under it, shared; nothing added or changed.
        std::fs::remove_file(&fake).unwrap();
        let lock = root.join(".switchyard/lock");
        let before = std::fs::metadata(&lock).unwrap().modified().unwrap();
        let (code, out, err) = run_local(&root, &bin);
        assert_eq!(code, Some(0), "{err}");
        assert!(parse_tree(&out, 1 << 20).unwrap().locked);
        let left: Vec<_> = std::fs::read_dir(root.join(".switchyard"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["lock"]);
        assert_eq!(
            std::fs::metadata(&lock).unwrap().modified().unwrap(),
            before
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Copies of a file that differ only in values are one template with per-host
    /// variables; a copy of another shape stays its own task.
    #[test]
    fn files_that_differ_in_values_are_one_template_with_host_variables() {
        let file = |ip: &str, extra: &str| {
            let text = format!("<include>\n  <X-PRE-PROCESS cmd=\"set\" data=\"external_rtp_ip={ip}\"/>\n  <X-PRE-PROCESS cmd=\"set\" data=\"default_password=pw-{ip}\"/>\n  <param name=\"caller-id\" value=\"A'B {ip}\"/>{extra}\n</include>\n");
            vars_xml(&text, 0o640)
        };
        let hosts = vec![
            ("a".to_string(), vec![file("198.51.100.1", "")]),
            ("b".to_string(), vec![file("198.51.100.2", "")]),
            ("c".to_string(), vec![file("198.51.100.3", "<extra/>")]),
        ];
        let t = tasks(&hosts);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(t[0].hosts.as_deref(), Some(&["a".into(), "b".into()][..]));
        assert!(t[0]
            .template
            .contains("external_rtp_ip={{ vars_external_rtp_ip }}"));
        assert!(
            t[0].template
                .contains("value=\"{{ vars_caller_id | safe }}\""),
            "{}",
            t[0].template
        );
        assert_eq!(
            t[0].values["b"],
            [
                (
                    "vars_external_rtp_ip".to_string(),
                    "198.51.100.2".to_string()
                ),
                ("vars_caller_id".to_string(), "A'B 198.51.100.2".to_string()),
            ]
        );
        assert_eq!(t[1].hosts.as_deref(), Some(&["c".into()][..]));
        assert!(t[1].values.is_empty() && t[1].template.contains("198.51.100.3"));
        // The merged template prints each host's file back.
        let mut ctx = hosts[1].1[0].secrets.clone();
        ctx.extend(t[0].values["b"].clone());
        assert_eq!(render(&t[0].template, &ctx), {
            let f = file("198.51.100.2", "");
            render(&f.template, &f.secrets)
        });
    }

    #[test]
    fn the_answer_is_parsed_and_what_cannot_be_adopted_says_why() {
        // A file read comes with the sha256 of its content, as gather.sh sends it.
        let sha = |b: &[u8]| crate::digest::sha256_hex(b);
        let mut out = format!(
            "switchyard-import unlocked 4 1\n./vars.xml\n./link.xml\n./big.xml\n./bin.xml\nF\nL\nB 99\nF\nS\nroot root 640 10 {}\nroot root 644 2 {}\nC\n",
            sha(b"<include/>"),
            sha(b"\xff\xfe")
        )
        .into_bytes();
        out.extend_from_slice(b"<include/>\xff\xfe.\n");
        let tree = parse_tree(&out, 50).unwrap();
        assert!(!tree.locked);
        let (adopted, skipped) = adopt(&tree);
        assert_eq!(adopted.len(), 1);
        assert_eq!(adopted[0].rel, "vars.xml");
        let reasons: Vec<(&str, &str)> = skipped
            .iter()
            .map(|s| (s.rel.as_str(), s.reason.as_str()))
            .collect();
        assert!(reasons[0].0 == "link.xml" && reasons[0].1.contains("symbolic link"));
        assert!(reasons[1].0 == "big.xml" && reasons[1].1.contains("larger than the limit"));
        assert!(reasons[2].0 == "bin.xml" && reasons[2].1.contains("not UTF-8"));
        assert!(reasons[3]
            .1
            .contains("1 file(s) whose name holds a line break"));
        assert!(parse_tree(b"switchyard-import maybe 0 0\nS\nC\n.\n", 50).is_err());
    }
}
