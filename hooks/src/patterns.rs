//! Which pushed refs a job triggers on: the `branches` and `tags` patterns of
//! `.git-ci.toml`.
//!
//! `*` matches within one ref component (`release/*` takes `release/1.0`
//! but not `release/1.0/rc`), `**` crosses `/`, `?`, `[abc]` and `{a,b}`
//! work as in shells. A job without `branches` runs on every branch; a job
//! without `tags` runs on no tag.

use git_ci_core::pipeline::PipelineJob;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A ref the hook cares about, by its short name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind<'a> {
    Branch(&'a str),
    Tag(&'a str),
}

impl<'a> RefKind<'a> {
    /// `refs/heads/x` and `refs/tags/x`; everything else (`refs/ci/*`,
    /// notes, review refs) triggers nothing.
    pub fn of(refname: &'a str) -> Option<RefKind<'a>> {
        if let Some(b) = refname.strip_prefix("refs/heads/") {
            return Some(RefKind::Branch(b));
        }
        refname.strip_prefix("refs/tags/").map(RefKind::Tag)
    }

    pub fn short(self) -> &'a str {
        match self {
            RefKind::Branch(s) | RefKind::Tag(s) => s,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("job.{job}.{field}: {pattern:?} is not a valid pattern: {message}")]
pub struct PatternError {
    pub job: String,
    pub field: &'static str,
    pub pattern: String,
    pub message: String,
}

/// Whether a push to `target` runs `job`.
pub fn triggers(job: &PipelineJob, target: RefKind<'_>) -> Result<bool, PatternError> {
    let (field, patterns) = match target {
        RefKind::Branch(_) => match &job.branches {
            None => return Ok(true),
            Some(p) => ("branches", p.as_slice()),
        },
        RefKind::Tag(_) => ("tags", job.tags.as_slice()),
    };
    Ok(compile(&job.spec.name, field, patterns)?.is_match(target.short()))
}

fn compile(job: &str, field: &'static str, patterns: &[String]) -> Result<GlobSet, PatternError> {
    let err = |pattern: &str, message: String| PatternError {
        job: job.to_owned(),
        field,
        pattern: pattern.to_owned(),
        message,
    };
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| err(p, e.kind().to_string()))?;
        set.add(glob);
    }
    set.build().map_err(|e| err(&patterns.join(", "), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use git_ci_core::model::JobSpec;

    fn job(branches: Option<&[&str]>, tags: &[&str]) -> PipelineJob {
        PipelineJob {
            spec: JobSpec::ad_hoc("true"),
            branches: branches.map(|b| b.iter().map(|s| s.to_string()).collect()),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            supersede: true,
            needs: vec![],
            matrix: vec![],
            schedule: None,
        }
    }

    #[test]
    fn refs_are_classified() {
        assert_eq!(RefKind::of("refs/heads/release/1.0"), Some(RefKind::Branch("release/1.0")));
        assert_eq!(RefKind::of("refs/tags/v1"), Some(RefKind::Tag("v1")));
        assert_eq!(RefKind::of("refs/ci/queue/default/x"), None);
        assert_eq!(RefKind::of("refs/notes/ci"), None);
    }

    #[test]
    fn branch_patterns_match_like_ci_filters() {
        let j = job(Some(&["main", "release/*", "feature/**", "hot{fix,patch}-?"]), &[]);
        let cases = [
            ("main", true),
            ("mainline", false),
            ("release/1.0", true),
            ("release/1.0/rc", false),
            ("feature/a/b/c", true),
            ("hotfix-1", true),
            ("hotpatch-x", true),
            ("hotfix-12", false),
        ];
        for (branch, want) in cases {
            assert_eq!(triggers(&j, RefKind::Branch(branch)).unwrap(), want, "{branch}");
        }
    }

    #[test]
    fn defaults_are_every_branch_and_no_tag() {
        let j = job(None, &[]);
        assert!(triggers(&j, RefKind::Branch("any/thing")).unwrap());
        assert!(!triggers(&j, RefKind::Tag("v1.0")).unwrap());
        let tagged = job(Some(&[]), &["v*"]);
        assert!(triggers(&tagged, RefKind::Tag("v1.0")).unwrap());
        assert!(!triggers(&tagged, RefKind::Tag("x1.0")).unwrap());
        assert!(!triggers(&tagged, RefKind::Branch("main")).unwrap(), "an empty list matches nothing");
    }

    #[test]
    fn bad_patterns_name_the_job_and_field() {
        let e = triggers(&job(Some(&["release/[1"]), &[]), RefKind::Branch("main")).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("job.adhoc.branches: \"release/[1\" is not a valid pattern"), "{text}");
    }
}
