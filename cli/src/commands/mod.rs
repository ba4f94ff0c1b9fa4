//! One module per subcommand, each with its own arguments; here the `Cli`
//! that gathers them, and `main`, which dispatches and maps errors to exit
//! codes. Options several commands share are in [`crate::cli`].

mod agent_state;
mod artifact;
mod cancel;
mod changes;
mod claim;
mod complete;
mod docs;
mod doctor;
mod gc;
mod heartbeat;
mod hooks;
mod instances;
mod junit;
mod log;
mod notes;
mod plan;
mod repeats;
mod retry;
mod run;
mod sandbox_args;
mod service;
mod show;
mod signals;
mod site;
mod status;
mod submit;
mod wait;
mod watch;
mod worker;
mod worker_clean;
mod worker_log;
mod worker_name;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::cli::OutputArgs;
use crate::error::CliResult;
use crate::ui::Ui;

/// A distributed CI whose only server is a git repository.
///
/// Jobs, claims and results live under refs/ci/* in a hub repository.
/// `git ci run` tests HEAD right here with no set-up; `git ci submit` and
/// `git ci worker` share the work through any hub git can push to.
#[derive(Debug, Parser)]
#[command(name = "git-ci", bin_name = "git ci", version, propagate_version = true)]
#[command(
    after_help = "Examples:\n  git ci run                 run every job of .git-ci.toml on HEAD, here\n  git ci submit --wait       queue them on the hub and wait for workers\n  git ci worker --hub git://ci.example/hub   run jobs from a shared hub"
)]
pub struct Cli {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand, each with the arguments its own file defines.
#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::RunArgs),
    Submit(submit::SubmitArgs),
    Worker(worker::WorkerArgs),
    Status(status::StatusArgs),
    Show(show::ShowArgs),
    Log(log::LogArgs),
    Cancel(cancel::CancelArgs),
    Hooks(hooks::HooksArgs),
    Watch(watch::WatchArgs),
    Doctor(doctor::DoctorArgs),
    Retry(retry::RetryArgs),
    Wait(wait::WaitArgs),
    Artifact(artifact::ArtifactArgs),
    Junit(junit::JunitArgs),
    Site(site::SiteArgs),
    Gc(gc::GcArgs),
    Notes(notes::NotesArgs),
    Instances(instances::InstancesArgs),
    StopInstance(instances::StopInstanceArgs),
    Claim(claim::ClaimArgs),
    Heartbeat(heartbeat::HeartbeatArgs),
    AppendLog(heartbeat::AppendLogArgs),
    Complete(complete::CompleteArgs),
    Completions(docs::CompletionsArgs),
    Man(docs::ManArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.output.verbose);
    let ui = Ui::new(&cli.output);
    let result: CliResult = match cli.command {
        Command::Run(args) => run::cmd_run(&ui, args),
        Command::Submit(args) => submit::cmd_submit(&ui, args),
        Command::Worker(args) if args.action.is_some() => service::cmd_worker_action(&ui, args, Cli::command()),
        Command::Worker(args) => worker::cmd_worker(&ui, args),
        Command::Status(args) => status::cmd_status(&ui, args),
        Command::Show(args) => show::cmd_show(&ui, args),
        Command::Log(args) => log::cmd_log(&ui, args),
        Command::Cancel(args) => cancel::cmd_cancel(&ui, args),
        Command::Hooks(args) => hooks::cmd_hooks(&ui, args),
        Command::Watch(args) => watch::cmd_watch(&ui, args),
        Command::Doctor(args) => doctor::cmd_doctor(&ui, args),
        Command::Retry(args) => retry::cmd_retry(&ui, args),
        Command::Wait(args) => wait::cmd_wait(&ui, args),
        Command::Artifact(args) => artifact::cmd_artifact(&ui, args),
        Command::Junit(args) => junit::cmd_junit(&ui, args),
        Command::Site(args) => site::cmd_site(&ui, args),
        Command::Gc(args) => gc::cmd_gc(&ui, args),
        Command::Notes(args) => notes::cmd_notes(&ui, args),
        Command::Instances(args) => instances::cmd_instances(&ui, args),
        Command::StopInstance(args) => instances::cmd_stop_instance(&ui, args),
        Command::Claim(args) => claim::cmd_claim(&ui, args),
        Command::Heartbeat(args) => heartbeat::cmd_heartbeat(&ui, args),
        Command::AppendLog(args) => heartbeat::cmd_append_log(&ui, args),
        Command::Complete(args) => complete::cmd_complete(&ui, args),
        Command::Completions(args) => docs::cmd_completions(args, Cli::command()),
        Command::Man(args) => docs::cmd_man(&ui, args, Cli::command()),
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
        // Colours only for a person reading a terminal: `-v 2>log.txt`
        // writes plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

/// Asserts that each of `ok` parses and each of `bad` is refused (test
/// helper shared by every command's argument table).
#[cfg(test)]
pub fn assert_parse_table(ok: &[&str], bad: &[&str]) {
    for line in ok {
        Cli::try_parse_from(line.split(' ')).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    for line in bad {
        assert!(Cli::try_parse_from(line.split(' ')).is_err(), "{line} should fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn argument_lines_parse_or_fail() {
        let ok = [
            "git-ci run",
            "git-ci run main~3..main --job test --force",
            "git-ci submit --run true --env A=1 --require os=linux --timeout 5m --wait",
            "git-ci submit HEAD~1 --job test --job lint --json",
            "git-ci submit --job test --env CASE=x --queue gpu --require gpu=a100 --timeout 5m --repeat 20",
            "git-ci submit main~20..main --config-from main",
            "git-ci submit --config ci.toml --job test",
            "git-ci submit --run true --artifacts out/* --junit junit.xml --repeat 3",
            "git-ci run --run true",
            "git-ci run HEAD~3..HEAD --config ci.toml --job test",
            "git-ci worker --hub git://127.0.0.1/hub --queue a --label gpu=yes -j 4 --once --lease 10s",
            "git-ci worker --poll 2s --poll-max 1m",
            "git-ci worker --lease 1d --poll 1d --poll-max 1d --log-interval 1d",
            "git-ci submit --run true --timeout 7d",
            "git-ci status HEAD --json --limit 5",
            "git-ci show 20261122T040704123-0123456789ab --json",
            "git-ci log 20261122T040704123-0123456789ab --follow",
            "git-ci cancel 20261122T040704123-0123456789ab 20261122T040704123-0123456789ac",
            "git-ci retry 20261122T040704123-0123456789ab --wait",
            "git-ci wait 20261122T040704123-0123456789ab 20261122T040704123-0123456789ac --hub /srv/hub.git",
            "git-ci artifact 20261122T040704123-0123456789ab out/app.bin -o app.bin",
            "git-ci junit 20261122T040704123-0123456789ab -o all.xml",
            "git-ci worker --env-file secrets.env --require-signed --allowed-signers signers",
            "git-ci completions bash",
            "git-ci man --out /tmp/man",
            "git-ci --color never status",
            "git-ci status --color=always -q",
            "git-ci -vv run",
            "git-ci worker --once --log-format json",
            "git-ci worker --public-url http://build-7:{port} --max-instances 3",
            "git-ci instances --json",
            "git-ci stop-instance feature/x --job preview --no-wait",
            "git-ci submit --run true --worker w2",
            "git-ci claim --queue lab --label board=rpi4 --lease 10m --name a1 --json --checkout /tmp/x",
            "git-ci heartbeat 20261122T040704123-0123456789ab --json",
            "git-ci append-log 20261122T040704123-0123456789ab --token 0123",
            "git-ci complete 20261122T040704123-0123456789ab --status failed --exit-code -1 --junit a.xml --junit b.xml --artifact x --log l",
        ];
        let bad = [
            "git-ci",
            "git-ci submit --job test --run true",
            "git-ci submit --config a.toml --config-from main",
            "git-ci submit --config a.toml --run true",
            "git-ci submit --config-from main --run true",
            "git-ci run --run true --job test",
            "git-ci run --config a.toml --config-from main",
            "git-ci submit --repeat many",
            "git-ci worker --label novalue",
            "git-ci worker --lease soon",
            "git-ci worker --lease 10000y",
            "git-ci worker --lease 25h",
            "git-ci worker --poll 500000000000y",
            "git-ci worker --poll-max 2d",
            "git-ci worker --log-interval 2d",
            "git-ci submit --run true --timeout 0s",
            "git-ci submit --run true --timeout 8d",
            "git-ci show",
            "git-ci cancel",
            "git-ci wait",
            "git-ci junit 20261122T040704123-0123456789ab",
            "git-ci worker --require-signed",
            "git-ci completions tcsh",
            "git-ci man",
            "git-ci status --color sometimes",
            "git-ci status -q -v",
            "git-ci worker --log-format yaml",
            "git-ci stop-instance",
            "git-ci worker --max-instances many",
            "git-ci claim",
            "git-ci claim --queue lab --lease 2d",
            "git-ci complete 20261122T040704123-0123456789ab",
            "git-ci complete 20261122T040704123-0123456789ab --status maybe",
            "git-ci heartbeat",
        ];
        assert_parse_table(&ok, &bad);
    }
}
