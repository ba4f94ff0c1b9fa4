//! git-ci's integration tests: the real binary, real git, real hubs.

mod env;

mod docs;
mod doctor;
mod errors;
mod faults;
mod full_disk;
mod gc;
mod guard;
mod hooks;
mod hubs;
mod netns;
mod notes;
mod race;
mod run;
mod secrets;
mod service;
mod site;
mod snapshots;
mod waiting;
mod watch;
mod worker;
mod worker_log;
