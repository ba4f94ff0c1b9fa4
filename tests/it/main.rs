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
mod refused;
mod run;
mod service;
mod signals;
mod site;
mod snapshots;
mod watch;
mod worker;
mod worker_log;
