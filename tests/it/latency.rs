//! What a person feels on a local hub (issue 18, goal 1): `submit` and
//! `run` of HEAD start no `git` process, and what they read in-process
//! instead (the commit, its branch, the submitter) is what git says.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::env::{Run, TestEnv};

/// The lines of a `-v` log that record a `git` command run by git-ci.
fn git_commands(run: &Run) -> Vec<String> {
    run.stderr().lines().filter(|l| l.contains(" git: git ")).map(str::to_owned).collect()
}

#[test]
fn submit_and_run_of_head_start_no_git_process() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.noop]\nrun = \"true\"\n");
    let submit = env.ci(&repo, &["-v", "submit", "--hub", &hub, "--run", "true"]).expect(0);
    assert_eq!(git_commands(&submit), Vec::<String>::new(), "{}", submit.stderr());
    let run = env.ci(&repo, &["-v", "run", "--run", "true"]).expect(0);
    assert_eq!(git_commands(&run), Vec::<String>::new(), "{}", run.stderr());
    // Another revision is git's to resolve, and -v says so.
    let other = env.ci(&repo, &["-v", "submit", "--hub", &hub, "--run", "true", "main~0"]).expect(0);
    assert!(git_commands(&other).iter().any(|l| l.contains("git rev-parse")), "{}", other.stderr());
}

/// `git ARGS` in `repo` with the tests' environment (the built `git-ci`
/// first on PATH) minus GIT_COMMITTER_*, so that the identity comes from
/// git config.
fn git_without_committer(env: &TestEnv, repo: &Path, args: &[&str]) -> Output {
    let template = env.git_ci_cmd(repo, &[]);
    let mut git = Command::new("git");
    git.env_clear()
        .envs(template.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env_remove("GIT_COMMITTER_NAME")
        .env_remove("GIT_COMMITTER_EMAIL")
        .current_dir(repo)
        .stdin(Stdio::null())
        .args(args);
    let out = git.output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The `submitted_by` of a job queued by `git [-c CONFIG]... ci submit`,
/// and what `git [-c CONFIG]... var GIT_COMMITTER_IDENT` says.
fn submitted_by(env: &TestEnv, repo: &Path, hub: &str, config: &[&str]) -> (String, String) {
    let dash_c: Vec<&str> = config.iter().flat_map(|c| ["-c", *c]).collect();
    let out =
        git_without_committer(env, repo, &[&dash_c[..], &["ci", "submit", "--hub", hub, "--run", "true"]].concat());
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let show = env.ci(repo, &["show", "--hub", hub, "--json", &id]).expect(0).json();
    let var = git_without_committer(env, repo, &[&dash_c[..], &["var", "GIT_COMMITTER_IDENT"]].concat());
    let ident = String::from_utf8_lossy(&var.stdout).into_owned();
    let git_says = ident[..=ident.rfind('>').unwrap()].to_owned();
    (show["submitted_by"].as_str().unwrap().to_owned(), git_says)
}

#[test]
fn the_submitter_read_in_process_is_who_git_says_commits() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.noop]\nrun = \"true\"\n");
    env.git(&repo, &["config", "user.name", "Config Name"]);
    env.git(&repo, &["config", "user.email", "config@example.com"]);
    let (ours, git) = submitted_by(&env, &repo, &hub, &[]);
    assert_eq!((ours.as_str(), git.as_str()), ("Config Name <config@example.com>", "Config Name <config@example.com>"));
    // committer.* wins over user.*, as in git.
    env.git(&repo, &["config", "committer.email", "committer@config.example"]);
    let (ours, git) = submitted_by(&env, &repo, &hub, &[]);
    assert_eq!((ours.as_str(), git.as_str()), ("Config Name <committer@config.example>", git.as_str()));
    assert_eq!(ours, git);
    // `git -c user.name=... ci submit`: settings gix does not read go to git.
    let (ours, git) = submitted_by(&env, &repo, &hub, &["committer.name=Dash C"]);
    assert_eq!((ours.as_str(), git.as_str()), ("Dash C <committer@config.example>", git.as_str()));
    assert_eq!(ours, git);
    // A name git trims is git's to say.
    env.git(&repo, &["config", "user.name", "Trailing Dot."]);
    let (ours, git) = submitted_by(&env, &repo, &hub, &[]);
    assert_eq!(ours, git);
}

#[test]
fn the_branch_read_in_process_is_what_git_rev_parse_says() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.noop]\nrun = \"true\"\n");
    let git_ref = |env: &TestEnv| {
        let id = env.ci(&repo, &["submit", "--hub", &hub, "--run", "true"]).expect(0).stdout().trim().to_owned();
        let show = env.ci(&repo, &["show", "--hub", &hub, "--json", &id]).expect(0).json();
        (show["ref"].as_str().unwrap().to_owned(), show["commit"].as_str().unwrap().to_owned())
    };
    let head = env.git(&repo, &["rev-parse", "HEAD"]);
    assert_eq!(git_ref(&env), ("refs/heads/main".to_owned(), head.clone()));
    env.git(&repo, &["checkout", "-q", "--detach", "HEAD"]);
    assert_eq!(env.git(&repo, &["rev-parse", "--symbolic-full-name", "HEAD"]), "HEAD");
    assert_eq!(git_ref(&env), ("HEAD".to_owned(), head));
}

/// The sync calls (`fsync`, `fdatasync`...) `git-ci ARGS` and every process
/// it starts make, as strace saw them; `None` without strace.
fn syncs(env: &TestEnv, dir: &Path, args: &[&str]) -> Option<Vec<String>> {
    traced(env, dir, "fsync,fdatasync,syncfs,sync_file_range", args)
}

/// The system calls `calls` (strace's `-e trace=` list) of `git-ci ARGS`
/// and every process it starts; `None` without strace.
fn traced(env: &TestEnv, dir: &Path, calls: &str, args: &[&str]) -> Option<Vec<String>> {
    if Command::new("strace").arg("-V").output().is_err() {
        crate::env::missing("strace (Debian: strace)");
        return None;
    }
    let trace = env.path(&format!("strace-{}-{}", args[0], calls.len()));
    let mut strace = Command::new("strace");
    env.hermetic(&mut strace);
    strace
        .args(["-f", "-qq", "-e", &format!("trace={calls}"), "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_git-ci"))
        .args(args)
        .current_dir(dir);
    let out = strace.output().expect("strace runs");
    assert!(out.status.success(), "git-ci {args:?} under strace: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&trace).unwrap();
    Some(text.lines().filter(|l| !l.contains("+++") && !l.contains("---")).map(str::to_owned).collect())
}

/// A job's log is published as it is read back, so syncing it to the
/// worker's disk guarded nothing; it cost each job 1 ms on a quiet disk
/// and up to 230 ms on a busy one. What must survive a crash is the hub's
/// (`core.fsync`, set by `git ci hooks install`), not the worker's.
#[test]
fn a_no_op_job_syncs_nothing_on_the_worker() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.noop]\nrun = \"echo hi\"\n");
    let Some(run) = syncs(&env, &repo, &["run", "--force"]) else { return };
    assert_eq!(run, Vec::<String>::new(), "git ci run");
    env.ci(&repo, &["submit", "--hub", &hub]).expect(0);
    let worker = syncs(&env, &repo, &["worker", "--hub", &hub, "--once"]).unwrap();
    assert_eq!(worker, Vec::<String>::new(), "git ci worker --once");
    let passed = env.ci(&repo, &["status", "--hub", &hub, "--json"]).expect(0).json();
    assert_eq!(passed[0]["state"], "passed", "{passed}");
}

/// `git ci run` truncated its worker-name lock file to rewrite the pid in
/// it, and ext4 flushes a file truncated to nothing when it is closed: up
/// to 8 ms of a no-op run on a busy disk. The pid is now written over the
/// last one, and a second run (the file then exists) truncates nothing.
#[test]
fn a_run_truncates_no_file() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.noop]\nrun = \"true\"\n");
    let run = || traced(&env, &repo, "ftruncate,truncate", &["run", "--force", "-q"]);
    let Some(_first) = run() else { return };
    assert_eq!(run().unwrap(), Vec::<String>::new(), "a second git ci run");
}

/// Closing an inotify instance makes a process's exit wait out a kernel
/// grace period (12–15 ms measured): `git ci run` of a quick job watched
/// the hub's refs for nothing. Its worker watches only once it has run a
/// moment, as a longer job shows.
#[test]
fn a_quick_run_watches_no_refs_and_a_longer_one_does() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.noop]\nrun = \"true\"\n");
    let quick = || traced(&env, &repo, "inotify_init1", &["run", "--force", "-q"]);
    let Some(first) = quick() else { return };
    // A loaded machine may stretch a debug build's run past the moment
    // the watch begins: one run in three without a watch will do (before,
    // every run watched).
    let watched = [first, quick().unwrap(), quick().unwrap()];
    assert!(watched.iter().any(Vec::is_empty), "every quick git ci run watched the refs: {watched:?}");
    let slow = traced(&env, &repo, "inotify_init1", &["run", "--force", "-q", "--run", "sleep 0.5"]).unwrap();
    assert!(!slow.is_empty(), "a job of half a second: the worker watches the hub meanwhile");
}

/// A worker idle for longer than a third of its lease renewed its first
/// claim right after making it (its heartbeat clock had run out while it
/// held nothing): a transaction for nothing, a push over the network.
/// The claim ref must hold the claim the claimed queue ref names until
/// the first real heartbeat, a third of the lease after the claim.
#[test]
fn an_idle_worker_does_not_renew_its_first_claim_at_once() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.noop]\nrun = \"true\"\n");
    // Heartbeats every 2 s; idle for longer than that before the claim.
    let _worker = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w", "--lease", "6s"]);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let id = env.ci(&repo, &["submit", "--hub", &hub, "--run", "sleep 3"]).expect(0).stdout().trim().to_owned();
    let hub_dir = Path::new(&hub);
    let claim_ref = format!("refs/ci/claims/{id}");
    crate::env::wait_until(std::time::Duration::from_secs(10), "the claim", || {
        env.git_output(hub_dir, &["rev-parse", "--verify", "-q", &claim_ref]).status.success()
    });
    // Time for a heartbeat that should not come, well before the real one.
    std::thread::sleep(std::time::Duration::from_millis(400));
    let claimed = env.git(hub_dir, &["rev-parse", &format!("refs/ci/queue/default/{id}:claim.json")]);
    let now = env.git(hub_dir, &["rev-parse", &claim_ref]);
    assert_eq!(now, claimed, "the claim was renewed right after it was made");
}
