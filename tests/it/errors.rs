//! Every bad input gets a clear error and the documented exit code, and
//! nothing is queued.

use crate::env::TestEnv;

#[test]
fn a_malformed_pipeline_names_file_line_and_field() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.test]\nrun = \"true\"\ntimeout = \"soon\"\n");
    for args in [&["submit"][..], &["run"][..]] {
        let out = env.ci(&repo, args).expect(2);
        out.assert_clean_error();
        let err = out.stderr();
        assert!(err.contains(".git-ci.toml:3:"), "{err}");
        assert!(err.contains("soon"), "{err}");
        assert!(err.contains("nothing was queued"), "{err}");
    }
    assert!(env.ci_refs(&repo.join(".git")).is_empty(), "nothing queued");

    env.commit_file(&repo, ".git-ci.toml", "[job.test]\nrun = \"true\"\nrunn = 1\n", "typo");
    let err = env.ci(&repo, &["submit"]).expect(2).stderr();
    assert!(err.contains(":3:") && err.contains("unknown field `runn`"), "{err}");
}

#[test]
fn an_unknown_job_lists_the_defined_ones() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.test]\nrun = \"true\"\n[job.lint]\nrun = \"true\"\n");
    let out = env.ci(&repo, &["submit", "--job", "tset"]).expect(2);
    out.assert_clean_error();
    assert!(out.stderr().contains("\"tset\"") && out.stderr().contains("lint, test"), "{}", out.stderr());
    assert!(env.ci_refs(&repo.join(".git")).is_empty());
}

#[test]
fn a_missing_rev_or_pipeline_is_a_usage_error() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.test]\nrun = \"true\"\n");
    let out = env.ci(&repo, &["submit", "no-such-branch"]).expect(2);
    out.assert_clean_error();
    assert!(out.stderr().contains("no-such-branch"), "{}", out.stderr());
    env.ci(&repo, &["run", "nope..HEAD"]).expect(2).assert_clean_error();

    env.git(&repo, &["rm", "-q", ".git-ci.toml"]);
    env.git(&repo, &["commit", "-q", "-m", "no pipeline"]);
    let out = env.ci(&repo, &["run"]).expect(2);
    out.assert_clean_error();
    assert!(out.stderr().contains("has no .git-ci.toml"), "{}", out.stderr());

    let out = env.ci(&repo, &["show", "not-an-id"]).expect(2);
    out.assert_clean_error();
    let out = env.ci(&repo, &["show", "20261122T040704123-0123456789ab"]).expect(2);
    assert!(out.stderr().contains("no job"), "{}", out.stderr());
}

#[test]
fn an_unreachable_hub_exits_3_with_the_url_and_gits_words() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.test]\nrun = \"true\"\n");
    let url = format!("git://127.0.0.1:{}/nothing.git", crate::env::free_port());
    let out = env.ci(&repo, &["submit", "--hub", &url]).expect(3);
    out.assert_clean_error();
    assert!(out.stderr().contains(&url), "{}", out.stderr());
    assert!(out.stderr().to_lowercase().contains("connect"), "git's own message: {}", out.stderr());

    let missing = env.path("no-hub-here");
    let out = env.ci(&repo, &["status", "--hub", missing.to_str().unwrap()]).expect(3);
    out.assert_clean_error();
    assert!(out.stderr().contains("no-hub-here"), "{}", out.stderr());
}

#[test]
fn a_refused_push_exits_3_and_quotes_the_hub() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let hook = hub.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'pushes are frozen today' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let repo = env.project("p", "[job.test]\nrun = \"true\"\n");
    let url = format!("file://{}", hub.display());
    let out = env.ci(&repo, &["submit", "--hub", &url]).expect(3);
    out.assert_clean_error();
    assert!(out.stderr().contains("pushes are frozen today"), "{}", out.stderr());
    assert!(env.ci_refs(&hub).is_empty());
}

#[test]
fn bad_flags_are_usage_errors() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.test]\nrun = \"true\"\n");
    env.ci(&repo, &["worker", "--jobs", "0"]).expect(2).assert_clean_error();
    env.ci(&repo, &["worker", "--name", "a/b"]).expect(2).assert_clean_error();
    env.ci(&repo, &["submit", "--run", "true", "--queue", "../x"]).expect(2).assert_clean_error();
    env.ci(&repo, &["status", "--state", "bogus"]).expect(2).assert_clean_error();
    assert_eq!(env.ci(&repo, &["frobnicate"]).code(), 2);
}
