//! Telling a hub that refuses us from a hub that is down.
//!
//! git exits 128 either way; only its words differ. A refusal (bad
//! credentials, no rights, a repository git will not trust, nothing at
//! that address) stays until someone fixes it, so retrying every poll only
//! fills the log and, with a credential helper, erases the saved password
//! of every other worker of the account at each try. The texts below are
//! git's (2.3x–2.4x) and the usual hosts', matched in lower case.

/// Why the hub will not let us in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// Credentials missing or wrong (HTTP 401, ssh keys).
    Auth,
    /// Known, but not allowed this (HTTP 403, a read-only hub).
    Permission,
    /// No repository at that address.
    Missing,
    /// git will not use a repository owned by another user.
    Ownership,
}

impl Denial {
    /// Reads git's stderr; `None` when it does not say the hub refused.
    pub fn classify(stderr: &str) -> Option<Denial> {
        let text = stderr.to_lowercase();
        let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        if has(&["detected dubious ownership", "unsafe repository"]) {
            Some(Denial::Ownership)
        } else if has(&[
            "authentication failed",
            "could not read username",
            "could not read password",
            "permission denied (publickey",
            "host key verification failed",
            "access denied: invalid",
            "http basic: access denied",
            "the requested url returned error: 401",
            "invalid username or password",
        ]) {
            Some(Denial::Auth)
        } else if has(&[
            "the requested url returned error: 403",
            "permission denied",
            "permission to ",
            "insufficient permission",
            "you are not allowed to push",
            "write access to repository not granted",
            "read-only",
            // git daemon says this of a repository it does not serve for
            // this service (pushes without --enable=receive-pack) and of
            // one that is not there.
            "access denied or repository not exported",
        ]) {
            Some(Denial::Permission)
        } else if has(&[
            "does not appear to be a git repository",
            "repository not found",
            "the requested url returned error: 404",
            "no such repository",
        ]) {
            Some(Denial::Missing)
        } else {
            None
        }
    }

    /// A few words for messages: `the hub {hub} refused access ({what})`.
    pub fn what(self) -> &'static str {
        match self {
            Denial::Auth => "authentication failed",
            Denial::Permission => "permission denied",
            Denial::Missing => "no repository at that address",
            Denial::Ownership => "git does not trust the repository's owner",
        }
    }

    /// What someone has to do before trying again helps.
    pub fn fix(self) -> &'static str {
        match self {
            Denial::Auth => {
                "check the credentials this user reaches the hub with: the user and token in the hub's URL, \
                 git's credential helper (`git credential fill`), or the ssh key (`ssh -T` to the host)"
            }
            Denial::Permission => {
                "give this user push rights to refs/ci/* on the hub; a `git daemon` hub needs \
                 --enable=receive-pack (it says \"access denied or repository not exported\" of a wrong path too)"
            }
            Denial::Missing => {
                "check the hub's address (`--hub`, `git config ci.hub`, $GIT_CI_HUB or the remote origin): \
                 `git ls-remote ADDRESS` must work from here"
            }
            Denial::Ownership => {
                "the hub belongs to another user: run git-ci as that user, or trust the hub with \
                 `git config --global --add safe.directory PATH`"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Denial;

    #[test]
    fn refusals_are_told_from_outages() {
        let cases = [
            ("fatal: Authentication failed for 'https://h/x.git/'", Some(Denial::Auth)),
            ("fatal: could not read Username for 'https://h': terminal prompts disabled", Some(Denial::Auth)),
            (
                "git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.",
                Some(Denial::Auth),
            ),
            ("fatal: unable to access 'https://h/x/': The requested URL returned error: 403", Some(Denial::Permission)),
            ("fatal: remote error: access denied or repository not exported: /hub.git", Some(Denial::Permission)),
            ("ERROR: Permission to o/r.git denied to bob.", Some(Denial::Permission)),
            ("fatal: '/nope' does not appear to be a git repository", Some(Denial::Missing)),
            ("remote: Repository not found.\nfatal: repository 'https://h/x/' not found", Some(Denial::Missing)),
            ("fatal: detected dubious ownership in repository at '/srv/hub.git'", Some(Denial::Ownership)),
            ("fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused", None),
            ("fatal: unable to access 'https://h/': Could not resolve host: h", None),
            ("ssh: connect to host h port 22: Connection timed out", None),
            ("fatal: the remote end hung up unexpectedly", None),
        ];
        for (stderr, want) in cases {
            assert_eq!(Denial::classify(stderr), want, "{stderr}");
        }
    }
}
