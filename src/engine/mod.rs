//! The engine: from inputs to a per-host outcome, in the order the data flows.
//!
//! - [`desired`]: each host's desired files, rendered without connecting;
//! - [`facts`]: every managed file's state gathered in one round trip;
//! - [`plan`]: desired vs actual, a pure function (diffs via [`diff`], masked by
//!   [`crate::secret`]); [`plan::saved`] keeps a reviewed plan for a later apply;
//! - [`run`]: the pipeline over hosts and batches; check, drift and review stop after the plan;
//! - [`verify`]: polling gateway registration after a change;
//! - [`outcome`]: the per-host reports and typed errors everything downstream reads;
//! - [`review`]: pull-request summaries of a plan.
//!
//! How a host is reached and written is [`crate::host`]'s business; what FreeSWITCH does with
//! a file is [`crate::freeswitch`]'s.

pub mod desired;
pub mod diff;
pub mod facts;
pub mod outcome;
pub mod plan;
pub mod review;
pub mod run;
pub mod verify;
