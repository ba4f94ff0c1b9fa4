//! git-ci's integration tests: the real binary, real git, real hubs.

mod env;

mod errors;
mod faults;
mod hubs;
mod race;
mod run;
