//! What the checks share about one configuration, read once: the files parsed as XML,
//! the gateways, the dialplan contexts and the pre-processor's variables.

use std::collections::BTreeMap;

use crate::freeswitch::{classify, gateways, preprocess, sofia, FileKind, Gateway};

/// Contexts the stock configuration defines (`dialplan/default.xml`, `public.xml`, ...),
/// valid even when the files linted do not include them.
pub(super) const STOCK_CONTEXTS: &[&str] = &["default", "public", "features", "skinny-patterns"];

/// One `<gateway>` of a gateway file, with where it is and where its calls run.
pub(super) struct GatewayAt {
    /// Position among the configuration's gateways (file order, then document order).
    pub index: usize,
    pub rel: String,
    /// The profile folder the file is in (`sip_profiles/PROFILE/…`).
    pub profile: String,
    pub gw: Gateway,
    /// The context its inbound calls run in ([`gateway_context`]).
    pub context: String,
}

pub(super) struct Tree<'a> {
    pub files: &'a BTreeMap<String, String>,
    /// XML files that parse, as fragments ([`xml_view`]).
    pub parsed: BTreeMap<&'a str, roxmltree::Document<'a>>,
    /// XML files that do not: `(line, what the parser said)`.
    pub xml_errors: BTreeMap<&'a str, (usize, String)>,
    pub gateways: Vec<GatewayAt>,
    /// Gateway name → index in `gateways`; the last of several with one name, as the
    /// checks that look a gateway up by name have always seen it.
    pub by_name: BTreeMap<String, usize>,
    /// Dialplan context → `(file, line)` of its `<context>` (the last definition).
    pub contexts: BTreeMap<String, (String, usize)>,
    /// Context → the gateway whose inbound calls run there (by gateway name, the last).
    pub inbound: BTreeMap<String, String>,
    /// `$${var}` values as the pre-processor sets them (the last definition wins).
    pub vars: BTreeMap<String, String>,
}

/// The pre-processor drops `<?...` lines and consumes directive lines; blank them (keeping
/// line numbers) so the rest parses as the XML FreeSWITCH sees.
pub(super) fn xml_view(text: &str) -> String {
    // Wrapped on the first line, so line numbers stay those of the file.
    let body: String = text
        .split_inclusive('\n')
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("<?")
                || t.starts_with("<X-PRE-PROCESS")
                || t.to_ascii_uppercase().starts_with("<XPREPROCESS")
            {
                if l.ends_with('\n') {
                    "\n"
                } else {
                    ""
                }
            } else {
                l
            }
        })
        .collect();
    format!("<switchyard-fragment>{body}</switchyard-fragment>")
}

/// The 1-based line a node starts on.
pub(super) fn row(doc: &roxmltree::Document<'_>, node: roxmltree::Node<'_, '_>) -> usize {
    doc.text_pos_at(node.range().start).row as usize
}

impl<'a> Tree<'a> {
    /// `views` are the files' [`xml_view`]s, which the parsed documents borrow.
    pub fn new(files: &'a BTreeMap<String, String>, views: &'a BTreeMap<&'a str, String>) -> Self {
        let mut tree = Tree {
            files,
            parsed: BTreeMap::new(),
            xml_errors: BTreeMap::new(),
            gateways: Vec::new(),
            by_name: BTreeMap::new(),
            contexts: BTreeMap::new(),
            inbound: BTreeMap::new(),
            vars: BTreeMap::new(),
        };
        tree.parse(views);
        tree.read_gateways();
        tree.read_contexts();
        for g in tree.by_name.values().map(|&i| &tree.gateways[i]) {
            tree.inbound.insert(g.context.clone(), g.gw.name.clone());
        }
        tree.vars = files
            .values()
            .flat_map(|t| preprocess::parse(t))
            .filter(|d| d.well_spelt)
            .filter_map(|d| d.assignment().map(|(n, v)| (n.to_string(), v.to_string())))
            .collect();
        tree
    }

    /// Files are included into one document textually (`X-PRE-PROCESS include`), so a
    /// file may hold several top-level elements (stock av.conf.xml has two
    /// `<configuration>`s): each is parsed as a fragment, on its own lines.
    fn parse(&mut self, views: &'a BTreeMap<&'a str, String>) {
        for rel in self.files.keys().filter(|r| r.ends_with(".xml")) {
            let options = roxmltree::ParsingOptions {
                allow_dtd: false,
                nodes_limit: 1_000_000,
                ..Default::default()
            };
            match roxmltree::Document::parse_with_options(&views[rel.as_str()], options) {
                Ok(doc) => {
                    self.parsed.insert(rel.as_str(), doc);
                }
                Err(e) => {
                    self.xml_errors
                        .insert(rel.as_str(), (e.pos().row as usize, e.to_string()));
                }
            }
        }
    }

    fn read_gateways(&mut self) {
        for (rel, text) in self.files {
            let FileKind::Gateway { profile } = classify(rel) else {
                continue;
            };
            for gw in gateways(text).unwrap_or_default() {
                let index = self.gateways.len();
                self.by_name.insert(gw.name.clone(), index);
                self.gateways.push(GatewayAt {
                    index,
                    context: gateway_context(self.files, rel, &gw),
                    rel: rel.clone(),
                    profile: profile.to_string(),
                    gw,
                });
            }
        }
    }

    fn read_contexts(&mut self) {
        for (rel, doc) in &self.parsed {
            if classify(rel) != FileKind::Dialplan {
                continue;
            }
            for c in doc.descendants().filter(|n| n.has_tag_name("context")) {
                if let Some(name) = c.attribute("name") {
                    self.contexts
                        .insert(name.to_string(), (rel.to_string(), row(doc, c)));
                }
            }
        }
    }

    /// A gateway by name (the last defined with that name).
    pub fn gateway(&self, name: &str) -> Option<&GatewayAt> {
        self.by_name.get(name).map(|&i| &self.gateways[i])
    }

    /// Whether any dialplan context is among the files: without one, contexts are not judged.
    pub fn have_dialplan(&self) -> bool {
        !self.contexts.is_empty()
    }

    pub fn context_known(&self, c: &str) -> bool {
        self.contexts.contains_key(c) || STOCK_CONTEXTS.contains(&c)
    }

    /// The text of an XML file (what the pre-processor reads), `None` for other files.
    pub fn xml_text(&self, rel: &str) -> Option<&'a str> {
        let files: &'a BTreeMap<String, String> = self.files;
        files
            .get(rel)
            .filter(|_| rel.ends_with(".xml"))
            .map(String::as_str)
    }

    /// Parsed documents of one kind of file, in path order.
    pub fn docs(
        &self,
        kind: FileKind,
    ) -> impl Iterator<Item = (&'a str, &roxmltree::Document<'a>)> + '_ {
        self.parsed
            .iter()
            .filter(move |(rel, _)| classify(rel) == kind)
            .map(|(rel, doc)| (*rel, doc))
    }
}

/// The context a gateway's calls run in ([`sofia::gateway_context`]), with the profile
/// named by the gateway's folder when that profile's file is among `files`.
pub(super) fn gateway_context(files: &BTreeMap<String, String>, rel: &str, g: &Gateway) -> String {
    let profile = match classify(rel) {
        FileKind::Gateway { profile } => files.get(&format!("sip_profiles/{profile}.xml")),
        _ => None,
    };
    sofia::gateway_context(g.param("context"), profile.map(String::as_str))
}
