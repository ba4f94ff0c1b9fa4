//! `git ci completions` and `git ci man`: generated from the command
//! definition itself.

use clap::Args;

use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Print a shell completion script.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci completions bash > ~/.local/share/bash-completion/completions/git-ci\n  git ci completions zsh > ~/.zfunc/_git-ci"
)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Write man pages for git-ci and every subcommand.
///
/// `git ci --help` is answered by git with `man git-ci`: put DIR/man1 on
/// your MANPATH (or write into ~/.local/share/man/man1).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci man --out ~/.local/share/man/man1")]
pub struct ManArgs {
    /// The directory to write `git-ci.1`, `git-ci-run.1`... into.
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,
}

/// `root` is the whole command line's definition, the `Cli` of `commands`.
pub fn cmd_completions(args: CompletionsArgs, mut root: clap::Command) -> CliResult {
    let cmd = &mut root;
    clap_complete::generate(args.shell, cmd, "git-ci", &mut std::io::stdout());
    Ok(())
}

pub fn cmd_man(ui: &Ui, args: ManArgs, root: clap::Command) -> CliResult {
    let fail =
        |e: std::io::Error| CliError::usage(format!("could not write man pages into {}: {e}", args.out.display()));
    std::fs::create_dir_all(&args.out).map_err(fail)?;
    // Pages are named as git looks them up: `git ci run --help` -> git-ci-run(1).
    let cmd = root.name("git-ci").bin_name("git ci");
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
