//! One module per subcommand; `main` dispatches and maps errors to exit codes.

mod artifact;
mod cancel;
mod docs;
pub mod doctor;
pub mod gc;
pub mod hooks;
mod junit;
mod log;
pub mod notes;
mod plan;
mod repeats;
mod retry;
mod run;
pub mod sandbox_args;
pub mod service;
mod show;
mod signals;
pub mod site;
mod status;
mod submit;
mod wait;
pub mod watch;
mod worker;
mod worker_log;
mod worker_name;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliResult;
use crate::ui::Ui;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.output.verbose);
    let ui = Ui::new(&cli.output);
    let result: CliResult = match cli.command {
        Command::Run(args) => run::cmd_run(&ui, args),
        Command::Submit(args) => submit::cmd_submit(&ui, args),
        Command::Worker(args) if args.action.is_some() => service::cmd_worker_action(&ui, args),
        Command::Worker(args) => worker::cmd_worker(&ui, args),
        Command::Status(args) => status::cmd_status(&ui, args),
        Command::Show(args) => show::cmd_show(&ui, args),
        Command::Log(args) => log::cmd_log(&ui, args),
        Command::Cancel(args) => cancel::cmd_cancel(&ui, args),
        Command::Hooks(args) => hooks::cmd_hooks(&ui, args),
        Command::Watch(args) => watch::cmd_watch(&ui, args),
        Command::Doctor(args) => doctor::cmd_doctor(&ui, args),
        Command::Retry(args) => retry::cmd_retry(&ui, args),
        Command::Artifact(args) => artifact::cmd_artifact(&ui, args),
        Command::Junit(args) => junit::cmd_junit(&ui, args),
        Command::Site(args) => site::cmd_site(&ui, args),
        Command::Gc(args) => gc::cmd_gc(&ui, args),
        Command::Notes(args) => notes::cmd_notes(&ui, args),
        Command::Completions(args) => docs::cmd_completions(args),
        Command::Man(args) => docs::cmd_man(&ui, args),
    };
    match result.and_then(|()| ui.finish()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(report) = e.report() {
                eprintln!("{report}");
            }
            e.exit_code()
        }
    }
}

/// `-v` or `GIT_CI_LOG=debug` (or `RUST_LOG`) logs every git command and
/// its duration; `-vv` logs everything git-ci traces.
fn init_tracing(verbose: u8) {
    let filter = match verbose {
        0 => std::env::var("GIT_CI_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default(),
        1 => "git=debug".to_owned(),
        _ => "debug".to_owned(),
    };
    if filter.is_empty() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
