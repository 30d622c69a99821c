//! Where a number goes: the XML dialplan evaluated the way mod_dialplan_xml hunts it.
//!
//! Read from FreeSWITCH 1.10's `mod_dialplan_xml.c` (`dialplan_hunt`, `parse_exten`) and
//! `switch_xml.c` (the pre-processor):
//!
//! - The `dialplan` section is `dialplan/*.xml` of the conf root, in name order, each file's
//!   `X-PRE-PROCESS include` globs expanded relative to the including file's folder,
//!   `set` lines defining `$${globals}` that are substituted in the text that follows.
//! - A call hunts the first `<context>` of its name (else `global`); extensions in order;
//!   an extension's conditions in order. A condition with `field` matches when its PCRE
//!   `expression` matches the field (a caller-profile field, or `${var}` expanded, unset
//!   being empty); one with neither field nor time attributes always matches. A match adds
//!   the condition's `action`s (with `$1`... of its captures), a miss its `anti-action`s.
//!   `break` (`on-false` by default, `on-true`, `always`, `never`) ends the extension's
//!   conditions; nested conditions are evaluated when their parent matched.
//! - Actions are queued, not run, while hunting (except `inline="true"`), so a queued `set`
//!   does not change later conditions; actions queued by an extension whose later
//!   condition failed stay queued. An extension that "proceeds" ends the hunt unless it has
//!   `continue="true"`.
//! - Then the queue runs: `set`/`export` change variables, `bridge` dials (`|` one after
//!   the other, `,` at once; `continue_on_fail` says on which causes the queue goes on),
//!   `transfer DEST [XML CONTEXT]` hunts again, `hangup` and an error `respond` refuse.
//!
//! - Each queued action is run by what its application does to the queue
//!   ([`super::apps`], classified from FreeSWITCH's source): most return and the next one
//!   runs; `transfer` hunts again; `bridge` dials; `hangup`, `respond` 400-699 or `302`,
//!   `deflect` end the call; `voicemail`, `conference`, `park`, `echo`... hold it there.
//!   An application of a module `modules.conf.xml` does not load is "Invalid Application":
//!   FreeSWITCH hangs up DESTINATION_OUT_OF_ORDER.
//! - Expressions run on PCRE (`pcre2`), with switch_regex.c's `/.../is` and `_NXZ.` forms.
//! - Time conditions are evaluated at one wall-clock time ([`super::tod`]).
//!
//! What it cannot know it says, and stops there rather than guess: `regex="all|any|xor"`
//! blocks, API calls in `${...}` other than `user_exists`/`module_exists`, fields of the
//! caller only a real call carries, applications whose effect depends on run-time state
//! (`limit`, `lua`...). Variables a real call might carry (`${sip_looped_call}`) are taken
//! as unset and listed; every such part of the context is listed, not only the first.
//!
//! By concern: `load` (the section read and pre-processed into extensions and conditions),
//! `hunt` (one hunt: conditions, fields, `${...}`, PCRE), `execute` (the queue run
//! application by application), `calls` (test calls, `group_call`, dial strings, masking).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

mod calls;
mod execute;
mod hunt;
mod load;
#[cfg(test)]
mod tests;

use calls::mask_action_data;
pub use calls::mask_dial_secrets;
use hunt::Pcre;

/// How deep transfers may nest before the evaluator calls it a loop.
const MAX_TRANSFERS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    OnFalse,
    OnTrue,
    Always,
    Never,
}

#[derive(Debug, Clone)]
struct Action {
    app: String,
    data: String,
    inline: bool,
    /// `loop="N"`: queued N times (mod_dialplan_xml.c:484).
    times: usize,
}

#[derive(Debug, Clone)]
struct Condition {
    field: Option<String>,
    expression: String,
    /// The expression compiled once at load, when it holds no `${variable}` (most do):
    /// routing 40 numbers on 500 PBXes compiles each pattern 500 times, not 20,000.
    compiled: Option<Result<Pcre, String>>,
    brk: Break,
    /// A `regex=` block: not evaluated.
    unknowable: Option<String>,
    /// The condition's time attributes (`wday`, `hour`, ...), name → value.
    time: Vec<(String, String)>,
    actions: Vec<Action>,
    anti: Vec<Action>,
    nested: Vec<Condition>,
    require_nested: bool,
}

#[derive(Debug, Clone)]
struct Extension {
    name: String,
    cont: bool,
    conditions: Vec<Condition>,
    require_nested: bool,
}

/// The dialplan of one PBX, with what it needs to evaluate calls: the pre-processor's
/// globals, the directory's users (for `user_exists` and a caller's variables), and each
/// gateway's and profile's context.
#[derive(Debug, Clone, Default)]
pub struct Dialplan {
    contexts: Vec<(String, Vec<Extension>)>,
    pub globals: BTreeMap<String, String>,
    /// user id → its `<variables>`.
    users: BTreeMap<String, BTreeMap<String, String>>,
    /// gateway name → the context its calls start in.
    gateway_context: BTreeMap<String, String>,
    /// The modules `modules.conf.xml` loads (`None`: the tree has no such file).
    modules: Option<BTreeSet<String>>,
    /// The modules installed on the PBX, when known (`--mod-dir`): a module loaded by
    /// `modules.conf.xml` but not installed fails to load, and its applications with it.
    installed: Option<BTreeSet<String>>,
    /// A directory user's `<params>` (for the caller a registered user's call carries).
    user_params: BTreeMap<String, BTreeMap<String, String>>,
    /// Contexts whose content switchyard does not know (see [`Dialplan::opaque`]).
    opaque: BTreeSet<String>,
    /// The directory's groups: name → member user ids (pointers included), for
    /// `${group_call(...)}`.
    groups: BTreeMap<String, Vec<String>>,
}

/// One call to evaluate.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    pub context: String,
    pub destination: String,
    pub caller_id_number: String,
    /// Channel variables the call starts with (a user's directory variables).
    pub vars: BTreeMap<String, String>,
    /// Caller-profile fields this kind of call has (`source`, `caller_id_name`...), beyond
    /// the number, context and caller above; a field not here is one only a real call knows.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl Call {
    /// A SIP call from outside into `context` (no authentication): the caller-profile
    /// fields mod_sofia sets that do not depend on the caller.
    pub fn from_outside() -> BTreeMap<String, String> {
        [("source", "mod_sofia"), ("rdnis", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A call from outside (SIP, unauthenticated, late negotiation) to `number` in `context`.
    pub fn outside(context: &str, number: &str) -> Call {
        let mut vars = BTreeMap::new();
        vars.insert(
            "endpoint_disposition".to_string(),
            "DELAYED NEGOTIATION".to_string(),
        );
        Call {
            context: context.to_string(),
            destination: number.to_string(),
            caller_id_number: "0000000000".into(),
            vars,
            fields: Call::from_outside(),
        }
    }
}

/// Where one attempt of the call goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// `sofia/gateway/NAME/NUMBER`.
    Gateway { gateway: String, number: String },
    /// `user/ID@DOMAIN`.
    User { user: String },
    /// Answered with a refusal (`respond 4xx-6xx`, `hangup`).
    Refused { why: String },
    /// Any other endpoint or application, shown as written.
    Other { application: String, data: String },
    /// An application that keeps the call (voicemail, conference, park, echo...): the route
    /// ends there; `class` says how it holds it.
    Held {
        application: String,
        data: String,
        class: String,
    },
}

/// One dial attempt and what happens when it fails.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub target: Target,
    /// `None`: a failure ends the call; `Some([])`: any failure goes on; else these causes.
    /// For legs that ring at once, what happens when all of them failed.
    pub continue_on: Option<Vec<String>>,
    /// This leg rings at the same time as the next attempt (`,` in the dial string).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub at_once_with_next: bool,
}

/// One hunt: the context, the number, the extensions that matched and the queued actions.
#[derive(Debug, Clone, Serialize)]
pub struct Hunt {
    pub context: String,
    pub destination: String,
    pub extensions: Vec<String>,
    pub actions: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub hunts: Vec<Hunt>,
    /// The actions executed, in order, with their data expanded, as far as the route goes
    /// (through a bridge whose failure lets the queue go on).
    pub executed: Vec<(String, String)>,
    pub attempts: Vec<Attempt>,
    /// Call variables taken as unset because only a real call would set them.
    pub assumed_unset: BTreeSet<String>,
    /// Why evaluation stopped short, if it did (never a guess).
    pub unknown: Option<String>,
    /// Every part of the contexts hunted that could not be evaluated (the first is why the
    /// route stopped, if it did): the operator sees them all at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unevaluated: Vec<String>,
    /// The local wall-clock time time conditions were evaluated at, when one was needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// What the operator should look at although the route is known: a dial string with
    /// an unset variable (`sofia/gateway/${default_gateway}/...` dials a gateway named "").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Route {
    /// Mask what a dial string can carry in clear: a URI's password (`sofia/external/
    /// NUM@user:pass@host`, `sip:user:pass@host`) and the value of a password-like channel
    /// variable (`{sip_auth_password=...}`, `set sip_auth_password=...`). Done on every route
    /// the evaluator returns, so no output (route, `--json`, review, route-test findings)
    /// shows them, whether or not the inventory knows the value as a secret.
    fn mask_secrets(&mut self) {
        for h in &mut self.hunts {
            for (app, data) in &mut h.actions {
                *data = mask_action_data(app, data);
            }
        }
        for a in &mut self.attempts {
            match &mut a.target {
                Target::Gateway { gateway, number } => {
                    *gateway = mask_dial_secrets(gateway);
                    *number = mask_dial_secrets(number);
                }
                Target::User { user } => *user = mask_dial_secrets(user),
                Target::Refused { why } => *why = mask_dial_secrets(why),
                Target::Other { application, data } => *data = mask_action_data(application, data),
                Target::Held {
                    application, data, ..
                } => *data = mask_action_data(application, data),
            }
        }
        for (app, data) in &mut self.executed {
            *data = mask_action_data(app, data);
        }
        if let Some(u) = &mut self.unknown {
            *u = mask_dial_secrets(u);
        }
        for u in self.unevaluated.iter_mut().chain(self.warnings.iter_mut()) {
            *u = mask_dial_secrets(u);
        }
    }

    /// The first attempt's target, the one a call that is answered takes.
    pub fn first(&self) -> Option<&Target> {
        self.attempts.first().map(|a| &a.target)
    }
}

/// Parse errors and limits: the dialplan could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("dialplan: {0}")]
pub struct DialplanError(String);
