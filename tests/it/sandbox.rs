//! `git ci worker --sandbox`: a job that tries each escape fails to, with
//! real bubblewrap and real processes; without `--sandbox` the same
//! escapes work, as the threat model in docs/security.md says (so it stays
//! true).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::env::{TestEnv, wait_until};

/// Tries each escape and prints `ESCAPE <name>` for each that worked. The
/// detached sleeps carry a number unique to the run, found in the host's
/// `/proc` afterwards.
const ESCAPE: &str = r#"
cat "$WORKER_HOME/.ssh/id_ed25519" "$WORKER_HOME/.git-credentials" 2>/dev/null | grep -q hunter2 && echo "ESCAPE read-home"
find "$WORKER_CACHE" -name secret-of-other 2>/dev/null | grep -q . && echo "ESCAPE other-cache"
touch "$OUTSIDE/pwned" 2>/dev/null && echo "ESCAPE write-outside"
git ls-remote "$DAEMON_URL" >/dev/null 2>&1 && echo "ESCAPE network"
setsid env -i sleep "$SLEEP" &
sh -c 'setsid sh -c "exec env -i sleep $SLEEP" &'
# Both started (not still shells bearing the worker's mark) before the job ends.
for i in $(seq 100); do [ "$(pgrep -c -x -f "sleep $SLEEP")" -ge 2 ] && break; sleep 0.05; done
echo "checked"
"#;

struct World {
    env: TestEnv,
    repo: PathBuf,
    hub: String,
    _daemon: crate::env::Daemon,
    sleep: String,
}

/// A project whose `escape` job tries everything, after an `other` job
/// left a file in its kept cache.
fn world(extra: &str) -> Option<World> {
    if !have_bwrap() {
        return None;
    }
    let env = TestEnv::new();
    let home = env.path("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/id_ed25519"), "hunter2 private key\n").unwrap();
    std::fs::write(home.join(".git-credentials"), "https://ci:hunter2@example.com\n").unwrap();
    std::fs::create_dir_all(env.path("outside")).unwrap();
    let daemon = env.daemon(env.root.path());
    let sleep = unique();
    let vars = format!(
        "env = {{ WORKER_HOME = {:?}, WORKER_CACHE = {:?}, OUTSIDE = {:?}, DAEMON_URL = {:?}, SLEEP = {:?} }}",
        home.display().to_string(),
        env.path("cache").display().to_string(),
        env.path("outside").display().to_string(),
        daemon.url("hub.git"),
        sleep
    );
    let pipeline = format!(
        "[job.other]\nrun = \"mkdir -p keep && touch keep/secret-of-other\"\ncache = [\"keep\"]\n\n\
         [job.escape]\nneeds = [\"other\"]\nrun = '''{ESCAPE}'''\n{vars}\n{extra}\n"
    );
    let (repo, hub) = env.project_on_hub(&pipeline);
    Some(World { env, repo, hub, _daemon: daemon, sleep })
}

/// A number no other test's `sleep` uses.
fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}", 100_000 + (nanos ^ std::process::id()) % 800_000)
}

fn have_bwrap() -> bool {
    let found = std::process::Command::new("bwrap").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        crate::env::missing("bwrap (Debian: bubblewrap)");
    }
    found
}

impl World {
    /// Queues both jobs, runs a worker with `flags` until they are done;
    /// returns the escape job's log.
    fn run(&self, flags: &[&str]) -> String {
        let ids = self.env.ci(&self.repo, &["submit", "--hub", &self.hub]).expect(0).stdout();
        let mut args = vec!["worker", "--hub", &self.hub, "--once", "--poll", "200ms"];
        args.extend(flags);
        self.env.ci(&self.repo, &args).expect(0);
        let escape = ids.lines().last().unwrap().to_owned();
        self.env.ci(&self.repo, &["log", "--hub", &self.hub, &escape]).expect(0).stdout()
    }

    /// Host processes running this world's `sleep`.
    fn sleepers(&self) -> Vec<i32> {
        sleepers(&self.sleep)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for pid in self.sleepers() {
            let _ = nix_kill(pid);
        }
    }
}

fn nix_kill(pid: i32) -> std::io::Result<std::process::ExitStatus> {
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status()
}

fn sleepers(arg: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'));
            alive && cmd == format!("sleep\0{arg}\0").as_bytes()
        })
        .collect()
}

#[test]
fn sandboxed_jobs_cannot_read_credentials_see_caches_write_outside_reach_the_network_or_stay() {
    let Some(w) = world("") else { return };
    let log = w.run(&["--sandbox"]);
    assert!(log.contains("checked"), "the job ran: {log}");
    assert!(!log.contains("ESCAPE"), "an escape worked in the sandbox: {log}");
    assert!(!w.env.path("outside/pwned").exists());
    assert_eq!(w.sleepers(), Vec::<i32>::new(), "a detached process outlived its sandboxed job");
}

#[test]
fn without_the_sandbox_the_same_escapes_work_as_documented() {
    let Some(w) = world("") else { return };
    let log = w.run(&[]);
    for escape in ["read-home", "other-cache", "write-outside", "network"] {
        assert!(log.contains(&format!("ESCAPE {escape}")), "docs/security.md says {escape} is possible: {log}");
    }
    assert!(w.env.path("outside/pwned").exists());
    // Processes that leave the session and clear their environment escape
    // the worker's sweep (docs/security.md: "a process that also clears its
    // environment survives").
    wait_until(Duration::from_secs(5), "the env -i daemons", || w.sleepers().len() == 2);
}

/// The threat model's rows for the escapes above: possible on a plain
/// worker, stopped by `--sandbox`, so that the table and the tests agree.
#[test]
fn the_threat_model_lists_these_escapes_as_the_tests_find_them() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/security.md")).unwrap();
    let row = |what: &str| -> Vec<String> {
        let line = doc.lines().find(|l| l.starts_with("| ") && l.contains(what));
        let line = line.unwrap_or_else(|| panic!("docs/security.md has no row for {what:?}"));
        line.split(" | ").map(|c| c.trim_matches(|c| c == '|' || c == ' ').to_owned()).collect()
    };
    for what in ["read the worker's `~/.ssh`", "read other jobs' kept caches", "reach the network"] {
        let cells = row(what);
        assert_eq!(cells[1], "yes", "plain worker, {what}: {cells:?}");
        assert!(cells[2].starts_with("no") || cells[2].starts_with("only"), "--sandbox, {what}: {cells:?}");
    }
    let outside = row("write outside its checkout");
    assert!(outside[2].starts_with("only its checkout"), "{outside:?}");
    let stay = row("leave processes running");
    assert!(stay[1].contains("clears its environment survives"), "{stay:?}");
    assert!(stay[2].starts_with("no"), "{stay:?}");
}

#[test]
fn network_only_for_jobs_that_ask_on_workers_that_allow() {
    let Some(w) = world("network = true") else { return };
    assert!(!w.run(&["--sandbox"]).contains("ESCAPE network"), "the worker did not allow it");
    let log = w.run(&["--sandbox", "--sandbox-network"]);
    assert!(log.contains("ESCAPE network"), "the job asked and the worker allowed: {log}");
    assert!(!log.contains("ESCAPE read-home"), "{log}");
}

fn one_job(env: &TestEnv, pipeline: &str) -> (PathBuf, String) {
    env.project_on_hub(pipeline)
}

/// Runs the queued jobs of `repo` with `flags`: the published jobs as
/// JSON, and what the worker printed.
fn run_all(env: &TestEnv, repo: &Path, hub: &str, flags: &[&str]) -> (Vec<serde_json::Value>, String) {
    let ids = env.ci(repo, &["submit", "--hub", hub]).expect(0).stdout();
    let mut args = vec!["worker", "--hub", hub, "--once", "--poll", "200ms"];
    args.extend(flags);
    let worker = env.ci(repo, &args).expect(0).stderr();
    (ids.lines().map(|id| env.ci(repo, &["show", "--hub", hub, "--json", id]).json()).collect(), worker)
}

fn result(job: &serde_json::Value) -> (&str, &str) {
    (job["status"].as_str().unwrap_or(""), job["reason"].as_str().unwrap_or(""))
}

#[test]
fn what_a_sandboxed_job_detaches_ends_at_its_timeout() {
    if !have_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let sleep = unique();
    let run = format!("setsid env -i sleep {sleep} &\nsh -c 'setsid env -i sleep {sleep} &'\nsleep 1000");
    let (repo, hub) = one_job(&env, &format!("[job.hang]\nrun = '''{run}'''\ntimeout = \"2s\"\n"));
    let (jobs, _) = run_all(&env, &repo, &hub, &["--sandbox"]);
    assert_eq!(result(&jobs[0]).0, "timeout");
    wait_until(Duration::from_secs(5), "the detached sleeps to end", || sleepers(&sleep).is_empty());
}

#[test]
fn a_fork_bomb_stops_at_pids_max_and_a_memory_hog_at_memory_max() {
    if !have_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let pipeline = "[job.bomb]\nrun = 'for i in $(seq 300); do sleep 20 & done; wait'\ntimeout = \"60s\"\n\n\
        [job.hog]\nrun = '''x=$(head -c 300M /dev/zero | tr '\\0' a); echo survived ${#x}'''\n";
    let (repo, hub) = one_job(&env, pipeline);
    let (jobs, worker) = run_all(&env, &repo, &hub, &["--sandbox", "--pids-max", "32", "--memory-max", "64M"]);
    let (bomb, hog) = (result(&jobs[0]), result(&jobs[1]));
    assert_eq!(bomb.0, "failed", "{bomb:?}");
    assert_eq!(hog.0, "failed", "{hog:?}");
    assert!(worker.contains("limits by "), "the worker says how: {worker}");
    if !worker.contains("limits by rlimits") {
        // Cgroups say which limit it was; rlimits only make the fork or
        // the allocation fail.
        assert!(bomb.1.contains("--pids-max 32"), "{bomb:?}");
        assert!(hog.1.contains("--memory-max 64M"), "{hog:?}");
    }
}

#[test]
fn a_job_that_fills_its_checkout_past_disk_max_fails_saying_so() {
    if !have_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let (repo, hub) = one_job(&env, "[job.fill]\nrun = 'head -c 8M /dev/urandom > big; sleep 30'\n");
    let (jobs, _) = run_all(&env, &repo, &hub, &["--sandbox", "--disk-max", "4M"]);
    let (status, reason) = result(&jobs[0]);
    assert_eq!(status, "failed");
    assert!(reason.contains("--disk-max 4M"), "{reason}");
}

#[test]
fn a_build_passes_in_the_sandbox_and_keeps_its_cache_between_runs() {
    if !have_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let pipeline = "[job.build]\ncache = ['obj']\nrun = '''\nmkdir -p obj\n\
        if [ -f obj/hello.o ]; then echo cache hit; else cc -c hello.c -o obj/hello.o; fi\n\
        cc obj/hello.o -o hello && ./hello\n'''\n";
    let repo = env.project("p", pipeline);
    env.commit_file(
        &repo,
        "hello.c",
        "#include <stdio.h>\nint main(void) { puts(\"hello from C\"); return 0; }\n",
        "c",
    );
    let hub = env.bare_hub("hub.git");
    env.git(&repo, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let hub = hub.to_str().unwrap();
    let log =
        |job: &serde_json::Value| env.ci(&repo, &["log", "--hub", hub, job["id"].as_str().unwrap()]).expect(0).stdout();
    let (first, _) = run_all(&env, &repo, hub, &["--sandbox"]);
    assert_eq!(result(&first[0]).0, "passed", "{}", log(&first[0]));
    assert!(log(&first[0]).contains("hello from C") && !log(&first[0]).contains("cache hit"));
    let again = env.ci(&repo, &["submit", "--hub", hub, "--job", "build"]).expect(0).stdout();
    env.ci(&repo, &["worker", "--hub", hub, "--once", "--poll", "200ms", "--sandbox"]).expect(0);
    let second = env.ci(&repo, &["log", "--hub", hub, again.trim()]).expect(0).stdout();
    assert!(second.contains("cache hit") && second.contains("hello from C"), "{second}");
}

#[test]
fn secrets_reach_main_and_not_a_feature_branch() {
    let env = TestEnv::new();
    let (repo, hub) = one_job(&env, "[job.say]\nrun = 'echo \"token=${TOKEN:-none}\"'\n");
    env.git(&repo, &["branch", "feature/x"]);
    let secrets = env.path("secrets.env");
    std::fs::write(&secrets, "TOKEN=s3cr3t-value\n").unwrap();
    let main = env.ci(&repo, &["submit", "--hub", &hub, "main"]).expect(0).stdout();
    let feature = env.ci(&repo, &["submit", "--hub", &hub, "feature/x"]).expect(0).stdout();
    let file = secrets.to_str().unwrap();
    env.ci(
        &repo,
        &["worker", "--hub", &hub, "--once", "--env-file", file, "--env-refs", "refs/heads/main,refs/tags/v*"],
    )
    .expect(0);
    let log = |id: &str| env.ci(&repo, &["log", "--hub", &hub, id.trim()]).expect(0).stdout();
    assert!(log(&main).contains("token=***"), "main gets it (masked): {}", log(&main));
    let f = log(&feature);
    assert!(f.contains("token=none") && f.contains("ran without the worker's secrets (TOKEN)"), "{f}");
}

#[test]
fn a_worker_refuses_to_start_sandboxed_without_bwrap_and_flags_that_need_the_sandbox() {
    let env = TestEnv::new();
    let (repo, hub) = one_job(&env, "[job.a]\nrun = 'true'\n");
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let git = std::process::Command::new("sh").args(["-c", "command -v git"]).output().unwrap().stdout;
    std::os::unix::fs::symlink(String::from_utf8(git).unwrap().trim(), bin.join("git")).unwrap();
    let queued = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout();
    let mut cmd = env.ci_cmd(&repo, &["worker", "--hub", &hub, "--once", "--sandbox"]);
    cmd.env("PATH", &bin);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("apt-get install bubblewrap"), "{stderr}");
    let job = env.ci(&repo, &["show", "--hub", &hub, "--json", queued.trim()]).json();
    assert!(job["status"].is_null() || job["status"] == "pending", "nothing ran: {job}");
    let run = env.ci(&repo, &["worker", "--hub", &hub, "--once", "--memory-max", "1G"]).expect(2);
    assert!(run.stderr().contains("--memory-max applies to sandboxed jobs only"), "{}", run.stderr());
}

#[test]
fn doctor_and_the_site_show_how_each_worker_isolates_its_jobs() {
    if !have_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let (repo, hub) = one_job(&env, "[job.a]\nrun = 'true'\n");
    let flags = ["worker", "--hub", &hub, "--sandbox", "--pids-max", "64", "--disk-max", "1G", "--poll", "200ms"];
    let sandboxed = env.spawn_ci(&repo, &[&flags[..], &["--name", "boxed"]].concat());
    let plain = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "plain", "--poll", "200ms"]);
    let mut doctor = String::new();
    wait_until(Duration::from_secs(20), "both workers to register", || {
        doctor = env.ci(&repo, &["doctor", "--hub", &hub]).stdout();
        doctor.contains("worker boxed") && doctor.contains("worker plain")
    });
    let line = |name: &str| doctor.lines().find(|l| l.contains(&format!("worker {name} "))).unwrap_or("").to_owned();
    assert!(line("boxed").contains("sandboxed: bubblewrap") && line("boxed").contains("pids 64, disk 1G"), "{doctor}");
    assert!(line("plain").contains("jobs not sandboxed"), "{doctor}");
    let site = env.path("site");
    env.ci(&repo, &["site", "build", "--hub", &hub, "--out", site.to_str().unwrap()]).expect(0);
    let page = std::fs::read_to_string(site.join("workers.html")).unwrap();
    assert!(page.contains("sandboxed</span>") && page.contains("pids 64, disk 1G"), "{page}");
    assert!(page.contains("none: jobs run as the worker"), "{page}");
    for w in [sandboxed, plain] {
        w.signal("TERM");
        assert!(w.wait_within(Duration::from_secs(20)).0.success());
    }
}
