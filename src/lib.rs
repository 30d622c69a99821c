//! switchyard: a push-based, agentless, declarative provisioner for fleets of FreeSWITCH
//! PBXes.
//!
//! # Layout
//!
//! Data flows one way, one module per step:
//!
//! - [`source`]: reading YAML with `file:line:col` errors;
//! - [`inventory`] and [`playbook`]: the fleet and the tasks, parsed and validated;
//! - [`template`] and [`desired`]: each host's desired files, rendered without connecting;
//! - [`transport`]: one SSH (russh) or local connection per host behind one interface;
//! - [`facts`]: every managed file's state gathered in one round trip;
//! - [`plan`]: desired vs actual, a pure function (diffs via [`diff`], masked by [`secret`]);
//! - [`script`]: the `sh` programs that write files atomically and run FreeSWITCH commands;
//! - [`state`]: the record kept on each host (last written hashes, steps still owed);
//! - [`verify`]: polling gateway registration;
//! - [`run`]: the pipeline over hosts and batches; check, drift and review stop after the plan;
//! - [`outcome`]: the per-host reports and typed errors everything downstream reads;
//! - [`report`]: human and JSON output; [`review`]: pull-request summaries of a plan;
//! - [`history`]: the local run history; [`watch`]: the scheduled drift agent;
//! - [`freeswitch`]: everything FreeSWITCH-specific (reload rules, answers, lint, editors),
//!   knowing nothing of playbooks or inventories;
//! - [`vault`]: age-encrypted secrets; [`secret`] keeps every secret out of output;
//! - [`config`]: `switchyard.toml`, a project's defaults;
//! - [`clock`], [`xml`] and [`printable`]: small leaves (time, XML escaping and
//!   well-formedness, control characters of a PBX's text escaped before printing);
//!   [`atomic_file`]: files the controller replaces, never through a planted link;
//! - [`cli`]: global options and dispatch; [`commands`]: one module per verb; [`exit`]: the
//!   one place outcomes and errors become exit codes.

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

pub mod atomic_file;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod demo;
pub mod desired;
pub mod diff;
pub mod digest;
pub mod exit;
pub mod facts;
pub mod freeswitch;
pub mod history;
pub mod interrupt;
pub mod inventory;
pub mod live;
pub mod measure;
pub mod outcome;
pub mod plan;
pub mod playbook;
pub mod printable;
pub mod report;
pub mod review;
pub mod run;
pub mod script;
pub mod secret;
pub mod source;
pub mod state;
pub mod stock;
pub mod template;
pub mod transport;
pub mod vault;
pub mod verify;
pub mod watch;
pub mod xml;
