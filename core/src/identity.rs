//! The identity on every commit git-ci writes (`done` and `archive`
//! chains, the site's pages branch). A leaf, so that the hubs, which
//! mirror refs with it, need not reach up into `done`.

/// `git-ci <git-ci@localhost>`, now.
pub fn signature() -> gix::actor::Signature {
    gix::actor::Signature { name: "git-ci".into(), email: "git-ci@localhost".into(), time: gix::date::Time::now_utc() }
}
