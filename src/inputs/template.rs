//! Rendering templates: minijinja with strict undefined variables and XML escaping.
//!
//! minijinja's default auto-escaping is HTML (it turns `/` into `&#x2f;`), which FreeSWITCH
//! would read back wrong in pre-process lines, and its default undefined behaviour prints
//! nothing for a misspelt variable. So: every printed value is XML-escaped by our own
//! formatter (`|safe` opts out), undefined values are errors naming the variable, and the
//! `preprocess` filter passes a value raw into `data="..."` after checking it can go there.

use std::path::{Path, PathBuf};

use minijinja::value::Value;
use std::error::Error as _;

use minijinja::{Environment, Error as JinjaError, ErrorKind, UndefinedBehavior};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template `{template}` not found (looked in {searched})")]
    NotFound { template: String, searched: String },
    #[error("template `{template}`: cannot read: {source}")]
    Read {
        template: String,
        source: crate::inputs::source::SourceError,
    },
    #[error("template `{template}` line {line}: undefined variable `{variable}`")]
    Undefined {
        template: String,
        line: usize,
        variable: String,
    },
    #[error("template `{template}`{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Render {
        template: String,
        line: Option<usize>,
        message: String,
    },
    #[error("`{template}` rendered to XML that is not well-formed: line {line}, column {column}: {message}")]
    NotWellFormed {
        template: String,
        line: u32,
        column: u32,
        message: String,
    },
}

/// Template contexts are built from serde values.
pub trait FromSerde {
    fn from_serde<T: serde::Serialize>(v: T) -> Self;
}

impl FromSerde for Value {
    fn from_serde<T: serde::Serialize>(v: T) -> Value {
        Value::from(minijinja::value::Serde(v))
    }
}

/// A template environment over the playbook's template folders.
pub struct Templates {
    env: Environment<'static>,
    dirs: Vec<PathBuf>,
}

impl Templates {
    pub fn new(dirs: Vec<PathBuf>) -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_recursion_limit(64);
        // Bound the work any template may do: a configuration template needs a tiny
        // fraction of this; a runaway loop stops with an error instead of hanging a rollout.
        env.set_fuel(Some(5_000_000));
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("default delimiters are valid"),
        );
        env.set_formatter(|out, _state, value| {
            if value.is_safe() {
                write!(out, "{value}").map_err(JinjaError::from)
            } else {
                let s = if value.is_none() {
                    String::new()
                } else {
                    value.to_string()
                };
                out.write_str(&crate::xml::escape(&s))
                    .map_err(JinjaError::from)
            }
        });
        env.add_filter("preprocess", |v: String| -> Result<Value, JinjaError> {
            match crate::freeswitch::preprocess::unsafe_data(&v) {
                Some(what) => Err(JinjaError::new(
                    ErrorKind::InvalidOperation,
                    format!("value contains {what}, which a pre-process line cannot carry"),
                )),
                None => Ok(Value::from_safe_string(v)),
            }
        });
        // `{{ did | e164 }}`: the digits of an E.164 number (`+` and spaces dropped), or an
        // error naming the value. A `+` left in a dialplan regex (`^\+?(+1646...)$`) is a
        // pattern PCRE rejects, and FreeSWITCH then matches nothing, silently.
        env.add_filter("e164", |v: Value| -> Result<String, JinjaError> {
            let text = v.to_string();
            let digits: String = text
                .trim()
                .trim_start_matches('+')
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
                .collect();
            let ok = (2..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            if ok {
                Ok(digits)
            } else {
                Err(JinjaError::new(
                    ErrorKind::InvalidOperation,
                    format!("`{text}` is not an E.164 number (country code and number, up to 15 digits)"),
                ))
            }
        });
        // `{{ fail("message") }}`: stop rendering with the operator's own error, for rules a
        // template states (e.g. an emergency-call rule that must be chosen).
        env.add_function("fail", |msg: String| -> Result<Value, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        });
        Templates { env, dirs }
    }

    fn find(&self, name: &str) -> Result<PathBuf, TemplateError> {
        if name.split(['/', '\\']).any(|c| c == "..") || Path::new(name).is_absolute() {
            return Err(TemplateError::NotFound {
                template: name.into(),
                searched: "nowhere: template names may not be absolute or contain `..`".into(),
            });
        }
        self.dirs
            .iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| TemplateError::NotFound {
                template: name.into(),
                searched: self
                    .dirs
                    .iter()
                    .map(|d| format!("`{}`", d.display()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Load (once) and render the template file `name` with `ctx`.
    pub fn render_file(&mut self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        if self.env.get_template(name).is_err() {
            let path = self.find(name)?;
            let src =
                crate::inputs::source::read_text(&path).map_err(|source| TemplateError::Read {
                    template: name.into(),
                    source,
                })?;
            self.env
                .add_template_owned(name.to_string(), src)
                .map_err(|e| to_error(name, &e, None))?;
        }
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| to_error(name, &e, None))?;
        tmpl.render(ctx)
            .map_err(|e| to_error(name, &e, tmpl.source().into()))
    }

    /// Render a short inline template (a `dest`, a param value) named for error messages.
    pub fn render_str(&self, what: &str, text: &str, ctx: &Value) -> Result<String, TemplateError> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_string());
        }
        // Inline values are raw text destined for fields that get escaped where they land.
        let mut env = self.env.clone();
        env.set_formatter(|out, _s, v| {
            let s = if v.is_none() {
                String::new()
            } else {
                v.to_string()
            };
            out.write_str(&s).map_err(JinjaError::from)
        });
        env.render_str(text, ctx)
            .map_err(|e| to_error(what, &e, Some(text)))
    }

    /// Evaluate an expression (`loop: "{{ users }}"` → `users`) to its value.
    pub fn eval_value(
        &self,
        what: &str,
        expr: &str,
        ctx: &Value,
    ) -> Result<serde_json::Value, TemplateError> {
        let e = self
            .env
            .compile_expression(expr)
            .map_err(|e| to_error(what, &e, Some(expr)))?;
        let v = e.eval(ctx).map_err(|e| to_error(what, &e, Some(expr)))?;
        if v.is_undefined() || v.is_none() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::to_value(&v).map_err(|e| TemplateError::Render {
            template: what.into(),
            line: None,
            message: e.to_string(),
        })
    }

    /// Evaluate a `when:` expression.
    pub fn eval_bool(&self, what: &str, expr: &str, ctx: &Value) -> Result<bool, TemplateError> {
        let e = self
            .env
            .compile_expression(expr)
            .map_err(|e| to_error(what, &e, Some(expr)))?;
        e.eval(ctx)
            .map(|v| v.is_true())
            .map_err(|e| to_error(what, &e, Some(expr)))
    }
}

/// Render a template given as text (fuzzing, tests).
pub fn render_source(
    name: &str,
    src: &str,
    ctx: &serde_json::Value,
) -> Result<String, TemplateError> {
    let mut t = Templates::new(Vec::new());
    t.env
        .add_template_owned(name.to_string(), src.to_string())
        .map_err(|e| to_error(name, &e, None))?;
    let tmpl = t
        .env
        .get_template(name)
        .map_err(|e| to_error(name, &e, None))?;
    tmpl.render(Value::from_serde(ctx))
        .map_err(|e| to_error(name, &e, Some(src)))
}

fn to_error(name: &str, e: &JinjaError, source: Option<&str>) -> TemplateError {
    let line = e.line();
    if e.kind() == ErrorKind::UndefinedError {
        // minijinja says "undefined value"; point at the expression so the operator sees
        // which variable is missing.
        let variable = match (e.range(), source) {
            (Some(r), Some(src)) if r.end <= src.len() => src[r].trim().to_string(),
            _ => "?".into(),
        };
        return TemplateError::Undefined {
            template: name.into(),
            line: line.unwrap_or(0),
            variable,
        };
    }
    let mut message = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    let mut src = e.source();
    while let Some(inner) = src {
        message.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    TemplateError::Render {
        template: name.into(),
        line,
        message,
    }
}

/// Parse `text` as FreeSWITCH would read it (see [`crate::xml::well_formed`]).
pub fn check_well_formed(name: &str, text: &str) -> Result<(), TemplateError> {
    crate::xml::well_formed(text).map_err(|e| TemplateError::NotWellFormed {
        template: name.into(),
        line: e.line,
        column: e.column,
        message: e.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpl(name: &str, body: &str) -> Templates {
        let dir = std::env::temp_dir().join(format!(
            "sy-tmpl-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), body).unwrap();
        Templates::new(vec![dir])
    }

    #[test]
    fn values_are_xml_escaped_not_html_escaped() {
        let mut t = tmpl(
            "gw.xml",
            "<param name=\"password\" value=\"{{ pw }}\"/>\n<p v=\"{{ path }}\"/>\n",
        );
        let out = t
            .render_file(
                "gw.xml",
                &Value::from_serde(serde_json::json!({"pw": "a\"<&'b", "path": "/x/y"})),
            )
            .unwrap();
        assert_eq!(
            out,
            "<param name=\"password\" value=\"a&quot;&lt;&amp;&apos;b\"/>\n<p v=\"/x/y\"/>\n"
        );
        check_well_formed("gw.xml", &format!("<r>{out}</r>")).unwrap();
    }

    #[test]
    fn undefined_variable_names_template_line_and_variable() {
        let mut t = tmpl(
            "gw.xml",
            "<a>\n  {{ trunk.username }}\n  {{ trunk_pasword }}\n</a>\n",
        );
        let err = t
            .render_file(
                "gw.xml",
                &Value::from_serde(serde_json::json!({"trunk": {"username": "u"}})),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "template `gw.xml` line 3: undefined variable `trunk_pasword`"
        );
    }

    /// DIDs are written as people write them; the dialplan regex gets digits only (a `+`
    /// left in `^\+?(+1646...)$` is a pattern PCRE rejects, and FreeSWITCH matches nothing).
    #[test]
    fn e164_filter_gives_digits_or_a_clear_error() {
        let t = tmpl("t.xml", "<x n=\"{{ d | e164 }}\"/>\n");
        for (given, want) in [
            ("+16468097065", "16468097065"),
            ("1 646-809 7065", "16468097065"),
        ] {
            let out = t
                .render_str(
                    "t.xml",
                    "<x n=\"{{ d | e164 }}\"/>\n",
                    &Value::from_serde(serde_json::json!({"d": given})),
                )
                .unwrap();
            assert_eq!(out, format!("<x n=\"{want}\"/>\n"));
        }
        for bad in ["0646809", "+1646x", "1234567890123456"] {
            let e = t
                .render_str(
                    "t.xml",
                    "{{ d | e164 }}",
                    &Value::from_serde(serde_json::json!({"d": bad})),
                )
                .unwrap_err();
            assert!(e.to_string().contains("not an E.164 number"), "{bad}: {e}");
        }
    }

    #[test]
    fn preprocess_filter_is_raw_but_checked() {
        let mut t = tmpl(
            "vars.xml",
            "<X-PRE-PROCESS cmd=\"set\" data=\"x={{ v | preprocess }}\"/>\n",
        );
        let ok = t
            .render_file(
                "vars.xml",
                &Value::from_serde(serde_json::json!({"v": "a&b/c"})),
            )
            .unwrap();
        assert_eq!(ok, "<X-PRE-PROCESS cmd=\"set\" data=\"x=a&b/c\"/>\n");
        let err = t
            .render_file(
                "vars.xml",
                &Value::from_serde(serde_json::json!({"v": "a\"b"})),
            )
            .unwrap_err();
        assert!(err.to_string().contains("double quote"), "{err}");
    }

    #[test]
    fn malformed_xml_is_located() {
        let err = check_well_formed("gw.xml", "<include>\n  <gateway name=\"x\">\n</include>\n")
            .unwrap_err();
        assert!(
            matches!(err, TemplateError::NotWellFormed { line: 3, .. }),
            "{err}"
        );
    }
}
