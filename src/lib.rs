//! switchyard: a push-based, agentless, declarative provisioner for fleets of FreeSWITCH
//! PBXes.
//!
//! # Layout
//!
//! The folders are the pipeline; data flows one way, down this list:
//!
//! - [`inputs`]: what is read on the controller before connecting: [`inputs::source`] (YAML
//!   with `file:line:col` errors), [`inputs::inventory`], [`inputs::playbook`],
//!   [`inputs::template`], [`inputs::vault`] (age-encrypted secrets), [`inputs::config`]
//!   (`switchyard.toml`), [`inputs::unread`] (inventory variables nothing reads);
//! - [`engine`]: from inputs to an outcome per host: [`engine::desired`] (files rendered
//!   without connecting), [`engine::facts`] (gathered in one round trip), [`engine::plan`]
//!   (desired vs actual, pure; diffs via [`engine::diff`]), [`engine::offline`] (lint and
//!   route tests before connecting), [`engine::run`] (batches), [`engine::pipeline`] (one
//!   host: gather, plan, stop for check, drift and review, else lock, write, run
//!   [`engine::steps`], verify, roll back), [`engine::verify`] (gateway registration),
//!   [`engine::outcome`] (reports and typed errors), [`engine::review`] (pull-request
//!   summaries), [`engine::import`] (a conf tree read whole, the as-is project that
//!   reproduces it, and its mapping onto the shipped playbook's variables), [`engine::call_tests`] (a play's test calls after verification);
//! - [`host`]: how a host is reached and changed: [`host::transport`] (SSH or local),
//!   [`host::script`] (the fixed `sh` programs in `src/host/remote/`), [`host::session`] (the
//!   requests the held lock's session serves: writes, FreeSWITCH steps), [`host::state`] (the
//!   record kept on each host), [`host::write`] (the write request and its record);
//! - [`freeswitch`]: everything FreeSWITCH-specific (reload rules, answers, lint, editors),
//!   knowing nothing of playbooks, inventories or runs;
//! - [`agent`]: what runs on or keeps records: [`agent::watch`] (the drift agent),
//!   [`agent::watch_calls`] (its periodic call tests),
//!   [`agent::live`] (live trunk state), [`agent::measure`] (`trunks measure`),
//!   [`agent::call`] (`switchyard call`: one test call through a PBX's FreeSWITCH),
//!   [`agent::call_outcome`] (what it did, from its channels' events),
//!   [`agent::call_trace`] (its SIP exchange, traced by FreeSWITCH),
//!   [`agent::webhook`] (the alerts' HTTPS client), [`agent::history`] (the run history,
//!   in [`agent::history::sqlite`] or [`agent::history::postgres`]; with the latter,
//!   [`agent::history::lock`]: the fleet rollout lock and the agents' leader election);
//! - on top: [`cli`] (global options and dispatch), [`commands`] (one module per verb),
//!   [`report`] (human and JSON output), [`exit`] (the one place outcomes and errors become
//!   exit codes), [`demo`] (the built-in demo fleet `switchyard demo` prepares).
//!
//! Small leaves stay at the top because every layer uses them and they import (almost)
//! nothing: putting one inside a layer would make the others reach into it. [`clock`] (time),
//! [`xml`] (escaping and well-formedness), [`printable`] (a PBX's control characters escaped
//! before printing), [`secret`] (every secret kept out of output) over [`digest`] (keyed
//! digests safe to publish), [`atomic_file`] (files the controller replaces, never through a
//! planted link), [`interrupt`] (Ctrl-C and SIGTERM during a rollout), [`stock`] (the stock
//! FreeSWITCH conf the binary ships).

/// `println!`/`eprintln!`/`print!`/`eprint!` that never panic: a closed stdout or stderr
/// (`switchyard apply ... | head`) loses the text, not the run: hosts in flight still finish
/// their write, steps and verification.
#[macro_use]
mod output {
    macro_rules! println {
        ($($t:tt)*) => {{
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout(), $($t)*);
        }};
    }
    macro_rules! eprintln {
        ($($t:tt)*) => {{
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), $($t)*);
        }};
    }
    macro_rules! print {
        ($($t:tt)*) => {{
            use std::io::Write as _;
            let _ = write!(std::io::stdout(), $($t)*);
        }};
    }
    macro_rules! eprint {
        ($($t:tt)*) => {{
            use std::io::Write as _;
            let _ = write!(std::io::stderr(), $($t)*);
        }};
    }
}

/// Any error, for the few places that carry errors of several kinds to the command that
/// reports them (`demo`, `watch`, [`exit::CommandError`]): the one definition.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub mod agent;
pub mod atomic_file;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod demo;
pub mod digest;
pub mod engine;
pub mod exit;
pub mod freeswitch;
pub mod host;
pub mod inputs;
pub mod interrupt;
pub mod printable;
pub mod report;
pub mod secret;
pub mod stock;
pub mod xml;
