//! The inputs: everything switchyard reads on the controller before it connects anywhere.
//! Nothing here knows of hosts being reached or changed (`tests/it/architecture.rs` checks
//! that no module here imports from `engine`, `host` or `agent`).
//!
//! - [`source`]: reading YAML with `file:line:col` errors and bounded sizes;
//! - [`inventory`]: the fleet (YAML, INI, TOML and Ansible-style sources), host patterns, vars;
//! - [`playbook`]: plays of typed tasks, parsed and validated;
//! - [`template`]: minijinja rendering with strict undefined variables and XML escaping;
//! - [`vault`]: age-encrypted secrets;
//! - [`config`]: `switchyard.toml`, a project's defaults;
//! - [`unread`]: inventory variables no template, task or playbook reads.

pub mod config;
pub mod inventory;
pub mod playbook;
pub mod source;
pub mod template;
pub mod unread;
pub mod vault;
