//! Snapshots of the text people read: `--help` and `git ci status`.
//!
//! The `.snap` files under `snapshots/` are committed. To change them after
//! changing the output: `INSTA_UPDATE=always cargo test -p git-ci --test it
//! snapshots::`, then read the diff. With `CI=true` insta never writes one.

use std::path::Path;

use crate::env::{Run, TestEnv};

/// `git-ci ARGS` with its output independent of the terminal the tests run
/// in: every stream is a pipe or /dev/null, and clap wraps at COLUMNS.
fn ci(env: &TestEnv, dir: &Path, args: &[&str]) -> Run {
    let out = env.ci_cmd(dir, args).env("COLUMNS", "100").env_remove("NO_COLOR").output().expect("git-ci runs");
    Run(out)
}

/// Snapshots named `help_run.snap`..., without this module's path: every
/// file under `snapshots/` is this module's.
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s
}

/// What varies from run to run in `git ci status`: job ids, commits, ages
/// and durations (the last column).
fn status_settings() -> insta::Settings {
    let mut s = settings();
    s.add_filter(r"\b\d{8}T\d{9}-[0-9a-f]{12}\b", "[JOB-ID]");
    s.add_filter(r"\b[0-9a-f]{10}\b", "[COMMIT]");
    s.add_filter(r"(?m)\b\d+[smhd] ago(,|$)", "[AGE]$1");
    s.add_filter(r"(?m)\b(\d+ms|\d+\.\ds|\d+m\d\ds|\d+h\d\dm)$", "[DURATION]");
    s
}

#[test]
fn help_of_git_ci_and_its_main_commands() {
    let env = TestEnv::new();
    let dir = env.root.path();
    let _bound = settings().bind_to_scope();
    let mut cases = vec![("help_root".to_owned(), vec!["--help"]), ("help_root_short".to_owned(), vec!["-h"])];
    for sub in ["run", "submit", "worker", "status", "gc", "notes", "claim", "complete"] {
        cases.push((format!("help_{sub}"), vec![sub, "--help"]));
    }
    for (name, args) in cases {
        let help = ci(&env, dir, &args).expect(0).stdout();
        let command = format!("git ci {}", args.join(" "));
        insta::with_settings!({ description => command, omit_expression => true }, {
            insta::assert_snapshot!(name, help);
        });
    }
}

/// A hub where `ok` passed and `bad` failed on the first commit, and `later`
/// waits on a second one. Returns the project, the hub and the first commit.
fn hub_with_history(env: &TestEnv) -> (std::path::PathBuf, String, String) {
    let (repo, hub) = env.project_on_hub("[job.ok]\nrun = \"true\"\n\n[job.bad]\nrun = \"echo broken; exit 3\"\n");
    let first = env.git(&repo, &["rev-parse", "HEAD"]);
    // One submit each: jobs submitted in the same millisecond sort by hash.
    for job in ["ok", "bad"] {
        ci(env, &repo, &["submit", "--hub", &hub, "--job", job]).expect(0);
    }
    ci(env, &repo, &["worker", "--hub", &hub, "--once", "--name", "w1"]).expect(0);
    env.commit_file(&repo, ".git-ci.toml", "[job.later]\nrun = \"true\"\n", "later");
    ci(env, &repo, &["submit", "--hub", &hub]).expect(0);
    (repo, hub, first)
}

#[test]
fn status_lists_jobs_and_shows_one_commit() {
    let env = TestEnv::new();
    let (repo, hub, first) = hub_with_history(&env);
    let _bound = status_settings().bind_to_scope();

    let all = ci(&env, &repo, &["status", "--hub", &hub]).expect(0);
    insta::with_settings!({ description => "git ci status", omit_expression => true }, {
        insta::assert_snapshot!("status_all", all.stdout());
    });
    // Exit 1: a job of that commit failed.
    let one = ci(&env, &repo, &["status", "--hub", &hub, &first]).expect(1);
    insta::with_settings!({ description => "git ci status FIRST-COMMIT", omit_expression => true }, {
        insta::assert_snapshot!("status_commit", one.stdout());
    });
    assert_eq!(one.stderr(), "");
}

#[test]
fn status_colours_only_a_terminal_unless_told() {
    let env = TestEnv::new();
    let (repo, hub, _) = hub_with_history(&env);

    let piped = ci(&env, &repo, &["status", "--hub", &hub]).expect(0).stdout();
    assert!(!piped.contains('\x1b'), "no escape codes into a pipe: {piped:?}");
    let always = ci(&env, &repo, &["status", "--hub", &hub, "--color", "always"]).expect(0).stdout();
    for coloured in ["\x1b[33mpending\x1b[0m", "\x1b[31mfailed\x1b[0m", "\x1b[32mpassed\x1b[0m"] {
        assert!(always.contains(coloured), "{coloured:?} in {always:?}");
    }
    // Ages may tick between the two runs; nothing else may differ.
    assert_eq!(without_ages(&strip_ansi(&always)), without_ages(&piped), "colours change nothing else");
}

/// Each line without a trailing `3s ago`.
fn without_ages(s: &str) -> String {
    let cut = |l: &str| l.strip_suffix(" ago").and_then(|l| l.rsplit_once(' ')).map_or(l.to_owned(), |(l, _)| l.into());
    s.lines().map(|l| cut(l) + "\n").collect()
}

/// Removes `ESC [ ... letter` sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}
