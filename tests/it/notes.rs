//! `git ci notes`: job states as git notes under refs/notes/ci.

use std::collections::BTreeMap;
use std::path::Path;

use crate::env::TestEnv;

const PIPELINE: &str = "[job.check]\nrun = \"test ! -f broken\"\n\n[job.lint]\nrun = \"true\"\n";

/// Every commit's ci note, as `git log --notes=ci` shows it: commit -> lines.
fn notes(env: &TestEnv, repo: &Path) -> BTreeMap<String, Vec<String>> {
    let log = env.git(repo, &["log", "--notes=ci", "--format=%H%n%N"]);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in log.lines().filter(|l| !l.is_empty()) {
        if line.len() == 40 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
            current = line.to_owned();
            out.entry(current.clone()).or_default();
        } else {
            out.get_mut(&current).expect("a note follows its commit").push(line.to_owned());
        }
    }
    out.retain(|_, lines| !lines.is_empty());
    out
}

/// The note's lines without what changes from run to run (durations, ids).
fn states(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| l.split(" (").next().unwrap().to_owned()).collect()
}

#[test]
fn notes_show_each_commits_jobs_and_are_replaced_not_appended() {
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    let first = env.git(&repo, &["rev-parse", "HEAD"]);
    env.ci(&repo, &["run", "HEAD"]).expect(0);
    let good = env.commit_file(&repo, "a.txt", "a", "good change");
    let bad = env.commit_file(&repo, "broken", "x", "bad change");
    env.ci(&repo, &["run", &format!("{first}..HEAD")]).expect(1);
    // A note someone wrote by hand, on a commit outside the range.
    env.git(&repo, &["notes", "--ref=ci", "add", "-m", "hand-written", &first]);

    let range = format!("{first}..HEAD");
    let dry = env.ci(&repo, &["notes", &range, "--dry-run"]).expect(0);
    assert!(dry.stdout().contains(&format!("commit {bad}\n    check: failed (")), "{}", dry.stdout());
    assert_eq!(notes(&env, &repo).len(), 1, "--dry-run writes nothing");

    let wrote = env.ci(&repo, &["notes", &range]).expect(0);
    assert!(wrote.stderr().contains("wrote notes for 2 commits"), "{}", wrote.stderr());
    let all = notes(&env, &repo);
    assert_eq!(states(&all[&good]), ["check: passed", "lint: passed"]);
    assert_eq!(states(&all[&bad]), ["check: failed", "lint: passed"]);
    assert!(all[&bad][0].contains(", worker ") && all[&bad][0].contains(", job "), "{:?}", all[&bad]);
    assert_eq!(all[&first], ["hand-written"], "outside the range: untouched");

    // Other runs of one job: still one line for it, its latest run, with a
    // count (issue 17 item 10: 444 lines for a commit of many ad-hoc runs).
    env.ci(&repo, &["run", "--force", "--job", "check", "HEAD"]).expect(1);
    env.ci(&repo, &["run", "--force", "--job", "check", "HEAD"]).expect(1);
    env.ci(&repo, &["notes", &range]).expect(0);
    let again = notes(&env, &repo);
    assert_eq!(states(&again[&bad]), ["check: failed", "lint: passed"]);
    assert_ne!(again[&bad][0], all[&bad][0], "the latest run, not the first");
    assert!(again[&bad][0].ends_with(", latest of 3 runs)"), "{:?}", again[&bad]);
    assert_eq!(again[&bad][1], all[&bad][1]);
    assert_eq!(again[&good], all[&good]);
    assert_eq!(again[&first], ["hand-written"]);

    // The default range (the last commits of HEAD) reaches the first commit.
    let unchanged = env.ci(&repo, &["notes"]).expect(0);
    assert!(unchanged.stderr().contains("for 3 commits"), "{}", unchanged.stderr());
    assert_eq!(states(&notes(&env, &repo)[&first]), ["check: passed", "lint: passed"]);
    let history = env.git(&repo, &["rev-list", "--count", "refs/notes/ci"]);
    assert_eq!(history, "4", "one notes commit per write: the hand-written one and three of ours");
}

#[test]
fn a_commit_without_jobs_gets_no_note_and_a_fanned_out_note_is_replaced() {
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    let head = env.git(&repo, &["rev-parse", "HEAD"]);
    let plain = env.commit_file(&repo, "a.txt", "a", "no jobs run here");
    env.ci(&repo, &["run", "HEAD~1"]).expect(0);

    // An old note at a fanned-out path (`ab/cdef...`), as git writes them
    // once a notes tree grows large.
    env.git(&repo, &["notes", "--ref=ci", "add", "-m", "stale", &head]);
    let note = env.git(&repo, &["rev-parse", &format!("refs/notes/ci:{head}")]);
    let subtree = mktree(&repo, &format!("100644 blob {note}\t{}\n", &head[2..]));
    let root = mktree(&repo, &format!("040000 tree {subtree}\t{}\n", &head[..2]));
    let commit = env.git(&repo, &["commit-tree", &root, "-p", "refs/notes/ci", "-m", "fan out"]);
    env.git(&repo, &["update-ref", "refs/notes/ci", &commit]);
    assert_eq!(notes(&env, &repo)[&head], ["stale"], "git reads the fanned-out note");

    env.ci(&repo, &["notes"]).expect(0);
    let all = notes(&env, &repo);
    assert_eq!(states(&all[&head]), ["check: passed", "lint: passed"], "replaced, not shown twice");
    assert!(!all.contains_key(&plain), "{all:?}");
    let paths = env.git(&repo, &["ls-tree", "-r", "--name-only", "refs/notes/ci"]);
    assert_eq!(paths, head, "the fanned-out copy is gone");
}

/// `git mktree` with `listing` on stdin; returns the tree id.
fn mktree(repo: &Path, listing: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("git")
        .current_dir(repo)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .arg("mktree")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git mktree starts");
    child.stdin.take().unwrap().write_all(listing.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git mktree failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
