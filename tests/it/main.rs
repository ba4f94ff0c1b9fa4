//! git-ci's integration tests: the real binary, real git, real hubs.

mod env;

mod docs;
mod doctor;
mod errors;
mod faults;
mod gc;
mod guard;
mod hooks;
mod hubs;
mod netns;
mod notes;
mod race;
mod run;
mod service;
mod site;
mod snapshots;
mod swallowed;
mod watch;
mod worker;
mod worker_log;
