//! Processes a job detaches (`setsid`, double-forked daemons) end with the
//! job, however it ends and whoever runs it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::env::{TestEnv, wait_until};

/// Leaves a `setsid` child and a double-forked, session-leading daemon
/// behind, their pids in `$1/setsid.pid` and `$1/daemon.pid`.
const LEAVE: &str = r#"dir=$1
setsid sleep 1000 &
echo $! > "$dir/setsid.pid"
sh -c 'setsid sh -c "echo \$\$ > $0.tmp; mv $0.tmp $0; exec sleep 1000" &' "$dir/daemon.pid"
while [ ! -s "$dir/daemon.pid" ]; do sleep 0.01; done
echo left them
"#;

/// The pids a job left in `dir`; killed when the test ends, whatever happens.
struct Left(Vec<i32>);

impl Left {
    fn read(dir: &Path) -> Left {
        let pid = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap().trim().parse::<i32>().unwrap();
        Left(vec![pid("setsid.pid"), pid("daemon.pid")])
    }

    fn assert_gone(&self) {
        let alive = |pid: &i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        };
        // Killed before the worker went on (or exited): gone at once, or
        // here forever. The wait covers only /proc catching up.
        wait_until(Duration::from_secs(5), "the detached processes to be gone", || !self.0.iter().any(alive));
    }
}

impl Drop for Left {
    fn drop(&mut self) {
        for pid in &self.0 {
            let kill = std::process::Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .stderr(std::process::Stdio::null())
                .status();
            drop(kill);
        }
    }
}

fn project(env: &TestEnv) -> (PathBuf, PathBuf, PathBuf) {
    let (ends, times_out) = (env.path("ends"), env.path("times-out"));
    std::fs::create_dir_all(&ends).unwrap();
    std::fs::create_dir_all(&times_out).unwrap();
    let pipeline = format!(
        "[job.ends]\nrun = \"sh leave.sh {}\"\n\n[job.times-out]\nrun = \"sh leave.sh {}; sleep 1000\"\ntimeout = \"2s\"\n",
        ends.display(),
        times_out.display()
    );
    (leaving_project(env, &pipeline), ends, times_out)
}

/// A project of `pipeline` whose `leave.sh` is [`LEAVE`].
fn leaving_project(env: &TestEnv, pipeline: &str) -> PathBuf {
    let repo = env.project("p", pipeline);
    env.commit_file(&repo, "leave.sh", LEAVE, "a script that leaves processes behind");
    repo
}

#[test]
fn a_worker_kills_what_its_jobs_detach() {
    let env = TestEnv::new();
    let (repo, ends, times_out) = project(&env);
    let hub = env.bare_hub("hub.git");
    let hub = hub.to_str().unwrap();
    env.git(&repo, &["push", "-q", hub, "main"]);
    env.ci(&repo, &["submit", "--hub", hub]).expect(0);
    let worker = env.spawn_ci(&repo, &["worker", "--hub", hub, "--name", "w", "--poll", "100ms"]);
    let status = |job: &str| {
        let all = env.ci(&repo, &["status", "--hub", hub, "--json"]).expect(0).json();
        let found = all.as_array().unwrap().iter().find(|j| j["name"] == job).cloned();
        found.map(|j| j["state"].as_str().unwrap().to_owned()).unwrap_or_default()
    };
    // Checked while the worker still runs: its exit would let them go to init.
    wait_until(Duration::from_secs(60), "both jobs to finish", || {
        status("ends") == "passed" && status("times-out") == "timeout"
    });
    let (ended, timed_out) = (Left::read(&ends), Left::read(&times_out));
    ended.assert_gone();
    timed_out.assert_gone();
    drop(worker);
}

#[test]
fn git_ci_run_kills_what_its_jobs_detach() {
    let env = TestEnv::new();
    let (repo, ends, times_out) = project(&env);
    let run = env.ci(&repo, &["run"]).expect(1);
    assert!(run.stderr().contains("1 passed") && run.stderr().contains("timeout"), "{}", run.stderr());
    let (ended, timed_out) = (Left::read(&ends), Left::read(&times_out));
    ended.assert_gone();
    timed_out.assert_gone();
}

/// A worker killed with SIGKILL cannot stop its jobs: they outlive it,
/// re-parented to init. The next worker that starts on the machine (any
/// name, any hub) kills them, detached ones included.
#[test]
fn the_jobs_of_a_worker_killed_with_sigkill_die_when_a_worker_next_starts() {
    let env = TestEnv::new();
    let dir = env.path("left");
    std::fs::create_dir_all(&dir).unwrap();
    let pipeline = format!(
        "[job.long]\nrun = \"sh leave.sh {}; echo $$ > {}/shell.pid; sleep 1000\"\n",
        dir.display(),
        dir.display()
    );
    let repo = leaving_project(&env, &pipeline);
    let hub = env.bare_hub("hub.git");
    let hub = hub.to_str().unwrap();
    env.ci(&repo, &["submit", "--hub", hub]).expect(0);
    let worker = env.spawn_ci(&repo, &["worker", "--hub", hub, "--name", "killed", "--poll", "100ms"]);
    wait_until(Duration::from_secs(30), "the job to start", || dir.join("shell.pid").exists());
    let shell = std::fs::read_to_string(dir.join("shell.pid")).unwrap().trim().parse::<i32>().unwrap();
    let mut left = Left::read(&dir);
    left.0.push(shell);
    worker.signal("KILL");
    drop(worker);
    // Another worker, on another hub, with nothing to do. (Workers of
    // tests running beside this one may get there first: any worker of
    // this user kills them, which is the point.)
    let other = env.bare_hub("other.git");
    env.ci(&repo, &["worker", "--hub", other.to_str().unwrap(), "--once", "--name", "next"]).expect(0);
    // Before, they ran on for good: `sleep 1000` outlived its worker.
    left.assert_gone();
}
