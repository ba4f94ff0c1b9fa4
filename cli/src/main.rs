//! `git-ci`: the command a user types as `git ci ...`.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod context;
mod error;
mod settings;
mod ui;

fn main() -> std::process::ExitCode {
    commands::main()
}
