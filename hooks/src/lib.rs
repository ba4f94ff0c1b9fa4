//! git-ci triggers: turning ref updates into jobs.
//!
//! Two ways in, one way of deciding. On a hub this machine controls, the
//! `post-receive` hook that [`install`] puts in place hands each push's ref
//! updates to [`post_receive`]; on a hosted hub that runs no hooks,
//! [`watch`] polls the branch heads instead. Both plan jobs from the pushed
//! commit's `.git-ci.toml` ([`trigger::plan`]) and apply the plan in one
//! compare-and-swap transaction ([`trigger::apply`]) that also records what
//! was triggered in the `_hub` done chain ([`index`]), so that a repeated
//! hook run, a restarted watcher or two watchers at once never queue the
//! same (commit, ref, job) twice.
//!
//! The `pre-receive` hook [`install`] puts beside it runs [`guard`], which
//! refuses malformed updates under `refs/ci/` before git stores them.
//!
//! [`doctor`] checks a hub end to end, including what [`install`] set up.
#![forbid(unsafe_code)]

mod chain;
mod check;
pub mod doctor;
pub mod durability;
pub mod guard;
pub mod index;
pub mod install;
mod ownership;
pub mod patterns;
pub mod post_receive;
pub mod schedule;
pub mod trigger;
pub mod watch;

pub use trigger::{Event, Update};
