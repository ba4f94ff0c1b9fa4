//! `git ci completions` and `git ci man`: generated from the command
//! definition itself.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

pub fn cmd_completions(args: CompletionsArgs) -> CliResult {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "git-ci", &mut std::io::stdout());
    Ok(())
}

pub fn cmd_man(ui: &Ui, args: ManArgs) -> CliResult {
    let fail =
        |e: std::io::Error| CliError::usage(format!("could not write man pages into {}: {e}", args.out.display()));
    std::fs::create_dir_all(&args.out).map_err(fail)?;
    // Pages are named as git looks them up: `git ci run --help` -> git-ci-run(1).
    let cmd = Cli::command().name("git-ci").bin_name("git ci");
    let mut written = 0;
    for page in pages(cmd, "git-ci") {
        let (name, cmd) = page;
        let mut bytes = Vec::new();
        clap_mangen::Man::new(cmd).title(name.to_uppercase()).render(&mut bytes).map_err(fail)?;
        std::fs::write(args.out.join(format!("{name}.1")), bytes).map_err(fail)?;
        written += 1;
    }
    ui.err(&format!("wrote {written} man pages into {}", args.out.display()));
    Ok(())
}

/// The command and every subcommand, recursively, with their page names.
fn pages(cmd: clap::Command, name: &str) -> Vec<(String, clap::Command)> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let sub_name = format!("{name}-{}", sub.get_name());
        out.extend(pages(sub.clone().name(sub_name.clone()), &sub_name));
    }
    out.insert(0, (name.to_owned(), cmd));
    out
}
