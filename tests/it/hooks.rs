//! The post-receive trigger: real pushes to bare hubs, by path and over
//! `git daemon`, with the hook `git ci hooks install` put there.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::env::TestEnv;

/// `git push ARGS`, which must succeed; returns what the pusher saw on stderr.
pub fn push(env: &TestEnv, repo: &Path, args: &[&str]) -> String {
    let out = env.git_output(repo, &[&["push"], args].concat());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "git push {args:?} failed:\n{stderr}");
    stderr
}

/// `(name, id)` of every `remote: git-ci: queued NAME ID` line.
pub fn queued(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("remote: git-ci: queued "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(n, id)| (n.to_owned(), id.to_owned()))
        .collect()
}

/// Every job the hub knows, by id.
pub fn jobs(env: &TestEnv, dir: &Path, hub: &str) -> BTreeMap<String, serde_json::Value> {
    let list = env.ci(dir, &["status", "--hub", hub, "--json", "--limit", "1000"]).expect(0).json();
    list.as_array().unwrap().iter().map(|j| (j["id"].as_str().unwrap().to_owned(), j.clone())).collect()
}

/// `(ref, name, state)` of every job, sorted: what a push should leave.
pub fn summary(env: &TestEnv, dir: &Path, hub: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = jobs(env, dir, hub)
        .values()
        .map(|j| {
            let s = |k: &str| j[k].as_str().unwrap_or_default().to_owned();
            (s("ref"), s("name"), s("state"))
        })
        .collect();
    out.sort();
    out
}

pub fn show(env: &TestEnv, dir: &Path, hub: &str, id: &str) -> serde_json::Value {
    env.ci(dir, &["show", "--hub", hub, id, "--json"]).expect(0).json()
}

fn owned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = rows.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    v.sort();
    v
}

/// A bare hub with the hook installed, and a project whose `main` is not
/// pushed yet.
fn hooked_hub(env: &TestEnv, pipeline: &str) -> (PathBuf, PathBuf) {
    let hub = env.bare_hub("hub.git");
    env.ci(env.root.path(), &["hooks", "install", "--hub", hub.to_str().unwrap()]).expect(0);
    (hub, env.project("project", pipeline))
}

fn write_hook(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const TWO_JOBS: &str = "[job.test]\nrun = \"echo test $GIT_CI_REF\"\n\n[job.lint]\nrun = \"true\"\n";

#[test]
fn install_keeps_the_hook_that_was_there_and_uninstall_gives_it_back() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let hub_s = hub.to_str().unwrap();
    let seen = env.path("old-hook-input");
    let old = hub.join("hooks/post-receive");
    let old_text = format!("#!/bin/sh\n# the team's own hook\ncat >> '{}'\n", seen.display());
    write_hook(&old, &old_text);

    let first = env.ci(env.root.path(), &["hooks", "install", "--hub", hub_s]).expect(0);
    assert!(first.stderr().contains("kept as post-receive.pre-git-ci"), "{}", first.stderr());
    let installed = std::fs::read(&old).unwrap();
    let second = env.ci(env.root.path(), &["hooks", "install", "--hub", hub_s]).expect(0);
    assert!(second.stderr().contains("nothing changed"), "{}", second.stderr());
    assert_eq!(std::fs::read(&old).unwrap(), installed, "a second install changes nothing");
    assert_eq!(std::fs::read_to_string(hub.join("hooks/post-receive.pre-git-ci")).unwrap(), old_text);
    assert_eq!(env.git(&hub, &["config", "core.fsync"]), "committed,reference");
    assert_eq!(env.git(&hub, &["config", "--type=bool", "receive.fsckObjects"]), "true");
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_git-ci")).unwrap();
    assert!(String::from_utf8_lossy(&installed).contains(&format!("exe='{}'", exe.display())), "absolute path");

    let project = env.project("project", TWO_JOBS);
    let main = env.git(&project, &["rev-parse", "HEAD"]);
    let out = push(&env, &project, &[hub_s, "main"]);
    assert_eq!(queued(&out).len(), 2, "{out}");
    let zero = "0".repeat(40);
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), format!("{zero} {main} refs/heads/main\n"), "same stdin");
    // Pushes git-ci has nothing to do with (workers' refs/ci/*, notes...)
    // reach the old hook just the same.
    let out = push(&env, &project, &[hub_s, "HEAD:refs/notes/x", "HEAD:refs/other/y"]);
    assert!(!out.contains("git-ci"), "{out}");
    let want = format!("{zero} {main} refs/heads/main\n{zero} {main} refs/notes/x\n{zero} {main} refs/other/y\n");
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), want, "same stdin");

    let removed = env.ci(env.root.path(), &["hooks", "uninstall", "--hub", hub_s]).expect(0);
    assert!(removed.stderr().contains("put back"), "{}", removed.stderr());
    assert_eq!(std::fs::read_to_string(&old).unwrap(), old_text);
    assert!(std::fs::metadata(&old).unwrap().permissions().mode() & 0o111 != 0, "still executable");
    assert!(!hub.join("hooks/post-receive.pre-git-ci").exists());
    let again = env.ci(env.root.path(), &["hooks", "uninstall", "--hub", hub_s]).expect(0);
    assert!(again.stderr().contains("not installed"), "{}", again.stderr());

    env.commit_file(&project, "a.txt", "a", "after uninstall");
    let out = push(&env, &project, &[hub_s, "main"]);
    assert!(queued(&out).is_empty(), "no trigger after uninstall: {out}");
    assert_eq!(std::fs::read_to_string(&seen).unwrap().lines().count(), 4, "the old hook runs on");
}

#[test]
fn a_hook_whose_binary_is_gone_says_so_and_still_runs_the_earlier_hook() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let seen = env.path("old-hook-input");
    write_hook(&hub.join("hooks/post-receive"), &format!("#!/bin/sh\ncat > '{}'\n", seen.display()));
    env.ci(env.root.path(), &["hooks", "install", "--hub", hub.to_str().unwrap()]).expect(0);
    // As if the git-ci that installed the hook had been removed since. (Not
    // by running a copy of the binary: a file just written cannot be
    // executed while another test thread forks, ETXTBSY.)
    let hook = hub.join("hooks/post-receive");
    let gone = env.path("bin/git-ci");
    let text = std::fs::read_to_string(&hook).unwrap();
    let exe_line = text.lines().find(|l| l.starts_with("exe=")).unwrap();
    std::fs::write(&hook, text.replace(exe_line, &format!("exe='{}'", gone.display()))).unwrap();

    let project = env.project("project", TWO_JOBS);
    let out = push(&env, &project, &[hub.to_str().unwrap(), "main"]);
    assert!(out.contains(&format!("remote: git-ci: {} is missing, no jobs queued", gone.display())), "{out}");
    let main = env.git(&project, &["rev-parse", "HEAD"]);
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), format!("{} {main} refs/heads/main\n", "0".repeat(40)));
    let doctor = env.ci(env.root.path(), &["doctor", "--hub", hub.to_str().unwrap()]).expect(1);
    assert!(doctor.stdout().contains("which is not an executable file any more"), "{}", doctor.stdout());
}

#[test]
fn uninstall_of_a_fresh_install_leaves_no_hook() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let hub_s = hub.to_str().unwrap();
    env.ci(env.root.path(), &["hooks", "install", "--hub", hub_s]).expect(0);
    assert!(hub.join("hooks/post-receive").exists());
    env.ci(env.root.path(), &["hooks", "uninstall", "--hub", hub_s]).expect(0);
    assert!(!hub.join("hooks/post-receive").exists());
    // Inside the hub, with no --hub: the current repository.
    env.ci(&hub, &["hooks", "install"]).expect(0);
    assert!(hub.join("hooks/post-receive").exists());
    let url = env.ci(env.root.path(), &["hooks", "install", "--hub", "git://127.0.0.1:1/hub.git"]).expect(2);
    url.assert_clean_error();
    assert!(url.stderr().contains("git ci watch"), "{}", url.stderr());
}

#[test]
fn install_on_a_hub_path_with_nothing_there_says_so() {
    let env = TestEnv::new();
    let gone = env.path("no-such-hub.git");
    let run = env.ci(env.root.path(), &["hooks", "install", "--hub", gone.to_str().unwrap()]).expect(2);
    run.assert_clean_error();
    // It said "could not start `git rev-parse`" before: true, and no help.
    assert!(
        run.stderr().contains("there is no hub at") && run.stderr().contains("git init --bare"),
        "{}",
        run.stderr()
    );
    assert!(!gone.exists(), "nothing was made");
}

const FILTERS: &str = r#"
[job.every]
run = "true"

[job.main-only]
run = "true"
branches = ["main"]

[job.release]
run = "true"
branches = ["release/*"]

[job.kept]
run = "true"
supersede = false

[job.tagged]
run = "true"
branches = []
tags = ["v*"]
"#;

#[test]
fn branch_and_tag_patterns_choose_the_jobs() {
    let env = TestEnv::new();
    let (hub, project) = hooked_hub(&env, FILTERS);
    let hub_s = hub.to_str().unwrap();
    let main = push(&env, &project, &[hub_s, "main"]);
    let mut names: Vec<String> = queued(&main).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, ["every", "kept", "main-only"], "{main}");

    env.git(&project, &["branch", "release/1.0"]);
    env.git(&project, &["branch", "release/2.0/rc"]);
    let rel = push(&env, &project, &[hub_s, "release/1.0", "release/2.0/rc"]);
    let mut names: Vec<String> = queued(&rel).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, ["every", "every", "kept", "kept", "release"], "`*` stops at `/`: {rel}");

    env.git(&project, &["tag", "-a", "-m", "release", "v1.0"]);
    env.git(&project, &["tag", "x1.0"]);
    let tags = push(&env, &project, &[hub_s, "v1.0", "x1.0"]);
    let tagged = queued(&tags);
    assert_eq!(tagged.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["tagged"], "{tags}");
    let job = show(&env, &project, hub_s, &tagged[0].1);
    assert_eq!(job["ref"], "refs/tags/v1.0");
    assert_eq!(job["commit"].as_str().unwrap(), env.git(&project, &["rev-parse", "HEAD"]), "annotated tag peeled");
}

#[test]
fn a_new_push_supersedes_pending_runs_and_a_deleted_branch_cancels_them() {
    let env = TestEnv::new();
    let (hub, project) = hooked_hub(&env, FILTERS);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    env.git(&project, &["checkout", "-q", "-b", "feature"]);
    let first = queued(&push(&env, &project, &[&url, "feature"]));
    assert_eq!(first.len(), 2, "every and kept: {first:?}");

    let second_commit = env.commit_file(&project, "a.txt", "1", "second");
    let out = push(&env, &project, &[&url, "feature"]);
    assert_eq!(queued(&out).len(), 2, "{out}");
    let every_first = &first.iter().find(|(n, _)| n == "every").unwrap().1;
    assert!(
        out.contains(&format!("remote: git-ci: cancelled every {every_first}: superseded by {second_commit}")),
        "{out}"
    );
    let shown = show(&env, &project, &url, every_first);
    assert_eq!(shown["state"], "cancelled");
    assert_eq!(shown["reason"], format!("superseded by {second_commit}"));
    let hub_s = hub.to_str().unwrap();
    assert_eq!(
        summary(&env, &project, hub_s),
        owned(&[
            ("refs/heads/feature", "every", "cancelled"),
            ("refs/heads/feature", "every", "pending"),
            ("refs/heads/feature", "kept", "pending"),
            ("refs/heads/feature", "kept", "pending"),
        ]),
        "supersede = false keeps the older run"
    );

    let out = push(&env, &project, &[&url, ":feature"]);
    assert_eq!(out.matches("was deleted").count(), 3, "{out}");
    let states: Vec<String> = summary(&env, &project, hub_s).into_iter().map(|(_, _, s)| s).collect();
    assert_eq!(states, ["cancelled"; 4]);
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !n.starts_with("refs/ci/done/")).collect();
    assert!(live.is_empty(), "cancelled jobs leave no refs: {live:?}");
}

#[test]
fn a_malformed_pipeline_is_reported_and_recorded_without_breaking_the_push() {
    let env = TestEnv::new();
    let (hub, project) = hooked_hub(&env, "[job.test]\nrun = \"true\"\ntimeout = \"soon\"\n");
    let hub_s = hub.to_str().unwrap();
    let daemon = env.daemon(env.root.path());
    let error_line =
        |commit: &str| format!("remote: git-ci: error: {}:.git-ci.toml:3:11: invalid duration \"soon\"", &commit[..10]);
    let first = env.git(&project, &["rev-parse", "HEAD"]);
    let out = push(&env, &project, &[hub_s, "main"]);
    assert!(out.contains(&error_line(&first)), "file, line and field for the pusher:\n{out}");
    assert!(queued(&out).is_empty());
    let second = env.commit_file(&project, "a.txt", "a", "still broken");
    let out = push(&env, &project, &[&daemon.url("hub.git"), "main"]);
    assert!(out.contains(&error_line(&second)), "over git daemon too:\n{out}");
    assert_eq!(env.git(&hub, &["rev-parse", "main"]), second, "the pushes went through");

    let all = jobs(&env, &project, hub_s);
    assert_eq!(all.len(), 2, "one record a pushed commit: {all:?}");
    for (id, job) in &all {
        assert_eq!((job["name"].as_str(), job["state"].as_str()), (Some("pipeline"), Some("error")));
        let shown = show(&env, &project, hub_s, id);
        assert!(shown["reason"].as_str().unwrap().contains(".git-ci.toml:3:11: invalid duration"), "{shown}");
    }
    let line = format!("{} {} refs/heads/main\n", "0".repeat(40), first);
    let again = run_hook(&env, &hub, &line);
    assert!(again.contains(&error_line(&first)["remote: ".len()..]), "said again: {again}");
    assert_eq!(jobs(&env, &project, hub_s).len(), 2, "but not recorded twice");
}

/// Runs the installed hook's command by hand, as git would, with `input`.
fn run_hook(env: &TestEnv, hub: &Path, input: &str) -> String {
    let mut hook = env
        .ci_cmd(hub, &["hooks", "post-receive", "--hook-dir", "hooks"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    hook.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = hook.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn running_the_hook_again_for_the_same_update_queues_nothing() {
    let env = TestEnv::new();
    let (hub, project) = hooked_hub(&env, TWO_JOBS);
    let hub_s = hub.to_str().unwrap();
    let first = queued(&push(&env, &project, &[hub_s, "main"]));
    assert_eq!(first.len(), 2);
    let refs_before = env.ci_refs(&hub);
    let line = format!("{} {} refs/heads/main\n", "0".repeat(40), env.git(&project, &["rev-parse", "HEAD"]));
    for _ in 0..2 {
        let err = run_hook(&env, &hub, &line);
        for (name, id) in &first {
            assert!(err.contains(&format!("git-ci: already queued {name} {id} for refs/heads/main")), "{err}");
        }
    }
    assert_eq!(env.ci_refs(&hub), refs_before, "nothing queued twice");
}

#[test]
fn a_worker_runs_what_the_hook_queued() {
    let env = TestEnv::new();
    let (_hub, project) = hooked_hub(&env, TWO_JOBS);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let ids = queued(&push(&env, &project, &[&url, "main"]));
    env.ci(&project, &["worker", "--hub", &url, "--once", "--name", "w1"]).expect(0);
    let test_id = &ids.iter().find(|(n, _)| n == "test").unwrap().1;
    assert_eq!(show(&env, &project, &url, test_id)["state"], "passed");
    assert_eq!(env.ci(&project, &["log", "--hub", &url, test_id]).expect(0).stdout(), "test refs/heads/main\n");
    let states: Vec<String> = summary(&env, &project, &url).into_iter().map(|(_, _, s)| s).collect();
    assert_eq!(states, ["passed", "passed"], "the worker's own pushes to refs/ci/* queue nothing");
}
