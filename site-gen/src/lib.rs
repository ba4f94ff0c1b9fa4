//! git-ci's report site: static HTML, SVG badges, JSON and an Atom feed,
//! rendered from a hub's `refs/ci/*` alone (DESIGN.md, "The report site").
//!
//! Pages need no JavaScript, escape every value, and forbid scripts and
//! inline styles with a Content-Security-Policy. A rebuild reads only what
//! each `done` chain gained since the last one, renders only pages whose
//! inputs changed, and writes only files whose bytes changed, each one
//! atomically: a web server never serves half a page.
#![forbid(unsafe_code)]

pub mod ansi;
pub mod badge;
pub mod bench;
mod digest;
mod error;
mod feed;
mod junit;
mod manifest;
mod model;
mod output;
mod parallel;
mod publish;
mod render;
mod slug;
mod templates;
mod watch;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use git_ci_core::Hub;

pub use error::SiteError;
pub use manifest::STATE_DIR;
pub use output::Stats;
pub use publish::{Published, branch_ref, publish};
pub use watch::Watch;

use manifest::Manifest;
use output::Output;
use render::{Build, Renderer};
use templates::Sources;

/// How to build a site.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the site goes; it also holds the manifest of the last build.
    pub out: PathBuf,
    /// A folder of templates that replace or add to the built-in ones.
    pub templates: Option<PathBuf>,
    /// The site's public URL, for the feed's links (relative without it).
    pub base_url: Option<String>,
    /// Rows of finished commits on the index page (a commit's jobs on one
    /// branch make one row; an ad-hoc job makes its own).
    pub recent: usize,
    /// Bytes of a log shown in its page; past it, head and tail.
    pub log_limit: usize,
    /// Artifacts larger than this are listed but not copied in.
    pub max_artifact: u64,
    /// Ignore the last build's inputs (still leaving unchanged files alone).
    pub full: bool,
}

impl Options {
    pub fn new(out: impl Into<PathBuf>) -> Options {
        Options {
            out: out.into(),
            templates: None,
            base_url: None,
            recent: 50,
            log_limit: 4 << 20,
            max_artifact: 64 << 20,
            full: false,
        }
    }
}

/// Where a long build is, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Reading finished jobs the last build did not have.
    Reading { done: usize, total: usize },
    /// Going through job pages (most are skipped on a rebuild).
    Rendering { done: usize, total: usize },
}

/// What a build did.
#[derive(Clone, Debug)]
pub struct Report {
    pub jobs: usize,
    pub stats: Stats,
    pub elapsed: Duration,
}

/// A site generator: templates compiled once, built as often as asked.
pub struct Site {
    options: Options,
    sources: Sources,
    renderer: Renderer,
}

impl Site {
    pub fn new(options: Options) -> Result<Site, SiteError> {
        let sources = Sources::load(options.templates.as_deref())?;
        let renderer = Renderer::new(&sources)?;
        Ok(Site { options, sources, renderer })
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Builds (or brings up to date) the site from `hub`.
    pub fn build(&self, hub: &dyn Hub, progress: &dyn Fn(Progress)) -> Result<Report, SiteError> {
        let started = Instant::now();
        let mut manifest = Manifest::load(&self.options.out);
        if self.options.full {
            manifest.forget_inputs();
        }
        let data = model::load(hub, &mut manifest, progress)?;
        let b = Build::new(&self.options, &self.sources, &self.renderer, hub, &data);
        let mut out = Output::new(&self.options.out, std::mem::take(&mut manifest.units));

        render::render_assets(&b, &mut out)?;
        render::render_jobs(&b, &mut out, progress)?;
        render::render_commits(&b, &mut out)?;
        render::render_branch_pages(&b, &mut out)?;
        render::render_runs(&b, &mut out)?;
        render::render_badges(&b, &mut out)?;
        render::render_matrix(&b, &mut out)?;
        render::render_projects(&b, &mut out)?;
        render::render_days(&b, &mut out)?;
        render::render_history(&b, &mut out)?;
        render::render_index(&b, &mut out)?;
        render::render_queue(&b, &mut out)?;
        render::render_workers(&b, &mut out)?;
        render::render_api_index(&b, &mut out)?;
        feed::render_feed(&b, &mut out)?;

        let (units, stats) = out.finish()?;
        drop(b);
        let jobs = data.rows.len();
        manifest.units = units;
        manifest.rows = data.rows.into_iter().filter(|r| !r.is_live()).collect();
        manifest.commits = data.commits;
        manifest.save(&self.options.out)?;
        Ok(Report { jobs, stats, elapsed: started.elapsed() })
    }
}
