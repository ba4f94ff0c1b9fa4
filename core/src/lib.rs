//! git-ci's engine: everything that is not a user interface.
//!
//! Data flows down: the CLI, hooks and site generator call into this crate,
//! and this crate talks to git (gix in-process for a local hub, the `git`
//! binary for a remote one). Nothing here prints; progress leaves through
//! [`worker::Event`]s and return values.
//!
//! The way of one job through the modules: [`pipeline`] turns
//! `.git-ci.toml` into [`model`] documents and [`queue`] submits them onto
//! [`hub`]; a [`worker`] claims one ([`queue`], [`claimed`]), checks it out
//! ([`checkout`]), runs it ([`runner`], [`mask`], [`junit`]) and publishes
//! its result into its chain ([`done`], [`chain`]); [`state`] reads where
//! every job stands, [`needs`] moves the jobs that wait on it, [`guard`]
//! and [`validate`] are the hub's side of each step, and [`gc`] and
//! [`archive`] keep the history small. `docs/architecture.md` says it step
//! by step.
#![forbid(unsafe_code)]

pub mod agent;
pub mod archive;
pub mod atomic;
pub mod backlog;
pub mod chain;
pub mod checkout;
pub mod claimed;
pub mod digest;
pub mod done;
pub mod gc;
pub mod git;
pub mod guard;
pub mod hub;
pub mod id;
pub mod identity;
pub mod instances;
pub mod isolation;
pub mod junit;
pub mod live_workers;
pub mod mask;
pub mod model;
pub mod needs;
pub mod notes;
pub mod pipeline;
pub mod project;
pub mod queue;
pub mod ref_watch;
pub mod refs;
// The runner needs Linux (waitid with WNOWAIT), and the worker needs the
// runner; everything else, the site generator's part included, builds on
// any Unix.
#[cfg(target_os = "linux")]
pub mod runner;
pub mod schedule;
pub mod state;
pub mod time;
pub mod tree_edit;
pub mod validate;
#[cfg(target_os = "linux")]
pub mod worker;

pub use hub::{Hub, HubError, open_hub};
pub use id::JobId;
pub use model::{Claim, Job, JobResult, Status, TestCounts};
