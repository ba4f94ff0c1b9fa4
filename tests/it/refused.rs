//! A hub that refuses is told from a hub that is down, and a URL's
//! password is never shown (issue 14, item 5).

use std::path::Path;
use std::time::Duration;

use crate::env::{TestEnv, free_port, wait_until};

/// A hub whose pre-receive hook refuses every push (tests run as root,
/// so file permissions would not stop the pushes): the worker says so
/// once, with what to fix, claims nothing and does not try again for
/// minutes; a SIGTERM still ends it at once.
#[test]
fn a_hub_that_refuses_pushes_is_told_once_and_left_alone() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.a]\nrun = \"true\"\n");
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    let tries = env.path("tries");
    let hook = Path::new(&hub).join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho try >> {}\necho this hub is read-only >&2\nexit 1\n", tries.display()),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&hook).status().unwrap();
    let daemon = env.daemon(env.root.path());

    let worker = env.spawn_ci(&repo, &["worker", "--hub", &daemon.url("hub.git"), "--name", "w", "--poll", "100ms"]);
    wait_until(Duration::from_secs(20), "the refusal", || worker.stderr().contains("to fix:"));
    // Long enough for a few polls and backoffs of an unreachable hub.
    std::thread::sleep(Duration::from_secs(3));
    let count = std::fs::read_to_string(&tries).unwrap().lines().count();
    worker.signal("TERM");
    let (status, _, stderr) = worker.wait_within(Duration::from_secs(5));
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(count, 1, "pushed again at once: {stderr}");
    assert_eq!(stderr.matches("to fix:").count(), 1, "{stderr}");
    assert!(stderr.contains("this hub is read-only") && !stderr.contains("unreachable"), "{stderr}");
    let shown = env.ci(&repo, &["show", "--hub", &hub, &id, "--json"]).expect(0).json();
    assert_eq!(shown["state"], "pending", "claimed nothing");
}

/// Exit 3 names what is wrong: a read-only `git daemon`, no repository at
/// the path given, a hub that is down.
#[test]
fn exit_3_hints_name_the_cause() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.a]\nrun = \"true\"\n");
    let read_only = env.read_only_daemon(env.root.path());
    let hint = |args: &[&str]| {
        let run = env.ci(&repo, args).expect(3);
        run.assert_clean_error();
        run.stderr()
    };

    let refused = hint(&["submit", "--hub", &read_only.url("hub.git")]);
    assert!(refused.contains("permission denied") && refused.contains("--enable=receive-pack"), "{refused}");
    assert!(!refused.contains("check the hub's URL"), "{refused}");

    let missing = format!("file://{}", env.path("nowhere.git").display());
    let missing = hint(&["status", "--hub", &missing]);
    assert!(missing.contains("no repository at that address") && missing.contains("git ls-remote"), "{missing}");

    let down = hint(&["status", "--hub", &format!("git://127.0.0.1:{}/hub.git", free_port())]);
    assert!(down.contains("could not reach") && down.contains("that it is up"), "{down}");
    drop(hub);
}

/// `http://user:password@host/` works as a hub address; the password
/// shows nowhere: errors, the worker's log, doctor.
#[test]
fn a_password_in_the_hub_url_is_never_shown() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.a]\nrun = \"true\"\n");
    let url = format!("http://bob:s3cret-pw@127.0.0.1:{}/hub.git", free_port());
    let masked = "bob:***@127.0.0.1";

    let status = env.ci(&repo, &["status", "--hub", &url]).expect(3);
    let doctor = env.ci(&repo, &["doctor", "--hub", &url]);
    for text in [status.stderr(), doctor.stdout() + &doctor.stderr()] {
        assert!(!text.contains("s3cret") && text.contains(masked), "{text}");
    }
    let worker = env.spawn_ci(&repo, &["worker", "--hub", &url, "--name", "w"]);
    wait_until(Duration::from_secs(20), "a failed try", || worker.stderr().contains("unreachable"));
    worker.signal("TERM");
    let (_, out, err) = worker.wait_within(Duration::from_secs(10));
    let text = out + &err;
    assert!(!text.contains("s3cret") && text.contains(masked), "{text}");
}
