//! Reading `git push --porcelain`, so that a lost compare-and-swap is told
//! apart from a hub that said no (NOTES.md has the texts we measured).

/// One `<flag>\t<from>:<to>\t<summary>` line.
#[derive(Debug, PartialEq, Eq)]
pub struct RefStatus {
    pub flag: char,
    pub refname: String,
    pub summary: String,
}

impl RefStatus {
    pub fn rejected(&self) -> bool {
        self.flag == '!'
    }

    /// The hub moved this ref as asked: created, updated or deleted it. A
    /// ref that already held the value (`=`, a lease-checked verify) sent
    /// the hub no command at all, so nothing was applied to it.
    pub fn applied(&self) -> bool {
        matches!(self.flag, ' ' | '+' | '-' | '*')
    }

    /// The part in parentheses: `stale info`, `atomic transaction failed`...
    pub fn reason(&self) -> &str {
        self.summary.split_once('(').map_or(self.summary.as_str(), |(_, r)| r.trim_end_matches(')'))
    }

    /// This ref's rejection is only a consequence of another ref's in an
    /// atomic push.
    pub fn only_atomic(&self) -> bool {
        let r = self.reason();
        r.contains("atomic transaction failed") || r.contains("atomic push failed")
    }
}

pub fn parse(stdout: &str) -> Vec<RefStatus> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let flag = parts.next()?;
            let spec = parts.next()?;
            let summary = parts.next()?;
            let flag = match flag.as_bytes() {
                [f] => *f as char,
                _ => return None,
            };
            let refname = spec.rsplit_once(':').map_or(spec, |(_, to)| to).to_owned();
            Some(RefStatus { flag, refname, summary: summary.to_owned() })
        })
        .collect()
}

/// The refs the hub names in `remote: error: cannot lock ref '<ref>': …`
/// lines, with the rest of each line. An atomic push whose lease held on
/// the client but not on the hub (another push moved the ref between the
/// hub's ref advertisement and its transaction) comes back with every ref
/// `(atomic transaction failed)`; only this line says which ref lost.
pub fn locked_refs(stderr: &str) -> Vec<(&str, &str)> {
    const SAYS: &str = "cannot lock ref '";
    stderr
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find(SAYS)? + SAYS.len()..];
            let (name, why) = rest.split_once('\'')?;
            Some((name, why.trim_start_matches(':').trim()))
        })
        .collect()
}

/// Texts by which git says a lease or a lock lost to someone else's update.
pub fn is_race(text: &str) -> bool {
    const RACES: [&str; 6] = [
        "stale info",
        "reference already exists",
        "but expected",
        "cannot lock ref",
        "incorrect old value",
        "failed to lock",
    ];
    RACES.iter().any(|r| text.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_races_are_recognised() {
        let out = "To /tmp/hub\n!\t5b0a...:refs/ci/claims/x\t[rejected] (stale info)\n!\t:refs/ci/queue/d/x\t[rejected] (atomic push failed)\nDone\n";
        let st = parse(out);
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].refname, "refs/ci/claims/x");
        assert!(st[0].rejected() && is_race(st[0].reason()));
        assert!(st[1].only_atomic());
        assert_eq!(st[1].refname, "refs/ci/queue/d/x");
    }

    #[test]
    fn a_push_applied_in_part_says_which_refs_moved() {
        // git 2.47 over git daemon, a connectivity check that raced another push.
        let out = "To git://127.0.0.1/hub\n!\t1f2e:refs/ci/done/w1\t[remote rejected] (missing necessary objects)\n-\t:refs/ci/queue/default/x\t[deleted]\n-\t:refs/ci/claims/x\t[deleted]\nDone\n";
        let st = parse(out);
        assert_eq!(st.iter().filter(|s| s.applied()).count(), 2);
        assert!(st[0].rejected() && !st[0].applied() && !is_race(st[0].reason()));
        // A verify is `=` whether or not the push went through.
        let failed = "!\tab:refs/ci/claims/x\t[remote rejected] (atomic transaction failed)\n=\tcd:refs/ci/queue/default/x\t[up to date]\n";
        assert!(parse(failed).iter().all(|s| !s.applied()));
    }

    #[test]
    fn the_ref_that_lost_on_the_hub_is_read_from_its_error() {
        // git 2.47 over git daemon: a claim that lost after the hub's ref
        // advertisement; the porcelain blames no ref in particular.
        let stderr = "remote: error: cannot lock ref 'refs/ci/queue/default/j': is at 7888 but expected b5e8        \n\
                      error: failed to push some refs to 'git://127.0.0.1:40919/hub.git'\n";
        assert_eq!(locked_refs(stderr), [("refs/ci/queue/default/j", "is at 7888 but expected b5e8")]);
        assert!(locked_refs("error: failed to push some refs to 'x'\n").is_empty());
    }

    #[test]
    fn other_lines_are_ignored() {
        assert!(parse("To git://x\nDone\n").is_empty());
        let ok = parse("*\tabc:refs/ci/claims/y\t[new reference]\n");
        assert_eq!(ok[0].flag, '*');
        assert!(!ok[0].rejected());
    }
}
