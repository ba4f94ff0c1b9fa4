//! Waiting costs nothing: a command waiting on a job (`run`, `submit
//! --wait`, `log --follow`, the worker itself) sleeps until refs change,
//! instead of re-reading the hub in a loop.

use std::time::Duration;

use crate::env::{Bg, TestEnv, wait_until};

/// CPU a process used, itself and the children it reaped (user + system,
/// in seconds), read once it has exited and before it is reaped.
fn cpu_seconds(bg: &Bg) -> f64 {
    let stat_path = format!("/proc/{}/stat", bg.id());
    let fields = || {
        let stat = std::fs::read_to_string(&stat_path).unwrap();
        let after_name = stat.rsplit_once(')').unwrap().1.to_owned();
        after_name.split_whitespace().map(str::to_owned).collect::<Vec<_>>()
    };
    wait_until(Duration::from_secs(60), "the process to exit", || fields()[0] == "Z");
    let f = fields();
    // utime, stime, cutime, cstime, in USER_HZ (100 a second on Linux).
    let ticks: u64 = f[11..15].iter().map(|t| t.parse::<u64>().unwrap()).sum();
    ticks as f64 / 100.0
}

/// What the tests below allow a waiter for a 3-second job.
const BUDGET: f64 = 0.5;

#[test]
fn git_ci_run_of_a_sleeping_job_costs_almost_no_cpu() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.nap]\nrun = \"sleep 3\"\n");
    let run = env.spawn_ci(&repo, &["run"]);
    let cpu = cpu_seconds(&run);
    let (status, _, err) = run.wait();
    assert!(status.success(), "{err}");
    assert!(cpu < BUDGET, "`git ci run` of `sleep 3` used {cpu:.2} s of CPU");
}

#[test]
fn submit_wait_log_follow_and_the_worker_sleep_while_a_job_runs() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.nap]\nrun = \"echo start; sleep 3; echo end\"\n");
    let submit = env.spawn_ci(&repo, &["submit", "--hub", &hub, "--wait"]);
    wait_until(Duration::from_secs(30), "the job id", || submit.stdout().trim().len() > 10);
    let id = submit.stdout().trim().to_owned();
    let follow = env.spawn_ci(&repo, &["log", "--hub", &hub, "--follow", &id]);
    let worker = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "w"]);
    let costs = [("submit --wait", &submit), ("log --follow", &follow), ("worker", &worker)].map(|(what, bg)| {
        let cpu = cpu_seconds(bg);
        (what, cpu)
    });
    let (_, out, err) = follow.wait();
    assert_eq!(out, "start\nend\n", "{err}");
    assert!(submit.wait().0.success());
    assert!(worker.wait().0.success());
    for (what, cpu) in costs {
        assert!(cpu < BUDGET, "{what} used {cpu:.2} s of CPU over a 3-second job: {costs:?}");
    }
}

/// The `git` commands of a `-v` log, by what they do.
fn count_git(stderr: &str, what: &str) -> usize {
    stderr.lines().filter(|l| l.contains(" git: git ") && l.contains(what)).count()
}

/// A waiter on a remote hub looks at it with `git ls-remote` (a ref
/// listing, no objects) and fetches only when its job moved: before, it
/// fetched once a second for as long as the job ran, and saw the job
/// finish up to a second late. A 4-second job is claimed (one move) and
/// published (another): a handful of fetches, however long it runs.
#[test]
fn a_remote_waiter_looks_cheaply_and_fetches_when_its_job_moves() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.nap]\nrun = \"sleep 4\"\n");
    let daemon = env.daemon(std::path::Path::new(&hub).parent().unwrap());
    let url = daemon.url("hub.git");
    let id = env.ci(&repo, &["submit", "--hub", &url]).expect(0).stdout().trim().to_owned();
    let waiter = env.spawn_ci(&repo, &["-v", "wait", "--hub", &url, &id]);
    let worker = env.spawn_ci(&repo, &["worker", "--hub", &url, "--once", "--name", "w"]);
    let (status, _, err) = waiter.wait_within(Duration::from_secs(60));
    assert!(status.success(), "{err}");
    assert!(worker.wait().0.success());
    let (looks, fetches) = (count_git(&err, "ls-remote"), count_git(&err, " fetch "));
    assert!(looks >= 3, "{looks} looks at the hub over a 4-second job: {err}");
    assert!(fetches <= 5, "{fetches} fetches over a 4-second job (its moves: 2): {err}");
}
