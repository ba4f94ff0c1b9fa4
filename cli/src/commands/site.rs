//! `git ci site build|publish`: the static report site (git-ci-site).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use git_ci_core::Hub;
use git_ci_site::{Options, Progress, Report, Site, SiteError, Watch};

use crate::cli::{HubArgs, parse_duration};
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Render the report site: static HTML, status badges, JSON and a feed.
///
/// The site is read from the hub's refs alone and needs no server: any web
/// server or Pages host serves it. Pages work without JavaScript.
#[derive(Debug, Args)]
pub struct SiteArgs {
    #[command(subcommand)]
    pub command: SiteCommand,
}

#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    Build(SiteBuildArgs),
    Publish(SitePublishArgs),
}

/// How the site looks and links; shared by build and publish.
#[derive(Debug, Args, Clone, Default)]
pub struct LookArgs {
    /// A folder of templates replacing the built-in ones of the same name
    /// (index.html, job.html, style.css...).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// The site's public URL, for absolute links in the Atom feed.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Render every page, not only those whose jobs changed.
    #[arg(long)]
    pub full: bool,
}

/// Render the site into a folder. A second run renders only what changed
/// since the first, and every file is replaced atomically, so a web server
/// may serve the folder while it is rebuilt.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci site build --out public\n  git ci site build --out /srv/www/ci --watch\n  git ci site build --out public --templates ci-templates --base-url https://ci.example.com/"
)]
pub struct SiteBuildArgs {
    /// Where the site goes (created if needed; default: git config ci.siteDir).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Keep running: rebuild whenever the hub's refs change.
    #[arg(long)]
    pub watch: bool,
    /// With --watch, how often to look at a remote hub (a local one is
    /// watched for changes).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration, requires = "watch")]
    pub poll: Duration,
    #[command(flatten)]
    pub look: LookArgs,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Build the site and commit it as a new commit on a branch of the hub
/// (parent: the branch's previous tip), for GitHub or GitLab Pages or any
/// host that serves a branch. Prints the new commit's id.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci site publish --branch ci-pages\n  git ci site publish --branch gh-pages --hub git@github.com:me/project.git"
)]
pub struct SitePublishArgs {
    /// The branch to commit the site onto; created if needed.
    #[arg(long, value_name = "B")]
    pub branch: String,
    /// Where to build the site first (default: a folder in git-ci's cache,
    /// kept between runs so that each publish renders only what changed).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub look: LookArgs,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_site(ui: &Ui, args: SiteArgs) -> CliResult {
    match args.command {
        SiteCommand::Build(args) => cmd_build(ui, args),
        SiteCommand::Publish(args) => cmd_publish(ui, args),
    }
}

fn open_hub(hub: &HubArgs) -> CliResult<std::sync::Arc<dyn Hub>> {
    let repo = context::user_repo();
    // Its own cache repository on a remote hub: publishing writes the
    // site's objects there, which other commands need not carry.
    context::hub(hub.hub.as_deref(), repo.as_ref(), "site")
}

fn site(out: PathBuf, look: &LookArgs) -> CliResult<Site> {
    let mut options = Options::new(out);
    options.templates = look.templates.clone();
    options.base_url = look.base_url.clone();
    options.full = look.full;
    Site::new(options).map_err(site_error)
}

fn cmd_build(ui: &Ui, args: SiteBuildArgs) -> CliResult {
    let out = match args.out.clone() {
        Some(out) => out,
        None => crate::settings::GitConfig::load(context::user_repo().as_ref())
            .string("ci.siteDir")
            .map(PathBuf::from)
            .ok_or_else(|| CliError::usage_hint("no --out given", "pass --out DIR, or `git config ci.siteDir DIR`"))?,
    };
    let hub = open_hub(&args.hub)?;
    let site = site(out, &args.look)?;
    build(ui, &site, &*hub)?;
    if !args.watch {
        return Ok(());
    }
    // Ctrl-C ends the loop anywhere: pages are replaced atomically and
    // the manifest is written last, so the next build picks up cleanly.
    let mut watch = Watch::new(&*hub, args.poll).map_err(site_error)?;
    ui.err(&format!("watching {} for changes (Ctrl-C stops)", hub.url()));
    loop {
        if let Err(e) = watch.wait(&*hub) {
            let why = site_error(e).report().unwrap_or_default();
            ui.err(&format!("{why}\nwarning: trying again in {}", human(args.poll)));
            std::thread::sleep(args.poll);
            continue;
        }
        // A failed rebuild (the hub unreachable for a moment) is reported,
        // and the next change tries again.
        if let Err(e) = build(ui, &site, &*hub) {
            ui.err(&e.report().unwrap_or_default());
        }
    }
}

fn cmd_publish(ui: &Ui, args: SitePublishArgs) -> CliResult {
    // Before a build that may take a while.
    git_ci_site::branch_ref(&args.branch).map_err(site_error)?;
    let hub = open_hub(&args.hub)?;
    let out = args.out.unwrap_or_else(|| git_ci_core::hub::cache_root().join("sites").join(hub.cache_key()));
    let site = site(out.clone(), &args.look)?;
    build(ui, &site, &*hub)?;
    let published = git_ci_site::publish(&*hub, &out, &args.branch).map_err(site_error)?;
    let short = &published.commit.to_string()[..10];
    if published.changed {
        ui.err(&format!("published {} files on {} as {short}", published.files, published.refname));
    } else {
        ui.err(&format!("{} already holds this site ({short}); nothing to publish", published.refname));
    }
    ui.out(&published.commit.to_string());
    Ok(())
}

/// One build, with a progress bar on a terminal and a summary line.
fn build(ui: &Ui, site: &Site, hub: &dyn Hub) -> CliResult<Report> {
    let bar = ui.interactive.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:>9} [{bar:30}] {pos}/{len} jobs")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar
    });
    let progress = |p: Progress| {
        let Some(bar) = &bar else { return };
        let (msg, done, total) = match p {
            Progress::Reading { done, total } => ("reading", done, total),
            Progress::Rendering { done, total } => ("rendering", done, total),
        };
        // Small rebuilds finish before a bar is worth drawing.
        if total >= 500 {
            bar.set_message(msg);
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    };
    let report = site.build(hub, &progress);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = report.map_err(site_error)?;
    let s = report.stats;
    ui.err(&format!(
        "site: {} jobs; {} files written, {} unchanged, {} removed; {} pages kept as they were; {} -> {}",
        report.jobs,
        s.written,
        s.unchanged,
        s.removed,
        s.kept,
        human(report.elapsed),
        site.options().out.join("index.html").display()
    ));
    Ok(report)
}

fn human(d: Duration) -> String {
    git_ci_core::time::human_duration(d)
}

fn site_error(e: SiteError) -> CliError {
    match e {
        SiteError::Hub(error) => CliError::Hub { error, hint: None },
        SiteError::Template { .. } => CliError::usage_hint(e.to_string(), "fix the template in the --templates folder"),
        SiteError::Publish(message) => CliError::usage(message),
        other => CliError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn argument_lines_parse_or_fail() {
        let ok = [
            "git-ci site build --out public",
            "git-ci site build --out public --watch --poll 30s --hub git://127.0.0.1/hub",
            "git-ci site build --out public --templates t --base-url https://ci.example.com/ --full",
            "git-ci site publish --branch ci-pages",
            "git-ci site publish --branch gh-pages --out site --hub /srv/hub.git",
        ];
        let bad = [
            "git-ci site",
            "git-ci site build --out x --poll 5s",
            "git-ci site build --out x --poll soon --watch",
            "git-ci site publish",
            "git-ci site publish --branch",
        ];
        crate::commands::assert_parse_table(&ok, &bad);
    }
}
