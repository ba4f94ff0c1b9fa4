//! `git ci submit --stdin`: many ad-hoc commands queued in one push (issue
//! 18, goal 6).

use std::io::Write;
use std::process::Stdio;

use crate::env::{Run, TestEnv};

/// `git-ci ARGS` in `dir` with `input` on stdin.
fn ci_with_stdin(env: &TestEnv, dir: &std::path::Path, args: &[&str], input: &str) -> Run {
    let mut cmd = env.ci_cmd(dir, args);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // A command refused before it reads stdin closes it: that is no failure here.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    Run(child.wait_with_output().unwrap())
}

#[test]
fn three_hundred_commands_on_stdin_are_one_push_over_git_daemon() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.noop]\nrun = \"true\"\n");
    // The hub counts the pushes it receives.
    let pushes = env.path("pushes");
    let hook = std::path::Path::new(&hub).join("hooks/post-receive");
    std::fs::write(&hook, format!("#!/bin/sh\necho push >> {}\n", pushes.display())).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&hook).status().unwrap();
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");

    let mut input = String::from("# a comment, then a blank line\n\n");
    for i in 0..300 {
        input.push_str(&format!("echo job {i}\n"));
    }
    let args = ["submit", "--hub", &url, "--stdin", "--queue", "batch", "--env", "K=v", "--timeout", "5m"];
    let run = ci_with_stdin(&env, &repo, &args, &input).expect(0);
    let ids: Vec<String> = run.stdout().lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 300, "{}", run.stderr());
    assert_eq!(std::fs::read_to_string(&pushes).unwrap(), "push\n", "one push for all 300");
    let queued = env.ci_refs(std::path::Path::new(&hub));
    // The first 64 queued, the rest parked in one backlog ref (docs/scale.md).
    let in_batch = queued.iter().filter(|(name, _)| name.starts_with("refs/ci/queue/batch/")).count();
    let parked = queued.iter().filter(|(name, _)| name.starts_with("refs/ci/backlog/batch/")).count();
    assert_eq!((in_batch, parked), (64, 1));

    // Each job is its own line, with the flags applied.
    for (i, id) in [(0, &ids[0]), (299, &ids[299])] {
        let doc = env.ci(&repo, &["show", "--hub", &hub, id, "--json"]).expect(0).json();
        assert_eq!(doc["run"], format!("echo job {i}"), "{doc}");
        assert_eq!(doc["queue"], "batch", "{doc}");
        assert_eq!(doc["env"]["K"], "v", "{doc}");
        assert_eq!(doc["timeout"], 300, "{doc}");
    }
}

#[test]
fn stdin_refuses_a_second_definition_and_an_empty_input() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.noop]\nrun = \"true\"\n");
    for (extra, says) in [
        (&["--run", "true"][..], "--stdin and --run cannot be used together"),
        (&["--job", "noop"][..], "--stdin and --job cannot be used together"),
        (&["--config-from", "main"][..], "--stdin and --config-from cannot be used together"),
    ] {
        let mut args = vec!["submit", "--hub", &hub, "--stdin"];
        args.extend(extra);
        let run = ci_with_stdin(&env, &repo, &args, "true\n").expect(2);
        run.assert_clean_error();
        assert!(run.stderr().contains(says), "{}", run.stderr());
    }
    let empty = ci_with_stdin(&env, &repo, &["submit", "--hub", &hub, "--stdin"], "# nothing\n\n").expect(2);
    assert!(empty.stderr().contains("no command on stdin"), "{}", empty.stderr());
    assert!(env.ci_refs(std::path::Path::new(&hub)).is_empty(), "nothing was queued");
}
