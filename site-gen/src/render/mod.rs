//! Turning the model into files. Each submodule renders one kind of page;
//! [`Build`] is what they share: the data, its groupings, the templates.

mod api;
mod assets;
mod branches;
mod commit_rows;
mod commits;
mod failing_tests;
mod groups;
mod history;
mod index;
mod job;
mod live;
pub mod paths;
mod pipeline;
mod projects;
mod runs;
mod verdict;
pub mod view;

use std::time::SystemTime;

use git_ci_core::Hub;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};

pub use api::render_api_index;
pub use assets::render_assets;
pub use branches::{render_badges, render_branch_pages, render_matrix};
pub use commits::render_commits;
pub use groups::Groups;
pub use history::{render_days, render_history};
pub use index::render_index;
pub use job::render_jobs;
pub use live::{render_queue, render_workers};
pub use projects::render_projects;
pub use runs::render_runs;

use crate::Options;
use crate::digest::{Digest, Key};
use crate::error::SiteError;
use crate::model::{Data, Row};
use crate::templates::Sources;

/// The compiled templates.
pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    pub fn new(sources: &Sources) -> Result<Renderer, SiteError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| match name.rsplit('.').next() {
            Some("html" | "htm" | "xml" | "svg" | "atom") => AutoEscape::Html,
            _ => AutoEscape::None,
        });
        // Every value is HTML-escaped (minijinja would also escape `/`, which
        // needs no escaping), after losing the control characters that XML
        // refuses and terminals' colour codes, which mean nothing here.
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(s) if !value.is_safe() && *state.auto_escape() == AutoEscape::Html => {
                out.write_str(&crate::ansi::escape(&crate::ansi::plain(s))).map_err(Into::into)
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        // A misspelt field is an error in tests, not an empty cell in prod.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("when", |s: &str| view::when(s));
        env.add_filter("duration", |ms: u64| view::duration(ms));
        env.add_filter("thousands", |n: u64| view::thousands(n));
        for (name, source) in &sources.files {
            env.add_template_owned(name.clone(), source.clone()).map_err(|e| SiteError::template(name, &e))?;
        }
        Ok(Renderer { env })
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, SiteError> {
        let template = self.env.get_template(name).map_err(|e| SiteError::template(name, &e))?;
        template.render(ctx).map_err(|e| SiteError::template(name, &e))
    }
}

/// What every render step reads.
pub struct Build<'a> {
    pub options: &'a Options,
    pub renderer: &'a Renderer,
    /// The hub's object store, shareable between rendering threads.
    repo: gix::ThreadSafeRepository,
    pub data: &'a Data,
    pub groups: Groups<'a>,
    /// Mixed into every page key: templates, this crate's version and the
    /// options that change pages. Changing any of them re-renders all.
    pub salt: Digest,
}

impl<'a> Build<'a> {
    pub fn new(
        options: &'a Options,
        sources: &Sources,
        renderer: &'a Renderer,
        hub: &'a dyn Hub,
        data: &'a Data,
    ) -> Build<'a> {
        let mut salt = Key::new("salt");
        salt.digest(sources.digest)
            .u64(options.log_limit as u64)
            .u64(options.max_artifact)
            .u64(options.recent as u64)
            .str(options.base_url.as_deref().unwrap_or_default());
        Build { options, renderer, repo: hub.repo().into_sync(), data, groups: Groups::new(data), salt: salt.finish() }
    }

    /// A handle on the object store for this thread.
    pub fn repo(&self) -> gix::Repository {
        self.repo.to_thread_local()
    }

    /// A key for a page of kind `kind`, salted.
    pub fn key(&self, kind: &str) -> Key {
        let mut k = Key::new(kind);
        k.digest(self.salt);
        k
    }

    /// Adds what a list row shows to a key: the job and its commit.
    pub fn key_row(&self, k: &mut Key, row: &Row) {
        row.fingerprint(k);
        match self.data.commit(&row.commit) {
            Some(c) => k.str(&c.subject).str(&c.author).str(&c.time),
            None => k.str(""),
        };
    }

    /// Renders a page of the site: `root` leads from the page back to the
    /// site's top (`""` or `"../"`), `nav` names the menu entry to mark.
    pub fn page(&self, template: &str, root: &str, title: &str, nav: &str, page: Value) -> Result<Vec<u8>, SiteError> {
        let ctx = context! {
            root => root,
            title => title,
            nav => nav,
            version => env!("CARGO_PKG_VERSION"),
            ..page
        };
        Ok(self.renderer.render(template, ctx)?.into_bytes())
    }

    /// A job as list rows show it.
    pub fn item(&'a self, row: &'a Row) -> view::JobItem<'a> {
        view::JobItem::new(row, self.data.commit(&row.commit), None)
    }

    /// A job as live lists show it, with its age.
    pub fn live_item(&'a self, row: &'a Row) -> view::JobItem<'a> {
        view::JobItem::new(row, self.data.commit(&row.commit), Some(self.data.now))
    }

    pub fn now(&self) -> SystemTime {
        self.data.now
    }
}

/// A serde value as a template value.
pub fn value<T: serde::Serialize>(v: T) -> Value {
    Value::from(Serde(v))
}
