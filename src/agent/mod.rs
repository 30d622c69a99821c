//! The long-lived and after-the-fact parts: what keeps running, or keeps records, once a
//! command's pipeline is done.
//!
//! - [`watch`]: the scheduled drift agent (and its `/metrics`), and [`watch_calls`]: its
//!   periodic call tests (`--call-tests`);
//! - [`live`]: live trunk state over one ESL tunnel per PBX (`watch --events`);
//! - [`measure`]: `trunks measure`, each PBX's own SIP round-trip times;
//! - [`call`]: `switchyard call`, one test call placed by a PBX's own FreeSWITCH, and
//!   [`call_outcome`]: what it did, from its channels' events; [`call_trace`]: its SIP
//!   exchange;
//! - [`history`]: the run history every run appends to (SQLite, or shared PostgreSQL);
//! - [`webhook`]: the trunk alerts' HTTPS (or HTTP) client.

pub mod call;
pub mod call_outcome;
pub mod call_trace;
pub mod history;
pub mod live;
pub mod measure;
pub mod watch;
pub mod watch_calls;
pub mod webhook;
