use std::path::PathBuf;

use git_ci_core::HubError;

/// Why a site could not be built or published. Messages read well after
/// "failed to build the site: ".
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("could not write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("template {name} is invalid: {message}")]
    Template { name: String, message: String },
    #[error("could not read {what} from the hub: {message}")]
    Object { what: String, message: String },
    #[error("{0}")]
    Publish(String),
}

impl SiteError {
    pub(crate) fn template(name: &str, e: &minijinja::Error) -> SiteError {
        // minijinja keeps the template's line and the cause in a chain.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        SiteError::Template { name: name.to_owned(), message }
    }

    pub(crate) fn object(what: impl Into<String>, e: impl std::fmt::Display) -> SiteError {
        SiteError::Object { what: what.into(), message: e.to_string() }
    }
}
