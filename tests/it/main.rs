//! git-ci's integration tests: the real binary, real git, real hubs.

mod env;

mod docs;
mod doctor;
mod errors;
mod faults;
mod guard;
mod hooks;
mod hubs;
mod race;
mod run;
mod site;
mod watch;
mod worker;
