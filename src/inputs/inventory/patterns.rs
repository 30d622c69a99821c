//! Ansible's host patterns (`pbx:!eu`, `pbx*,&eu`, `--limit`) and host ranges
//! (`pbx-us-[01:50].example.net`).

use std::collections::BTreeSet;

use super::{Host, Inventory};

impl Inventory {
    /// Hosts a play's `hosts:` pattern selects, narrowed by `--limit` when given.
    pub fn select_limited(&self, pattern: &str, limit: Option<&str>) -> Vec<&Host> {
        let limited: Option<Vec<&Host>> = limit.map(|l| self.select(l));
        self.select(pattern)
            .into_iter()
            .filter(|h| {
                limited
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|x| x.name == h.name))
            })
            .collect()
    }

    /// Hosts matching an Ansible-style pattern, in inventory order.
    ///
    /// Supported: `all`, `*`, host or group names, globs with `*`, unions with `:` or `,`,
    /// intersections with `&name` and exclusions with `!name`.
    pub fn select(&self, pattern: &str) -> Vec<&Host> {
        let mut include: BTreeSet<&str> = BTreeSet::new();
        let mut intersect: Vec<BTreeSet<&str>> = Vec::new();
        let mut exclude: BTreeSet<&str> = BTreeSet::new();
        for term in pattern
            .split([':', ','])
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            if let Some(t) = term.strip_prefix('!') {
                exclude.extend(self.expand(t));
            } else if let Some(t) = term.strip_prefix('&') {
                intersect.push(self.expand(t));
            } else {
                include.extend(self.expand(term));
            }
        }
        self.hosts
            .iter()
            .filter(|h| include.contains(h.name.as_str()))
            .filter(|h| intersect.iter().all(|s| s.contains(h.name.as_str())))
            .filter(|h| !exclude.contains(h.name.as_str()))
            .collect()
    }

    fn expand(&self, term: &str) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for (g, members) in &self.groups {
            if glob_match(term, g) {
                out.extend(members.iter().map(String::as_str));
            }
        }
        for h in &self.hosts {
            if glob_match(term, &h.name) {
                out.insert(h.name.as_str());
            }
        }
        out
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(idx) = rest.find(part) {
            rest = &rest[idx + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// The most hosts one range pattern may stand for: more is a typo (`[1:100000]`), not a fleet.
pub const MAX_RANGE_HOSTS: usize = 10_000;

/// Ansible's host ranges: `pbx-us-[01:50].example.net` (leading zeros kept: both ends must
/// then have the same width), `[a:f]` (single letters), `[1:9:2]` (a step), several in one
/// name. A name without `[` is itself. A range that runs backwards or expands to more than
/// [`MAX_RANGE_HOSTS`] names is an error, never a silent empty or huge group.
pub fn expand_hosts(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or("`[` without `]`")?;
    let (head, spec, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = spec.split(':').collect();
    let (beg, end, step) = match parts.as_slice() {
        [b, e] => (*b, *e, 1usize),
        [b, e, s] => (
            *b,
            *e,
            s.parse::<usize>().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!("range `[{spec}]`: the step `{s}` is not a positive number")
            })?,
        ),
        _ => {
            return Err(format!(
                "range `[{spec}]` is not `[start:end]` or `[start:end:step]`"
            ))
        }
    };
    let items: Vec<String> = if let (Ok(b), Ok(e)) = (beg.parse::<usize>(), end.parse::<usize>()) {
        let width = if beg.len() > 1 && beg.starts_with('0') {
            if beg.len() != end.len() {
                return Err(format!(
                    "range `[{spec}]`: with leading zeros, start and end need the same width"
                ));
            }
            beg.len()
        } else {
            0
        };
        if b > e {
            return Err(format!("range `[{spec}]` runs backwards and names no host"));
        }
        if (e - b) / step + 1 > MAX_RANGE_HOSTS {
            return Err(format!(
                "range `[{spec}]` names {} hosts, more than {MAX_RANGE_HOSTS}",
                (e - b) / step + 1
            ));
        }
        (b..=e)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else {
        let letter = |s: &str| {
            let mut c = s.chars();
            match (c.next(), c.next()) {
                (Some(x), None) if x.is_ascii_alphabetic() => Some(x),
                _ => None,
            }
        };
        let (Some(b), Some(e)) = (letter(beg), letter(end)) else {
            return Err(format!(
                "range `[{spec}]`: ends must both be numbers or both single letters"
            ));
        };
        if b > e {
            return Err(format!("range `[{spec}]` runs backwards and names no host"));
        }
        (b..=e).step_by(step).map(String::from).collect()
    };
    let rest = expand_hosts(tail)?;
    if items.len() * rest.len() > MAX_RANGE_HOSTS {
        return Err(format!(
            "names {} hosts, more than {MAX_RANGE_HOSTS}",
            items.len() * rest.len()
        ));
    }
    Ok(items
        .iter()
        .flat_map(|i| rest.iter().map(move |r| format!("{head}{i}{r}")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ranges_expand_as_ansible_expands_them() {
        assert_eq!(
            expand_hosts("pbx-us-[01:03].example.net").unwrap(),
            [
                "pbx-us-01.example.net",
                "pbx-us-02.example.net",
                "pbx-us-03.example.net"
            ]
        );
        assert_eq!(expand_hosts("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert_eq!(expand_hosts("n[1:9:4]").unwrap(), ["n1", "n5", "n9"]);
        assert_eq!(
            expand_hosts("r[1:2]-[a:b]").unwrap(),
            ["r1-a", "r1-b", "r2-a", "r2-b"]
        );
        assert_eq!(expand_hosts("[8:10]").unwrap(), ["8", "9", "10"]);
        assert_eq!(expand_hosts("plain").unwrap(), ["plain"]);
        for (bad, why) in [
            ("x[5:1]", "runs backwards"),
            ("x[1:100000]", "100000 hosts, more than 10000"),
            ("x[001:10]", "same width"),
            ("x[1:3", "without `]`"),
            ("x[1:3:0]", "not a positive number"),
            ("x[a:3]", "both be numbers or both single letters"),
            ("x[1:200][1:100]", "more than 10000"),
        ] {
            let e = expand_hosts(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
