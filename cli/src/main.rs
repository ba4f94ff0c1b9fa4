//! `git-ci`: the command a user types as `git ci ...`.
#![forbid(unsafe_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("git-ci's job runner needs Linux (waitid with WNOWAIT); other systems are not supported yet");

mod cli;
mod commands;
mod context;
mod error;
mod settings;
mod ui;

fn main() -> std::process::ExitCode {
    commands::main()
}
