//! `git ci doctor`: check a hub end to end and say what to fix.

use std::time::SystemTime;

use clap::Args;
use git_ci_core::hub::{HubLocation, locate};
use git_ci_hooks::doctor::{self, Check, Level};

use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Check git, the hub and its workers, and say what to fix.
///
/// Checks the git version, that the hub answers and takes pushes to
/// refs/ci/*, and for a hub on this machine its owner (against the user
/// doctor runs as), its post-receive hook and durability settings; then the
/// workers registered and when they were last seen, claims past their
/// lease, cancel requests left over from finished jobs and jobs pending for
/// over an hour. A hub on this machine is only read, never written. Exits 0
/// when all is well, 1 when something needs fixing.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  git ci doctor\n  git ci doctor --hub /srv/ci-hub.git")]
pub struct DoctorArgs {
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_doctor(ui: &Ui, args: DoctorArgs) -> CliResult {
    let mut checks = vec![doctor::git_version()];
    let repo = context::user_repo();
    match locate(args.hub.hub.as_deref(), repo.as_ref()) {
        None => checks.push(Check::problem("no hub given", "pass --hub URL, or `git config ci.hub URL` in your clone")),
        Some((location, source)) => {
            checks.push(Check::info(format!("hub {} (from {source})", location.display())));
            match context::open_at(&location, repo.as_ref(), "client") {
                Err(e) => checks.push(Check::problem(e.to_string(), "check the hub's path or URL")),
                Ok(hub) => {
                    let local = match &location {
                        HubLocation::Path(p) => Some(p.as_path()),
                        HubLocation::Url(_) => None,
                    };
                    checks.extend(doctor::hub(&*hub, local, SystemTime::now()));
                }
            }
        }
    }
    match crate::settings::effective(repo.as_ref()) {
        Ok(settings) => {
            for (what, value, source) in settings {
                checks.push(Check::info(format!("{what}: {value} ({source})")));
            }
        }
        Err(e) => {
            let message = e.report().unwrap_or_default().replace("error: ", "").replace("\nhint: ", "; ");
            checks.push(Check::problem(message, "fix the value with `git config`"));
        }
    }
    let problems = checks.iter().filter(|c| c.level == Level::Problem).count();
    for c in &checks {
        print(ui, c);
    }
    if problems == 0 {
        ui.out("all is well");
        return Ok(());
    }
    ui.out(&format!("{problems} thing(s) to fix"));
    // Exit 1 with nothing more to print: the findings were the output.
    Err(CliError::Findings)
}

fn print(ui: &Ui, c: &Check) {
    let tag = match c.level {
        Level::Ok => "ok  ",
        Level::Info => "note",
        Level::Problem => "FIX ",
    };
    // git's messages can span lines: keep them under their tag.
    ui.out(&format!("{tag}  {}", c.what.trim_end().replace('\n', "\n      ")));
    if let Some(fix) = &c.fix {
        ui.out(&format!("      fix: {fix}"));
    }
}
