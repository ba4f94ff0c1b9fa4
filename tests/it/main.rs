//! git-ci's integration tests: the real binary, real git, real hubs.

mod env;

mod absurd;
mod answers;
mod docs;
mod doctor;
mod errors;
mod exclusive;
mod faults;
mod full_disk;
mod gc;
mod guard;
mod hooks;
mod hubs;
mod live_page;
mod netns;
mod notes;
mod orphans;
mod pipeline_cli;
mod pipelines;
mod race;
mod refused;
mod run;
mod sandbox;
mod schedule;
mod secrets;
mod service;
mod signals;
mod site;
mod snapshots;
mod swallowed;
mod unpublishable;
mod waiting;
mod watch;
mod worker;
mod worker_log;
