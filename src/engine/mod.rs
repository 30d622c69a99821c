//! The engine: from inputs to a per-host outcome, in the order the data flows.
//!
//! - [`desired`]: each host's desired files, rendered without connecting; what each task
//!   kind contributes is its own file (`desired/template.rs`, `desired/fs_cli.rs`, …);
//! - [`facts`]: every managed file's state gathered in one round trip;
//! - [`plan`]: desired vs actual, a pure function (diffs via [`diff`], masked by
//!   [`crate::secret`]); [`plan::saved`] keeps a reviewed plan for a later apply;
//! - [`offline`]: what is checked before connecting (lint of the desired files, route tests);
//! - [`run`]: the batches (order, size, when the rollout stops), each host through
//!   [`pipeline`], the per-host state machine (gather → plan → [check, drift and review stop
//!   here] → lock → write → [`steps`] → verify → roll back), which fills the report in one
//!   place;
//! - [`verify`]: polling gateway registration after a change;
//! - [`outcome`]: the per-host reports and typed errors everything downstream reads;
//! - [`review`]: pull-request summaries of a plan;
//! - [`import`]: a PBX's whole conf tree read, and the as-is project that reproduces it.
//!
//! How a host is reached and written is [`crate::host`]'s business; what FreeSWITCH does with
//! a file is [`crate::freeswitch`]'s.

pub mod call_tests;
pub mod desired;
pub mod diff;
pub mod facts;
pub mod import;
pub mod offline;
pub mod outcome;
pub mod pipeline;
pub mod plan;
pub mod review;
pub mod run;
pub mod steps;
pub mod verify;
